"""What changed under a directory tree since the last look, from the kernel (Linux inotify).

A scheduled refresh of a directory source would otherwise stat every file: 6-9 s for the 461,260
files of a 400,000-event archive. Watching, a refresh reads the files the kernel saw touched.
Whenever the kernel's account may be incomplete (its queue overflowed, a watched folder was
moved or deleted, a watch could not be added) `changes()` says so by returning None, and the
caller scans the whole tree again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("feeds.sources.watch")

try:
    from inotify_simple import INotify
    from inotify_simple import flags as _flags
except (ImportError, OSError):  # not Linux, or no inotify: full scans every time
    INotify = None


class TreeWatch:
    """inotify watches on every folder of `root/news`; relpaths are relative to `root`."""

    def __init__(self, root: Path) -> None:
        if INotify is None:
            raise OSError("inotify is not available")
        self.root = root
        self._inotify = INotify(nonblocking=True)
        self._mask = (
            _flags.CLOSE_WRITE
            | _flags.ATTRIB
            | _flags.CREATE
            | _flags.DELETE
            | _flags.MOVED_FROM
            | _flags.MOVED_TO
            | _flags.DELETE_SELF
            | _flags.MOVE_SELF
        )
        self._folders: dict[int, str] = {}  # watch descriptor -> folder relpath
        try:
            self._watch_tree("news")
        except OSError:
            self.close()
            raise

    def _watch_tree(self, relpath: str) -> list[str]:
        """Watch a folder and every folder below it; the files found there (new to us)."""
        files = []
        for dirpath, dirnames, filenames in os.walk(self.root / relpath):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            self._folders[self._inotify.add_watch(dirpath, self._mask)] = rel
            dirnames.sort()
            files += [f"{rel}/{name}" for name in sorted(filenames)]
        return files

    def changes(self) -> set[str] | None:
        """Relpaths of files created, written, touched, moved or deleted since the last call;
        None when that cannot be known (then scan everything)."""
        touched: set[str] = set()
        try:
            for event in self._inotify.read(timeout=0):
                if event.mask & _flags.Q_OVERFLOW:
                    log.warning("watch %s: the kernel dropped events; scanning the whole tree", self.root)
                    return None
                folder = self._folders.get(event.wd)
                if folder is None or event.mask & _flags.IGNORED:
                    continue
                if event.mask & (_flags.DELETE_SELF | _flags.MOVE_SELF):
                    return None  # a watched folder went: what was below it is unknown
                relpath = f"{folder}/{event.name}"
                if event.mask & _flags.ISDIR:
                    if event.mask & (_flags.CREATE | _flags.MOVED_TO):
                        # Files may have landed in it before its watch existed: take them all.
                        touched.update(self._watch_tree(relpath))
                    elif event.mask & _flags.MOVED_FROM:
                        return None
                    continue
                touched.add(relpath)
        except OSError as exc:  # e.g. the watch limit reached while adding a new folder
            log.warning("watch %s: %s; scanning the whole tree", self.root, exc)
            return None
        return touched

    def close(self) -> None:
        self._inotify.close()

    def __del__(self) -> None:
        # A source dropped without aclose() (a failed refresh, a test) still returns its watches.
        inotify = getattr(self, "_inotify", None)
        if inotify is not None and not inotify.closed:
            inotify.close()
