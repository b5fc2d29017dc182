"""Replicas that agree: two servers whose stores took the same real pages in different orders,
batchings and clock times answer every document, in every format and encoding, with the same
bytes, ETag and Last-Modified, so a load balancer may send each poll to either and a reader's
If-None-Match from one is honoured by the other."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace
from pathlib import Path

import httpx

from feeds.app import create_app
from feeds.config import Settings
from feeds.model import UTC
from feeds.publish import publish_all
from feeds.render import feed_url, page_url
from feeds.store import Incoming, IncomingListing, Store
from tests.conftest import LiveServer, free_port
from tests.helpers import sql
from tests.test_evidence import day_documents

ENCODINGS = ("identity", "gzip", "br")


async def test_two_replicas_fed_differently_answer_alike(store: Store, settings: Settings, tmp_path: Path) -> None:
    port = free_port()  # both documents' base URL: the address the load balancer is reached at
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}")
    pages, listings = day_documents()
    now = dt.datetime(2026, 1, 1, tzinfo=UTC)
    await store.apply(pages, listings=listings, now=now)  # one batch
    await publish_all(store, settings)
    other_path = tmp_path / "replica.db"
    other = await Store.open(str(other_path))
    try:
        mixed: list[Incoming | IncomingListing] = [*pages, *listings]
        random.Random(11).shuffle(mixed)
        for start in range(0, len(mixed), 4):  # shuffled, four at a time, each at its own clock
            batch = mixed[start : start + 4]
            await other.apply(
                [p for p in batch if isinstance(p, Incoming)],
                listings=[p for p in batch if isinstance(p, IncomingListing)],
                now=now + dt.timedelta(hours=start + 1),
            )
        await publish_all(other, settings)
    finally:
        await other.close()
    names = [(feed, fmt) for feed, fmt in await sql(store, "SELECT feed, fmt FROM renditions ORDER BY feed, fmt")]
    assert len(names) > 200
    paths = [
        page_url("", feed) if fmt == "html" else (feed_url("", feed, fmt) if feed[0] != "_" else "/topics.json")
        for feed, fmt in names
    ]
    with (
        LiveServer(create_app(settings, scheduler=False), port=port) as first,
        LiveServer(create_app(replace(settings, database=str(other_path)), scheduler=False)) as second,
    ):
        async with httpx.AsyncClient(base_url=first.url) as a, httpx.AsyncClient(base_url=second.url) as b:
            for path in paths:
                for encoding in ENCODINGS:
                    headers = {"Accept-Encoding": encoding, "Accept": "text/html"}
                    mine, theirs = await a.get(path, headers=headers), await b.get(path, headers=headers)
                    assert mine.status_code == theirs.status_code == 200, path
                    for header in ("etag", "last-modified", "content-type", "content-length", "link", "cache-control"):
                        assert mine.headers.get(header) == theirs.headers.get(header), (path, encoding, header)
                    assert mine.content == theirs.content, (path, encoding)
                    # A reader's validators from one replica, answered by the other.
                    again = await b.get(path, headers={**headers, "If-None-Match": mine.headers["etag"]})
                    assert again.status_code == 304, (path, encoding)
                    since = await b.get(path, headers={**headers, "If-Modified-Since": mine.headers["last-modified"]})
                    assert since.status_code == 304, (path, encoding)
