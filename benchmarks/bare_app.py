#!/usr/bin/env python3
"""The floor for `benchmarks/serve.py`: a bare Starlette app serving stored feed bytes from memory.

    .venv/bin/python benchmarks/bare_app.py --database var/feeds.db --port 8001 [--feed topics/x ...]

It loads renditions (plain, gzip and Brotli bytes, ETag, Last-Modified, content type) from the
feeds database once, at start, and answers `GET /feeds/<feed>.<fmt>` with exactly the bytes and
headers `feeds serve` sends (ETag per encoding, Last-Modified, Cache-Control, Vary,
Content-Encoding, Content-Type, Content-Length), including `304 Not Modified` for a matching
If-None-Match. It does the least work that can give those answers: a dict lookup, a substring
test of Accept-Encoding and a comparison of If-None-Match, under the same server software and
options as `feeds serve` (uvicorn, one process, uvloop, httptools, no access log).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
from email.utils import formatdate

import uvicorn
from isal import igzip
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SUFFIX = {"identity": "", "gzip": "-gz", "br": "-br"}


def load(
    database: str, feeds: list[str], cache_control: str, base_url: str = ""
) -> dict[str, dict[str, tuple[bytes, dict[str, str], str]]]:
    """`<feed>.<fmt>` -> encoding -> (body, headers, content type), read once from `renditions`."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        query = "SELECT feed, fmt, gz, br, etag, last_modified, content_type FROM renditions"
        if feeds:
            query += f" WHERE feed IN ({','.join('?' * len(feeds))})"
        rows = conn.execute(query, feeds).fetchall()
    finally:
        conn.close()
    table: dict[str, dict[str, tuple[bytes, dict[str, str], str]]] = {}
    for feed, fmt, gz, br, etag, last_modified, content_type in rows:
        body = igzip.decompress(gz)  # the store keeps gzip and Brotli; the plain bytes are what gzip holds
        modified = formatdate(dt.datetime.fromisoformat(last_modified).timestamp(), usegmt=True)
        variants = {}
        for encoding, data in (("identity", body), ("gzip", gz), ("br", br)):
            headers = {
                "ETag": f'"{etag}{SUFFIX[encoding]}"',
                "Last-Modified": modified,
                "Cache-Control": cache_control,
                "Vary": "Accept-Encoding",
                "X-Content-Type-Options": "nosniff",
            }
            if base_url:  # WebSub: the hub and the feed itself
                headers["Link"] = f'<{base_url}/websub>; rel="hub", <{base_url}/feeds/{feed}.{fmt}>; rel="self"'
            if encoding != "identity":
                headers["Content-Encoding"] = encoding
            variants[encoding] = (bytes(data), headers, content_type)
        table[f"{feed}.{fmt}"] = variants
    return table


def create_app(table: dict[str, dict[str, tuple[bytes, dict[str, str], str]]]) -> Starlette:
    async def feed(request: Request) -> Response:
        variants = table.get(request.path_params["path"])
        if variants is None:
            return Response(b'{"error": "not found", "status": 404}', status_code=404, media_type="application/json")
        accept = request.headers.get("accept-encoding", "")
        encoding = "br" if "br" in accept else "gzip" if "gzip" in accept else "identity"
        body, headers, content_type = variants[encoding]
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None and headers["ETag"] in if_none_match:
            return Response(status_code=304, headers=headers)
        return Response(body, headers=headers, media_type=content_type)

    return Starlette(routes=[Route("/feeds/{path:path}", feed, methods=["GET", "HEAD"])])


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve stored feed renditions from memory (benchmark floor).")
    parser.add_argument("--database", required=True, help="a feeds SQLite database")
    parser.add_argument("--feed", action="append", default=[], help="feed name to load (repeatable; default: all)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    # What feeds serves for latest and topic feeds (benchmarks/serve.py passes feeds' own).
    parser.add_argument("--cache-control", default="public, max-age=300")
    parser.add_argument("--base-url", default="", help="feeds' base_url: send its WebSub Link header")
    args = parser.parse_args()
    table = load(args.database, args.feed, args.cache_control, args.base_url.rstrip("/"))
    if not table:
        parser.error(f"no renditions found in {args.database}")
    # The options `feeds serve` runs uvicorn with (feeds/cli.py), one process.
    uvicorn.run(
        create_app(table),
        host=args.host,
        port=args.port,
        log_level="info",
        loop="uvloop",
        http="httptools",
        access_log=False,
    )


if __name__ == "__main__":
    main()
