#!/usr/bin/env python3
"""Cached serving: `feeds serve` against a bare Starlette app sending the same bytes from memory.

    .venv/bin/python benchmarks/serve.py            # 5 rounds x 4 cases x 2 servers x 10 s (~8 min)
    .venv/bin/python benchmarks/serve.py --quick    # smoke run, under a minute

Steps: generate a synthetic corpus (benchmarks/generate_corpus.py), `feeds ingest` it into a fresh
database (temp config, FEEDS_* variables), pick a topic feed with 50 entries, start `feeds serve` and
benchmarks/bare_app.py (same uvicorn options, one process each, pinned to the same CPU when there
are two or more; wrk gets another), check that both answer every case with the same status, headers
and bytes, then run `wrk -t1 -c32 -d10s` against each, alternating, for four cases:

    plain   GET, no conditional, no Accept-Encoding       200, identity body
    304     GET with If-None-Match: <the ETag>            304, no body
    gzip    GET with Accept-Encoding: gzip                200, the pre-compressed gzip bytes
    br      GET with Accept-Encoding: br                  200, the pre-compressed Brotli bytes

and prints the median requests/s of each server per case and the ratio feeds/bare (1.0 = feeds
costs nothing beyond Starlette + uvicorn; 0.5 = feeds does as much work again per request).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from isal import igzip

from feeds.config import Settings
from feeds.responses import cache_control

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

CASES = ("plain", "304", "gzip", "br")
# `date` differs per request, `server` per server software; everything else must match byte for byte.
IGNORED_HEADERS = {"date", "server"}
# What each server is measured against (--against): the reference is the last one listed.
PLANS = {
    "bare": ("feeds", "bare"),  # feeds vs a bare Starlette app returning the same bytes, one process each
    "workers": ("feeds-2w", "feeds-1w"),  # feeds serve --workers 2 vs 1 worker, neither pinned
    "servers": ("granian", "hypercorn", "uvicorn"),  # the feeds app under each ASGI server, one process
    # feeds with the rate limiter (never limiting: wrk is one client) and subscriber statistics on,
    # vs feeds with both off
    "etiquette": ("feeds-polite", "feeds-plain"),
    # feeds as configured by default (its access log on), feeds with the access log off, and the bare app
    "default-config": ("feeds-default", "feeds-off", "bare"),
}
BASELINE = "@base"  # suffix of the servers run from --baseline's tree
# What a server of a plan runs with besides the common environment.
SERVER_ENV = {
    "feeds-polite": {"FEEDS_RATE_LIMIT": "1000000", "FEEDS_RATE_BURST": "1000000", "FEEDS_SUBSCRIBER_STATS": "true"},
    "feeds-plain": {"FEEDS_RATE_LIMIT": "0", "FEEDS_SUBSCRIBER_STATS": "false"},
    "feeds-default": {"FEEDS_ACCESS_LOG": Settings().access_log},
    "feeds-off": {"FEEDS_ACCESS_LOG": "off"},
}


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Result:
    rps: list[float] = field(default_factory=list)
    bytes_per_response: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # server CPU time per request (all its threads)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fail(message: str, code: int = 1) -> None:
    print(f"serve.py: {message}", file=sys.stderr)
    sys.exit(code)


# ----- preparing the database ------------------------------------------------------------------------


def prepare(work: Path, events: int, seed: int, access_log: str = "off") -> tuple[Path, dict[str, str]]:
    """Corpus -> fresh database through `feeds ingest`; returns (database, environment for feeds)."""
    from generate_corpus import generate

    corpus = work / "corpus"
    started = time.perf_counter()
    _, files, _ = generate(corpus, events, seed=seed, progress=False)
    print(f"corpus: {events} events, {files} files in {time.perf_counter() - started:.1f} s ({corpus})")
    config = work / "feeds.toml"
    # No [[sources]]: the scheduler of `feeds serve` has nothing to refresh while we measure.
    config.write_text('# benchmarks/serve.py: temporary config, no sources\ntitle = "Current events"\n', "utf-8")
    database = work / "feeds.db"
    env = dict(os.environ)
    env.update(
        FEEDS_CONFIG=str(config),
        FEEDS_DATABASE=str(database),
        FEEDS_REFRESH_INTERVAL="86400",
        FEEDS_CACHE_MAX_AGE="300",
        FEEDS_BASE_URL="http://127.0.0.1:8000",
        FEEDS_ACCESS_LOG=access_log,
        FEEDS_RATE_LIMIT="0",  # wrk is one client asking as fast as it can
    )
    env.pop("FEEDS_SOURCES", None)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "feeds", "ingest", str(corpus), "--no-progress"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        fail(f"feeds ingest failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    print(f"ingest: {done.stdout.strip().splitlines()[0]} in {time.perf_counter() - started:.1f} s")
    return database, env


def pick_feed(database: Path, target_bytes: int = 30_000) -> tuple[str, int, int, int, int]:
    """A topic feed (Atom) with exactly 50 entries, preferring a topic's head document (what
    readers subscribe to) and then the size nearest `target_bytes`. Returns (feed, entries,
    plain, gzip, br bytes)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT feed, gz, length(gz), length(br) FROM renditions WHERE fmt = 'atom' AND feed LIKE 'topics/%'"
        ).fetchall()
    finally:
        conn.close()
    if not rows:
        fail(f"no topic feeds in {database}")
    bodies = [(feed, igzip.decompress(data), gz, br) for feed, data, gz, br in rows]
    candidates = [(feed, body.count(b"<entry>"), len(body), gz, br) for feed, body, gz, br in bodies]
    fifty = [c for c in candidates if c[1] == 50]
    if not fifty:
        best = min(candidates, key=lambda c: (abs(c[1] - 50), abs(c[2] - target_bytes)))
        print(f"note: no topic feed has exactly 50 entries; using {best[0]} ({best[1]} entries)")
        return best
    return min(fifty, key=lambda c: ("/pages/" in c[0], abs(c[2] - target_bytes), c[0]))


