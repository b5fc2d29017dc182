"""`feeds export DIR` served by Debian's nginx (with brotli_static) with the configuration the
export writes, asked the same questions as `feeds serve` over the same store: the same status,
bytes, ETag, Last-Modified, Cache-Control, Vary, Link and content type for every URL in every
encoding, the same 304s and redirects; and a second export writes only what changed."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from feeds.app import create_app
from feeds.config import Settings
from feeds.export import export
from feeds.responses import JSON_TYPE
from feeds.store import Store
from tests.conftest import LiveServer
from tests.frontends import BROTLI_STATIC, free_port, nginx, nginx_cache_http, nginx_export, nginx_main, raw, require
from tests.helpers import refresh_once
from tests.test_websub import pages_of

COMPARED = (
    "content-type",
    "content-encoding",
    "etag",
    "last-modified",
    "cache-control",
    "vary",
    "link",
    "location",
    "x-content-type-options",
)
ENCODINGS = ("identity", "gzip", "br")


CLIENT = httpx.Client(timeout=10)  # kept alive: thousands of requests


def answers(base: str, url: str, encoding: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    status, got, body = raw(base + url, encoding, CLIENT, **headers)
    return status, {k: got[k] for k in COMPARED if k in got}, body


def manifest_urls(out: Path) -> list[str]:
    with closing(sqlite3.connect(out / "manifest.sqlite")) as db:
        return [u for (u,) in db.execute("SELECT DISTINCT url FROM files ORDER BY url")]


async def test_nginx_serves_an_export_as_the_server_answers(settings: Settings, store: Store, tmp_path: Path) -> None:
    await refresh_once(store, settings)
    out = tmp_path / "export"
    counts = await export(settings, store, out)
    urls = manifest_urls(out)
    assert counts.written == 3 * len(urls) and counts.unchanged == counts.removed == 0
    assert {"/", "/topics", "/topics.json", "/opml", "/feeds/latest.atom", "/static/style.css"} <= set(urls)
    assert any(re.fullmatch(r"/news/\d{4}/\d\d/\d{1,2}/[^/]+\.xml", u) for u in urls)
    with LiveServer(create_app(settings, scheduler=False)) as live, nginx_export(out, tmp_path / "nginx") as port:
        server = live.url
        static = f"http://127.0.0.1:{port}"
        for url in urls:
            for encoding in ENCODINGS:
                accept = {"accept": "text/html"} if url == "/topics" else {}
                status, headers, body = answers(server, url, encoding, **accept)
                assert status == 200, url
                assert answers(static, url, encoding, **accept) == (status, headers, body), (url, encoding)
                if encoding != "br" and not url.startswith(("/feeds/latest", "/topics", "/news/2022/02")):
                    continue  # every URL compared; validators asked of one representation of each kind
                # A reader's validators, answered alike (a 304 carries the ETag and Cache-Control).
                for validator in ({"if-none-match": headers["etag"]}, {"if-modified-since": headers["last-modified"]}):
                    ours = answers(static, url, encoding, **validator, **accept)
                    theirs = answers(server, url, encoding, **validator, **accept)
                    assert ours[0] == theirs[0] == 304, (url, validator)
                    assert ours[1]["etag"] == theirs[1]["etag"] and ours[2] == b""
        # The negotiated /topics: JSON for everything but browsers.
        for accept in ("application/json", "*/*", "text/html,application/xhtml+xml,*/*;q=0.8"):
            assert answers(static, "/topics", "br", accept=accept) == answers(server, "/topics", "br", accept=accept)
        # A list of ETags, and a stale one.
        etag = answers(server, "/feeds/latest.json", "gzip")[1]["etag"]
        for inm, expected in ((f'"x", {etag}', 304), ("*", 304), ('"stale"', 200)):
            assert answers(static, "/feeds/latest.json", "gzip", **{"if-none-match": inm})[0] == expected, inm
            assert answers(server, "/feeds/latest.json", "gzip", **{"if-none-match": inm})[0] == expected, inm
        # An event at a padded day redirects to the archive's shape, as the server does.
        event = next(u for u in urls if u.startswith("/news/") and u.endswith(".html") and "/index." not in u)
        year, month, day, name = event.split("/")[2:]
        padded = f"/news/{year}/{month}/{int(day):02d}/{name}"
        if padded != event:
            with httpx.Client() as client:
                ours, theirs = client.get(static + padded), client.get(server + padded)
            assert ours.status_code == theirs.status_code == 301
            assert ours.headers["location"] == theirs.headers["location"] == event
        # What is not a file: 404 without an origin, said as the server says it (one JSON type,
        # the same shape, never stored).
        for url in ("/feeds/search.atom?q=ukraine", "/feeds/no-such-feed.atom", "/news/2099/01/1/nothing.html"):
            ours, theirs = raw(static + url, "identity"), raw(server + "/feeds/no-such-feed.atom", "identity")
            assert ours[0] == theirs[0] == 404, url
            assert ours[1]["content-type"] == theirs[1]["content-type"] == JSON_TYPE, url
            for header in ("cache-control", "x-content-type-options"):
                assert ours[1][header] == theirs[1][header], (url, header)
            assert set(json.loads(ours[2])) == set(json.loads(theirs[2])) == {"error", "status"}, url
        # A browser asking for a missing page gets a page from both; for a missing feed, JSON.
        browser = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
        for url in ("/news/2099/01/1/nothing.html", "/topics/no-such-topic", "/feeds/no-such-feed.atom"):
            ours, theirs = raw(static + url, "identity", **browser), raw(server + url, "identity", **browser)
            assert ours[0] == theirs[0] == 404, url
            assert ours[1]["content-type"] == theirs[1]["content-type"], url
            assert ours[1]["cache-control"] == theirs[1]["cache-control"] == "no-store", url


async def test_what_is_not_a_file_goes_to_the_origin(settings: Settings, store: Store, tmp_path: Path) -> None:
    await refresh_once(store, settings)
    with LiveServer(create_app(settings, scheduler=False)) as live:
        await export(settings, store, tmp_path / "export", origin=live.url)
        with nginx_export(tmp_path / "export", tmp_path / "nginx") as port:
            static = f"http://127.0.0.1:{port}"
            for url in ("/feeds/search.atom?q=ukraine", "/topics?q=ukr", "/opml?topics=ukraine,russia", "/changes"):
                ours, theirs = answers(static, url, "gzip"), answers(live.url, url, "gzip")
                assert ours[0] == theirs[0] == 200 and ours[2] == theirs[2], url


async def test_a_second_export_writes_only_what_changed(settings: Settings, store: Store, tmp_path: Path) -> None:
    await refresh_once(store, settings)
    out = tmp_path / "export"
    first = await export(settings, store, out)
    again = await export(settings, store, out)
    assert (again.written, again.removed, again.unchanged) == (0, 0, first.written)
    # One event reworded: its pages, its days' and topics' feeds and pages change, nothing else.
    page = pages_of(Path(settings.sources[0].location))[-1]
    page.write_text(page.read_text().replace("\n# ", "\n# (Reworded) ", 1))
    await refresh_once(store, settings)
    changed = await export(settings, store, out)
    assert 0 < changed.written < first.written / 4, changed
    assert changed.unchanged + changed.written == first.written
    # The reworded event's files hold the new words; the store and the files agree.
    latest = (out / "site" / "feeds" / "latest.atom").read_bytes()
    assert b"(Reworded)" in latest
    # An event removed at its source: its files go.
    page.unlink()
    await refresh_once(store, settings)
    gone = await export(settings, store, out)
    assert gone.removed >= 4 * 3, gone  # its page and three twins, each in three encodings
    assert not list((out / "site").rglob(page.stem + ".*"))


async def test_a_broken_manifest_is_refused_before_anything_is_written(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    await refresh_once(store, settings)
    out = tmp_path / "export"
    out.mkdir()
    (out / "manifest.json").write_text("{not json")
    from feeds.export import ExportError

    with pytest.raises(ExportError, match=r"manifest\.json"):
        await export(settings, store, out)
    assert not (out / "site" / "feeds").exists()


def test_feeds_export_from_the_command_line(tmp_path: Path, tree: Path) -> None:
    config = tmp_path / "feeds.toml"
    config.write_text(
        f'database = "{tmp_path / "feeds.db"}"\n[[sources]]\nname = "example"\nkind = "directory"\nlocation = "{tree}"\n'
    )
    feeds = [str(Path(__import__("sys").executable)), "-m", "feeds", "--config", str(config)]
    subprocess.run([*feeds, "refresh"], check=True, capture_output=True)
    done = subprocess.run([*feeds, "export", str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert re.match(r"\d+ files written, 0 unchanged, 0 removed; nginx: include .*/nginx.conf", done.stdout)
    assert "HTTP Request" not in done.stderr  # no line per document
    refused = subprocess.run(
        [*feeds, "export", str(tmp_path / "out"), "--origin", "ftp://x"], capture_output=True, text=True
    )
    assert refused.returncode != 0 and "--origin" in refused.stderr


async def test_the_exports_nginx_file_and_the_caches_run_side_by_side(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    """deploy/nginx/feeds-cache.conf and an export's nginx.conf in one http block, in either
    order: nginx loads them (`nginx -t`; nginx sizes map hashes at the first map, so only one of
    them may use maps and set those sizes), and both answer as the server does."""
    (binary, _) = require("nginx", "brotli_static")
    await refresh_once(store, settings)
    out = tmp_path / "export"
    await export(settings, store, out)
    work = tmp_path / "nginx"
    work.mkdir()
    cache_port, export_port = free_port(), free_port()
    exported = (out / "nginx.conf").read_text().replace("listen 80;", f"listen 127.0.0.1:{export_port};")
    (work / "export.conf").write_text(exported)
    with LiveServer(create_app(settings, scheduler=False)) as live:
        (work / "cache.conf").write_text(nginx_cache_http(work, [int(live.url.rsplit(":", 1)[1])], cache_port))
        for order in (("cache.conf", "export.conf"), ("export.conf", "cache.conf")):
            http = "".join(f"include {work / name};\n" for name in order)
            conf = nginx_main(work, http, modules=[BROTLI_STATIC])
            checked = subprocess.run(
                [binary, "-t", "-p", str(work), "-c", str(conf)], capture_output=True, text=True, check=False
            )
            assert checked.returncode == 0, (order, checked.stderr)
        with nginx(conf, export_port):
            theirs = answers(live.url, "/feeds/latest.atom", "gzip")
            assert theirs[0] == 200
            assert answers(f"http://127.0.0.1:{export_port}", "/feeds/latest.atom", "gzip") == theirs
            cached = raw(f"http://127.0.0.1:{cache_port}/feeds/latest.atom", "gzip", CLIENT)
            assert (cached[0], cached[1]["etag"], cached[2]) == (200, theirs[1]["etag"], theirs[2])
