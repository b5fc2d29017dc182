#!/usr/bin/env python3
"""`feeds export` measured: a first export, an export again with nothing changed, and one after a
single event was reworded; wall time and peak resident memory of each `feeds export` process,
against a baseline (the same commands run by the code of `--baseline`, a git revision, in the
same run; the store is shared, each code exports into its own directory).

    .venv/bin/python benchmarks/export.py --events 40000                 # corpus, ingest, both codes
    .venv/bin/python benchmarks/export.py --config /tmp/big/feeds.toml   # a store loaded before
    .venv/bin/python benchmarks/export.py --events 2000 --baseline none  # this code alone

The corpus is benchmarks/generate_corpus.py's (seed 1), loaded with `feeds ingest`. The reworded
event is the newest day's first, its headline given a new suffix each run, handed to the ingest
step and published as a refresh does. A dated row is appended to RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import record

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
# `python -m feeds`, saying first where the package it runs comes from.
CHECKED = "import sys, feeds; print(feeds.__file__, flush=True); from feeds.cli import main; main()"


def run_export(config: Path, out: Path, code: Path) -> tuple[float, int, str]:
    """(seconds, peak RSS in MB, its line) of one `feeds export` process run by the code in `code`."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    log = out.with_name(out.name + ".log")
    started = time.monotonic()
    with log.open("w") as output:
        proc = subprocess.Popen(
            [PYTHON, "-c", CHECKED, "--config", str(config), "export", str(out)],
            env=env,
            stdout=output,
            stderr=output,
            cwd=out.parent,  # `python -m` puts its directory first: not the checkout's own `feeds`
        )
        _, status, usage = os.wait4(proc.pid, 0)  # the kernel's account of the child: its peak RSS
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    text = log.read_text()
    if f"{code}/feeds/" not in text:
        raise SystemExit(f"feeds export did not run the code in {code}: {text[-2000:]}")
    if proc.returncode:
        raise SystemExit(f"feeds export ({code}) failed: {text[-2000:]}")
    return seconds, usage.ru_maxrss // 1024, text.strip().splitlines()[-1].split(";")[0]


def prepare(events: int, work: Path) -> Path:
    corpus, config = work / "corpus", work / "feeds.toml"
    subprocess.run(
        [PYTHON, str(ROOT / "benchmarks" / "generate_corpus.py"), "--events", str(events), "--out", str(corpus)],
        check=True,
    )
    config.write_text(
        f'database = "{work / "feeds.db"}"\nrefresh_interval = 86400\nbase_url = "http://127.0.0.1:8080"\n'
        'access_log = "off"\nrate_limit = 0\n'
    )
    started = time.monotonic()
    subprocess.run([PYTHON, "-m", "feeds", "--config", str(config), "ingest", str(corpus)], check=True)
    print(f"ingested {events} events in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return config


def reword(config: Path) -> str:
    """Reword the newest day's first event in the store (as a refresh of its source would) and
    publish what it touched; its page path."""
    from feeds import config as feeds_config
    from feeds.publish import publish_changes
    from feeds.refresh import ingest
    from feeds.sources import Collected, Document
    from feeds.store import Store

    settings = feeds_config.load(config)

    async def go() -> str:
        store = await Store.open(settings.database)
        try:
            with contextlib.closing(sqlite3.connect(settings.database)) as db:
                source, relpath = db.execute(
                    "SELECT p.source, p.relpath FROM events e JOIN pages p ON p.path = e.current "
                    "WHERE e.live = 1 ORDER BY e.date DESC, e.seq LIMIT 1"
                ).fetchone()
            text = Path(source, relpath).read_text() if Path(source, relpath).exists() else ""
            if not text:
                raise SystemExit(f"cannot read the newest event's page {source}/{relpath}")
            edited = re.sub(r"^# (.*)$", lambda m: f"# {m[1]} (export {time.time_ns()})", text, count=1, flags=re.M)
            report = await ingest(store, source, Collected(documents=[Document(relpath, edited.encode(), relpath)]))
            await publish_changes(store, settings, report.result.feeds, report.result.events)
            return str(relpath)
        finally:
            await store.close()

    return asyncio.run(go())


def baseline_code(revision: str, work: Path) -> Path:
    """The package `feeds` of a git revision, unpacked in `work`."""
    target = work / f"baseline-{revision}"
    target.mkdir(exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "feeds"], check=True, capture_output=True)
    archive_path = work / "baseline.tar"
    archive_path.write_bytes(archive.stdout)
    with tarfile.open(archive_path) as tar:
        tar.extractall(target, filter="data")
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=40000)
    parser.add_argument("--config", type=Path, help="a loaded store's config (no corpus is made)")
    parser.add_argument("--baseline", default="5032290", help="git revision of the baseline code, or `none`")
    parser.add_argument("--workdir", type=Path, help="keep the corpus, store and exports here")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="export-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    config = args.config or prepare(args.events, work)
    codes = {"new": ROOT}
    if args.baseline != "none":
        codes = {"baseline": baseline_code(args.baseline, work), **codes}
    figures: dict[str, dict[str, tuple[float, int, str]]] = {name: {} for name in codes}
    for name, code in codes.items():
        for step in ("first", "unchanged"):
            figures[name][step] = run_export(config, work / f"export-{name}", code)
            print(f"{name} {step}: {figures[name][step]}", file=sys.stderr)
    page = reword(config)
    print(f"reworded {page}", file=sys.stderr)
    for name, code in codes.items():
        figures[name]["one changed"] = run_export(config, work / f"export-{name}", code)
        print(f"{name} one changed: {figures[name]['one changed']}", file=sys.stderr)
    parts = []
    for name in codes:
        steps = ", ".join(f"{step} {s:.1f} s / {mb} MB ({line})" for step, (s, mb, line) in figures[name].items())
        parts.append(f"{name}: {steps}")
    if "baseline" in figures:
        ratio = ", ".join(
            f"{step} x{figures['baseline'][step][0] / max(figures['new'][step][0], 0.001):.1f} faster, "
            f"peak RSS x{figures['new'][step][1] / max(figures['baseline'][step][1], 1):.2f}"
            for step in figures["new"]
        )
        parts.append(f"new vs baseline: {ratio}")
    given = f"--config {args.config}" if args.config else f"--events {args.events}"
    print(record(f"export.py {given} --baseline {args.baseline} (shared, noisy machine)", "; ".join(parts)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
