"""Writing the full-text index of events (FTS5 table `search`, rowid = the event's `seq`): with each
event in the batch's transaction, and whole when the indexing rule changes. What is indexed and
how text folds: feeds/search.py."""

from __future__ import annotations

import sqlite3

from feeds.codec import page_from_json
from feeds.model import Page
from feeds.search import TOKENIZE, indexed

# Names the rule below and in feeds/search.py: a store indexed by another is indexed again.
SEARCH_VERSION = "1"
_VERSION_KEY = "search_index"


def index_event(conn: sqlite3.Connection, seq: int, page: Page, new: bool = False) -> None:
    """(Re)index one event's current page. A `new` event's seq has nothing indexed (a forgotten
    event's row goes with it), so a bulk load skips the lookup."""
    if not new:
        conn.execute("DELETE FROM search WHERE rowid = ?", (seq,))
    conn.execute(
        "INSERT INTO search (rowid, headline, summary, names) VALUES (?,?,?,?)", (seq, *indexed(page, page.topics))
    )


def unindex_event(conn: sqlite3.Connection, seq: int) -> None:
    conn.execute("DELETE FROM search WHERE rowid = ?", (seq,))


def ensure_index(conn: sqlite3.Connection) -> None:
    """Create the index, or rebuild it from every event when it was made by another rule (inside
    the transaction that opens the store: other processes wait for it, as for a migration)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (_VERSION_KEY,)).fetchone()
    if row and row[0] == SEARCH_VERSION:
        return
    conn.execute("DROP TABLE IF EXISTS search")
    conn.execute(f"CREATE VIRTUAL TABLE search USING fts5(headline, summary, names, tokenize = '{TOKENIZE}')")
    rows = conn.execute("SELECT seq, doc FROM events")
    while batch := rows.fetchmany(2000):
        conn.executemany(
            "INSERT INTO search (rowid, headline, summary, names) VALUES (?,?,?,?)",
            [(seq, *text) for seq, doc in batch if (text := _indexed(doc))],
        )
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (_VERSION_KEY, SEARCH_VERSION))


def _indexed(doc: str) -> tuple[str, str, str] | None:
    """What a stored page indexes; None for one that does not decode (a store is opened whatever
    one row holds: that event is not found by searches until it is stored again)."""
    try:
        page = page_from_json(doc)
    except (KeyError, ValueError, TypeError, IndexError):
        return None
    return indexed(page, page.topics)
