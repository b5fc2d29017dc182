"""Logs an operator can read: an access log (text, JSON lines, or off), one line per refresh with
its duration, no library chatter at INFO, and a source that keeps failing logged when it starts
failing and when it recovers, not at every refresh."""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

from feeds.config import Settings, SourceConfig, load
from feeds.errors import ConfigError
from feeds.refresh import open_sources, refresh_all
from feeds.store import Store
from tests.conftest import EXAMPLE, free_port
from tests.helpers import feeds_serve, wait_for

TEXT_LINE = re.compile(
    r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ 127\.0\.0\.1 "GET (?P<target>(?:[^"\\\s]|\\.)+)" (?P<status>\d{3}) '
    r'(?P<bytes>\d+) (?P<encoding>\S+) [\d.]+ms "(?P<agent>(?:[^"\\]|\\.)*)"$'
)


def served_log(tmp_path: Path, access_log: str) -> list[str]:
    """`feeds serve` of the example with `access_log`, asked for a feed (gzip, then conditionally),
    a missing feed and a page with a query; the lines it wrote."""
    port = free_port()
    tree = tmp_path / "tree"
    shutil.copytree(EXAMPLE / "news", tree / "news")
    config = tmp_path / "feeds.toml"
    config.write_text(
        f'database = "feeds.db"\nport = {port}\nrefresh_interval = 1\naccess_log = "{access_log}"\n'
        f'[[sources]]\nname = "example"\nkind = "directory"\nlocation = "{tree}"\n'
    )
    base = f"http://127.0.0.1:{port}"
    with feeds_serve(config) as server:
        wait_for(server, f"{base}/feeds/latest.atom")
        wait_for(server, f"{base}/topics.json")  # the topics index is rendered after the feeds
        agent = {"User-Agent": 'Reader/1.0 (+https://reader.test; 42 subscribers) "quoted"'}
        first = httpx.get(f"{base}/feeds/latest.atom", headers={**agent, "Accept-Encoding": "gzip"})
        conditional = {**agent, "Accept-Encoding": "gzip", "If-None-Match": first.headers["etag"]}
        httpx.get(f"{base}/feeds/latest.atom", headers=conditional)
        plain = {**agent, "Accept-Encoding": "identity"}
        httpx.get(f"{base}/feeds/no-such.atom", headers=plain)
        httpx.get(f"{base}/topics", params={"q": "ukraine"}, headers={**plain, "Accept": "text/html"})
        # A crafted path and User-Agent cannot forge a line of the text log.
        httpx.get(f"{base}/feeds/%0A%22forged.atom", headers={"User-Agent": r'x"\n200 "forged'})
        time.sleep(2.5)  # two more scheduled refreshes, with nothing to do
    output: str = server.output  # type: ignore[attr-defined]
    return output.splitlines()


def test_access_log_as_json_lines_and_quiet_libraries(tmp_path: Path) -> None:
    lines = served_log(tmp_path, "json")
    records = [json.loads(line) for line in lines if line.startswith("{")]
    asked = [r for r in records if r["agent"].startswith("Reader/1.0")]
    assert [(r["method"], r["path"], r["status"]) for r in asked] == [
        ("GET", "/feeds/latest.atom", 200),
        ("GET", "/feeds/latest.atom", 304),
        ("GET", "/feeds/no-such.atom", 404),
        ("GET", "/topics", 200),
    ]
    gzipped, not_modified = asked[0], asked[1]
    assert gzipped["encoding"] == "gzip" and gzipped["bytes"] > 1000 and not_modified["bytes"] == 0
    assert asked[3]["query"] == "q=ukraine" and all(r["client"] == "127.0.0.1" and r["ms"] >= 0 for r in asked)
    assert asked[0]["agent"] == 'Reader/1.0 (+https://reader.test; 42 subscribers) "quoted"'
    others = [line for line in lines if not line.startswith("{")]
    # One line per refresh, with its duration; no scheduler or server chatter.
    refreshes = [line for line in others if "feeds.scheduler: refresh:" in line]
    assert refreshes and all(re.search(r" in \d+\.\d\d s$", line) for line in refreshes), others
    assert not [line for line in others if "apscheduler" in line.lower() or "Running job" in line], others


def test_access_log_as_text_or_off(tmp_path: Path) -> None:
    lines = served_log(tmp_path / "text", "text")
    text = [m for line in lines if (m := TEXT_LINE.match(line))]
    mine = [m for m in text if m["agent"].startswith("Reader/1.0")]
    assert [(m["target"], m["status"], m["encoding"]) for m in mine] == [
        ("/feeds/latest.atom", "200", "gzip"),
        ("/feeds/latest.atom", "304", "-"),  # no body, so no encoding
        ("/feeds/no-such.atom", "404", "-"),
        ("/topics?q=ukraine", "200", "-"),
    ]
    crafted = [line for line in lines if "forged" in line]
    assert len(crafted) == 1 and TEXT_LINE.match(crafted[0]), crafted
    assert '"GET /feeds/\\x0a\\"forged.atom" 404' in crafted[0] and '"x\\"\\\\n200 \\"forged"' in crafted[0]
    off = served_log(tmp_path / "off", "off")
    assert not [line for line in off if "latest.atom" in line or line.startswith("{")], off


def test_access_log_setting_is_checked(tmp_path: Path) -> None:
    config = tmp_path / "feeds.toml"
    config.write_text('access_log = "verbose"\n')
    with pytest.raises(ConfigError, match="access_log: must be one of off, text, json, got 'verbose'"):
        load(config, env={})
    assert load(config, env={"FEEDS_ACCESS_LOG": "json"}).access_log == "json"


async def test_a_failing_source_is_logged_when_it_fails_and_when_it_recovers(
    tmp_path: Path, store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "later"
    settings = Settings(
        base_url=settings.base_url,
        database=settings.database,
        sources=(SourceConfig(name="later", kind="directory", location=str(missing)),),
    )
    sources = open_sources(settings.sources)
    failing: dict[str, int] = {}
    try:
        with caplog.at_level(logging.DEBUG, logger="feeds.refresh"):
            for _ in range(3):
                report = await refresh_all(store, settings, sources, failing=failing)
                assert report.failed_sources
            shutil.copytree(EXAMPLE / "news", missing / "news")
            report = await refresh_all(store, settings, sources, failing=failing)
            assert not report.failed_sources and report.result.added
            await refresh_all(store, settings, sources, failing=failing)
    finally:
        for source in sources:
            await source.aclose()
    said = [
        (r.levelname, r.getMessage().split(":")[1].strip()) for r in caplog.records if "source later" in r.getMessage()
    ]
    assert said == [
        ("WARNING", "source later failing"),
        ("DEBUG", "source later still failing (2 runs)"),
        ("DEBUG", "source later still failing (3 runs)"),
        ("INFO", "source later recovered after 3 failed run(s)"),
    ]
