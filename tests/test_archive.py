"""Real archive pages: whole days, day listings, topics as people name them, deletions."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from feeds import refresh
from feeds.config import Settings, SourceConfig
from feeds.errors import StoreError
from feeds.ids import event_guid
from feeds.model import FeedKey
from feeds.refresh import open_sources, refresh_all
from feeds.sources import Collected, Document, Source
from feeds.store import Store
from tests.conftest import OFFSTREAM
from tests.helpers import current, entries

DAYS = ("news/2017/12/31", "news/2018/01/1")
TAX = "news/2018/01/1/taxation-in-the-united-arab-emirates.md"
TAX_KEY = "/news/2018/01/01/taxation-in-the-united-arab-emirates"


def archive_copy(tmp_path: Path, days: tuple[str, ...] = DAYS) -> Path:
    root = tmp_path / "archive"
    for day in days:
        shutil.copytree(OFFSTREAM / day, root / day)
    return root


def archive_settings(settings: Settings, root: Path) -> Settings:
    return replace(settings, sources=(SourceConfig(name="offstream", kind="directory", location=str(root)),))


async def served_archive(
    store: Store, settings: Settings, tmp_path: Path, days: tuple[str, ...]
) -> tuple[Path, Settings, list[Source]]:
    """A copy of sample days as a directory source, refreshed once into the store."""
    root = archive_copy(tmp_path, days)
    config = archive_settings(settings, root)
    sources = open_sources(config.sources)
    await refresh_all(store, config, sources)
    return root, config, sources


async def test_whole_days_ingest_without_problems(store: Store, settings: Settings, tmp_path: Path) -> None:
    config = archive_settings(settings, archive_copy(tmp_path))
    report = await refresh_all(store, config, open_sources(config.sources))
    # index.md and README.md are day listings, not malformed events; every listed page exists.
    assert report.problems == []
    # 43 page files are 25 events once version chains and the listings' evidence are folded: two
    # unlisted renderings of the Iranian protests story cite only sources the listed page cites.
    assert len(report.result.added) == 25
    events = await store.events(FeedKey("latest"), 1000)
    assert len({e.guid for e in events}) == len(events) == 25


async def test_a_listed_page_missing_is_reported_with_both_paths(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    root = archive_copy(tmp_path, ("news/2018/01/1",))
    page = "news/2018/01/1/california-becomes-the-latest-and-most-populated-state-to-legalize-the-recreational-use-of-cannabis.md"
    (root / page).unlink()
    config = archive_settings(settings, root)
    report = await refresh_all(store, config, open_sources(config.sources))
    missing = [p for p in report.problems if "california-becomes" in p]
    assert len(missing) == 2  # index.md and README.md both list it
    assert all(str(root / "news/2018/01/1") in p and "/news/2018/01/01/california-becomes" in p for p in missing)


async def test_topics_differing_in_case_are_one(store: Store, settings: Settings, tmp_path: Path) -> None:
    await served_archive(store, settings, tmp_path, ("news/1999/01/1",))
    # The euro page's heading is "Euro", its related contexts say "euro": one topic, one slug.
    topics = await store.topics()
    assert [(t.slug, t.events) for t in topics] == [("euro", 1)]
    assert (await current(store, settings, "topics/euro", "atom")) is not None


async def test_deleted_page_leaves_feeds_with_a_tombstone_and_comes_back(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    root, config, sources = await served_archive(store, settings, tmp_path, ("news/2018/01/1",))
    guid = event_guid(TAX_KEY)
    date_feed = "dates/2018-01-01"
    assert guid in [e["id"] for e in entries("atom", (await current(store, settings, date_feed, "atom")).body)]  # type: ignore[union-attr]

    saved = (root / TAX).read_bytes()
    (root / TAX).unlink()
    report = await refresh_all(store, config, sources)
    assert report.result.deleted == {TAX_KEY}
    for fmt in ("rss", "atom", "json"):
        rendition = await current(store, settings, date_feed, fmt)
        assert rendition is not None
        assert guid not in [e["id"] for e in entries(fmt, rendition.body)]
    atom = etree.fromstring((await current(store, settings, date_feed, "atom")).body)  # type: ignore[union-attr]
    tombstones = atom.findall("{http://purl.org/atompub/tombstones/1.0}deleted-entry")
    assert [t.get("ref") for t in tombstones] == [guid]
    assert tombstones[0].get("when", "").endswith("+00:00")
    assert (await current(store, settings, "topics/united-arab-emirates", "atom")) is None or guid not in (
        await current(store, settings, "topics/united-arab-emirates", "atom")  # type: ignore[union-attr]
    ).body.decode()

    (root / TAX).write_bytes(saved)
    report = await refresh_all(store, config, sources)
    assert report.result.changed == {TAX_KEY} or report.result.added == {TAX_KEY}
    atom = etree.fromstring((await current(store, settings, date_feed, "atom")).body)  # type: ignore[union-attr]
    assert atom.findall("{http://purl.org/atompub/tombstones/1.0}deleted-entry") == []
    assert guid in [e["id"] for e in entries("atom", (await current(store, settings, date_feed, "atom")).body)]  # type: ignore[union-attr]


async def test_deleting_the_current_version_falls_back_to_the_previous(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    root, config, sources = await served_archive(store, settings, tmp_path, ("news/2018/01/1",))
    newest = (
        root / "news/2018/01/1/a-boat-capsizes-in-the-north-of-indonesian-borneo-leaving-at-least-eight-people-dead.md"
    )
    newest.unlink()
    report = await refresh_all(store, config, sources)
    key = "/news/2018/01/01/a-boat-capsizes-in-the-north-of-indonesian-borneo-with-at-least-8-people-dead"
    assert report.result.changed == {key} and not report.result.deleted
    event = next(e for e in await store.events(FeedKey("latest"), 100) if e.key == key)
    assert event.page.headline.endswith("leaving at least 8 people dead.")


async def test_related_links_to_any_version_resolve_to_the_event(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """A related link naming an old version of an event leads to the event's current page."""
    root = archive_copy(tmp_path, ("news/2018/01/1",))
    first = "news/2018/01/1/2017-iranian-protests-caused-12-death-yet.md"
    # A page of another day whose related list names the *first* version of the Iran chain.
    other = root / "news/2018/01/2/later.md"
    other.parent.mkdir(parents=True)
    other.write_text(
        "### [2018-01-2](/news/2018/01/2/index.md)\n\n# Protests go on.\n\n### Related:\n\n"
        f"1. [2017 Iranian protests caused 12 death yet. ](/{first}) _Context: 2017 Iranian protests_\n"
    )
    config = replace(
        archive_settings(settings, root),
        sources=(
            SourceConfig(
                name="offstream", kind="directory", location=str(root), link="https://archive.test/{path}.html"
            ),
        ),
    )
    await refresh_all(store, config, open_sources(config.sources))
    body = (await current(store, config, "dates/2018-01-02", "atom")).body.decode()  # type: ignore[union-attr]
    # The chain's versions are unlisted earlier renderings of the listed page that has their first
    # source and cover image: the link leads to that page.
    current_url = (
        "https://archive.test/news/2018/01/1/"
        "ten-people-die-at-the-protests-overnight-with-twelve-deaths-total-so-far-as-the-protests-enter-their-fifth-day.html"
    )
    assert f'href="{current_url}"' in body.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    entry = entries("atom", (await current(store, config, "dates/2018-01-02", "atom")).body)[0]  # type: ignore[union-attr]
    assert entry["id"] == event_guid("/news/2018/01/02/later")


