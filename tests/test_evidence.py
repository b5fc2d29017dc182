"""The archive's own evidence beside Changes chains, on real day folders (tests/data/offstream):
day listings name the current pages; an unlisted earlier rendering all of whose sources one listed
page cites folds into it; listings give old renderings their heading; times come from the source;
and two stores fed the same pages in different orders and batchings serve the same bytes."""

from __future__ import annotations

import datetime as dt
import random
import shutil
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from feeds.app import create_app
from feeds.chains import DayPage, Version, chain_root, listing_evidence, replaced_by
from feeds.config import Settings, SourceConfig
from feeds.ids import event_guid, page_path
from feeds.model import UTC, FeedKey, Page
from feeds.pages import parse_document
from feeds.pages.write import archive_url
from feeds.publish import publish_all
from feeds.refresh import open_sources, refresh_all
from feeds.store import Incoming, IncomingListing, Store, event_updated
from tests.conftest import OFFSTREAM, LiveServer, free_port
from tests.helpers import documents, etags, sql

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
    def page(path: str, *urls: str) -> DayPage:
        return DayPage(path, frozenset(urls))

    a, b, c = "https://a.test/1", "https://b.test/2", "https://c.test/3"
    pages = [
        page("/d/listed", a, b),  # a later rendering that added a source
        page("/d/older", a),
        page("/d/merged", b),
        page("/d/both", b, a),
        page("/d/no-source"),
        page("/d/more", a, c),  # cites a source the listed page does not
        page("/d/listed-too", c),
    ]
    found = listing_evidence(pages, {"index": {"/d/listed", "/d/listed-too"}})
    assert found["/d/older"] == found["/d/merged"] == found["/d/both"] == ("/d/listed", "")
    assert found["/d/no-source"] == (None, "it has no source to match a listed page by")
    assert found["/d/more"] == (None, f"no listed page cites all its sources ({a}, {c})")
    assert "/d/listed" not in found and "/d/listed-too" not in found  # listed pages never fold
    # An unlisted page whose sources two listed pages both cite is left alone, whatever the order.
    twins = [*pages, page("/d/twin", c, b)]
    for order in (twins, twins[::-1]):
        ambiguous = listing_evidence(order, {"README": {"/d/listed", "/d/listed-too", "/d/twin"}})
        assert ambiguous["/d/merged"] == (None, f"its sources ({b}) are all cited by 2 listed pages")
        assert ambiguous["/d/older"] == ("/d/listed", "")


def test_a_listing_naming_an_older_rendering_than_the_other_is_overruled() -> None:
    def page(path: str, *urls: str) -> DayPage:
        return DayPage(path, frozenset(urls))

    a, b, c = "https://a.test/1", "https://b.test/2", "https://c.test/3"
    pages = [page("/d/new", a, b, c), page("/d/old", b), page("/d/other", c), page("/d/same", a, b, c)]
    # README names an older rendering of the story index names: it is folded like an unlisted one.
    assert replaced_by(pages, {"index": {"/d/new", "/d/other"}, "README": {"/d/old", "/d/other"}}) == {
        "/d/old": "/d/new"
    }
    assert listing_evidence(pages, {"index": {"/d/new"}, "README": {"/d/old"}})["/d/old"] == ("/d/new", "")
    # Not when one listing names both (two stories), nor between equal sources (which is older?).
    assert replaced_by(pages, {"index": {"/d/new", "/d/old"}, "README": {"/d/old"}}) == {}
    assert replaced_by(pages, {"index": {"/d/new"}, "README": {"/d/same"}}) == {}
    assert replaced_by(pages, {"index": {"/d/new", "/d/same"}, "README": {"/d/old"}}) == {}  # two later ones


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


