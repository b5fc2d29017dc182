"""Errors cross process boundaries whole: a bulk load reads and parses in other processes, and what
they raise must reach the command that reports it, message and fields intact."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from feeds.errors import ConfigError, FeedsError, ParseError, SourceError


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
    assert done.stderr.strip().splitlines() == [
        f"Error: source {tmp_path / 'empty'}: {tmp_path / 'empty'} has no news/ directory"
    ]
