"""Writing and reading who follows what (schema 15; feeds/subscribers.py notes it)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from feeds.store.connection import StoreBase

KEEP_DAYS = 90  # days of statistics kept


class StatsQueries(StoreBase):
    async def note_subscribers(
        self, clients: Sequence[tuple[str, str, str, int]], reports: Sequence[tuple[tuple[str, str, str, str], int]]
    ) -> None:
        """Clients (day, feed, digest, reported) and reports ((day, feed, aggregator, feed id),
        subscribers) noted since the last write; a later report replaces an earlier one."""

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO feed_clients VALUES (?,?,?,?) ON CONFLICT DO UPDATE SET reported = max(reported, excluded.reported)",
                clients,
            )
            conn.executemany(
                "INSERT INTO feed_reports VALUES (?,?,?,?,?) ON CONFLICT DO UPDATE SET subscribers = excluded.subscribers",
                [(*key, n) for key, n in reports],
            )
            oldest = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=KEEP_DAYS)).isoformat()
            conn.execute("DELETE FROM feed_clients WHERE day < ?", (oldest,))
            conn.execute("DELETE FROM feed_reports WHERE day < ?", (oldest,))

        await self._write(write)

    async def most_followed(self, day: str, limit: int) -> list[dict[str, Any]]:
        """The feeds of `day` with the most followers: subscribers reported by aggregators, plus
        the clients that reported none (a reader polling for itself)."""
        rows = await self._read(
            "WITH c AS (SELECT feed, count(*) AS clients, sum(reported = 0) AS own FROM feed_clients WHERE day = ? GROUP BY feed), "
            "r AS (SELECT feed, sum(subscribers) AS subscribers, json_group_object(aggregator || "
            "CASE WHEN feed_id = '' THEN '' ELSE ':' || feed_id END, subscribers) AS reports "
            "FROM feed_reports WHERE day = ? GROUP BY feed) "
            "SELECT c.feed, c.clients, coalesce(r.subscribers, 0), c.own + coalesce(r.subscribers, 0) AS followers, "
            "coalesce(r.reports, '{}') FROM c LEFT JOIN r ON r.feed = c.feed "
            "ORDER BY followers DESC, c.clients DESC, c.feed LIMIT ?",
            (day, day, limit),
        )
        return [
            {"feed": feed, "followers": int(f), "clients": int(c), "subscribers": int(s), "reports": json.loads(r)}
            for feed, c, s, f, r in rows
        ]

    async def followed_feeds(self, since_day: str) -> list[str]:
        """Feeds polled on `since_day` or later, and feeds a WebSub subscriber follows."""
        rows = await self._read(
            "SELECT feed FROM feed_clients WHERE day >= ? UNION SELECT feed FROM websub", (since_day,)
        )
        return [feed for (feed,) in rows]

    async def stats_days(self) -> list[str]:
        return [d for (d,) in await self._read("SELECT DISTINCT day FROM feed_clients ORDER BY day DESC")]
