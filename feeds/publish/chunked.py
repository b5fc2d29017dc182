"""One gzip member made of chunks compressed apart (as pigz does): a large document of which a
refresh changes a few chunks is compressed again only there.

Each chunk is raw deflate ended by a sync flush (byte-aligned, not final), so compressed chunks
join into one deflate stream; a final empty block, the CRC-32 of the whole and its length close
the member. A chunk's deflate depends on its bytes alone (no dictionary from the one before), so
the same chunks give the same bytes whichever of them were remembered."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable

from isal import isal_zlib

from feeds.render.topics import IndexRow, topics_document

# A chunk of the index ends after a topic whose slug hashes to 0 modulo this (about this many
# topics a chunk, tens of KB): boundaries follow the content, so a topic that appears, goes or
# moves in the order changes the chunks around it, not every chunk after it.
CHUNK_TOPICS = 256
MAX_CHUNK_TOPICS = 4 * CHUNK_TOPICS

# slug -> (row, its JSON object, whether a chunk ends after it), kept between calls per base URL.
ChunkMemo = dict[str, tuple[IndexRow, bytes, bool]]


def index_chunks(base_url: str, rows: Iterable[IndexRow], memo: ChunkMemo | None = None) -> list[bytes]:
    """The /topics document (`topics_document`: its concatenation) in chunks of topics; a topic
    whose row did not change since the last call (`memo`) is not written again."""
    memo = {} if memo is None else memo
    chunks: list[bytes] = []
    parts: list[bytes] = []
    for row in rows:
        kept = memo.get(row[0])
        if kept is None or kept[0] != row:
            ends = zlib.crc32(row[0].encode()) % CHUNK_TOPICS == 0
            # A topic's object as the index writes it (between "[" and "]\n").
            kept = memo[row[0]] = (row, topics_document(base_url, [row])[1:-2], ends)
        parts.append(kept[1])
        if kept[2] or len(parts) >= MAX_CHUNK_TOPICS:
            chunks.append(b",".join(parts))
            parts = []
    if parts or not chunks:
        chunks.append(b",".join(parts))
    # Separators end every chunk but the last: a chunk's bytes depend on its topics alone.
    chunks = [c + b"," for c in chunks[:-1]] + [chunks[-1] + b"]\n"]
    chunks[0] = b"[" + chunks[0]
    return chunks


# gzip header: deflate, no flags, no time (mtime 0, as every other rendition), no extra flags,
# operating system "unknown" (as Python's gzip with mtime=0).
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
FINAL = b"\x03\x00"  # an empty final block with fixed codes: what zlib's Z_FINISH writes for nothing


def deflate_chunk(chunk: bytes, level: int) -> bytes:
    """`chunk` as raw deflate blocks ending on a byte boundary, none of them final. ISA-L, as
    every other rendition's gzip: at its level 2 a 5 MB index takes 12 ms of CPU, zlib's level
    4 (as small) 96 ms."""
    compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
    return compressor.compress(chunk) + compressor.flush(isal_zlib.Z_SYNC_FLUSH)


class ChunkedGzip:
    """Compressed chunks remembered by the digest of their bytes, between calls. Only the chunks
    the last document used are kept: memory stays about one compressed document."""

    def __init__(self, level: int) -> None:
        self.level = level
        self._deflated: dict[bytes, bytes] = {}
        self.compressed = 0  # chunks compressed by the last call (the rest were remembered)

    def compress(self, chunks: Iterable[bytes]) -> bytes:
        """The gzip member of the chunks' concatenation."""
        kept: dict[bytes, bytes] = {}
        out = [HEADER]
        crc = size = compressed = 0
        for chunk in chunks:
            key = hashlib.sha1(chunk, usedforsecurity=False).digest()  # the fastest digest here
            deflated = kept.get(key) or self._deflated.get(key)
            if deflated is None:
                deflated = deflate_chunk(chunk, self.level)
                compressed += 1
            kept[key] = deflated
            out.append(deflated)
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
        out.append(FINAL + struct.pack("<II", crc, size & 0xFFFFFFFF))
        self._deflated, self.compressed = kept, compressed
        return b"".join(out)
