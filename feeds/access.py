"""The access log: one line per request, as text or as a JSON object (`access_log`), on stderr.

Buffered as nginx's `access_log ... buffer=64k flush=1s` is: a request only appends a tuple of
what it learnt to a deque; a writer thread formats and writes what has gathered once there are
about 64 KB of lines (BATCH) and at least every second (EVERY), and everything left when the
server stops. So a request never formats or writes (one in BATCH wakes the writer), never waits
for stderr, and a line appears within about a second. Off, nothing is added to a request.
"""

from __future__ import annotations

import logging
import re
import select
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from json.encoder import encode_basestring as _string  # a str as a JSON string, non-ASCII kept
from typing import IO

from starlette.types import Scope

from feeds.exchange import Answered

log = logging.getLogger("feeds.access")

BATCH = 400  # lines (~64 KB of text lines) that wake the writer before its second is up
EVERY = 1.0  # seconds at most between a request and its line being written
# A write of at most PIPE_BUF bytes to a pipe is not interleaved with another process's (the
# workers of `feeds serve --workers N` share stderr), so no line is torn by another's.
CHUNK = select.PIPE_BUF

# time (epoch seconds), client, method, path, query, status, bytes, encoding, seconds taken, agent
Entry = tuple[float, str, str, str, bytes, int, int, str | None, float, bytes]

_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\]')
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)} | {ord('"'): '\\"', ord("\\"): "\\\\"}


def _escaped(text: str) -> str:
    """Request text as a log line may hold it: quotes, backslashes and control characters escaped
    (as nginx does), so a crafted path or User-Agent cannot forge a line or a field."""
    return text if _UNSAFE.search(text) is None else text.translate(_ESCAPES)


class Clock:
    """A log line's UTC time, formatted once per second rather than once per line."""

    def __init__(self) -> None:
        self.second = -1
        self.text = ""

    def __call__(self, at: float) -> str:
        second = int(at)
        if second != self.second:
            self.second, self.text = second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        return self.text


def text_line(entry: Entry, clock: Clock) -> str:
    at, client, method, path, query, status, sent, encoding, took, agent = entry
    target = _escaped(f"{path}?{query.decode('latin-1')}" if query else path)
    return (
        f'{clock(at)} {client} "{_escaped(method)} {target}" {status} {sent} {_escaped(encoding or "-")} '
        f'{round(took * 1000, 2)}ms "{_escaped(agent.decode("latin-1"))}"\n'
    )


def json_line(entry: Entry, clock: Clock) -> str:
    """What `json.dumps(fields, ensure_ascii=False, separators=(",", ":"))` gives, assembled with
    json's own string encoder: a third of the time of building and dumping a dict."""
    at, client, method, path, query, status, sent, encoding, took, agent = entry
    coding = "null" if encoding is None else _string(encoding)
    return (
        f'{{"time":"{clock(at)}","client":{_string(client)},"method":{_string(method)},"path":{_string(path)},'
        f'"query":{_string(query.decode("latin-1"))},"status":{status},"bytes":{sent},"encoding":{coding},'
        f'"ms":{round(took * 1000, 2)!r},"agent":{_string(agent.decode("latin-1"))}}}\n'
    )


def chunks(data: bytes, size: int = CHUNK) -> list[bytes]:
    """`data` (whole lines) cut at line ends into pieces of at most `size` bytes; a longer line
    is a piece of its own."""
    pieces, start = [], 0
    while start < len(data):
        end = data.rfind(b"\n", start, start + size) + 1 if len(data) - start > size else len(data)
        if end <= start:  # one line longer than `size`
            end = data.index(b"\n", start) + 1
        pieces.append(data[start:end])
        start = end
    return pieces


class Writer:
    """The deque requests append to and the thread that empties it into `stream`."""

    def __init__(self, kind: str, stream: IO[str]) -> None:
        self.line: Callable[[Entry, Clock], str] = json_line if kind == "json" else text_line
        self.stream = stream
        self.encoding = getattr(stream, "encoding", None) or "utf-8"
        self.pending: deque[Entry] = deque()  # append and popleft are atomic: no lock needed
        self.wake = threading.Event()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="feeds-access-log", daemon=True)
        self.thread.start()

    def note(self, entry: Entry) -> None:
        self.pending.append(entry)
        if len(self.pending) >= BATCH and not self.wake.is_set():
            self.wake.set()

    def stop(self) -> None:
        """Write what is left and end the thread."""
        self.stopping = True
        self.wake.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        clock = Clock()
        while not self.stopping:
            self.wake.wait(EVERY)
            self.wake.clear()
            self._guarded(clock)
        self._guarded(clock)

    def _guarded(self, clock: Clock) -> None:
        try:
            self._write(clock)
        except Exception:  # a bug in formatting loses its batch, not the log: the thread goes on
            log.exception("access log: a batch of lines could not be written")

    def _write(self, clock: Clock) -> None:
        pending, line = self.pending, self.line
        # What is pending now, not what arrives meanwhile: a batch is bounded even under a flood.
        lines = [line(pending.popleft(), clock) for _ in range(len(pending))]
        if not lines:
            return
        data = "".join(lines).encode(self.encoding, "backslashreplace")
        out = getattr(self.stream, "buffer", None)  # the bytes beneath a text stream, as stderr has
        try:
            for piece in chunks(data):
                if out is not None:
                    out.write(piece)
                    out.flush()
                else:
                    self.stream.write(piece.decode(self.encoding))
                    self.stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: lines cannot be written anywhere
            pass


_writer: Writer | None = None


def start(kind: str) -> None:
    """Write access lines, formatted as `kind`, to stderr through a writer thread."""
    global _writer
    if kind == "off" or _writer is not None:
        return
    _writer = Writer(kind, sys.stderr)


def stop() -> None:
    """Write every line noted so far and stop the writer."""
    global _writer
    if _writer is not None:
        writer, _writer = _writer, None
        writer.stop()


def record(scope: Scope, headers: dict[bytes, bytes], client: str, answered: Answered, started: float) -> None:
    """Note an answered request for the access log: a tuple appended, formatted later."""
    if _writer is not None:
        _writer.note(
            (
                time.time(),
                client,
                scope["method"],
                scope["path"],
                scope.get("query_string", b""),
                answered.status,
                answered.bytes,
                answered.encoding,
                time.perf_counter() - started,
                headers.get(b"user-agent", b""),
            )
        )
