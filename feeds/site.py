"""What the site answers from the topics index rather than from one stored document: finding a
topic among thousands (`/topics?q=`, sorted, paged, as HTML or JSON) and OPML subscription
lists. Pure: the index in, bytes out; the app keeps what it made per index version.

Names are compared by their topic key (feeds.ids.topic_key: case, diacritics, width and Chinese
script folded), so `erdogan` finds `Erdoğan` and 苏丹 finds 蘇丹.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import quoteattr

from feeds.ids import topic_key
from feeds.render import feed_url, page_url
from feeds.render.html import topics_page
from feeds.render.markup import text, xml_safe
from feeds.render.topics import topic_feeds
from feeds.search import MAX_QUERY_CHARS

PER_PAGE = 100
SORTS = ("activity", "name", "recent")


@dataclass(frozen=True)
class IndexedTopic:
    name: str
    slug: str
    events: int
    updated: str | None
    key: str  # the folded name searched

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "slug": self.slug, "events": self.events, "updated": self.updated}


@dataclass(frozen=True)
class TopicIndex:
    """Every topic of the stored /topics document (most events first), with its folded name."""

    topics: tuple[IndexedTopic, ...]
    by_slug: dict[str, IndexedTopic]

    @classmethod
    def parse(cls, body: bytes) -> TopicIndex:
        topics = tuple(
            IndexedTopic(t["name"], t["slug"], t["events"], t["updated"], topic_key(t["name"]))
            for t in json.loads(body)
        )
        return cls(topics, {t.slug: t for t in topics})

    def search(self, query: str, sort: str = "activity") -> list[IndexedTopic]:
        """Topics whose folded name holds the folded query (a whole-name match first, then names
        starting with it, then names with a word starting with it, then the rest), each group by
        `sort`; every topic when the query is empty."""
        wanted = topic_key(query)
        found = list(self.topics)
        if wanted:
            found = [t for t in found if wanted in t.key]
        if sort == "name":
            found.sort(key=lambda t: (t.key, t.slug))
        elif sort == "recent":
            found.sort(key=lambda t: (t.updated or "", t.events), reverse=True)
        if wanted:

            def rank(t: IndexedTopic) -> int:
                if t.key == wanted:
                    return 0
                if t.key.startswith(wanted):
                    return 1
                return 2 if f" {wanted}" in f" {t.key}" else 3

            found.sort(key=rank)  # stable: the chosen order within each group
        return found


@dataclass(frozen=True)
class Query:
    """A request for the index, normalised: every spelling of one question is one cache key."""

    q: str = ""
    sort: str = "activity"
    page: int = 1

    @classmethod
    def of(cls, params: dict[str, str]) -> Query:
        """Raises ValueError naming the parameter that is wrong."""
        q = " ".join(params.get("q", "").split())
        if len(q) > MAX_QUERY_CHARS:  # as /search: a bounded key for the cache of answers
            raise ValueError(f"q: at most {MAX_QUERY_CHARS} characters, got {len(q):,}")
        sort = params.get("sort", "activity") or "activity"
        if sort not in SORTS:
            raise ValueError(f"sort: use one of {', '.join(SORTS)}, got {sort!r}")
        page = params.get("page", "1") or "1"
        if not (page.isdigit() and page[0] != "0"):
            raise ValueError(f"page: use 1, 2, ..., got {page!r}")
        return cls(q, sort, int(page))


def topics_html(base_url: str, site: str, language: str, author: str, index: TopicIndex, query: Query) -> bytes | None:
    """The page of topics a query asks for; None past the last page."""
    found = index.search(query.q, query.sort)
    pages = max(1, math.ceil(len(found) / PER_PAGE))
    if query.page > pages:
        return None
    shown = found[(query.page - 1) * PER_PAGE : query.page * PER_PAGE]
    rows = [(t.name, page_url(base_url, f"topics/{t.slug}"), t.events, (t.updated or "")[:10]) for t in shown]

    def link(**changes: Any) -> str:
        params = {"q": query.q, "sort": query.sort, "page": query.page, **changes}
        kept = {k: v for k, v in params.items() if v and not (k == "sort" and v == "activity") and v != 1}
        return base_url.rstrip("/") + "/topics" + (f"?{urlencode(kept)}" if kept else "")

    return topics_page(
        base_url=base_url,
        site=site,
        language=language,
        author=author,
        query=query.q,
        sort=query.sort,
        rows=rows,
        total=len(found),
        page=query.page,
        pages=pages,
        sorts={s: link(sort=s, page=1) for s in SORTS},
        previous=link(page=query.page - 1) if query.page > 1 else "",
        next=link(page=query.page + 1) if query.page < pages else "",
        opml=base_url.rstrip("/") + "/opml?topics=" + ",".join(t.slug for t in shown[:50]) if shown else "",
        search_page=base_url.rstrip("/") + "/search?" + urlencode({"q": query.q}),
        search_feed=base_url.rstrip("/") + "/feeds/search.atom?" + urlencode({"q": query.q}),
    )


def topics_json(index: TopicIndex, base_url: str, query: Query) -> bytes | None:
    """A page of the index as JSON: {total, page, pages, next, topics: [...]}; None past the end."""
    found = index.search(query.q, query.sort)
    pages = max(1, math.ceil(len(found) / PER_PAGE))
    if query.page > pages:
        return None
    shown = found[(query.page - 1) * PER_PAGE : query.page * PER_PAGE]
    body = {
        "total": len(found),
        "page": query.page,
        "pages": pages,
        "topics": [{**t.as_json(), "feeds": topic_feeds(base_url, t.slug)} for t in shown],
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def opml(base_url: str, site: str, topics: list[IndexedTopic], modified: dt.datetime) -> bytes:
    """OPML 2.0: one outline per topic feed (`type="rss"`, `xmlUrl`, `htmlUrl`, `title`, `text`)."""
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<opml version="2.0">',
        "  <head>",
        f"    <title>{text(site)}: topics</title>",
        f"    <dateModified>{modified.strftime('%a, %d %b %Y %H:%M:%S GMT')}</dateModified>",
        "  </head>",
        "  <body>",
    ]
    for t in topics:
        attrs = {
            "type": "rss",
            "text": t.name,
            "title": t.name,
            "xmlUrl": feed_url(base_url, f"topics/{t.slug}", "rss"),
            "htmlUrl": page_url(base_url, f"topics/{t.slug}"),
        }
        lines.append("    <outline " + " ".join(f"{k}={quoteattr(xml_safe(v))}" for k, v in attrs.items()) + "/>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines).encode("utf-8")
