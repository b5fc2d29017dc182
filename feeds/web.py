"""The site people land on: the HTML page of every document (`/`, `/news/YYYY/MM/D/index.html`,
`/topics/<slug>[/pages/K]`), served like the feeds from stored bytes; the topics index as HTML or
JSON, searched and paged; OPML; the stylesheet.

What depends on a query (a search of the topics, a chosen OPML list) is made from the stored
topics index on its first request and kept per index version in a bounded cache, with the same
validators and encodings as a stored document.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import html
from collections.abc import Callable
from typing import Any

from cachetools import LRUCache
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from feeds import ondemand, site
from feeds.codec import page_from_json
from feeds.entries import current_entry
from feeds.ids import is_slug, page_path
from feeds.model import Change, DayListing, FeedKey, Page, Rendition
from feeds.pages.write import DAY_WRITERS, WRITERS, archive_url, day_entry, day_url
from feeds.publish.document import encode
from feeds.render import feed_url, page_url
from feeds.render import html as render_html
from feeds.render.html import ICON, STYLESHEET
from feeds.render.topics import TOPICS_DOC
from feeds.responses import NO_STORE, Prepared, cache_control, error, retry_after, serve
from feeds.store import Store

MAX_OPML_TOPICS = 500
MAX_DAY_EVENTS = 10_000  # a day's listing (the archive's busiest days list a few hundred)
GENERATED_BYTES = 32 << 20  # per server process: searches and OPML lists kept ready
_STATIC = {
    name: Prepared.of(encode(name, name, body, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), kind), "public, max-age=86400")
    for name, body, kind in (
        ("style.css", STYLESHEET, "text/css; charset=utf-8"),
        ("icon.svg", ICON, "image/svg+xml"),
    )
}


def prepare_state(state: Any) -> None:
    """What the site keeps per server process: the parsed topics index and what was made from it."""
    state.topic_index = None
    state.generated = LRUCache(GENERATED_BYTES, getsizeof=_cost)


def _cost(item: tuple[Prepared, int]) -> int:
    return item[1]


def wants_html(request: Request) -> bool:
    """Whether the client prefers HTML to JSON (a browser); `*/*` or nothing: JSON, for API clients."""
    weights: dict[str, float] = {}
    for part in request.headers.get("accept", "").split(","):
        kind, *params = part.split(";")
        q = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        weights[kind.strip().lower()] = q
    return max(weights.get("text/html", 0), weights.get("application/xhtml+xml", 0)) > weights.get(
        "application/json", 0
    )


def not_found(request: Request, message: str) -> Response:
    if not wants_html(request):
        return error(404, message)
    body = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Not found</title>'
        '<link rel="stylesheet" href="/static/style.css"></head><body><main id="main"><h1>Not found</h1>'
        f'<p>{html.escape(message)}.</p><p><a href="/">The newest events</a> · <a href="/topics">Every topic</a></p>'
        "</main></body></html>\n"
    )
    return HTMLResponse(body, status_code=404, headers=NO_STORE)


async def page(request: Request, name: str) -> Response:
    state = request.app.state
    document = await state.cache.get(name, "html")
    if document is None:
        return await moved(request, name, "html") or not_found(request, f"nothing at {request.url.path}")
    return serve(request, document)


async def moved(request: Request, name: str, fmt: str) -> Response | None:
    """A topic retired into another (its name became an alias of it) sends its page and feeds to
    the other's (301); its older pages to the other's newest, whose pages are numbered anew."""
    kind, _, rest = name.partition("/")
    if kind != "topics":
        return None
    target = await request.app.state.store.topic_moved_to(rest.partition("/")[0])
    if target is None:
        return None
    name = f"topics/{target}"
    location = page_url("", name) if fmt == "html" else feed_url("", name, fmt)
    return RedirectResponse(location, status_code=301)


async def home(request: Request) -> Response:
    return await page(request, "latest")


async def topic(request: Request) -> Response:
    slug, number = request.path_params["slug"], request.path_params.get("page", "")
    if "+" in slug and not number:
        return await ondemand.answer(request, slug, "html")
    name = topic_page_name(slug, number)
    if name is None:
        return not_found(request, f"no topic page {request.url.path}")
    return await page(request, name)


@functools.lru_cache(maxsize=4096)  # the same pages are asked again and again
def topic_page_name(slug: str, number: str) -> str | None:
    """The document `/topics/<slug>[/pages/<number>]` shows, or None if it cannot be one."""
    if not is_slug(slug) or (number and not (number.isdigit() and number[0] != "0")):
        return None
    return FeedKey("topic", slug, int(number or 0)).name


async def day(request: Request) -> Response:
    """A day at the archive's own shape: the day unpadded (`/news/2018/01/1/index.html`); a padded
    or bare day is sent there. Its listing's twins `index.md|json|xml` are in the shapes the
    ingester reads, made from the day's events when first asked for after the day changed."""
    year, month, number = (request.path_params[k] for k in ("year", "month", "day"))
    ext = request.path_params.get("ext", "html")
    try:
        date = dt.date(int(year), int(month), int(number))
    except ValueError:
        return not_found(request, f"no day {year}/{month}/{number}")
    if ext != "html" and ext not in TWIN_TYPES:
        return not_found(request, f"nothing at {request.url.path}")
    canonical = day_url(date, ext)
    if request.url.path != canonical:
        return RedirectResponse(canonical, status_code=301)
    name = FeedKey("date", date.isoformat()).name
    if ext == "html":
        return await page(request, name)
    state = request.app.state
    if answered := ondemand.recalled(request):
        return answered
    shown = await state.cache.get(name, "html")  # the day as it is published: the twins follow it
    if shown is None:
        return await page(request, name)

    async def render() -> list[Rendition]:
        store = state.store
        members = await store.members(FeedKey("date", date.isoformat()), MAX_DAY_EVENTS)
        events = await store.events_of([m.key for m in members])
        previous = (await store.neighbour_dates(date.isoformat()))[0]
        listing = DayListing(
            path=page_path(canonical) or canonical,
            date=date,
            entries=tuple(day_entry(events[m.key].page) for m in members if m.key in events),
            previous=page_path(day_url(dt.date.fromisoformat(previous), "md")) if previous else None,
        )
        body = DAY_WRITERS[ext](listing)
        return [encode(canonical, ext, body, shown.last_modified, TWIN_TYPES[ext])]

    version = (shown.encodings["identity"].etag, "")
    return await ondemand.kept_or_made(request, f"day:{canonical}", version, ext, render)


