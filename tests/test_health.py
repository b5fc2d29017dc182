"""`/healthz` as a load balancer and an operator read it: per source its last success, last error
and since when it has been failing; `degraded` (200) while one fails; 503 when the store cannot be
read."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import httpx

from feeds.app import create_app
from feeds.config import Settings, SourceConfig
from feeds.store import Store
from tests.conftest import LiveServer
from tests.helpers import refresh_once


async def test_a_failing_source_makes_the_server_degraded_with_its_error_and_since_when(
    store: Store, settings: Settings, tree: Path, tmp_path: Path
) -> None:
    later = tmp_path / "later"
    settings = replace(
        settings, sources=(*settings.sources, SourceConfig(name="later", kind="directory", location=str(later)))
    )
    await refresh_once(store, settings)
    await refresh_once(store, settings)  # failing again: still failing since the first time
    with LiveServer(create_app(settings, scheduler=False)) as server:
        degraded = httpx.get(f"{server.url}/healthz")
        assert degraded.status_code == 200 and degraded.headers["cache-control"] == "no-store"
        body = degraded.json()
        assert body["status"] == "degraded" and body["events"] == 59
        example, failing = body["sources"]["example"], body["sources"]["later"]
        assert example["failing_since"] is None and example["last_error"] is None
        assert dt.datetime.fromisoformat(example["last_success"]) > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        assert failing["last_success"] is None
        assert failing["last_error"] == f"source later: {later} has no news/ directory"
        at = dt.datetime.fromisoformat
        assert at(failing["failing_since"]) <= at(
            failing["last_error_at"]
        )  # since the first of two failed runs (whole seconds)

        shutil.copytree(tree / "news", later / "news")
        await refresh_once(store, settings)
        recovered = httpx.get(f"{server.url}/healthz").json()
        assert recovered["status"] == "ok"
        later_now = recovered["sources"]["later"]
        assert later_now["failing_since"] is None and at(later_now["last_success"]) >= at(failing["last_error_at"])
        assert later_now["last_error"] == failing["last_error"]  # the last error stays on record


async def test_a_store_that_cannot_be_read_answers_503(store: Store, settings: Settings) -> None:
    await refresh_once(store, settings)
    with LiveServer(create_app(settings, scheduler=False)) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        with sqlite3.connect(settings.database) as damage:  # a store whose events are gone
            damage.execute("DROP TABLE events")
        broken = httpx.get(f"{server.url}/healthz")
        assert broken.status_code == 503
        assert broken.json() == {"error": "the store cannot be read: no such table: events", "status": 503}
        assert httpx.get(f"{server.url}/feeds/latest.atom").status_code == 200  # what is rendered is still served
