"""Rendering documents: one document in every format and encoding, made once, stored only when
its bytes change (so an unchanged feed keeps its ETag and Last-Modified); many documents a few at a
time; the /topics index."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import brotli
from isal import igzip

from feeds.config import Settings
from feeds.entries import (
    EntryMemo,
    Fragments,
    NewEntry,
    gather_entries,
    make_ahead,
    make_entries,
    plan_entries,
    spans_of,
)
from feeds.model import FORMATS, FeedKey, Member, Rendition
from feeds.publish.chunked import ChunkedGzip, ChunkMemo, index_chunks
from feeds.publish.plan import describe
from feeds.render import CONTENT_TYPES, FeedInfo, Format, formats
from feeds.render.topics import TOPICS_DOC
from feeds.store import ContentVersion, Store

# Documents published at once: all of a refresh's usually (they wait for the store and for
# compression threads more than for the interpreter).
PUBLISH_CONCURRENCY = 8
AHEAD = 100  # a refresh changing at most this many events makes their entries first


log = logging.getLogger(__name__)


def etag_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


# Compression is most of a refresh's CPU: fast levels, chosen by benchmarks/RESULTS.md.
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


def fit(info: FeedInfo, table: dict[str, Format], entries: list[Fragments], max_bytes: int) -> tuple[FeedInfo, int]:
    """The feed description and how many of its entries (newest first) to show so that the document
    stays within `max_bytes` in every format. What is left out is said in the description, the same
    in every format (readers see it as the feed's subtitle)."""

    def count(info: FeedInfo) -> int:
        kept = len(entries)
        for fmt, f in table.items():
            room = max_bytes - len(f.document(info, []))
            for n, entry in enumerate(entries[:kept]):
                room -= len(entry[fmt]) + 1  # and a separator (JSON's comma)
                if room < 0:
                    kept = n
                    break
        return kept

    if count(info) == len(entries):
        return info, len(entries)
    note = f" (older entries left out: the document would exceed max_feed_bytes, {max_bytes:,})"
    shown = replace(info, description=info.description + note)
    if any(len(f.document(shown, [])) > max_bytes for f in table.values()):
        shown = replace(shown, deleted=())  # a channel of tombstones alone: they go first
    kept = count(shown)
    log.warning(
        "%s: %d of %d entries left out (over max_feed_bytes, %d)",
        info.name,
        len(entries) - kept,
        len(entries),
        max_bytes,
    )
    return shown, kept


def within(
    info: FeedInfo, table: dict[str, Format], entries: list[Fragments], max_bytes: int
) -> tuple[FeedInfo, dict[str, bytes], int]:
    """The document in every format, its description and how many entries it shows: all of them,
    unless a format would exceed `max_bytes` (then `fit` decides, and the documents are made again)."""
    bodies = {fmt: f.document(info, [e[fmt] for e in entries]) for fmt, f in table.items()}
    if all(len(body) <= max_bytes for body in bodies.values()):
        return info, bodies, len(entries)
    shown, kept = fit(info, table, entries, max_bytes)
    return shown, {fmt: f.document(shown, [e[fmt] for e in entries[:kept]]) for fmt, f in table.items()}, kept


class Writer:
    """New renditions gathered and stored a batch at a time: one write transaction for many
    documents (each costs a commit otherwise), and the documents of one refresh appear together."""

    def __init__(self, store: Store, max_bytes: int = 16 << 20) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self._pending: list[Rendition] = []
        self._entries: list[NewEntry] = []
        self._spans: list[Spans] = []
        self._again: list[Current] = []
        self._size = 0

    async def add(
        self, renditions: list[Rendition], entries: list[NewEntry], spans: list[Spans], again: Sequence[Current] = ()
    ) -> None:
        self._pending += renditions
        self._entries += entries
        self._spans += spans
        self._again += again
        self._size += sum(len(r.body) + len(r.gzip) + len(r.br) + len(r.spans) for r in renditions)
        self._size += sum(len(b) for _, _, f in entries for b in f.values()) + sum(len(s[3]) for s in spans)
        if self._size >= self.max_bytes:
            await self.flush()

    async def flush(self) -> None:
        pending, entries, spans, again = self._pending, self._entries, self._spans, self._again
        self._pending, self._entries, self._spans, self._again, self._size = [], [], [], [], 0
        await self.store.put_renditions(pending, entries, spans=spans, fresh_again=again)


Spans = tuple[str, str, str, bytes]  # (feed, format, ETag, spans) of a stored version that has none
Current = tuple[str, str, str]  # (feed, format, ETag) of a stale stored version found current again


async def publish(
    store: Store,
    settings: Settings,
    key: FeedKey,
    table: dict[str, Format],
    memo: EntryMemo | None = None,
    writer: Writer | None = None,
    ahead: asyncio.Future[list[NewEntry]] | None = None,
    based_on: ContentVersion | None = None,
) -> int:
    """Render one document in every format; store what changed (now, or with the writer's next
    batch). Returns how many renditions changed. `ahead`: entries being made for several
    documents, waited for before this one looks for its own. `based_on`: the store's content
    version read before the document was described (a render on request: stored stale if a
    change overtook it)."""
    memo = memo or EntryMemo()
    name = key.name
    described = await describe(store, settings, key)
    if described is None:
        if await store.rendition_etags(name):  # a write only for a document that was stored
            await store.delete_renditions(name)
        return 0
    info, members = described
    pending = await plan_entries(store, settings, members)
    if ahead:
        # If making them ahead failed, this document makes its own (and reports what fails).
        await asyncio.gather(asyncio.shield(ahead), return_exceptions=True)
    gathered = await gather_entries(store, settings, name, pending, memo)
    current = await store.rendition_states(name)

    def render() -> tuple[list[Rendition], list[NewEntry], list[Spans], list[Current]]:
        # One thread hop per document: making entries, joining and compressing (which releases
        # the GIL) run off the event loop, which keeps serving while other documents are read.
        entries, stamps, made = make_entries(settings, pending, gathered, table, memo)
        shown, bodies, kept = within(info, table, entries, settings.max_feed_bytes)
        entries, stamps = entries[:kept], stamps[:kept]
        fresh, spanned, again = [], [], []
        for fmt in FORMATS:
            pieces = [e[fmt] for e in entries]
            body = bodies[fmt]
            etag = etag_of(body)
            stored = current.get(fmt)
            # Same bytes and time: kept. Same bytes, another time (a store dated by mtimes before):
            # stored again with the time it holds.
            if stored and stored[0] == etag and stored[1] == shown.updated:
                if not stored[2]:
                    spanned.append((name, fmt, etag, spans_of(body, stamps, pieces)))
                if stored[3] or based_on is not None:
                    again.append((name, fmt, etag))  # stale, or made on request: current as of `based_on`
                continue
            # Last-Modified is the newest time the document holds, never when it was rendered: new
            # bytes with no newer time (a settings change, a new archive neighbour) keep it, as a
            # fresh store's would; their new ETag is what tells a reader (docs/architecture.md).
            fresh.append(encode(name, fmt, body, shown.updated, spans=spans_of(body, stamps, pieces), etag=etag))
        return fresh, made, spanned, again

    fresh, made, spanned, again = await asyncio.to_thread(render)
    if writer:
        await writer.add(fresh, made, spanned, again)
    else:
        await store.put_renditions(fresh, made, spans=spanned, fresh_again=again, based_on=based_on)
    return len(fresh)


async def render_once(
    store: Store, settings: Settings, info: FeedInfo, members: list[Member], memo: EntryMemo
) -> list[Rendition]:
    """A document made on request and stored nowhere (a combined feed), in every format."""
    table = formats()
    pending = await plan_entries(store, settings, members)
    gathered = await gather_entries(store, settings, None, pending, memo)

    def render() -> list[Rendition]:
        entries = make_entries(settings, pending, gathered, table, memo)[0]
        shown, bodies, _ = within(info, table, entries, settings.max_feed_bytes)
        return [encode(info.name, fmt, body, shown.updated) for fmt, body in bodies.items()]

    return await asyncio.to_thread(render)


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
    memo = memo or EntryMemo()
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


@dataclass
class Memos:
    """What publishing keeps in memory between runs, owned by whoever publishes again and again
    (a server's scheduler): entries by stamp, and the /topics index's JSON of each topic as last
    written (per base URL: the JSON holds URLs)."""

    entries: EntryMemo = field(default_factory=EntryMemo)
    index: dict[str, ChunkMemo] = field(default_factory=dict)
    index_gzip: dict[str, ChunkedGzip] = field(default_factory=dict)  # its compressed chunks

    def index_for(self, base_url: str) -> ChunkMemo:
        return self.index.setdefault(base_url, {})

    def index_gzip_for(self, base_url: str) -> ChunkedGzip:
        return self.index_gzip.setdefault(base_url, ChunkedGzip(GZIP_LEVEL))


# The /topics index is MBs of JSON made again at every refresh: its gzip is joined from chunks
# (only changed ones compressed again), its Brotli made fast (quality 1 is as small as 3 on it).
INDEX_BROTLI_QUALITY = 1


async def publish_topics(store: Store, settings: Settings, memos: Memos | None = None) -> int:
    """The /topics index, after the feeds it lists (they are what readers wait for). With 25,000
    topics it is a few MB of JSON: only the topics that changed are written again and only the
    gzip chunks holding them compressed again, off the event loop."""
    rows = await store.topic_index()
    current = (await store.rendition_etags(TOPICS_DOC)).get("json")
    newest = max((r[3] for r in rows if r[3]), default=None)  # ISO 8601 in UTC: they sort as they read
    updated = dt.datetime.fromisoformat(newest) if newest else await store.created()
    memos = memos or Memos()
    memo, gzipped = memos.index_for(settings.base_url), memos.index_gzip_for(settings.base_url)

    def render() -> Rendition | None:
        chunks = index_chunks(settings.base_url, rows, memo)
        body = b"".join(chunks)
        etag = etag_of(body)
        if current == etag:
            return None
        return Rendition(
            feed=TOPICS_DOC,
            fmt="json",
            body=body,
            gzip=gzipped.compress(chunks),
            br=brotli.compress(body, quality=INDEX_BROTLI_QUALITY),
            etag=etag,
            last_modified=updated,
            content_type="application/json; charset=utf-8",
        )

    rendition = await asyncio.to_thread(render)
    if rendition is None:
        return 0
    await store.put_rendition(rendition)
    return 1
