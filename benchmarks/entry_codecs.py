"""What keeping an event's entries costs against making them again, from a loaded store.

    .venv/bin/python benchmarks/entry_codecs.py --config /tmp/big/feeds.toml [--sample 2000] [--record]

For a sample of stored entries (the four formats joined into one blob, as `feeds.store.entry_blobs`
packs them): the stored bytes and the time to encode and decode one, per codec and level; and
the time to make one entry in every format (and in HTML alone) from its event, read whole from
the store as publishing does. Medians over the sample, microseconds per entry, one process.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import brotli
from isal import isal_zlib

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import record
from feeds.config import load
from feeds.entries import entry_for, whole_events
from feeds.render import formats
from feeds.store import Store

Codec = tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]

CODECS: dict[str, Codec] = {
    "none": (lambda b: b, lambda b: b),
    "zlib-1": (lambda b: zlib.compress(b, 1), zlib.decompress),
    "zlib-6": (lambda b: zlib.compress(b, 6), zlib.decompress),
    "zlib-9": (lambda b: zlib.compress(b, 9), zlib.decompress),
    "isal-1": (lambda b: isal_zlib.compress(b, 1), isal_zlib.decompress),
    "isal-2": (lambda b: isal_zlib.compress(b, 2), isal_zlib.decompress),
    "isal-3": (lambda b: isal_zlib.compress(b, 3), isal_zlib.decompress),
    "brotli-5": (lambda b: brotli.compress(b, quality=5), brotli.decompress),
    "brotli-1": (lambda b: brotli.compress(b, quality=1), brotli.decompress),
}
SEPARATE = "zlib-6 per format"  # the four formats compressed each alone, for comparison


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """Microseconds of the fastest of `repeat` calls (a shared machine: the least disturbed)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e6


async def sample(config: Path, n: int) -> tuple[list[tuple[str, dict[str, bytes]]], dict[str, float]]:
    settings = load(config)
    store = await Store.open(settings.database)
    try:
        keys = [k for (k,) in await store._read("SELECT event FROM entries ORDER BY random() LIMIT ?", (n,))]
        # Reads as publishing makes them, 100 keys at once (one IN list over the readers), each
        # of other keys (not in SQLite's page cache yet): events read whole, stored entries.
        half = min(200, len(keys) // 2)
        costs, events, urls = {}, {}, {}
        start = time.perf_counter()
        for i in range(0, half, 100):
            found, linked = await whole_events(store, settings, keys[i : min(i + 100, half)])
            events.update(found)
            urls.update(linked)
        costs["read events (per entry, 100 at once)"] = (time.perf_counter() - start) * 1e6 / half
        start = time.perf_counter()
        for i in range(half, 2 * half, 100):
            await store.entries(keys[i : min(i + 100, 2 * half)])
        costs["read stored entries (per entry, 100 at once)"] = (time.perf_counter() - start) * 1e6 / half
        table = formats()
        made, html = [], []
        for event in events.values():
            entry = entry_for(settings, event, urls)
            made.append(timed(lambda e=entry: {fmt: f.entry(e, settings.base_url) for fmt, f in table.items()}))  # type: ignore[misc]
            html.append(timed(lambda e=entry: table["html"].entry(e, settings.base_url)))  # type: ignore[misc]
        costs["make 4 formats"] = statistics.median(made)
        costs["make html"] = statistics.median(html)
        stored = await store.entries(keys)
        return [(k, stored[k][1]) for k in keys if k in stored], costs
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--record", metavar="NOTE", help="append a RESULTS.md row, with this note")
    args = parser.parse_args()
    entries, costs = asyncio.run(sample(args.config, args.sample))
    blobs = [b"".join(f[fmt] for fmt in ("atom", "rss", "json", "html")) for _, f in entries]
    raw = statistics.fmean(map(len, blobs))
    print(f"{len(blobs)} entries, mean {raw:,.0f} bytes as rendered")
    lines = []
    for name, (encode, decode) in CODECS.items():
        packed = [encode(b) for b in blobs]
        size = statistics.fmean(map(len, packed))
        enc = statistics.median(timed(lambda b=b, f=encode: f(b)) for b in blobs)  # type: ignore[misc]
        dec = statistics.median(timed(lambda p=p, f=decode: f(p)) for p in packed)  # type: ignore[misc]
        lines.append(f"{name}: {size:,.0f} B ({raw / size:.2f}x), encode {enc:.0f} us, decode {dec:.0f} us")
    separate = statistics.fmean(sum(len(zlib.compress(v, 6)) for v in f.values()) for _, f in entries)
    lines.append(f"{SEPARATE}: {separate:,.0f} B ({raw / separate:.2f}x)")
    no_html = statistics.fmean(
        len(zlib.compress(b"".join(f[x] for x in ("atom", "rss", "json")), 6)) for _, f in entries
    )
    lines.append(f"zlib-6 without html: {no_html:,.0f} B")
    lines += [f"{what}: {us:.0f} us" for what, us in costs.items()]
    print("\n".join(lines))
    if args.record:
        record(f"entry_codecs.py ({args.record})", f"{len(blobs)} entries, mean {raw:,.0f} B: " + "; ".join(lines))


if __name__ == "__main__":
    main()
