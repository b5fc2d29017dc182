"""Querying the full-text index of events (feeds/store/search_writes.py writes it)."""

from __future__ import annotations

from feeds.model import Member
from feeds.store.connection import StoreBase
from feeds.store.records import from_iso


class SearchQueries(StoreBase):
    async def search_members(self, match: str, limit: int) -> list[Member]:
        """The newest `limit` live events matching an FTS5 expression (feeds.search.parse), newest
        arrival first."""
        rows = await self._read(
            "SELECT e.key, e.rev, e.updated FROM search JOIN events e ON e.seq = search.rowid "
            "WHERE search MATCH ? AND e.live ORDER BY search.rowid DESC LIMIT ?",
            (match, limit),
        )
        return [Member(key, rev, from_iso(updated)) for key, rev, updated in rows]
