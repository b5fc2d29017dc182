"""`/metrics` in Prometheus text format (prometheus-client): requests by route, status and
encoding (the share of 304s is `status="304"` over all), refresh durations, events stored,
source failures, and what the bounded caches of each server process hold beside its resident
memory (so a growing process can be told from caches filling up to their bounds).

With several server processes (`feeds serve --workers N`) each writes its samples to files in a
directory the parent made (PROMETHEUS_MULTIPROC_DIR, the client's multiprocess mode): whichever
process answers sums them all. The gauges of each process are brought up to date every few
seconds, off the request path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import resource
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter("feeds_requests", "HTTP requests answered", ["route", "status", "encoding"])
REFRESH_SECONDS = Histogram(
    "feeds_refresh_seconds",
    "Scheduled refreshes: reading sources, storing, rendering",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
EVENTS = Counter("feeds_events_stored", "Events stored by refreshes, by kind of change", ["kind"])
MADE_ON_REQUEST = Histogram(
    "feeds_made_on_request_seconds",
    "Documents rendered on their first request (every format, stored), by how long it took",
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
SOURCE_FAILURES = Counter("feeds_source_failures", "Refreshes of a source that failed", ["source"])
CACHE_BYTES = Gauge(
    "feeds_cache_bytes", "Bytes a bounded cache holds, over server processes", ["cache"], multiprocess_mode="livesum"
)
CACHE_LIMIT = Gauge(
    "feeds_cache_limit_bytes", "The bound of each cache, over server processes", ["cache"], multiprocess_mode="livesum"
)
SQLITE_BYTES = Gauge(
    "feeds_sqlite_memory_bytes",
    "Memory SQLite holds (page caches, statements), over server processes",
    multiprocess_mode="livesum",
)
RESIDENT = Gauge("feeds_resident_bytes", "Resident memory of the server processes", multiprocess_mode="livesum")

# Routes by their first path segment: a bounded set of labels whatever is requested.
_ROUTES = {"feeds", "topics", "topics.json", "news", "changes", "search", "opml", "static", "healthz", "metrics"}


@functools.lru_cache(maxsize=4096)  # the same paths are asked again and again
def route_of(path: str) -> str:
    first = path.split("/", 2)[1] if path.count("/") else ""
    return "home" if not first else first if first in _ROUTES else "other"


# Requests counted in a plain dict on the request path (a prometheus-client counter costs a lock
# and a lookup per increment), moved into REQUESTS every few seconds and before /metrics answers.
_COUNTS: dict[tuple[str, int, str | None], int] = {}


def count(path: str, status: int, encoding: str | None) -> None:
    key = (route_of(path), status, encoding)
    _COUNTS[key] = _COUNTS.get(key, 0) + 1


def flush_counts() -> None:
    counts = dict(_COUNTS)
    _COUNTS.clear()
    for (route, status, encoding), n in counts.items():
        REQUESTS.labels(route, str(status), encoding or "identity").inc(n)


def _memory_used() -> Any:
    """sqlite3_memory_used of the library Python loaded, or None where it cannot be found."""
    name = ctypes.util.find_library("sqlite3")
    try:
        function = ctypes.CDLL(name).sqlite3_memory_used if name else None
    except (OSError, AttributeError):
        return None
    if function is not None:
        function.restype = ctypes.c_int64
    return function


_MEMORY_USED = _memory_used()


def sqlite_memory() -> int:
    """What SQLite holds in this process (page caches, statements), or 0 where it cannot be asked."""
    return int(_MEMORY_USED()) if _MEMORY_USED is not None else 0


def resident() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def observe(caches: dict[str, tuple[int, int]]) -> None:
    """This process's figures now: its requests counted since the last time, each cache's (bytes
    held, bound), SQLite's memory, resident memory."""
    flush_counts()
    for name, (held, bound) in caches.items():
        CACHE_BYTES.labels(name).set(held)
        CACHE_LIMIT.labels(name).set(bound)
    SQLITE_BYTES.set(sqlite_memory())
    RESIDENT.set(resident())


async def metrics(request: Request) -> Response:
    observe(request.app.state.caches())
    registry: Any
    if MULTIPROCESS in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        from prometheus_client import REGISTRY as registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST, headers={"cache-control": "no-store"})
