"""RFC 5005 history: walk the date archives and the pages of a topic; rewording keeps ids."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import replace

import httpx
from lxml import etree

from feeds.app import create_app
from feeds.config import Settings
from feeds.model import FeedKey
from feeds.publish import Paging, publish_all, publish_changes
from feeds.store import Store
from tests.conftest import EXAMPLE, LiveServer
from tests.helpers import current, entries, read_pages, sql

ATOM = "{http://www.w3.org/2005/Atom}"


def atom_links(body: bytes) -> dict[str, str]:
    root = etree.fromstring(body)
    return {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}


async def loaded(store: Store, settings: Settings) -> Settings:
    small = replace(settings, items_per_feed=3)
    await store.apply(read_pages(EXAMPLE, source="example"))
    await publish_all(store, small, everything=True)  # every page made, as if each was asked for
    return small


async def test_archive_walk_from_latest_meets_every_event_once(store: Store, settings: Settings) -> None:
    small = await loaded(store, settings)
    all_ids = {e.guid for e in await store.events(FeedKey("latest"), 1000)}
    with LiveServer(create_app(small, scheduler=False)) as server:
        async with httpx.AsyncClient() as client:
            for fmt in ("atom", "rss"):
                url = f"{server.url}/feeds/latest.{fmt}"
                body = (await client.get(url)).content
                seen: Counter[str] = Counter()
                days = []
                link = atom_links(body).get("prev-archive") if fmt == "atom" else _rss_link(body, "prev-archive")
                while link:
                    response = await client.get(link.replace(small.base_url, server.url))
                    assert response.status_code == 200, link
                    if fmt == "atom":
                        assert (
                            etree.fromstring(response.content).find("{http://purl.org/syndication/history/1.0}archive")
                            is not None
                        )
                    seen.update(e["id"] for e in entries(fmt, response.content))  # type: ignore[misc]
                    days.append(link.rsplit("/", 1)[1])
                    link = (
                        atom_links(response.content).get("prev-archive")
                        if fmt == "atom"
                        else _rss_link(response.content, "prev-archive")
                    )
                assert set(seen) == all_ids and set(seen.values()) == {1}
                assert days == sorted(days, reverse=True) and len(days) == len(await store.dates())


def _rss_link(body: bytes, rel: str) -> str | None:
    root = etree.fromstring(body)
    for link in root.iterfind(f"channel/{ATOM}link"):
        if link.get("rel") == rel:
            return link.get("href")
    return None


async def test_paging_walk_of_the_biggest_topic_meets_every_event_once(store: Store, settings: Settings) -> None:
    small = await loaded(store, settings)
    biggest = (await store.topics())[0]
    assert biggest.slug == "russian-invasion-of-ukraine" and biggest.events > 6
    with LiveServer(create_app(small, scheduler=False)) as server:
        async with httpx.AsyncClient() as client:
            for fmt in ("atom", "json"):
                url: str | None = f"{server.url}/feeds/topics/{biggest.slug}.{fmt}"
                seen: Counter[str] = Counter()
                pages = 0
                while url:
                    response = await client.get(url)
                    assert response.status_code == 200, url
                    got = entries(fmt, response.content)
                    assert len(got) <= 2 * small.items_per_feed - 1
                    seen.update(e["id"] for e in got)  # type: ignore[misc]
                    pages += 1
                    nxt = atom_links(response.content).get("next") if fmt == "atom" else response.json().get("next_url")
                    url = nxt.replace(small.base_url, server.url) if nxt else None
                ids = {e.guid for e in await store.events(FeedKey("topic", biggest.slug), 1000)}
                assert set(seen) == ids and set(seen.values()) == {1}
                assert pages == Paging(biggest.events, small.items_per_feed).archive_pages + 1


def test_paging_bounds_and_links() -> None:
    paging = Paging(slots=11, size=3)
    assert paging.archive_pages == 2
    assert [paging.bounds(p) for p in (1, 2, 0)] == [(0, 3), (3, 6), (6, 11)]
    assert paging.links("t", 0) == {"first": "topics/t", "last": "topics/t/pages/1", "next": "topics/t/pages/2"}
    assert paging.links("t", 2) == {
        "first": "topics/t",
        "last": "topics/t/pages/1",
        "next": "topics/t/pages/1",
        "previous": "topics/t",
    }
    assert paging.links("t", 1)["previous"] == "topics/t/pages/2"
    assert [paging.page_of(s) for s in (0, 2, 3, 5, 6, 10)] == [1, 1, 2, 2, 0, 0]
    assert Paging(slots=2, size=3).archive_pages == 0 and Paging(2, 3).links("t", 0) == {"first": "topics/t"}


async def test_new_events_never_rerender_full_pages(store: Store, settings: Settings) -> None:
    small = await loaded(store, settings)
    rows = await sql(store, "SELECT feed, fmt, etag, stale FROM renditions WHERE feed LIKE '%/pages/%'")
    before = {(f, fmt): (e, s) for f, fmt, e, s in rows}
    assert before
    pages = read_pages(EXAMPLE, source="example")
    fresh = [
        replace(p, page=replace(p.page, path=p.page.path + "-later", date=dt.date(2025, 1, 1), changes=()))
        for p in pages[:10]
    ]
    result = await store.apply(fresh)
    await publish_changes(store, small, result.feeds, result.events)
    rows = await sql(store, "SELECT feed, fmt, etag, stale FROM renditions WHERE feed LIKE '%/pages/%'")
    after = {(f, fmt): (e, s) for f, fmt, e, s in rows}
    changed = {k[0] for k in before if after.get(k) != before[k]}
    # Only a page that gained a newer neighbour (its `previous` link) may change or be marked
    # stale; members never move.
    for name in changed:
        key = FeedKey.parse(name)
        paging = Paging(await store.topic_slots(key.value), small.items_per_feed)
        assert key.page >= paging.archive_pages - 2, name


async def test_rewording_in_place_keeps_the_id_and_the_pages_time_end_to_end(
    store: Store, settings: Settings, tree: object
) -> None:
    from feeds.refresh import open_sources, refresh_all

    sources = open_sources(settings.sources)
    await refresh_all(store, settings, sources)
    path = tree / "news/2023/02/6"  # type: ignore[operator]
    page = next(p for p in sorted(path.glob("*.md")) if p.name != "index.md")
    before = {
        fmt: entries(fmt, (await current(store, settings, "dates/2023-02-06", fmt)).body)
        for fmt in ("rss", "atom", "json")
    }  # type: ignore[union-attr]
    text = page.read_text()
    headline = next(line for line in text.splitlines() if line.startswith("# "))
    page.write_text(text.replace(headline, headline.rstrip() + " (reworded) "))
    report = await refresh_all(store, settings, sources)
    assert len(report.result.changed) == 1 and not report.result.added
    for fmt in ("rss", "atom", "json"):
        after = entries(fmt, (await current(store, settings, "dates/2023-02-06", fmt)).body)  # type: ignore[union-attr]
        assert [e["id"] for e in after] == [e["id"] for e in before[fmt]]
        assert any("(reworded)" in str(e["title"]) for e in after)
    feed = (await current(store, settings, "dates/2023-02-06", "json")).body  # type: ignore[union-attr]
    import json

    items = json.loads(feed)["items"]
    reworded = next(i for i in items if "(reworded)" in i["title"])
    # The page names no time of its rewording (no Changes list): it keeps the time it states, its
    # day, not the moment its file was written or read.
    assert reworded["date_published"] == reworded["date_modified"] == "2023-02-06T00:00:00+00:00"


async def test_new_links_give_a_new_etag_and_keep_the_last_modified_the_document_holds(
    store: Store, settings: Settings
) -> None:
    """A day whose archive neighbour appears gets new bytes with no entry changed: its ETag moves
    (a reader's If-None-Match fetches them), its Last-Modified stays the newest time it holds, as
    a store that had both days from the start says."""
    await store.apply(read_pages(EXAMPLE, source="example"))
    await publish_all(store, settings)
    before = await current(store, settings, "dates/2022-02-24", "atom")
    assert before is not None
    pages = read_pages(EXAMPLE, source="example")
    older = replace(
        pages[0], page=replace(pages[0].page, path="/news/2021/01/01/older", date=dt.date(2021, 1, 1), changes=())
    )
    result = await store.apply([older])
    await publish_changes(store, settings, result.feeds, result.events)
    after = await current(store, settings, "dates/2022-02-24", "atom")
    assert after is not None and after.etag != before.etag
    assert (
        after.last_modified
        == before.last_modified
        == max(e.updated for e in await store.events(FeedKey("date", "2022-02-24"), 1000))
    )


async def test_a_day_that_loses_its_events_leaves_the_archive_chain(store: Store, settings: Settings) -> None:
    small = await loaded(store, settings)
    days = await store.dates()
    gone = days[len(days) // 2]
    keys = [e.key for e in await store.events(FeedKey("date", gone), 1000)]
    result = await store.apply([], deleted=keys)
    await publish_changes(store, small, result.feeds, result.events)
    # Walk the stored Atom archive from the newest day: every day but the emptied one, in order.
    walked = []
    name: str | None = f"dates/{days[-1]}"
    while name:
        rendition = await current(store, settings, name, "atom")
        assert rendition is not None, name
        walked.append(name.split("/")[1])
        link = atom_links(rendition.body).get("prev-archive")
        name = link.split("/feeds/")[1].rsplit(".", 1)[0] if link else None
    assert walked == [d for d in reversed(days) if d != gone]
    after = (await current(store, settings, f"dates/{days[days.index(gone) - 1]}", "atom")).body  # type: ignore[union-attr]
    assert f"dates/{days[days.index(gone) + 1]}.atom" in atom_links(after)["next-archive"]
