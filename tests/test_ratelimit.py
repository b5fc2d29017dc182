"""Polling etiquette over real HTTP: a token bucket per client, 429 with Retry-After beyond it, a
304 costing a fifth of a 200, X-Forwarded-For believed only from configured proxies."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from feeds.app import create_app
from feeds.config import Settings, load
from feeds.errors import ConfigError
from feeds.ratelimit import client_of, networks
from feeds.store import Store
from tests.conftest import LiveServer, free_port
from tests.helpers import refresh_once

FEED = "/feeds/latest.atom"


async def served(store: Store, settings: Settings, **limits: object) -> tuple[LiveServer, Settings]:
    port = free_port()
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}", **limits)  # type: ignore[arg-type]
    await refresh_once(store, settings)
    return LiveServer(create_app(settings, scheduler=False), port=port), settings


async def test_a_client_over_its_burst_is_told_when_to_come_back(store: Store, settings: Settings) -> None:
    server, _ = await served(store, settings, rate_limit=0.1, rate_burst=10)  # a token every 10 s
    with server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            answers = [(await client.get(FEED)).status_code for _ in range(10)]
            assert answers == [200] * 10
            refused = await client.get(FEED)
            assert refused.status_code == 429
            assert 1 <= int(refused.headers["retry-after"]) <= 10  # the part of a token it lacks, at 0.1 a second
            assert "at most 0.1 a second per client (rate_limit)" in refused.json()["error"]
            assert refused.headers["cache-control"] == "no-store"
            # Another client (a proxy it trusts not: the header is ignored) is the same client.
            spoofed = await client.get(FEED, headers={"X-Forwarded-For": "203.0.113.9"})
            assert spoofed.status_code == 429


async def test_conditional_pollers_answered_304_are_rarely_limited(store: Store, settings: Settings) -> None:
    server, _ = await served(store, settings, rate_limit=0.1, rate_burst=10)
    with server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            first = await client.get(FEED)
            etag = first.headers["etag"]
            # 9 tokens left: 45 polls answered 304 at a fifth each.
            polls = [(await client.get(FEED, headers={"If-None-Match": etag})).status_code for _ in range(45)]
            assert polls == [304] * 45
            assert (await client.get(FEED)).status_code == 429


async def test_a_conditional_poller_at_the_configured_pace_is_never_limited(store: Store, settings: Settings) -> None:
    server, _ = await served(store, settings, rate_limit=4.0, rate_burst=4)
    with server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            etag = (await client.get(FEED)).headers["etag"]
            statuses = set()
            for _ in range(24):  # six seconds at the limit's pace, each poll conditional
                statuses.add((await client.get(FEED, headers={"If-None-Match": etag})).status_code)
                await asyncio.sleep(0.25)
            assert statuses == {304}


async def test_trusted_proxies_name_the_client(store: Store, settings: Settings) -> None:
    server, _ = await served(store, settings, rate_limit=0.1, rate_burst=3, trusted_proxies=("127.0.0.0/8",))
    with server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for reader in ("198.51.100.1", "198.51.100.2"):
                forwarded = {"X-Forwarded-For": f"{reader}, 127.0.0.2"}  # reader, then an inner proxy
                statuses = [(await client.get(FEED, headers=forwarded)).status_code for _ in range(4)]
                assert statuses == [200, 200, 200, 429], reader


async def test_no_limit_when_rate_limit_is_zero(store: Store, settings: Settings) -> None:
    server, _ = await served(store, settings, rate_limit=0.0, rate_burst=1)
    with server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert {(await client.get(FEED)).status_code for _ in range(30)} == {200}


def test_client_of_reads_forwarded_addresses_from_the_right() -> None:
    proxies = networks(["10.0.0.0/8", "::1"])
    assert client_of("10.1.2.3", "192.0.2.7, 10.9.9.9", proxies) == "192.0.2.7"
    assert (
        client_of("10.1.2.3", "192.0.2.66, 192.0.2.7, 10.9.9.9", proxies) == "192.0.2.7"
    )  # the leftmost is the client's say
    assert client_of("192.0.2.1", "192.0.2.7", proxies) == "192.0.2.1"  # not from a proxy: ignored
    assert client_of("::1", None, proxies) == "::1"


def test_settings_are_checked(tmp_path: Path) -> None:
    config = tmp_path / "feeds.toml"
    config.write_text('trusted_proxies = ["10.0.0.0/8", "proxy.example"]\n')
    with pytest.raises(ConfigError, match=re.escape("trusted_proxies: not an IP address or network: 'proxy.example'")):
        load(config, env={})
    config.write_text("rate_burst = 0\n")
    with pytest.raises(ConfigError, match="rate_burst: must be positive"):
        load(config, env={})
    config.write_text("")
    got = load(config, env={"FEEDS_TRUSTED_PROXIES": "10.0.0.1, fd00::/8", "FEEDS_RATE_LIMIT": "2.5"})
    assert got.trusted_proxies == ("10.0.0.1/32", "fd00::/8") and got.rate_limit == 2.5
