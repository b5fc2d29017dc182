"""A real feed reader, newsboat (Debian package `newsboat`), against a real server on 127.0.0.1.

newsboat fetches one RSS and one Atom feed, headless (`newsboat -x reload`), several times in a
row, the way a reader polls. Afterwards its own SQLite cache must hold every entry of each feed
exactly once (ids are stable, so a reload never duplicates an item), and the server must have
seen it send the validators it was given (If-None-Match / If-Modified-Since) and answered 304.

newsboat keeps one item per id across all its feeds; the two feeds are chosen with no event in
common so that each feed's count is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lxml import etree

from feeds.app import create_app
from feeds.config import Settings
from feeds.publish import publish_all
from feeds.store import Store
from tests.conftest import LiveServer, with_base
from tests.frontends import require
from tests.helpers import current, read_pages

RELOADS = 5
RSS_FEED = "latest.rss"
ATOM_FEED = "dates/2022-02-24.atom"  # the oldest day: none of its events is among the newest 20


def newsboat() -> str:
    return require("newsboat")[0]


@dataclass
class Seen:
    path: str
    if_none_match: bool
    if_modified_since: bool
    status: int | None = None


class Recorder:
    """ASGI middleware: what each request asked and how it was answered."""

    def __init__(self) -> None:
        self.app: Any = None
        self.seen: list[Seen] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower() for name, _ in scope["headers"]}
        record = Seen(scope["path"], "if-none-match" in headers, "if-modified-since" in headers)
        self.seen.append(record)

        async def recording_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        await self.app(scope, receive, recording_send)


def reload(binary: str, home: Path) -> None:
    # A clean environment: no proxy variables (the server is local), no real home directory.
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "TERM": "dumb"}
    done = subprocess.run(
        [binary, "-u", "urls", "-c", "cache.db", "-C", "config", "-x", "reload"],
        cwd=home,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])


def entry_ids(body: bytes) -> list[str]:
    root = etree.fromstring(body)
    if root.tag == "rss":
        return [g.text or "" for g in root.iterfind("channel/item/guid")]
    return [i.text or "" for i in root.iterfind("{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}id")]


async def test_newsboat_reloads_keep_one_item_per_event_and_get_304s(
    store: Store, settings: Settings, tree: Path, tmp_path: Path
) -> None:
    binary = newsboat()
    recorder = Recorder()
    server = LiveServer(recorder)
    served = replace(with_base(settings, server.url), items_per_feed=20)
    await store.apply(read_pages(tree, source="example"))
    await publish_all(store, served)
    recorder.app = create_app(served, scheduler=False)
    paths = {f"/feeds/{RSS_FEED}", f"/feeds/{ATOM_FEED}"}
    expected = {}
    for path in paths:
        feed, _, fmt = path.removeprefix("/feeds/").rpartition(".")
        rendition = await current(store, settings, feed, fmt)
        assert rendition is not None, path
        expected[server.url + path] = entry_ids(rendition.body)
    assert all(expected.values()) and not set.intersection(*(set(ids) for ids in expected.values()))

    home = tmp_path / "newsboat"
    home.mkdir()
    (home / "urls").write_text("".join(f"{url}\n" for url in sorted(expected)))
    (home / "config").write_text("reload-threads 1\ndownload-retries 1\ndownload-timeout 20\nmax-items 0\n")
    with server:
        for _ in range(RELOADS):
            await asyncio.to_thread(reload, binary, home)

    with contextlib.closing(sqlite3.connect(home / "cache.db")) as cache:
        rows = cache.execute("SELECT guid, feedurl FROM rss_item").fetchall()
        feeds = dict(cache.execute("SELECT rssurl, etag FROM rss_feed").fetchall())
    assert set(feeds) == set(expected)
    assert all(feeds.values()), feeds  # it kept our ETags
    guids = [guid for guid, _ in rows]
    assert len(guids) == len(set(guids)), "an item was stored twice"
    for url, ids in expected.items():
        stored = sorted(guid for guid, feedurl in rows if feedurl == url)
        assert stored == sorted(ids), url  # exactly the feed's entries, each once

    for path in paths:
        seen = [s for s in recorder.seen if s.path == path]
        assert len(seen) == RELOADS, (path, seen)
        # newsboat 2.21 sends the validators it stored from its third fetch of a feed on.
        assert all(s.status == 200 for s in seen[:2]), seen
        for later in seen[2:]:
            assert later.if_none_match or later.if_modified_since, seen
            assert later.status == 304, seen
