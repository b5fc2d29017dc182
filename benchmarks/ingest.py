"""Bulk ingest and incremental refresh, measured.

    .venv/bin/python benchmarks/ingest.py --corpus /tmp/corpus400k          # bulk + incremental
    .venv/bin/python benchmarks/ingest.py --quick                           # a smoke run (seconds)

Bulk: `feeds ingest CORPUS` as a subprocess on a fresh database; wall time of the ingest and of
publishing every document, events/s, peak RSS of its largest process (the kernel's accounting)
and of all its processes together (sampled).

Incremental: on a store of `--small` events (built from the corpus's first days) and on the bulk
store, change one event's page (its headline reworded) and time until the feeds that carry it
(latest, its day, each of its topics) answer with a new ETag from a running `feeds serve`.
Medians of `--repeat` changes; the ratio big/small says whether the cost grows with the change
or with the corpus.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from results import record

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(workdir: Path, port: int) -> Path:
    config = workdir / "feeds.toml"
    config.write_text(
        f'database = "feeds.db"\nport = {port}\nrefresh_interval = 86400\nbase_url = "http://127.0.0.1:{port}"\n'
        'access_log = "off"\nrate_limit = 0\n'
    )
    return config


def tree_rss(proc: psutil.Process) -> list[int]:
    """Resident bytes of a process and of each of its descendants now (the process first)."""
    sizes = []
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # ended meanwhile
            sizes.append(p.memory_info().rss)
    return sizes


@dataclass
class Peak:
    """The largest sum of the process tree's RSS, when it was (seconds from the start) and each
    process's share then: which phase of a bulk load holds the most."""

    summed: int = 0
    at: float = 0.0
    each: list[int] = field(default_factory=list)


def run_ingest(config: Path, location: Path) -> tuple[float, int, Peak, str]:
    """Wall seconds, peak RSS (bytes) of the largest process (the kernel's accounting), peak RSS
    summed over the whole process tree (sampled every 0.2 s), and the output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(
            [PYTHON, "-m", "feeds", "--config", str(config), "ingest", str(location), "--progress"],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        tree, summed = psutil.Process(child.pid), Peak()
        while child.poll() is None:
            if sum(sizes := tree_rss(tree)) > summed.summed:
                summed = Peak(sum(sizes), time.perf_counter() - start, sizes)
            time.sleep(0.2)
        wall = time.perf_counter() - start
        out.seek(0)
        output = out.read()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if child.returncode not in (0, 1):
        raise SystemExit(f"ingest failed ({child.returncode}):\n{output[-3000:]}")
    return wall, max(peak, before) * 1024, summed, output


def bytes_by_table(database: Path) -> dict[str, int]:
    """Bytes of each table and index of a store (SQLite's `dbstat`: its pages, whole), largest
    first; FTS5's shadow tables under their own names (`search_data`, ...)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC, 1").fetchall()
    except sqlite3.OperationalError:  # a build without SQLITE_ENABLE_DBSTAT_VTAB
        return {}
    finally:
        conn.close()
    return {name: int(size) for name, size in rows}


def bytes_line(sizes: dict[str, int], shown: int = 12) -> str:
    """The largest tables and indexes in MB, the rest summed."""
    total = sum(sizes.values())
    parts = [f"{name} {size / 1e6:.1f}" for name, size in list(sizes.items())[:shown]]
    rest = sum(list(sizes.values())[shown:])
    return f"store {total / 1e6:.1f} MB: " + ", ".join(parts) + f", the other {len(sizes) - shown} {rest / 1e6:.1f}"


def small_corpus(corpus: Path, target: Path, events: int) -> None:
    """The first days of the corpus holding at least `events` event pages."""
    count = 0
    for day in sorted((corpus / "news").glob("*/*/*"), key=lambda p: tuple(int(x) for x in p.parts[-3:])):
        dest = target / "news" / day.relative_to(corpus / "news")
        shutil.copytree(day, dest)
        count += sum(1 for p in day.glob("*.md") if p.name != "index.md")
        if count >= events:
            return


class Server:
    def __init__(self, config: Path, port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "feeds", "--config", str(config), "serve"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url("/healthz"), timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise SystemExit("server did not start")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)


def topic_slugs(database: str, relpath: str) -> list[str]:
    """The topics of the event whose current version is at `relpath` (the heading's and every
    context's), as the store has them."""
    from feeds.ids import page_path

    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT t.slug FROM aliases a JOIN event_topics et ON et.event = a.chain AND et.live = 1 "
            "JOIN topics t ON t.id = et.topic_id WHERE a.path = ? ORDER BY t.slug",
            (page_path(relpath),),
        ).fetchall()
    finally:
        conn.close()
    return [slug for (slug,) in rows]


