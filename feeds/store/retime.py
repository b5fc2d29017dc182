"""Dating a store again from its pages: stores written before times came from the page alone hold
times a source gave (a file's mtime, a commit's time, the clock at a deletion). Opening one
recomputes every event's `published` and `updated` from its stored page, so an upgraded store
serves what a fresh one would, without being deleted.
"""

from __future__ import annotations

import sqlite3

from feeds.chains import event_updated
from feeds.codec import page_from_json
from feeds.errors import ParseError
from feeds.model import Page, day_start
from feeds.store.records import iso
from feeds.store.topic_writes import feeds_of

TIMES = "page"  # what a store's times come from; in meta under TIMES_KEY
TIMES_KEY = "event_times"


def times_of(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (TIMES_KEY,)).fetchone()
    return str(row[0]) if row else None


def retime(conn: sqlite3.Connection) -> int:
    """Date every page and event by its page (`chains.event_updated`); a tombstone by its page's
    time too, as no record of when it went is left. Events whose times move get a new revision
    and their feeds are left in `pending` for the next publish. Returns how many moved."""
    conn.execute("CREATE INDEX IF NOT EXISTS events_updated ON events(updated)")  # the archive's newest time
    pages = [
        (iso(event_updated(page)), path)
        for path, doc in conn.execute("SELECT path, doc FROM pages")
        if (page := _page(doc)) is not None
    ]
    conn.executemany("UPDATE pages SET modified = ? WHERE path = ? AND modified IS NOT ?", [(*p, p[0]) for p in pages])
    moved: list[str] = []
    rows = conn.execute("SELECT key, doc, published, updated FROM events ORDER BY seq").fetchall()
    for key, doc, published, updated in rows:
        if (page := _page(doc)) is None:
            continue
        at, day = iso(event_updated(page)), iso(day_start(page.date))
        if (published, updated) == (day, at):
            continue
        (rev,) = conn.execute(
            "UPDATE events SET published = ?, updated = ?, deleted_at = CASE WHEN live THEN NULL ELSE ? END, "
            "rev = rev + 1 WHERE key = ? RETURNING rev",
            (day, at, at, key),
        ).fetchone()
        conn.execute("UPDATE event_topics SET updated = ?, rev = ? WHERE event = ?", (at, rev, key))
        moved.append(key)
    conn.execute(
        "UPDATE topics SET updated = (SELECT max(updated) FROM event_topics WHERE topic_id = topics.id AND live = 1)"
    )
    feeds = {feed for key in moved for feed in feeds_of(conn, key)}
    conn.executemany(
        "INSERT OR IGNORE INTO pending (kind, value) VALUES (?, ?)",
        [("feed", f) for f in sorted(feeds)] + [("event", k) for k in moved],
    )
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (TIMES_KEY, TIMES))
    return len(moved)


def _page(doc: str) -> Page | None:
    try:
        return page_from_json(doc)
    except (ParseError, ValueError, KeyError, TypeError):
        return None  # a page this program cannot read back is dated when it is read again
