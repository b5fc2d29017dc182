"""An event as safe HTML and plain text. Pure.

Everything in a page is untrusted: the summary is rendered from markdown with raw HTML disabled,
then the whole fragment goes through nh3 (ammonia) with a short allow-list, so a `<script>` or a
`javascript:` link in a source never reaches a reader.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable
from urllib.parse import quote, urlsplit

import nh3
from markdown_it import MarkdownIt

from feeds.ids import page_path
from feeds.model import Event
from feeds.pages.write import archive_url
from feeds.render import Entry

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable(["image"])
_TAGS = {"p", "a", "ul", "ol", "li", "h3", "em", "strong", "code", "br", "img", "figure"}
_ATTRS = {"a": {"href", "title"}, "img": {"src", "alt"}}
_SCHEMES = {"http", "https", "mailto"}

LinkResolver = Callable[[str], str | None]

# Characters a URI may hold as they are (RFC 3986 reserved + unreserved, and `%` of escapes).
_URI_SAFE = ":/?#[]@!$&'()*+,;=-._~%"


@functools.lru_cache(maxsize=1 << 16)
def http_url(url: str | None) -> str | None:
    """A URL from a page, fit for an RSS enclosure ("The url must be an http url"), an Atom link
    or a JSON Feed URL field: absolute http(s), with anything a URI cannot hold percent-encoded
    (spaces, quotes, non-ASCII: an IRI becomes a URI); None for anything else (relative,
    javascript:, data:, ...), which the renderers then leave out."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return quote(url, safe=_URI_SAFE)


def _absolute_only(element: str, attribute: str, value: str) -> str | None:
    # Feeds are read far from where they were made: a relative URL resolves against the reader's
    # idea of a base, so only absolute http(s)/mailto URLs stay (W3C: "should not contain
    # relative URL references").
    if attribute in ("href", "src"):
        return value if value.startswith("mailto:") else http_url(value)
    return value


# Built once: building the allow-lists took four fifths of the time of cleaning a summary.
_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    attributes=_ATTRS,
    url_schemes=_SCHEMES,
    link_rel="noopener nofollow",
    attribute_filter=_absolute_only,
)


def sanitize(fragment: str) -> str:
    return _CLEANER.clean(fragment)


def summary_html(markdown: str, resolve: LinkResolver) -> str:
    tokens = _MD.parse(markdown)
    for token in tokens:
        for child in token.children or []:
            if child.type == "link_open":
                href = str(child.attrGet("href") or "")
                # Unresolvable links keep their words and lose the link (the sanitiser drops it).
                child.attrSet("href", resolve(href) or "")
    return str(_MD.renderer.render(tokens, _MD.options, {}))


def event_url(base_url: str, path: str) -> str:
    """An event's page on this server (`/news/YYYY/MM/D/<slug>.html`), as a URI: every item links
    there, whatever its page lists (a slug in another script is percent-encoded as UTF-8)."""
    return base_url.rstrip("/") + quote(archive_url(path, "html"), safe="/-._~!$&'()*+,;=:@")


def make_entry(event: Event, link: str | None, resolve: LinkResolver, language: str | None = None) -> Entry:
    """An event's entry: its content HTML and its summary as text (the summary's markdown is
    parsed once for both)."""
    summary = sanitize(summary_html(event.page.summary, resolve)) if event.page.summary else ""
    return Entry(event, link, event_html(event, resolve, summary), plain_summary(event, summary), language)


_REL = ' rel="noopener nofollow"'  # what the sanitiser gives the summary's links


def event_html(event: Event, resolve: LinkResolver, summary: str) -> str:
    """The entry content: the summary (HTML, already sanitised), image, sources, related events.
    The parts written here are made of escaped text and URLs that http_url accepted, so only the
    summary, which comes from a page's markdown, goes through the sanitiser."""
    page = event.page
    parts = [summary] if summary else []
    if image := http_url(page.image):
        parts.append(f'<figure><img src="{html.escape(image)}" alt=""></figure>')
    if page.sources:
        items = "".join(
            f'<li><a href="{html.escape(url)}"{_REL}>{html.escape(s.name)}</a></li>'
            if (url := http_url(s.url))
            else f"<li>{html.escape(s.name)}</li>"
            for s in page.sources
        )
        parts.append(f"<h3>Sources</h3><ul>{items}</ul>")
    if page.related:
        lines = []
        for r in page.related:
            href = http_url(resolve(r.url))
            title = html.escape(r.headline)
            link = f'<a href="{html.escape(href)}"{_REL}>{title}</a>' if href else title
            context = f" <em>({html.escape(', '.join(r.contexts))})</em>" if r.contexts else ""
            lines.append(f"<li>{link}{context}</li>")
        parts.append(f"<h3>Related</h3><ul>{''.join(lines)}</ul>")
    return "\n".join(parts)


# A tag of HTML as nh3 (html5ever) writes it: attribute values always in double quotes, which
# may hold `>`; text never holds `<` or `>` unescaped.
_TAG = re.compile(r'<(?:[^>"]|"[^"]*")*>')


def plain_summary(event: Event, summary: str) -> str:
    """The summary (its sanitised HTML) as text, links reduced to their words; the headline when
    there is none. Its tags are cut out, not parsed again (a third of the time of nh3)."""
    if not summary:
        return event.page.headline
    return html.unescape(" ".join(_TAG.sub("", summary).split()))


def entry_html(entry: Entry) -> str:
    """The entry's content: its HTML, or, for a page that has nothing but a headline (no summary,
    no sources), that text as a paragraph. An empty atom:content / content:encoded says nothing
    and the W3C validator reports it ("content should not be blank")."""
    if entry.content_html.strip():
        return entry.content_html
    return f"<p>{html.escape(entry.summary_text, quote=False)}</p>"


def resolver(events: dict[str, str]) -> LinkResolver:
    """Resolve a link found in a page: another event's page (any version) goes to that event's
    current URL when known; an absolute http(s) link stays. Other relative links lead nowhere:
    joined to the address a source was read from, the same page would render differently from a
    directory, a git repository and each mirror of an HTTP site."""

    def resolve(href: str) -> str | None:
        path = page_path(href) if href.startswith(("/news/", "news/")) else None
        if path and path in events:
            return events[path]
        if href.startswith(("http://", "https://")):
            return href
        if href.startswith("//"):
            return "https:" + href
        return None

    return resolve
