"""The JSON and XML shapes of an event page (documented in the README).

Both carry the same fields as the markdown page; both are checked field by field so an error names
the field. XML is parsed with defusedxml with DTDs forbidden: no external entities, no entity
expansion.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from feeds.errors import ParseError
from feeds.model import Change, ChangeKind, Page, Related, SourceLink, as_utc
from feeds.pages.guard import guarded
from feeds.pages.markdown import context_parts, cover_image, parse_date, text

_KINDS: tuple[ChangeKind, ...] = ("first", "update", "current")


def _str(value: Any, origin: str, field: str, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ParseError(origin, "must be a non-empty string" if required else "must be a string", field)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:  # JSON's `\ud800`: no text can be stored or served
            raise ParseError(origin, f"holds a lone surrogate at character {exc.start}", field) from None
    return value


def _timestamp(value: str, origin: str, field: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        return as_utc(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError as exc:
        raise ParseError(origin, f"not an ISO 8601 timestamp: {value[:80]!r}", field) from exc
    except OverflowError as exc:  # in range only in its own offset (9999-12-31T23:59-01:00)
        raise ParseError(origin, f"out of range in UTC: {value[:80]!r}", field) from exc


def _kind(value: str, origin: str, field: str) -> ChangeKind:
    for kind in _KINDS:
        if value == kind:
            return kind
    raise ParseError(origin, f"must be one of {', '.join(_KINDS)}, not {value!r}", field)


def _page(fields: dict[str, Any], path: str, origin: str) -> Page:
    return Page(
        path=path,
        date=parse_date(_str(fields["date"], origin, "date", required=True), origin),
        headline=text(_str(fields["headline"], origin, "headline", required=True)),
        heading=text(_str(fields.get("heading"), origin, "heading")) or None,
        summary=_str(fields.get("summary"), origin, "summary").strip(),
        image=cover_image(_str(fields.get("image"), origin, "image")),
        sources=tuple(fields["sources"]),
        related=tuple(fields["related"]),
        changes=tuple(fields["changes"]),
    )


def json_object(data: bytes, origin: str) -> dict[str, Any]:
    """A JSON document that must be an object, or ParseError naming the file."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(origin, f"invalid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ParseError(origin, "the document must be a JSON object")
    return doc


def xml_root(data: bytes, origin: str, tag: str) -> Element:
    """The root element, which must be `<tag>`, of a document parsed without DTDs or entities."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ParseError(origin, f"unsafe XML refused ({type(exc).__name__})") from exc
    except SafeET.ParseError as exc:
        raise ParseError(origin, f"invalid XML: {exc}") from exc
    if root.tag != tag:
        raise ParseError(origin, f"root element must be <{tag}>, not <{root.tag}>")
    return root


@guarded
def parse_event_json(data: bytes, path: str, origin: str) -> Page:
    doc = json_object(data, origin)

    def listing(name: str) -> list[dict[str, Any]]:
        value = doc.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ParseError(origin, "must be a list of objects", name)
        return value

    fields = dict(doc)
    fields.setdefault("date", None)
    fields.setdefault("headline", None)
    fields["sources"] = [
        SourceLink(
            _str(s.get("name"), origin, f"sources[{i}].name", True),
            _str(s.get("url"), origin, f"sources[{i}].url", True),
        )
        for i, s in enumerate(listing("sources"))
    ]
    related = []
    for i, r in enumerate(listing("related")):
        contexts = r.get("contexts", [])
        headline = text(_str(r.get("headline"), origin, f"related[{i}].headline", True))
        url = _str(r.get("url"), origin, f"related[{i}].url", True)
        if isinstance(contexts, str):  # as the archive writes it: the store decides which parts form a name
            parts = context_parts(contexts)
            related.append(Related(headline, url, parts, ambiguous=len(parts) > 1))
            continue
        if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
            raise ParseError(origin, "must be a list of strings, or one string as written", f"related[{i}].contexts")
        related.append(Related(headline, url, tuple(text(c) for c in contexts if c.strip())))
    fields["related"] = related
    fields["changes"] = [
        Change(
            text(_str(c.get("headline"), origin, f"changes[{i}].headline", True)),
            _str(c.get("url"), origin, f"changes[{i}].url", True),
            _kind(_str(c.get("kind"), origin, f"changes[{i}].kind", True), origin, f"changes[{i}].kind"),
            _timestamp(_str(c.get("timestamp"), origin, f"changes[{i}].timestamp"), origin, f"changes[{i}].timestamp"),
        )
        for i, c in enumerate(listing("changes"))
    ]
    return _page(fields, path, origin)


def _child_text(element: Element, name: str) -> str | None:
    child = element.find(name)
    return None if child is None else "".join(child.itertext())


@guarded
def parse_event_xml(data: bytes, path: str, origin: str) -> Page:
    root = xml_root(data, origin, "event")
    sources = [
        SourceLink(
            _str(text("".join(s.itertext())), origin, f"sources/source[{i}]", True),
            _str(s.get("url"), origin, f"sources/source[{i}]/@url", True),
        )
        for i, s in enumerate(root.iterfind("sources/source"), 1)
    ]
    related = []
    for i, r in enumerate(root.iterfind("related/event"), 1):
        headline = text(_str(_child_text(r, "headline"), origin, f"related/event[{i}]/headline", True))
        url = _str(r.get("url"), origin, f"related/event[{i}]/@url", True)
        written = _child_text(r, "contexts")  # as the archive writes it: the store decides the names
        if written is not None:
            parts = context_parts(written)
            related.append(Related(headline, url, parts, ambiguous=len(parts) > 1))
        else:
            names = (text("".join(c.itertext())) for c in r.iterfind("context"))
            related.append(Related(headline, url, tuple(n for n in names if n)))
    changes = [
        Change(
            text(_str("".join(c.itertext()), origin, f"changes/change[{i}]", True)),
            _str(c.get("url"), origin, f"changes/change[{i}]/@url", True),
            _kind(c.get("kind", ""), origin, f"changes/change[{i}]/@kind"),
            _timestamp(c.get("timestamp", ""), origin, f"changes/change[{i}]/@timestamp"),
        )
        for i, c in enumerate(root.iterfind("changes/change"), 1)
    ]
    # The first usable image, as in a markdown page's sources.
    images = (cover_image(i.get("url")) for i in root.iterfind("image"))
    fields = {
        "date": root.get("date"),
        "heading": _child_text(root, "heading"),
        "headline": _child_text(root, "headline"),
        "summary": _child_text(root, "summary"),
        "image": next((url for url in images if url), None),
        "sources": sources,
        "related": related,
        "changes": changes,
    }
    return _page(fields, path, origin)
