"""Right after a first start: a known document not rendered yet is made on its first request (an
unknown one answers 404), and a whole store is rendered most wanted first."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx

from feeds.app import RETRY_AFTER, create_app
from feeds.config import Settings
from feeds.model import FeedKey
from feeds.publish import Paging, publish_all, publish_changes, tiers
from feeds.render.topics import TOPICS_DOC
from feeds.store import Store
from tests.conftest import EXAMPLE, LiveServer
from tests.helpers import read_pages, sql

KNOWN = [
    "/feeds/latest.atom",
    "/feeds/dates/2023-02-06.rss",
    "/feeds/topics/russian-invasion-of-ukraine.json",
    "/feeds/topics/russian-invasion-of-ukraine/pages/1.atom",
    "/feeds/topics/russian-invasion-of-ukraine/pages/2.rss",
]
UNKNOWN = [
    "/feeds/dates/2023-02-10.rss",  # a day with no events
    "/feeds/topics/no-such-topic.atom",
    "/feeds/topics/russian-invasion-of-ukraine/pages/3.atom",  # 11 events, 3 a page: pages 1 and 2
]


async def wait_until(client: httpx.AsyncClient, path: str, status: int) -> httpx.Response:
    for _ in range(200):
        response = await client.get(path)
        if response.status_code == status:
            return response
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path}: {response.status_code}, not {status}")


async def test_known_documents_are_made_on_their_first_request_unknown_ones_404(
    store: Store, settings: Settings
) -> None:
    small = replace(settings, items_per_feed=3, refresh_interval=2)
    result = await store.apply(read_pages(EXAMPLE, source="example"))  # stored, not yet rendered
    # The served app opens the store file itself: one store object is never used from two event
    # loops (the test's and the server thread's; the app's hub and cache read it all the time).
    app = create_app(small, scheduler=False)
    with LiveServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            # Until the first publication the topics index is coming (it lists every topic).
            response = await client.get("/topics")
            assert response.status_code == 503 and response.headers["cache-control"] == "no-store"
            assert response.headers["retry-after"] == str(min(RETRY_AFTER, small.refresh_interval)) == "2"
            # A known document is made when first asked for, once however many ask at once.
            answers = await asyncio.gather(*(client.get(KNOWN[3]) for _ in range(12)))
            assert {a.status_code for a in answers} == {200} and len({a.content for a in answers}) == 1
            assert app.state.made.made == 1
            made = {path: (await client.get(path)).content for path in KNOWN}
            assert all(made.values()) and app.state.made.made == len(KNOWN)
            for path in KNOWN:  # then served as stored bytes
                assert (await client.get(path)).content == made[path]
            assert app.state.made.made == len(KNOWN)
            for path in UNKNOWN:
                response = await client.get(path)
                assert response.status_code == 404 and response.json()["status"] == 404, path
                assert "retry-after" not in response.headers
            # The publication after gives the same bytes (those outside the hot set are marked
            # stale by it, and made again alike).
            await publish_changes(store, small, result.feeds, result.events)
            assert (await wait_until(client, "/topics", 200)).content
            for path in KNOWN:
                assert (await client.get(path)).content == made[path], path
            for path in UNKNOWN:
                assert (await client.get(path)).status_code == 404, path


async def test_an_empty_store_has_no_latest_feed_yet(store: Store, settings: Settings) -> None:
    with LiveServer(create_app(settings, scheduler=False)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            latest = await client.get("/feeds/latest.atom")
            assert latest.status_code == 404 and "retry-after" not in latest.headers
            topics = await client.get("/topics")
            assert topics.status_code == 200 and topics.json() == []


async def test_a_whole_store_is_rendered_latest_first_then_heads_and_dates_then_the_rest(
    store: Store, settings: Settings
) -> None:
    small = replace(settings, items_per_feed=3)
    result = await store.apply(read_pages(EXAMPLE, source="example"))

    async def order() -> list[list[str]]:
        # The `renditions` counter when each document was written: one number per write batch.
        rows = await sql(store, "SELECT feed, max(version) FROM renditions GROUP BY feed")
        written: dict[str, int] = {feed: version for feed, version in rows}
        keys = [FeedKey.parse(n) for n in written if n != TOPICS_DOC]
        latest, heads, pages = tiers(keys)
        assert latest and heads and pages
        assert {k.kind for k in heads} == {"date", "topic"} and all(k.page == 0 for k in heads)
        assert max(written[k.name] for k in latest) < min(written[k.name] for k in heads)
        assert max(written[k.name] for k in heads) <= written[TOPICS_DOC] < min(written[k.name] for k in pages)
        return [[k.name for k in tier] for tier in (latest, heads, pages)]

    # A first start renders the hot documents (feeds.publish.hot), most wanted first ...
    await publish_changes(store, small, result.feeds, result.events)
    hot = await sql(store, "SELECT DISTINCT feed FROM renditions")
    assert "latest" in {n for (n,) in hot} and not [n for (n,) in hot if "/pages/" in n]
    # ... and every document (`feeds publish --all`) in tiers ...
    await sql(store, "DELETE FROM renditions")
    await publish_all(store, small, everything=True)
    first = await order()
    # ... and all of it again (other settings): the same order.
    await publish_all(store, replace(small, base_url="https://other.test"), everything=True)
    assert await order() == first
    topic = await store.topic("russian-invasion-of-ukraine")
    assert topic is not None and Paging(topic.slots, 3).archive_pages == 2
    assert "topics/russian-invasion-of-ukraine/pages/2" in first[2]
