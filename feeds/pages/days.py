"""The JSON and XML shapes of a day listing (`index.json`, `index.xml`), as the site serves them
(feeds/pages/write.py): the day, the listed events with their headline, heading, summary and
context names, and the previous day. Checked field by field, like an event page."""

from __future__ import annotations

from typing import Any

from feeds.errors import ParseError
from feeds.ids import page_path
from feeds.model import DayEntry, DayListing
from feeds.pages.guard import guarded
from feeds.pages.markdown import parse_date, text
from feeds.pages.structured import _child_text, _str, json_object, xml_root


def _target(url: str, origin: str, field: str) -> str:
    target = page_path(url)
    if target is None:
        raise ParseError(origin, f"not a /news/ path: {url[:120]!r}", field)
    return target


def _listing(date: Any, entries: list[DayEntry], previous: Any, path: str, origin: str) -> DayListing:
    day = parse_date(_str(date, origin, "date", required=True), origin)
    before = _str(previous, origin, "previous")
    return DayListing(path, day, tuple(entries), _target(before, origin, "previous") if before else None)


@guarded
def parse_day_json(data: bytes, path: str, origin: str) -> DayListing:
    doc = json_object(data, origin)
    if not isinstance(doc.get("events", []), list):
        raise ParseError(origin, "must be a list of events", "events")
    entries = []
    for i, e in enumerate(doc.get("events", [])):
        field = f"events[{i}]"
        if not isinstance(e, dict):
            raise ParseError(origin, "must be an object", field)
        contexts = e.get("contexts", [])
        if not isinstance(contexts, list):
            raise ParseError(origin, "must be a list of names", f"{field}.contexts")
        entries.append(
            DayEntry(
                headline=text(_str(e.get("headline"), origin, f"{field}.headline", True)),
                path=_target(_str(e.get("url"), origin, f"{field}.url", True), origin, f"{field}.url"),
                heading=text(_str(e.get("heading"), origin, f"{field}.heading")) or None,
                summary=text(_str(e.get("summary"), origin, f"{field}.summary")),
                contexts=tuple(
                    n for j, c in enumerate(contexts) if (n := text(_str(c, origin, f"{field}.contexts[{j}]")))
                ),
            )
        )
    return _listing(doc.get("date"), entries, doc.get("previous"), path, origin)


@guarded
def parse_day_xml(data: bytes, path: str, origin: str) -> DayListing:
    root = xml_root(data, origin, "day")
    entries = []
    for i, e in enumerate(root.iterfind("event"), 1):
        field = f"event[{i}]"
        entries.append(
            DayEntry(
                headline=text(_str(_child_text(e, "headline"), origin, f"{field}/headline", True)),
                path=_target(_str(e.get("url"), origin, f"{field}/@url", True), origin, f"{field}/@url"),
                heading=text(_child_text(e, "heading") or "") or None,
                summary=text(_child_text(e, "summary") or ""),
                contexts=tuple(n for c in e.iterfind("context") if (n := text("".join(c.itertext())))),
            )
        )
    return _listing(root.get("date"), entries, root.get("previous"), path, origin)
