"""Combined feeds: `/feeds/topics/a+b+c.{rss,atom,json}` (and the page `/topics/a+b+c`), the newest
events carrying any of the topics, each once. There are too many combinations to render ahead:
one is made on its first request, in every format, and kept in a bounded cache with the headers
of any stored document, until one of its topics' feeds changes (what it shows is always among the
newest events of each topic, which those feeds hold).

The canonical name has the slugs sorted and each once; other spellings are redirected to it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from cachetools import LRUCache
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from feeds import fingerprint
from feeds.config import Settings
from feeds.entries import EntryMemo
from feeds.ids import is_slug
from feeds.model import FeedKey
from feeds.publish.document import render_once
from feeds.render import FeedInfo, feed_url, page_url
from feeds.responses import Prepared, cache_control, error, serve

CACHE_BYTES = 32 << 20  # per server process
MEMO_BYTES = 8 << 20  # entries kept between combined feeds (most share their topics' events)

Version = tuple[str, ...]  # the ETags of the topics' own feeds when it was made
Made = tuple[Version, dict[str, Prepared], int]


class Combined:
    """The combined documents a server process has made, by canonical name."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.items: LRUCache[str, Made] = LRUCache(max_bytes, getsizeof=_cost)
        self.memo = EntryMemo(MEMO_BYTES)
        self._making: dict[tuple[str, Version], asyncio.Future[Made]] = {}


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
    settings: Settings = state.settings
    try:
        slugs = slugs_of(value, settings)
    except ValueError as exc:
        status, message = exc.args
        return error(status, message)
    heads = [await state.cache.get(f"topics/{slug}", "json") for slug in slugs]
    missing = [slug for slug, head in zip(slugs, heads, strict=True) if head is None]
    if missing:
        return error(404, f"no topic {missing[0]!r}")
    name = "topics/" + "+".join(slugs)
    if "+".join(slugs) != value:
        target = page_url("", name) if fmt == "html" else feed_url("", name, fmt)
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(target + query, status_code=301)
    version = tuple(head.encodings["identity"].etag for head in heads)
    combined: Combined = state.combined
    made = combined.items.get(name)
    if made is None or made[0] != version:
        made = await _make(state, name, slugs, version)
    return serve(request, made[1][fmt])


async def _make(state: Any, name: str, slugs: list[str], version: Version) -> Made:
    """Made once for all the requests that wait for it."""
    combined: Combined = state.combined
    key = (name, version)
    making = combined._making.get(key)
    if making is None:
        making = combined._making[key] = asyncio.ensure_future(_render(state, name, slugs, version))
        making.add_done_callback(lambda _: combined._making.pop(key, None))
    made = await asyncio.shield(making)
    combined.items[name] = made
    return made


async def _render(state: Any, name: str, slugs: list[str], version: Version) -> Made:
    store, settings = state.store, state.settings
    topics = [await store.topic(slug) for slug in slugs]
    names = [t.name if t else slug for t, slug in zip(topics, slugs, strict=True)]
    members = await store.combined_members(slugs, settings.items_per_feed)
    info = FeedInfo(
        name=name,
        title=f"{settings.title}: {' + '.join(names)}",
        description=f"Events about {', '.join(names[:-1])} or {names[-1]}",
        base_url=settings.base_url,
        updated=max((m.updated for m in members), default=await store.created()),
        ttl_minutes=fingerprint.ttl_minutes(settings),
        author=settings.author,
        language=settings.feed_language,
        site=settings.title,
        subject=" + ".join(names),
    )
    renditions = await render_once(store, settings, info, members, state.combined.memo)
    control = cache_control(settings, FeedKey("topic", slugs[0]).name, dt.date.today())
    prepared = {r.fmt: Prepared.of(r, control) for r in renditions}
    cost = sum(len(r.body) + len(r.gzip) + len(r.br) for r in renditions)
    return version, prepared, cost
