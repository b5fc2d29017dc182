"""Entries: each event's entry in every format, made once per version of the event and found
again wherever it is shown.

A document is its head joined to its members' entries (`feeds.publish`). What an entry's bytes
depend on is digested into its stamp: the event's revision (which moves with its content, its
deletion and its topics' names), where its related links lead, and the settings and code that
shape every entry. A document's entries are looked for, in order: in this process's memo, in the
document's own previous version (its `spans` say where each entry lies, so a re-render of a big
topic page reads one row, not one per member), in the store's `entries` table, and only then
made, from the event read whole.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from cachetools import LRUCache

from feeds.config import Settings, SourceConfig
from feeds.ids import page_path
from feeds.model import FORMATS, Event, Member
from feeds.render import RENDER_VERSION, Entry, Format, formats
from feeds.render.content import event_url, make_entry, resolver
from feeds.store import Store

Fragments = dict[str, bytes]  # format -> the entry's bytes in that format
NewEntry = tuple[str, str, Fragments]  # (event key, stamp, fragments), to store


class EntryMemo:
    """Entries by stamp, bounded by bytes, least recently used first out; shared by the threads
    that publish documents. Behind it, the store keeps every event's latest entry, so one evicted
    here, or never made by this process, is read back rather than made again."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self.hits = self.misses = self.made = 0
        self._items: LRUCache[str, Fragments] = LRUCache(max_bytes, getsizeof=_size_of)
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return int(self._items.currsize)

    def __contains__(self, stamp: str) -> bool:
        return stamp in self._items

    def get(self, stamp: str) -> Fragments | None:
        with self._lock:
            fragments = self._items.get(stamp)
            if fragments is None:
                self.misses += 1
                return None
            self.hits += 1
            return fragments

    def put(self, stamp: str, fragments: Fragments) -> None:
        with self._lock:
            if stamp not in self._items and _size_of(fragments) <= self.max_bytes:
                self._items[stamp] = fragments


def _size_of(fragments: Fragments) -> int:
    return sum(map(len, fragments.values()))


def link_for(sources: Sequence[SourceConfig], source: str, relpath: str) -> str | None:
    """The web link of a page of `source`, from its configured link template (if any)."""
    for cfg in sources:
        if cfg.name == source and cfg.link:
            return cfg.link.format(path=relpath.rsplit(".", 1)[0])
    return None


def context_digest(settings: Settings) -> str:
    """What shapes every entry besides its event: the base URL (topic links), the sources' link
    templates (web links), the languages (an entry says its source's
    where it is not the feeds'), and the renderers' own code (RENDER_VERSION: an entry stored by
    other code is made again)."""
    return _context_digest(settings.base_url, settings.sources, settings.language, RENDER_VERSION)


@functools.lru_cache(maxsize=16)
def _context_digest(base_url: str, sources: tuple[SourceConfig, ...], language: str, render_version: str) -> str:
    places = sorted((c.name, c.kind, c.location, c.link, c.language) for c in sources)
    return hashlib.sha256(repr((base_url, places, language, render_version)).encode("utf-8")).hexdigest()


