"""Every kind of source tells the same story: six real days of the English archive, from three
years, read from a directory, from a git repository (a real `git init` and commit) and from an HTTP
site (Python's static file server on 127.0.0.1 serving that same tree, folder listings and all),
each into its own store, give every document (every feed, format and encoding, and the pages) the
same bytes, ETag and Last-Modified."""

from __future__ import annotations

import datetime as dt
import functools
import shutil
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from feeds.config import Settings, SourceConfig
from feeds.refresh import open_sources, refresh_all
from feeds.store import Store
from tests.conftest import DATA, OFFSTREAM
from tests.helpers import every_document, sql
from tests.test_source_git import Origin, hermetic_git

__all__ = ["hermetic_git"]  # autouse: no git here reads the user's or the system's config

# Six days from three years: 1999/01/3 is missing (the walk steps over it), 1999/01/4 is listed
# only by its README.md, 2017/12/31's README.md lists ten pages its index.md does not.
DAYS = {
    DATA / "offstream-1999": ("news/1999/01/1", "news/1999/01/2", "news/1999/01/4", "news/1999/01/5"),
    OFFSTREAM: ("news/2017/12/31", "news/2018/01/1"),
}
COMMITTED = dt.datetime(2018, 1, 2, 12, 0, tzinfo=dt.UTC)
Documents = dict[tuple[str, str], tuple[Any, ...]]


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    """The six days as a git work tree, committed once at COMMITTED."""
    repo = Origin(tmp_path / "archive")
    for base, days in DAYS.items():
        for day in days:
            shutil.copytree(base / day, repo.root / day)
    repo.commit("six days", when=COMMITTED.isoformat())
    return repo


@pytest.fixture
def site(origin: Origin) -> Iterator[str]:
    """A static file server on 127.0.0.1 serving the work tree."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(origin.root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def served(settings: Settings, source: SourceConfig, home: Path) -> tuple[Documents, list[str]]:
    """Every document of a store that refreshed once from `source` alone, and the problems."""
    home.mkdir()
    config = replace(settings, database=str(home / "feeds.db"), sources=(source,))
    store = await Store.open(config.database)
    sources = open_sources(config.sources)
    try:
        report = await refresh_all(store, config, sources)
        await every_document(store, config)  # as requests for each would make them
        rows = await sql(
            store, "SELECT feed, fmt, gz, br, etag, last_modified, content_type FROM renditions WHERE stale = 0"
        )
    finally:
        for s in sources:
            await s.aclose()
        await store.close()
    return {(feed, fmt): tuple(rest) for feed, fmt, *rest in rows}, report.problems


async def three_kinds(settings: Settings, origin: Origin, site: str, tmp_path: Path) -> list[Documents]:
    tree = tmp_path / "copy"
    shutil.copytree(origin.root / "news", tree / "news", copy_function=shutil.copy2)  # the same mtimes
    walk = {"start": "news/2018/01/1/index.md news/1999/01/5/index.md", "depth": 5, "max_gap": 3, "rate": 0.0}
    kinds = {
        "directory": SourceConfig(name="offstream", kind="directory", location=str(tree)),
        "git": SourceConfig(name="offstream", kind="git", location=str(origin.root)),
        "http": replace(SourceConfig(name="offstream", kind="http", location=site), **walk),  # type: ignore[arg-type]
    }
    found = []
    for kind, source in kinds.items():
        documents, problems = await served(settings, source, tmp_path / kind)
        assert not [p for p in problems if not p.startswith("unlisted:")], (kind, problems)
        found.append(documents)
    return found


def differences(a: Documents, b: Documents) -> list[tuple[str, str]]:
    return sorted(key for key in a.keys() | b.keys() if a.get(key) != b.get(key))


async def test_a_directory_a_git_repository_and_a_site_serve_the_same_documents(
    settings: Settings, origin: Origin, site: str, tmp_path: Path
) -> None:
    """Files written now, a commit of 2018 and a site sending its own Last-Modified: an event's
    times come from its page alone, so nothing tells the three kinds apart."""
    directory, git, http = await three_kinds(settings, origin, site, tmp_path)
    assert len(directory) > 100
    # 1999/01/4's page is listed only by README.md, and only 2017/12/31's README.md gives one of
    # its pages the heading "Palestine-United States relations".
    feeds = {feed for feed, _ in http}
    assert {"dates/1999-01-04", "dates/2017-12-31", "latest", "topics/palestine-united-states-relations"} <= feeds
    assert differences(directory, git) == []
    assert differences(directory, http) == []
