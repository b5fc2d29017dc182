"""Answers made of stored documents: errors, headers built once per document version, and the
conditional request (304) every document answers alike."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from feeds.conditional import choose_encoding, etag_header, http_date, is_not_modified
from feeds.config import Settings
from feeds.model import Rendition


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


# Every answer says what it is and is taken as that (no content sniffing of source text).
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
NO_STORE = {"Cache-Control": "no-store", **NOSNIFF}
# Every JSON answer (documents, errors) and the export's nginx say the same type: nginx's
# `charset utf-8` adds the parameter to application/json, so the server writes it too.
JSON_TYPE = "application/json; charset=utf-8"


def error(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = dict(NO_STORE)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers, media_type=JSON_TYPE)


RETRY_AFTER = 5  # seconds a reader is asked to wait for a document being rendered


ENCODING_KEY = "feeds.encoding"  # in the ASGI scope: the content coding a 200 was sent with


def cache_control(settings: Settings, name: str = "", today: dt.date | None = None) -> str:
    """Cache-Control of a served document: a settled day's feeds keep longer than live ones."""
    max_age = settings.cache_max_age
    if today and name.startswith("dates/"):
        day = dt.date.fromisoformat(name.removeprefix("dates/"))
        if (today - day).days > settings.settle_days:
            max_age = settings.archive_max_age
    stale = [
        f"{directive}={seconds}"
        for directive, seconds in (
            ("stale-while-revalidate", settings.cache_stale_while_revalidate),
            ("stale-if-error", settings.cache_stale_if_error),
        )
        if seconds
    ]
    return ", ".join(["public", f"max-age={max_age}", *stale])


@dataclass(frozen=True)
class Representation:
    """One encoding of one stored document, with its response headers built once."""

    body: bytes
    etag: str
    ok: list[tuple[bytes, bytes]]
    not_modified: list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Prepared:
    """A stored document as the app serves it: every header made when it enters the cache, so a
    request costs a lookup and a comparison of validators."""

    last_modified: dt.datetime
    encodings: dict[str, Representation]

    @classmethod
    def of(cls, rendition: Rendition, cache: str, vary: str = "Accept-Encoding", link: str = "") -> Prepared:
        common = [
            (b"last-modified", http_date(rendition.last_modified).encode()),
            (b"cache-control", cache.encode()),
            (b"vary", vary.encode()),
            (b"x-content-type-options", b"nosniff"),
        ]
        if link:
            common.append((b"link", link.encode()))
        encodings = {}
        for encoding, body in (("identity", rendition.body), ("gzip", rendition.gzip), ("br", rendition.br)):
            etag = etag_header(rendition.etag, encoding)
            validators = [(b"etag", etag.encode()), *common]
            ok = [(b"content-type", rendition.content_type.encode()), (b"content-length", str(len(body)).encode())]
            if encoding != "identity":
                ok.append((b"content-encoding", encoding.encode()))
            encodings[encoding] = Representation(body, etag, ok + validators, validators)
        return cls(rendition.last_modified, encodings)

    def varied(self, vary: str) -> Prepared:
        """The same bytes answered with another `Vary` (a negotiated URL of a stored document)."""

        def swap(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
            return [(name, vary.encode() if name == b"vary" else value) for name, value in headers]

        encodings = {e: replace(r, ok=swap(r.ok), not_modified=swap(r.not_modified)) for e, r in self.encodings.items()}
        return Prepared(self.last_modified, encodings)


class RawResponse(Response):
    """A response whose headers are already encoded (Starlette would encode them per request)."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
        self.status_code = status
        self.raw_headers = headers
        self.body = body
        self.background = None


def serve(request: Request, document: Prepared) -> Response:
    accept = if_none_match = if_modified_since = None
    for name, value in request.scope["headers"]:  # one pass over the raw headers, the first of each
        if name == b"accept-encoding":
            accept = value if accept is None else accept
        elif name == b"if-none-match":
            if_none_match = value if if_none_match is None else if_none_match
        elif name == b"if-modified-since":
            if_modified_since = value if if_modified_since is None else if_modified_since
    encoding = choose_encoding(accept.decode("latin-1") if accept is not None else None)
    representation = document.encodings[encoding]
    if is_not_modified(
        if_none_match.decode("latin-1") if if_none_match is not None else None,
        if_modified_since.decode("latin-1") if if_modified_since is not None else None,
        representation.etag,
        document.last_modified,
    ):
        return RawResponse(304, representation.not_modified)
    if encoding != "identity":
        request.scope[ENCODING_KEY] = encoding  # for feeds/observe.py: no header scan per response
    body = b"" if request.method == "HEAD" else representation.body
    return RawResponse(200, representation.ok, body)


def retry_after(settings: Settings) -> int:
    return min(RETRY_AFTER, settings.refresh_interval)
