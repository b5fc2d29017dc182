"""An event page or a day listing written back in the shapes the readers take (markdown, JSON,
XML): what the site serves at an event's archive URL (`/news/YYYY/MM/D/<slug>.md|json|xml`) and a
day's (`/news/YYYY/MM/D/index.md|json|xml`), so that another feed server, or this one, can ingest
it. Pure; reading what is written gives the same page or listing (tests/test_pages.py).

Text is written with HTML character references where markdown or the readers would take it for
syntax (`&`, `[`, `]`, `_`, `<`): the readers decode them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from feeds.model import DayEntry, DayListing, Page

_KIND_LABELS = {"first": "First version", "update": "Update", "current": "Current version"}
_MD_TEXT = str.maketrans({"&": "&amp;", "[": "&#91;", "]": "&#93;", "_": "&#95;", "<": "&lt;", "\n": " "})
_MD_URL = str.maketrans({"&": "&amp;", "(": "&#40;", ")": "&#41;", " ": "%20"})


def archive_url(path: str, ext: str) -> str:
    """`/news/2018/01/01/slug` -> `/news/2018/01/1/slug.ext`: the archive's own shape (day unpadded)."""
    _, news, year, month, day, slug = path.split("/", 5)
    return f"/{news}/{year}/{month}/{int(day)}/{slug}.{ext}"


def day_url(date: dt.date, ext: str) -> str:
    """A day's listing at the archive's own shape (day unpadded)."""
    return f"/news/{date:%Y}/{date:%m}/{date.day}/index.{ext}"


def day_entry(page: Page) -> DayEntry:
    """What a day listing says of an event: its current page's headline, heading, summary and
    the context names it gives besides its heading."""
    return DayEntry(
        headline=page.headline,
        path=page.path,
        heading=page.heading,
        summary=" ".join(page.summary.split()),
        contexts=tuple(n for n in page.topics if n != page.heading),
    )


