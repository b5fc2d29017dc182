"""The store: one SQLite file in WAL mode, reached through aiosqlite.

Tables: `pages` (every version of every event page, as read), `aliases` (page path -> event key,
including versions only known from a Changes list), `events` (one row per version chain, its
current content), `topics` and `event_topics`, `renditions` (rendered feed documents, gzip and
Brotli, with validators and where each entry lies), `entries` (each event's entry as last made), `cursors` (per-source progress such as a git commit) and `meta`.

Writes go through one connection, one `BEGIN IMMEDIATE` transaction per batch, serialised by an
asyncio lock (statements of coroutines sharing an aiosqlite connection would interleave). A batch
says which feeds it touched so only those re-render.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from isal import igzip

from feeds.chains import DayPage, Version, chain_root, current_version, linked_paths, listing_evidence, with_predecessors
from feeds.codec import page_from_json, page_to_json
from feeds.errors import StoreError
from feeds.ids import FOLDING, content_hash, event_guid, topic_key
from feeds.model import DayListing, Event, FeedKey, Member, Page, Rendition, Tombstone, Topic, day_start, utcnow
from feeds.model import comma_parts
from feeds.process import trim_heap
from feeds.topicsdb import MIGRATION as TOPICS_MIGRATION
from feeds.topicsdb import TopicMemo, folding_of, forget, rekey, run_key, set_topics
from feeds.topicsdb import feeds_of as _feeds_of
from feeds.topicsdb import refresh_topics as _refresh_topics

T = TypeVar("T")
log = logging.getLogger("feeds.store")

SCHEMA_VERSION = 8
CACHE_KIB = 64 * 1024  # SQLite page cache per connection
# For a new store (an existing one keeps its own). Most of a store is documents of 100-200 KB in
# three encodings and entries of ~6 KB: with SQLite's default 4 KB pages every entry overflows to
# a second and third page and a document is a chain of ~60 pages, each read (also to free it when
# the document is replaced) through its own system call, in random order when the page cache is
# cold. 16 KB pages are what SQLite's own measurements recommend for blobs of this size
# (https://www.sqlite.org/intern-v-extern-blob.html).
PAGE_SIZE = 16384
READERS = 4  # reader connections per store: documents published together read in parallel
WAL_PAGES = 1000  # SQLite's default checkpoint threshold (pages of log)
MIGRATION_WAIT = 3600.0  # seconds another process's upgrade of the schema is waited for
BULK_WAL_BYTES = 1 << 30  # the write-ahead log of a bulk load (a bigger log copies a page changed often once)


async def _connect(path: str) -> aiosqlite.Connection:
    pending = aiosqlite.connect(path, isolation_level=None)
    # A store left open (a crash, a failed test) must not keep the interpreter alive at exit; an
    # interrupted transaction is rolled back by SQLite on the next open.
    pending._thread.daemon = True  # noqa: SLF001
    try:
        return await pending
    except sqlite3.Error as exc:
        raise StoreError(f"store: unable to open {path}: {exc}") from exc

async def _on_thread(conn: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    # aiosqlite runs every call on its connection's own thread; running a whole batch (or a
    # query and what is made of its rows) there as one function keeps it to one hop instead of
    # one per statement.
    return await conn._execute(fn, conn._conn)  # type: ignore[no-any-return]  # noqa: SLF001


# Kept up to date by triggers: how often each spelling of a topic is used by live events (its
# count and display name never need a scan of its events), and its number of slots.
_SPELLING_TRIGGERS = """
    CREATE TRIGGER event_topics_insert AFTER INSERT ON event_topics WHEN NEW.live = 1 BEGIN
        INSERT INTO topic_spellings VALUES (NEW.topic_id, NEW.spelling, 1)
            ON CONFLICT (topic_id, spelling) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER event_topics_update AFTER UPDATE OF live, spelling ON event_topics BEGIN
        UPDATE topic_spellings SET n = n - 1
            WHERE OLD.live = 1 AND topic_id = OLD.topic_id AND spelling = OLD.spelling;
        INSERT INTO topic_spellings SELECT NEW.topic_id, NEW.spelling, 1 WHERE NEW.live = 1
            ON CONFLICT (topic_id, spelling) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER event_topics_delete AFTER DELETE ON event_topics WHEN OLD.live = 1 BEGIN
        UPDATE topic_spellings SET n = n - 1 WHERE topic_id = OLD.topic_id AND spelling = OLD.spelling;
    END;
"""
_SLOT_TRIGGER = """
    CREATE TRIGGER event_topics_slot AFTER INSERT ON event_topics BEGIN
        UPDATE topics SET slots = slots + 1 WHERE id = NEW.topic_id;
    END;