# ----- servers -----------------------------------------------------------------------------------


def pinned(cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu)] if cpu is not None else []


def start(name: str, argv: list[str], env: dict[str, str], port: int, work: Path, tree: Path = REPO) -> Server:
    """`argv` run in `tree` (`python -m feeds` imports the feeds package found there)."""
    log = work / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=tree, stdout=out, stderr=subprocess.STDOUT)
    return Server(name, port, process, log)


def wait_ready(server: Server, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            fail(
                f"{server.name} exited ({server.process.returncode}); log:\n{server.log.read_text(errors='replace')[-3000:]}"
            )
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, _, _ = request(server.port, path, {})
            if status == 200:
                return
        time.sleep(0.1)
    fail(f"{server.name} did not answer {path} within {timeout:.0f} s; log: {server.log}")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process and its descendants (server workers), from Linux
    /proc; None where unavailable."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, seconds)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    if pid not in stats:
        return None
    tree, frontier = {pid}, {pid}
    while frontier:
        frontier = {p for p, (parent, _) in stats.items() if parent in frontier} - tree
        tree |= frontier
    return sum(stats[p][1] for p in tree)


def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def request(port: int, path: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return response.status, response.getheaders(), body
    finally:
        conn.close()


def case_headers(case: str, etag: str) -> dict[str, str]:
    return {
        "plain": {},
        "304": {"If-None-Match": etag},
        "gzip": {"Accept-Encoding": "gzip"},
        "br": {"Accept-Encoding": "br"},
    }[case]


def check_same(servers: list[Server], path: str, etag: str, stored: dict[str, bytes]) -> None:
    """Every server must give the same status, headers (but Date and Server) and bytes in every
    case, and the bytes must be the stored ones (feeds sends its pre-compressed renditions)."""
    expected = {
        "plain": (200, stored["plain"]),
        "304": (304, b""),
        "gzip": (200, stored["gzip"]),
        "br": (200, stored["br"]),
    }
    for case in CASES:
        answers = {}
        for server in servers:
            status, headers, body = request(server.port, path, case_headers(case, etag))
            norm = sorted((k.lower(), v) for k, v in headers if k.lower() not in IGNORED_HEADERS)
            if (status, body) != expected[case]:
                fail(
                    f"{server.name} {case}: status {status}, {len(body)} bytes; expected {expected[case][0]}, {len(expected[case][1])} bytes"
                )
            answers[server.name] = (status, norm, body)
        first = servers[0].name
        for server in servers[1:]:
            if answers[server.name] != answers[first]:
                fail(
                    f"{case}: {first} and {server.name} answer differently:\n  {first}: {answers[first][:2]}\n"
                    f"  {server.name}: {answers[server.name][:2]}"
                )


# ----- wrk -----------------------------------------------------------------------------------------

LUA = """-- generated by benchmarks/serve.py: request headers of one case, JSON summary at the end
wrk.method = "GET"
{headers}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {{"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def lua_script(work: Path, case: str, etag: str) -> Path:
    lines = [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in case_headers(case, etag).items()]
    path = work / f"case-{case}.lua"
    path.write_text(LUA.format(headers="\n".join(lines) or "-- no extra headers"), "utf-8")
    return path


def run_wrk(url: str, script: Path, threads: int, connections: int, seconds: int, cpu: int | None) -> dict[str, float]:
    argv = [*pinned(cpu), "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"^WRK (\{.*\})$", done.stdout, re.M)
    if done.returncode != 0 or not match:
        fail(f"wrk failed ({done.returncode}): {' '.join(argv)}\n{done.stdout}{done.stderr}")
    stats: dict[str, float] = json.loads(match[1])  # type: ignore[index]
    errors = {k: stats[k] for k in ("connect", "read", "write", "status", "timeout") if stats[k]}
    if errors:
        fail(f"wrk saw errors against {url}: {errors}\n{done.stdout}")
    return stats


# ----- main ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def workdir(keep: Path | None) -> Iterator[Path]:
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    path = Path(tempfile.mkdtemp(prefix="feeds-serve-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds; each runs every case on both servers (default 5)"
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (default 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    parser.add_argument("--events", type=int, default=2000, help="corpus size (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument(
        "--feed", default=None, help="feed to request, e.g. topics/climate-change.atom (default: picked)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of wrk per server and case before measuring (0: none)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and wrk to separate CPUs")
    parser.add_argument("--workdir", type=Path, default=None, help="keep corpus, database and logs here")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny corpus, 1 round of 1 s per case")
    parser.add_argument(
        "--access-log",
        choices=("off", "text", "json"),
        default="off",
        help="feeds serve's access log (default off: the serving cost alone; text or json adds a line per request)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another feeds source tree (e.g. `git archive main` unpacked): its feeds servers run beside this "
        f"tree's in the same rounds, named with {BASELINE!r} (before/after in one run)",
    )
    parser.add_argument(
        "--against",
        choices=sorted(PLANS),
        default="bare",
        help="bare: feeds vs a bare app (default); workers: --workers 2 vs 1; servers: granian, hypercorn, uvicorn; "
        "default-config: feeds as configured by default (access log on) and with the access log off, vs the bare app",
    )
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if args.duration < 1 or args.rounds < 1:
        parser.error("--duration and --rounds must be at least 1 (wrk takes whole seconds)")
    if args.baseline and not (args.baseline / "feeds" / "__init__.py").is_file():
        parser.error(f"--baseline {args.baseline}: no feeds package there")
    if args.quick:
        args.rounds, args.duration, args.warmup, args.events = 1, 1, 1, min(args.events, 800)
    if shutil.which("wrk") is None:
        fail(
            "wrk is not installed (it is what generates the load). Install it, e.g. `apt-get install -y wrk`, and run again.",
            2,
        )
    cpus = os.cpu_count() or 1
    pin = not args.no_pin and cpus >= 2 and shutil.which("taskset") is not None
    server_cpu, wrk_cpu = (cpus - 1, 0) if pin else (None, None)

    with workdir(args.workdir) as work:
        database, env = prepare(work, args.events, args.seed, args.access_log)
        if args.feed:
            feed, fmt = args.feed.rsplit(".", 1)
            conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
            row = conn.execute(
                "SELECT gz, length(gz), length(br) FROM renditions WHERE feed = ? AND fmt = ?", (feed, fmt)
            ).fetchone()
            conn.close()
            if row is None:
                fail(f"no rendition {args.feed} in the database")
            plain = igzip.decompress(row[0])
            chosen = (feed, plain.count(b"<entry>") or plain.count(b"<item>"), len(plain), row[1], row[2])
            path = f"/feeds/{args.feed}"
        else:
            fmt = "atom"
            chosen = pick_feed(database)
            path = f"/feeds/{chosen[0]}.atom"
        feed = chosen[0]
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        gz, br, etag = conn.execute(
            "SELECT gz, br, etag FROM renditions WHERE feed = ? AND fmt = ?", (feed, fmt)
        ).fetchone()
        conn.close()
        stored = {"plain": igzip.decompress(gz), "gzip": bytes(gz), "br": bytes(br)}
        print(f"feed: {path}: {chosen[1]} entries, {chosen[2]} bytes plain, {chosen[3]} gzip, {chosen[4]} br")

        names = PLANS[args.against]
        if args.baseline:  # each feeds server again from the other tree, before the reference
            twins = tuple(f"{name}{BASELINE}" for name in names[:-1] if name.startswith("feeds"))
            names = (*names[:-1], *twins, names[-1])
        pin_servers = args.against != "workers"  # two workers need both CPUs
        cpu = server_cpu if pin_servers else None
        wrk_cpu = wrk_cpu if pin_servers else None
        servers = []
        try:
            for name in names:
                port = free_port()
                plain_name = name.removesuffix(BASELINE)
                argv = server_argv(plain_name, port, database, feed)
                if argv is None:
                    print(f"{name}: not installed, skipped (pip install {name})")
                    continue
                own = env | SERVER_ENV.get(plain_name, {}) | {"FEEDS_PORT": str(port)}
                tree = args.baseline if name.endswith(BASELINE) else REPO
                servers.append(start(name, pinned(cpu) + argv, own, port, work, tree))
            if len(servers) < 2:
                fail("fewer than two servers to compare")
            for server in servers:
                wait_ready(server, path)
            check_same(servers, path, f'"{etag}"', stored)
            print("check: every server sends the same status, headers (but Date, Server) and bytes in every case")
            scripts = {case: lua_script(work, case, f'"{etag}"') for case in CASES}
            where = f"servers on CPU {server_cpu}, wrk on CPU {wrk_cpu}" if pin and pin_servers else "not pinned"
            print(
                f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.rounds} round(s), "
                f"servers alternate; {where}"
            )
            if args.warmup > 0:
                for case in CASES:
                    for server in servers:
                        run_wrk(server.base + path, scripts[case], args.threads, args.connections, args.warmup, wrk_cpu)
            results = {(s.name, c): Result() for s in servers for c in CASES}
            for r in range(args.rounds):
                order = servers if r % 2 == 0 else servers[::-1]  # alternate who goes first
                line = []
                for case in CASES:
                    for server in order:
                        before = cpu_seconds(server.process.pid)
                        stats = run_wrk(
                            server.base + path, scripts[case], args.threads, args.connections, args.duration, wrk_cpu
                        )
                        after = cpu_seconds(server.process.pid)
                        res = results[(server.name, case)]
                        if before is not None and after is not None:
                            res.cpu_us.append((after - before) * 1e6 / max(1, stats["requests"]))
                        res.rps.append(stats["requests"] / stats["duration_us"] * 1e6)
                        res.bytes_per_response.append(stats["bytes"] / max(1, stats["requests"]))
                        res.p50_ms.append(stats["p50_us"] / 1000)
                        res.p99_ms.append(stats["p99_us"] / 1000)
                    line.append(f"{case} " + "/".join(f"{results[(s.name, case)].rps[-1]:,.0f}" for s in servers))
                print(
                    f"round {r + 1}/{args.rounds} ({'/'.join(s.name for s in servers)} req/s): " + ", ".join(line),
                    flush=True,
                )
        finally:
            for server in servers:
                stop(server)
        report(results, [s.name for s in servers], args.rounds)
    return 0


def report(results: dict[tuple[str, str], Result], names: list[str], rounds: int) -> None:
    """A table per server against the reference (the last one): median req/s with the range over
    rounds, the ratio of medians, the median of per-round ratios, CPU per request, p50."""
    reference = names[-1]
    print()
    print(f"median over {rounds} round(s), [min-max] across rounds; ratios against {reference}")
    header = f"{'case':<6} {'server':<18} {'req/s':>24} {'ratio':>6} {'paired':>6}   {'CPU us/req':>10} {'p50 ms':>7} {'bytes/resp':>10}"
    print(header)
    print("-" * len(header))
    for case in CASES:
        ref = results[(reference, case)]
        for name in names:
            r = results[(name, case)]
            median = statistics.median(r.rps)
            ratio = median / statistics.median(ref.rps)
            paired = statistics.median(x / y for x, y in zip(r.rps, ref.rps, strict=True))
            cpu = f"{statistics.median(r.cpu_us):>10.1f}" if r.cpu_us else f"{'n/a':>10}"
            print(
                f"{case:<6} {name:<18} {median:>9,.0f} [{min(r.rps):>6,.0f}-{max(r.rps):>6,.0f}] {ratio:>6.2f} {paired:>6.2f}   "
                f"{cpu} {statistics.median(r.p50_ms):>7.2f} {statistics.median(r.bytes_per_response):>10,.0f}"
            )
    print(
        f"ratio: median req/s over {reference}'s; paired: median of the per-round ratios (each round runs every server "
        "back to back).\nCPU us/req: server CPU time per request (all its processes), less sensitive to other load "
        "than req/s.\nbytes/resp: what wrk read per response, headers included."
    )


def server_argv(name: str, port: int, database: Path, feed: str) -> list[str] | None:
    """How to start each server; None when its software is not installed."""
    factory = "feeds.app:app_from_environment"
    host = "127.0.0.1"
    if name in ("feeds", "feeds-1w", "uvicorn", "feeds-polite", "feeds-plain", "feeds-default", "feeds-off"):
        return [sys.executable, "-m", "feeds", "serve", "--port", str(port)]
    if name == "feeds-2w":
        return [sys.executable, "-m", "feeds", "serve", "--port", str(port), "--workers", "2"]
    if name == "bare":
        return [
            sys.executable,
            str(HERE / "bare_app.py"),
            "--database",
            str(database),
            "--port",
            str(port),
            "--feed",
            feed,
            "--cache-control",
            cache_control(Settings()),
            "--base-url",
            Settings().base_url,
        ]
    binary = Path(sys.executable).with_name(name)
    if not binary.exists():
        return None
    if name == "granian":  # same event loop as feeds serve (uvloop); its own Rust HTTP stack
        return [
            str(binary),
            "--interface",
            "asgi",
            "--factory",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--no-access-log",
            "--log-level",
            "warning",
            factory,
        ]
    if name == "hypercorn":
        return [
            str(binary),
            "--bind",
            f"{host}:{port}",
            "--workers",
            "1",
            "--worker-class",
            "uvloop",
            "--log-level",
            "warning",
            f"{factory}()",
        ]
    raise ValueError(name)


if __name__ == "__main__":
    sys.exit(main())
