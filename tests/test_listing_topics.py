"""A day listing's context names count for the pages it names: with the page's own, in any
arrival order, from a listing written before a rewording, bounded like a page's; a store from
before reads its listings again.

Real pages (tests/data/topics/NOTICE.md): the 2008-11-26 listing and its page about Edna Parker,
which has no Related section; the 2017-12-31 sample day (tests/data/offstream).
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from feeds import codec
from feeds.config import Limits, Settings, SourceConfig
from feeds.model import FORMATS, DayListing, Related
from feeds.pages import parse_document
from feeds.publish import publish_all
from feeds.refresh import parse_documents, settle
from feeds.sources import Collected, Document
from feeds.sources.directory import DirectorySource
from feeds.store import IncomingListing, Store, batch
from tests.test_evidence import day_documents
from tests.test_topics import AUSTIN_MD, EDNA_DAY, EN, consistent, page, topic_table

EDNA = "news/2008/11/26/edna-parker-the-oldest-living-person-in-the-world-died-at-age-115-in-her-hometown-of-shelbyville-indiana.md"
EDNA_TOPICS = ["edna-parker", "shelbyville-indiana", "the-oldest-living-person-in-the-world"]


def edna_listing() -> IncomingListing:
    listing = parse_document(EDNA_DAY, (EN / EDNA_DAY).read_bytes())
    assert isinstance(listing, DayListing)
    return IncomingListing(listing, EDNA_DAY, "test")


async def test_a_day_listings_context_names_count_for_its_pages(tmp_path: Path, settings: Settings) -> None:
    """The real 2008 page about Edna Parker has no Related section; its day's listing names
    `Edna Parker, Shelbyville, Indiana, the oldest living person in the world` for it. Those are
    its topics, whichever of page and listing arrives first (the same bytes and ETags either way);
    they go with the listing's entry when it no longer names them."""
    edna = page(EN, EDNA)
    assert edna.page.related == () and edna.page.topics == ()
    orders = {
        "page, then listing": [([edna], []), ([], [edna_listing()])],
        "listing, then page": [([], [edna_listing()]), ([edna], [])],
        "together": [([edna], [edna_listing()])],
    }
    etags = {}
    for name, batches in orders.items():
        store = await Store.open(tmp_path / f"{len(etags)}.db")
        try:
            for pages, listings in batches:
                await store.apply(pages, listings=listings)
            event = (await store.events_of([edna.page.path]))[edna.page.path]
            assert [t.slug for t in event.topics] == EDNA_TOPICS, name
            assert (await topic_table(store))["shelbyville-indiana"] == (
                "Shelbyville, Indiana",
                frozenset({edna.page.path}),
            )
            await consistent(store)
            await publish_all(store, settings)
            etags[name] = {
                feed: await store.rendition_etags(feed) for feed in ("topics/edna-parker", "dates/2008-11-26", "latest")
            }
            if name == "together":
                # The listing read again without the names: the page has none of its own.
                plain = edna_listing()
                entries = tuple(
                    replace(e, contexts=(), parts=()) if e.path == edna.page.path else e for e in plain.listing.entries
                )
                result = await store.apply(
                    [], listings=[replace(plain, listing=replace(plain.listing, entries=entries))]
                )
                assert edna.page.path in result.changed and "topics/edna-parker" in result.feeds
                assert (await store.events_of([edna.page.path]))[edna.page.path].topics == ()
                await consistent(store)
        finally:
            await store.close()
    assert etags["page, then listing"] == etags["listing, then page"] == etags["together"]
    assert all(len(formats) == len(FORMATS) for formats in etags["together"].values())


