"""Reading documents: one front door, `read_document`, that picks the reader by file name.

bytes -> Page (an event version) or DayListing (a day's index), with warnings about what the
reader left out. Pure; raises only ParseError, naming the document and the field (feeds.pages.guard). `parse_document`
is the same without the warnings.
"""

from __future__ import annotations

from dataclasses import dataclass

from feeds.errors import ParseError, ParseWarning
from feeds.ids import page_path
from feeds.model import DayListing, Page
from feeds.pages.days import parse_day_json, parse_day_xml
from feeds.pages.guard import reading
from feeds.pages.markdown import read_day_markdown, read_event_markdown
from feeds.pages.structured import parse_event_json, parse_event_xml

EXTENSIONS = (".md", ".json", ".xml")
DAY_LISTING_NAMES = ("index", "readme")

Document = Page | DayListing


@dataclass(frozen=True)
class Reading:
    """A document as read, and what was left out of it (picklable: batches are read in worker
    processes)."""

    document: Document
    warnings: tuple[ParseWarning, ...] = ()


def is_day_listing(relpath: str) -> bool:
    stem = relpath.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return stem.casefold() in DAY_LISTING_NAMES


def is_document(relpath: str) -> bool:
    return relpath.endswith(EXTENSIONS) and page_path(relpath) is not None


def parse_document(relpath: str, data: bytes, origin: str | None = None) -> Document:
    """Parse the document at `relpath` (`news/YYYY/MM/D/slug.ext`); `origin` names it in errors."""
    return read_document(relpath, data, origin).document


def read_document(relpath: str, data: bytes, origin: str | None = None) -> Reading:
    """Read the document at `relpath`; `origin` names it in errors and warnings."""
    origin = origin or relpath
    path = page_path(relpath)
    if path is None or not relpath.endswith(EXTENSIONS):
        raise ParseError(origin, "not a news/YYYY/MM/D/<slug>.md|json|xml path")
    with reading(origin):
        day = is_day_listing(relpath)
        if relpath.endswith(".json"):
            return Reading(parse_day_json(data, path, origin) if day else parse_event_json(data, path, origin))
        if relpath.endswith(".xml"):
            return Reading(parse_day_xml(data, path, origin) if day else parse_event_xml(data, path, origin))
        try:
            source = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ParseError(origin, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        if day:
            return Reading(*read_day_markdown(source, path, origin))
        return Reading(*read_event_markdown(source, path, origin))
