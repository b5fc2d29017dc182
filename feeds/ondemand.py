"""Documents made on request, for there are too many to render ahead; each is made on its first
request, in every format (feeds and page), and kept in a bounded cache with the headers of any
stored document until what it shows may have changed.

- Combined feeds `/feeds/topics/a+b+c.{rss,atom,json}` (page `/topics/a+b+c`): the newest events
  carrying any of the topics, each once. Kept until one of its topics' feeds changes (what it shows
  is always among the newest events of each topic, which those feeds hold). The canonical name has
  the slugs sorted, each once; other spellings are redirected to it.
- Search feeds `/feeds/search.{rss,atom,json}?q=...` (page `/search?q=...`): the newest events
  matching a full-text query (feeds/search.py). Kept until any document changes. The canonical
  query is the normalised one; other spellings are redirected to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from cachetools import LRUCache
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from feeds import fingerprint, search
from feeds.config import Settings
from feeds.entries import EntryMemo
from feeds.ids import is_slug
from feeds.model import Member, Rendition
from feeds.publish.document import render_once
from feeds.render import FeedInfo, feed_url, page_url
from feeds.responses import Prepared, cache_control, error, serve

CACHE_BYTES = 32 << 20  # per server process
MEMO_BYTES = 8 << 20  # entries kept between combined feeds (most share their topics' events)
MAX_RECALLED = 10_000  # requests answered from what they were last answered with, per store version

Version = tuple[str, ...]  # the ETags of the topics' own feeds when it was made
Made = tuple[Version, dict[str, Prepared], int]


class OnDemand:
    """The documents made on request that a server process keeps, by canonical name."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.items: LRUCache[str, Made] = LRUCache(max_bytes, getsizeof=_cost)
        self.memo = EntryMemo(MEMO_BYTES)
        self._making: dict[tuple[str, Version], asyncio.Future[Made]] = {}
        # (path, query) -> what it was answered with while the store's documents stood still: no
        # document changed, so nothing it shows did; asked again, it needs no parsing or lookup.
        # Names of kept documents, not the documents: memory stays bounded by `items`.
        self._recalled: dict[tuple[str, bytes], tuple[str, Version, str]] = {}
        self._recalled_at: object = None

    def recall(self, request: Request) -> Response | None:
        """The answer to a request asked before since the last change of any document, or None."""
        version = request.app.state.cache.version
        if version != self._recalled_at:
            self._recalled.clear()
            self._recalled_at = version
            return None
        found = self._recalled.get((request.scope["path"], request.scope["query_string"]))
        if found is None:
            return None
        key, made_as, fmt = found
        made = self.items.get(key)
        return serve(request, made[1][fmt]) if made is not None and made[0] == made_as else None

    def _remember(self, request: Request, version: object, key: str, made: Made, fmt: str) -> None:
        if version == self._recalled_at == request.app.state.cache.version and len(self._recalled) < MAX_RECALLED:
            self._recalled[(request.scope["path"], request.scope["query_string"])] = (key, made[0], fmt)


def recalled(request: Request) -> Response | None:
    """OnDemand.recall of the request's server process."""
    ondemand: OnDemand = request.app.state.ondemand
    return ondemand.recall(request)


def _cost(made: Made) -> int:
    return made[2]


def slugs_of(value: str, settings: Settings) -> list[str]:
    """The topics of `a+b+c`, sorted and each once; ValueError (status, message) if it cannot be one."""
    slugs = value.split("+")
    bad = [s for s in slugs if not is_slug(s)]
    if bad:
        raise ValueError(404, f"no topic {bad[0]!r}")
    unique = sorted(set(slugs))
    if len(unique) > settings.max_combined_topics:
        raise ValueError(400, f"at most {settings.max_combined_topics} topics in one feed (max_combined_topics)")
    return unique


