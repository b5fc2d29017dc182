"""Documents people read now are rendered when they change; the rest on their first request after
it, once, then served as stored bytes (feeds.publish.hot, feeds.publish.demand), on the bundled
example (real events of 2022-2024) and real Offstream days of 2008-2018."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import replace

import httpx

from feeds.app import create_app
from feeds.config import Settings
from feeds.model import FeedKey
from feeds.publish import every_key, publish, publish_changes
from feeds.publish.hot import RECENT_DAYS, hot_set
from feeds.render import formats
from feeds.render.topics import TOPICS_DOC
from feeds.store import Incoming, Store
from tests.conftest import EXAMPLE, OFFSTREAM, LiveServer
from tests.helpers import current, read_pages, sql


async def stored(store: Store) -> dict[str, bool]:
    """Document -> whether its stored version is stale."""
    rows = await sql(store, "SELECT feed, max(stale) FROM renditions WHERE feed != ? GROUP BY feed", (TOPICS_DOC,))
    return {feed: bool(stale) for feed, stale in rows}


def reworded(page: Incoming, headline: str) -> Incoming:
    return replace(page, page=replace(page.page, headline=headline))


async def shown_page(store: Store, settings: Settings, pages: list[Incoming], day: str, topic: str = "") -> Incoming:
    """A page of `day` whose event the day's feed shows under its own headline (not an earlier
    rendering folded into another page)."""
    feed = await current(store, settings, f"dates/{day}", "json")
    assert feed is not None
    titles = {item["title"] for item in json.loads(feed.body)["items"]}
    return next(
        p
        for p in pages
        if p.page.date.isoformat() == day and p.page.headline in titles and (not topic or topic in p.page.topics)
    )


async def loaded(store: Store, settings: Settings) -> list[Incoming]:
    pages = read_pages(EXAMPLE, source="example") + read_pages(OFFSTREAM, source="offstream")
    result = await store.apply(pages)
    await publish_changes(store, settings, result.feeds, result.events)
    return pages


async def test_a_change_renders_the_hot_documents_and_leaves_the_rest_for_their_first_request(
    store: Store, settings: Settings
) -> None:
    small = replace(settings, items_per_feed=3)
    await loaded(store, small)
    hot = await hot_set(store, small)
    keys = await every_key(store, small)
    rendered = await stored(store)
    assert rendered and not any(rendered.values())
    assert {k.name for k in keys if k in hot} == set(rendered)
    newest = dt.date.fromisoformat(await store.newest_date() or "")
    dates = [dt.date.fromisoformat(k.value) for k in keys if k.kind == "date"]
    assert {f"dates/{d}" for d in dates if (newest - d).days <= RECENT_DAYS} <= set(rendered)
    assert [d for d in dates if (newest - d).days > RECENT_DAYS]  # 2008-2018 days: none rendered yet
    assert not [n for n in rendered if "/pages/" in n or (n.startswith("dates/20") and n < "dates/2024")]
    # Each of the others answers when asked for, with what a render of it gives.
    cold = sorted((k for k in keys if k not in hot), key=lambda k: k.name)
    assert len(cold) > len(rendered)
    for key in cold[:: max(1, len(cold) // 12)]:
        made = await current(store, small, key.name, "atom")
        assert made is not None and b"<entry>" in made.body, key
        assert (await store.rendition(key.name, "atom")) == made  # stored, served as stored bytes after


async def test_a_change_to_a_cold_document_marks_it_stale_and_its_next_request_shows_it(
    store: Store, settings: Settings
) -> None:
    pages = await loaded(store, settings)
    day = "dates/2018-01-01"
    before = await current(store, settings, day, "atom")  # an old day, asked for: made and stored
    assert before is not None and (await stored(store))[day] is False
    page = await shown_page(store, settings, pages, "2018-01-01")
    result = await store.apply([reworded(page, "A reworded headline of 2018.")])
    await publish_changes(store, settings, result.feeds, result.events)
    assert (await stored(store))[day] is True  # marked, not rendered
    assert await store.rendition(day, "atom") is None  # a server does not serve a stale version
    after = await current(store, settings, day, "atom")
    assert after is not None and b"A reworded headline of 2018." in after.body and after.etag != before.etag
    assert (await stored(store))[day] is False
    # The hot documents it is in were rendered with the change.
    latest = await store.rendition("latest", "atom")
    assert latest is not None


async def test_a_render_a_change_overtook_is_stored_stale(store: Store, settings: Settings) -> None:
    """A document made on request from the store as it was before a change was stored: served to
    whoever waited for it, but made again at the next request."""
    pages = await loaded(store, settings)
    key = FeedKey("date", "2017-12-31")
    page = await shown_page(store, settings, pages, "2017-12-31")
    await sql(store, "DELETE FROM renditions WHERE feed = ?", (key.name,))
    version = await store.content_version()
    await store.apply([reworded(page, "Reworded while it rendered.")])
    assert await store.content_version() != version
    await publish(store, settings, key, formats(), based_on=version)
    assert (await stored(store))[key.name] is True
    assert len(await store.renditions_of(key.name)) == 4  # kept whole (their entries serve the next render)
    again = await current(store, settings, key.name, "atom")
    assert again is not None and b"Reworded while it rendered." in again.body
    assert (await stored(store))[key.name] is False


async def test_feeds_that_are_followed_are_hot(store: Store, settings: Settings) -> None:
    """A feed polled this week, or one a WebSub subscriber follows, is rendered on change."""
    pages = await loaded(store, settings)
    polled, pushed = "dates/2017-12-31", "topics/2017-iranian-protests"
    assert not {polled, pushed} & set(await stored(store))
    today = dt.datetime.now(dt.UTC).date().isoformat()
    await sql(store, "INSERT INTO feed_clients VALUES (?, ?, 'client', 0)", (today, polled))
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    await sql(
        store,
        "INSERT INTO websub (feed, fmt, callback, secret, expires) VALUES (?, 'atom', 'http://127.0.0.1:9/', '', ?)",
        (pushed, expires),
    )
    hot = await hot_set(store, settings)
    assert FeedKey.parse(polled) in hot and FeedKey.parse(pushed) in hot
    changed = await shown_page(store, settings, pages, "2017-12-31", "2017 Iranian protests")
    await sql(store, "DELETE FROM renditions WHERE feed = ?", (polled,))  # not yet asked for
    result = await store.apply([reworded(changed, "Reworded for its followers.")])
    await publish_changes(store, settings, result.feeds, result.events)
    for name in (polled, pushed):
        rendition = await store.rendition(name, "atom")
        assert rendition is not None and b"Reworded for its followers." in rendition.body, name


async def test_a_server_serves_a_cold_document_made_again_after_a_change(store: Store, settings: Settings) -> None:
    pages = await loaded(store, settings)
    app = create_app(settings, scheduler=False)
    path = "/feeds/dates/2018-01-01.atom"
    with LiveServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            first = await client.get(path)
            assert first.status_code == 200 and app.state.made.made == 1
            assert (await client.get(path, headers={"If-None-Match": first.headers["etag"]})).status_code == 304
            page = await shown_page(store, settings, pages, "2018-01-01")
            result = await store.apply([reworded(page, "Reworded for the server.")])
            await publish_changes(store, settings, result.feeds, result.events)
            for _ in range(100):  # the server notices the stored change within its poll
                again = await client.get(path, headers={"If-None-Match": first.headers["etag"]})
                if again.status_code == 200:
                    break
                await asyncio.sleep(0.05)
            assert again.status_code == 200 and b"Reworded for the server." in again.content
            assert again.headers["etag"] != first.headers["etag"] and app.state.made.made == 2