def entry_stamp(member: Member, targets: tuple[str | None, ...], context: str) -> str:
    """The event's revision (an event's web link comes from where its current version lives,
    which moves only with a new revision), where its related links lead now (a related event
    that appears or moves makes a new entry), and the context, digested."""
    return hashlib.sha256(repr((member.key, member.rev, targets, context)).encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Pending:
    """A document's member and the stamp its entry must have."""

    member: Member
    stamp: str


async def plan_entries(store: Store, settings: Settings, members: list[Member]) -> list[Pending]:
    """The stamp of each member's entry."""
    context = context_digest(settings)
    targets: dict[str, tuple[str | None, ...]] = {}
    # Events get their own URL only through a source's `link` template: without one, no lookup
    # can change an entry (and no member's page needs reading).
    if linked(settings.sources):
        fields = await store.link_fields([m.key for m in members])
        paths = {key: linked_pages(summary, related) for key, (summary, related) in fields.items()}
        urls = await related_targets(store, settings.sources, {p for ps in paths.values() for p in ps})
        targets = {key: tuple(urls.get(p) for p in ps) for key, ps in paths.items()}
    return [Pending(m, entry_stamp(m, targets.get(m.key, ()), context)) for m in members]


def linked(sources: Sequence[SourceConfig]) -> bool:
    return any(c.link for c in sources)


# An event page's path in a summary: markdown links ([text](/news/...), reference definitions,
# autolinks) and bare mentions alike; a few candidates too many only cost a lookup.
_NEWS_PATH = re.compile(r"(?<![\w.])/?news/\d{4}/\d{1,2}/\d{1,2}/[^\s()\[\]<>\"']+")


def linked_pages(summary: str, related: Sequence[str]) -> list[str]:
    """The page paths an event's entry may link to (where its related events and the events its
    summary links to are now), in order, each once."""
    found = [page_path(u) for u in related] + [page_path(m) for m in _NEWS_PATH.findall(summary)]
    return list(dict.fromkeys(p for p in found if p))


def pages_linked_by(event: Event) -> list[str]:
    return linked_pages(event.page.summary, [r.url for r in event.page.related])


async def related_targets(store: Store, sources: Sequence[SourceConfig], paths: set[str]) -> dict[str, str]:
    """Page path (any version) -> the web link of its event's current version, for the sources
    that have a link template."""
    found = await store.resolve_links(paths) if paths else {}
    return {path: url for path, (relpath, source) in found.items() if (url := link_for(sources, source, relpath))}


# Where each entry lies in a stored document: per entry its stamp and its byte range.
_SPAN = struct.Struct("<16sII")


def spans_of(body: bytes, stamps: Sequence[str], entries: Sequence[bytes]) -> bytes:
    """The spans of `entries` (in document order) in `body`, whatever separates them."""
    out, at = bytearray(), 0
    for stamp, entry in zip(stamps, entries, strict=True):
        at = _find(body, entry, at)
        out += _SPAN.pack(bytes.fromhex(stamp), at, at + len(entry))
        at += len(entry)
    return bytes(out)


def _find(body: bytes, entry: bytes, at: int) -> int:
    """body.index(entry, at), found by its first bytes and then compared: searching for a whole
    entry (a few KB) first reads all of it into a skip table, for every entry of every document."""
    probe = entry[:64]
    while True:
        at = body.index(probe, at)
        if body.startswith(entry, at):
            return at
        at += 1


def spliced(bodies: dict[str, tuple[bytes, bytes]]) -> dict[str, Fragments]:
    """Stamp -> entry of every entry that a document's stored version holds in every format
    (`bodies`: format -> (plain bytes, spans))."""
    found: dict[str, Fragments] = {}
    for fmt in FORMATS:
        if fmt not in bodies:
            return {}
        body, spans = bodies[fmt]
        for stamp, start, end in _SPAN.iter_unpack(spans):
            found.setdefault(stamp.hex(), {})[fmt] = body[start:end]
    return {stamp: fragments for stamp, fragments in found.items() if len(fragments) == len(FORMATS)}


@dataclass
class Gathered:
    """A document's entries as far as they are already made (None where not), and what making
    the others needs: their events, read whole (only theirs: decoding a page is most of what
    reading an event costs), and where their related links lead."""

    found: list[Fragments | None]
    events: dict[str, Event]
    urls: dict[str, str]


async def gather_entries(
    store: Store, settings: Settings, document: str | None, pending: list[Pending], memo: EntryMemo
) -> Gathered:
    found = [memo.get(p.stamp) for p in pending]

    def missing() -> list[Pending]:
        return [p for p, f in zip(pending, found, strict=True) if f is None]

    def look(source: dict[str, Fragments]) -> None:
        for i, p in enumerate(pending):
            if found[i] is None and (fragments := source.get(p.stamp)) is not None:
                found[i] = fragments
                memo.put(p.stamp, fragments)

    if missing() and document:
        look(spliced(await store.spanned_bodies(document)))
    if wanted := missing():
        stored = await store.entries([p.member.key for p in wanted])
        look({stamp: fragments for stamp, fragments in stored.values()})
    events, urls = await whole_events(store, settings, [p.member.key for p in missing()])
    return Gathered(found, events, urls)


async def whole_events(store: Store, settings: Settings, keys: list[str]) -> tuple[dict[str, Event], dict[str, str]]:
    """Events read whole, to make their entries, and where the pages they link to are now."""
    events = await store.events_of(keys) if keys else {}
    urls: dict[str, str] = {}
    if events and linked(settings.sources):
        paths = {p for e in events.values() for p in pages_linked_by(e)}
        urls = await related_targets(store, settings.sources, paths)
    return events, urls


def entry_for(settings: Settings, event: Event, urls: dict[str, str]) -> Entry:
    """What the renderers write of an event: its link (its page on this server), its content with links to other
    events resolved (`urls`: page path -> web link, for the pages it links to)."""
    language = settings.source_language(event.source)
    own = language if language != settings.feed_language else None
    return make_entry(event, event_url(settings.base_url, event.page.path), resolver(urls), own)


def stamp_of(settings: Settings, event: Event, urls: dict[str, str]) -> str:
    """The stamp of the entry made of `event` as read (its revision and link targets may be newer
    than those a document's members were listed with, when another process wrote between)."""
    targets: tuple[str | None, ...] = ()
    if linked(settings.sources):
        targets = tuple(urls.get(p) for p in pages_linked_by(event))
    return entry_stamp(Member(event.key, event.rev, event.updated), targets, context_digest(settings))


def make_entries(
    settings: Settings, pending: list[Pending], gathered: Gathered, table: dict[str, Format], memo: EntryMemo
) -> tuple[list[Fragments], list[str], list[NewEntry]]:
    """The entries `gather_entries` did not find, made now (off the event loop). Returns every
    member's entry and stamp in order, and the entries newly made. A member gone from the store
    since it was listed (another process deleted it) is left out."""
    out, stamps, made = [], [], []
    for p, fragments in zip(pending, gathered.found, strict=True):
        stamp = p.stamp
        if fragments is None:
            event = gathered.events.get(p.member.key)
            if event is None:
                continue
            entry = entry_for(settings, event, gathered.urls)
            fragments = {fmt: f.entry(entry, settings.base_url) for fmt, f in table.items()}
            stamp = stamp_of(settings, event, gathered.urls)  # kept under what it was made of
            made.append((event.key, stamp, fragments))
            memo.made += 1
            memo.put(stamp, fragments)
        out.append(fragments)
        stamps.append(stamp)
    return out, stamps, made


async def make_ahead(
    store: Store, settings: Settings, keys: Sequence[str], table: dict[str, Format], memo: EntryMemo
) -> list[NewEntry]:
    """The entries of events about to be shown by several documents (a refresh's changed events
    are in its latest feed, their day and each of their topics), made once before the documents
    look for them, not by each."""
    pending = await plan_entries(store, settings, await store.members_of(keys))
    gathered = await gather_entries(store, settings, None, pending, memo)
    _, _, made = await asyncio.to_thread(make_entries, settings, pending, gathered, table, memo)
    return made


async def current_entry(store: Store, settings: Settings, key: str, memo: EntryMemo) -> tuple[str, Fragments] | None:
    """(stamp, fragments) of an event's entry as it is now: found, else made and stored (an event
    shown only by documents made on request may have none yet, or an older one)."""
    pending = await plan_entries(store, settings, await store.members_of([key]))
    if not pending:
        return None
    gathered = await gather_entries(store, settings, None, pending, memo)
    entries, stamps, made = await asyncio.to_thread(make_entries, settings, pending, gathered, formats(), memo)
    if made:
        await store.put_renditions([], made)
    return (stamps[0], entries[0]) if entries else None
