"""Bounded input: a page over any of the configured limits is rejected whole (a cut page would
be served as if it were the source's), with the file, the field and the limit's setting name."""

from __future__ import annotations

from feeds.config import Limits
from feeds.errors import ParseError
from feeds.model import DayListing, Page


def check_size(size: int, limits: Limits, origin: str) -> None:
    if size > limits.max_document_bytes:
        raise ParseError(origin, over("bytes", size, "max_document_bytes", limits.max_document_bytes))


def check_page(page: Page, limits: Limits, origin: str) -> None:
    counts = (
        ("headline", "characters", len(page.headline), "max_headline_chars"),
        ("summary", "characters", len(page.summary), "max_summary_chars"),
        ("sources", "sources", len(page.sources), "max_sources"),
        ("related", "related events", len(page.related), "max_related"),
        ("related", "context names", sum(len(r.contexts) for r in page.related), "max_contexts"),
    )
    for field, what, count, setting in counts:
        limit: int = getattr(limits, setting)
        if count > limit:
            raise ParseError(origin, over(what, count, setting, limit), field)


def check_listing(listing: DayListing, limits: Limits, origin: str) -> None:
    """A listing's context names count as a page's topics do: an entry naming more than a page
    may is refused with the whole listing."""
    for i, entry in enumerate(listing.entries):
        count = len(entry.parts or entry.contexts)
        if count > limits.max_contexts:
            raise ParseError(
                origin, over("context names", count, "max_contexts", limits.max_contexts, "listing"), f"entries[{i}]"
            )


def over(what: str, count: int, setting: str, limit: int, kind: str = "page") -> str:
    return f"{count:,} {what}, over the limit {setting} = {limit:,}; {kind} rejected"
