"""An HTTP site serving the archive tree: `{base}/news/YYYY/MM/D/index.md` and the pages it lists.

The crawl starts at the newest day index (`start`, or probed back from today's UTC date), follows
`Previous Day` links for at most `depth` days, fetches every page a day lists and every older
version a fetched page's `### Changes:` list names, so version chains arrive complete.

A document's time (`Document.modified`) is its response's Last-Modified, if it has one.

Requests are conditional (ETag / Last-Modified kept in the store's `fetches` table): a page that
answers 304 is unchanged and not returned again; a day index keeps its body so a 304 still lets the
crawl go on. Requests are bounded (`concurrency` in flight, `rate` per second, `timeout` each,
`max_bytes` per response), retried with exponential backoff on connection errors, timeouts, 429 and
5xx, and only ever sent to the configured base URL.

A page this source stored earlier that answers 404/410 is deleted once it has been missing for
`deletion_grace` seconds. Stored pages of the crawled days that no index or Changes list names any
more are asked for again (conditionally), so a page dropped from the archive is noticed too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from feeds.config import SourceConfig
from feeds.errors import ParseError, SourceError
from feeds.ids import page_path
from feeds.model import DayListing, Page, utcnow
from feeds.pages import is_day_listing, parse_document
from feeds.pages.markdown import PREVIOUS_DAY
from feeds.sources import Collected, Document
from feeds.sources.times import parse_http_date
from feeds.store import Store

USER_AGENT = "feeds/0.1 (+https://pypi.org/project/feeds)"
MAX_RETRY_AFTER = 30.0  # seconds; a longer Retry-After is not waited for

# `news/YYYY/MM/D/slug` anywhere in a link's path, with an optional extension.
_NEWS_PATH = re.compile(r"(?:^|/)(?P<stem>news/\d{4}/\d{1,2}/\d{1,2}/[^/?#]+?)(?:\.(?:md|json|xml|html))?$")
# The links of a day index, as written (the parsed listing only keeps canonical paths).
_LISTED_HREF = re.compile(r"^###\s*\[.*\]\((?P<url>[^)\s]*)\)\s*$")


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

    # ----- the crawl ------------------------------------------------------------------------------

    async def collect(self, store: Store) -> Collected:
        if self._origin[0] not in ("http", "https") or not self._origin[1]:
            raise SourceError(self.name, f"{self.config.location!r} is not an http(s) URL")
        crawl = _Crawl(self, store)
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

    async def _pace(self, lock: asyncio.Lock) -> None:
        """Space request starts at least 1/rate seconds apart, across the whole source."""
        if self.config.rate <= 0:
            return
        async with lock:
            loop = asyncio.get_running_loop()
            wait = self._next_slot - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_slot = max(loop.time(), self._next_slot) + 1.0 / self.config.rate

    async def get(self, url: str, headers: dict[str, str], slots: asyncio.Semaphore, pace: asyncio.Lock) -> Response:
        """GET with retries; never raises for network trouble (status 0 and a reason instead)."""
        attempt = 0
        while True:
            delay = self.backoff * 2**attempt
            try:
                async with slots:
                    await self._pace(pace)
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
    if value and value.strip().isdigit():
        return min(float(value.strip()), MAX_RETRY_AFTER)
    return None


def _headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


class _Crawl:
    """The state of one `collect()`."""

    def __init__(self, source: HttpSource, store: Store) -> None:
        self.source = source
        self.store = store
        self.config = source.config
        self.documents: list[Document] = []
        self.collected = Collected(documents=self.documents)
        self.now = utcnow()
        self.slots = asyncio.Semaphore(max(1, self.config.concurrency))
        self.pace = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()
        self.pages: set[str] = set()  # canonical paths of pages asked for (or skipped) this run
        self.days: dict[str, str] = {}  # `/news/YYYY/MM/DD` -> `news/YYYY/MM/D`, as the site spells it

    def problem(self, url: str, reason: str) -> None:
        self.collected.problems.append(f"{url}: {reason}")

    def document(self, relpath: str, url: str, answer: Response) -> Document:
        """The body of a 200, with the time its Last-Modified gives (None without one)."""
        modified = parse_http_date(answer.last_modified) if answer.last_modified else None
        if answer.last_modified and modified is None:
            self.problem(url, f"Last-Modified {answer.last_modified[:100]!r} is not an HTTP date (RFC 9110); ignored")
        return Document(relpath, answer.body, url, modified)

    async def get(self, url: str, headers: dict[str, str]) -> Response:
        return await self.source.get(url, headers, self.slots, self.pace)

    # ----- day indexes ----------------------------------------------------------------------------

    async def run(self) -> None:
        relpath: str | None
        body: bytes | None
        relpath, body = await self.start()
        depth = max(1, self.config.depth)
        visited: set[str] = set()
        for n in range(depth):
            if n:
                body = await self.index(relpath)
            if body is None or relpath is None:
                break
            visited.add(page_path(relpath) or relpath)
            relpath = self.read_index(relpath, body)
            if relpath is None or (page_path(relpath) or relpath) in visited:
                break
        await self.drain()
        await self.recheck_unlisted()
        await self.drain()

    async def start(self) -> tuple[str, bytes]:
        """The newest day index and its text; SourceError if there is none."""
        if self.config.start:
            start = self.config.start
            relpath = self.source.relpath_of(start if "://" in start else "/" + start.lstrip("/"))
            if relpath is None or not is_day_listing(relpath):
                reason = f"start {self.config.start!r} is not a news/YYYY/MM/D/index.md path"
                raise SourceError(self.source.name, reason)
            answer, body = await self.fetch_index(relpath)
            if body is None:
                raise SourceError(self.source.name, f"{self.source.url(relpath)}: {answer.reason}")
            return relpath, body
        today = self.now.date()
        for back in range(max(1, self.config.depth)):
            day = today - dt.timedelta(days=back)
            for spelling in dict.fromkeys((str(day.day), f"{day.day:02d}")):
                relpath = f"news/{day.year:04d}/{day.month:02d}/{spelling}/index.md"
                answer, body = await self.fetch_index(relpath)
                if body is not None:
                    return relpath, body
                if answer.status not in (403, 404, 410):
                    # The site is down or broken, not merely missing a day: stop probing.
                    raise SourceError(self.source.name, f"{self.source.url(relpath)}: {answer.reason}")
        raise SourceError(
            self.source.name, f"no day index under {self.source.base} for the last {max(1, self.config.depth)} days"
        )

    async def fetch_index(self, relpath: str) -> tuple[Response, bytes | None]:
        url = self.source.url(relpath)
        etag, modified, kept = await self.store.fetch_state(url)
        answer = await self.get(url, _headers(etag, modified) if kept is not None else {})
        if answer.status == 200:
            await self.store.save_fetch(url, answer.etag, answer.last_modified, answer.body)
            self.documents.append(self.document(relpath, url, answer))
            return answer, answer.body
        if answer.status == 304 and kept is not None:
            return answer, kept
        return answer, None

    async def index(self, relpath: str) -> bytes | None:
        answer, body = await self.fetch_index(relpath)
        if body is None:
            self.problem(self.source.url(relpath), answer.reason or f"answered {answer.status}")
        return body

    def read_index(self, relpath: str, body: bytes) -> str | None:
        """Queue the pages a day index lists; the relpath of the previous day's index, if any."""
        url = self.source.url(relpath)
        day_dir = relpath.rsplit("/", 1)[0]
        canonical_dir = (page_path(relpath) or "").rsplit("/", 1)[0]
        self.days[canonical_dir] = day_dir
        try:
            listing = parse_document(relpath, body, url)
        except ParseError as exc:
            # A fresh index is among the documents and ingest reports it; a kept one is not.
            if not any(d.origin == url for d in self.documents):
                self.collected.problems.append(str(exc))
            return None
        if not isinstance(listing, DayListing):
            return None
        hrefs: dict[str, str] = {}
        previous: str | None = None
        for line in body.decode("utf-8-sig", "replace").splitlines():
            line = line.strip()
            if m := PREVIOUS_DAY.match(line):
                previous = m["url"]
            elif m := _LISTED_HREF.match(line):
                target = page_path(m["url"])
                if target:
                    hrefs.setdefault(target, m["url"])
        for entry in listing.entries:
            href = hrefs.get(entry.path, f"/{day_dir}/{entry.path.rsplit('/', 1)[-1]}.md")
            self.page(href, url)
        if previous is None:
            return None
        before = self.source.relpath_of(previous)
        if before is None or not is_day_listing(before):
            self.problem(url, f"Previous Day link {previous!r} is not an index of this site; not followed")
            return None
        return before

    # ----- pages ----------------------------------------------------------------------------------

    def page(self, href: str, referrer: str) -> None:
        """Queue the page a link names (once per run)."""
        relpath = self.source.relpath_of(href)
        if relpath is None or is_day_listing(relpath):
            self.problem(referrer, f"link {href!r} is not a page of {self.source.base}; not followed")
            return
        path = page_path(relpath)
        if path is None or path in self.pages:
            return
        self.pages.add(path)
        self.spawn(self.fetch_page(relpath, path))

    async def fetch_page(self, relpath: str, path: str) -> None:
        url = self.source.url(relpath)
        # Validators are only sent for pages the store holds from this source: a page whose last
        # copy failed to parse (or was never stored) must come back in full.
        ours = (await self.store.page_sources([path])).get(path) == self.source.name
        headers = _headers(*(await self.store.fetch_state(url))[:2]) if ours else {}
        answer = await self.get(url, headers)
        if answer.status == 304 and headers:
            return
        if answer.status == 200:
            # Saved only once the batch is stored: if storing fails, the next run fetches it again.
            self.collected.validators.append((url, answer.etag, answer.last_modified))
            self.documents.append(self.document(relpath, url, answer))
            try:
                page = parse_document(relpath, answer.body, url)
            except ParseError:
                return  # ingest reports it
            if isinstance(page, Page):
                for change in page.changes:
                    if change.kind != "current" and page_path(change.url) != path:
                        self.page(change.url, url)
            return
        if answer.status in (404, 410) and ours:
            since = await self.store.mark_missing(url, self.now)
            if (self.now - since).total_seconds() >= self.config.deletion_grace:
                self.collected.deleted.append(path)
            else:
                self.problem(
                    url,
                    f"{answer.reason}; missing since {since.isoformat()}, deleted once missing for "
                    f"{self.config.deletion_grace} s",
                )
            return
        self.problem(url, answer.reason or f"answered {answer.status}")

    async def recheck_unlisted(self) -> None:
        """Ask again for stored pages of the crawled days that nothing named this time (a page
        dropped from its day's index is usually gone from the site too)."""
        if not self.days:
            return
        for path in await self.store.missing_pages(self.source.name, self.pages):
            day, _, slug = path.rpartition("/")
            if day in self.days and path not in self.pages:
                self.pages.add(path)
                self.spawn(self.fetch_page(f"{self.days[day]}/{slug}.md", path))

    # ----- tasks ----------------------------------------------------------------------------------

    def spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self.tasks.add(task)

    async def drain(self) -> None:
        """Wait for every queued fetch (and those they queue); the first failure (a store error)
        cancels the rest and propagates."""
        while self.tasks:
            done, _ = await asyncio.wait(self.tasks, return_when=asyncio.FIRST_EXCEPTION)
            self.tasks -= done
            for task in done:
                if not task.cancelled() and (exc := task.exception()) is not None:
                    raise exc

    async def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