async def answer(request: Request, value: str, fmt: str) -> Response:
    """The combined document `value` (`a+b`) in format `fmt` (a feed format or `html`)."""
    state = request.app.state
    if answered := recalled(request):
        return answered
    settings: Settings = state.settings
    try:
        slugs = slugs_of(value, settings)
    except ValueError as exc:
        status, message = exc.args
        return error(status, message)
    heads = [await state.cache.get(f"topics/{slug}", "json") for slug in slugs]
    missing = [slug for slug, head in zip(slugs, heads, strict=True) if head is None]
    if missing:
        # A topic retired into another (an alias): the combined feed of the topics it joined.
        moved = {slug: await state.store.topic_moved_to(slug) for slug in missing}
        if gone := [slug for slug, target in moved.items() if target is None]:
            return error(404, f"no topic {gone[0]!r}")
        slugs = sorted({moved.get(slug) or slug for slug in slugs})
        if len(slugs) == 1:
            return RedirectResponse(
                page_url("", f"topics/{slugs[0]}") if fmt == "html" else feed_url("", f"topics/{slugs[0]}", fmt), 301
            )
    name = "topics/" + "+".join(slugs)
    if "+".join(slugs) != value:
        target = page_url("", name) if fmt == "html" else feed_url("", name, fmt)
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(target + query, status_code=301)
    version = tuple(head.encodings["identity"].etag for head in heads)
    return await kept_or_made(request, name, version, fmt, lambda: _combined(state, name, slugs))


async def search_answer(request: Request, fmt: str) -> Response:
    """The search document for `?q=` in format `fmt` (a feed format or `html`)."""
    state = request.app.state
    if answered := recalled(request):
        return answered
    given = request.query_params.get("q", "")
    try:
        canonical, match = search.parse(given)
    except ValueError as exc:
        return error(400, str(exc))
    # Served at one URL only (another spelling of it redirects there), which its self links name.
    if request.url.query != search.query_string(canonical):
        return RedirectResponse(f"{request.url.path}?{search.query_string(canonical)}", status_code=301)
    version = tuple(str(n) for n in state.cache.version)
    return await kept_or_made(request, f"search?q={canonical}", version, fmt, lambda: _search(state, canonical, match))


async def kept_or_made(
    request: Request, key: str, version: Version, fmt: str, render: Callable[[], Awaitable[list[Rendition]]]
) -> Response:
    """The kept document `key` if it is of `version`, else made (once for all who wait for it)."""
    ondemand: OnDemand = request.app.state.ondemand
    seen = request.app.state.cache.version
    made = ondemand.items.get(key)
    if made is None or made[0] != version:
        making = ondemand._making.get((key, version))
        if making is None:
            settings: Settings = request.app.state.settings
            making = asyncio.ensure_future(_prepared(settings, version, render))
            ondemand._making[(key, version)] = making
            making.add_done_callback(lambda _: ondemand._making.pop((key, version), None))
        made = await asyncio.shield(making)
        ondemand.items[key] = made
    ondemand._remember(request, seen, key, made, fmt)
    return serve(request, made[1][fmt])


async def _prepared(settings: Settings, version: Version, render: Callable[[], Awaitable[list[Rendition]]]) -> Made:
    renditions = await render()
    control = cache_control(settings)
    prepared = {r.fmt: Prepared.of(r, control) for r in renditions}
    return version, prepared, sum(len(r.body) + len(r.gzip) + len(r.br) for r in renditions)


async def _search(state: Any, query: str, match: str) -> list[Rendition]:
    store, settings = state.store, state.settings
    members = await store.search_members(match, settings.items_per_feed)
    info = await _info(
        state,
        members,
        name="search",
        title=f"{settings.title}: {query}",
        description=f"The newest events mentioning {query}",
        subject=f"Events mentioning {query}",
        query=query,
    )
    return await render_once(store, settings, info, members, state.ondemand.memo)


async def _combined(state: Any, name: str, slugs: list[str]) -> list[Rendition]:
    store, settings = state.store, state.settings
    topics = [await store.topic(slug) for slug in slugs]
    names = [t.name if t else slug for t, slug in zip(topics, slugs, strict=True)]
    members = await store.combined_members(slugs, settings.items_per_feed)
    info = await _info(
        state,
        members,
        name=name,
        title=f"{settings.title}: {' + '.join(names)}",
        description=f"Events about {', '.join(names[:-1])} or {names[-1]}",
        subject=" + ".join(names),
    )
    return await render_once(store, settings, info, members, state.ondemand.memo)


async def _info(state: Any, members: list[Member], **fields: str) -> FeedInfo:
    """A made-on-request document's description: what every feed of this server says, and `fields`."""
    settings: Settings = state.settings
    return FeedInfo(
        base_url=settings.base_url,
        updated=max((m.updated for m in members), default=await state.store.created()),
        ttl_minutes=fingerprint.ttl_minutes(settings),
        author=settings.author,
        language=settings.feed_language,
        site=settings.title,
        **fields,  # type: ignore[arg-type]
    )
