"""Topics: one name is one topic in every script; context lists resolved by what the store knows
and by Wikipedia's "place, region" titles, in any arrival order; stores keyed by transliteration
split, and stores resolved by an older rule resolved again, when opened.

Real pages (tests/data/topics/NOTICE.md): English ones from the Offstream archive, Chinese ones
from its Chinese counterpart.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from unidecode import unidecode

from feeds import model
from feeds.app import create_app
from feeds.config import Settings
from feeds.ids import page_path, topic_key, topic_slug
from feeds.model import FORMATS, DayListing, Page, resolve_contexts
from feeds.pages import parse_document
from feeds.pages.markdown import context_parts
from feeds.publish import publish_all, publish_changes
from feeds.store import Incoming, Store, rekey, topic_writes
from feeds.store import connection as store_module
from tests.conftest import DATA, EXAMPLE, OFFSTREAM, LiveServer
from tests.helpers import current, read_pages, sql

TOPICS = DATA / "topics"
EN, ZH, JSON = TOPICS / "en", TOPICS / "zh", TOPICS / "json"
AUSTIN_MD = (
    "news/2018/03/12/police-in-austin-texas-announce-that-three-package-bombs-in-recent-days-that-have-killed-two-"
    "people-and-injured-one-more-appear-to-be-conne.md"
)
AUSTIN_JSON = (
    "news/2018/03/19/in-austin-texas-a-fourth-bomb-detonates-injuring-two-men-the-austin-police-department-believes-"
    "it-is-connected-to-the-other-parcel-bombi.json"
)
ICELAND = (
    "news/2016/06/25/voters-in-iceland-head-to-the-polls-to-elect-a-new-president-with-a-historic-low-voter-turnout-"
    "expected-independent-candidate-guadegni-th-ja.md"
)
EDNA_DAY = "news/2008/11/26/index.md"
MUMBAI = "news/2008/11/26/at-least-80-people-are-dead-and-over-250-wounded-in-coordinated-terrorist-strikes-across-mumbai-india.md"
SUTHERLAND = (
    "news/2017/11/5/a-gunman-opens-fire-at-a-baptist-church-in-the-american-town-of-sutherland-springs-texas-in-the-san-"
    "antonio-area-killing-at-least-26-peopl.md"
)
ANTIGUA = (
    "news/2018/03/21/voters-in-antigua-and-barbuda-go-to-the-polls-with-barbudan-residents-having-to-travel-to-antigua-"
    "in-order-to-participate.md"
)


def transliterated_key(name: str) -> str:
    """Schema 6's topic key: the name transliterated to ASCII (unidecode), words of [0-9a-z]."""
    return " ".join(re.findall(r"[0-9a-z]+", unidecode(name).casefold()))


def event_key(item: Incoming) -> str:
    """The event a page is a version of: the path of the first version its Changes list names."""
    first = [path for c in item.page.changes if c.kind == "first" and (path := page_path(c.url))]
    return first[0] if first else item.page.path


def page(root: Path, rel: str, source: str = "test") -> Incoming:
    doc = parse_document(rel, (root / rel).read_bytes())
    assert isinstance(doc, Page)
    return Incoming(doc, rel, source)


def zh_pages() -> list[Incoming]:
    return [page(ZH, file.relative_to(ZH).as_posix(), "zh") for file in sorted(ZH.rglob("*.md"))]


async def topic_table(store: Store) -> dict[str, tuple[str, frozenset[str]]]:
    """slug -> (name, live member keys) of every topic with events."""
    rows = await sql(
        store,
        "SELECT t.slug, t.name, et.event FROM topics t JOIN event_topics et ON et.topic_id = t.id AND et.live = 1",
    )
    out: dict[str, tuple[str, set[str]]] = {}
    for slug, name, event in rows:
        out.setdefault(slug, (name, set()))[1].add(event)
    return {slug: (name, frozenset(events)) for slug, (name, events) in out.items()}


