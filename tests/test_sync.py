"""Sync for aggregators that mirror everything: `/changes?since=` walks every event's latest change
in bounded pages and never misses one between polls; JSON Feed items carry the `_feeds` extension
(topics, sources, related events, version history) as data."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from feeds.app import create_app
from feeds.config import Settings
from feeds.ids import page_path
from feeds.pages.write import archive_url
from feeds.store import Store
from tests.conftest import OFFSTREAM, LiveServer, free_port
from tests.helpers import current, refresh_once, sql

BERSET = (
    "news/2018/01/1/alain-berset-takes-office-as-president-of-the-swiss-confederation-berset-is-the-youngest-"
    "president-of-switzerland-since-1934.md"
)


async def mirror(client: httpx.AsyncClient, since: int, limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """Every change after `since`, following `next` page by page as a mirroring client would."""
    seen: list[dict[str, Any]] = []
    while True:
        params = {"since": str(since)} | ({"limit": str(limit)} if limit else {})
        response = await client.get("/changes", params=params)
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
        page = response.json()
        assert page["since"] == since and len(page["changes"]) <= (limit or 1000)
        seen += page["changes"]
        assert page["next"] == (page["changes"][-1]["cursor"] if page["changes"] else since)
        since = page["next"]
        if not page["more"]:
            return seen, since


async def test_a_mirror_follows_every_change_through_the_cursor(store: Store, settings: Settings, tree: Path) -> None:
    port = free_port()
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}")
    await refresh_once(store, settings)
    live = dict(await sql(store, "SELECT guid, key FROM events WHERE live = 1"))
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            everything, cursor = await mirror(client, 0)
            assert {c["id"] for c in everything} == set(live) and len(everything) == len(live)
            assert {c["kind"] for c in everything} == {"created"}
            cursors = [c["cursor"] for c in everything]
            assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
            # The same walk two at a time; each change names the event's page here.
            paged, _ = await mirror(client, 0, limit=2)
            assert paged == everything
            first = everything[0]
            assert (await client.get(first["url"])).status_code in (200, 301)

            # Conditional polling: nothing new is a 304.
            answer = await client.get("/changes", params={"since": cursor})
            assert answer.json()["changes"] == [] and not answer.json()["more"]
            again = await client.get(
                "/changes", params={"since": cursor}, headers={"If-None-Match": answer.headers["etag"]}
            )
            assert again.status_code == 304

            # One event reworded twice and one deleted between two polls: each listed once, as it is now.
            keys = dict(await sql(store, "SELECT key, guid FROM events WHERE live = 1"))
            pages = sorted(p for p in tree.rglob("*.md") if page_path(str(p.relative_to(tree))) in keys)
            reworded, removed = pages[0], pages[-1]
            await asyncio.sleep(1.1)  # times have a resolution of one second
            for n in (1, 2):
                text = reworded.read_text()
                headline = next(line for line in text.splitlines() if line.startswith("# "))
                reworded.write_text(text.replace(headline, f"{headline.rstrip()} (reworded {n})"))
                await refresh_once(store, settings)
            removed.unlink()
            await refresh_once(store, settings)
            changed, _ = await mirror(client, cursor)
            guid = {p: keys[page_path(str(p.relative_to(tree))) or ""] for p in (reworded, removed)}
            assert {c["id"]: c["kind"] for c in changed} == {guid[reworded]: "updated", guid[removed]: "deleted"}
            assert len(changed) == 2

            # A mirror that applied every change holds exactly the store's live events.
            mirrored: set[str] = set()
            for change in everything + changed:
                (mirrored.discard if change["kind"] == "deleted" else mirrored.add)(change["id"])
            assert mirrored == {g for (g,) in await sql(store, "SELECT guid FROM events WHERE live = 1")}

            for params, says in [
                ({"since": "-1"}, "since: a whole number"),
                ({"since": "x"}, "since: a whole number"),
                ({"limit": "0"}, "limit: a whole number from 1 to 1000"),
                ({"limit": "5000"}, "limit: a whole number from 1 to 1000"),
            ]:
                bad = await client.get("/changes", params=params)
                assert bad.status_code == 400 and says in bad.json()["error"]


async def test_json_feed_items_carry_the_feeds_extension(store: Store, settings: Settings, tree: Path) -> None:
    """A real reworded page (its Changes list names its first version, its Related list a 2015
    event): its item's `_feeds` says as data what its content shows, with absolute URLs of this
    server that answer (the first version's redirects to the current one)."""
    target = tree / BERSET
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes((OFFSTREAM / BERSET).read_bytes())
    port = free_port()
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}")
    await refresh_once(store, settings)
    feed = json.loads((await current(store, settings, "dates/2018-01-01", "json")).body)  # type: ignore[union-attr]
    item = feed["items"][0]
    extension = item["_feeds"]
    assert [t["name"] for t in extension["topics"]] == item["tags"] and extension["heading"] is None
    assert extension["sources"] == [
        {
            "name": "SWI",
            "url": "https://www.swissinfo.ch/eng/alain-berset-_youngest-swiss-president-in-84-years-takes-office/43783510",
        }
    ]
    assert [r["contexts"] for r in extension["related"]] == [["President of the Swiss Confederation"]]
    first, newest = extension["versions"]
    assert (first["kind"], first["timestamp"], newest["kind"], newest["timestamp"]) == (
        "first",
        "2018-01-02T14:30:05+00:00",
        "current",
        None,
    )
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            here = server.url + archive_url(page_path(BERSET) or "", "html")
            assert newest["url"] == here and (await client.get(here)).status_code == 200
            moved = await client.get(first["url"])
            assert moved.status_code == 301 and server.url + moved.headers["location"] == here
            for topic in extension["topics"]:
                assert (await client.get(f"/feeds/topics/{topic['slug']}.json")).status_code == 200
