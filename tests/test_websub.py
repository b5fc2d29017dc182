"""WebSub with a real subscriber on 127.0.0.1: feeds advertise the hub and themselves; a
subscription is made only when the subscriber echoes the challenge; a change is delivered once,
signed, to each active subscriber; a failing subscriber is retried with backoff and dropped without
delaying the others; unsubscribing is verified too; private callbacks need the switch."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import sqlite3
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
from feeds.publish import encode
from feeds.store import MIGRATIONS, Store, _statements
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
            if name == "gone":
                self.failures += 1
                return PlainTextResponse("gone", status_code=410)
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


def owed(database: str) -> tuple[int, bool, int]:
    """(deliveries owed, whether every change was taken by a hub (or there is nobody to take it
    for), the most failures of one)."""
    with contextlib.closing(sqlite3.connect(database, timeout=10)) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM websub_outbox), "
            "(SELECT value FROM meta WHERE key = 'websub_cursor') = (SELECT value FROM meta WHERE key = 'renditions') "
            "OR NOT EXISTS (SELECT 1 FROM websub), "
            "(SELECT coalesce(max(failures), 0) FROM websub_outbox)"
        ).fetchone()
    return int(row[0]), bool(row[1]), int(row[2])


async def settled(database: str, seconds: float = 20.0) -> None:
    """Once every change the store holds was taken by a hub and nothing is owed to anyone: no
    delivery can follow (one is sent only while it is owed)."""
    deadline = time.monotonic() + seconds
    while (state := await asyncio.to_thread(owed, database))[:2] != (0, True):
        assert time.monotonic() < deadline, state
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
            await settled(settings.database)  # more refreshes, nothing new: nothing more is owed
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
    await store.websub_subscribe("latest", "atom", "https://b.test/cb", "s", past + dt.timedelta(hours=1))
    now = dt.datetime.now(dt.UTC)
    await store.put_rendition(encode("latest", "atom", b"<feed>new</feed>", now))
    assert await store.websub_collect(now) == 1
    assert [(o.callback, o.secret) for o in await store.websub_claim(now, now, 16)] == [("https://b.test/cb", "s")]
    assert await sql(store, "SELECT callback FROM websub") == [("https://b.test/cb",)]


async def test_what_is_owed_follows_the_stores_versions(store: Store) -> None:
    """The rules of owed deliveries, on the store alone: a subscriber is owed what was written after
    it subscribed, once however many versions it missed, and taken by one process only; a claim is
    its holder's until it runs out; a version written during a delivery is owed again; dropping,
    expiry and unsubscribing end what is owed."""
    now = dt.datetime.now(dt.UTC)
    later = now + dt.timedelta(days=1)

    async def write(n: int) -> str:
        rendition = encode("latest", "atom", f"<feed>{n}</feed>".encode(), now)
        await store.put_rendition(rendition)
        return rendition.etag

    first = await write(1)
    assert await store.websub_collect(now) == 0 and await store.websub_pending() == (False, None)
    await store.websub_subscribe("latest", "atom", "https://a.test/cb", "s", later)
    assert await store.websub_collect(now) == 0  # it has the current version
    await write(2)
    third = await write(3)
    other = await Store.open(store.path)  # another process's connection: one of the two takes the change
    try:
        taken = [await s.websub_collect(now) for s in (other, store)]
        assert taken == [1, 0] and await store.websub_pending() == (False, now)
        (owed,) = await store.websub_claim(now, now + dt.timedelta(seconds=60), 16)
        assert (owed.callback, owed.secret, owed.sent, owed.failures) == ("https://a.test/cb", "s", first, 0)
        assert await other.websub_claim(now, now + dt.timedelta(seconds=60), 16) == []  # held
        (again,) = await other.websub_claim(now + dt.timedelta(seconds=61), later, 16)  # the holder died
        assert again.key == owed.key
    finally:
        await other.close()
    await store.websub_delivered(owed, third, now)
    assert await store.websub_pending() == (False, None)

    fourth = await write(4)
    await store.websub_collect(now)
    (owed,) = await store.websub_claim(now, later, 16)
    await write(5)  # while the fourth is being sent
    assert await store.websub_collect(now) == 0  # owed already
    await store.websub_delivered(owed, fourth, now)
    (owed,) = await store.websub_claim(now, later, 16)  # owed the fifth at once
    assert owed.sent == fourth
    await store.websub_failed(owed, now + dt.timedelta(seconds=2))
    assert await store.websub_pending() == (False, now + dt.timedelta(seconds=2))
    (owed,) = await store.websub_claim(now + dt.timedelta(seconds=2), later, 16)
    assert owed.failures == 1
    await store.websub_failed(owed, None)  # dropped
    assert await store.websub_pending() == (False, None)

    await write(6)
    await store.websub_collect(now)
    (owed,) = await store.websub_claim(now, later, 16)
    await store.websub_release([owed], now)  # a process stopping gives back what it had under way
    assert [o.key for o in await store.websub_claim(now, later, 16)] == [owed.key]
    await store.websub_unsubscribe("latest", "atom", "https://a.test/cb")
    assert await sql(store, "SELECT count(*) FROM websub_outbox") == [(0,)]
    await store.websub_subscribe("latest", "atom", "https://b.test/cb", "", now + dt.timedelta(seconds=1))
    await write(7)
    await store.websub_collect(now)
    assert await store.websub_claim(now + dt.timedelta(seconds=1), later, 16) == []  # its lease ran out
    assert await sql(store, "SELECT count(*) FROM websub_outbox UNION ALL SELECT count(*) FROM websub") == [(0,), (0,)]
    await write(8)  # pinging another hub: what changed, taken once
    assert [await store.websub_changed() for _ in range(2)] == [[("latest", "atom")], []]


async def test_upgrading_a_store_owes_nothing_already_rendered(tmp_path: Path) -> None:
    """Schema 17 on a store with subscriptions: each has the version served, and the cursor is at
    the newest, so an upgrade sends nothing until something changes."""
    path = str(tmp_path / "v16.db")
    conn = sqlite3.connect(path, isolation_level=None)
    for version in range(1, 17):
        for statement in _statements(MIGRATIONS[version]):
            conn.execute(statement)
    conn.execute("PRAGMA user_version=16")
    conn.execute(
        "INSERT INTO renditions (feed, fmt, etag, last_modified, content_type, rendered_at, version, gz, br) "
        "VALUES ('latest', 'atom', 'e1', '2024-01-01T00:00:00+00:00', 'application/atom+xml', "
        "'2024-01-01T00:00:00+00:00', 7, x'', x'')"
    )
    conn.execute("INSERT INTO meta VALUES ('renditions', '7')")
    conn.execute("INSERT INTO websub VALUES ('latest', 'atom', 'https://a.test/cb', '', '2999-01-01T00:00:00+00:00')")
    conn.close()
    store = await Store.open(path)
    try:
        assert await sql(store, "SELECT sent FROM websub") == [("e1",)]
        assert await store.websub_pending() == (False, None)
        assert await store.websub_collect(dt.datetime.now(dt.UTC)) == 0
    finally:
        await store.close()


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


async def subscribed(client: httpx.AsyncClient, store: Store, topic: str, base: str, *names: str) -> None:
    """Each of `names` subscribed to `topic` (callbacks `{base}/cb/{name}`), once the hub holds them."""
    for name in names:
        form = {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": f"{base}/cb/{name}"}
        assert (await client.post("/websub", data=form)).status_code == 202
    await rows_when(store, len(names))


async def test_a_slow_subscriber_delays_no_one(
    store: Store, settings: Settings, tree: Path, subscriber: tuple[Subscriber, str]
) -> None:
    seen, base = subscriber
    settings, port, topic = await hubbed(store, settings)
    with LiveServer(create_app(settings), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            await subscribed(client, store, topic, base, *("slow", "reader"))
            await reword(pages_of(tree)[-1], "slow")
            changed = time.monotonic()
            await until(lambda: seen.delivered, 10)
            assert time.monotonic() - changed < 4  # not after the slow one's 5 s
            started = time.monotonic()
            assert (await client.get("/feeds/latest.atom")).status_code == 200
            assert time.monotonic() - started < 1  # requests are served meanwhile
            await until(lambda: len(seen.delivered) == 2, 15)
    assert [name for name, _, _ in seen.delivered] == ["reader", "slow"]


async def test_a_subscriber_answering_410_is_unsubscribed(
    store: Store, settings: Settings, tree: Path, subscriber: tuple[Subscriber, str]
) -> None:
    seen, base = subscriber
    settings, port, topic = await hubbed(store, settings)
    with LiveServer(create_app(settings), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            await subscribed(client, store, topic, base, *("gone", "reader"))
            await reword(pages_of(tree)[-1], "gone")
            await until(lambda: seen.delivered and seen.failures, 20)
            assert [c for c, _, _ in await rows_when(store, 1)] == [f"{base}/cb/reader"]
            await settled(settings.database)
    assert seen.failures == 1 and [name for name, _, _ in seen.delivered] == ["reader"]  # not retried


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
            await settled(settings.database)
    assert len(seen.delivered) == 1  # nothing after unsubscribing
