"""The cache configurations shipped in deploy/ in front of a real `feeds serve`, with Debian's
nginx and Varnish on loopback (.ci/run installs them): encodings never mix, 304s flow end to
end, a change reaches readers within the time the origin advertises, many readers waiting for
one document cost the origin one request, and a dead origin is covered by stale copies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLE, free_port
from tests.frontends import nginx_cache, raw, require, varnish_cache
from tests.helpers import feeds_serve, wait_for
from tests.test_metrics import samples, value
from tests.test_websub import pages_of, reword

REFRESH, MAX_AGE, STALE_WHILE_REVALIDATE = 1, 2, 1
# What a reader may wait for a change: the origin notices it within a refresh, a cache serves its
# copy until max-age and a stale one while it revalidates; the rest is slack for a busy machine.
ADVERTISED = REFRESH + MAX_AGE + STALE_WHILE_REVALIDATE
SLACK = 8
FEED = "/feeds/latest.atom"
CACHES: dict[str, Callable[[Path, list[int]], AbstractContextManager[int]]] = {
    "nginx": nginx_cache,
    "varnish": varnish_cache,
}


@dataclass
class Origin:
    server: subprocess.Popen[bytes]
    url: str
    tree: Path


@pytest.fixture(params=sorted(CACHES))
def kind(request: pytest.FixtureRequest) -> str:
    require({"nginx": "nginx", "varnish": "varnishd"}[request.param])  # before an origin is started for nothing
    return str(request.param)


@contextlib.contextmanager
def started(work: Path, tree: Path) -> Iterator[Origin]:
    """`feeds serve` of `tree` with its own store in `work`: replicas of one tree agree byte for byte."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = work / "feeds.toml"
    config.write_text(
        # One public URL for every replica (left out, it would follow each one's port).
        f'base_url = "http://feeds.test"\ndatabase = "{work / "feeds.db"}"\nport = {port}\nrefresh_interval = {REFRESH}\ncache_max_age = {MAX_AGE}\n'
        f"cache_stale_while_revalidate = {STALE_WHILE_REVALIDATE}\ncache_stale_if_error = 3600\n"
        f'rate_limit = 0\naccess_log = "off"\n'
        f'[[sources]]\nname = "example"\nkind = "directory"\nlocation = "{tree}"\n'
    )
    url = f"http://127.0.0.1:{port}"
    with feeds_serve(config) as server:
        wait_for(server, url + FEED)
        wait_for(server, url + "/topics.json")
        yield Origin(server, url, tree)


def port_of(origin: Origin) -> int:
    return int(origin.url.rpartition(":")[2])


@pytest.fixture
def origin(kind: str, tmp_path: Path) -> Iterator[Origin]:  # after `kind`: no origin for a cache not installed
    tree = tmp_path / "tree"
    shutil.copytree(EXAMPLE / "news", tree / "news")
    with started(tmp_path / "origin", tree) as first:
        yield first


@pytest.fixture
def cache(kind: str, origin: Origin, tmp_path: Path) -> Iterator[str]:
    with CACHES[kind](tmp_path / kind, [port_of(origin)]) as port:
        yield f"http://127.0.0.1:{port}"


def origin_counts(origin: Origin) -> Callable[..., float]:
    """The origin's count of feed requests by status and encoding (a 304 has none: identity)."""
    found = samples(httpx.get(origin.url + "/metrics").text)
    return lambda **labels: value(found, "feeds_requests_total", route="feeds", **labels)


def test_representations_stay_apart_and_304s_flow_end_to_end(origin: Origin, cache: str) -> None:
    # Each encoding as the origin stores it, whatever the client's spelling; one never served for another.
    for encoding, spellings in {
        "identity": ["identity", "deflate"],
        "gzip": ["gzip", "deflate, gzip"],
        "br": ["br", "gzip, deflate, br", "br;q=1.0, gzip;q=0.8"],
    }.items():
        _, expected_headers, expected = raw(origin.url + FEED, encoding)
        for spelling in spellings:
            status, headers, body = raw(cache + FEED, spelling)
            assert status == 200 and body == expected, (encoding, spelling)
            assert headers["etag"] == expected_headers["etag"]
            assert headers.get("content-encoding") == expected_headers.get("content-encoding")
            assert headers["last-modified"] == expected_headers["last-modified"]
            # The cache answers a reader's validators itself.
            assert raw(cache + FEED, spelling, **{"if-none-match": headers["etag"]})[0] == 304
            assert raw(cache + FEED, spelling, **{"if-modified-since": headers["last-modified"]})[0] == 304
        assert raw(cache + FEED, "identity", **{"if-none-match": expected_headers["etag"] + "x"})[0] == 200
    # Expired copies are revalidated with the origin's validators: a 304, no body sent again.
    before = origin_counts(origin)
    time.sleep(MAX_AGE + STALE_WHILE_REVALIDATE + 0.5)
    deadline = time.monotonic() + SLACK
    while origin_counts(origin)(status="304", encoding="identity") == before(status="304", encoding="identity"):
        assert time.monotonic() < deadline, "the cache never revalidated its copy with the origin"
        assert raw(cache + FEED, "br")[0] == 200
        time.sleep(0.2)
    after = origin_counts(origin)
    assert after(status="200", encoding="br") == before(status="200", encoding="br")
    status, headers, body = raw(cache + FEED, "br")
    assert status == 200 and headers["etag"] == raw(origin.url + FEED, "br")[1]["etag"]


