"""Bounded input: a page over a configured limit (bytes, headline and summary characters, sources,
related events, context names) is rejected whole, reported with its file and the limit's setting
name, and never reaches the store; the rest of its batch does."""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import feedparser
import pytest

from feeds import config
from feeds.config import Limits, Settings
from feeds.errors import ConfigError
from feeds.publish.document import Writer, encode
from feeds.refresh import parse_documents
from feeds.sources import Document
from feeds.store import Store
from tests.conftest import DATA
from tests.helpers import documents, entries, refresh_once

PAGE: dict[str, Any] = json.loads((DATA / "event-page.json").read_text())
RELPATH = "news/2017/09/28/a-page-at-its-limits.json"
SMALL = Limits(
    max_document_bytes=20_000,
    max_headline_chars=300,
    max_summary_chars=400,
    max_sources=3,
    max_related=5,
    max_contexts=20,
)


def variant(**changes: Any) -> bytes:
    page = copy.deepcopy(PAGE)
    page.update(changes)
    return json.dumps(page, ensure_ascii=False).encode()


def related(n: int, contexts: int) -> list[dict[str, Any]]:
    return [
        {
            "headline": f"Related {i}",
            "url": f"/news/2017/09/1/related-{i}.md",
            "contexts": [f"Name {i}.{j}" for j in range(contexts)],
        }
        for i in range(n)
    ]


LARGE = variant(summary="word " * 4_500)
CASES = {
    "bytes": (LARGE, f"{len(LARGE):,} bytes", "max_document_bytes = 20,000", ""),
    "headline": (variant(headline="h" * 301), "301 characters", "max_headline_chars = 300", "headline"),
    "summary": (variant(summary="s" * 401), "401 characters", "max_summary_chars = 400", "summary"),
    "sources": (
        variant(sources=[{"name": f"S{i}", "url": f"https://s{i}.test/"} for i in range(4)]),
        "4 sources",
        "max_sources = 3",
        "sources",
    ),
    "related": (variant(related=related(6, 1)), "6 related events", "max_related = 5", "related"),
    "contexts": (variant(related=related(5, 5)), "25 context names", "max_contexts = 20", "related"),
}


def test_the_sample_page_is_within_the_small_limits() -> None:
    parsed = parse_documents([Document(RELPATH, variant(), f"/srv/{RELPATH}")], "s", SMALL)
    assert parsed.problems == [] and len(parsed.pages) == 1


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_page_over_a_limit_is_rejected_naming_file_field_and_setting(case: str) -> None:
    data, count, setting, field = CASES[case]
    good = Document("news/2017/09/28/a-good-page.json", variant(), "/srv/good.json")
    bad = Document(RELPATH, data, f"/srv/{RELPATH}")
    parsed = parse_documents([bad, good], "s", SMALL)
    assert [p.page.path for p in parsed.pages] == ["/news/2017/09/28/a-good-page"]
    assert parsed.failed == [RELPATH]
    (problem,) = parsed.problems
    where = f"/srv/{RELPATH}: {field}: " if field else f"/srv/{RELPATH}: "
    assert problem.startswith(where + count) and problem.endswith(f"over the limit {setting}; page rejected"), problem


async def test_a_page_naming_5000_contexts_makes_no_topics(store: Store, settings: Settings, tree: Path) -> None:
    """A 46 KB page with 5,000 context names once made 5,003 topics and 15,010 documents: with the
    default limits it is rejected and the store holds the example's topics only."""
    page = variant(related=related(1, 5_000))
    assert 40_000 < len(page) < 1 << 20
    (tree / "news/2017/09/28").mkdir(parents=True, exist_ok=True)
    (tree / RELPATH).write_bytes(page)
    report = await refresh_once(store, settings)
    assert [p for p in report.problems if RELPATH in p] == [
        f"{tree / RELPATH}: related: 5,000 context names, over the limit max_contexts = 150; page rejected"
    ]
    assert await store.count_events() == 59
    assert len(await store.topics()) < 200


def test_limits_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text("max_summary_chars = 1000\nmax_contexts = 50\n")
    loaded = config.load(path, env={"FEEDS_MAX_SOURCES": "7"})
    assert (loaded.limits.max_summary_chars, loaded.limits.max_contexts, loaded.limits.max_sources) == (1000, 50, 7)
    assert config.load(tmp_path / "feeds.toml", env={}).limits.max_document_bytes == Limits().max_document_bytes
    with pytest.raises(ConfigError, match="FEEDS_MAX_DOCUMENT_BYTES: must be positive"):
        config.load(path, env={"FEEDS_MAX_DOCUMENT_BYTES": "0"})


async def test_no_document_exceeds_max_feed_bytes(store: Store, settings: Settings, tree: Path) -> None:
    """Pages at the summary limit would make a day's archive and the latest feed far larger than
    max_feed_bytes: each keeps its newest entries that fit, in every format, and says what it left out."""
    day = tree / "news/2017/09/28"
    day.mkdir(parents=True)
    for n in range(12):
        page = variant(headline=f"Large event {n:02d}", summary=f"Large summary {n:02d} " + "word " * 1_900)
        (day / f"large-event-{n:02d}.json").write_bytes(page)
    limit = 64 << 10
    settings = replace(settings, max_feed_bytes=limit)
    report = await refresh_once(store, settings)
    assert report.problems == [] and await store.count_events() == 59 + 12
    served = await documents(store, settings)
    assert max(len(body) for body in served.values()) <= limit
    assert len(served[("dates/2017-09-28", "rss")]) > limit // 2  # full, not emptied
    for fmt in ("rss", "atom", "json"):
        shown = entries(fmt, served[("dates/2017-09-28", fmt)])
        titles = [str(e["title"]) for e in shown]
        assert 0 < len(titles) < 12, fmt
        assert titles == [f"Large event {n:02d}" for n in range(11, 11 - len(titles), -1)], fmt
        assert len(titles) == len(entries("rss", served[("dates/2017-09-28", "rss")]))  # the same cut
    atom = feedparser.parse(served[("dates/2017-09-28", "atom")])
    assert "older entries left out: the document would exceed max_feed_bytes, 65,536" in atom.feed.subtitle
    assert "left out" in feedparser.parse(served[("topics/isil", "atom")]).feed.subtitle
    untouched = feedparser.parse(served[("dates/2022-07-07", "atom")])
    assert "left out" not in untouched.feed.subtitle


def test_max_feed_bytes_is_bounded_at_load(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text("max_feed_bytes = 1000\n")
    with pytest.raises(ConfigError, match="max_feed_bytes: must be at least 65,536, got 1000"):
        config.load(path, env={})
    path.write_text("")
    assert config.load(path, env={"FEEDS_MAX_FEED_BYTES": "100000"}).max_feed_bytes == 100_000


async def test_the_publishing_writer_counts_plain_bytes(store: Store) -> None:
    """Feeds of repeated text compress to almost nothing: the batch of renditions waiting to be
    stored is bounded by their plain bytes too (once it held 1 GB of them for 16 MB compressed)."""
    writer = Writer(store, max_bytes=100_000)
    body = b"<feed>" + b"word " * 30_000 + b"</feed>"
    rendition = encode("topics/compressible", "atom", body, dt.datetime(2024, 6, 30, tzinfo=dt.UTC))
    assert len(rendition.gzip) + len(rendition.br) < 10_000 < len(body)
    await writer.add([rendition], [], [])
    assert (await store.renditions_of("topics/compressible"))["atom"].body == body  # stored, not held