async def test_padded_and_unpadded_day_folders_are_the_same_pages(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "padded"
    shutil.copytree(OFFSTREAM / "news/2018/01/1", root / "news/2018/01/01")
    config = archive_settings(settings, root)
    report = await refresh_all(store, config, open_sources(config.sources))
    assert report.problems == [] and len(report.result.added) == 12
    # The same pages from the archive's unpadded folder are the same events, not new ones.
    unpadded = archive_copy(tmp_path, ("news/2018/01/1",))
    both = replace(config, sources=(SourceConfig(name="offstream", kind="directory", location=str(unpadded)),))
    report = await refresh_all(store, both, open_sources(both.sources))
    assert not report.result.added and not report.result.deleted
    assert len(await store.events(FeedKey("date", "2018-01-01"), 100)) == 12


async def test_parsing_in_worker_processes_stores_what_one_process_does(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk ingest parses batches in other processes while this one stores: same pages, same
    events in the same arrival order, same problems, whatever the batching."""
    documents = [
        Document(p.relative_to(OFFSTREAM).as_posix(), p.read_bytes(), str(p))
        for p in sorted(OFFSTREAM.glob("news/**/*.md"))
    ]
    documents.insert(5, Document("news/2018/01/1/broken.json", b"{not json", "broken.json"))
    monkeypatch.setattr(refresh, "BATCH_SIZE", 7)
    monkeypatch.setattr(refresh, "PARALLEL_FROM", 1)
    alone = await Store.open(str(tmp_path / "alone.db"))
    try:
        one = await refresh.ingest(alone, "offstream", Collected(documents=list(documents), expected=len(documents)))
        many = await refresh.ingest(
            store, "offstream", Collected(documents=iter(documents), expected=len(documents)), processes=3
        )
        assert one.problems == many.problems and many.problems[0].startswith("broken.json: invalid JSON")
        assert one.failed == many.failed == ["news/2018/01/1/broken.json"]
        assert one.result.added == many.result.added and len(many.result.added) >= 25
        latest = FeedKey("latest")
        assert [(e.key, e.seq, e.topics) for e in await alone.events(latest, 1000)] == [
            (e.key, e.seq, e.topics) for e in await store.events(latest, 1000)
        ]
    finally:
        await alone.close()


async def test_a_source_failing_while_it_is_read_fails_the_ingest_and_keeps_what_was_stored(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading runs ahead of storing: a read that fails mid-way is raised from the ingest (not
    lost in the background, nothing left waiting), the batches stored before it stay, and the
    store's writer is back to checkpointing its log itself."""
    pages = sorted(OFFSTREAM.glob("news/**/*.md"))

    def documents() -> Iterator[Document]:
        for n, p in enumerate(pages):
            if n == 10:
                raise OSError(5, "Input/output error", str(p))
            yield Document(p.relative_to(OFFSTREAM).as_posix(), p.read_bytes(), str(p))

    monkeypatch.setattr(refresh, "BATCH_SIZE", 4)
    monkeypatch.setattr(refresh, "PARALLEL_FROM", 1)
    with pytest.raises(OSError, match="Input/output error"):
        await asyncio.wait_for(
            refresh.ingest(store, "offstream", Collected(documents=documents(), expected=len(pages)), processes=2), 60
        )
    assert 0 < await store.count_events() <= 10
    assert (await store._db.execute_fetchall("PRAGMA wal_autocheckpoint"))[0][0] == 1000


@pytest.mark.parametrize("processes", [1, 2])
async def test_a_batch_failing_to_store_fails_the_ingest_with_nothing_left_running(
    store: Store, monkeypatch: pytest.MonkeyPatch, processes: int
) -> None:
    """When storing a batch fails while more are read and parsed ahead, the ingest raises that
    error, the batches stored before stay, nothing is left waiting, and the writer is back to
    checkpointing its log itself."""
    pages = sorted(OFFSTREAM.glob("news/**/*.md"))
    documents = [Document(p.relative_to(OFFSTREAM).as_posix(), p.read_bytes(), str(p)) for p in pages]
    monkeypatch.setattr(refresh, "BATCH_SIZE", 4)
    monkeypatch.setattr(refresh, "PARALLEL_FROM", 1)
    apply, calls = store.apply, []

    async def failing(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise StoreError("store: write failed: disk I/O error")
        return await apply(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "apply", failing)
    with pytest.raises(StoreError, match="disk I/O error"):
        await asyncio.wait_for(
            refresh.ingest(
                store, "offstream", Collected(documents=iter(documents), expected=len(documents)), processes=processes
            ),
            60,
        )
    assert 0 < await store.count_events() <= 8
    assert (await store._db.execute_fetchall("PRAGMA wal_autocheckpoint"))[0][0] == 1000
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
