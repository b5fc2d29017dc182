"""A WebSub hub (W3C Recommendation) for this server's own feeds, at `POST /websub`.

- Subscribe / unsubscribe: the request is checked (a topic that is one of our feeds, a callback
  that is a public http(s) URL unless `websub_allow_private_callbacks`), answered 202, and the
  subscriber's intent verified asynchronously: a GET to the callback with `hub.challenge`; only
  an echoed challenge makes (or ends) the subscription. Leases are clamped to the configured
  minimum and maximum; subscriptions live in the store and end with their lease.
- Distribution: driven by the store's own record of what changed (feeds/store/websub.py), not by
  who wrote it: a change stored by the scheduler, `feeds refresh`, `feeds ingest`, `feeds publish`
  or another worker reaches every active subscriber of each changed feed once, within a second or
  so, sent by exactly one server process. Each gets the newest body (POST, the feed's content
  type, Link headers, `X-Hub-Signature: sha256=...` when it gave a secret), with bounded
  concurrency and a timeout; a failed delivery is retried with exponential backoff and dropped
  after `ATTEMPTS`. What is owed is kept in the store, so a restart neither loses nor repeats a
  delivery. Deliveries run beside the refresh and the requests, never in their way.
- With `websub_hub` set, the feeds advertise that hub instead, and it is pinged
  (`hub.mode=publish`) for each feed a change rendered anew, by one server process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response

from feeds.cache import _watch_log
from feeds.config import Settings
from feeds.errors import FeedsError
from feeds.model import FEED_FORMATS, Rendition, utcnow
from feeds.publish.demand import known
from feeds.render import CONTENT_TYPES, feed_url
from feeds.responses import error
from feeds.store import Store
from feeds.store.websub import Owed
from feeds.websub_links import link_header

CONCURRENCY = 16  # deliveries and verifications in flight
TIMEOUT = 10.0  # seconds per request to a subscriber
ATTEMPTS = 5  # a delivery is dropped after this many failures
BACKOFF = 2.0  # seconds before the first retry; doubled after each failure
MAX_SECRET = 200  # bytes (the spec: less than 200)
HOLD = 60.0  # seconds a process holds the deliveries it claimed (another takes them after, if it died)
POLL = 1.0  # seconds between looks at the store when no change was noticed (inotify tells sooner)
GAP = 0.05  # seconds between two looks at the store

DELIVERIES = Counter("feeds_websub_deliveries", "WebSub content deliveries, by outcome", ["outcome"])
log = logging.getLogger(__name__)


def _allowed_address(address: str, allow_private: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return allow_private or ip.is_global


async def callback_problem(callback: str, allow_private: bool) -> str | None:
    """Why a callback may not be called (not http(s), no host, a private address), or None."""
    parts = urlsplit(callback)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "hub.callback: an absolute http(s) URL"
    host = parts.hostname
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443)
        except OSError:
            return f"hub.callback: {host} does not resolve"
        addresses = sorted({str(info[4][0]) for info in infos})
    if not all(_allowed_address(a, allow_private) for a in addresses):
        return f"hub.callback: {host} is not a public address (websub_allow_private_callbacks)"
    return None


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class Hub:
    """The hub of one server process: requests answered here; deliveries claimed from the store,
    each by one of the server's processes."""

    def __init__(self, store: Store | None, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.limit = asyncio.Semaphore(CONCURRENCY)
        self.caps = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self.claimed: dict[tuple[str, str, str], Owed] = {}  # deliveries under way in this process
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._unwatch: Callable[[], None] | None = None
        self.make: Callable[[str, str], Awaitable[Rendition | None]] | None = None  # the app's, on request

    async def current(self, feed: str, fmt: str) -> Rendition | None:
        """The document's current version: stored, else made now (feeds.publish.demand)."""
        assert self.store is not None
        rendition = await self.store.rendition(feed, fmt)
        if rendition is None and self.make is not None:
            rendition = await self.make(feed, fmt)
        return rendition

    @property
    def client(self) -> httpx.AsyncClient:
        """Made when first needed: a server nobody subscribes to opens no connection pool."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
        return self._client

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        if self._unwatch:
            self._unwatch()
        unfinished = list(self.claimed.values())
        for task in [self._loop, *self.tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*[t for t in [self._loop, *self.tasks] if t is not None], return_exceptions=True)
        if unfinished and self.store is not None:
            # Deliveries cut short are due again at once, for whichever process runs next.
            try:
                await self.store.websub_release(unfinished, utcnow())
            except FeedsError as exc:
                log.warning("websub: could not give back %d deliveries under way: %s", len(unfinished), exc)
        if self._client is not None:
            await self._client.aclose()

    def topic_of(self, topic: str) -> tuple[str, str] | None:
        """(feed, format) of a topic URL naming one of this server's feeds."""
        base = self.settings.base_url.rstrip("/") + "/feeds/"
        if not topic.startswith(base):
            return None
        from feeds.app import HTTPError, feed_name

        try:
            return feed_name(topic[len(base) :].split("?")[0])
        except HTTPError:
            return None

    async def answer(self, request: Request) -> Response:
        """`POST /websub`: a subscription request (form-encoded), answered 202 and verified later."""
        if self.settings.websub_hub or not self.settings.websub or self.store is None:
            return error(404, "this server's hub is off (websub = false, or websub_hub names another)")
        body = await request.body()
        if len(body) > 8192:
            return error(413, "a subscription request is at most 8 KiB")
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        mode, topic, callback = form.get("hub.mode"), form.get("hub.topic", ""), form.get("hub.callback", "")
        if mode not in ("subscribe", "unsubscribe"):
            return error(400, "hub.mode: subscribe or unsubscribe")
        found = self.topic_of(topic)
        # Checked, not rendered: a cold feed is made when a change is first delivered.
        if found is None or not (
            await self.store.rendition(*found) or await known(self.store, self.settings, found[0])
        ):
            return error(400, f"hub.topic: not a feed of this server: {topic[:200]!r}")
        if problem := await callback_problem(callback, self.settings.websub_allow_private_callbacks):
            return error(400, problem)
        secret = form.get("hub.secret", "")
        if len(secret.encode("utf-8")) >= MAX_SECRET:
            return error(400, f"hub.secret: less than {MAX_SECRET} bytes")
        lease = self.settings.websub_lease_seconds
        if requested := form.get("hub.lease_seconds"):
            if not requested.isdigit():
                return error(400, "hub.lease_seconds: a whole number of seconds")
            lease = int(requested)
        lease = max(self.settings.websub_min_lease_seconds, min(self.settings.websub_max_lease_seconds, lease))
        if mode == "subscribe" and (full := await self.full(found, callback)):
            return error(429, full)
        self._spawn(self._verify(mode, found, topic, callback, lease, secret))
        return Response(status_code=202)

    async def full(self, found: tuple[str, str], callback: str) -> str | None:
        """Why a new subscription would pass a cap (per callback host, in all), or None; renewing
        one that is held is never refused."""
        assert self.store is not None
        own, host, held = await self.store.websub_held(callback, utcnow())
        if found in own:
            return None
        per_host, most = self.settings.websub_max_subscriptions_per_host, self.settings.websub_max_subscriptions
        if host >= per_host:
            name = urlsplit(callback).hostname
            return f"hub.callback: {name} holds {host} subscriptions, the most one host may (websub_max_subscriptions_per_host)"
        if held >= most:
            return f"this hub holds {held} subscriptions, the most it takes (websub_max_subscriptions)"
        return None

    async def _verify(
        self, mode: str, found: tuple[str, str], topic: str, callback: str, lease: int, secret: str
    ) -> None:
        assert self.store is not None
        challenge = secrets.token_urlsafe(24)
        query = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge}
        if mode == "subscribe":
            query["hub.lease_seconds"] = str(lease)
        url = callback + ("&" if urlsplit(callback).query else "?") + urlencode(query)
        try:
            async with self.limit:
                answer = await self.client.get(url)
        except httpx.HTTPError as exc:
            log.info("websub: %s of %s by %s not verified: %s", mode, topic, callback, exc)
            return
        if not answer.is_success or answer.text != challenge:
            log.info("websub: %s of %s by %s refused by the subscriber (%d)", mode, topic, callback, answer.status_code)
            return
        if mode == "subscribe":
            async with self.caps:  # counted and written together: requests verified at once stay within
                if full := await self.full(found, callback):
                    log.info("websub: subscribe of %s by %s refused: %s", topic, callback, full)
                    return
                await self.store.websub_subscribe(*found, callback, secret, utcnow() + dt.timedelta(seconds=lease))
        else:
            await self.store.websub_unsubscribe(*found, callback)
        log.info("websub: %s %s for %s", mode, topic, callback)

    async def start(self) -> None:
        """Start pushing what the store records as changed (the built-in hub's deliveries, or pings
        of the configured hub), whichever process wrote it."""
        if self.store is None or not (self.settings.websub or self.settings.websub_hub) or self._loop is not None:
            return
        self._unsubscribe = self.store.on_renditions_written(self._wake.set)
        self._unwatch = _watch_log(self.store.path, self._wake.set)
        self._loop = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                due = await self._pump()
            except FeedsError as exc:  # the store busy past its timeout (a bulk load): look again
                log.warning("websub: looking for changes failed: %s", exc)
                due = None
            except Exception:  # a failed look must not stop the next one
                log.exception("websub: looking for changes failed")
                due = None
            wait = POLL if due is None else min(POLL, max(0.0, (due - utcnow()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            # A refresh writes the store's log many times: look at most every GAP seconds meanwhile.
            await asyncio.sleep(GAP)

    async def _pump(self) -> dt.datetime | None:
        """Turn the store's new versions into owed deliveries (or pings of the configured hub), and
        start the deliveries that are due, as many as there is room for. Returns when the next one
        is due (None: none is owed, or there is no room until one under way ends)."""
        assert self.store is not None
        written, due = await self.store.websub_pending()
        now = utcnow()
        if self.settings.websub_hub:
            for feed, fmt in await self.store.websub_changed() if written else []:
                if fmt in FEED_FORMATS:
                    self._spawn(self._ping(feed_url(self.settings.base_url, feed, fmt)))
            return None
        # With nobody subscribed there is nothing to owe: no write (a new subscriber's `sent` is the
        # version it subscribed at, so the cursor left behind owes it nothing old).
        if written and await self.store.websub_subscribed():
            await self.store.websub_collect(now)
            due = (await self.store.websub_pending())[1]
        if due is None or due > now:
            return due
        room = CONCURRENCY - len(self.claimed)
        for owed in await self.store.websub_claim(now, now + dt.timedelta(seconds=HOLD), room):
            self.claimed[owed.key] = owed
            self._spawn(self._deliver(owed))
        return None if len(self.claimed) >= CONCURRENCY else (await self.store.websub_pending())[1]

    async def _ping(self, url: str) -> None:
        try:
            async with self.limit:
                await self.client.post(self.settings.websub_hub, data={"hub.mode": "publish", "hub.url": url})
        except httpx.HTTPError as exc:
            log.warning("websub: could not ping %s for %s: %s", self.settings.websub_hub, url, exc)

    async def _deliver(self, owed: Owed) -> None:
        """One attempt at an owed delivery of the newest bytes; a failure is owed again after a
        backoff (kept in the store, so a restart keeps it), and dropped after ATTEMPTS."""
        assert self.store is not None
        try:
            problem = await self._attempt(owed)
            if problem is None:
                return
            DELIVERIES.labels("failed").inc()
            failures = owed.failures + 1
            if failures < ATTEMPTS:
                retry = utcnow() + dt.timedelta(seconds=BACKOFF * 2 ** (failures - 1))
                await self.store.websub_failed(owed, retry)
                return
            await self.store.websub_failed(owed, None)
            DELIVERIES.labels("dropped").inc()
            log.warning("websub: %s.%s to %s dropped after %d attempts (%s)", *owed.key, ATTEMPTS, problem)
        except FeedsError:  # the store could not be written: the claim runs out and it is tried again
            log.exception("websub: delivery of %s.%s to %s", *owed.key)
        finally:
            self.claimed.pop(owed.key, None)
            self._wake.set()  # room for the next one

    async def _attempt(self, owed: Owed) -> str | None:
        """Send the document once; None when nothing is owed any more, else what went wrong."""
        assert self.store is not None
        rendition = await self.current(owed.feed, owed.fmt)
        if rendition is None or rendition.etag == owed.sent:  # gone, or the subscriber has it
            await self.store.websub_settled(owed)
            return None
        headers = {"Content-Type": CONTENT_TYPES[owed.fmt], "Link": link_header(self.settings, owed.feed, owed.fmt)}
        if owed.secret:
            headers["X-Hub-Signature"] = signature(owed.secret, rendition.body)
        try:
            async with asyncio.timeout(HOLD / 2):  # well within the claim
                if await callback_problem(owed.callback, self.settings.websub_allow_private_callbacks):
                    DELIVERIES.labels("refused").inc()
                    await self.store.websub_settled(owed)
                    return None  # its name now leads somewhere private
                async with self.limit:
                    answer = await self.client.post(owed.callback, content=rendition.body, headers=headers)
        except (httpx.HTTPError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"
        if answer.is_success:
            DELIVERIES.labels("delivered").inc()
            await self.store.websub_delivered(owed, rendition.etag, utcnow())
            return None
        if answer.status_code == 410:  # the subscriber is gone for good
            await self.store.websub_unsubscribe(*owed.key)
            DELIVERIES.labels("dropped").inc()
            return None
        return f"HTTP {answer.status_code}"


async def endpoint(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    return await hub.answer(request)
