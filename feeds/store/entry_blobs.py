"""An event's entries as stored: its four formats in one compressed blob.

The formats of one entry say the same things (its headline, summary and links four times), so
compressed together they take a fraction of what each takes alone; and one row of a few KB
shares its page with others instead of leaving most of a 16 KiB page empty
(docs/architecture.md, "Entries"). The blob is in zlib's format: the lengths of the four parts,
then the parts, in ENTRY_FORMATS order.
"""

from __future__ import annotations

import struct
import zlib

from isal import isal_zlib

ENTRY_FORMATS = ("atom", "rss", "json", "html")
# ISA-L's level 1: a blob 8% larger than zlib's level 6 at a fifth of the CPU, decoded as fast
# (benchmarks/entry_codecs.py, benchmarks/RESULTS.md). Either zlib reads what the other writes.
LEVEL = 1
_LENGTHS = struct.Struct("<4I")


class DamagedEntry(ValueError):
    """A stored blob that does not decode to four parts of the lengths it states."""


def pack(fragments: dict[str, bytes]) -> bytes:
    """One blob of an entry's formats (format -> bytes; every one of ENTRY_FORMATS)."""
    parts = [fragments[fmt] for fmt in ENTRY_FORMATS]
    data = _LENGTHS.pack(*map(len, parts)) + b"".join(parts)
    return isal_zlib.compress(data, LEVEL)


def pack_columns(atom: bytes, rss: bytes, json: bytes, html: bytes) -> bytes:
    """`pack` as an SQL function of the entries table's former columns (schema 21)."""
    return pack({"atom": atom, "rss": rss, "json": json, "html": html})


def unpack(blob: bytes) -> dict[str, bytes]:
    """Format -> bytes of a blob made by `pack`; DamagedEntry if it is not one."""
    try:
        data = zlib.decompress(blob)
    except zlib.error as exc:
        raise DamagedEntry(f"not a zlib stream: {exc}") from exc
    if len(data) < _LENGTHS.size:
        raise DamagedEntry(f"{len(data)} bytes, fewer than its header")
    lengths = _LENGTHS.unpack_from(data)
    if _LENGTHS.size + sum(lengths) != len(data):
        raise DamagedEntry(f"parts of {sum(lengths)} bytes stated, {len(data) - _LENGTHS.size} held")
    out, at = {}, _LENGTHS.size
    for fmt, n in zip(ENTRY_FORMATS, lengths, strict=True):
        out[fmt] = data[at : at + n]
        at += n
    return out
