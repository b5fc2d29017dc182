"""A real uvicorn server on 127.0.0.1 serving stored renditions: 200, 304, HEAD, errors, codings."""

from __future__ import annotations

import asyncio
import gzip
import shutil
from dataclasses import replace

import brotli
import httpx
import pytest

from feeds.app import create_app
from feeds.config import Settings
from feeds.refresh import open_sources, refresh_all
from feeds.store import Store
from tests.conftest import OFFSTREAM, LiveServer
from tests.helpers import etags


@pytest.fixture
async def served(store: Store, settings: Settings) -> Settings:
    await refresh_all(store, settings, open_sources(settings.sources))
    return settings


async def test_200_then_304_by_etag_and_by_date(served: Settings) -> None:
    with LiveServer(create_app(served, scheduler=False)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            first = await client.get("/feeds/topics/russian-invasion-of-ukraine.atom")
            assert first.status_code == 200
            assert first.headers["content-type"] == "application/atom+xml; charset=utf-8"
            assert first.headers["cache-control"] == (
                f"public, max-age={served.cache_max_age}, stale-while-revalidate="
                f"{served.cache_stale_while_revalidate}, stale-if-error={served.cache_stale_if_error}"
            )
            assert first.headers["vary"] == "Accept-Encoding"
            etag = first.headers["etag"]
            assert etag.startswith('"') and not etag.startswith("W/")
            again = await client.get(first.url, headers={"If-None-Match": etag})
            assert again.status_code == 304 and again.content == b""
            assert again.headers["etag"] == etag
            by_date = await client.get(first.url, headers={"If-Modified-Since": first.headers["last-modified"]})
            assert by_date.status_code == 304 and by_date.content == b""
            other = await client.get(first.url, headers={"If-None-Match": '"nope"'})
            assert other.status_code == 200 and other.content == first.content


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/feeds/latest.rss", "application/rss+xml; charset=utf-8"),
        ("/feeds/latest.json", "application/feed+json; charset=utf-8"),
        ("/feeds/dates/2023-02-06.atom", "application/atom+xml; charset=utf-8"),
        ("/feeds/topics/2023-turkey-syria-earthquakes.json", "application/feed+json; charset=utf-8"),
    ],
)
async def test_every_kind_of_feed_is_served(served: Settings, path: str, content_type: str) -> None:
    with LiveServer(create_app(served, scheduler=False)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get(path)
            assert response.status_code == 200
            assert response.headers["content-type"] == content_type
            head = await client.head(path)
            assert head.status_code == 200 and head.content == b""
            assert head.headers["etag"] == response.headers["etag"]
            assert head.headers["content-length"] == response.headers["content-length"]


async def test_codings_are_precompressed_with_their_own_etags(served: Settings) -> None:
    with LiveServer(create_app(served, scheduler=False)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            plain = await client.get("/feeds/latest.atom", headers={"Accept-Encoding": "identity"})
            assert "content-encoding" not in plain.headers
            for coding, decode in (("gzip", gzip.decompress), ("br", brotli.decompress)):
                raw = await client.send(
                    client.build_request("GET", "/feeds/latest.atom", headers={"Accept-Encoding": coding}), stream=True
                )
                body = b"".join([chunk async for chunk in raw.aiter_raw()])
                await raw.aclose()
                assert raw.headers["content-encoding"] == coding
                assert decode(body) == plain.content
                assert raw.headers["etag"] != plain.headers["etag"]
                again = await client.get(
                    "/feeds/latest.atom", headers={"Accept-Encoding": coding, "If-None-Match": raw.headers["etag"]}
                )
                assert again.status_code == 304


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/feeds/topics/no-such-topic.rss", 404),
        ("/feeds/dates/1999-12-31.rss", 404),
        ("/feeds/dates/2023-02-30.rss", 400),
        ("/feeds/dates/yesterday.atom", 400),
        ("/feeds/latest.xml", 400),
        ("/feeds/latest", 400),
        ("/nowhere", 404),
    ],
)
async def test_errors_are_short_json(served: Settings, path: str, status: int) -> None:
    with LiveServer(create_app(served, scheduler=False)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get(path)
            assert response.status_code == status
            assert response.headers["content-type"].startswith("application/json")
            body = response.json()
            assert body["status"] == status and body["error"]


async def test_topics_and_healthz(served: Settings) -> None:
    with LiveServer(create_app(served, scheduler=False)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            topics = (await client.get("/topics")).json()
            ukraine = next(t for t in topics if t["slug"] == "russian-invasion-of-ukraine")
            assert ukraine["name"] == "Russian invasion of Ukraine" and ukraine["events"] >= 10
            assert ukraine["updated"].endswith("+00:00")
            assert ukraine["feeds"]["atom"] == f"{served.base_url}/feeds/topics/russian-invasion-of-ukraine.atom"
            feed = await client.get(ukraine["feeds"]["rss"].removeprefix(served.base_url))
            assert feed.status_code == 200
            health = (await client.get("/healthz")).json()
            example = health.pop("sources")["example"]
            assert health == {"status": "ok", "events": 59, "unlisted": 0}
            assert example["last_success"] and example["failing_since"] is None and example["last_error"] is None


async def test_every_answer_forbids_content_sniffing(served: Settings) -> None:
    """Feeds hold source text: no browser may take an answer for anything but its content type,
    whatever the route, status or encoding."""
    with LiveServer(create_app(served, scheduler=False)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            feed = await client.get("/feeds/latest.atom", headers={"Accept-Encoding": "br"})
            again = await client.get("/feeds/latest.atom", headers={"If-None-Match": feed.headers["etag"]})
            answers = [
                feed,
                again,
                await client.head("/feeds/latest.rss"),
                await client.get("/topics"),
                await client.get("/healthz"),
                await client.get("/feeds/latest.xml"),
                await client.get("/feeds/topics/no-such-topic.json"),
                await client.get("/nowhere"),
            ]
    assert [a.status_code for a in answers] == [200, 304, 200, 200, 200, 400, 404, 404]
    assert all(a.headers["x-content-type-options"] == "nosniff" for a in answers)


async def test_refresh_picks_up_a_new_document_and_changes_only_its_feeds(
    store: Store, served: Settings, tree: object
) -> None:
    before = await etags(store, served)
    boat = "news/2018/01/1/a-boat-capsizes-in-the-north-of-indonesian-borneo-with-at-least-8-people-dead.md"
    (tree / "news/2018/01/1").mkdir(parents=True)  # type: ignore[operator]
    shutil.copy(OFFSTREAM / boat, tree / boat)  # type: ignore[operator]
    report = await refresh_all(store, served, open_sources(served.sources))
    assert len(report.result.added) == 1
    after = await etags(store, served)
    changed = {feed for key, tag in after.items() if before.get(key) != tag for feed in [key[0]]}
    # Its day, its topics, the topic list, and the day after it (whose prev-archive link now
    # points to the new day); not `latest`, whose newest events are years later.
    assert changed == {"dates/2018-01-01", "dates/2022-02-24", "topics/indonesia", "topics/borneo", "_topics"}


async def first_ok(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """The first 200 for `path` within ten seconds (or the last answer)."""
    for _ in range(100):
        response = await client.get(path)
        if response.status_code == 200:
            break
        await asyncio.sleep(0.1)
    return response


async def test_scheduler_refreshes_while_serving(store: Store, settings: Settings, tree: object) -> None:
    fast = replace(settings, refresh_interval=1)
    with LiveServer(create_app(fast)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            first = await first_ok(client, "/feeds/latest.json")
            assert first.status_code == 200
            boat = "news/2018/01/1/a-boat-capsizes-in-the-north-of-indonesian-borneo-with-at-least-8-people-dead.md"
            (tree / "news/2018/01/1").mkdir(parents=True)  # type: ignore[operator]
            shutil.copy(OFFSTREAM / boat, tree / boat)  # type: ignore[operator]
            response = await first_ok(client, "/feeds/dates/2018-01-01.json")
            assert response.status_code == 200
            assert "Indonesian Borneo" in response.text
            # A broken source does not take the server down: it keeps serving the last good feeds.
            shutil.rmtree(tree / "news")  # type: ignore[operator]
            await asyncio.sleep(1.5)
            still = await client.get("/feeds/dates/2018-01-01.json")
            assert still.status_code == 200 and still.headers["etag"] == response.headers["etag"]
