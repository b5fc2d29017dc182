"""Edits show at once: a served directory source is watched, and an edit, a new page or a removed
one reaches the served feeds about a second later, long before the next scheduled refresh."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import httpx
import psutil
import pytest

from feeds.app import create_app
from feeds.config import Settings
from feeds.sources.watch import DEBOUNCE_MS, TreeWatch
from tests.conftest import OFFSTREAM, LiveServer
from tests.frontends import free_port
from tests.helpers import feeds_serve, wait_for

BOAT = "news/2018/01/1/a-boat-capsizes-in-the-north-of-indonesian-borneo-with-at-least-8-people-dead.md"

pytestmark = pytest.mark.skipif(not Path("/proc/sys/fs/inotify").exists(), reason="no inotify")


def showing(url: str, present: str, absent: str = "", seconds: float = 15.0) -> tuple[httpx.Response, float]:
    """The first answer holding `present` and not `absent`, and how long it took to come."""
    started = time.monotonic()
    while True:
        response = httpx.get(url)
        if response.status_code == 200 and present in response.text and not (absent and absent in response.text):
            return response, time.monotonic() - started
        assert time.monotonic() - started < seconds, f"{url} did not show {present!r} in {seconds} s"
        time.sleep(0.02)


def ready(url: str, seconds: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while (response := httpx.get(url)).status_code != 200:
        assert time.monotonic() < deadline, response.text
        time.sleep(0.05)
    return response


def test_edits_reach_the_served_feeds_within_about_a_second(settings: Settings, tree: Path) -> None:
    hourly = replace(settings, refresh_interval=3600)  # no scheduled refresh during the test
    with LiveServer(create_app(hourly)) as server:
        latest = f"{server.url}/feeds/latest.atom"
        ready(latest)
        page = next(p for p in sorted(tree.glob("news/2024/*/*/*.md")) if p.name != "index.md")
        headline = next(line for line in page.read_text().splitlines() if line.startswith("# "))

        page.write_text(page.read_text().replace(headline, headline + " (edited 1)", 1))
        _, took = showing(latest, "(edited 1)")
        # The debounce (at most DEBOUNCE_MS), a refresh of one page, the cache's wake: about a
        # second; bounded loosely here for a busy machine (measured: docs/architecture.md).
        assert took < 3 + DEBOUNCE_MS / 1000, took

        # A new day folder with a page in it, then the page removed.
        (tree / BOAT).parent.mkdir(parents=True)
        shutil.copy(OFFSTREAM / BOAT, tree / BOAT)
        day = f"{server.url}/feeds/dates/2018-01-01.atom"
        assert "capsizes" in ready(day, 15).text
        (tree / BOAT).unlink()
        # Its day's feed keeps a tombstone of it (RFC 6721) instead of the entry.
        showing(day, "<at:deleted-entry", absent="capsizes")


def test_a_watch_stops_when_its_source_is_dropped(tmp_path: Path) -> None:
    """A source dropped without aclose() (a failed refresh) leaves no watcher thread behind."""
    import threading

    (tmp_path / "news").mkdir()
    watch = TreeWatch(tmp_path)
    assert any(t.name == "feeds-watch" for t in threading.enumerate())
    del watch
    deadline = time.monotonic() + 5
    while any(t.name == "feeds-watch" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the watcher thread outlived its watch"
        time.sleep(0.02)


def inotify_instances(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd) == "anon_inode:inotify"
    return count


def test_with_two_workers_only_the_lease_holder_watches_and_refreshes(tmp_path: Path, tree: Path) -> None:
    """Every worker's cache watches the store's folder; only the worker holding the scheduler
    lease collects the directory source, so only it watches the tree and refreshes on an edit."""
    port = free_port()
    config = tmp_path / "feeds.toml"
    config.write_text(
        f'database = "feeds.db"\nport = {port}\nrefresh_interval = 3600\n'
        f'[[sources]]\nname = "example"\nkind = "directory"\nlocation = "{tree}"\n'
    )
    latest = f"http://127.0.0.1:{port}/feeds/latest.atom"
    with feeds_serve(config, "--workers", "2") as server:
        wait_for(server, latest)
        page = next(p for p in sorted(tree.glob("news/2024/*/*/*.md")) if p.name != "index.md")
        page.write_text(page.read_text().replace("\n# ", "\n# Edited under two workers: ", 1))
        showing(latest, "Edited under two workers")
        workers = [p for p in psutil.Process(server.pid).children(recursive=True) if inotify_instances(p.pid)]
        # Every worker watches the store's log; only the lease holder watches the tree as well.
        other, leader = sorted(inotify_instances(p.pid) for p in workers)
        assert leader == other + 1, (other, leader)
    output: str = server.output  # type: ignore[attr-defined]
    refreshes = [line for line in output.splitlines() if "feeds.scheduler: refresh:" in line]
    assert output.count("runs the refreshes") == 1 and any(" 1 changed" in line for line in refreshes), output
