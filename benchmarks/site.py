#!/usr/bin/env python3
"""The site's documents served from the cache, against a cached topic feed measured in the same run:
a topic's page, a combined feed and a search feed (made on their first request, then kept) cost no
more per request than the feed. And how long a first search takes on a store (`--database`, e.g.
the 400,000-event store `benchmarks/ingest.py --keep` leaves).

    .venv/bin/python benchmarks/site.py                       # 2,000 events, 5 rounds x 4 documents x 5 s
    .venv/bin/python benchmarks/site.py --quick               # smoke run
    .venv/bin/python benchmarks/site.py --search-only --database /tmp/.../feeds.db

One `feeds serve` process (pinned to one CPU, wrk to the other), `wrk -t1 -c32` with
`Accept-Encoding: gzip`, alternating documents each round; medians of requests/s and the ratio
of each document to the feed. First searches: each query's first request (nothing kept), medians
of distinct queries. A dated line is appended to RESULTS.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import record
from serve import LUA, free_port, pick_feed, pinned, prepare, run_wrk, start, stop, wait_ready, workdir

WORDS = ("war", "election", "president", "earthquake", "minister", "court", "protest", "storm", "oil", "vote")


def documents(database: Path) -> dict[str, str]:
    """The paths measured: a topic feed and its page, a combined feed of it and another topic, a search."""
    slug = pick_feed(database)[0].removeprefix("topics/")
    conn = sqlite3.connect(database)
    other = conn.execute("SELECT slug FROM topics WHERE slug != ? ORDER BY events DESC LIMIT 1", (slug,)).fetchone()[0]
    conn.close()
    pair = "+".join(sorted((slug, other)))
    return {
        "feed": f"/feeds/topics/{slug}.atom",
        "page": f"/topics/{slug}",
        "combined": f"/feeds/topics/{pair}.atom",
        "search": "/feeds/search.atom?q=president",
    }


def first_searches(port: int, count: int) -> list[float]:
    """Milliseconds of the first request of `count` distinct queries (none made before)."""
    times = []
    for n in range(count):
        query = f"{WORDS[n % len(WORDS)]}{'*' if n >= len(WORDS) else ''}"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        started = time.perf_counter()
        conn.request("GET", f"/feeds/search.atom?q={query}")
        response = conn.getresponse()
        response.read()
        times.append((time.perf_counter() - started) * 1000)
        conn.close()
        if response.status != 200:
            raise SystemExit(f"search {query!r} answered {response.status}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--database", type=Path, help="measure first searches on this store instead")
    parser.add_argument("--search-only", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds, args.duration = 300, 1, 1
    with workdir(None) as work:
        if args.database:
            database = args.database
            env = dict(
                os.environ,
                FEEDS_DATABASE=str(database),
                FEEDS_REFRESH_INTERVAL="86400",
                FEEDS_ACCESS_LOG="off",
                FEEDS_RATE_LIMIT="0",
            )
            env.pop("FEEDS_SOURCES", None)
            env["FEEDS_CONFIG"] = str(work / "none.toml")
            (work / "none.toml").write_text("")
        else:
            database, env = prepare(work, args.events, 1)
        port = free_port()
        env["FEEDS_BASE_URL"] = f"http://127.0.0.1:{port}"
        argv = [*pinned(0), sys.executable, "-m", "feeds", "serve", "--port", str(port)]
        server = start("feeds", argv, env, port, work)
        try:
            wait_ready(server, "/healthz", timeout=600)
            searches = first_searches(port, 10)
            line = (
                f"first searches over {_count(database):,} events: median {statistics.median(searches):.1f} ms "
                f"(max {max(searches):.1f}, 10 queries)"
            )
            if args.search_only:
                print(record(f"site.py --search-only --database ({_count(database):,} events)", line))
                return 0
            paths = documents(database)
            script = work / "gzip.lua"
            script.write_text(LUA.format(headers='wrk.headers["Accept-Encoding"] = "gzip"'), "utf-8")
            for path in paths.values():  # made and kept before measuring
                wait_ready(server, path)
            rates: dict[str, list[float]] = {name: [] for name in paths}
            sizes: dict[str, float] = {}  # bytes a response (larger bodies cost more to send)
            for _ in range(args.rounds):
                for name, path in paths.items():
                    stats = run_wrk(f"{server.base}{path}", script, 1, 32, args.duration, 1)
                    rates[name].append(stats["requests"] / (stats["duration_us"] / 1e6))
                    sizes[name] = stats["bytes"] / max(1, stats["requests"])
        finally:
            stop(server)
    medians = {name: statistics.median(r) for name, r in rates.items()}
    print(json.dumps({"paths": paths, "requests_per_s": medians}, indent=2))
    ratios = ", ".join(
        f"{n} {medians[n]:,.0f} req/s ({medians[n] / medians['feed']:.2f}, {sizes[n] / 1000:.1f} KB)" for n in medians
    )
    print(record(f"site.py --events {args.events} --rounds {args.rounds}", f"cached, gzip: {ratios}; {line}"))
    return 0


def _count(database: Path) -> int:
    conn = sqlite3.connect(database)
    try:
        return int(conn.execute("SELECT count(*) FROM events WHERE live").fetchone()[0])
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
