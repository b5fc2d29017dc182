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

    # What `feeds export` walks and follows (feeds/export_docs.py): in pages, never all at once.

    async def live_events_after(self, after: str, limit: int) -> list[tuple[str, str]]:
        """(key, current page path) of up to `limit` live events whose key sorts after `after`."""
        rows = await self._read(
            "SELECT key, current FROM events WHERE key > ? AND live = 1 ORDER BY key LIMIT ?", (after, limit)
        )
        return [(k, c) for k, c in rows]

    async def older_versions_after(self, after: str, limit: int) -> list[tuple[str, str]]:
        """(a version's path, its live event's current path) of up to `limit` versions but the
        current, whose path sorts after `after`."""
        rows = await self._read(
            "SELECT a.path, e.current FROM aliases a JOIN events e ON e.key = a.chain "
            "WHERE a.path > ? AND e.live = 1 AND a.path != e.current ORDER BY a.path LIMIT ?",
            (after, limit),
        )
        return [(p, c) for p, c in rows]

    async def event_places(self, keys: list[str]) -> list[tuple[str, str, str, bool]]:
        """(key, current page path, date, live) of these events, as stored."""
        rows = await self._read_keys("SELECT key, current, date, live FROM events WHERE key IN ({keys})", keys)
        return [(k, c, d, bool(live)) for k, c, d, live in rows]

    async def topics_of_events(self, keys: list[str]) -> set[str]:
        """Slugs of every topic these events are or were shown in."""
        rows = await self._read_keys(
            "SELECT DISTINCT t.slug FROM event_topics et JOIN topics t ON t.id = et.topic_id WHERE et.event IN ({keys})",
            keys,
        )
        return {s for (s,) in rows}

    async def tombstoned_feeds(self, since: str) -> tuple[list[str], list[tuple[str, int]]]:
        """Dates, and (slug, slots) of topics, of events deleted at `since` or later (ISO 8601):
        documents that show a tombstone though they may have no live event left."""
        dates = await self._read("SELECT DISTINCT date FROM events WHERE live = 0 AND deleted_at >= ?", (since,))
        topics = await self._read(
            "SELECT DISTINCT t.slug, t.slots FROM events e JOIN event_topics et ON et.event = e.key "
            "JOIN topics t ON t.id = et.topic_id WHERE e.live = 0 AND e.deleted_at >= ? ORDER BY t.slug",
            (since,),
        )
        return [d for (d,) in dates], [(s, int(n)) for s, n in topics]