"""

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE pages (
        path TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        relpath TEXT NOT NULL,
        hash TEXT NOT NULL,
        doc TEXT NOT NULL,
        version TEXT NOT NULL,
        chain TEXT NOT NULL,
        seen_at TEXT NOT NULL,
        deleted_at TEXT
    );
    CREATE INDEX pages_chain ON pages(chain);
    CREATE INDEX pages_source ON pages(source);
    CREATE TABLE links (page TEXT NOT NULL, linked TEXT NOT NULL, PRIMARY KEY (page, linked)) WITHOUT ROWID;
    CREATE INDEX links_linked ON links(linked);
    CREATE TABLE aliases (path TEXT PRIMARY KEY, chain TEXT NOT NULL);
    CREATE INDEX aliases_chain ON aliases(chain);
    CREATE TABLE events (
        key TEXT PRIMARY KEY,
        guid TEXT NOT NULL,
        date TEXT NOT NULL,
        current TEXT NOT NULL,
        relpath TEXT NOT NULL,
        source TEXT NOT NULL,
        hash TEXT NOT NULL,
        doc TEXT NOT NULL,
        published TEXT NOT NULL,
        updated TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        seq INTEGER NOT NULL UNIQUE,  -- arrival order, never reused: stable topic pages
        live INTEGER NOT NULL DEFAULT 1,
        deleted_at TEXT
    );
    CREATE INDEX events_order ON events(live, date DESC, seq DESC);
    CREATE INDEX events_deleted ON events(deleted_at) WHERE deleted_at IS NOT NULL;
    CREATE TABLE topics (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        slug TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        events INTEGER NOT NULL DEFAULT 0,
        updated TEXT
    );
    CREATE TABLE event_topics (
        topic_id INTEGER NOT NULL REFERENCES topics(id),
        event TEXT NOT NULL REFERENCES events(key),
        spelling TEXT NOT NULL,
        live INTEGER NOT NULL,
        date TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (topic_id, event)
    ) WITHOUT ROWID;
    CREATE INDEX event_topics_seq ON event_topics(topic_id, seq);
    -- How often each spelling of a topic is used by live events, kept by triggers so that a
    -- topic's count and display name never need a scan of its events.
    CREATE TABLE topic_spellings (
        topic_id INTEGER NOT NULL,
        spelling TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (topic_id, spelling)
    ) WITHOUT ROWID;
""" + _SPELLING_TRIGGERS + """    CREATE INDEX event_topics_event ON event_topics(event);
    CREATE TABLE renditions (
        feed TEXT NOT NULL,
        fmt TEXT NOT NULL,
        body BLOB NOT NULL,
        gz BLOB NOT NULL,
        br BLOB NOT NULL,
        etag TEXT NOT NULL,
        last_modified TEXT NOT NULL,
        content_type TEXT NOT NULL,
        rendered_at TEXT NOT NULL,
        version INTEGER NOT NULL,  -- the `renditions` counter in meta when written
        PRIMARY KEY (feed, fmt)
    ) WITHOUT ROWID;
    CREATE INDEX renditions_version ON renditions(version);
    CREATE TABLE cursors (source TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE fetches (
        url TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        body BLOB,
        missing_since TEXT
    ) WITHOUT ROWID;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires TEXT NOT NULL);
    INSERT INTO meta VALUES ('created', strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'));
    """,
    # A topic's slots numbered as they are taken, and counted: finding a page's events, an
    # event's page and a topic's length are index lookups, not counts over a topic of 50,000
    # events.
    2: """
    ALTER TABLE topics ADD COLUMN slots INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE event_topics ADD COLUMN slot INTEGER;
    UPDATE event_topics SET slot = r.n FROM (
        SELECT topic_id, event, row_number() OVER (PARTITION BY topic_id ORDER BY seq) - 1 AS n FROM event_topics
    ) AS r WHERE r.topic_id = event_topics.topic_id AND r.event = event_topics.event;
    UPDATE topics SET slots = (SELECT count(*) FROM event_topics et WHERE et.topic_id = topics.id);
    DROP INDEX event_topics_seq;
    CREATE UNIQUE INDEX event_topics_slot ON event_topics(topic_id, slot);
""" + _SLOT_TRIGGER + """    """,
    # A document's validators without its bytes: in the table they come after the bodies, and
    # reading them walked every overflow page of ~100 KB of body, gzip and Brotli.
    3: """
    CREATE INDEX renditions_validators ON renditions(feed, etag, last_modified);
    """,
    # Every event's entry as last rendered, in each format, with the stamp of what it depends on
    # (feeds.entries.entry_stamp): documents are joined from these without making entries again.
    4: """
    CREATE TABLE entries (
        event TEXT PRIMARY KEY,
        stamp TEXT NOT NULL,
        atom BLOB NOT NULL,
        rss BLOB NOT NULL,
        json BLOB NOT NULL
    );
    """,
    # What a directory source last read of each file (mtime, size), kept with the pages it read
    # them into: a new process (a restarted server) stats the tree and reads only what changed,
    # instead of every file once.
    5: """
    CREATE TABLE source_files (
        source TEXT NOT NULL,
        relpath TEXT NOT NULL,
        mtime_ns INTEGER NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (source, relpath)
    ) WITHOUT ROWID;
    """,
    # Reading a document's members cheaply, and documents without their plain bytes:
    # - an event's revision (`rev`) moves whenever anything its entry shows changes (its
    #   content, its deletion, the name of one of its topics): documents check their members'
    #   entries against it instead of decoding every member's page;
    # - a topic's members are stored in slot order (the primary key), with each event's
    #   revision and `updated`: a page of a topic is one contiguous range, not one random read
    #   per member into the events table; one index (event, topic) serves lookups both ways;
    # - renditions keep gzip and Brotli only (the plain bytes are decoded from gzip when read,
    #   ~0.2 ms for 200 KB): the plain bytes were 8 of a 400,000-event store's 18 GB. Small
    #   columns first, so validators and `spans` (where each entry lies in the document, what a
    #   re-render splices) are read without walking the blobs' overflow pages. A rowid table
    #   with an index on (feed, fmt): a table without rowid keeps whole rows (4 KB of each, at
    #   16 KB pages) in its interior pages, ~4 to a page, and a lookup among 132,000 documents
    #   read ~10 pages (5 ms on a cold page cache) where this reads 4 or 5.
    6: """
    ALTER TABLE events ADD COLUMN rev INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE event_topics_v6 (
        topic_id INTEGER NOT NULL REFERENCES topics(id),
        slot INTEGER NOT NULL,
        event TEXT NOT NULL REFERENCES events(key),
        spelling TEXT NOT NULL,
        live INTEGER NOT NULL,
        date TEXT NOT NULL,
        seq INTEGER NOT NULL,
        rev INTEGER NOT NULL,
        updated TEXT NOT NULL,
        PRIMARY KEY (topic_id, slot)
    ) WITHOUT ROWID;
    INSERT INTO event_topics_v6
        SELECT et.topic_id, et.slot, et.event, et.spelling, et.live, et.date, et.seq, coalesce(e.rev, 1),
            coalesce(e.updated, et.date || 'T00:00:00+00:00')
        FROM event_topics et LEFT JOIN events e ON e.key = et.event;
    DROP TABLE event_topics;
    ALTER TABLE event_topics_v6 RENAME TO event_topics;
    CREATE UNIQUE INDEX event_topics_event ON event_topics(event, topic_id);
""" + _SPELLING_TRIGGERS + _SLOT_TRIGGER + """    CREATE TABLE renditions_v6 (
        id INTEGER PRIMARY KEY,
        feed TEXT NOT NULL,
        fmt TEXT NOT NULL,
        etag TEXT NOT NULL,  -- of the plain bytes
        last_modified TEXT NOT NULL,
        content_type TEXT NOT NULL,
        rendered_at TEXT NOT NULL,
        version INTEGER NOT NULL,  -- the `renditions` counter in meta when written
        spans BLOB,
        gz BLOB NOT NULL,
        br BLOB NOT NULL
    );
    INSERT INTO renditions_v6 (feed, fmt, etag, last_modified, content_type, rendered_at, version, spans, gz, br)
        SELECT feed, fmt, etag, last_modified, content_type, rendered_at, version, NULL, gz, br FROM renditions;
    DROP TABLE renditions;
    ALTER TABLE renditions_v6 RENAME TO renditions;
    CREATE UNIQUE INDEX renditions_feed ON renditions(feed, fmt);
    CREATE INDEX renditions_version ON renditions(version);
    """,
    # Topics keyed without transliteration, and context lists resolved against every known name
    # (feeds.topicsdb). The store is keyed again right after (its folding differs: see _migrate).
    7: TOPICS_MIGRATION,
    # The archive's own evidence beside Changes chains (docs/architecture.md): day listings (which
    # pages are current, and the heading of old renderings), each page's source time, first source
    # and cover image (earlier renderings of a listed page), and the events no listing explains.
    8: """
    ALTER TABLE pages ADD COLUMN modified TEXT;
    ALTER TABLE pages ADD COLUMN day TEXT;
    ALTER TABLE pages ADD COLUMN lead TEXT;
    ALTER TABLE pages ADD COLUMN image TEXT;
    UPDATE pages SET day = substr(path, 1, 17), lead = json_extract(doc, '$.sources[0][1]'),
        image = json_extract(doc, '$.image');
    CREATE INDEX pages_day ON pages(day, lead);
    CREATE TABLE listings (
        path TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        relpath TEXT NOT NULL,
        day TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX listings_day ON listings(day);
    CREATE TABLE listed (
        page TEXT NOT NULL,
        listing TEXT NOT NULL,
        heading TEXT,
        PRIMARY KEY (page, listing)
    ) WITHOUT ROWID;
    CREATE INDEX listed_listing ON listed(listing);
    CREATE TABLE evidence (page TEXT PRIMARY KEY, target TEXT NOT NULL) WITHOUT ROWID;
    CREATE INDEX evidence_target ON evidence(target);
    CREATE TABLE unlisted (key TEXT PRIMARY KEY, day TEXT NOT NULL, relpath TEXT NOT NULL, reason TEXT NOT NULL);
    CREATE INDEX unlisted_day ON unlisted(day);
    CREATE INDEX events_newest ON events(live, date DESC, key DESC);
    UPDATE event_topics SET slot = -1 - r.n FROM (
        SELECT topic_id, event, row_number() OVER (PARTITION BY topic_id ORDER BY date, event) - 1 AS n FROM event_topics
    ) AS r WHERE r.topic_id = event_topics.topic_id AND r.event = event_topics.event;
    UPDATE event_topics SET slot = -1 - slot;
    """,
}


def _statements(script: str) -> list[str]:
    """A script cut into statements (triggers hold `;` inside BEGIN ... END)."""
    out, buffer = [], ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--") and not buffer.strip():
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        out.append(buffer.strip())
    return out


def iso(value: dt.datetime) -> str:
    return value.isoformat()


def from_iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


@dataclass(frozen=True)
class Incoming:
    """A parsed page and where it came from, and the JSON it is stored as (a bulk load makes it
    where the page is parsed, in other processes, while one process does all the storing)."""

    page: Page
    relpath: str
    source: str
    modified: dt.datetime | None = None  # the time its source records for it (a commit, an mtime)

    @functools.cached_property
    def doc(self) -> str:
        return page_to_json(self.page)

    @functools.cached_property
    def digest(self) -> str:
        return content_hash(self.doc.encode("utf-8"))

    @functools.cached_property
    def version(self) -> Version:
        return Version.of(self.page)

    @functools.cached_property
    def version_json(self) -> str:
        return _version_json(self.version)

    @functools.cached_property
    def guid(self) -> str:
        """The guid of the event this page starts (most pages start their own)."""
        return event_guid(self.page.path)

    def prepare(self) -> None:
        """Make now what storing the page needs, in the process that parsed it (a bulk load
        parses in other processes while one process does all the storing)."""
        _ = self.digest, self.version_json, self.guid


@dataclass(frozen=True)
class IncomingListing:
    """A day listing (`index.md` / `README.md`) and where it came from."""

    listing: DayListing
    relpath: str
    source: str

    @property
    def digest(self) -> str:
        entries = [[e.path, e.heading] for e in self.listing.entries]
        return content_hash(json.dumps([self.relpath, self.source, entries]).encode("utf-8"))


