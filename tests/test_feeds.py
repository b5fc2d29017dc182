"""Rendered feeds read back by real parsers: feedparser, lxml, json."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import feedparser
import pytest
from lxml import etree

from feeds.config import Settings
from feeds.ids import event_guid
from feeds.model import FeedKey
from feeds.publish import publish, publish_all, publish_changes
from feeds.refresh import ingest
from feeds.render import formats
from feeds.sources import Collected, Document
from feeds.store import Store
from tests.conftest import EVENT_PAGE, EXAMPLE, SAMPLE_RELPATH
from tests.helpers import entries, etags, read_pages, sql


async def load_example(store: Store, settings: Settings) -> None:
    await store.apply(read_pages(EXAMPLE, source="example"))
    await publish_all(store, settings)


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
async def test_topic_feed_parses_with_expected_entries(store: Store, settings: Settings, fmt: str) -> None:
    await load_example(store, settings)
    rendition = await store.rendition("topics/russian-invasion-of-ukraine", fmt)
    assert rendition is not None
    got = entries(fmt, rendition.body)
    expected = await store.events(FeedKey("topic", "russian-invasion-of-ukraine"), 100)
    assert len(expected) >= 10
    assert [e["id"] for e in got] == [e.guid for e in expected]
    assert [e["title"] for e in got] == [e.page.headline for e in expected]
    assert all("Russian invasion of Ukraine" in e["tags"] for e in got)  # type: ignore[operator]
    assert [e["published"] for e in got] == [e.published.date().isoformat() for e in expected]


async def test_sample_event_in_every_format(store: Store, settings: Settings) -> None:
    doc = Document(SAMPLE_RELPATH, EVENT_PAGE.read_bytes(), "event-page.md")
    await ingest(store, "example", Collected(documents=[doc]))
    await publish_all(store, settings)
    guid = event_guid(SAMPLE_RELPATH.removesuffix(".md").replace("news/", "/news/", 1))
    for name in ("latest", "dates/2017-09-28", "topics/syrian-civil-war", "topics/abu-bakr-al-baghdadi", "topics/isil"):
        for fmt in ("rss", "atom", "json"):
            rendition = await store.rendition(name, fmt)
            assert rendition is not None, (name, fmt)
            got = entries(fmt, rendition.body)
            assert [e["id"] for e in got] == [guid]
            entry = got[0]
            assert str(entry["title"]).startswith("The Islamic State of Iraq and the Levant releases footage")
            assert "http://www.latimes.com/world/la-fg-islamic-state-abu-bakr-20170928-story.html" in str(
                entry["content"]
            )
            assert {"Syrian Civil War", "ISIL", "Abu Bakr al-Baghdadi"} <= entry["tags"]  # type: ignore[operator]
    atom = etree.fromstring((await store.rendition("latest", "atom")).body)  # type: ignore[union-attr]
    ns = {"a": "http://www.w3.org/2005/Atom"}
    enclosure = atom.find("a:entry/a:link[@rel='enclosure']", ns)
    assert enclosure is not None and enclosure.get("href", "").startswith("http://www.trbimg.com/")
    feed = json.loads((await store.rendition("latest", "json")).body)  # type: ignore[union-attr]
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["items"][0]["image"].startswith("http://www.trbimg.com/")
    assert feed["items"][0]["date_published"] == "2017-09-28T00:00:00+00:00"


async def test_feed_dates_come_from_events_not_the_clock(store: Store, settings: Settings) -> None:
    await load_example(store, settings)
    before = await etags(store)
    # Rendering again (a restart, a no-op refresh) changes no byte and so no ETag.
    await publish_all(store, settings)
    assert await etags(store) == before
    newest = max(e.updated for e in await store.events(FeedKey("latest"), 1000))
    rendition = await store.rendition("latest", "atom")
    assert rendition is not None and rendition.last_modified == newest


def assert_harmless(fragment: str) -> None:
    """No element, attribute or URL that could run script, as a browser would parse it."""
    import lxml.html

    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    for element in root.iter():
        assert element.tag not in ("script", "style", "iframe", "object", "embed"), element.tag
        for name, value in element.attrib.items():
            assert not name.startswith("on"), (element.tag, name)
            assert not value.strip().lower().startswith(("javascript:", "data:", "vbscript:")), (name, value)


async def test_untrusted_text_is_sanitised(store: Store, settings: Settings) -> None:
    hostile = (
        b"### [2020-01-1](/news/2020/01/1/index.md)\n\n##### <b>Topic</b>\n"
        b"# Headline <script>alert(1)</script> \n\n"
        b"Summary with [a link](javascript:alert(1)) and <img src=x onerror=alert(1)> raw html.\n\n"
        b'### Sources:\n\n1. [Evil](javascript:alert(2))\n1. [<script>alert(4)</script> News](https://news.test/a"onclick="x)\n'
        b'1. [Cover Image](http://img.test/a.jpg"onload="x)\n\n'
        b"### Related:\n\n1. [<img src=x onerror=alert(5)> a headline](javascript:alert(3)) _Context: <b onclick=x>A</b>_\n"
        b'2. [Another <iframe src=//evil.test>](https://news.test/b"onmouseover="x) _Context: B_\n'
    )
    await ingest(store, "example", Collected(documents=[Document("news/2020/01/1/x.md", hostile, "x.md")]))
    await publish_all(store, settings)
    for fmt in ("rss", "atom", "json"):
        rendition = await store.rendition("dates/2020-01-01", fmt)
        assert rendition is not None
        content = str(entries(fmt, rendition.body)[0]["content"])
        assert "raw html" in content and "a headline" in content and "News" in content
        assert_harmless(content)


async def test_limits_items_per_feed(store: Store, settings: Settings) -> None:
    await load_example(store, replace(settings, items_per_feed=5))
    await publish(store, replace(settings, items_per_feed=5), FeedKey("latest"), formats())
    rendition = await store.rendition("latest", "rss")
    assert rendition is not None
    assert len(feedparser.parse(rendition.body).entries) == 5
    parsed = feedparser.parse(rendition.body)
    dates = [dt.datetime(*e.published_parsed[:6]) for e in parsed.entries]
    assert dates == sorted(dates, reverse=True)


async def test_rss_ttl_is_the_refresh_interval(store: Store, settings: Settings) -> None:
    configured = replace(settings, refresh_interval=900)
    await load_example(store, configured)
    for name in ("latest", "dates/2023-02-06", "topics/russian-invasion-of-ukraine"):
        rendition = await store.rendition(name, "rss")
        assert rendition is not None
        assert etree.fromstring(rendition.body).findtext("channel/ttl") == "15"


async def test_entries_are_kept_in_the_store_and_made_again_only_when_they_change(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that never made an entry (a restart, another worker) joins documents from the
    stored entries; a new version of the event, or other renderer code, makes them again."""
    from feeds import entries as E
    from feeds import publish as P

    await load_example(store, settings)
    key = FeedKey("topic", "russian-invasion-of-ukraine")
    before = await store.rendition(key.name, "atom")
    assert before is not None
    await store.delete_renditions(key.name)
    fresh = E.EntryMemo()
    await publish(store, settings, key, formats(), fresh)
    again = await store.rendition(key.name, "atom")
    assert again is not None and again.body == before.body
    assert fresh.made == 0 and fresh.misses > 10  # every entry read back, none made

    pages = read_pages(EXAMPLE, source="example")
    member = next(p for p in pages if "Russian invasion of Ukraine" in p.page.topics)
    result = await store.apply([replace(member, page=replace(member.page, headline="Reworded headline."))])
    await P.publish_changes(store, settings, result.feeds, result.events)
    assert fresh.made == 0  # the process memo made it, not this one
    rows = await store.entries([member.page.path])
    assert b"Reworded headline." in rows[member.page.path][1]["atom"]

    monkeypatch.setattr(E, "RENDER_VERSION", "other-code")
    other = E.EntryMemo()
    await store.delete_renditions(key.name)
    await publish(store, settings, key, formats(), other)
    assert other.made == other.misses > 10  # nothing stored matches code that changed


