"""Combined feeds over real HTTP: `/feeds/topics/a+b.{fmt}` holds the newest events carrying any of
the topics, each once, in every format alike; one canonical URL; made once and kept until one of
its topics changes."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import httpx

from feeds.app import create_app
from feeds.config import Settings
from feeds.store import Store
from tests.conftest import LiveServer, free_port
from tests.helpers import entries
from tests.test_site import HTML, ingest, parse

AVDIIVKA = (
    "news/2024/02/17/ukraine-withdraws-its-troops-from-the-eastern-city-of-avdiivka-in-donetsk-oblast-giving-"
    "russia-its-biggest-territorial-gain-since-the-captu.md"
)


async def test_a_combined_feed_holds_each_event_of_its_topics_once(
    store: Store, settings: Settings, tree: Path
) -> None:
    port = free_port()
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}", items_per_feed=8, max_combined_topics=3)
    await ingest(store, settings)
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            separate = {
                slug: entries("atom", (await client.get(f"/feeds/topics/{slug}.atom")).content)
                for slug in ("russia", "ukraine")
            }
            union = {str(e["id"]) for shown in separate.values() for e in shown}
            combined = await client.get("/feeds/topics/russia+ukraine.atom")
            assert combined.status_code == 200 and combined.headers["vary"] == "Accept-Encoding"
            shown = {
                fmt: entries(fmt, (await client.get(f"/feeds/topics/russia+ukraine.{fmt}")).content)
                for fmt in ("rss", "atom", "json")
            }
            ids = [str(e["id"]) for e in shown["atom"]]
            assert len(ids) == len(set(ids)) == min(8, len(union)) and set(ids) <= union
            assert (
                [str(e["title"]) for e in shown["rss"]]
                == [str(e["title"]) for e in shown["json"]]
                == [str(e["title"]) for e in shown["atom"]]
            )
            assert all({"Russia", "Ukraine"} & set(e["tags"]) for e in shown["atom"])  # type: ignore[arg-type]
            # One canonical URL; its page links the combined feeds.
            other = await client.get("/feeds/topics/ukraine+russia+ukraine.atom")
            assert other.status_code == 301 and other.headers["location"] == "/feeds/topics/russia+ukraine.atom"
            doc = parse(await client.get("/topics/russia+ukraine", headers=HTML))
            assert doc.findtext(".//h1") == "Russia + Ukraine"
            alternates = doc.xpath("//head/link[@rel='alternate']/@href")
            assert f"{server.url}/feeds/topics/russia+ukraine.atom" in alternates
            # Bad requests say what is wrong.
            missing = await client.get("/feeds/topics/russia+no-such-topic.atom")
            assert missing.status_code == 404 and missing.json()["error"] == "no topic 'no-such-topic'"
            many = await client.get("/feeds/topics/a+b+c+d.atom")
            assert many.status_code == 400 and "max_combined_topics" in many.json()["error"]
            # Served like any feed: made once, then validators answer 304.
            again = await client.get(combined.url, headers={"If-None-Match": combined.headers["etag"]})
            assert again.status_code == 304


async def test_a_combined_feed_follows_a_change_to_one_of_its_topics(
    store: Store, settings: Settings, tree: Path
) -> None:
    port = free_port()
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}")
    await ingest(store, settings)
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            before = await client.get("/feeds/topics/russia+ukraine.json")
            page = tree / AVDIIVKA
            page.write_text(page.read_text().replace("Ukraine withdraws its troops", "Ukraine pulls its troops back"))
            await ingest(store, settings)
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                after = await client.get("/feeds/topics/russia+ukraine.json")
                if after.headers["etag"] != before.headers["etag"]:
                    break
                assert asyncio.get_running_loop().time() < deadline, "the combined feed never changed"
                await asyncio.sleep(0.1)
            titles = [i["title"] for i in after.json()["items"]]
            assert any(t.startswith("Ukraine pulls its troops back") for t in titles)
            assert not any(t.startswith("Ukraine withdraws its troops") for t in titles)
