"""Several server workers on one store: the rendition cache stays fresh and bounded, and exactly
one worker runs the scheduler, taken over when it dies."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from feeds.cache import RenditionCache
from feeds.config import Settings
from feeds.publish import encode
from feeds.scheduler import LEASE, Refresher
from feeds.store import Store
from tests.conftest import free_port
from tests.helpers import feeds_serve, wait_for


async def test_cache_serves_new_versions_after_a_sync_and_stays_bounded(store: Store) -> None:
    first = encode("latest", "atom", b"<feed>one</feed>" * 100, dt.datetime.now(dt.UTC))
    await store.put_rendition(first)
    # The cache of another worker: its own connection, and it looks only when told to here.
    other = await Store.open(store.path)
    cache = RenditionCache(other, max_bytes=10_000, poll_interval=3600)
    await cache.start()
    try:
        assert (await cache.get("latest", "atom")).etag == first.etag  # type: ignore[union-attr]
        assert await cache.get("latest", "rss") is None
        second = replace(first, body=b"<feed>two</feed>", etag="two")
        await store.put_rendition(second)
        assert (await cache.get("latest", "atom")).etag == first.etag  # type: ignore[union-attr]
        await cache.sync()
        assert (await cache.get("latest", "atom")).etag == "two"  # type: ignore[union-attr]
        for i in range(50):
            await store.put_rendition(replace(first, feed=f"dates/2020-01-{i:02d}"))
            await cache.get(f"dates/2020-01-{i:02d}", "atom")
            assert cache.size <= 10_000
        await store.delete_renditions("latest")
        await cache.sync()
        assert await cache.get("latest", "atom") is None
    finally:
        await cache.stop()
        await other.close()


async def test_cache_reads_a_document_once_however_many_ask_and_keeps_no_read_a_change_overtook(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests missing the same document at once share one read of the store; a document held
    in memory is read again as soon as the cache sees it changed (the next requests find the new
    version in memory); and a read still under way when the change is seen is not kept."""
    first = encode("latest", "atom", b"<feed>one</feed>" * 100, dt.datetime.now(dt.UTC))
    await store.put_rendition(first)
    cache = RenditionCache(store, max_bytes=1 << 20, poll_interval=3600)
    reads: list[str] = []
    slow = asyncio.Event()
    read = store.rendition

    async def counted(feed: str, fmt: str) -> object:
        reads.append(feed)
        found = await read(feed, fmt)
        if feed == "dates/2020-01-01" and reads.count(feed) == 1:
            await slow.wait()  # still under way when the change is seen, and done after the next
        return found

    monkeypatch.setattr(store, "rendition", counted)
    got = await asyncio.gather(*(cache.get("latest", "atom") for _ in range(20)))
    assert {g.etag for g in got} == {first.etag} and reads == ["latest"]  # type: ignore[union-attr]

    await store.put_rendition(replace(first, etag="two"))
    await cache.sync()
    assert reads == ["latest", "latest"]  # read again at once, not at the next request
    assert (await cache.get("latest", "atom")).etag == "two" and len(reads) == 2  # type: ignore[union-attr]

    await store.put_rendition(replace(first, feed="dates/2020-01-01", etag="old"))
    await cache.sync()
    pending = asyncio.ensure_future(cache.get("dates/2020-01-01", "atom"))
    await asyncio.sleep(0.05)
    await store.put_rendition(replace(first, feed="dates/2020-01-01", etag="new"))
    await cache.sync()  # reads the new version while the first read still waits
    slow.set()
    assert (await pending).etag == "old"  # asked before the change was seen  # type: ignore[union-attr]
    await asyncio.sleep(0)
    assert (await cache.get("dates/2020-01-01", "atom")).etag == "new"  # type: ignore[union-attr]


async def served_etag(cache: RenditionCache) -> str | None:
    rendition = await cache.get("latest", "atom")
    return rendition.etag if rendition else None


async def eventually(cache: RenditionCache, etag: str | None, seconds: float = 2.0) -> bool:
    """Whether the cache serves `etag` (None: nothing) for latest.atom within `seconds` (the
    caches under test poll only once an hour)."""
    deadline = time.monotonic() + seconds
    while await served_etag(cache) != etag:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


