"""Connections: one writer serialised by a lock (one `BEGIN IMMEDIATE` transaction per batch), read-only reader
connections, migrations on open, and bulk mode (several batches per transaction, the log copied between writes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

import aiosqlite

from feeds.errors import StoreError
from feeds.ids import FOLDING
from feeds.model import (
    utcnow,
)
from feeds.places import PLACE_RULE
from feeds.process import trim_heap
from feeds.store.entry_blobs import pack_columns
from feeds.store.failures import quick_check, said, translate
from feeds.store.rekey import context_rule_of, folding_of, rekey
from feeds.store.retime import TIMES, retime, times_of
from feeds.store.schema import MIGRATIONS, SCHEMA_VERSION, _statements
from feeds.store.search_writes import ensure_index
from feeds.store.topic_writes import ALIASES_KEY, TopicMemo

T = TypeVar("T")


log = logging.getLogger("feeds.store")


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
    pending._thread.daemon = True
    try:
        return await pending
    except sqlite3.Error as exc:
        # aiosqlite stops its thread without waiting for it: unwaited, the thread could finish on
        # a closed event loop and print a traceback ("Event loop is closed") after the error line.
        await asyncio.to_thread(pending._thread.join, 10)
        raise translate(exc, path) or StoreError(f"store: unable to open {path}: {exc}") from exc


async def _on_thread(conn: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    # aiosqlite runs every call on its connection's own thread; running a whole batch (or a
    # query and what is made of its rows) there as one function keeps it to one hop instead of
    # one per statement.
    return await conn._execute(fn, conn._conn)  # type: ignore[no-untyped-call,no-any-return]


class StoreBase:
    """Connections: one writer behind a lock, reader connections, migrations, bulk mode."""

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
    async def open(
        cls,
        path: str | Path,
        cache_kib: int = CACHE_KIB,
        readers: int = READERS,
        topic_aliases: Sequence[tuple[str, Sequence[str]]] | None = None,
        check: bool = False,
    ) -> Self:
        """Open (creating or upgrading) a store. `topic_aliases`: the configured groups of names that
        are one topic (Settings.topic_aliases); when they differ from the store's, its topics are
        keyed again. None (a command without settings) leaves them as they are. `check`: SQLite's
        quick_check first (failures.QUICK_CHECK_SECONDS at most), StoreDamaged if it finds damage."""
        path = str(path)
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            db = await _connect(path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"store: unable to open {path}: {exc}") from exc
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
            # Statement journals in memory, not in temporary files (docs/architecture.md).
            await db.execute("PRAGMA temp_store=MEMORY")
            if check:
                await _on_thread(db, lambda conn: quick_check(conn, path))
            # An in-memory database exists only on its own connection.
            store = cls(db, path, readers if path != ":memory:" else 0, cache_kib)
            await store._migrate(topic_aliases)
            # A store that opens but cannot be written (a read-only file) fails here, in one line,
            # not at the first refresh of a server that has started.
            await db.execute("BEGIN IMMEDIATE")
            try:
                await db.execute("UPDATE meta SET value = value WHERE key = (SELECT min(key) FROM meta)")
            finally:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
        except BaseException as exc:
            await db.close()
            if isinstance(exc, sqlite3.Error):
                raise translate(exc, path) or StoreError(f"store: unable to open {path}: {exc}") from exc
            raise
        return store

    async def close(self) -> None:
        for reader in self._readers:
            await reader.close()
        self._readers.clear()
        self._opened = 0
        await self._db.close()

    async def _read(
        self, sql: str, args: Sequence[Any] = (), then: Callable[[list[Any]], list[Any]] | None = None
    ) -> list[Any]:
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
            with said(self.path):
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

    async def _read_keys(
        self,
        sql: str,
        keys: Sequence[Any],
        prefix: Sequence[Any] = (),
        then: Callable[[list[Any]], list[Any]] | None = None,
    ) -> list[Any]:
        """Rows of `sql`, whose `{keys}` is an `IN` list, for many keys: in parts on the reader
        connections at once. Each key is a random read (an event, an entry), which on a cold
        page cache is a disk read; in parts, they overlap. `then`: as for `_read`, per part."""
        if not keys:
            return []
        parts = max(1, min(self._max_readers, len(keys) // 16))
        size = min(500, -(-len(keys) // parts))
        chunks = [keys[i : i + size] for i in range(0, len(keys), size)]
        found = await asyncio.gather(
            *(self._read(sql.format(keys=",".join("?" * len(c))), (*prefix, *c), then) for c in chunks)
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
        with said(self.path):
            return await _on_thread(self._db, fn)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def tx(conn: sqlite3.Connection) -> T:
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                self._uncommitted = 0
                if conn.in_transaction:  # SQLite ends some failed transactions itself (a full disk)
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
                except (sqlite3.Error, StoreError) as exc:
                    log.warning("store: checkpoint after a write failed: %s", exc)
            return result

    async def _migrate(self, aliases: Sequence[tuple[str, Sequence[str]]] | None = None) -> None:
        wanted = None if aliases is None else json.dumps([[shown, list(others)] for shown, others in aliases])

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
                conn.create_function("pack_entry", 4, pack_columns, deterministic=True)  # schema 21
                for number in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _statements(MIGRATIONS[number]):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version={number}")
                ensure_index(conn)  # before re-keying, which reads it no more than the batches do
                row = conn.execute("SELECT value FROM meta WHERE key = ?", (ALIASES_KEY,)).fetchone()
                realias = wanted is not None and wanted != (row[0] if row else "[]")
                if realias:
                    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (ALIASES_KEY, wanted))
                if folding_of(conn) != FOLDING or context_rule_of(conn) != PLACE_RULE or realias:
                    # Topic keys made by another folding (schema 6's transliteration, another
                    # OpenCC), context lists resolved by another rule, or other aliases: topics
                    # are keyed, split, joined and resolved again; their feeds publish next.
                    rekey(conn, utcnow())
                if times_of(conn) != TIMES:
                    # Times a source gave (mtimes, commits, the clock): dated again by the pages.
                    retime(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        # Upgrading a big store takes minutes: other processes opening it meanwhile wait for it.
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
                lambda conn: conn.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}").execute(
                    "PRAGMA journal_size_limit=-1"
                )
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
        await self._run(lambda conn: conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall())

    async def set_meta(self, values: dict[str, str]) -> None:
        """Keep notes about the store as a whole (such as what its documents were rendered with)."""
        rows = list(values.items())
        await self._write(lambda conn: conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows))

    async def meta(self, key: str) -> str | None:
        rows = await self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    async def release_memory(self) -> None:
        """Give back SQLite's page cache (a process about to wait on others)."""
        for conn in [self._db, *self._readers]:
            await conn.execute("PRAGMA shrink_memory")
        trim_heap()
