"""The refresh schedule: APScheduler (3.x) in the app's lifespan.

One job, every `refresh_interval` seconds, first run at start-up; `max_instances=1` means runs
never overlap and `coalesce=True` folds missed runs into one. A run that fails is logged and the
next one tries again; the server keeps serving what the store holds.
"""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from feeds.config import Settings
from feeds.refresh import Report, open_sources, refresh_all
from feeds.sources import Source
from feeds.store import Store

log = logging.getLogger("feeds.scheduler")


class Refresher:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.sources: list[Source] = open_sources(settings.sources)
        self.scheduler = AsyncIOScheduler(timezone=dt.timezone.utc)
        self.last: Report | None = None
        self.runs = 0

    async def run(self) -> None:
        try:
            report = await refresh_all(self.store, self.settings, self.sources)
        except Exception:  # a scheduled job must never die: log, and try again next time
            log.exception("refresh failed")
            return
        self.last = report
        self.runs += 1
        for line in report.lines()[:1]:
            log.info("refresh: %s", line)

    async def start(self) -> None:
        self.scheduler.add_job(
            self.run,
            "interval",
            seconds=self.settings.refresh_interval,
            id="refresh",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=self.settings.refresh_interval,
            next_run_time=dt.datetime.now(dt.timezone.utc),
        )
        self.scheduler.start()

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        for source in self.sources:
            await source.aclose()
