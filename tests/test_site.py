"""The site people land on, over real HTTP: the front page, day and topic pages (stored documents,
served with the feeds' validators), the topics index as HTML and JSON with search, OPML read by
listparser, and source text that cannot inject markup into any page."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import feedparser
import html5lib
import httpx
import listparser
import pytest
from lxml import html as lxml_html

from feeds.app import create_app
from feeds.config import Settings
from feeds.site import TopicIndex
from feeds.store import Store
from tests.conftest import DATA, LiveServer, free_port
from tests.helpers import refresh_once

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}  # a browser's
FEED_TYPES = {"application/rss+xml", "application/atom+xml", "application/feed+json"}


async def ingest(store: Store, settings: Settings, clean: bool = True) -> None:
    """Refresh every configured source once; `clean`: and nothing was reported."""
    report = await refresh_once(store, settings)
    assert report.problems == [] or not clean


@pytest.fixture
async def site(store: Store, settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The example, ingested and served at the base URL its documents name."""
    port = free_port()
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}")
    await ingest(store, settings)
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=HTML) as client:
            yield client, server.url


def parse(response: httpx.Response) -> Any:
    """A page as lxml reads it, after html5lib found it well-formed HTML (strict: any parse error raises)."""
    assert response.status_code == 200, (response.url, response.status_code, response.text[:300])
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html5lib.HTMLParser(strict=True).parse(response.content)
    return lxml_html.fromstring(response.content)


def check_page(doc: Any, canonical: str) -> None:
    """What every page has: title, canonical link, Open Graph, landmarks, one h1, alt text."""
    assert doc.findtext(".//title").strip()
    assert doc.xpath("string(//link[@rel='canonical']/@href)") == canonical
    assert doc.xpath("string(//meta[@property='og:url']/@content)") == canonical
    assert doc.xpath("string(//meta[@property='og:title']/@content)")
    assert doc.xpath("string(/html/@lang)")
    assert len(doc.xpath("//main")) == 1 and len(doc.xpath("//h1")) == 1
    assert doc.xpath("//header") and doc.xpath("//footer") and doc.xpath("//form[@role='search']")
    assert all(img.get("alt") for img in doc.xpath("//img"))
    assert not doc.xpath("//script")


async def check_feeds_discovered(client: httpx.AsyncClient, doc: Any, page: str) -> None:
    """Autodiscovery: one alternate link per format, each a feed whose home link is this page."""
    alternates = doc.xpath("//head/link[@rel='alternate']")
    assert {link.get("type") for link in alternates} == FEED_TYPES
    for link in alternates:
        feed = await client.get(link.get("href"))
        assert feed.status_code == 200 and feed.headers["content-type"].startswith(link.get("type"))
        if link.get("type") == "application/feed+json":
            assert feed.json()["home_page_url"] == page
        else:
            parsed = feedparser.parse(feed.content)
            assert parsed.bozo == 0 and parsed.feed.link == page


