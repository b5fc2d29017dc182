"""RSS 2.0, following the RSS Advisory Board's profile, with RFC 5005 links (atom:link) and
`fh:archive`. Written directly, an item at a time (see feeds/render/atom.py for why).

Items come after every other channel element, as the profile orders them (the W3C validator
reports "Misplaced Item" otherwise).
"""

from __future__ import annotations

import email.utils
import html
from collections.abc import Sequence

from feeds.render import Entry, FeedInfo, feed_url, image_type
from feeds.render.atom import ATOM_NS, HISTORY_NS
from feeds.render.content import entry_html, http_url
from feeds.render.markup import cdata, element, empty, rss_text, text

CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
MEDIA_TYPE = "application/rss+xml"


def item(entry: Entry, base_url: str) -> bytes:
    event = entry.event
    out = ["    <item>\n", f"      <title>{rss_text(event.page.headline)}</title>\n"]
    if entry.link:
        out.append(element("link", entry.link, "      "))
    # An item's description is presented as HTML by every reader (the profile: it "MUST be
    # suitable for presentation as HTML"), so plain text goes in HTML-escaped: a summary saying
    # "5 < 8" must not open a tag (W3C validator: "Invalid HTML").
    out.append(element("description", html.escape(entry.summary_text, quote=False), "      "))
    out.append(f"      <content:encoded>{cdata(entry_html(entry))}</content:encoded>\n")
    out.append(element("guid", event.guid, "      ", isPermaLink="false"))
    for topic in event.topics:
        domain = feed_url(base_url, f"topics/{topic.slug}", "rss")
        out.append(f'      <category domain="{text(domain)}">{rss_text(topic.name)}</category>\n')
    if image := http_url(event.page.image):
        # The image's size is unknown (it lives on the news site; fetching it to count bytes
        # would make rendering depend on the network). RSS 2.0 requires `length`; the profile says
        # "when an enclosure's size cannot be determined, a publisher SHOULD use a length of 0",
        # and the W3C validator accepts 0. One enclosure per item (the profile: SHOULD NOT have
        # more than one); the same image is also in the content.
        out.append(empty("enclosure", "      ", url=image, length="0", type=image_type(image)))
    out.append(element("pubDate", email.utils.format_datetime(event.published), "      "))
    out.append("    </item>\n")
    return "".join(out).encode("utf-8")


def document(info: FeedInfo, items: Sequence[bytes]) -> bytes:
    namespaces = f' xmlns:atom="{ATOM_NS}" xmlns:content="{CONTENT_NS}"'
    if info.archive:
        namespaces += f' xmlns:fh="{HISTORY_NS}"'
    head = [f"<?xml version='1.0' encoding='utf-8'?>\n<rss{namespaces} version=\"2.0\">\n  <channel>\n"]
    if info.archive:
        head.append("    <fh:archive/>\n")
    head += [
        f"    <title>{rss_text(info.title)}</title>\n",
        element("link", info.home, "    "),
        f"    <description>{rss_text(info.description)}</description>\n",
        empty("atom:link", "    ", href=info.url("rss"), rel="self", type=MEDIA_TYPE),
        *([empty("atom:link", "    ", href=info.hub, rel="hub")] if info.hub else []),
        element("docs", "https://www.rssboard.org/rss-specification", "    "),
        element("generator", "feeds", "    "),
        element("language", info.language, "    "),
        element("lastBuildDate", email.utils.format_datetime(info.updated), "    "),
        element("ttl", str(info.ttl_minutes), "    "),
    ]
    head += [
        empty("atom:link", "    ", href=info.url("rss", name), rel=rel, type=MEDIA_TYPE)
        for rel, name in info.links.items()
    ]
    return "".join(head).encode("utf-8") + b"".join(items) + b"  </channel>\n</rss>\n"
