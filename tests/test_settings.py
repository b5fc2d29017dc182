"""Settings that reach the documents: a base URL that follows the address served, and every
document rendered again when such a setting changed since the store was rendered."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from feeds import config, fingerprint
from feeds.cli import cli
from feeds.config import Settings, SourceConfig
from feeds.errors import ConfigError
from feeds.model import FeedKey
from feeds.publish import every_key, publish_all, publish_changes
from feeds.refresh import open_sources, refresh_all
from feeds.render.topics import TOPICS_DOC
from feeds.store import Store
from tests.conftest import EXAMPLE, free_port
from tests.helpers import current, documents, etags, feeds_serve, read_pages, sql, wait_for


def write_config(tmp_path: Path, tree: Path, extra: str = "") -> Path:
    path = tmp_path / "feeds.toml"
    path.write_text(
        f'database = "feeds.db"\nrefresh_interval = 3600\n{extra}\n'
        f'[[sources]]\nname = "example"\nkind = "directory"\nlocation = "{tree}"\n'
    )
    return path


# ----- the base URL follows the address served ------------------------------------------------


def test_base_url_follows_the_address_unless_configured(tmp_path: Path, tree: Path) -> None:
    path = write_config(tmp_path, tree, "port = 8123")
    settings = config.load(path, env={})
    assert settings.follow_address and settings.base_url == "http://127.0.0.1:8123"
    served = config.serving(settings, port=9001)
    assert (served.port, served.base_url) == (9001, "http://127.0.0.1:9001")
    assert config.serving(settings, host="::1").base_url == "http://[::1]:8123"
    assert config.serving(settings, host="0.0.0.0", port=80).base_url == "http://127.0.0.1"
    assert config.serving(settings, host="feeds.lan").base_url == "http://feeds.lan:8123"
    # A configured base URL always wins, from the file or from the environment.
    explicit = config.load(write_config(tmp_path, tree, 'port = 8123\nbase_url = "https://feeds.example.org/"'), env={})
    assert not explicit.follow_address
    assert config.serving(explicit, port=9001).base_url == "https://feeds.example.org"
    from_env = config.load(path, env={"FEEDS_BASE_URL": "https://env.example.org"})
    assert config.serving(from_env, port=9001).base_url == "https://env.example.org"


def test_a_base_url_that_is_no_url_is_refused_with_its_key(tmp_path: Path, tree: Path) -> None:
    path = write_config(tmp_path, tree, 'base_url = "feeds.example.org"')
    with pytest.raises(ConfigError, match=r"feeds.toml: config base_url: must be an absolute http\(s\) URL"):
        config.load(path, env={})
    with pytest.raises(ConfigError, match=r"environment: config FEEDS_BASE_URL: must be an absolute"):
        config.load(write_config(tmp_path, tree), env={"FEEDS_BASE_URL": "/feeds"})


def test_values_out_of_range_are_refused_at_load_with_their_key(tmp_path: Path, tree: Path) -> None:
    """A port past 65535 would bind another port, a huge interval would overflow a timer: both are
    refused when the settings are read, naming the key and where it came from."""
    with pytest.raises(ConfigError, match=r"feeds.toml: config port: must be at most 65,535, got 84059"):
        config.load(write_config(tmp_path, tree, "port = 84059"), env={})
    with pytest.raises(ConfigError, match=r"environment: config FEEDS_REFRESH_INTERVAL: must be at most"):
        config.load(write_config(tmp_path, tree), env={"FEEDS_REFRESH_INTERVAL": str(10**30)})
    with pytest.raises(ConfigError, match=r"config sources\[0\].timeout: must be at most 3,600"):
        config.load(_with_source_key(tmp_path, tree, "timeout = 1e9"), env={})
    assert config.load(write_config(tmp_path, tree, "port = 65535"), env={}).port == 65535


def _with_source_key(tmp_path: Path, tree: Path, line: str) -> Path:
    path = write_config(tmp_path, tree)
    path.write_text(path.read_text() + line + "\n")
    return path


def test_two_workers_with_settings_only_from_the_environment(tmp_path: Path, tree: Path) -> None:
    """No config file anywhere: `feeds serve --workers 2` with FEEDS_* variables alone starts both
    workers with the parent's settings (they once looked for a config file that did not exist)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "FEEDS_CONFIG"}
    env |= {
        "FEEDS_DATABASE": str(tmp_path / "env.db"),
        "FEEDS_SOURCES": str(tree),
        "FEEDS_PORT": str(port),
        "FEEDS_REFRESH_INTERVAL": "3600",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "feeds", "serve", "--workers", "2"],
        cwd=tmp_path,  # no config/feeds.toml here
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    try:
        latest = wait_for(server, f"http://127.0.0.1:{port}/feeds/latest.atom")
        assert f"http://127.0.0.1:{port}/feeds/latest.atom" in latest.text
        # Both workers answer (connections spread over them) with the same document.
        answers = {httpx.get(f"http://127.0.0.1:{port}/feeds/latest.atom").headers["etag"] for _ in range(20)}
        assert answers == {latest.headers["etag"]}
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode()
    assert "Traceback" not in output and output.count("runs the refreshes") == 1, output


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_port_is_reflected_in_every_link(tmp_path: Path, tree: Path, workers: int) -> None:
    """`feeds serve --port P` with no base_url configured (the file says another port): self links,
    /topics and home links all say P, in every worker."""
    port = free_port()
    path = write_config(tmp_path, tree, "port = 8000")
    base = f"http://127.0.0.1:{port}"
    with feeds_serve(path, "--port", str(port), "--workers", str(workers)) as server:
        latest = wait_for(server, f"{base}/feeds/latest.atom")
        assert f'<link href="{base}/feeds/latest.atom" rel="self"' in latest.text
        assert f'<link href="{base}/" rel="alternate"' in latest.text
        topics = wait_for(server, f"{base}/topics").json()
        assert topics and all(t["feeds"]["json"].startswith(f"{base}/feeds/topics/") for t in topics)
        head = httpx.get(f"{base}/feeds/topics/{topics[0]['slug']}.json").json()
        # A feed's home is its page on the site: the topic's.
        assert head["feed_url"].startswith(base) and head["home_page_url"] == f"{base}/topics/{topics[0]['slug']}"
        # The workers' own settings: the same base URL in every answer they give.
        for _ in range(10 * workers):
            assert ":8000" not in httpx.get(f"{base}/feeds/latest.rss").text
    conn = sqlite3.connect(tmp_path / "feeds.db")
    stored = conn.execute("SELECT value FROM meta WHERE key = ?", (fingerprint.BASE_URL_KEY,)).fetchone()
    conn.close()
    assert stored == (base,)


