"""The refresh schedule: APScheduler (3.x) in the app's lifespan.

One job, every `refresh_interval` seconds, first run at start-up, and a run about a second
after a watched directory source changed (feeds/sources/watch.py; runs take turns); `max_instances=1` means runs
never overlap and `coalesce=True` folds missed runs into one. A run that fails is logged and the
next one tries again; the server keeps serving what the store holds.

With several server workers on one store, only the holder of the `scheduler` lease (a row in the
store, renewed every few seconds) refreshes; if it dies, the lease runs out and another worker
takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import time
import uuid

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from feeds import metrics
from feeds.config import Settings
from feeds.errors import StoreError
from feeds.publish import Memos
from feeds.refresh import Report, open_sources, refresh_all
from feeds.sources import Source
from feeds.sources.directory import DirectorySource
from feeds.store import Store

log = logging.getLogger("feeds.scheduler")
LEASE = "scheduler"


class Refresher:
    def __init__(self, store: Store, settings: Settings, lease_seconds: float = 30.0) -> None:
        self.store = store
        self.settings = settings
        self.sources: list[Source] = open_sources(settings.sources)
        self.scheduler = AsyncIOScheduler(timezone=dt.UTC)
        self.holder = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.lease_seconds = lease_seconds
        self.leader = False
        self.last: Report | None = None
        self.runs = 0
        self.memos = Memos()  # kept from one run to the next: entries made once
        self.failing: dict[str, int] = {}  # source name -> failed runs in a row
        self._running = asyncio.Lock()
        self._changed = asyncio.Event()
        self._following: asyncio.Task[None] | None = None
        self.store_failing: type[StoreError] | None = None  # what keeps the store from being written, said once

    def _store_failed(self, exc: StoreError) -> None:
        """A full disk or a damaged store: one line when it starts (or changes), not a traceback per
        refresh; the server serves what it holds and the next refresh tries again."""
        if type(exc) is not self.store_failing:
            log.error("refresh: %s; serving the documents stored before, retrying", exc)
        self.store_failing = type(exc)

    async def keep_lease(self) -> None:
        try:
            leader = await self.store.acquire_lease(LEASE, self.holder, self.lease_seconds)
        except StoreError as exc:
            self._store_failed(exc)
            leader = False
        except Exception:
            log.exception("scheduler: lease check failed")
            leader = False
        if leader and not self.leader:
            log.info("scheduler: worker %s runs the refreshes", self.holder)
            self.leader = True
            self.scheduler.modify_job("refresh", next_run_time=dt.datetime.now(dt.UTC))
        self.leader = leader

    async def run(self) -> None:
        if not self.leader:
            return
        async with self._running:  # a run a watcher started and a scheduled one take turns
            await self._run()

    async def _follow(self) -> None:
        """Refresh as soon as a watched directory source changed (debounced by its watcher)."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            await self.run()

    def _watch_sources(self) -> None:
        loop = asyncio.get_running_loop()

        def changed() -> None:  # on a watcher's thread
            with contextlib.suppress(RuntimeError):  # the loop closed: the server is stopping
                loop.call_soon_threadsafe(self._changed.set)

        for source in self.sources:
            if isinstance(source, DirectorySource):
                source.on_change, source.follows_watcher = changed, True
        self._following = asyncio.create_task(self._follow())

    async def _run(self) -> None:
        started = time.perf_counter()
        try:
            # What it stores reaches WebSub subscribers through the store's record (feeds/websub.py).
            report = await refresh_all(self.store, self.settings, self.sources, self.memos, self.failing)
        except StoreError as exc:
            self._store_failed(exc)
            return
        except Exception:  # a scheduled job must never die: log, and try again next time
            log.exception("refresh failed")
            return
        if self.store_failing:
            log.info("refresh: the store %s is written again", self.store.path)
            self.store_failing = None
        self.last = report
        self.runs += 1
        took = time.perf_counter() - started
        metrics.REFRESH_SECONDS.observe(took)
        for kind, events in (
            ("new", report.result.added),
            ("changed", report.result.changed),
            ("deleted", report.result.deleted),
        ):
            metrics.EVENTS.labels(kind).inc(len(events))
        failed = f"; {len(report.failed_sources)} source(s) failing" if report.failed_sources else ""
        result = report.result
        changed = result.added or result.changed or result.deleted or report.rendered or report.failed_sources
        # An idle server's log stays quiet: a run that changed nothing is a debug line.
        log.log(logging.INFO if changed else logging.DEBUG, "refresh: %s in %.2f s%s", report.lines()[0], took, failed)

    async def scheduled(self) -> None:
        """`run` as APScheduler's job: a refresh cut short by the server stopping is no error (what
        it stored is kept; the next start publishes the rest)."""
        try:
            await self.run()
        except asyncio.CancelledError:
            log.debug("refresh: stopped with the server")

    async def start(self) -> None:
        self.scheduler.add_job(
            self.scheduled,
            "interval",
            seconds=self.settings.refresh_interval,
            id="refresh",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=self.settings.refresh_interval,
        )
        self.scheduler.add_job(
            self.keep_lease,
            "interval",
            seconds=max(0.2, self.lease_seconds / 3),
            id="lease",
            max_instances=1,
            coalesce=True,
            next_run_time=dt.datetime.now(dt.UTC),
        )
        self.scheduler.start()
        self._watch_sources()

    async def stop(self, release: bool = True) -> None:
        self.scheduler.shutdown(wait=False)
        if self._following is not None:
            self._following.cancel()
            await asyncio.gather(self._following, return_exceptions=True)
        if release and self.leader:
            await self.store.release_lease(LEASE, self.holder)
        for source in self.sources:
            await source.aclose()
