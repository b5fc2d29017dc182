"""Stable identities, derived from where a thing lives, never from its text.

A page's path is normalised (zero-padded day, no extension) so that every spelling of a link to it
(`/news/2018/01/1/x.md`, `news/2018/01/01/x.html`) names the same page. An event's guid hashes the
path of its chain's first version, so rewording never changes it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import re
import unicodedata
import uuid

import opencc
from unidecode import unidecode

# Fixed forever: changing it would change every guid ever published.
GUID_NAMESPACE = uuid.UUID("6f1c7b5e-3a0d-5b8e-9c2f-4e1d2a7b9c10")

_PAGE_PATH = re.compile(
    r"^(?:.*/)?news/(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<slug>[^/?#]+?)(?:\.(?:md|json|xml|html))?$"
)


@functools.lru_cache(maxsize=1 << 16)
def page_path(link: str) -> str | None:
    """Canonical `/news/YYYY/MM/DD/slug` for any link or file path to a page, else None."""
    match = _PAGE_PATH.match(link.strip().split("?", 1)[0].split("#", 1)[0])
    if not match:
        return None
    y, m, d, slug = match["y"], int(match["m"]), int(match["d"]), match["slug"]
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return None
    return f"/news/{y}/{m:02d}/{d:02d}/{slug}"


@functools.lru_cache(maxsize=1 << 16)
def event_guid(key: str) -> str:
    """The guid/id every format carries for the event whose first version lives at `key`."""
    return f"urn:uuid:{uuid.uuid5(GUID_NAMESPACE, key)}"


# Folding a name: what makes two spellings one topic. Case, width and other compatibility forms
# (NFKC), the diacritics of Latin letters, punctuation and spacing don't count; nothing is
# transliterated from one script to another (toneless pinyin made 期货 "futures" and 起火 "fire" one
# topic). Chinese is folded to its simplified form (OpenCC, offline dictionaries shipped in the
# wheel), so 蘇丹 and 苏丹 are one topic. FOLDING names this rule: a store keyed by another one is
# keyed again when opened (feeds.rekey).
FOLDING = f"nfkc-latin-t2s/opencc-{importlib.metadata.version('opencc')}"
_T2S = opencc.OpenCC("t2s.json")
HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]")


def _latin(char: str) -> bool:
    return unicodedata.name(char, "").startswith("LATIN ")


@functools.lru_cache(maxsize=1 << 16)
def topic_words(name: str) -> tuple[str, ...]:
    """The words of a name: NFKC, casefolded, Latin letters in ASCII (`Erdoğan` -> `erdogan`,
    `Łódź` -> `lodz`), other scripts as they are; everything but letters, marks and digits
    separates words (a modifier letter such as `ʻ` is an apostrophe)."""
    out: list[str] = []
    before = " "  # what the previous character was: "l" Latin letter, "o" other word character, " " separator
    for char in unicodedata.normalize("NFD", unicodedata.normalize("NFKC", name).casefold()):
        kind = unicodedata.category(char)
        if kind[0] == "M":
            # A diacritic of a Latin letter goes; a mark of another script is part of its letter
            # (が is か with a voiced sound mark).
            if before == "o":
                out.append(char)
            continue
        if char < "\x80":
            before = "l" if char.isalnum() else " "
            out.append(char if char.isalnum() else " ")
        elif kind[0] == "L" and _latin(char):
            before = "l"
            out.append("".join(c if c.isalnum() else " " for c in unidecode(char).lower()))  # ø -> o, ß -> ss
        elif kind[0] in "LN" and not (kind == "Lm" and unicodedata.name(char, "").startswith("MODIFIER LETTER")):
            before = "o"
            out.append(char)
        else:
            before = " "
            out.append(" ")
    return tuple(unicodedata.normalize("NFC", "".join(out)).split())


@functools.lru_cache(maxsize=1 << 16)
def topic_key(name: str) -> str:
    """What makes two topic names the same topic (see FOLDING); empty for a name with no words."""
    key = " ".join(topic_words(name))
    return simplified(key) if HAN.search(key) else key


def simplified(text: str) -> str:
    """Traditional Chinese characters folded to simplified (OpenCC t2s), as topic keys fold them."""
    return str(_T2S.convert(text))


def topic_slug(name: str) -> str:
    """URL slug of a topic: its key's words joined by `-` (Latin names as ASCII, other scripts as
    they are, Chinese simplified, linked percent-encoded), so every spelling of one topic gives
    the same slug whichever arrives first; never empty (a name without words gets a hash)."""
    slug = topic_key(name).replace(" ", "-")[:80].strip("-")
    if slug:
        return slug
    return "topic-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]


_SLUG_CHAR = re.compile(r"[^\W_]|-")
_ASCII_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def is_slug(value: str) -> bool:
    """Whether `value` can be a topic slug (a cheap check of a requested URL, before any lookup)."""
    if value.isascii():  # most slugs: one match, no per-character look (asked on every combined feed)
        return len(value) <= 80 and _ASCII_SLUG.fullmatch(value) is not None
    if not value or len(value) > 80 or value[0] == "-" or value[-1] == "-" or "--" in value:
        return False
    if unicodedata.normalize("NFKC", value).casefold() != value:  # slugs are folded: `ISIL` is not one
        return False
    return all(_SLUG_CHAR.match(c) or unicodedata.category(c)[0] == "M" for c in value)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