# Every fold the listing's evidence makes on whole real days (unlisted page -> listed page), each
# checked by reading both pages: the same story, the unlisted page citing only sources the listed
# page cites. Pages folded by a Changes chain as well are marked so.
REAL_FOLDS = {
    # Seven renderings whose headline starts with its topic ("Turkey-PKK conflict. 2015 PKK
    # rebellion. Turkish security forces ..."), each citing the very sources of the listed page.
    # The laser story's two listed pages (index.md and README.md name one each) are one Changes chain.
    "news/2015/11/11": {
        "anti-corruption-campaign-in-china-beijing-deputy-communist-party-secretary-la1-4-xiwen-and-shanghai-vice-mayor-ai-baojun-are-placed-under-inv": "beijing-deputy-communist-party-secretary-la1-4-xiwen-and-shanghai-vice-mayor-ai-baojun-are-placed-under-investigation-by-the-top-anti-graft-b",
        "european-migrant-crisis-slovenian-border-barrier-slovenia-s-army-begins-erecting-a-razor-wire-fence-along-parts-of-its-southern-border-wit": "slovenia-s-army-begins-erecting-a-razor-wire-fence-along-parts-of-its-southern-border-with-croatia-in-order-to-stop-a-tide-of-illegal-migran",
        "metrojet-flight-9268-tourism-bookings-in-egypt-s-main-red-sea-resort-of-sharm-el-sheikh-plunge-in-the-wake-of-the-plane-crash-with-some-8": "tourism-bookings-in-egyptas-main-red-sea-resort-of-sharm-el-sheikh-plunge-in-the-wake-of-the-plane-crash-with-some-80-of-reservations-can",
        "myanmar-general-election-2015-with-45-percent-of-the-pyithu-hluttaw-house-of-representatives-results-announced-from-sunday-s-election-a": "with-45-percent-of-the-pyithu-hluttaw-house-of-representatives-results-announced-from-sunday-s-election-aung-san-suu-kyi-s-national-leagu",
        "syrian-civil-war-spillover-of-the-syrian-civil-war-the-israeli-air-force-reportedly-conducts-an-airstrike-near-damascus-international-airp": "the-israeli-air-force-reportedly-conducts-an-airstrike-near-damascus-international-airport-in-syria-s-capital-the-target-apparently-a-weap",
        "turkey-pkk-conflict-2015-pkk-rebellion-turkish-security-forces-backed-up-by-tanks-and-combat-helicopters-launch-a-large-scale-operation": "turkish-security-forces-backed-up-by-tanks-and-combat-helicopters-launch-a-large-scale-operation-against-pkk-militants-in-the-mainly-kurdish",
        "war-in-afghanistan-2015-present-carrying-coffins-holding-the-beheaded-bodies-of-seven-ethnic-hazara-thousands-of-demonstrators-from-af": "carrying-coffins-holding-the-beheaded-bodies-of-seven-ethnic-hazara-thousands-of-demonstrators-from-afghanistan-s-different-ethnic-groups",
    },
    "news/2016/11/9": {
        # Also by a Changes chain.
        "2016-croydon-tram-derailment-at-least-seven-people-have-been-killed-and-51-hospitalised-after-a-tramlink-light-rail-vehicle-derailed-and-ov": "at-least-seven-people-have-been-killed-and-51-hospitalised-after-a-tramlink-light-rail-vehicle-derailed-and-overturned-close-to-sandilands-t",
        # The same Fox News source; the headline without its "Operation Inherent Resolve." prefix.
        "operation-inherent-resolve-the-united-states-military-states-that-it-has-inadvertently-killed-64-civilians-in-air-strikes-on-targets-in-syr": "the-united-states-military-states-that-it-has-inadvertently-killed-64-civilians-in-air-strikes-on-targets-in-syria-and-iraq-over-the-past-ye",
        # The election: index.md names the current page (seven sources); README.md an older one
        # citing three of them; two more renderings cite the same seven.
        "united-states-presidential-election-and-general-elections-2016-although-he-lost-the-popular-vote-donald-trump-the-republican-nominee-for": "although-he-lost-the-popular-vote-donald-trump-the-republican-nominee-for-the-2016-presidential-election-becomes-the-president-elect-of-t",
        "united-states-presidential-election-and-general-elections-2016palthough-he-lost-the-popular-vote-donald-trump-the-republican-nominee-for": "although-he-lost-the-popular-vote-donald-trump-the-republican-nominee-for-the-2016-presidential-election-becomes-the-president-elect-of-t",
        "united-states-presidential-election-and-general-elections-2016palthough-he-narrowly-lost-the-popular-vote-donald-trump-the-republican-nom": "although-he-lost-the-popular-vote-donald-trump-the-republican-nominee-for-the-2016-presidential-election-becomes-the-president-elect-of-t",
    },
    "news/2017/09/28": {
        # Volcano: two renderings citing news.com.au; the listed page cites CNN, then news.com.au.
        "indonesia-s-mount-agung-volcano-on-the-island-of-bali-continues-to-release-smoke-although-there-is-no-certainty-on-when-and-whether-it-will": "more-than-134-000-people-on-the-island-of-bali-indonesia-have-been-taken-to-shelters-as-the-mount-agung-volcano-continues-to-release-smoke",
        "the-mount-agung-volcano-on-the-island-of-bali-indonesia-continues-to-release-smoke-although-there-is-no-certainty-on-whether-it-will-erupt": "more-than-134-000-people-on-the-island-of-bali-indonesia-have-been-taken-to-shelters-as-the-mount-agung-volcano-continues-to-release-smoke",
        # Also by Changes chains.
        "the-de-facto-leader-of-catalonia-vows-to-continue-on-with-the-vote-despite-objections-from-spain": "the-president-of-catalonia-vows-to-continue-on-with-the-vote-despite-objections-from-spain",
        "united-states-president-donald-trump-waives-the-jones-act-for-puerto-rico-after-he-first-disallowed-additional-aid-citing-shipping-indust": "u-s-president-donald-trump-waives-the-jones-act-for-puerto-rico-after-he-first-disallowed-additional-aid-citing-shipping-industry-business",
    },
}


