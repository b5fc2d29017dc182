"""The access log: one line per request, as text or as a JSON object (`access_log`), written by a
thread behind a queue so a request never waits for stderr. Off, nothing is added to a request."""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import time
from typing import Any

from starlette.types import Scope

from feeds.exchange import Answered

log = logging.getLogger("feeds.access")


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record.access, ensure_ascii=False, separators=(",", ":"))  # type: ignore[attr-defined]


def _escaped(text: str) -> str:
    """Request text as a log line may hold it: quotes, backslashes and control characters escaped
    (as nginx does), so a crafted path or User-Agent cannot forge a line or a field."""
    return "".join(f"\\x{ord(c):02x}" if c < " " or c == "\x7f" else "\\" + c if c in '"\\' else c for c in text)


class _Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        a: dict[str, Any] = record.access  # type: ignore[attr-defined]
        target = _escaped(a["path"] + (f"?{a['query']}" if a["query"] else ""))
        return (
            f'{a["time"]} {a["client"]} "{_escaped(a["method"])} {target}" {a["status"]} {a["bytes"]} '
            f'{_escaped(a["encoding"] or "-")} {a["ms"]}ms "{_escaped(a["agent"])}"'
        )


_listener: logging.handlers.QueueListener | None = None


def start(kind: str) -> None:
    """Send `feeds.access` records, formatted as `kind`, to stderr through a writer thread."""
    global _listener
    if kind == "off" or _listener is not None:
        return
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    stream = logging.StreamHandler()
    stream.setFormatter(_Json() if kind == "json" else _Text())
    _listener = logging.handlers.QueueListener(records, stream)
    _listener.start()
    log.addHandler(logging.handlers.QueueHandler(records))
    log.setLevel(logging.INFO)
    log.propagate = False


def stop() -> None:
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None
        log.handlers.clear()


def record(scope: Scope, headers: dict[bytes, bytes], client: str, answered: Answered, started: float) -> None:
    """One access log record of an answered request."""
    log.info(
        "access",
        extra={
            "access": {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "client": client,
                "method": scope["method"],
                "path": scope["path"],
                "query": scope.get("query_string", b"").decode("latin-1"),
                "status": answered.status,
                "bytes": answered.bytes,
                "encoding": answered.encoding,
                "ms": round((time.perf_counter() - started) * 1000, 2),
                "agent": headers.get(b"user-agent", b"").decode("latin-1"),
            }
        },
    )
