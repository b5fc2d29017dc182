"""Small shared steps of the tests: read real pages, ingest them, look at renditions."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from feeds.config import Settings
from feeds.model import FEED_FORMATS, Page, Rendition
from feeds.pages import parse_document
from feeds.publish import publish_all
from feeds.publish.demand import OnRequest
from feeds.refresh import Report, open_sources, refresh_all
from feeds.store import Incoming, Store


async def refresh_once(store: Store, settings: Settings) -> Report:
    """Every configured source refreshed once into the store, as a scheduled refresh does."""
    sources = open_sources(settings.sources)
    try:
        return await refresh_all(store, settings, sources)
    finally:
        for source in sources:
            await source.aclose()


async def sql(store: Store, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the store's SQLite file through a connection of its own, as an
    operator's `sqlite3` would (committed at once): what the store wrote, not what it holds."""

    def run() -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(store.path, timeout=10)) as conn, conn:
            return conn.execute(query, params).fetchall()

    return await asyncio.to_thread(run)


def read_pages(root: Path, pattern: str = "news/**/*.md", source: str = "test") -> list[Incoming]:
    """Every event page (not day listings) under root matching pattern, parsed, as a directory
    source gives it: its times are the page's own, whatever the file's mtime."""
    out = []
    for file in sorted(root.glob(pattern)):
        rel = file.relative_to(root).as_posix()
        doc = parse_document(rel, file.read_bytes())
        if isinstance(doc, Page):
            out.append(Incoming(doc, rel, source))
    return out


async def current(store: Store, settings: Settings, name: str, fmt: str) -> Rendition | None:
    """A document as a server answers it now: its stored version, else made as a request makes it
    (documents outside the hot set are made on their first request)."""
    return await store.rendition(name, fmt) or await OnRequest(store, settings)(name, fmt)


async def every_document(store: Store, settings: Settings) -> None:
    """Every document the store can show made current, as a request for each would make it."""
    await publish_all(store, settings, everything=True)


async def documents(
    store: Store, settings: Settings, formats: tuple[str, ...] = FEED_FORMATS
) -> dict[tuple[str, str], bytes]:
    """(feed, format) -> the plain bytes of every document the store can show (not /topics) in
    `formats` (the feeds; their HTML pages with `FORMATS`), as requests would find them."""
    await every_document(store, settings)
    rows = await sql(store, "SELECT DISTINCT feed FROM renditions WHERE feed != '_topics' AND stale = 0")
    out = {}
    for (feed,) in rows:
        out.update({(feed, fmt): r.body for fmt, r in (await store.renditions_of(feed)).items() if fmt in formats})
    return out


async def etags(store: Store, settings: Settings) -> dict[tuple[str, str], str]:
    """(feed, format) -> ETag of every document the store can show, as requests would find them."""
    await every_document(store, settings)
    rows = await sql(store, "SELECT feed, fmt, etag FROM renditions WHERE stale = 0")
    return {(feed, fmt): etag for feed, fmt, etag in rows}


def entries(fmt: str, body: bytes) -> list[dict[str, object]]:
    """Entries of a feed as a reader sees them: feedparser for RSS/Atom (it has no JSON Feed
    support), the json module for JSON Feed. Keys: id, title, tags, published, content."""
    import json

    import feedparser

    if fmt == "json":
        feed = json.loads(body)
        assert feed["version"] == "https://jsonfeed.org/version/1.1"
        return [
            {
                "id": i["id"],
                "title": i["title"],
                "tags": set(i.get("tags", [])),
                "published": i["date_published"][:10],
                "content": i["content_html"],
            }
            for i in feed["items"]
        ]
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return [
        {
            "id": e.id,
            "title": e.title,
            "tags": {t.get("label") or t.term for t in e.get("tags", [])},
            "published": "{:04d}-{:02d}-{:02d}".format(*e.published_parsed[:3]),
            "content": e.content[0].value if "content" in e else e.summary,
        }
        for e in parsed.entries
    ]


@contextlib.contextmanager
def feeds_serve(
    config_path: Path, *args: str, env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`feeds serve` as a user runs it, in a process group of its own (stopped with it). Its output
    goes to a pipe, or to the file `log` (which a test can read while it runs)."""
    with open(log, "wb") if log else contextlib.nullcontext() as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "feeds", "--config", str(config_path), "serve", *args],
            stdout=out or subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    try:
        yield server
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        # What it wrote, for the test to read after the block.
        written = server.communicate(timeout=30)[0]
        server.output = log.read_text() if log else written.decode()  # type: ignore[attr-defined]


def wait_for(server: subprocess.Popen[bytes], url: str, ready: str = "", timeout: float = 60) -> httpx.Response:
    """GET `url` until it answers 200 with `ready` in its body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate(timeout=10)[0].decode()[-3000:]
        with contextlib.suppress(httpx.TransportError):
            response = httpx.get(url, timeout=5)
            if response.status_code == 200 and ready in response.text:
                return response
        time.sleep(0.2)
    os.killpg(server.pid, signal.SIGTERM)
    raise AssertionError(f"{url} not ready:\n{server.communicate(timeout=30)[0].decode()[-3000:]}")


# A log record's line (feeds/process.py): its UTC time, its level.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def not_logged(stderr: str, levels: tuple[str, ...] = ("DEBUG", "INFO")) -> list[str]:
    """The lines of a command's stderr that are not log records at `levels`: its error lines."""
    return [line for line in stderr.splitlines() if not ((m := LOG_LINE.match(line)) and m[1] in levels)]
