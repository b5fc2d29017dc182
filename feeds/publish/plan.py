"""What to render: which documents exist, what each holds and how it links (RFC 5005), and which
of them a change touches.

- `latest`: the newest `items_per_feed` events; `prev-archive` -> the newest date.
- `dates/D`: an archive document (`fh:archive`) of every event of day D, `prev-archive` /
  `next-archive` -> the nearest days with events, `current` -> latest.
- `topics/S`: a paged feed. Events join a topic in arrival order and keep their slot; slots are cut
  into pages of `items_per_feed` from the oldest, so a page's members never change when newer
  events arrive. The head (`topics/S`, what people subscribe to) holds the last complete page plus
  the incomplete one (N to 2N-1 slots); `next` walks to older pages `topics/S/pages/K-1` ... `1`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from feeds import fingerprint
from feeds.config import Settings
from feeds.model import FeedKey, Member
from feeds.render import FeedInfo, TopicFacts
from feeds.store import Store
from feeds.websub_links import hub_url

DATE_FEED_LIMIT = 1000  # a day of the portal has tens of events; this only bounds a pathological day


@dataclass(frozen=True)
class Paging:
    """Where a topic's pages start and end, for N items per page and M slots."""

    slots: int
    size: int

    @property
    def archive_pages(self) -> int:
        """Complete pages before the head (numbered 1 = oldest .. archive_pages)."""
        return max(0, self.slots // self.size - 1)

    def bounds(self, page: int) -> tuple[int, int]:
        if page == 0:
            return self.archive_pages * self.size, self.slots
        return (page - 1) * self.size, page * self.size

    def page_of(self, slot: int) -> int:
        page = slot // self.size + 1
        return page if page <= self.archive_pages else 0

    def links(self, slug: str, page: int) -> dict[str, str]:
        def name(p: int) -> str:
            return FeedKey("topic", slug, p).name

        links = {"first": name(0)}
        if self.archive_pages:
            links["last"] = name(1)
        older = self.archive_pages if page == 0 else page - 1
        if older >= 1:
            links["next"] = name(older)
        if page:
            links["previous"] = name(page + 1 if page < self.archive_pages else 0)
        return links


async def tombstone_horizon(store: Store, settings: Settings) -> dt.datetime:
    """Tombstones dated after this are shown: `tombstone_days` back from the archive's newest
    time, not the clock's (the archive's own deletions, dated in its past, are shown; replicas
    agree whenever they render)."""
    return await store.newest_time() - dt.timedelta(days=settings.tombstone_days)


async def describe(store: Store, settings: Settings, key: FeedKey) -> tuple[FeedInfo, list[Member]] | None:
    """What a feed holds and how it links; None when it has nothing to show, not even a tombstone."""
    since = await tombstone_horizon(store, settings)
    links: dict[str, str] = {}
    archive = False
    subject, facts = settings.title, None
    if key.kind == "latest":
        members = await store.members(key, settings.items_per_feed)
        deleted = await store.tombstones(key, since)
        newest = await store.newest_date()
        if newest:
            links["prev-archive"] = FeedKey("date", newest).name
        title, description = settings.title, f"{settings.title}: the newest events"
    elif key.kind == "date":
        members = await store.members(key, DATE_FEED_LIMIT)
        deleted = await store.tombstones(key, since)
        before, after = await store.neighbour_dates(key.value)
        links = {"current": "latest"}
        if before:
            links["prev-archive"] = FeedKey("date", before).name
        if after:
            links["next-archive"] = FeedKey("date", after).name
        archive = True
        subject = key.value
        title, description = f"{settings.title}: {key.value}", f"Events of {key.value} (UTC)"
    else:
        topic = await store.topic(key.value)
        if topic is None or await store.topic_moved_to(key.value):
            return None  # a topic retired into another has no documents: its URLs redirect
        paging = Paging(topic.slots, settings.items_per_feed)
        if key.page > paging.archive_pages:
            return None
        members, deleted = await store.topic_slot_members(key.value, *paging.bounds(key.page))
        deleted = [t for t in deleted if t.deleted >= since]
        links = paging.links(key.value, key.page)
        page_note = f" (page {key.page} of {paging.archive_pages}, oldest first)" if key.page else ""
        title = f"{settings.title}: {topic.name}{page_note}"
        description = f"Events about {topic.name}{page_note}"
        subject = topic.name
        if not key.page:
            months = await store.topic_months(key.value)
            facts = TopicFacts(tuple(months), tuple(await store.related_topics(key.value)))
    if not members and not deleted and key.kind != "latest":
        return None
    changes = [m.updated for m in members] + [t.deleted for t in deleted]
    info = FeedInfo(
        name=key.name,
        title=title,
        description=description,
        base_url=settings.base_url,
        updated=max(changes) if changes else await store.created(),
        ttl_minutes=fingerprint.ttl_minutes(settings),
        author=settings.author,
        language=settings.feed_language,
        links=links,
        archive=archive,
        deleted=tuple(deleted),
        site=settings.title,
        subject=subject,
        facts=facts,
        hub=hub_url(settings),
    )
    return info, members


async def every_key(store: Store, settings: Settings) -> set[FeedKey]:
    """Every document the store can show: `latest`, each date with events, each topic's head
    and older pages."""
    slots = {t.slug: t.slots for t in await store.topics()}
    keys: set[FeedKey] = set()
    for name in await store.feed_names():
        key = FeedKey.parse(name)
        keys.add(key)
        if key.kind == "topic":
            pages = Paging(slots[key.value], settings.items_per_feed).archive_pages
            keys.update(FeedKey("topic", key.value, p) for p in range(1, pages + 1))
    return keys


BULK = 5000  # more changed events than this: re-render whole topics rather than find their pages


async def affected(
    store: Store, settings: Settings, names: Iterable[str], events: Iterable[str], renamed: Iterable[str] = ()
) -> set[FeedKey]:
    """The documents to re-render after a change: the touched feeds, the neighbours of touched
    days (their archive links may move), the topic pages holding changed events, and every page
    of a topic shown by a new name. Feeds are looked at a few dozen at once (on a cold store each
    look is a few disk reads)."""
    changed = set(events)
    new_names = set(renamed)
    limit = asyncio.Semaphore(32)

    async def of(name: str) -> set[FeedKey]:
        key = FeedKey.parse(name)
        keys = {key}
        if key.kind == "date":
            # Neighbours link to a day only while it has events: they change when it appears or
            # goes, not when one of its events is reworded.
            if bool(await store.members(key, 1)) != bool(await store.rendition_etags(key.name)):
                keys |= {FeedKey("date", d) for d in await store.neighbour_dates(key.value) if d}
        elif key.kind == "topic":
            paging = Paging(await store.topic_slots(key.value), settings.items_per_feed)
            if len(changed) > BULK or key.value in new_names:
                # A bulk load: finding each event's page would cost more than rendering them all.
                return keys | {FeedKey("topic", key.value, p) for p in range(1, paging.archive_pages + 1)}
            for slot in (await store.topic_ranks(key.value, changed)).values():
                if page := paging.page_of(slot):
                    keys.add(FeedKey("topic", key.value, page))
            newest = paging.archive_pages
            if newest and not await store.rendition_etags(FeedKey("topic", key.value, newest).name):
                # A page just filled: it appears, and the page before it now links to it.
                keys |= {FeedKey("topic", key.value, p) for p in (newest, newest - 1) if p >= 1}
        return keys

    async def bounded(name: str) -> set[FeedKey]:
        async with limit:
            return await of(name)

    found: set[FeedKey] = set()
    for keys in await asyncio.gather(*(bounded(name) for name in set(names))):
        found |= keys
    return found


def tiers(keys: Iterable[FeedKey]) -> tuple[list[FeedKey], list[FeedKey], list[FeedKey]]:
    """Documents in the order a whole store is rendered: `latest`; what readers subscribe to
    (topic heads) and dates; then the older pages of topics."""
    latest: list[FeedKey] = []
    heads: list[FeedKey] = []
    pages: list[FeedKey] = []
    for key in keys:
        (latest if key.kind == "latest" else pages if key.page else heads).append(key)
    return latest, heads, pages


async def arrival_order(store: Store, settings: Settings, names: list[str]) -> list[str]:
    """Documents in the order their newest events arrived. An event's entry is made once and
    kept (EntryMemo) while the documents that show it (its day, the pages of its topics) are
    published: in arrival order they come close together, in name order they would be far apart
    and each entry would be made again for most of them."""
    size = settings.items_per_feed
    dates, blocks = await store.newest_arrivals(size)
    newest: dict[str, int] = {f"dates/{d}": seq for d, seq in dates.items()}
    for slug, slots, first, seq in blocks:
        # Every slot of a block is on the same page (the head takes whole blocks).
        name = FeedKey("topic", slug, Paging(slots, size).page_of(first)).name
        newest[name] = max(newest.get(name, 0), seq)
    last = max(newest.values(), default=0) + 1  # `latest`, the topics index: after everything
    return sorted(names, key=lambda n: (newest.get(n, last), n))