TWIN_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "xml": "application/xml; charset=utf-8",
}


async def event(request: Request) -> Response:
    """An event at the archive's own URL, `/news/YYYY/MM/D/<slug>.html` (day padded or not), and its
    twins `.md`, `.json`, `.xml` in the shapes the ingester reads. Every version's slug answers: an
    older one, or a padded day, redirects (301) to the current version's URL."""
    state = request.app.state
    if answered := ondemand.recalled(request):
        return answered
    slug, _, ext = request.path_params["name"].rpartition(".")
    path = page_path("/news/{year}/{month}/{day}/{slug}".format(**request.path_params, slug=slug))
    found = await state.store.event_at(path) if path and (ext == "html" or ext in TWIN_TYPES) else None
    if found is None:
        return not_found(request, f"no event at {request.url.path}")
    key, current, doc, live, rev, updated = found
    if not live:
        return error(410, f"the event at {request.url.path} was removed from its source")
    canonical = archive_url(current, ext)
    if request.url.path != canonical:
        return RedirectResponse(canonical, status_code=301)
    settings = state.settings
    page = page_from_json(doc)
    if ext != "html":
        page = await self_described(state.store, page, key)
    stamp = ""
    if ext == "html":
        made = await current_entry(state.store, settings, key, state.made.memo)
        if made is None:
            return error(410, f"the event at {request.url.path} was removed from its source")
        stamp, fragments = made

    async def render() -> list[Rendition]:
        if ext == "html":
            body = render_html.event_page(
                settings.base_url, settings.title, settings.feed_language, settings.author, page, fragments["html"]
            )
        else:
            body = WRITERS[ext](page)
        return [encode(canonical, ext, body, updated, "text/html; charset=utf-8" if ext == "html" else TWIN_TYPES[ext])]

    return await ondemand.kept_or_made(request, f"event:{canonical}", (str(rev), stamp), ext, render)


async def self_described(store: Store, page: Page, key: str) -> Page:
    """`page` naming its chain's first version, `key`, as the store knows it: a twin ingested
    again is the same event even when the store folded its versions from other pages' lists or
    chose another first version than the page claims."""
    if key == page.path or any(page_path(c.url) == key for c in page.changes):
        return page
    stored = await store.page_doc(key)
    headline = page_from_json(stored).headline if stored else page.headline
    first = Change(headline=headline, url=archive_url(key, "md"), kind="first")
    # A version the page claims first is, in the store's chain, a later one.
    later = tuple(dataclasses.replace(c, kind="update") if c.kind == "first" else c for c in page.changes)
    return dataclasses.replace(page, changes=(first, *later))


async def search_page(request: Request) -> Response:
    return await ondemand.search_answer(request, "html")


async def static(request: Request) -> Response:
    """The stylesheet and the icon: part of the program, so their ETags change with it."""
    found = _STATIC.get(request.path_params["name"])
    return serve(request, found) if found else not_found(request, f"nothing at {request.url.path}")


