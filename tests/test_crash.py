"""Nothing lost, nothing stuck: `feeds ingest` and `feeds refresh` killed with SIGKILL while storing,
between storing and publishing, and while publishing; the next refresh (what a restarted server's
scheduler runs first) finishes the work with no manual step, and the store serves exactly what a
run that was never killed serves.

The kill is real: a `sitecustomize` module on the child's PYTHONPATH (test code, in a temporary
directory) wraps one store or publishing function in every process of the run, and the wrapper
sends SIGKILL to the run's whole process group at the chosen call."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, OFFSTREAM

FEEDS = [sys.executable, "-m", "feeds"]

KILLER = """
import os, signal

point, at = os.environ.get("CRASH_AT", ""), int(os.environ.get("CRASH_CALL", "1"))
if point:
    import feeds.publish
    import feeds.refresh
    from feeds.store import Store

    def _armed(fn):
        calls = [0]

        def wrapper(*args, **kwargs):
            calls[0] += 1
            if calls[0] == at:
                os.killpg(os.getpgid(0), signal.SIGKILL)
            return fn(*args, **kwargs)

        return wrapper

    if point == "storing":
        Store.apply = _armed(Store.apply)
        feeds.refresh.BATCH_SIZE = 7
    elif point == "publishing":
        Store.put_renditions = _armed(Store.put_renditions)
    elif point == "between":
        feeds.publish.publish_changes = _armed(feeds.publish.publish_changes)
        feeds.refresh.publish_changes = feeds.publish.publish_changes
"""


def tree_with(root: Path, days: tuple[str, ...]) -> None:
    shutil.copytree(EXAMPLE / "news", root / "news", dirs_exist_ok=True)
    for day in days:
        shutil.copytree(OFFSTREAM / day, root / day, dirs_exist_ok=True)


def setup(tmp_path: Path, name: str, days: tuple[str, ...]) -> tuple[Path, dict[str, str]]:
    """A source tree (its files' times fixed, so that every copy is the same source) and the
    environment of a config that reads it."""
    work = tmp_path / name
    tree = work / "tree"
    tree_with(tree, days)
    for n, file in enumerate(sorted(tree.rglob("*.md"))):
        os.utime(file, (1_600_000_000 + n * 60, 1_600_000_000 + n * 60))
    config = work / "feeds.toml"
    config.write_text(
        'base_url = "http://feeds.test"\nitems_per_feed = 5\n'
        f'[[sources]]\nname = "archive"\nkind = "directory"\nlocation = "{tree}"\n'
    )
    (work / "hooks").mkdir()
    (work / "hooks" / "sitecustomize.py").write_text(KILLER)
    env = {**os.environ, "FEEDS_CONFIG": str(config), "FEEDS_DATABASE": str(work / "feeds.db")}
    env["PYTHONPATH"] = os.pathsep.join([str(work / "hooks"), env.get("PYTHONPATH", "")])
    env.pop("CRASH_AT", None)
    return tree, env


def run(env: dict[str, str], *args: str, crash: str = "", call: int = 1) -> subprocess.CompletedProcess[str]:
    extra = {"CRASH_AT": crash, "CRASH_CALL": str(call)} if crash else {}
    return subprocess.run(
        [*FEEDS, *args], env={**env, **extra}, capture_output=True, text=True, timeout=300, start_new_session=True
    )


def served(env: dict[str, str]) -> dict[tuple[str, str], str]:
    """Every stored document (feed, format) -> its ETag; the store checked whole first."""
    conn = sqlite3.connect(env["FEEDS_DATABASE"])
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM pending").fetchone()[0] == 0
        return {(feed, fmt): etag for feed, fmt, etag in conn.execute("SELECT feed, fmt, etag FROM renditions")}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:
    """What a run never killed serves."""
    tmp = tmp_path_factory.mktemp("reference")
    tree, env = setup(tmp, "clean", ("news/2017/12/31", "news/2018/01/1"))
    done = run(env, "ingest", str(tree), "--no-progress")
    assert done.returncode == 0, done.stderr
    return served(env)


@pytest.mark.parametrize(("crash", "call"), [("storing", 3), ("between", 1), ("publishing", 2)])
def test_a_killed_ingest_is_finished_by_the_next_refresh(
    tmp_path: Path, reference: dict[tuple[str, str], str], crash: str, call: int
) -> None:
    tree, env = setup(tmp_path, crash, ("news/2017/12/31", "news/2018/01/1"))
    killed = run(env, "ingest", str(tree), "--no-progress", crash=crash, call=call)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = run(env, "refresh")
    assert again.returncode == 0, again.stderr
    assert served(env) == reference


@pytest.mark.parametrize(("crash", "call"), [("storing", 2), ("between", 1), ("publishing", 1)])
def test_a_killed_scheduled_refresh_is_finished_by_the_next(
    tmp_path: Path, reference: dict[tuple[str, str], str], crash: str, call: int
) -> None:
    tree, env = setup(tmp_path, crash, ("news/2017/12/31", "news/2018/01/1"))
    # The second day arrives after a first, complete refresh.
    day = tree / "news/2018/01/1"
    shutil.move(day, tmp_path / "later")
    first = run(env, "refresh")
    assert first.returncode == 0, first.stderr
    shutil.move(tmp_path / "later", day)
    killed = run(env, "refresh", crash=crash, call=call)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = run(env, "refresh")
    assert again.returncode == 0, again.stderr
    assert served(env) == reference
