"""Escaping for XML written by hand. Pure.

Text from sources is untrusted and may hold characters XML 1.0 cannot carry at all (C0 controls
other than tab/newline/return, lone surrogates, U+FFFE/U+FFFF): they are dropped, so no page can
make a document that parsers reject.
"""

from __future__ import annotations

import re

_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(value: str) -> str:
    return _NOT_XML.sub("", value)


# str.replace chains: faster than str.translate on entry-sized text (docs/architecture.md).
def text(value: str) -> str:
    """Element content."""
    return xml_safe(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def attribute(value: str) -> str:
    """A double-quoted attribute value (whitespace kept as written, not normalised away)."""
    value = text(value).replace('"', "&quot;")
    return value.replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;")


def rss_text(value: str) -> str:
    """Plain text in RSS (titles, categories, the channel description). The RSS Advisory Board's
    profile (Character Data): a publisher SHOULD encode "&", "<" and ">" in plain text as &#x26;
    &#x3C; &#x3E;, the form read the same way by the widest number of aggregators (the W3C
    validator warns otherwise)."""
    return xml_safe(value).replace("&", "&#x26;").replace("<", "&#x3C;").replace(">", "&#x3E;")


def cdata(value: str) -> str:
    # "]]>" would end the section early: split it across two sections.
    return "<![CDATA[" + xml_safe(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def element(name: str, value: str, indent: str, **attributes: str) -> str:
    attrs = "".join(f' {k}="{attribute(v)}"' for k, v in attributes.items())
    return f"{indent}<{name}{attrs}>{text(value)}</{name}>\n"


def empty(name: str, indent: str, **attributes: str) -> str:
    attrs = "".join(f' {k}="{attribute(v)}"' for k, v in attributes.items())
    return f"{indent}<{name}{attrs}/>\n"
