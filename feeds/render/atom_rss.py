"""RSS 2.0 and Atom 1.0 with feedgen.

feedgen stamps `updated`/`lastBuildDate` with the render time and prepends entries; both are
overridden here (dates from the events, `order="append"`) so unchanged content gives unchanged
bytes. Its RFC 822 formatter flips the process locale, so renders take a lock.
"""

from __future__ import annotations

import mimetypes
import threading

from feedgen.feed import FeedGenerator
from lxml import etree

from feeds.render import Entry, FeedInfo

_LOCK = threading.Lock()
ATOM_NS = "http://www.w3.org/2005/Atom"
TOMBSTONE_NS = "http://purl.org/atompub/tombstones/1.0"
HISTORY_NS = "http://purl.org/syndication/history/1.0"


def _image_type(url: str) -> str:
    guessed, _ = mimetypes.guess_type(url.split("?", 1)[0])
    return guessed if guessed and guessed.startswith("image/") else "image/jpeg"


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
    fg.generator("feeds", uri="https://pypi.org/project/feedgen/")
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
        fe.summary(entry.summary_text)
        fe.description(entry.summary_text)
        fe.content(entry.content_html, type="CDATA" if fmt == "rss" else "html")
        fe.published(event.published)
        fe.pubDate(event.published)
        fe.updated(event.updated)
        for topic in event.topics:
            fe.category(term=topic.slug, label=topic.name, scheme=info.url(fmt, f"topics/{topic.slug}"))
        if event.page.image:
            fe.enclosure(event.page.image, "0", _image_type(event.page.image))
    return fg


def _entry_links(element: etree._Element, entry: Entry) -> None:
    # feedgen 1.0 drops rel/type of entry links (it reads them from the new element), which would
    # turn the enclosure into an alternate link: write them here instead.
    for link in element.findall(f"{{{ATOM_NS}}}link"):
        element.remove(link)
    at = list(element).index(element.find(f"{{{ATOM_NS}}}updated")) + 1
    image = entry.event.page.image
    if image:
        element.insert(at, etree.Element(f"{{{ATOM_NS}}}link", href=image, rel="enclosure", type=_image_type(image)))
    if entry.link:
        element.insert(at, etree.Element(f"{{{ATOM_NS}}}link", href=entry.link, rel="alternate", type="text/html"))


def render_atom(info: FeedInfo, entries: list[Entry]) -> bytes:
    with _LOCK:
        fg = _generator(info, entries, "atom")
        xml = fg.atom_str()
    # Re-parsed so every element is namespaced (feedgen builds un-namespaced elements under a
    # default namespace) before RFC 5005/6721 elements are added.
    root = etree.fromstring(xml)
    for element, entry in zip(root.iterfind(f"{{{ATOM_NS}}}entry"), entries, strict=True):
        _entry_links(element, entry)
    for rel, name in info.links.items():
        etree.SubElement(root, f"{{{ATOM_NS}}}link", href=info.url("atom", name), rel=rel, type="application/atom+xml")
    for event in info.deleted:
        assert event.deleted is not None
        tomb = etree.SubElement(root, f"{{{TOMBSTONE_NS}}}deleted-entry", ref=event.guid, when=event.deleted.isoformat())
        etree.SubElement(tomb, f"{{{TOMBSTONE_NS}}}comment").text = "This event was removed from its source."
    if info.archive:
        root.insert(0, etree.Element(f"{{{HISTORY_NS}}}archive"))
    etree.cleanup_namespaces(root, top_nsmap={"at": TOMBSTONE_NS, "fh": HISTORY_NS} if (info.deleted or info.archive) else None)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def render_rss(info: FeedInfo, entries: list[Entry]) -> bytes:
    with _LOCK:
        fg = _generator(info, entries, "rss")
        xml = fg.rss_str()
    root = etree.fromstring(xml)
    channel = root.find("channel")
    assert channel is not None
    for rel, name in info.links.items():
        etree.SubElement(channel, f"{{{ATOM_NS}}}link", href=info.url("rss", name), rel=rel, type="application/rss+xml")
    if info.archive:
        channel.insert(0, etree.Element(f"{{{HISTORY_NS}}}archive"))
    etree.cleanup_namespaces(root, top_nsmap={"fh": HISTORY_NS} if info.archive else None)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
