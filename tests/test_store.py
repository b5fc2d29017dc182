"""The store: idempotent upserts, real changes only, version chains in any order."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import sqlite3
from dataclasses import replace

import pytest

from feeds.ids import event_guid
from feeds.model import UTC, FeedKey
from feeds.store import MIGRATIONS, PAGE_SIZE, SCHEMA_VERSION, Store, _statements, event_updated
from tests.conftest import EXAMPLE, OFFSTREAM
from tests.helpers import read_pages, sql

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
T1 = T0 + dt.timedelta(hours=1)


async def test_schema_is_versioned_and_wal(store: Store) -> None:
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 21
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 16384
    conn.close()


async def test_the_archives_newest_time_is_read_from_an_index(store: Store) -> None:
    """Every refresh and every document published asks for it: never a scan of every event."""
    await store.apply(read_pages(EXAMPLE))
    conn = sqlite3.connect(store.path)
    plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN SELECT max(updated) FROM events"))
    newest = conn.execute("SELECT updated FROM events ORDER BY updated DESC LIMIT 1").fetchone()[0]
    conn.close()
    assert "INDEX events_updated" in plan and "SCAN" not in plan, plan
    assert (await store.newest_time()).isoformat() == dt.datetime.fromisoformat(newest).isoformat()


async def test_statement_journals_of_the_writer_stay_in_memory(store: Store) -> None:
    # An upsert inside a bulk transaction otherwise saves its 16 KB pages to a temporary file:
    # 9.2 GB of writes for 40,000 events (benchmarks/README.md).
    assert (await store._db.execute_fetchall("PRAGMA temp_store"))[0][0] == 2  # MEMORY


async def test_topic_slots_follow_date_and_key_whatever_the_arrival_and_survive_leaving_and_coming_back(
    store: Store,
) -> None:
    pages = read_pages(OFFSTREAM) + read_pages(EXAMPLE)
    random.Random(7).shuffle(pages)
    for start in range(0, len(pages), 9):
        await store.apply(pages[start : start + 9])
    conn = sqlite3.connect(store.path)
    rows = conn.execute(
        "SELECT t.slots, et.slot, row_number() OVER (PARTITION BY et.topic_id ORDER BY et.date, et.event) - 1, "
        "count(*) OVER (PARTITION BY et.topic_id) FROM event_topics et JOIN topics t ON t.id = et.topic_id"
    ).fetchall()
    conn.close()
    # Shuffled arrivals in batches of 9: a topic's slots are still its events in (date, key) order.
    assert rows and all(slots == count and slot == rank for slots, slot, rank, count in rows)
    # An event leaving a topic (reworded without it) and coming back keeps its slot; the
    # topic's later slots do not move.
    slug = "syrian-civil-war"
    before = await store.topic_ranks(slug, [e.key for e in await store.events(FeedKey("topic", slug), 100)])
    member = next(p for p in pages if "Syrian civil war" in p.page.topics and p.page.heading != "Syrian civil war")
    assert member.page.path in before
    left = replace(member.page, related=tuple(r for r in member.page.related if "Syrian civil war" not in r.contexts))
    await store.apply([replace(member, page=left)])
    assert member.page.path not in {e.key for e in await store.events(FeedKey("topic", slug), 100)}
    await store.apply([member])
    assert await store.topic_ranks(slug, before) == before
    assert await store.topic_slots(slug) == len(before)


async def test_upgrading_a_version_1_store_numbers_existing_slots(tmp_path: object) -> None:
    path = f"{tmp_path}/old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _statements(MIGRATIONS[1]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version=1")
    conn.executemany(
        "INSERT INTO topics (id, key, slug, name) VALUES (?,?,?,?)", [(1, "a", "a", "A"), (2, "b", "b", "B")]
    )
    conn.executemany(
        "INSERT INTO events (key, guid, date, current, relpath, source, hash, doc, published, updated, first_seen, seq) "
        "VALUES (?, '', '2024-01-01', ?, '', '', '', '{}', '2024-01-01T00:00:00+00:00', ?, '', ?)",
        [(key, key, f"2024-01-0{seq // 10}T12:00:00+00:00", seq) for key, seq in [("e1", 10), ("e2", 20), ("e3", 30)]],
    )
    # Each topic spelled as named: a store keyed again by schema 7 keeps them apart.
    members = [(1, "e3", "A", 30), (2, "e1", "B", 10), (1, "e1", "A", 10), (1, "e2", "A", 20)]
    conn.executemany("INSERT INTO event_topics VALUES (?,?,?,1,'2024-01-01',?)", members)
    conn.close()
    store = await Store.open(path)
    try:
        # An existing file keeps the page size it was made with.
        assert (await sql(store, "PRAGMA page_size"))[0][0] == 4096
        assert await store.topic_slots("a") == 3 and await store.topic_slots("b") == 1
        assert await store.topic_ranks("a", ["e1", "e2", "e3"]) == {"e1": 0, "e2": 1, "e3": 2}
        # Schema 6: a topic's members in slot order, with their events' revision and `updated`.
        live, gone = await store.topic_slot_members("a", 0, 3)
        assert [(m.key, m.rev, m.updated.day) for m in live] == [("e3", 1, 3), ("e2", 1, 2), ("e1", 1, 1)] and not gone
    finally:
        await store.close()


async def test_reingest_is_idempotent(store: Store) -> None:
    pages = read_pages(EXAMPLE)
    first = await store.apply(pages, now=T0)
    assert len(first.added) == 59 and not first.changed and not first.deleted
    again = await store.apply(pages, now=T1)
    assert not again.added and not again.changed and not again.deleted and not again.feeds
    events = await store.events(FeedKey("latest"), 1000)
    assert len(events) == 59
    # An event was updated when its Changes list says, else at its day: never at an ingest.
    day = {e.key: dt.datetime.combine(e.page.date, dt.time(), UTC) for e in events}
    assert {e.key: e.updated for e in events} == {
        e.key: max((c.timestamp for c in e.page.changes if c.timestamp), default=day[e.key]) for e in events
    }
    assert {e.updated for e in events}.isdisjoint({T0, T1}) and all(e.published == day[e.key] for e in events)


async def test_only_a_real_change_moves_updated_and_touches_its_feeds(store: Store) -> None:
    pages = read_pages(EXAMPLE)
    await store.apply(pages, now=T0)
    target = next(p for p in pages if p.page.heading == "Russian invasion of Ukraine")
    reworded = replace(target, page=replace(target.page, summary=target.page.summary + " (updated)"))
    result = await store.apply([reworded], now=T1)
    assert len(result.changed) == 1 and not result.added
    key = next(iter(result.changed))
    assert key == target.page.path
    assert result.feeds == {"latest", f"dates/{target.page.date}"} | {
        f"topics/{t.slug}" for e in await store.events(FeedKey("latest"), 1000) if e.key == key for t in e.topics
    }
    event = next(e for e in await store.events(FeedKey("latest"), 1000) if e.key == key)
    # The page names no newer time: its reworded text is served under the time its page states.
    published = dt.datetime.combine(target.page.date, dt.time(), UTC)
    assert event.updated == event_updated(reworded.page) != T1 and event.published == published
    assert event.guid == event_guid(target.page.path)


BORNEO = "news/2018/01/1/a-boat-capsizes-in-the-north-of-indonesian-borneo-*.md"
BORNEO_FIRST = "/news/2018/01/01/a-boat-capsizes-in-the-north-of-indonesian-borneo-with-at-least-8-people-dead"
BORNEO_CURRENT = "/news/2018/01/01/a-boat-capsizes-in-the-north-of-indonesian-borneo-leaving-at-least-eight-people-dead"


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
async def test_version_chain_folds_to_first_version_in_any_order(store: Store, order: tuple[int, ...]) -> None:
    versions = read_pages(OFFSTREAM, BORNEO)
    assert len(versions) == 3
    for step, index in enumerate(order):  # one batch per version
        await store.apply([versions[index]], now=T0 + dt.timedelta(minutes=step))
    events = await store.events(FeedKey("date", "2018-01-01"), 100)
    assert len(events) == 1
    assert events[0].key == BORNEO_FIRST
    assert events[0].guid == event_guid(BORNEO_FIRST)
    assert events[0].page.path == BORNEO_CURRENT


async def test_whole_days_fold_the_same_in_any_batching(tmp_path: object) -> None:
    pages = read_pages(OFFSTREAM, "news/201[78]/*/*/*.md")
    results = []
    for seed in range(4):
        shuffled = pages[:]
        random.Random(seed).shuffle(shuffled)
        store = await Store.open(f"{tmp_path}/s{seed}.db")
        try:
            size = [len(shuffled), 1, 5, 13][seed]
            for i in range(0, len(shuffled), size):
                await store.apply(shuffled[i : i + size], now=T0)
            events = await store.events(FeedKey("latest"), 1000)
            results.append(sorted((e.key, e.page.path) for e in events))
        finally:
            await store.close()
    assert all(r == results[0] for r in results)
    keys = [k for k, _ in results[0]]
    assert len(keys) == len(set(keys))
    # Kenya's truck collision: five versions, one event, keyed by the oldest ("took place").
    kenya = [(k, p) for k, p in results[0] if "truck-collision" in k]
    assert len(kenya) == 1
    assert kenya[0][0].endswith("a-truck-collision-took-place-in-west-kenya-caused-at-least-30-death-and-18-injures")
    assert "kills-at-least-36-people" in kenya[0][1]


async def test_a_failed_batch_leaves_the_store_as_it_was(store: Store) -> None:
    pages = read_pages(EXAMPLE)
    await store.apply(pages[:10], now=T0)
    before = await store.count_events()
    broken = replace(pages[20], page=replace(pages[20].page, date=None))  # type: ignore[arg-type]
    with pytest.raises(AttributeError):  # a page without a date fails mid-batch
        await store.apply([*pages[10:20], broken], now=T1)
    assert await store.count_events() == before
    assert len(await store.events(FeedKey("latest"), 100)) == before


async def test_several_workers_opening_a_new_database_at_once(tmp_path: object) -> None:
    import asyncio

    for attempt in range(5):
        stores = await asyncio.gather(*(Store.open(f"{tmp_path}/new{attempt}.db") for _ in range(4)))
        try:
            assert all([await s.count_events() == 0 for s in stores])
        finally:
            for s in stores:
                await s.close()


async def test_reads_go_on_while_a_write_transaction_is_open(store: Store) -> None:
    """A request's cache miss (or a document being published) does not queue behind a write:
    reads run on reader connections, which WAL lets see the last commit meanwhile."""
    import asyncio
    import threading

    await store.apply(read_pages(EXAMPLE)[:5], now=T0)
    inside, release = threading.Event(), threading.Event()

    def slow(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE events SET live = 0")
        inside.set()
        release.wait(10)
        raise RuntimeError("rolled back")  # the store must stay as it was

    writing = asyncio.ensure_future(store._write(slow))
    try:
        assert await asyncio.to_thread(inside.wait, 10)
        assert await asyncio.wait_for(store.count_events(), 5) == 5
    finally:
        release.set()
        with pytest.raises(RuntimeError):
            await writing
    assert await store.count_events() == 5


async def test_many_key_lookups_split_over_readers_find_every_key(store: Store) -> None:
    entries = [
        (f"e{i:03d}", f"s{i}", {"atom": b"a%d" % i, "rss": b"r%d" % i, "json": b"j%d" % i, "html": b"h%d" % i})
        for i in range(230)
    ]
    await store.put_renditions([], entries)
    wanted = [e for e, _, _ in entries] + ["missing"]
    found = await store.entries(wanted)
    assert found == {e: (s, f) for e, s, f in entries}
    # Several reader connections took part, never more than the limit.
    assert 1 < len(store._readers) <= 4


async def test_checkpoint_moves_the_log_into_the_database(store: Store) -> None:
    await store.apply(read_pages(EXAMPLE), now=T0)
    await store.checkpoint()
    conn = sqlite3.connect(store.path)
    busy, logged, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    conn.close()
    assert busy == 0 and logged == done


async def test_upgrading_a_version_5_store_keeps_every_rendition_without_its_plain_copy(tmp_path: object) -> None:
    """Schema 6 keeps gzip and Brotli only: the plain bytes a version 5 store held are what its
    gzip decodes to, served as before."""
    import brotli
    from isal import igzip

    path = f"{tmp_path}/v5.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for version in range(1, 6):
        for statement in _statements(MIGRATIONS[version]):
            conn.execute(statement)
    conn.execute("PRAGMA user_version=5")
    body = b"<feed>" + b"<entry>x</entry>" * 1000 + b"</feed>"
    conn.execute(
        "INSERT INTO renditions VALUES ('latest', 'atom', ?, ?, ?, 'e1', '2024-01-01T00:00:00+00:00', "
        "'application/atom+xml; charset=utf-8', '2024-01-01T00:00:00+00:00', 1)",
        (body, igzip.compress(body), brotli.compress(body)),
    )
    conn.close()
    store = await Store.open(path)
    try:
        rendition = await store.rendition("latest", "atom")
        assert rendition is not None and rendition.body == body and brotli.decompress(rendition.br) == body
        assert (rendition.etag, rendition.last_modified, rendition.spans) == (
            "e1",
            T0.replace(year=2024, month=1, day=1, hour=0),
            b"",
        )
        columns = [r[1] for r in await sql(store, "PRAGMA table_info(renditions)")]
        assert "body" not in columns and columns[-3:] == ["gz", "br", "stale"]
    finally:
        await store.close()


async def test_a_bulk_load_copies_its_log_beside_its_writes_and_keeps_it_bounded(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In bulk mode no commit copies the write-ahead log into the database itself: reader
    connections do it between writes, and once the log grows past its bound a copy between two
    writes lets it start again from its beginning. Afterwards the writer checkpoints as usual."""
    import os

    from feeds.model import Rendition
    from feeds.store import connection as S

    monkeypatch.setattr(S, "BULK_WAL_BYTES", 40 * PAGE_SIZE)
    from isal import igzip

    body = igzip.compress(os.urandom(60_000))  # incompressible: ~4 pages for each of gzip and Brotli
    wal = f"{store.path}-wal"
    biggest = 0
    beside: list[str] = []  # copies made on a reader connection
    read = store._read

    async def counted(sql: str, *args: object) -> list[object]:
        if "wal_checkpoint" in sql:
            beside.append(sql)
        return await read(sql, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "_read", counted)
    # The log holds the new store's schema (50 pages, more than the bound by itself): copied
    # first, so that what is measured is the bulk writes.
    await store.checkpoint()
    async with store.bulk():
        assert (await store._db.execute_fetchall("PRAGMA wal_autocheckpoint"))[0][0] == 0
        for n in range(120):
            name = f"dates/2024-01-{n % 28 + 1:02d}"
            await store.put_renditions([Rendition(name, "atom", b"", body, body, f"e{n}", T0, "x")])
            biggest = max(biggest, os.path.getsize(wal))
    assert biggest < (40 + 2 * 10) * PAGE_SIZE  # the bound and a write or two (each ~8 pages); without it ~15 MB
    assert len(beside) >= 10
    assert (await store._db.execute_fetchall("PRAGMA wal_autocheckpoint"))[0][0] == 1000
    rendition = await store.rendition("dates/2024-01-28", "atom")
    assert rendition is not None and rendition.etag == "e111"


