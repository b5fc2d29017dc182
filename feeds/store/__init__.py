"""The store: one SQLite file in WAL mode, reached through aiosqlite.

Tables: `pages` (every version of every event page, as read), `aliases` (page path -> event key,
including versions only known from a Changes list), `events` (one row per version chain, its
current content), `topics` and `event_topics`, `renditions` (rendered feed documents, gzip and
Brotli, with validators and where each entry lies), `entries` (each event's entry as last made), `cursors` (per-source progress such as a git commit) and `meta`.

Writes go through one connection, one `BEGIN IMMEDIATE` transaction per batch, serialised by an
asyncio lock (statements of coroutines sharing an aiosqlite connection would interleave). A batch
says which feeds it touched so only those re-render.

The package follows the seams of the data: `schema` (migrations), `connection` (the writer, readers,
bulk mode), `records` (what goes in and what a batch reports), `batch` and `listings` (a batch, on the
writer thread), `topic_writes` (topic keys, slots and re-keying), and the reading sides `events`,
`topics`, `renditions` and `source_state`, which `Store` joins.
"""

from __future__ import annotations

from feeds.chains import event_updated
from feeds.store.changes import ChangeQueries
from feeds.store.connection import CACHE_KIB, PAGE_SIZE, READERS, StoreBase
from feeds.store.events import EventQueries
from feeds.store.records import BatchResult, Incoming, IncomingListing, TopicRow, from_iso, iso
from feeds.store.renditions import ContentVersion, Renditions
from feeds.store.schema import MIGRATIONS, SCHEMA_VERSION, _statements
from feeds.store.search_index import SearchQueries
from feeds.store.source_state import SourceState
from feeds.store.stats import StatsQueries
from feeds.store.topics import TopicQueries
from feeds.store.websub import WebSubQueries

__all__ = [
    "CACHE_KIB",
    "MIGRATIONS",
    "PAGE_SIZE",
    "READERS",
    "SCHEMA_VERSION",
    "BatchResult",
    "ContentVersion",
    "Incoming",
    "IncomingListing",
    "Store",
    "TopicRow",
    "_statements",
    "event_updated",
    "from_iso",
    "iso",
]


class Store(
    EventQueries,
    ChangeQueries,
    StatsQueries,
    WebSubQueries,
    TopicQueries,
    SearchQueries,
    Renditions,
    SourceState,
    StoreBase,
):
    """Async access to the database. Use `await Store.open(path)`; close with `await store.close()`."""