async def test_a_store_from_before_listings_gave_names_reads_them_at_its_next_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory source's store written before schema 18 (listings gave headings only): opened
    by this program, its next refresh reads the day listings again and the Edna Parker page gets
    its listing's topics; the page files are not read again."""
    root = tmp_path / "tree"
    for rel in (EDNA, EDNA_DAY):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(EN / rel, root / rel)
    config = SourceConfig(name="d", kind="directory", location=str(root))
    path = tmp_path / "v16.db"

    async def refresh(store: Store) -> list[str]:
        source = DirectorySource(config)
        try:
            collected = await source.collect(store)
            docs = list(collected.documents)
            await settle(store, source, Collected(documents=docs, deleted=collected.deleted, expected=len(docs)))
            return sorted(d.relpath for d in docs)
        finally:
            await source.aclose()

    with monkeypatch.context() as old:
        old.setattr(batch, "listing_of", lambda conn, key, path: None)
        before = await Store.open(path)
        try:
            assert await refresh(before) == sorted([EDNA, EDNA_DAY])
            assert not await topic_table(before)
        finally:
            await before.close()
    conn = sqlite3.connect(path)
    # What that program left: no listed.contexts, listings hashed without their names (and
    # entries with a column per format, as before schema 21).
    conn.executescript(
        "ALTER TABLE listed DROP COLUMN contexts; ALTER TABLE renditions DROP COLUMN stale; UPDATE listings SET hash = 'before'; "
        "DROP TABLE entries; CREATE TABLE entries (event TEXT PRIMARY KEY, stamp TEXT NOT NULL, atom BLOB NOT NULL, "
        "rss BLOB NOT NULL, json BLOB NOT NULL, html BLOB NOT NULL DEFAULT x''); PRAGMA user_version = 17;"
    )
    conn.close()
    store = await Store.open(path)
    try:
        assert await refresh(store) == [EDNA_DAY]
        event = (await store.events_of([f"/{EDNA[:-3]}"]))[f"/{EDNA[:-3]}"]
        assert [t.slug for t in event.topics] == EDNA_TOPICS
        assert {f"topics/{slug}" for slug in EDNA_TOPICS} <= (await store.pending()).feeds
        assert await refresh(store) == []
    finally:
        await store.close()


async def test_a_listing_written_before_a_rewording_names_the_events_topics(store: Store) -> None:
    """The real 2017-12-31 `index.md` lists the Canadian party's page as first written
    (`...-national-advancement-party-disbands`) with `_Context: Canadian, National Advancement
    Party_`; the event's current page is a later rendering the listing does not name, whose own
    related list shares only "Canadian". The listing's names count for the event all the same."""
    pages, listings = day_documents(("news/2017/12/31",))
    await store.apply(pages, listings=listings)
    key = "/news/2017/12/31/the-canadian-right-wing-party-national-advancement-party-disbands"
    event = (await store.events_of([key]))[key]
    assert event.page.path == "/news/2017/12/31/the-canadian-right-wing-party-national-advancement-disbands"
    assert {r.contexts for r in event.page.related} == {("Canadian",)}
    assert [t.name for t in event.topics] == ["Canadian", "National Advancement Party"]


def test_a_listing_naming_more_than_a_page_may_is_refused_whole() -> None:
    """A listing's names become topics as a page's do, so `max_contexts` bounds them too: over it,
    the listing is refused naming the file, the entry and the setting, and nothing of it is kept."""
    doc = Document(EDNA_DAY, (EN / EDNA_DAY).read_bytes(), f"/srv/{EDNA_DAY}")
    assert len(parse_documents([doc], "test").listings) == 1
    small = parse_documents([doc], "test", replace(Limits(), max_contexts=3))
    assert small.listings == [] and small.failed == [EDNA_DAY]
    # The first entry over it: Barack Obama, Paul Volcker, President-elect, U.S.
    assert small.problems == [
        f"/srv/{EDNA_DAY}: entries[4]: 4 context names, over the limit max_contexts = 3; listing rejected"
    ]


def test_a_listing_and_a_page_name_their_topics_together() -> None:
    """A page's own names come first (heading, its related events' contexts), then its listing's;
    a name both give is one topic, in the page's spelling."""
    austin = page(EN, AUSTIN_MD).page
    listed = Related("listed", "/news/2018/03/12/index", ("Austin", "Texas", "AUSTIN PACKAGE EXPLOSIONS", "ATF"), True)
    with_listing = replace(austin, listing=listed)
    assert with_listing.topics == ("Austin package explosions", "Austin, Texas", "ATF")
    assert codec.page_from_json(codec.page_to_json(with_listing)) == with_listing
    # A page with no listing keeps the bytes it was stored with.
    assert "listing" not in codec.page_to_json(austin)