async def test_the_front_page_shows_the_newest_events_and_offers_the_latest_feeds(
    site: tuple[httpx.AsyncClient, str],
) -> None:
    client, base = site
    response = await client.get("/")
    doc = parse(response)
    check_page(doc, f"{base}/")
    await check_feeds_discovered(client, doc, f"{base}/")
    events = doc.xpath("//article[@class='event']")
    assert len(events) == 20  # items_per_feed
    days = [h.text_content() for h in doc.xpath("//section[@class='day']/h2")]
    assert days and days[0] == "Wednesday, 6 November 2024"
    # Topic and day links lead to pages that exist.
    links = {a.get("href") for a in doc.xpath("//article//span[@class='topics']/a | //section/h2/a")}
    assert len(links) > 5
    for href in sorted(links):
        assert (await client.get(href)).status_code == 200, href
    # Served like a feed: validators, 304, encodings.
    assert response.headers["vary"] == "Accept-Encoding" and response.headers["etag"].endswith('-br"')
    again = await client.get("/", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


async def test_day_pages_at_the_archive_shape_link_their_neighbours(site: tuple[httpx.AsyncClient, str]) -> None:
    client, base = site
    padded = await client.get("/news/2023/02/06/index.html")
    assert padded.status_code == 301 and padded.headers["location"] == "/news/2023/02/6/index.html"
    page = f"{base}/news/2023/02/6/index.html"
    doc = parse(await client.get(page))
    check_page(doc, page)
    await check_feeds_discovered(client, doc, page)
    assert doc.findtext(".//h1") == "Events of Monday, 6 February 2023"
    pager = {a.get("rel"): a.get("href") for a in doc.xpath("//nav[@class='pager']/a")}
    assert set(pager) == {"prev", "next"}
    for href in pager.values():
        assert (await client.get(href)).status_code == 200
    assert (await client.get("/news/2023/02/30/index.html")).status_code == 404
    assert (await client.get("/news/1999/01/1/index.html")).status_code == 404


async def test_a_topic_page_has_its_history_chart_related_topics_and_subscriptions(
    site: tuple[httpx.AsyncClient, str],
) -> None:
    client, base = site
    page = f"{base}/topics/russian-invasion-of-ukraine"
    doc = parse(await client.get(page))
    check_page(doc, page)
    await check_feeds_discovered(client, doc, page)
    assert doc.findtext(".//h1") == "Russian invasion of Ukraine"
    # Every month from the first event (2022-02) to the last (2024-02), empty ones too.
    bars = doc.xpath("//figure[@class='chart']//*[local-name()='rect']")
    assert len(bars) == 25
    titles = [b.findtext("{http://www.w3.org/2000/svg}title") or b.findtext("title") for b in bars]
    assert titles[0] == "2022-02: 7" and sum(int(t.rsplit(": ", 1)[1]) for t in titles) == 11
    related = [a.text_content() for a in doc.xpath("//aside[@class='related']//a")]
    assert related[:2] == ["Ukraine", "Russia"]
    subscribe = {a.text_content(): a.get("href") for a in doc.xpath("//aside[@class='subscribe']//li/a")}
    assert set(subscribe) == {"RSS", "Atom", "JSON Feed", "OPML"}
    outlines = listparser.parse((await client.get(subscribe["OPML"])).content)
    assert [(f.url, f.title) for f in outlines.feeds] == [(subscribe["RSS"], "Russian invasion of Ukraine")]
    assert len(doc.xpath("//article[@class='event']")) == 11


async def test_the_topics_index_is_json_for_programs_and_a_searchable_page_for_people(
    site: tuple[httpx.AsyncClient, str],
) -> None:
    client, _ = site
    plain = await client.get("/topics", headers={"Accept": "*/*"})
    assert plain.headers["content-type"] == "application/json; charset=utf-8"
    assert plain.headers["vary"] == "Accept, Accept-Encoding"
    whole = plain.json()
    # 82: four of them (Jeremy Hunt, Suella Braverman, White Helmets, Chernobyl Exclusion Zone) only a day listing names.
    assert len(whole) == 82 and (await client.get("/topics.json")).json() == whole
    doc = parse(await client.get("/topics"))
    assert len(doc.xpath("//tbody/tr")) == 82
    # Search: case, diacritics and script folded; the whole name first, then prefixes, then the rest.
    for query in ("erdogan", "ERDOĞAN", "Erdoğan"):
        found = parse(await client.get("/topics", params={"q": query}))
        assert [a.text_content() for a in found.xpath("//tbody//a")] == ["Recep Tayyip Erdoğan"], query
    paged = (await client.get("/topics.json", params={"q": "ukraine"})).json()
    names = [t["name"] for t in paged["topics"]]
    assert names[0] == "Ukraine" and "Russian invasion of Ukraine" in names and paged["total"] == len(names)
    assert all(t["feeds"]["atom"].endswith(f"/feeds/topics/{t['slug']}.atom") for t in paged["topics"])
    by_name = parse(await client.get("/topics", params={"sort": "name"}))
    shown = [a.text_content() for a in by_name.xpath("//tbody//a")]
    assert shown[0].startswith("2022") and len(shown) == 82
    first = await client.get("/topics", params={"q": "ukr"})
    assert (
        await client.get("/topics", params={"q": "ukr"}, headers={"If-None-Match": first.headers["etag"]})
    ).status_code == 304
    assert (await client.get("/topics", params={"page": "2"})).status_code == 404
    bad = await client.get("/topics.json", params={"sort": "size"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("sort: use one of")
    assert (await client.get("/topics.json", params={"page": "0"})).status_code == 400
    # A query is bounded as /search's is: a 10 KB one is refused, naming the parameter.
    for path in ("/topics", "/topics.json"):
        huge = await client.get(path, params={"q": "x" * 10_000})
        assert huge.status_code == 400 and huge.json()["error"] == "q: at most 200 characters, got 10,000"
    assert (await client.get("/topics.json", params={"q": "u" * 200})).json()["total"] == 0


def test_search_folds_chinese_script_and_finds_substrings() -> None:
    rows = [  # as the stored index lists them: most events first
        {"name": "South Sudan", "slug": "south-sudan", "events": 9, "updated": None},
        {"name": "Sudan", "slug": "sudan", "events": 5, "updated": None},
        {"name": "蘇丹", "slug": "苏丹", "events": 3, "updated": None},
    ]
    index = TopicIndex.parse(json.dumps(rows).encode())
    assert [t.slug for t in index.search("苏丹")] == ["苏丹"]
    assert [t.slug for t in index.search("sudan")] == ["sudan", "south-sudan"]  # whole name first
    assert [t.slug for t in index.search("uda")] == ["south-sudan", "sudan"]  # then by activity
    assert [t.slug for t in index.search("")] == ["south-sudan", "sudan", "苏丹"]


async def test_opml_lists_every_topic_feed_or_a_chosen_set(site: tuple[httpx.AsyncClient, str]) -> None:
    client, base = site
    every = listparser.parse((await client.get("/opml")).content)
    assert every.bozo == 0 and len(every.feeds) == 82
    assert all(f.url.startswith(f"{base}/feeds/topics/") and f.url.endswith(".rss") for f in every.feeds)
    chosen = await client.get("/opml", params={"topics": "ukraine,russia,ukraine"})
    assert chosen.headers["content-type"] == "text/x-opml; charset=utf-8"
    parsed = listparser.parse(chosen.content)
    assert [f.title for f in parsed.feeds] == ["Ukraine", "Russia"]
    outline = lxml_html.fromstring(chosen.content).xpath("//outline")[0]
    assert outline.get("type") == "rss" and outline.get("htmlurl") == f"{base}/topics/ukraine"
    missing = await client.get("/opml", params={"topics": "ukraine,no-such-topic"})
    assert missing.status_code == 404 and "'no-such-topic'" in missing.json()["error"]


async def test_no_markup_from_a_source_reaches_a_page(store: Store, settings: Settings, tree: Path) -> None:
    """A page whose every text field tries to inject markup: on the day and topic pages it is text."""
    page = copy.deepcopy(json.loads((DATA / "event-page.json").read_text()))
    page |= {
        "heading": "<script>alert('heading')</script> Evil topic",
        "headline": "<img src=x onerror=alert(1)> Headline <b>bold</b>",
        "summary": "Click [here](javascript:alert(1)) or <script>alert(2)</script> <a href='javascript:x'>x</a>",
        "image": "javascript:alert(3)",
        "sources": [{"name": "<svg onload=alert(4)>", "url": "javascript:alert(5)"}],
    }
    (tree / "news/2017/09/28").mkdir(parents=True)
    (tree / "news/2017/09/28/evil.json").write_text(json.dumps(page))
    port = free_port()
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}")
    await ingest(store, settings)
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=HTML) as client:
            topics = (await client.get("/topics.json", params={"q": "evil topic"})).json()["topics"]
            pages = ["/news/2017/09/28/index.html", f"/topics/{topics[0]['slug']}"]
            for path in pages:
                doc = parse(await client.get(path))
                assert not doc.xpath("//script | //svg[@onload] | //*[@onerror] | //*[@onload]"), path
                hrefs = doc.xpath("//@href | //@src")
                assert not [h for h in hrefs if h.strip().lower().startswith("javascript:")], path
                assert "<img src=x onerror=alert(1)> Headline <b>bold</b>" in doc.xpath("string(//article//h3)")