@pytest.mark.parametrize("worker", ["scheduler", "other"])
async def test_cache_serves_a_new_version_as_soon_as_it_is_committed(store: Store, worker: str) -> None:
    """The worker running the scheduler serves a new version as soon as it is stored through its
    own connection; another worker (another connection) as soon as the writer commits, because
    the kernel reports the write to the store's log. Neither waits for the next poll (hourly
    here)."""
    first = encode("latest", "atom", b"<feed>one</feed>", dt.datetime.now(dt.UTC))
    await store.put_rendition(first)
    own = store if worker == "scheduler" else await Store.open(store.path)
    cache = RenditionCache(own, max_bytes=10_000, poll_interval=3600)
    await cache.start()
    try:
        assert await served_etag(cache) == first.etag
        await store.put_rendition(replace(first, body=b"<feed>two</feed>", etag="two"))
        assert await eventually(cache, "two")
        await store.delete_renditions("latest")
        assert await eventually(cache, None)
    finally:
        await cache.stop()
        # Stopped: its store no longer calls it.
        assert not own._written
        if own is not store:
            await own.close()


async def test_exactly_one_worker_refreshes_and_another_takes_over(settings: Settings) -> None:
    fast = replace(settings, refresh_interval=3600)
    stores = [await Store.open(settings.database) for _ in range(2)]
    workers = [Refresher(s, fast, lease_seconds=1.5) for s in stores]
    try:
        for worker in workers:
            await worker.start()
        for _ in range(50):
            await asyncio.sleep(0.1)
            if sum(w.leader for w in workers) == 1 and sum(w.runs for w in workers) == 1:
                break
        assert [w.leader for w in workers].count(True) == 1
        leader = next(w for w in workers if w.leader)
        other = next(w for w in workers if not w.leader)
        assert leader.runs == 1 and other.runs == 0
        await leader.stop(release=False)  # dies without a word
        for _ in range(100):
            await asyncio.sleep(0.1)
            if other.leader and other.runs == 1:
                break
        assert other.leader and other.runs == 1
    finally:
        for worker in workers:
            if worker.scheduler.running:
                await worker.stop()
        for s in stores:
            await s.close()


def test_serve_with_two_workers(tmp_path: Path, tree: Path) -> None:
    port = free_port()
    config = tmp_path / "feeds.toml"
    config.write_text(
        f'database = "feeds.db"\nport = {port}\nrefresh_interval = 3600\n'
        f'[[sources]]\nname = "example"\nkind = "directory"\nlocation = "{tree}"\n'
    )
    with feeds_serve(config, "--workers", "2") as server:
        wait_for(server, f"http://127.0.0.1:{port}/feeds/latest.atom")
        time.sleep(0.5)  # each worker's cache notices new renditions within its poll interval (0.1 s)
        etags = {httpx.get(f"http://127.0.0.1:{port}/feeds/latest.atom").headers["etag"] for _ in range(20)}
        assert len(etags) == 1
        conn = sqlite3.connect(tmp_path / "feeds.db")
        holders = conn.execute("SELECT holder FROM leases WHERE name = ?", (LEASE,)).fetchall()
        conn.close()
        assert len(holders) == 1
    output: str = server.output  # type: ignore[attr-defined]
    assert output.count("runs the refreshes") == 1, output


def test_server_workers_and_the_command_collect_garbage_less_often(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every process that refreshes or serves (a worker started by import string, the `feeds`
    command) sets the collector's thresholds: a refresh allocates ~100,000 short-lived objects."""
    import gc

    from feeds.app import app_from_environment
    from feeds.process import GC_THRESHOLDS

    before = gc.get_threshold()
    config = tmp_path / "feeds.toml"
    config.write_text(f'database = "{tmp_path / "feeds.db"}"\n')
    monkeypatch.setenv("FEEDS_CONFIG", str(config))
    try:
        gc.set_threshold(700, 10, 10)
        app_from_environment()
        assert gc.get_threshold() == GC_THRESHOLDS
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "import contextlib, gc, sys\nfrom feeds.cli import main\nsys.argv = ['feeds', '--help']\n"
                "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(None): main()\nprint(gc.get_threshold())",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.strip() == str(GC_THRESHOLDS)
    finally:
        gc.set_threshold(*before)


def _arenas() -> str | None:
    return os.environ.get("MALLOC_ARENA_MAX")


def test_processes_started_for_bulk_work_get_two_malloc_arenas(monkeypatch: pytest.MonkeyPatch) -> None:
    """glibc reads MALLOC_ARENA_MAX when a process starts: the publishing processes of a bulk
    load are started with 2, and the setting is this process's own again after."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from feeds.process import few_malloc_arenas

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    with few_malloc_arenas(), ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(_arenas).result() == "2"
    assert "MALLOC_ARENA_MAX" not in os.environ
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # an operator's own choice stands
    with few_malloc_arenas(), ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(_arenas).result() == "4"
    assert os.environ["MALLOC_ARENA_MAX"] == "4"