def test_restart_with_another_base_url_renders_every_document_again(tmp_path: Path, tree: Path) -> None:
    port = free_port()
    path = write_config(tmp_path, tree, f"port = {port}\nitems_per_feed = 5")
    old, new = f"http://127.0.0.1:{port}", "https://feeds.example.org/news"
    with feeds_serve(path) as server:
        wait_for(server, f"{old}/topics")
    # It walks every document at once, far over a client's rate_limit.
    with feeds_serve(path, env={"FEEDS_BASE_URL": new, "FEEDS_RATE_LIMIT": "0"}) as server:
        # The documents are rendered again at start-up: `latest` first, /topics after the heads.
        wait_for(server, f"{old}/feeds/latest.atom", ready=f'href="{new}/feeds/latest.atom" rel="self"')
        wait_for(server, f"{old}/topics", ready=new)
        deadline = time.monotonic() + 60
        while asyncio.run(_meta(tmp_path / "feeds.db", fingerprint.BASE_URL_KEY)) != new:
            assert time.monotonic() < deadline, "the documents were not all rendered again"
            time.sleep(0.2)
        names = asyncio.run(_names(tmp_path / "feeds.db"))  # rendered at start-up or on request
        assert len(names) > 100 and any("/pages/" in n for n in names)
        with httpx.Client(base_url=old) as client:
            for name in names:
                for fmt in ("rss", "atom", "json"):
                    body = client.get(f"/feeds/{name}.{fmt}").text
                    assert new in body and old not in body, (name, fmt)
            topics = client.get("/topics").text
            assert new in topics and old not in topics


async def _meta(database: Path, key: str) -> str | None:
    store = await Store.open(database)
    try:
        return await store.meta(key)
    finally:
        await store.close()


async def _names(database: Path) -> list[str]:
    store = await Store.open(database)
    try:
        return sorted(k.name for k in await every_key(store, Settings(items_per_feed=5)))
    finally:
        await store.close()


# ----- which settings reach the documents -------------------------------------------------------


