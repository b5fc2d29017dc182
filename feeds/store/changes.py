"""Reading the changes cursor (schema 14's `changes`, kept by triggers on `events`): what an
aggregator mirroring every event asks for, one bounded page at a time."""

from __future__ import annotations

from feeds.store.connection import StoreBase


class ChangeQueries(StoreBase):
    async def changes_since(self, cursor: int, limit: int) -> list[tuple[int, str, str, str, str]]:
        """(cursor, event key, guid, kind, updated) of each event whose latest change is after
        `cursor`, oldest change first, at most `limit`."""
        rows = await self._read(
            "SELECT cursor, event, guid, kind, updated FROM changes WHERE cursor > ? ORDER BY cursor LIMIT ?",
            (cursor, limit),
        )
        return [(int(c), e, g, k, u) for c, e, g, k, u in rows]

    async def last_change(self) -> int:
        rows = await self._read("SELECT coalesce(max(cursor), 0) FROM changes")
        return int(rows[0][0])
