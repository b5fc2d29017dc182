"""Polling etiquette: a token bucket per client. A client is its peer address, or the address a
configured proxy (`trusted_proxies`) says it forwarded for (`X-Forwarded-For`, read from the right,
skipping trusted hops). Buckets refill at `rate_limit` requests a second up to `rate_burst`; a
request needs a whole token (a conditional one a fifth) and costs one, or a fifth when it is
answered 304: a reader that sends its validators is rarely limited. Over the limit: 429 with
Retry-After and a short JSON error. Each server process keeps its own buckets (bounded in number)."""

from __future__ import annotations

import ipaddress
import json
import math
import time
from collections.abc import Sequence

from starlette.types import Send

from feeds.responses import JSON_TYPE

NOT_MODIFIED_COST = 0.2
MAX_CLIENTS = 100_000  # buckets kept per process; the least recently seen go first

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(values: Sequence[str]) -> tuple[Network, ...]:
    """Addresses or networks (`10.0.0.0/8`); ValueError naming the one that is neither."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {value!r}") from None
    return tuple(out)


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_of(peer: str, forwarded: str | None, proxies: tuple[Network, ...]) -> str:
    """The address a request is charged to."""
    if not forwarded or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer


class Buckets:
    """The buckets of one server process."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        # client -> [tokens, at], least recently seen first (a dict keeps the order things went in)
        self.buckets: dict[str, list[float]] = {}

    def admit(self, client: str, conditional: bool) -> list[float] | int:
        """The client's bucket if it may be answered now, else the seconds until it may."""
        now = time.monotonic()
        bucket = self.buckets.pop(client, None) or [self.burst, now]
        bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        self.buckets[client] = bucket
        if len(self.buckets) > MAX_CLIENTS:
            del self.buckets[next(iter(self.buckets))]
        needed = NOT_MODIFIED_COST if conditional else 1.0
        if bucket[0] < needed:
            return math.ceil((needed - bucket[0]) / self.rate)
        return bucket

    @staticmethod
    def charge(bucket: list[float], status: int) -> None:
        bucket[0] -= NOT_MODIFIED_COST if status == 304 else 1.0

    async def refuse(self, send: Send, retry_after: int) -> None:
        body = json.dumps(
            {
                "error": f"too many requests: at most {self.rate:g} a second per client (rate_limit); retry in {retry_after} s"
            }
        ).encode()
        headers = [
            (b"content-type", JSON_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry_after).encode()),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
