"""Folding page versions into events, the same whatever order they arrive in.

The archive rewords an event by writing a new page with a new slug; the new page's `### Changes:`
lists its predecessors, marking one `(First version)`. Lists can be incomplete or out of order and
the same predecessor can carry different timestamps, so the rules below only use facts that every
later rendering keeps: who claims to be first, and who lists whom.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from feeds.ids import page_path
from feeds.model import Page


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


def chain_root(versions: Iterable[Version]) -> str:
    """The path of the chain's first version: the event's key.

    A claimed first version that is itself a later version of something (its own page names a
    different first) is not the root; among the rest the earliest claim wins, then the path.
    """
    seen = {v.path: v for v in versions}
    claims: dict[str, dt.datetime | None] = {}
    for v in seen.values():
        ts = claims.get(v.first)
        if v.first not in claims or (v.first_ts is not None and (ts is None or v.first_ts < ts)):
            claims[v.first] = v.first_ts
    roots = [p for p in claims if p not in seen or seen[p].first == p]
    never = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    return min(roots or claims, key=lambda p: (claims[p] or never, p))


def current_version(versions: Iterable[Version]) -> str:
    """The seen version no other seen version lists as a predecessor; if several, the one that
    knows the longest history."""
    seen = {v.path: v for v in versions}
    listed = {p for v in seen.values() for p in v.listed}
    heads = [v for v in seen.values() if v.path not in listed] or list(seen.values())
    return max(heads, key=lambda v: (len(v.listed), v.path)).path
