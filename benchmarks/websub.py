#!/usr/bin/env python3
"""WebSub fan-out: one change delivered to many subscribers on loopback.

    .venv/bin/python benchmarks/websub.py                      # 1,000 subscribers, 3 changes
    .venv/bin/python benchmarks/websub.py --quick              # 50 subscribers, 1 change

`feeds serve` of the bundled example (refreshing every second) and a subscriber server (uvicorn, in
this process) with one callback per subscriber, all subscribed to the latest Atom feed through the
built-in hub (each verified by its challenge). Then a page of the newest day is reworded, and the
clock runs from the write until: the feed serves its new ETag (the baseline: what a poller could
see at best), the first subscriber has the new body, the last one has it. Medians over `--changes`.
A dated line is appended to RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import record

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Subscribers:
    def __init__(self) -> None:
        self.verified: set[str] = set()
        self.received: dict[str, tuple[float, bytes]] = {}
        self.lock = threading.Lock()

    def app(self) -> Starlette:
        async def callback(request: Request) -> Response:
            name = request.path_params["name"]
            if request.method == "GET":
                with self.lock:
                    self.verified.add(name)
                return PlainTextResponse(request.query_params["hub.challenge"])
            body = await request.body()
            with self.lock:
                self.received[name] = (time.monotonic(), body)
            return PlainTextResponse("")

        return Starlette(routes=[Route("/cb/{name}", callback, methods=["GET", "POST"])])


def wait(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"websub.py: timed out waiting for {what}")
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.subscribers, args.changes = 50, 1
    work = Path(tempfile.mkdtemp(prefix="feeds-websub-bench-"))
    seen = Subscribers()
    sub_port = free_port()
    subscriber = uvicorn.Server(uvicorn.Config(seen.app(), host="127.0.0.1", port=sub_port, log_level="warning"))
    thread = threading.Thread(target=subscriber.run, daemon=True)
    thread.start()
    server = None
    try:
        tree = work / "tree"
        shutil.copytree(ROOT / "config" / "example" / "news", tree / "news")
        port = free_port()
        config = work / "feeds.toml"
        config.write_text(
            f'database = "feeds.db"\nport = {port}\nrefresh_interval = 1\naccess_log = "off"\nrate_limit = 0\n'
            f"websub_allow_private_callbacks = true\n"
            f'[[sources]]\nname = "example"\nkind = "directory"\nlocation = "{tree}"\n'
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "feeds", "--config", str(config), "serve"],
            stdout=(work / "server.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        topic = f"{base}/feeds/latest.atom"

        def ready() -> bool:
            try:
                return httpx.get(topic, timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait(ready, 60, "the server")
        with httpx.Client(base_url=base) as client:
            for i in range(args.subscribers):
                form = {
                    "hub.mode": "subscribe",
                    "hub.topic": topic,
                    "hub.callback": f"http://127.0.0.1:{sub_port}/cb/{i}",
                }
                assert client.post("/websub", data=form).status_code == 202
        wait(lambda: len(seen.verified) == args.subscribers, 120, "verifications")
        time.sleep(2)  # every subscription stored
        pages = sorted(p for p in (tree / "news").rglob("*.md") if p.name != "index.md")
        feed_s, first_s, last_s = [], [], []
        for n in range(args.changes):
            before = httpx.get(topic).headers["etag"]
            seen.received.clear()
            time.sleep(1.1)  # times have a resolution of one second
            page = pages[-1 - n]
            text = page.read_text()
            started = time.monotonic()
            page.write_text(text.replace("\n# ", f"\n# (change {n}) ", 1))
            wait(lambda: httpx.get(topic).headers["etag"] != before, 30, "the new feed")  # noqa: B023
            feed_s.append(time.monotonic() - started)
            wait(lambda: len(seen.received) == args.subscribers, 120, "every delivery")
            times = sorted(t for t, _ in seen.received.values())
            first_s.append(times[0] - started)
            last_s.append(times[-1] - started)
            bodies = {b for _, b in seen.received.values()}
            assert len(bodies) == 1 and f"(change {n})".encode() in next(iter(bodies)), "every subscriber, the new body"
            print(
                f"change {n}: feed {feed_s[-1] * 1000:.0f} ms, first delivery {first_s[-1] * 1000:.0f} ms, last {last_s[-1] * 1000:.0f} ms"
            )
        median = {k: statistics.median(v) * 1000 for k, v in (("feed", feed_s), ("first", first_s), ("last", last_s))}
        line = (
            f"{args.subscribers:,} subscribers of one feed on loopback, medians of {args.changes} change(s): the feed "
            f"served its new ETag after {median['feed']:.0f} ms (baseline), the first subscriber had it after "
            f"{median['first']:.0f} ms, the last after {median['last']:.0f} ms "
            f"({(median['last'] - median['feed']) / max(args.subscribers, 1):.2f} ms per subscriber beyond the refresh)"
        )
        print(record(f"websub.py{' --quick' if args.quick else ''} --subscribers {args.subscribers}", line))
        return 0
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        subscriber.should_exit = True
        thread.join(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
