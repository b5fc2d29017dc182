"""WebSub subscriptions (schema 16) and the deliveries owed to them (schema 17).

A subscription is written when a subscriber's intent is verified and remembers the ETag it was
last sent (at first, the one current when it subscribed). Deliveries are driven by the store's own
record of what changed, whoever wrote it: every write of renditions takes the next `renditions`
version, and `websub_collect` turns the versions after the hub's cursor into owed deliveries (one
per subscriber of a changed document whose ETag is not the one it has) and moves the cursor, in
one transaction, so two server processes never both take the same change. An owed delivery is
claimed by one process for a while (`websub_claim`), and cleared only once the subscriber has the
current version: a process that dies meanwhile leaves it to another, or to the next start.
A subscription whose lease ran out is neither delivered to nor kept.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from feeds.store.connection import StoreBase
from feeds.store.records import from_iso, iso

CURSOR = "websub_cursor"  # meta: the renditions version up to which changes were turned into deliveries


@dataclass(frozen=True)
class Owed:
    """A delivery owed to one subscriber of one document, as claimed."""

    feed: str
    fmt: str
    callback: str
    secret: str
    sent: str | None  # the ETag the subscriber has (None: none known)
    failures: int  # attempts that failed so far

    @property
    def key(self) -> tuple[str, str, str]:
        return self.feed, self.fmt, self.callback


def _prune(conn: sqlite3.Connection, now: str) -> None:
    """Subscriptions whose lease ran out go, and what was owed to them (the outbox cascades)."""
    conn.execute("DELETE FROM websub WHERE expires <= ?", (now,))


def _counter(conn: sqlite3.Connection, key: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def _take_cursor(conn: sqlite3.Connection) -> int | None:
    """Move the hub's cursor to the newest renditions version (in the caller's transaction);
    returns where it was, or None if it was there already."""
    cursor, written = _counter(conn, CURSOR), _counter(conn, "renditions")
    if written <= cursor:
        return None
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (CURSOR, str(written)))
    return cursor


class WebSubQueries(StoreBase):
    async def websub_subscribe(self, feed: str, fmt: str, callback: str, secret: str, expires: dt.datetime) -> None:
        """Subscribe (or renew): a new subscriber has the current version, and is sent the next."""
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO websub (feed, fmt, callback, secret, expires, sent) "
                "VALUES (?,?,?,?,?, (SELECT etag FROM renditions WHERE feed = ? AND fmt = ?)) "
                "ON CONFLICT DO UPDATE SET secret = excluded.secret, expires = excluded.expires",
                (feed, fmt, callback, secret, iso(expires), feed, fmt),
            )
        )

    async def websub_unsubscribe(self, feed: str, fmt: str, callback: str) -> None:
        """End a subscription, and whatever was still owed to it."""
        await self._write(
            lambda conn: conn.execute(
                "DELETE FROM websub WHERE feed = ? AND fmt = ? AND callback = ?", (feed, fmt, callback)
            )
        )

    async def websub_pending(self) -> tuple[bool, dt.datetime | None]:
        """(whether documents were written since the hub's cursor, when the earliest owed delivery
        is due): one cheap read, what a hub looks at whenever the store may have changed."""
        rows = await self._read(
            "SELECT (SELECT value FROM meta WHERE key = 'renditions'), (SELECT value FROM meta WHERE key = ?), "
            "(SELECT min(due) FROM websub_outbox)",
            (CURSOR,),
        )
        written, cursor, due = rows[0]
        return int(written or 0) > int(cursor or 0), from_iso(due) if due else None

    async def websub_collect(self, now: dt.datetime) -> int:
        """Move the hub's cursor to the newest renditions version: every active subscriber of a
        document written since, whose ETag is not the document's, is owed one delivery (however
        many versions it missed). Returns how many deliveries became owed (none when another
        process moved the cursor first)."""
        stamp = iso(now)

        def collect(conn: sqlite3.Connection) -> int:
            cursor = _take_cursor(conn)
            if cursor is None:
                return 0
            _prune(conn, stamp)
            return conn.execute(
                "INSERT INTO websub_outbox (feed, fmt, callback, failures, due) "
                "SELECT w.feed, w.fmt, w.callback, 0, ? FROM renditions r "
                "JOIN websub w ON w.feed = r.feed AND w.fmt = r.fmt "
                "WHERE r.version > ? AND w.sent IS NOT r.etag ON CONFLICT DO NOTHING",
                (stamp, cursor),
            ).rowcount

        return await self._write(collect)

    async def websub_changed(self) -> list[tuple[str, str]]:
        """Move the hub's cursor to the newest renditions version; returns the (feed, format)
        written since, sorted (what pings of another hub name; none when another process moved
        the cursor first)."""

        def changed(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            cursor = _take_cursor(conn)
            if cursor is None:
                return []
            rows = conn.execute("SELECT feed, fmt FROM renditions WHERE version > ? ORDER BY feed, fmt", (cursor,))
            return [(f, m) for f, m in rows]

        return await self._write(changed)

    async def websub_claim(self, now: dt.datetime, until: dt.datetime, limit: int) -> list[Owed]:
        """Up to `limit` owed deliveries that are due, earliest first, held for this process until
        `until` (another process takes them after that, if this one died)."""
        if limit <= 0:
            return []
        stamp = iso(now)

        def claim(conn: sqlite3.Connection) -> list[Owed]:
            _prune(conn, stamp)
            rows = conn.execute(
                "SELECT o.feed, o.fmt, o.callback, w.secret, w.sent, o.failures FROM websub_outbox o "
                "JOIN websub w ON w.feed = o.feed AND w.fmt = o.fmt AND w.callback = o.callback "
                "WHERE o.due <= ? ORDER BY o.due, o.feed, o.fmt, o.callback LIMIT ?",
                (stamp, limit),
            ).fetchall()
            owed = [Owed(*row) for row in rows]
            conn.executemany(
                "UPDATE websub_outbox SET due = ? WHERE feed = ? AND fmt = ? AND callback = ?",
                [(iso(until), *o.key) for o in owed],
            )
            return owed

        return await self._write(claim)

    async def websub_delivered(self, owed: Owed, etag: str, now: dt.datetime) -> None:
        """The subscriber has the version `etag`: nothing is owed to it any more, unless the
        document changed meanwhile (then the newer version is owed at once)."""

        def delivered(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE websub SET sent = ? WHERE feed = ? AND fmt = ? AND callback = ?", (etag, *owed.key))
            current = conn.execute(
                "SELECT etag FROM renditions WHERE feed = ? AND fmt = ?", (owed.feed, owed.fmt)
            ).fetchone()
            if current is None or current[0] == etag:
                _settle(conn, owed.key)
            else:
                conn.execute(
                    "UPDATE websub_outbox SET failures = 0, due = ? WHERE feed = ? AND fmt = ? AND callback = ?",
                    (iso(now), *owed.key),
                )

        await self._write(delivered)

    async def websub_failed(self, owed: Owed, retry: dt.datetime | None) -> None:
        """A failed attempt: tried again from `retry`, or (None) dropped."""

        def failed(conn: sqlite3.Connection) -> None:
            if retry is None:
                _settle(conn, owed.key)
            else:
                conn.execute(
                    "UPDATE websub_outbox SET failures = ?, due = ? WHERE feed = ? AND fmt = ? AND callback = ?",
                    (owed.failures + 1, iso(retry), *owed.key),
                )

        await self._write(failed)

    async def websub_settled(self, owed: Owed) -> None:
        """Nothing is to be sent after all (the document is gone, or the subscriber has it)."""
        await self._write(lambda conn: _settle(conn, owed.key))

    async def websub_release(self, owed: Sequence[Owed], now: dt.datetime) -> None:
        """Claims given back unfinished (a process stopping): due again at once, for whoever is next."""
        await self._write(
            lambda conn: conn.executemany(
                "UPDATE websub_outbox SET due = ? WHERE feed = ? AND fmt = ? AND callback = ?",
                [(iso(now), *o.key) for o in owed],
            )
        )

    async def websub_subscribed(self) -> bool:
        """Whether anyone is subscribed (leases not yet pruned count: collecting prunes them)."""
        return bool(await self._read("SELECT 1 FROM websub LIMIT 1"))

    async def websub_held(self, callback: str, now: dt.datetime) -> tuple[set[tuple[str, str]], int, int]:
        """For a callback: the (feed, format) it is subscribed to, the active subscriptions of
        callbacks on its host, and all active subscriptions (what the hub's caps count)."""
        host = urlsplit(callback).hostname
        rows = await self._read("SELECT feed, fmt, callback FROM websub WHERE expires > ?", (iso(now),))
        own = {(f, m) for f, m, c in rows if c == callback}
        return own, sum(urlsplit(c).hostname == host for _, _, c in rows), len(rows)


def _settle(conn: sqlite3.Connection, key: tuple[str, str, str]) -> None:
    conn.execute("DELETE FROM websub_outbox WHERE feed = ? AND fmt = ? AND callback = ?", key)
