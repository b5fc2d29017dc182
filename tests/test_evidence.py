"""The archive's own evidence beside Changes chains, on real day folders (tests/data/offstream):
day listings name the current pages; unlisted earlier renderings with a listed page's first
source fold into it; listings give old renderings their heading; times come from the source;
and two stores fed the same pages in different orders and batchings serve the same bytes."""

from __future__ import annotations

import datetime as dt
import random
import shutil
from dataclasses import replace
from pathlib import Path

from feeds.chains import DayPage, Version, chain_root, listing_evidence
from feeds.config import Settings, SourceConfig
from feeds.ids import event_guid
from feeds.model import UTC, FeedKey, Page
from feeds.pages import parse_document
from feeds.publish import publish_all
from feeds.refresh import open_sources, refresh_all
from feeds.store import Incoming, IncomingListing, Store, event_updated
from tests.conftest import OFFSTREAM
from tests.helpers import documents, etags

DAYS = ("news/2017/12/31", "news/2018/01/1")
DAY = "/news/2018/01/01/"
LISTED = (
    DAY
    + "ten-people-die-at-the-protests-overnight-with-twelve-deaths-total-so-far-as-the-protests-enter-their-fifth-day"
)
FIRST = DAY + "2017-iranian-protests-caused-12-death-yet"
LATER = DAY + "2017a18-iranian-protests-caused-12-death-yet"
T0 = dt.datetime(2018, 1, 2, 12, 0, tzinfo=UTC)


def day_documents(days: tuple[str, ...] = DAYS) -> tuple[list[Incoming], list[IncomingListing]]:
    """Every page and listing of the days (their times are the pages' own)."""
    pages, listings = [], []
    files = sorted(p for day in days for p in (OFFSTREAM / day).glob("*.md"))
    for file in files:
        rel = file.relative_to(OFFSTREAM).as_posix()
        doc = parse_document(rel, file.read_bytes())
        if isinstance(doc, Page):
            pages.append(Incoming(doc, rel, "offstream"))
        else:
            listings.append(IncomingListing(doc, rel, "offstream"))
    return pages, listings


def test_listing_evidence_rule() -> None:
    listed = DayPage("/d/listed", "https://a.test/1", "https://img.test/1.jpg")
    pages = [
        listed,
        DayPage("/d/older", "https://a.test/1", "https://img.test/1.jpg"),
        DayPage("/d/no-image", "https://a.test/1", None),
        DayPage("/d/other-image", "https://a.test/1", "https://img.test/2.jpg"),
        DayPage("/d/no-source", None, None),
        DayPage("/d/elsewhere", "https://b.test/2", None),
        DayPage("/d/listed-too", "https://c.test/3", None),
    ]
    found = listing_evidence(pages, {"/d/listed", "/d/listed-too"})
    assert found["/d/older"] == ("/d/listed", "") and found["/d/no-image"] == ("/d/listed", "")
    assert found["/d/other-image"][0] is None and found["/d/no-source"][0] is None
    assert "no listed page has its first source https://b.test/2" in found["/d/elsewhere"][1]
    assert "/d/listed" not in found and "/d/listed-too" not in found  # listed pages never fold
    # Two listed pages with one first source: an unlisted page matching both is left alone.
    ambiguous = listing_evidence(
        [*pages, DayPage("/d/twin", "https://c.test/3", None), DayPage("/d/u", "https://c.test/3", None)],
        {"/d/listed-too", "/d/twin"},
    )
    assert ambiguous["/d/u"] == (None, "its first source https://c.test/3 is the first source of 2 listed pages")


def test_a_version_with_predecessors_is_not_a_first_version_and_source_times_break_ties() -> None:
    a, b = Version("/a", "/a", None, ()), Version("/b", "/b", None, ())
    assert chain_root([a, b]) == "/a"
    assert chain_root([a, b], {"/a": T0, "/b": T0 - dt.timedelta(hours=1)}) == "/b"
    assert chain_root([replace(a, listed=("/b",)), b]) == "/b"


