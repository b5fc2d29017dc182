"""A bounded in-memory cache of stored renditions for the HTTP workers.

Serving from memory saves a trip to the database thread per request; the cache stays fresh by
reading two counters the store bumps on every write/deletion of renditions (a cheap indexed read):
at once after a write through its own store connection (the worker that runs the scheduler), at
once after any process appends to the store's write-ahead log (watchfiles: the other workers
of `feeds serve --workers N`, a `feeds refresh` beside the server), and in any case every
`poll_interval` seconds. Bounded by bytes: a server with 400,000 feeds keeps only the hot ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cachetools import LRUCache

from feeds.errors import StoreError
from feeds.model import Rendition
from feeds.sources.watch import Watch
from feeds.store import Store

log = logging.getLogger("feeds.cache")
_MISS_COST = 200  # bytes charged for remembering that a document does not exist
MIN_SYNC_GAP = 0.005  # seconds between two looks at the store's counters
WAKE_MS = 20  # the watcher's step: a write to the log wakes the cache this soon (idle cost: docs/architecture.md)


def _cost_of(item: tuple[Any, int]) -> int:
    return item[1]


class RenditionCache:
    """Holds `prepare(rendition)` (what the app serves) per document, charged by the rendition's
    size."""

    def __init__(
        self,
        store: Store,
        max_bytes: int,
        prepare: Callable[[Rendition], Any] = lambda r: r,
        poll_interval: float = 0.025,
        make: Callable[[str, str], Awaitable[Rendition | None]] | None = None,
    ) -> None:
        self.store = store
        self.prepare = prepare
        self.make = make  # a document the store holds no current version of: made on request
        self.max_bytes = max_bytes
        self.poll_interval = poll_interval
        # (prepared, cost) by (document, format), charged by cost, least recently used out first.
        self._items: LRUCache[tuple[str, str], tuple[Any, int]] = LRUCache(max_bytes, getsizeof=_cost_of)
        self._seen: tuple[int, int] = (0, 0)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._unwatch: Callable[[], None] | None = None
        self._loading: dict[tuple[str, str], asyncio.Future[tuple[Any, int]]] = {}
        self._outdated: set[asyncio.Future[tuple[Any, int]]] = set()
        self.hits = 0
        self.misses = 0

    @property
    def held(self) -> int:
        """Bytes held now (at most `max_bytes`)."""
        return int(self._items.currsize)

    @property
    def version(self) -> tuple[int, int]:
        """The store's rendition counters as last seen: they move whenever any document changes."""
        return self._seen

    @staticmethod
    def _cost(rendition: Rendition | None) -> int:
        if rendition is None:
            return _MISS_COST
        return len(rendition.body) + len(rendition.gzip) + len(rendition.br) + 512

    async def get(self, feed: str, fmt: str) -> Any:
        """`prepare(rendition)` of the stored document, or None if there is none."""
        key = (feed, fmt)
        item = self._items.get(key)
        if item is not None:
            self.hits += 1
            return item[0]
        self.misses += 1
        # One read per document however many requests miss it at once (a popular feed that just
        # changed).
        loading = self._loading.get(key) or self._load(key)
        return (await asyncio.shield(loading))[0]

    def _load(self, key: tuple[str, str]) -> asyncio.Future[tuple[Any, int]]:
        async def read() -> tuple[Any, int]:
            rendition = await self.store.rendition(*key)
            if rendition is None and self.make is not None:
                rendition = await self.make(*key)
            return (None if rendition is None else self.prepare(rendition)), self._cost(rendition)

        loading = self._loading[key] = asyncio.ensure_future(read())

        def done(future: asyncio.Future[tuple[Any, int]]) -> None:
            if self._loading.get(key) is future:
                del self._loading[key]
            outdated = future in self._outdated
            self._outdated.discard(future)
            # A read that a change overtook is not kept: it may hold the version before. Nor is a
            # miss where documents are made on request: the next request may find one to make.
            kept = not (outdated or future.cancelled() or future.exception())
            if kept and (self.make is None or future.result()[0] is not None):
                self._put(key, *future.result())

        loading.add_done_callback(done)
        return loading

    def _put(self, key: tuple[str, str], value: Any, cost: int) -> None:
        self._evict(key)
        if cost <= self.max_bytes:  # one larger than the whole cache is served but not kept
            self._items[key] = (value, cost)

    def _evict(self, key: tuple[str, str]) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
        # Reads under way may hold what was cleared: not kept, and not joined by new requests.
        self._outdated.update(self._loading.values())
        self._loading.clear()

    @property
    def size(self) -> int:
        return int(self._items.currsize)

    async def sync(self) -> None:
        """Take in what changed in the store since the last look: documents held here (or being
        read) are read again at once, so the next requests find the new version in memory
        instead of each making a trip to the store; others are dropped."""
        written, deleted = await self.store.rendition_versions()
        if (written, deleted) == self._seen:
            return
        if deleted != self._seen[1]:
            self.clear()
        else:
            again = []
            for key in await self.store.renditions_since(self._seen[0]):
                if (loading := self._loading.get(key)) is not None:
                    self._outdated.add(loading)
                if key in self._items or loading is not None:
                    again.append(self._load(key))
            await asyncio.gather(*again)
        self._seen = (written, deleted)

    async def _poll(self) -> None:
        failing = False
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.sync()
                failing = False
            except StoreError as exc:  # a damaged store: keep serving the documents held, say it once
                if not failing:
                    log.error("cache: %s", exc)
                failing = True
            except Exception:  # a failed poll must not stop the next one; serve and retry
                log.exception("cache: poll failed")
                self.clear()
            # A refresh appends to the log many times: look at most every few ms meanwhile.
            await asyncio.sleep(MIN_SYNC_GAP)

    async def start(self) -> None:
        self._seen = await self.store.rendition_versions()
        self._unsubscribe = self.store.on_renditions_written(self._wake.set)
        self._unwatch = _watch_log(self.store.path, self._wake.set)
        self._task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        if self._unwatch:
            self._unwatch()
            self._unwatch = None
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _watch_log(database: str, wake: Callable[[], None]) -> Callable[[], None] | None:
    """Call `wake` whenever a process writes the store's write-ahead log (each transaction ends
    with a write of its commit frame, so a wake follows every commit). Returns what stops it;
    None where it cannot be watched (then the poll alone keeps the cache fresh)."""
    if database == ":memory:":
        return None
    path = Path(database).resolve()
    log_name = f"{path.name}-wal"
    loop = asyncio.get_running_loop()

    def written(changes: set[tuple[int, str]]) -> None:  # on the watcher's thread
        if any(Path(changed).name == log_name for _, changed in changes):
            with contextlib.suppress(RuntimeError):  # the loop closed: the server is stopping
                loop.call_soon_threadsafe(wake)

    try:
        # The folder, not the file: SQLite removes the log when the last connection closes and
        # makes it again. Reported within WAKE_MS of a write, however many writes follow.
        watch = Watch(path.parent, written, recursive=False, debounce_ms=WAKE_MS, step_ms=WAKE_MS)
    except OSError:
        return None
    return watch.close
