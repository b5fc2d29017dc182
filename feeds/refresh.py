"""Refresh: changed documents -> store -> publish the feeds they touched.

A malformed document is reported with its origin and skipped; the rest of the batch is stored. A
source that fails is reported and the others go on; what was stored before stays served.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from feeds.config import Settings, SourceConfig
from feeds.errors import FeedsError, ParseError
from feeds.model import DayListing, Page
from feeds.pages import parse_document
from feeds.publish import publish_changes
from feeds.sources import Collected, Document, Source, open_source
from feeds.store import BatchResult, Incoming, Store

log = logging.getLogger("feeds.refresh")

BATCH_SIZE = 2000


@dataclass
class Report:
    """What one refresh did, for logs and the CLI."""

    result: BatchResult = field(default_factory=BatchResult)
    problems: list[str] = field(default_factory=list)
    failed_sources: list[str] = field(default_factory=list)
    rendered: int = 0

    def lines(self) -> list[str]:
        out = [f"{self.result.summary()}; {self.rendered} feed files re-rendered"]
        out += [f"problem: {p}" for p in self.problems]
        out += [f"source failed: {s}" for s in self.failed_sources]
        return out


def parse_documents(
    documents: Iterable[Document], source: str, problems: list[str]
) -> tuple[list[Incoming], list[tuple[DayListing, str]]]:
    pages: list[Incoming] = []
    days: list[tuple[DayListing, str]] = []
    for doc in documents:
        try:
            parsed = parse_document(doc.relpath, doc.data, doc.origin)
        except ParseError as exc:
            problems.append(str(exc))
            continue
        if isinstance(parsed, Page):
            pages.append(Incoming(parsed, doc.relpath, source))
        else:
            days.append((parsed, doc.origin))
    return pages, days


async def check_day_listings(store: Store, days: list[tuple[DayListing, str]], problems: list[str]) -> None:
    """An event a day listing names whose page is in no source is reported with both paths."""
    for day, origin in days:
        listed = [e.path for e in day.entries]
        known = await store.page_sources(listed)
        for path in listed:
            if path not in known:
                problems.append(f"{origin}: lists {path}, which no source has")


async def ingest(
    store: Store,
    source: str,
    collected: Collected,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Parse and store what a source collected, in batches of one transaction each."""
    report = Report(problems=list(collected.problems))
    pages, days = parse_documents(collected.documents, source, report.problems)
    for start in range(0, len(pages), BATCH_SIZE):
        chunk = pages[start : start + BATCH_SIZE]
        report.result.merge(await store.apply(chunk))
        if progress:
            progress(len(chunk))
    if collected.deleted:
        report.result.merge(await store.apply([], deleted=collected.deleted))
    await check_day_listings(store, days, report.problems)
    return report


async def refresh_source(store: Store, source: Source) -> Report:
    collected = await source.collect(store)
    report = await ingest(store, source.name, collected)
    if collected.cursor is not None:
        await store.set_cursor(source.name, collected.cursor)
    forget = getattr(source, "forget", None)
    if forget and report.problems:
        forget([d.relpath for d in collected.documents if any(d.origin in p for p in report.problems)])
    return report


async def refresh_all(store: Store, settings: Settings, sources: list[Source]) -> Report:
    """One scheduled run: every source, then every touched feed re-rendered."""
    total = Report()
    for source in sources:
        try:
            report = await refresh_source(store, source)
        except (FeedsError, OSError) as exc:
            log.warning("refresh: %s", exc)
            total.failed_sources.append(f"{source.name}: {exc}")
            continue
        total.result.merge(report.result)
        total.problems += report.problems
    for problem in total.problems:
        log.warning("refresh: %s", problem)
    total.rendered = await publish_changes(store, settings, total.result.feeds, total.result.events)
    return total


def open_sources(configs: Iterable[SourceConfig]) -> list[Source]:
    return [open_source(c) for c in configs]
