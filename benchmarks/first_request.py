"""The first request of a document never asked for: how long until its answer, against a request
for a document already made (the same server, the same run).

    .venv/bin/python benchmarks/first_request.py --config /tmp/big/feeds.toml   # a loaded store
    .venv/bin/python benchmarks/first_request.py --events 20000                  # builds one first
    .venv/bin/python benchmarks/first_request.py --quick

Starts `feeds serve` on the store (access log off, no refresh), picks `--samples` documents that
have no current rendition (older days, older topic pages, heads of quiet topics; seeded), asks
each once in a random format (RSS, Atom, JSON Feed, the HTML page) and encoding (identity, gzip,
Brotli), one after another, and times each answer; then asks as many times for documents it has
made (served from memory). Prints p50/p99 of both; appends a row to RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from ingest import free_port, run_ingest, write_config
from results import record

from feeds.config import Settings
from feeds.publish import every_key
from feeds.render import feed_url, page_url
from feeds.store import Store

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
ENCODINGS = ("identity", "gzip", "br")
FORMATS = ("rss", "atom", "json", "html")


def cold_names(database: str, items_per_feed: int) -> list[str]:
    async def run() -> list[str]:
        store = await Store.open(database)
        try:
            keys = await every_key(store, Settings(items_per_feed=items_per_feed))
        finally:
            await store.close()
        with sqlite3.connect(database) as conn:
            current = {f for (f,) in conn.execute("SELECT DISTINCT feed FROM renditions WHERE stale = 0")}
        return sorted(k.name for k in keys if k.name not in current)

    return asyncio.run(run())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("feeds serve exited")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("feeds serve did not start")


def timed(client: httpx.Client, path: str, encoding: str) -> float:
    start = time.perf_counter()
    response = client.get(path, headers={"Accept-Encoding": encoding})
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"{path}: {response.status_code} {response.text[:200]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="the feeds.toml of a loaded store")
    parser.add_argument("--events", type=int, default=20000, help="without --config: corpus size to build")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2,000 events, 40 samples")
    args = parser.parse_args()
    if args.quick:
        args.events, args.samples = 2000, 40
    if args.config is None:
        work = Path(tempfile.mkdtemp(prefix="feeds-first-request-"))
        corpus = work / "corpus"
        subprocess.run(
            [
                *(PYTHON, str(ROOT / "benchmarks/generate_corpus.py"), "--events", str(args.events)),
                *("--out", str(corpus), "--no-progress", "--verify", "0"),
            ],
            check=True,
        )
        args.config = write_config(work, free_port())
        run_ingest(args.config, corpus)
    text = args.config.read_text()
    database = str((args.config.parent / re.search(r'database = "([^"]+)"', text)[1]).resolve())  # type: ignore[index]
    size = int(m[1]) if (m := re.search(r"items_per_feed = (\d+)", text)) else Settings().items_per_feed
    names = cold_names(database, size)
    rng = random.Random(args.seed)
    sample = rng.sample(names, min(args.samples, len(names)))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env_config = args.config.parent / "first-request.toml"
    # The store's own settings (those that shape documents unchanged: nothing is rendered again at
    # start), on another port.
    env_config.write_text(
        re.sub(r'database = "[^"]+"', f'database = "{database}"', re.sub(r"^port = .*$", "", text, flags=re.M))
        + f"\nport = {port}\n"
    )
    server = subprocess.Popen([PYTHON, "-m", "feeds", "--config", str(env_config), "serve"], stderr=subprocess.DEVNULL)
    try:
        wait_ready(base, server)
        first: list[float] = []
        asked: list[tuple[str, str]] = []
        with httpx.Client(base_url=base, timeout=60) as client:
            for name in sample:
                fmt, encoding = rng.choice(FORMATS), rng.choice(ENCODINGS)
                path = page_url("", name) if fmt == "html" else feed_url("", name, fmt)
                first.append(timed(client, path, encoding))
                asked.append((path, encoding))
            again = [timed(client, path, encoding) for path, encoding in asked]
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = {
        "cold_documents": len(names),
        "samples": len(first),
        "first_p50_ms": round(statistics.median(first) * 1000, 1),
        "first_p99_ms": round(percentile(first, 0.99) * 1000, 1),
        "made_p50_ms": round(statistics.median(again) * 1000, 2),
        "made_p99_ms": round(percentile(again, 0.99) * 1000, 2),
    }
    print(json.dumps(result, indent=2))
    record(
        f"first_request.py ({len(names):,} documents not made yet; {len(first)} asked once, random format and encoding)",
        f"first request p50 **{result['first_p50_ms']} ms**, p99 **{result['first_p99_ms']} ms**; the same documents "
        f"asked again (made, from memory) p50 {result['made_p50_ms']} ms, p99 {result['made_p99_ms']} ms",
    )


if __name__ == "__main__":
    main()
