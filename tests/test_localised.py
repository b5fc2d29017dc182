"""Localised archives: real pages of the Chinese Offstream archive (tests/data/offstream-zh, see its
NOTICE) read with that archive's own labels, warnings for sections no language names, and feeds
that say their source's language."""

from __future__ import annotations

import json
import logging
import pickle
import re
import shutil
from dataclasses import replace
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner
from lxml import etree

from feeds.cli import cli
from feeds.config import Settings, SourceConfig, load
from feeds.entries import context_digest
from feeds.errors import ConfigError
from feeds.ids import topic_key
from feeds.model import DayListing, Page, Related, SourceLink
from feeds.pages import parse_document, read_document
from feeds.pages.wikitext import plain
from feeds.publish import publish_all
from feeds.refresh import open_sources, parse_documents, refresh_all
from feeds.sources import Document
from feeds.store import Incoming, Store
from tests.conftest import EVENT_PAGE, OFFSTREAM, SAMPLE_RELPATH
from tests.conftest import OFFSTREAM_ZH as ZH
from tests.helpers import documents, etags, read_pages

DAY = "news/2019/12/9"  # a whole day at the archive's newest commit
OLD_DAY = "news/2016/06/23"  # a whole day of an older rendering (`上下文`, contexts in listings)
WADA = f"{DAY}/世界反兴奋剂机构以反兴奋剂实验室数据造假为由禁止俄罗斯在未来四年内参加或主办大型国际赛事.md"
FARC = f"{OLD_DAY}/哥伦比亚革命武装力量-人民军與哥倫比亞政府簽訂了歷史性的停火協議-結束了超過五十年的衝突.md"
KOMPAS = "news/2019/01/22/印尼南苏拉威西省出现暴雨-引发严重水灾-导致至少68人死亡.md"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def zh_files(pattern: str = "news/**/*.md") -> list[str]:
    return sorted(p.relative_to(ZH).as_posix() for p in ZH.glob(pattern))


def read(relpath: str) -> Page:
    page = parse_document(relpath, (ZH / relpath).read_bytes())
    assert isinstance(page, Page), relpath
    return page


# --- what the raw files say, read without the readers ------------------------------------------


