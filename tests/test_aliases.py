"""Topic aliases: names the operator declares one topic (`[topic_aliases]`), joined whichever the
store met first, shown by the configured name; a topic retired into another keeps answering at
its old slug (301) and its events keep their ids; `feeds topics --suggest-aliases` finds renames.

Real pages (tests/data/topics/NOTICE.md): the archive itself renamed "Austin package explosions"
(12 March 2018) to "Austin serial bombings" (19 March 2018), both in the company of Austin and
Texas.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from feeds import aliases
from feeds.app import create_app
from feeds.config import Settings, SourceConfig, load
from feeds.errors import ConfigError
from feeds.model import FEED_FORMATS, FORMATS
from feeds.publish import publish_all, publish_changes
from feeds.store import Store
from tests.conftest import DATA, LiveServer
from tests.helpers import documents, entries, read_pages, sql

EN = DATA / "topics" / "en"
RENAMED = (("Austin serial bombings", ("Austin package explosions",)),)
OLD, NEW = "austin-package-explosions", "austin-serial-bombings"


def settings_for(tmp_path: Path, name: str) -> Settings:
    return Settings(
        base_url="http://feeds.test",
        database=str(tmp_path / f"{name}.db"),
        items_per_feed=20,
        sources=(SourceConfig(name="test", kind="directory", location=str(EN)),),
    )


async def built(settings: Settings, topic_aliases: tuple[tuple[str, tuple[str, ...]], ...] | None) -> Store:
    store = await Store.open(settings.database, topic_aliases=topic_aliases)
    await store.apply(read_pages(EN))
    await publish_all(store, settings)
    return store


async def topic_rows(store: Store) -> dict[str, tuple[str, int]]:
    return {slug: (name, n) for slug, name, n in await sql(store, "SELECT slug, name, events FROM topics")}


def test_config_reads_groups_and_names_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(
        '[topic_aliases]\n"Russo-Ukrainian War" = ["Russian invasion of Ukraine", "2022 Russian invasion of Ukraine"]\n'
        '"Austin serial bombings" = ["Austin package explosions", "AUSTIN SERIAL BOMBINGS"]\n'
    )
    assert load(path, env={}).topic_aliases == (
        ("Austin serial bombings", ("Austin package explosions",)),  # its own spelling is no alias
        ("Russo-Ukrainian War", ("2022 Russian invasion of Ukraine", "Russian invasion of Ukraine")),
    )
    for text, says in [
        (
            '[topic_aliases]\n"A war" = ["B"]\n"C" = ["b"]\n',
            "topic_aliases.'C': 'b' is already in the group of 'A war'",
        ),
        ('[topic_aliases]\n"A war" = []\n', "topic_aliases.'A war': must be a non-empty list of topic names"),
        ('[topic_aliases]\n"A war" = ["!!"]\n', "'!!' has no words to name a topic by"),
        ('topic_aliases = ["A"]\n', "topic_aliases: must be a table"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError) as caught:
            load(path, env={})
        assert says in str(caught.value)


async def test_aliased_names_are_one_topic_shown_by_the_configured_name(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "aliased")
    store = await built(settings, RENAMED)
    try:
        rows = await topic_rows(store)
        assert rows[NEW] == ("Austin serial bombings", 2)
        assert OLD not in rows  # never made: the group's slug comes from its shown name
        docs = await documents(store, settings)
        for fmt in FEED_FORMATS:
            found = entries(fmt, docs[(f"topics/{NEW}", fmt)])
            assert [e["published"] for e in found] == ["2018-03-19", "2018-03-12"]
            # Each entry names the topic as configured, never the alias.
            assert all("Austin package explosions" not in str(e["tags"]) for e in found)
    finally:
        await store.close()


async def test_aliasing_a_store_retires_the_old_topic_into_the_new_and_its_urls_redirect(tmp_path: Path) -> None:
    plain = settings_for(tmp_path, "plain")
    store = await built(plain, None)
    before = await documents(store, plain)
    ids_before = {e["id"] for fmt in FEED_FORMATS for e in entries(fmt, before[(f"topics/{OLD}", fmt)])}
    assert (await topic_rows(store))[OLD] == ("Austin package explosions", 1)
    await store.close()

    # The operator declares the rename; the store is keyed again when opened with it.
    store = await Store.open(plain.database, topic_aliases=RENAMED)
    try:
        await publish_changes(store, plain, set(), set())
        rows = await topic_rows(store)
        assert rows[NEW] == ("Austin serial bombings", 2) and rows[OLD][1] == 0
        after = await documents(store, plain, FORMATS)
        assert not [key for key in after if key[0].startswith(f"topics/{OLD}")]  # no documents of its own
        joined = {e["id"] for fmt in FEED_FORMATS for e in entries(fmt, after[(f"topics/{NEW}", fmt)])}
        assert ids_before < joined  # its events keep their ids in the topic they joined

        # The same bytes as a store that had the aliases from the start: nothing depends on history.
        fresh = await built(settings_for(tmp_path, "fresh"), RENAMED)
        try:
            assert after == await documents(fresh, settings_for(tmp_path, "fresh"), FORMATS)
        finally:
            await fresh.close()

    finally:
        await store.close()

    with LiveServer(create_app(replace(plain, topic_aliases=RENAMED), scheduler=False)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for old, new in [
                (f"/topics/{OLD}", f"/topics/{NEW}"),
                (f"/topics/{OLD}/pages/1", f"/topics/{NEW}"),
                *((f"/feeds/topics/{OLD}.{fmt}", f"/feeds/topics/{NEW}.{fmt}") for fmt in FEED_FORMATS),
            ]:
                response = await client.get(old)
                assert (response.status_code, response.headers["location"]) == (301, new), old
                assert (await client.get(new, headers={"Accept": "text/html"})).status_code == 200
            slugs = {t["slug"] for t in (await client.get("/topics.json")).json()}
            assert NEW in slugs and OLD not in slugs
            # Combined feeds naming the old slug: the topics it joined (one topic: its own feed).
            other = min(slugs - {NEW})
            pair = "+".join(sorted((NEW, other)))
            for old, new in [
                (f"/feeds/topics/{OLD}+{other}.atom", f"/feeds/topics/{pair}.atom"),
                (f"/topics/{other}+{OLD}", f"/topics/{pair}"),
                (f"/feeds/topics/{NEW}+{OLD}.json", f"/feeds/topics/{NEW}.json"),
            ]:
                response = await client.get(old)
                assert (response.status_code, response.headers["location"]) == (301, new), old
                assert (await client.get(new)).status_code == 200, new
            assert (await client.get(f"/feeds/topics/{OLD}+no-such-topic.atom")).status_code == 404

    # Taking the alias back out gives the old topic back, at its own slug, byte for byte.
    store = await Store.open(plain.database, topic_aliases=())
    try:
        await publish_changes(store, plain, set(), set())
        assert (await topic_rows(store))[OLD] == ("Austin package explosions", 1)
        assert await documents(store, plain) == before
        assert await store.topic_moved_to(OLD) is None
    finally:
        await store.close()


def test_suggest_finds_the_rename_and_not_topics_that_lived_together() -> None:
    def profile(slug: str, first: str, last: str, company: tuple[str, ...], events: int = 3) -> aliases.Profile:
        return aliases.Profile(slug, slug.replace("-", " ").title(), events, first, last, company)

    found = aliases.suggest(
        [
            profile("old-war", "2014-02-20", "2022-02-23", ("ukraine", "russia", "crimea", "donbas")),
            profile("new-war", "2022-02-24", "2025-01-01", ("ukraine", "russia", "donbas", "nato")),
            profile("ukraine", "2010-01-01", "2025-01-01", ("russia", "old-war", "new-war")),  # overlaps both
            profile("a-flood", "2023-01-01", "2023-02-01", ("bangladesh", "monsoon")),  # other company
        ]
    )
    assert [(s.earlier.slug, s.later.slug, s.shared) for s in found] == [("old-war", "new-war", 0.75)]
    toml = tomllib.loads(aliases.as_toml(found))
    assert toml == {"topic_aliases": {"New War": ["Old War"]}}


async def test_suggest_aliases_command_lists_the_archives_rename_as_config(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "suggest")
    store = await built(settings, None)
    await store.close()
    config = tmp_path / "feeds.toml"
    config.write_text(f"database = {json.dumps(settings.database)}\n")
    result = subprocess.run(
        [sys.executable, "-m", "feeds", "--config", str(config), "topics", "--suggest-aliases", "--min-events", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    suggested = tomllib.loads(result.stdout)["topic_aliases"]
    assert suggested == {"Austin serial bombings": ["Austin package explosions"]}
    # Pasted into the config, it is read as written.
    config.write_text(config.read_text() + result.stdout)
    assert load(config, env={}).topic_aliases == RENAMED
