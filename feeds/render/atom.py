"""Atom 1.0 (RFC 4287) with RFC 5005 history links and RFC 6721 tombstones.

Written directly, an entry at a time: an entry's bytes depend only on the event's version, so they
are made once and shared by every document showing that event (its day, `latest`, each topic
page). tests/test_conformance.py holds the output to RFC 4287's RELAX NG schema, the W3C
validator's messages and real parsers.

Feed metadata all comes *before* the first entry: RFC 4287's schema (Appendix B) allows none
after the entries, and the W3C validator stops reading the feed's links at the first entry.
"""

from __future__ import annotations

from collections.abc import Sequence

from feeds.render import Entry, FeedInfo, feed_url, image_type
from feeds.render.content import entry_html, http_url
from feeds.render.markup import attribute, element, empty, text

ATOM_NS = "http://www.w3.org/2005/Atom"
TOMBSTONE_NS = "http://purl.org/atompub/tombstones/1.0"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
MEDIA_TYPE = "application/atom+xml"


def entry(item: Entry, base_url: str) -> bytes:
    event = item.event
    # An entry from a source in another language than the feed's says its own (RFC 4287 allows
    # xml:lang on any element; RSS and JSON Feed have only the feed's).
    opening = f'  <entry xml:lang="{attribute(item.language)}">\n' if item.language else "  <entry>\n"
    out = [opening, element("id", event.guid, "    "), element("title", event.page.headline, "    ")]
    out.append(element("updated", event.updated.isoformat(), "    "))
    if item.link:
        out.append(empty("link", "    ", href=item.link, rel="alternate", type="text/html"))
    if image := http_url(event.page.image):
        out.append(empty("link", "    ", href=image, rel="enclosure", type=image_type(image)))
    out.append(element("content", entry_html(item), "    ", type="html"))
    out.append(element("summary", item.summary_text, "    "))  # a text construct: plain text
    for topic in event.topics:
        scheme = feed_url(base_url, f"topics/{topic.slug}", "atom")
        out.append(empty("category", "    ", term=topic.slug, scheme=scheme, label=topic.name))
    out.append(element("published", event.published.isoformat(), "    "))
    out.append("  </entry>\n")
    return "".join(out).encode("utf-8")


def document(info: FeedInfo, entries: Sequence[bytes]) -> bytes:
    namespaces = f' xmlns="{ATOM_NS}"'
    if info.archive:
        namespaces += f' xmlns:fh="{HISTORY_NS}"'
    if info.deleted:
        namespaces += f' xmlns:at="{TOMBSTONE_NS}"'
    head = [f"<?xml version='1.0' encoding='utf-8'?>\n<feed{namespaces} xml:lang=\"{attribute(info.language)}\">\n"]
    if info.archive:
        head.append("  <fh:archive/>\n")
    head += [
        element("id", info.id, "  "),
        element("title", info.title, "  "),
        element("updated", info.updated.isoformat(), "  "),
        f"  <author>\n    <name>{text(info.author)}</name>\n  </author>\n",
        empty("link", "  ", href=info.url("atom"), rel="self", type=MEDIA_TYPE),
        *([empty("link", "  ", href=info.hub, rel="hub")] if info.hub else []),
        empty("link", "  ", href=info.home, rel="alternate", type="text/html"),
        element("generator", "feeds", "  "),
        element("subtitle", info.description, "  "),
    ]
    head += [
        empty("link", "  ", href=info.url("atom", name), rel=rel, type=MEDIA_TYPE) for rel, name in info.links.items()
    ]
    for tombstone in info.deleted:
        head.append(
            f'  <at:deleted-entry ref="{attribute(tombstone.guid)}" when="{tombstone.deleted.isoformat()}">\n'
            "    <at:comment>This event was removed from its source.</at:comment>\n"
            "  </at:deleted-entry>\n"
        )
    return "".join(head).encode("utf-8") + b"".join(entries) + b"</feed>\n"
