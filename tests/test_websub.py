"""WebSub with a real subscriber on 127.0.0.1: feeds advertise the hub and themselves; a
subscription is made only when the subscriber echoes the challenge; a change is delivered once,
signed, to each active subscriber; a failing subscriber is retried with backoff and dropped without
delaying the others; unsubscribing is verified too; private callbacks need the switch."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from feeds import websub
from feeds.app import create_app
from feeds.config import Settings
from feeds.store import Store
from tests.conftest import LiveServer, free_port
from tests.helpers import refresh_once, sql


@dataclass
class Subscriber:
    """What the subscriber's callbacks saw: verifications (their query) and deliveries."""

    verified: list[dict[str, str]] = field(default_factory=list)
    delivered: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    failures: int = 0
    down: set[str] = field(default_factory=set)  # callbacks answering 503 for now
    pings: list[dict[str, str]] = field(default_factory=list)  # as a hub: publish notifications

    def app(self) -> Starlette:
        async def callback(request: Request) -> Response:
            name = request.path_params["name"]
            if request.method == "GET":
                self.verified.append({"name": name, **request.query_params})
                challenge = request.query_params["hub.challenge"]
                return PlainTextResponse("not the challenge" if name == "liar" else challenge)
            body = await request.body()
            if name == "slow":
                await asyncio.sleep(5)  # a subscriber that takes its time
            if name == "hub":
                self.pings.append(dict(parse_qsl(body.decode())))
                return PlainTextResponse("", status_code=204)
            if name == "broken" or name in self.down:
                self.failures += 1
                return PlainTextResponse("down", status_code=500)
            self.delivered.append((name, body, dict(request.headers)))
            return PlainTextResponse("thanks")

        return Starlette(routes=[Route("/cb/{name}", callback, methods=["GET", "POST"])])


@pytest.fixture
def subscriber() -> Iterator[tuple[Subscriber, str]]:
    seen = Subscriber()
    with LiveServer(seen.app()) as server:
        yield seen, server.url


async def until(check: object, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def rows_when(store: Store, count: int) -> list[tuple[str, str, str]]:
    """The subscriptions, once there are `count` (the hub writes them after the verification)."""
    deadline = time.monotonic() + 15
    while len(rows := await sql(store, "SELECT callback, secret, expires FROM websub ORDER BY callback")) != count:
        assert time.monotonic() < deadline, rows
        await asyncio.sleep(0.05)
    return rows  # type: ignore[return-value]


async def hubbed(store: Store, settings: Settings, **more: object) -> tuple[Settings, int, str]:
    """(settings, port, the latest Atom feed's URL) of a server on a free port that refreshes every
    second and calls loopback subscribers back; the store refreshed once."""
    port = free_port()
    changes = {"refresh_interval": 1, "websub_allow_private_callbacks": True} | more
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}", **changes)  # type: ignore[arg-type]
    await refresh_once(store, settings)
    return settings, port, f"{settings.base_url}/feeds/latest.atom"


def pages_of(tree: Path) -> list[Path]:
    """The event pages of the tree, the newest day's last."""
    return [p for p in sorted(tree.rglob("*.md")) if p.name != "index.md"]


async def reword(page: Path, mark: str) -> None:
    """The page's headline starts with `(mark)`, a second later than anything before (times are
    kept to the second)."""
    text = page.read_text()
    await asyncio.sleep(1.1)
    page.write_text(text.replace("\n# ", f"\n# ({mark}) ", 1))


async def test_feeds_advertise_their_hub_and_themselves(store: Store, settings: Settings) -> None:
    settings, port, _ = await hubbed(store, settings)
    hub = f"{settings.base_url}/websub"
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for fmt in ("atom", "rss", "json"):
                response = await client.get(f"/feeds/latest.{fmt}")
                own = f"{settings.base_url}/feeds/latest.{fmt}"
                assert response.headers["link"] == f'<{hub}>; rel="hub", <{own}>; rel="self"'
                if fmt == "json":
                    assert response.json()["hubs"] == [{"type": "WebSub", "url": hub}]
                else:
                    assert f'href="{hub}" rel="hub"' in response.text and f'href="{own}" rel="self"' in response.text


