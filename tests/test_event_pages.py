"""Events at the archive's own URLs: `/news/YYYY/MM/D/<slug>.html` and its `.md`, `.json`, `.xml`
twins; older versions and padded days redirect to the current one; and what the server serves,
ingested again, gives the same events."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from feeds.app import create_app
from feeds.codec import page_from_json, page_to_json
from feeds.config import Settings, SourceConfig
from feeds.ids import page_path
from feeds.model import DayListing
from feeds.pages import parse_document
from feeds.pages.write import archive_url, day_url
from feeds.store import Store
from feeds.web import TWIN_TYPES
from tests.conftest import OFFSTREAM, LiveServer, free_port
from tests.helpers import sql
from tests.test_site import HTML, check_page, ingest, parse

TWINS = ("md", "json", "xml")


def events_of(database: str) -> dict[str, tuple[str, str, str, str]]:
    """key -> (guid, current path, date, the page as stored) of every live event."""
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute("SELECT key, guid, current, date, doc FROM events WHERE live = 1").fetchall()
    finally:
        conn.close()
    return {key: (guid, current, date, doc) for key, guid, current, date, doc in rows}


async def archive_served(store: Store, settings: Settings) -> tuple[int, Settings]:
    """The real archive sample ingested, to be served on the port its documents name."""
    port = free_port()
    settings = replace(
        settings,
        base_url=f"http://127.0.0.1:{port}",
        sources=(SourceConfig(name="archive", kind="directory", location=str(OFFSTREAM)),),
    )
    await ingest(store, settings, clean=False)  # the sample's day listings name pages it lacks
    return port, settings


def keep(copy: Path, url: str, body: bytes) -> None:
    """A served document written into a tree at its URL's path."""
    (copy / url.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (copy / url.lstrip("/")).write_bytes(body)


def reading(settings: Settings, tmp_path: Path, copy: Path) -> Settings:
    """Settings of another store that reads the tree `copy`."""
    return replace(
        settings,
        database=str(tmp_path / "again.db"),
        sources=(SourceConfig(name="archive", kind="directory", location=str(copy)),),
    )


def unlisted(doc: str) -> str:
    """A stored page without what its day listing said of it."""
    return page_to_json(replace(page_from_json(doc), listing=None))


def self_described(key: str, current: str, doc: str) -> bool:
    """Whether an event's current page names its first version (or is it)."""
    changes = json.loads(doc)["changes"]
    return key == current or any(page_path(c[1]) == key for c in changes)


@pytest.mark.parametrize("ext", TWINS)
async def test_what_the_server_serves_ingests_to_the_same_events(
    store: Store, settings: Settings, tmp_path: Path, ext: str
) -> None:
    """The real archive pages (reworded events with Changes chains among them), served as twins of
    one format, written to a new tree and ingested into a new store: the same events, ids and pages."""
    port, settings = await archive_served(store, settings)
    served = events_of(settings.database)
    assert len(served) > 20
    copy = tmp_path / "copy"
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for _, current, _, _ in served.values():
                url = archive_url(current, ext)
                response = await client.get(url)
                assert response.status_code == 200, url
                keep(copy, url, response.content)
    again = reading(settings, tmp_path, copy)
    second = await Store.open(again.database)
    try:
        await ingest(second, again, clean=False)
    finally:
        await second.close()
    copied = events_of(again.database)
    # Events whose versions the store folded from more than their own page tells (other versions'
    # Changes lists, day listings) are served naming their first version: they come back as the
    # same events too, their pages with that one line more.
    folded = {k for k, (_, current, _, doc) in served.items() if not self_described(k, current, doc)}
    assert folded, "the sample has events folded from other pages"
    assert {k: v[:3] for k, v in copied.items()} == {k: v[:3] for k, v in served.items()}
    # The copy has no day listings: the context names only a listing gives (feeds.model.Page.listing)
    # are not in it.
    served = {k: (*v[:3], unlisted(v[3])) for k, v in served.items()}
    assert {k: v for k, v in copied.items() if k not in folded} == {k: v for k, v in served.items() if k not in folded}
    for key in folded:
        assert self_described(key, copied[key][1], copied[key][3])


async def test_every_version_of_an_event_answers_at_its_archive_url(store: Store, settings: Settings) -> None:
    port, settings = await archive_served(store, settings)
    # A reworded event: its older versions are paths of the same event.
    rows = await sql(
        store,
        "SELECT a.path, e.current FROM aliases a JOIN events e ON e.key = a.chain WHERE a.path != e.current AND e.live LIMIT 3",
    )
    assert rows
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=HTML) as client:
            for older, current in rows:
                for ext in ("html", *TWINS):
                    moved = await client.get(archive_url(older, ext))
                    assert moved.status_code == 301 and moved.headers["location"] == archive_url(current, ext)
            current = rows[0][1]
            padded = current.replace("/news/", "/news/", 1) + ".html"  # the stored path has the day padded
            if padded != archive_url(current, "html"):
                assert (await client.get(padded)).headers["location"] == archive_url(current, "html")
            page = await client.get(archive_url(current, "html"))
            doc = parse(page)
            check_page(doc, server.url + archive_url(current, "html"))
            assert len(doc.xpath("//article[@class='event']")) == 1
            twins = doc.xpath("//p[@class='lead']/a/@href")
            assert [t.rsplit(".", 1)[1] for t in twins[1:]] == list(TWINS)
            again = await client.get(page.url, headers={"If-None-Match": page.headers["etag"]})
            assert again.status_code == 304
            assert (await client.get("/news/2017/09/28/no-such-event.html")).status_code == 404
            assert (await client.get(archive_url(current, "exe"))).status_code == 404


