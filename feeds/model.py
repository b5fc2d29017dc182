"""Frozen records shared by every stage. Imports nothing from the package but the leaf feeds.places."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from feeds.places import place_pair

UTC = dt.UTC
# The time of a document that holds nothing with a time (an empty feed): the same on every replica,
# and the earliest the W3C feed validator finds plausible (it flags dates before 1990).
EPOCH = dt.datetime(1990, 1, 1, tzinfo=UTC)

ChangeKind = Literal["first", "update", "current"]
FEED_FORMATS: tuple[str, ...] = ("rss", "atom", "json")
# Every document is rendered in each: its feeds, and its HTML page (`/`, a day's, a topic's).
FORMATS: tuple[str, ...] = (*FEED_FORMATS, "html")


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC).replace(microsecond=0)


def as_utc(value: dt.datetime) -> dt.datetime:
    """Naive datetimes are taken as UTC; aware ones are converted."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True)
class SourceLink:
    """One numbered source of a page: an outlet's name and the article URL."""

    name: str
    url: str


@dataclass(frozen=True)
class Related:
    """A related event as the page lists it: its headline, its page path and its contexts.

    `ambiguous`: `contexts` are the parts of a comma-separated list (markdown's `_Context: A, B_`),
    where a name may itself hold a comma ("Austin, Texas"); `resolve_contexts` joins them. JSON
    and XML give each name whole."""

    headline: str
    url: str
    contexts: tuple[str, ...] = ()
    ambiguous: bool = False


# A part that is only a year (or a season, `2017–18`) completes the name before it: Wikipedia's
# older titles read "Icelandic presidential election, 2016".
_YEAR = re.compile(r"^[12][0-9]{3}(?:[–-][0-9]{2}(?:[0-9]{2})?)?$")
LONGEST_RUN = 6  # parts in the longest name looked for (the archive's have at most 3)

Run = tuple[str, ...]


def resolve_contexts(parts: Sequence[str], known: Callable[[Run], bool]) -> tuple[str, ...]:
    """The names of one comma-separated context list: from each part on, the longest run of parts
    that `known` says is a name stays whole (joined by ", "); else a place and the first-level
    region after it are one name ("Austin, Texas": feeds.places); a part that is only a year
    joins the name before it; any other part is a name of its own. Pure: the same parts and the
    same known names give the same names whatever order they were learnt in."""
    out: list[str] = []
    i = 0
    while i < len(parts):
        for j in range(min(len(parts), i + LONGEST_RUN), i + 1, -1):
            if known(tuple(parts[i:j])):
                out.append(", ".join(parts[i:j]))
                i = j
                break
        else:
            if i + 1 < len(parts) and place_pair(parts[i], parts[i + 1]):
                out.append(f"{parts[i]}, {parts[i + 1]}")
                i += 1  # and one more below
            elif out and _YEAR.match(parts[i]):
                out[-1] += ", " + parts[i]
            else:
                out.append(parts[i])
            i += 1
    return tuple(out)


def comma_parts(name: str) -> Run:
    """The parts of a name that holds commas (`Austin, Texas` -> (`Austin`, `Texas`))."""
    return tuple(p for p in (part.strip() for part in name.split(",")) if p)


@dataclass(frozen=True)
class Change:
    """One line of a page's `### Changes:` list."""

    headline: str
    url: str
    kind: ChangeKind
    timestamp: dt.datetime | None = None


@dataclass(frozen=True)
class Page:
    """One version of one event page, as read from markdown, JSON or XML.

    `path` is the canonical page path (`/news/YYYY/MM/DD/slug`, day zero-padded) that every
    link to the page normalises to; a reworded event is a new Page with a new path.
    """

    path: str
    date: dt.date
    headline: str
    heading: str | None = None
    summary: str = ""
    sources: tuple[SourceLink, ...] = ()
    image: str | None = None
    related: tuple[Related, ...] = ()
    changes: tuple[Change, ...] = ()
    # What the day listing says of this page (its `_Context:` names; headline and url its entry's),
    # set by the store: the listing's names count for the page as its own do.
    listing: Related | None = None

    @property
    def context_lists(self) -> tuple[Related, ...]:
        """Every context list the event has: its related events', then its day listing's."""
        return (*self.related, self.listing) if self.listing else self.related

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics as the page alone tells them (its heading and the whole names it gives
        are the names it knows); the store knows every page's (feeds.store.topic_writes)."""
        own = {tuple(p.casefold() for p in comma_parts(n)) for n in self.named if "," in n}
        return self.topic_names(lambda run: tuple(p.casefold() for p in run) in own)

    @property
    def named(self) -> tuple[str, ...]:
        """Names the page gives whole: its heading and its unambiguous contexts."""
        names = [self.heading] if self.heading else []
        return tuple(names + [c for r in self.context_lists if not r.ambiguous for c in r.contexts])

    def topic_names(self, known: Callable[[Run], bool]) -> tuple[str, ...]:
        """The heading, then every context name of the related list, then the day listing's (`known`
        joins the parts of ambiguous lists, see resolve_contexts); first spelling wins."""
        seen: dict[str, str] = {}
        names = [self.heading] if self.heading else []
        for r in self.context_lists:
            names += resolve_contexts(r.contexts, known) if r.ambiguous else r.contexts
        for name in names:
            seen.setdefault(name.casefold(), name)
        return tuple(seen.values())


