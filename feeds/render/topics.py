"""The `/topics` document: every topic with its slug, event count, last update and feed URLs."""

from __future__ import annotations

import json
from collections.abc import Iterable

from feeds.model import FEED_FORMATS
from feeds.render import feed_url

TOPICS_DOC = "_topics"  # stored as a rendition of this pseudo-feed, served like any feed

IndexRow = tuple[str, str, int, str | None]  # slug, name, events, updated (ISO 8601)
IndexMemo = dict[str, tuple[IndexRow, bytes]]  # slug -> (row, its JSON object)


def topics_document(base_url: str, rows: Iterable[IndexRow], memo: IndexMemo | None = None) -> bytes:
    """A JSON array of topic objects, in the order given. With `memo` (kept by the caller between
    calls, for one base URL), a topic whose row did not change since the last call is not
    written again: a refresh changes a few of 25,000 topics."""
    memo = {} if memo is None else memo
    parts = []
    for row in rows:
        kept = memo.get(row[0])
        if kept is None or kept[0] != row:
            kept = memo[row[0]] = (row, _topic(base_url, *row))
        parts.append(kept[1])
    return b"[" + b",".join(parts) + b"]\n"


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