async def _index(request: Request) -> tuple[Prepared, site.TopicIndex] | Response:
    """The stored topics index, and it parsed for searching (once per version, per process)."""
    state = request.app.state
    stored: Prepared | None = await state.cache.get(TOPICS_DOC, "json")
    if stored is None:
        if await state.store.newest_date() is not None:
            return error(503, "the topics index is being rendered: retry in a few seconds", retry_after(state.settings))
        stored = Prepared.of(
            encode(TOPICS_DOC, "json", b"[]\n", await state.store.created(), "application/json; charset=utf-8"),
            "no-store",
        )
    etag = stored.encodings["identity"].etag
    parsed = state.topic_index
    if parsed is None or parsed[0] != etag:
        index = await asyncio.to_thread(site.TopicIndex.parse, stored.encodings["identity"].body)
        parsed = state.topic_index = (etag, index)
    return stored, parsed[1]


async def _generated(
    request: Request,
    stored: Prepared,
    key: tuple[object, ...],
    fmt: str,
    content_type: str,
    make: Callable[[], bytes | None],
    vary: str,
) -> Response:
    """A document made from the stored index `stored` on first request, kept (under `key`, which
    begins with the index version) while it is current; it is as fresh as the index."""
    state = request.app.state
    cache: LRUCache[tuple[object, ...], tuple[Prepared, int]] = state.generated
    kept = cache.get(key)
    if kept is None:

        def build() -> tuple[Prepared, int] | None:
            body = make()
            if body is None:
                return None
            rendition = encode("_generated", fmt, body, stored.last_modified, content_type)
            control = cache_control(state.settings)
            return Prepared.of(rendition, control, vary), len(body) + len(rendition.gzip) + len(rendition.br)

        built = await asyncio.to_thread(build)
        if built is None:
            return not_found(request, "no such page of topics")
        kept = cache[key] = built
    return serve(request, kept[0])


async def index_answer(request: Request, fmt: str) -> Response:
    found = await _index(request)
    if isinstance(found, Response):
        return found
    stored, index = found
    try:
        query = site.Query.of(dict(request.query_params))
    except ValueError as exc:
        return error(400, str(exc))
    settings = request.app.state.settings
    negotiated = not request.url.path.endswith(".json")
    vary = "Accept, Accept-Encoding" if negotiated else "Accept-Encoding"
    etag = stored.encodings["identity"].etag
    if fmt == "json":
        if not request.query_params:
            if not negotiated:
                return serve(request, stored)
            # The stored bytes, every encoding (`/topics.json`'s), with the negotiation they came
            # through: headers made once per version of the index.
            cache: LRUCache[tuple[object, ...], tuple[Prepared, int]] = request.app.state.generated
            kept = cache.get((etag, "whole"))
            if kept is None:
                kept = cache[(etag, "whole")] = (stored.varied(vary), 1024)
            return serve(request, kept[0])
        return await _generated(
            request,
            stored,
            (etag, "json", query, vary),
            "json",
            "application/json; charset=utf-8",
            lambda: site.topics_json(index, settings.base_url, query),
            vary,
        )
    return await _generated(
        request,
        stored,
        (etag, "html", query),
        "html",
        "text/html; charset=utf-8",
        lambda: site.topics_html(
            settings.base_url, settings.title, settings.feed_language, settings.author, index, query
        ),
        vary,
    )


async def opml(request: Request) -> Response:
    """OPML 2.0 of every topic feed, or of `?topics=a,b,...` (in that order, each once)."""
    found = await _index(request)
    if isinstance(found, Response):
        return found
    stored, index = found
    settings = request.app.state.settings
    wanted = request.query_params.get("topics")
    if wanted is None:
        chosen = list(index.topics)
    else:
        slugs = list(dict.fromkeys(s for s in wanted.split(",") if s))
        if not slugs or len(slugs) > MAX_OPML_TOPICS:
            return error(400, f"topics: name 1 to {MAX_OPML_TOPICS} topic slugs, comma-separated")
        unknown = [s for s in slugs if s not in index.by_slug]
        if unknown:
            return error(404, f"topics: no topic {', '.join(repr(s) for s in unknown[:10])}")
        chosen = [index.by_slug[s] for s in slugs]
    key = (stored.encodings["identity"].etag, "opml", tuple(t.slug for t in chosen) if wanted else None)
    return await _generated(
        request,
        stored,
        key,
        "opml",
        "text/x-opml; charset=utf-8",
        lambda: site.opml(settings.base_url, settings.title, chosen, stored.last_modified),
        "Accept-Encoding",
    )


ROUTES = [
    Route("/", home, methods=["GET", "HEAD"]),
    Route("/topics/{slug}", topic, methods=["GET", "HEAD"]),
    Route("/topics/{slug}/pages/{page}", topic, methods=["GET", "HEAD"]),
    Route("/news/{year:int}/{month}/{day}/index.{ext}", day, methods=["GET", "HEAD"]),
    Route("/news/{year:int}/{month}/{day}/", day, methods=["GET", "HEAD"]),
    Route("/news/{year:int}/{month}/{day}/{name}", event, methods=["GET", "HEAD"]),
    Route("/opml", opml, methods=["GET", "HEAD"]),
    Route("/search", search_page, methods=["GET", "HEAD"]),
    Route("/static/{name}", static, methods=["GET", "HEAD"]),
]
