"""`GET /changes?since=<cursor>`: for aggregators that mirror every event. Each event's latest
change (created, updated, deleted) after the cursor, oldest first, a bounded page at a time with
the cursor to ask from next; polling from the last cursor never misses a change, and an event
changed twice between polls is listed once, at its latest change.

A page is made on its first request and kept until the store's next change (one lookup of the
newest cursor per request), served with the ETag and 304 of any document.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from feeds import ondemand
from feeds.model import Rendition
from feeds.pages.write import archive_url
from feeds.publish.document import encode
from feeds.responses import error
from feeds.store.records import from_iso

PAGE = 1000  # changes per page at most (`limit`)
CONTENT_TYPE = "application/json; charset=utf-8"


def _cursor(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise ValueError(f"{name}: a whole number from {low} to {high}, got {value[:40]!r}")
    return int(value)


async def changes(request: Request) -> Response:
    state = request.app.state
    try:
        since = _cursor(request.query_params.get("since"), "since", 0, 0, 2**62)
        limit = _cursor(request.query_params.get("limit"), "limit", PAGE, 1, PAGE)
    except ValueError as exc:
        return error(400, str(exc))
    newest = await state.store.last_change()

    async def render() -> list[Rendition]:
        rows = await state.store.changes_since(since, limit)
        base = state.settings.base_url.rstrip("/")
        items: list[dict[str, Any]] = [
            {
                "cursor": cursor,
                "id": guid,
                "kind": kind,
                "updated": updated,
                "url": base + archive_url(key, "html"),  # any version's URL leads to the current one
            }
            for cursor, key, guid, kind, updated in rows
        ]
        after = rows[-1][0] if rows else since
        doc = {
            "since": since,
            "changes": items,
            "next": after,
            "more": after < newest,
            "next_url": f"{base}/changes?since={after}" + (f"&limit={limit}" if limit != PAGE else ""),
        }
        body = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
        modified = max((from_iso(r[4]) for r in rows), default=await state.store.created())
        return [encode("changes", "json", body, modified, CONTENT_TYPE)]

    return await ondemand.kept_or_made(request, f"changes?since={since}&limit={limit}", (str(newest),), "json", render)
