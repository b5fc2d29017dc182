"""The HTTP source's walk over real archive days served on 127.0.0.1: missing days, both
listings, folder listings, the cap on requests and a walk down to `until` across refreshes."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from feeds.config import SourceConfig, load
from feeds.errors import ConfigError
from feeds.model import FeedKey
from feeds.refresh import settle
from feeds.sources import open_source
from feeds.sources.crawl import DONE
from feeds.sources.http import HttpSource
from feeds.store import Store
from tests.conftest import DATA, OFFSTREAM
from tests.test_source_http import Site, collect, config, db, site

__all__ = ["db", "site"]

JANUARY = DATA / "offstream-1999"
DAYS_1999 = ("news/1999/01/1", "news/1999/01/2", "news/1999/01/4", "news/1999/01/5")
GUNMEN = "news/1999/01/4/gunmen-open-fire-on-shiite-muslims-worshipping-in-an-islamabad-mosque-killing-16-people-and-injuring-25.md"
# 2017/12/31/index.md names the first version; the current one is named by nothing but itself.
CANADIAN = "news/2017/12/31/the-canadian-right-wing-party-national-advancement-disbands.md"


@pytest.fixture
def january(tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "site"
    for day in DAYS_1999:
        shutil.copytree(JANUARY / day, root / day)
    with Site(root) as server:
        yield server


def walk(site: Site, **changes: object) -> SourceConfig:
    base = SourceConfig(name="offstream", kind="http", location=site.url, start="news/1999/01/5/index.md", rate=0.0)
    return replace(base, **changes)  # type: ignore[arg-type]


def pages_of(days: tuple[str, ...], root: Path = JANUARY) -> set[str]:
    return {p.relative_to(root).as_posix() for day in days for p in (root / day).glob("*.md")}


async def test_a_day_without_listing_does_not_end_the_walk(january: Site, db: Store) -> None:
    collected = await collect(walk(january, depth=30, max_gap=2), db)
    assert collected.problems == []
    assert {d.relpath for d in collected.documents} == pages_of(DAYS_1999)
    # 1999/01/4's index.md lists nothing: its page comes from README.md.
    assert GUNMEN in {d.relpath for d in collected.documents}
    # 1999/01/3 (linked as 1999/01/4's Previous Day) is not in the archive: asked, then stepped over.
    assert january.statuses("/news/1999/01/3/index.md") == january.statuses("/news/1999/01/3/README.md") == [404]
    # 1999/01/1 links 1998/12/31: two missing days (max_gap=2) are tried, then the walk ends.
    asked = {path for path, _, _ in january.requests}
    assert {"/news/1998/12/31/index.md", "/news/1998/12/30/README.md"} <= asked
    assert not any(p.startswith(("/news/1998/12/29/", "/news/1998/12/28/")) for p in asked)


async def test_depth_counts_calendar_days_back_from_the_start(january: Site, db: Store) -> None:
    collected = await collect(walk(january, depth=3), db)
    assert {d.relpath for d in collected.documents} == pages_of(("news/1999/01/4", "news/1999/01/5"))
    assert not any("/1999/01/2/" in p for p, _, _ in january.requests)


async def test_a_folder_listing_reaches_versions_nothing_links(tmp_path: Path, db: Store) -> None:
    """A site that lists its folders (nginx autoindex, Python's http.server) has every page of a
    day reached; one that does not has only what the listings and Changes lists name."""
    root = tmp_path / "static"
    shutil.copytree(OFFSTREAM / "news/2017/12/31", root / "news/2017/12/31")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        config = SourceConfig(name="o", kind="http", location=url, start="news/2017/12/31/index.md", depth=1)
        collected = await collect(config, db)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert {d.relpath for d in collected.documents} == pages_of(("news/2017/12/31",), OFFSTREAM)
    assert CANADIAN in {d.relpath for d in collected.documents}
    with Site(root) as bare:  # no folder listings
        others = await collect(replace(config, location=bare.url), db)
    assert CANADIAN not in {d.relpath for d in others.documents}


async def test_max_pages_bounds_each_refresh_and_until_walks_on_across_refreshes(january: Site, db: Store) -> None:
    config = walk(january, depth=1, max_gap=2, until="1990-01-01", max_pages=12)
    seen: set[str] = set()
    cursors = []
    for _ in range(6):
        january.requests.clear()
        source = open_source(config)
        assert isinstance(source, HttpSource)
        try:
            collected = await source.collect(db)
            await settle(db, source, collected)
        finally:
            await source.aclose()
        assert len(january.requests) <= 12
        seen |= {d.relpath for d in collected.documents}
        cursors.append(await db.cursor("offstream"))
        if cursors[-1] == f"{DONE} 1990-01-01":
            break
        assert any("stopped after max_pages=12 requests" in p for p in collected.problems)
    assert cursors[-1] == f"{DONE} 1990-01-01" and len(cursors) > 2  # the walk took several refreshes, each went on
    assert seen == pages_of(DAYS_1999)
    assert {e.page.date.day for e in await db.events(FeedKey("latest"), 100)} == {1, 2, 4, 5}
    # Done: later refreshes walk the recent days only (1999/01/5: two listings, the folder, a page).
    january.requests.clear()
    again = await collect(config, db)
    assert again.problems == [] and len(january.requests) == 4


async def test_no_more_requests_in_flight_than_concurrency(site: Site, db: Store) -> None:
    site.delay = 0.05
    collected = await collect(config(site, concurrency=2), db)
    assert collected.problems == [] and len(collected.documents) == 36  # 2 days: 4 listings, 32 pages
    assert site.peak == 2


async def test_429_and_503_are_retried_after_the_time_they_ask(january: Site, db: Store) -> None:
    """Retry-After as seconds (429) and as an HTTP-date (503) is waited for, whatever the backoff."""
    page = "/news/1999/01/5/apple-computer-releases-the-power-macintosh-g3-blue-white.md"
    listing = "/news/1999/01/5/index.md"
    january.throttled = {page: (429, "1"), listing: (503, email.utils.formatdate(time.time() + 2, usegmt=True))}
    loop = asyncio.get_running_loop()
    began = loop.time()
    collected = await collect(walk(january, depth=1), db)  # a backoff of 0.01 s
    assert collected.problems == [] and f"{page[1:]}" in {d.relpath for d in collected.documents}
    assert january.statuses(page) == [429, 200] and january.statuses(listing) == [503, 200]
    # The page is asked for after its listing: at least 1 s (a date 2 s ahead, in whole seconds), then 1 s.
    assert loop.time() - began >= 2.0


def test_config_takes_several_starts_and_checks_until(tmp_path: Path) -> None:
    file = tmp_path / "feeds.toml"
    source = '[[sources]]\nname = "o"\nkind = "http"\nlocation = "http://127.0.0.1:9/"\n'
    starts = 'start = ["news/2018/01/1/index.md", "news/1999/01/5/README.md"]\n'
    file.write_text(source + starts + 'until = "1990-01-01"\nmax_gap = 7\nmax_pages = 500\n')
    (loaded,) = load(file, env={}).sources
    assert (loaded.start, loaded.until, loaded.max_gap, loaded.max_pages) == (
        "news/2018/01/1/index.md news/1999/01/5/README.md",
        "1990-01-01",
        7,
        500,
    )
    file.write_text(source + 'until = "1990-13-01"\n')
    with pytest.raises(ConfigError, match=r"sources\[0\]\.until.*YYYY-MM-DD.*1990-13-01"):
        load(file, env={})
