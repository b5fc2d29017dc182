"""GitSource against local repositories built commit by commit from real archive pages."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from feeds.config import SourceConfig
from feeds.errors import SourceError
from feeds.ids import event_guid, page_path
from feeds.model import FeedKey
from feeds.refresh import Report, ingest, refresh_source
from feeds.sources import Collected, open_source
from feeds.sources.directory import DirectorySource
from feeds.sources.git import GitSource
from feeds.sources.gitcache import HEAD_REF
from feeds.sources.gittools import LOG_ARGS, LastChanges, is_local, redact, safe_name
from feeds.store import Store
from tests.conftest import OFFSTREAM

DAY1 = "news/2017/12/31"
DAY2 = "news/2018/01/1"
BORNEO = "news/2018/01/1/a-boat-capsizes-in-the-north-of-indonesian-borneo-{}.md"
BORNEO_FIRST = BORNEO.format("with-at-least-8-people-dead")
BORNEO_LATER = (BORNEO.format("leaving-at-least-8-people-dead"), BORNEO.format("leaving-at-least-eight-people-dead"))
BORNEO_KEY = "/news/2018/01/01/a-boat-capsizes-in-the-north-of-indonesian-borneo-with-at-least-8-people-dead"
TAX = "news/2018/01/1/taxation-in-the-united-arab-emirates.md"
TAX_PADDED = "news/2018/01/01/taxation-in-the-united-arab-emirates.md"
TAX_KEY = "/news/2018/01/01/taxation-in-the-united-arab-emirates"
DATE2 = FeedKey("date", "2018-01-01")


def day_files(day: str) -> list[str]:
    return sorted(p.relative_to(OFFSTREAM).as_posix() for p in (OFFSTREAM / day).glob("*.md"))


class Origin:
    """The repository a source follows: a work tree in tmp_path, filled from the real samples."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.git("-c", "init.defaultBranch=main", "init", "--quiet")

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=Feeds Test", "-c", "user.email=feeds@test.invalid", "-c", "commit.gpgsign=false",
             *args],
            cwd=self.root, check=True, capture_output=True, text=True, env={**os.environ, **(env or {})},
        )  # fmt: skip
        return done.stdout.strip()

    def add(self, *relpaths: str, to: str | None = None) -> None:
        for rel in relpaths:
            target = self.root / (to or rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(OFFSTREAM / rel, target)

    def write(self, relpath: str, data: bytes) -> None:
        (self.root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (self.root / relpath).write_bytes(data)

    def remove(self, *relpaths: str) -> None:
        for rel in relpaths:
            (self.root / rel).unlink()

    def commit(self, message: str, amend: bool = False, when: str | None = None) -> str:
        """A commit of the work tree; `when` (ISO 8601) is its committer date, its author date a
        year earlier (a source must take the committer's)."""
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message, *(["--amend"] if amend else []), env=dates(when))
        return self.git("rev-parse", "HEAD")


def dates(when: str | None) -> dict[str, str]:
    if when is None:
        return {}
    committed = dt.datetime.fromisoformat(when)
    authored = committed.replace(year=committed.year - 1)
    return {"GIT_COMMITTER_DATE": committed.isoformat(), "GIT_AUTHOR_DATE": authored.isoformat()}


@pytest.fixture(autouse=True)
def hermetic_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the tests' git nor the source's reads the user's or the system's git config."""
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_SSH_COMMAND", "GIT_SSH"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    return Origin(tmp_path / "origin")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "var" / "feeds.db")
    yield s
    await s.close()


def git_source(location: str, branch: str = "", name: str = "offstream") -> GitSource:
    source = open_source(SourceConfig(name=name, kind="git", location=location, branch=branch))
    assert isinstance(source, GitSource)
    return source


@pytest.fixture
async def source(origin: Origin) -> AsyncIterator[GitSource]:
    s = git_source(str(origin.root))
    yield s
    await s.aclose()


async def collect(source: GitSource, store: Store) -> Collected:
    """What the source collects, its documents read (so a test can look at them, then ingest)."""
    collected = await source.collect(store)
    collected.documents = list(collected.documents)
    return collected


async def step(source: GitSource, store: Store) -> tuple[Collected, Report]:
    """One refresh as `refresh_source` does it: collect, ingest, then save the cursor."""
    collected = await collect(source, store)
    report = await ingest(store, source.name, collected)
    if collected.cursor is not None:
        await store.set_cursor(source.name, collected.cursor)
    return collected, report


def relpaths(collected: Collected) -> list[str]:
    assert isinstance(collected.documents, list)
    return sorted(d.relpath for d in collected.documents)


LATEST = FeedKey("latest")


async def headlines(store: Store, feed: FeedKey = LATEST) -> dict[str, str]:
    return {e.key: e.page.headline for e in await store.events(feed, 1000)}


# ----- the first run -----------------------------------------------------------------------------------


async def test_first_run_reads_every_document_of_the_head(
    origin: Origin, source: GitSource, store: Store, tmp_path: Path
) -> None:
    origin.add(*day_files(DAY1))
    head = origin.commit("2017-12-31")
    collected, report = await step(source, store)

    assert relpaths(collected) == day_files(DAY1)  # index.md and README.md included
    assert collected.expected == 25 and collected.deleted == [] and collected.cursor == head
    for doc in collected.documents:
        assert doc.data == (OFFSTREAM / doc.relpath).read_bytes()
        assert doc.origin == f"{origin.root}@{head[:12]}:{doc.relpath}"
    assert report.problems == []
    assert await store.cursor("offstream") == head
    # The cache is a bare repository next to the database.
    cache = tmp_path / "var" / "git" / "offstream"
    assert (cache / "HEAD").is_file() and not (cache / ".git").exists()

    # The same events as the same files read from a directory.
    other = await Store.open(tmp_path / "other.db")
    try:
        await refresh_source(
            other, DirectorySource(SourceConfig(name="dir", kind="directory", location=str(origin.root)))
        )
        expected = await headlines(other)
    finally:
        await other.close()
    assert await headlines(store) == expected
    assert len(expected) == await store.count_events() > 0


async def test_documents_are_read_lazily_and_a_reader_left_early_is_cleaned_up(
    origin: Origin, source: GitSource, store: Store
) -> None:
    origin.add(*day_files(DAY1))
    origin.commit("2017-12-31")
    collected = await source.collect(store)
    assert not isinstance(collected.documents, list) and collected.expected == 25
    documents = iter(collected.documents)
    first = await asyncio.to_thread(next, documents)
    assert first.relpath == day_files(DAY1)[0]
    documents.close()  # type: ignore[attr-defined]  # the cat-file process is ended, no warning


# ----- later runs ---------------------------------------------------------------------------------------


async def test_a_reworded_event_keeps_its_first_versions_key_and_only_changed_files_are_read(
    origin: Origin, source: GitSource, store: Store
) -> None:
    origin.add(*day_files(DAY1))
    origin.commit("2017-12-31")
    await refresh_source(store, source)
    day1 = await headlines(store)

    # Commit 2: the next day, with the Borneo boat chain's first version only.
    origin.add(*[f for f in day_files(DAY2) if f not in BORNEO_LATER])
    second = origin.commit("2018-01-01")
    collected, report = await step(source, store)
    assert relpaths(collected) == sorted(set(day_files(DAY2)) - set(BORNEO_LATER))
    assert collected.deleted == [] and collected.cursor == second
    assert all(d.origin.startswith(f"{origin.root}@{second[:12]}:") for d in collected.documents)
    boat = next(e for e in await store.events(DATE2, 100) if e.key == BORNEO_KEY)
    assert boat.page.headline.endswith("with at least 8 people dead.")
    count = await store.count_events()

    # Commit 3: the two rewordings. Only they are read; the event keeps its key and guid.
    origin.add(*BORNEO_LATER)
    third = origin.commit("Borneo boat reworded")
    collected, report = await step(source, store)
    assert relpaths(collected) == sorted(BORNEO_LATER)
    assert collected.expected == 2 and collected.deleted == [] and collected.cursor == third
    assert report.result.changed == {BORNEO_KEY} and not report.result.added and not report.result.deleted
    boat2 = next(e for e in await store.events(DATE2, 100) if e.key == BORNEO_KEY)
    assert boat2.guid == boat.guid == event_guid(BORNEO_KEY)
    assert boat2.page.headline.endswith("leaving at least eight people dead.")
    assert boat2.relpath == BORNEO_LATER[1]
    assert await store.count_events() == count
    assert await store.cursor("offstream") == third
    # The first day was not touched.
    assert {k: v for k, v in (await headlines(store)).items() if k in day1} == day1


async def test_a_deleted_page_deletes_its_event_and_a_deleted_listing_deletes_nothing(
    origin: Origin, source: GitSource, store: Store
) -> None:
    origin.add(*day_files(DAY2))
    origin.commit("2018-01-01")
    await refresh_source(store, source)
    assert TAX_KEY in await headlines(store, DATE2)
    count = await store.count_events()

    origin.remove(TAX, f"{DAY2}/index.md")
    head = origin.commit("taxation page and day index removed")
    collected, report = await step(source, store)
    assert relpaths(collected) == [] and collected.expected == 0
    assert collected.deleted == [TAX_KEY] and collected.cursor == head
    assert report.result.deleted == {TAX_KEY} and not report.result.added and not report.result.changed
    assert TAX_KEY not in await headlines(store, DATE2)
    assert await store.count_events() == count - 1


async def test_an_unchanged_head_reads_nothing(origin: Origin, source: GitSource, store: Store) -> None:
    origin.add(*day_files(DAY1))
    head = origin.commit("2017-12-31")
    await refresh_source(store, source)
    for _ in range(2):
        collected, report = await step(source, store)
        assert collected == Collected(documents=[], cursor=head, expected=0)
        assert not report.result.events and report.problems == []
    assert await store.cursor("offstream") == head


async def test_a_page_another_file_still_holds_is_not_deleted(origin: Origin, source: GitSource, store: Store) -> None:
    """Deleting one spelling of a page's file (unpadded day folder) while another remains."""
    origin.add(*day_files(DAY2))
    origin.commit("2018-01-01")
    await refresh_source(store, source)

    # Moved to the padded day folder: one file deleted, one added, the same page.
    origin.remove(TAX)
    origin.add(TAX, to=TAX_PADDED)
    origin.commit("moved")
    collected, report = await step(source, store)
    assert relpaths(collected) == [TAX_PADDED] and collected.deleted == []
    assert not report.result.deleted
    tax = next(e for e in await store.events(DATE2, 100) if e.key == TAX_KEY)
    assert tax.relpath == TAX_PADDED

    # Both spellings, then the padded one deleted: the other file still holds the page.
    origin.add(TAX)
    origin.commit("both")
    await step(source, store)
    origin.remove(TAX_PADDED)
    origin.commit("padded removed")
    collected, report = await step(source, store)
    assert relpaths(collected) == [] and collected.deleted == []
    assert TAX_KEY in await headlines(store, DATE2)


async def test_problems_name_the_commit_and_other_documents_are_stored(
    origin: Origin, source: GitSource, store: Store
) -> None:
    origin.add(*day_files(DAY1))
    origin.commit("2017-12-31")
    await refresh_source(store, source)

    origin.write("news/2018/01/2/broken.md", b"no date line here\n")
    os.symlink("../../../2017/12/31/index.md", origin.root / "news/2018/01/2/link.md")
    origin.write("news/2018/01/2/notes.txt", b"not a document")
    origin.write("elsewhere/news/2018/01/2/outside.md", b"outside the news/ tree")
    origin.add(BORNEO_FIRST)
    head = origin.commit("a broken page, a link, a note and a good page")
    collected, report = await step(source, store)
    assert relpaths(collected) == sorted(["news/2018/01/2/broken.md", BORNEO_FIRST])
    assert report.failed == ["news/2018/01/2/broken.md"]
    where = f"{origin.root}@{head[:12]}"
    assert any(p.startswith(f"{where}:news/2018/01/2/broken.md: date:") for p in report.problems)
    assert any(p.startswith(f"{where}:news/2018/01/2/link.md: not a regular file") for p in report.problems)
    assert report.result.added == {BORNEO_KEY}
    assert await store.cursor("offstream") == head  # the broken file is read again once it changes


# ----- rewritten history, branches, locations -------------------------------------------------------------


async def test_a_force_push_is_a_tree_comparison_while_the_cache_has_the_old_commit(
    origin: Origin, source: GitSource, store: Store
) -> None:
    origin.add(*day_files(DAY1), *day_files(DAY2))
    old = origin.commit("two days")
    await refresh_source(store, source)

    origin.remove(TAX)
    new = origin.commit("two days, rewritten", amend=True)
    assert subprocess.run(["git", "merge-base", "--is-ancestor", old, new], cwd=origin.root).returncode == 1
    collected, report = await step(source, store)
    assert relpaths(collected) == [] and collected.deleted == [TAX_KEY] and collected.cursor == new
    assert report.result.deleted == {TAX_KEY}


async def test_a_force_push_with_the_old_commit_gone_reads_everything_and_deletes_what_is_missing(
    origin: Origin, source: GitSource, store: Store, tmp_path: Path
) -> None:
    origin.add(*day_files(DAY1), *day_files(DAY2))
    origin.commit("two days")
    await refresh_source(store, source)
    count = await store.count_events()

    shutil.rmtree(tmp_path / "var" / "git")  # the cache is lost: the old commit is nowhere
    origin.remove(TAX)
    new = origin.commit("two days, rewritten", amend=True)
    collected, report = await step(source, store)
    assert relpaths(collected) == sorted(set(day_files(DAY1) + day_files(DAY2)) - {TAX})
    assert collected.deleted == [TAX_KEY] and collected.cursor == new
    # Everything else is unchanged in the store.
    assert report.result.deleted == {TAX_KEY} and not report.result.added and not report.result.changed
    assert await store.count_events() == count - 1


async def test_a_configured_branch_is_followed_over_a_file_url(origin: Origin, store: Store) -> None:
    origin.add(*day_files(DAY1))
    origin.commit("main")
    origin.git("checkout", "--quiet", "-b", "other")
    origin.add(BORNEO_FIRST)
    other = origin.commit("other")
    origin.git("checkout", "--quiet", "main")

    url = origin.root.as_uri()
    source = git_source(url, branch="other")
    try:
        collected = await collect(source, store)
    finally:
        await source.aclose()
    assert collected.cursor == other and BORNEO_FIRST in relpaths(collected)
    assert all(d.origin.startswith(f"{url}@{other[:12]}:") for d in collected.documents)


async def test_a_missing_branch_or_an_invalid_one_is_a_source_error(origin: Origin, store: Store) -> None:
    origin.add(*day_files(DAY1))
    origin.commit("main")
    for branch, words in (("nope", ["'nope'", str(origin.root), "nope"]), ("a:b", ["'a:b'", "not a valid branch"])):
        source = git_source(str(origin.root), branch=branch)
        try:
            with pytest.raises(SourceError) as caught:
                await source.collect(store)
        finally:
            await source.aclose()
        assert caught.value.source == "offstream"
        assert all(w in str(caught.value) for w in words), str(caught.value)


async def test_a_broken_location_is_a_source_error_naming_it(store: Store, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    for location in (str(tmp_path / "missing"), str(tmp_path / "plain"), (tmp_path / "missing").as_uri()):
        source = git_source(location)
        try:
            with pytest.raises(SourceError) as caught:
                await source.collect(store)
        finally:
            await source.aclose()
        message = str(caught.value)
        assert message.startswith("source offstream: unable to fetch the default branch from ")
        assert location in message and "fatal:" in message
    assert await store.cursor("offstream") is None


async def test_a_fetch_that_hangs_is_killed_after_the_timeout(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # "ssh" that never answers (nothing leaves the machine): the whole process group is killed.
    monkeypatch.setenv("GIT_SSH_COMMAND", "sleep 30 #")
    monkeypatch.setenv("GIT_SSH_VARIANT", "simple")
    source = git_source("ssh://feeds.invalid/archive.git")
    source.fetch_timeout = 0.5
    started = time.monotonic()
    try:
        with pytest.raises(
            SourceError, match=r"fetch of the default branch from ssh://feeds.invalid/archive.git timed out"
        ):
            await source.collect(store)
    finally:
        await source.aclose()
    assert time.monotonic() - started < 10

    # Cancelled (a server shutting down) rather than timed out: the same clean end, nothing left.
    source = git_source("ssh://feeds.invalid/archive.git")
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(source.collect(store), 0.5)
    finally:
        await source.aclose()
    assert await store.cursor("offstream") is None


async def test_an_in_memory_store_gets_a_temporary_cache(origin: Origin) -> None:
    origin.add(*day_files(DAY1))
    head = origin.commit("2017-12-31")
    store = await Store.open(":memory:")
    source = git_source(str(origin.root))
    try:
        report = await refresh_source(store, source)
        cache = source.cache_dir(store)
        assert cache.is_dir() and len(report.result.added) > 0
        assert await store.cursor("offstream") == head
    finally:
        await source.aclose()
        await store.close()
    assert not cache.exists()


def test_cache_names_and_redacted_locations() -> None:
    assert safe_name("offstream") == "offstream"
    assert safe_name("a b") != safe_name("a-b") and safe_name("a b").startswith("a-b-")
    assert safe_name("../..").startswith("source-") and "/" not in safe_name("x/y")
    assert redact("https://user:secret@example.org/a.git") == "https://user:***@example.org/a.git"
    assert redact("https://example.org/a.git") == "https://example.org/a.git"
    assert redact("/srv/archive") == "/srv/archive"


# ----- times: the page's, and a deletion's commit ------------------------------------------------------------

T1, T2 = "2018-01-01T06:00:00+00:00", "2018-01-02T07:30:15+00:00"
T3, T4 = "2018-01-03T23:59:59+00:00", "2018-01-05T01:02:03+00:00"


def at(when: str) -> dt.datetime:
    return dt.datetime.fromisoformat(when)


def in_cache(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", f"--git-dir={cache}", *args], capture_output=True, text=True, check=False)


def reworded(relpath: str) -> bytes:
    return (OFFSTREAM / relpath).read_bytes().replace(b"# Taxation", b"# Taxes", 1)


async def tombstone(store: Store, key: str) -> dt.datetime:
    (deleted,) = [t.deleted for t in await store.tombstones(DATE2, at("2000-01-01T00:00:00+00:00"))
                  if t.guid == event_guid(key)]  # fmt: skip
    return deleted


async def test_commits_say_what_to_read_never_when_an_event_changed(
    origin: Origin, source: GitSource, store: Store, tmp_path: Path
) -> None:
    """A page without a Changes list is updated at its day, whichever commit last changed it: a
    directory copy or an HTTP site of the same pages says the same."""
    origin.add(*day_files(DAY1))
    origin.commit("2017-12-31", when=T1)
    origin.add(*[f for f in day_files(DAY2) if f not in BORNEO_LATER])
    second = origin.commit("2018-01-01", when=T2)
    origin.write(TAX, reworded(TAX))
    origin.commit("taxation reworded in place", when=T3)

    collected, _ = await step(source, store)
    assert isinstance(collected.documents, list)
    assert all(d.modified is None for d in collected.documents) and collected.deleted_at == {}
    tax = next(e for e in await store.events(DATE2, 100) if e.key == TAX_KEY)
    assert tax.page.headline.startswith("Taxes") and tax.updated == tax.published == at("2018-01-01T00:00:00+00:00")

    # The cache keeps the whole history of commits and trees, but only the blobs it read: the
    # taxation page's first version was never fetched.
    cache = tmp_path / "var" / "git" / "offstream"
    assert not (cache / "shallow").exists()
    assert in_cache(cache, "rev-list", "--count", HEAD_REF).stdout.strip() == "3"
    assert in_cache(cache, "cat-file", "-e", origin.git("rev-parse", f"{second}:{TAX}")).returncode != 0


async def test_a_deleted_page_is_dated_by_the_commit_that_removed_it(
    origin: Origin, source: GitSource, store: Store
) -> None:
    origin.add(*day_files(DAY1), *[f for f in day_files(DAY2) if f not in BORNEO_LATER])
    origin.commit("two days", when=T1)
    await step(source, store)

    origin.remove(TAX)
    origin.commit("taxation withdrawn", when=T2)
    origin.git("commit", "--quiet", "--allow-empty", "-m", "nothing", env=dates(T3))
    collected, report = await step(source, store)
    assert collected.deleted == [TAX_KEY] and collected.deleted_at == {TAX_KEY: at(T2)}
    assert report.result.deleted == {TAX_KEY}
    assert await tombstone(store, TAX_KEY) == at(T2)  # RFC 6721 `when`: the commit's, not the refresh's


async def test_a_deletion_found_by_a_full_read_is_dated_by_its_commit_too(
    origin: Origin, source: GitSource, store: Store
) -> None:
    """A lost cursor reads the head whole; the pages it no longer has are dated by the commits
    that removed them, as an update would have."""
    origin.add(*day_files(DAY1), *[f for f in day_files(DAY2) if f not in BORNEO_LATER])
    origin.commit("two days", when=T1)
    await step(source, store)
    origin.remove(TAX)
    origin.commit("taxation withdrawn", when=T2)
    origin.add(BORNEO_LATER[0])
    origin.commit("Borneo update", when=T3)
    await store.set_cursor("offstream", "0" * 40)
    collected, _ = await step(source, store)
    assert collected.deleted_at == {TAX_KEY: at(T2)}
    assert await tombstone(store, TAX_KEY) == at(T2)


async def test_the_users_log_settings_change_no_time(
    origin: Origin, source: GitSource, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin.add(*day_files(DAY1))
    origin.commit("2017-12-31: the root commit", when=T1)
    origin.add(TAX)
    origin.commit("taxation", when=T2)
    await step(source, store)
    origin.remove(TAX)
    origin.commit("taxation withdrawn", when=T3)
    settings = tmp_path / "gitconfig"
    settings.write_text(
        "[log]\n\tshowRoot = false\n\tfollow = true\n\tshowSignature = true\n[diff]\n\trenames = copies\n"
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(settings))
    collected = await collect(source, store)
    assert collected.deleted_at == {TAX_KEY: at(T3)}


async def test_a_merged_deletion_is_dated_by_the_merge_on_the_followed_branch(
    origin: Origin, source: GitSource, store: Store
) -> None:
    """The followed branch's own line of commits says when a change reached it: a page removed
    on a side branch went at the merge that brought the removal."""
    origin.add(*day_files(DAY1), TAX)
    origin.commit("2017-12-31 and taxation", when=T1)
    await step(source, store)
    origin.git("checkout", "--quiet", "-b", "side")
    origin.remove(TAX)
    origin.commit("taxation withdrawn, on a side branch", when=T2)
    origin.git("checkout", "--quiet", "main")
    origin.add(BORNEO_FIRST)
    origin.commit("Borneo, on main", when=T3)
    origin.git("merge", "--quiet", "--no-ff", "--no-edit", "side", env=dates(T4))
    collected = await collect(source, store)
    assert collected.deleted_at == {TAX_KEY: at(T4)}


async def test_a_shallow_cache_left_by_an_older_version_is_given_its_history(
    origin: Origin, source: GitSource, store: Store, tmp_path: Path
) -> None:
    origin.add(*day_files(DAY1))
    origin.commit("2017-12-31", when=T1)
    origin.add(*day_files(DAY2))
    head = origin.commit("2018-01-01", when=T2)
    # What earlier versions kept: the head alone (`--depth=1`), with the cursor stored.
    cache = tmp_path / "var" / "git" / "offstream"
    cache.mkdir(parents=True)
    assert in_cache(cache, "init", "--quiet", "--bare").returncode == 0
    assert in_cache(cache, "fetch", "--quiet", "--depth=1", str(origin.root), f"+HEAD:{HEAD_REF}").returncode == 0
    assert (cache / "shallow").exists()
    await store.set_cursor("offstream", head)

    origin.write(TAX, reworded(TAX))
    origin.commit("taxation reworded", when=T3)
    collected, _ = await step(source, store)
    assert relpaths(collected) == [TAX]
    assert not (cache / "shallow").exists()
    assert in_cache(cache, "rev-list", "--count", HEAD_REF).stdout.strip() == "3"


async def test_a_force_push_back_to_an_older_version_reads_the_blob_the_cache_never_had(
    origin: Origin, source: GitSource, store: Store, tmp_path: Path
) -> None:
    origin.add(*day_files(DAY2))
    first = origin.commit("2018-01-01", when=T1)
    origin.write(TAX, reworded(TAX))
    origin.commit("taxation reworded", when=T2)
    await step(source, store)
    cache = tmp_path / "var" / "git" / "offstream"
    assert in_cache(cache, "cat-file", "-e", origin.git("rev-parse", f"{first}:{TAX}")).returncode != 0

    # The old head is in the cache's history already: nothing is fetched but that one blob.
    origin.git("reset", "--quiet", "--hard", first)
    collected, report = await step(source, store)
    assert relpaths(collected) == [TAX] and collected.cursor == first and collected.deleted == []
    assert collected.documents[0].data == (OFFSTREAM / TAX).read_bytes()  # type: ignore[index]
    assert report.result.changed == {TAX_KEY}


async def test_the_history_is_read_the_same_whatever_the_chunks_and_only_as_far_as_needed(
    origin: Origin, source: GitSource, store: Store
) -> None:
    origin.add(*day_files(DAY1))
    origin.commit("2017-12-31", when=T1)
    origin.add(*day_files(DAY2))
    origin.commit("2018-01-01", when=T2)
    out = origin.git(*LOG_ARGS, "HEAD", "--", "news").encode("utf-8")
    wanted = [*day_files(DAY1), *day_files(DAY2)]
    whole = LastChanges(wanted)
    whole.feed(out)
    assert whole.done
    assert whole.times == {rel: int(at(T1 if rel.startswith(DAY1) else T2).timestamp()) for rel in wanted}
    for size in (1, 7, 4096):
        pieces = LastChanges(wanted)
        for i in range(0, len(out), size):
            pieces.feed(out[i : i + size])
        assert pieces.times == whole.times
    # Files of the newest commit are placed before the older commit is reached.
    newest = LastChanges([TAX])
    newest.feed(out[: out.index(b"\x01", 1)])
    assert newest.done and newest.times == {TAX: int(at(T2).timestamp())}
    # Counted by page: any file of the page (any day spelling or extension) dates it.
    pages = LastChanges([TAX_KEY], key=page_path)
    pages.feed(out)
    assert pages.times == {TAX_KEY: int(at(T2).timestamp())}


def test_local_locations() -> None:
    for location in ("/srv/archive", "archive", "./a:b", "file:///srv/archive", "C/x"):
        assert is_local(location), location
    for location in ("https://example.org/a.git", "git@github.com:o/r.git", "host:path/x", "ssh://h/r"):
        assert not is_local(location), location
