"""What a store's documents were rendered with: the settings that reach their bytes, digested
and kept in the store's `meta` table. Publishing with other such settings (a new base URL, title,
page size, ...) renders every document again, so an existing store never keeps serving the old
ones; documents whose bytes come out the same keep their ETags.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import replace
from typing import Any

from feeds.config import Settings
from feeds.render import RENDER_VERSION
from feeds.store import Store

# Settings whose values reach a document's bytes: links and feed URLs (base_url; the sources' names,
# kinds, locations and link templates make entries' links, their languages entries' xml:lang),
# channel text (title, author, language), page cuts (items_per_feed), RSS <ttl>
# (refresh_interval), which tombstones a feed carries (tombstone_days), how many entries fit
# (max_feed_bytes). A setting added to Settings must be listed here or in OTHER_SETTINGS (a test
# holds the two to Settings' fields).
DOCUMENT_SETTINGS = (
    "base_url",
    "title",
    "author",
    "language",
    "items_per_feed",
    "refresh_interval",
    "tombstone_days",
    "max_feed_bytes",
    "sources",
    "websub",  # the hub the feeds advertise
    "websub_hub",
)
# Settings that reach only response headers, addresses, resources or bookkeeping.
OTHER_SETTINGS = (
    "database",
    "host",
    "port",
    "cache_max_age",
    "archive_max_age",
    "cache_stale_while_revalidate",
    "cache_stale_if_error",
    "settle_days",
    "cache_bytes",
    "workers",
    "origin",
    "follow_address",
    # What a page may hold decides what is stored, not how it is rendered.
    "max_document_bytes",
    "max_headline_chars",
    "max_summary_chars",
    "max_sources",
    "max_related",
    "max_contexts",
    "max_combined_topics",  # combined feeds are made on request, never stored
    # The variant decides what is stored (a store read with another is read again: feeds.refresh).
    "variant",
    # Aliases change the store's topics (keyed again when it is opened), and so what publishes.
    "topic_aliases",
    "access_log",
    "rate_limit",
    "rate_burst",
    "trusted_proxies",
    "subscriber_stats",
    "websub_lease_seconds",
    "websub_min_lease_seconds",
    "websub_max_lease_seconds",
    "websub_allow_private_callbacks",
    "websub_max_subscriptions",
    "websub_max_subscriptions_per_host",
)

DIGEST_KEY = "rendered_with"  # meta: the digest of the settings every document was last rendered with
BASE_URL_KEY = "rendered_base_url"  # meta: the base URL they were rendered with


def ttl_minutes(settings: Settings) -> int:
    """RSS <ttl>: the refresh interval in whole minutes (at least one)."""
    return max(1, settings.refresh_interval // 60)


def _value(settings: Settings, name: str) -> Any:
    if name == "sources":
        # Where a source is, how its entries link and their language reach bytes, not how it is crawled.
        return sorted((c.name, c.kind, c.location, c.link, c.language) for c in settings.sources)
    if name == "refresh_interval":
        return ttl_minutes(settings)
    return getattr(settings, name)


@functools.lru_cache(maxsize=16)
def settings_digest(settings: Settings) -> str:
    """A digest of everything besides the store's content that shapes a document's bytes: the
    document settings and the renderers' code."""
    values = [(name, _value(settings, name)) for name in DOCUMENT_SETTINGS]
    return hashlib.sha256(repr((values, RENDER_VERSION)).encode("utf-8")).hexdigest()[:32]


async def record(store: Store, settings: Settings) -> None:
    """Note that every document of the store is now rendered with `settings`."""
    await store.set_meta({DIGEST_KEY: settings_digest(settings), BASE_URL_KEY: settings.base_url})


async def needs_rerender(store: Store, settings: Settings) -> bool:
    """Whether the store's documents were rendered with other document settings (or by a version
    that kept no note of them). A store with no document yet is simply noted."""
    stored = await store.meta(DIGEST_KEY)
    if stored == settings_digest(settings):
        return False
    if stored is None and not await store.has_renditions():
        await record(store, settings)
        return False
    return True


async def for_store(store: Store, settings: Settings) -> Settings:
    """Settings for a command that renders without serving (refresh, ingest, publish): a base URL
    that is not configured is the one the store's documents were last rendered with (a server's
    address), so a refresh beside `feeds serve --port P` does not relink every document."""
    if not settings.follow_address:
        return settings
    base_url = await store.meta(BASE_URL_KEY)
    return replace(settings, base_url=base_url) if base_url else settings
