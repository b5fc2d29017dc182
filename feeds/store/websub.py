"""WebSub subscriptions (schema 16): written when a subscriber's intent is verified, read when a
feed changes; a subscription whose lease ran out is neither delivered to nor kept."""

from __future__ import annotations

import datetime as dt
import sqlite3
from urllib.parse import urlsplit

from feeds.store.connection import StoreBase
from feeds.store.records import iso


class WebSubQueries(StoreBase):
    async def websub_subscribe(self, feed: str, fmt: str, callback: str, secret: str, expires: dt.datetime) -> None:
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO websub VALUES (?,?,?,?,?) ON CONFLICT DO UPDATE SET secret = excluded.secret, "
                "expires = excluded.expires",
                (feed, fmt, callback, secret, iso(expires)),
            )
        )

    async def websub_unsubscribe(self, feed: str, fmt: str, callback: str) -> None:
        await self._write(
            lambda conn: conn.execute(
                "DELETE FROM websub WHERE feed = ? AND fmt = ? AND callback = ?", (feed, fmt, callback)
            )
        )

    async def websub_subscribers(self, feed: str, fmt: str, now: dt.datetime) -> list[tuple[str, str]]:
        """(callback, secret) of the active subscriptions of one feed."""
        rows = await self._read(
            "SELECT callback, secret FROM websub WHERE feed = ? AND fmt = ? AND expires > ? ORDER BY callback",
            (feed, fmt, iso(now)),
        )
        return [(c, s) for c, s in rows]

    async def websub_feeds(self, now: dt.datetime) -> list[tuple[str, str]]:
        """(feed, format) of every feed with an active subscription; expired ones are removed."""

        def prune(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM websub WHERE expires <= ?", (iso(now),))

        await self._write(prune)
        rows = await self._read("SELECT DISTINCT feed, fmt FROM websub ORDER BY feed, fmt")
        return [(f, m) for f, m in rows]

    async def websub_held(self, callback: str, now: dt.datetime) -> tuple[set[tuple[str, str]], int, int]:
        """For a callback: the (feed, format) it is subscribed to, the active subscriptions of
        callbacks on its host, and all active subscriptions (what the hub's caps count)."""
        host = urlsplit(callback).hostname
        rows = await self._read("SELECT feed, fmt, callback FROM websub WHERE expires > ?", (iso(now),))
        own = {(f, m) for f, m, c in rows if c == callback}
        return own, sum(urlsplit(c).hostname == host for _, _, c in rows), len(rows)
