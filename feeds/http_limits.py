"""Bounded request heads: uvicorn's httptools protocol with nginx's limits on the request line and
header fields, answering 431 Request Header Fields Too Large (RFC 6585) beyond them.

httptools (llhttp) bounds neither the size nor the number of header fields: a single 32 MB header
was read whole and answered. Here a head is refused once its request target and fields pass
`MAX_HEAD_BYTES` or it has more than `MAX_HEADERS` fields; and, since httptools gathers a field
whole before handing it over, the bytes received while a head is incomplete are bounded too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 32 << 10  # request target and header fields (nginx: large_client_header_buffers 4 8k)
MAX_HEADERS = 100
# Bytes received while a head is incomplete: a head at the bound plus the first read of its body.
MAX_HEAD_RECEIVED = MAX_HEAD_BYTES + (64 << 10)
REFUSAL = b"request header fields too large: at most %d bytes and %d fields" % (MAX_HEAD_BYTES, MAX_HEADERS)

log = logging.getLogger(__name__)


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing the head it is in."""


class _Parser:
    """httptools' parser, but a head refused by a callback ends parsing quietly (uvicorn would
    answer any parser error 400, with a warning line)."""

    def __init__(self, parser: httptools.HttpRequestParser, protocol: BoundedHttpToolsProtocol) -> None:
        self.parser = parser
        self.protocol = protocol

    def feed_data(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            if not self.protocol.too_large:
                raise
            self.protocol.refuse()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.parser, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """`feeds serve`'s HTTP protocol (uvicorn's `http=`): httptools with bounded heads."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.head_bytes = 0
        self.head_fields = 0
        self.head_received = 0
        self.in_head = True
        self.refused = False
        self.too_large = False
        super().connection_made(transport)
        self.parser = _Parser(self.parser, self)  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.in_head:
            self.head_received += len(data)
            if self.head_received > MAX_HEAD_RECEIVED:
                self.refuse()
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        self.head_bytes = self.head_fields = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self.head_bytes += len(url)
        if self.head_bytes > MAX_HEAD_BYTES:
            self.too_large = True
            raise HeadTooLarge
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value) + 4  # ": " and CRLF, as they came
        self.head_fields += 1
        if self.head_bytes > MAX_HEAD_BYTES or self.head_fields > MAX_HEADERS:
            self.too_large = True
            raise HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_received = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.in_head = True
        super().on_message_complete()

    def refuse(self) -> None:
        """431 with a one-line JSON error, as every error of this server, and the connection closed."""
        if self.refused:
            return
        self.refused = True
        client = self.client[0] if self.client else "-"
        log.info("refused a request head from %s: over %d bytes or %d fields", client, MAX_HEAD_BYTES, MAX_HEADERS)
        body = b'{"error": "%s", "status": 431}' % REFUSAL
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.transport.close()
