"""The hub's caps: subscriptions per callback host and in all (`websub_max_subscriptions_per_host`,
`websub_max_subscriptions`), refused 429 naming the setting, renewals always taken, and held when
many requests are verified at once (one client once held 1,033 subscriptions)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from feeds.app import create_app
from feeds.config import Settings
from feeds.store import Store
from tests.conftest import LiveServer, free_port
from tests.helpers import refresh_once, sql
from tests.test_websub import rows_when, until

FEEDS = [
    f"{feed}.{fmt}" for feed in ("latest", "topics/russian-invasion-of-ukraine") for fmt in ("atom", "rss", "json")
]


async def test_subscriptions_are_capped_per_callback_host_and_in_all(store: Store, settings: Settings) -> None:
    verified: list[str] = []

    async def callback(request: Request) -> PlainTextResponse:
        verified.append(request.query_params["hub.topic"])
        return PlainTextResponse(request.query_params["hub.challenge"])

    port = free_port()
    settings = replace(
        settings,
        base_url=f"http://127.0.0.1:{port}",
        websub_allow_private_callbacks=True,
        websub_max_subscriptions_per_host=3,
        websub_max_subscriptions=5,
    )
    await refresh_once(store, settings)
    with (
        LiveServer(Starlette(routes=[Route("/cb", callback)])) as subscriber,
        LiveServer(create_app(settings, scheduler=False), port=port) as server,
    ):
        topics = [f"{server.url}/feeds/{feed}" for feed in FEEDS]

        def form(topic: str, host: str = "127.0.0.1") -> dict[str, str]:
            return {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": f"http://{host}:{subscriber.port}/cb"}

        async with httpx.AsyncClient(base_url=server.url) as client:
            # Five at once, before any is verified: each is checked again when verified, three are kept.
            answers = await asyncio.gather(*(client.post("/websub", data=form(t)) for t in topics[:5]))
            assert [a.status_code for a in answers] == [202] * 5
            await until(lambda: len(verified) == 5)
            held = await rows_when(store, 3)
            assert {row[0] for row in held} == {f"http://127.0.0.1:{subscriber.port}/cb"}
            kept = {t for (t,) in await sql(store, "SELECT feed || '.' || fmt FROM websub")}
            refused = await client.post(
                "/websub", data=form(next(t for t in topics if t.split("/feeds/")[1] not in kept))
            )
            assert refused.status_code == 429
            assert refused.json()["error"] == (
                "hub.callback: 127.0.0.1 holds 3 subscriptions, the most one host may (websub_max_subscriptions_per_host)"
            )
            # A held subscription is renewed whatever the caps.
            renewed = next(t for t in topics if t.split("/feeds/")[1] in kept)
            assert (await client.post("/websub", data=form(renewed))).status_code == 202
            await until(lambda: len(verified) == 6)
            # Another host has room of its own, until the hub holds five in all.
            others = [t for t in topics if t.split("/feeds/")[1] not in kept]
            for topic in others[:2]:
                assert (await client.post("/websub", data=form(topic, "localhost"))).status_code == 202
            await rows_when(store, 5)
            full = await client.post("/websub", data=form(others[2], "localhost"))
            assert full.status_code == 429
            assert (
                full.json()["error"] == "this hub holds 5 subscriptions, the most it takes (websub_max_subscriptions)"
            )
    assert len(await sql(store, "SELECT * FROM websub")) == 5
