"""Publishing: events in the store -> rendered feeds -> every encoding, made once -> the store.

`plan` decides what exists and what a change touches, `document` renders and stores documents,
`bulk` spreads many over processes, `changes` is what a refresh or a bulk load calls."""

from feeds.publish.changes import publish_all, publish_changes, publish_in_tiers
from feeds.publish.document import Memos, Writer, encode, etag_of, publish, publish_keys, publish_topics
from feeds.publish.plan import Paging, affected, arrival_order, describe, every_key, tiers

__all__ = [
    "Memos",
    "Paging",
    "Writer",
    "affected",
    "arrival_order",
    "describe",
    "encode",
    "etag_of",
    "every_key",
    "publish",
    "publish_all",
    "publish_changes",
    "publish_in_tiers",
    "publish_keys",
    "publish_topics",
    "tiers",
]
