"""The directory source: a full scan first, then only the files the kernel saw touched (watchfiles),
and a full scan again whenever the kernel's account may be incomplete."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from feeds.config import SourceConfig
from feeds.model import FeedKey, utcnow
from feeds.refresh import Report, refresh_source, settle
from feeds.sources import Collected, directory
from feeds.sources.directory import DirectorySource
from feeds.store import Store
from tests.conftest import OFFSTREAM

BOAT = "news/2018/01/1/a-boat-capsizes-in-the-north-of-indonesian-borneo-with-at-least-8-people-dead.md"
TAX = "news/2018/01/1/taxation-in-the-united-arab-emirates.md"
EURO = "news/1999/01/1/the-euro-currency-is-introduced.md"
TAX_KEY = "/news/2018/01/01/taxation-in-the-united-arab-emirates"
BOAT_KEY = "/news/2018/01/01/a-boat-capsizes-in-the-north-of-indonesian-borneo-with-at-least-8-people-dead"

pytestmark = pytest.mark.skipif(not Path("/proc/sys/fs/inotify").exists(), reason="no inotify")


@pytest.fixture
def counted_scans(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = directory.scan

    def scan(root: Path) -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
        calls.append(root)
        return real(root)

    monkeypatch.setattr(directory, "scan", scan)
    return calls


def tree_with(tmp_path: Path, *relpaths: str) -> Path:
    root = tmp_path / "watched"
    for rel in relpaths:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(OFFSTREAM / rel, root / rel)
    return root


def watched(source: DirectorySource) -> threading.Event:
    """Set (on the watcher's thread) each time the source's watcher reports changes; before the
    source's first collect."""
    seen = threading.Event()
    source.on_change = seen.set
    return seen


async def reported(seen: threading.Event) -> None:
    """The watcher has reported what was just changed (it does so a step after the change)."""
    assert await asyncio.to_thread(seen.wait, 10), "the watcher reported nothing in 10 s"
    seen.clear()


async def refreshed(store: Store, source: DirectorySource, **least: int) -> Report:
    """Refresh until the refreshes together hold at least `least` (added=2, ...): changes made in
    a few steps may reach the watcher in more than one report."""
    total = Report()
    deadline = time.monotonic() + 10
    while True:
        total.result.merge((await refresh_source(store, source)).result)
        if all(len(getattr(total.result, kind)) >= n for kind, n in least.items()):
            return total
        assert time.monotonic() < deadline, f"not seen in 10 s: {least}"
        await asyncio.sleep(0.05)


async def keys(store: Store) -> set[str]:
    return {e.key for e in await store.events(FeedKey("latest"), 1000)}


async def test_after_one_scan_a_refresh_reads_only_what_the_kernel_saw(
    store: Store, tmp_path: Path, counted_scans: list[Path]
) -> None:
    root = tree_with(tmp_path, TAX)
    source = DirectorySource(SourceConfig(name="d", kind="directory", location=str(root)))
    try:
        first = await refresh_source(store, source)
        assert len(first.result.added) == 1 and len(counted_scans) == 1

        # Nothing touched: nothing read, no scan.
        quiet = await refresh_source(store, source)
        assert not (quiet.result.added or quiet.result.changed or quiet.result.deleted)

        # A new file in a watched folder, and a new day folder with a file in it.
        shutil.copy(OFFSTREAM / BOAT, root / BOAT)
        (root / EURO).parent.mkdir(parents=True)
        shutil.copy(OFFSTREAM / EURO, root / EURO)
        grown = await refreshed(store, source, added=2)
        assert len(grown.result.added) == 2

        # Rewritten in place, then deleted.
        text = (root / TAX).read_text()
        (root / TAX).write_text(text.replace("Taxation", "Taxes", 1))
        edited = await refreshed(store, source, changed=1)
        assert len(edited.result.changed) == 1
        (root / BOAT).unlink()
        shrunk = await refreshed(store, source, deleted=1)
        assert len(shrunk.result.deleted) == 1
        assert len(await keys(store)) == 2
        assert len(counted_scans) == 1  # every refresh after the first read the kernel's account
    finally:
        await source.aclose()


async def test_a_page_in_another_folder_spelling_is_not_deleted_with_one_of_its_files(
    store: Store, tmp_path: Path
) -> None:
    root = tree_with(tmp_path, TAX)
    padded = root / TAX.replace("/1/", "/01/")
    padded.parent.mkdir(parents=True)
    shutil.copy(root / TAX, padded)
    source = DirectorySource(SourceConfig(name="d", kind="directory", location=str(root)))
    seen = watched(source)
    try:
        await refresh_source(store, source)
        (root / TAX).unlink()
        await reported(seen)
        report = await refresh_source(store, source)
        assert not report.result.deleted and len(await keys(store)) == 1
        padded.unlink()
        await reported(seen)
        report = await refresh_source(store, source)
        assert len(report.result.deleted) == 1
    finally:
        await source.aclose()


async def test_a_source_refreshed_at_each_report_takes_it_without_waiting_and_loses_nothing(
    store: Store, tmp_path: Path, counted_scans: list[Path]
) -> None:
    """As the scheduler runs it (`follows_watcher`): a refresh takes what the watcher reported,
    without waiting for its next rounds; a change it has not reported yet is in the refresh its
    report starts."""
    root = tree_with(tmp_path, TAX)
    source = DirectorySource(SourceConfig(name="d", kind="directory", location=str(root)))
    seen, source.follows_watcher = watched(source), True
    try:
        await refresh_source(store, source)
        shutil.copy(OFFSTREAM / BOAT, root / BOAT)
        await reported(seen)
        assert len((await refresh_source(store, source)).result.added) == 1
        # Written, and refreshed at once: taken now, or by the refresh its report starts.
        text = (root / TAX).read_text()
        (root / TAX).write_text(text.replace("Taxation", "Taxes", 1))
        now = await refresh_source(store, source)
        while not now.result.changed:  # each turn waits for a report: none in 10 s fails
            await reported(seen)
            now = await refresh_source(store, source)
        assert len(now.result.changed) == 1
        assert len(await keys(store)) == 2 and len(counted_scans) == 1
    finally:
        await source.aclose()


async def test_when_the_kernel_account_is_incomplete_the_tree_is_scanned_again(
    store: Store, tmp_path: Path, counted_scans: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tree_with(tmp_path, TAX)
    source = DirectorySource(SourceConfig(name="d", kind="directory", location=str(root)))
    try:
        await refresh_source(store, source)
        # A folder moved away and back (the watch on it is gone): scan, and find the new file.
        day = root / "news/2018/01/1"
        os.rename(day, root / "moved")
        os.rename(root / "moved", day)
        shutil.copy(OFFSTREAM / BOAT, root / BOAT)
        report = await refreshed(store, source, added=1)
        assert len(counted_scans) == 2 and len(report.result.added) == 1
        # The kernel dropped events (its queue overflowed): the same.
        monkeypatch.setattr(directory.TreeWatch, "changes", lambda self: None)
        (root / BOAT).unlink()
        report = await refresh_source(store, source)
        assert len(counted_scans) == 3 and len(report.result.deleted) == 1
    finally:
        await source.aclose()


async def test_without_watching_every_refresh_scans(store: Store, tmp_path: Path, counted_scans: list[Path]) -> None:
    root = tree_with(tmp_path, TAX)
    source = DirectorySource(SourceConfig(name="d", kind="directory", location=str(root)), watch=False)
    await refresh_source(store, source)
    shutil.copy(OFFSTREAM / BOAT, root / BOAT)
    report = await refresh_source(store, source)
    assert len(counted_scans) == 2 and len(report.result.added) == 1


async def test_a_restarted_source_reads_only_what_changed_while_it_was_down(store: Store, tmp_path: Path) -> None:
    """The files a source has read are kept in the store: a new process (a server restarted on a
    400,000-page tree) stats the tree and reads what changed since, not every file again."""
    root = tree_with(tmp_path, TAX, BOAT, EURO)
    broken = root / "news/2018/01/1/broken.md"
    broken.write_text("no date line here\n")
    config = SourceConfig(name="d", kind="directory", location=str(root))

    async def run_once() -> tuple[list[str], list[str]]:
        source = DirectorySource(config)
        try:
            collected = await source.collect(store)
            docs = list(collected.documents)
            await settle(store, source, Collected(documents=docs, deleted=collected.deleted, expected=len(docs)))
            return sorted(d.relpath for d in docs), collected.deleted
        finally:
            await source.aclose()

    read, gone = await run_once()
    assert read == sorted([TAX, BOAT, EURO, "news/2018/01/1/broken.md"]) and gone == []
    # Nothing changed: only the file that failed to parse is read again (its fix may keep its
    # size and mtime).
    assert await run_once() == (["news/2018/01/1/broken.md"], [])
    # While no process runs: one page reworded, one removed, the broken one mended.
    text = (root / BOAT).read_text()
    (root / BOAT).write_text(text.replace("capsizes", "capsized", 1))
    (root / EURO).unlink()
    mended = (root / TAX).read_text().replace("taxation-in-the-united-arab-emirates", "broken")
    broken.write_text(mended)
    read, gone = await run_once()
    assert read == sorted([BOAT, "news/2018/01/1/broken.md"])
    assert gone == ["/news/1999/01/01/the-euro-currency-is-introduced"]
    assert await run_once() == ([], [])
    assert "/news/1999/01/01/the-euro-currency-is-introduced" not in await keys(store)


async def test_files_are_read_day_by_day_oldest_first_and_by_inode_within_a_day(store: Store, tmp_path: Path) -> None:
    """Date order (folder 9 before folder 10, padded or not) makes a topic's arrival order follow
    the dates; inode order within a day follows the disk (the real files' inodes are taken as
    they are: the order of one day's files is whatever their inodes say)."""
    day_files = {
        "news/2018/01/10": ["b.md", "a.md", "c.md"],
        "news/2018/01/9": ["z.md", "y.md"],
        "news/2017/12/31": ["m.md"],
        "news/2018/1/09": ["x.md"],
    }
    root = tmp_path / "days"
    sample = (OFFSTREAM / TAX).read_bytes()
    for folder, names in day_files.items():
        (root / folder).mkdir(parents=True)
        for name in names:
            (root / folder / name).write_bytes(sample)
    source = DirectorySource(SourceConfig(name="d", kind="directory", location=str(root)), watch=False)
    read = [document.relpath for document in (await source.collect(store)).documents]
    inode = {rel: os.stat(root / rel).st_ino for rel in read}
    days = [rel.rsplit("/", 1)[0] for rel in read]
    assert days[0] == "news/2017/12/31" and set(days[1:4]) == {"news/2018/01/9", "news/2018/1/09"}
    assert days[4:] == ["news/2018/01/10"] * 3
    assert [inode[rel] for rel in read[4:]] == sorted(inode[rel] for rel in read[4:])
    assert [inode[rel] for rel in read[1:4]] == sorted(inode[rel] for rel in read[1:4])


async def test_a_files_mtime_says_whether_to_read_it_again_never_when_its_event_changed(
    store: Store, tmp_path: Path
) -> None:
    root = tree_with(tmp_path, TAX, BOAT)
    when = dt.datetime(2018, 1, 1, 21, 5, 7, tzinfo=dt.UTC)
    os.utime(root / TAX, (when.timestamp(), when.timestamp()))
    ahead = (utcnow() + dt.timedelta(days=400)).timestamp()
    os.utime(root / BOAT, (ahead, ahead))  # a clock far ahead, or a forged date
    source = DirectorySource(SourceConfig(name="d", kind="directory", location=str(root)))
    seen = watched(source)
    try:
        collected = await source.collect(store)
        docs = {d.relpath: d for d in collected.documents}
        assert {d.modified for d in docs.values()} == {None}
        await settle(store, source, Collected(documents=list(docs.values()), expected=len(docs)))
        day = dt.datetime(2018, 1, 1, tzinfo=dt.UTC)  # neither page has a Changes list
        assert {e.key: e.updated for e in await store.events(FeedKey("latest"), 10)} == {
            TAX_KEY: day,
            BOAT_KEY: day,
        }

        # Rewritten and seen by the kernel: read again, and still dated by its page, not its file.
        later = when + dt.timedelta(days=3, seconds=1)
        (root / TAX).write_text((OFFSTREAM / TAX).read_text().replace("Taxation", "Taxes", 1))
        os.utime(root / TAX, (later.timestamp(), later.timestamp()))
        await reported(seen)
        collected = await source.collect(store)
        docs = {d.relpath: d for d in collected.documents}
        assert list(docs) == [TAX]
        await settle(store, source, Collected(documents=list(docs.values()), expected=1))
        tax = next(e for e in await store.events(FeedKey("latest"), 10) if e.key == TAX_KEY)
        assert tax.page.headline.startswith("Taxes") and tax.updated == day
    finally:
        await source.aclose()


async def test_what_a_batch_that_was_never_stored_collected_is_collected_again(store: Store, tmp_path: Path) -> None:
    """A refresh whose batch fails to store (a full disk) took the watcher's account: the next
    collection reads those files again, with whatever else changed since."""
    root = tree_with(tmp_path, TAX)
    source = DirectorySource(SourceConfig(name="d", kind="directory", location=str(root)))
    seen = watched(source)
    try:
        await refresh_source(store, source)
        text = (root / TAX).read_text()
        (root / TAX).write_text(text.replace("Taxation", "Taxes", 1))
        await reported(seen)
        lost = await source.collect(store)  # as a refresh whose store then fails: never committed
        assert [d.relpath for d in lost.documents] == [TAX]
        shutil.copy(OFFSTREAM / BOAT, root / BOAT)
        await reported(seen)
        again = await source.collect(store)
        docs = list(again.documents)
        assert sorted(d.relpath for d in docs) == sorted([TAX, BOAT])
        report = await settle(store, source, Collected(documents=docs))
        assert len(report.result.changed) == 1 and len(report.result.added) == 1
        assert (await source.collect(store)).expected == 0  # stored: not read again
    finally:
        await source.aclose()
