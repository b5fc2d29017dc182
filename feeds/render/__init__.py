"""Rendering: (feed description, entries) -> bytes, pure. One renderer per format.

Nothing here reads a clock: every date in the output comes from the events, so the same content
always renders to the same bytes and keeps its ETag.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from feeds.ids import GUID_NAMESPACE
from feeds.model import Event, Tombstone
from feeds.search import query_string

CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


@dataclass(frozen=True)
class Entry:
    """An event with what rendering needs resolved: its link and its HTML/text content."""

    event: Event
    link: str | None
    content_html: str
    summary_text: str
    language: str | None = None  # its source's, where that is not the feed's (Atom `xml:lang`)


@dataclass(frozen=True)
class TopicFacts:
    """What a topic's page shows besides its events: events per month and the topics met most
    often with it."""

    months: tuple[tuple[str, int], ...] = ()  # (YYYY-MM, events), oldest first
    related: tuple[tuple[str, str, int], ...] = ()  # (slug, name, shared events)


@dataclass(frozen=True)
class FeedInfo:
    name: str  # `latest`, `dates/2017-09-28`, `topics/isil`
    title: str
    description: str
    base_url: str
    updated: dt.datetime
    ttl_minutes: int
    author: str
    language: str = "en"
    # RFC 5005 / paging relations -> feed names (e.g. {"prev-archive": "dates/2017-09-27"}).
    links: dict[str, str] = field(default_factory=dict)
    archive: bool = False
    deleted: tuple[Tombstone, ...] = ()
    site: str = ""  # the site's title
    subject: str = ""  # what the document is about: a topic's name, a day
    facts: TopicFacts | None = None  # a topic's head page
    query: str = ""  # a search feed's (its URLs carry it)
    hub: str = ""  # the WebSub hub that pushes this feed's changes (feeds/websub.py), if any

    def url(self, fmt: str, name: str | None = None) -> str:
        url = (
            page_url(self.base_url, name or self.name)
            if fmt == "html"
            else feed_url(self.base_url, name or self.name, fmt)
        )
        return url + (f"?{query_string(self.query)}" if self.query and name is None else "")

    @property
    def id(self) -> str:
        # Stable across base URL changes: readers that key on the feed id keep their state.
        return f"urn:uuid:{uuid.uuid5(GUID_NAMESPACE, 'feed:' + self.name)}"

    @property
    def home(self) -> str:
        """The document's own page: what a feed's home link (`alternate`, `home_page_url`) names."""
        return self.url("html")


def page_url(base_url: str, name: str) -> str:
    """The HTML page of a document: `/` for latest, a day at the archive's own shape
    (`/news/2018/01/1/index.html`, the day unpadded), `/topics/<slug>[/pages/K]`."""
    base = base_url.rstrip("/")
    if name == "latest":
        return base + "/"
    kind, _, value = name.partition("/")
    if kind == "dates":
        year, month, day = value.split("-")
        return f"{base}/news/{year}/{month}/{int(day)}/index.html"
    return f"{base}/{quote(name, safe='/+')}"


def feed_url(base_url: str, name: str, fmt: str) -> str:
    """A feed's URL. A topic slug in another script is percent-encoded as UTF-8 (RFC 3987's
    mapping of an IRI to a URI): RSS and JSON Feed carry URIs, and every reader can request it."""
    return f"{base_url.rstrip('/')}/feeds/{quote(name, safe='/+')}.{fmt}"  # `+` joins combined topics


def _render_version() -> str:
    """A digest of the renderers' own source: entries stored by other code are made again."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for path in sorted([*here.glob("*.py"), *(here / "templates").glob("*")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


RENDER_VERSION = _render_version()


def image_type(url: str) -> str:
    guessed, _ = mimetypes.guess_type(url.split("?", 1)[0])
    return guessed if guessed and guessed.startswith("image/") else "image/jpeg"


@dataclass(frozen=True)
class Format:
    """One output format: an entry's bytes (made once per event version, the same in every
    document), and a document around already-made entries."""

    entry: Callable[[Entry, str], bytes]  # (entry, base_url)
    document: Callable[[FeedInfo, Sequence[bytes]], bytes]


def formats() -> dict[str, Format]:
    from feeds.render import atom, html, jsonfeed, rss

    return {
        "rss": Format(rss.item, rss.document),
        "atom": Format(atom.entry, atom.document),
        "json": Format(jsonfeed.item, jsonfeed.document),
        "html": Format(html.entry, html.document),
    }
