"""RSS 2.0 and Atom 1.0 made with feedgen: the reference the hand-written serializers in
feeds/render/ are checked against (tests/test_conformance.py), byte for byte after XML
canonicalisation. feeds used these renderers until it wrote documents from per-entry pieces (a
document is then joined, not built: see benchmarks/README.md).

feedgen stamps `updated`/`lastBuildDate` with the render time and prepends entries; both are
overridden here (dates from the events, `order="append"`) so unchanged content gives unchanged
bytes. Its RFC 822 formatter flips the process locale, so renders take a lock.

feedgen's output is then re-parsed with lxml to add what feedgen cannot write: RFC 5005 links and
`fh:archive`, RFC 6721 tombstones. Every feed-level element goes *before* the first entry/item:
RFC 4287's schema (Appendix B) allows no feed metadata after the entries, and the RSS Advisory
Board's profile puts items after every other channel element (the W3C validator reports
"must appear before all entries" / "Misplaced Item" otherwise, and stops reading the feed's links
at the first entry, so it would also miss `current` and the archive links).
"""

from __future__ import annotations

import html
import re
import threading

from feedgen.feed import FeedGenerator
from lxml import etree

from feeds.render import Entry, FeedInfo
from feeds.render import image_type as _image_type
from feeds.render.content import entry_html, http_url

_LOCK = threading.Lock()
ATOM_NS = "http://www.w3.org/2005/Atom"
TOMBSTONE_NS = "http://purl.org/atompub/tombstones/1.0"
HISTORY_NS = "http://purl.org/syndication/history/1.0"


