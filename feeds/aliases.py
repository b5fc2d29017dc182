"""Likely renames among topics, for `feeds topics --suggest-aliases`: two names whose events never
overlap in time (one ends before the other starts) yet keep the same company (most of the topics
met most often with one are met most often with the other). The operator confirms them in
`[topic_aliases]`. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

COMPANY = 10  # how many of a topic's most frequent co-occurring topics describe it


@dataclass(frozen=True)
class Profile:
    slug: str
    name: str
    events: int
    first: str  # ISO dates of its first and last live events
    last: str
    company: tuple[str, ...]  # slugs of the topics met most often with it, most often first


@dataclass(frozen=True)
class Suggestion:
    earlier: Profile
    later: Profile
    shared: float  # of the smaller company, the share both have


def suggest(profiles: Iterable[Profile], threshold: float = 0.6, limit: int = 50) -> list[Suggestion]:
    """Pairs of topics one after the other in time sharing at least `threshold` of their
    company, most alike first (then most events). A topic the other meets is not a rename."""
    ordered = sorted((p for p in profiles if p.company), key=lambda p: (p.first, p.slug))
    found: list[Suggestion] = []
    for i, earlier in enumerate(ordered):
        mine = set(earlier.company[:COMPANY])
        for later in ordered[i + 1 :]:
            if later.first <= earlier.last:
                continue  # overlapping in time: two topics that lived together
            theirs = set(later.company[:COMPANY])
            if earlier.slug in theirs or later.slug in mine:
                continue
            shared = len(mine & theirs) / min(len(mine), len(theirs))
            if shared >= threshold:
                found.append(Suggestion(earlier, later, shared))
    found.sort(key=lambda s: (-s.shared, -(s.earlier.events + s.later.events), s.earlier.slug, s.later.slug))
    return found[:limit]


def as_toml(suggestions: Sequence[Suggestion]) -> str:
    """The suggestions as `[topic_aliases]` lines to confirm: the later name shown, the earlier an
    alias (a conflict is usually renamed to what it became)."""
    lines = ["[topic_aliases]"]
    named: set[str] = set()
    for s in suggestions:
        if s.earlier.slug in named or s.later.slug in named:
            continue  # a name in one group only: the likeliest pair comes first
        named |= {s.earlier.slug, s.later.slug}
        lines.append(
            f"# {s.shared:.0%} shared company; {s.earlier.first}..{s.earlier.last} ({s.earlier.events} events)"
            f" then {s.later.first}..{s.later.last} ({s.later.events} events)"
        )
        lines.append(f"{_quoted(s.later.name)} = [{_quoted(s.earlier.name)}]")
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    """A TOML basic string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c >= " " and c != "\x7f" else f"\\u{ord(c):04x}" for c in escaped) + '"'
