from __future__ import annotations

import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from feeds.config import Settings, SourceConfig
from feeds.store import Store
from tests.frontends import free_port

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "example"
DATA = Path(__file__).resolve().parent / "data"
# Real archive pages (CC BY-SA 3.0; tests/data/offstream/NOTICE.md names their source and commits).
OFFSTREAM = DATA / "offstream"
OFFSTREAM_ZH = DATA / "offstream-zh"  # the Chinese archive
EVENT_PAGE = DATA / "event-page.md"
SAMPLE_RELPATH = (
    "news/2017/09/28/the-islamic-state-of-iraq-and-the-levant-releases-footage-which-apparently-show-its-"
    "leader-abu-bakr-al-baghdadi-urging-his-followers-to-expa.md"
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A writable copy of the bundled example tree."""
    root = tmp_path / "tree"
    shutil.copytree(EXAMPLE / "news", root / "news")
    return root


@pytest.fixture
def settings(tmp_path: Path, tree: Path) -> Settings:
    return Settings(
        base_url="http://feeds.test",
        database=str(tmp_path / "feeds.db"),
        refresh_interval=60,
        items_per_feed=20,
        sources=(SourceConfig(name="example", kind="directory", location=str(tree)),),
        rate_limit=0.0,  # tests walk every document at once; tests/test_ratelimit.py sets its own
    )


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    s = await Store.open(settings.database)
    yield s
    await s.close()


class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a thread (httpx's serve_in_thread pattern)."""

    def __init__(self, app: object, port: int | None = None, **options: Any) -> None:
        self.port = port or free_port()
        self.server = uvicorn.Server(
            # As `feeds serve` runs it: X-Forwarded-For is the app's to read (trusted_proxies).
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
                proxy_headers=False,
                **options,
            )
        )  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live() -> Iterator[type[LiveServer]]:
    yield LiveServer


def with_base(settings: Settings, url: str) -> Settings:
    return replace(settings, base_url=url)