async def test_an_entry_shows_its_topics_new_name_in_every_document_rendered_after(
    store: Store, settings: Settings
) -> None:
    """A topic's name is its most used spelling: when that changes, the entries of its events
    (kept in memory and in the store) are made again wherever they are rendered next, not only
    in the documents of the events that changed the count."""
    await load_example(store, settings)
    pages = read_pages(EXAMPLE, source="example")
    member = next(p for p in pages if p.page.heading == "Russian invasion of Ukraine")
    day = FeedKey("date", member.page.date.isoformat())

    def labels(body: bytes) -> set[str]:
        root = etree.fromstring(body)
        return {c.get("label") for c in root.iter("{http://www.w3.org/2005/Atom}category")}

    before = await store.rendition(day.name, "atom")
    assert before is not None and "Russian invasion of Ukraine" in labels(before.body)
    # Other days' events spell it in lower case, more often than the example does.
    uses = sum("Russian invasion of Ukraine" in p.page.topics for p in pages)
    others = [
        replace(
            member,
            relpath=f"news/2030/01/01/respelled-{n}.md",
            page=replace(
                member.page,
                path=f"/news/2030/01/01/respelled-{n}",
                date=dt.date(2030, 1, 1),
                heading="Russian Invasion Of Ukraine",
                related=(),
                changes=(),
            ),
        )
        for n in range(uses + 1)
    ]
    result = await store.apply(others)
    slug = "russian-invasion-of-ukraine"
    assert (await store.topic(slug)).name == "Russian Invasion Of Ukraine"  # type: ignore[union-attr]
    # The topic's own documents are rendered again: its title and every entry's label.
    assert result.renamed == {slug} and f"topics/{slug}" in result.feeds
    assert day.name not in result.feeds  # the member's own day was not touched
    await publish_changes(store, settings, result.feeds, result.events, renamed=result.renamed)
    head = await store.rendition(f"topics/{slug}", "atom")
    assert head is not None and b"<title>Current events: Russian Invasion Of Ukraine</title>" in head.body
    assert labels(head.body) >= {"Russian Invasion Of Ukraine"} and "Russian invasion of Ukraine" not in labels(
        head.body
    )
    # Elsewhere the entry is made again when its document is rendered next.
    await publish(store, settings, day, formats())
    after = await store.rendition(day.name, "atom")
    assert after is not None and "Russian Invasion Of Ukraine" in labels(after.body)
    assert "Russian invasion of Ukraine" not in labels(after.body)


