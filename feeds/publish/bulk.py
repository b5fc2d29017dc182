"""Bulk publishing: many documents rendered by several processes (a bulk load uses every core),
each on its own connection to the store, in the order their events arrived."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from feeds.config import Settings
from feeds.entries import EntryMemo
from feeds.model import FeedKey
from feeds.process import few_malloc_arenas, tune_gc
from feeds.publish.document import publish_keys
from feeds.publish.plan import arrival_order
from feeds.store import Store

log = logging.getLogger("feeds.publish")

# A bulk publishing process's own memo: entries of the stretch of time it is publishing (the
# documents showing an event come close together in arrival order); older ones are read back.
BULK_MEMO_BYTES = 48 << 20


def _contiguous(names: list[str], parts: int) -> list[list[str]]:
    """`parts` runs of consecutive names: each process meets the events of its own stretch of
    time, so its entries are made once and reused."""
    size = -(-len(names) // parts)
    return [names[i : i + size] for i in range(0, len(names), size)]


def _publish_shard(database: str, settings: Settings, names: list[str], done: Any) -> tuple[int, int, int]:
    """Child process: publish `names` through its own connection to the store. Returns how many
    renditions it stored, entries it made and entries it reused from memory."""

    async def run() -> tuple[int, int, int]:
        # A small page cache: the events of a stretch of time are read once, in order.
        store = await Store.open(database, cache_kib=8 * 1024)
        try:
            memo = EntryMemo(BULK_MEMO_BYTES)
            keys = [FeedKey.parse(n) for n in names]
            unreported = 0

            def report(n: int) -> None:
                # Through the manager process: a round trip each, so a few dozen at a time.
                nonlocal unreported
                unreported += n
                if unreported >= 32:
                    done.put(unreported)
                    unreported = 0

            async with store.bulk():
                stored = await publish_keys(store, settings, keys, report, memo=memo, ordered=True)
            done.put(unreported)
            return stored, memo.made, memo.hits
        finally:
            await store.close()

    return asyncio.run(run())


async def publish_keys_in_processes(
    store: Store,
    settings: Settings,
    keys: Iterable[FeedKey],
    processes: int,
    progress: Callable[[int], object] | None = None,
    first: Sequence[str] = (),
    memo: EntryMemo | None = None,
) -> int:
    """Publish many documents with several processes (a bulk load uses every core). Each process
    reads the store on its own connection; their short write transactions take turns."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    names = sorted(k.name for k in keys)
    if len(names) >= 500:
        names = await arrival_order(store, settings, names)
    if processes <= 1 or len(names) < 500:
        return await publish_keys(
            store, settings, [FeedKey.parse(n) for n in names], progress, memo, ordered=True, first=first
        )
    context = multiprocessing.get_context("spawn")  # no inherited event loop or database threads
    manager = context.Manager()
    done = manager.Queue()
    loop = asyncio.get_running_loop()
    await store.release_memory()  # this process only waits now
    # The compression threads would otherwise keep a few hundred MB of freed buffers between them.
    try:
        with few_malloc_arenas(), ProcessPoolExecutor(processes, mp_context=context, initializer=tune_gc) as pool:
            futures = [
                loop.run_in_executor(pool, _publish_shard, store.path, settings, shard, done)
                for shard in _contiguous(names, processes)
            ]
            pending = asyncio.gather(*futures)
            while not pending.done():
                await asyncio.sleep(0.2)
                while not done.empty():
                    count = done.get()
                    if progress:
                        progress(count)
            results = await pending
    finally:
        manager.shutdown()
    log.info("entries made %d, reused from memory %d", sum(r[1] for r in results), sum(r[2] for r in results))
    return sum(r[0] for r in results)