def test_every_setting_is_known_to_reach_the_documents_or_not() -> None:
    """A new setting must be classified (fingerprint.DOCUMENT_SETTINGS or OTHER_SETTINGS): one that
    reaches the bytes and is not digested would leave stores serving documents made without it."""
    names = {f.name for f in dataclasses.fields(Settings)}
    assert not set(fingerprint.DOCUMENT_SETTINGS) & set(fingerprint.OTHER_SETTINGS)
    assert set(fingerprint.DOCUMENT_SETTINGS) | set(fingerprint.OTHER_SETTINGS) == names


def _other_value(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value * 2 + 120
    if isinstance(value, str):
        return value + "-other"
    assert isinstance(value, tuple)
    return (*value, SourceConfig(name="more", kind="http", location="https://other.test", link="https://o.test/{path}"))


def _changed(settings: Settings, name: str) -> Settings:
    changes: dict[str, Any] = {name: _other_value(getattr(settings, name))}
    return replace(settings, **changes)


def test_the_digest_moves_with_document_settings_only(settings: Settings) -> None:
    digest = fingerprint.settings_digest(settings)
    for name in fingerprint.DOCUMENT_SETTINGS:
        assert fingerprint.settings_digest(_changed(settings, name)) != digest, name
    for name in fingerprint.OTHER_SETTINGS:
        assert fingerprint.settings_digest(_changed(settings, name)) == digest, name
    # How a source is crawled does not reach the bytes; where it is and how it links does.
    source = settings.sources[0]
    assert fingerprint.settings_digest(replace(settings, sources=(replace(source, depth=99, rate=1.0),))) == digest
    for moved in (replace(source, link="https://x.test/{path}"), replace(source, language="zh")):
        assert fingerprint.settings_digest(replace(settings, sources=(moved,))) != digest, moved
    # The RSS <ttl> is in whole minutes: 60 and 119 seconds make the same documents.
    assert fingerprint.settings_digest(replace(settings, refresh_interval=119)) == digest


async def test_a_changed_document_setting_renders_every_document_at_the_next_refresh(
    store: Store, settings: Settings
) -> None:
    sources = open_sources(settings.sources)
    await refresh_all(store, settings, sources)
    before = await etags(store, settings)
    assert await store.meta(fingerprint.DIGEST_KEY) == fingerprint.settings_digest(settings)
    # Settings that reach headers only: nothing is rendered.
    report = await refresh_all(store, replace(settings, cache_max_age=5, settle_days=9), sources)
    assert report.rendered == 0
    # A new title: every document, though no event changed.
    titled = replace(settings, title="World news")
    report = await refresh_all(store, titled, sources)
    assert report.result.summary().startswith("0 new, 0 changed, 0 deleted")
    feeds = [k for k in before if k[0] != TOPICS_DOC]  # /topics shows no title
    # The hot documents are rendered now, the others when next asked for.
    assert 0 < report.rendered < len(feeds)
    after = await etags(store, titled)
    assert after.keys() == before.keys() and all(after[k] != before[k] for k in feeds)
    bodies = await documents(store, titled)
    assert all(b"World news" in body for body in bodies.values())
    assert await store.meta(fingerprint.DIGEST_KEY) == fingerprint.settings_digest(titled)
    # Rendering every document again with the same settings stores nothing: the ETags stay.
    assert await publish_all(store, titled, everything=True) == 0
    assert await etags(store, titled) == after
    for source in sources:
        await source.aclose()


async def test_a_smaller_page_size_cuts_new_topic_pages(store: Store, settings: Settings) -> None:
    await store.apply(read_pages(EXAMPLE, source="example"))
    await publish_all(store, settings)
    older = "topics/russian-invasion-of-ukraine/pages/2"
    assert await current(store, settings, older, "atom") is None
    small = replace(settings, items_per_feed=3)
    result = await store.apply([])  # nothing changed in the sources
    await publish_changes(store, small, result.feeds, result.events)
    assert await current(store, small, older, "atom") is not None  # older pages: made when asked for
    latest = (await current(store, small, "latest", "json")).body  # type: ignore[union-attr]
    assert latest.count(b'"id":"urn:uuid:') == 3


async def test_a_store_from_before_the_digest_is_rendered_again_once(store: Store, settings: Settings) -> None:
    await store.apply(read_pages(EXAMPLE, source="example"))
    await publish_all(store, settings)
    await sql(store, "DELETE FROM meta WHERE key = ?", (fingerprint.DIGEST_KEY,))
    assert await fingerprint.needs_rerender(store, settings)
    before = await etags(store, settings)
    result = await store.apply([])
    assert await publish_changes(store, settings, result.feeds, result.events) == 0  # same bytes, same ETags
    assert await etags(store, settings) == before
    assert not await fingerprint.needs_rerender(store, settings)


# ----- commands that render without serving ----------------------------------------------------


def test_refresh_beside_a_server_keeps_its_address_and_ingest_follows_a_new_base_url(
    tmp_path: Path, tree: Path
) -> None:
    """`feeds refresh` with no base_url configured renders with the address the documents were
    served at (not the configured port); a base URL set for `feeds ingest` renders them all again."""
    path = write_config(tmp_path, tree, "port = 8000")
    settings = config.load(path, env={})
    served = config.serving(settings, port=9123)

    async def served_once() -> None:
        # What the scheduler of `feeds serve --port 9123` does at start-up.
        store = await Store.open(settings.database)
        sources = open_sources(served.sources)
        try:
            await refresh_all(store, served, sources)
        finally:
            for source in sources:
                await source.aclose()
            await store.close()

    asyncio.run(served_once())
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(path), "refresh"], env={"FEEDS_CONFIG": None, "FEEDS_BASE_URL": None})
    assert result.exit_code == 0, result.output
    assert "0 feed files re-rendered" in result.output
    assert asyncio.run(_meta(tmp_path / "feeds.db", fingerprint.BASE_URL_KEY)) == "http://127.0.0.1:9123"
    result = runner.invoke(
        cli, ["--config", str(path), "ingest", str(tree), "--no-progress"], env={"FEEDS_BASE_URL": "https://x.example"}
    )
    assert result.exit_code == 0, result.output
    rendered = int(result.output.split(" feed files re-rendered")[0].rsplit(" ", 1)[1])
    assert rendered > 20  # the hot documents; the others are stale until asked for
    bodies = asyncio.run(_bodies(tmp_path / "feeds.db"))
    assert all(b"https://x.example/" in b and b":9123" not in b for b in bodies)
    # `feeds publish --all`: every document, also those left stale for their next request; then
    # everything again, nothing changed.
    for _ in range(2):
        result = runner.invoke(
            cli,
            ["--config", str(path), "publish", "--all", "--no-progress"],
            env={"FEEDS_BASE_URL": "https://x.example"},
        )
        assert result.exit_code == 0, result.output
    assert result.output.strip() == "0 feed files re-rendered", result.output
    assert all(b"https://x.example/" in b and b":9123" not in b for b in asyncio.run(_bodies(tmp_path / "feeds.db")))
    result = runner.invoke(cli, ["--config", str(path), "publish"])
    assert result.exit_code == 2 and "--all" in result.output