async def test_a_re_render_takes_unchanged_entries_from_the_documents_previous_version(
    store: Store, settings: Settings
) -> None:
    """With nothing in memory and nothing in the entries table, a document's stored version
    still has every unchanged entry (its spans say where): only the reworded event's entry is
    made, and the bytes are those of a render from scratch."""
    from feeds.entries import EntryMemo

    await load_example(store, settings)
    key = FeedKey("topic", "russian-invasion-of-ukraine")
    await sql(store, "DELETE FROM entries")
    pages = read_pages(EXAMPLE, source="example")
    members = [p for p in pages if "Russian invasion of Ukraine" in p.page.topics]
    assert len(members) > 3
    await store.apply([replace(members[1], page=replace(members[1].page, headline="Reworded headline."))])
    spliced = EntryMemo()
    await publish(store, settings, key, formats(), spliced)
    assert spliced.made == 1
    after = {fmt: r.body for fmt, r in (await store.renditions_of(key.name)).items()}
    assert all(b"Reworded headline." in body for body in after.values())

    await store.delete_renditions(key.name)
    scratch = EntryMemo()
    await publish(store, settings, key, formats(), scratch)
    assert scratch.made == len(members) - 1  # all but the reworded one, which the store now has
    assert {fmt: r.body for fmt, r in (await store.renditions_of(key.name)).items()} == after


async def test_a_stored_version_without_spans_gets_them_without_changing(store: Store, settings: Settings) -> None:
    """A store upgraded from schema 5 has no spans: the next render of a document whose bytes
    come out the same stores its spans, and nothing a reader sees changes (validators, the
    renditions counter that caches watch)."""
    await load_example(store, settings)
    key = FeedKey("topic", "russian-invasion-of-ukraine")
    before = await store.renditions_of(key.name)
    await sql(store, "UPDATE renditions SET spans = NULL WHERE feed = ?", (key.name,))
    counters = await store.rendition_versions()
    assert await publish(store, settings, key, formats()) == 0
    after = await store.renditions_of(key.name)
    assert await store.rendition_versions() == counters
    for fmt, rendition in after.items():
        assert rendition.spans == before[fmt].spans != b""
        assert (rendition.etag, rendition.last_modified, rendition.body) == (
            before[fmt].etag,
            before[fmt].last_modified,
            before[fmt].body,
        )


