"""The `/topics` document: every topic with its slug, event count, last update and feed URLs."""

from __future__ import annotations

import json
from collections.abc import Iterable

from feeds.model import FORMATS
from feeds.render import feed_url
from feeds.store import TopicRow

TOPICS_DOC = "_topics"  # stored as a rendition of this pseudo-feed, served like any feed


def topics_document(base_url: str, rows: Iterable[TopicRow]) -> bytes:
    doc = [
        {
            "name": r.name,
            "slug": r.slug,
            "events": r.events,
            "updated": r.updated.isoformat() if r.updated else None,
            "feeds": {fmt: feed_url(base_url, f"topics/{r.slug}", fmt) for fmt in FORMATS},
        }
        for r in rows
    ]
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
