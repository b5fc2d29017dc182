#!/usr/bin/env python3
"""What a cache in front buys: one cached topic feed through nginx's cache (deploy/nginx), next to
the bare origin (`feeds serve`, the baseline) and to nginx serving the same bytes as a static file
from `feeds export` (its generated configuration), in one run.

    .venv/bin/python benchmarks/caches.py            # 2,000 events, 5 rounds x 4 cases x 3 servers x 10 s
    .venv/bin/python benchmarks/caches.py --quick    # smoke run

The three answer the four cases of benchmarks/serve.py (plain, 304, gzip, br) with the same bytes
and validators (checked before measuring). One process each (nginx: one worker), all pinned to
the same CPU, wrk -t1 -c32 on the other; servers alternate within a round; medians of req/s and
ratios against the origin. A dated line is appended to RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/frontends.py starts nginx as the tests do
from results import record
from serve import (
    CASES,
    fail,
    free_port,
    lua_script,
    pick_feed,
    pinned,
    prepare,
    run_wrk,
    start,
    stop,
    wait_ready,
    workdir,
)

from tests.frontends import nginx_cache, nginx_export, raw

COMPARED = ("content-type", "content-encoding", "etag", "last-modified", "cache-control", "vary")
# RFC 9110 15.4.5: what a 304 must carry (nginx's 304 from the export adds a Content-Type and no
# Last-Modified, which the RFC leaves open).
COMPARED_304 = ("etag", "cache-control", "vary")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="smoke run: small corpus, 1 round of 1 s")
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds, args.duration = 300, 1, 1
    for program in ("wrk", "nginx"):
        if not (shutil.which(program) or shutil.which(program, path="/usr/sbin")):
            fail(f"{program} is not installed (apt-get install -y {program})", 2)
    server_cpu, wrk_cpu = (1, 0) if (os.cpu_count() or 1) >= 2 and shutil.which("taskset") else (None, None)
    with workdir(None) as work, contextlib.ExitStack() as stack:
        database, env = prepare(work, args.events, 1)
        feed = pick_feed(database)[0]
        path = f"/feeds/{feed}.atom"
        port = free_port()
        env |= {"FEEDS_PORT": str(port)}
        exported = subprocess.run(
            [sys.executable, "-m", "feeds", "export", str(work / "export")], env=env, capture_output=True, text=True
        )
        if exported.returncode != 0:
            fail(f"feeds export failed: {exported.stderr}")
        print(f"export: {exported.stdout.strip()}")
        origin = start("origin", [*pinned(server_cpu), sys.executable, "-m", "feeds", "serve"], env, port, work)
        stack.callback(stop, origin)
        wait_ready(origin, path)
        bases = {
            "nginx-cache": f"http://127.0.0.1:{stack.enter_context(nginx_cache(work / 'cache', [port], pinned(server_cpu)))}",
            "nginx-static": f"http://127.0.0.1:{stack.enter_context(nginx_export(work / 'export', work / 'static', pinned(server_cpu)))}",
            "origin": origin.base,
        }
        etag = raw(origin.base + path, "identity")[1]["etag"]
        for case in CASES:
            headers = {"plain": ({}, "identity"), "304": ({"if-none-match": etag}, "identity")}.get(case, ({}, case))
            answers = {}
            for name, base in bases.items():
                status, got, body = raw(base + path, headers[1], **headers[0])
                compared = COMPARED_304 if case == "304" else COMPARED
                answers[name] = (status, {k: got.get(k) for k in compared}, body)
            if len({repr(a) for a in answers.values()}) != 1:
                fail(f"{case}: the servers answer differently: {answers}")
        print(f"check: {path} answered alike by {', '.join(bases)} in every case")
        scripts = {case: lua_script(work, case, etag) for case in CASES}
        rates: dict[tuple[str, str], list[float]] = {(n, c): [] for n in bases for c in CASES}
        names = list(bases)
        for r in range(args.rounds):
            for case in CASES:
                for name in names if r % 2 == 0 else names[::-1]:
                    stats = run_wrk(bases[name] + path, scripts[case], 1, 32, args.duration, wrk_cpu)
                    rates[(name, case)].append(stats["requests"] / stats["duration_us"] * 1e6)
            print(
                f"round {r + 1}/{args.rounds}: "
                + ", ".join(f"{c} " + "/".join(f"{rates[(n, c)][-1]:,.0f}" for n in names) for c in CASES),
                f"({'/'.join(names)} req/s)",
            )
    medians = {key: statistics.median(values) for key, values in rates.items()}
    print(f"{'case':6} " + "".join(f"{n:>22}" for n in names))
    for case in CASES:
        print(
            f"{case:6} "
            + "".join(
                f"{medians[(n, case)]:>12,.0f} ({medians[(n, case)] / medians[('origin', case)]:4.2f}x)" for n in names
            )
        )
    summary = "; ".join(
        f"{case}: "
        + ", ".join(
            f"{n} {medians[(n, case)]:,.0f} ({medians[(n, case)] / medians[('origin', case)]:.1f}x)" for n in names
        )
        for case in CASES
    )
    print(
        record(f"caches.py --events {args.events} --rounds {args.rounds}", f"req/s of {path}, one CPU each: {summary}")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
