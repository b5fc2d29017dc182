"""An HTTP site serving the archive tree: `{base}/news/YYYY/MM/D/index.md`, `README.md` and the
pages they list. What is asked for, and in which order, is the walk in `feeds.sources.crawl`; this
module sends the requests.

Requests are conditional (ETag / Last-Modified kept in the store's `fetches` table): a page that
answers 304 is unchanged and not returned again; a day listing keeps its body so a 304 still lets
the walk go on. Requests are bounded (`concurrency` in flight, `rate` per second, `timeout` each,
`max_bytes` per response, `max_pages` per refresh), retried with exponential backoff on connection
errors, timeouts, 429 and 5xx (a 429/503's Retry-After is waited for, up to `MAX_RETRY_AFTER`), and
only ever sent to the configured base URL, with a User-Agent that names this program.

A page this source stored earlier that answers 404/410 is deleted once it has been missing for
`deletion_grace` seconds. Stored pages of the crawled days that no listing or Changes list names any
more are asked for again (conditionally), so a page dropped from the archive is noticed too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from importlib.metadata import version
from urllib.parse import unquote, urlsplit

import httpx

from feeds.config import SourceConfig
from feeds.errors import SourceError
from feeds.ids import page_path
from feeds.model import utcnow
from feeds.sources import Collected
from feeds.sources.times import parse_http_date
from feeds.store import Store

USER_AGENT = f"feeds/{version('feeds')} (syndication feed server reading the Offstream archive; polite crawler)"
MAX_RETRY_AFTER = 30.0  # seconds; a longer Retry-After is not waited for
LISTING_NAMES = ("index.md", "README.md")  # a day's listings; the archive has days with only one
_LISTINGS = {name.casefold() for name in LISTING_NAMES}

# `news/YYYY/MM/D/slug` anywhere in a link's path, with an optional extension.
_NEWS_PATH = re.compile(r"(?:^|/)(?P<stem>news/\d{4}/\d{1,2}/\d{1,2}/[^/?#]+?)(?:\.(?:md|json|xml|html))?$")
# The links of a day listing, as written (the parsed listing only keeps canonical paths).
LISTED_HREF = re.compile(r"^###\s*\[.*\]\((?P<url>[^)\s]*)\)\s*$")


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]


def folder_pages(html: bytes) -> list[str]:
    """The markdown pages an HTML folder listing links to in its own folder (file names, in order),
    day listings left out."""
    parser = _Anchors()
    parser.feed(html.decode("utf-8", "replace"))
    names = (unquote(href.split("?", 1)[0].split("#", 1)[0]) for href in parser.hrefs)
    return list(dict.fromkeys(n for n in names if n.endswith(".md") and "/" not in n and n.casefold() not in _LISTINGS))


def day_dir_of(relpath: str) -> str:
    """`news/YYYY/MM/D` of a page or listing at `news/YYYY/MM/D/name.md`."""
    return relpath.rsplit("/", 1)[0]


@dataclass(frozen=True)
class Response:
    """What one GET came to. status 0: no usable answer (see `reason`)."""

    status: int
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    reason: str = ""
    retry_after: float | None = None  # seconds, from a 429/503's Retry-After


class _TooLarge(Exception):
    pass


class HttpSource:
    backoff = 0.5  # seconds before the first retry; doubled for each further one

    def __init__(self, config: SourceConfig) -> None:
        self.name = config.name
        self.config = config
        self.base = config.location.rstrip("/")
        parts = urlsplit(self.base)
        self._origin = (parts.scheme.lower(), parts.netloc.lower())
        self._client: httpx.AsyncClient | None = None
        self._next_slot = 0.0
        self._slots: asyncio.Semaphore | None = None  # made in collect(), on its event loop
        self._pace = asyncio.Lock()

    # ----- the crawl ------------------------------------------------------------------------------

    async def collect(self, store: Store) -> Collected:
        if self._origin[0] not in ("http", "https") or not self._origin[1]:
            raise SourceError(self.name, f"{self.config.location!r} is not an http(s) URL")
        from feeds.sources.crawl import Crawl

        self._slots, self._pace = asyncio.Semaphore(max(1, self.config.concurrency)), asyncio.Lock()
        crawl = Crawl(self, store)
        try:
            await crawl.run()
        finally:
            await crawl.cancel()
        return crawl.collected

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def url(self, relpath: str) -> str:
        return f"{self.base}/{relpath}"

    def relpath_of(self, href: str) -> str | None:
        """`news/YYYY/MM/D/slug.md` for a link to a page or index of this site, as the link spells
        the day; None for links elsewhere (another host) or not to the archive tree."""
        parts = urlsplit(href.strip())
        if parts.netloc and (parts.scheme.lower() or self._origin[0], parts.netloc.lower()) != self._origin:
            return None
        match = _NEWS_PATH.search(parts.path)
        if not match or page_path(match["stem"]) is None:
            return None
        return f"{match['stem']}.md"

    # ----- one request --------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            timeout = self.config.timeout or None
            self._client = httpx.AsyncClient(
                headers={"User-Agent": USER_AGENT},
                timeout=httpx.Timeout(timeout),
                follow_redirects=False,  # a redirect could lead off the configured host
                limits=httpx.Limits(max_connections=max(1, self.config.concurrency)),
            )
        return self._client

    async def _wait_turn(self) -> None:
        """Space request starts at least 1/rate seconds apart, across the whole source."""
        if self.config.rate <= 0:
            return
        async with self._pace:
            loop = asyncio.get_running_loop()
            wait = self._next_slot - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_slot = max(loop.time(), self._next_slot) + 1.0 / self.config.rate

    async def get(self, url: str, headers: dict[str, str]) -> Response:
        """GET with retries; never raises for network trouble (status 0 and a reason instead)."""
        slots = self._slots or asyncio.Semaphore(max(1, self.config.concurrency))
        attempt = 0
        while True:
            delay = self.backoff * 2**attempt
            try:
                async with slots:
                    await self._wait_turn()
                    async with asyncio.timeout(self.config.timeout or None):
                        response = await self._once(url, headers)
            except _TooLarge:
                return Response(0, reason=f"larger than max_bytes={self.config.max_bytes}; skipped")
            except TimeoutError:
                reason = f"no complete answer within {self.config.timeout:g} s"
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            except httpx.HTTPError as exc:  # e.g. a body that does not decode: retrying won't help
                return Response(0, reason=f"{type(exc).__name__}: {exc}")
            else:
                if response.status != 429 and response.status < 500:
                    return response
                reason = response.reason
                if response.retry_after is not None:
                    delay = max(delay, response.retry_after)
            if attempt >= self.config.retries:
                suffix = f" (after {attempt + 1} attempts)" if attempt else ""
                return Response(0, reason=reason + suffix)
            await asyncio.sleep(delay)
            attempt += 1

    async def _once(self, url: str, headers: dict[str, str]) -> Response:
        limit = self.config.max_bytes
        async with self._http().stream("GET", url, headers=headers) as r:
            etag, modified = r.headers.get("etag"), r.headers.get("last-modified")
            if r.status_code != 200:
                reason = f"answered {r.status_code} {r.reason_phrase}".rstrip()
                if 300 <= r.status_code < 400 and r.status_code != 304:
                    reason += f" (to {r.headers.get('location', '?')}; redirects are not followed)"
                return Response(r.status_code, b"", etag, modified, reason, _retry_after(r.headers.get("retry-after")))
            length = r.headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                raise _TooLarge
            chunks: list[bytes] = []
            size = 0
            async for chunk in r.aiter_bytes():
                size += len(chunk)
                if size > limit or r.num_bytes_downloaded > limit:
                    raise _TooLarge
                chunks.append(chunk)
            return Response(200, b"".join(chunks), etag, modified)


def _retry_after(value: str | None) -> float | None:
    """Seconds a 429/503 asks to wait (delay-seconds or an HTTP-date), at most MAX_RETRY_AFTER."""
    if not value:
        return None
    if value.strip().isdigit():
        return min(float(value.strip()), MAX_RETRY_AFTER)
    if (when := parse_http_date(value, utcnow() + dt.timedelta(days=1))) is not None:
        return min(max(0.0, (when - utcnow()).total_seconds()), MAX_RETRY_AFTER)
    return None


def conditional(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers
