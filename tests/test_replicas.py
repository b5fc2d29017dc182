"""Replicas that agree: two servers whose stores took the same real pages in different orders,
batchings and clock times answer every document, in every format and encoding, with the same
bytes, ETag and Last-Modified, so a load balancer may send each poll to either and a reader's
If-None-Match from one is honoured by the other."""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import httpx

from feeds.app import create_app
from feeds.config import Settings, SourceConfig
from feeds.ids import event_guid
from feeds.model import UTC, FeedKey
from feeds.publish import publish_all, publish_changes
from feeds.refresh import Report, publish_report
from feeds.render import feed_url, page_url
from feeds.store import Incoming, IncomingListing, Store, event_updated
from tests.conftest import DATA, EXAMPLE, OFFSTREAM, LiveServer, free_port
from tests.helpers import current, documents, every_document, read_pages, refresh_once, sql
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
    assert await served_alike(store, settings, port, other_path) > 200


async def served_alike(store: Store, settings: Settings, port: int, other_path: Path | str) -> int:
    """Serve `store` (on `port`, the documents' base URL) and the store at `other_path` with the
    same settings, and hold every document of the first, in every format and encoding, to the
    same status, headers and bytes from the second, each answering the other's validators.
    Returns how many documents were compared."""
    names = [(feed, fmt) for feed, fmt in await sql(store, "SELECT feed, fmt FROM renditions ORDER BY feed, fmt")]
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
    return len(paths)


# ----- copies of one archive: times come from the pages, never from the copy or the clock -----------

TIMES = DATA / "times"  # a real page of 2008 no other test reads (tests/data/times/NOTICE.md)
CRICHTON = "/news/2008/11/04/michael-crichton-author-of-several-famous-novels-including-jurassic-park-the-lost-world-and-the-andromeda-strain-dies-at-age-66-gale"
# A real page of one version (nothing else names it) that both copies lose.
GONE = "news/2017/12/31/china-announces-the-country-s-ivory-trade-is-now-illegal-in-2015-chinese-president-xi-jinping-and-then-u-s-president-barack-obama-announc.md"
GONE_KEY = "/news/2017/12/31/china-announces-the-country-s-ivory-trade-is-now-illegal-in-2015-chinese-president-xi-jinping-and-then-u-s-president-barack-obama-announc"


def archive_copy(root: Path, mtime: float) -> Path:
    """The real sample tree and the 2008 page, copied as `cp -r` copies (every file gets new
    times, here `mtime` plus its rank in seconds: no two copies share one)."""
    for tree in (OFFSTREAM, TIMES):
        shutil.copytree(tree / "news", root / "news", dirs_exist_ok=True)
    for n, file in enumerate(sorted(root.rglob("*.md"))):
        os.utime(file, (mtime + n, mtime + n))
    return root


def replica_settings(settings: Settings, port: int, name: str, kind: str, location: Path, tmp_path: Path) -> Settings:
    (tmp_path / name).mkdir()
    return replace(
        settings,
        base_url=f"http://127.0.0.1:{port}",
        database=str(tmp_path / name / "feeds.db"),
        sources=(SourceConfig(name="offstream", kind=kind, location=str(location)),),
    )


async def assert_dated_by_pages(store: Store, settings: Settings, deleted_at: dt.datetime) -> None:
    """Every entry's `updated` is its page's (Changes list, else its day), the 2008 page's is its
    day; the gone page's tombstone is dated `deleted_at`; no time in any document is today's."""
    events = await store.events(FeedKey("latest"), 10_000)
    assert events and all(e.updated == event_updated(e.page) and e.published.year < 2019 for e in events)
    assert next(e.updated for e in events if e.key == CRICHTON) == dt.datetime(2008, 11, 4, tzinfo=UTC)
    crichton = await current(store, settings, "dates/2008-11-04", "atom")
    assert crichton is not None and crichton.last_modified == dt.datetime(2008, 11, 4, tzinfo=UTC)
    assert b"<updated>2008-11-04T00:00:00+00:00</updated>" in crichton.body
    day = await current(store, settings, "dates/2017-12-31", "atom")
    assert day is not None and f'ref="{event_guid(GONE_KEY)}" when="{deleted_at.isoformat()}"'.encode() in day.body
    today = dt.datetime.now(UTC).date().isoformat().encode()
    assert all(today not in body for body in (await documents(store, settings)).values())


async def test_two_cp_r_copies_with_other_mtimes_serve_alike(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    first = archive_copy(tmp_path / "copy-a", dt.datetime(2026, 12, 7, 10, tzinfo=UTC).timestamp())
    second = archive_copy(tmp_path / "copy-b", dt.datetime(2026, 12, 7, 10, 7, tzinfo=UTC).timestamp())
    one = replica_settings(settings, port, "a", "directory", first, tmp_path)
    two = replica_settings(settings, port, "b", "directory", second, tmp_path)
    a, b = await Store.open(one.database), await Store.open(two.database)
    try:
        await refresh_once(a, one)
        await refresh_once(b, two)
        # One copy's files are touched (new mtimes, same bytes): read again, nothing changes.
        for file in second.rglob("*.md"):
            os.utime(file)
        touched = (await refresh_once(b, two)).result
        assert not touched.changed and not touched.added and not touched.feeds
        # Both copies lose a page, seen by each replica at its own refresh.
        for root in (first, second):
            (root / GONE).unlink()
        await refresh_once(a, one)
        await refresh_once(b, two)
        # No source dates a directory's deletion: the archive's newest time does, the same for both.
        newest = max(event_updated(p.page) for p in read_pages(first))
        await assert_dated_by_pages(a, one, max(newest, event_updated(read_pages(OFFSTREAM, GONE)[0].page)))
        await assert_dated_by_pages(b, two, max(newest, event_updated(read_pages(OFFSTREAM, GONE)[0].page)))
    finally:
        await a.close()
        await b.close()
    assert await served_alike_at(one, port, two.database) > 200


async def served_alike_at(settings: Settings, port: int, other: str) -> int:
    store = await Store.open(settings.database)
    try:
        return await served_alike(store, settings, port, other)
    finally:
        await store.close()


def git(root: Path, *args: str, when: str | None = None) -> str:
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        **({"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when} if when else {}),
    }
    args = ("-c", "user.name=feeds tests", "-c", "user.email=tests@feeds.invalid", *args)
    done = subprocess.run(["git", "-C", str(root), *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


async def test_two_git_clones_of_one_commit_serve_alike_and_date_a_deletion_by_its_commit(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    origin = archive_copy(tmp_path / "origin", dt.datetime(2026, 12, 7, 9, tzinfo=UTC).timestamp())
    git(origin, "init", "--quiet", "--initial-branch=main")
    git(origin, "add", "news")
    git(origin, "commit", "--quiet", "-m", "the archive", when="2019-06-01T12:00:00+00:00")
    git(tmp_path, "clone", "--quiet", str(origin), "clone-a")
    one = replica_settings(settings, port, "a", "git", tmp_path / "clone-a", tmp_path)
    two = replica_settings(settings, port, "b", "git", tmp_path / "clone-b", tmp_path)
    a, b = await Store.open(one.database), await Store.open(two.database)
    removed = dt.datetime(2019, 6, 2, 8, 30, tzinfo=UTC)
    try:
        await refresh_once(a, one)
        git(origin, "rm", "--quiet", GONE)
        git(origin, "commit", "--quiet", "-m", "a page withdrawn", when=removed.isoformat())
        # The second clone is made later, of the same first commit (its files' mtimes are newer).
        git(tmp_path, "clone", "--quiet", str(origin), "clone-b")
        git(tmp_path / "clone-b", "reset", "--quiet", "--hard", "HEAD~1")
        await refresh_once(b, two)
        # Each pulls the deletion and refreshes at its own time.
        before = await renditions(a, one)
        git(tmp_path / "clone-a", "pull", "--quiet")
        await refresh_once(a, one)
        after = await renditions(a, one)
        # A later commit moves no document's Last-Modified but those whose bytes it changed.
        kept = [name for name in before if name in after and after[name][0] == before[name][0]]
        assert len(kept) > 100 and all(after[name] == before[name] for name in kept)
        assert any(after[name][0] != before[name][0] for name in before if name in after)
        git(tmp_path / "clone-b", "pull", "--quiet")
        await refresh_once(b, two)
        await assert_dated_by_pages(a, one, removed)  # RFC 6721 `when`: the commit's, in both
        await assert_dated_by_pages(b, two, removed)
    finally:
        await a.close()
        await b.close()
    assert await served_alike_at(one, port, two.database) > 200


async def renditions(store: Store, settings: Settings) -> dict[tuple[str, str], tuple[str, str, bytes]]:
    """(feed, format) -> (ETag, Last-Modified, plain bytes) of every document, as requests find them."""
    await every_document(store, settings)
    rows = await sql(store, "SELECT feed, fmt, etag, last_modified FROM renditions WHERE stale = 0")
    out = {}
    for feed, fmt, etag, modified in rows:
        rendition = await store.rendition(feed, fmt)
        assert rendition is not None
        out[(feed, fmt)] = (etag, modified, rendition.body)
    return out


async def test_a_settings_change_renders_what_a_fresh_store_would_last_modified_too(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    pages = read_pages(OFFSTREAM) + read_pages(TIMES)
    await store.apply(pages)
    await publish_all(store, settings)
    renamed = replace(settings, title="Current events, renamed")
    assert await publish_changes(store, renamed, set(), set()) > 0  # the new title: every document again
    fresh = await Store.open(str(tmp_path / "fresh.db"))
    try:
        await fresh.apply(pages)
        await publish_all(fresh, renamed)
        mine, theirs = await renditions(store, renamed), await renditions(fresh, renamed)
    finally:
        await fresh.close()
    assert len(mine) > 100 and mine == theirs


async def test_a_store_dated_by_mtimes_is_dated_by_its_pages_when_opened(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """What an older version left: events dated by their files' mtimes (the day the archive was
    copied), documents rendered with them. Opened by this version, the store converges on what a
    fresh store serves, without being deleted."""
    pages = read_pages(OFFSTREAM) + read_pages(TIMES)
    await store.apply(pages)
    copied = "2026-12-07T10:00:00+00:00"
    await sql(store, "UPDATE events SET updated = ?", (copied,))
    await sql(store, "UPDATE event_topics SET updated = ?", (copied,))
    await sql(store, "UPDATE topics SET updated = ?", (copied,))
    await sql(store, "DELETE FROM meta WHERE key = 'event_times'")
    await publish_all(store, settings)
    assert {m for _, m, _ in (await renditions(store, settings)).values()} == {copied}
    await store.close()
    upgraded = await Store.open(settings.database)
    try:
        await publish_changes(upgraded, settings, set(), set())  # what the next refresh publishes
        mine = await renditions(upgraded, settings)
        assert {e.key: e.updated for e in await upgraded.events(FeedKey("latest"), 1000)} == {
            e.key: event_updated(e.page) for e in await upgraded.events(FeedKey("latest"), 1000)
        }
    finally:
        await upgraded.close()
    fresh = await Store.open(str(tmp_path / "fresh.db"))
    try:
        await fresh.apply(pages)
        await publish_all(fresh, settings)
        theirs = await renditions(fresh, settings)
    finally:
        await fresh.close()
    assert len(mine) > 100 and mine == theirs


async def test_tombstones_are_shown_and_leave_by_the_archives_time_not_the_clocks(
    store: Store, settings: Settings
) -> None:
    """A deletion dated in the archive's past (2018) is shown although the clock is years on;
    it leaves once the archive's newest time is `tombstone_days` past it, at that publish."""
    settings = replace(settings, tombstone_days=7)
    await store.apply(read_pages(OFFSTREAM))
    await publish_all(store, settings)
    gone = await store.apply([], deleted=[GONE_KEY])
    await publish_report(store, settings, Report(result=gone))
    ref = f'ref="{event_guid(GONE_KEY)}"'.encode()
    day = await current(store, settings, "dates/2017-12-31", "atom")
    assert day is not None and ref in day.body
    assert day.last_modified == await store.newest_time() < dt.datetime(2019, 1, 1, tzinfo=UTC)
    later = await store.apply(read_pages(EXAMPLE))  # days of 2022-2024: the archive moves on
    assert "dates/2017-12-31" not in later.feeds
    await publish_report(store, settings, Report(result=later))
    day = await current(store, settings, "dates/2017-12-31", "atom")
    assert day is not None and ref not in day.body


async def test_the_bundled_example_copied_twice_gives_the_same_documents(settings: Settings, tmp_path: Path) -> None:
    """`cp -r` of config/example, twice, minutes apart: every document (feeds, pages, /topics)
    has the same bytes, ETag and Last-Modified, and no time in them is the copy's."""
    stores = []
    for name, mtime in (
        ("a", dt.datetime(2026, 12, 7, 10, tzinfo=UTC)),
        ("b", dt.datetime(2026, 12, 7, 10, 9, tzinfo=UTC)),
    ):
        root = tmp_path / f"example-{name}"
        shutil.copytree(EXAMPLE / "news", root / "news")
        for n, file in enumerate(sorted(root.rglob("*"))):
            os.utime(file, (mtime.timestamp() + n,) * 2)
        configured = replica_settings(settings, 0, name, "directory", root, tmp_path)
        store = await Store.open(configured.database)
        try:
            await refresh_once(store, configured)
            stores.append(await renditions(store, configured))
            events = await store.events(FeedKey("latest"), 1000)
            assert events and all(e.updated == event_updated(e.page) < mtime for e in events)
            topics = await sql(store, "SELECT max(updated) FROM topics")
            assert topics[0][0] < "2026"  # `/topics` does not say every topic was updated today
        finally:
            await store.close()
    assert len(stores[0]) > 200 and stores[0] == stores[1]
