"""HTML pages, the fourth format of every document: `latest` is the front page, a day's archive
its day page, a topic's feed (and each older page of it) its topic page. Made like the feeds: an
entry's bytes once per event version, a page around already-made entries, from the same
description (so a page changes exactly when its feeds do and is served the same way).

Jinja2 escapes every value; the only markup let through is the entry content, which
feeds/render/content.py made of escaped text and sanitised HTML.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from feeds.model import FEED_FORMATS, Page
from feeds.pages.write import archive_url, day_url
from feeds.render import CONTENT_TYPES, Entry, FeedInfo, TopicFacts, page_url
from feeds.render.content import entry_html, http_url

TEMPLATES = Path(__file__).with_name("templates")
_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    auto_reload=False,  # templates change with the code: no file checked per page or entry
)
STYLESHEET = (TEMPLATES / "style.css").read_bytes()
ICON = (TEMPLATES / "icon.svg").read_bytes()
FEED_LABELS = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}

# An entry starts with its day, where the page groups entries by day reads it back.
_DAY_AT = len('<article class="event" data-day="')


def entry(item: Entry, base_url: str) -> bytes:
    event = item.event
    content = entry_html(item)
    # One heading level below the headline (the content's own headings name Sources, Related).
    content = content.replace("<h3>", "<h4>").replace("</h3>", "</h4>")
    if http_url(event.page.image):
        # The figure's image is the event's own: its headline describes it best.
        content = content.replace('" alt=""></figure>', f'" alt="{Markup.escape(event.page.headline)}"></figure>', 1)
    return (
        _ENV.get_template("entry.html")
        .render(
            day=event.published.date().isoformat(),
            anchor="e-" + event.guid.rpartition(":")[2],
            headline=event.page.headline,
            link=item.link,
            published=event.published.isoformat(),
            permalink=base_url.rstrip("/") + archive_url(event.page.path, "html"),
            shown_date=_day_label(event.published.date()),
            topics=[(t.name, page_url(base_url, f"topics/{t.slug}")) for t in event.topics],
            content=Markup(content),
            language=item.language,
        )
        .encode("utf-8")
    )


def _day_label(day: dt.date) -> str:
    return f"{day:%A}, {day.day} {day:%B %Y}"


def _by_day(items: Sequence[bytes]) -> list[tuple[str, str, Markup]]:
    """Entries (newest first) in runs of one day: (YYYY-MM-DD, label, their markup)."""
    runs: list[tuple[str, list[bytes]]] = []
    for item in items:
        day = item[_DAY_AT : _DAY_AT + 10].decode("ascii")
        if not runs or runs[-1][0] != day:
            runs.append((day, []))
        runs[-1][1].append(item)
    return [(day, _day_label(dt.date.fromisoformat(day)), Markup(b"".join(run).decode("utf-8"))) for day, run in runs]


@functools.lru_cache(maxsize=1024)
def chart(months: tuple[tuple[str, int], ...], width: int = 640, height: int = 120) -> Markup:
    """Events per month as a bar chart (inline SVG, no script): every month from the first to the
    last, empty ones included, each bar titled with its count. The bars are numbers only and written
    here: through the template they cost a topic of 25 years 4 ms a page. Kept by its months: a
    reworded event's topic pages show the same chart (1.4 ms for 25 years)."""
    if not months:
        return Markup("")
    counts = dict(months)
    first, last = months[0][0], months[-1][0]
    year, month = int(first[:4]), int(first[5:])
    series = []
    while f"{year:04d}-{month:02d}" <= last:
        key = f"{year:04d}-{month:02d}"
        series.append((key, counts.get(key, 0)))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    top = max(n for _, n in series)
    step = width / len(series)
    bar = round(max(step - 1, 0.5), 2)
    bars = "".join(
        f'<rect x="{round(i * step, 2)}" y="{height - (h := round(n / top * (height - 4), 2))}" width="{bar}" '
        f'height="{h}"><title>{key}: {n}</title></rect>\n'
        for i, (key, n) in enumerate(series)
    )
    return Markup(
        _ENV.get_template("chart.svg").render(
            bars=Markup(bars), width=width, height=height, first=first, last=last, total=sum(counts.values())
        )
    )


def _site_links(base_url: str) -> dict[str, str]:
    """What every page's header links to: the front page, the topics, the stylesheet."""
    base = base_url.rstrip("/")
    return {"home": base + "/", "topics_url": base + "/topics", "stylesheet": base + "/static/style.css"}


def _kind(name: str) -> str:
    if name == "latest":
        return "home"
    return "day" if name.startswith("dates/") else "topic"


def document(info: FeedInfo, items: Sequence[bytes]) -> bytes:
    kind = _kind(info.name)
    facts = info.facts or TopicFacts()
    context: dict[str, Any] = {
        "info": info,
        "kind": kind,
        "site": info.site or info.title,
        **_site_links(info.base_url),
        "canonical": info.home,
        "feeds": [(FEED_LABELS[f], CONTENT_TYPES[f].partition(";")[0], info.url(f)) for f in FEED_FORMATS],
        "days": _by_day(items),
        "count": len(items),
        "links": {rel: page_url(info.base_url, name) for rel, name in info.links.items()},
        "link_names": info.links,
        "chart": chart(tuple(facts.months)),
        "related": [(name, page_url(info.base_url, f"topics/{slug}"), n) for slug, name, n in facts.related],
        "twins": {
            ext: info.base_url.rstrip("/") + day_url(dt.date.fromisoformat(info.name[6:]), ext)
            for ext in ("md", "json", "xml")
        }
        if kind == "day"
        else {},
        "opml": info.base_url.rstrip("/") + "/opml?topics=" + info.name.split("/")[1].replace("+", ",")
        if info.name.startswith("topics/")
        else "",
    }
    return _ENV.get_template(f"{kind}.html").render(context).encode("utf-8")


def topics_page(**context: Any) -> bytes:
    """The index of topics (feeds/site.py chooses which), a page of a table."""
    base_url = context["base_url"]
    info = FeedInfo(
        name="topics",
        title=f"{context['site']}: topics",
        description="Every topic, with its events and feeds",
        base_url=base_url,
        updated=dt.datetime.min.replace(tzinfo=dt.UTC),
        ttl_minutes=0,
        author=context["author"],
        language=context["language"],
    )
    context |= {
        "info": info,
        **_site_links(base_url),
        "canonical": base_url.rstrip("/") + "/topics",
        "feeds": [],
    }
    return _ENV.get_template("topics.html").render(context).encode("utf-8")


def event_page(base_url: str, site: str, language: str, author: str, page: Page, entry: bytes) -> bytes:
    """An event's own page, at the archive's URL: its entry as every page shows it, and the links to
    the same page in the shapes the ingester reads."""
    base = base_url.rstrip("/")
    canonical = base + archive_url(page.path, "html")
    info = FeedInfo(
        name="event",
        title=page.headline,
        description=(page.summary or page.headline)[:300],
        base_url=base_url,
        updated=dt.datetime.min.replace(tzinfo=dt.UTC),
        ttl_minutes=0,
        author=author,
        language=language,
    )
    context = {
        "info": info,
        "site": site,
        "headline": page.headline,
        **_site_links(base_url),
        "canonical": canonical,
        "feeds": [],
        "day_url": page_url(base_url, f"dates/{page.date.isoformat()}"),
        "twins": {ext: base + archive_url(page.path, ext) for ext in ("md", "json", "xml")},
        "entry": Markup(entry.decode("utf-8")),
    }
    return _ENV.get_template("event.html").render(context).encode("utf-8")
