"""Who follows what: per feed and per day, the distinct clients that polled it and the subscribers
aggregators report in their User-Agent (`Feedly/1.0 (...; 42 subscribers; feed-id=...)`,
`NewsBlur Feed Fetcher - 12 subscribers - ...`). An aggregator's report counts once per feed and
day, its latest (per aggregator and its own feed id), never summed with its earlier polls.

Requests are only noted in memory; a task writes what was noted every `FLUSH_EVERY` seconds in one
transaction (never a write per request). Clients are kept as digests of address and User-Agent,
not as addresses. Pure parsing here; the middleware and the writer below it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import itertools
import logging
import re
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from feeds.responses import JSON_TYPE, error
from feeds.store import Store

FLUSH_EVERY = 30.0
MAX_NOTED = 50_000  # clients and reports noted between writes; more are written at once
log = logging.getLogger(__name__)

_COUNT = re.compile(r"(\d{1,9})\s+(?:subscribers?|readers?)\b", re.IGNORECASE)
_FEED_ID = re.compile(r"feed-?id[=:]\s*([\w.-]{1,64})", re.IGNORECASE)
# Known aggregators by a word of their User-Agent; others are named by their first product token.
_KNOWN = ("feedly", "inoreader", "newsblur", "theoldreader", "feedbin", "feedhq", "bazqux", "netvibes", "feedspot")


@dataclass(frozen=True)
class Report:
    aggregator: str
    feed_id: str  # the aggregator's own id of the feed ("" when it gives none)
    subscribers: int


@functools.lru_cache(maxsize=4096)  # aggregators send the same User-Agent until their count moves
def report_of(agent: str) -> Report | None:
    """The subscribers an aggregator reports in its User-Agent, or None."""
    count = _COUNT.search(agent)
    if not count:
        return None
    lowered = agent.lower().replace(" ", "")
    name = next((k for k in _KNOWN if k in lowered), "")
    if not name:
        token = re.match(r"\s*(?:Mozilla/\S+\s*\(compatible;\s*)?([\w.-]+)", agent)
        name = token.group(1).lower() if token else "unknown"
    feed_id = _FEED_ID.search(agent)
    return Report(name, feed_id.group(1) if feed_id else "", int(count.group(1)))


_EPOCH = dt.date(1970, 1, 1)


@functools.lru_cache(maxsize=2)
def _day_of(days: int) -> str:
    return (_EPOCH + dt.timedelta(days=days)).isoformat()


@functools.lru_cache(maxsize=4096)  # the same readers poll again and again
def client_digest(address: str, agent: str) -> str:
    return hashlib.sha256(f"{address}\n{agent}".encode("utf-8", "surrogateescape")).hexdigest()[:16]


def noted_rows(
    polls: dict[tuple[int, str, str, bytes], int],
) -> tuple[list[tuple[str, str, str, int]], list[tuple[tuple[str, str, str, str], int]]]:
    """What polls noted as (day number, feed, address, User-Agent) -> order of the latest become:
    the distinct clients per day and feed, and each aggregator's latest report per feed id."""
    clients: set[tuple[str, str, str, int]] = set()
    reports: dict[tuple[str, str, str, str], int] = {}
    for (days, feed, address, raw), _ in sorted(polls.items(), key=lambda item: item[1]):
        day, agent = _day_of(days), raw.decode("latin-1")
        report = report_of(agent)
        clients.add((day, feed, client_digest(address, agent), int(report is not None)))
        if report:
            reports[(day, feed, report.aggregator, report.feed_id)] = report.subscribers
    return sorted(clients), sorted(reports.items())


@functools.lru_cache(maxsize=4096)  # the same feeds are polled again and again
def feed_of(path: str) -> str | None:
    """The document a feed URL names (`/feeds/topics/x.atom` -> `topics/x`), or None."""
    if not path.startswith("/feeds/") or "." not in path:
        return None
    return path[len("/feeds/") :].rpartition(".")[0] or None


class Subscribers:
    """The notes of one server process and the task that writes them."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store  # set when the server's store is opened
        # (day number, feed, address, User-Agent) -> when it was last seen, in notes: read at writing
        self.polls: dict[tuple[int, str, str, bytes], int] = {}
        self._order = itertools.count()
        self._task: asyncio.Task[None] | None = None

    def note(self, feed: str, address: str, agent: bytes, today: dt.date | None = None) -> None:
        """A poll of `feed`: one dict assignment on the request path; parsed when written."""
        days = (today - _EPOCH).days if today else int(time.time()) // 86_400
        self.polls[(days, feed, address, agent)] = next(self._order)
        if len(self.polls) >= MAX_NOTED:
            self._task_soon()

    def _task_soon(self) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop: the next timed write takes them
            asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        if self.store is None:
            return
        polls, self.polls = self.polls, {}
        if polls:
            try:
                await self.store.note_subscribers(*noted_rows(polls))
            except Exception as exc:  # statistics are never worth a failing server
                log.warning("subscribers: could not write %d notes: %s", len(polls), exc)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


async def stats(request: Request) -> Response:
    """`GET /stats[?day=YYYY-MM-DD&limit=N]`: the most-followed feeds of a day (default: the
    newest day with statistics) as JSON."""
    state = request.app.state
    await state.subscribers.flush()  # this process's notes; other workers' within FLUSH_EVERY
    days = await state.store.stats_days()
    day = request.query_params.get("day") or (days[0] if days else dt.datetime.now(dt.UTC).date().isoformat())
    limit = request.query_params.get("limit", "50")
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        return error(400, f"day: a date as YYYY-MM-DD, got {day[:40]!r}")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        return error(400, f"limit: a whole number from 1 to 1000, got {limit[:40]!r}")
    feeds = await state.store.most_followed(day, int(limit))
    return JSONResponse(
        {"day": day, "days": days, "feeds": feeds}, headers={"cache-control": "no-store"}, media_type=JSON_TYPE
    )