async def consistent(store: Store) -> None:
    """Spelling counts, topic sizes, slots and events per month agree with the membership rows."""
    spellings = await sql(
        store, "SELECT topic_id, spelling, n FROM topic_spellings WHERE n != 0 ORDER BY topic_id, spelling"
    )
    live = await sql(
        store,
        "SELECT topic_id, spelling, count(*) FROM event_topics WHERE live = 1 "
        "GROUP BY topic_id, spelling ORDER BY topic_id, spelling",
    )
    assert list(spellings) == list(live)
    sizes = await sql(
        store,
        "SELECT t.id FROM topics t WHERE t.slots != (SELECT count(*) FROM event_topics et WHERE et.topic_id = t.id) "
        "OR t.events != (SELECT count(*) FROM event_topics et WHERE et.topic_id = t.id AND et.live = 1)",
    )
    assert not list(sizes)
    slots = await sql(
        store, "SELECT topic_id FROM event_topics GROUP BY topic_id HAVING max(slot) + 1 != count(*) OR min(slot) != 0"
    )
    assert not list(slots)
    months = await sql(store, "SELECT topic_id, month, n FROM topic_months WHERE n != 0 ORDER BY topic_id, month")
    counted = await sql(
        store,
        "SELECT topic_id, substr(date, 1, 7) AS m, count(*) FROM event_topics WHERE live = 1 "
        "GROUP BY topic_id, m ORDER BY topic_id, m",
    )
    assert list(months) == list(counted)  # the topic pages' charts


# ----- folding -------------------------------------------------------------------------------------


def test_names_of_other_scripts_are_never_transliterated_into_one_topic() -> None:
    """The archive's own names: 期货 (futures) and 起火 (fire), 世衛 (WHO) and 示威 (protest) were one
    topic each under a toneless-pinyin key; now each is its own. Simplified and traditional
    spellings of one name stay one topic (OpenCC)."""
    names = {n for p in zh_pages() for n in p.page.topics}
    assert {"期货", "起火", "世衛", "示威", "苏丹", "蘇丹"} <= names
    assert transliterated_key("期货") == transliterated_key("起火") and topic_key("期货") != topic_key("起火")
    assert transliterated_key("世衛") == transliterated_key("示威") and topic_key("世衛") != topic_key("示威")
    assert topic_key("苏丹") == topic_key("蘇丹") == "苏丹"
    # Width, case, punctuation and spacing don't make another topic; another letter does.
    assert topic_key("ＷＨＯ") == topic_key("who") != topic_key("WTO")
    assert topic_key("Guinea-Bissau") == topic_key("Guinea Bissau") == topic_key("guinea bissau.")
    assert topic_key("唐納·川普") == topic_key("唐纳 川普") != topic_key("唐纳川普")
    assert topic_key("がっこう") != topic_key("かっこう")  # a voiced sound mark is part of its letter
    assert topic_key("Москва") != topic_key("Moskva")
    # Slugs of other scripts are the name itself (NFKC, lower case, punctuation dropped, `-`),
    # Chinese in its simplified form: every spelling of a topic gives one slug.
    assert [topic_slug(n) for n in ("起火", "世衛", "唐納·川普", "ＡＣ米蘭", "Москва")] == [
        "起火",
        "世卫",
        "唐纳-川普",
        "ac米兰",
        "москва",
    ]
    assert topic_slug("蘇丹") == topic_slug("苏丹")


def test_latin_names_keep_their_keys_and_slugs() -> None:
    """Every topic name of the real pages in the repository, written in Latin letters: the key
    and slug schema 6 gave it (diacritics folded to ASCII) are what it gets now."""
    pages = read_pages(OFFSTREAM) + read_pages(EXAMPLE) + read_pages(EN)
    names = {n for p in pages for n in p.page.topics} | {"Recep Tayyip Erdoğan", "Łódź", "Straße", "Côte d'Ivoire"}
    assert len(names) > 140
    for name in names:
        assert topic_key(name) == transliterated_key(name), name
        assert topic_slug(name) == transliterated_key(name).replace(" ", "-")[:80].strip("-"), name
    assert topic_slug("Recep Tayyip Erdoğan") == "recep-tayyip-erdogan"


# ----- context lists -------------------------------------------------------------------------------


