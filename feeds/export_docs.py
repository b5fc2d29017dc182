"""Which documents an export asks for (feeds/export.py), and at which URLs: every document the
store can show, enumerated from what it holds (feeds, dates, topics and their older pages,
events), never from its stored renditions (most documents are made on their first request); or,
after an export, only those a change since it may have touched.

A document is named as the manifest names it: a feed's name (`latest`, `dates/D`, `topics/S`,
`topics/S/pages/K`: its feeds, its page and a day's listing twins), `event:<key>` (an event's
page and twins), `index` (`/topics`, `/topics.json`, `/opml`), `static`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace

from feeds.config import Settings
from feeds.export_config import TWINS
from feeds.export_manifest import Manifest
from feeds.model import FEED_FORMATS, FeedKey
from feeds.pages.write import archive_url, day_url
from feeds.publish.plan import Paging, affected, tombstone_horizon
from feeds.render import feed_url, page_url
from feeds.render.topics import TOPICS_DOC
from feeds.store import Store, iso

STATIC = ("/static/style.css", "/static/icon.svg")
INDEX = "index"
EVENT = "event:"
Doc = tuple[str, tuple[str, ...]]  # (document, its URLs)
# More changes than this since the last export: walking every document is the cheaper way.
MOST_CHANGES = 20_000


def urls_of(doc: str, current: str = "") -> tuple[str, ...]:
    """The URLs of a document (`current`: an event's page path)."""
    if doc == "static":
        return STATIC
    if doc == INDEX:
        return ("/opml", "/topics", "/topics.json")
    if doc.startswith(EVENT):
        return tuple(archive_url(current, ext) for ext in TWINS)
    urls = [feed_url("", doc, fmt) for fmt in FEED_FORMATS] + [page_url("", doc)]
    if doc.startswith("dates/"):
        date = dt.date.fromisoformat(doc.removeprefix("dates/"))
        urls += [day_url(date, ext) for ext in TWINS if ext != "html"]
    return tuple(urls)


def date_of(url: str) -> str | None:
    """`/news/2018/01/1/x.html` -> `dates/2018-01-01` (None for another URL)."""
    parts = url.split("/")
    if len(parts) != 6 or parts[1] != "news":
        return None
    try:
        return f"dates/{dt.date(int(parts[2]), int(parts[3]), int(parts[4])).isoformat()}"
    except ValueError:
        return None


async def every_doc(store: Store, settings: Settings, size: int) -> AsyncIterator[list[Doc]]:
    """Every document the store can show, in parts of about `size`: the index and static files,
    the feeds (topics with their older pages), then the events a part at a time."""
    yield [("static", STATIC), (INDEX, urls_of(INDEX))]
    # Feeds are a few per day and topic (tens of thousands at most), not per event.
    slots = {t.slug: t.slots for t in await store.topics()}
    names = await store.feed_names()
    # Documents left with only tombstones (a day whose events were all removed) are still served.
    dates, topics = await store.tombstoned_feeds(iso(await tombstone_horizon(store, settings)))
    names += sorted(({f"dates/{d}" for d in dates} | {f"topics/{s}" for s, _ in topics}) - set(names))
    slots.update((s, n) for s, n in topics if s not in slots)
    for start in range(0, len(names), size):
        part: list[Doc] = []
        for name in names[start : start + size]:
            key = FeedKey.parse(name)
            part.append((name, urls_of(name)))
            if key.kind == "topic" and key.value in slots:
                pages = Paging(slots[key.value], settings.items_per_feed).archive_pages
                part += [(n, urls_of(n)) for n in (replace(key, page=p).name for p in range(1, pages + 1))]
        yield part
    after = ""
    while events := await store.live_events_after(after, size):
        yield [(EVENT + key, urls_of(EVENT, current)) for key, current in events]
        after = events[-1][0]


async def changed_docs(
    store: Store, settings: Settings, manifest: Manifest, renditions: int, cursor: int
) -> dict[str, tuple[str, ...]] | None:
    """Documents a change since the record (`renditions`: the store's renditions counter then,
    `cursor`: its last change) may have touched, with their URLs; None when so many changed that
    walking every document is cheaper.

    Stored documents written since are the store's own account; what is made on request (day
    listings, event pages) and what was never stored follow from the events changed since: their
    pages, their days, their topics and `latest`, as publishing finds them (`affected`)."""
    names: set[str] = {"latest"}
    stored = await store.renditions_since(renditions)
    if len(stored) > MOST_CHANGES:
        return None
    names |= {feed for feed, _ in stored if feed != TOPICS_DOC}
    events: list[str] = []
    while rows := await store.changes_since(cursor, 1000):
        events += [event for _, event, *_ in rows]
        cursor = rows[-1][0]
        if len(events) > MOST_CHANGES:
            return None
    docs: dict[str, tuple[str, ...]] = {INDEX: urls_of(INDEX)}
    for key, current, date, live in await store.event_places(events):
        names.add(f"dates/{date}")
        if live:
            docs[EVENT + key] = urls_of(EVENT, current)
    for key in events:
        docs.setdefault(EVENT + key, ())  # gone from the store: its exported files go
    names |= {f"topics/{slug}" for slug in await store.topics_of_events(events)}
    # What the export showed them in: the days an event left (its older pages' URLs name them).
    for file in manifest.of_docs([d for d in docs if d.startswith(EVENT)]).values():
        if day := date_of(file.url):
            names.add(day)
    for feed in await affected(store, settings, names, events):
        docs[feed.name] = urls_of(feed.name)
    return docs
