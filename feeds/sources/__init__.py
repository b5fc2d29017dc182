"""Where documents come from: a directory tree, an HTTP site, a git repository.

Each source's `collect()` returns what changed since its last run: documents to parse, page paths
that are gone, and problems met on the way (reported, never fatal to the other documents).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from feeds.config import SourceConfig
from feeds.store import Store


@dataclass(frozen=True)
class Document:
    relpath: str  # `news/YYYY/MM/D/slug.md`, as the source lays it out
    data: bytes
    origin: str  # a file path or URL, for messages
    # What the source records of when the document changed (an HTTP Last-Modified), for the source's
    # own use; never a time in a document: an event's times come from its page (chains.event_updated).
    modified: dt.datetime | None = None
    # Why the document could not be read (a file gone since it was listed, a link out of the
    # tree): it is then reported with its origin and counted as failed, like one that does not parse.
    problem: str | None = None


@dataclass
class Collected:
    # A list, or a generator that reads each document when it is reached (a large tree is never
    # held in memory at once).
    documents: Iterable[Document] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # canonical page paths gone from the source
    # When the source says a gone page went (git: the commit that removed it). A page it gives no
    # time is dated by the archive itself (the store's newest time), never by the clock.
    deleted_at: dict[str, dt.datetime] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    cursor: str | None = None  # saved once the batch is stored (e.g. a git commit)
    expected: int | None = None  # how many documents, when known (for progress bars)
    # HTTP validators (url, ETag, Last-Modified) to remember once the documents are stored.
    validators: list[tuple[str, str | None, str | None]] = field(default_factory=list)


class Source(Protocol):
    name: str

    async def collect(self, store: Store) -> Collected: ...

    async def aclose(self) -> None: ...


def open_source(config: SourceConfig) -> Source:
    if config.kind == "directory":
        from feeds.sources.directory import DirectorySource

        return DirectorySource(config)
    if config.kind == "http":
        from feeds.sources.http import HttpSource

        return HttpSource(config)
    from feeds.sources.git import GitSource

    return GitSource(config)
