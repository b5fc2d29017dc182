"""The archive's markdown pages: event pages and day listings.

Real pages vary (see the Offstream samples): an optional `Formats:` line, unpadded dates, optional
`#####` heading, `### Source:` or `### Sources:`, leading spaces in titles, HTML character
references, numbering that repeats its last number, wiki leftovers with brackets inside titles.
Section names, markers and prefixes are read in every language of feeds/pages/labels.py. A
section no language names is left out of the page with a warning, never read as summary text.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from feeds.errors import ParseError, ParseWarning
from feeds.ids import page_path
from feeds.model import (
    UTC,
    Change,
    ChangeKind,
    DayEntry,
    DayListing,
    Page,
    Related,
    SourceLink,
    comma_parts,
    resolve_contexts,
)
from feeds.pages.guard import guarded
from feeds.pages.labels import COVER_IMAGE_NAMES, SECTIONS, labels, section_key
from feeds.render.markup import xml_safe


def _any(words: Iterable[str]) -> str:
    """A regex alternation of `words`, longest first."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_DATE_LINE = re.compile(r"^(?P<level>#{2,3})\s*\[\s*(?P<date>\d{4}-\d{1,2}-\d{1,2})\s*\]\([^)]*\)\s*$")
_HEADING = re.compile(r"^#####\s*(?P<text>.*?)\s*$")
_HEADLINE = re.compile(r"^#\s(?P<text>.*)$")
# `### <name>:` in any language (a date line or a listed page starts with `[`).
_SECTION = re.compile(r"^###\s+(?P<name>[^\s\[].*?)\s*[:：]\s*$")
# The title is greedy so brackets inside it (wiki leftovers) stay in the title.
_ITEM = re.compile(r"^\d+\.\s*\[(?P<title>.*)\]\((?P<url>\S*?)\)\s*(?:_(?P<tail>.*)_)?\s*$")
# A link after an item's own, split off from the end of the line: the Chinese archive writes a
# source's image there (`1. [新华网](...) [IMG](...)`).
_TRAILING_LINK = re.compile(r"^(?P<rest>.*\))\s+\[(?P<title>[^\[\]]*)\]\((?P<url>\S*)\)\s*$")
_LISTED = re.compile(r"^###\s*\[(?P<title>.*)\]\((?P<url>[^)\s]*)\)\s*$")
PREVIOUS_DAY = re.compile(r"^##\s*\[(?:" + _any(labels("previous day")) + r")[^\]]*\]\((?P<url>[^)\s]*)\)\s*$")

_KINDS: dict[str, ChangeKind] = {label: kind for kind in ("first", "update", "current") for label in labels(kind)}
_CHANGE_TAIL = re.compile(r"^(?:(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\s*)?\((?P<kind>" + _any(_KINDS) + r")\)$")
_CONTEXT = re.compile(r"^_?(?:" + _any(labels("context")) + r")\s*[:：]\s*(?P<names>.*?)_?\s*$")


def text(value: str) -> str:
    """Plain text of a title or name: references decoded, whitespace (any kind) collapsed,
    characters no feed can carry (C0 controls, `&#1;`, lone surrogates) dropped."""
    return " ".join(xml_safe(html.unescape(value)).split())


_REFERENCE = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def unescape_url(value: str) -> str:
    """A URL as written, with only complete character references decoded (`&amp;` -> `&`):
    html.unescape would also turn a query's `&para=` into `¶=`."""
    return _REFERENCE.sub(lambda m: html.unescape(m.group(0)), value.strip())


def parse_date(value: str, origin: str, field: str = "date") -> dt.date:
    try:
        y, m, d = (int(part) for part in value.split("-"))
        return dt.date(y, m, d)
    except (ValueError, OverflowError) as exc:
        raise ParseError(origin, f"not a date: {value[:80]!r}", field) from exc


def context_parts(names: str) -> tuple[str, ...]:
    """The parts of `A, B, C` as written. The archive does not quote names that hold a comma
    ("Austin, Texas"), so which parts form one name is decided where every known name is at hand
    (the store: feeds.store.topic_writes, with feeds.model.resolve_contexts)."""
    return tuple(p for p in (text(part) for part in names.split(",")) if p)


def split_contexts(names: str, known: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Split `A, B, C` by what this page alone knows: runs of parts that form one of `known`
    ("Boycott, Divestment and Sanctions") stay whole, a bare year joins the part before it."""
    whole = {tuple(p.casefold() for p in comma_parts(name)) for name in known if "," in name}
    return resolve_contexts(context_parts(names), lambda run: tuple(p.casefold() for p in run) in whole)


def _sections(lines: list[str], origin: str) -> tuple[dict[str, list[str]], list[ParseWarning]]:
    """The summary's lines (key "") and each known section's lines by role, a role's sections
    joined in order (`### Source:` and `### Sources:` alike). An unknown section's lines are left
    out, with a warning naming it."""
    sections: dict[str, list[str]] = {"": []}
    warnings: list[ParseWarning] = []
    current: list[str] | None = sections[""]
    for line in lines:
        if match := _SECTION.match(line):
            role = SECTIONS.get(section_key(match["name"]))
            if role is None:
                reason = f"unknown section {line.strip()!r}: its lines are left out"
                warnings.append(ParseWarning(origin, reason, "sections"))
                current = None
            else:
                current = sections.setdefault(role, [])
        elif current is not None:
            current.append(line)
    return sections, warnings


def _items(lines: list[str], origin: str, field: str) -> list[tuple[str, str, str]]:
    items = []
    for line in lines:
        if not line.strip():
            continue
        match = _ITEM.match(line.strip())
        if not match:
            raise ParseError(origin, f"not a list item: {line.strip()[:80]!r}", field)
        items.append((match["title"], match["url"], match["tail"] or ""))
    return items


def _links(lines: list[str], origin: str, field: str) -> list[tuple[str, str]]:
    """Every link of a list whose items may carry more than one (title, url), in line order."""
    links: list[tuple[str, str]] = []
    for line in lines:
        line, more = line.strip(), []
        while match := _TRAILING_LINK.match(line):
            more.append((match["title"], match["url"]))
            line = match["rest"]
        links += [(title, url) for title, url, _ in _items([line], origin, field)] + more[::-1]
    return links


def parse_event_markdown(source: str, path: str, origin: str) -> Page:
    return read_event_markdown(source, path, origin)[0]


@guarded
def read_event_markdown(source: str, path: str, origin: str) -> tuple[Page, tuple[ParseWarning, ...]]:
    """The page, and what was left out of it."""
    lines = source.replace("\r\n", "\n").split("\n")
    date_at = next((i for i, line in enumerate(lines) if _DATE_LINE.match(line.strip())), None)
    if date_at is None:
        raise ParseError(origin, "no date line (### [YYYY-MM-DD](...))", "date")
    date = parse_date(_DATE_LINE.match(lines[date_at].strip())["date"], origin)  # type: ignore[index]
    body = lines[date_at + 1 :]
    heading: str | None = None
    headline: str | None = None
    rest_at = len(body)
    for i, line in enumerate(body):
        if (m := _HEADING.match(line)) and headline is None:
            heading = text(m["text"]) or None
        elif (m := _HEADLINE.match(line)) and headline is None:
            headline = text(m["text"])
            rest_at = i + 1
            break
        elif line.strip():
            raise ParseError(origin, f"unexpected line before the headline: {line.strip()[:80]!r}", "headline")
    if not headline:
        raise ParseError(origin, "no headline (# ...)", "headline")
    sections, warnings = _sections(body[rest_at:], origin)
    # Decoded before whitespace is collapsed: the archive writes spaces as `&#x20;` / `&#x00A0;`.
    summary = "\n\n".join(t for p in "\n".join(sections[""]).split("\n\n") if (t := text(p)))
    sources: list[SourceLink] = []
    image: str | None = None
    for title, link in _links(sections.get("sources", []), origin, "sources"):
        if text(title).casefold() in COVER_IMAGE_NAMES:
            image = image or cover_image(unescape_url(link))  # the first usable one
        else:
            sources.append(SourceLink(text(title), unescape_url(link)))
    related = []
    for title, url, tail in _items(sections.get("related", []), origin, "related"):
        contexts = _CONTEXT.match(tail.strip())
        parts = context_parts(contexts["names"]) if contexts else ()
        related.append(Related(text(title), url, parts, ambiguous=len(parts) > 1))
    changes = []
    for title, url, tail in _items(sections.get("changes", []), origin, "changes"):
        m = _CHANGE_TAIL.match(tail.strip())
        if not m:
            raise ParseError(origin, f"not a change marker: {tail!r}", "changes")
        try:
            ts = dt.datetime.strptime(m["ts"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) if m["ts"] else None
        except ValueError as exc:
            raise ParseError(origin, f"not a time: {m['ts']!r}", "changes") from exc
        changes.append(Change(text(title), url, _KINDS[m["kind"]], ts))
    return Page(
        path=path,
        date=date,
        headline=headline,
        heading=heading,
        summary=summary,
        sources=tuple(sources),
        image=image,
        related=tuple(related),
        changes=tuple(changes),
    ), tuple(warnings)


def cover_image(url: str | None) -> str | None:
    """A page's image URL if it can be one: absolute http(s), a protocol-relative one (one real
    Cover Image is `//assets...`) taken as https. None for anything else (relative, another
    scheme, no host), so a later usable one is taken instead."""
    url = (url or "").strip()
    if url.startswith("//"):
        url = "https:" + url
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def parse_day_markdown(source: str, path: str, origin: str) -> DayListing:
    return read_day_markdown(source, path, origin)[0]


@guarded
def read_day_markdown(source: str, path: str, origin: str) -> tuple[DayListing, tuple[ParseWarning, ...]]:
    """The listing, and what was left out of it: a listing has no sections, so any `### <name>:`
    line is reported, and the lines after it are left out until the next listed page."""
    lines = source.replace("\r\n", "\n").split("\n")
    date: dt.date | None = None
    entries: list[DayEntry] = []
    previous: str | None = None
    heading: str | None = None
    pending: dict[str, str] | None = None
    warnings: list[ParseWarning] = []

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            entries.append(
                DayEntry(
                    headline=pending["headline"],
                    path=pending["path"],
                    heading=pending["heading"] or None,
                    summary=pending["summary"],
                    contexts=split_contexts(pending["contexts"], (pending["heading"],) if pending["heading"] else ()),
                    parts=context_parts(pending["contexts"]),
                )
            )
            pending = None

    for raw in lines:
        line = raw.strip()
        if (m := _DATE_LINE.match(line)) and date is None:
            date = parse_date(m["date"], origin)
        elif m := PREVIOUS_DAY.match(line):
            flush()
            previous = page_path(m["url"]) or m["url"]
        elif m := _HEADING.match(line):
            flush()
            heading = text(m["text"])
        elif m := _LISTED.match(line):
            flush()
            target = page_path(m["url"])
            if target is None:
                raise ParseError(origin, f"listed page is not a /news/ path: {m['url']!r}", "entries")
            pending = {
                "headline": text(m["title"]),
                "path": target,
                "heading": heading or "",
                "summary": "",
                "contexts": "",
            }
            heading = None
        elif _SECTION.match(line):
            flush()
            reason = f"section {line!r} in a day listing, which has none: its lines are left out"
            warnings.append(ParseWarning(origin, reason, "sections"))
        elif pending is not None and line:
            if c := _CONTEXT.match(line):
                pending["contexts"] = c["names"]
            else:
                pending["summary"] = text(line)
    flush()
    if date is None:
        raise ParseError(origin, "no date line (## [YYYY-MM-DD](...))", "date")
    return DayListing(path=path, date=date, entries=tuple(entries), previous=previous), tuple(warnings)
