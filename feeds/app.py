"""The HTTP app: Starlette routes serving stored renditions, made on the first request for those
rendered only when asked for (feeds.publish.hot).

`/feeds/latest.{rss,atom,json}`, `/feeds/dates/{YYYY-MM-DD}.{fmt}`, `/feeds/topics/{slug}.{fmt}`,
`/feeds/topics/{slug}/pages/{n}.{fmt}`, `/topics`, `/healthz`. Every feed answer carries a strong per-encoding ETag, Last-Modified (the
newest change of its content), Cache-Control and `Vary: Accept-Encoding`; validators answer 304.
A document the store can show but holds no current rendering of is rendered on its request
(feeds.publish.demand); one it cannot show answers 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import signal
import sqlite3
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from feeds import access, metrics, observe, ondemand, subscribers, sync, web, websub
from feeds.cache import RenditionCache
from feeds.config import Settings
from feeds.errors import FeedsError, StoreError
from feeds.ids import is_slug
from feeds.model import FEED_FORMATS, Rendition
from feeds.publish.demand import OnRequest
from feeds.render.topics import TOPICS_DOC
from feeds.responses import (
    JSON_TYPE,
    NO_STORE,
    RETRY_AFTER,
    HTTPError,
    Prepared,
    cache_control,
    error,
    retry_after,
    serve,
)
from feeds.store import Store
from feeds.websub_links import link_header

log = logging.getLogger("feeds.app")
__all__ = ["RETRY_AFTER", "HTTPError", "cache_control", "create_app", "feed_name"]


@functools.lru_cache(maxsize=4096)  # the same feeds are polled again and again (errors are not kept)
def feed_name(path: str) -> tuple[str, str]:
    """`dates/2017-09-28.atom` -> (`dates/2017-09-28`, `atom`); `topics/isil/pages/2.rss` ->
    (`topics/isil/pages/2`, `rss`); or HTTPError 400/404."""
    stem, dot, fmt = path.rpartition(".")
    if not dot or fmt not in FEED_FORMATS:
        raise HTTPError(400, f"unknown format {fmt!r}: use one of {', '.join(FEED_FORMATS)}")
    if stem == "latest":
        return stem, fmt
    kind, _, value = stem.partition("/")
    if kind == "dates":
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise HTTPError(400, f"malformed date {value!r}: use YYYY-MM-DD") from None
        if len(value) != 10:
            raise HTTPError(400, f"malformed date {value!r}: use YYYY-MM-DD")
        return f"dates/{day.isoformat()}", fmt
    if kind == "topics":
        slug, paged, page = value.partition("/pages/")
        # The path arrives percent-decoded (UTF-8): a slug in another script is asked for either
        # way, `/feeds/topics/%E4%B8%96%E8%A1%9B.atom` or `/feeds/topics/世衛.atom`.
        if not is_slug(slug):
            raise HTTPError(404, f"no topic {slug!r}")
        if paged and not (page.isdigit() and page[0] != "0"):
            raise HTTPError(400, f"malformed page number {page!r}: use 1, 2, ...")
        return stem, fmt
    raise HTTPError(404, f"no feed {stem!r}")


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Opens the store unless the caller gave one, fills the cache, starts the scheduler."""
    state = app.state
    settings: Settings = state.settings
    own = state.store is None
    if own:
        try:
            state.store = await Store.open(settings.database, topic_aliases=settings.topic_aliases)
        except FeedsError as exc:
            cannot_start(str(exc))
            raise
    today = dt.datetime.now(dt.UTC).date

    def prepare(rendition: Rendition) -> Prepared:
        if rendition.feed == TOPICS_DOC:
            return Prepared.of(rendition, cache_control(settings))
        link = link_header(settings, rendition.feed, rendition.fmt) if rendition.fmt in FEED_FORMATS else ""
        return Prepared.of(rendition, cache_control(settings, rendition.feed, today()), link=link)

    state.made = OnRequest(state.store, settings)
    state.cache = RenditionCache(state.store, settings.cache_bytes, prepare, make=state.made)
    await state.cache.start()
    runner = None
    if state.run_scheduler:
        from feeds.scheduler import Refresher

        runner = Refresher(state.store, settings)
        await runner.start()
    access.start(settings.access_log)

    def caches() -> dict[str, tuple[int, int]]:
        made = state.ondemand
        held = {
            "renditions": (state.cache.held, state.cache.max_bytes),
            "ondemand": (int(made.items.currsize), int(made.items.maxsize)),
            "ondemand_entries": (made.memo.size, made.memo.max_bytes),
            "topic_searches": (int(state.generated.currsize), int(state.generated.maxsize)),
            "made_entries": (state.made.memo.size, state.made.memo.max_bytes),
        }
        if runner:
            held["entries"] = (runner.memos.entries.size, runner.memos.entries.max_bytes)
        return held

    state.caches = caches
    observing = asyncio.create_task(_observe(caches))
    state.subscribers.store = state.store
    state.subscribers.start()
    state.hub.store = state.store
    state.hub.make = state.made
    if state.push:
        await state.hub.start()
    try:
        yield
    finally:
        observing.cancel()
        await state.subscribers.stop()
        access.stop()
        if runner:
            await runner.stop()
        await state.hub.stop()
        await state.cache.stop()
        if own:
            await state.store.close()
            state.store = None


