"""Publishing: events in the store -> rendered feeds -> every encoding, made once -> the store.

Which documents exist and how they link (RFC 5005):
- `latest`: the newest `items_per_feed` events; `prev-archive` -> the newest date.
- `dates/D`: an archive document (`fh:archive`) of every event of day D, `prev-archive` /
  `next-archive` -> the nearest days with events, `current` -> latest.
- `topics/S`: a paged feed. Events join a topic in arrival order and keep their slot; slots are cut
  into pages of `items_per_feed` from the oldest, so a page's members never change when newer
  events arrive. The head (`topics/S`, what people subscribe to) holds the last complete page plus
  the incomplete one (N to 2N-1 slots); `next` walks to older pages `topics/S/pages/K-1` ... `1`.
A document is stored only when its bytes change, so an unchanged feed keeps ETag and Last-Modified.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import brotli
from isal import igzip

from feeds import fingerprint
from feeds.config import Settings
from feeds.entries import (
    EntryMemo,
    NewEntry,
    gather_entries,
    make_ahead,
    make_entries,
    memo_for,
    plan_entries,
    spans_of,
)
from feeds.model import FORMATS, FeedKey, Member, Rendition, utcnow
from feeds.process import few_malloc_arenas, tune_gc
from feeds.render import CONTENT_TYPES, FeedInfo, Format, formats
from feeds.render.topics import TOPICS_DOC, IndexMemo, topics_document
from feeds.store import Store

log = logging.getLogger(__name__)

# Documents published at once: all of a refresh's usually (they wait for the store and for
# compression threads more than for the interpreter).
PUBLISH_CONCURRENCY = 8
AHEAD = 100  # a refresh changing at most this many events makes their entries first
DATE_FEED_LIMIT = 1000  # a day of the portal has tens of events; this only bounds a pathological day


def etag_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


# Measured on the documents of a refresh at 400,000 events (benchmarks/README.md): ISA-L gzip
# level 2 is 3x faster than level 3 for 3% more bytes; Brotli quality 3 takes 64% of quality
# 4's time for 4% more bytes (5 takes 1.6x for 7% fewer). Compression is most of the CPU of
# publishing a refresh (three formats, two encodings each), which readers wait for.
GZIP_LEVEL = 2
BROTLI_QUALITY = 3


def encode(
    feed: str,
    fmt: str,
    body: bytes,
    last_modified: dt.datetime,
    content_type: str | None = None,
    spans: bytes = b"",
    etag: str | None = None,
) -> Rendition:
    """Every representation of one document version, made once: plain, gzip, Brotli."""
    return Rendition(
        feed=feed,
        fmt=fmt,
        body=body,
        gzip=igzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0),
        br=brotli.compress(body, quality=BROTLI_QUALITY),
        etag=etag or etag_of(body),
        last_modified=last_modified,
        content_type=content_type or CONTENT_TYPES[fmt],
        spans=spans,
    )


@dataclass(frozen=True)
class Paging:
    """Where a topic's pages start and end, for N items per page and M slots."""

    slots: int
    size: int

    @property
    def archive_pages(self) -> int:
        """Complete pages before the head (numbered 1 = oldest .. archive_pages)."""
        return max(0, self.slots // self.size - 1)

    def bounds(self, page: int) -> tuple[int, int]:
        if page == 0:
            return self.archive_pages * self.size, self.slots
        return (page - 1) * self.size, page * self.size

    def page_of(self, slot: int) -> int:
        page = slot // self.size + 1
        return page if page <= self.archive_pages else 0

    def links(self, slug: str, page: int) -> dict[str, str]:
        def name(p: int) -> str:
            return FeedKey("topic", slug, p).name

        links = {"first": name(0)}
        if self.archive_pages:
            links["last"] = name(1)
        older = self.archive_pages if page == 0 else page - 1
        if older >= 1:
            links["next"] = name(older)
        if page:
            links["previous"] = name(page + 1 if page < self.archive_pages else 0)
        return links


# A bulk publishing process's own memo: entries of the stretch of time it is publishing (the
# documents showing an event come close together in arrival order); older ones are read back.
BULK_MEMO_BYTES = 48 << 20


async def describe(store: Store, settings: Settings, key: FeedKey) -> tuple[FeedInfo, list[Member]] | None:
    """What a feed holds and how it links; None when it has nothing to show, not even a tombstone."""
    since = utcnow() - dt.timedelta(days=settings.tombstone_days)
    links: dict[str, str] = {}
    archive = False
    if key.kind == "latest":
        members = await store.members(key, settings.items_per_feed)
        deleted = await store.tombstones(key, since)
        newest = await store.newest_date()
        if newest:
            links["prev-archive"] = FeedKey("date", newest).name
        title, description = settings.title, f"{settings.title}: the newest events"
    elif key.kind == "date":
        members = await store.members(key, DATE_FEED_LIMIT)
        deleted = await store.tombstones(key, since)
        before, after = await store.neighbour_dates(key.value)
        links = {"current": "latest"}
        if before:
            links["prev-archive"] = FeedKey("date", before).name
        if after:
            links["next-archive"] = FeedKey("date", after).name
        archive = True
        title, description = f"{settings.title}: {key.value}", f"Events of {key.value} (UTC)"
    else:
        topic = await store.topic(key.value)
        if topic is None:
            return None
        paging = Paging(topic.slots, settings.items_per_feed)
        if key.page > paging.archive_pages:
            return None
        members, deleted = await store.topic_slot_members(key.value, *paging.bounds(key.page))
        deleted = [t for t in deleted if t.deleted >= since]
        links = paging.links(key.value, key.page)
        page_note = f" (page {key.page} of {paging.archive_pages}, oldest first)" if key.page else ""
        title = f"{settings.title}: {topic.name}{page_note}"
        description = f"Events about {topic.name}{page_note}"
    if not members and not deleted and key.kind != "latest":
        return None
    changes = [m.updated for m in members] + [t.deleted for t in deleted]
    info = FeedInfo(
        name=key.name,
        title=title,
        description=description,
        base_url=settings.base_url,
        updated=max(changes) if changes else await store.created(),
        ttl_minutes=fingerprint.ttl_minutes(settings),
        author=settings.author,
        language=settings.feed_language,
        links=links,
        archive=archive,
        deleted=tuple(deleted),
    )
    return info, members


class Writer:
    """New renditions gathered and stored a batch at a time: one write transaction for many
    documents (each costs a commit otherwise), and the documents of one refresh appear together."""

    def __init__(self, store: Store, max_bytes: int = 16 << 20) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self._pending: list[Rendition] = []
        self._entries: list[NewEntry] = []
        self._spans: list[Spans] = []
        self._size = 0

    async def add(self, renditions: list[Rendition], entries: list[NewEntry], spans: list[Spans]) -> None:
        self._pending += renditions
        self._entries += entries
        self._spans += spans
        self._size += sum(len(r.gzip) + len(r.br) + len(r.spans) for r in renditions)
        self._size += sum(len(b) for _, _, f in entries for b in f.values()) + sum(len(s[3]) for s in spans)
        if self._size >= self.max_bytes:
            await self.flush()

    async def flush(self) -> None:
        pending, entries, spans = self._pending, self._entries, self._spans
        self._pending, self._entries, self._spans, self._size = [], [], [], 0
        await self.store.put_renditions(pending, entries, spans=spans)


Spans = tuple[str, str, str, bytes]  # (feed, format, ETag, spans) of a stored version that has none


async def publish(
    store: Store,
    settings: Settings,
    key: FeedKey,
    table: dict[str, Format],
    memo: EntryMemo | None = None,
    writer: Writer | None = None,
    ahead: asyncio.Future[list[NewEntry]] | None = None,
) -> int:
    """Render one document in every format; store what changed (now, or with the writer's next
    batch). Returns how many renditions changed. `ahead`: entries being made for several
    documents, waited for before this one looks for its own."""
    memo = memo or memo_for(store)
    name = key.name
    described = await describe(store, settings, key)
    if described is None:
        await store.delete_renditions(name)
        return 0
    info, members = described
    pending = await plan_entries(store, settings, members)
    if ahead:
        # If making them ahead failed, this document makes its own (and reports what fails).
        await asyncio.gather(asyncio.shield(ahead), return_exceptions=True)
    gathered = await gather_entries(store, settings, name, pending, memo)
    current = await store.rendition_versions_of(name)
    now = utcnow()

    def render() -> tuple[list[Rendition], list[NewEntry], list[Spans]]:
        # One thread hop per document: making entries, joining and compressing (which releases
        # the GIL) run off the event loop, which keeps serving while other documents are read.
        entries, stamps, made = make_entries(settings, pending, gathered, table, memo)
        fresh, spanned = [], []
        for fmt in FORMATS:
            pieces = [e[fmt] for e in entries]
            body = table[fmt].document(info, pieces)
            etag = etag_of(body)
            stored = current.get(fmt)
            if stored and stored[0] == etag:
                if not stored[2]:
                    spanned.append((name, fmt, etag, spans_of(body, stamps, pieces)))
                continue
            # New bytes whose entries did not change (a new archive neighbour, a page that filled,
            # a topic's name): they still need a newer Last-Modified, or If-Modified-Since would
            # keep the old bytes.
            modified = info.updated if not stored or info.updated > stored[1] else max(now, stored[1])
            fresh.append(encode(name, fmt, body, modified, spans=spans_of(body, stamps, pieces), etag=etag))
        return fresh, made, spanned

    fresh, made, spanned = await asyncio.to_thread(render)
    if writer:
        await writer.add(fresh, made, spanned)
    else:
        await store.put_renditions(fresh, made, spans=spanned)
    return len(fresh)


async def publish_keys(
    store: Store,
    settings: Settings,
    keys: Iterable[FeedKey],
    progress: Callable[[int], object] | None = None,
    memo: EntryMemo | None = None,
    ordered: bool = False,
    first: Sequence[str] = (),
) -> int:
    """Publish many documents, a few at a time (both cores: compression runs beside rendering),
    in the order given when `ordered`, else by name; the entries of the events `first` are made
    before them (they are in most of the documents)."""
    table = formats()
    memo = memo or memo_for(store)
    limit = asyncio.Semaphore(PUBLISH_CONCURRENCY)

    writer = Writer(store)
    # Made while the documents are described; they wait for it before looking for entries.
    ahead = asyncio.ensure_future(make_ahead(store, settings, first, table, memo)) if first else None

    async def one(key: FeedKey) -> int:
        async with limit:
            stored = await publish(store, settings, key, table, memo, writer, ahead)
        if progress:
            progress(1)
        return stored

    queue = list(keys) if ordered else sorted(keys, key=lambda k: (k.kind, k.value, k.page))
    total = 0
    try:
        for start in range(0, len(queue), 256):  # bounded number of pending tasks
            total += sum(await asyncio.gather(*(one(k) for k in queue[start : start + 256])))
        if ahead:
            await asyncio.wait([ahead])  # done already, unless no document waited for it
            if not ahead.exception():
                await writer.add([], ahead.result(), [])
    finally:
        if ahead:
            ahead.cancel()
            await asyncio.gather(ahead, return_exceptions=True)
        await writer.flush()  # what was rendered is kept even if one document failed
    return total


BULK = 5000  # more changed events than this: re-render whole topics rather than find their pages


async def affected(
    store: Store, settings: Settings, names: Iterable[str], events: Iterable[str], renamed: Iterable[str] = ()
) -> set[FeedKey]:
    """The documents to re-render after a change: the touched feeds, the neighbours of touched
    days (their archive links may move), the topic pages holding changed events, and every page
    of a topic shown by a new name. Feeds are looked at a few dozen at once (on a cold store each
    look is a few disk reads)."""
    changed = set(events)
    new_names = set(renamed)
    limit = asyncio.Semaphore(32)

    async def of(name: str) -> set[FeedKey]:
        key = FeedKey.parse(name)
        keys = {key}
        if key.kind == "date":
            # Neighbours link to a day only while it has events: they change when it appears or
            # goes, not when one of its events is reworded.
            if bool(await store.members(key, 1)) != bool(await store.rendition_etags(key.name)):
                keys |= {FeedKey("date", d) for d in await store.neighbour_dates(key.value) if d}
        elif key.kind == "topic":
            paging = Paging(await store.topic_slots(key.value), settings.items_per_feed)
            if len(changed) > BULK or key.value in new_names:
                # A bulk load: finding each event's page would cost more than rendering them all.
                return keys | {FeedKey("topic", key.value, p) for p in range(1, paging.archive_pages + 1)}
            for slot in (await store.topic_ranks(key.value, changed)).values():
                if page := paging.page_of(slot):
                    keys.add(FeedKey("topic", key.value, page))
            newest = paging.archive_pages
            if newest and not await store.rendition_etags(FeedKey("topic", key.value, newest).name):
                # A page just filled: it appears, and the page before it now links to it.
                keys |= {FeedKey("topic", key.value, p) for p in (newest, newest - 1) if p >= 1}
        return keys

    async def bounded(name: str) -> set[FeedKey]:
        async with limit:
            return await of(name)

    found: set[FeedKey] = set()
    for keys in await asyncio.gather(*(bounded(name) for name in set(names))):
        found |= keys
    return found


async def publish_changes(
    store: Store,
    settings: Settings,
    names: Iterable[str],
    events: Iterable[str] = (),
    progress: Callable[[int], object] | None = None,
    processes: int = 1,
    renamed: Iterable[str] = (),
) -> int:
    """Render what a batch of changes touched (`names`: feeds, `events`: changed events,
    `renamed`: topics shown by a new name), and whatever stored changes are still unpublished
    (Store.pending: a process killed before it published leaves them), then the /topics index.
    When the settings that shape documents changed since the store was last rendered, every
    document instead."""
    if await fingerprint.needs_rerender(store, settings):
        log.info("settings that shape the documents changed: rendering every document")
        return await publish_all(store, settings, progress, processes, also=names)
    pending = await store.pending()
    changed = set(events) | pending.changed
    keys = await affected(store, settings, set(names) | pending.feeds, changed, set(renamed) | pending.renamed)
    first = sorted(changed) if len(changed) <= AHEAD else []
    if not await store.rendition_etags("latest"):
        # The store's first documents: readers wait for all of them, the most wanted first.
        total = await publish_in_tiers(store, settings, keys, processes, progress, first)
    else:
        total = await publish_keys_in_processes(store, settings, keys, processes, progress, first)
    if any(k.kind == "topic" for k in keys) or not await store.rendition_etags(TOPICS_DOC):
        total += await publish_topics(store, settings)
    await store.clear_pending(pending)
    if total:
        await store.checkpoint()  # now, while nobody waits for the next write
    return total


def tiers(keys: Iterable[FeedKey]) -> tuple[list[FeedKey], list[FeedKey], list[FeedKey]]:
    """Documents in the order a whole store is rendered: `latest`; what readers subscribe to
    (topic heads) and dates; then the older pages of topics."""
    latest: list[FeedKey] = []
    heads: list[FeedKey] = []
    pages: list[FeedKey] = []
    for key in keys:
        (latest if key.kind == "latest" else pages if key.page else heads).append(key)
    return latest, heads, pages


async def publish_in_tiers(
    store: Store,
    settings: Settings,
    keys: Iterable[FeedKey],
    processes: int = 1,
    progress: Callable[[int], object] | None = None,
    first: Sequence[str] = (),
) -> int:
    """Publish many documents tier by tier (`tiers`), the /topics index after the topic heads it
    lists: until a document is stored the server answers 503 for it."""
    latest, heads, pages = tiers(keys)
    total = 0
    if latest:
        # The events `first` are in it: their entries are made with it, and found by the others.
        total += await publish_keys(store, settings, latest, progress, first=first)
    total += await publish_keys_in_processes(store, settings, heads, processes, progress, () if latest else first)
    total += await publish_topics(store, settings)
    return total + await publish_keys_in_processes(store, settings, pages, processes, progress)


# Per open store and base URL: the JSON of each topic in /topics as last written.
_INDEX_MEMOS: weakref.WeakKeyDictionary[Store, dict[str, IndexMemo]] = weakref.WeakKeyDictionary()


async def publish_topics(store: Store, settings: Settings) -> int:
    """The /topics index, after the feeds it lists (they are what readers wait for). With 25,000
    topics it is a few MB of JSON: only the topics that changed are written again, and the
    document is joined and compressed off the event loop."""
    rows = await store.topic_index()
    current = (await store.rendition_etags(TOPICS_DOC)).get("json")
    newest = max((r[3] for r in rows if r[3]), default=None)  # ISO 8601 in UTC: they sort as they read
    updated = dt.datetime.fromisoformat(newest) if newest else await store.created()
    memo = _INDEX_MEMOS.setdefault(store, {}).setdefault(settings.base_url, {})

    def render() -> Rendition | None:
        body = topics_document(settings.base_url, rows, memo)
        if current == etag_of(body):
            return None
        return encode(TOPICS_DOC, "json", body, updated, "application/json; charset=utf-8")

    rendition = await asyncio.to_thread(render)
    if rendition is None:
        return 0
    await store.put_rendition(rendition)
    return 1


async def publish_all(
    store: Store,
    settings: Settings,
    progress: Callable[[int], object] | None = None,
    processes: int = 1,
    also: Iterable[str] = (),
) -> int:
    """Render every document the store holds (`feeds publish --all`; after the settings that shape
    documents changed, a bulk load or an upgrade), in tiers: `latest` first, then topic heads
    and dates, then older topic pages. Unchanged bytes are not stored (their ETags stay). Notes
    the settings in the store when done: an interrupted run is done again at the next start.
    `also`: feeds a change touched, which may be gone (their documents are deleted)."""
    slots = {t.slug: t.slots for t in await store.topics()}
    pending = await store.pending()  # feeds the store left to publish, which may be gone too
    keys = {FeedKey.parse(name) for name in {*pending.feeds, *also}}
    for name in await store.feed_names():
        key = FeedKey.parse(name)
        keys.add(key)
        if key.kind == "topic":
            pages = Paging(slots[key.value], settings.items_per_feed).archive_pages
            keys.update(replace(key, page=p) for p in range(1, pages + 1))
    total = await publish_in_tiers(store, settings, keys, processes, progress)
    await store.clear_pending(pending)
    await fingerprint.record(store, settings)
    if total:
        await store.checkpoint()
    return total


async def arrival_order(store: Store, settings: Settings, names: list[str]) -> list[str]:
    """Documents in the order their newest events arrived. An event's entry is made once and
    kept (EntryMemo) while the documents that show it (its day, the pages of its topics) are
    published: in arrival order they come close together, in name order they would be far apart
    and each entry would be made again for most of them."""
    size = settings.items_per_feed
    dates, blocks = await store.newest_arrivals(size)
    newest: dict[str, int] = {f"dates/{d}": seq for d, seq in dates.items()}
    for slug, slots, first, seq in blocks:
        # Every slot of a block is on the same page (the head takes whole blocks).
        name = FeedKey("topic", slug, Paging(slots, size).page_of(first)).name
        newest[name] = max(newest.get(name, 0), seq)
    last = max(newest.values(), default=0) + 1  # `latest`, the topics index: after everything
    return sorted(names, key=lambda n: (newest.get(n, last), n))


def _contiguous(names: list[str], parts: int) -> list[list[str]]:
    """`parts` runs of consecutive names: each process meets the events of its own stretch of
    time, so its entries are made once and reused."""
    size = -(-len(names) // parts)
    return [names[i : i + size] for i in range(0, len(names), size)]


def _publish_shard(database: str, settings: Settings, names: list[str], done: Any) -> tuple[int, int, int]:
    """Child process: publish `names` through its own connection to the store. Returns how many
    renditions it stored, entries it made and entries it reused from memory."""

    async def run() -> tuple[int, int, int]:
        # A small page cache: the events of a stretch of time are read once, in order.
        store = await Store.open(database, cache_kib=8 * 1024)
        try:
            memo = EntryMemo(BULK_MEMO_BYTES)
            keys = [FeedKey.parse(n) for n in names]
            unreported = 0

            def report(n: int) -> None:
                # Through the manager process: a round trip each, so a few dozen at a time.
                nonlocal unreported
                unreported += n
                if unreported >= 32:
                    done.put(unreported)
                    unreported = 0

            async with store.bulk():
                stored = await publish_keys(store, settings, keys, report, memo=memo, ordered=True)
            done.put(unreported)
            return stored, memo.made, memo.hits
        finally:
            await store.close()

    return asyncio.run(run())


async def publish_keys_in_processes(
    store: Store,
    settings: Settings,
    keys: Iterable[FeedKey],
    processes: int,
    progress: Callable[[int], object] | None = None,
    first: Sequence[str] = (),
) -> int:
    """Publish many documents with several processes (a bulk load uses every core). Each process
    reads the store on its own connection; their short write transactions take turns."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    names = sorted(k.name for k in keys)
    if len(names) >= 500:
        names = await arrival_order(store, settings, names)
    if processes <= 1 or len(names) < 500:
        return await publish_keys(
            store, settings, [FeedKey.parse(n) for n in names], progress, ordered=True, first=first
        )
    context = multiprocessing.get_context("spawn")  # no inherited event loop or database threads
    manager = context.Manager()
    done = manager.Queue()
    loop = asyncio.get_running_loop()
    await store.release_memory()  # this process only waits now
    # The compression threads would otherwise keep a few hundred MB of freed buffers between them.
    try:
        with few_malloc_arenas(), ProcessPoolExecutor(processes, mp_context=context, initializer=tune_gc) as pool:
            futures = [
                loop.run_in_executor(pool, _publish_shard, store.path, settings, shard, done)
                for shard in _contiguous(names, processes)
            ]
            pending = asyncio.gather(*futures)
            while not pending.done():
                await asyncio.sleep(0.2)
                while not done.empty():
                    count = done.get()
                    if progress:
                        progress(count)
            results = await pending
    finally:
        manager.shutdown()
    log.info("entries made %d, reused from memory %d", sum(r[1] for r in results), sum(r[2] for r in results))
    return sum(r[0] for r in results)
