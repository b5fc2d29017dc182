"""A local tree laid out like the archive: `news/YYYY/MM/D/*.md|json|xml` (padded days too)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from feeds.config import SourceConfig
from feeds.errors import SourceError
from feeds.ids import page_path
from feeds.pages import is_day_listing, is_document
from feeds.sources import Collected, Document
from feeds.store import Store

log = logging.getLogger("feeds.sources.directory")


def scan(root: Path) -> dict[str, tuple[int, int]]:
    """relpath -> (mtime_ns, size) of every document under root/news."""
    found: dict[str, tuple[int, int]] = {}
    news = root / "news"
    def fail(error: OSError) -> None:
        # A directory that cannot be read must fail the source: skipping it would look like its
        # pages were deleted.
        raise error

    for dirpath, dirnames, filenames in os.walk(news, onerror=fail):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        for filename in sorted(filenames):
            relpath = f"{rel_dir}/{filename}"
            if is_document(relpath):
                st = os.stat(os.path.join(dirpath, filename))
                found[relpath] = (st.st_mtime_ns, st.st_size)
    return found


class DirectorySource:
    def __init__(self, config: SourceConfig) -> None:
        self.name = config.name
        self.root = Path(config.location)
        # Files unchanged since the last scan (same mtime and size) are not read again.
        self._seen: dict[str, tuple[int, int]] = {}
        self._pending: dict[str, tuple[int, int]] = {}

    async def collect(self, store: Store) -> Collected:
        if not (self.root / "news").is_dir():
            raise SourceError(self.name, f"{self.root} has no news/ directory")
        try:
            stats = await asyncio.to_thread(scan, self.root)
        except OSError as exc:
            raise SourceError(self.name, f"{exc.filename or self.root}: {exc.strerror}") from exc
        changed = [rel for rel, st in stats.items() if self._seen.get(rel) != st]
        # Taken as seen only once the batch is stored (`commit`): a failed store re-reads them.
        self._pending = dict(stats)
        collected = Collected(documents=self._read(changed), expected=len(changed))
        present = {page_path(rel) for rel in stats if not is_day_listing(rel)}
        collected.deleted = await store.missing_pages(self.name, {p for p in present if p})
        return collected

    def commit(self) -> None:
        self._seen = self._pending

    def _read(self, relpaths: list[str]) -> Iterator[Document]:
        for relpath in relpaths:
            path = self.root / relpath
            try:
                data = path.read_bytes()
            except OSError as exc:
                # Gone or unreadable since the scan: read it again next time.
                self._pending.pop(relpath, None)
                log.warning("source %s: %s: unreadable: %s", self.name, path, exc.strerror)
                continue
            yield Document(relpath, data, str(path))

    def forget(self, relpaths: list[str]) -> None:
        """Read these again next time (their parse failed: the fix may keep mtime and size)."""
        for rel in relpaths:
            self._seen.pop(rel, None)

    async def aclose(self) -> None:
        return None