def test_a_bare_year_completes_the_name_before_it() -> None:
    iceland = page(EN, ICELAND).page
    assert iceland.related[0].contexts == ("Icelandic presidential election", "2016", "president")
    assert iceland.topics == ("Icelandic presidential election, 2016", "president", "Iceland")
    antigua = page(EN, ANTIGUA).page
    assert antigua.heading == "Antiguan general election, 2018"
    assert antigua.topics == ("Antiguan general election, 2018", "Antigua and Barbuda", "Antigua", "Barbuda")

    def nothing(run: tuple[str, ...]) -> bool:
        return False

    # A year with nothing before it stays a name; a number that is no year is a part like any other.
    assert resolve_contexts(("2016", "Brexit"), nothing) == ("2016", "Brexit")
    assert resolve_contexts(("Premier League", "2017–18", "Arsenal"), nothing) == ("Premier League, 2017–18", "Arsenal")
    assert resolve_contexts(("Area 51", "Nevada"), nothing) == ("Area 51", "Nevada")


def test_a_place_and_its_first_level_region_are_one_name() -> None:
    """Wikipedia titles places of the United States, Canada and Australia "place, region": the real
    2008 listing's "Shelbyville, Indiana" and the 2018 page's "Austin, Texas" are one name each,
    from the page alone. A country is never the second half of a title ("Mumbai, India",
    "Borneo, Indonesia", "Northland, New Zealand"), nor is a territory titled alone ("Hurricane
    Maria, Puerto Rico"), a region before a region, a lower-case word, a city those conventions
    title alone, or a region that is also a country ("Tbilisi, Georgia")."""
    listing = parse_document(EDNA_DAY, (EN / EDNA_DAY).read_bytes())
    assert isinstance(listing, DayListing)
    edna = next(e for e in listing.entries if e.path.startswith("/news/2008/11/26/edna-parker"))
    assert edna.contexts == ("Edna Parker", "Shelbyville, Indiana", "the oldest living person in the world")
    assert page(EN, AUSTIN_MD).page.topics == ("Austin package explosions", "Austin, Texas")
    # Every real list of the repository's pages: the names this rule joins are only those.
    pages = read_pages(OFFSTREAM) + read_pages(EN) + [page(EN, MUMBAI)]
    parts = [r.contexts for p in pages for r in p.page.related if r.ambiguous]
    parts += [context_parts(line) for line in _listing_lines(OFFSTREAM) + _listing_lines(EN)]
    joined = {n for run in parts for n in resolve_contexts(run, lambda run: False) if "," in n and not _year_tail(n)}
    assert joined == {"Austin, Texas", "Shelbyville, Indiana"}
    assert {("Borneo", "Indonesia"), ("Northland", "New Zealand"), ("Hurricane Maria", "Puerto Rico")} <= {
        tuple(run[i : i + 2]) for run in parts for i in range(len(run) - 1)
    }
    assert page(EN, MUMBAI).page.related[0].contexts == ("India", "Mumbai")
    # Five events the 2017 Sutherland Springs page relates, each "in San Antonio, Texas": the
    # article they share is "San Antonio", a city titled alone.
    assert {r.contexts for r in page(EN, SUTHERLAND).page.related} == {("San Antonio",)}

    def nothing(run: tuple[str, ...]) -> bool:
        return False

    for whole in ("Terrigal, New South Wales", "Halifax, Nova Scotia", "Stratford-upon-Avon, Ontario"):
        assert resolve_contexts(tuple(whole.split(", ")), nothing) == (whole,)
    for two in (
        ("Bali", "Indonesia"),
        ("Mumbai", "India"),
        ("Houston", "Texas"),
        ("San Antonio", "Texas"),
        ("Sydney", "New South Wales"),
        ("California", "Texas"),
        ("Tbilisi", "Georgia"),
        ("wildfire", "California"),
        ("Area 51", "Nevada"),
        ("Law of Alaska", "Alaska"),
        ("Texas", "2017"),
    ):
        assert resolve_contexts(two, nothing) == (two if two[1] != "2017" else ("Texas, 2017",)), two


def _listing_lines(root: Path) -> list[str]:
    """The `_Context:` lists of every day listing under `root`, as written."""
    found = re.compile(r"^_Context:\s*(.*?)_?\s*$")
    return [
        m[1]
        for file in sorted(root.rglob("*.md"))
        if file.stem.casefold() in ("index", "readme")
        for line in file.read_text(encoding="utf-8").splitlines()
        if (m := found.match(line.strip()))
    ]


