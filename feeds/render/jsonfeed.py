"""JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/), written field by field to the spec."""

from __future__ import annotations

import json
from typing import Any

from feeds.render import Entry, FeedInfo


def render_json(info: FeedInfo, entries: list[Entry]) -> bytes:
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
    items = []
    for entry in entries:
        event = entry.event
        item: dict[str, Any] = {
            "id": event.guid,  # required, a string, unique and permanent
            "title": event.page.headline,
            "content_html": entry.content_html,
            "summary": entry.summary_text,
            "date_published": event.published.isoformat(),  # RFC 3339
            "date_modified": event.updated.isoformat(),
            "tags": [t.name for t in event.topics],
        }
        if entry.link:
            item["url"] = entry.link
        if event.page.image:
            item["image"] = event.page.image
        if event.page.sources:
            item["external_url"] = event.page.sources[0].url
        items.append(item)
    feed["items"] = items  # required
    return json.dumps(feed, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
