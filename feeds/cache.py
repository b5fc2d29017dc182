"""A bounded in-memory cache of stored renditions for the HTTP workers.

Serving from memory saves a trip to the database thread per request; the cache stays fresh by
polling two counters the store bumps on every write/deletion of renditions (a cheap indexed read,
ten times a second), so every worker of `feeds serve --workers N` sees a new version within
`poll_interval` seconds. Bounded by bytes: a server with 400,000 feeds keeps only the hot ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict

from feeds.model import Rendition
from feeds.store import Store

log = logging.getLogger("feeds.cache")
_MISS_COST = 200  # bytes charged for remembering that a document does not exist


class RenditionCache:
    def __init__(self, store: Store, max_bytes: int, poll_interval: float = 0.1) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.poll_interval = poll_interval
        self._items: OrderedDict[tuple[str, str], Rendition | None] = OrderedDict()
        self._bytes = 0
        self._seen: tuple[int, int] = (0, 0)
        self._task: asyncio.Task[None] | None = None
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _cost(rendition: Rendition | None) -> int:
        if rendition is None:
            return _MISS_COST
        return len(rendition.body) + len(rendition.gzip) + len(rendition.br) + 512

    async def get(self, feed: str, fmt: str) -> Rendition | None:
        key = (feed, fmt)
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]
        self.misses += 1
        rendition = await self.store.rendition(feed, fmt)
        if key not in self._items:  # another request may have loaded it meanwhile
            self._items[key] = rendition
            self._bytes += self._cost(rendition)
            self._shrink()
        return rendition

    def _evict(self, key: tuple[str, str]) -> None:
        if key in self._items:
            self._bytes -= self._cost(self._items.pop(key))

    def _shrink(self) -> None:
        while self._bytes > self.max_bytes and self._items:
            _, old = self._items.popitem(last=False)
            self._bytes -= self._cost(old)

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0

    @property
    def size(self) -> int:
        return self._bytes

    async def sync(self) -> None:
        """Drop what changed in the store since the last look."""
        written, deleted = await self.store.rendition_versions()
        if (written, deleted) == self._seen:
            return
        if deleted != self._seen[1]:
            self.clear()
        else:
            for key in await self.store.renditions_since(self._seen[0]):
                self._evict(key)
        self._seen = (written, deleted)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.sync()
            except Exception:  # a failed poll must not stop the next one; serve and retry
                log.exception("cache: poll failed")
                self.clear()

    async def start(self) -> None:
        self._seen = await self.store.rendition_versions()
        self._task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
