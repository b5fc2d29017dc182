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
    moved: list[tuple[str, str, str]] = []  # (published, updated, key)
    for key, doc, published, updated in conn.execute("SELECT key, doc, published, updated FROM events"):
        if (page := _page(doc)) is not None:
            at, day = iso(event_updated(page)), iso(day_start(page.date))
            if (published, updated) != (day, at):
                moved.append((day, at, key))
    # Set by set, not event by event: an upgrade moves nearly every event of a big store.
    conn.execute("CREATE TEMP TABLE retimed (key TEXT PRIMARY KEY, published TEXT, updated TEXT) WITHOUT ROWID")
    conn.executemany("INSERT INTO retimed (published, updated, key) VALUES (?, ?, ?)", moved)
    conn.execute(
        "UPDATE events SET published = r.published, updated = r.updated, "
        "deleted_at = CASE WHEN live THEN NULL ELSE r.updated END, rev = rev + 1 FROM retimed r WHERE r.key = events.key"
    )
    conn.execute(
        "UPDATE event_topics SET updated = r.updated, rev = e.rev FROM retimed r JOIN events e ON e.key = r.key "
        "WHERE event_topics.event = r.key"
    )
    conn.execute(
        "UPDATE topics SET updated = (SELECT max(updated) FROM event_topics WHERE topic_id = topics.id AND live = 1)"
    )
    feeds = [("feed", "latest")] if moved else []
    feeds += conn.execute(
        "SELECT DISTINCT 'feed', 'dates/' || e.date FROM retimed r JOIN events e ON e.key = r.key "
        "UNION SELECT DISTINCT 'feed', 'topics/' || t.slug FROM retimed r "
        "JOIN event_topics et ON et.event = r.key JOIN topics t ON t.id = et.topic_id"
    ).fetchall()
    feeds += [("event", key) for _, _, key in moved]
    conn.executemany("INSERT OR IGNORE INTO pending (kind, value) VALUES (?, ?)", feeds)
    conn.execute("DROP TABLE retimed")
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (TIMES_KEY, TIMES))
    return len(moved)


def _page(doc: str) -> Page | None:
    try:
        return page_from_json(doc)
    except (ParseError, ValueError, KeyError, TypeError):
        return None  # a page this program cannot read back is dated when it is read again
