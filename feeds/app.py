"""The HTTP app: Starlette routes serving stored renditions. Requests never render.

`/feeds/latest.{rss,atom,json}`, `/feeds/dates/{YYYY-MM-DD}.{fmt}`, `/feeds/topics/{slug}.{fmt}`,
`/feeds/topics/{slug}/pages/{n}.{fmt}`, `/topics`, `/healthz`. Every feed answer carries a strong per-encoding ETag, Last-Modified (the
newest change of its content), Cache-Control and `Vary: Accept-Encoding`; validators answer 304.
A document the store can show but has not rendered yet (a first start) answers 503 with
Retry-After; one it cannot show answers 404.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from feeds.cache import RenditionCache
from feeds.conditional import choose_encoding, etag_header, http_date, is_not_modified
from feeds.config import Settings
from feeds.errors import FeedsError
from feeds.ids import is_slug
from feeds.model import FORMATS, FeedKey, Rendition
from feeds.publish import Paging
from feeds.render.topics import TOPICS_DOC
from feeds.store import Store


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


# Every answer says what it is and is taken as that (no content sniffing of source text).
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
NO_STORE = {"Cache-Control": "no-store", **NOSNIFF}


def error(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = dict(NO_STORE)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


RETRY_AFTER = 5  # seconds a reader is asked to wait for a document being rendered


async def pending(store: Store, settings: Settings, name: str) -> bool:
    """Whether the store holds what document `name` shows though it has no rendition yet (a
    first start, or a page that has just filled): such a document is coming, it is no 404."""
    key = FeedKey.parse(name)
    if key.kind == "latest":
        return await store.newest_date() is not None
    if key.kind == "date":
        return bool(await store.members(key, 1))
    topic = await store.topic(key.value)
    if topic is None or not topic.events:
        return False
    return key.page <= Paging(topic.slots, settings.items_per_feed).archive_pages


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
        # The path arrives percent-decoded (UTF-8): a slug in another script is asked for either
        # way, `/feeds/topics/%E4%B8%96%E8%A1%9B.atom` or `/feeds/topics/世衛.atom`.
        if not is_slug(slug):
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


@dataclass(frozen=True)
class Representation:
    """One encoding of one stored document, with its response headers built once."""

    body: bytes
    etag: str
    ok: list[tuple[bytes, bytes]]
    not_modified: list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Prepared:
    """A stored document as the app serves it: every header made when it enters the cache, so a
    request costs a lookup and a comparison of validators."""

    last_modified: dt.datetime
    encodings: dict[str, Representation]

    @classmethod
    def of(cls, rendition: Rendition, cache: str) -> Prepared:
        common = [
            (b"last-modified", http_date(rendition.last_modified).encode()),
            (b"cache-control", cache.encode()),
            (b"vary", b"Accept-Encoding"),
            (b"x-content-type-options", b"nosniff"),
        ]
        encodings = {}
        for encoding, body in (("identity", rendition.body), ("gzip", rendition.gzip), ("br", rendition.br)):
            etag = etag_header(rendition.etag, encoding)
            validators = [(b"etag", etag.encode()), *common]
            ok = [(b"content-type", rendition.content_type.encode()), (b"content-length", str(len(body)).encode())]
            if encoding != "identity":
                ok.append((b"content-encoding", encoding.encode()))
            encodings[encoding] = Representation(body, etag, ok + validators, validators)
        return cls(rendition.last_modified, encodings)


class RawResponse(Response):
    """A response whose headers are already encoded (Starlette would encode them per request)."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
        self.status_code = status
        self.raw_headers = headers
        self.body = body
        self.background = None


def serve(request: Request, document: Prepared) -> Response:
    representation = document.encodings[choose_encoding(request.headers.get("accept-encoding"))]
    if is_not_modified(
        request.headers.get("if-none-match"),
        request.headers.get("if-modified-since"),
        representation.etag,
        document.last_modified,
    ):
        return RawResponse(304, representation.not_modified)
    body = b"" if request.method == "HEAD" else representation.body
    return RawResponse(200, representation.ok, body)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Opens the store unless the caller gave one, fills the cache, starts the scheduler."""
    state = app.state
    settings: Settings = state.settings
    own = state.store is None
    if own:
        try:
            state.store = await Store.open(settings.database)
        except FeedsError as exc:
            cannot_start(str(exc))
            raise
    today = dt.datetime.now(dt.UTC).date

    def prepare(rendition: Rendition) -> Prepared:
        if rendition.feed == TOPICS_DOC:
            return Prepared.of(rendition, f"public, max-age={settings.cache_max_age}")
        return Prepared.of(rendition, cache_control(settings, rendition.feed, today()))

    state.cache = RenditionCache(state.store, settings.cache_bytes, prepare)
    await state.cache.start()
    runner = None
    if state.run_scheduler:
        from feeds.scheduler import Refresher

        runner = Refresher(state.store, settings)
        await runner.start()
    try:
        yield
    finally:
        if runner:
            await runner.stop()
        await state.cache.stop()
        if own:
            await state.store.close()
            state.store = None


def retry_after(settings: Settings) -> int:
    return min(RETRY_AFTER, settings.refresh_interval)


async def feed(request: Request) -> Response:
    state = request.app.state
    try:
        name, fmt = feed_name(request.path_params["path"])
    except HTTPError as exc:
        return error(exc.status, exc.message)
    document = await state.cache.get(name, fmt)
    if document is None:
        if await pending(state.store, state.settings, name):
            message = f"feed {name!r} is being rendered: retry in a few seconds"
            return error(503, message, retry_after(state.settings))
        what = "date" if name.startswith("dates/") else "topic" if name.startswith("topics/") else "feed"
        return error(404, f"no {what} {name.partition('/')[2] or name!r}")
    return serve(request, document)


async def topics(request: Request) -> Response:
    state = request.app.state
    document = await state.cache.get(TOPICS_DOC, "json")
    if document is None:
        if await state.store.newest_date() is not None:
            message = "the topics index is being rendered: retry in a few seconds"
            return error(503, message, retry_after(state.settings))
        return JSONResponse([], headers=NO_STORE)
    return serve(request, document)


async def healthz(request: Request) -> Response:
    store = request.app.state.store
    body = {"status": "ok", "events": await store.count_events(), "unlisted": await store.unlisted()}
    return JSONResponse(body, headers=NO_STORE)


async def not_found(request: Request, exc: Exception) -> Response:
    return error(404, f"no such path {request.url.path!r}")


ROUTES = [
    Route("/feeds/{path:path}", feed, methods=["GET", "HEAD"]),
    Route("/topics", topics, methods=["GET", "HEAD"]),
    Route("/healthz", healthz, methods=["GET", "HEAD"]),
]


def create_app(settings: Settings, store: Store | None = None, scheduler: bool = True) -> Starlette:
    """The ASGI app. With `store` given the caller owns it; otherwise the lifespan opens one."""
    app = Starlette(routes=ROUTES, lifespan=lifespan, exception_handlers={404: not_found})
    app.state.settings = settings
    app.state.store = store
    app.state.run_scheduler = scheduler
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

    configure_logging(os.environ.get("FEEDS_VERBOSE") == "1")
    tune_gc()
    try:
        settings = config.load()
    except FeedsError as exc:
        cannot_start(str(exc))
        raise
    return create_app(settings)
