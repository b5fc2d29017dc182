"""A full disk and a damaged store, for real: a small tmpfs the store fills, and a copy of a store
with random bytes written into the middle of its file. Each is one line saying which store and
what to do; a server keeps serving what it served and retries; nothing stored is lost."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from feeds.app import create_app
from feeds.errors import StoreDamaged
from feeds.responses import JSON_TYPE
from feeds.store import Store
from feeds.store.failures import quick_check
from tests.conftest import EXAMPLE, LiveServer, Settings
from tests.frontends import free_port
from tests.helpers import feeds_serve, not_logged, refresh_once, wait_for


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A real filesystem of `size` (tmpfs) mounted at `where`, unmounted whatever happens."""
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def grow(disk: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """Take every free byte of the disk."""
    filler = disk / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 16))
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def feeds(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feeds", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin"},
    )


def errors_of(done: subprocess.CompletedProcess[str]) -> list[str]:
    return not_logged(done.stderr)


def store_config(tmp_path: Path, database: Path, source: Path = EXAMPLE, interval: int = 600) -> Path:
    port = free_port()
    config = tmp_path / "feeds.toml"
    config.write_text(
        f'database = "{database}"\nport = {port}\nrefresh_interval = {interval}\n'
        f'[[sources]]\nname = "example"\nkind = "directory"\nlocation = "{source}"\n'
    )
    return config


