"""HttpSource against a real HTTP server on 127.0.0.1 serving a copy of two real archive days."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import hashlib
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from feeds.config import SourceConfig
from feeds.errors import SourceError
from feeds.model import FeedKey, utcnow
from feeds.refresh import ingest
from feeds.sources import Collected, open_source
from feeds.sources.http import USER_AGENT, HttpSource
from feeds.store import Store
from tests.conftest import OFFSTREAM

DAYS = ("news/2018/01/1", "news/2017/12/31")
START = "news/2018/01/1/index.md"
BORNEO = "a-boat-capsizes-in-the-north-of-indonesian-borneo-{}.md"
PLANE = "news/2018/01/1/two-people-are-killed-in-a-plane-crash-in-northland-new-zealand.md"


class _Server(ThreadingHTTPServer):
    daemon_threads = False

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (timeout, size limit) leaves a broken pipe behind


class Site:
    """A file server with ETags (If-None-Match -> 304) whose paths can be told to misbehave."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, str | None, int]] = []  # path, If-None-Match, status
        self.user_agents: set[str] = set()
        self.gone: set[str] = set()  # answer 404
        self.failures: Counter[str] = Counter()  # answer 500 this many times first
        self.throttled: dict[str, tuple[int, str]] = {}  # answer (status, Retry-After) once first
        self.unsized: set[str] = set()  # no Content-Length: the body runs until the connection closes
        self.slow: set[str] = set()  # answer after two seconds
        self.delay = 0.0  # seconds every answer takes
        self.in_flight = self.peak = 0  # requests being answered now, and the most at once
        self.mtimes = False  # send each file's mtime as Last-Modified, as static file servers do
        self.last_modified: dict[str, str | None] = {}  # or this Last-Modified value (None: no header)
        self.lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with site.lock:
                    site.in_flight += 1
                    site.peak = max(site.peak, site.in_flight)
                time.sleep(site.delay)
                try:
                    status = site.answer(self, path)
                finally:
                    with site.lock:
                        site.in_flight -= 1
                with site.lock:
                    site.requests.append((path, self.headers.get("If-None-Match"), status))
                    site.user_agents.add(self.headers.get("User-Agent", ""))

        # server_close() joins the handler threads (block_on_close), so none outlives the test.
        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, handler: BaseHTTPRequestHandler, path: str) -> int:
        with self.lock:
            failing = self.failures[path] > 0
            if failing:
                self.failures[path] -= 1
        file = self.root / path.lstrip("/")
        if path in self.slow:
            time.sleep(2.0)
        if failing:
            return self.send(handler, 500, b"boom")
        with self.lock:
            throttled = self.throttled.pop(path, None)
        if throttled:
            return self.send(handler, throttled[0], b"slow down", {"Retry-After": throttled[1]})
        if path in self.gone or not file.is_file() or ".." in path:
            return self.send(handler, 404, b"not found")
        body = file.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if handler.headers.get("If-None-Match") == etag:
            return self.send(handler, 304, b"", {"ETag": etag})
        headers = {"ETag": etag, "Content-Type": "text/markdown"}
        if path in self.last_modified:
            if (value := self.last_modified[path]) is not None:
                headers["Last-Modified"] = value
        elif self.mtimes:
            headers["Last-Modified"] = email.utils.formatdate(file.stat().st_mtime, usegmt=True)
        return self.send(handler, 200, body, headers, sized=path not in self.unsized)

    @staticmethod
    def send(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        sized: bool = True,
    ) -> int:
        handler.send_response(status)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        if status != 304:
            if sized:
                handler.send_header("Content-Length", str(len(body)))
            else:
                handler.send_header("Connection", "close")
                handler.close_connection = True
        handler.end_headers()
        if status != 304:
            handler.wfile.write(body)
        return status

    def statuses(self, path: str) -> list[int]:
        return [s for p, _, s in self.requests if p == path]

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "site"
    for day in DAYS:
        shutil.copytree(OFFSTREAM / day, root / day)
    with Site(root) as server:
        yield server


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(tmp_path / "feeds.db")
    yield store
    await store.close()


