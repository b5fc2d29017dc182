"""/metrics as Prometheus reads it: requests by route, status and encoding, refreshes, events
stored, source failures, and the bounded caches beside resident memory; summed over the worker
processes of `feeds serve --workers 2`."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import httpx
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from feeds.app import create_app
from feeds.config import Settings, SourceConfig
from feeds.metrics import route_of
from tests.conftest import LiveServer, free_port
from tests.helpers import feeds_serve, wait_for


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, as Prometheus parses the exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_routes_are_a_bounded_set() -> None:
    assert [route_of(p) for p in ("/", "/feeds/latest.atom", "/topics", "/news/2018/01/1/x.html", "/wp-login.php")] == [
        "home",
        "feeds",
        "topics",
        "news",
        "other",
    ]


async def test_one_server_counts_what_it_answers_and_what_it_holds(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    broken = SourceConfig(name="gone", kind="directory", location=str(tmp_path / "gone"))
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}", sources=(*settings.sources, broken))
    # The counters are the process's: other tests' servers counted before this one.
    earlier = samples(generate_latest().decode())
    with LiveServer(create_app(settings), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            deadline = time.monotonic() + 30
            while value(before := samples((await client.get("/metrics")).text), "feeds_refresh_seconds_count") <= value(
                earlier, "feeds_refresh_seconds_count"
            ):
                assert time.monotonic() < deadline, "no refresh finished in 30 s"
                time.sleep(0.1)  # the refresh run at start
            first = await client.get("/feeds/latest.atom", headers={"Accept-Encoding": "gzip"})
            for _ in range(3):
                await client.get(
                    "/feeds/latest.atom", headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["etag"]}
                )
            await client.get("/feeds/nothing.rss", headers={"Accept-Encoding": "identity"})
            response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    after = samples(response.text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("feeds_requests_total", route="feeds", status="200", encoding="gzip") == 1
    assert delta("feeds_requests_total", route="feeds", status="304", encoding="identity") == 3
    assert delta("feeds_requests_total", route="feeds", status="404", encoding="identity") == 1
    # The refresh that ran at start: the example's 59 events, and the source that is not there.
    assert (
        value(after, "feeds_events_stored_total", kind="new") - value(earlier, "feeds_events_stored_total", kind="new")
        == 59
    )
    assert (
        value(after, "feeds_source_failures_total", source="gone")
        - value(earlier, "feeds_source_failures_total", source="gone")
        >= 1
    )
    held = value(after, "feeds_cache_bytes", cache="renditions")
    assert 0 < held <= value(after, "feeds_cache_limit_bytes", cache="renditions") == settings.cache_bytes
    assert value(after, "feeds_cache_bytes", cache="entries") > 0
    assert value(after, "feeds_sqlite_memory_bytes") > 0
    assert value(after, "feeds_resident_bytes") > value(after, "feeds_sqlite_memory_bytes")


def test_two_workers_answer_with_the_sum_of_both(tmp_path: Path, tree: Path) -> None:
    port = free_port()
    config = tmp_path / "feeds.toml"
    config.write_text(
        f'database = "feeds.db"\nport = {port}\nrefresh_interval = 3600\naccess_log = "off"\nrate_limit = 0\n'
        f'[[sources]]\nname = "example"\nkind = "directory"\nlocation = "{tree}"\n'
    )
    base = f"http://127.0.0.1:{port}"
    with feeds_serve(config, "--workers", "2") as server:
        wait_for(server, f"{base}/feeds/latest.atom")
        with httpx.Client(base_url=base) as first, httpx.Client(base_url=base) as second:
            healthz = {"route": "healthz", "status": "200", "encoding": "identity"}
            start = value(samples(first.get("/metrics").text), "feeds_requests_total", **healthz)
            for client in (first, second) * 10:  # two connections: the kernel spreads them over the workers
                assert client.get("/healthz", headers={"Accept-Encoding": "identity"}).status_code == 200
            time.sleep(6)  # each worker adds its counts to the shared ones every 5 s
            counts = {
                value(samples(c.get("/metrics").text), "feeds_requests_total", **healthz) for c in (first, second) * 3
            }
        assert counts == {start + 20}  # whichever worker answers, the sum of both
        found = samples(httpx.get(f"{base}/metrics").text)
        assert value(found, "feeds_resident_bytes") > 2 * 20 << 20  # two workers, each over 20 MiB
    output: str = server.output  # type: ignore[attr-defined]
    assert "Traceback" not in output, output
