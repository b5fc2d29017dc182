"""Which documents are rendered when their content changes (the hot set), and which only on their
first request after it (the rest: marked stale by a change, made again when next asked for).

Hot: `latest`; the days of the archive's last month (and the `settle_days` its days still change
in); the heads of topics with an event in the archive's last `HOT_TOPIC_DAYS`; every feed a WebSub
subscriber follows (a push carries the new bytes); every feed polled in the last `ASKED_DAYS`
days (feeds/subscribers.py keeps who polls what per day). Ages are counted from the archive's
newest day, not the clock's, so a 2003-2019 archive has a hot set too. Which documents are hot
decides only when they are rendered, never their bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from feeds.config import Settings
from feeds.model import FeedKey, utcnow
from feeds.store import Store

RECENT_DAYS = 31  # a month of days: what the front page, the day pages and their readers walk
HOT_TOPIC_DAYS = 90  # a topic with an event this recent is followed now
ASKED_DAYS = 7


@dataclass(frozen=True)
class HotSet:
    newest: dt.date | None
    recent_days: int
    topics: frozenset[str]
    followed: frozenset[str]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, FeedKey):
            return False
        if key.kind == "latest" or key.name in self.followed:
            return True
        if key.kind == "date":
            return self.newest is not None and (self.newest - dt.date.fromisoformat(key.value)).days <= self.recent_days
        return key.page == 0 and key.value in self.topics

    def split(self, keys: Iterable[FeedKey]) -> tuple[set[FeedKey], set[FeedKey]]:
        """(hot, cold) of `keys`."""
        hot: set[FeedKey] = set()
        cold: set[FeedKey] = set()
        for key in keys:
            (hot if key in self else cold).add(key)
        return hot, cold


async def hot_set(store: Store, settings: Settings) -> HotSet:
    newest_day = await store.newest_date()
    newest = dt.date.fromisoformat(newest_day) if newest_day else None
    topics: frozenset[str] = frozenset()
    if newest is not None:
        since = dt.datetime.combine(newest - dt.timedelta(days=HOT_TOPIC_DAYS), dt.time(), dt.UTC)
        topics = frozenset(await store.topics_active_since(since))
    asked_since = (utcnow().date() - dt.timedelta(days=ASKED_DAYS)).isoformat()
    followed = frozenset(await store.followed_feeds(asked_since))
    return HotSet(newest, max(RECENT_DAYS, settings.settle_days), topics, followed)
