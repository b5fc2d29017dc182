"""Topics in the store: which topics an event is in, and keeping that right as the store learns.

Run on the store's writer thread, inside its transaction (feeds.store calls these).

- An event's topics are its heading and its context names (its related events', then its day
  listing's: feeds.model.Page.context_lists). A markdown context list is a list of parts
  (`Austin, Texas` may be one name or two); runs of parts that form a *known* name stay whole,
  else a place and its region stay one (feeds.places). Known names are the names with a comma
  that some event gives whole: its `#####` heading, or a context of a JSON/XML page or listing
  (`known_names`, counted by the events that give them).
- Resolution never depends on arrival order: when a name becomes known (or stops being known),
  the events whose lists hold its first two parts (`context_pairs`, an index) are resolved again
  in the same transaction, and their feeds change with the batch.
- Topics are keyed by feeds.ids.topic_key. A store keyed by another folding (schema 6 keyed by a
  transliteration) is keyed again when opened (`rekey`): a topic whose spellings now have
  different keys is split; the group with the most live uses keeps the row, id and slug.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from feeds.codec import page_from_json
from feeds.ids import content_hash, topic_key, topic_slug
from feeds.model import Page, Run, comma_parts

# Schema 7's tables (what publishing has left to do, `pending`, came with it and is schema 9's now).
MIGRATION = """
    CREATE TABLE known_names (key TEXT PRIMARY KEY, events INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE event_contexts (seq INTEGER PRIMARY KEY, pairs TEXT NOT NULL, names TEXT NOT NULL);
    CREATE TABLE context_pairs (pair TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (pair, seq)) WITHOUT ROWID;
"""
_KNOWN_COUNTER = "known_names"  # in meta: moves whenever the set of known names changes
log = logging.getLogger("feeds.store")


class Changes(Protocol):
    """What a change to topic memberships reports (feeds.store.BatchResult)."""

    added: set[str]
    changed: set[str]
    feeds: set[str]
    renamed: set[str]
    reslotted: set[str]
    topic_ids: set[int]
    rescan: set[int]
    newest: dict[int, str]


@dataclass
class Touched:
    """Changes outside a batch (keying a store again): what its publish will take."""

    added: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    feeds: set[str] = field(default_factory=set)
    renamed: set[str] = field(default_factory=set)
    reslotted: set[str] = field(default_factory=set)
    topic_ids: set[int] = field(default_factory=set)
    rescan: set[int] = field(default_factory=set)
    newest: dict[int, str] = field(default_factory=dict)


class TopicMemo:
    """What the writer keeps between batches: each topic key's (id, slug), which never change,
    the aliases (set when a store is opened), and the known names, read again whenever the
    counter in meta moved (another process may have written). Cleared when a transaction rolls
    back."""

    def __init__(self) -> None:
        self.ids: dict[str, tuple[int, str]] = {}
        self.known: set[str] | None = None
        self.known_at = -1
        self.aliases: dict[str, tuple[str, str]] | None = None

    def clear(self) -> None:
        self.ids.clear()
        self.known = None
        self.aliases = None


ALIASES_KEY = "topic_aliases"  # in meta: the configured groups of names that are one topic (JSON)


def alias_keys(conn: sqlite3.Connection) -> dict[str, tuple[str, str]]:
    """The key of every aliased name -> (its group's key, the name the group is shown by)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (ALIASES_KEY,)).fetchone()
    out: dict[str, tuple[str, str]] = {}
    for shown, others in json.loads(row[0]) if row else []:
        for name in (shown, *others):
            out[topic_key(name)] = (topic_key(shown), shown)
    return out


def grouped_key(name: str, aliases: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """(key, name to show and to take a slug from) of the topic a name belongs to."""
    plain = topic_key(name) or f"#{name}"
    return aliases.get(plain, (plain, name))


def _page(key: str, doc: str) -> Page | None:
    """An event's stored page, or None (with a warning naming the event) if it does not decode."""
    try:
        return page_from_json(doc)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("store: event %s: its stored page does not decode (%r); its topics are left as they are", key, exc)
        return None


def run_key(run: Iterable[str]) -> str:
    """Key of a run of context parts, or of a name's comma parts: the parts' keys, comma-joined."""
    return ",".join(topic_key(part) for part in run)


def _counter(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (_KNOWN_COUNTER,)).fetchone()
    return int(row[0]) if row else 0


def known(conn: sqlite3.Connection, memo: TopicMemo) -> Callable[[Run], bool]:
    """Whether a run of context parts forms a known name."""
    at = _counter(conn)
    if memo.known is None or memo.known_at != at:
        memo.known = {key for (key,) in conn.execute("SELECT key FROM known_names")}
        memo.known_at = at
    names = memo.known
    return lambda run: run_key(run) in names


def register(conn: sqlite3.Connection, seq: int, page: Page, memo: TopicMemo) -> list[str]:
    """Record what an event's current page gives: the names with a comma it gives whole, and
    the first two parts of every run its ambiguous lists could form (the index that finds it
    again). Returns the keys of names that became known or stopped being known."""
    pairs = sorted(
        {run_key(r.contexts[i : i + 2]) for r in page.context_lists if r.ambiguous for i in range(len(r.contexts) - 1)}
    )
    names = sorted({run_key(parts) for n in page.named if len(parts := comma_parts(n)) > 1})
    return _record(conn, seq, pairs, names, memo)


def forget(conn: sqlite3.Connection, key: str, result: Changes) -> None:
    """An event is removed from the store (folded into another): what it gave is forgotten, and
    the events whose lists that changes are resolved again."""
    row = conn.execute("SELECT seq FROM events WHERE key = ?", (key,)).fetchone()
    if row is None:
        return
    memo = TopicMemo()  # the writer's own memo sees the known names change by the counter
    flipped = _record(conn, row[0], [], [], memo)
    if flipped:
        resolve_again(conn, [k for k in events_holding(conn, flipped) if k != key], memo, result)


def _record(conn: sqlite3.Connection, seq: int, pairs: list[str], names: list[str], memo: TopicMemo) -> list[str]:
    row = conn.execute("SELECT pairs, names FROM event_contexts WHERE seq = ?", (seq,)).fetchone()
    old_pairs, old_names = (json.loads(row[0]), json.loads(row[1])) if row else ([], [])
    if pairs == old_pairs and names == old_names:
        return []
    if pairs or names:
        conn.execute(
            "INSERT OR REPLACE INTO event_contexts VALUES (?,?,?)", (seq, json.dumps(pairs), json.dumps(names))
        )
    else:
        conn.execute("DELETE FROM event_contexts WHERE seq = ?", (seq,))
    conn.executemany(
        "DELETE FROM context_pairs WHERE pair = ? AND seq = ?", [(p, seq) for p in sorted(set(old_pairs) - set(pairs))]
    )
    conn.executemany(
        "INSERT OR IGNORE INTO context_pairs VALUES (?,?)", [(p, seq) for p in sorted(set(pairs) - set(old_pairs))]
    )
    flipped = []
    for key in sorted(set(old_names) - set(names)):
        left = conn.execute(
            "UPDATE known_names SET events = events - 1 WHERE key = ? RETURNING events", (key,)
        ).fetchone()
        if left and left[0] <= 0:
            conn.execute("DELETE FROM known_names WHERE key = ?", (key,))
            flipped.append(key)
    for key in sorted(set(names) - set(old_names)):
        (count,) = conn.execute(
            "INSERT INTO known_names VALUES (?, 1) ON CONFLICT(key) DO UPDATE SET events = events + 1 RETURNING events",
            (key,),
        ).fetchone()
        if count == 1:
            flipped.append(key)
    if flipped:
        conn.execute(
            "INSERT INTO meta VALUES (?, '1') ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            (_KNOWN_COUNTER,),
        )
        memo.known = None
    return flipped


def events_holding(conn: sqlite3.Connection, keys: Iterable[str]) -> list[str]:
    """Live events whose ambiguous lists hold the first two parts of one of these names, in
    arrival order (index lookups)."""
    seqs: set[int] = set()
    for key in keys:
        pair = ",".join(key.split(",")[:2])
        seqs |= {s for (s,) in conn.execute("SELECT seq FROM context_pairs WHERE pair = ?", (pair,))}
    out = []
    for seq in sorted(seqs):
        row = conn.execute("SELECT key FROM events WHERE seq = ? AND live = 1", (seq,)).fetchone()
        if row:
            out.append(row[0])
    return out


def topic_id(conn: sqlite3.Connection, name: str, memo: TopicMemo) -> tuple[int, str]:
    """The (id, slug) of the topic `name` belongs to; a new topic if none has its key."""
    if memo.aliases is None:
        memo.aliases = alias_keys(conn)
    key, shown = grouped_key(name, memo.aliases)
    if key in memo.ids:
        return memo.ids[key]
    row = conn.execute("SELECT id, slug FROM topics WHERE key = ?", (key,)).fetchone()
    if row:
        memo.ids[key] = (int(row[0]), row[1])
        return memo.ids[key]
    slug = topic_slug(shown)
    if conn.execute("SELECT 1 FROM topics WHERE slug = ?", (slug,)).fetchone():
        # Another topic (a long name cut to the same prefix) holds the slug: this one gets a
        # suffix derived from its own key, so it never depends on which arrived first twice.
        slug = f"{slug[:70]}-{content_hash(key.encode('utf-8'))[:8]}"
    cur = conn.execute("INSERT INTO topics (key, slug, name) VALUES (?,?,?)", (key, slug, name))
    memo.ids[key] = (int(cur.lastrowid or 0), slug)
    return memo.ids[key]


def feeds_of(conn: sqlite3.Connection, key: str) -> set[str]:
    """Every feed that shows (or showed) an event: latest, its day, each of its topics."""
    row = conn.execute("SELECT date FROM events WHERE key = ?", (key,)).fetchone()
    if row is None:
        return set()
    slugs = conn.execute(
        "SELECT t.slug FROM event_topics et JOIN topics t ON t.id = et.topic_id WHERE et.event = ?", (key,)
    ).fetchall()
    return {"latest", f"dates/{row[0]}"} | {f"topics/{s}" for (s,) in slugs}


def take_slot(conn: sqlite3.Connection, topic_id: int, date: str, key: str) -> tuple[int, bool]:
    """The slot of a new member: a topic's members are kept in (date, key) order, whatever order
    they arrive in, so that any store of the same pages has the same pages of every topic. Most
    arrive newest, at the end; an older one takes its place (found by bisection) and the later
    members move up one slot. Returns the slot and whether members moved."""
    last = conn.execute(
        "SELECT slot, date, event FROM event_topics WHERE topic_id = ? ORDER BY slot DESC LIMIT 1", (topic_id,)
    ).fetchone()
    if last is None or (last[1], last[2]) < (date, key):
        return (last[0] + 1 if last else 0), False
    lo, hi = 0, int(last[0])
    while lo < hi:
        mid = (lo + hi) // 2
        row = conn.execute(
            "SELECT date, event FROM event_topics WHERE topic_id = ? AND slot = ?", (topic_id, mid)
        ).fetchone()
        if row is None or (row[0], row[1]) > (date, key):
            hi = mid
        else:
            lo = mid + 1
    conn.execute("UPDATE event_topics SET slot = -slot - 1 WHERE topic_id = ? AND slot >= ?", (topic_id, lo))
    conn.execute("UPDATE event_topics SET slot = -slot WHERE topic_id = ? AND slot < 0", (topic_id,))
    return lo, True


def place(
    conn: sqlite3.Connection,
    key: str,
    names: Iterable[str],
    member: tuple[str, int, int, str],
    memo: TopicMemo,
    result: Changes,
    before: str | None,
) -> None:
    """Make an event a member of exactly the topics of `names`. `member`: its (date, seq, rev,
    updated) as the topic rows keep them; `before`: its `updated` before this change, None for
    a new event (it has no rows yet)."""
    day, seq, rev, at = member
    old_topics: set[int] = set()
    if before is not None:
        old_topics = {
            t for (t,) in conn.execute("SELECT topic_id FROM event_topics WHERE event = ? AND live = 1", (key,))
        }
        # Rows of topics the event leaves stay (not live) so every later event keeps its slot in
        # the topic's stable pages.
        conn.execute("UPDATE event_topics SET live = 0, rev = ?, updated = ? WHERE event = ?", (rev, at, key))
    new_topics = set()
    for name in names:
        tid, slug = topic_id(conn, name, memo)
        if tid in new_topics:
            continue
        new_topics.add(tid)
        result.feeds.add(f"topics/{slug}")
        if (
            before is not None
            and conn.execute("SELECT 1 FROM event_topics WHERE event = ? AND topic_id = ?", (key, tid)).fetchone()
        ):
            # One that comes back keeps its slot.
            conn.execute(
                "UPDATE event_topics SET live = 1, spelling = ?, date = ?, rev = ?, updated = ? "
                "WHERE event = ? AND topic_id = ?",
                (name, day, rev, at, key, tid),
            )
            continue
        slot, moved = take_slot(conn, tid, day, key)
        if moved:
            result.reslotted.add(slug)
        # The trigger counts the slot.
        conn.execute("INSERT INTO event_topics VALUES (?,?,?,?,1,?,?,?,?)", (tid, slot, key, name, day, seq, rev, at))
    # A topic was last updated when the newest change of its events was (the source's time): a
    # later time raises it (at the batch's end); a topic an event left, or whose event went back in
    # time, is looked at again.
    for t in new_topics:
        if at > result.newest.get(t, ""):
            result.newest[t] = at
    result.rescan |= old_topics - new_topics
    if before is not None and at < before:
        result.rescan |= new_topics
    result.topic_ids |= old_topics | new_topics


def _wanted(conn: sqlite3.Connection, names: Iterable[str], memo: TopicMemo) -> dict[int, str]:
    wanted: dict[int, str] = {}
    for name in names:
        wanted.setdefault(topic_id(conn, name, memo)[0], name)
    return wanted


def resolve_again(conn: sqlite3.Connection, keys: Iterable[str], memo: TopicMemo, result: Changes) -> None:
    """Resolve these live events' topics with what is known now; those whose topics change get a
    new revision (their entries show their topics) and their feeds, before and after, re-render."""
    for key in keys:
        row = conn.execute("SELECT doc, date, seq, updated FROM events WHERE key = ? AND live = 1", (key,)).fetchone()
        if row is None:
            continue
        doc, date, seq, updated = row
        if (page := _page(key, doc)) is None:
            continue
        names = page.topic_names(known(conn, memo))
        wanted = _wanted(conn, names, memo)
        current = dict(
            conn.execute("SELECT topic_id, spelling FROM event_topics WHERE event = ? AND live = 1", (key,)).fetchall()
        )
        if wanted == current:
            continue
        (rev,) = conn.execute("UPDATE events SET rev = rev + 1 WHERE key = ? RETURNING rev", (key,)).fetchone()
        result.feeds |= feeds_of(conn, key)
        place(conn, key, names, (date, seq, rev, updated), memo, result, before=updated)
        if key not in result.added:
            result.changed.add(key)


def set_topics(
    conn: sqlite3.Connection,
    key: str,
    page: Page,
    member: tuple[str, int, int, str],
    memo: TopicMemo,
    result: Changes,
    before: str | None,
) -> None:
    """An event's current page was stored: record what it makes known, place the event in its
    topics (see place), and resolve again the events whose context lists a name that became
    known (or is known no more) changes."""
    flipped = register(conn, member[1], page, memo)
    place(conn, key, page.topic_names(known(conn, memo)), member, memo, result, before)
    if flipped:
        resolve_again(conn, [k for k in events_holding(conn, flipped) if k != key], memo, result)


def refresh_topics(conn: sqlite3.Connection, topic_ids: Iterable[int], now: dt.datetime, result: Changes) -> None:
    """A topic's live event count and its most frequent spelling (ties: alphabetical). A new
    name is shown by the topic's own pages (their titles) and by every entry of its events: the
    events' revisions move (an entry is made again wherever it is rendered next) and the topic's
    pages are rendered again."""
    conn.executemany(
        "UPDATE topics SET updated = ? WHERE id = ? AND (updated IS NULL OR updated < ?)",
        [(at, tid, at) for tid, at in sorted(result.newest.items())],
    )
    for tid in sorted(result.rescan):
        # None when no event is left: the next to join sets it, as in a store that never had the others.
        conn.execute(
            "UPDATE topics SET updated = (SELECT max(updated) FROM event_topics WHERE topic_id = ? AND live = 1) "
            "WHERE id = ?",
            (tid, tid),
        )
    shown = dict(alias_keys(conn).values())  # an aliased topic is shown by its configured name
    for tid in topic_ids:
        count = conn.execute("SELECT coalesce(sum(n), 0) FROM topic_spellings WHERE topic_id = ?", (tid,)).fetchone()[0]
        spelling = conn.execute(
            "SELECT spelling FROM topic_spellings WHERE topic_id = ? AND n > 0 ORDER BY n DESC, spelling LIMIT 1",
            (tid,),
        ).fetchone()
        if spelling:
            old_name, slug, key = conn.execute("SELECT name, slug, key FROM topics WHERE id = ?", (tid,)).fetchone()
            name = shown.get(key, spelling[0])
            conn.execute("UPDATE topics SET events = ?, name = ? WHERE id = ?", (count, name, tid))
            if old_name != name:
                members = "SELECT event FROM event_topics WHERE topic_id = ?"
                conn.execute(f"UPDATE events SET rev = rev + 1 WHERE key IN ({members})", (tid,))
                conn.execute(f"UPDATE event_topics SET rev = rev + 1 WHERE event IN ({members})", (tid,))
                result.renamed.add(slug)
                result.feeds.add(f"topics/{slug}")
        else:
            conn.execute("UPDATE topics SET events = 0 WHERE id = ?", (tid,))


# ----- keying a store again ------------------------------------------------------------------------
