"""What the input limits bound: the peak memory of `feeds ingest` (reading, storing, publishing)
and the largest document served, for pages at every limit, against the bundled example alone,
measured in the same run.

    .venv/bin/python benchmarks/limits.py [--pages 60]

The hostile tree is the example plus `--pages` pages of one day and one topic, each at the default
limits (a 10,000-character summary, 30 sources, 50 related events, 1,000-character headline), plus one
page over them (a 20 MB summary, which once made 40 MB feeds). Each `feeds ingest` runs in a fresh
process; its peak resident memory (all processes) comes from getrusage. A dated line is appended
to RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import record

from feeds.config import Settings

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DAY = "news/2024/06/30"


def hostile_page(n: int, summary_chars: int) -> bytes:
    related = [
        {
            "headline": f"Related event {n}.{i}",
            "url": f"/news/2024/06/29/related-{n}-{i}.md",
            "contexts": ["Limits test topic", f"Context {i}"][: 2 if i < 25 else 1],  # 75 names, with the heading
        }
        for i in range(50)
    ]
    return json.dumps(
        {
            "date": "2024-06-30",
            "heading": "Limits test topic",
            "headline": f"Event {n} at every limit " + "h" * 950,
            "summary": ("word " * (summary_chars // 5))[:summary_chars],
            "sources": [{"name": f"Outlet {i}", "url": f"https://outlet{i}.example/{n}"} for i in range(30)],
            "related": related,
        }
    ).encode()


# Runs one command and prints the peak resident memory (KiB) of its largest process.
MEASURE = (
    "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "print(done.stdout.strip().splitlines()[0] if done.stdout.strip() else done.stderr[-500:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def ingest(tree: Path, work: Path) -> tuple[float, int, int, str]:
    """(peak MiB of the largest process of the ingest, documents, largest document in bytes, the
    first line of its report), in a fresh process so that each run has its own peak."""
    import gzip

    config = work / "feeds.toml"
    config.write_text(f'database = "{work / "feeds.db"}"\nbase_url = "http://feeds.test"\n')
    command = [sys.executable, "-m", "feeds", "--config", str(config), "ingest", str(tree), "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, cwd=REPO, check=True
    )
    last, peak = done.stdout.strip().splitlines()[-2:]
    conn = sqlite3.connect(work / "feeds.db")
    sizes = [len(gzip.decompress(g)) for (g,) in conn.execute("SELECT gz FROM renditions")]
    conn.close()
    return int(peak) / 1024, len(sizes), max(sizes), last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=60)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="feeds-limits-"))
    try:
        example = work / "example"
        shutil.copytree(REPO / "config" / "example" / "news", example / "news")
        hostile = work / "hostile"
        shutil.copytree(example, hostile)
        (hostile / DAY).mkdir(parents=True, exist_ok=True)
        for n in range(args.pages):
            (hostile / DAY / f"event-{n}-at-every-limit.json").write_bytes(hostile_page(n, 10_000))
        (hostile / DAY / "a-20-mb-summary.json").write_bytes(hostile_page(999, 20_000_000))
        (work / "a").mkdir()
        (work / "b").mkdir()
        base = ingest(example, work / "a")
        bounded = ingest(hostile, work / "b")
        report = {
            "example": {"peak_mib": round(base[0], 1), "documents": base[1], "largest_document_bytes": base[2]},
            "hostile": {
                "peak_mib": round(bounded[0], 1),
                "documents": bounded[1],
                "largest_document_bytes": bounded[2],
            },
            "hostile_report": bounded[3],
        }
        print(json.dumps(report, indent=2))
        print(
            record(
                f"limits.py --pages {args.pages}",
                f"ingest peak RSS: example {base[0]:.0f} MiB, with {args.pages} pages at every default limit and one "
                f"20 MB page {bounded[0]:.0f} MiB (ratio {bounded[0] / base[0]:.2f}); largest document "
                f"{base[2]:,} -> {bounded[2]:,} bytes (max_feed_bytes {Settings().max_feed_bytes:,})",
            )
        )
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