def config(site: Site, **changes: object) -> SourceConfig:
    base = SourceConfig(
        name="offstream", kind="http", location=site.url + "/", start=START, depth=2, rate=1000.0, timeout=30.0
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def collect(cfg: SourceConfig, store: Store) -> Collected:
    source = open_source(cfg)
    assert isinstance(source, HttpSource)
    source.backoff = 0.01
    try:
        return await source.collect(store)
    finally:
        await source.aclose()


async def test_crawl_folds_versions_into_events(site: Site, db: Store) -> None:
    collected = await collect(config(site), db)
    assert collected.problems == []
    relpaths = {d.relpath for d in collected.documents}
    assert {START, "news/2017/12/31/index.md"} <= relpaths
    # Both Borneo predecessors come from the current version's Changes list, not from the index.
    wordings = ("with-at-least-8-people-dead", "leaving-at-least-8-people-dead", "leaving-at-least-eight-people-dead")
    for wording in wordings:
        assert f"news/2018/01/1/{BORNEO.format(wording)}" in relpaths
    assert all(d.origin == f"{site.url}/{d.relpath}" for d in collected.documents)
    # Both listings of both days are read; 2017/12/30 is past depth=2 days and never asked for.
    asked = {p for p, _, _ in site.requests}
    assert {f"/{day}/{name}" for day in DAYS for name in ("index.md", "README.md")} <= asked
    assert not any("/2017/12/30/" in p for p in asked)
    assert site.user_agents == {USER_AGENT}

    report = await ingest(db, "offstream", collected)
    assert report.problems == []
    events = await db.events(FeedKey("latest"), 100)
    # 11 on Jan 1; 11 on Dec 31, where index.md lists one page and README.md the other ten.
    assert len(events) == len(report.result.added) == 22
    assert Counter(e.page.date for e in events) == {dt.date(2018, 1, 1): 11, dt.date(2017, 12, 31): 11}
    borneo = [e for e in events if "Borneo" in e.page.headline]
    assert len(borneo) == 1
    assert borneo[0].page.path.endswith("leaving-at-least-eight-people-dead")
    assert borneo[0].key.endswith("with-at-least-8-people-dead")
    assert borneo[0].relpath == f"news/2018/01/1/{BORNEO.format('leaving-at-least-eight-people-dead')}"
    assert borneo[0].source == "offstream"
    assert {e.page.date for e in events} == {dt.date(2018, 1, 1), dt.date(2017, 12, 31)}


async def test_second_pass_is_answered_304_and_changes_nothing(site: Site, db: Store) -> None:
    # A page that failed on the first pass is never stored, so the second pass does not ask for it
    # again: retried more than by default, and any failure shown, on a loaded machine.
    first = await collect(config(site, retries=5), db)
    assert first.problems == []
    await ingest(db, "offstream", first)
    # URLs, not requests: on a slow machine a request may time out and be asked again (both
    # reach the log; CI once saw 20 requests for 19 URLs).
    asked = {path for path, _, _ in site.requests}
    site.requests.clear()

    second = await collect(config(site), db)
    assert second.documents == [] and second.deleted == [] and second.problems == []
    assert {path for path, _, _ in site.requests} == asked  # the same URLs, the predecessors too
    # This site offers no folder listings (404, never kept); every file answers 304.
    assert all(status == 304 and etag for path, etag, status in site.requests if not path.endswith("/"))
    assert {status for path, _, status in site.requests if path.endswith("/")} == {404}
    report = await ingest(db, "offstream", second)
    assert not (report.result.added or report.result.changed or report.result.deleted or report.result.feeds)


async def test_changed_page_is_fetched_again(site: Site, db: Store) -> None:
    await ingest(db, "offstream", await collect(config(site), db))
    file = site.root / PLANE
    file.write_bytes(file.read_bytes().replace(b"Two people are killed", b"Two people die"))
    collected = await collect(config(site), db)
    assert [d.relpath for d in collected.documents] == [PLANE]
    report = await ingest(db, "offstream", collected)
    assert len(report.result.changed) == 1 and not report.result.added


async def test_page_gone_is_deleted_after_grace(site: Site, db: Store) -> None:
    await ingest(db, "offstream", await collect(config(site), db))
    site.gone.add("/" + PLANE)

    kept = await collect(config(site, deletion_grace=3600), db)
    assert kept.deleted == []
    assert len(kept.problems) == 1 and f"{site.url}/{PLANE}" in kept.problems[0] and "404" in kept.problems[0]

    gone = await collect(config(site, deletion_grace=0), db)
    assert gone.deleted == ["/news/2018/01/01/two-people-are-killed-in-a-plane-crash-in-northland-new-zealand"]
    report = await ingest(db, "offstream", gone)
    assert report.result.deleted == {gone.deleted[0]}
    assert gone.deleted[0] not in {e.key for e in await db.events(FeedKey("latest"), 100)}
    assert site.statuses("/" + PLANE) == [200, 404, 404]  # a 404 is not retried

    # Back again: stored afresh, the event returns.
    site.gone.clear()
    back = await collect(config(site, deletion_grace=0), db)
    assert [d.relpath for d in back.documents] == [PLANE] and back.deleted == []
    assert (await ingest(db, "offstream", back)).result.changed == {gone.deleted[0]}


async def test_page_dropped_from_its_index_is_checked_and_deleted(site: Site, db: Store) -> None:
    await ingest(db, "offstream", await collect(config(site), db))
    index = site.root / START
    index.write_text("\n".join(line for line in index.read_text().split("\n") if "plane-crash" not in line))
    (site.root / PLANE).unlink()
    collected = await collect(config(site, deletion_grace=0), db)
    assert collected.deleted == ["/news/2018/01/01/two-people-are-killed-in-a-plane-crash-in-northland-new-zealand"]
    assert [d.relpath for d in collected.documents] == [START]


@pytest.mark.parametrize("sized", [True, False], ids=["content-length", "streamed"])
async def test_response_over_max_bytes_is_a_problem(site: Site, db: Store, sized: bool) -> None:
    big = site.root / PLANE
    big.write_bytes(big.read_bytes() + b"\n" + b"x" * 100_000 + b"\n")
    if not sized:
        site.unsized.add("/" + PLANE)
    collected = await collect(config(site, max_bytes=20_000), db)
    assert collected.problems == [f"{site.url}/{PLANE}: larger than max_bytes=20000; skipped"]
    assert PLANE not in {d.relpath for d in collected.documents}
    assert len(collected.documents) > 10
    assert site.statuses("/" + PLANE) == [200]  # not retried


async def test_server_error_is_retried(site: Site, db: Store) -> None:
    site.failures["/" + PLANE] = 1
    site.failures["/" + START] = 2
    collected = await collect(config(site, retries=2), db)
    assert collected.problems == []
    assert PLANE in {d.relpath for d in collected.documents}
    assert site.statuses("/" + PLANE) == [500, 200]
    assert site.statuses("/" + START) == [500, 500, 200]


async def test_retries_run_out_into_a_problem(site: Site, db: Store) -> None:
    site.failures["/" + PLANE] = 5
    collected = await collect(config(site, retries=1), db)
    assert collected.problems == [f"{site.url}/{PLANE}: answered 500 Internal Server Error (after 2 attempts)"]
    assert site.statuses("/" + PLANE) == [500, 500]


async def test_start_index_unreachable_fails_the_source(site: Site, db: Store) -> None:
    site.gone |= {"/" + START, "/news/2018/01/1/README.md"}
    with pytest.raises(SourceError, match="404"):
        await collect(config(site), db)
    with pytest.raises(SourceError, match="ConnectError"):
        await collect(config(site, location="http://127.0.0.1:9/", retries=0), db)


async def test_newest_day_is_probed_back_from_today(site: Site, db: Store) -> None:
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    day = f"news/{yesterday.year}/{yesterday.month:02d}/{yesterday.day}"
    (site.root / day).mkdir(parents=True)
    listing = (site.root / START).read_text()
    listing = listing.replace("## [2018-01-1](/news/2018/01/1/index.md)", f"## [{yesterday}](/{day}/index.md)")
    (site.root / day / "index.md").write_text(listing)
    collected = await collect(config(site, start="", depth=3), db)
    relpaths = {d.relpath for d in collected.documents}
    borneo = f"news/2018/01/1/{BORNEO.format('leaving-at-least-eight-people-dead')}"
    assert {f"{day}/index.md", borneo} <= relpaths
    # depth=3 is three calendar days back from the newest: the listing's Previous Day (2017/12/31) is past it.
    assert "news/2017/12/31/index.md" not in relpaths
    today = yesterday + dt.timedelta(days=1)
    probes = [p for p, _, _ in site.requests if p.endswith("/index.md") and p != f"/{day}/index.md" and "2017" not in p]
    assert probes[0] == f"/news/{today.year}/{today.month:02d}/{today.day}/index.md"
    assert len(probes) == (2 if today.day < 10 else 1)  # unpadded, then padded when that differs
    assert all(s == 404 for p, _, s in site.requests if p in probes)
    with pytest.raises(SourceError, match="no day listing"):
        await collect(config(site, start="", depth=1), db)


async def test_links_to_other_hosts_are_not_followed(site: Site, db: Store) -> None:
    for listing in (site.root / START, site.root / "news/2018/01/1/README.md"):
        text = listing.read_text().replace(
            "(/news/2018/01/1/two-people", "(http://elsewhere.test/news/2018/01/1/two-people"
        )
        listing.write_text(text)
    collected = await collect(config(site), db)
    assert len(collected.problems) == 2 and all("elsewhere.test" in p for p in collected.problems)
    assert PLANE not in {d.relpath for d in collected.documents}


async def test_slow_answer_times_out_into_a_problem(site: Site, db: Store) -> None:
    site.slow.add("/" + PLANE)
    collected = await collect(config(site, timeout=1.0, retries=0), db)
    assert collected.problems == [f"{site.url}/{PLANE}: no complete answer within 1 s"]
    assert len(collected.documents) > 10


async def test_requests_keep_to_the_rate(site: Site, db: Store) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    await collect(config(site, depth=1, rate=50.0, concurrency=8), db)
    elapsed = loop.time() - began
    assert len(site.requests) >= 15
    assert elapsed >= (len(site.requests) - 1) / 50.0


async def test_each_document_carries_its_responses_last_modified(site: Site, db: Store) -> None:
    """The site sends file mtimes (IMF-fixdate); some pages say it in the obsolete forms RFC 9110
    still has recipients accept, one is ahead of the clock, one is not a date, one has none."""
    site.mtimes = True
    base = dt.datetime(2018, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    files = sorted(p for day in DAYS for p in (site.root / day).glob("*.md"))
    for n, file in enumerate(files):
        os.utime(file, ((base + dt.timedelta(minutes=n)).timestamp(),) * 2)
    expected: dict[str, dt.datetime | None] = {
        f.relative_to(site.root).as_posix(): base + dt.timedelta(minutes=n) for n, f in enumerate(files)
    }
    plane, tax = f"/{PLANE}", "/news/2018/01/1/taxation-in-the-united-arab-emirates.md"
    borneo, index = f"/news/2018/01/1/{BORNEO.format('with-at-least-8-people-dead')}", "/news/2017/12/31/index.md"
    later = f"/news/2018/01/1/{BORNEO.format('leaving-at-least-8-people-dead')}"
    site.last_modified = {
        plane: "Sunday, 06-Nov-94 08:49:37 GMT",  # rfc850-date: a two-digit year, in the past
        tax: "Sun Nov  6 08:49:37 1994",  # asctime-date
        borneo: email.utils.formatdate((utcnow() + dt.timedelta(days=30)).timestamp(), usegmt=True),
        index: "yesterday",
        later: None,
    }
    nov_1994 = dt.datetime(1994, 11, 6, 8, 49, 37, tzinfo=dt.UTC)
    expected |= {PLANE: nov_1994, tax[1:]: nov_1994, later[1:]: None}
    before = utcnow()
    collected = await collect(config(site), db)
    after = utcnow()
    got = {d.relpath: d.modified for d in collected.documents}
    ahead = got.pop(borneo[1:])
    assert ahead is not None and before <= ahead <= after
    assert got.pop(index[1:]) is None
    assert got == {rel: expected[rel] for rel in got} and len(got) >= 12
    assert collected.problems == [
        f"{site.url}{index}: Last-Modified 'yesterday' is not an HTTP date (RFC 9110); ignored"
    ]
