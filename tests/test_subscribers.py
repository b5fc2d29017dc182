"""Subscriber statistics: aggregators' reported subscribers (their real User-Agent shapes), counted
once per aggregator, feed id, feed and day at their latest; distinct clients; written in batches,
never per request; `GET /stats` and `feeds stats` list the most-followed feeds."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx

from feeds.app import create_app
from feeds.config import Settings
from feeds.store import Store
from feeds.subscribers import Report, report_of
from tests.conftest import LiveServer, free_port
from tests.helpers import refresh_once, sql

FEEDLY = "Feedly/1.0 (+http://www.feedly.com/fetcher.html; {n} subscribers; like FeedFetcher-Google)"
INOREADER = "Mozilla/5.0 (compatible; Inoreader/1.0; +http://www.inoreader.com/feed-fetcher; {n} subscribers; )"
NEWSBLUR = "NewsBlur Feed Fetcher - {n} subscribers - http://www.newsblur.com/site/6337612/current-events (Mozilla/5.0)"
OLD_READER = "Mozilla/5.0 (compatible; theoldreader.com; {n} subscribers; feed-id={id})"
FEEDBIN = "Feedbin feed-id:{id} - {n} subscribers"


def test_reports_are_read_from_the_aggregators_user_agents() -> None:
    assert report_of(FEEDLY.format(n=42)) == Report("feedly", "", 42)
    assert report_of(INOREADER.format(n=8)) == Report("inoreader", "", 8)
    assert report_of(NEWSBLUR.format(n=12)) == Report("newsblur", "", 12)
    assert report_of(OLD_READER.format(n=3, id="5a1b")) == Report("theoldreader", "5a1b", 3)
    assert report_of(FEEDBIN.format(n=5, id="1234")) == Report("feedbin", "1234", 5)
    assert report_of("Tiny Tiny RSS/22.08 (Unsupported) (https://tt-rss.org/); 2 subscribers") == Report("tiny", "", 2)
    assert report_of("Miniflux/2.0.51 (https://miniflux.app)") is None
    assert report_of("newsboat/2.30") is None


async def test_most_followed_feeds_over_real_http(store: Store, settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}")
    await refresh_once(store, settings)
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:

            async def poll(path: str, agent: str) -> int:
                return (await client.get(path, headers={"User-Agent": agent})).status_code

            # Feedly polls the latest feed three times in a day with a growing count: only its last counts.
            for n in (40, 41, 42):
                assert await poll("/feeds/latest.atom", FEEDLY.format(n=n)) == 200
            # The Old Reader has two feed ids for it (two URLs of one feed): both count.
            await poll("/feeds/latest.atom", OLD_READER.format(n=3, id="a"))
            await poll("/feeds/latest.atom", OLD_READER.format(n=2, id="b"))
            # Two readers polling for themselves, one of them twice (and conditionally).
            first = await client.get("/feeds/latest.atom", headers={"User-Agent": "newsboat/2.30"})
            await client.get(
                "/feeds/latest.atom", headers={"User-Agent": "newsboat/2.30", "If-None-Match": first.headers["etag"]}
            )
            await poll("/feeds/latest.atom", "Miniflux/2.0.51 (https://miniflux.app)")
            # Another feed, less followed; a missing feed and a page are not counted.
            await poll("/feeds/topics/ukraine.rss", INOREADER.format(n=8))
            assert await poll("/feeds/topics/no-such-topic.rss", FEEDLY.format(n=99)) == 404
            await poll("/", FEEDLY.format(n=99))
            # Nothing is written per request: the notes wait for the next batch.
            assert await sql(store, "SELECT count(*) FROM feed_clients") == [(0,)]
            answer = (await client.get("/stats")).json()
    latest, topic = answer["feeds"]
    assert latest == {
        "feed": "latest",
        "followers": 42 + 3 + 2 + 2,  # reported subscribers, and the two readers that reported none
        "clients": 7,  # Feedly's three agents are three clients (their counts differ); the others one each
        "subscribers": 47,
        "reports": {"feedly": 42, "theoldreader:a": 3, "theoldreader:b": 2},
    }
    assert topic == {
        "feed": "topics/ukraine",
        "followers": 8,
        "clients": 1,
        "subscribers": 8,
        "reports": {"inoreader": 8},
    }
    assert answer["days"] == [answer["day"]]

    # The command says the same, as a table.
    config = tmp_path / "feeds.toml"
    config.write_text(f"database = {json.dumps(settings.database)}\n")
    shown = subprocess.run(
        [sys.executable, "-m", "feeds", "--config", str(config), "stats"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert shown[0] == answer["day"]
    assert shown[2].split() == ["49", "7", "47", "latest"] and shown[3].split() == ["8", "1", "8", "topics/ukraine"]


async def test_a_flood_of_long_made_up_agents_is_noted_small(settings: Settings) -> None:
    """Polls are kept raw until the next write: each agent is cut, so memory stays bounded."""
    from feeds.observe import AGENT_BYTES, Observe
    from feeds.subscribers import Subscribers

    async def app(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"x"})  # type: ignore[operator]

    async def sent(message: object) -> None:
        pass

    noted = Subscribers()
    observe = Observe(app, replace(settings, access_log="off", subscriber_stats=True), noted)  # type: ignore[arg-type]
    for n in range(3):
        agent = b"Reader/%d " % n + b"x" * 10_000
        scope = {
            "type": "http",
            "path": "/feeds/latest.atom",
            "headers": [(b"user-agent", agent)],
            "client": ("127.0.0.1", 1),
        }
        await observe(scope, None, sent)  # type: ignore[arg-type]
    assert len(noted.polls) == 3
    assert {len(agent) for _, _, _, agent in noted.polls} == {AGENT_BYTES}
