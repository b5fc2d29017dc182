"""Pages and events to and from the JSON kept in the store. Pure."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from feeds.model import Change, Page, Related, SourceLink


def page_to_json(page: Page) -> str:
    doc: dict[str, Any] = {
        "path": page.path,
        "date": page.date.isoformat(),
        "heading": page.heading,
        "headline": page.headline,
        "summary": page.summary,
        "sources": [[s.name, s.url] for s in page.sources],
        "image": page.image,
        # A fourth element marks contexts that are the parts of a comma-separated list.
        "related": [[r.headline, r.url, list(r.contexts)] + ([1] if r.ambiguous else []) for r in page.related],
        "changes": [
            [c.headline, c.url, c.kind, c.timestamp.isoformat() if c.timestamp else None] for c in page.changes
        ],
    }
    if page.listing:  # only when there is one: pages stored before keep their bytes
        r = page.listing
        doc["listing"] = [r.headline, r.url, list(r.contexts)] + ([1] if r.ambiguous else [])
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def page_from_json(data: str) -> Page:
    doc = json.loads(data)
    return Page(
        path=doc["path"],
        date=dt.date.fromisoformat(doc["date"]),
        heading=doc["heading"],
        headline=doc["headline"],
        summary=doc["summary"],
        sources=tuple(SourceLink(n, u) for n, u in doc["sources"]),
        image=doc["image"],
        related=tuple(Related(r[0], r[1], tuple(r[2]), len(r) > 3) for r in doc["related"]),
        changes=tuple(Change(h, u, k, dt.datetime.fromisoformat(ts) if ts else None) for h, u, k, ts in doc["changes"]),
        listing=Related(r[0], r[1], tuple(r[2]), len(r) > 3) if (r := doc.get("listing")) else None,
    )
