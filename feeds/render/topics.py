"""The `/topics` document: every topic with its slug, event count, last update and feed URLs."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable

from feeds.model import FEED_FORMATS
from feeds.render import feed_url

TOPICS_DOC = "_topics"  # stored as a rendition of this pseudo-feed, served like any feed

IndexRow = tuple[str, str, int, str | None]  # slug, name, events, updated (ISO 8601)
IndexMemo = dict[str, tuple[IndexRow, bytes, bool]]  # slug -> (row, its JSON object, whether a chunk ends after it)


# A chunk of the document ends after a topic whose slug hashes to 0 modulo this (about this many
# topics a chunk, tens of KB): boundaries follow the content, so a topic that appears, goes or
# moves in the order changes the chunks around it, not every chunk after it.
CHUNK_TOPICS = 256
MAX_CHUNK_TOPICS = 4 * CHUNK_TOPICS


def topics_document(base_url: str, rows: Iterable[IndexRow], memo: IndexMemo | None = None) -> bytes:
    """A JSON array of topic objects, in the order given. With `memo` (kept by the caller between
    calls, for one base URL), a topic whose row did not change since the last call is not
    written again: a refresh changes a few of 25,000 topics."""
    return b"".join(topic_chunks(base_url, rows, memo))


def topic_chunks(base_url: str, rows: Iterable[IndexRow], memo: IndexMemo | None = None) -> list[bytes]:
    """`topics_document` in chunks of topics (whose concatenation it is), each compressed apart
    and remembered (feeds/publish/chunked.py)."""
    memo = {} if memo is None else memo
    chunks: list[bytes] = []
    parts: list[bytes] = []
    for row in rows:
        kept = memo.get(row[0])
        if kept is None or kept[0] != row:
            ends = zlib.crc32(row[0].encode()) % CHUNK_TOPICS == 0
            kept = memo[row[0]] = (row, _topic(base_url, *row), ends)
        parts.append(kept[1])
        if kept[2] or len(parts) >= MAX_CHUNK_TOPICS:
            chunks.append(b",".join(parts))
            parts = []
    if parts or not chunks:
        chunks.append(b",".join(parts))
    # Separators go at the end of every chunk but the last, so that a chunk's bytes depend on its
    # topics alone, not on where it stands.
    chunks = [c + b"," for c in chunks[:-1]] + [chunks[-1] + b"]\n"]
    chunks[0] = b"[" + chunks[0]
    return chunks


def _topic(base_url: str, slug: str, name: str, events: int, updated: str | None) -> bytes:
    doc = {
        "name": name,
        "slug": slug,
        "events": events,
        "updated": updated,
        "feeds": topic_feeds(base_url, slug),
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def topic_feeds(base_url: str, slug: str) -> dict[str, str]:
    """A topic's feed URL in each format, as the index lists it."""
    return {fmt: feed_url(base_url, f"topics/{slug}", fmt) for fmt in FEED_FORMATS}