async def test_unlisted_renderings_fold_into_the_listed_page_keeping_the_first_version_id(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    pages, listings = day_documents(("news/2018/01/1",))
    result = await store.apply(pages, listings=listings, now=T0 + dt.timedelta(days=1))
    # 22 files, 2 listings, 20 pages: 12 events (three chains, and the Iranian protests story:
    # two unlisted renderings with the listed page's first source and cover image).
    assert len(result.added) == 12
    event = (await store.events_of([FIRST]))[FIRST]
    assert event.guid == event_guid(FIRST) and event.page.path == LISTED
    assert LISTED not in result.added and LATER not in result.added
    # The page the listing does not name and nothing explains is served, and reported.
    assert list(result.unlisted) == ["news/2018/01/1/taxation-in-the-united-arab-emirates.md"]
    assert await store.unlisted() == 1


async def test_folding_does_not_depend_on_arrival_order_or_batching(store: Store, tmp_path: Path) -> None:
    pages, listings = day_documents()
    together = await store.apply(pages, listings=listings, now=T0 + dt.timedelta(days=1))
    wanted = {e.key: (e.page.path, e.topics, e.updated) for e in await store.events(FeedKey("latest"), 1000)}
    for seed in (1, 2, 3):
        other = await Store.open(str(tmp_path / f"other-{seed}.db"))
        try:
            mixed: list[Incoming | IncomingListing] = [*pages, *listings]
            random.Random(seed).shuffle(mixed)
            for start in range(0, len(mixed), 4):
                batch = mixed[start : start + 4]
                await other.apply(
                    [p for p in batch if isinstance(p, Incoming)],
                    listings=[p for p in batch if isinstance(p, IncomingListing)],
                    now=T0 + dt.timedelta(days=1),
                )
            got = {e.key: (e.page.path, e.topics, e.updated) for e in await other.events(FeedKey("latest"), 1000)}
            assert got == wanted, seed
            # Nothing was ever published in between: folded ids leave no tombstone behind.
            assert await other.tombstones(FeedKey("latest"), T0 - dt.timedelta(days=1)) == []
            assert await other.unlisted() == await store.unlisted() == 3  # Kenya truck, New Year, UAE tax
        finally:
            await other.close()
    assert len(together.added) == 25


async def test_old_renderings_take_their_heading_from_the_day_listing(store: Store) -> None:
    pages, listings = day_documents(("news/2017/12/31",))
    await store.apply(pages, listings=listings, now=T0 + dt.timedelta(days=1))
    path = "/news/2017/12/31/palestine-recalls-their-envoy-to-the-united-states-for-consultations-following-president-trump-s-recognition-of-jerusalem-as-the-capital"
    page = next(p.page for p in pages if p.page.path == path)
    assert page.heading is None  # the page itself has no `#####` heading; README.md gives one
    event = (await store.events_of([path]))[path]
    assert event.page.heading == "Palestine-United States relations"
    assert "Palestine-United States relations" in {t.name for t in event.topics}


async def test_a_story_listed_on_two_days_stays_two_events(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    shutil.copytree(OFFSTREAM / "news/2018/01/1", root / "news/2018/01/1")
    # The next day's listing names its own page of the same story (same first source and image).
    listed = Path(OFFSTREAM / "news/2018/01/1" / (LISTED.rsplit("/", 1)[1] + ".md")).read_text()
    day2 = root / "news/2018/01/2"
    day2.mkdir(parents=True)
    (day2 / "protests-go-on.md").write_text(
        listed.replace("2018-01-1", "2018-01-2").replace("/2018/01/1/", "/2018/01/2/")
    )
    (day2 / "index.md").write_text(
        "## [2018-01-2](/news/2018/01/2/index.md)\n\n### [Protests go on. ](/news/2018/01/2/protests-go-on.md)\n"
    )
    config = Settings(
        database=str(tmp_path / "feeds.db"),
        sources=(SourceConfig(name="offstream", kind="directory", location=str(root)),),
    )
    report = await refresh_all(store, config, open_sources(config.sources))
    assert "/news/2018/01/02/protests-go-on" in report.result.added and FIRST in report.result.added


def test_updated_comes_from_the_changes_list_else_the_day() -> None:
    pages, _ = day_documents(("news/2018/01/1",))
    later = next(p.page for p in pages if p.page.path == LATER)
    stamps = [c.timestamp for c in later.changes if c.timestamp]
    assert stamps and event_updated(later) == max(stamps)
    plain = next(p.page for p in pages if not p.page.changes)
    assert event_updated(plain) == dt.datetime(2018, 1, 1, tzinfo=dt.UTC)


async def test_two_stores_of_the_same_pages_serve_the_same_bytes(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    pages, listings = day_documents()
    now = dt.datetime(2026, 1, 1, tzinfo=UTC)  # after every time the pages carry
    await store.apply(pages, listings=listings, now=now)
    await publish_all(store, settings)
    other = await Store.open(str(tmp_path / "other.db"))
    try:
        mixed: list[Incoming | IncomingListing] = [*pages, *listings]
        random.Random(5).shuffle(mixed)
        for start in range(0, len(mixed), 3):
            batch = mixed[start : start + 3]
            # A later clock: nothing in a document may come from it.
            await other.apply(
                [p for p in batch if isinstance(p, Incoming)],
                listings=[p for p in batch if isinstance(p, IncomingListing)],
                now=now + dt.timedelta(hours=start),
            )
        await publish_all(other, settings)
        mine, theirs = await documents(store), await documents(other)
        assert len(mine) > 100 and mine.keys() == theirs.keys()
        differ = [k for k in mine if mine[k] != theirs[k]]
        assert differ == []
        assert await etags(store) == await etags(other)
        # Entries carry their pages' times (Changes lists, else the day), not an ingest instant.
        latest = await store.events(FeedKey("latest"), 1000)
        assert {e.updated for e in latest} == {event_updated(e.page) for e in latest}
        assert all(e.updated < now for e in latest)
    finally:
        await other.close()