@dataclass(frozen=True)
class DayEntry:
    headline: str
    path: str
    heading: str | None = None
    summary: str = ""
    contexts: tuple[str, ...] = ()  # the names, as the listing alone tells them
    # A markdown `_Context:` list's parts as written: which form one name is the store's to
    # decide (resolve_contexts), as for a page's related events. Empty where names come whole;
    # not compared: a listing means its names, in whichever shape it was written.
    parts: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class DayListing:
    """A day page (`index.md` / `README.md`): what the archive says happened that day."""

    path: str
    date: dt.date
    entries: tuple[DayEntry, ...] = ()
    previous: str | None = None


@dataclass(frozen=True)
class Topic:
    slug: str
    name: str


@dataclass(frozen=True)
class Event:
    """An event as the feeds show it: the current version of a chain of page versions.

    `key` is the path of the chain's first version and never changes; `guid` derives from it.
    """

    key: str
    guid: str
    page: Page
    topics: tuple[Topic, ...]
    published: dt.datetime
    updated: dt.datetime
    relpath: str = ""  # where its current version lives in its source (`news/2018/01/1/x.md`)
    source: str = ""
    deleted: dt.datetime | None = None
    seq: int = 0  # arrival order
    digest: str = ""  # of the current version's content and where it lives (store's `hash`)
    rev: int = 0  # the store's revision of it (Member.rev)


@dataclass(frozen=True)
class Member:
    """What a document needs of an event whose entry may already be made: which entry (`key`
    and `rev`, which moves whenever anything the entry shows changes) and when the event last
    changed. The whole Event (its page decoded) is read only to make an entry (and, where a
    source has a link template, its page's links, to see where they lead now)."""

    key: str
    rev: int
    updated: dt.datetime


@dataclass(frozen=True)
class Tombstone:
    """A deleted event, as feeds report it (RFC 6721) for a while."""

    guid: str
    deleted: dt.datetime


@dataclass(frozen=True)
class FeedKey:
    """Which feed: `latest`, `dates/YYYY-MM-DD`, `topics/<slug>`, or an older page of a topic
    (`topics/<slug>/pages/<n>`, n from 1 = the oldest)."""

    kind: Literal["latest", "date", "topic"]
    value: str = ""
    page: int = 0  # topics only: 0 is the head (the subscription document)

    @property
    def name(self) -> str:
        if self.kind == "latest":
            return "latest"
        if self.kind == "date":
            return f"dates/{self.value}"
        return f"topics/{self.value}/pages/{self.page}" if self.page else f"topics/{self.value}"

    @classmethod
    def parse(cls, name: str) -> FeedKey:
        if name == "latest":
            return cls("latest")
        prefix, _, value = name.partition("/")
        if prefix == "dates" and value and "/" not in value:
            return cls("date", value)
        if prefix == "topics" and value:
            slug, _, page = value.partition("/pages/")
            if "/" not in slug and (not page or (page.isdigit() and int(page) > 0 and page[0] != "0")):
                return cls("topic", slug, int(page) if page else 0)
        raise ValueError(f"not a feed name: {name!r}")


@dataclass(frozen=True)
class Rendition:
    """Stored bytes of one feed in one format, with every encoding made once at render time."""

    feed: str
    fmt: str
    body: bytes
    gzip: bytes
    br: bytes
    etag: str
    last_modified: dt.datetime
    content_type: str
    # Where each entry lies in `body` (feeds.entries.spans_of): what the next version reuses.
    spans: bytes = b""
