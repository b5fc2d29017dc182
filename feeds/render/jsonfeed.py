"""JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/), written field by field to the spec.

Like the XML formats, an item's JSON is made once per event version and documents are joined
from those pieces.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from feeds.ids import page_path
from feeds.pages.write import archive_url
from feeds.render import Entry, FeedInfo
from feeds.render.content import entry_html, http_url


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def item(entry: Entry, base_url: str) -> bytes:
    event = entry.event
    doc: dict[str, Any] = {
        "id": event.guid,  # required, a string, unique and permanent
        "title": event.page.headline,
        "content_html": entry_html(entry),
        "summary": entry.summary_text,  # plain text, as the spec says
        "date_published": event.published.isoformat(),  # RFC 3339
        "date_modified": event.updated.isoformat(),
        "tags": [t.name for t in event.topics],
    }
    if entry.link:
        doc["url"] = entry.link
    # URL fields hold absolute URLs only (a page's relative or javascript: URL is left out).
    if image := http_url(event.page.image):
        doc["image"] = image
    if event.page.sources and (external := http_url(event.page.sources[0].url)):
        doc["external_url"] = external
    doc["_feeds"] = extension(entry, base_url)
    return _dumps(doc)


def _archive(url: str, base_url: str) -> str | None:
    """An archive page's URL here (every version of an event answers at its own), else None."""
    path = page_path(url)
    return base_url.rstrip("/") + archive_url(path, "html") if path else None


def extension(entry: Entry, base_url: str) -> dict[str, Any]:
    """The `_feeds` extension of an item (README, "JSON Feed extension"): what the content's HTML
    shows, as data, so that a client need not scrape it. URLs are absolute http(s) or null."""
    event, page = entry.event, entry.event.page
    return {
        "heading": page.heading,
        "topics": [{"slug": t.slug, "name": t.name} for t in event.topics],
        "sources": [{"name": s.name, "url": http_url(s.url)} for s in page.sources],
        "related": [
            {"headline": r.headline, "url": _archive(r.url, base_url), "contexts": list(r.contexts)}
            for r in page.related
        ],
        "versions": [
            {
                "headline": c.headline,
                "url": _archive(c.url, base_url),
                "kind": c.kind,
                "timestamp": c.timestamp.isoformat() if c.timestamp else None,
            }
            for c in page.changes
        ],
    }


def document(info: FeedInfo, items: Sequence[bytes]) -> bytes:
    feed: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",  # required
        "title": info.title,  # required
        "home_page_url": info.home,
        "feed_url": info.url("json"),  # identifies the feed; its own URL
        "description": info.description,
        "authors": [{"name": info.author}],
        "language": info.language,
    }
    if "next" in info.links:
        feed["next_url"] = info.url("json", info.links["next"])  # paging: older items
    if info.hub:
        feed["hubs"] = [{"type": "WebSub", "url": info.hub}]
    # `items` (required) last: the head object without its closing brace, then the items.
    return _dumps(feed)[:-1] + b',"items":[' + b",".join(items) + b"]}\n"
