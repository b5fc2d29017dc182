"""The one way a benchmark records a run: a dated table row appended to RESULTS.md."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def record(command: str, result: str) -> str:
    """Append `| date | command | result |` to RESULTS.md and return the row."""
    row = f"| {dt.date.today().isoformat()} | {command} | {result} |"
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(row + "\n")
    return row
