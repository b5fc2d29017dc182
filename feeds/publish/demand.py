"""Documents made on their first request: a document outside the hot set (feeds.publish.hot) is
rendered when first asked for after it changed, in every format, stored, and served as stored
bytes after. Concurrent requests for one document wait for one render."""

from __future__ import annotations

import asyncio

from feeds.config import Settings
from feeds.entries import EntryMemo
from feeds.metrics import MADE_ON_REQUEST
from feeds.model import FeedKey, Rendition
from feeds.publish.document import publish
from feeds.publish.plan import Paging
from feeds.render import formats
from feeds.store import Store

MEMO_BYTES = 16 << 20  # entries kept between documents made on request (neighbours share events)


async def may_show(store: Store, settings: Settings, key: FeedKey) -> bool:
    """Whether document `key` may have something to show (events, or tombstones of events it
    showed): a topic the store knows and a page of it within range, any day, `latest` once there
    are events. Cheap reads, so that a request for a made-up name costs no render; `describe`
    decides the rest."""
    if key.kind == "latest":
        return await store.newest_date() is not None  # an empty store has no feed yet
    if key.kind == "date":
        return True
    topic = await store.topic(key.value)
    return topic is not None and key.page <= Paging(topic.slots, settings.items_per_feed).archive_pages


async def known(store: Store, settings: Settings, name: str) -> bool:
    """Whether the store holds events document `name` shows now (a feed one may subscribe to),
    found without rendering it."""
    try:
        key = FeedKey.parse(name)
    except ValueError:
        return False
    if key.kind == "date":
        return bool(await store.members(key, 1))
    if key.kind == "topic":  # one read of the topic: it has events, and the page is in range
        topic = await store.topic(key.value)
        if topic is None or not topic.events:
            return False
        return key.page <= Paging(topic.slots, settings.items_per_feed).archive_pages
    return await may_show(store, settings, key)


class OnRequest:
    """Makes the documents a server is asked for and does not hold: one render per document
    however many requests wait for it."""

    def __init__(self, store: Store, settings: Settings, memo: EntryMemo | None = None) -> None:
        self.store = store
        self.settings = settings
        self.memo = memo or EntryMemo(MEMO_BYTES)
        self.made = 0
        self._making: dict[str, asyncio.Future[dict[str, Rendition]]] = {}

    async def __call__(self, name: str, fmt: str) -> Rendition | None:
        """The current rendition of document `name` in `fmt`, made now if the store can show it;
        None if it cannot (not a feed, or nothing to show)."""
        try:
            key = FeedKey.parse(name)
        except ValueError:
            return None
        making = self._making.get(name)
        if making is None:
            making = self._making[name] = asyncio.ensure_future(self._make(key))
            making.add_done_callback(lambda done: self._done(name, done))
        return (await asyncio.shield(making)).get(fmt)

    def _done(self, name: str, done: asyncio.Future[dict[str, Rendition]]) -> None:
        if self._making.get(name) is done:
            del self._making[name]

    async def _make(self, key: FeedKey) -> dict[str, Rendition]:
        if not await may_show(self.store, self.settings, key):
            return {}
        # Read first: a change stored while this renders leaves what it stores stale.
        with MADE_ON_REQUEST.time():
            based_on = await self.store.content_version()
            await publish(self.store, self.settings, key, formats(), self.memo, based_on=based_on)
        self.made += 1
        return await self.store.renditions_of(key.name)
