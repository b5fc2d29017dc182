"""Every feed the server offers, held to the strictest checks we know of.

Corpora (each built once per module, every rendition read back from the store):
- `example`: the bundled example data (config/example/news), `items_per_feed` = 20;
- `paged`: the same with 5 items per feed (so topics have archive pages), then one event deleted
  at its source (so Atom feeds carry RFC 6721 tombstones);
- `edge`: the real archive samples (tests/data/offstream) plus made-up pages with what
  plain-text encodings trip over (`&`, `<`, `>`, quotes, non-ASCII), unusable image URLs
  (javascript:, quotes and spaces), and an entry web link template;
- `zh`: real pages of the Chinese archive (tests/data/offstream-zh), a source whose `language` is
  `zh`, 5 items per feed;
- `mixed`: the example data and the Chinese pages together, each source with its language: the
  feeds say `en`, the Chinese entries their own `xml:lang` in Atom.

Atom: RFC 4287's own RELAX NG schema (tests/data/schemas/atom.rng) and its Schematron rules,
RFC 3339 dates, unique ids, self links, RFC 5005 links to documents that exist, `fh:archive` in
date feeds, RFC 6721 tombstones. RSS 2.0: the specification and the RSS Advisory Board's profile.
JSON Feed 1.1: tests/data/schemas/jsonfeed-1.1.schema.json with real format checks. Both XML
formats are also held to every message of the W3C Feed Validation Service that can apply to
what we publish (W3C below): each check is labelled with the validator's message name, see
https://validator.w3.org/feed/docs/ (warning/<Name>.html, error/<Name>.html).

Reviewed W3C messages that are not checks here:
- DuplicateUpdated ("Two entries with the same value for atom:updated"): the store stamps every
  event of one ingest batch with the batch's time, so a bulk load gives equal values. They are
  accurate; the validator's own text says no action is needed then.
- UnknownNamespace for http://purl.org/atompub/tombstones/1.0: the validator's namespace table
  predates RFC 6721 (2012); the tombstones are standard and only appear for `tombstone_days`.
These two are all that the validator itself (github.com/w3c/feedvalidator, run offline over the
three corpora at AAA level: errors, warnings and notices) still reports.
- Messages about HTTP (EncodingMismatch, UnexpectedContentType, ...) concern the server:
  tests/test_http.py checks the media types and charset.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import html
import json
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import jsonschema
import lxml.html
import pytest
from lxml import etree

from feeds.config import Settings, SourceConfig
from feeds.entries import entry_for, whole_events
from feeds.model import Event, FeedKey, Page
from feeds.pages import parse_document
from feeds.publish import describe, publish_all, publish_changes
from feeds.render import feed_url
from feeds.render.content import event_url, http_url
from feeds.store import Incoming, Store
from tests.conftest import DATA, EVENT_PAGE, EXAMPLE, OFFSTREAM, OFFSTREAM_ZH, SAMPLE_RELPATH
from tests.feedgen_reference import render_atom, render_rss
from tests.helpers import documents, read_pages

SCHEMAS = DATA / "schemas"
ATOM = "http://www.w3.org/2005/Atom"
A = f"{{{ATOM}}}"
AT = "{http://purl.org/atompub/tombstones/1.0}"
FH = "{http://purl.org/syndication/history/1.0}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
XML_NS = "http://www.w3.org/XML/1998/namespace"
BASE_URL = "http://feeds.test"

# The registry of Atom link relations as the W3C validator lists it (UnregisteredAtomLinkRel).
REGISTERED_RELS = {
    "alternate", "current", "enclosure", "edit", "edit-media", "first", "last", "license", "next",
    "next-archive", "payment", "prev-archive", "previous", "related", "replies", "self", "service", "up",
    "hub",  # WebSub's, in IANA's registry of link relations
}  # fmt: skip
RFC5005_RELS = {"current", "first", "last", "next", "next-archive", "prev-archive", "previous"}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
# RFC 822 as the RSS profile recommends it: day name, two-digit day, four-digit year, seconds,
# and a zone every parser knows (GMT or +0000: our dates are UTC).
RFC822 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}:\d{2} (GMT|\+0000)$"
)
URN_UUID = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MEDIA_TYPE = re.compile(r"^[a-z]+/[a-z0-9.+-]+$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
UNSAFE_TAGS = {"script", "style", "iframe", "object", "embed", "applet", "form", "meta", "link", "base", "frame"}


# --- corpora ---------------------------------------------------------------------------------


@dataclass
class Corpus:
    name: str
    settings: Settings
    docs: dict[tuple[str, str], bytes]  # (feed name, format) -> body, every stored rendition
    events: list[Event]  # every live event
    latest: list[str]  # guids of the latest feed, newest first
    deleted: set[str] = field(default_factory=set)  # guids of events deleted at their source

    def url(self, feed: str, fmt: str) -> str:
        return feed_url(self.settings.base_url, feed, fmt)

    @cached_property
    def urls(self) -> dict[str, tuple[str, str]]:
        return {self.url(feed, fmt): (feed, fmt) for feed, fmt in self.docs}

    def of(self, fmt: str) -> Iterator[tuple[str, bytes]]:
        return ((feed, body) for (feed, f), body in sorted(self.docs.items()) if f == fmt)


EDGE_PAGES = {
    # Characters XML 1.0 cannot hold at all, raw and as references: dropped, never a broken feed.
    "news/2024/11/7/terminal-escapes.md": """\
### [2024-11-07](/news/2024/11/07/index.md)

##### Control\x01 characters
# A headline with a bell\x07, an escape\x1b[31m and &#1; a reference

A summary with a form feed\x0c, a NUL-like \x02 and \ufffe a non-character.
""",
    "news/2024/11/7/at-t-shares-fall.md": """\
### [2024-11-07](/news/2024/11/07/index.md)

##### AT&T <Partners> & "Friends"
# AT&T shares fall 5% as Q3 results miss; analysts say R&D < 8% & margins > 20% at <BIGCO>

