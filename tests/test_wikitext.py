"""MediaWiki markup in the Chinese archive (tests/data/offstream-zh, see its NOTICE): language
variants (`-{zh-cn:戛纳; zh-hk:康城; zh-tw:坎城;}-`) resolved to the configured variant and wiki
links reduced to their text wherever a page's text is read, so one place is one topic and no
title, topic or page shows raw markup; a store read by other readers heals on its next refresh."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from feeds.config import Settings, SourceConfig, load
from feeds.errors import ConfigError
from feeds.model import Event, FeedKey, Page
from feeds.pages import parse_document
from feeds.pages.wikitext import plain
from feeds.refresh import READER_KEY
from feeds.store import Incoming, Store
from tests.conftest import OFFSTREAM_ZH as ZH
from tests.helpers import documents, refresh_once

CANNES = "-{zh-cn:戛纳; zh-hk:康城; zh-tw:坎城;}-"  # as 45 lines of the archive write it
GHANA = "news/2009/01/3/加纳最大在野党全国民主大会党候选人米尔斯在2008年12月28日举行的总统选举第二轮投票中战胜对手-当选为总统.md"
FESTIVAL = "news/2017/05/18/zh-cn-第70届戛纳电影节-zh-hk-第70屆康城影展-zh-tw-第70屆坎城影展-在法国-zh.md"
HUYGENS = "news/2005/01/14/惠更斯号登陆土卫六-欧洲空间局和NASA已经发布一部分拍摄的照片-http-newssinacomcn-w.md"
PUTIN = "news/2006/01/6/俄罗斯总统-zh-hans-普京-zh-hant-普丁-宣布-俄将在本年夏天开始泰舍特-纳霍德卡的太平洋输油管道.md"
COPYRIGHT = "news/2005/01/12/欧洲议会通过欧盟宪法条约.md"
RAW = ("-{", "}-", "[http", "[[", "]date=")


@pytest.mark.parametrize(
    ("written", "variant", "shown"),
    [
        (CANNES, "zh-cn", "戛纳"),
        (CANNES, "zh-hk", "康城"),
        (CANNES, "zh-tw", "坎城"),
        (CANNES, "zh-hans", "戛纳"),  # zh-hans falls back to zh-cn
        (CANNES, "zh-mo", "康城"),  # zh-mo: zh-hant, zh-hk, zh-tw
        ("-{zh-hans:朝鲜; zh-hant:北韓;}-", "zh-cn", "朝鲜"),  # zh-cn falls back to zh-hans
        ("-{zh-hans:朝鲜; zh-hant:北韓;}-", "zh-hk", "北韓"),
        ("-{zh-tw:阿迪斯阿貝巴; zh-cn:亚的斯亚贝巴;}-", "zh-hk", "阿迪斯阿貝巴"),  # zh-hk -> zh-tw
        ("-{zh-tw:盈拉; zh-hk:英祿; zh-cn:英拉; zh-sg:英叻}-", "zh-sg", "英叻"),  # no trailing `;`
        ("-{zh-hk:月亮喜歡藍; zh-tw:月光下的藍色男孩;}-", "zh-cn", "月亮喜歡藍"),  # no fallback: the first
        ("宫城县-{栗}-原市", "zh-cn", "宫城县栗原市"),  # shielded from conversion: as written
        ("-{}-结局", "zh-cn", "结局"),
        ("-{H|zh-cn:戛纳; zh-tw:坎城;}-标题", "zh-cn", "标题"),  # a hidden rule shows nothing
        ("-{A|zh-cn:戛纳; zh-tw:坎城;}-", "zh-tw", "坎城"),
        ("照片。[http:--news.sina.com.cn-w-2005-01-14-23534836669s.shtml sina]", "zh-cn", "照片。sina"),
        ("[https:--techcrunch.com-2018-07-04-wikipedia-goes-dark- (TechCrunch)] 、", "zh-cn", "(TechCrunch) 、"),
        ("见[http:--www.bbc.co.uk-news-science-environment-15257259]。", "zh-cn", "见。"),
        ("照片。[http:--x.test-a 东方卫视]date=十一月 2017 ", "zh-cn", "照片。东方卫视 "),  # a template's leftover
        ("[[戛纳影展|戛纳]]与[[康城]]", "zh-cn", "戛纳与康城"),
        ("[https://x.test/a](https://x.test/a)", "zh-cn", "[https://x.test/a](https://x.test/a)"),  # markdown
    ],
)
def test_wiki_markup_reads_as_the_variants_text(written: str, variant: str, shown: str) -> None:
    assert plain(written, variant) == shown


def read(relpath: str, variant: str = "zh-cn") -> Page:
    page = parse_document(relpath, (ZH / relpath).read_bytes(), variant=variant)
    assert isinstance(page, Page)
    return page


def texts(page: Page) -> list[str]:
    return [
        page.headline,
        page.heading or "",
        page.summary,
        *(s.name for s in page.sources),
        *(r.headline for r in page.related),
        *(c for r in page.related for c in r.contexts),
        *page.topics,
    ]


def test_real_pages_read_without_markup_in_any_field() -> None:
    ghana = read(GHANA)
    assert ghana.heading == "戛纳" and ghana.topics[0] == "戛纳"
    assert {r.contexts for r in ghana.related[1:]} == {("戛纳",)}
    assert ghana.related[1].headline == "第70届戛纳电影节在法国戛纳节庆宫开幕"
    assert ghana.related[7].headline.startswith("非洲聯盟高峰會") and "法新社" in ghana.related[7].headline
    festival = read(FESTIVAL)
    assert (festival.heading, festival.headline) == ("第70届戛纳电影节", "第70届戛纳电影节在法国戛纳节庆宫开幕")
    assert read(FESTIVAL, "zh-tw").headline == "第70屆坎城影展在法国坎城节庆宫开幕"
    assert read(HUYGENS).headline == "惠更斯号登陆土卫六。欧洲空间局和NASA已经发布一部分拍摄的照片。sina 东方卫视"
    assert "普京" in read(PUTIN).headline and "普丁" in read(PUTIN, "zh-tw").headline
    assert "-{支}-" not in "".join(texts(read(COPYRIGHT)))
    pages = [p for p in ZH.glob("news/**/*.md") if p.name not in ("index.md", "README.md")]
    for file in pages:
        rel = file.relative_to(ZH).as_posix()
        for variant in ("zh-cn", "zh-tw"):
            assert not [t for t in texts(read(rel, variant)) if any(m in t for m in RAW)], (rel, variant)


def zh_settings(tmp_path: Path, tree: Path, variant: str = "zh-cn") -> Settings:
    source = SourceConfig(name="zh", kind="directory", location=str(tree), language="zh")
    return Settings(
        base_url="http://feeds.test", database=str(tmp_path / "feeds.db"), sources=(source,), variant=variant
    )


async def stored_events(store: Store) -> list[Event]:
    return await store.events(FeedKey("latest"), 10_000)


def assert_no_markup(events: list[Event], topics: list[str]) -> None:
    for event in events:
        assert not [t for t in texts(event.page) if any(m in t for m in RAW)], event.relpath
        assert not [t.name for t in event.topics if any(m in t.name for m in RAW)], event.relpath
    assert not [t for t in topics if any(m in t for m in RAW)]


async def test_cannes_is_one_topic_and_nothing_stored_or_served_keeps_markup(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ZH / "news", tree / "news")
    settings = zh_settings(tmp_path, tree)
    store = await Store.open(settings.database)
    try:
        report = await refresh_once(store, settings)
        assert not report.failed_sources
        events = await stored_events(store)
        topics = await store.topics()
        assert_no_markup(events, [t.name for t in topics])
        cannes = [t for t in topics if t.name == "戛纳"]
        assert len(cannes) == 1 and not [t for t in topics if t.name in ("康城", "坎城")]
        shown = {e.relpath for e in await store.events(FeedKey("topics", cannes[0].slug), 100)}
        assert {GHANA, FESTIVAL} <= shown  # a heading on one page, a context name on the other
        for (feed, fmt), body in (await documents(store, settings)).items():
            assert b"-{zh" not in body and b"[http:--" not in body, (feed, fmt)
    finally:
        await store.close()


async def test_the_variant_setting_names_the_topic_and_is_checked(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ZH / "news/2017/05/18", tree / "news/2017/05/18")
    settings = zh_settings(tmp_path, tree, "zh-tw")
    store = await Store.open(settings.database)
    try:
        await refresh_once(store, settings)
        names = {t.name for t in await store.topics()}
        assert {"坎城", "第70屆坎城影展"} <= names and "戛纳" not in names
    finally:
        await store.close()
    config, unset = tmp_path / "feeds.toml", tmp_path / "unset.toml"
    config.write_text('variant = "ZH-TW"\n')
    unset.write_text("")
    assert load(config, env={}).variant == "zh-tw" and load(unset, env={}).variant == "zh-cn"
    assert load(config, env={"FEEDS_VARIANT": "zh-hk"}).variant == "zh-hk"
    for value, where in (("zh-CN-x", "variant"), ("en", "variant")):
        config.write_text(f'variant = "{value}"\n')
        with pytest.raises(ConfigError, match=where) as raised:
            load(config, env={})
        assert "zh-cn" in str(raised.value)  # the message lists the variants
    with pytest.raises(ConfigError, match="FEEDS_VARIANT"):
        load(unset, env={"FEEDS_VARIANT": "zh-xx"})


async def test_a_store_read_by_other_readers_heals_on_its_next_refresh(tmp_path: Path) -> None:
    """A store holding the raw names (as earlier readers stored them) is read again: its pages
    and topics become the variant's, though no file changed."""
    tree = tmp_path / "tree"
    shutil.copytree(ZH / "news/2009/01/3", tree / "news/2009/01/3")
    shutil.copytree(ZH / "news/2017/05/18", tree / "news/2017/05/18")
    settings = zh_settings(tmp_path, tree)
    store = await Store.open(settings.database)
    try:
        await refresh_once(store, settings)
        # What an earlier reader stored: the page's heading and contexts as the file writes them.
        page = read(GHANA)
        raw_related = tuple(dataclasses.replace(r, contexts=(CANNES,)) for r in page.related)
        earlier = dataclasses.replace(page, heading=CANNES, related=raw_related)
        await store.apply([Incoming(earlier, GHANA, "zh")])
        await store.set_meta({READER_KEY: "earlier-readers:zh-cn"})
        assert CANNES in {t.name for t in await store.topics()}
        # Nothing changed on disk: without healing, this refresh reads nothing.
        report = await refresh_once(store, settings)
        assert not report.failed_sources and report.result.summary().split(",")[1].strip().startswith("1 changed")
        assert_no_markup(await stored_events(store), [t.name for t in await store.topics()])
        assert [t.name for t in await store.topics() if t.name == "戛纳"] == ["戛纳"]
        # Read once: the next refresh reads nothing again.
        again = await refresh_once(store, settings)
        assert again.result.summary().startswith("0 new, 0 changed")
    finally:
        await store.close()
