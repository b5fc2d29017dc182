"""An event as safe HTML and plain text. Pure.

Everything in a page is untrusted: the summary is rendered from markdown with raw HTML disabled,
then the whole fragment goes through nh3 (ammonia) with a short allow-list, so a `<script>` or a
`javascript:` link in a source never reaches a reader.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from urllib.parse import urljoin

import nh3
from markdown_it import MarkdownIt

from feeds.ids import page_path
from feeds.model import Event

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable(["image"])
_TAGS = {"p", "a", "ul", "ol", "li", "h3", "em", "strong", "code", "br", "img", "figure"}
_ATTRS = {"a": {"href", "title"}, "img": {"src", "alt"}}
_SCHEMES = {"http", "https", "mailto"}

LinkResolver = Callable[[str], str | None]


def sanitize(fragment: str) -> str:
    return nh3.clean(fragment, tags=_TAGS, attributes=_ATTRS, url_schemes=_SCHEMES, link_rel="noopener nofollow")


def summary_html(markdown: str, resolve: LinkResolver) -> str:
    tokens = _MD.parse(markdown)
    for token in tokens:
        for child in token.children or []:
            if child.type == "link_open":
                href = str(child.attrGet("href") or "")
                child.attrSet("href", resolve(href) or href)
    return str(_MD.renderer.render(tokens, _MD.options, {}))


def event_html(event: Event, resolve: LinkResolver) -> str:
    """The entry content: summary, image, sources, related events (links resolved)."""
    page = event.page
    parts = [summary_html(page.summary, resolve)] if page.summary else []
    if page.image:
        parts.append(f'<figure><img src="{html.escape(page.image)}" alt=""></figure>')
    if page.sources:
        items = "".join(
            f'<li><a href="{html.escape(s.url)}">{html.escape(s.name)}</a></li>' for s in page.sources
        )
        parts.append(f"<h3>Sources</h3><ul>{items}</ul>")
    if page.related:
        items = []
        for r in page.related:
            href = resolve(r.url)
            title = html.escape(r.headline)
            link = f'<a href="{html.escape(href)}">{title}</a>' if href else title
            context = f" <em>({html.escape(', '.join(r.contexts))})</em>" if r.contexts else ""
            items.append(f"<li>{link}{context}</li>")
        parts.append(f"<h3>Related</h3><ul>{''.join(items)}</ul>")
    return sanitize("\n".join(parts))


def plain_summary(event: Event) -> str:
    """The summary as text (links reduced to their words), or the headline when there is none."""
    if not event.page.summary:
        return event.page.headline
    text = nh3.clean(_MD.render(event.page.summary), tags=set())
    return html.unescape(" ".join(text.split()))


def resolver(site: str | None, events: dict[str, str]) -> LinkResolver:
    """Resolve a link found in a page: another event's page (any version) goes to that event's
    current URL when known; other relative links are joined to the source's site."""

    def resolve(href: str) -> str | None:
        path = page_path(href) if href.startswith(("/news/", "news/")) else None
        if path and path in events:
            return events[path]
        if href.startswith(("http://", "https://")):
            return href
        if href.startswith("//"):
            return "https:" + href
        if site:
            return urljoin(site.rstrip("/") + "/", href.lstrip("/"))
        return None

    return resolve