def count(database: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_ingest_on_a_full_disk_is_one_line_and_the_next_run_completes(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "3m") as disk:
        database = disk / "feeds.db"
        config = store_config(tmp_path, database)
        done = feeds(config, "ingest", str(EXAMPLE), "--no-progress")
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        [line] = errors_of(done)
        assert line.startswith(f"Error: store: the disk holding {database} is full ({disk}: "), line
        assert "free space there, then run it again" in line
        # Space freed: the same command stores and publishes everything, and the file is sound.
        grow(disk, "32m")
        done = feeds(config, "ingest", str(EXAMPLE), "--no-progress")
        assert done.returncode == 0, done.stderr
        assert count(database, "events") == 59
        again = feeds(config, "ingest", str(EXAMPLE), "--no-progress")
        assert again.stdout.startswith("0 new, 0 changed, 0 deleted events; 0 feeds to render"), again.stdout


def test_a_server_on_a_full_disk_serves_what_it_served_and_catches_up_when_space_is_freed(
    tmp_path: Path, tree: Path
) -> None:
    with small_disk(tmp_path / "disk", "24m") as disk:
        config = store_config(tmp_path, disk / "feeds.db", tree, interval=1)
        port = int(config.read_text().split("port = ")[1].split("\n")[0])
        base = f"http://127.0.0.1:{port}"
        urls = [f"{base}/feeds/latest.atom", f"{base}/feeds/dates/2023-02-06.rss", f"{base}/topics.json"]
        with feeds_serve(config) as server:
            served = {url: wait_for(server, url).headers["etag"] for url in urls}
            filler = fill(disk)
            # Every page edited: more to write than the store's log can take again without growing.
            for page in (p for p in tree.glob("news/*/*/*/*.md") if p.name != "index.md"):
                page.write_text(page.read_text().replace("\n# ", "\n# Edited: ", 1))
            # Three refresh intervals of failing refreshes: every document served before is still
            # served whole (the one it was, or a new version a write could finish before the disk
            # ran out), never a 503.
            until = time.monotonic() + 3
            while time.monotonic() < until:
                for url in served:
                    response = httpx.get(url)
                    assert response.status_code == 200 and response.headers["etag"], response.text
                health = httpx.get(f"{base}/healthz")
                assert health.status_code == 200 and health.json()["status"] == "ok"
            filler.unlink()
            deadline = time.monotonic() + 60
            while httpx.get(urls[0]).headers["etag"] == served[urls[0]]:
                assert time.monotonic() < deadline, "the edit never reached the feed after space was freed"
                time.sleep(0.2)
            while httpx.get(urls[0]).text.count("Edited: ") < 5:  # items_per_feed: all of latest
                assert time.monotonic() < deadline, "the edits never reached the feed after space was freed"
                time.sleep(0.2)
    output: str = server.output  # type: ignore[attr-defined]
    assert "Traceback" not in output, output
    full = [line for line in output.splitlines() if "is full" in line]
    assert len(full) == 1 and str(disk / "feeds.db") in full[0], output
    assert "is written again" in output


async def damaged_copy(
    settings: Settings, tmp_path: Path, query: str = "SELECT count(*) FROM events WHERE live = 1"
) -> Path:
    """A copy of a store with random bytes over the first page of the table or index `query`
    reads (what /healthz counts), mid-file."""
    store = await Store.open(settings.database)
    try:
        await refresh_once(store, settings)
    finally:
        await store.close()
    copy = tmp_path / "damaged.db"
    with contextlib.closing(sqlite3.connect(settings.database)) as conn:
        conn.execute(f"VACUUM INTO '{copy}'")
        with contextlib.closing(sqlite3.connect(copy)) as again:
            again.execute("PRAGMA journal_mode=WAL")  # as the store keeps it
            page_size = again.execute("PRAGMA page_size").fetchone()[0]
            plan = " ".join(row[-1] for row in again.execute(f"EXPLAIN QUERY PLAN {query}"))
            name = plan.split(" USING COVERING INDEX ")[-1].split()[0] if "INDEX" in plan else plan.split()[1]
            root = again.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
    assert 1 < root < os.path.getsize(copy) // page_size  # mid-file, not its header
    with open(copy, "r+b") as out:
        out.seek((root - 1) * page_size)
        out.write(random.Random(7).randbytes(page_size))
    return copy


@pytest.mark.parametrize("command", ["ingest", "serve", "refresh"])
async def test_a_damaged_store_is_one_line_saying_what_to_do(settings: Settings, tmp_path: Path, command: str) -> None:
    copy = await damaged_copy(settings, tmp_path)
    before = copy.read_bytes()
    config = store_config(tmp_path, copy)
    args = {"serve": ["serve"], "ingest": ["ingest", str(EXAMPLE), "--no-progress"]}.get(command, [command])
    done = feeds(config, *args)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    [line] = errors_of(done)
    assert line.startswith(f"Error: store: {copy} is damaged ("), line
    assert line.endswith(
        "restore it from a backup, or move it away and rebuild it from the sources "
        "(`feeds refresh`, or `feeds ingest LOCATION`)"
    )
    assert copy.read_bytes() == before


async def test_a_store_damaged_while_serving_answers_json_and_serves_what_it_can(
    settings: Settings, tmp_path: Path
) -> None:
    copy = await damaged_copy(settings, tmp_path)
    with pytest.raises(StoreDamaged, match="is damaged"):
        await Store.open(copy, check=True)
    # Damage met after start: the served app opens the store itself, with no check (one store
    # object is never used from two event loops, the test's and the server thread's).
    with LiveServer(create_app(replace(settings, database=str(copy)), scheduler=False)) as server:
        health = httpx.get(f"{server.url}/healthz")
        assert health.status_code == 503 and health.headers["content-type"] == JSON_TYPE
        assert health.json()["status"] == 503 and "is damaged" in health.json()["error"]
        # The renditions are whole: the feeds are still served.
        assert httpx.get(f"{server.url}/feeds/latest.atom").status_code == 200


async def test_the_check_at_start_is_bounded_in_time(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """quick_check reads the whole file (minutes for a large store from a cold disk): past its
    time it stops, says so, and the store opens; damage it did not reach is met as SQLite's errors."""
    copy = await damaged_copy(settings, tmp_path)  # and the whole store it was copied from
    with contextlib.closing(sqlite3.connect(settings.database)) as conn:
        with caplog.at_level("INFO", logger="feeds.store"):
            quick_check(conn, settings.database, seconds=0)
        assert "checked for 0 s, not to its end" in caplog.text
        quick_check(conn, settings.database)  # in its time: whole, and sound
    with contextlib.closing(sqlite3.connect(copy)) as conn, pytest.raises(StoreDamaged, match="is damaged"):
        quick_check(conn, str(copy))