async def test_a_day_answers_with_its_listing_in_the_shapes_the_ingester_reads(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """Every day of the real sample: `index.md|json|xml` list the day's live events (current
    versions, as the day page orders them), name the previous day, and read back to one listing
    in all three shapes; the day page links them; a padded day redirects; 304 on the ETag. Served
    events and listings written to a new tree and ingested: every event listed on its day."""
    port, settings = await archive_served(store, settings)
    served = events_of(settings.database)
    days = sorted({date for _, _, date, _ in served.values()})
    copy = tmp_path / "copy"
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=HTML) as client:
            for n, day in enumerate(days):
                date = dt.date.fromisoformat(day)
                listings = {}
                for ext in TWINS:
                    url = day_url(date, ext)
                    response = await client.get(url)
                    assert response.status_code == 200, url
                    assert response.headers["content-type"].startswith(TWIN_TYPES[ext])
                    listing = parse_document(url.lstrip("/"), response.content)
                    assert isinstance(listing, DayListing)
                    listings[ext] = listing
                    again = await client.get(url, headers={"If-None-Match": response.headers["etag"]})
                    assert again.status_code == 304
                    # Every third day keeps its JSON or XML listing in the copy, the others markdown.
                    if ext == TWINS[n % 3]:
                        keep(copy, url, response.content)
                assert listings["md"] == listings["json"] == listings["xml"]
                listing = listings["md"]
                assert listing.date == date
                assert {e.path for e in listing.entries} == {c for _, c, d, _ in served.values() if d == day}
                assert listing.previous == (page_path(day_url(dt.date.fromisoformat(days[n - 1]), "md")) if n else None)
                page = parse(await client.get(day_url(date, "html")))
                assert [a.rsplit("/", 1)[1] for a in page.xpath("//p[@class='lead']/a/@href")] == [
                    f"index.{ext}" for ext in TWINS
                ]
            padded = f"/news/{days[0][:4]}/{days[0][5:7]}/{days[0][8:]}/index.json"
            if padded != day_url(dt.date.fromisoformat(days[0]), "json"):
                moved = await client.get(padded)
                assert moved.status_code == 301 and moved.headers["location"] == day_url(
                    dt.date.fromisoformat(days[0]), "json"
                )
            assert (await client.get("/news/2017/09/28/index.exe")).status_code == 404
            for _, current, _, _ in served.values():
                url = archive_url(current, "md")
                keep(copy, url, (await client.get(url)).content)
    again = reading(settings, tmp_path, copy)
    second = await Store.open(again.database)
    try:
        await ingest(second, again, clean=True)  # nothing reported: every listing reads
        listed = await sql(
            second, "SELECT l.day, count(*) FROM listed d JOIN listings l ON l.path = d.listing GROUP BY l.day"
        )
        assert dict(listed) == {
            f"/news/{day[:4]}/{day[5:7]}/{day[8:]}/": sum(1 for _, _, d, _ in served.values() if d == day)
            for day in days
        }
        assert await sql(second, "SELECT count(*) FROM unlisted") == [(0,)]
    finally:
        await second.close()
