"""Stable identities, derived from where a thing lives, never from its text.

A page's path is normalised (zero-padded day, no extension) so that every spelling of a link to it
(`/news/2018/01/1/x.md`, `news/2018/01/01/x.html`) names the same page. An event's guid hashes the
path of its chain's first version, so rewording never changes it.
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid

from unidecode import unidecode

# Fixed forever: changing it would change every guid ever published.
GUID_NAMESPACE = uuid.UUID("6f1c7b5e-3a0d-5b8e-9c2f-4e1d2a7b9c10")

_PAGE_PATH = re.compile(
    r"^(?:.*/)?news/(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<slug>[^/?#]+?)(?:\.(?:md|json|xml|html))?$"
)


@functools.lru_cache(maxsize=1 << 16)
def page_path(link: str) -> str | None:
    """Canonical `/news/YYYY/MM/DD/slug` for any link or file path to a page, else None."""
    match = _PAGE_PATH.match(link.strip().split("?", 1)[0].split("#", 1)[0])
    if not match:
        return None
    y, m, d, slug = match["y"], int(match["m"]), int(match["d"]), match["slug"]
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return None
    return f"/news/{y}/{m:02d}/{d:02d}/{slug}"


@functools.lru_cache(maxsize=1 << 16)
def event_guid(key: str) -> str:
    """The guid/id every format carries for the event whose first version lives at `key`."""
    return f"urn:uuid:{uuid.uuid5(GUID_NAMESPACE, key)}"


@functools.lru_cache(maxsize=1 << 16)
def topic_key(name: str) -> str:
    """What makes two topic names the same topic: case, diacritics and punctuation don't count."""
    words = re.findall(r"[0-9a-z]+", unidecode(name).casefold())
    return " ".join(words)


def topic_slug(name: str) -> str:
    """URL slug of a topic; never empty (names that transliterate to nothing get a hash)."""
    key = topic_key(name)
    if key:
        return key.replace(" ", "-")[:80].strip("-")
    return "topic-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
