"""Events: storing batches, and reading the events of a feed, their members, links and dates."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from feeds.codec import page_from_json
from feeds.ids import topic_key
from feeds.model import (
    EPOCH,
    Event,
    FeedKey,
    Member,
    Tombstone,
    Topic,
    comma_parts,
    utcnow,
)
from feeds.store.batch import _apply
from feeds.store.connection import StoreBase
from feeds.store.records import BatchResult, Incoming, IncomingListing, from_iso, iso
from feeds.store.topic_writes import run_key


def _among(keys: set[str]) -> Callable[[tuple[str, ...]], bool]:
    return lambda run: run_key(run) in keys


EVENT_COLUMNS = "e.key, e.guid, e.doc, e.published, e.updated, e.relpath, e.source, e.deleted_at, e.seq, e.hash, e.rev"


MEMBER_COLUMNS = "e.key, e.rev, e.updated"


def _member(row: Any) -> Member:
    key, rev, updated = row
    return Member(key, rev, from_iso(updated))


class EventQueries(StoreBase):
    """Storing batches of pages, and reading events and the feeds they make."""

    async def apply(
        self,
        incoming: Sequence[Incoming],
        deleted: Iterable[str] = (),
        now: dt.datetime | None = None,
        listings: Sequence[IncomingListing] = (),
        deleted_at: Mapping[str, dt.datetime] | None = None,
    ) -> BatchResult:
        """Store a batch of pages and day listings (and page paths gone from their source, with
        when it says they went where it knows) in one transaction. `now` only stamps when pages
        were seen, for the operator: no document shows it."""
        stamp = now or utcnow()
        gone = list(deleted)
        return await self._write(lambda conn: _apply(conn, incoming, gone, stamp, self._topics, listings, deleted_at))

    async def unlisted(self) -> int:
        """Live events of days that have a listing which neither the listing nor its evidence explains."""
        rows = await self._read("SELECT count(*) FROM unlisted u JOIN events e ON e.key = u.key WHERE e.live = 1")
        return int(rows[0][0])

    async def missing_pages(self, source: str, present: set[str]) -> list[str]:
        """Live pages of `source` that a full listing of it no longer has."""
        rows = await self._read("SELECT path FROM pages WHERE source = ? AND deleted_at IS NULL", (source,))
        return [r[0] for r in rows if r[0] not in present]

    async def page_sources(self, paths: Iterable[str]) -> dict[str, str]:
        """Which live stored pages exist among `paths`, with their source."""
        rows = await self._read_keys(
            "SELECT path, source FROM pages WHERE deleted_at IS NULL AND path IN ({keys})", list(set(paths))
        )
        return {p: s for p, s in rows}

    async def feeds_of_tombstones_expiring(self, start: dt.datetime, end: dt.datetime) -> set[str]:
        """Feeds that carry a tombstone whose window ends in [start, end): they re-render without it."""
        rows = await self._read(
            "SELECT e.date, t.slug FROM events e LEFT JOIN event_topics et ON et.event = e.key "
            "LEFT JOIN topics t ON t.id = et.topic_id WHERE e.live = 0 AND e.deleted_at >= ? AND e.deleted_at < ?",
            (iso(start), iso(end)),
        )
        feeds = {"latest"} if rows else set()
        for date, slug in rows:
            feeds.add(f"dates/{date}")
            if slug:
                feeds.add(f"topics/{slug}")
        return feeds

    async def feed_names(self) -> list[str]:
        """Every feed the store can render: latest, each date with events, each topic."""
        dates = await self._read("SELECT DISTINCT date FROM events WHERE live = 1 ORDER BY date")
        topics = await self._read("SELECT slug FROM topics WHERE events > 0 ORDER BY slug")
        return ["latest"] + [f"dates/{d}" for (d,) in dates] + [f"topics/{s}" for (s,) in topics]

    async def dates(self) -> list[str]:
        rows = await self._read("SELECT DISTINCT date FROM events WHERE live = 1 ORDER BY date")
        return [d for (d,) in rows]

    async def count_events(self) -> int:
        rows = await self._read("SELECT count(*) FROM events WHERE live = 1")
        return int(rows[0][0])

    async def events(self, feed: FeedKey, limit: int, offset: int = 0) -> list[Event]:
        """Live events of a feed, newest first."""
        return await self._events_from_rows(await self._feed_rows(EVENT_COLUMNS, feed, limit, offset))

    async def members(self, feed: FeedKey, limit: int) -> list[Member]:
        """What a document needs of the live events of `latest` or a date feed, newest first."""
        return [_member(r) for r in await self._feed_rows(MEMBER_COLUMNS, feed, limit)]

    async def _feed_rows(self, cols: str, feed: FeedKey, limit: int, offset: int = 0) -> list[Any]:
        order = "ORDER BY e.date DESC, e.key DESC LIMIT ? OFFSET ?"
        args: tuple[str, ...]
        if feed.kind == "latest":
            sql, args = f"SELECT {cols} FROM events e WHERE e.live = 1 {order}", ()
        elif feed.kind == "date":
            sql, args = f"SELECT {cols} FROM events e WHERE e.live = 1 AND e.date = ? {order}", (feed.value,)
        else:
            sql = (
                f"SELECT {cols} FROM topics t JOIN event_topics et ON et.topic_id = t.id AND et.live = 1 "
                f"JOIN events e ON e.key = et.event WHERE t.slug = ? "
                "ORDER BY et.date DESC, et.event DESC LIMIT ? OFFSET ?"
            )
            args = (feed.value,)
        return await self._read(sql, (*args, limit, offset))

    async def tombstones(self, feed: FeedKey, since: dt.datetime) -> list[Tombstone]:
        """Events of `latest` or of a date feed deleted after `since` (topic pages find theirs
        among their slots), most recently deleted first."""
        sql = "SELECT guid, deleted_at FROM events WHERE live = 0 AND deleted_at >= ?"
        args: tuple[str, ...] = (iso(since),)
        if feed.kind == "date":
            sql, args = sql + " AND date = ?", (iso(since), feed.value)
        rows = await self._read(sql + " ORDER BY deleted_at DESC, key LIMIT 100", args)
        return [Tombstone(guid, from_iso(deleted)) for guid, deleted in rows]

    async def members_of(self, keys: Sequence[str]) -> list[Member]:
        """The live ones of these events, as documents show them."""
        return [
            _member(r)
            for r in await self._read_keys(
                f"SELECT {MEMBER_COLUMNS} FROM events e WHERE e.live = 1 AND e.key IN ({{keys}})", keys
            )
        ]

    async def events_of(self, keys: Sequence[str]) -> dict[str, Event]:
        """Events by key, whole (their pages decoded): those whose entries must be made."""
        rows = await self._read_keys(f"SELECT {EVENT_COLUMNS} FROM events e WHERE e.key IN ({{keys}})", keys)
        return {e.key: e for e in await self._events_from_rows(rows)}

    async def link_fields(self, keys: Sequence[str]) -> dict[str, tuple[str, list[str]]]:
        """Of each event's current page: its summary (markdown) and the URLs of its related events,
        where the links of its entry come from."""
        rows = await self._read_keys("SELECT key, doc FROM events WHERE key IN ({keys})", keys)
        out = {}
        for key, doc in rows:
            page = json.loads(doc)
            out[key] = (page["summary"], [r[1] for r in page["related"]])
        return out

    async def neighbour_dates(self, day: str) -> tuple[str | None, str | None]:
        """The nearest earlier and later dates that have live events."""
        before = await self._read(
            "SELECT date FROM events WHERE live = 1 AND date < ? ORDER BY date DESC LIMIT 1", (day,)
        )
        after = await self._read("SELECT date FROM events WHERE live = 1 AND date > ? ORDER BY date LIMIT 1", (day,))
        return (before[0][0] if before else None, after[0][0] if after else None)

    async def created(self) -> dt.datetime:
        """The time of a document that holds nothing with a time (an empty feed): the newest time
        the archive states, else `EPOCH` (1990). Never the store's own creation: replicas agree."""
        return await self.newest_time()

    async def newest_time(self) -> dt.datetime:
        """The newest time the stored archive states: its events' `updated` and its tombstones'
        (a deleted event's `updated` is its deletion's time); `EPOCH` when it has none."""
        rows = await self._read("SELECT max(updated) FROM events")
        return from_iso(rows[0][0]) if rows and rows[0][0] else EPOCH

    async def newest_date(self) -> str | None:
        rows = await self._read("SELECT max(date) FROM events WHERE live = 1")
        return rows[0][0] if rows else None

    async def resolve_links(self, paths: Iterable[str]) -> dict[str, tuple[str, str]]:
        """For page paths (any version), the (relpath, source) of their event's current version."""
        rows = await self._read("SELECT value FROM meta WHERE key = 'links'")
        version = int(rows[0][0]) if rows else 0
        if version != self._links_version or len(self._links) > 200_000:
            self._links, self._links_version = {}, version
        wanted = set(paths)
        missing = [p for p in wanted if p not in self._links]
        rows = await self._read_keys(
            "SELECT a.path, e.relpath, e.source FROM aliases a JOIN events e ON e.key = a.chain "
            "WHERE +e.live = 1 AND a.path IN ({keys})",
            missing,
        )
        found = {p: (r, s) for p, r, s in rows}
        self._links.update({p: found.get(p) for p in missing})
        return {p: target for p in wanted if (target := self._links.get(p))}

    async def live_pages(self) -> list[str]:
        """The current page path of every live event, sorted."""
        return [p for (p,) in await self._read("SELECT current FROM events WHERE live = 1 ORDER BY current")]

    async def older_versions(self) -> list[tuple[str, str]]:
        """(a version's path, its live event's current path) for every version but the current."""
        rows = await self._read(
            "SELECT a.path, e.current FROM aliases a JOIN events e ON e.key = a.chain "
            "WHERE e.live = 1 AND a.path != e.current ORDER BY a.path"
        )
        return [(path, current) for path, current in rows]

    async def page_doc(self, path: str) -> str | None:
        """A stored version's page as read (canonical path), or None."""
        rows = await self._read("SELECT doc FROM pages WHERE path = ?", (path,))
        return str(rows[0][0]) if rows else None

    async def event_at(self, path: str) -> tuple[str, str, str, bool, int, dt.datetime] | None:
        """(key, current page path, current page as stored, live, revision, last change) of the
        event whose version (any) is at `path` (canonical, `/news/YYYY/MM/DD/slug`)."""
        rows = await self._read(
            "SELECT e.key, e.current, e.doc, e.live, e.rev, e.updated FROM aliases a JOIN events e ON e.key = a.chain "
            "WHERE a.path = ?",
            (path,),
        )
        if not rows:
            return None
        key, current, doc, live, rev, updated = rows[0]
        return key, current, doc, bool(live), int(rev), from_iso(updated)

    async def _events_from_rows(self, rows: list[Any]) -> list[Event]:
        if not rows:
            return []
        topic_rows = await self._read_keys(
            "SELECT et.event, t.slug, t.name, et.spelling FROM event_topics et JOIN topics t ON t.id = et.topic_id "
            "WHERE et.live = 1 AND et.event IN ({keys}) ORDER BY t.slug",
            [r[0] for r in rows],
        )
        topics: dict[str, list[Topic]] = {}
        whole: dict[str, set[str]] = {}  # the names with a comma each event is in
        for event_key, slug, name, spelling in topic_rows:
            topics.setdefault(event_key, []).append(Topic(slug, name))
            if "," in spelling:
                whole.setdefault(event_key, set()).add(run_key(comma_parts(spelling)))
        events = []
        for key, guid, doc, published, updated, relpath, source, deleted_at, seq, digest, rev in rows:
            page = page_from_json(doc)
            # Topics in the page's own order: heading first, then contexts, its lists resolved as
            # they were when it joined its topics (by the names with a comma it is in).
            names = page.topic_names(_among(whole.get(key, set())))
            by_key = {topic_key(t.name): t for t in topics.get(key, [])}
            ordered = [by_key.pop(topic_key(n)) for n in names if topic_key(n) in by_key]
            events.append(
                Event(
                    key=key,
                    guid=guid,  # as stored: a uuid5 per event per document was ~3% of publishing
                    page=page,
                    topics=tuple(ordered + list(by_key.values())),
                    published=from_iso(published),
                    updated=from_iso(updated),
                    relpath=relpath,
                    source=source,
                    deleted=from_iso(deleted_at) if deleted_at else None,
                    seq=seq,
                    digest=digest,
                    rev=rev,
                )
            )
        return events
