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