def _year_tail(name: str) -> bool:
    return bool(re.search(r", [12][0-9]{3}(?:[–-][0-9]{2,4})?$", name))


async def test_a_store_split_by_the_rule_before_heals_when_opened(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store whose events were resolved before the place rule ("Austin" and "Texas", as this
    program wrote them until now) is resolved again when opened: the event joins "Austin, Texas",
    gets a new revision, and its feeds, before and after, are left to publish."""
    path = tmp_path / "before.db"
    austin = page(EN, AUSTIN_MD)
    with monkeypatch.context() as old:
        old.setattr(model, "place_pair", lambda place, region: False)
        before = await Store.open(path)
        try:
            await before.apply([austin, page(EN, ICELAND)])
            assert {"austin", "texas"} <= set(await topic_table(before))
        finally:
            await before.close()
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM meta WHERE key = 'context_rule'")  # that program recorded no rule
    conn.commit()
    (rev,) = conn.execute("SELECT rev FROM events WHERE key = ?", (event_key(austin),)).fetchone()
    conn.close()
    store = await Store.open(path)
    try:
        topics = await topic_table(store)
        assert topics["austin-texas"] == ("Austin, Texas", frozenset({event_key(austin)}))
        assert "austin" not in topics and "texas" not in topics
        assert (await sql(store, "SELECT rev FROM events WHERE key = ?", (event_key(austin),)))[0][0] == rev + 1
        await consistent(store)
        pending = await store.pending()
        assert event_key(austin) in pending.changed
        assert {"topics/austin", "topics/texas", "topics/austin-texas", "latest"} <= pending.feeds
        await publish_changes(store, settings, set(), set())
        assert all([await current(store, settings, "topics/austin-texas", fmt) for fmt in FORMATS])
    finally:
        await store.close()
    again = await Store.open(path)
    try:
        assert not (await again.pending()).feeds  # resolved by this rule: nothing to do
    finally:
        await again.close()


async def test_a_name_learnt_later_joins_its_parts_in_events_stored_before(store: Store) -> None:
    """A list no rule of its own joins (`Boycott, Divestment and Sanctions, Israel`, as the real
    2018-01-01 listing writes it) is three topics while nothing says which parts are one name; a
    JSON page naming "Boycott, Divestment and Sanctions" whole makes it one, for the events stored
    before it too, in the same batch (their feeds re-render with it)."""
    austin, json_page = page(EN, AUSTIN_MD), page(JSON, AUSTIN_JSON)
    bds = ("Boycott", "Divestment and Sanctions", "Israel")
    markdown = replace(austin, page=replace(austin.page, related=(replace(austin.page.related[0], contexts=bds),)))
    whole = replace(
        json_page,
        page=replace(
            json_page.page,
            related=tuple(replace(r, contexts=("Boycott, Divestment and Sanctions",)) for r in json_page.page.related),
        ),
    )
    md = event_key(markdown)
    first = await store.apply([markdown])
    assert {"topics/boycott", "topics/divestment-and-sanctions", "topics/israel"} <= first.feeds
    alone = await topic_table(store)
    assert alone["boycott"][1] == alone["divestment-and-sanctions"][1] == {md}
    second = await store.apply([whole])
    assert md in second.changed and whole.page.path in second.added
    assert {"topics/boycott", "topics/divestment-and-sanctions", "topics/boycott-divestment-and-sanctions"} <= (
        second.feeds
    )
    topics = await topic_table(store)
    assert topics["boycott-divestment-and-sanctions"] == (
        "Boycott, Divestment and Sanctions",
        frozenset({md, whole.page.path}),
    )
    assert not topics.get("boycott") and not topics.get("divestment-and-sanctions") and topics["israel"][1] == {md}
    await consistent(store)
    # A `#####` heading with a comma is a name given whole too.
    await store.apply([page(EN, ANTIGUA)])
    known = {k for (k,) in await sql(store, "SELECT key FROM known_names")}
    assert known == {"boycott,divestment and sanctions", "antiguan general election,2018"}
    # Reworded so that it no longer names it whole: the name is not known any more.
    plain = replace(
        whole.page, related=tuple(replace(r, contexts=("Austin serial bombings",)) for r in whole.page.related)
    )
    third = await store.apply([replace(whole, page=plain)])
    assert md in third.changed
    topics = await topic_table(store)
    assert topics["boycott"][1] == topics["divestment-and-sanctions"][1] == {md}
    assert not topics.get("boycott-divestment-and-sanctions")
    await consistent(store)


@pytest.mark.parametrize("batches", [[["md"], ["json"]], [["json"], ["md"]], [["md", "json"]], [["json", "md"]]])
async def test_topics_do_not_depend_on_arrival_order(tmp_path: Path, batches: list[list[str]]) -> None:
    pages = {"md": page(EN, AUSTIN_MD), "json": page(JSON, AUSTIN_JSON)}
    others = read_pages(EN)  # Antigua, Iceland and the Austin page in markdown: no name learnt
    store = await Store.open(tmp_path / "order.db")
    try:
        await store.apply([p for p in others if p.page.path != pages["md"].page.path])
        keys = {name: event_key(p) for name, p in pages.items()}
        for batch in batches:
            await store.apply([pages[name] for name in batch])
        topics = await topic_table(store)
        events = {e.key: [t.slug for t in e.topics] for e in (await store.events_of(sorted(keys.values()))).values()}
        await consistent(store)
    finally:
        await store.close()
    assert topics["austin-texas"][1] == set(keys.values())
    assert "austin" not in topics and "texas" not in topics
    assert topics["icelandic-presidential-election-2016"][0] == "Icelandic presidential election, 2016"
    assert "2016" not in topics and "2018" not in topics
    # Topics in the page's order: heading, then contexts.
    assert events[keys["md"]] == ["austin-package-explosions", "austin-texas"]
    assert events[keys["json"]] == ["austin-serial-bombings", "austin-texas"]


# ----- other scripts over HTTP ----------------------------------------------------------------------


async def test_topic_urls_of_other_scripts_answer_as_linked(store: Store, settings: Settings) -> None:
    await store.apply(zh_pages() + read_pages(EN))
    await publish_all(store, settings)
    topics = await topic_table(store)
    assert topics["苏丹"][1] == {p.page.path for p in zh_pages() if p.page.heading in ("苏丹", "蘇丹")}
    assert {"起火", "期货", "世卫", "示威"} <= set(topics)
    with LiveServer(create_app(settings, scheduler=False)) as server:
        async with httpx.AsyncClient() as client:
            index = (await client.get(f"{server.url}/topics")).json()
            by_slug = {t["slug"]: t for t in index}
            assert by_slug["起火"]["feeds"]["atom"] == f"{settings.base_url}/feeds/topics/%E8%B5%B7%E7%81%AB.atom"
            for slug in ("起火", "世卫", "苏丹", "austin-texas" if "austin-texas" in topics else "austin"):
                for url in by_slug[slug]["feeds"].values():
                    assert url.isascii()
                    response = await client.get(url.replace(settings.base_url, server.url))
                    assert response.status_code == 200, url
                    assert by_slug[slug]["name"] in response.text
            # The same feed asked for as an IRI (the client encodes it) and with lower-case hex.
            for path in ("/feeds/topics/世卫.rss", "/feeds/topics/" + quote("世卫").lower() + ".rss"):
                assert (await client.get(server.url + path)).status_code == 200
            # Every topic link an entry carries answers too.
            rss = (await client.get(f"{server.url}/feeds/topics/%E8%B5%B7%E7%81%AB.rss")).text
            domains = re.findall(r'<category domain="([^"]+)"', rss)
            assert domains and all(d.isascii() for d in domains)
            for domain in domains:
                assert (await client.get(domain.replace(settings.base_url, server.url))).status_code == 200
            assert (await client.get(f"{server.url}/feeds/topics/%E6%B2%A1%E6%9C%89.atom")).status_code == 404


# ----- stores keyed by transliteration -------------------------------------------------------------


async def test_schema_7_splits_topics_a_transliterating_key_had_merged(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store written with the transliterating key (the real ingest, with the old key and slug,
    as the code before schema 7 wrote it) has 期货 and 起火 in one topic `qi-huo`, 世衛 and 示威 in
    `shi-wei`. Opened by this program, each is split:
    the spelling with the most live uses keeps the topic (id, slug), ties going to the smaller
    key; the other gets a topic of its own at its next slot; moved events get a new revision and
    their feeds publish next."""
    path = tmp_path / "v6.db"
    with monkeypatch.context() as old:
        old.setattr(topic_writes, "topic_key", transliterated_key)
        old.setattr(topic_writes, "topic_slug", lambda n: transliterated_key(n).replace(" ", "-")[:80] or "topic-x")
        old.setattr(rekey, "FOLDING", "schema 6")
        old.setattr(store_module, "FOLDING", "schema 6")
        v6 = await Store.open(path)
        try:
            await v6.apply(zh_pages() + read_pages(EN))
            before = await topic_table(v6)
        finally:
            await v6.close()
    conn = sqlite3.connect(path)
    # What that code left: no tables of schema 7 (it reserved the number), no folding recorded.
    conn.executescript(
        "DROP TABLE known_names; DROP TABLE event_contexts; DROP TABLE context_pairs; DROP TABLE pending; "
        "DROP TABLE entries; CREATE TABLE entries (event TEXT PRIMARY KEY, stamp TEXT NOT NULL, atom BLOB NOT NULL, "
        "rss BLOB NOT NULL, json BLOB NOT NULL); ALTER TABLE listed DROP COLUMN contexts; "
        "DROP TABLE websub_outbox; ALTER TABLE websub DROP COLUMN sent; ALTER TABLE renditions DROP COLUMN stale; "
        "DELETE FROM meta WHERE key IN ('topic_folding', 'known_names'); PRAGMA user_version = 8;"
    )
    ids = dict(conn.execute("SELECT slug, id FROM topics").fetchall())
    revs = dict(conn.execute("SELECT key, rev FROM events").fetchall())
    conn.close()
    assert before["qi-huo"][1] == {p.page.path for p in zh_pages() if {"期货", "起火"} & set(p.page.topics)}
    assert len(before["qi-huo"][1]) == 2 and len(before["shi-wei"][1]) == 2
    futures = next(p.page.path for p in zh_pages() if "期货" in p.page.topics)
    fire = next(p.page.path for p in zh_pages() if p.page.heading == "起火")

    store = await Store.open(path)
    try:
        after = await topic_table(store)
        # One live use each: the smaller key (期货 < 起火, 世卫 < 示威) keeps row, id and slug.
        assert after["qi-huo"] == ("期货", frozenset({futures}))
        assert after["起火"] == ("起火", frozenset({fire}))
        assert after["shi-wei"][0] == "世衛" and after["示威"][0] == "示威"
        new_ids = dict(await sql(store, "SELECT slug, id FROM topics"))
        assert new_ids["qi-huo"] == ids["qi-huo"] and new_ids["shi-wei"] == ids["shi-wei"]
        # Latin topics and the events that did not move are as they were.
        assert {s: v for s, v in after.items() if s.isascii() and s not in ("qi-huo", "shi-wei")} == {
            s: v for s, v in before.items() if s not in ("qi-huo", "shi-wei")
        }
        moved = {fire, next(p.page.path for p in zh_pages() if "示威" in p.page.topics)}
        new_revs = dict(await sql(store, "SELECT key, rev FROM events"))
        assert {k for k in revs if new_revs[k] != revs[k]} == moved
        # The moved event left its old topic's slot (not live) and took the new topic's first.
        rows = await sql(
            store,
            "SELECT t.slug, et.slot, et.live FROM event_topics et JOIN topics t ON t.id = et.topic_id "
            "WHERE et.event = ?",
            (fire,),
        )
        assert sorted(rows) == [("qi-huo", 1, 0), ("起火", 0, 1)]
        await consistent(store)
        pending = await store.pending()
        assert (
            moved <= pending.changed
            and {"topics/起火", "topics/qi-huo", "topics/示威", "topics/shi-wei"} <= pending.feeds
        )
        await publish_changes(store, settings, set(), set())
        assert not (await store.pending()).feeds
        assert all([await current(store, settings, "topics/起火", fmt) for fmt in FORMATS])
    finally:
        await store.close()
    # Opened again: nothing to do.
    again = await Store.open(path)
    try:
        assert await topic_table(again) == after and not (await again.pending()).feeds
    finally:
        await again.close()
