"""Topics: the index, a topic's slots and their members, and what a re-keying left to publish."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from feeds.aliases import COMPANY, Profile
from feeds.model import (
    Member,
    Tombstone,
)
from feeds.store.connection import StoreBase
from feeds.store.records import BatchResult, TopicRow, from_iso, iso


def _topic_row(row: Any) -> TopicRow:
    slug, name, events, updated, slots = row
    return TopicRow(slug, name, int(events), from_iso(updated) if updated else None, int(slots))


class TopicQueries(StoreBase):
    """Topics: the index, one topic's slots and members, and what is left to publish."""

    async def topic(self, slug: str) -> TopicRow | None:
        rows = await self._read("SELECT slug, name, events, updated, slots FROM topics WHERE slug = ?", (slug,))
        return _topic_row(rows[0]) if rows else None

    async def topics_active_since(self, since: dt.datetime) -> list[str]:
        """Slugs of the topics with a live event updated at `since` or later."""
        rows = await self._read("SELECT slug FROM topics WHERE events > 0 AND updated >= ?", (iso(since),))
        return [slug for (slug,) in rows]

    async def topic_index(self) -> list[tuple[str, str, int, str | None]]:
        """(slug, name, events, updated as stored) of every topic with events, most events first."""
        rows = await self._read(
            "SELECT slug, name, events, updated FROM topics WHERE events > 0 ORDER BY events DESC, slug"
        )
        return [tuple(r) for r in rows]

    async def topics(self) -> list[TopicRow]:
        rows = await self._read(
            "SELECT slug, name, events, updated, slots FROM topics WHERE events > 0 ORDER BY events DESC, slug"
        )
        return [_topic_row(r) for r in rows]

    async def pending(self) -> BatchResult:
        """What changes left to publish (every batch, and keying topics again when the store opened):
        feeds, changed events, topics to render whole. Publishing takes it, then `clear_pending`."""
        rows = await self._read("SELECT kind, value, mark FROM pending")
        out = BatchResult()
        for kind, value, mark in rows:
            {"feed": out.feeds, "event": out.changed, "renamed": out.renamed}[kind].add(value)
            out.mark = max(out.mark, mark)
        return out

    async def clear_pending(self, done: BatchResult) -> None:
        """Forget what was published of `pending`: rows a later batch asked for again stay."""
        await self._write(lambda conn: conn.execute("DELETE FROM pending WHERE mark <= ?", (done.mark,)))

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
            "SELECT key, guid, deleted_at FROM events WHERE live = 0 AND deleted_at IS NOT NULL AND key IN ({keys})",
            gone,
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

    async def topic_moved_to(self, slug: str) -> str | None:
        """The slug of the topic a retired topic's events moved to (aliases), if it was retired."""
        rows = await self._read(
            "SELECT t.slug FROM topic_moves m JOIN topics t ON t.id = m.target WHERE m.slug = ?", (slug,)
        )
        return str(rows[0][0]) if rows else None

    async def topic_profiles(self, min_events: int) -> list[Profile]:
        """Each topic of at least `min_events` live events: its span in time and the topics met most
        often with it (feeds.aliases looks for renames among them)."""
        spans = await self._read(
            "SELECT t.id, t.slug, t.name, t.events, min(et.date), max(et.date) FROM topics t "
            "JOIN event_topics et ON et.topic_id = t.id AND et.live WHERE t.events >= ? GROUP BY t.id",
            (min_events,),
        )
        pairs = await self._read(
            "SELECT mine.topic_id, o.slug, count(*) AS n FROM topics t "
            "JOIN event_topics mine ON mine.topic_id = t.id AND mine.live "
            "JOIN event_topics theirs ON theirs.event = mine.event AND theirs.topic_id != mine.topic_id AND theirs.live "
            "JOIN topics o ON o.id = theirs.topic_id WHERE t.events >= ? GROUP BY mine.topic_id, o.id",
            (min_events,),
        )
        company: dict[int, list[tuple[int, str]]] = {}
        for tid, slug, n in pairs:
            company.setdefault(tid, []).append((-int(n), slug))
        return [
            Profile(slug, name, int(events), first, last, tuple(s for _, s in sorted(company.get(tid, []))[:COMPANY]))
            for tid, slug, name, events, first, last in spans
        ]

    async def topic_months(self, slug: str) -> list[tuple[str, int]]:
        """(YYYY-MM, live events) of every month the topic has events in, oldest first."""
        rows = await self._read(
            "SELECT m.month, m.n FROM topics t JOIN topic_months m ON m.topic_id = t.id "
            "WHERE t.slug = ? AND m.n > 0 ORDER BY m.month",
            (slug,),
        )
        return [(m, int(n)) for m, n in rows]

    async def related_topics(self, slug: str, limit: int = 12, recent: int = 500) -> list[tuple[str, str, int]]:
        """(slug, name, shared events) of the topics met most often in the topic's `recent` newest
        live events (bounded: a topic of 50,000 events is looked at as fast as one of 500)."""
        rows = await self._read(
            "WITH mine AS (SELECT et.event, et.topic_id FROM topics t JOIN event_topics et ON et.topic_id = t.id "
            "WHERE t.slug = ? AND et.live ORDER BY et.slot DESC LIMIT ?) "
            "SELECT o.slug, o.name, count(*) AS n FROM mine "
            "JOIN event_topics theirs ON theirs.event = mine.event AND theirs.topic_id != mine.topic_id AND theirs.live "
            "JOIN topics o ON o.id = theirs.topic_id GROUP BY o.id ORDER BY n DESC, o.slug LIMIT ?",
            (slug, recent, limit),
        )
        return [(s, name, int(n)) for s, name, n in rows]

    async def combined_members(self, slugs: Iterable[str], limit: int) -> list[Member]:
        """The newest `limit` live events carrying any of the topics, each once, newest arrival first."""
        wanted = sorted(set(slugs))
        marks = ",".join("?" * len(wanted))
        rows = await self._read(
            "SELECT et.event, et.rev, et.updated, max(et.seq) AS seq FROM topics t "
            f"JOIN event_topics et ON et.topic_id = t.id WHERE t.slug IN ({marks}) AND et.live "
            "GROUP BY et.event ORDER BY seq DESC LIMIT ?",
            (*wanted, limit),
        )
        return [Member(key, rev, from_iso(updated)) for key, rev, updated, _ in rows]
