"""The README's examples, run against `feeds serve` of the bundled data (config/feeds.toml) as a
user starts it: every URL it shows answers as it says, and its shell examples run as written."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, free_port
from tests.helpers import feeds_serve, wait_for

README = (REPO / "README.md").read_text("utf-8")
EXAMPLE_BASE = "http://127.0.0.1:8000"
URL = re.compile(re.escape(EXAMPLE_BASE) + r"/[^\s'\"`)]*")


def section(title: str) -> str:
    """The README's text from heading `title` to the next heading of the same level."""
    start = README.index(f"\n{title}\n")
    level = title.split(" ", 1)[0]
    end = README.find(f"\n{level} ", start + len(title) + 2)
    return README[start : end if end > 0 else None]


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.DOTALL)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`feeds serve` of the bundled config, on a free port (its database in a temporary folder)."""
    port = free_port()
    database = tmp_path_factory.mktemp("readme") / "feeds.db"
    base = f"http://127.0.0.1:{port}"
    config = REPO / "config" / "feeds.toml"
    with feeds_serve(config, "--port", str(port), env={"FEEDS_DATABASE": str(database)}) as process:
        # Older topic pages are rendered last.
        wait_for(process, f"{base}/feeds/topics/russian-invasion-of-ukraine/pages/1.atom")
        yield base


def expected_status(line: str) -> int:
    comment = line.partition("#")[2]
    found = re.search(r"\b(400|404)\b", comment)
    return int(found[1]) if found else 200


def test_every_url_the_readme_shows_answers_as_it_says(server: str) -> None:
    urls = {}
    for line in README.splitlines():
        for url in URL.findall(line):
            urls[url.rstrip(".,")] = expected_status(line)
    feeds = [u for u in urls if "/feeds/" in u]
    assert len(feeds) >= 8, urls  # latest, a date, topics, a topic page, the errors ...
    with httpx.Client() as client:
        for url, status in sorted(urls.items()):
            response = client.get(url.replace(EXAMPLE_BASE, server))
            assert response.status_code == status, (url, response.text[:200])
            if status != 200:
                assert response.json()["status"] == status
        # Paging back through the bundled topic: the head links to page 1, which links back.
        head = client.get(f"{server}/feeds/topics/russian-invasion-of-ukraine.json").json()
        assert head["next_url"] == f"{server}/feeds/topics/russian-invasion-of-ukraine/pages/1.json"
        page = client.get(f"{server}/feeds/topics/russian-invasion-of-ukraine/pages/1.atom").text
        assert f'href="{server}/feeds/topics/russian-invasion-of-ukraine.atom" rel="previous"' in page


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's examples use curl")
def test_the_readme_shell_examples_run_as_written(server: str, tmp_path: Path) -> None:
    blocks = shell_blocks(section("## URLs"))  # with its Headers and History parts
    assert len(blocks) == 2
    # As typed at a prompt: the archive walk ends on a grep that finds nothing (no `set -e`).
    script = "\n".join(blocks).replace(EXAMPLE_BASE, server)
    done = subprocess.run(
        ["bash", "-c", script], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert not done.stderr, done.stderr
    out = done.stdout
    assert out.count("HTTP/1.1 304 Not Modified") == 2, out
    assert '{"error":"malformed date \'2023-02-30\': use YYYY-MM-DD","status":400}' in out
    assert '{"error":"no topic \'no-such-topic\'","status":404}' in out
    assert "content-encoding: br" in out and (tmp_path / "latest.atom.br").stat().st_size > 0
    # The archive walk meets latest and every day with events, once each.
    walked = re.findall(re.escape(server) + r"/feeds/(?:latest|dates/\d{4}-\d\d-\d\d)\.atom$", out, re.MULTILINE)
    assert walked[0] == f"{server}/feeds/latest.atom" and len(walked) == len(set(walked)) > 30
    assert f'"next_url":"{server}/feeds/topics/russian-invasion-of-ukraine/pages/1.json"' in out
    assert 'rel="previous"' in out