def test_the_topics_index_writes_again_only_the_topics_that_changed() -> None:
    """/topics is the JSON array of every topic; between two renders only changed topics are
    encoded again, and the bytes are what encoding the whole array at once gives, hostile
    names included."""
    from feeds.render.topics import topics_document

    def whole(rows: list[tuple[str, str, int, str | None]]) -> bytes:
        doc = [
            {
                "name": name,
                "slug": slug,
                "events": events,
                "updated": updated,
                "feeds": {fmt: f"http://x/feeds/topics/{slug}.{fmt}" for fmt in ("rss", "atom", "json")},
            }
            for slug, name, events, updated in rows
        ]
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    rows = [
        ("isil", 'ISIL "Daesh" </script>\u2028', 9, "2026-01-01T00:00:00+00:00"),
        ("euro", "Euro \u20ac", 3, None),
        ("erdogan", "Recep Tayyip Erdoğan\x01", 2, "2025-12-31T23:59:59+00:00"),
    ]
    memo: dict[str, tuple[tuple[str, str, int, str | None], bytes]] = {}
    assert topics_document("http://x", rows, memo) == whole(rows)
    kept = memo["isil"][1]
    changed = [("euro", "Euro \u20ac", 12, "2026-02-01T00:00:00+00:00"), rows[0], rows[2]]
    assert topics_document("http://x", changed, memo) == whole(changed)
    assert memo["isil"][1] is kept and memo["euro"][0] == changed[0]
    assert topics_document("http://x", [], memo) == b"[]\n"


async def test_a_summarys_link_to_another_event_leads_where_that_event_is_now(store: Store, settings: Settings) -> None:
    """With a web link template, a link in a summary to another event's page goes to that
    event's current web address, whichever events are rendered together; when the other event
    moves, the entry is made again on its next render (its stamp holds where its links lead)."""
    from feeds.config import SourceConfig
    from feeds.entries import EntryMemo

    linked = replace(
        settings,
        sources=(SourceConfig(name="example", kind="directory", location="x", link="https://example.org/{path}.html"),),
    )
    pages = read_pages(EXAMPLE, source="example")
    target, linker = pages[0], next(p for p in pages[1:] if p.page.date != pages[0].page.date)
    mention = f"See [the earlier event]({target.page.path}.md)."
    linker = replace(linker, page=replace(linker.page, summary=mention, related=()))
    await store.apply([target, linker])
    day = FeedKey("date", linker.page.date.isoformat())
    await publish(store, linked, day, formats(), EntryMemo())
    where = f"https://example.org/{target.relpath.rsplit('.', 1)[0]}.html"
    assert where.encode() in (await store.rendition(day.name, "atom")).body  # type: ignore[union-attr]

    # The same page from another spelling of its folder: another web address.
    _, year, month, day_, name = target.relpath.split("/")
    moved = replace(target, relpath=f"news/{year}/{int(month)}/{int(day_)}/{name}")
    assert moved.relpath != target.relpath
    await store.apply([moved])
    await publish(store, linked, day, formats(), EntryMemo())
    body = (await store.rendition(day.name, "atom")).body  # type: ignore[union-attr]
    now = f"https://example.org/{moved.relpath.rsplit('.', 1)[0]}.html"
    assert now.encode() in body and where.encode() not in body


def test_spans_are_where_each_entry_first_occurs_after_the_previous_one() -> None:
    """An entry's first bytes may occur earlier (a repeated start, the end of the previous
    entry): its span is where the whole entry occurs, as `bytes.index` would find it."""
    from feeds.entries import _SPAN, spans_of

    first, second = b"<entry>" + b"A" * 100 + b"</entry>", b"<entry>" + b"A" * 100 + b"B</entry>"
    body = b"<feed>" + b"<entry>" + b"A" * 120 + first + b"\n" + second + b"</feed>"
    stamps = ["11" * 16, "22" * 16]
    spans = [(s, e) for _, s, e in _SPAN.iter_unpack(spans_of(body, stamps, [first, second]))]
    expected_first = body.index(first)
    assert spans == [
        (expected_first, expected_first + len(first)),
        (body.index(second, expected_first + len(first)), len(body) - len(b"</feed>")),
    ]
    assert [body[s:e] for s, e in spans] == [first, second]
    with pytest.raises(ValueError):
        spans_of(body, stamps, [second, first])  # not in document order
