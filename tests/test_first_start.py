"""Right after a first start: a known document not rendered yet answers 503 with Retry-After (an
unknown one 404), requests never render, and a whole store is rendered most wanted first."""

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


async def test_known_documents_answer_503_until_rendered_unknown_ones_404(store: Store, settings: Settings) -> None:
    small = replace(settings, items_per_feed=3, refresh_interval=2)
    result = await store.apply(read_pages(EXAMPLE, source="example"))  # stored, not yet rendered
    # The served app opens the store file itself: one store object is never used from two event
    # loops (the test's and the server thread's; the app's hub and cache read it all the time).
    with LiveServer(create_app(small, scheduler=False)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for path in [*KNOWN, "/topics"]:
                response = await client.get(path)
                assert response.status_code == 503, path
                # A few seconds, and never longer than a refresh takes to come round.
                assert response.headers["retry-after"] == str(min(RETRY_AFTER, small.refresh_interval)) == "2"
                assert response.headers["cache-control"] == "no-store"
                body = response.json()
                assert body["status"] == 503 and "rendered" in body["error"], body
            for path in UNKNOWN:
                response = await client.get(path)
                assert response.status_code == 404 and response.json()["status"] == 404, path
                assert "retry-after" not in response.headers
            # Asking rendered nothing: the app serves stored bytes only.
            assert not await store.has_renditions()
            await publish_changes(store, small, result.feeds, result.events)
            for path in [*KNOWN, "/topics"]:
                assert (await wait_until(client, path, 200)).content, path
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

    # The first render of a store (a first start) ...
    await publish_changes(store, small, result.feeds, result.events)
    first = await order()
    # ... and all of it again (other settings): the same order.
    await publish_all(store, replace(small, base_url="https://other.test"))
    assert await order() == first
    topic = await store.topic("russian-invasion-of-ukraine")
    assert topic is not None and Paging(topic.slots, 3).archive_pages == 2
    assert "topics/russian-invasion-of-ukraine/pages/2" in first[2]
