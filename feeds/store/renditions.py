"""Renditions (rendered documents, gzip and Brotli, validators, entry spans) and entries, as stored."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any, cast

from isal import igzip

from feeds.model import (
    Rendition,
    utcnow,
)
from feeds.store.batch import _bump
from feeds.store.connection import StoreBase
from feeds.store.entry_blobs import DamagedEntry, pack, unpack
from feeds.store.records import from_iso, iso

log = logging.getLogger(__name__)


def _gunzip(data: bytes) -> bytes:
    return cast(bytes, igzip.decompress(data))  # type: ignore[no-untyped-call]  # isal has no annotations here


def _decoded(rows: list[Any]) -> list[Rendition]:
    out = []
    for feed, fmt, etag, last_modified, content_type, spans, gz, br in rows:
        body = _gunzip(gz)
        out.append(Rendition(feed, fmt, body, gz, br, etag, from_iso(last_modified), content_type, spans or b""))
    return out


def _counter(conn: sqlite3.Connection, key: str) -> int:
    return int(
        conn.execute("SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?), 0)", (key,)).fetchone()[
            0
        ]
    )


ContentVersion = tuple[int, int, int]
_CONTENT_VERSION = (
    "SELECT (SELECT coalesce(max(cursor), 0) FROM changes),"
    " (SELECT coalesce(max(CAST(value AS INTEGER)), 0) FROM meta WHERE key = 'links'),"
    " (SELECT coalesce(max(CAST(value AS INTEGER)), 0) FROM meta WHERE key = 'pending')"
)


def _content_version(conn: sqlite3.Connection) -> ContentVersion:
    row = conn.execute(_CONTENT_VERSION).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


class Renditions(StoreBase):
    """Rendered documents and entries: written once per version, read by the app and by publishing."""

    async def put_renditions(
        self,
        renditions: Sequence[Rendition],
        entries: Sequence[tuple[str, str, dict[str, bytes]]] = (),
        now: dt.datetime | None = None,
        spans: Sequence[tuple[str, str, str, bytes]] = (),
        fresh_again: Sequence[tuple[str, str, str]] = (),
        based_on: ContentVersion | None = None,
    ) -> None:
        """Store new versions of documents, and the entries (event, stamp, format -> bytes) they
        were joined from; readers see all of them or none. `spans` (feed, format, ETag, spans)
        adds the spans of stored versions that have none (made by an older program);
        `fresh_again` (feed, format, ETag): stale versions found current again. `based_on`: the
        content version the documents were rendered from; if a change was stored since, they are
        stored stale (served to whoever waited for them, made again at the next request)."""
        stamp = iso(now or utcnow())
        # Compressed off the event loop and outside the write transaction (other writers wait on it).
        packed = await asyncio.to_thread(lambda: [(event, s, pack(f)) for event, s, f in entries]) if entries else []

        def put(conn: sqlite3.Connection) -> None:
            stale = int(based_on is not None and _content_version(conn) != based_on)
            if renditions or fresh_again:
                version = _bump(conn, "renditions")
                conn.executemany(
                    "INSERT OR REPLACE INTO renditions "
                    "(feed, fmt, etag, last_modified, content_type, rendered_at, version, spans, gz, br, stale) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            r.feed,
                            r.fmt,
                            r.etag,
                            iso(r.last_modified),
                            r.content_type,
                            stamp,
                            version,
                            r.spans,
                            r.gzip,
                            r.br,
                            stale,
                        )
                        for r in renditions
                    ],
                )
                conn.executemany(
                    "UPDATE renditions SET stale = ?, version = ? WHERE feed = ? AND fmt = ? AND etag = ?",
                    [(stale, version, feed, fmt, etag) for feed, fmt, etag in fresh_again],
                )
            conn.executemany(
                "INSERT OR REPLACE INTO entries (event, stamp, packed) VALUES (?,?,?)",
                packed,
            )
            conn.executemany(
                "UPDATE renditions SET spans = ? WHERE feed = ? AND fmt = ? AND etag = ?",
                [(data, feed, fmt, etag) for feed, fmt, etag, data in spans],
            )

        if renditions or entries or spans or fresh_again:
            await self._write(put)
        if renditions or fresh_again:
            self._renditions_written()

    async def mark_stale(self, feeds: Sequence[str]) -> int:
        """Mark the stored versions of these documents stale (a change touched them and nobody
        reads them now): they are made again at their next request. Returns how many were."""

        def mark(conn: sqlite3.Connection) -> int:
            version = _counter(conn, "renditions") + 1
            marked = 0
            for start in range(0, len(feeds), 500):
                chunk = feeds[start : start + 500]
                marked += conn.execute(
                    f"UPDATE renditions SET stale = 1, version = ? WHERE stale = 0 AND feed IN ({','.join('?' * len(chunk))})",
                    (version, *chunk),
                ).rowcount
            if marked:
                _bump(conn, "renditions")
            return marked

        marked = await self._write(mark) if feeds else 0
        if marked:
            self._renditions_written()
        return marked

    async def mark_all_stale(self, keep: Sequence[str] = ()) -> int:
        """Every stored document but `keep` marked stale (the settings that shape them changed)."""
        names = [n for (n,) in await self._read("SELECT DISTINCT feed FROM renditions WHERE stale = 0")]
        kept = set(keep)
        return await self.mark_stale([n for n in names if n not in kept])

    async def content_version(self) -> ContentVersion:
        """What moves whenever a stored change may change a document: the changes cursor (every
        write of an event), where related links lead, and the record of feeds to publish."""
        row = (await self._read(_CONTENT_VERSION))[0]
        return int(row[0]), int(row[1]), int(row[2])

    async def entries(self, events: Sequence[str]) -> dict[str, tuple[str, dict[str, bytes]]]:
        """Stored entries of these events: event -> (stamp, format -> bytes)."""
        rows = await self._read_keys(
            "SELECT event, stamp, packed FROM entries WHERE event IN ({keys})", events, then=self._unpacked
        )
        return {event: (stamp, fragments) for event, stamp, fragments in rows}

    def _unpacked(self, rows: list[Any]) -> list[Any]:
        """Rows with their blobs unpacked (on the reader's thread). A memo: an entry that cannot
        be read is left out, so it is made again and stored over, never served."""
        out = []
        for event, stamp, packed in rows:
            try:
                out.append((event, stamp, unpack(packed)))
            except DamagedEntry as exc:
                log.warning(
                    "store: %s: the stored entry of %s is damaged (%s); it is made again", self.path, event, exc
                )
        return out

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
        rows = await self._read("SELECT key, value FROM meta WHERE key IN ('renditions', 'renditions_deleted')")
        values = {k: int(v) for k, v in rows}
        return values.get("renditions", 0), values.get("renditions_deleted", 0)

    async def renditions_since(self, version: int) -> list[tuple[str, str]]:
        rows = await self._read("SELECT feed, fmt FROM renditions WHERE version > ?", (version,))
        return [(f, fmt) for f, fmt in rows]

    async def rendition_keys(self) -> list[tuple[str, str]]:
        """(feed, format) of every stored document, sorted."""
        return [(feed, fmt) for feed, fmt in await self._read("SELECT feed, fmt FROM renditions ORDER BY feed, fmt")]

    async def has_renditions(self) -> bool:
        return bool(await self._read("SELECT 1 FROM renditions LIMIT 1"))

    async def rendition(self, feed: str, fmt: str) -> Rendition | None:
        rows = await self._read(
            "SELECT feed, fmt, etag, last_modified, content_type, spans, gz, br FROM renditions"
            " WHERE feed = ? AND fmt = ? AND stale = 0",
            (feed, fmt),
            _decoded,
        )
        return rows[0] if rows else None

    async def spanned_bodies(self, feed: str) -> dict[str, tuple[bytes, bytes]]:
        """fmt -> (plain bytes, spans) of a document's stored formats that have spans: what a
        re-render takes unchanged entries from (the Brotli bytes are not read)."""

        def decoded(rows: list[Any]) -> list[Any]:
            return [(fmt, _gunzip(gz), spans) for fmt, spans, gz in rows]

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
        """fmt -> (ETag, Last-Modified, whether its spans are stored) of a feed's renditions,
        stale or not."""
        return {fmt: version[:3] for fmt, version in (await self.rendition_states(feed)).items()}

    async def rendition_states(self, feed: str) -> dict[str, tuple[str, dt.datetime, bool, bool]]:
        """fmt -> (ETag, Last-Modified, whether its spans are stored, whether it is stale)."""
        rows = await self._read(
            "SELECT fmt, etag, last_modified, spans IS NOT NULL, stale FROM renditions WHERE feed = ?", (feed,)
        )
        return {fmt: (etag, from_iso(lm), bool(spanned), bool(stale)) for fmt, etag, lm, spanned, stale in rows}
