"""Run as an operator runs it: commands started outside the repository say what they run with,
misspelt settings are named with the closest one, log lines carry their time and `-v` shows this
program's debug lines, not its libraries'."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from feeds import config
from feeds.config_names import unknown_variables
from feeds.errors import ConfigError
from tests.conftest import free_port
from tests.helpers import wait_for

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")  # UTC, as access lines have it


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any FEEDS_* variable, plus `extra`."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FEEDS_")} | extra


def feeds(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feeds", *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_commands_started_outside_the_repository_say_what_they_run_with(tmp_path: Path) -> None:
    """No config/feeds.toml here: the first line says so, names the new store, no sources and the
    base URL; refresh warns and fails (it once printed "0 new" and exited 0), ingest of a folder
    with nothing to read fails with one line."""
    refresh = feeds(tmp_path, "refresh")
    lines = refresh.stderr.splitlines()
    assert refresh.returncode == 1, refresh.stderr
    assert STAMP.match(lines[0]) and lines[0].endswith(
        f"INFO feeds.cli: refresh: config none: defaults; database {tmp_path.resolve()}/var/feeds.db (new); "
        "sources: none; base URL http://127.0.0.1:8000"
    ), lines
    assert "WARNING feeds.cli: no source configured: nothing is refreshed" in lines[1], lines
    assert refresh.stdout == ""
    (tmp_path / "empty").mkdir()
    ingest = feeds(tmp_path, "ingest", "empty")
    assert ingest.returncode == 1
    assert "INFO feeds.cli: ingest: config none: defaults; database" in ingest.stderr.splitlines()[0]
    assert (
        ingest.stderr.splitlines()[-1]
        == f"Error: source {tmp_path.resolve()}/empty: {tmp_path.resolve()}/empty has no news/ directory"
    )


def test_serve_without_a_source_warns_and_every_line_has_its_time(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "feeds", "serve"],
            cwd=tmp_path,
            env=clean_env(FEEDS_PORT=str(port), FEEDS_REFRESH_INTERVALL="5"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(server, f"http://127.0.0.1:{port}/healthz")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    lines = log.read_text().splitlines()
    assert (
        f"serve: config none: defaults and FEEDS_* variables; database {tmp_path.resolve()}/var/feeds.db (new)"
        in lines[0]
    )
    assert f"sources: none; base URL http://127.0.0.1:{port}" in lines[0]
    assert any(
        "WARNING feeds.cli: environment: FEEDS_REFRESH_INTERVALL names no setting and is ignored; "
        "did you mean FEEDS_REFRESH_INTERVAL?" in line
        for line in lines
    ), lines
    assert any("WARNING feeds.cli: no source configured" in line for line in lines), lines
    # uvicorn's own lines ("Started server process", "Uvicorn running on") too: every line has a time.
    assert any("Uvicorn running on" in line for line in lines) and all(STAMP.match(line) for line in lines), lines


def test_misspelt_keys_and_variables_are_named_with_the_closest_setting(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text("refresh_intervall = 60\n")
    with pytest.raises(ConfigError) as raised:
        config.load(path, env={})
    assert str(raised.value) == f"{path}: config refresh_intervall: unknown key; did you mean 'refresh_interval'?"
    path.write_text(f'[[sources]]\nname = "x"\nlocaton = "{tree}"\n')
    with pytest.raises(ConfigError, match=r"config sources\[0\].locaton: unknown key; did you mean 'location'\?$"):
        config.load(path, env={})
    path.write_text("colour = 1\n")
    with pytest.raises(ConfigError, match=r"config colour: unknown key \(README.md lists the settings\)$"):
        config.load(path, env={})
    # A variable that names no setting is reported, one warning each, with the closest variable.
    env = {"FEEDS_REFRESH_INTERVALL": "60", "FEEDS_PORT": "8001", "FEEDS_CONFIG": "x", "FEEDS_ZZZ": "1"}
    assert unknown_variables(env, ["refresh_interval", "port"]) == [
        "environment: FEEDS_REFRESH_INTERVALL names no setting and is ignored; did you mean FEEDS_REFRESH_INTERVAL?",
        "environment: FEEDS_ZZZ names no setting and is ignored",
    ]
    # With no config file at all, a bad variable is named as the variable (not config/feeds.toml).
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        config.load(None, env={"FEEDS_WORKERS": "0"})
    assert str(raised.value) == "environment: config FEEDS_WORKERS: must be positive"


def test_verbose_shows_this_programs_debug_lines_and_a_flag_the_libraries(tmp_path: Path, tree: Path) -> None:
    """An idle refresh is a debug line (nothing at INFO); `-v` shows it without aiosqlite's line
    per SQL statement, which `--debug-libraries` adds."""
    port = free_port()
    path = tmp_path / "feeds.toml"
    path.write_text(
        f'database = "feeds.db"\nport = {port}\nrefresh_interval = 1\n[[sources]]\nname = "example"\nlocation = "{tree}"\n'
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "feeds", "-v", "--config", str(path), "serve"],
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(server, f"http://127.0.0.1:{port}/feeds/latest.atom")
            deadline = time.monotonic() + 30
            while "DEBUG feeds.scheduler: refresh: 0 new" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    output = log.read_text()
    assert (
        "DEBUG feeds.scheduler: refresh: 0 new, 0 changed, 0 deleted events; 0 feeds to render; 0 feed files" in output
    ), output
    assert sum("INFO feeds.scheduler: refresh:" in line for line in output.splitlines()) == 1, output
    assert "aiosqlite" not in output and "DEBUG" in output
    both = feeds(tmp_path, "--debug-libraries", "--config", str(path), "topics")
    assert both.returncode == 0 and "DEBUG aiosqlite:" in both.stderr and STAMP.match(both.stderr)