async def _bodies(database: Path) -> list[bytes]:
    store = await Store.open(database)
    try:
        # What is stored current: documents outside the hot set are stale until asked for.
        rows = await sql(store, "SELECT feed, fmt FROM renditions WHERE stale = 0")
        stored = [await store.rendition(feed, fmt) for feed, fmt in rows]
        return [r.body for r in stored if r is not None]
    finally:
        await store.close()


async def test_a_change_published_with_new_settings_still_renders_the_feeds_it_emptied(
    store: Store, settings: Settings
) -> None:
    await store.apply(read_pages(EXAMPLE, source="example"))
    await publish_all(store, settings)
    day = (await store.dates())[0]
    assert await current(store, settings, f"dates/{day}", "atom")  # asked for: made and stored
    emptied = await store.apply([], deleted=[e.key for e in await store.events(FeedKey("date", day), 1000)])
    titled = replace(settings, title="World news")
    await publish_changes(store, titled, emptied.feeds, emptied.events)
    # No event of the day is left (it is no feed to render whole), but its document is the change:
    # it now reports the deletions, under the new title.
    atom = (await current(store, titled, f"dates/{day}", "atom")).body  # type: ignore[union-attr]
    assert b"World news" in atom and b"at:deleted-entry" in atom
    assert b"World news" in (await current(store, titled, "latest", "atom")).body  # type: ignore[union-attr]
    assert not await fingerprint.needs_rerender(store, titled)


def test_serve_logs_no_library_chatter(tmp_path: Path, tree: Path) -> None:
    """The scheduler's jobs log nothing at INFO (APScheduler once wrote two lines every 10 seconds);
    the refresh itself says one line."""
    port = free_port()
    path = write_config(tmp_path, tree, f"port = {port}")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "feeds", "--config", str(path), "serve"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(server, f"http://127.0.0.1:{port}/feeds/latest.atom")
            time.sleep(1)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    output = log.read_text()
    assert "apscheduler" not in output, output
    assert sum("INFO feeds.scheduler: refresh:" in line for line in output.splitlines()) == 1, output