def _revisions_agree(path: str) -> bool:
    conn = sqlite3.connect(path)
    try:
        return not conn.execute(
            "SELECT 1 FROM event_topics et JOIN events e ON e.key = et.event WHERE et.rev != e.rev OR et.updated != e.updated"
        ).fetchall()
    finally:
        conn.close()


async def test_an_events_revision_moves_with_everything_its_entry_shows_and_agrees_everywhere(store: Store) -> None:
    """Entries are found again by their event's revision: it moves when the content changes,
    when the event is deleted and comes back, and when a topic of it is renamed, in `events` and
    in each of the event's topic rows alike (topic pages read their members from those)."""
    pages = read_pages(EXAMPLE)
    await store.apply(pages, now=T0)
    key = pages[0].page.path

    async def rev() -> int:
        rows = await sql(store, "SELECT rev FROM events WHERE key = ?", (key,))
        return int(rows[0][0])

    first = await rev()
    assert _revisions_agree(store.path)
    await store.apply(pages, now=T1)  # nothing changed
    assert await rev() == first
    await store.apply([replace(pages[0], page=replace(pages[0].page, headline="Reworded."))], now=T1)
    assert await rev() == first + 1 and _revisions_agree(store.path)
    await store.apply([], deleted=[key], now=T1)
    assert await rev() == first + 2 and _revisions_agree(store.path)
    await store.apply([pages[0]], now=T1)
    assert await rev() == first + 3 and _revisions_agree(store.path)
    topic = pages[0].page.topics[0]
    respelled = [
        replace(
            pages[0],
            relpath=f"news/2030/01/01/r{n}.md",
            page=replace(
                pages[0].page, path=f"/news/2030/01/01/r{n}", heading=topic.swapcase(), related=(), changes=()
            ),
        )
        for n in range(30)
    ]
    result = await store.apply(respelled, now=T1)
    assert result.renamed and await rev() == first + 4 and _revisions_agree(store.path)


