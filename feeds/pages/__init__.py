"""Reading documents: one front door, `parse_document`, that picks the reader by file name.

bytes -> Page (an event version) or DayListing (a day's index). Pure; raises ParseError naming
the document and the field.
"""

from __future__ import annotations

from feeds.errors import ParseError
from feeds.ids import page_path
from feeds.model import DayListing, Page
from feeds.pages.markdown import parse_day_markdown, parse_event_markdown
from feeds.pages.structured import parse_event_json, parse_event_xml

EXTENSIONS = (".md", ".json", ".xml")
DAY_LISTING_NAMES = ("index", "readme")

Document = Page | DayListing


def is_day_listing(relpath: str) -> bool:
    stem = relpath.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return stem.casefold() in DAY_LISTING_NAMES


def is_document(relpath: str) -> bool:
    return relpath.endswith(EXTENSIONS) and page_path(relpath) is not None


def parse_document(relpath: str, data: bytes, origin: str | None = None) -> Document:
    """Parse the document at `relpath` (`news/YYYY/MM/D/slug.ext`); `origin` names it in errors."""
    origin = origin or relpath
    path = page_path(relpath)
    if path is None or not relpath.endswith(EXTENSIONS):
        raise ParseError(origin, "not a news/YYYY/MM/D/<slug>.md|json|xml path")
    if relpath.endswith(".json"):
        return parse_event_json(data, path, origin)
    if relpath.endswith(".xml"):
        return parse_event_xml(data, path, origin)
    try:
        source = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(origin, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if is_day_listing(relpath):
        return parse_day_markdown(source, path, origin)
    return parse_event_markdown(source, path, origin)
