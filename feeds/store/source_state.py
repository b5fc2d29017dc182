"""Per-source state: cursors (a git commit), HTTP validators, a directory's files, the scheduler's lease."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import Any

from feeds.store.connection import StoreBase
from feeds.store.records import from_iso, iso


class SourceState(StoreBase):
    """Per-source progress: cursors, HTTP validators, a directory's files, the scheduler lease."""

    async def acquire_lease(self, name: str, holder: str, ttl: float, now: dt.datetime | None = None) -> bool:
        """Take or renew the lease `name` for `holder` if it is free, expired or already ours.

        Server workers use it so that exactly one runs the scheduler; when that worker dies its
        lease runs out and another takes over.
        """
        stamp = now or dt.datetime.now(dt.UTC)
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

    async def set_cursor(self, source: str, value: str) -> None:
        await self._write(lambda conn: conn.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?)", (source, value)))

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

    async def fetch_state(self, url: str) -> tuple[str | None, str | None, bytes | None]:
        rows = await self._read("SELECT etag, last_modified, body FROM fetches WHERE url = ?", (url,))
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else (None, None, None)

    async def forget_sources(self) -> None:
        """Forget how far every source was read (cursors, files seen, HTTP validators), so each
        reads every document again: what was stored was read by other readers."""

        def forget(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM cursors")
            conn.execute("DELETE FROM source_files")
            conn.execute("UPDATE fetches SET etag = NULL, last_modified = NULL")

        await self._write(forget)

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

    async def note_source(self, source: str, error: str | None, now: dt.datetime) -> None:
        """Record how a source's refresh ended (`error` None: it succeeded), for /healthz: its last
        success, its last error and since when it has been failing (kept in `meta`)."""
        key = SOURCE_HEALTH_KEY + source

        def note(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            health: dict[str, Any] = json.loads(row[0]) if row else dict.fromkeys(SOURCE_HEALTH_FIELDS)
            if error is None:
                health |= {"last_success": iso(now), "failing_since": None}
            else:
                health |= {"last_error": error, "last_error_at": iso(now)}
                health["failing_since"] = health["failing_since"] or iso(now)
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(health)))

        await self._write(note)

    async def source_health(self, sources: list[str]) -> dict[str, dict[str, Any]]:
        """Per source: `last_success`, `last_error`, `last_error_at`, `failing_since` (None: not
        failing, or never refreshed)."""
        rows = await self._read_keys(
            "SELECT key, value FROM meta WHERE key IN ({keys})", [SOURCE_HEALTH_KEY + s for s in sources]
        )
        found = {key.removeprefix(SOURCE_HEALTH_KEY): json.loads(value) for key, value in rows}
        return {s: found.get(s, dict.fromkeys(SOURCE_HEALTH_FIELDS)) for s in sources}


SOURCE_HEALTH_KEY = "source_health:"  # meta: one JSON object per source
SOURCE_HEALTH_FIELDS = ("last_success", "last_error", "last_error_at", "failing_since")