def head_etag(conn: http.client.HTTPConnection, path: str) -> str | None:
    """The ETag of `path` (its plain representation: every encoding of a version is written in
    the same transaction), on a keep-alive connection (a request costs ~0.1 ms, a fifth of
    httpx's)."""
    for attempt in range(2):
        try:
            conn.request("HEAD", path)
            response = conn.getresponse()
            break
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            conn.close()  # idle past the server's keep-alive (a slow run): the next request reconnects
            if attempt:
                raise
    response.read()
    return response.getheader("etag")


def poll(port: int, paths: list[str], before: dict[str, str | None], ready: object, go: object, result: object) -> None:
    """In its own process: HEAD the feeds until every ETag differs from `before`; put the
    monotonic time it happened (None after 60 s). Only the feeds not yet seen changed are asked
    again (a new ETag stays), a round every 2 ms: polling flat out would keep the server and
    this process busy on both CPUs, which the refresh being measured needs. Says `ready` once
    connected (on a busy machine starting a process takes longer than any fixed wait)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    head_etag(conn, paths[0])
    ready.set()  # type: ignore[attr-defined]
    go.wait()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    waiting = list(paths)
    try:
        while time.monotonic() < deadline:
            waiting = [path for path in waiting if head_etag(conn, path) == before[path]]
            if not waiting:
                result.put(time.monotonic())  # type: ignore[attr-defined]
                return
            time.sleep(0.002)
    finally:
        conn.close()
    result.put(None)  # type: ignore[attr-defined]


def incremental(
    config: Path, corpus_dir: Path, port: int, repeat: int, work: Path, direct: bool = False
) -> list[float]:
    """Seconds from the page changing to every feed of the reworded event (latest, its day, each
    of its topics) serving a new ETag from a running `feeds serve` (whose cache looks at the
    store as soon as its log is written). The refresh runs in this process on one long-lived store, as a server's scheduler
    runs it: by default the corpus folder is the directory source (the page is rewritten in place
    and restored at the end; the source's first refresh, untimed, reads the whole tree as a
    server's first refresh does; the refresh starts when the source's watcher reports the change); with `direct`, the reworded document is handed to the ingest
    step as a source that already found it would (a git diff, an HTTP validator). The feeds are
    polled (HEAD) from another process while the refresh runs: the refresh goes on with the
    /topics index after the feeds are stored, and readers of the feeds do not wait for that."""
    import asyncio
    import multiprocessing

    from feeds import config as feeds_config
    from feeds.config import SourceConfig
    from feeds.process import tune_gc
    from feeds.publish import Memos, publish_changes
    from feeds.refresh import ingest, settle
    from feeds.sources import Collected, Document
    from feeds.sources.directory import DirectorySource
    from feeds.store import Store

    settings = feeds_config.load(config)
    # When the refresh moves on from the documents readers wait for to the /topics index.
    from feeds.publish import changes as feeds_publish

    marks: dict[str, float] = {}
    memos = Memos()  # kept from one refresh to the next, as a server's scheduler keeps them
    index = feeds_publish.publish_topics

    async def timed_index(*args: object) -> int:
        marks["topics index"] = time.monotonic()
        try:
            return await index(*args)  # type: ignore[arg-type]
        finally:
            marks["topics stored"] = time.monotonic()

    feeds_publish.publish_topics = timed_index  # type: ignore[assignment]
    tune_gc()  # this process stands in for a server worker running the scheduler: the same settings
    context = multiprocessing.get_context("spawn")
    server = Server(config, port)
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        # Current versions only (what the day listings name): rewording a superseded version
        # changes nothing a reader sees.
        days = sorted((corpus_dir / "news").glob("*/*/*"), key=lambda p: tuple(int(x) for x in p.parts[-3:]))
        listed = re.findall(r"^### \[.*\]\((/news/[^)]*\.md)\)$", (days[-1] / "index.md").read_text(), re.M)
        pages = [corpus_dir / href.lstrip("/") for href in listed][:repeat]

        location = str(corpus_dir.resolve())  # the source's name, as `feeds ingest DIR` gave it
        source = DirectorySource(SourceConfig(name=location, kind="directory", location=location))
        originals = {page: page.read_bytes() for page in pages}
        reported = asyncio.Event()

        async def run_all() -> list[float]:
            store = await Store.open(settings.database)
            loop = asyncio.get_running_loop()
            # As a server's scheduler: a refresh starts when the watcher reports the change.

            def on_change() -> None:  # on the watcher's thread
                loop.call_soon_threadsafe(reported.set)

            source.on_change = on_change
            try:
                if not direct:
                    await settle(store, source, await source.collect(store), processes=os.cpu_count() or 1)
                source.follows_watcher = True
                await index(store, settings, memos)  # what a server's first refresh keeps in memory
                return [await one(store, n, page) for n, page in enumerate(pages)]
            finally:
                source.follows_watcher = False  # restored: collected whatever the watcher said so far
                for page, data in originals.items():
                    page.write_bytes(data)
                if not direct:
                    await settle(store, source, await source.collect(store))
                await source.aclose()
                await store.close()

        async def one(store: Store, n: int, page: Path) -> float:
            rel = page.relative_to(corpus_dir).as_posix()
            text = page.read_text()
            day = re.search(r"^### \[(\d{4})-(\d{1,2})-(\d{1,2})\]", text, re.M)
            assert day
            feeds = ["/feeds/latest.atom", f"/feeds/dates/{int(day[1]):04d}-{int(day[2]):02d}-{int(day[3]):02d}.atom"]
            feeds += [f"/feeds/topics/{slug}.atom" for slug in topic_slugs(settings.database, rel)]
            before = {f: head_etag(client, f) for f in feeds}
            stamp = time.time_ns()  # a new wording on every run, even against a store edited before
            edited = re.sub(r"^# (.*)$", lambda m: f"# {m[1]} (update {n}.{stamp})", text, count=1, flags=re.M).encode()
            copy = work / "edits" / rel  # the corpus itself is left as it is
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(edited)
            # The reader is another process (as readers are): a poller in this one would take
            # turns with the refresh for the interpreter lock.
            ready, go, result = context.Event(), context.Event(), context.Queue()
            watcher = context.Process(target=poll, args=(server.port, feeds, before, ready, go, result))
            watcher.start()
            if not await asyncio.to_thread(ready.wait, 60):  # the poller is up before the clock starts
                raise SystemExit("the poller did not start within 60 s")
            time.sleep(0.1)
            start = time.monotonic()
            go.set()
            if direct:
                report = await ingest(store, "edits", Collected(documents=[Document(rel, edited, str(copy))]))
            else:
                reported.clear()
                page.write_bytes(edited)  # in place, as an editor or a sync tool would
                await reported.wait()
                report = await settle(store, source, await source.collect(store))
            stored = time.monotonic()
            await publish_changes(
                store, settings, report.result.feeds, report.result.events, renamed=report.result.renamed, memos=memos
            )
            published = time.monotonic()
            documents = marks.pop("topics index", published)
            index_stored = marks.pop("topics stored", published)
            served = await asyncio.to_thread(result.get, True, 70)
            watcher.join()
            if served is None:
                raise SystemExit(f"feeds of {rel} did not change within 60 s: {feeds}")
            print(
                f"  {len(feeds)} feeds of {rel} served new ETags after {1000 * (float(served) - start):.1f} ms "
                f"(stored the change at {1000 * (stored - start):.1f} ms, its documents at "
                f"{1000 * (documents - start):.1f} ms; the /topics index stored at {1000 * (index_stored - start):.1f} ms, "
                f"the refresh done at {1000 * (published - start):.1f} ms)",
                file=sys.stderr,
            )
            return float(served) - start

        return asyncio.run(run_all())
    finally:
        client.close()
        server.stop()


def bulk_summary(bulk: dict[str, object]) -> str:
    """The bulk load as a RESULTS.md row: its phases, memory and the store's bytes by table."""
    sizes = bulk["store_bytes_by_table"]
    assert isinstance(sizes, dict)
    return (
        f"bulk {bulk['wall_s']} s for {bulk['events']} events (read and stored {bulk['read_and_stored_s']} s, "
        f"published {bulk['published_s']} s); largest process {bulk['peak_rss_mib']} MiB, all processes "
        f"{bulk['peak_rss_all_processes_mib']} MiB at most; {bytes_line(sizes)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, help="a generated corpus (benchmarks/generate_corpus.py)")
    parser.add_argument("--small", type=int, default=1000, help="events of the small store")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny corpus, one repeat")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the stores made (printed; the bulk one is a --bulk-config for later runs)",
    )
    parser.add_argument("--skip-bulk", action="store_true", help="only the small-store incremental run")
    parser.add_argument(
        "--direct", action="store_true", help="hand the reworded page to the ingest step (no directory source)"
    )
    parser.add_argument(
        "--bulk-config",
        type=Path,
        help="measure incremental refresh on a store already loaded from --corpus (its config)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="feeds-ingest-bench-"))
    if args.quick or not args.corpus:
        args.corpus = work / "corpus"
        subprocess.run(
            [
                PYTHON,
                str(ROOT / "benchmarks/generate_corpus.py"),
                "--events",
                "2000" if args.quick else "20000",
                "--out",
                str(args.corpus),
                "--no-progress",
                "--verify",
                "0",
            ],
            check=True,
        )
        args.small, args.repeat = min(args.small, 300), 1 if args.quick else args.repeat
    results: dict[str, object] = {"corpus": str(args.corpus)}

    small_dir = work / "small"
    small_corpus(args.corpus, small_dir, args.small)
    small_cfg = write_config(small_dir, free_port())
    wall, _, _, out = run_ingest(small_cfg, small_dir)
    small_port = int(re.search(r"port = (\d+)", small_cfg.read_text())[1])  # type: ignore[index]
    small_times = incremental(small_cfg, small_dir, small_port, args.repeat, work, args.direct)
    results["small"] = {"ingest_s": round(wall, 1)}
    results["incremental_small_ms"] = round(statistics.median(small_times) * 1000, 1)
    print(json.dumps(results), flush=True)

    if args.bulk_config:
        port = free_port()
        text = args.bulk_config.read_text()
        text = re.sub(r"^port = .*$", "", text, flags=re.M) + f"\nport = {port}\n"
        config = work / "bulk.toml"
        database = (args.bulk_config.parent / re.search(r'database = "([^"]+)"', text)[1]).resolve()  # type: ignore[index]
        config.write_text(re.sub(r'database = "[^"]+"', f'database = "{database}"', text))
        big_times = incremental(config, args.corpus, port, args.repeat, work, args.direct)
        results["incremental_big_ms"] = round(statistics.median(big_times) * 1000, 1)
        results["incremental_ratio_big_small"] = round(statistics.median(big_times) / statistics.median(small_times), 2)
    elif not args.skip_bulk:
        bulk_dir = work / "bulk"
        bulk_dir.mkdir()
        port = free_port()
        bulk_cfg = write_config(bulk_dir, port)
        wall, peak, summed, out = run_ingest(bulk_cfg, args.corpus)
        events = int(re.search(r"(\d+) new", out)[1]) if re.search(r"(\d+) new", out) else 0  # type: ignore[index]
        phases = re.search(r"read and stored in ([\d.]+) s, published in ([\d.]+) s", out)
        results["bulk"] = {
            "events": events,
            "wall_s": round(wall, 1),
            "read_and_stored_s": float(phases[1]) if phases else None,
            "published_s": float(phases[2]) if phases else None,
            "events_per_s": round(events / wall, 1) if wall else None,
            "peak_rss_mib": round(peak / 2**20, 1),  # the largest process
            "peak_rss_all_processes_mib": round(summed.summed / 2**20, 1),
            "peak_all_processes_at_s": round(summed.at, 1),
            "peak_all_processes_each_mib": [round(size / 2**20) for size in summed.each],
            "store_bytes_by_table": bytes_by_table(bulk_dir / "feeds.db"),
        }
        big_times = incremental(bulk_cfg, args.corpus, port, args.repeat, work, args.direct)
        results["incremental_big_ms"] = round(statistics.median(big_times) * 1000, 1)
        results["incremental_ratio_big_small"] = round(statistics.median(big_times) / statistics.median(small_times), 2)
    print(json.dumps(results, indent=2))
    if isinstance(bulk := results.get("bulk"), dict) and not args.quick:  # a smoke run records nothing
        print(
            record(
                f"ingest.py --corpus {args.corpus} --repeat {args.repeat}",
                f"{bulk_summary(bulk)}; incremental medians {results['incremental_small_ms']} ms at "
                f"{args.small} events, {results['incremental_big_ms']} ms at {bulk['events']}",
            )
        )
    if args.keep:
        print(f"kept: {work} (bulk store config: {work / 'bulk' / 'feeds.toml'})", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