def _timestamp(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def to_json(page: Page) -> bytes:
    doc: dict[str, Any] = {
        "date": page.date.isoformat(),
        "heading": page.heading,
        "headline": page.headline,
        "summary": page.summary,
        "sources": [{"name": s.name, "url": s.url} for s in page.sources],
        "image": page.image,
        "related": [
            {
                "headline": r.headline,
                "url": r.url,
                "contexts": ", ".join(r.contexts) if r.ambiguous else list(r.contexts),
            }
            for r in page.related
        ],
        "changes": [
            {"headline": c.headline, "url": c.url, "kind": c.kind, "timestamp": _timestamp(c.timestamp)}
            for c in page.changes
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def to_xml(page: Page) -> bytes:
    out = [f"<?xml version='1.0' encoding='utf-8'?>\n<event date={quoteattr(page.date.isoformat())}>"]
    if page.heading:
        out.append(f"  <heading>{escape(page.heading)}</heading>")
    out.append(f"  <headline>{escape(page.headline)}</headline>")
    if page.summary:
        out.append(f"  <summary>{escape(page.summary)}</summary>")
    if page.sources:
        out.append("  <sources>")
        out += [f"    <source url={quoteattr(s.url)}>{escape(s.name)}</source>" for s in page.sources]
        out.append("  </sources>")
    if page.image:
        out.append(f"  <image url={quoteattr(page.image)}/>")
    if page.related:
        out.append("  <related>")
        for r in page.related:
            if r.ambiguous:
                contexts = f"<contexts>{escape(', '.join(r.contexts))}</contexts>"
            else:
                contexts = "".join(f"<context>{escape(c)}</context>" for c in r.contexts)
            out.append(f"    <event url={quoteattr(r.url)}><headline>{escape(r.headline)}</headline>{contexts}</event>")
        out.append("  </related>")
    if page.changes:
        out.append("  <changes>")
        for c in page.changes:
            stamp = f" timestamp={quoteattr(ts)}" if (ts := _timestamp(c.timestamp)) else ""
            out.append(
                f"    <change url={quoteattr(c.url)} kind={quoteattr(c.kind)}{stamp}>{escape(c.headline)}</change>"
            )
        out.append("  </changes>")
    out.append("</event>\n")
    return "\n".join(out).encode("utf-8")


def _md(value: str) -> str:
    return value.translate(_MD_TEXT)


def to_markdown(page: Page) -> bytes:
    formats = "  ".join(
        f"[{label}]({archive_url(page.path, ext)})"
        for label, ext in (("HTML", "html"), ("JSON", "json"), ("XML", "xml"))
    )
    day = f"/news/{page.date:%Y}/{page.date:%m}/{page.date.day}/index.md"
    out = [f"Formats: {formats}", "", f"### [{page.date.isoformat()}]({day})", ""]
    if page.heading:
        out.append(f"##### {_md(page.heading)}")
    out += [f"# {_md(page.headline)}", ""]
    if page.summary:
        out += [page.summary.replace("&", "&amp;"), ""]
    if page.sources or page.image:
        out.append("### Sources:")
        out.append("")
        out += [f"1. [{_md(s.name)}]({s.url.translate(_MD_URL)})" for s in page.sources]
        if page.image:
            out.append(f"1. [Cover Image]({page.image.translate(_MD_URL)})")
        out.append("")
    if page.changes:
        out += ["### Changes:", ""]
        for c in page.changes:
            stamp = f"{c.timestamp.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} " if c.timestamp else ""
            out.append(f"1. [{_md(c.headline)}]({c.url}) _{stamp}({_KIND_LABELS[c.kind]})_")
        out.append("")
    if page.related:
        out += ["### Related:", ""]
        for r in page.related:
            context = f" _Context: {', '.join(_md(c) for c in r.contexts)}_" if r.contexts else ""
            out.append(f"1. [{_md(r.headline)}]({r.url}){context}")
        out.append("")
    return "\n".join(out).encode("utf-8")


WRITERS = {"md": to_markdown, "json": to_json, "xml": to_xml}


def _previous_url(listing: DayListing, ext: str) -> str | None:
    if not listing.previous:
        return None
    _, _, year, month, day, _ = listing.previous.split("/", 5)
    return day_url(dt.date(int(year), int(month), int(day)), ext)


def day_markdown(listing: DayListing) -> bytes:
    formats = "  ".join(
        f"[{label}]({day_url(listing.date, ext)})"
        for label, ext in (("HTML", "html"), ("JSON", "json"), ("XML", "xml"))
    )
    out = [f"Formats: {formats}", "", f"## [{listing.date.isoformat()}]({day_url(listing.date, 'md')})", ""]
    for entry in listing.entries:
        if entry.heading:
            out.append(f"##### {_md(entry.heading)}")
        out.append(f"### [{_md(entry.headline)}]({archive_url(entry.path, 'md')})")
        if entry.summary:
            out.append(entry.summary.replace("&", "&amp;").replace("\n", " "))
        if entry.contexts:
            out.append(f"_Context: {', '.join(_md(c) for c in entry.contexts)}_")
        out.append("")
    if previous := _previous_url(listing, "md"):
        out += [f"## [Previous Day...]({previous})", ""]
    return "\n".join(out).encode("utf-8")


def day_json(listing: DayListing) -> bytes:
    doc = {
        "date": listing.date.isoformat(),
        "previous": _previous_url(listing, "json"),
        "events": [
            {
                "heading": e.heading,
                "headline": e.headline,
                "url": archive_url(e.path, "json"),
                "summary": e.summary,
                "contexts": list(e.contexts),
            }
            for e in listing.entries
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def day_xml(listing: DayListing) -> bytes:
    previous = _previous_url(listing, "xml")
    attributes = f" previous={quoteattr(previous)}" if previous else ""
    out = [f"<?xml version='1.0' encoding='utf-8'?>\n<day date={quoteattr(listing.date.isoformat())}{attributes}>"]
    for e in listing.entries:
        out.append(f"  <event url={quoteattr(archive_url(e.path, 'xml'))}>")
        if e.heading:
            out.append(f"    <heading>{escape(e.heading)}</heading>")
        out.append(f"    <headline>{escape(e.headline)}</headline>")
        if e.summary:
            out.append(f"    <summary>{escape(e.summary)}</summary>")
        out += [f"    <context>{escape(c)}</context>" for c in e.contexts]
        out.append("  </event>")
    out.append("</day>\n")
    return "\n".join(out).encode("utf-8")


DAY_WRITERS = {"md": day_markdown, "json": day_json, "xml": day_xml}
