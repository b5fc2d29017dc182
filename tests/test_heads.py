"""Hostile request heads against a real server with `feeds serve`'s HTTP protocol: a head over
32 KiB or 100 fields is answered 431 (RFC 6585) and its connection closed, a 32 MB header is
refused long before it is read whole, and the server goes on answering."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import httpx
import pytest

from feeds.app import create_app
from feeds.config import Settings
from feeds.http_limits import MAX_HEAD_BYTES, MAX_HEADERS, BoundedHttpToolsProtocol
from tests.conftest import LiveServer


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings, scheduler=False), http=BoundedHttpToolsProtocol) as live:
        yield live


def test_heads_over_the_bounds_are_answered_431(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        fine = {f"x-field-{i}": "v" * 200 for i in range(MAX_HEADERS - 5)}  # 95 fields, about 22 KB
        assert client.get("/healthz", headers=fine).status_code == 200
        assert client.get("/healthz", headers=fine).status_code == 200  # again, on the same connection
        many = {f"x-field-{i}": "v" for i in range(MAX_HEADERS + 1)}
        refused = client.get("/healthz", headers=many)
        assert refused.status_code == 431 and refused.headers["connection"] == "close"
        assert refused.json() == {
            "error": f"request header fields too large: at most {MAX_HEAD_BYTES} bytes and {MAX_HEADERS} fields",
            "status": 431,
        }
        assert client.get("/healthz", headers={"x-big": "b" * (MAX_HEAD_BYTES + 1)}).status_code == 431
        assert client.get("/healthz?q=" + "a" * (MAX_HEAD_BYTES + 1)).status_code == 431
        assert client.get("/healthz").status_code == 200


def test_a_32_mb_header_is_refused_before_it_is_read_whole(server: LiveServer) -> None:
    """It was read whole and answered 200: the server now stops reading after a few tens of KB."""
    chunk = b"h" * (64 << 10)
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ")
        with contextlib.suppress(OSError):  # the server closes the connection under the sender
            while sent < 32 << 20:
                sock.sendall(chunk)
                sent += len(chunk)
        with contextlib.suppress(OSError):  # a reset may discard the answer: the bound is in `sent`
            answer = sock.recv(4096)
    assert sent < 32 << 20
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