async def _observe(caches: Callable[[], dict[str, tuple[int, int]]]) -> None:
    """This process's gauges, every few seconds: another process may be the one asked /metrics."""
    while True:
        metrics.observe(caches())
        await asyncio.sleep(OBSERVE_EVERY)


OBSERVE_EVERY = 5.0


async def feed(request: Request) -> Response:
    state = request.app.state
    path = request.path_params["path"]
    stem, _, fmt = path.rpartition(".")
    if stem.startswith("topics/") and "+" in stem and fmt in FEED_FORMATS:
        return await ondemand.answer(request, stem.removeprefix("topics/"), fmt)
    if stem == "search" and fmt in FEED_FORMATS:
        return await ondemand.search_answer(request, fmt)
    try:
        name, fmt = feed_name(request.path_params["path"])
    except HTTPError as exc:
        return error(exc.status, exc.message)
    document = await state.cache.get(name, fmt)
    if document is None:
        if redirect := await web.moved(request, name, fmt):
            return redirect
        what = "date" if name.startswith("dates/") else "topic" if name.startswith("topics/") else "feed"
        return error(404, f"no {what} {name.partition('/')[2] or name!r}")
    return serve(request, document)


async def topics(request: Request) -> Response:
    """The topics index: JSON for API clients (the stored document whole, or a page of a search),
    HTML for browsers (`Accept`), `/topics.json` always JSON."""
    fmt = "json" if request.url.path.endswith(".json") or not web.wants_html(request) else "html"
    return await web.index_answer(request, fmt)


async def healthz(request: Request) -> Response:
    """`ok`; `degraded` (still 200: the feeds are served) while a source is failing, with each
    source's last success and error; 503 when the store cannot be read."""
    store, settings = request.app.state.store, request.app.state.settings
    try:
        events, unlisted = await store.count_events(), await store.unlisted()
        sources = await store.source_health([s.name for s in settings.sources])
    except (FeedsError, sqlite3.Error, OSError) as exc:
        return error(503, f"the store cannot be read: {exc}")
    failing = any(health["failing_since"] for health in sources.values())
    body = {"status": "degraded" if failing else "ok", "events": events, "unlisted": unlisted, "sources": sources}
    return JSONResponse(body, headers=NO_STORE, media_type=JSON_TYPE)


async def not_found(request: Request, exc: Exception) -> Response:
    return web.not_found(request, f"no such path {request.url.path!r}")


_said: set[type[Exception]] = set()  # store failures this process has logged (once each)


async def store_failed(request: Request, exc: Exception) -> Response:
    """A store that cannot be read (damaged): the one line that says what to do, as JSON."""
    if type(exc) not in _said:
        _said.add(type(exc))
        log.error("%s", exc)
    return error(503, str(exc), retry_after(request.app.state.settings))


async def failed(request: Request, exc: Exception) -> Response:
    return error(500, "internal error: the server's log has the details")


# Tried in order, a regular expression each: the most asked first (feeds, then pages).
ROUTES = [
    Route("/feeds/{path:path}", feed, methods=["GET", "HEAD"]),
    *web.ROUTES,
    Route("/topics", topics, methods=["GET", "HEAD"]),
    Route("/topics.json", topics, methods=["GET", "HEAD"]),
    Route("/changes", sync.changes, methods=["GET", "HEAD"]),
    Route("/websub", websub.endpoint, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET", "HEAD"]),
    Route("/metrics", metrics.metrics, methods=["GET"]),
    Route("/stats", subscribers.stats, methods=["GET"]),
]


def create_app(settings: Settings, store: Store | None = None, scheduler: bool = True, push: bool = True) -> Starlette:
    """The ASGI app. With `store` given the caller owns it; otherwise the lifespan opens one.
    `push`: its hub delivers what the store owes WebSub subscribers (not an export's app)."""
    app_subscribers = subscribers.Subscribers()
    middleware = [Middleware(observe.Observe, settings, app_subscribers)]
    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={404: not_found, StoreError: store_failed, Exception: failed},
        middleware=middleware,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.run_scheduler = scheduler
    app.state.push = push
    web.prepare_state(app.state)
    app.state.ondemand = ondemand.OnDemand()
    app.state.subscribers = app_subscribers
    app.state.hub = websub.Hub(store, settings)
    return app


def cannot_start(reason: str) -> None:
    """A server worker that cannot start stops the whole server with its reason, rather than be
    started again and again by the supervisor: the reason goes where `feeds serve` reads it
    (FEEDS_START_FAILURE), and the supervisor (the worker's parent) is asked to stop."""
    path = os.environ.get("FEEDS_START_FAILURE")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(reason + "\n")
    os.kill(os.getppid(), signal.SIGTERM)


def app_from_environment() -> Starlette:
    """Factory for server workers started by import string (`feeds serve --workers N`): each
    worker reads the same config (FEEDS_CONFIG and FEEDS_* variables)."""
    from feeds import config
    from feeds.process import configure_logging, tune_gc

    configure_logging(os.environ.get("FEEDS_VERBOSE") == "1", os.environ.get("FEEDS_DEBUG_LIBRARIES") == "1")
    tune_gc()
    try:
        settings = config.load()
    except FeedsError as exc:
        cannot_start(str(exc))
        raise
    return create_app(settings)
