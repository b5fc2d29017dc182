"""A store that cannot be written (its disk is full) or is damaged: SQLite's errors said in one line,
with the store's path and what to do, and the integrity check run when a command starts."""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from feeds.errors import StoreDamaged, StoreError, StoreFull

log = logging.getLogger("feeds.store")

# `PRAGMA quick_check` reads the whole file: 1.4 s for 2.2 GB in the page cache, 22 s from a cold
# disk (docs/architecture.md). At start it checks what it can in this long; SQLite's own errors
# report damage met later.
QUICK_CHECK_SECONDS = 2.0

REBUILD = (
    "restore it from a backup, or move it away and rebuild it from the sources "
    "(`feeds refresh`, or `feeds ingest LOCATION`)"
)


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def full(path: str) -> StoreFull:
    where = Path(path).resolve().parent
    try:
        usage = shutil.disk_usage(where)
        space = f"{_size(usage.free)} free of {_size(usage.total)}"
    except OSError:
        space = "free space unknown"
    return StoreFull(
        f"store: the disk holding {path} is full ({where}: {space}): "
        "nothing was half-written; free space there, then run it again (a server retries at every refresh)"
    )


def damaged(path: str, detail: str) -> StoreDamaged:
    return StoreDamaged(f"store: {path} is damaged ({detail}): {REBUILD}")


def translate(exc: BaseException, path: str) -> StoreError | None:
    """What a SQLite error means for the store as a whole: its disk is full, or its file is
    damaged (None for anything else: a busy lock, a constraint, a bug)."""
    if not isinstance(exc, sqlite3.Error):
        return None
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith("SQLITE_FULL") or "database or disk is full" in text:
        return full(path)
    # Not SQLITE_NOTADB: a file that is not a store at all (a wrong path) is "unable to open", not
    # something to move away and rebuild.
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return damaged(path, text)
    if name.startswith("SQLITE_IOERR") or "disk I/O error" in text:
        # A write that cannot extend the log or its index on a full disk says "disk I/O error".
        try:
            if shutil.disk_usage(Path(path).resolve().parent).free < 1 << 20:
                return full(path)
        except OSError:
            pass
        return StoreError(f"store: {path}: {text}: check the disk it is on")
    return None


def quick_check(conn: sqlite3.Connection, path: str, seconds: float = QUICK_CHECK_SECONDS) -> None:
    """SQLite's `quick_check` for at most `seconds` (a large store is checked in part); raises
    StoreDamaged with what it found."""
    deadline = time.monotonic() + seconds
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            log.info("store: %s checked for %.0f s, not to its end; damage met later is reported", path, seconds)
            return
        raise damaged(path, str(exc)) from exc
    except sqlite3.DatabaseError as exc:
        raise damaged(path, str(exc)) from exc
    finally:
        conn.set_progress_handler(None, 0)
    found = " ".join(str(rows[0][0]).split()) if rows else "ok"
    if found != "ok":
        raise damaged(path, found)


@contextlib.contextmanager
def said(path: str) -> Iterator[None]:
    """SQLite errors that are about the store as a whole (`translate`) raised as StoreError."""
    try:
        yield
    except sqlite3.Error as exc:
        if (failure := translate(exc, path)) is None:
            raise
        raise failure from exc
