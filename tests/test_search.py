"""Full-text search: queries parsed into one canonical form, the FTS5 index kept with every batch
(and rebuilt for a store that has none), and search feeds over real HTTP that follow changes."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path

import feedparser
import httpx
import pytest
from lxml import etree

from feeds.app import create_app
from feeds.config import Settings
from feeds.render.atom import ATOM_NS as ATOM
from feeds.search import parse
from feeds.store import Store
from tests.conftest import OFFSTREAM_ZH, LiveServer, free_port
from tests.helpers import entries, read_pages
from tests.test_combined import AVDIIVKA
from tests.test_site import HTML, ingest
from tests.test_site import parse as parse_page


@pytest.mark.parametrize(
    ("query", "canonical", "match"),
    [
        ("Ukraine", "ukraine", '"Ukraine"'),  # FTS5 folds case itself
        ("  ukrain*  ", "ukrain*", '"ukrain"*'),
        ('"Russian invasion" OR Erdoğan', '"russian invasion" OR erdoğan', '"Russian invasion" OR "Erdoğan"'),
        ("Russo-Ukrainian war", '"russo ukrainian" war', '"Russo Ukrainian" "war"'),
        ("OR sudan OR", "sudan", '"sudan"'),
        ("起訴", '"起訴"', '"起 诉"'),
    ],
)
def test_a_query_has_one_canonical_form(query: str, canonical: str, match: str) -> None:
    assert parse(query) == (canonical, match)


@pytest.mark.parametrize(
    ("query", "problem"), [("", "q: say what"), ("- ... -", "q: no words"), ("x" * 201, "q: at most")]
)
def test_a_query_that_cannot_be_searched_is_refused_naming_q(query: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse(query)


async def test_chinese_is_found_in_either_script_inside_longer_runs(store: Store) -> None:
    await store.apply(read_pages(OFFSTREAM_ZH))
    for query in ("起訴", "起诉", "林戴安"):
        found = await store.search_members(parse(query)[1], 10)
        assert any("林戴安" in m.key for m in found), query


async def test_a_store_without_an_index_is_indexed_when_opened(store: Store, settings: Settings) -> None:
    await ingest(store, settings)
    await store.close()
    conn = sqlite3.connect(settings.database)
    conn.executescript("DROP TABLE search; DELETE FROM meta WHERE key = 'search_index';")
    conn.close()
    reopened = await Store.open(settings.database)
    try:
        found = await reopened.search_members(parse("erdogan")[1], 10)
        assert len(found) == 3
    finally:
        await reopened.close()


async def test_a_search_feed_finds_a_conflict_under_every_name_and_follows_changes(
    store: Store, settings: Settings, tree: Path
) -> None:
    port = free_port()
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}", items_per_feed=30)
    await ingest(store, settings)
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            moved = await client.get("/feeds/search.atom", params={"q": "Ukrain*"})
            assert moved.status_code == 301 and moved.headers["location"] == "/feeds/search.atom?q=ukrain*"
            feed = await client.get("/feeds/search.atom?q=ukrain*")
            shown = entries("atom", feed.content)
            tags = set().union(*(e["tags"] for e in shown))  # type: ignore[arg-type]
            assert {"Ukraine", "Russian invasion of Ukraine"} <= tags
            topic = entries("atom", (await client.get("/feeds/topics/russian-invasion-of-ukraine.atom")).content)
            assert {e["id"] for e in topic} <= {e["id"] for e in shown}
            # Diacritics folded: erdogan finds Erdoğan; the feed's links carry its query.
            erdogan = (await client.get("/feeds/search.json", params={"q": "erdogan"})).json()
            assert len(erdogan["items"]) == 3 and erdogan["feed_url"] == f"{server.url}/feeds/search.json?q=erdogan"
            assert erdogan["home_page_url"] == f"{server.url}/search?q=erdogan"
            page = parse_page(await client.get("/search", params={"q": "erdogan"}, headers=HTML))
            assert len(page.xpath("//article[@class='event']")) == 3
            assert f"{server.url}/feeds/search.rss?q=erdogan" in page.xpath("//head/link[@rel='alternate']/@href")
            assert (await client.get("/feeds/search.rss", params={"q": ""})).status_code == 400
            again = await client.get(feed.url, headers={"If-None-Match": feed.headers["etag"]})
            assert again.status_code == 304
            # A new word in a page is found once the change is stored.
            path = tree / AVDIIVKA
            path.write_text(
                path.read_text().replace("Ukraine withdraws its troops", "Ukraine withdraws its zzyzx troops")
            )
            await ingest(store, settings)
            deadline = asyncio.get_running_loop().time() + 10
            while not (found := (await client.get("/feeds/search.json", params={"q": "zzyzx"})).json()["items"]):
                assert asyncio.get_running_loop().time() < deadline, "the search feed never saw the change"
                await asyncio.sleep(0.1)
            assert [i["title"][:40] for i in found] == ["Ukraine withdraws its zzyzx troops from "]


async def test_a_search_feeds_self_link_is_the_url_it_is_served_at(store: Store, settings: Settings) -> None:
    """A search is served at one URL, written as a browser's form writes it (`*` kept, spaces
    as `+`), and every format's self link names exactly that URL (the W3C validator's
    SelfDoesntMatchLocation); any other spelling of the query redirects there."""
    port = free_port()
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}")
    await ingest(store, settings)
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for query, served in (("ukrain*", "q=ukrain*"), ("Ukrain*  OR  russia", "q=ukrain*+OR+russia")):
                for fmt in ("atom", "rss", "json"):
                    # httpx writes `*` as `%2A`: the spelling the self link used to name.
                    moved = await client.get(f"/feeds/search.{fmt}", params={"q": query})
                    url = f"{server.url}/feeds/search.{fmt}?{served}"
                    assert moved.status_code == 301 and server.url + moved.headers["location"] == url
                    response = await client.get(url)
                    assert response.status_code == 200 and str(response.url) == url
                    if fmt == "json":
                        assert response.json()["feed_url"] == url
                        continue
                    parsed = feedparser.parse(response.content)
                    assert parsed.bozo == 0 and parsed.entries
                    selves = [link.href for link in parsed.feed.links if link.rel == "self"]
                    assert selves == [url], (fmt, selves)
                    # As the conformance tests read it: one atom:link rel=self, this URL.
                    root = etree.fromstring(response.content)
                    hrefs = root.xpath("//atom:link[@rel='self']/@href", namespaces={"atom": ATOM})
                    assert hrefs == [url]
