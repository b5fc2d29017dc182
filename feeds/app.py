"""The HTTP app: Starlette routes serving stored renditions. Requests never render.

`/feeds/latest.{rss,atom,json}`, `/feeds/dates/{YYYY-MM-DD}.{fmt}`, `/feeds/topics/{slug}.{fmt}`,
`/topics`, `/healthz`. Every feed answer carries a strong per-encoding ETag, Last-Modified (the
newest change of its content), Cache-Control and `Vary: Accept-Encoding`; validators answer 304.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from feeds.cache import RenditionCache
from feeds.conditional import choose_encoding, etag_header, http_date, is_not_modified
from feeds.config import Settings
from feeds.model import FORMATS, Rendition
from feeds.render.topics import TOPICS_DOC
from feeds.store import Store

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers={"Cache-Control": "no-store"})


def feed_name(path: str) -> tuple[str, str]:
    """`dates/2017-09-28.atom` -> (`dates/2017-09-28`, `atom`); `topics/isil/pages/2.rss` ->
    (`topics/isil/pages/2`, `rss`); or HTTPError 400/404."""
    stem, dot, fmt = path.rpartition(".")
    if not dot or fmt not in FORMATS:
        raise HTTPError(400, f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
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
        if not _SLUG.match(slug):
            raise HTTPError(404, f"no topic {slug!r}")
        if paged and not (page.isdigit() and page[0] != "0"):
            raise HTTPError(400, f"malformed page number {page!r}: use 1, 2, ...")
        return stem, fmt
    raise HTTPError(404, f"no feed {stem!r}")


def cache_control(settings: Settings, name: str, today: dt.date) -> str:
    if name.startswith("dates/"):
        day = dt.date.fromisoformat(name.removeprefix("dates/"))
        if (today - day).days > settings.settle_days:
            return f"public, max-age={settings.archive_max_age}"
    return f"public, max-age={settings.cache_max_age}"


def serve(request: Request, rendition: Rendition, cache: str) -> Response:
    encoding = choose_encoding(request.headers.get("accept-encoding"))
    etag = etag_header(rendition.etag, encoding)
    headers = {
        "ETag": etag,
        "Last-Modified": http_date(rendition.last_modified),
        "Cache-Control": cache,
        "Vary": "Accept-Encoding",
    }
    if is_not_modified(
        request.headers.get("if-none-match"), request.headers.get("if-modified-since"), etag, rendition.last_modified
    ):
        return Response(status_code=304, headers=headers)
    body = {"identity": rendition.body, "gzip": rendition.gzip, "br": rendition.br}[encoding]
    if encoding != "identity":
        headers["Content-Encoding"] = encoding
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        return Response(status_code=200, headers=headers, media_type=rendition.content_type)
    return Response(body, headers=headers, media_type=rendition.content_type)


def create_app(settings: Settings, store: Store | None = None, scheduler: bool = True) -> Starlette:
    """The ASGI app. With `store` given the caller owns it; otherwise the lifespan opens one."""
    state: dict[str, Any] = {"store": store}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = state["store"] is None
        if own:
            state["store"] = await Store.open(settings.database)
        cache = RenditionCache(state["store"], settings.cache_bytes)
        await cache.start()
        state["cache"] = cache
        runner = None
        if scheduler:
            from feeds.scheduler import Refresher

            runner = Refresher(state["store"], settings)
            await runner.start()
        try:
            yield
        finally:
            if runner:
                await runner.stop()
            await cache.stop()
            if own:
                await state["store"].close()

    async def feed(request: Request) -> Response:
        try:
            name, fmt = feed_name(request.path_params["path"])
        except HTTPError as exc:
            return error(exc.status, exc.message)
        rendition = await state["cache"].get(name, fmt)
        if rendition is None:
            what = "date" if name.startswith("dates/") else "topic" if name.startswith("topics/") else "feed"
            return error(404, f"no {what} {name.partition('/')[2] or name!r}")
        return serve(request, rendition, cache_control(settings, name, dt.datetime.now(dt.timezone.utc).date()))

    async def topics(request: Request) -> Response:
        rendition = await state["cache"].get(TOPICS_DOC, "json")
        if rendition is None:
            return JSONResponse([], headers={"Cache-Control": "no-store"})
        return serve(request, rendition, f"public, max-age={settings.cache_max_age}")

    async def healthz(request: Request) -> Response:
        events = await state["store"].count_events()
        return JSONResponse({"status": "ok", "events": events}, headers={"Cache-Control": "no-store"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, f"no such path {request.url.path!r}")

    routes = [
        Route("/feeds/{path:path}", feed, methods=["GET", "HEAD"]),
        Route("/topics", topics, methods=["GET", "HEAD"]),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found})


def app_from_environment() -> Starlette:
    """Factory for server workers started by import string (`feeds serve --workers N`): each
    worker reads the same config (FEEDS_CONFIG and FEEDS_* variables)."""
    import logging

    from feeds import config

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return create_app(config.load())
