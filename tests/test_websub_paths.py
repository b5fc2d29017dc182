"""Every path that stores a change reaches every WebSub subscriber, once: the hub delivers from the
store's record of what changed (feeds/store/websub.py), not from who wrote it. A real subscriber on
127.0.0.1; the change stored by `feeds refresh`, `feeds ingest` and `feeds publish --all` run as
processes of their own beside a server that does not refresh, by the scheduler of `feeds serve
--workers 2` (one delivery, not two), and with restarts between the change and its delivery
(nothing lost, nothing repeated). The scheduler of a single server: tests/test_websub.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from feeds import websub
from feeds.app import create_app
from feeds.config import Settings
from feeds.export import export
from feeds.store import Store
from tests.conftest import LiveServer, free_port
from tests.helpers import feeds_serve, refresh_once, wait_for
from tests.test_websub import (
    Subscriber,
    hubbed,
    owed,
    pages_of,
    reword,
    rows_when,
    settled,
    until,
)


@pytest.fixture
def subscriber() -> Iterator[tuple[Subscriber, str]]:
    seen = Subscriber()
    with LiveServer(seen.app()) as server:
        yield seen, server.url


def config_file(settings: Settings, path: Path, **more: object) -> Path:
    """A config file giving the command line (or `feeds serve`) the settings of `settings`, which
    shape the documents' bytes, and `more`."""
    values: dict[str, object] = {
        "database": settings.database,
        "base_url": settings.base_url,
        "items_per_feed": settings.items_per_feed,
        "refresh_interval": settings.refresh_interval,
        "rate_limit": 0.0,
        "websub_allow_private_callbacks": True,
    } | more
    lines = [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    for source in settings.sources:
        lines += [
            "[[sources]]",
            f'name = "{source.name}"',
            f'kind = "{source.kind}"',
            f'location = "{source.location}"',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


async def feeds_command(config: Path, *args: str) -> float:
    """Run `feeds <args>` as a process of its own; returns when it ended (time.monotonic())."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "feeds", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return time.monotonic()


async def subscribe(client: httpx.AsyncClient, topic: str, callback: str) -> None:
    form = {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": callback}
    assert (await client.post("/websub", data=form)).status_code == 202


@pytest.mark.parametrize("command", ["refresh", "ingest", "publish"])
async def test_a_change_stored_by_another_process_is_pushed_once(
    store: Store, settings: Settings, tree: Path, tmp_path: Path, subscriber: tuple[Subscriber, str], command: str
) -> None:
    """The server does not refresh: the change is stored by `feeds <command>` in a process of its
    own, and reaches both subscribers once, within seconds, as the server then serves it."""
    seen, base = subscriber
    settings, port, topic = await hubbed(store, settings)
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for name in ("reader", "other"):
                await subscribe(client, topic, f"{base}/cb/{name}")
            await rows_when(store, 2)
            if command == "publish":  # new bytes from a setting that shapes them: 5 entries a page
                config = config_file(settings, tmp_path / "feeds.toml", items_per_feed=5)
                ended = await feeds_command(config, "publish", "--all", "--no-progress")
            else:
                config = config_file(settings, tmp_path / "feeds.toml")
                await reword(pages_of(tree)[-1], command)
                args = ["ingest", str(tree), "--name", "example", "--no-progress"] if command == "ingest" else [command]
                ended = await feeds_command(config, *args)
            await until(lambda: len(seen.delivered) == 2, 20)
            took = time.monotonic() - ended
            await settled(settings.database)
            current = (await client.get("/feeds/latest.atom", headers={"Accept-Encoding": "identity"})).content
    assert sorted(name for name, _, _ in seen.delivered) == ["other", "reader"]
    assert all(body == current for _, body, _ in seen.delivered)
    if command == "publish":
        assert current.count(b"<entry>") == 5
    else:
        assert f"({command})".encode() in current
    assert took < 5, took  # within seconds of the command's end


async def test_a_restart_between_a_change_and_its_delivery_loses_and_repeats_nothing(
    store: Store, settings: Settings, tree: Path, subscriber: tuple[Subscriber, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen, base = subscriber
    monkeypatch.setattr(websub, "BACKOFF", 3.0)  # the retry falls due after the restart
    settings, port, topic = await hubbed(store, settings)
    pages = pages_of(tree)

    def server() -> LiveServer:
        return LiveServer(create_app(settings, scheduler=False), port=port)

    with server() as running:
        async with httpx.AsyncClient(base_url=running.url) as client:
            await subscribe(client, topic, f"{base}/cb/reader")
            await rows_when(store, 1)

    # A change stored while no server runs: the next one delivers it.
    await reword(pages[-1], "while stopped")
    await refresh_once(store, settings)
    with server():
        await until(lambda: len(seen.delivered) == 1)
        await settled(settings.database)
        # A delivery that failed is owed across a restart: its retry is kept in the store.
        seen.down.add("reader")
        await reword(pages[-2], "retried")
        await refresh_once(store, settings)
        await until(lambda: seen.failures == 1)
        deadline = time.monotonic() + 10
        while await asyncio.to_thread(owed, settings.database) != (1, True, 1):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    seen.down.clear()
    with server():
        await until(lambda: len(seen.delivered) == 2, 20)
        await settled(settings.database)
    with server():  # and a start with nothing owed sends nothing
        await settled(settings.database)
    assert [name for name, _, _ in seen.delivered] == ["reader", "reader"] and seen.failures == 1
    assert b"(while stopped)" in seen.delivered[0][1] and b"(retried)" in seen.delivered[1][1]


async def test_two_workers_deliver_each_change_once(
    store: Store, settings: Settings, tree: Path, tmp_path: Path, subscriber: tuple[Subscriber, str]
) -> None:
    """`feeds serve --workers 2`: both workers' hubs see each change the scheduler stores (one
    through its own connection, the other through the store's log); each subscriber gets it once."""
    seen, base = subscriber
    port = free_port()
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}", refresh_interval=1)
    config = config_file(settings, tmp_path / "feeds.toml", port=port)
    topic = f"{settings.base_url}/feeds/latest.atom"
    names = [f"reader-{i}" for i in range(4)]
    with feeds_serve(config, "--workers", "2") as server:
        await asyncio.to_thread(wait_for, server, topic)
        async with httpx.AsyncClient(base_url=settings.base_url) as client:
            for name in names:
                await subscribe(client, topic, f"{base}/cb/{name}")
        await rows_when(store, len(names))
        for n, page in enumerate(pages_of(tree)[-1:-3:-1], 1):
            await reword(page, f"change {n}")
            await until(lambda n=n: len(seen.delivered) >= n * len(names), 30)  # type: ignore[misc]
            await settled(settings.database)
    for name in names:
        got = [body for to, body, _ in seen.delivered if to == name]
        assert [(b"(change 1)" in body, b"(change 2)" in body) for body in got] == [(True, False), (True, True)]


async def test_an_export_pushes_nothing(
    store: Store, settings: Settings, tree: Path, tmp_path: Path, subscriber: tuple[Subscriber, str]
) -> None:
    """`feeds export` asks the app in its own process: it leaves what is owed to the servers."""
    seen, base = subscriber
    settings, _, _ = await hubbed(store, settings)
    await store.websub_subscribe(
        "latest", "atom", f"{base}/cb/reader", "", dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    )
    await reword(pages_of(tree)[-1], "exported")
    await refresh_once(store, settings)
    await export(settings, store, tmp_path / "out")
    assert await store.websub_pending() == (True, None) and seen.delivered == []
    with LiveServer(create_app(settings, scheduler=False)):  # the next server delivers it
        await until(lambda: len(seen.delivered) == 1)
        await settled(settings.database)
