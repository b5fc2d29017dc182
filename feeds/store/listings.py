"""Day listings and the archive's evidence they give: which pages are current, which unlisted pages are earlier
renderings of a listed one (feeds.chains.listing_evidence), and which events nothing explains."""

from __future__ import annotations

import json
import sqlite3

from feeds.chains import (
    DayPage,
    listing_evidence,
)
from feeds.model import DayEntry, Related
from feeds.store.records import BatchResult, IncomingListing


def _day(path: str) -> str:
    return path[:17]  # `/news/YYYY/MM/DD/`


def _store_listing(conn: sqlite3.Connection, item: IncomingListing) -> set[str]:
    """Keep a day listing; the pages it names now or named before (their heading may move)."""
    listing = item.listing
    row = conn.execute("SELECT hash FROM listings WHERE path = ?", (listing.path,)).fetchone()
    if row and row[0] == item.digest:
        return set()
    conn.execute(
        "INSERT INTO listings VALUES (?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET source=excluded.source, "
        "relpath=excluded.relpath, day=excluded.day, hash=excluded.hash",
        (listing.path, item.source, item.relpath, _day(listing.path), item.digest),
    )
    before = {p for (p,) in conn.execute("SELECT page FROM listed WHERE listing = ?", (listing.path,))}
    conn.execute("DELETE FROM listed WHERE listing = ?", (listing.path,))
    headings: dict[str, str | None] = {}
    contexts: dict[str, str | None] = {}
    for entry in listing.entries:
        headings[entry.path] = headings.get(entry.path) or entry.heading
        contexts[entry.path] = contexts.get(entry.path) or listed_contexts(entry)
    conn.executemany(
        "INSERT INTO listed (page, listing, heading, contexts) VALUES (?,?,?,?)",
        [(p, listing.path, h, contexts[p]) for p, h in headings.items()],
    )
    return before | set(headings)


def _day_page(path: str, sources: str | None) -> DayPage:
    """A stored page's source URLs, from its document's `sources` (`[[name, url], ...]`)."""
    return DayPage(path, frozenset(url for _, url in json.loads(sources or "[]")))


def _listings(conn: sqlite3.Connection, day: str) -> dict[str, set[str]]:
    """The pages each listing of `day` names."""
    named: dict[str, set[str]] = {}
    for listing, page in conn.execute(
        "SELECT s.path, l.page FROM listings s JOIN listed l ON l.listing = s.path WHERE s.day = ?", (day,)
    ):
        named.setdefault(listing, set()).add(page)
    return named


def listed_contexts(entry: DayEntry) -> str | None:
    """What `listed.contexts` keeps of an entry: [headline, names or parts as written, whether
    they are parts] (JSON), None when it names none."""
    names = entry.parts or entry.contexts
    return json.dumps([entry.headline, list(names), len(entry.parts) > 1]) if names else None


def listing_of(conn: sqlite3.Connection, key: str, current: str) -> Related | None:
    """What a day listing says of an event, with context names: of its current page, else of an
    earlier rendering a listing named (a listing written before the rewording); the first
    listing by path. Its names count for the event as the page's own do (Page.listing)."""
    row = conn.execute(
        "SELECT l.listing, l.contexts FROM listed l JOIN aliases a ON a.path = l.page "
        "WHERE a.chain = ? AND l.contexts IS NOT NULL ORDER BY l.page != ?, l.listing, l.page LIMIT 1",
        (key, current),
    ).fetchone()
    if row is None:
        return None
    headline, names, parts = json.loads(row[1])
    return Related(headline, row[0], tuple(names), bool(parts))


def _weigh_evidence(conn: sqlite3.Connection, day: str) -> set[str]:
    """Which pages of `day` are earlier renderings of a listed one (feeds.chains
    listing_evidence); the pages whose evidence changed."""
    listed = _listings(conn, day)
    pages = [
        _day_page(path, sources)
        for path, sources in conn.execute(
            "SELECT path, json_extract(doc, '$.sources') FROM pages WHERE day = ? AND deleted_at IS NULL ORDER BY path",
            (day,),
        )
    ]
    found = {p: t for p, (t, _) in listing_evidence(pages, listed).items() if t} if listed else {}
    old = dict(
        conn.execute("SELECT page, target FROM evidence WHERE page IN (SELECT path FROM pages WHERE day = ?)", (day,))
    )
    if old == found:
        return set()
    conn.executemany("DELETE FROM evidence WHERE page = ?", [(p,) for p in old if old[p] != found.get(p)])
    conn.executemany(
        "INSERT OR REPLACE INTO evidence VALUES (?,?)", [(p, t) for p, t in found.items() if old.get(p) != t]
    )
    moved = {p for p in old.keys() | found.keys() if old.get(p) != found.get(p)}
    return moved | {old[p] for p in moved if p in old} | {found[p] for p in moved if p in found}


def _find_unlisted(conn: sqlite3.Connection, day: str, result: BatchResult) -> None:
    """Events of a listed day none of whose pages the listing names (directly, or by evidence)."""
    listed = {
        p
        for (p,) in conn.execute(
            "SELECT l.page FROM listings s JOIN listed l ON l.listing = s.path WHERE s.day = ?", (day,)
        )
    }
    found: dict[str, tuple[str, str]] = {}
    if listed:
        named = _listings(conn, day)
        rows = conn.execute(
            "SELECT path, json_extract(doc, '$.sources'), chain, relpath FROM pages WHERE day = ? AND deleted_at IS NULL "
            "ORDER BY path",
            (day,),
        ).fetchall()
        why = listing_evidence([_day_page(p, sources) for p, sources, _, _ in rows], named)
        chains: dict[str, list[tuple[str, str]]] = {}
        for path, _, chain, relpath in rows:
            chains.setdefault(chain, []).append((path, relpath))
        for chain, members in chains.items():
            everything = {p for (p,) in conn.execute("SELECT path FROM aliases WHERE chain = ?", (chain,))}
            if everything & listed or any(why.get(p, (None, ""))[0] for p, _ in members):
                continue
            # Named by the page that says most about why (one with a source), then the newest path.
            path, relpath = max(members, key=lambda m: ("no source" not in why.get(m[0], (None, ""))[1], m))
            found[chain] = (
                relpath,
                f"not named by its day's listing, and {why.get(path, (None, 'it is not listed'))[1]}",
            )
    old = {k for (k,) in conn.execute("SELECT key FROM unlisted WHERE day = ?", (day,))}
    conn.executemany("DELETE FROM unlisted WHERE key = ?", [(k,) for k in old - found.keys()])
    for key, (relpath, reason) in found.items():
        conn.execute(
            "INSERT INTO unlisted VALUES (?,?,?,?) ON CONFLICT(key) DO UPDATE SET relpath=excluded.relpath, "
            "reason=excluded.reason",
            (key, day, relpath, reason),
        )
        if key not in old:
            result.unlisted[relpath] = reason
