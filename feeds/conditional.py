"""HTTP validators and content coding, pure (RFC 9110 sections 8.8, 12.5.3, 13.1)."""

from __future__ import annotations

import datetime as dt
import functools
from email.utils import formatdate, parsedate_to_datetime

ENCODINGS = ("br", "gzip")  # our preference when the client weighs them equally
_SUFFIX = {"identity": "", "gzip": "-gz", "br": "-br"}


def http_date(value: dt.datetime) -> str:
    return formatdate(value.timestamp(), usegmt=True)


def etag_header(base: str, encoding: str) -> str:
    """A strong ETag per representation: a gzip body is different bytes, so a different tag."""
    return f'"{base}{_SUFFIX[encoding]}"'


def _q(params: list[str]) -> float:
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0


@functools.lru_cache(maxsize=512)  # clients send a handful of distinct headers
@functools.lru_cache(maxsize=256)  # clients send a handful of distinct values
def choose_encoding(accept_encoding: str | None) -> str:
    """The best coding we have that the client accepts; `identity` unless it is refused too."""
    if not accept_encoding:
        return "identity"
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        coding, *params = part.split(";")
        coding = coding.strip().lower()
        if coding:
            weights[coding] = _q(params)
    star = weights.get("*")
    # identity is acceptable unless refused, but when the client did not weigh it, any coding it
    # accepts is preferred: that is why it asked for codings.
    best, best_q = "identity", weights.get("identity", 0.001 if star is None or star > 0 else 0.0)
    for coding in ENCODINGS:
        q = weights.get(coding, star if star is not None else 0.0)
        if q > 0 and q > best_q:
            best, best_q = coding, q
    return best


def is_not_modified(
    if_none_match: str | None, if_modified_since: str | None, etag: str, last_modified: dt.datetime
) -> bool:
    """If-None-Match wins when present (weak comparison, `*` matches); else If-Modified-Since."""
    if if_none_match is not None:
        if if_none_match == etag:  # the usual case: a client sending back what it was given
            return True
        if if_none_match.strip() == "*":
            return True
        return any(t.strip().removeprefix("W/") == etag for t in if_none_match.split(","))
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            return False
        return int(last_modified.timestamp()) <= int(since.timestamp())
    return False
