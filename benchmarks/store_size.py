"""A store's bytes by table and index (SQLite's `dbstat`), and its entries' sizes per format.

    .venv/bin/python benchmarks/store_size.py /tmp/big/feeds.db            # print
    .venv/bin/python benchmarks/store_size.py /tmp/big/feeds.db --record   # and a RESULTS.md row

Per table or index: bytes in pages, bytes of them unused, and bytes in overflow pages (a row
too long for its page continues on pages of its own). Entries: rows, and the mean and largest
stored bytes per column (a column per format before schema 19, one compressed blob since).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import record


def by_table(conn: sqlite3.Connection) -> list[tuple[str, int, int, int]]:
    """(name, bytes, unused bytes, overflow bytes), largest first."""
    rows = conn.execute(
        "SELECT name, sum(pgsize), sum(unused), sum(CASE WHEN pagetype = 'overflow' THEN pgsize ELSE 0 END) "
        "FROM dbstat GROUP BY name ORDER BY sum(pgsize) DESC"
    ).fetchall()
    return [(name, int(size), int(unused), int(overflow)) for name, size, unused, overflow in rows]


def entry_sizes(conn: sqlite3.Connection) -> dict[str, tuple[float, int]]:
    """Column -> (mean bytes, largest) of the entries table's stored columns."""
    columns = [c[1] for c in conn.execute("PRAGMA table_info(entries)") if c[1] not in ("event", "stamp")]
    out = {}
    for column in columns:
        sizes = [n for (n,) in conn.execute(f"SELECT length({column}) FROM entries")]
        out[column] = (statistics.fmean(sizes) if sizes else 0.0, max(sizes, default=0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database", type=Path)
    parser.add_argument("--record", metavar="NOTE", help="append a RESULTS.md row, with this note")
    args = parser.parse_args()
    conn = sqlite3.connect(f"file:{args.database}?mode=ro", uri=True)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    tables = by_table(conn)
    total = sum(t[1] for t in tables)
    rows = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    print(f"{args.database}: {total:,} bytes in pages of {page_size}; entries rows {rows:,}")
    print(f"{'name':40} {'MB':>9} {'share':>6} {'unused MB':>10} {'overflow MB':>12}")
    for name, size, unused, overflow in tables:
        print(f"{name:40} {size / 1e6:9.1f} {size / total:6.1%} {unused / 1e6:10.1f} {overflow / 1e6:12.1f}")
    sizes = entry_sizes(conn)
    for column, (mean, largest) in sizes.items():
        print(f"entries.{column}: mean {mean:,.0f} bytes, largest {largest:,}")
    if args.record:
        top = ", ".join(f"{n} {s / 1e6:.1f} MB ({u / 1e6:.1f} unused)" for n, s, u, _ in tables[:6])
        per = ", ".join(f"{c} {m:,.0f}" for c, (m, _) in sizes.items())
        record(
            f"store_size.py ({args.record})",
            f"store {total / 1e6:.1f} MB in {page_size}-byte pages; largest: {top}; "
            f"entries {rows:,} rows, mean bytes per column: {per}",
        )


if __name__ == "__main__":
    main()