async def test_subscribe_verify_deliver_retry_unsubscribe(
    store: Store, settings: Settings, tree: Path, subscriber: tuple[Subscriber, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen, base = subscriber
    monkeypatch.setattr(websub, "BACKOFF", 0.05)
    settings, port, topic = await hubbed(store, settings)
    with LiveServer(create_app(settings), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:

            async def ask(mode: str, name: str, **more: str) -> httpx.Response:
                form = {"hub.mode": mode, "hub.topic": topic, "hub.callback": f"{base}/cb/{name}?list=a", **more}
                return await client.post("/websub", data=form)

            assert (
                await ask("subscribe", "reader", **{"hub.secret": "s3cret", "hub.lease_seconds": "60"})
            ).status_code == 202
            assert (await ask("subscribe", "broken")).status_code == 202
            assert (await ask("subscribe", "liar")).status_code == 202
            await until(lambda: len(seen.verified) == 3)
            reader = next(v for v in seen.verified if v["name"] == "reader")
            assert reader["hub.mode"] == "subscribe" and reader["hub.topic"] == topic and reader["list"] == "a"
            assert reader["hub.lease_seconds"] == str(settings.websub_min_lease_seconds)  # 60 s raised to the minimum
            rows = await rows_when(store, 2)
            assert [(c.rsplit("/", 1)[1], s) for c, s, _ in rows] == [
                ("broken?list=a", ""),
                ("reader?list=a", "s3cret"),
            ]
            expires = dt.datetime.fromisoformat(rows[1][2])
            assert abs((expires - dt.datetime.now(dt.UTC)).total_seconds() - settings.websub_min_lease_seconds) < 60

            # A page of the newest day is reworded: the next refresh delivers the new latest feed,
            # once, signed.
            await reword(pages_of(tree)[-1], "pushed")
            await until(lambda: seen.delivered and seen.failures >= websub.ATTEMPTS, 30)
            await asyncio.sleep(2.5)  # more refreshes, nothing new: nothing more is delivered
            assert [name for name, _, _ in seen.delivered] == ["reader"]
            assert seen.failures == websub.ATTEMPTS  # retried, then dropped
            _, body, headers = seen.delivered[0]
            current = await client.get("/feeds/latest.atom", headers={"Accept-Encoding": "identity"})
            assert body == current.content and b"(pushed)" in body
            assert headers["content-type"] == "application/atom+xml; charset=utf-8"
            assert headers["link"] == f'<{settings.base_url}/websub>; rel="hub", <{topic}>; rel="self"'
            assert headers["x-hub-signature"] == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()

            # Unsubscribing is verified too.
            assert (await ask("unsubscribe", "reader")).status_code == 202
            await until(lambda: any(v["hub.mode"] == "unsubscribe" for v in seen.verified))
            assert [c.rsplit("/", 1)[1] for c, _, _ in await rows_when(store, 1)] == ["broken?list=a"]


async def test_requests_the_hub_refuses(store: Store, settings: Settings, subscriber: tuple[Subscriber, str]) -> None:
    seen, base = subscriber
    settings, port, topic = await hubbed(store, settings, websub_allow_private_callbacks=False)
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for form, says in [
                ({"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": f"{base}/cb/x"}, "not a public address"),
                (
                    {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": "http://169.254.169.254/latest"},
                    "not a public address",
                ),
                (
                    {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": "file:///etc/passwd"},
                    "hub.callback: an absolute http(s) URL",
                ),
                (
                    {
                        "hub.mode": "subscribe",
                        "hub.topic": "https://elsewhere.test/feed",
                        "hub.callback": "https://93.184.216.34/",
                    },
                    "hub.topic: not a feed",
                ),
                (
                    {
                        "hub.mode": "subscribe",
                        "hub.topic": f"{settings.base_url}/feeds/topics/nothing.atom",
                        "hub.callback": "https://93.184.216.34/",
                    },
                    "hub.topic: not a feed",
                ),
                ({"hub.mode": "publish", "hub.topic": topic}, "hub.mode: subscribe or unsubscribe"),
                (
                    {
                        "hub.mode": "subscribe",
                        "hub.topic": topic,
                        "hub.callback": "https://93.184.216.34/",
                        "hub.secret": "x" * 200,
                    },
                    "hub.secret",
                ),
            ]:
                response = await client.post("/websub", data=form)
                assert response.status_code == 400 and says in response.json()["error"], (form, response.text)
    assert seen.verified == []  # nothing was called


async def test_expired_subscriptions_are_neither_delivered_nor_kept(store: Store) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await store.websub_subscribe("latest", "atom", "https://a.test/cb", "", past)
    await store.websub_subscribe("latest", "rss", "https://b.test/cb", "", past + dt.timedelta(hours=1))
    now = dt.datetime.now(dt.UTC)
    assert await store.websub_subscribers("latest", "atom", now) == []
    assert await store.websub_feeds(now) == [("latest", "rss")]
    assert await sql(store, "SELECT count(*) FROM websub") == [(1,)]
    assert json.dumps(await store.websub_subscribers("latest", "rss", now)) == '[["https://b.test/cb", ""]]'


async def test_another_hub_is_advertised_and_pinged(
    store: Store, settings: Settings, tree: Path, subscriber: tuple[Subscriber, str]
) -> None:
    seen, base = subscriber
    hub = f"{base}/cb/hub"
    settings, port, _ = await hubbed(store, settings, websub_hub=hub)
    with LiveServer(create_app(settings), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get("/feeds/latest.json")
            assert (
                response.json()["hubs"] == [{"type": "WebSub", "url": hub}] and f"<{hub}>" in response.headers["link"]
            )
            refused = await client.post("/websub", data={"hub.mode": "subscribe"})
            assert refused.status_code == 404 and "websub_hub names another" in refused.json()["error"]
            await reword(pages_of(tree)[-1], "pinged")
            await until(lambda: any(p["hub.url"].endswith("/feeds/latest.rss") for p in seen.pings), 20)
    assert {p["hub.mode"] for p in seen.pings} == {"publish"}
    urls = {p["hub.url"] for p in seen.pings}
    assert {f"{settings.base_url}/feeds/latest.{fmt}" for fmt in ("rss", "atom", "json")} <= urls


async def test_a_slow_subscriber_delays_no_one(
    store: Store, settings: Settings, tree: Path, subscriber: tuple[Subscriber, str]
) -> None:
    seen, base = subscriber
    settings, port, topic = await hubbed(store, settings)
    with LiveServer(create_app(settings), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for name in ("slow", "reader"):
                form = {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": f"{base}/cb/{name}"}
                assert (await client.post("/websub", data=form)).status_code == 202
            await rows_when(store, 2)
            await reword(pages_of(tree)[-1], "slow")
            changed = time.monotonic()
            await until(lambda: seen.delivered, 10)
            assert time.monotonic() - changed < 4  # not after the slow one's 5 s
            started = time.monotonic()
            assert (await client.get("/feeds/latest.atom")).status_code == 200
            assert time.monotonic() - started < 1  # requests are served meanwhile
            await until(lambda: len(seen.delivered) == 2, 15)
    assert [name for name, _, _ in seen.delivered] == ["reader", "slow"]


async def test_subscriptions_survive_a_restart_and_unsubscribing_stops_deliveries(
    store: Store, settings: Settings, tree: Path, subscriber: tuple[Subscriber, str]
) -> None:
    seen, base = subscriber
    settings, port, topic = await hubbed(store, settings)
    form = {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": f"{base}/cb/reader"}
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.post("/websub", data=form)).status_code == 202
            await rows_when(store, 1)
    pages = pages_of(tree)

    # Another server process on the same store: the subscription is there, and delivered to.
    with LiveServer(create_app(settings), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            await reword(pages[-1], "after restart")
            await until(lambda: len(seen.delivered) == 1, 20)
            assert b"(after restart)" in seen.delivered[0][1]
            assert (await client.post("/websub", data={**form, "hub.mode": "unsubscribe"})).status_code == 202
            await rows_when(store, 0)
            await reword(pages[-2], "unsubscribed")
            deadline = time.monotonic() + 20
            while b"(unsubscribed)" not in (await client.get("/feeds/latest.atom")).content:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)
    assert len(seen.delivered) == 1  # nothing after unsubscribing
