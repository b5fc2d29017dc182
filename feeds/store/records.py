"""What goes into the store and what a batch reports: incoming pages and listings, batch results, topic rows."""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass, field

from feeds.chains import (
    Version,
)
from feeds.codec import page_to_json
from feeds.ids import content_hash, event_guid
from feeds.model import (
    DayListing,
    Page,
)


def iso(value: dt.datetime) -> str:
    return value.isoformat()


def from_iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _version_json(v: Version) -> str:
    return json.dumps([v.path, v.first, iso(v.first_ts) if v.first_ts else None, list(v.listed)])


@dataclass(frozen=True)
class Incoming:
    """A parsed page and where it came from, and the JSON it is stored as (a bulk load makes it
    where the page is parsed, in other processes, while one process does all the storing)."""

    page: Page
    relpath: str
    source: str

    @functools.cached_property
    def doc(self) -> str:
        return page_to_json(self.page)

    @functools.cached_property
    def digest(self) -> str:
        return content_hash(self.doc.encode("utf-8"))

    @functools.cached_property
    def version(self) -> Version:
        return Version.of(self.page)

    @functools.cached_property
    def version_json(self) -> str:
        return _version_json(self.version)

    @functools.cached_property
    def guid(self) -> str:
        """The guid of the event this page starts (most pages start their own)."""
        return event_guid(self.page.path)

    def prepare(self) -> None:
        """Make now what storing the page needs, in the process that parsed it (a bulk load
        parses in other processes while one process does all the storing)."""
        _ = self.digest, self.version_json, self.guid


@dataclass(frozen=True)
class IncomingListing:
    """A day listing (`index.md` / `README.md`) and where it came from."""

    listing: DayListing
    relpath: str
    source: str

    @property
    def digest(self) -> str:
        entries = [[e.path, e.heading, list(e.parts or e.contexts)] for e in self.listing.entries]
        return content_hash(json.dumps([self.relpath, self.source, entries]).encode("utf-8"))


@dataclass
class BatchResult:
    """What one batch changed: counts, and the feeds to re-render."""

    added: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    feeds: set[str] = field(default_factory=set)
    renamed: set[str] = field(default_factory=set)  # slugs of topics shown by another name now
    reslotted: set[str] = field(default_factory=set)  # slugs of topics an event joined in the middle of
    unlisted: dict[str, str] = field(default_factory=dict)  # relpath -> why no day listing explains it
    topic_ids: set[int] = field(default_factory=set)  # internal: topics to recount at batch end
    rescan: set[int] = field(default_factory=set)  # internal: topics whose `updated` may have gone back
    newest: dict[int, str] = field(default_factory=dict)  # internal: topic id -> newest `updated` joining it
    mark: int = 0  # read from the pending table: the newest batch it holds

    def merge(self, other: BatchResult) -> None:
        self.added |= other.added
        self.changed |= other.changed - self.added
        self.deleted |= other.deleted
        self.feeds |= other.feeds
        self.renamed |= other.renamed
        self.reslotted |= other.reslotted
        self.unlisted.update(other.unlisted)

    @property
    def events(self) -> set[str]:
        return self.added | self.changed | self.deleted

    def summary(self) -> str:
        return (
            f"{len(self.added)} new, {len(self.changed)} changed, {len(self.deleted)} deleted events; "
            f"{len(self.feeds)} feeds to render"
        )


@dataclass(frozen=True)
class TopicRow:
    slug: str
    name: str
    events: int
    updated: dt.datetime | None
    slots: int = 0  # events that ever joined: the length of its stable page sequence