def raw_sections(relpath: str) -> dict[str, list[str]]:
    """A page's numbered lines under each `### name:` line, as the file has them."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in (ZH / relpath).read_text("utf-8").splitlines():
        if m := re.match(r"^### ([^\[].*):$", line):
            current = sections.setdefault(m[1], [])
        elif current is not None and re.match(r"^\d+\. ", line):
            current.append(line)
    return sections


def raw_contexts(line: str) -> tuple[str, ...]:
    m = re.search(r" _(?:消息|上下文): (.*)_$", line)
    return tuple(m[1].split(", ")) if m else ()


def test_every_chinese_page_keeps_every_source_image_related_event_and_context() -> None:
    pages = [rel for rel in zh_files() if rel.rsplit("/", 1)[1] not in ("index.md", "README.md")]
    assert len(pages) == 28
    for rel in pages:
        reading = read_document(rel, (ZH / rel).read_bytes())
        assert reading.warnings == (), rel
        page = reading.document
        assert isinstance(page, Page), rel
        raw = raw_sections(rel)
        assert set(raw) <= {"信息来源", "有关"}, rel  # the archive's only two sections
        sources, related = raw.get("信息来源", []), raw.get("有关", [])
        assert len(page.sources) == len(sources), rel
        images = {m for line in sources for m in re.findall(r" \[IMG\]\((.*)\)$", line)}
        assert (page.image in images) if images else page.image is None, rel
        assert not any("IMG" in s.name or "](" in s.url for s in page.sources), rel
        # Names as the file writes them, wiki markup read as text (tests/test_wikitext.py).
        assert [r.contexts for r in page.related] == [tuple(map(plain, raw_contexts(line))) for line in related], rel
        assert page.changes == (), rel  # the archive has no Changes sections
        # A summary only where the file has text between its headline and its first section.
        lines = (ZH / rel).read_text("utf-8").split("\n")
        below = next(i for i, line in enumerate(lines) if line.startswith("# ")) + 1
        until = next((i for i, line in enumerate(lines) if line.startswith("### ") and i > below), len(lines))
        assert bool(page.summary) == any(line.strip() for line in lines[below:until]), rel


def test_a_chinese_page_field_by_field() -> None:
    page = read(WADA)
    assert page.date.isoformat() == "2019-12-09"
    assert page.heading == "世界反兴奋剂机构"
    assert page.headline == "世界反兴奋剂机构以反兴奋剂实验室数据造假为由禁止俄罗斯在未来四年内参加或主办大型国际赛事。"
    assert page.summary == ""
    assert page.sources == (SourceLink("海外网", "https://news.sina.com.cn/w/2019-12-09/doc-iihnzahi6354711.shtml"),)
    assert page.image == "http://n.sinaimg.cn/news/crawl/47/w550h297/20191209/f0a2-iknhexi1634078.jpg"
    assert len(page.related) == 10
    assert page.related[1] == Related(
        "土耳其與俄羅斯在敘利亞東北部接壤土耳其邊界的地區進行首次聯合巡邏。",
        "/zh/news/2019/11/1/土耳其與俄羅斯在敘利亞東北部接壤土耳其邊界的地區進行首次聯合巡邏.md",
        ("俄羅斯",),
    )
    assert {r.contexts for r in page.related} == {("俄羅斯",)}
    assert page.changes == ()
    assert page.topics == ("世界反兴奋剂机构", "俄羅斯")


def test_an_image_link_after_a_source_keeps_the_parentheses_of_its_url() -> None:
    page = read(KOMPAS)
    assert page.sources == (
        SourceLink(
            "KOMPAS",
            "https://regional.kompas.com/read/2019/01/23/11141991/gubernur-sulsel-banjir-bandang-disebabkan-"
            "pendangkalan-sungai-dan-perusakan",
        ),
    )
    assert page.image == (
        "https://asset.kompas.com/crops/bwzYYkaejODErNP5szVjuuoOvAw=/27x0:871x563/780x390/filters:watermark("
        "data/photo/2019/08/13/5d528b8341764.png,0,-0,1)/data/photo/2019/01/23/7442045942.jpg"
    )


def test_older_pages_say_上下文_and_chinese_punctuation_stays_inside_names() -> None:
    page = read(FARC)
    assert page.heading == "哥伦比亚革命武装力量－人民军"
    assert [r.contexts for r in page.related] == [("哥伦比亚革命武装力量－人民军", "哥倫比亞")] + [("哥倫比亞",)] * 4
    assert page.topics == ("哥伦比亚革命武装力量－人民军", "哥倫比亞")
    listing = parse_document(f"{OLD_DAY}/index.md", (ZH / OLD_DAY / "index.md").read_bytes())
    assert isinstance(listing, DayListing)
    # `、` and `－` are part of these names: only ", " separates a context list.
    assert [e.contexts for e in listing.entries] == [
        ("阜宁县、射陽縣遭受龙卷风袭击",),
        ("哥伦比亚革命武装力量－人民军", "哥倫比亞"),
        ("英国脱欧公投",),
    ]


@pytest.mark.parametrize(("day", "previous"), [(DAY, "/news/2019/12/08/index"), (OLD_DAY, "/news/2016/06/22/index")])
def test_a_day_listing_names_its_pages_and_the_day_before(day: str, previous: str) -> None:
    pages = {read(rel).path for rel in zh_files(f"{day}/*.md") if not rel.endswith(("/index.md", "/README.md"))}
    for name in ("index.md", "README.md"):
        reading = read_document(f"{day}/{name}", (ZH / day / name).read_bytes())
        listing = reading.document
        assert isinstance(listing, DayListing) and reading.warnings == ()
        assert {e.path for e in listing.entries} == pages
        assert listing.previous == previous  # `## [前一天...](...)`, not the last entry's summary
        assert not any(e.summary for e in listing.entries)


# --- sections no language names ---------------------------------------------------------------


def with_section(data: bytes, before: str, section: str) -> bytes:
    text = data.decode("utf-8")
    assert before in text
    return text.replace(before, section + before, 1).encode("utf-8")


@pytest.mark.parametrize(
    ("relpath", "data", "before", "heading"),
    [
        (WADA, (ZH / WADA).read_bytes(), "### 信息来源:", "### 背景:"),
        (SAMPLE_RELPATH, EVENT_PAGE.read_bytes(), "### Sources:", "### Background:"),
    ],
)
def test_an_unknown_section_is_left_out_with_a_warning_naming_file_and_heading(
    relpath: str, data: bytes, before: str, heading: str
) -> None:
    changed = with_section(data, before, f"{heading}\n\n1. [Something](https://example.com/x)\nA line of text.\n\n")
    reading = read_document(relpath, changed, origin=f"/srv/archive/{relpath}")
    assert [(w.origin, w.field) for w in reading.warnings] == [(f"/srv/archive/{relpath}", "sections")]
    assert f"/srv/archive/{relpath}" in str(reading.warnings[0]) and heading in str(reading.warnings[0])
    # Read as before, the section's lines in no field (never the summary).
    assert reading.document == parse_document(relpath, data)
    assert parse_document(relpath, changed) == reading.document  # the old front door still answers


def test_a_section_in_a_day_listing_is_reported_and_its_lines_left_out() -> None:
    relpath = f"{DAY}/index.md"
    data = (ZH / relpath).read_bytes()
    changed = with_section(data, "##### 羽毛球世界联合会", "### 备注:\n一些说明。\n\n")
    reading = read_document(relpath, changed)
    assert [str(w) for w in reading.warnings] == [
        f"{relpath}: sections: section '### 备注:' in a day listing, which has none: its lines are left out"
    ]
    assert reading.document == parse_document(relpath, data)


def test_warnings_reach_the_ingest_problems_and_cross_process_boundaries() -> None:
    changed = with_section((ZH / WADA).read_bytes(), "### 信息来源:", "### 背景:\n\n文字\n\n")
    parsed = parse_documents([Document(WADA, changed, f"/srv/{WADA}")], "zh")
    assert parsed.failed == [] and [p.page.path for p in parsed.pages] == [read(WADA).path]
    assert parsed.problems == [f"/srv/{WADA}: sections: unknown section '### 背景:': its lines are left out"]
    again = pickle.loads(pickle.dumps(parsed))  # what a worker process hands back
    assert again.problems == parsed.problems and again.pages[0].page == parsed.pages[0].page
    reading = read_document(WADA, changed)
    assert pickle.loads(pickle.dumps(reading)) == reading


@pytest.fixture
def tree_with_unknown_section(tmp_path: Path) -> tuple[Path, Path]:
    """A real day of the Chinese archive in a folder; one of its pages with a section added."""
    tree = tmp_path / "tree"
    shutil.copytree(ZH / DAY, tree / DAY)
    page = tree / WADA
    page.write_bytes(with_section(page.read_bytes(), "### 信息来源:", "### 背景:\n\n文字\n\n"))
    return tree, page


def test_feeds_ingest_prints_the_warning_and_stores_the_page(
    tmp_path: Path, tree_with_unknown_section: tuple[Path, Path]
) -> None:
    tree, page = tree_with_unknown_section
    config = tmp_path / "feeds.toml"
    config.write_text(f'database = "feeds.db"\n[[sources]]\nname = "zh"\nlocation = "{tree}"\nlanguage = "zh"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "ingest", str(tree)])
    assert f"problem: {page}: sections: unknown section '### 背景:'" in result.output
    assert "15 new, 0 changed, 0 deleted events" in result.output
    assert result.exit_code == 1  # a problem was reported, as for any other


async def test_a_refresh_logs_the_warning_and_stores_the_page(
    tmp_path: Path, tree_with_unknown_section: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    tree, _ = tree_with_unknown_section
    source = SourceConfig(name="zh", kind="directory", location=str(tree), language="zh")
    settings = Settings(database=str(tmp_path / "feeds.db"), sources=(source,))
    store = await Store.open(settings.database)
    sources = open_sources(settings.sources)
    try:
        with caplog.at_level(logging.WARNING, logger="feeds.refresh"):
            report = await refresh_all(store, settings, sources)
    finally:
        for opened in sources:
            await opened.aclose()
        await store.close()
    assert report.result.summary().startswith("15 new")
    logged = [r.getMessage() for r in caplog.records if "unknown section" in r.getMessage()]
    assert len(logged) == 1 and WADA in logged[0] and "'### 背景:'" in logged[0], logged


# --- topics -----------------------------------------------------------------------------------


def named(relpaths: list[str]) -> set[str]:
    """Every topic name the pages give, read from the raw text: `#####` headings and context lists."""
    names = set()
    for rel in relpaths:
        for line in (ZH / rel).read_text("utf-8").splitlines():
            if line.startswith("##### ") and line[6:].strip():
                names.add(line[6:].strip())
            names.update(raw_contexts(line))
    return names


async def test_the_topics_ingested_from_a_day_are_the_names_its_pages_give(store: Store) -> None:
    pages = read_pages(ZH, f"{DAY}/*.md", source="zh")
    assert len(pages) == 15
    await store.apply(pages)
    names = named([p.relpath for p in pages])
    topics = await store.topics()
    # As many topics as distinct names once folded the way the store folds them (topic_key, else
    # the name itself), each shown by one of those names.
    assert len(topics) == len({topic_key(n) or f"#{n}" for n in names})
    assert {t.name for t in topics} <= names
    # Context names come from the related lists, which no heading of the day gives.
    assert {"塔利班", "伊斯兰国", "阿富汗战争", "巴黎", "中華民國"} <= {t.name for t in topics}


# --- language ---------------------------------------------------------------------------------


def test_language_is_a_bcp_47_tag_named_where_it_is_wrong(tmp_path: Path) -> None:
    config = tmp_path / "feeds.toml"
    config.write_text('language = "zh-hant-tw"\n[[sources]]\nname = "a"\nlocation = "."\nlanguage = "ZH"\n')
    settings = load(config, env={})
    assert (settings.language, settings.sources[0].language) == ("zh-Hant-TW", "zh")
    for bad, key in [("[[sources]]\nname='a'\nlocation='.'\nlanguage='Chinese'", "sources[0].language"),
                     ("language = 'zh_CN'", "language"), ("language = ''", "language")]:  # fmt: skip
        config.write_text(bad + "\n")
        with pytest.raises(ConfigError, match=re.escape(f"config {key}: must be a BCP 47 language tag")):
            load(config, env={})
    with pytest.raises(ConfigError, match="FEEDS_LANGUAGE: must be a BCP 47"):
        load(config, env={"FEEDS_LANGUAGE": "12"})
    config.write_text('language = "en"\n')
    assert load(config, env={"FEEDS_LANGUAGE": "zh-cn"}).language == "zh-CN"


def test_which_language_feeds_and_sources_say() -> None:
    en = SourceConfig(name="en", kind="directory", location="/a")
    zh = SourceConfig(name="zh", kind="directory", location="/b", language="zh")
    assert Settings().feed_language == "en"
    assert Settings(sources=(zh,)).feed_language == "zh"  # one language: the feeds say it
    mixed = Settings(sources=(en, zh))
    assert (mixed.feed_language, mixed.source_language("en"), mixed.source_language("zh")) == ("en", "en", "zh")
    chosen = Settings(sources=(en, zh), language="zh")
    assert (chosen.feed_language, chosen.source_language("en")) == ("zh", "zh")  # the top level is the default
    assert Settings(language="de").source_language("unconfigured") == "de"


def zh_settings(tmp_path: Path, items_per_feed: int = 5) -> Settings:
    source = SourceConfig(name="zh", kind="directory", location=str(ZH), language="zh")
    return Settings(
        base_url="http://feeds.test",
        database=str(tmp_path / "feeds.db"),
        items_per_feed=items_per_feed,
        sources=(source,),
    )


def languages(fmt: str, body: bytes) -> tuple[str, list[str | None]]:
    """The feed's language and each entry's own (None: the feed's), as parsers read them."""
    if fmt == "json":
        doc = json.loads(body)
        return doc["language"], [None for _ in doc["items"]]
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    root = etree.fromstring(body)
    if fmt == "rss":
        assert root.findtext("channel/language") == parsed.feed.language
        return parsed.feed.language, [None for _ in root.iterfind("channel/item")]
    assert root.get(XML_LANG) == parsed.feed.language
    return parsed.feed.language, [e.get(XML_LANG) for e in root.iterfind("{http://www.w3.org/2005/Atom}entry")]


async def published(settings: Settings, pages: list[Incoming]) -> dict[tuple[str, str], bytes]:
    """Every document of a new store holding `pages`, rendered with `settings`."""
    store = await Store.open(settings.database)
    try:
        await store.apply(pages)
        await publish_all(store, settings)
        return await documents(store, settings)
    finally:
        await store.close()


async def test_feeds_of_a_chinese_source_say_zh_in_every_format(tmp_path: Path) -> None:
    docs = await published(zh_settings(tmp_path), read_pages(ZH, source="zh"))
    assert {fmt for _, fmt in docs} == {"rss", "atom", "json"} and len(docs) > 30
    for (feed, fmt), body in docs.items():
        language, own = languages(fmt, body)
        assert language == "zh" and set(own) <= {None}, (feed, fmt)  # entries say nothing of their own


async def test_a_feed_of_two_languages_says_the_top_level_one_and_atom_entries_their_own(tmp_path: Path) -> None:
    en = SourceConfig(name="example", kind="directory", location=str(tmp_path))
    settings = zh_settings(tmp_path, items_per_feed=100)
    settings = replace(settings, sources=(en, *settings.sources))
    docs = await published(
        settings, read_pages(ZH, f"{DAY}/*.md", source="zh") + read_pages(OFFSTREAM, source="example")
    )
    language, own = languages("atom", docs[("latest", "atom")])
    assert language == "en" and own.count("zh") == 15 and own.count(None) == len(own) - 15
    assert languages("rss", docs[("latest", "rss")])[0] == languages("json", docs[("latest", "json")])[0] == "en"
    assert languages("atom", docs[("dates/2019-12-09", "atom")]) == ("en", ["zh"] * 15)


async def test_a_changed_language_changes_every_document_and_entry(tmp_path: Path) -> None:
    settings = zh_settings(tmp_path)
    store = await Store.open(settings.database)
    try:
        await store.apply(read_pages(ZH, source="zh"))
        await publish_all(store, settings)
        before = await etags(store, settings)
        german = replace(settings, sources=(replace(settings.sources[0], language="de"),))
        assert context_digest(german) != context_digest(settings)  # entries are made again
        await publish_all(store, german)
        after = await etags(store, german)
        docs = await documents(store, german)
    finally:
        await store.close()
    changed = {key for key in before if key[0] != "_topics" and after[key] != before[key]}
    assert changed == {key for key in before if key[0] != "_topics"}
    assert all(languages(fmt, body)[0] == "de" for (_, fmt), body in docs.items())
