"""Folding page versions into events, the same whatever order they arrive in.

The archive rewords an event by writing a new page with a new slug; the new page's `### Changes:`
lists its predecessors, marking one `(First version)`. Lists can be incomplete or out of order and
the same predecessor can carry different timestamps, so the rules below only use facts that every
later rendering keeps: who claims to be first, and who lists whom.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from feeds.ids import page_path
from feeds.model import Page, day_start


@dataclass(frozen=True)
class Version:
    """What chain resolution needs to know of one seen page."""

    path: str
    first: str  # the path this page says is the chain's first version (itself if it says nothing)
    first_ts: dt.datetime | None
    listed: tuple[str, ...]  # other versions its Changes list names

    @classmethod
    def of(cls, page: Page) -> Version:
        first, first_ts = page.path, None
        listed = []
        for change in page.changes:
            target = page_path(change.url)
            if target is None or target == page.path:
                continue
            listed.append(target)
            if change.kind == "first":
                first, first_ts = target, change.timestamp
        return cls(page.path, first, first_ts, tuple(dict.fromkeys(listed)))


def linked_paths(version: Version) -> set[str]:
    return {version.path, version.first, *version.listed}


def chain_root(versions: Iterable[Version], times: Mapping[str, dt.datetime] | None = None) -> str:
    """The path of the chain's first version: the event's key.

    A claimed first version that is itself a later version of something (its own page names a
    different first, or it lists predecessors without claiming to be first) is not the root; among
    the rest the earliest claim wins (a claim without a timestamp: the page's own time, `times`,
    as `event_updated` gives it), then the path.
    """
    seen = {v.path: v for v in versions}
    times = times or {}
    claims: dict[str, dt.datetime | None] = {}
    for v in seen.values():
        ts = claims.get(v.first)
        if v.first not in claims or (v.first_ts is not None and (ts is None or v.first_ts < ts)):
            claims[v.first] = v.first_ts
    roots = [p for p in claims if p not in seen or (seen[p].first == p and not seen[p].listed)]
    never = dt.datetime.max.replace(tzinfo=dt.UTC)
    return min(roots or claims, key=lambda p: (claims[p] or times.get(p) or never, p))


def current_version(versions: Iterable[Version]) -> str:
    """The seen version no other seen version lists as a predecessor; if several, the one that
    knows the longest history."""
    seen = {v.path: v for v in versions}
    listed = {p for v in seen.values() for p in v.listed}
    heads = [v for v in seen.values() if v.path not in listed] or list(seen.values())
    return max(heads, key=lambda v: (len(v.listed), v.path)).path


# ----- the day listing's evidence, for pages whose Changes chain was not written ---------------


@dataclass(frozen=True)
class DayPage:
    """What folding by the day listing compares of one page: the URLs of its sources (not its
    cover image, which a merge may take from another item)."""

    path: str
    sources: frozenset[str]


def replaced_by(pages: Iterable[DayPage], listings: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """Pages one listing of a day names that another listing names a later rendering of: the
    archive rewrites `index.md` and `README.md` apart, so one can name an older rendering than the
    other. A page is replaced by a page another listing names instead (no listing names both)
    whose sources are a strict superset of its own, when exactly one page is."""
    named = {name: set(paths) for name, paths in listings.items()}
    sources = {p.path: p.sources for p in pages}
    out: dict[str, str] = {}
    for path in sorted(set().union(*named.values()) & sources.keys()):
        later = {
            other
            for paths in named.values()
            if path not in paths
            for other in paths
            if other in sources
            and sources[path] < sources[other]
            and not any(path in both and other in both for both in named.values())
        }
        if sources[path] and len(later) == 1:
            out[path] = later.pop()
    return out


def listing_evidence(
    pages: Iterable[DayPage], listings: Mapping[str, Iterable[str]]
) -> dict[str, tuple[str | None, str]]:
    """For each page of one day that the day's listings do not name as current: the listed page
    it is an earlier rendering of, or None, and why.

    A listing names the current pages of its day (less those another listing replaces, see
    `replaced_by`). Reworded pages keep their sources and later ones may add some: so a page all
    of whose sources are among exactly one current page's is an earlier rendering of it. Pages
    current by one listing are never folded into each other.
    """
    pages = list(pages)
    named = set().union(*(set(paths) for paths in listings.values()))
    named -= replaced_by(pages, listings).keys()
    current = [p for p in pages if p.path in named]
    out: dict[str, tuple[str | None, str]] = {}
    for page in pages:
        if page.path in named:
            continue
        if not page.sources:
            out[page.path] = (None, "it has no source to match a listed page by")
            continue
        holders = [c.path for c in current if page.sources <= c.sources]
        cited = ", ".join(sorted(page.sources))
        if len(holders) == 1:
            out[page.path] = (holders[0], "")
        elif holders:
            out[page.path] = (None, f"its sources ({cited}) are all cited by {len(holders)} listed pages")
        else:
            out[page.path] = (None, f"no listed page cites all its sources ({cited})")
    return out


def with_predecessors(version: Version, earlier: Iterable[str]) -> Version:
    """`version` as if its Changes list also named `earlier` (pages the listing's evidence folds
    into it): it is then their successor, and not a first version itself."""
    extra = tuple(p for p in sorted(earlier) if p not in version.listed and p != version.path)
    return replace(version, listed=version.listed + extra) if extra else version


def event_updated(page: Page) -> dt.datetime:
    """When an event last changed, as its page says: the newest timestamp of its Changes list, else
    its day at 00:00 UTC (never before that day). Only the page: every copy of it, from any kind of
    source, at any time, says the same."""
    stamps = [c.timestamp for c in page.changes if c.timestamp is not None]
    return max([day_start(page.date), *stamps])
