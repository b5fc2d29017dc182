"""What `trim_heap` (called by `Store.release_memory` before a process waits) hands back to the
kernel after a thread freed ~80 MB of small blocks, against the same churn left untrimmed, both
measured in fresh processes in the same run. Medians of `--runs`; a dated line goes to RESULTS.md.

    .venv/bin/python benchmarks/memory.py [--runs 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import record


def churn_then(trim: bool) -> tuple[int, int]:
    """Resident MB after a thread freed 80 MB below glibc's mmap threshold, then after trimming
    (or not)."""
    import threading

    import psutil

    from feeds.process import trim_heap

    def resident_mb() -> int:
        return int(psutil.Process().memory_info().rss) >> 20

    kept: list[bytes] = []

    def churn() -> None:
        blocks = [b"x" * 100_000 for _ in range(800)]
        kept.append(blocks[-1])  # the newest stays, so the freed ones lie below it
        del blocks

    thread = threading.Thread(target=churn)
    thread.start()
    thread.join()
    before = resident_mb()
    if trim:
        trim_heap()
    return before, resident_mb()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if sys.platform != "linux":
        print("glibc's malloc_trim: Linux only", file=sys.stderr)
        return 2
    context = multiprocessing.get_context("spawn")
    freed: dict[bool, list[int]] = {True: [], False: []}
    for _ in range(args.runs):
        for trim in (False, True):
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                before, after = pool.submit(churn_then, trim).result()
            freed[trim].append(before - after)
    trimmed, untrimmed = statistics.median(freed[True]), statistics.median(freed[False])
    print(
        record(
            f"memory.py --runs {args.runs}",
            f"resident MB handed back after a thread freed 80 MB: trim_heap {trimmed:.0f}, "
            f"untrimmed baseline {untrimmed:.0f}",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
