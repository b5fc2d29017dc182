"""Stored entries: one compressed blob per event (schema 21), read back as the bytes rendered,
upgraded from the column-per-format table of schemas 4-20, and made again when damaged."""

from __future__ import annotations

import sqlite3

import pytest

from feeds.config import Settings
from feeds.entries import EntryMemo
from feeds.model import FeedKey
from feeds.publish import publish, publish_all
from feeds.render import formats
from feeds.store import MIGRATIONS, SCHEMA_VERSION, Store, _statements
from feeds.store.entry_blobs import ENTRY_FORMATS, DamagedEntry, pack, unpack
from tests.conftest import EXAMPLE
from tests.helpers import read_pages, sql

TOPIC = FeedKey("topic", "russian-invasion-of-ukraine")


async def load_example(store: Store, settings: Settings) -> None:
    await store.apply(read_pages(EXAMPLE, source="example"))
    await publish_all(store, settings, everything=True)  # the topic made, as if asked for


async def bodies(store: Store, feed: str) -> dict[str, bytes]:
    return {fmt: r.body for fmt, r in (await store.renditions_of(feed)).items()}


async def stored_rows(store: Store) -> dict[str, tuple[str, dict[str, bytes]]]:
    keys = [k for (k,) in await sql(store, "SELECT event FROM entries")]
    return await store.entries(keys)


def test_a_blob_unpacks_to_the_bytes_packed_and_a_damaged_one_says_what_is_wrong() -> None:
    fragments = {"atom": b"<entry>\xc3\xa9</entry>", "rss": b"<item/>", "json": b'{"id":1}', "html": b""}
    blob = pack(fragments)
    assert unpack(blob) == fragments and tuple(unpack(blob)) == ENTRY_FORMATS
    with pytest.raises(DamagedEntry, match="not a zlib stream"):
        unpack(b"garbage")
    import zlib

    with pytest.raises(DamagedEntry, match="parts of 32 bytes stated, 31 held"):
        unpack(zlib.compress(zlib.decompress(blob)[:-1]))


async def test_documents_joined_from_stored_entries_are_the_bytes_rendered_from_events(
    store: Store, settings: Settings
) -> None:
    """Every stored entry is one blob a fraction of its formats' bytes; a document joined from
    them alone (nothing in memory, no previous version) has the bytes of one made from events."""
    await load_example(store, settings)
    fresh = await bodies(store, TOPIC.name)
    rows = await sql(store, "SELECT packed, length(packed) FROM entries")
    assert len(rows) > 10
    stored = await stored_rows(store)
    raw = sum(len(b) for _, fragments in stored.values() for b in fragments.values())
    assert sum(n for _, n in rows) < raw / 2
    await store.delete_renditions(TOPIC.name)
    memo = EntryMemo()
    await publish(store, settings, TOPIC, formats(), memo)
    assert memo.made == 0 and memo.misses > 10  # every entry read from its blob
    assert await bodies(store, TOPIC.name) == fresh


async def test_a_damaged_stored_entry_is_made_again_not_served(store: Store, settings: Settings) -> None:
    await load_example(store, settings)
    fresh = await bodies(store, TOPIC.name)
    member = next(p for p in read_pages(EXAMPLE) if "Russian invasion of Ukraine" in p.page.topics)
    event = member.page.path
    (stamp,) = (await sql(store, "SELECT stamp FROM entries WHERE event = ?", (event,)))[0]
    await sql(store, "UPDATE entries SET packed = x'00ff' WHERE event = ?", (event,))
    assert event not in await store.entries([event])
    await store.delete_renditions(TOPIC.name)
    memo = EntryMemo()
    await publish(store, settings, TOPIC, formats(), memo)
    assert memo.made == 1  # the damaged one, made again from its event and stored over
    assert await bodies(store, TOPIC.name) == fresh
    assert (await store.entries([event]))[event][0] == stamp


async def test_upgrading_a_schema_20_store_packs_every_entry_and_documents_keep_their_bytes(
    store: Store, settings: Settings
) -> None:
    """A store of schema 20 (the entries table of migrations 4 and 10: a column per format) is
    converted in place: each row becomes one blob of the same bytes, and documents published
    from them alone are the bytes published before."""
    await load_example(store, settings)
    before = await stored_rows(store)
    fresh = await bodies(store, TOPIC.name)
    await store.close()

    conn = sqlite3.connect(settings.database, isolation_level=None)
    conn.execute("DROP TABLE entries")
    for number in (4, 10):
        for statement in _statements(MIGRATIONS[number]):
            conn.execute(statement)
    conn.executemany(
        "INSERT INTO entries (event, stamp, atom, rss, json, html) VALUES (?,?,?,?,?,?)",
        [(e, s, f["atom"], f["rss"], f["json"], f["html"]) for e, (s, f) in before.items()],
    )
    conn.execute("PRAGMA user_version=20")
    conn.close()

    upgraded = await Store.open(settings.database)
    try:
        columns = [r[1] for r in await sql(upgraded, "PRAGMA table_info(entries)")]
        assert columns == ["event", "stamp", "packed"]
        assert (await sql(upgraded, "PRAGMA user_version"))[0][0] == SCHEMA_VERSION == 21
        assert await stored_rows(upgraded) == before
        await upgraded.delete_renditions(TOPIC.name)
        memo = EntryMemo()
        await publish(upgraded, settings, TOPIC, formats(), memo)
        assert memo.made == 0 and memo.misses > 10
        assert await bodies(upgraded, TOPIC.name) == fresh
    finally:
        await upgraded.close()
