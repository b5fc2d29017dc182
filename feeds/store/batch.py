"""The batch: pages and listings written, version chains settled, events upserted, all on the writer thread
inside one transaction. A batch says which feeds it touched so only those re-render."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from feeds.chains import (
    Version,
    chain_root,
    current_version,
    event_updated,
    linked_paths,
    with_predecessors,
)
from feeds.codec import page_from_json, page_to_json
from feeds.ids import content_hash, event_guid
from feeds.model import EPOCH, day_start
from feeds.store.listings import _day, _find_unlisted, _store_listing, _weigh_evidence, listing_of
from feeds.store.records import BatchResult, Incoming, IncomingListing, from_iso, iso
from feeds.store.search_writes import index_event, unindex_event
from feeds.store.topic_writes import TopicMemo, forget, set_topics
from feeds.store.topic_writes import feeds_of as _feeds_of
from feeds.store.topic_writes import refresh_topics as _refresh_topics


def _bump(conn: sqlite3.Connection, counter: str) -> int:
    conn.execute(
        "INSERT INTO meta VALUES (?, '1') ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        (counter,),
    )
    return int(conn.execute("SELECT value FROM meta WHERE key = ?", (counter,)).fetchone()[0])


def _version_of(conn: sqlite3.Connection, path: str) -> tuple[Version, dt.datetime | None] | None:
    row = conn.execute("SELECT version, modified FROM pages WHERE path = ? AND deleted_at IS NULL", (path,)).fetchone()
    if row is None:
        return None
    path_, first, ts, listed = json.loads(row[0])
    return Version(path_, first, from_iso(ts) if ts else None, tuple(listed)), from_iso(row[1]) if row[1] else None


def _component(conn: sqlite3.Connection, start: set[str]) -> tuple[set[str], set[str]]:
    """Every page path linked to `start` through Changes lists or a day listing's evidence, and
    the event keys they had."""
    paths: set[str] = set()
    keys: set[str] = set()
    todo = set(start)
    while todo:
        path = todo.pop()
        if path in paths:
            continue
        paths.add(path)
        row = conn.execute("SELECT chain FROM aliases WHERE path = ?", (path,)).fetchone()
        if row:
            keys.add(row[0])
            todo |= {p for (p,) in conn.execute("SELECT path FROM aliases WHERE chain = ?", (row[0],))} - paths
        todo |= {p for (p,) in conn.execute("SELECT linked FROM links WHERE page = ?", (path,))} - paths
        todo |= {p for (p,) in conn.execute("SELECT page FROM links WHERE linked = ?", (path,))} - paths
        todo |= {p for (p,) in conn.execute("SELECT target FROM evidence WHERE page = ?", (path,))} - paths
        todo |= {p for (p,) in conn.execute("SELECT page FROM evidence WHERE target = ?", (path,))} - paths
    return paths, keys


def _apply(
    conn: sqlite3.Connection,
    incoming: Sequence[Incoming],
    deleted: list[str],
    now: dt.datetime,
    memo: TopicMemo,
    listings: Sequence[IncomingListing] = (),
    gone_at: Mapping[str, dt.datetime] | None = None,
) -> BatchResult:
    """`gone_at`: when the source says a deleted page went (a git commit); a deletion it has no
    time for is dated by the archive itself (`_archive_newest`)."""
    result = BatchResult()
    dirty: set[str] = set()
    days: set[str] = set()
    # The batch's pages as parsed: settling a chain reads its current version from here rather
    # than reading back and decoding what was just written.
    fresh: dict[str, Incoming] = {}
    for item in incoming:
        page, doc, digest = item.page, item.doc, item.digest
        fresh[page.path] = item
        # The page's own time (what chain_root falls back on): the same in every copy of it.
        modified = iso(event_updated(page))
        row = conn.execute(
            "SELECT hash, deleted_at, relpath, source, modified FROM pages WHERE path = ?", (page.path,)
        ).fetchone()
        if row and row[:4] == (digest, None, item.relpath, item.source):
            if row[4] != modified:
                conn.execute("UPDATE pages SET modified = ? WHERE path = ?", (modified, page.path))
            continue
        version = item.version
        conn.execute(
            "INSERT INTO pages (path, source, relpath, hash, doc, version, chain, seen_at, deleted_at, modified, day, "
            "lead, image) VALUES (?,?,?,?,?,?,?,?,NULL,?,?,?,?) ON CONFLICT(path) DO UPDATE SET source=excluded.source, "
            "relpath=excluded.relpath, hash=excluded.hash, doc=excluded.doc, version=excluded.version, "
            "seen_at=excluded.seen_at, deleted_at=NULL, modified=excluded.modified, lead=excluded.lead, "
            "image=excluded.image",
            (
                page.path,
                item.source,
                item.relpath,
                digest,
                doc,
                item.version_json,
                page.path,
                iso(now),
                modified,
                _day(page.path),
                page.sources[0].url if page.sources else None,
                page.image,
            ),
        )
        conn.execute("DELETE FROM links WHERE page = ?", (page.path,))
        conn.executemany(
            "INSERT OR IGNORE INTO links VALUES (?, ?)", [(page.path, p) for p in linked_paths(version) - {page.path}]
        )
        dirty |= linked_paths(version)
        days.add(_day(page.path))
    gone: dict[str, dt.datetime] = {}
    if deleted:
        newest = _archive_newest(conn, incoming)
        gone = {path: (gone_at or {}).get(path) or newest for path in deleted}
    for path in deleted:
        cur = conn.execute(
            "UPDATE pages SET deleted_at = ? WHERE path = ? AND deleted_at IS NULL", (iso(gone[path]), path)
        )
        if cur.rowcount:
            fresh.pop(path, None)
            dirty.add(path)
            days.add(_day(path))
            dirty |= {p for (p,) in conn.execute("SELECT linked FROM links WHERE page = ?", (path,))}
            conn.execute("DELETE FROM links WHERE page = ?", (path,))
    for listing in listings:
        dirty |= _store_listing(conn, listing)
        days.add(_day(listing.listing.path))
    for day in sorted(days):
        dirty |= _weigh_evidence(conn, day)
    if dirty:
        _bump(conn, "links")  # where related links lead may have changed
    done: set[str] = set()
    for path in sorted(dirty):
        if path in done:
            continue
        paths, old_keys = _component(conn, {path})
        done |= paths
        _settle_chain(conn, paths, old_keys, result, memo, fresh, gone)
    for day in sorted(days | {_day(p) for p in done}):
        _find_unlisted(conn, day, result)
    _refresh_topics(conn, sorted(result.topic_ids), now, result)
    _remember_pending(conn, result)
    return result


def _archive_newest(conn: sqlite3.Connection, incoming: Sequence[Incoming]) -> dt.datetime:
    """The newest time the stored archive states (its events' and tombstones' times, this batch's
    pages'): what a deletion no source dates is dated by. Not the clock: replicas that saw the same
    pages agree on it."""
    (stored,) = conn.execute("SELECT max(updated) FROM events").fetchone()
    times = [event_updated(item.page) for item in incoming] + ([from_iso(stored)] if stored else [])
    return max(times, default=EPOCH)


def _settle_chain(
    conn: sqlite3.Connection,
    paths: set[str],
    old_keys: set[str],
    result: BatchResult,
    memo: TopicMemo,
    fresh: dict[str, Incoming],
    gone: Mapping[str, dt.datetime],
) -> None:
    versions: dict[str, Version] = {}
    times: dict[str, dt.datetime] = {}
    for path in sorted(paths):
        # A page of this batch has its version at hand (stored just before); others are read back.
        item = fresh.get(path)
        if item is not None:
            versions[path] = item.version
            times[path] = event_updated(item.page)
        elif (known := _version_of(conn, path)) is not None:
            versions[path] = known[0]
            if known[1]:
                times[path] = known[1]
    if not versions:
        # Every version is gone: the event went when the last of them did.
        when = max((gone[p] for p in paths if p in gone), default=EPOCH)
        for key in old_keys:
            _retire_event(conn, key, when, result)
        return
    earlier: dict[str, set[str]] = {}
    for page, target in _read_keys_sync(
        conn, "SELECT page, target FROM evidence WHERE page IN ({keys})", sorted(versions)
    ):
        if target in versions:
            earlier.setdefault(target, set()).add(page)
    chain = [with_predecessors(v, earlier.get(p, ())) for p, v in versions.items()]
    key = chain_root(chain, times)
    current = current_version(chain)
    conn.executemany("INSERT OR REPLACE INTO aliases VALUES (?, ?)", [(p, key) for p in paths])
    conn.executemany("UPDATE pages SET chain = ? WHERE path = ?", [(key, p) for p in versions])
    for old in old_keys - {key}:
        # The chain turned out to start earlier than thought: the old id leaves every feed (Atom
        # carries a tombstone for it, if it was ever published) and the event goes on under its
        # first version's id.
        _retire_event(conn, old, times.get(current, EPOCH), result, folded=True)
    _upsert_event(conn, key, current, result, memo, fresh.get(current))


def _read_keys_sync(conn: sqlite3.Connection, sql: str, keys: Sequence[str]) -> list[Any]:
    rows: list[Any] = []
    for i in range(0, len(keys), 500):
        part = keys[i : i + 500]
        rows += conn.execute(sql.format(keys=",".join("?" * len(part))), part).fetchall()
    return rows


def _retire_event(
    conn: sqlite3.Connection, key: str, when: dt.datetime, result: BatchResult, folded: bool = False
) -> None:
    """The event leaves every feed at `when`, or at its own `updated` if that is later (a tombstone
    never predates what it deletes). One folded into an earlier version's event that no document
    ever showed (it has no entry yet: its versions arrived in different batches of one load) is
    forgotten, so that the store is what it would be had they arrived together."""
    if folded and conn.execute("SELECT 1 FROM entries WHERE event = ?", (key,)).fetchone() is None:
        _forget_event(conn, key, result)
        return
    row = conn.execute(
        "UPDATE events SET live = 0, deleted_at = max(?, updated), updated = max(?, updated), rev = rev + 1 "
        "WHERE key = ? AND live = 1 RETURNING rev, updated",
        (iso(when), iso(when), key),
    ).fetchone()
    if row is None:
        return
    result.deleted.add(key)
    result.added.discard(key)
    result.changed.discard(key)
    result.feeds |= _feeds_of(conn, key)
    topic_ids = [t for (t,) in conn.execute("SELECT topic_id FROM event_topics WHERE event = ?", (key,))]
    conn.execute("UPDATE event_topics SET live = 0, rev = ?, updated = ? WHERE event = ?", (row[0], row[1], key))
    result.topic_ids.update(topic_ids)
    result.rescan.update(topic_ids)


def _forget_event(conn: sqlite3.Connection, key: str, result: BatchResult) -> None:
    memberships = conn.execute(
        "SELECT et.topic_id, et.slot, t.slug FROM event_topics et JOIN topics t ON t.id = et.topic_id WHERE et.event = ?",
        (key,),
    ).fetchall()
    conn.execute("DELETE FROM event_topics WHERE event = ?", (key,))
    for topic_id, slot, slug in memberships:
        # Later members move down one slot (two steps: slots are the primary key).
        conn.execute("UPDATE event_topics SET slot = -slot - 1 WHERE topic_id = ? AND slot > ?", (topic_id, slot))
        conn.execute("UPDATE event_topics SET slot = -slot - 2 WHERE topic_id = ? AND slot < 0", (topic_id,))
        conn.execute("UPDATE topics SET slots = slots - 1 WHERE id = ?", (topic_id,))
        result.topic_ids.add(topic_id)
        result.rescan.add(topic_id)
        result.reslotted.add(slug)
        result.feeds.add(f"topics/{slug}")
    forget(conn, key, result)  # what its page made known
    (seq,) = conn.execute("DELETE FROM events WHERE key = ? RETURNING seq", (key,)).fetchone()
    unindex_event(conn, seq)
    conn.execute("DELETE FROM unlisted WHERE key = ?", (key,))
    result.added.discard(key)
    result.changed.discard(key)


def _listed_heading(conn: sqlite3.Connection, path: str) -> str | None:
    row = conn.execute(
        "SELECT heading FROM listed WHERE page = ? AND heading IS NOT NULL ORDER BY listing LIMIT 1", (path,)
    ).fetchone()
    return str(row[0]) if row else None


def _upsert_event(
    conn: sqlite3.Connection,
    key: str,
    current: str,
    result: BatchResult,
    memo: TopicMemo,
    item: Incoming | None,
) -> None:
    """`item`: the current version's page, when this batch brought it (else it is read)."""
    if item is not None:
        page, doc, relpath, source = item.page, item.doc, item.relpath, item.source
    else:
        doc, relpath, source = conn.execute(
            "SELECT doc, relpath, source FROM pages WHERE path = ?", (current,)
        ).fetchone()
        page = page_from_json(doc)
    if page.heading is None and (heading := _listed_heading(conn, current)):
        # Old renderings have no `#####` heading: the day listing gives it.
        page = replace(page, heading=heading)
        doc = page_to_json(page)
    if listing := listing_of(conn, key, current):
        page = replace(page, listing=listing)
        doc = page_to_json(page)
    digest = content_hash(f"{doc}\n{relpath}\n{source}".encode())
    at = iso(event_updated(page))
    old = conn.execute("SELECT hash, live, first_seen, seq, updated FROM events WHERE key = ?", (key,)).fetchone()
    if old and old[0] == digest and old[1] == 1:
        return
    before = _feeds_of(conn, key) if old else set()
    first_seen = old[2] if old else at
    seq = old[3] if old else conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM events").fetchone()[0]
    (rev,) = conn.execute(
        "INSERT INTO events (key, guid, date, current, relpath, source, hash, doc, published, updated, first_seen, seq, "
        "live, deleted_at, rev) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,1,NULL,1) ON CONFLICT(key) DO UPDATE SET "
        "date=excluded.date, current=excluded.current, relpath=excluded.relpath, source=excluded.source, "
        "hash=excluded.hash, doc=excluded.doc, published=excluded.published, updated=excluded.updated, live=1, "
        "deleted_at=NULL, rev=rev + 1 RETURNING rev",
        (
            key,
            item.guid if item is not None and item.page.path == key else event_guid(key),
            page.date.isoformat(),
            current,
            relpath,
            source,
            digest,
            doc,
            iso(day_start(page.date)),
            at,
            first_seen,
            seq,
        ),
    ).fetchone()
    if old is None:
        result.added.add(key)
    elif key not in result.added:
        result.changed.add(key)
    result.deleted.discard(key)
    result.feeds |= before | {"latest", f"dates/{page.date.isoformat()}"}
    set_topics(conn, key, page, (page.date.isoformat(), seq, rev, at), memo, result, old[4] if old else None)
    index_event(conn, seq, page, new=old is None)


def _remember_pending(conn: sqlite3.Connection, result: BatchResult) -> None:
    """What the batch leaves to publish, durable with the change itself (publishing clears it)."""
    rows = [("feed", f) for f in result.feeds] + [("event", e) for e in result.events]
    rows += [("renamed", s) for s in result.renamed | result.reslotted]
    if not rows:
        return
    mark = _bump(conn, "pending")
    conn.executemany(
        "INSERT INTO pending (kind, value, mark) VALUES (?,?,?) ON CONFLICT(kind, value) DO UPDATE SET mark = excluded.mark",
        [(kind, value, mark) for kind, value in sorted(rows)],
    )
