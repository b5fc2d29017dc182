"""Errors cross process boundaries whole: a bulk load reads and parses in other processes, and what
they raise must reach the command that reports it, message and fields intact."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from feeds.errors import ConfigError, FeedsError, ParseError, SourceError
from tests.conftest import EXAMPLE, free_port
from tests.helpers import not_logged


@pytest.mark.parametrize(
    "error",
    [
        ParseError("news/2018/01/1/x.md", "not a date: '2018-13-1'", "date"),
        ParseError("news/2018/01/1/x.md", "no headline (# ...)"),
        ConfigError("port", "must be an integer", "config/feeds.toml"),
        SourceError("archive", "no news/ directory in /srv/archive"),
    ],
)
def test_errors_survive_pickling(error: FeedsError) -> None:
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error) and vars(again) == vars(error)


def test_a_source_failing_in_the_reading_process_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    config = tmp_path / "feeds.toml"
    config.write_text('base_url = "http://feeds.test"\n')
    done = subprocess.run(
        [sys.executable, "-m", "feeds", "--config", str(config), "ingest", str(tmp_path / "empty"), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "FEEDS_DATABASE": str(tmp_path / "feeds.db")},
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "BrokenProcessPool" not in done.stderr
    assert not_logged(done.stderr) == [
        f"Error: source {tmp_path / 'empty'}: {tmp_path / 'empty'} has no news/ directory"
    ]


@pytest.mark.parametrize("command", ["serve", "ingest", "refresh"])
@pytest.mark.parametrize("store", ["not-sqlite", "under-a-file"])
def test_a_store_that_cannot_be_opened_is_one_line(tmp_path: Path, command: str, store: str) -> None:
    """A database file that is not SQLite, or a path whose folder is a file: every command says so
    in one line and exits non-zero (a server before starting any worker), and the file is untouched."""
    (tmp_path / "junk.db").write_bytes(b"not a database, whatever its name says\n" * 100)
    (tmp_path / "plain").write_text("a file, not a folder\n")
    database = tmp_path / ("junk.db" if store == "not-sqlite" else "plain/feeds.db")
    config = tmp_path / "feeds.toml"
    config.write_text(f'[[sources]]\nname = "example"\nlocation = "{EXAMPLE}"\n')
    args = {"serve": ["serve", "--port", str(free_port())], "ingest": ["ingest", str(EXAMPLE), "--no-progress"]}
    done = subprocess.run(
        [sys.executable, "-m", "feeds", "--config", str(config), *args.get(command, [command])],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "FEEDS_DATABASE": str(database)},
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = not_logged(done.stderr)
    assert len(errors) == 1 and errors[0].startswith(f"Error: store: unable to open {database}: "), done.stderr
    assert (tmp_path / "junk.db").read_bytes() == b"not a database, whatever its name says\n" * 100


def test_a_missing_named_config_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "feeds", "--config", str(tmp_path / "nope.toml"), "refresh"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"Error: {tmp_path / 'nope.toml'}: config file: no such file"]


def test_a_worker_that_cannot_start_stops_the_server_with_its_reason(tmp_path: Path) -> None:
    """Under uvicorn's supervisor (what `feeds serve --workers N` runs), a worker whose store cannot
    be opened once crash-looped while the log said "Uvicorn running": now it writes its reason where
    `feeds serve` reads it and the whole server stops."""
    (tmp_path / "junk.db").write_bytes(b"not a database\n" * 100)
    failure = tmp_path / "failure.txt"
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "feeds.app:app_from_environment", "--factory", "--workers", "2"]
    done = subprocess.run(
        [*command, "--port", str(port), "--host", "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "FEEDS_DATABASE": str(tmp_path / "junk.db"),
            "FEEDS_SOURCES": str(EXAMPLE),
            "FEEDS_START_FAILURE": str(failure),
        },
        cwd=tmp_path,
    )
    reasons = set(failure.read_text().splitlines())
    assert reasons == {f"store: unable to open {tmp_path / 'junk.db'}: file is not a database"}, done.stderr
    assert done.stderr.count("Started server process") <= 4, done.stderr  # no crash loop


def _unprivileged() -> list[str]:
    """A prefix that runs a command without the powers that let root write anywhere: as root,
    setpriv drops CAP_DAC_OVERRIDE (and its kin) from what the command can have, so file modes apply."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--inh-caps=-all"]


@pytest.mark.parametrize("command", ["serve", "ingest", "refresh"])
@pytest.mark.parametrize("case", ["new-in-read-only-folder", "existing-in-read-only-folder", "read-only-file"])
def test_a_store_that_cannot_be_written_is_one_line(tmp_path: Path, command: str, case: str) -> None:
    """A store where nothing can be written: one line naming the file and SQLite's reason, a non-zero
    exit, no traceback (ingest once printed "Event loop is closed" first), and an existing store
    keeps every byte."""
    folder = tmp_path / "store"
    folder.mkdir()
    database = folder / "feeds.db"
    env = {"PATH": "/usr/bin:/bin", "FEEDS_DATABASE": str(database), "FEEDS_SOURCES": str(EXAMPLE)}
    feeds = [sys.executable, "-m", "feeds"]
    if case != "new-in-read-only-folder":
        subprocess.run([*feeds, "ingest", str(EXAMPLE), "--no-progress"], env=env, check=True, capture_output=True)
    before = database.read_bytes() if database.exists() else None
    (database if case == "read-only-file" else folder).chmod(0o444 if case == "read-only-file" else 0o555)
    args = {"serve": ["serve", "--port", str(free_port())], "ingest": ["ingest", str(EXAMPLE), "--no-progress"]}
    try:
        done = subprocess.run(
            [*_unprivileged(), *feeds, *args.get(command, [command])],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
    finally:
        folder.chmod(0o755)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = not_logged(done.stderr)
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("Error: store: ") and errors[0].endswith(
        ("unable to open database file", "attempt to write a readonly database")
    ), errors
    if case == "new-in-read-only-folder":
        assert errors[0] == f"Error: store: unable to open {database}: unable to open database file"
    else:
        assert database.read_bytes() == before


def test_an_address_in_use_is_one_line(tmp_path: Path) -> None:
    """Another program on the port: one line naming the address, exit 1, no traceback (uvicorn's
    error used to be followed by the stopped scheduler's CancelledError traceback)."""
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = subprocess.run(
            [sys.executable, "-m", "feeds", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "FEEDS_DATABASE": str(tmp_path / "feeds.db"), "FEEDS_SOURCES": str(EXAMPLE)},
        )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    errors = not_logged(done.stderr)
    assert errors == [f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"], done.stderr
