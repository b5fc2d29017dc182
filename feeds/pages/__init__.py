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
from feeds.pages.wikitext import DEFAULT_VARIANT, plain, plain_listing, plain_page

EXTENSIONS = (".md", ".json", ".xml")
DAY_LISTING_NAMES = ("index", "readme")

Document = Page | DayListing


# What the readers make of a page: bumped by hand when that changes (as FOLDING and retime.TIMES
# are), so an edit that changes nothing read costs no re-read, and two installs never take turns.
READER_VERSION = "readers-2 (wiki markup read as text)"


def reader_stamp(variant: str) -> str:
    """What made a store's pages what they are: these readers, and the variant they resolved."""
    return f"{READER_VERSION}:{variant}"


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


def parse_document(relpath: str, data: bytes, origin: str | None = None, variant: str = DEFAULT_VARIANT) -> Document:
    """Parse the document at `relpath` (`news/YYYY/MM/D/slug.ext`); `origin` names it in errors."""
    return read_document(relpath, data, origin, variant).document


def read_document(relpath: str, data: bytes, origin: str | None = None, variant: str = DEFAULT_VARIANT) -> Reading:
    """Read the document at `relpath`; `origin` names it in errors and warnings. Wiki markup in
    its text (feeds.pages.wikitext) is read as text, language variants as `variant`."""
    origin = origin or relpath
    path = page_path(relpath)
    if path is None or not relpath.endswith(EXTENSIONS):
        raise ParseError(origin, "not a news/YYYY/MM/D/<slug>.md|json|xml path")
    with reading(origin):
        day = is_day_listing(relpath)
        if relpath.endswith((".json", ".xml")):
            json = relpath.endswith(".json")
            if day:
                return Reading(plain_listing((parse_day_json if json else parse_day_xml)(data, path, origin), variant))
            return Reading(plain_page((parse_event_json if json else parse_event_xml)(data, path, origin), variant))
        try:
            # Markup is resolved before lines are read: a context list is split after its names are text.
            source = plain(data.decode("utf-8-sig"), variant)
        except UnicodeDecodeError as exc:
            raise ParseError(origin, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        if day:
            return Reading(*read_day_markdown(source, path, origin))
        return Reading(*read_event_markdown(source, path, origin))
