"""Refresh: changed documents -> store -> publish the feeds they touched.

A malformed document is reported with its origin and skipped; the rest of the batch is stored. A
source that fails is reported and the others go on; what was stored before stays served.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from feeds.config import Settings, SourceConfig
from feeds.errors import FeedsError, ParseError
from feeds.model import Page, utcnow
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
    failed: list[str] = field(default_factory=list)  # relpaths that did not parse
    rendered: int = 0

    def lines(self) -> list[str]:
        out = [f"{self.result.summary()}; {self.rendered} feed files re-rendered"]
        out += [f"problem: {p}" for p in self.problems]
        out += [f"source failed: {s}" for s in self.failed_sources]
        return out


def parse_documents(
    documents: Iterable[Document], source: str, report: Report
) -> tuple[list[Incoming], list[tuple[str, list[str]]]]:
    """Pages to store and, for each day listing, (its origin, the page paths it lists)."""
    pages: list[Incoming] = []
    days: list[tuple[str, list[str]]] = []
    for doc in documents:
        try:
            parsed = parse_document(doc.relpath, doc.data, doc.origin)
        except ParseError as exc:
            report.problems.append(str(exc))
            report.failed.append(doc.relpath)
            continue
        if isinstance(parsed, Page):
            pages.append(Incoming(parsed, doc.relpath, source))
        else:
            days.append((doc.origin, [e.path for e in parsed.entries]))
    return pages, days


async def check_day_listings(store: Store, days: list[tuple[str, list[str]]], problems: list[str]) -> None:
    """An event a day listing names whose page is in no source is reported with both paths."""
    for origin, listed in days:
        known = await store.page_sources(listed)
        problems += [f"{origin}: lists {path}, which no source has" for path in listed if path not in known]


async def ingest(
    store: Store,
    source: str,
    collected: Collected,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Read, parse and store what a source collected, a batch (one transaction) at a time, so
    memory holds one batch of documents however large the source."""
    report = Report(problems=list(collected.problems))
    documents = iter(collected.documents)
    days: list[tuple[str, list[str]]] = []

    def next_batch() -> tuple[int, list[Incoming], list[tuple[str, list[str]]]]:
        chunk = list(itertools.islice(documents, BATCH_SIZE))
        return (len(chunk), *parse_documents(chunk, source, report))

    while True:
        # Reading and parsing run off the event loop: a server keeps answering during a refresh.
        count, pages, listed = await asyncio.to_thread(next_batch)
        if not count:
            break
        # Sorted by path (= by date): events get their arrival order in date order.
        report.result.merge(await store.apply(sorted(pages, key=lambda p: p.page.path)))
        days += listed
        if progress:
            progress(count)
    if collected.deleted:
        report.result.merge(await store.apply([], deleted=collected.deleted))
    await check_day_listings(store, days, report.problems)
    for url, etag, last_modified in collected.validators:
        await store.save_fetch(url, etag, last_modified, None)
    return report


async def refresh_source(store: Store, source: Source) -> Report:
    return await settle(store, source, await source.collect(store))


async def settle(
    store: Store, source: Source, collected: Collected, progress: Callable[[int], None] | None = None
) -> Report:
    """Store what `source` collected, then move the source on: its cursor, the files it has seen."""
    report = await ingest(store, source.name, collected, progress)
    if collected.cursor is not None:
        await store.set_cursor(source.name, collected.cursor)
    commit = getattr(source, "commit", None)
    if commit:
        commit()
    forget = getattr(source, "forget", None)
    if forget and report.failed:
        forget(report.failed)
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
    # Tombstones whose window closed since about the last run leave their feeds.
    window = dt.timedelta(days=settings.tombstone_days)
    now = utcnow()
    expiring = await store.feeds_of_tombstones_expiring(
        now - window - dt.timedelta(seconds=2 * settings.refresh_interval), now - window
    )
    total.rendered = await publish_changes(store, settings, total.result.feeds | expiring, total.result.events)
    return total


def open_sources(configs: Iterable[SourceConfig]) -> list[Source]:
    return [open_source(c) for c in configs]
