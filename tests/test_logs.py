"""Logs an operator can read: an access log (text, JSON lines, or off), one line per refresh with
its duration, no library chatter at INFO, and a source that keeps failing logged when it starts
failing and when it recovers, not at every refresh."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import select
import shutil
import time
from pathlib import Path

import httpx
import pytest

from feeds.access import Clock, Entry, chunks, json_line, text_line
from feeds.config import Settings, SourceConfig, load
from feeds.errors import ConfigError
from feeds.refresh import open_sources, refresh_all
from feeds.store import Store
from tests.conftest import EXAMPLE, free_port
from tests.helpers import LOG_LINE, feeds_serve, wait_for

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


def served_config(tmp_path: Path, access_log: str) -> tuple[Path, str]:
    """A config serving the example with `access_log`; (config, base URL)."""
    port = free_port()
    tree = tmp_path / "tree"
    shutil.copytree(EXAMPLE / "news", tree / "news")
    config = tmp_path / "feeds.toml"
    config.write_text(
        f'database = "feeds.db"\nport = {port}\nrefresh_interval = 3600\naccess_log = "{access_log}"\nrate_limit = 0\n'
        f'[[sources]]\nname = "example"\nkind = "directory"\nlocation = "{tree}"\n'
    )
    return config, f"http://127.0.0.1:{port}"


async def burst(url: str, requests: int, agent: str, at_once: int = 16) -> list[int]:
    """`requests` GETs of `url`, `at_once` at a time, the i-th with User-Agent `agent` + i."""
    limit = asyncio.Semaphore(at_once)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=at_once), timeout=60) as client:

        async def one(i: int) -> int:
            async with limit:
                return (await client.get(url, headers={"User-Agent": f"{agent}{i}"})).status_code

        return await asyncio.gather(*(one(i) for i in range(requests)))


def test_every_line_of_a_burst_is_written_whole_by_shutdown(tmp_path: Path) -> None:
    """Lines are written in batches, by a thread of each worker, to one file: a burst of requests
    stopped right after its last answer still has one whole line per request, none lost or torn
    by the other worker's writes."""
    config, base = served_config(tmp_path, "text")
    requests = 1500
    with feeds_serve(config, "--workers", "2", log=tmp_path / "serve.log") as server:
        wait_for(server, f"{base}/feeds/latest.atom")
        statuses = asyncio.run(burst(f"{base}/feeds/latest.atom", requests, "burst/"))
        assert statuses == [200] * requests
    lines = server.output.splitlines()  # type: ignore[attr-defined]
    mine = [m for line in lines if (m := TEXT_LINE.match(line)) and m["agent"].startswith("burst/")]
    assert sorted(int(m["agent"].removeprefix("burst/")) for m in mine) == list(range(requests))
    # Every other line is a whole log record or uvicorn's: nothing torn, nothing run together.
    assert all(TEXT_LINE.match(line) or LOG_LINE.match(line) for line in lines), [
        line for line in lines if not (TEXT_LINE.match(line) or LOG_LINE.match(line))
    ][:5]


def test_an_access_line_is_written_within_a_second_while_idle(tmp_path: Path) -> None:
    """A lone request (no batch to fill) is in the log about a second later, while the server
    runs, not only when it stops."""
    config, base = served_config(tmp_path, "json")
    log = tmp_path / "serve.log"
    with feeds_serve(config, log=log) as server:
        wait_for(server, f"{base}/feeds/latest.atom")
        asked = time.monotonic()
        assert httpx.get(f"{base}/feeds/latest.json", headers={"User-Agent": "lone/1.0"}).status_code == 200
        while '"agent":"lone/1.0"' not in log.read_text() and time.monotonic() - asked < 10:
            time.sleep(0.05)
        waited = time.monotonic() - asked
        written = [json.loads(line) for line in log.read_text().splitlines() if '"agent":"lone/1.0"' in line]
        assert server.poll() is None
    assert [(r["path"], r["status"]) for r in written] == [("/feeds/latest.json", 200)]
    assert waited < 2.5, f"the line took {waited:.2f} s to appear"  # EVERY (1 s) and a loaded machine's slack


def test_text_lines_escape_what_a_client_sent() -> None:
    """Every control character, quote and backslash a client can put in a path, query or
    User-Agent is escaped: the line stays one line whose fields parse back."""
    nasty = "".join(map(chr, range(0x20))) + '\x7f"\\é'
    agent = (nasty + " x").encode("latin-1")
    entry: Entry = (
        0.0,
        "127.0.0.1",
        "GET",
        f"/feeds/{nasty}.atom",
        nasty.encode("latin-1"),
        404,
        61,
        None,
        0.0012,
        agent,
    )
    line = text_line(entry, Clock())
    assert line.endswith("\n") and "\n" not in line[:-1] and "\r" not in line
    match = TEXT_LINE.match(line[:-1])
    assert match, line
    escaped = "".join(f"\\x{c:02x}" for c in range(0x20)) + '\\x7f\\"\\\\é'
    assert match["target"] == f"/feeds/{escaped}.atom?{escaped}" and match["agent"] == escaped + " x"
    assert line.startswith('1970-01-01T00:00:00Z 127.0.0.1 "GET ') and '" 404 61 - 1.2ms "' in line


def test_json_lines_are_what_json_dumps_gives() -> None:
    """The JSON line is assembled by hand from json's string encoder: the same bytes as dumping
    the fields, and it parses back to what the client sent."""
    nasty = "".join(map(chr, range(0x20))) + '\x7f"\\ é\u2028'
    for encoding, query in ((None, b""), ("br", b"q=%22x%22&a=\xe9")):
        entry: Entry = (86399.9, "::1", "GET", f"/feeds/{nasty}", query, 200, 5, encoding, 0.03456, b'R "1"\\\x01')
        line = json_line(entry, Clock())
        fields = {
            "time": "1970-01-01T23:59:59Z",
            "client": "::1",
            "method": "GET",
            "path": f"/feeds/{nasty}",
            "query": query.decode("latin-1"),
            "status": 200,
            "bytes": 5,
            "encoding": encoding,
            "ms": 34.56,
            "agent": 'R "1"\\\x01',
        }
        assert line == json.dumps(fields, ensure_ascii=False, separators=(",", ":")) + "\n"
        assert json.loads(line) == fields and "\n" not in line[:-1]


def test_a_batch_is_written_in_whole_lines_of_at_most_pipe_buf_bytes() -> None:
    lines = [f"{i} {'x' * (i % 300)}\n".encode() for i in range(2000)] + [b"y" * 9000 + b"\n", b"z\n"]
    data = b"".join(lines)
    pieces = chunks(data)
    assert b"".join(pieces) == data and all(piece.endswith(b"\n") for piece in pieces)
    assert [len(p) for p in pieces if len(p) > select.PIPE_BUF] == [9001]  # a longer line goes alone
    assert sum(len(p) for p in pieces[:-3]) > 0.9 * select.PIPE_BUF * (len(pieces) - 3)  # pieces are full