async def test_a_change_reaches_readers_within_the_advertised_time(origin: Origin, cache: str) -> None:
    assert raw(cache + FEED, "br")[0] == 200  # cached before the change
    await reword(pages_of(origin.tree)[-1], "Reworded")
    changed = time.monotonic()
    async with httpx.AsyncClient(timeout=10) as client:
        while "(Reworded)" not in (await client.get(cache + FEED, headers={"accept-encoding": "br"})).text:
            assert time.monotonic() - changed < ADVERTISED + SLACK, "the change never reached the cache's readers"
            await asyncio.sleep(0.2)
    waited = time.monotonic() - changed
    assert waited < ADVERTISED + SLACK, waited
    # Every representation moved on, none left behind with the old bytes.
    for encoding in ("identity", "gzip"):
        deadline = time.monotonic() + ADVERTISED + SLACK
        while "(Reworded)" not in httpx.get(cache + FEED, headers={"accept-encoding": encoding}).text:
            assert time.monotonic() < deadline, encoding
            await asyncio.sleep(0.2)


async def test_many_readers_waiting_for_one_document_cost_the_origin_one_request(origin: Origin, cache: str) -> None:
    slug = httpx.get(origin.url + "/topics.json").json()[0]["slug"]
    path = f"/feeds/topics/{slug}.json"
    before = origin_counts(origin)
    async with httpx.AsyncClient(timeout=30) as client:
        answers = await asyncio.gather(
            *(client.get(cache + path, headers={"accept-encoding": "gzip"}) for _ in range(40))
        )
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    after = origin_counts(origin)
    assert after(status="200", encoding="gzip") - before(status="200", encoding="gzip") == 1


def test_a_dead_origin_is_covered_by_stale_copies(origin: Origin, cache: str) -> None:
    kept = {path: raw(cache + path, "gzip")[2] for path in (FEED, "/feeds/latest.json", "/")}
    os.killpg(origin.server.pid, signal.SIGTERM)
    origin.server.wait(timeout=30)
    with contextlib.suppress(httpx.TransportError):
        httpx.get(origin.url + "/healthz", timeout=2)
        pytest.fail("the origin still answers")
    time.sleep(MAX_AGE + STALE_WHILE_REVALIDATE + 2)  # every copy expired, and past its revalidation window
    for path, body in kept.items():
        status, _, served = raw(cache + path, "gzip")
        assert status == 200 and served == body, path
    # What was never cached is an error, not something made up.
    assert raw(cache + "/feeds/dates/1999-01-01.atom", "gzip")[0] >= 500


def test_replicas_behind_the_cache_agree_and_cover_for_each_other(kind: str, origin: Origin, tmp_path: Path) -> None:
    with started(tmp_path / "replica", origin.tree) as replica:
        assert raw(replica.url + FEED, "br")[1]["etag"] == raw(origin.url + FEED, "br")[1]["etag"]
        with CACHES[kind](tmp_path / kind, [port_of(origin), port_of(replica)]) as port:
            cache = f"http://127.0.0.1:{port}"
            status, headers, body = raw(cache + FEED, "br")
            assert status == 200
            before = origin_counts(replica)
            os.killpg(origin.server.pid, signal.SIGTERM)
            origin.server.wait(timeout=30)
            time.sleep(MAX_AGE + STALE_WHILE_REVALIDATE + 1)
            # The copy expired and its first origin is gone: the replica revalidates it (or sends it).
            deadline = time.monotonic() + SLACK
            while True:
                again = raw(cache + FEED, "br")
                assert again[0] == 200 and again[1]["etag"] == headers["etag"] and again[2] == body
                after = origin_counts(replica)
                if after(status="304", encoding="identity") + after(status="200", encoding="br") > before(
                    status="304", encoding="identity"
                ) + before(status="200", encoding="br"):
                    break
                assert time.monotonic() < deadline, "the replica was never asked"
                time.sleep(0.3)
