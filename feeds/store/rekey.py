"""Keying a store's topics again when the program folds names differently from the program that
wrote it (schema 6 keyed them by a transliteration): a topic whose spellings now have different
keys is split, the group with the most live uses keeping the row, id and slug; what changed is left
to publish. Run on the writer thread when the store is opened."""

from __future__ import annotations

import datetime as dt
import sqlite3

from feeds.ids import FOLDING
from feeds.places import PLACE_RULE
from feeds.store.topic_writes import (
    MIGRATION,
    TopicMemo,
    Touched,
    _page,
    alias_keys,
    grouped_key,
    refresh_topics,
    register,
    resolve_again,
)

RETIRED = "#retired:"  # a topic key no name has: `#retired:<id>:<the key its events moved to>`


def folding_of(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'topic_folding'").fetchone()
    return str(row[0]) if row else None


def context_rule_of(conn: sqlite3.Connection) -> str | None:
    """The rule (feeds.places.PLACE_RULE) the store's context lists were resolved by: a store
    resolved by another (none: before the rule) is resolved again when opened."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'context_rule'").fetchone()
    return str(row[0]) if row else None


def _keys_by_keeper(conn: sqlite3.Connection) -> dict[int, str]:
    """Each topic's new key: its present key while some of its spellings still have it (a fresh
    store of the same pages would give that topic the same slug); else the key of its spellings
    with the most live uses (then the most uses, then the smallest key). Two topics claiming a key:
    the one with more live uses keeps it, the other is retired (a key no name has, naming the key
    its events move to). A group of aliases is a new topic of its own: the topics of its names are
    retired into it, so its slug is its shown name's whichever names a store met first."""
    aliases = alias_keys(conn)
    groups_of = {key for key, _ in aliases.values()}
    groups: dict[int, dict[str, list[int]]] = {}
    for tid, spelling, live, total in conn.execute(
        "SELECT topic_id, spelling, sum(live), count(*) FROM event_topics GROUP BY topic_id, spelling"
    ):
        group = groups.setdefault(tid, {}).setdefault(grouped_key(spelling, aliases)[0], [0, 0])
        group[0] += live
        group[1] += total
    claims: list[tuple[int, int, int, str]] = []
    keys: dict[int, str] = {}
    for tid, name, current in conn.execute("SELECT id, name, key FROM topics"):
        spellings = groups.get(tid) or {grouped_key(name, aliases)[0]: [0, 0]}
        if current in spellings:
            claims.append((0, -spellings[current][0], tid, current))
            continue
        best, (live, _) = min(spellings.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
        if best in groups_of:
            keys[tid] = _retired(tid, best)
        else:
            claims.append((1, -live, tid, best))
    taken: set[str] = set()
    for _, _, tid, key in sorted(claims):
        keys[tid] = key if key not in taken else _retired(tid, key)
        taken.add(key)
    return keys


def _retired(tid: int, into: str) -> str:
    return f"{RETIRED}{tid}:{into}"


def _moves(conn: sqlite3.Connection) -> None:
    """Where each retired topic's slug leads now: the topic holding the key its events moved to."""
    conn.execute("DELETE FROM topic_moves")
    retired = conn.execute("SELECT id, slug, key FROM topics WHERE key LIKE ?", (RETIRED + "%",)).fetchall()
    for tid, slug, key in retired:
        into = key[len(RETIRED) :].partition(":")[2]
        target = conn.execute("SELECT id FROM topics WHERE key = ?", (into,)).fetchone()
        if target and target[0] != tid:
            conn.execute("INSERT OR REPLACE INTO topic_moves VALUES (?, ?)", (slug, target[0]))


def rekey(conn: sqlite3.Connection, now: dt.datetime) -> None:
    """Key every topic by this program's folding, learn the known names of every event again and
    resolve every live event's topics with them; what changed is left in `pending` for the next
    publish. Slots are kept: an event that leaves a topic keeps its (not live) row, one that
    joins another takes that topic's next slot."""
    for statement in MIGRATION.replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ").split(";"):
        if statement.strip():
            conn.execute(statement)  # a store of schema 8 made before schema 7 had its tables
    memo, touched = TopicMemo(), Touched()
    keys = _keys_by_keeper(conn)
    moved = [
        (tid, key)
        for tid, key in keys.items()
        if conn.execute("SELECT key FROM topics WHERE id = ?", (tid,)).fetchone()[0] != key
    ]
    # Through keys no name has: a topic may take a key another one gives up in the same pass.
    conn.executemany("UPDATE topics SET key = '#rekey:' || id WHERE id = ?", [(tid,) for tid, _ in moved])
    conn.executemany("UPDATE topics SET key = ? WHERE id = ?", [(key, tid) for tid, key in moved])
    for table in ("known_names", "event_contexts", "context_pairs"):
        conn.execute(f"DELETE FROM {table}")
    for key, seq, doc in conn.execute(
        "SELECT key, seq, doc FROM events ORDER BY seq"
    ):  # a cursor: not every doc at once
        if (page := _page(key, doc)) is not None:
            register(conn, seq, page, memo)
    live = [key for (key,) in conn.execute("SELECT key FROM events WHERE live = 1 ORDER BY seq")]
    resolve_again(conn, live, memo, touched)
    refresh_topics(conn, sorted(touched.topic_ids | {tid for tid, _ in moved}), now, touched)
    _moves(conn)
    conn.executemany(
        "INSERT OR IGNORE INTO pending (kind, value) VALUES (?, ?)",
        [("feed", f) for f in sorted(touched.feeds)]
        + [("event", e) for e in sorted(touched.changed)]
        + [("renamed", s) for s in sorted(touched.renamed | touched.reslotted)],
    )
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('topic_folding', ?)", (FOLDING,))
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('context_rule', ?)", (PLACE_RULE,))
