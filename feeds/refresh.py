"""Refresh: changed documents -> store -> re-render the feeds they touched -> compress once -> store.

A malformed document is reported with its origin and skipped; the rest of the batch is stored. A
source that fails is reported and the others go on; what was stored before stays served.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import brotli

from feeds.config import Settings, SourceConfig
from feeds.errors import FeedsError, ParseError
from feeds.ids import page_path
from feeds.model import FORMATS, DayListing, Event, FeedKey, Page, Rendition, utcnow
from feeds.pages import parse_document
from feeds.render import CONTENT_TYPES, Entry, FeedInfo, Renderer, renderers
from feeds.render.topics import TOPICS_DOC, topics_document
from feeds.render.content import event_html, plain_summary, resolver
from feeds.sources import Collected, Document, Source, open_source
from feeds.store import BatchResult, Incoming, Store

log = logging.getLogger("feeds.refresh")

BATCH_SIZE = 2000
DATE_FEED_LIMIT = 1000  # a day of the portal has tens of events; this only bounds a pathological day
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


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
    total.rendered = await render_feeds(store, settings, total.result.feeds)
    return total


def open_sources(configs: Iterable[SourceConfig]) -> list[Source]:
    return [open_source(c) for c in configs]


# ----- rendering ---------------------------------------------------------------------------------


def etag_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


def encode(feed: str, fmt: str, body: bytes, last_modified: dt.datetime) -> Rendition:
    """Every representation of one feed version, made once: plain, gzip, Brotli."""
    return Rendition(
        feed=feed,
        fmt=fmt,
        body=body,
        gzip=gzip.compress(body, compresslevel=9, mtime=0),
        br=brotli.compress(body, quality=6),  # q11 is 30x slower for ~12% smaller feeds
        etag=etag_of(body),
        last_modified=last_modified,
        content_type=CONTENT_TYPES[fmt],
    )


def link_for(settings: Settings, event: Event) -> str | None:
    for source in settings.sources:
        if source.name == event.source and source.link:
            return source.link.format(path=event.relpath.rsplit(".", 1)[0])
    return None


async def feed_info(store: Store, settings: Settings, key: FeedKey, events: list[Event]) -> FeedInfo | None:
    """Title, links and dates of a feed; None when the feed has nothing to show and no tombstones."""
    since = utcnow() - dt.timedelta(days=settings.tombstone_days)
    deleted = tuple(await store.deleted_events(key, since))
    if not events and not deleted and key.kind != "latest":
        return None
    if key.kind == "latest":
        title, description = settings.title, f"{settings.title}: the newest events"
    elif key.kind == "date":
        title, description = f"{settings.title}: {key.value}", f"Events of {key.value} (UTC)"
    else:
        topic = await store.topic(key.value)
        if topic is None:
            return None
        title, description = f"{settings.title}: {topic.name}", f"Events about {topic.name}"
    changes = [e.updated for e in events] + [e.deleted for e in deleted if e.deleted]
    return FeedInfo(
        name=key.name,
        title=title,
        description=description,
        base_url=settings.base_url,
        updated=max(changes, default=EPOCH),
        ttl_minutes=max(1, settings.refresh_interval // 60),
        author=settings.author,
        deleted=deleted,
    )


async def entries_for(store: Store, settings: Settings, events: list[Event]) -> list[Entry]:
    related = {r.url for e in events for r in e.page.related}
    paths = {p for u in related if (p := page_path(u))}
    found = await store.resolve_links(paths)
    urls: dict[str, str] = {}
    for path, (relpath, source) in found.items():
        for cfg in settings.sources:
            if cfg.name == source and cfg.link:
                urls[path] = cfg.link.format(path=relpath.rsplit(".", 1)[0])
    entries = []
    for event in events:
        site = next((c.location for c in settings.sources if c.name == event.source and c.kind == "http"), None)
        resolve = resolver(site, urls)
        entries.append(Entry(event, link_for(settings, event), event_html(event, resolve), plain_summary(event)))
    return entries


async def render_feed(store: Store, settings: Settings, name: str, table: dict[str, Renderer] | None = None) -> int:
    """Render one feed in every format; store only what changed. Returns how many were stored."""
    key = FeedKey.parse(name)
    limit = DATE_FEED_LIMIT if key.kind == "date" else settings.items_per_feed
    events = await store.events(key, limit)
    info = await feed_info(store, settings, key, events)
    if info is None:
        await store.delete_renditions(name)
        return 0
    entries = await entries_for(store, settings, events)
    table = table or renderers()
    stored = 0
    current = await store.rendition_etags(name)
    for fmt in FORMATS:
        body = await asyncio.to_thread(table[fmt], info, entries)
        if current.get(fmt) == etag_of(body):
            continue
        rendition = await asyncio.to_thread(encode, name, fmt, body, info.updated)
        await store.put_rendition(rendition)
        stored += 1
    return stored


async def render_feeds(store: Store, settings: Settings, names: Iterable[str]) -> int:
    table = renderers()
    total = 0
    wanted = sorted(set(names))
    for name in wanted:
        total += await render_feed(store, settings, name, table)
    if any(n.startswith("topics/") for n in wanted) or not await store.rendition_etags(TOPICS_DOC):
        total += await render_topics(store, settings)
    return total


async def render_topics(store: Store, settings: Settings) -> int:
    rows = await store.topics()
    body = topics_document(settings.base_url, rows)
    if (await store.rendition_etags(TOPICS_DOC)).get("json") == etag_of(body):
        return 0
    updated = max((r.updated for r in rows if r.updated), default=EPOCH)
    rendition = encode(TOPICS_DOC, "json", body, updated)
    await store.put_rendition(replace(rendition, content_type="application/json; charset=utf-8"))
    return 1


async def render_all(store: Store, settings: Settings) -> int:
    return await render_feeds(store, settings, await store.feed_names())
