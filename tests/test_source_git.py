"""GitSource against local repositories built commit by commit from real archive pages."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from feeds.config import SourceConfig
from feeds.errors import SourceError
from feeds.ids import event_guid
from feeds.model import FeedKey
from feeds.refresh import Report, ingest, refresh_source
from feeds.sources import Collected, open_source
from feeds.sources.directory import DirectorySource
from feeds.sources.git import GitSource, redact, safe_name
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

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=Feeds Test", "-c", "user.email=feeds@test.invalid", "-c", "commit.gpgsign=false",
             *args],
            cwd=self.root, check=True, capture_output=True, text=True,
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

    def commit(self, message: str, amend: bool = False) -> str:
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message, *(["--amend"] if amend else []))
        return self.git("rev-parse", "HEAD")


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


async def headlines(store: Store, feed: FeedKey = FeedKey("latest")) -> dict[str, str]:
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
        await refresh_source(other, DirectorySource(SourceConfig(name="dir", kind="directory", location=str(origin.root))))
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


async def test_a_fetch_that_hangs_is_killed_after_the_timeout(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "ssh" that never answers (nothing leaves the machine): the whole process group is killed.
    monkeypatch.setenv("GIT_SSH_COMMAND", "sleep 30 #")
    monkeypatch.setenv("GIT_SSH_VARIANT", "simple")
    source = git_source("ssh://feeds.invalid/archive.git")
    source.fetch_timeout = 0.5
    started = time.monotonic()
    try:
        with pytest.raises(SourceError, match=r"fetch of the default branch from ssh://feeds.invalid/archive.git timed out"):
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