@pytest.mark.parametrize("day", sorted(REAL_FOLDS))
async def test_one_story_once_on_a_real_day(day: str, store: Store, settings: Settings) -> None:
    pages, listings = day_documents((day,))
    folds = {str(page_path(f"{day}/{k}.md")): str(page_path(f"{day}/{v}.md")) for k, v in REAL_FOLDS[day].items()}
    named = {item.listing.path: {e.path for e in item.listing.entries} for item in listings}
    day_pages = [DayPage(p.page.path, frozenset(s.url for s in p.page.sources)) for p in pages]
    evidence = listing_evidence(day_pages, named)
    listed = set().union(*named.values()) - replaced_by(day_pages, named).keys()
    assert {p: t for p, (t, _) in evidence.items() if t} == folds  # every fold the rule makes, and no other
    port = free_port()
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}")
    result = await store.apply(pages, listings=listings, now=T0 + dt.timedelta(days=1000))
    await publish_all(store, settings)
    live = await store.events(FeedKey("date", pages[0].page.date.isoformat()), 1000)
    # One event per listed story (listed versions of one Changes chain are one), and one per
    # unlisted story nothing explains (reported).
    current = dict(await sql(store, "SELECT a.path, e.current FROM aliases a JOIN events e ON e.key = a.chain"))
    stories = {current[p] for p in listed}
    assert stories <= {e.page.path for e in live} and len(live) == len(stories) + len(result.unlisted)
    assert not {page_path(r) for r in result.unlisted} & folds.keys()
    for event in live:  # a story keeps its first version's id (here: the earliest its source recorded)
        versions = {event.page.path, *(p for p, t in folds.items() if t == event.page.path)}
        chained = {p for (p,) in await sql(store, "SELECT path FROM aliases WHERE chain = ?", (event.key,))}
        assert event.key in versions | chained and event.guid == event_guid(event.key)
        if len(versions) > 1 and not any(p.page.changes for p in pages if p.page.path in versions):
            assert event.key == min(versions - {event.page.path}), event.page.path  # the listed page is the latest
    with LiveServer(create_app(settings, scheduler=False), port=port) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            feed = (await client.get(f"/feeds/dates/{pages[0].page.date.isoformat()}.json")).json()
            ids = [item["id"] for item in feed["items"]]
            assert len(ids) == len(set(ids)) == len(live)  # one story once
            for older, newer in folds.items():
                moved = await client.get(archive_url(older, "html"))
                assert (moved.status_code, moved.headers["location"]) == (301, archive_url(newer, "html"))


async def test_folding_real_days_does_not_depend_on_arrival_order(store: Store, tmp_path: Path) -> None:
    """The folds of REAL_FOLDS (one listing overruling the other among them) come out the same
    whether a day's listings arrive before, after or between its pages."""
    pages, listings = day_documents(tuple(sorted(REAL_FOLDS)))
    now = T0 + dt.timedelta(days=3000)
    await store.apply(pages, listings=listings, now=now)
    wanted = {e.key: e.page.path for e in await store.events(FeedKey("latest"), 1000)}
    for seed in (7, 8):
        other = await Store.open(str(tmp_path / f"real-{seed}.db"))
        try:
            mixed: list[Incoming | IncomingListing] = [*pages, *listings]
            random.Random(seed).shuffle(mixed)
            for start in range(0, len(mixed), 5):
                batch = mixed[start : start + 5]
                await other.apply(
                    [p for p in batch if isinstance(p, Incoming)],
                    listings=[p for p in batch if isinstance(p, IncomingListing)],
                    now=now,
                )
            assert {e.key: e.page.path for e in await other.events(FeedKey("latest"), 1000)} == wanted, seed
            assert await other.unlisted() == await store.unlisted()
        finally:
            await other.close()


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
        mine, theirs = await documents(store, settings), await documents(other, settings)
        assert len(mine) > 100 and mine.keys() == theirs.keys()
        differ = [k for k in mine if mine[k] != theirs[k]]
        assert differ == []
        assert await etags(store, settings) == await etags(other, settings)
        # Entries carry their pages' times (Changes lists, else the day), not an ingest instant.
        latest = await store.events(FeedKey("latest"), 1000)
        assert {e.updated for e in latest} == {event_updated(e.page) for e in latest}
        assert all(e.updated < now for e in latest)
    finally:
        await other.close()