@dataclass
class BatchResult:
    """What one batch changed: counts, and the feeds to re-render."""

    added: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    feeds: set[str] = field(default_factory=set)
    renamed: set[str] = field(default_factory=set)  # slugs of topics shown by another name now
    reslotted: set[str] = field(default_factory=set)  # slugs of topics an event joined in the middle of
    unlisted: dict[str, str] = field(default_factory=dict)  # relpath -> why no day listing explains it
    topic_ids: set[int] = field(default_factory=set)  # internal: topics to recount at batch end
    rescan: set[int] = field(default_factory=set)  # internal: topics whose `updated` may have gone back

    def merge(self, other: BatchResult) -> None:
        self.added |= other.added
        self.changed |= other.changed - self.added
        self.deleted |= other.deleted
        self.feeds |= other.feeds
        self.renamed |= other.renamed
        self.reslotted |= other.reslotted
        self.unlisted.update(other.unlisted)

    @property
    def events(self) -> set[str]:
        return self.added | self.changed | self.deleted

    def summary(self) -> str:
        return (
            f"{len(self.added)} new, {len(self.changed)} changed, {len(self.deleted)} deleted events; "
            f"{len(self.feeds)} feeds to render"
        )


@dataclass(frozen=True)
class TopicRow:
    slug: str
    name: str
    events: int
    updated: dt.datetime | None
    slots: int = 0  # events that ever joined: the length of its stable page sequence


