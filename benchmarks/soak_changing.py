"""Serving while the source changes: no 5xx, no torn or empty document, memory flat.

    .venv/bin/python benchmarks/soak_changing.py                 # 10 minutes
    .venv/bin/python benchmarks/soak_changing.py --quick         # 40 seconds

A generated 2,000-event archive (`--events`) is ingested and served by `feeds serve --workers 2`
(both cores) with a directory source on it refreshed every 5 seconds, while
- an editor rewords one event page every 10 seconds (its headline), so its latest, day and topic
  feeds change under the load;
- wrk polls random stored documents in random encodings, unconditionally, on one connection per
  `--connections`;
- a checker polls random documents, half of them conditionally with the ETag it last saw, and
  checks every answer: 200 or 304 only; a 200 body non-empty and its ETag the SHA-256 of the
  plain bytes it decodes to (a torn document would not match); it reports its p50/p99.
Resident memory of the server (all processes) is sampled every `--every` seconds. A dated line is
appended to RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import record
from soak import LUA, free_port, rss_kib

from feeds.render import page_url

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


def edit_one(pages: list[Path], n: int) -> None:
    """Reword the headline of one event page in place, as an editor or a sync tool would."""
    page = pages[n % len(pages)]
    text = page.read_text("utf-8")
    page.write_text(re.sub(r"^# (.*?)(?: \(edit \d+\))?$", rf"# \1 (edit {n})", text, count=1, flags=re.M), "utf-8")


class Checker(threading.Thread):
    def __init__(self, base: str, paths: list[str], stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.base, self.paths, self.stop = base, paths, stop
        self.seen: dict[tuple[str, str], str] = {}
        self.latencies: list[float] = []
        self.counts = {"200": 0, "304": 0, "5xx": 0, "other": 0, "torn": 0, "empty": 0}
        self.bad: list[str] = []

    def run(self) -> None:
        rng = random.Random(2)
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                path, coding = rng.choice(self.paths), rng.choice(["identity", "gzip", "br"])
                headers = {"Accept-Encoding": coding}
                if rng.random() < 0.5 and (path, coding) in self.seen:
                    headers["If-None-Match"] = self.seen[path, coding]
                started = time.perf_counter()
                try:
                    response = client.get(path, headers=headers)
                except httpx.HTTPError as exc:
                    self.counts["other"] += 1
                    self.bad.append(f"{path}: {exc!r}")
                    continue
                self.latencies.append(time.perf_counter() - started)
                self.check(path, coding, response)

    def check(self, path: str, coding: str, response: httpx.Response) -> None:
        status = response.status_code
        if status >= 500:
            self.counts["5xx"] += 1
            self.bad.append(f"{path}: {status}")
        elif status == 304:
            self.counts["304"] += 1
        elif status != 200:
            self.counts["other"] += 1
            self.bad.append(f"{path}: {status}")
        elif not response.content:
            self.counts["empty"] += 1
            self.bad.append(f"{path}: empty body")
        else:
            self.counts["200"] += 1
            etag = response.headers["etag"]
            base = etag.strip('"').removesuffix("-gz").removesuffix("-br")
            if hashlib.sha256(response.content).hexdigest()[:32] != base:
                self.counts["torn"] += 1
                self.bad.append(f"{path} ({coding}): ETag {etag} is not the hash of the bytes served")
            self.seen[path, coding] = etag


def bounded_kib(base: str) -> int | None:
    """KiB the server's bounded caches and SQLite hold now, from its /metrics (summed over workers)."""
    try:
        text = httpx.get(f"{base}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith(("feeds_cache_bytes{", "feeds_sqlite_memory_bytes ")):
            total += float(line.rsplit(" ", 1)[1])
    return int(total / 1024)


def slope_of(samples: list[tuple[float, int]]) -> float:
    """KiB per minute of resident memory over (seconds, KiB) samples."""
    if len(samples) < 3:
        return 0.0
    return statistics.linear_regression([t / 60 for t, _ in samples], [r for _, r in samples]).slope


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--every", type=float, default=15, help="seconds between memory samples")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="40 seconds")
    parser.add_argument("--cache-bytes", type=int, help="cache_bytes of each server process (default: the setting's)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    if args.quick:
        args.minutes, args.every = 2 / 3, 5
    work = Path(tempfile.mkdtemp(prefix="feeds-soak-changing-"))
    try:
        corpus = work / "corpus"
        gen = [PYTHON, str(HERE / "generate_corpus.py"), "--events", str(args.events), "--out", str(corpus)]
        subprocess.run([*gen, "--no-progress", "--verify", "0"], check=True)
        port = free_port()
        config = work / "feeds.toml"
        config.write_text(
            f'database = "feeds.db"\nport = {port}\nrefresh_interval = 5\naccess_log = "off"\nrate_limit = 0\n'
            + (f"cache_bytes = {args.cache_bytes}\n" if args.cache_bytes else "")
            + f'[[sources]]\nname = "corpus"\nkind = "directory"\nlocation = "{corpus}"\n'
        )
        feeds = [PYTHON, "-m", "feeds", "--config", str(config)]
        subprocess.run(
            [*feeds, "ingest", str(corpus), "--name", "corpus", "--no-progress"], check=True, capture_output=True
        )
        conn = sqlite3.connect(f"file:{work / 'feeds.db'}?mode=ro", uri=True)
        names = [  # every document: its feeds and its page
            page_url("", f) if fmt == "html" else f"/feeds/{f}.{fmt}"
            for f, fmt in conn.execute("SELECT feed, fmt FROM renditions")
            if f[0] != "_"
        ]
        conn.close()
        (work / "paths.txt").write_text("".join(f"{p}\n" for p in names))
        (work / "soak.lua").write_text(LUA % {"paths": work / "paths.txt", "seed": 1})
        pages = sorted(p for p in corpus.rglob("*.md") if p.name != "index.md")
        random.Random(3).shuffle(pages)
        log = (work / "server.log").open("w")
        server = subprocess.Popen(
            [*feeds, "serve", "--workers", "2"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        stop = threading.Event()
        checker = Checker(base, names, stop)
        samples: list[tuple[float, int]] = []
        rest: list[tuple[float, int]] = []  # RSS less what the bounded caches and SQLite hold
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not start")
                time.sleep(0.2)
            seconds = int(args.minutes * 60)
            print(f"{len(names):,} documents; wrk -c{args.connections} and a checker for {seconds} s", flush=True)
            load = subprocess.Popen(
                ["wrk", "-t1", f"-c{args.connections}", f"-d{seconds}s", "-s", str(work / "soak.lua"), base],
                stdout=subprocess.PIPE,
                text=True,
            )
            checker.start()
            start, edits, next_edit, next_sample = time.monotonic(), 0, 0.0, args.every
            while load.poll() is None:
                now = time.monotonic() - start
                if now >= next_edit:
                    edit_one(pages, edits)
                    edits, next_edit = edits + 1, next_edit + 10
                if now >= next_sample:
                    samples.append((now, rss_kib(server.pid)))
                    held = bounded_kib(base)
                    if held is not None:
                        rest.append((now, samples[-1][1] - held))
                    print(
                        f"{now:6.0f} s  RSS {samples[-1][1] / 1024:7.1f} MiB  caches and SQLite "
                        f"{(held or 0) / 1024:7.1f} MiB  edits {edits}",
                        flush=True,
                    )
                    next_sample += args.every
                time.sleep(0.2)
            stop.set()
            checker.join(60)
            out = load.stdout.read() if load.stdout else ""
            wrk = json.loads(re.search(r"^WRK (\{.*\})$", out, re.M)[1])  # type: ignore[index]
        finally:
            stop.set()
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        steady = samples[len(samples) // 5 :] or samples
        slope, late_slope = (slope_of(steady), slope_of(samples[len(samples) // 2 :]))  # caches fill early
        # Bounded caches fill at a falling rate: the slope of each quarter shows whether it levels off.
        quarter = max(len(samples) // 4, 2)
        quarters = [round(slope_of(samples[i : i + quarter])) for i in range(0, len(samples) - 1, quarter)][:4]
        lat = sorted(checker.latencies)
        logged = [
            line for line in (work / "server.log").read_text().splitlines() if "feeds.scheduler: refresh:" in line
        ]
        refreshes = len(logged)
        changed = sum(int(m[1]) for line in logged if (m := re.search(r"(\d+) changed", line)))
        report = {
            "documents": len(names),
            "edits": edits,
            "refreshes_logged": refreshes,
            "events_changed_by_refreshes": changed,
            "wrk_requests": wrk["requests"],
            "wrk_non_2xx_3xx_or_errors": wrk["errors"],
            "wrk_p99_ms": round(wrk["p99_us"] / 1000, 1),
            "checks": checker.counts,
            "check_p50_ms": round(lat[len(lat) // 2] * 1000, 1) if lat else None,
            "check_p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 1) if lat else None,
            "rss_mib_first": round(steady[0][1] / 1024, 1) if steady else None,
            "rss_mib_last": round(steady[-1][1] / 1024, 1) if steady else None,
            "slope_kib_per_min": round(slope),
            "second_half_slope_kib_per_min": round(late_slope),
            "quarter_slopes_kib_per_min": quarters,
            # What is left when the caches that fill up to their bounds are taken out of RSS.
            "rest_slope_second_half_kib_per_min": round(slope_of(rest[len(rest) // 2 :])) if len(rest) > 3 else None,
            "rest_mib_first_last": [round(rest[len(rest) // 5][1] / 1024, 1), round(rest[-1][1] / 1024, 1)]
            if rest
            else None,
            "rss_mib_last_quarter": [
                round(min(r for _, r in samples[-quarter:]) / 1024, 1),
                round(max(r for _, r in samples[-quarter:]) / 1024, 1),
            ],
        }
        print(json.dumps(report, indent=2))
        for line in checker.bad[:20]:
            print("  bad:", line)
        clean = not any(checker.counts[k] for k in ("5xx", "other", "torn", "empty")) and not wrk["errors"]
        print(
            record(
                f"soak_changing.py{' --quick' if args.quick else ''}"
                + (f" --cache-bytes {args.cache_bytes}" if args.cache_bytes else ""),
                f"{report['documents']:,} documents, {edits} edits, {refreshes} refreshes ({changed} events changed); wrk {wrk['requests']:,} requests "
                f"(p99 {report['wrk_p99_ms']} ms, errors {wrk['errors']}); checker {checker.counts} "
                f"(p99 {report['check_p99_ms']} ms); RSS {report['rss_mib_first']} -> {report['rss_mib_last']} MiB "
                f"(slope {report['slope_kib_per_min']} KiB/min, second half {report['second_half_slope_kib_per_min']}, by quarter {quarters}; "
                f"last quarter {report['rss_mib_last_quarter'][0]}-{report['rss_mib_last_quarter'][1]} MiB; "
                f"less the bounded caches and SQLite: {report['rest_mib_first_last']} MiB, second-half slope "
                f"{report['rest_slope_second_half_kib_per_min']} KiB/min); {'clean' if clean else 'NOT CLEAN'}",
            )
        )
        return 0 if clean else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
