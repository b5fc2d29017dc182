"""Settings of a `feeds` process (server worker, refresh, ingest) that no module owns."""

from __future__ import annotations

import gc

# CPython collects its youngest generation every 700 net allocations of container objects. A
# refresh that re-renders a few documents allocates ~100,000 short-lived ones (rows, pages,
# entries), which made ~150 collections per refresh, among them full ones over everything the
# process keeps (a directory source's file list, the entry memo): 50-110 ms of a refresh at
# 400,000 events, one pause alone up to 57 ms (benchmarks/README.md). Almost nothing a refresh
# allocates forms cycles, so collecting 30 times less often costs little memory.
GC_THRESHOLDS = (20_000, 20, 20)


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