async def test_a_bulk_load_commits_several_writes_at_once_and_what_is_left_at_its_end(store: Store) -> None:
    """`bulk(writes_per_commit=3)`: other connections see the writes three at a time, the last
    ones when the block ends, even when it ends with an error from elsewhere; a write that fails
    rolls back what is not committed yet, and the store goes on."""
    pages = read_pages(EXAMPLE)
    other = sqlite3.connect(store.path)

    def seen() -> int:
        return other.execute("SELECT count(*) FROM pages").fetchone()[0]

    async with store.bulk(writes_per_commit=3):
        for i in range(4):
            await store.apply(pages[i * 2 : i * 2 + 2], now=T0)
            assert seen() == (6 if i >= 2 else 0)
    assert seen() == 8

    with pytest.raises(RuntimeError):
        async with store.bulk(writes_per_commit=3):
            for i in range(4, 8):
                await store.apply(pages[i * 2 : i * 2 + 2], now=T1)
            raise RuntimeError("the source failed")
    assert seen() == 16  # three writes committed on the way, the fourth at the end

    broken = replace(pages[20], page=replace(pages[20].page, date=None))  # type: ignore[arg-type]
    with pytest.raises(AttributeError):  # a page without a date fails mid-batch
        async with store.bulk(writes_per_commit=3):
            await store.apply(pages[16:18], now=T1)
            await store.apply([*pages[18:20], broken], now=T1)
    assert seen() == 16  # both writes since the last commit are gone
    await store.apply(pages[16:20], now=T1)  # and the store goes on (its topic memo too)
    assert seen() == 20
    assert (await store._db.execute_fetchall("PRAGMA wal_autocheckpoint"))[0][0] == 1000
    other.close()