Analysts at Smith & Wesson said 5 < 8 and 8 > 5, that the ticker <BIGCO> & its "guidance" &amp; \
outlook were over-reached, and that `x < y` in code. See \
[the filing](https://www.sec.gov/cgi-bin/browse-edgar?action=getcompany&CIK=0000732717&type=10-Q).

### Sources:

1. [Reuters & AP <wire>](https://www.reuters.com/markets/att-q3?x=1&y=2)
1. [Cover Image](https://img.example.com/photos/AT%26T_Q3_"chart"_é.png?size=1200&fmt=png)
""",
    "news/2024/11/8/erdogan-speech.md": """\
### [2024-11-08](/news/2024/11/08/index.md)

##### Recep Tayyip Erdoğan
# Erdoğan's “new era” speech — ‘Türkiye’ ≠ “Turkey” 🇹🇷

### Sources:

1. [Anadolu Ağency](https://www.aa.com.tr/en/politics/erdoğan-speech/1)
1. [Cover Image](javascript:alert(1))
""",
    "news/2024/11/8/no-image-no-summary.md": """\
### [2024-11-08](/news/2024/11/08/index.md)

# An event with a headline and nothing else.
""",
}


def edge_pages() -> list[Incoming]:
    pages = read_pages(OFFSTREAM, source="example")
    sample = parse_document(SAMPLE_RELPATH, EVENT_PAGE.read_bytes())
    assert isinstance(sample, Page)
    if sample.path not in {p.page.path for p in pages}:
        pages.append(Incoming(sample, SAMPLE_RELPATH, "example"))
    for relpath, text in EDGE_PAGES.items():
        page = parse_document(relpath, text.encode("utf-8"))
        assert isinstance(page, Page), relpath
        pages.append(Incoming(page, relpath, "example"))
    return sorted(pages, key=lambda p: p.page.path)


DELETED = (
    "news/2022/02/24/russian-forces-capture-the-chernobyl-nuclear-power-plant-and-the-surrounding-exclusion-zone-"
    "after-a-battle-with-ukrainian-troops.md"
)


async def build(name: str, root: Path) -> Corpus:
    tree = root / "tree"
    shutil.copytree(EXAMPLE / "news", tree / "news")
    settings = Settings(
        base_url=BASE_URL,
        database=str(root / "feeds.db"),
        refresh_interval=300,
        items_per_feed={"example": 20, "paged": 5, "edge": 3, "zh": 5, "mixed": 20}[name],
        sources=(
            SourceConfig(
                name="example",
                kind="directory",
                location=str(tree),
                link="https://offstream.news/{path}.html" if name == "edge" else "",
            ),
        ),
    )
    zh = SourceConfig(name="zh", kind="directory", location=str(OFFSTREAM_ZH), language="zh")
    if name == "zh":
        settings = replace(settings, sources=(zh,))
    elif name == "mixed":
        settings = replace(settings, sources=(replace(settings.sources[0], language="en"), zh))
    store = await Store.open(settings.database)
    try:
        if name == "edge":
            pages = edge_pages()
        else:
            pages = [] if name == "zh" else read_pages(tree, source="example")
            pages += read_pages(OFFSTREAM_ZH, source="zh") if name in ("zh", "mixed") else []
        await store.apply(pages)
        await publish_all(store, settings)
        deleted: set[str] = set()
        if name == "paged":
            key = next(p.page.path for p in pages if p.relpath == DELETED)
            gone = next(e for e in await store.events(FeedKey("latest"), 10_000) if e.key == key)
            result = await store.apply([], deleted=[key])
            assert result.deleted == {key}
            await publish_changes(store, settings, result.feeds, result.events)
            deleted.add(gone.guid)
        docs = await documents(store, settings)
        events = await store.events(FeedKey("latest"), 100_000)
        latest = [e.guid for e in await store.events(FeedKey("latest"), settings.items_per_feed)]
        return Corpus(name, settings, docs, events, latest, deleted)
    finally:
        await store.close()


@pytest.fixture(scope="module", params=["example", "paged", "edge", "zh", "mixed"])
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    name = request.param
    built = asyncio.run(build(name, tmp_path_factory.mktemp(f"corpus-{name}")))
    assert built.docs, "no feeds were rendered"
    return built


# --- shared checks ---------------------------------------------------------------------------


def plausible(when: dt.datetime) -> bool:
    """W3C ImplausibleDate: not before 1990, not in the future (ten minutes' slack)."""
    now = dt.datetime.now(dt.UTC)
    return dt.datetime(1990, 1, 1, tzinfo=dt.UTC) <= when <= now + dt.timedelta(minutes=10)


def rfc3339(value: str | None, where: str, problems: list[str]) -> dt.datetime | None:
    if value is None or not RFC3339.match(value):
        problems.append(f"{where}: not an RFC 3339 date-time: {value!r} (W3C InvalidRFC3339Date)")
        return None
    when = dt.datetime.fromisoformat(value)
    if when.utcoffset() != dt.timedelta(0):
        problems.append(f"{where}: not UTC: {value!r} (W3C W3CDTFDateNonUTC)")
    if not plausible(when):
        problems.append(f"{where}: implausible date {value!r} (W3C ImplausibleDate)")
    return when


def rfc822(value: str | None, where: str, problems: list[str]) -> dt.datetime | None:
    if value is None or not RFC822.match(value):
        problems.append(
            f"{where}: not an RFC 822 date with a four-digit year and GMT/+0000: {value!r} "
            "(W3C InvalidRFC2822Date / ProblematicalRFC822Date)"
        )
        return None
    when = email.utils.parsedate_to_datetime(value)
    if when.strftime("%a") != value[:3]:
        problems.append(f"{where}: wrong day of the week in {value!r} (W3C IncorrectDOW)")
    if not plausible(when):
        problems.append(f"{where}: implausible date {value!r} (W3C ImplausibleDate)")
    return when


def absolute_http(url: str | None) -> bool:
    if not url or any(c.isspace() or c in '"<>\\^`{|}' or ord(c) > 126 for c in url):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def html_problems(fragment: str, where: str) -> list[str]:
    """HTML meant for display: safe (W3C SecurityRisk, SecurityRiskAttr, DangerousStyleAttr) and
    with absolute URLs only (W3C ContainsRelRef)."""
    problems = []
    if not fragment.strip():
        return [f"{where}: empty (W3C NotBlank)"]
    for element in lxml.html.fragment_fromstring(fragment, create_parent="div").iter():
        if not isinstance(element.tag, str):
            continue
        if element.tag in UNSAFE_TAGS:
            problems.append(f"{where}: <{element.tag}> (W3C SecurityRisk)")
        for name, value in element.attrib.items():
            if name.startswith("on"):
                problems.append(f"{where}: {name} attribute (W3C SecurityRiskAttr)")
            if name == "style":
                problems.append(f"{where}: style attribute (W3C DangerousStyleAttr)")
            if name in ("href", "src", "cite", "longdesc", "background", "poster", "action"):
                scheme = urlsplit(value.strip()).scheme.lower()
                if scheme not in ("http", "https", "mailto") or (scheme != "mailto" and not urlsplit(value).hostname):
                    problems.append(f"{where}: {element.tag} {name}={value!r} is not absolute (W3C ContainsRelRef)")
    return problems


def xml_root(body: bytes, where: str) -> etree._Element:
    # Every feed is UTF-8 with an XML declaration saying so (W3C MissingEncoding, NotUTF8...).
    assert body.startswith(b"<?xml version='1.0' encoding='utf-8'?>"), where
    assert b"<!DOCTYPE" not in body and b"<!ENTITY" not in body, where  # W3C ContainsSystemEntity
    body.decode("utf-8")
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, (where, parsed.get("bozo_exception"))
    return etree.fromstring(body)


# --- Atom ------------------------------------------------------------------------------------


def atom_problems(corpus: Corpus, feed: str, body: bytes) -> list[str]:
    url = corpus.url(feed, "atom")
    root = xml_root(body, url)
    p: list[str] = []
    children = list(root)
    entries = root.findall(f"{A}entry")

    # W3C MisplacedMetadata (and RFC 4287's schema): feed metadata before every entry.
    seen_entry = False
    for child in children:
        if child.tag == f"{A}entry":
            seen_entry = True
        elif seen_entry and isinstance(child.tag, str):
            p.append(f"{url}: {child.tag} after the entries (W3C MisplacedMetadata)")

    # Namespaces: Atom, RFC 5005 history, RFC 6721 tombstones, nothing else (W3C UnknownNamespace
    # except RFC 6721, see the module docstring; W3C AvoidNamespacePrefix: Atom is the default).
    for element in root.iter():
        if isinstance(element.tag, str):
            ns = etree.QName(element).namespace
            if ns not in (ATOM, FH[1:-1], AT[1:-1]):
                p.append(f"{url}: element in namespace {ns} (W3C UnknownNamespace)")
    if root.nsmap.get(None) != ATOM or "atom" in root.nsmap:
        p.append(f"{url}: Atom is not the default namespace (W3C AvoidNamespacePrefix)")
    lang = root.get(f"{{{XML_NS}}}lang")
    if not lang or not LANGUAGE.match(lang):
        p.append(f"{url}: xml:lang {lang!r} (W3C InvalidLanguage)")

    # Required feed elements (W3C MissingElement), text constructs not blank.
    for name in ("id", "title", "updated"):
        if len(root.findall(f"{A}{name}")) != 1:
            p.append(f"{url}: needs exactly one atom:{name} (W3C MissingElement / DuplicateElement)")
    if not URN_UUID.match(root.findtext(f"{A}id") or ""):
        p.append(f"{url}: feed id {root.findtext(f'{A}id')!r} is no urn:uuid (W3C InvalidURN / NonCanonicalURI)")
    if not (root.findtext(f"{A}title") or "").strip():
        p.append(f"{url}: blank title (W3C NotBlank)")
    rfc3339(root.findtext(f"{A}updated"), f"{url} feed updated", p)

    # Links of the feed: one self = this URL (W3C MissingSelf, SelfDoesntMatchLocation,
    # SelfNotAtom, RelativeSelf); registered relations; RFC 5005 targets that exist, in Atom.
    links: dict[str, list[etree._Element]] = defaultdict(list)
    for link in root.findall(f"{A}link"):
        links[link.get("rel", "alternate")].append(link)
    selfs = links.get("self", [])
    if [s.get("href") for s in selfs] != [url]:
        p.append(f"{url}: self links {[s.get('href') for s in selfs]} (W3C MissingSelf / SelfDoesntMatchLocation)")
    if any(s.get("type") != "application/atom+xml" for s in selfs):
        p.append(f"{url}: self link type is not application/atom+xml (W3C SelfNotAtom)")
    alternates = Counter((link.get("type"), link.get("hreflang")) for link in links.get("alternate", []))
    if any(n > 1 for n in alternates.values()):
        p.append(f"{url}: two alternate links with one type and hreflang (W3C DuplicateAtomLink)")
    for rel, group in links.items():
        if rel not in REGISTERED_RELS:
            p.append(f"{url}: link rel {rel!r} (W3C UnregisteredAtomLinkRel)")
        for link in group:
            href = link.get("href")
            if not absolute_http(href):
                p.append(f"{url}: link {rel} href {href!r} is not an absolute URL (W3C InvalidIRI)")
            if rel in RFC5005_RELS:
                if corpus.urls.get(href or "", ("", ""))[1] != "atom":
                    p.append(f"{url}: {rel} -> {href}, which is no Atom feed the server offers")
                if link.get("type") != "application/atom+xml":
                    p.append(f"{url}: {rel} link type {link.get('type')!r}")
    for rel in RFC5005_RELS:
        if len(links.get(rel, [])) > 1:
            p.append(f"{url}: more than one {rel} link")
    # W3C LinkPastEnd: a document that is its own `first` has no `previous`, its own `last` no `next`.
    hrefs = {rel: [link.get("href") for link in group] for rel, group in links.items()}
    if url in hrefs.get("first", []) and "previous" in hrefs:
        p.append(f"{url}: first is itself but links previous (W3C LinkPastEnd)")
    if url in hrefs.get("last", []) and "next" in hrefs:
        p.append(f"{url}: last is itself but links next (W3C LinkPastEnd)")

    # RFC 5005: date feeds are archive documents pointing at the subscription document and at
    # their neighbours (W3C MissingCurrentInArchive, ArchiveIncomplete); nothing else is.
    archive = root.find(f"{FH}archive") is not None
    kind = FeedKey.parse(feed).kind
    if kind == "date":
        if not archive:
            p.append(f"{url}: a date feed without fh:archive")
        if hrefs.get("current") != [corpus.url("latest", "atom")]:
            p.append(f"{url}: current link {hrefs.get('current')} (W3C MissingCurrentInArchive)")
        dates = sorted(f for f, fmt in corpus.docs if fmt == "atom" and f.startswith("dates/"))
        if len(dates) > 1 and not (hrefs.get("prev-archive") or hrefs.get("next-archive")):
            p.append(f"{url}: archive without prev-archive/next-archive (W3C ArchiveIncomplete)")
    elif archive:
        p.append(f"{url}: fh:archive in a {kind} feed")
    if kind == "topic" and not hrefs.get("first"):
        p.append(f"{url}: a topic feed without a first link")

    # Schematron rules of RFC 4287 Appendix B (dropped from the RELAX NG schema).
    if root.find(f"{A}author") is None and any(e.find(f"{A}author") is None for e in entries):
        p.append(f"{url}: no feed author and an entry without one (RFC 4287 Schematron)")
    if root.find(f"{A}author") is not None and not (root.findtext(f"{A}author/{A}name") or "").strip():
        p.append(f"{url}: author without a name (W3C MissingElement)")

    # Entries.
    ids = [e.findtext(f"{A}id") for e in entries]
    for guid, n in Counter(ids).items():
        if n > 1:
            p.append(f"{url}: id {guid} in {n} entries (W3C DuplicateEntries)")
    for entry in entries:
        guid = entry.findtext(f"{A}id") or ""
        where = f"{url} entry {guid}"
        if not URN_UUID.match(guid):
            p.append(f"{where}: id is not a canonical urn:uuid (W3C InvalidURN / NonCanonicalURI)")
        entry_lang = entry.get(f"{{{XML_NS}}}lang")
        if entry_lang is not None and (not LANGUAGE.match(entry_lang) or entry_lang == lang):
            p.append(f"{where}: xml:lang {entry_lang!r} (W3C InvalidLanguage, or the feed's own)")
        entry_links = entry.findall(f"{A}link")
        alternates = [link for link in entry_links if link.get("rel", "alternate") == "alternate"]
        if entry.find(f"{A}content") is None and not alternates:
            p.append(f"{where}: no content, no alternate link (RFC 4287 Schematron, W3C MissingContentOrAlternate)")
        for link in entry_links:
            rel = link.get("rel", "alternate")
            if rel not in REGISTERED_RELS:
                p.append(f"{where}: link rel {rel!r} (W3C UnregisteredAtomLinkRel)")
            if rel in RFC5005_RELS:
                p.append(f"{where}: {rel} link in an entry (W3C FeedHistoryRelInEntry)")
            if not absolute_http(link.get("href")):
                p.append(f"{where}: link {rel} href {link.get('href')!r} is not an absolute URL")
            if rel == "enclosure" and not MEDIA_TYPE.match(link.get("type") or ""):
                p.append(f"{where}: enclosure type {link.get('type')!r} (W3C InvalidMIMEAttribute)")
        if max(Counter(link.get("type") for link in alternates).values(), default=0) > 1:
            p.append(f"{where}: two alternate links of one type (W3C DuplicateAtomLink)")
        if not (entry.findtext(f"{A}title") or "").strip():
            p.append(f"{where}: blank title (W3C MissingTextualContent)")
        updated = rfc3339(entry.findtext(f"{A}updated"), f"{where} updated", p)
        published = rfc3339(entry.findtext(f"{A}published"), f"{where} published", p)
        if updated and published and published > updated:
            p.append(f"{where}: published after updated")
        content = entry.find(f"{A}content")
        if content is None or content.get("type") != "html":
            p.append(f"{where}: no content of type html")
        else:
            p += html_problems(content.text or "", f"{where} content")
        summary = entry.find(f"{A}summary")
        if summary is not None and (summary.get("type", "text") != "text" or not (summary.text or "").strip()):
            p.append(f"{where}: summary should be non-empty plain text (W3C MissingTextualContent)")
        for category in entry.findall(f"{A}category"):
            if not (category.get("term") or "").strip() or not absolute_http(category.get("scheme")):
                p.append(f"{where}: category {dict(category.attrib)} (W3C MissingAttribute / InvalidIRI)")

    # RFC 6721 tombstones: a ref and an RFC 3339 `when`, for entries the feed no longer has.
    for tomb in root.findall(f"{AT}deleted-entry"):
        ref = tomb.get("ref") or ""
        if not URN_UUID.match(ref):
            p.append(f"{url}: tombstone ref {ref!r}")
        rfc3339(tomb.get("when"), f"{url} tombstone {ref} when", p)
        if ref in ids:
            p.append(f"{url}: tombstone for {ref}, which is still an entry")
        for child in tomb:
            if child.tag not in (f"{AT}comment", f"{AT}by", f"{A}link", f"{A}source"):
                p.append(f"{url}: tombstone child {child.tag}")
    return p


@pytest.fixture(scope="module")
def atom_schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))


def test_atom_schema_is_the_rfc_schema() -> None:
    """atom.rng is what the RFC's compact schema (atom.rnc) converts to."""
    rnc2rng = pytest.importorskip("rnc2rng")
    from rnc2rng import parser, serializer

    converted = serializer.XMLSerializer().toxml(parser.parse((SCHEMAS / "atom.rnc").read_text("utf-8")))
    # rnc2rng declares `xmlns:local=""` for the RNC's `namespace local = ""`: not XML, and unused.
    converted = re.sub(r'\s+xmlns:local=""', "", converted)
    assert rnc2rng.__name__ == "rnc2rng"

    def canonical(text: str) -> bytes:
        parser_ = etree.XMLParser(remove_blank_text=True, remove_comments=True)
        return etree.tostring(etree.fromstring(text.encode("utf-8"), parser_), method="c14n")

    assert canonical(converted) == canonical((SCHEMAS / "atom.rng").read_text("utf-8"))


def test_atom_feeds_are_valid_by_the_rfc_4287_schema(corpus: Corpus, atom_schema: etree.RelaxNG) -> None:
    invalid = {}
    for feed, body in corpus.of("atom"):
        if not atom_schema.validate(etree.fromstring(body)):
            invalid[feed] = str(atom_schema.error_log.last_error)
    assert not invalid
    assert sum(1 for _ in corpus.of("atom")) > 3


def test_atom_feeds_follow_rfc_4287_5005_6721_and_the_w3c_validator(corpus: Corpus) -> None:
    problems = [p for feed, body in corpus.of("atom") for p in atom_problems(corpus, feed, body)]
    assert problems == []
    tombstones = [f for f, body in corpus.of("atom") if b"deleted-entry" in body]
    if corpus.name == "paged":
        # The deleted event's day, the latest feed and its topics report it.
        assert {"latest", "dates/2022-02-24"} <= set(tombstones)
        assert any(f.startswith("topics/") for f in tombstones)
        assert any("/pages/" in f for f, _ in corpus.of("atom"))
    else:
        assert tombstones == []


# --- RSS -------------------------------------------------------------------------------------

# Plain-text elements, spelled as in the document (W3C CharacterData: hexadecimal references).
RSS_PLAIN_TEXT = re.compile(rb"<(title|category)\b[^>]*>([^<]*)</\1>")


def rss_problems(corpus: Corpus, feed: str, body: bytes) -> list[str]:
    url = corpus.url(feed, "rss")
    root = xml_root(body, url)
    p: list[str] = []
    if root.tag != "rss" or root.get("version") != "2.0":
        p.append(f"{url}: root {root.tag} version {root.get('version')!r} (W3C InvalidRSSVersion)")
    channels = root.findall("channel")
    if len(channels) != 1:
        return [*p, f"{url}: {len(channels)} channels"]
    channel = channels[0]

    # Namespaces: RSS (none), Atom (links), content (content:encoded), RFC 5005 (fh:archive).
    known = {None, ATOM, CONTENT[1:-1], FH[1:-1]}
    for element in root.iter():
        if isinstance(element.tag, str) and etree.QName(element).namespace not in known:
            p.append(f"{url}: element {element.tag} (W3C UnknownNamespace)")
        if isinstance(element.tag, str) and etree.QName(element).namespace is None:
            for name in element.attrib:
                if name.startswith("{"):
                    p.append(f"{url}: {name} on <{element.tag}> (W3C UseOfExtensionAttr)")
    for prefix, ns in root.nsmap.items():
        if {"atom": ATOM, "content": CONTENT[1:-1], "fh": FH[1:-1]}.get(prefix or "", ns) != ns:
            p.append(f"{url}: prefix {prefix} for {ns} (W3C ReservedPrefix)")

    # Items after every other channel element (W3C MisplacedItem).
    seen_item = False
    for child in channel:
        if child.tag == "item":
            seen_item = True
        elif seen_item and isinstance(child.tag, str):
            p.append(f"{url}: {child.tag} after the items (W3C MisplacedItem)")

    # Required channel elements (RSS 2.0), each once (W3C MissingTitle / MissingLink /
    # MissingDescription / DuplicateElement); language (profile: SHOULD), a known code.
    for name in ("title", "link", "description", "language"):
        if len(channel.findall(name)) != 1 or not (channel.findtext(name) or "").strip():
            label = "RSS profile: language" if name == "language" else f"W3C Missing{name.title()} / DuplicateElement"
            p.append(f"{url}: channel needs exactly one non-blank <{name}> ({label})")
    if not absolute_http(channel.findtext("link")):
        p.append(f"{url}: channel link {channel.findtext('link')!r} (W3C InvalidFullLink)")
    if not LANGUAGE.match(channel.findtext("language") or ""):
        p.append(f"{url}: language {channel.findtext('language')!r} (W3C InvalidLanguage)")
    if channel.find("docs") is not None and not absolute_http(channel.findtext("docs")):
        p.append(f"{url}: docs {channel.findtext('docs')!r} (W3C InvalidFullLink)")
    for name in ("pubDate", "lastBuildDate"):
        if channel.find(name) is not None:
            rfc822(channel.findtext(name), f"{url} channel {name}", p)
    ttl = channel.findtext("ttl")
    if ttl is not None and not (ttl.isdigit() and int(ttl) > 0):
        p.append(f"{url}: ttl {ttl!r} (W3C InvalidPositiveInteger)")
    if channel.find("author") is not None or channel.find("managingEditor") is not None:
        p.append(f"{url}: an email-only element carries a name (W3C InvalidContact)")

    # atom:link: one self = this URL, of this format (profile; W3C MissingAtomSelfLink,
    # SelfDoesntMatchLocation); other relations registered and pointing at our RSS feeds.
    links: dict[str, list[str | None]] = defaultdict(list)
    for link in channel.findall(f"{A}link"):
        rel = link.get("rel", "alternate")
        links[rel].append(link.get("href"))
        if rel not in REGISTERED_RELS:
            p.append(f"{url}: atom:link rel {rel!r} (W3C UnregisteredAtomLinkRel)")
        if rel == "hub":  # WebSub: the hub is no feed
            if link.get("href") != f"{BASE_URL}/websub":
                p.append(f"{url}: hub {link.get('href')!r}")
        elif link.get("type") != "application/rss+xml":
            p.append(f"{url}: atom:link {rel} type {link.get('type')!r}")
        if rel in RFC5005_RELS and corpus.urls.get(link.get("href") or "", ("", ""))[1] != "rss":
            p.append(f"{url}: {rel} -> {link.get('href')}, which is no RSS feed the server offers")
        if (link.text or "").strip():
            p.append(f"{url}: atom:link with text (W3C AtomLinkNotEmpty)")
    if links.get("self") != [url]:
        p.append(f"{url}: self links {links.get('self')} (W3C MissingAtomSelfLink / SelfDoesntMatchLocation)")
    archive = channel.find(f"{FH}archive") is not None
    if (FeedKey.parse(feed).kind == "date") != archive:
        p.append(f"{url}: fh:archive {'in a non-date feed' if archive else 'missing in a date feed'}")

    # Items.
    items = channel.findall("item")
    guids = [item.findtext("guid") for item in items]
    for guid, n in Counter(guids).items():
        if n > 1:
            p.append(f"{url}: guid {guid} in {n} items (W3C DuplicateValue)")
    for item in items:
        guid_element = item.find("guid")
        where = f"{url} item {item.findtext('guid')}"
        if item.find("title") is None and item.find("description") is None:
            p.append(f"{where}: neither title nor description (W3C ItemMustContainTitleOrDescription)")
        for name in ("title", "description"):
            if item.find(name) is not None and not (item.findtext(name) or "").strip():
                p.append(f"{where}: blank <{name}> (W3C NotBlank)")
        for name in ("title", "description", "link", "guid", "pubDate", "enclosure", f"{CONTENT}encoded"):
            if len(item.findall(name)) > 1:
                p.append(f"{where}: more than one <{name}> (W3C DuplicateElement / DuplicateEnclosure)")
        if guid_element is None:
            p.append(f"{where}: no guid (W3C MissingGuid)")
        elif not URN_UUID.match(guid_element.text or "") or guid_element.get("isPermaLink") != "false":
            p.append(f"{where}: guid must be a urn:uuid, isPermaLink=false (W3C InvalidPermalink / InvalidHttpGUID)")
        if item.find("link") is not None and not absolute_http(item.findtext("link")):
            p.append(f"{where}: link {item.findtext('link')!r} (W3C InvalidFullLink)")
        rfc822(item.findtext("pubDate"), f"{where} pubDate", p)
        if item.find("author") is not None:
            p.append(f"{where}: <author> must be an email address (W3C InvalidContact)")
        children = [c.tag for c in item]
        encoded = item.find(f"{CONTENT}encoded")
        if encoded is not None:
            if "description" not in children or children.index("description") > children.index(f"{CONTENT}encoded"):
                p.append(f"{where}: description must precede content:encoded (W3C NeedDescriptionBeforeContent)")
            p += html_problems(encoded.text or "", f"{where} content:encoded")
        description = item.findtext("description")
        if description is not None:
            # HTML to a reader: ours is escaped text, so it renders as exactly that text.
            p += html_problems(description, f"{where} description")
            if lxml.html.fragment_fromstring(description, create_parent="div").xpath("count(*)"):
                p.append(f"{where}: description has markup; it should be the escaped summary (W3C NotHtml)")
        for category in item.findall("category"):
            if not (category.text or "").strip():
                p.append(f"{where}: blank category (W3C NotBlank)")
            if category.get("domain") is not None and not absolute_http(category.get("domain")):
                p.append(f"{where}: category domain {category.get('domain')!r} is not a URL (W3C InvalidURIAttribute)")
        for enclosure in item.findall("enclosure"):
            length, kind = enclosure.get("length"), enclosure.get("type")
            if not absolute_http(enclosure.get("url")):
                p.append(f"{where}: enclosure url {enclosure.get('url')!r}, not http (W3C InvalidURLAttribute)")
            if length is None or not length.isdigit():
                p.append(f"{where}: enclosure length {length!r} (W3C InvalidIntegerAttribute / UseZeroForUnknown)")
            if not MEDIA_TYPE.match(kind or ""):
                p.append(f"{where}: enclosure type {kind!r} (W3C InvalidMIMEAttribute)")

    # Character data (RSS profile; W3C CharacterData, ContainsHTML): plain text spells & < > as
    # hexadecimal references, and holds no HTML end tags.
    head = body.partition(b"<item>")[0]
    plain = [m[2] for m in RSS_PLAIN_TEXT.finditer(body)]
    plain += [m[1] for m in re.finditer(rb"<description>([^<]*)</description>", head)][:1]
    for raw in plain:
        if re.search(rb"&(amp|lt|gt|quot|apos);", raw):
            p.append(f"{url}: plain text {raw[:60]!r} uses named references (W3C CharacterData)")
        if re.search(r"</\w+>", html.unescape(raw.decode("utf-8"))):
            p.append(f"{url}: plain text {raw[:60]!r} holds HTML (W3C ContainsHTML)")
    return p


def test_rss_feeds_follow_rss_2_the_rss_profile_and_the_w3c_validator(corpus: Corpus) -> None:
    problems = [p for feed, body in corpus.of("rss") for p in rss_problems(corpus, feed, body)]
    assert problems == []
    bodies = b"".join(body for _, body in corpus.of("rss"))
    assert b"<enclosure " in bodies and b'length="0"' in bodies
    if corpus.name == "edge":
        # The made-up pages came through with hexadecimal references and clean URLs.
        assert b"AT&#x26;T shares fall" in bodies and b"&#x3C;BIGCO&#x3E;" in bodies
        assert b"javascript:" not in bodies and b"%22chart%22_%C3%A9.png" in bodies


# --- JSON Feed -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def json_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / "jsonfeed-1.1.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    checker = jsonschema.FormatChecker()
    # The checker only knows a format when its helper package is installed; without one it
    # silently accepts anything. Make sure these two really are checked.
    assert not checker.conforms("2024-11-06", "date-time"), "install rfc3339-validator"
    assert not checker.conforms("2024-11-06T00:00:00", "date-time")
    assert checker.conforms("2024-11-06T00:00:00+00:00", "date-time")
    assert not checker.conforms("/feeds/latest.json", "uri"), "install rfc3986-validator"
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


def json_problems(corpus: Corpus, feed: str, body: bytes) -> list[str]:
    url = corpus.url(feed, "json")
    doc = json.loads(body.decode("utf-8"))
    p = []
    if doc.get("feed_url") != url:
        p.append(f"{url}: feed_url {doc.get('feed_url')!r}")
    if "next_url" in doc and corpus.urls.get(doc["next_url"], ("", ""))[1] != "json":
        p.append(f"{url}: next_url {doc['next_url']} is no JSON feed the server offers")
    ids = [item["id"] for item in doc["items"]]
    if len(set(ids)) != len(ids):
        p.append(f"{url}: repeated item ids")
    for item in doc["items"]:
        where = f"{url} item {item['id']}"
        for name in ("url", "external_url", "image"):
            if name in item and not absolute_http(item[name]):
                p.append(f"{where}: {name} {item[name]!r} is not an absolute http(s) URL")
        p += html_problems(item["content_html"], f"{where} content_html")
        for name in ("date_published", "date_modified"):
            rfc3339(item.get(name), f"{where} {name}", p)
    return p


def test_json_feeds_are_valid_by_the_json_feed_1_1_schema(
    corpus: Corpus, json_validator: jsonschema.Draft202012Validator
) -> None:
    errors = {
        feed: [f"{e.json_path}: {e.message}" for e in json_validator.iter_errors(json.loads(body))]
        for feed, body in corpus.of("json")
    }
    assert {feed: e for feed, e in errors.items() if e} == {}
    problems = [p for feed, body in corpus.of("json") for p in json_problems(corpus, feed, body)]
    assert problems == []


# --- one event, one id -----------------------------------------------------------------------


def ids_and_titles(fmt: str, body: bytes) -> list[tuple[str, str]]:
    if fmt == "json":
        return [(i["id"], i["title"]) for i in json.loads(body)["items"]]
    root = etree.fromstring(body)
    if fmt == "atom":
        return [(e.findtext(f"{A}id") or "", e.findtext(f"{A}title") or "") for e in root.iterfind(f"{A}entry")]
    return [(i.findtext("guid") or "", i.findtext("title") or "") for i in root.iterfind("channel/item")]


def test_one_event_has_one_id_in_every_format_and_every_feed(corpus: Corpus) -> None:
    feeds: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(dict)
    for (feed, fmt), body in corpus.docs.items():
        feeds[feed][fmt] = ids_and_titles(fmt, body)
    # Every document exists in all three formats, with the same entries in the same order.
    for feed, by_format in feeds.items():
        assert set(by_format) == {"rss", "atom", "json"}, feed
        assert by_format["rss"] == by_format["atom"] == by_format["json"], feed

    events = {e.guid: e for e in corpus.events}
    carriers: dict[str, set[str]] = defaultdict(set)
    for feed, by_format in feeds.items():
        assert len({guid for guid, _ in by_format["atom"]}) == len(by_format["atom"]), feed
        for guid, title in by_format["atom"]:
            assert guid in events, (feed, guid)  # only live events, under their event's id
            assert title == events[guid].page.headline, (feed, guid)
            carriers[guid].add(feed)
    assert not (set(carriers) & corpus.deleted)
    for guid, event in events.items():
        expected = {f"dates/{event.published.date().isoformat()}"} | ({"latest"} if guid in corpus.latest else set())
        assert expected <= carriers[guid], (event.key, carriers[guid])
        for topic in event.topics:
            # Exactly one document of each of its topics: the head or one archive page.
            head = f"topics/{topic.slug}"
            pages = {f for f in carriers[guid] if f == head or f.startswith(f"{head}/pages/")}
            assert len(pages) == 1, (event.key, topic.slug, pages)
        topics = {f"topics/{t.slug}" for t in event.topics}
        assert {f.split("/pages/")[0] for f in carriers[guid] if f.startswith("topics/")} == topics
        assert carriers[guid] - expected - {f for f in carriers[guid] if f.startswith("topics/")} == set()
    assert [g for g, _ in feeds["latest"]["json"]] == corpus.latest


def _canonical(body: bytes) -> bytes:
    return etree.tostring(etree.fromstring(body, etree.XMLParser(remove_blank_text=True)), method="c14n")


def test_xml_feeds_are_what_feedgen_makes_of_the_same_entries(corpus: Corpus) -> None:
    """The hand-written serializers (one piece per entry, joined per document) against feedgen
    (tests/feedgen_reference.py) given the same feed and entries: the same XML infoset, element
    for element, attribute for attribute, in the same order."""

    async def compare() -> int:
        store = await Store.open(corpus.settings.database)
        try:
            compared = 0
            for (feed, fmt), body in sorted(corpus.docs.items()):
                if fmt == "json":
                    continue
                described = await describe(store, corpus.settings, FeedKey.parse(feed))
                assert described is not None, feed
                info, members = described
                events, urls = await whole_events(store, corpus.settings, [m.key for m in members])
                made = [entry_for(corpus.settings, events[m.key], urls) for m in members]
                reference = (render_atom if fmt == "atom" else render_rss)(info, made)
                assert _canonical(body) == _canonical(reference), (feed, fmt)
                compared += 1
            return compared
        finally:
            await store.close()

    assert asyncio.run(compare()) == len(corpus.docs) * 2 // 3


# --- the checks themselves -------------------------------------------------------------------


def _mutate(body: bytes, old: bytes, new: bytes) -> bytes:
    assert old in body, old
    return body.replace(old, new, 1)


@pytest.mark.parametrize(
    ("fmt", "change", "expected"),
    [
        (
            "rss",
            lambda b: _mutate(b, b"<ttl>5</ttl>", b"<ttl>5</ttl><pubDate>6 Nov 24 0:00 EST</pubDate>"),
            "InvalidRFC2822Date",
        ),
        ("rss", lambda b: _mutate(b, b'length="0"', b'length=""'), "InvalidIntegerAttribute"),
        ("rss", lambda b: _mutate(b, b"</channel>", b"<copyright>x</copyright></channel>"), "MisplacedItem"),
        ("rss", lambda b: _mutate(b, b"/feeds/latest.rss", b"/feeds/other.rss"), "SelfDoesntMatchLocation"),
        ("rss", lambda b: _mutate(b, b'isPermaLink="false"', b'isPermaLink="true"'), "InvalidPermalink"),
        ("rss", lambda b: _mutate(b, b'href="https://', b'href="/relative/'), "ContainsRelRef"),
        ("rss", lambda b: _mutate(b, b"<title>Current events</title>", b"<title>A &amp; B</title>"), "CharacterData"),
        ("rss", lambda b: _mutate(b, b"<item>\n      <title>", b"<item>\n      <title>&#x3C;/b&#x3E;"), "ContainsHTML"),
        ("rss", lambda b: _mutate(b, b"</link>\n      <description>", b"</link><description>&lt;b&gt;"), "NotHtml"),
        (
            "atom",
            lambda b: _mutate(b, b"</feed>", b'<link href="http://feeds.test/" rel="up"/></feed>'),
            "MisplacedMetadata",
        ),
        ("atom", lambda b: _mutate(b, b"+00:00</published>", b"</published>"), "InvalidRFC3339Date"),
        ("atom", lambda b: _mutate(b, b'rel="prev-archive"', b'rel="prev-archives"'), "UnregisteredAtomLinkRel"),
        ("atom", lambda b: _mutate(b, b"/feeds/dates/", b"/feeds/days/"), "no Atom feed the server offers"),
    ],
)
async def test_the_checks_catch_what_they_look_for(
    store: Store, settings: Settings, fmt: str, change: Callable[[bytes], bytes], expected: str
) -> None:
    small = replace(settings, base_url=BASE_URL, items_per_feed=5, refresh_interval=300)
    await store.apply(read_pages(EXAMPLE, source="example"))
    await publish_all(store, small)
    docs = await documents(store, small)
    corpus = Corpus("mutated", small, docs, [], [])
    check = rss_problems if fmt == "rss" else atom_problems
    assert check(corpus, "latest", docs[("latest", fmt)]) == []
    problems = check(corpus, "latest", change(docs[("latest", fmt)]))
    assert any(expected in p for p in problems), problems
    if fmt == "atom":
        schema = etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))
        valid = schema.validate(etree.fromstring(change(docs[("latest", fmt)])))
        assert valid == (expected != "MisplacedMetadata"), expected


# --- known gaps outside the renderers (see each reason) --------------------------------------


async def small_corpus(store: Store, settings: Settings, pages: dict[str, str]) -> Corpus:
    config = replace(settings, base_url=BASE_URL, refresh_interval=300)
    incoming = []
    for relpath, text in pages.items():
        page = parse_document(relpath, text.encode("utf-8"))
        assert isinstance(page, Page)
        incoming.append(Incoming(page, relpath, "example"))
    await store.apply(incoming)
    await publish_all(store, config)
    docs = await documents(store, config)
    events = await store.events(FeedKey("latest"), 1000)
    return Corpus("small", config, docs, events, [e.guid for e in events])


def all_problems(corpus: Corpus) -> list[str]:
    check = {"atom": atom_problems, "rss": rss_problems, "json": json_problems}
    return [p for (feed, fmt), body in sorted(corpus.docs.items()) for p in check[fmt](corpus, feed, body)]


async def test_an_empty_server_offers_plausible_dates(store: Store, settings: Settings) -> None:
    corpus = await small_corpus(store, settings, {})
    assert set(corpus.docs) == {("latest", "rss"), ("latest", "atom"), ("latest", "json")}
    assert all_problems(corpus) == []


async def test_relative_links_of_a_page_never_reach_a_feed(store: Store, settings: Settings) -> None:
    page = """\
### [2024-11-07](/news/2024/11/07/index.md)

# A page whose links are relative.

The [filing](/filings/q3.html) and [an event we do not have](/news/2001/01/1/nothing-here.md).

### Sources:

1. [A local copy](/copies/source.html)
"""
    corpus = await small_corpus(store, settings, {"news/2024/11/7/relative.md": page})
    assert all_problems(corpus) == []


def test_a_summary_as_text_is_what_stripping_every_tag_of_its_sanitised_html_gives() -> None:
    """plain_summary cuts the tags out of the sanitised summary: the same text nh3 gives when it
    strips them, for hostile markdown too (attributes holding `>`, entities, raw HTML)."""
    import nh3

    from feeds.render.content import plain_summary, sanitize, summary_html

    samples = [
        'A [link](https://example.org/a?b=1&c="2" "title > with quote") and **bold** <b>raw</b> & 5 < 8 > 3.',
        "Line one\n\nLine two with `code <x>` and [rel](/news/2020/1/1/a) &amp; &lt;tag&gt; &#x3C;",
        '<script>alert(1)</script><img src=x onerror=y> ![i](https://x/y.png) <a href="javascript:z">j</a>',
        "* list\n* items with ]]> and \u2028 and emoji \U0001f600",
    ]
    page = read_pages(EXAMPLE)[0].page
    when = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    event = Event(key=page.path, guid="g", page=page, topics=(), published=when, updated=when)
    for markdown in samples:
        html_ = sanitize(summary_html(markdown, lambda href: href))
        expected = html.unescape(" ".join(nh3.clean(html_, tags=set()).split()))
        assert plain_summary(event, html_) == expected, markdown


def test_every_item_links_to_its_event_page_in_every_format(corpus: Corpus) -> None:
    """An item's link is its event's page on this server, in RSS (`<link>`), Atom (`rel=alternate`)
    and JSON Feed (`url`), read back by feedparser; JSON Feed's `external_url` is the first
    source. An event whose page lists no source still has its link."""
    events = {e.guid: e for e in corpus.events}
    links: dict[tuple[str, str], str | None] = {}
    for fmt in ("rss", "atom"):
        for feed, body in corpus.of(fmt):
            for entry in feedparser.parse(body).entries:
                alternates = [link.href for link in entry.links if link.rel == "alternate"]
                assert len(alternates) == 1, (feed, fmt, entry.id)
                links[(entry.id, fmt)] = alternates[0]
    for feed, body in corpus.of("json"):
        for item in json.loads(body)["items"]:
            links[(item["id"], "json")] = item.get("url")
            sources = events[item["id"]].page.sources
            assert item.get("external_url") == (http_url(sources[0].url) if sources else None), (feed, item["id"])
    assert links
    for (guid, fmt), link in links.items():
        expected = event_url(corpus.settings.base_url, events[guid].page.path)
        assert link == expected and absolute_http(link), (corpus.name, fmt, guid, link)
    shown = {guid for guid, _ in links}
    assert shown == {guid for guid, _ in links if (guid, "json") in links and (guid, "atom") in links}
    if corpus.name == "edge":  # a page with no source, no image, no summary
        assert any(not events[guid].page.sources for guid in shown)
