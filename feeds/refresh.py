"""Refresh: changed documents -> store -> publish the feeds they touched.

A malformed document is reported with its origin and skipped; the rest of the batch is stored. A
document read with a part left out (an unknown section) is stored, and the warning reported with
those problems. A source that fails is reported and the others go on; what was stored before stays
served.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from feeds.config import Limits, Settings, SourceConfig
from feeds.errors import FeedsError, ParseError, StoreError
from feeds.metrics import SOURCE_FAILURES
from feeds.model import Page, utcnow
from feeds.pages import guard, read_document, reader_stamp
from feeds.pages.limits import check_listing, check_page, check_size
from feeds.process import tune_gc
from feeds.publish import Memos, publish_changes
from feeds.publish.plan import tombstone_horizon
from feeds.sources import Collected, Document, Source, open_source
from feeds.store import BatchResult, Incoming, IncomingListing, Store

log = logging.getLogger("feeds.refresh")
DEFAULT_LIMITS = Limits()

BATCH_SIZE = 2000
# In meta: the tombstone horizon the documents were last published with.
HORIZON_KEY = "tombstone_horizon"
# Batches per transaction in a bulk load: fewer commits, the lock held a few seconds (docs/architecture.md).
BULK_COMMIT = 4


@dataclass
class Report:
    """What one refresh did, for logs and the CLI."""

    result: BatchResult = field(default_factory=BatchResult)
    problems: list[str] = field(default_factory=list)
    failed_sources: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # relpaths that did not parse
    rendered: int = 0

    def lines(self) -> list[str]:
        files = "feed file" if self.rendered == 1 else "feed files"
        out = [f"{self.result.summary()}; {self.rendered} {files} re-rendered"]
        out += [f"problem: {p}" for p in self.problems]
        out += [f"unlisted: {path}: {why}" for path, why in sorted(self.result.unlisted.items())]
        out += [f"source failed: {s}" for s in self.failed_sources]
        return out


@dataclass
class Parsed:
    """One batch of documents, parsed: pages to store, day listings (origin, the page paths they
    list), what did not parse and what was left out of what did (`problems`, as text)."""

    pages: list[Incoming] = field(default_factory=list)
    listings: list[IncomingListing] = field(default_factory=list)
    days: list[tuple[str, list[str]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # relpaths


def parse_documents(documents: Iterable[Document], source: str, limits: Limits = DEFAULT_LIMITS) -> Parsed:
    """Pure, and picklable both ways: a bulk ingest runs it in worker processes."""
    out = Parsed()
    for doc in documents:
        try:
            if doc.problem is not None:
                raise ParseError(doc.origin, doc.problem)
            check_size(len(doc.data), limits, doc.origin)
            reading = read_document(doc.relpath, doc.data, doc.origin, limits.variant)
            parsed = reading.document
            if isinstance(parsed, Page):
                check_page(parsed, limits, doc.origin)
                incoming = Incoming(parsed, doc.relpath, source)
                with guard.reading(doc.origin):  # what is stored is made here, from untrusted text
                    incoming.prepare()
            else:
                check_listing(parsed, limits, doc.origin)
        except ParseError as exc:
            out.problems.append(str(exc))
            out.failed.append(doc.relpath)
            continue
        out.problems += map(str, reading.warnings)
        if isinstance(parsed, Page):
            out.pages.append(incoming)
        else:
            out.listings.append(IncomingListing(parsed, doc.relpath, source))
            out.days.append((doc.origin, [e.path for e in parsed.entries]))
    # Sorted by path (= by date): events get their arrival order in date order.
    out.pages.sort(key=lambda p: p.page.path)
    return out


async def check_day_listings(store: Store, days: list[tuple[str, list[str]]], problems: list[str]) -> None:
    """An event a day listing names whose page is in no source is reported with both paths."""
    for origin, listed in days:
        known = await store.page_sources(listed)
        problems += [f"{origin}: lists {path}, which no source has" for path in listed if path not in known]


# From this many documents on, parsing runs in other processes while this one stores: parsing and
# storing are both Python, so threads would take turns on one core.
PARALLEL_FROM = 4 * BATCH_SIZE


async def ingest(
    store: Store,
    source: str,
    collected: Collected,
    progress: Callable[[int], None] | None = None,
    processes: int = 1,
    limits: Limits = DEFAULT_LIMITS,
) -> Report:
    """Read, parse and store what a source collected, a batch (one transaction) at a time, so
    memory holds a few batches of documents however large the source. With `processes` > 1 and a
    large collection, batches are parsed by `processes - 1` worker processes, a few ahead of the
    one being stored."""
    report = Report(problems=list(collected.problems))
    if await store.meta(READER_KEY) is None and await store.newest_date() is None:
        await store.set_meta({READER_KEY: reader_stamp(limits.variant)})  # a new store: read by these readers
    documents = iter(collected.documents)
    days: list[tuple[str, list[str]]] = []
    loop = asyncio.get_running_loop()
    pool = None
    if processes > 1 and (collected.expected or 0) >= PARALLEL_FROM:
        pool = ProcessPoolExecutor(processes - 1, mp_context=multiprocessing.get_context("spawn"), initializer=tune_gc)
    ahead = 2 * (processes - 1) if pool else 1

    def read_batch() -> list[Document]:
        return list(itertools.islice(documents, BATCH_SIZE))

    # Reading runs ahead of storing (files are read while the previous batch is written, not
    # after it): on a busy disk a read waits behind the writes. At most `ahead` batches wait to be
    # stored beside the one being read; the queue itself never blocks, so the reader can always
    # say it is done.
    room = asyncio.Semaphore(ahead + 1)
    ready: asyncio.Queue[tuple[int, asyncio.Future[Parsed]] | None] = asyncio.Queue()

    async def read_ahead() -> None:
        try:
            while True:
                await room.acquire()
                chunk = await asyncio.to_thread(read_batch)  # off the event loop: a server keeps answering
                if not chunk:
                    return
                if pool:
                    parsing = loop.run_in_executor(pool, parse_documents, chunk, source, limits)
                else:
                    parsing = asyncio.ensure_future(asyncio.to_thread(parse_documents, chunk, source, limits))
                ready.put_nowait((len(chunk), parsing))
        finally:
            ready.put_nowait(None)

    reader = asyncio.create_task(read_ahead())
    try:
        async with store.bulk(BULK_COMMIT) if pool else contextlib.nullcontext():
            while (item := await ready.get()) is not None:
                count, parsing = item
                parsed = await parsing
                report.problems += parsed.problems
                report.failed += parsed.failed
                report.result.merge(await store.apply(parsed.pages, listings=parsed.listings))
                room.release()
                days += parsed.days
                if progress:
                    progress(count)
        await reader  # a failure to read is raised here
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        left: list[asyncio.Future[Parsed]] = []
        while not ready.empty():
            if (item := ready.get_nowait()) is not None:
                left.append(item[1])
        for parsing in left:
            parsing.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        if pool:
            pool.shutdown(cancel_futures=True)
    if collected.deleted:
        report.result.merge(await store.apply([], deleted=collected.deleted, deleted_at=collected.deleted_at))
    await check_day_listings(store, days, report.problems)
    for url, etag, last_modified in collected.validators:
        await store.save_fetch(url, etag, last_modified, None)
    return report


async def refresh_source(store: Store, source: Source, limits: Limits = DEFAULT_LIMITS) -> Report:
    return await settle(store, source, await source.collect(store), limits=limits)


async def settle(
    store: Store,
    source: Source,
    collected: Collected,
    progress: Callable[[int], None] | None = None,
    processes: int = 1,
    limits: Limits = DEFAULT_LIMITS,
) -> Report:
    """Store what `source` collected, then move the source on: its cursor, the files it has seen."""
    report = await ingest(store, source.name, collected, progress, processes, limits)
    if collected.cursor is not None:
        await store.set_cursor(source.name, collected.cursor)
    commit = getattr(source, "commit", None)  # a directory source: the files it has read
    if commit:
        await commit(store, report.failed)
    return report


async def refresh_all(
    store: Store,
    settings: Settings,
    sources: list[Source],
    memos: Memos | None = None,
    failing: dict[str, int] | None = None,
) -> Report:
    """One scheduled run: every source, then every touched feed re-rendered. `failing` (kept by
    the caller from run to run: source name -> failed runs in a row) makes a source that keeps
    failing logged when it starts failing and when it recovers, not at every run."""
    total = Report()
    await reread_if_read_otherwise(store, settings, sources)
    for source in sources:
        try:
            report = await refresh_source(store, source, settings.limits)
        except StoreError:
            raise  # the store's failure (a full disk, damage), not the source's: the whole run stops
        except (FeedsError, OSError) as exc:
            SOURCE_FAILURES.labels(source.name).inc()
            runs = 1
            if failing is not None:
                runs = failing[source.name] = failing.get(source.name, 0) + 1
            if runs == 1:
                log.warning("refresh: source %s failing: %s", source.name, exc)
            else:
                log.debug("refresh: source %s still failing (%d runs): %s", source.name, runs, exc)
            total.failed_sources.append(f"{source.name}: {exc}")
            await store.note_source(source.name, str(exc), utcnow())
            continue
        await store.note_source(source.name, None, utcnow())
        if failing and (runs := failing.pop(source.name, 0)):
            log.info("refresh: source %s recovered after %d failed run(s)", source.name, runs)
        total.result.merge(report.result)
        total.problems += report.problems
    for problem in total.problems:
        log.warning("refresh: %s", problem)
    for path, why in sorted(total.result.unlisted.items()):
        log.warning("refresh: unlisted: %s: %s", path, why)
    return await publish_report(store, settings, total, memos=memos)


READER_KEY = "reader"


async def reread_if_read_otherwise(store: Store, settings: Settings, sources: list[Source]) -> bool:
    """A store whose pages other readers read (older code, another `variant`) heals: every
    source forgets how far it read and reads every document again, which stores each page as
    these readers read it (a new, empty store is only stamped). Returns whether sources read again."""
    stamp, stored = reader_stamp(settings.variant), await store.meta(READER_KEY)
    if stored == stamp:
        return False
    again = stored is not None or await store.newest_date() is not None
    if again:
        log.info("refresh: pages were read by other readers: every source reads every document again")
        await store.forget_sources()
        for source in sources:
            if forget := getattr(source, "forget", None):
                forget()
    await store.set_meta({READER_KEY: stamp})
    return again


async def publish_report(
    store: Store,
    settings: Settings,
    report: Report,
    progress: Callable[[int], object] | None = None,
    processes: int = 1,
    memos: Memos | None = None,
) -> Report:
    """After storing: render every feed the stored changes touched, and the feeds whose
    tombstones' window closed since the last publish (they leave those feeds). The window ends
    where the archive's newest time says (`tombstone_horizon`), so it moves with the archive."""
    horizon = await tombstone_horizon(store, settings)
    last = await store.meta(HORIZON_KEY)
    expiring = set()
    if last is not None and dt.datetime.fromisoformat(last) < horizon:
        expiring = await store.feeds_of_tombstones_expiring(dt.datetime.fromisoformat(last), horizon)
    report.rendered = await publish_changes(
        store,
        settings,
        report.result.feeds | expiring,
        report.result.events,
        progress=progress,
        processes=processes,
        renamed=report.result.renamed | report.result.reslotted,
        memos=memos,
    )
    if last != horizon.isoformat():
        await store.set_meta({HORIZON_KEY: horizon.isoformat()})
    return report


def open_sources(configs: Iterable[SourceConfig]) -> list[Source]:
    return [open_source(c) for c in configs]
