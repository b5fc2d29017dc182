"""Settings of a `feeds` process (server worker, refresh, ingest) that no module owns."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import time
from collections.abc import Callable, Iterator

# Libraries that log routine work at INFO (APScheduler: two lines per job run, every few seconds).
QUIET_LOGGERS = ("apscheduler", "httpx", "httpcore")  # a line per job run, per request made


class _NotSkips(logging.Filter):
    """APScheduler warns when a refresh is due while the last still runs; runs taking turns is the
    design (`max_instances=1`, `coalesce`), not something an operator acts on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


def configure_logging(verbose: bool = False, libraries: bool = False) -> None:
    """One line per record, each with its UTC time as access lines have it. `feeds.*` at INFO
    (DEBUG when `verbose`); libraries at INFO, the chatty ones at WARNING, all of them at DEBUG
    only when `libraries` is asked for (aiosqlite alone writes a line per SQL statement)."""
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    logging.basicConfig(level=logging.DEBUG if libraries else logging.INFO, handlers=[handler])
    logging.getLogger("feeds").setLevel(logging.DEBUG if verbose or libraries else logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if libraries else logging.WARNING)
    if not any(isinstance(f, _NotSkips) for f in logging.getLogger("apscheduler.scheduler").filters):
        logging.getLogger("apscheduler.scheduler").addFilter(_NotSkips())


# A refresh allocates many short-lived containers and few cycles: collect less often (docs/architecture.md).
GC_THRESHOLDS = (20_000, 20, 20)


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)


@contextlib.contextmanager
def few_malloc_arenas(arenas: int = 2) -> Iterator[None]:
    """Processes started inside this block get `arenas` malloc arenas instead of glibc's eight per
    core (it reads MALLOC_ARENA_MAX when a process starts). Threads that allocate and free large
    buffers (compression, file reads, SQLite's page cache) otherwise each keep a few tens of MB
    of freed memory in an arena of their own."""
    before = os.environ.get("MALLOC_ARENA_MAX")
    os.environ["MALLOC_ARENA_MAX"] = before or str(arenas)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MALLOC_ARENA_MAX", None)


def _libc_malloc_trim() -> Callable[[int], int] | None:
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)  # the symbols the process has: libc's
    except (OSError, TypeError):  # no such lookup on this platform
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def trim_heap() -> None:
    """Hand freed heap back to the kernel (glibc; elsewhere nothing happens). glibc keeps what a
    thread freed in that thread's arena: the page caches of a store's connection threads stay
    resident after SQLite frees them. benchmarks/memory.py measures it."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
