"""One `collect()` of an HTTP source: the walk over the archive's days and the pages they name.

A day is its folder `news/YYYY/MM/D/`; both of its listings, `index.md` and `README.md`, are asked
for (the archive has days with only one, and days whose `index.md` lists nothing while `README.md`
lists the day's pages under their `#####` headings). The walk goes from each start day to the day
its listings' `Previous Day` link names; a day with no listing (both answer 404, or fail) does
not end it: the calendar day before is tried, up to `max_gap` such days in a row. A walk ends at a
day with no `Previous Day` link (the archive's first day), after `max_gap` missing days, or at
its bound: `depth` days back from its start, then, with `until` set, on down to that day across
refreshes, resumed from the source's cursor in the store.

Every page a listing names is fetched, and every other version its `### Changes:` list names (older
ones and the current one: a listing can name an older slug), so version chains arrive whole.
Requests count against `max_pages`; past it nothing more is asked for in this refresh, and the
newest day left out is where the walk goes on next time (with `until` set).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Coroutine
from typing import Any

from feeds.config import SourceConfig
from feeds.errors import ParseError, SourceError
from feeds.ids import page_path
from feeds.model import DayListing, Page, utcnow
from feeds.pages import is_day_listing, parse_document
from feeds.pages.markdown import PREVIOUS_DAY
from feeds.sources import Collected, Document
from feeds.sources.http import (
    LISTED_HREF,
    LISTING_NAMES,
    HttpSource,
    Response,
    conditional,
    day_dir_of,
    folder_pages,
)
from feeds.sources.times import parse_http_date
from feeds.store import Store

DONE = "done"  # the cursor once a walk down to `until` has finished: "done YYYY-MM-DD"


def day_of(day_dir: str) -> dt.date | None:
    """The date of `news/YYYY/MM/D` (day padded or not)."""
    canonical = page_path(f"/{day_dir}/index")
    if canonical is None:
        return None
    _, _, year, month, day, _ = canonical.split("/")
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        return None


def day_before(day_dir: str, date: dt.date) -> str:
    """The folder of the day before `date`, its day spelled as `day_dir` spells its own (padded or not)."""
    before = date - dt.timedelta(days=1)
    padded = day_dir.rsplit("/", 1)[-1].startswith("0")
    day = f"{before.day:02d}" if padded else str(before.day)
    return f"news/{before.year:04d}/{before.month:02d}/{day}"


class Crawl:
    """The state of one `collect()`."""

    def __init__(self, source: HttpSource, store: Store) -> None:
        self.source = source
        self.store = store
        self.config: SourceConfig = source.config
        self.documents: list[Document] = []
        self.collected = Collected(documents=self.documents)
        self.now = utcnow()
        self.tasks: set[asyncio.Task[None]] = set()
        self.pages: set[str] = set()  # canonical paths of pages asked for (or skipped) this run
        self.days: dict[str, str] = {}  # `/news/YYYY/MM/DD` -> `news/YYYY/MM/D`, as the site spells it
        self.walked: set[dt.date] = set()
        self.requests = 0
        self.cut: dict[dt.date, str] = {}  # days whose requests max_pages left out -> their folder

    def problem(self, url: str, reason: str) -> None:
        self.collected.problems.append(f"{url}: {reason}")

    def document(self, relpath: str, url: str, answer: Response) -> Document:
        """The body of a 200, with the time its Last-Modified gives (None without one)."""
        modified = parse_http_date(answer.last_modified) if answer.last_modified else None
        if answer.last_modified and modified is None:
            self.problem(url, f"Last-Modified {answer.last_modified[:100]!r} is not an HTTP date (RFC 9110); ignored")
        return Document(relpath, answer.body, url, modified)

    def allowed(self, relpath: str) -> bool:
        """Count one request against `max_pages`; False (and the day noted) once it is spent."""
        if self.requests < max(1, self.config.max_pages):
            self.requests += 1
            return True
        day_dir = relpath.rsplit("/", 1)[0]
        if (date := day_of(day_dir)) is not None:
            self.cut.setdefault(date, day_dir)
        return False

    # ----- the walk -------------------------------------------------------------------------------

    async def run(self) -> None:
        heads = await self.starts()
        depth = max(1, self.config.depth)
        tail: str | None = None
        for head, bodies in heads:
            date = day_of(head)
            assert date is not None
            rest = await self.walk(head, date - dt.timedelta(days=depth - 1), bodies)
            tail = tail or rest
        if self.config.until and not self.cut:
            await self.backlog(tail)
        await self.drain()
        if self.cut and self.collected.cursor is not None:
            # Cut on the way to `until`: the next refresh goes on from the newest day left out.
            self.collected.cursor = self.cut[max(self.cut)]
        await self.recheck_unlisted()
        await self.drain()
        if self.cut:
            newest = max(self.cut)
            self.problem(
                self.source.base,
                f"stopped after max_pages={self.config.max_pages} requests; "
                f"{self.cut[newest]} and the days before it were not (all) asked for",
            )

    async def backlog(self, tail: str | None) -> None:
        """Walk on from where the last refresh stopped (or where the recent days end) down to `until`."""
        done = f"{DONE} {self.config.until}"  # a walk to another `until` starts again
        saved = await self.store.cursor(self.source.name)
        if saved == done:
            return
        resume = day_of(saved) if saved else None
        # A saved day this refresh has walked already (a recent one) says nothing of the backlog.
        start = saved if resume is not None and resume not in self.walked else tail
        if start is not None:
            await self.walk(start, dt.date.fromisoformat(self.config.until))
        self.collected.cursor = done

    async def walk(self, day_dir: str, oldest: dt.date, first: dict[str, bytes] | None = None) -> str | None:
        """Walk back from `day_dir` (whose listings may be given) to `oldest`; the folder it would
        go on to past `oldest`, else None."""
        gap = 0
        while (date := day_of(day_dir)) is not None:
            if date < oldest:
                return day_dir
            if date in self.walked or self.cut:
                return None
            self.walked.add(date)
            bodies, first = (first, None) if first is not None else (await self.day(day_dir), None)
            if not bodies:
                gap += 1
                if gap >= self.config.max_gap:
                    return None
                day_dir = day_before(day_dir, date)
                continue
            gap = 0
            previous = None
            for relpath, body in bodies.items():
                previous = self.read_listing(relpath, body) or previous
            if previous is None:
                return None
            before = day_of(previous)
            if before is None or before >= date:
                self.problem(self.source.url(f"{day_dir}/"), f"Previous Day link to {previous} does not go back")
                return None
            day_dir = previous
        return None

    async def starts(self) -> list[tuple[str, dict[str, bytes]]]:
        """The folders of the days the walks start from, with their listings; SourceError if a
        configured one has none, or if none is found probing back from today."""
        if self.config.start:
            heads = []
            for start in self.config.start.split():
                relpath = self.source.relpath_of(start if "://" in start else "/" + start.lstrip("/"))
                if relpath is None or not is_day_listing(relpath):
                    reason = f"start {start!r} is not a news/YYYY/MM/D/index.md (or README.md) path"
                    raise SourceError(self.source.name, reason)
                head = day_dir_of(relpath)
                if not (bodies := await self.day(head, strict=True)):
                    raise SourceError(self.source.name, f"{self.source.url(relpath)}: no listing (404)")
                heads.append((head, bodies))
            return heads
        today = self.now.date()
        for back in range(max(1, self.config.depth)):
            day = today - dt.timedelta(days=back)
            for spelling in dict.fromkeys((str(day.day), f"{day.day:02d}")):
                head = f"news/{day.year:04d}/{day.month:02d}/{spelling}"
                if bodies := await self.day(head, strict=True):
                    return [(head, bodies)]
        raise SourceError(
            self.source.name, f"no day listing under {self.source.base} for the last {max(1, self.config.depth)} days"
        )

    async def day(self, day_dir: str, strict: bool = False) -> dict[str, bytes]:
        """The listings of a day that answer (relpath -> text); the pages its folder listing names
        are queued. A failure other than 403/404/410 is a problem, or with `strict` (a start day)
        a SourceError: the site is down, not missing a day."""
        relpaths = [f"{day_dir}/{name}" for name in LISTING_NAMES]
        *answers, folder = await asyncio.gather(*(self.listing(relpath) for relpath in relpaths), self.folder(day_dir))
        bodies: dict[str, bytes] = {}
        for relpath, (answer, body) in zip([*relpaths, f"{day_dir}/"], [*answers, folder], strict=True):
            if body is not None:
                if relpath in relpaths:
                    bodies[relpath] = body
            elif answer.status not in (403, 404, 410):
                reason = answer.reason or f"answered {answer.status}"
                if strict:
                    raise SourceError(self.source.name, f"{self.source.url(relpath)}: {reason}")
                self.problem(self.source.url(relpath), reason)
        if folder[1] is not None:
            url = self.source.url(f"{day_dir}/")
            for name in folder_pages(folder[1]):
                self.page(f"/{day_dir}/{name}", url)
        return bodies

    async def folder(self, day_dir: str) -> tuple[Response, bytes | None]:
        """The day folder's own listing, where the site offers one (nginx autoindex, Python's
        http.server): it names every page of the day, also versions nothing links to."""
        if not self.allowed(f"{day_dir}/"):
            return Response(404), None
        url = self.source.url(f"{day_dir}/")
        etag, modified, kept = await self.store.fetch_state(url)
        answer = await self.source.get(url, conditional(etag, modified) if kept is not None else {})
        if answer.status == 200:
            await self.store.save_fetch(url, answer.etag, answer.last_modified, answer.body)
            return answer, answer.body
        return answer, kept if answer.status == 304 else None

    async def listing(self, relpath: str) -> tuple[Response, bytes | None]:
        """A day listing's text: fresh (and among the documents) or, on a 304, as kept in the store."""
        if not self.allowed(relpath):
            return Response(404), None  # left out, not missing: `cut` says so
        url = self.source.url(relpath)
        etag, modified, kept = await self.store.fetch_state(url)
        answer = await self.source.get(url, conditional(etag, modified) if kept is not None else {})
        if answer.status == 200:
            await self.store.save_fetch(url, answer.etag, answer.last_modified, answer.body)
            self.documents.append(self.document(relpath, url, answer))
            return answer, answer.body
        if answer.status == 304 and kept is not None:
            return answer, kept
        return answer, None

    def read_listing(self, relpath: str, body: bytes) -> str | None:
        """Queue the pages a day listing names; the folder of the day its Previous Day link names."""
        url = self.source.url(relpath)
        day_dir = day_dir_of(relpath)
        self.days[(page_path(relpath) or "").rsplit("/", 1)[0]] = day_dir
        try:
            listing = parse_document(relpath, body, url)
        except ParseError as exc:
            # A fresh listing is among the documents and ingest reports it; a kept one is not.
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
            elif (m := LISTED_HREF.match(line)) and (target := page_path(m["url"])):
                hrefs.setdefault(target, m["url"])
        for entry in listing.entries:
            self.page(hrefs.get(entry.path, f"/{day_dir}/{entry.path.rsplit('/', 1)[-1]}.md"), url)
        if previous is None:
            return None
        before = self.source.relpath_of(previous)
        if before is None or not is_day_listing(before):
            self.problem(url, f"Previous Day link {previous!r} is not a listing of this site; not followed")
            return None
        return day_dir_of(before)

    # ----- pages ----------------------------------------------------------------------------------

    def page(self, href: str, referrer: str) -> None:
        """Queue the page a link names (once per run)."""
        relpath = self.source.relpath_of(href)
        if relpath is None or is_day_listing(relpath):
            self.problem(referrer, f"link {href!r} is not a page of {self.source.base}; not followed")
            return
        path = page_path(relpath)
        if path is None or path in self.pages or not self.allowed(relpath):
            return
        self.pages.add(path)
        self.spawn(self.fetch_page(relpath, path))

    async def fetch_page(self, relpath: str, path: str) -> None:
        url = self.source.url(relpath)
        # Validators are only sent for pages the store holds from this source: a page whose last
        # copy failed to parse (or was never stored) must come back in full.
        ours = (await self.store.page_sources([path])).get(path) == self.source.name
        headers = conditional(*(await self.store.fetch_state(url))[:2]) if ours else {}
        answer = await self.source.get(url, headers)
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
                # Every other version, the current one included: a listing may name an older slug.
                for change in page.changes:
                    if page_path(change.url) != path:
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
        dropped from its day's listing is usually gone from the site too)."""
        if not self.days:
            return
        for path in await self.store.missing_pages(self.source.name, self.pages):
            day, _, slug = path.rpartition("/")
            if day in self.days and path not in self.pages:
                relpath = f"{self.days[day]}/{slug}.md"
                if self.allowed(relpath):
                    self.pages.add(path)
                    self.spawn(self.fetch_page(relpath, path))

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
