"""The one ASGI middleware every request goes through (feeds/app.py): what each observer of
requests needs, learnt once per request."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Receive, Scope, Send

from feeds.access import record
from feeds.config import Settings
from feeds.exchange import Answered, watched
from feeds.metrics import count
from feeds.ratelimit import Buckets, client_of, networks
from feeds.responses import ENCODING_KEY
from feeds.subscribers import Subscribers, feed_of

AGENT_BYTES = 512  # of a User-Agent noted for statistics (aggregators' are well under it)


class Observe:
    """The one middleware every request goes through: its client (the peer, or whom a trusted
    proxy forwarded for), the rate limit, then, once answered, the request counts, the subscriber
    statistics and the access log. One wrapper of `send` for all of them."""

    def __init__(self, app: ASGIApp, settings: Settings, subscribers: Subscribers) -> None:
        self.app = app
        self.proxies = networks(settings.trusted_proxies)
        self.buckets = Buckets(settings.rate_limit, settings.rate_burst) if settings.rate_limit else None
        self.subscribers = subscribers if settings.subscriber_stats else None
        self.logged = settings.access_log != "off"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        client = (scope.get("client") or ("-", 0))[0]
        if self.proxies and (forwarded := headers.get(b"x-forwarded-for")):
            client = client_of(client, forwarded.decode("latin-1"), self.proxies)
        bucket = None
        if self.buckets is not None:
            admitted = self.buckets.admit(client, b"if-none-match" in headers or b"if-modified-since" in headers)
            if isinstance(admitted, int):
                await self.buckets.refuse(send, admitted)
                count(scope["path"], 429, None)
                if self.logged:
                    record(scope, headers, client, Answered(429, None, 0), time.perf_counter())
                return
            bucket = admitted
        started = time.perf_counter()
        answered = Answered()
        try:
            await self.app(scope, receive, watched(send, answered, self.logged))
        finally:
            answered.encoding = scope.get(ENCODING_KEY)
            if bucket is not None:
                Buckets.charge(bucket, answered.status)
            count(scope["path"], answered.status, answered.encoding)
            if self.subscribers and answered.status in (200, 304) and (feed := feed_of(scope["path"])):
                # Kept raw until written: cut, so a flood of long made-up agents stays small.
                self.subscribers.note(feed, client, headers.get(b"user-agent", b"")[:AGENT_BYTES])
            if self.logged:
                record(scope, headers, client, answered, started)