def _generator(info: FeedInfo, entries: list[Entry], fmt: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.id(info.id)
    fg.title(info.title)
    fg.subtitle(info.description)
    fg.description(info.description)
    fg.language(info.language)
    fg.author({"name": info.author})
    fg.link(href=info.url(fmt), rel="self", type=f"application/{'rss' if fmt == 'rss' else 'atom'}+xml")
    fg.link(href=info.home, rel="alternate", type="text/html")
    fg.generator("feeds")
    fg.updated(info.updated)
    fg.lastBuildDate(info.updated)
    fg.ttl(info.ttl_minutes)
    fg.docs("https://www.rssboard.org/rss-specification")
    for entry in entries:
        event = entry.event
        fe = fg.add_entry(order="append")
        fe.id(event.guid)
        fe.guid(event.guid, permalink=False)
        fe.title(event.page.headline)
        if entry.link:
            fe.link(href=entry.link, rel="alternate", type="text/html")
        fe.summary(entry.summary_text)  # Atom: a text construct, plain text as it is
        # RSS: an item's description is presented as HTML by every reader (RSS profile: it "MUST be
        # suitable for presentation as HTML"), so plain text goes in HTML-escaped: a summary
        # saying "5 < 8" must not open a tag (W3C validator: "Invalid HTML").
        fe.description(html.escape(entry.summary_text, quote=False))
        fe.content(entry_html(entry), type="CDATA" if fmt == "rss" else "html")
        fe.published(event.published)
        fe.pubDate(event.published)
        fe.updated(event.updated)
        for topic in event.topics:
            fe.category(term=topic.slug, label=topic.name, scheme=info.url(fmt, f"topics/{topic.slug}"))
        image = http_url(event.page.image)
        if image:
            # The image's size is unknown (it lives on the news site; fetching it to count bytes
            # would make rendering depend on the network and the bytes on someone else's
            # server). RSS 2.0 requires `length`; the RSS Advisory Board's profile says "when an
            # enclosure's size cannot be determined, a publisher SHOULD use a length of 0", and
            # the W3C validator accepts 0 and recommends it for an unknown length (its
            # "UseZeroForUnknown" message is for -1). So the enclosure stays, with length 0:
            # readers show it as the entry's image, and the same image is also in the content.
            # One enclosure per item only (the profile: an item SHOULD NOT contain more than one).
            fe.enclosure(image, "0", _image_type(image))
    return fg


def _entry_links(element: etree._Element, entry: Entry) -> None:
    # feedgen 1.0 drops rel/type of entry links (it reads them from the new element), which would
    # turn the enclosure into an alternate link: write them here instead.
    for link in element.findall(f"{{{ATOM_NS}}}link"):
        element.remove(link)
    at = list(element).index(element.find(f"{{{ATOM_NS}}}updated")) + 1
    image = http_url(entry.event.page.image)
    if image:
        element.insert(at, etree.Element(f"{{{ATOM_NS}}}link", href=image, rel="enclosure", type=_image_type(image)))
    if entry.link:
        element.insert(at, etree.Element(f"{{{ATOM_NS}}}link", href=entry.link, rel="alternate", type="text/html"))


def _before_first(parent: etree._Element, tag: str, elements: list[etree._Element]) -> None:
    """Insert elements, in order, just before the first `tag` child (at the end if none)."""
    first = parent.find(tag)
    at = list(parent).index(first) if first is not None else len(parent)
    for offset, element in enumerate(elements):
        parent.insert(at + offset, element)


def _hub_after_self(parent: etree._Element, info: FeedInfo) -> None:
    """WebSub's hub link (feedgen has no such relation), right after the self link."""
    if not info.hub:
        return
    own = next(e for e in parent.iterfind(f"{{{ATOM_NS}}}link") if e.get("rel") == "self")
    own.addnext(etree.Element(f"{{{ATOM_NS}}}link", href=info.hub, rel="hub"))


def render_atom(info: FeedInfo, entries: list[Entry]) -> bytes:
    with _LOCK:
        fg = _generator(info, entries, "atom")
        xml = fg.atom_str()
    # Re-parsed so every element is namespaced (feedgen builds un-namespaced elements under a
    # default namespace) before RFC 5005/6721 elements are added.
    root = etree.fromstring(xml)
    for element, entry in zip(root.iterfind(f"{{{ATOM_NS}}}entry"), entries, strict=True):
        _entry_links(element, entry)
        if entry.language:  # feedgen has no per-entry language
            element.set("{http://www.w3.org/XML/1998/namespace}lang", entry.language)
    _hub_after_self(root, info)
    head = [
        etree.Element(f"{{{ATOM_NS}}}link", href=info.url("atom", name), rel=rel, type="application/atom+xml")
        for rel, name in info.links.items()
    ]
    for tombstone in info.deleted:
        tomb = etree.Element(f"{{{TOMBSTONE_NS}}}deleted-entry", ref=tombstone.guid, when=tombstone.deleted.isoformat())
        etree.SubElement(tomb, f"{{{TOMBSTONE_NS}}}comment").text = "This event was removed from its source."
        head.append(tomb)
    _before_first(root, f"{{{ATOM_NS}}}entry", head)
    if info.archive:
        root.insert(0, etree.Element(f"{{{HISTORY_NS}}}archive"))
    etree.cleanup_namespaces(
        root, top_nsmap={"at": TOMBSTONE_NS, "fh": HISTORY_NS} if (info.deleted or info.archive) else None
    )
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


# RSS elements that hold plain text (not HTML): the channel's title and description, each item's
# title and category.
_RSS_PLAIN = re.compile(rb"(<(title|category)\b[^>]*>)([^<]*)(</\2>)")
_RSS_CHANNEL_DESCRIPTION = re.compile(rb"(<description>)([^<]*)(</description>)")


def _hex_references(text: bytes) -> bytes:
    # Same characters, other spelling: the RSS profile (Character Data) says a publisher SHOULD
    # encode "&" and "<" in plain text as &#x26; and &#x3C; (and ">" as &#x3E;), the form read
    # the same way by the widest number of aggregators (the W3C validator warns otherwise).
    return text.replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;").replace(b"&gt;", b"&#x3E;")


def _rss_character_data(xml: bytes) -> bytes:
    """Plain-text elements with hexadecimal references. Serialized text holds no `<` (lxml
    escapes it), so `[^<]*` is an element's whole text; the item descriptions (HTML, escaped
    once more) keep lxml's spelling, which means the same to an XML parser."""
    head, sep, items = xml.partition(b"<item>")
    head = _RSS_CHANNEL_DESCRIPTION.sub(lambda m: m[1] + _hex_references(m[2]) + m[3], head, count=1)
    return _RSS_PLAIN.sub(lambda m: m[1] + _hex_references(m[3]) + m[4], head + sep + items)


def render_rss(info: FeedInfo, entries: list[Entry]) -> bytes:
    with _LOCK:
        fg = _generator(info, entries, "rss")
        xml = fg.rss_str()
    root = etree.fromstring(xml)
    channel = root.find("channel")
    assert channel is not None
    _hub_after_self(channel, info)
    head = [
        etree.Element(f"{{{ATOM_NS}}}link", href=info.url("rss", name), rel=rel, type="application/rss+xml")
        for rel, name in info.links.items()
    ]
    _before_first(channel, "item", head)
    if info.archive:
        channel.insert(0, etree.Element(f"{{{HISTORY_NS}}}archive"))
    etree.cleanup_namespaces(root, top_nsmap={"fh": HISTORY_NS} if info.archive else None)
    return _rss_character_data(etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True))