class Store:
    """Async access to the database. Use `await Store.open(path)`; close with `await store.close()`."""

    def __init__(self, db: aiosqlite.Connection, path: str, readers: int = 0, cache_kib: int = CACHE_KIB) -> None:
        self._db = db  # writes, and every read when there are no reader connections
        self.path = path
        self._max_readers = readers
        self._cache_kib = cache_kib
        self._readers: list[aiosqlite.Connection] = []
        self._opened = 0
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._write_lock = asyncio.Lock()
        self._topics = TopicMemo()
        # resolve_links answers, valid while the `links` counter (bumped by every batch that
        # changes pages) stays the same: a bulk publish resolves each related page once.
        self._links: dict[str, tuple[str, str] | None] = {}
        self._links_version = -1
        self._written: list[Callable[[], None]] = []
        self._checkpointing: asyncio.Future[list[Any]] | None = None
        self._bulk = False
        self._per_commit = 1  # writes per transaction (more in a bulk load that asks for it)
        self._uncommitted = 0

    @classmethod
    async def open(cls, path: str | Path, cache_kib: int = CACHE_KIB, readers: int = READERS) -> Store:
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await _connect(path)
        try:
            # busy_timeout first: switching a new file to WAL needs a moment of exclusive access,
            # which other workers opening it at the same time may hold.
            await db.execute("PRAGMA busy_timeout=10000")
            await db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # only a new file takes it
            for attempt in range(50):
                try:
                    await db.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError:
                    if attempt == 49:
                        raise
                    await asyncio.sleep(0.05)
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            # SQLite's default page cache is 2 MB: on a store of 400,000 events most index pages
            # would be read again through a system call for every document published.
            await db.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
            # A statement that may fail halfway (an upsert, one firing triggers) inside a longer
            # transaction first saves every page it changes, 16 KB each, to a statement journal,
            # by default a temporary file from 64 KB on: storing 40,000 events wrote 9.2 GB there
            # in 1.1 million system calls. Kept in memory, it holds one statement's few pages.
            await db.execute("PRAGMA temp_store=MEMORY")
            # An in-memory database exists only on its own connection.
            store = cls(db, path, readers if path != ":memory:" else 0, cache_kib)
            await store._migrate()
        except BaseException as exc:
            await db.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"store: unable to open {path}: {exc}") from exc
            raise
        return store

    async def close(self) -> None:
        for reader in self._readers:
            await reader.close()
        self._readers.clear()
        self._opened = 0
        await self._db.close()

    async def _read(self, sql: str, args: Sequence[Any] = (), then: Callable[[list[Any]], list[Any]] | None = None) -> list[Any]:
        """Rows of one query, on a reader connection (opened when all are busy, up to the
        limit): in WAL mode readers run beside each other and beside a write, each on its own
        thread, so documents published together read the store in parallel (on a cold page cache
        their random reads overlap instead of queueing) and a request's cache miss never waits
        behind a write transaction. `then` runs on that thread too, on the rows (decoding bytes
        there keeps it off the event loop)."""

        def query(conn: sqlite3.Connection) -> list[Any]:
            rows = conn.execute(sql, args).fetchall()
            return then(rows) if then else rows

        if not self._max_readers:
            return await self._run(query)
        if self._idle.empty() and self._opened < self._max_readers:
            conn = await self._open_reader()
        else:
            conn = await self._idle.get()
        try:
            return await _on_thread(conn, query)
        finally:
            self._idle.put_nowait(conn)

    async def _open_reader(self) -> aiosqlite.Connection:
        self._opened += 1  # counted before the await: others asking meanwhile wait for an idle one
        try:
            conn = await _connect(self.path)
            try:
                await conn.execute("PRAGMA busy_timeout=10000")
                await conn.execute("PRAGMA query_only=1")
                # The readers share the store's page-cache budget.
                await conn.execute(f"PRAGMA cache_size=-{max(1024, self._cache_kib // self._max_readers)}")
            except BaseException:
                await conn.close()
                raise
        except BaseException:
            self._opened -= 1
            raise
        self._readers.append(conn)
        return conn

    async def _read_keys(self, sql: str, keys: Sequence[Any], prefix: Sequence[Any] = ()) -> list[Any]:
        """Rows of `sql`, whose `{keys}` is an `IN` list, for many keys: in parts on the reader
        connections at once. Each key is a random read (an event, an entry), which on a cold
        page cache is a disk read; in parts, they overlap."""
        if not keys:
            return []
        parts = max(1, min(self._max_readers, len(keys) // 16))
        size = min(500, -(-len(keys) // parts))
        chunks = [keys[i : i + size] for i in range(0, len(keys), size)]
        found = await asyncio.gather(
            *(self._read(sql.format(keys=",".join("?" * len(c))), (*prefix, *c)) for c in chunks)
        )
        return [row for rows in found for row in rows]

    def on_renditions_written(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (on the event loop) after each write of renditions through this
        connection; returns the function that stops it. Writers elsewhere (other workers, other
        processes) are seen by polling `rendition_versions`."""
        self._written.append(callback)
        return lambda: self._written.remove(callback)

    def _renditions_written(self) -> None:
        for callback in list(self._written):
            callback()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await _on_thread(self._db, fn)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def tx(conn: sqlite3.Connection) -> T:
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                self._uncommitted = 0
                conn.execute("ROLLBACK")
                raise
            self._uncommitted += 1
            if self._uncommitted >= self._per_commit:
                self._uncommitted = 0
                conn.execute("COMMIT")
            return result

        async with self._write_lock:
            try:
                result = await self._run(tx)
            except BaseException as exc:
                self._topics.clear()  # it may name topics the rolled-back transaction created
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"store: write failed: {exc}") from exc
                raise
            if self._bulk and not self._uncommitted:
                # The write is committed whatever happens to the copy of the log after it.
                try:
                    await asyncio.shield(self._checkpoint_behind())
                except sqlite3.Error as exc:
                    log.warning("store: checkpoint after a write failed: %s", exc)
            return result

    async def _migrate(self) -> None:
        def migrate(conn: sqlite3.Connection) -> None:
            # The version is read inside the write transaction: several server workers opening a
            # new database at once must not all create the schema.
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"store: {self.path} has schema {version}, newer than this program's {SCHEMA_VERSION}"
                    )
                for number in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _statements(MIGRATIONS[number]):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version={number}")
                if folding_of(conn) != FOLDING:
                    # Topic keys made by another folding (schema 6's transliteration, another
                    # OpenCC): topics are keyed, split and resolved again; their feeds publish next.
                    rekey(conn, utcnow())
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        # Upgrading a big store takes minutes (schema 6 rewrites topic memberships and renditions:
        # ~5 minutes at 400,000 events): other processes opening it meanwhile wait for it.
        deadline = asyncio.get_running_loop().time() + MIGRATION_WAIT
        async with self._write_lock:
            while True:
                try:
                    await self._run(migrate)
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or asyncio.get_running_loop().time() > deadline:
                        raise StoreError(f"store: unable to create the schema of {self.path}: {exc}") from exc
                    log.info("store: %s is being upgraded by another process; waiting", self.path)
                except sqlite3.Error as exc:
                    raise StoreError(f"store: unable to create the schema of {self.path}: {exc}") from exc

    # ----- writes -------------------------------------------------------------------------------

    async def apply(
        self,
        incoming: Sequence[Incoming],
        deleted: Iterable[str] = (),
        now: dt.datetime | None = None,
        listings: Sequence[IncomingListing] = (),
    ) -> BatchResult:
        """Store a batch of pages and day listings (and page paths gone from their source) in one
        transaction."""
        stamp = now or utcnow()
        gone = list(deleted)
        return await self._write(lambda conn: _apply(conn, incoming, gone, stamp, self._topics, listings))

    async def unlisted(self) -> int:
        """Live events of days that have a listing which neither the listing nor its evidence explains."""
        rows = await self._read("SELECT count(*) FROM unlisted u JOIN events e ON e.key = u.key WHERE e.live = 1")
        return int(rows[0][0])

    async def missing_pages(self, source: str, present: set[str]) -> list[str]:
        """Live pages of `source` that a full listing of it no longer has."""
        rows = await self._read(
            "SELECT path FROM pages WHERE source = ? AND deleted_at IS NULL", (source,)
        )
        return [r[0] for r in rows if r[0] not in present]

    async def put_renditions(
        self,
        renditions: Sequence[Rendition],
        entries: Sequence[tuple[str, str, dict[str, bytes]]] = (),
        now: dt.datetime | None = None,
        spans: Sequence[tuple[str, str, str, bytes]] = (),
    ) -> None:
        """Store new versions of documents, and the entries (event, stamp, format -> bytes) they
        were joined from; readers see all of them or none. `spans` (feed, format, ETag, spans)
        adds the spans of stored versions that have none (made by an older program)."""
        stamp = iso(now or utcnow())

        def put(conn: sqlite3.Connection) -> None:
            if renditions:
                version = _bump(conn, "renditions")
                conn.executemany(
                    "INSERT OR REPLACE INTO renditions "
                    "(feed, fmt, etag, last_modified, content_type, rendered_at, version, spans, gz, br) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [
                        (r.feed, r.fmt, r.etag, iso(r.last_modified), r.content_type, stamp, version, r.spans, r.gzip, r.br)
                        for r in renditions
                    ],
                )
            conn.executemany(
                "INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?)",
                [(event, s, f["atom"], f["rss"], f["json"]) for event, s, f in entries],
            )
            conn.executemany(
                "UPDATE renditions SET spans = ? WHERE feed = ? AND fmt = ? AND etag = ?",
                [(data, feed, fmt, etag) for feed, fmt, etag, data in spans],
            )

        if renditions or entries or spans:
            await self._write(put)
        if renditions:
            self._renditions_written()

    async def entries(self, events: Sequence[str]) -> dict[str, tuple[str, dict[str, bytes]]]:
        """Stored entries of these events: event -> (stamp, format -> bytes)."""
        rows = await self._read_keys("SELECT event, stamp, atom, rss, json FROM entries WHERE event IN ({keys})", events)
        return {e: (s, {"atom": a, "rss": r, "json": j}) for e, s, a, r, j in rows}

    async def put_rendition(self, rendition: Rendition, now: dt.datetime | None = None) -> None:
        await self.put_renditions([rendition], now=now)

    async def delete_renditions(self, feed: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            if conn.execute("DELETE FROM renditions WHERE feed = ?", (feed,)).rowcount:
                _bump(conn, "renditions")
                _bump(conn, "renditions_deleted")

        await self._write(delete)
        self._renditions_written()

    async def rendition_versions(self) -> tuple[int, int]:
        """(last write, last deletion) counters: what a cache of renditions checks to stay fresh."""
        rows = await self._read(
            "SELECT key, value FROM meta WHERE key IN ('renditions', 'renditions_deleted')"
        )
        values = {k: int(v) for k, v in rows}
        return values.get("renditions", 0), values.get("renditions_deleted", 0)

    async def renditions_since(self, version: int) -> list[tuple[str, str]]:
        rows = await self._read("SELECT feed, fmt FROM renditions WHERE version > ?", (version,))
        return [(f, fmt) for f, fmt in rows]

    async def acquire_lease(self, name: str, holder: str, ttl: float, now: dt.datetime | None = None) -> bool:
        """Take or renew the lease `name` for `holder` if it is free, expired or already ours.

        Server workers use it so that exactly one runs the scheduler; when that worker dies its
        lease runs out and another takes over.
        """
        stamp = now or dt.datetime.now(dt.timezone.utc)
        expires = iso(stamp + dt.timedelta(seconds=ttl))

        def take(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT holder, expires FROM leases WHERE name = ?", (name,)).fetchone()
            if row and row[0] != holder and from_iso(row[1]) > stamp:
                return False
            conn.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (name, holder, expires))
            return True

        return await self._write(take)

    async def release_lease(self, name: str, holder: str) -> None:
        await self._write(lambda conn: conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder)))

    async def set_meta(self, values: dict[str, str]) -> None:
        """Keep notes about the store as a whole (such as what its documents were rendered with)."""
        rows = list(values.items())
        await self._write(lambda conn: conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows))

    async def meta(self, key: str) -> str | None:
        rows = await self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    async def has_renditions(self) -> bool:
        return bool(await self._read("SELECT 1 FROM renditions LIMIT 1"))

    async def set_cursor(self, source: str, value: str) -> None:
        await self._write(
            lambda conn: conn.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?)", (source, value))
        )

    async def save_fetch(self, url: str, etag: str | None, last_modified: str | None, body: bytes | None) -> None:
        await self._write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO fetches VALUES (?,?,?,?,NULL)", (url, etag, last_modified, body)
            )
        )

    async def mark_missing(self, url: str, now: dt.datetime) -> dt.datetime:
        """Note that `url` answered 404/410; returns since when it has been missing."""

        def mark(conn: sqlite3.Connection) -> str:
            conn.execute(
                "INSERT INTO fetches (url, missing_since) VALUES (?, ?) ON CONFLICT(url) DO UPDATE SET "
                "missing_since = coalesce(missing_since, excluded.missing_since), etag = NULL, last_modified = NULL",
                (url, iso(now)),
            )
            return str(conn.execute("SELECT missing_since FROM fetches WHERE url = ?", (url,)).fetchone()[0])

        return from_iso(await self._write(mark))

    # ----- reads --------------------------------------------------------------------------------

    async def fetch_state(self, url: str) -> tuple[str | None, str | None, bytes | None]:
        rows = await self._read("SELECT etag, last_modified, body FROM fetches WHERE url = ?", (url,))
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else (None, None, None)

    async def page_sources(self, paths: Iterable[str]) -> dict[str, str]:
        """Which live stored pages exist among `paths`, with their source."""
        rows = await self._read_keys(
            "SELECT path, source FROM pages WHERE deleted_at IS NULL AND path IN ({keys})", list(set(paths))
        )
        return {p: s for p, s in rows}

    async def source_files(self, source: str) -> dict[str, tuple[int, int]]:
        """relpath -> (mtime_ns, size) of the files a directory source last read."""
        rows = await self._read("SELECT relpath, mtime_ns, size FROM source_files WHERE source = ?", (source,))
        return {rel: (mtime, size) for rel, mtime, size in rows}

    async def put_source_files(self, source: str, changes: dict[str, tuple[int, int] | None]) -> None:
        """Record files read (relpath -> (mtime_ns, size)) and forget others (-> None)."""
        if not changes:
            return

        def put(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR REPLACE INTO source_files VALUES (?,?,?,?)",
                [(source, rel, *st) for rel, st in changes.items() if st is not None],
            )
            conn.executemany(
                "DELETE FROM source_files WHERE source = ? AND relpath = ?",
                [(source, rel) for rel, st in changes.items() if st is None],
            )

        await self._write(put)

    async def cursor(self, source: str) -> str | None:
        rows = await self._read("SELECT value FROM cursors WHERE source = ?", (source,))
        return rows[0][0] if rows else None

    async def rendition(self, feed: str, fmt: str) -> Rendition | None:
        rows = await self._read(
            "SELECT feed, fmt, etag, last_modified, content_type, spans, gz, br FROM renditions WHERE feed = ? AND fmt = ?",
            (feed, fmt),
            _decoded,
        )
        return rows[0] if rows else None

    async def spanned_bodies(self, feed: str) -> dict[str, tuple[bytes, bytes]]:
        """fmt -> (plain bytes, spans) of a document's stored formats that have spans: what a
        re-render takes unchanged entries from (the Brotli bytes are not read)."""

        def decoded(rows: list[Any]) -> list[Any]:
            return [(fmt, igzip.decompress(gz), spans) for fmt, spans, gz in rows]

        rows = await self._read(
            "SELECT fmt, spans, gz FROM renditions WHERE feed = ? AND spans IS NOT NULL", (feed,), decoded
        )
        return {fmt: (body, spans) for fmt, body, spans in rows}

    async def renditions_of(self, feed: str) -> dict[str, Rendition]:
        """Every stored format of one document."""
        rows = await self._read(
            "SELECT feed, fmt, etag, last_modified, content_type, spans, gz, br FROM renditions WHERE feed = ?",
            (feed,),
            _decoded,
        )
        return {r.fmt: r for r in rows}

    async def rendition_etags(self, feed: str) -> dict[str, str]:
        return {fmt: etag for fmt, (etag, _, _) in (await self.rendition_versions_of(feed)).items()}

    async def rendition_versions_of(self, feed: str) -> dict[str, tuple[str, dt.datetime, bool]]:
        """fmt -> (ETag, Last-Modified, whether its spans are stored) of a feed's renditions."""
        rows = await self._read(
            "SELECT fmt, etag, last_modified, spans IS NOT NULL FROM renditions WHERE feed = ?", (feed,)
        )
        return {fmt: (etag, from_iso(lm), bool(spanned)) for fmt, etag, lm, spanned in rows}

    async def feeds_of_tombstones_expiring(self, start: dt.datetime, end: dt.datetime) -> set[str]:
        """Feeds that carry a tombstone whose window ends in [start, end): they re-render without it."""
        rows = await self._read(
            "SELECT e.date, t.slug FROM events e LEFT JOIN event_topics et ON et.event = e.key "
            "LEFT JOIN topics t ON t.id = et.topic_id WHERE e.live = 0 AND e.deleted_at >= ? AND e.deleted_at < ?",
            (iso(start), iso(end)),
        )
        feeds = {"latest"} if rows else set()
        for date, slug in rows:
            feeds.add(f"dates/{date}")
            if slug:
                feeds.add(f"topics/{slug}")
        return feeds

    async def feed_names(self) -> list[str]:
        """Every feed the store can render: latest, each date with events, each topic."""
        dates = await self._read("SELECT DISTINCT date FROM events WHERE live = 1 ORDER BY date")
        topics = await self._read("SELECT slug FROM topics WHERE events > 0 ORDER BY slug")
        return ["latest"] + [f"dates/{d}" for (d,) in dates] + [f"topics/{s}" for (s,) in topics]

    async def topic(self, slug: str) -> TopicRow | None:
        rows = await self._read(
            "SELECT slug, name, events, updated, slots FROM topics WHERE slug = ?", (slug,)
        )
        return _topic_row(rows[0]) if rows else None

    async def topic_index(self) -> list[tuple[str, str, int, str | None]]:
        """(slug, name, events, updated as stored) of every topic with events, most events first."""
        rows = await self._read("SELECT slug, name, events, updated FROM topics WHERE events > 0 ORDER BY events DESC, slug")
        return [tuple(r) for r in rows]

    async def topics(self) -> list[TopicRow]:
        rows = await self._read(
            "SELECT slug, name, events, updated, slots FROM topics WHERE events > 0 ORDER BY events DESC, slug"
        )
        return [_topic_row(r) for r in rows]

    async def pending(self) -> BatchResult:
        """What a change made when the store was opened (keying its topics again) left to publish:
        feeds, changed events, topics to render whole. Publishing takes it, then `clear_pending`."""
        rows = await self._read("SELECT kind, value FROM pending")
        out = BatchResult()
        for kind, value in rows:
            {"feed": out.feeds, "event": out.changed, "renamed": out.renamed}[kind].add(value)
        return out

    async def clear_pending(self, done: BatchResult) -> None:
        """Forget what was published of `pending` (a later change may have added more)."""
        rows = [("feed", f) for f in done.feeds] + [("event", e) for e in done.changed]
        rows += [("renamed", s) for s in done.renamed]
        if rows:
            await self._write(lambda conn: conn.executemany("DELETE FROM pending WHERE kind = ? AND value = ?", rows))

    async def dates(self) -> list[str]:
        rows = await self._read("SELECT DISTINCT date FROM events WHERE live = 1 ORDER BY date")
        return [d for (d,) in rows]

    async def count_events(self) -> int:
        rows = await self._read("SELECT count(*) FROM events WHERE live = 1")
        return int(rows[0][0])

    async def events(self, feed: FeedKey, limit: int, offset: int = 0) -> list[Event]:
        """Live events of a feed, newest first."""
        return await self._events_from_rows(await self._feed_rows(EVENT_COLUMNS, feed, limit, offset))

    async def members(self, feed: FeedKey, limit: int) -> list[Member]:
        """What a document needs of the live events of `latest` or a date feed, newest first."""
        return [_member(r) for r in await self._feed_rows(MEMBER_COLUMNS, feed, limit)]

    async def _feed_rows(self, cols: str, feed: FeedKey, limit: int, offset: int = 0) -> list[Any]:
        order = "ORDER BY e.date DESC, e.key DESC LIMIT ? OFFSET ?"
        if feed.kind == "latest":
            sql, args = f"SELECT {cols} FROM events e WHERE e.live = 1 {order}", ()
        elif feed.kind == "date":
            sql, args = f"SELECT {cols} FROM events e WHERE e.live = 1 AND e.date = ? {order}", (feed.value,)
        else:
            sql = (
                f"SELECT {cols} FROM topics t JOIN event_topics et ON et.topic_id = t.id AND et.live = 1 "
                f"JOIN events e ON e.key = et.event WHERE t.slug = ? "
                "ORDER BY et.date DESC, et.event DESC LIMIT ? OFFSET ?"
            )
            args = (feed.value,)
        return await self._read(sql, (*args, limit, offset))

    async def tombstones(self, feed: FeedKey, since: dt.datetime) -> list[Tombstone]:
        """Events of `latest` or of a date feed deleted after `since` (topic pages find theirs
        among their slots), most recently deleted first."""
        sql, args = "SELECT guid, deleted_at FROM events WHERE live = 0 AND deleted_at >= ?", (iso(since),)
        if feed.kind == "date":
            sql, args = sql + " AND date = ?", (iso(since), feed.value)
        rows = await self._read(sql + " ORDER BY deleted_at DESC, key LIMIT 100", args)
        return [Tombstone(guid, from_iso(deleted)) for guid, deleted in rows]

    async def members_of(self, keys: Sequence[str]) -> list[Member]:
        """The live ones of these events, as documents show them."""
        return [_member(r) for r in await self._read_keys(f"SELECT {MEMBER_COLUMNS} FROM events e WHERE e.live = 1 AND e.key IN ({{keys}})", keys)]

    async def events_of(self, keys: Sequence[str]) -> dict[str, Event]:
        """Events by key, whole (their pages decoded): those whose entries must be made."""
        rows = await self._read_keys(f"SELECT {EVENT_COLUMNS} FROM events e WHERE e.key IN ({{keys}})", keys)
        return {e.key: e for e in await self._events_from_rows(rows)}

    async def link_fields(self, keys: Sequence[str]) -> dict[str, tuple[str, list[str]]]:
        """Of each event's current page: its summary (markdown) and the URLs of its related events,
        where the links of its entry come from."""
        rows = await self._read_keys("SELECT key, doc FROM events WHERE key IN ({keys})", keys)
        out = {}
        for key, doc in rows:
            page = json.loads(doc)
            out[key] = (page["summary"], [r[1] for r in page["related"]])
        return out

    async def topic_slots(self, slug: str) -> int:
        """How many events ever joined the topic: the length of its stable page sequence."""
        rows = await self._read("SELECT slots FROM topics WHERE slug = ?", (slug,))
        return int(rows[0][0]) if rows else 0

    async def topic_slot_members(self, slug: str, start: int, stop: int) -> tuple[list[Member], list[Tombstone]]:
        """Events in slots [start, stop) of a topic (by arrival), newest first: the live ones,
        and the deleted ones' tombstones. One range of the topic's rows (they are kept in slot
        order, with what a member needs)."""
        rows = await self._read(
            "SELECT et.event, et.rev, et.updated, et.live FROM topics t JOIN event_topics et ON et.topic_id = t.id "
            "WHERE t.slug = ? AND et.slot >= ? AND et.slot < ? ORDER BY et.slot DESC",
            (slug, start, stop),
        )
        live = [Member(key, rev, from_iso(updated)) for key, rev, updated, member in rows if member]
        # Not a member any more: deleted (a tombstone), or reworded out of the topic (nothing).
        gone = [key for key, _, _, member in rows if not member]
        found = await self._read_keys(
            "SELECT key, guid, deleted_at FROM events WHERE live = 0 AND deleted_at IS NOT NULL AND key IN ({keys})", gone
        )
        deleted = {key: Tombstone(guid, from_iso(at)) for key, guid, at in found}
        return live, [deleted[key] for key in gone if key in deleted]

    async def newest_arrivals(self, block: int) -> tuple[dict[str, int], list[tuple[str, int, int, int]]]:
        """When documents' newest events arrived, to publish a bulk load in arrival order: each
        date's greatest `seq`, and for each topic and block of `block` consecutive slots (a
        topic page's worth) the topic's slot count, the block's first slot and greatest `seq`."""
        dates = await self._read("SELECT date, max(seq) FROM events GROUP BY date")
        blocks = await self._read(
            "SELECT t.slug, t.slots, et.slot / ? * ?, max(et.seq) FROM event_topics et "
            "JOIN topics t ON t.id = et.topic_id GROUP BY et.topic_id, et.slot / ?",
            (block, block, block),
        )
        return {d: n for d, n in dates}, [(slug, slots, first, seq) for slug, slots, first, seq in blocks]

    async def topic_ranks(self, slug: str, keys: Iterable[str]) -> dict[str, int]:
        """Slot index (0 = first to arrive) of each of `keys` that belongs to the topic."""
        rows = await self._read_keys(
            "SELECT et.event, et.slot FROM event_topics et JOIN topics t ON t.id = et.topic_id "
            "WHERE t.slug = ? AND et.event IN ({keys})",
            list(set(keys)),
            (slug,),
        )
        return {k: int(r) for k, r in rows}

    async def neighbour_dates(self, day: str) -> tuple[str | None, str | None]:
        """The nearest earlier and later dates that have live events."""
        before = await self._read(
            "SELECT date FROM events WHERE live = 1 AND date < ? ORDER BY date DESC LIMIT 1", (day,)
        )
        after = await self._read(
            "SELECT date FROM events WHERE live = 1 AND date > ? ORDER BY date LIMIT 1", (day,)
        )
        return (before[0][0] if before else None, after[0][0] if after else None)

    async def created(self) -> dt.datetime:
        """When this store was made: the date of a feed that has never had anything in it."""
        rows = await self._read("SELECT value FROM meta WHERE key = 'created'")
        return from_iso(rows[0][0])

    async def newest_date(self) -> str | None:
        rows = await self._read("SELECT max(date) FROM events WHERE live = 1")
        return rows[0][0] if rows else None

    @contextlib.asynccontextmanager
    async def bulk(self, writes_per_commit: int = 1) -> AsyncIterator[None]:
        """Many write transactions in a row (a bulk load). SQLite copies the write-ahead log into
        the database inside whichever commit crosses 16 MB of log: that commit then waits for
        the copy and the disk, and the work after it waits for the commit. Here commits never do
        it: after each, a reader connection's thread does, beside the next write (one copy at a
        time). The log file is cut back whenever it starts again from its beginning, so its size
        is what it holds.

        `writes_per_commit` > 1 (a single writer, such as an ingest) keeps one transaction open
        for that many writes: each commit writes every page it changed to the log, and writes
        that change pages all over the store (topic memberships) change many of the same ones.
        Other connections wait for the write lock meanwhile. A write that fails rolls back
        everything since the last commit; the writes done when the block ends (each is whole)
        are committed then, even if it ends with an error from elsewhere."""
        await self._run(lambda conn: conn.execute("PRAGMA wal_autocheckpoint=0").execute("PRAGMA journal_size_limit=0"))
        self._bulk, self._per_commit = True, max(1, writes_per_commit)

        def finish(conn: sqlite3.Connection) -> None:
            # On the connection's thread: after any write still running there.
            self._uncommitted = 0
            if conn.in_transaction:
                conn.execute("COMMIT")

        try:
            yield
        finally:
            self._per_commit = 1
            async with self._write_lock:
                await self._run(finish)
            self._bulk = False
            if self._checkpointing is not None:
                await asyncio.gather(self._checkpointing, return_exceptions=True)
                self._checkpointing = None
            await self._run(
                lambda conn: conn.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}").execute("PRAGMA journal_size_limit=-1")
            )

    async def _checkpoint_behind(self) -> None:
        """After a write in bulk mode (under the write lock): start a copy of the log on a reader,
        unless one is under way. Copies beside the writes never catch up with them, and the log
        starts again from its beginning only after a complete copy: once it holds more than
        BULK_WAL_BYTES, the copy is finished here, between two writes (complete unless another
        connection still reads an older snapshot, as a publishing process beside this one may)."""
        try:
            over = os.stat(f"{self.path}-wal").st_size > BULK_WAL_BYTES
        except OSError:
            over = False
        running = self._checkpointing
        if running is not None and not running.done():
            if not over:
                return
            await asyncio.gather(running, return_exceptions=True)
        if running is not None and not running.cancelled() and (failed := running.exception()):
            log.warning("store: checkpoint beside the writes failed: %s", failed)
        self._checkpointing = None
        if over or not self._max_readers:
            await self._run(lambda conn: conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall())
        else:
            self._checkpointing = asyncio.ensure_future(self._read("PRAGMA wal_checkpoint(PASSIVE)"))

    async def checkpoint(self) -> None:
        """Copy what the write-ahead log holds into the database now, without waiting for
        readers. SQLite otherwise does it inside whichever commit crosses its threshold (16 MB of
        log), and that commit, which may be the one a reader waits for, takes tens of ms longer."""
        await self._db.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")

    async def release_memory(self) -> None:
        """Give back SQLite's page cache (a process about to wait on others)."""
        for conn in [self._db, *self._readers]:
            await conn.execute("PRAGMA shrink_memory")
        trim_heap()

    async def resolve_links(self, paths: Iterable[str]) -> dict[str, tuple[str, str]]:
        """For page paths (any version), the (relpath, source) of their event's current version."""
        rows = await self._read("SELECT value FROM meta WHERE key = 'links'")
        version = int(rows[0][0]) if rows else 0
        if version != self._links_version or len(self._links) > 200_000:
            self._links, self._links_version = {}, version
        wanted = set(paths)
        missing = [p for p in wanted if p not in self._links]
        rows = await self._read_keys(
            "SELECT a.path, e.relpath, e.source FROM aliases a JOIN events e ON e.key = a.chain "
            "WHERE +e.live = 1 AND a.path IN ({keys})",
            missing,
        )
        found = {p: (r, s) for p, r, s in rows}
        self._links.update({p: found.get(p) for p in missing})
        return {p: target for p in wanted if (target := self._links.get(p))}

    async def _events_from_rows(self, rows: list[Any]) -> list[Event]:
        if not rows:
            return []
        topic_rows = await self._read_keys(
            "SELECT et.event, t.slug, t.name, et.spelling FROM event_topics et JOIN topics t ON t.id = et.topic_id "
            "WHERE et.live = 1 AND et.event IN ({keys}) ORDER BY t.slug",
            [r[0] for r in rows],
        )
        topics: dict[str, list[Topic]] = {}
        whole: dict[str, set[str]] = {}  # the names with a comma each event is in
        for event_key, slug, name, spelling in topic_rows:
            topics.setdefault(event_key, []).append(Topic(slug, name))
            if "," in spelling:
                whole.setdefault(event_key, set()).add(run_key(comma_parts(spelling)))
        events = []
        for key, guid, doc, published, updated, relpath, source, deleted_at, seq, digest, rev in rows:
            page = page_from_json(doc)
            # Topics in the page's own order: heading first, then contexts, its lists resolved as
            # they were when it joined its topics (by the names with a comma it is in).
            names = page.topic_names(_among(whole.get(key, set())))
            by_key = {topic_key(t.name): t for t in topics.get(key, [])}
            ordered = [by_key.pop(topic_key(n)) for n in names if topic_key(n) in by_key]
            events.append(
                Event(
                    key=key,
                    guid=guid,  # as stored: a uuid5 per event per document was ~3% of publishing
                    page=page,
                    topics=tuple(ordered + list(by_key.values())),
                    published=from_iso(published),
                    updated=from_iso(updated),
                    relpath=relpath,
                    source=source,
                    deleted=from_iso(deleted_at) if deleted_at else None,
                    seq=seq,
                    digest=digest,
                    rev=rev,
                )
            )
        return events


def _among(keys: set[str]) -> Callable[[tuple[str, ...]], bool]:
    return lambda run: run_key(run) in keys


EVENT_COLUMNS = "e.key, e.guid, e.doc, e.published, e.updated, e.relpath, e.source, e.deleted_at, e.seq, e.hash, e.rev"
MEMBER_COLUMNS = "e.key, e.rev, e.updated"


def _member(row: Any) -> Member:
    key, rev, updated = row
    return Member(key, rev, from_iso(updated))


def _decoded(rows: list[Any]) -> list[Rendition]:
    out = []
    for feed, fmt, etag, last_modified, content_type, spans, gz, br in rows:
        body = igzip.decompress(gz)
        out.append(Rendition(feed, fmt, body, gz, br, etag, from_iso(last_modified), content_type, spans or b""))
    return out


def _bump(conn: sqlite3.Connection, counter: str) -> int:
    conn.execute(
        "INSERT INTO meta VALUES (?, '1') ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        (counter,),
    )
    return int(conn.execute("SELECT value FROM meta WHERE key = ?", (counter,)).fetchone()[0])


def _topic_row(row: Any) -> TopicRow:
    slug, name, events, updated, slots = row
    return TopicRow(slug, name, int(events), from_iso(updated) if updated else None, int(slots))


# ----- the batch, run on the writer thread inside one transaction ------------------------------------


def _version_of(conn: sqlite3.Connection, path: str) -> tuple[Version, dt.datetime | None] | None:
    row = conn.execute("SELECT version, modified FROM pages WHERE path = ? AND deleted_at IS NULL", (path,)).fetchone()
    if row is None:
        return None
    path_, first, ts, listed = json.loads(row[0])
    return Version(path_, first, from_iso(ts) if ts else None, tuple(listed)), from_iso(row[1]) if row[1] else None


def _version_json(v: Version) -> str:
    return json.dumps([v.path, v.first, iso(v.first_ts) if v.first_ts else None, list(v.listed)])


def _day(path: str) -> str:
    return path[:17]  # `/news/YYYY/MM/DD/`


def _component(conn: sqlite3.Connection, start: set[str]) -> tuple[set[str], set[str]]:
    """Every page path linked to `start` through Changes lists or a day listing's evidence, and
    the event keys they had."""
    paths: set[str] = set()
    keys: set[str] = set()
    todo = set(start)
    while todo:
        path = todo.pop()
        if path in paths:
            continue
        paths.add(path)
        row = conn.execute("SELECT chain FROM aliases WHERE path = ?", (path,)).fetchone()
        if row:
            keys.add(row[0])
            todo |= {p for (p,) in conn.execute("SELECT path FROM aliases WHERE chain = ?", (row[0],))} - paths
        todo |= {p for (p,) in conn.execute("SELECT linked FROM links WHERE page = ?", (path,))} - paths
        todo |= {p for (p,) in conn.execute("SELECT page FROM links WHERE linked = ?", (path,))} - paths
        todo |= {p for (p,) in conn.execute("SELECT target FROM evidence WHERE page = ?", (path,))} - paths
        todo |= {p for (p,) in conn.execute("SELECT page FROM evidence WHERE target = ?", (path,))} - paths
    return paths, keys


def _apply(
    conn: sqlite3.Connection,
    incoming: Sequence[Incoming],
    deleted: list[str],
    now: dt.datetime,
    memo: TopicMemo,
    listings: Sequence[IncomingListing] = (),
) -> BatchResult:
    result = BatchResult()
    dirty: set[str] = set()
    days: set[str] = set()
    # The batch's pages as parsed: settling a chain reads its current version from here rather
    # than reading back and decoding what was just written.
    fresh: dict[str, Incoming] = {}
    for item in incoming:
        page, doc, digest = item.page, item.doc, item.digest
        fresh[page.path] = item
        modified = iso(item.modified) if item.modified else None
        row = conn.execute(
            "SELECT hash, deleted_at, relpath, source, modified FROM pages WHERE path = ?", (page.path,)
        ).fetchone()
        if row and row[:4] == (digest, None, item.relpath, item.source):
            if row[4] != modified:
                conn.execute("UPDATE pages SET modified = ? WHERE path = ?", (modified, page.path))
            continue
        version = item.version
        conn.execute(
            "INSERT INTO pages (path, source, relpath, hash, doc, version, chain, seen_at, deleted_at, modified, day, "
            "lead, image) VALUES (?,?,?,?,?,?,?,?,NULL,?,?,?,?) ON CONFLICT(path) DO UPDATE SET source=excluded.source, "
            "relpath=excluded.relpath, hash=excluded.hash, doc=excluded.doc, version=excluded.version, "
            "seen_at=excluded.seen_at, deleted_at=NULL, modified=excluded.modified, lead=excluded.lead, "
            "image=excluded.image",
            (
                page.path, item.source, item.relpath, digest, doc, item.version_json, page.path, iso(now), modified,
                _day(page.path), page.sources[0].url if page.sources else None, page.image,
            ),
        )
        conn.execute("DELETE FROM links WHERE page = ?", (page.path,))
        conn.executemany(
            "INSERT OR IGNORE INTO links VALUES (?, ?)", [(page.path, p) for p in linked_paths(version) - {page.path}]
        )
        dirty |= linked_paths(version)
        days.add(_day(page.path))
    for path in deleted:
        cur = conn.execute(
            "UPDATE pages SET deleted_at = ? WHERE path = ? AND deleted_at IS NULL", (iso(now), path)
        )
        if cur.rowcount:
            fresh.pop(path, None)
            dirty.add(path)
            days.add(_day(path))
            dirty |= {p for (p,) in conn.execute("SELECT linked FROM links WHERE page = ?", (path,))}
            conn.execute("DELETE FROM links WHERE page = ?", (path,))
    for listing in listings:
        dirty |= _store_listing(conn, listing)
        days.add(_day(listing.listing.path))
    for day in sorted(days):
        dirty |= _weigh_evidence(conn, day)
    if dirty:
        _bump(conn, "links")  # where related links lead may have changed
    done: set[str] = set()
    for path in sorted(dirty):
        if path in done:
            continue
        paths, old_keys = _component(conn, {path})
        done |= paths
        _settle_chain(conn, paths, old_keys, now, result, memo, fresh)
    for day in sorted(days | {_day(p) for p in done}):
        _find_unlisted(conn, day, result)
    _refresh_topics(conn, sorted(result.topic_ids), now, result)
    return result


def _store_listing(conn: sqlite3.Connection, item: IncomingListing) -> set[str]:
    """Keep a day listing; the pages it names now or named before (their heading may move)."""
    listing = item.listing
    row = conn.execute("SELECT hash FROM listings WHERE path = ?", (listing.path,)).fetchone()
    if row and row[0] == item.digest:
        return set()
    conn.execute(
        "INSERT INTO listings VALUES (?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET source=excluded.source, "
        "relpath=excluded.relpath, day=excluded.day, hash=excluded.hash",
        (listing.path, item.source, item.relpath, _day(listing.path), item.digest),
    )
    before = {p for (p,) in conn.execute("SELECT page FROM listed WHERE listing = ?", (listing.path,))}
    conn.execute("DELETE FROM listed WHERE listing = ?", (listing.path,))
    headings: dict[str, str | None] = {}
    for entry in listing.entries:
        headings[entry.path] = headings.get(entry.path) or entry.heading
    conn.executemany("INSERT INTO listed VALUES (?,?,?)", [(p, listing.path, h) for p, h in headings.items()])
    return before | set(headings)


def _weigh_evidence(conn: sqlite3.Connection, day: str) -> set[str]:
    """Which unlisted pages of `day` are earlier renderings of a listed one (feeds.chains
    listing_evidence); the pages whose evidence changed."""
    listed = {p for (p,) in conn.execute("SELECT l.page FROM listings s JOIN listed l ON l.listing = s.path WHERE s.day = ?", (day,))}
    pages = [
        DayPage(path, lead, image)
        for path, lead, image in conn.execute(
            "SELECT path, lead, image FROM pages WHERE day = ? AND deleted_at IS NULL ORDER BY path", (day,)
        )
    ]
    found = {p: t for p, (t, _) in listing_evidence(pages, listed).items() if t} if listed else {}
    old = dict(conn.execute("SELECT page, target FROM evidence WHERE page IN (SELECT path FROM pages WHERE day = ?)", (day,)))
    if old == found:
        return set()
    conn.executemany("DELETE FROM evidence WHERE page = ?", [(p,) for p in old if old[p] != found.get(p)])
    conn.executemany("INSERT OR REPLACE INTO evidence VALUES (?,?)", [(p, t) for p, t in found.items() if old.get(p) != t])
    moved = {p for p in old.keys() | found.keys() if old.get(p) != found.get(p)}
    return moved | {old[p] for p in moved if p in old} | {found[p] for p in moved if p in found}


def _find_unlisted(conn: sqlite3.Connection, day: str, result: BatchResult) -> None:
    """Events of a listed day none of whose pages the listing names (directly, or by evidence)."""
    listed = {p for (p,) in conn.execute("SELECT l.page FROM listings s JOIN listed l ON l.listing = s.path WHERE s.day = ?", (day,))}
    found: dict[str, tuple[str, str]] = {}
    if listed:
        rows = conn.execute(
            "SELECT path, lead, image, chain, relpath FROM pages WHERE day = ? AND deleted_at IS NULL ORDER BY path", (day,)
        ).fetchall()
        why = listing_evidence([DayPage(p, lead, image) for p, lead, image, _, _ in rows], listed)
        chains: dict[str, list[tuple[str, str]]] = {}
        for path, _, _, chain, relpath in rows:
            chains.setdefault(chain, []).append((path, relpath))
        for chain, members in chains.items():
            everything = {p for (p,) in conn.execute("SELECT path FROM aliases WHERE chain = ?", (chain,))}
            if everything & listed or any(why.get(p, (None, ""))[0] for p, _ in members):
                continue
            # Named by the page that says most about why (one with a source), then the newest path.
            path, relpath = max(members, key=lambda m: ("no source" not in why.get(m[0], (None, ""))[1], m))
            found[chain] = (relpath, f"not named by its day's listing, and {why.get(path, (None, 'it is not listed'))[1]}")
    old = {k for (k,) in conn.execute("SELECT key FROM unlisted WHERE day = ?", (day,))}
    conn.executemany("DELETE FROM unlisted WHERE key = ?", [(k,) for k in old - found.keys()])
    for key, (relpath, reason) in found.items():
        conn.execute(
            "INSERT INTO unlisted VALUES (?,?,?,?) ON CONFLICT(key) DO UPDATE SET relpath=excluded.relpath, "
            "reason=excluded.reason",
            (key, day, relpath, reason),
        )
        if key not in old:
            result.unlisted[relpath] = reason


def _settle_chain(
    conn: sqlite3.Connection,
    paths: set[str],
    old_keys: set[str],
    now: dt.datetime,
    result: BatchResult,
    memo: TopicMemo,
    fresh: dict[str, Incoming],
) -> None:
    versions: dict[str, Version] = {}
    times: dict[str, dt.datetime] = {}
    for path in sorted(paths):
        # A page of this batch has its version at hand (stored just before); others are read back.
        item = fresh.get(path)
        if item is not None:
            versions[path] = item.version
            if item.modified:
                times[path] = item.modified
        elif (known := _version_of(conn, path)) is not None:
            versions[path] = known[0]
            if known[1]:
                times[path] = known[1]
    if not versions:
        for key in old_keys:
            _retire_event(conn, key, now, result)
        return
    earlier: dict[str, set[str]] = {}
    for page, target in _read_keys_sync(conn, "SELECT page, target FROM evidence WHERE page IN ({keys})", sorted(versions)):
        if target in versions:
            earlier.setdefault(target, set()).add(page)
    chain = [with_predecessors(v, earlier.get(p, ())) for p, v in versions.items()]
    key = chain_root(chain, times)
    current = current_version(chain)
    conn.executemany("INSERT OR REPLACE INTO aliases VALUES (?, ?)", [(p, key) for p in paths])
    conn.executemany("UPDATE pages SET chain = ? WHERE path = ?", [(key, p) for p in versions])
    for old in old_keys - {key}:
        # The chain turned out to start earlier than thought: the old id leaves every feed (Atom
        # carries a tombstone for it, if it was ever published) and the event goes on under its
        # first version's id.
        _retire_event(conn, old, now, result, folded=True)
    _upsert_event(conn, key, current, now, result, memo, fresh.get(current), times.get(current))


def _read_keys_sync(conn: sqlite3.Connection, sql: str, keys: Sequence[str]) -> list[Any]:
    rows: list[Any] = []
    for i in range(0, len(keys), 500):
        part = keys[i : i + 500]
        rows += conn.execute(sql.format(keys=",".join("?" * len(part))), part).fetchall()
    return rows


def _retire_event(conn: sqlite3.Connection, key: str, now: dt.datetime, result: BatchResult, folded: bool = False) -> None:
    """The event leaves every feed. One folded into an earlier version's event that no document
    ever showed (it has no entry yet: its versions arrived in different batches of one load) is
    forgotten, so that the store is what it would be had they arrived together."""
    if folded and conn.execute("SELECT 1 FROM entries WHERE event = ?", (key,)).fetchone() is None:
        _forget_event(conn, key, result)
        return
    row = conn.execute(
        "UPDATE events SET live = 0, deleted_at = ?, updated = ?, rev = rev + 1 WHERE key = ? AND live = 1 RETURNING rev",
        (iso(now), iso(now), key),
    ).fetchone()
    if row is None:
        return
    result.deleted.add(key)
    result.added.discard(key)
    result.changed.discard(key)
    result.feeds |= _feeds_of(conn, key)
    topic_ids = [t for (t,) in conn.execute("SELECT topic_id FROM event_topics WHERE event = ?", (key,))]
    conn.execute("UPDATE event_topics SET live = 0, rev = ?, updated = ? WHERE event = ?", (row[0], iso(now), key))
    result.topic_ids.update(topic_ids)
    result.rescan.update(topic_ids)


def _forget_event(conn: sqlite3.Connection, key: str, result: BatchResult) -> None:
    memberships = conn.execute(
        "SELECT et.topic_id, et.slot, t.slug FROM event_topics et JOIN topics t ON t.id = et.topic_id WHERE et.event = ?",
        (key,),
    ).fetchall()
    conn.execute("DELETE FROM event_topics WHERE event = ?", (key,))
    for topic_id, slot, slug in memberships:
        # Later members move down one slot (two steps: slots are the primary key).
        conn.execute("UPDATE event_topics SET slot = -slot - 1 WHERE topic_id = ? AND slot > ?", (topic_id, slot))
        conn.execute("UPDATE event_topics SET slot = -slot - 2 WHERE topic_id = ? AND slot < 0", (topic_id,))
        conn.execute("UPDATE topics SET slots = slots - 1 WHERE id = ?", (topic_id,))
        result.topic_ids.add(topic_id)
        result.rescan.add(topic_id)
        result.reslotted.add(slug)
        result.feeds.add(f"topics/{slug}")
    forget(conn, key, result)  # what its page made known
    conn.execute("DELETE FROM events WHERE key = ?", (key,))
    conn.execute("DELETE FROM unlisted WHERE key = ?", (key,))
    result.added.discard(key)
    result.changed.discard(key)


def event_updated(page: Page, modified: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """When an event last changed, as its source says: the newest timestamp of its Changes list,
    else the time the source records for its current page; never later than now."""
    stamps = [c.timestamp for c in page.changes if c.timestamp is not None]
    when = max(stamps) if stamps else modified or now
    return min(when, now)


def _listed_heading(conn: sqlite3.Connection, path: str) -> str | None:
    row = conn.execute(
        "SELECT heading FROM listed WHERE page = ? AND heading IS NOT NULL ORDER BY listing LIMIT 1", (path,)
    ).fetchone()
    return str(row[0]) if row else None


def _upsert_event(
    conn: sqlite3.Connection,
    key: str,
    current: str,
    now: dt.datetime,
    result: BatchResult,
    memo: TopicMemo,
    item: Incoming | None,
    modified: dt.datetime | None = None,
) -> None:
    """`item`: the current version's page, when this batch brought it (else it is read);
    `modified`: the time its source records for it."""
    if item is not None:
        page, doc, relpath, source = item.page, item.doc, item.relpath, item.source
    else:
        doc, relpath, source = conn.execute("SELECT doc, relpath, source FROM pages WHERE path = ?", (current,)).fetchone()
        page = page_from_json(doc)
    if page.heading is None and (heading := _listed_heading(conn, current)):
        # Old renderings have no `#####` heading: the day listing gives it.
        page = replace(page, heading=heading)
        doc = page_to_json(page)
    digest = content_hash(f"{doc}\n{relpath}\n{source}".encode("utf-8"))
    at = iso(event_updated(page, modified, now))
    old = conn.execute("SELECT hash, live, first_seen, seq, updated FROM events WHERE key = ?", (key,)).fetchone()
    if old and old[0] == digest and old[1] == 1:
        return
    before = _feeds_of(conn, key) if old else set()
    first_seen = old[2] if old else at
    seq = old[3] if old else conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM events").fetchone()[0]
    (rev,) = conn.execute(
        "INSERT INTO events (key, guid, date, current, relpath, source, hash, doc, published, updated, first_seen, seq, "
        "live, deleted_at, rev) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,1,NULL,1) ON CONFLICT(key) DO UPDATE SET "
        "date=excluded.date, current=excluded.current, relpath=excluded.relpath, source=excluded.source, "
        "hash=excluded.hash, doc=excluded.doc, published=excluded.published, updated=excluded.updated, live=1, "
        "deleted_at=NULL, rev=rev + 1 RETURNING rev",
        (
            key,
            item.guid if item is not None and item.page.path == key else event_guid(key),
            page.date.isoformat(),
            current,
            relpath,
            source,
            digest,
            doc,
            iso(day_start(page.date)),
            at,
            first_seen,
            seq,
        ),
    ).fetchone()
    if old is None:
        result.added.add(key)
    elif key not in result.added:
        result.changed.add(key)
    result.deleted.discard(key)
    result.feeds |= before | {"latest", f"dates/{page.date.isoformat()}"}
    set_topics(conn, key, page, (page.date.isoformat(), seq, rev, at), memo, result, old[4] if old else None)