async def test_upgrading_to_schema_8_puts_topic_slots_in_date_and_key_order(tmp_path: object) -> None:
    path = f"{tmp_path}/old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _statements(MIGRATIONS[1]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version=1")
    conn.execute("INSERT INTO topics (id, key, slug, name) VALUES (1, 'a', 'a', 'A')")
    # Arrival order (seq) is c, a, b on one day, and d the day before, last of all.
    arrivals = [("c", "2024-01-02", 1), ("a", "2024-01-02", 2), ("b", "2024-01-02", 3), ("d", "2024-01-01", 4)]
    conn.executemany(
        "INSERT INTO events (key, guid, date, current, relpath, source, hash, doc, published, updated, first_seen, seq) "
        "VALUES (?, '', ?, ?, '', '', '', '{}', '2024-01-01T00:00:00+00:00', '2024-01-03T00:00:00+00:00', '', ?)",
        [(key, day, key, seq) for key, day, seq in arrivals],
    )
    conn.executemany("INSERT INTO event_topics VALUES (1,?,'A',1,?,?)", [(key, day, seq) for key, day, seq in arrivals])
    conn.close()
    store = await Store.open(path)
    try:
        assert await store.topic_ranks("a", ["a", "b", "c", "d"]) == {"d": 0, "a": 1, "b": 2, "c": 3}
        live, _ = await store.topic_slot_members("a", 0, 4)
        assert [m.key for m in live] == ["c", "b", "a", "d"]  # newest first
        # Its pages moved: every page of the topic is left to render at the next publish.
        pending = await store.pending()
        assert pending.renamed == {"a"} and "topics/a" in pending.feeds
    finally:
        await store.close()
