"""What changed under a folder, from the kernel through watchfiles (Rust notify, which uvicorn's
reloader uses too): one watcher for the project, on a thread of its own.

A directory source's refresh would otherwise stat every file (6-9 s for the 461,260 files of a
400,000-event archive): watching, it reads the files reported touched, and a change starts a
refresh about a second later (`TreeWatch`). The rendition cache is woken by writes to the store's
log (`Watch` on the store's folder). Whenever the account may be incomplete (a watched folder
moved or deleted, the watcher failed) `TreeWatch.changes()` says so by returning None, and the
caller scans the whole tree again.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path

from watchfiles._rust_notify import RustNotify  # documented: watchfiles' "Rust backend" API

from feeds.pages import is_document

log = logging.getLogger("feeds.sources.watch")


ADDED, MODIFIED, DELETED = 1, 2, 3  # watchfiles.Change

# A change is reported once nothing more changed for STEP_MS, or DEBOUNCE_MS after the first
# change of a burst at the latest: a copy of many files is a few refreshes, not one per file.
DEBOUNCE_MS = 1000
STEP_MS = 20
# How long `flush` waits for the watcher to go round twice before the account is taken as lost.
FLUSH_SECONDS = 5.0


class Watch:
    """Calls `report(changes)` on its own thread with each debounced set of (change, path) under
    `folder`, until closed. The watches are in place when the constructor returns."""

    def __init__(
        self,
        folder: Path,
        report: Callable[[set[tuple[int, str]]], None],
        recursive: bool = True,
        debounce_ms: int = DEBOUNCE_MS,
        step_ms: int = STEP_MS,
    ) -> None:
        try:
            notify = RustNotify([str(folder)], False, False, 0, recursive, False)
        except (OSError, RuntimeError) as exc:  # no such folder, the watch limit reached
            raise OSError(f"cannot watch {folder}: {exc}") from exc
        self._stop = threading.Event()
        self._rounds = _Rounds()
        # The thread holds none of this object: one dropped without close() is stopped by __del__.
        self._thread = threading.Thread(
            target=_follow,
            args=(notify, report, self._stop, debounce_ms, step_ms, self._rounds),
            daemon=True,
            name="feeds-watch",
        )
        self._thread.start()

    def flush(self) -> bool:
        """Wait until everything changed before the call has been reported: two of the watcher's
        rounds begin after it (a round ends with a report, or one quiet step). False if the
        watcher did not go round in time (it died: its owner scans instead)."""
        return self._rounds.wait_past(2, FLUSH_SECONDS)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        self._stop.set()  # the thread returns within step_ms and closes the watcher

    def __del__(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()


class _Rounds:
    """How many times the watcher went round, for `Watch.flush` to wait on."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def tick(self) -> None:
        with self._changed:
            self._count += 1
            self._changed.notify_all()

    def wait_past(self, rounds: int, timeout: float) -> bool:
        with self._changed:
            target = self._count + rounds
            return self._changed.wait_for(lambda: self._count >= target, timeout)


def _follow(
    notify: RustNotify,
    report: Callable[[set[tuple[int, str]]], None],
    stop: threading.Event,
    debounce_ms: int,
    step_ms: int,
    rounds: _Rounds,
) -> None:
    try:
        while not stop.is_set():
            # A quiet step ends a round ("timeout"), so a flush never waits for a change to come.
            changes = notify.watch(debounce_ms, step_ms, step_ms, stop)
            if isinstance(changes, set):
                report(changes)
            rounds.tick()
    except Exception as exc:  # the watcher failed (an error from the kernel): its owner finds it dead
        log.warning("watch: %s", exc)
        report(set())
    finally:
        notify.close()


class TreeWatch:
    """Watches every folder of `root/news`; relpaths are relative to `root`. `on_change` is called
    (on the watcher's thread) after each debounced burst of changes to documents."""

    def __init__(self, root: Path, on_change: Callable[[], None] | None = None) -> None:
        self.root = root
        self._on_change = on_change
        self._lock = threading.Lock()
        self._touched: set[str] = set()
        self._complete = True
        # Weakly: a source dropped without aclose() (a failed refresh, a test) stops its watcher.
        take = weakref.WeakMethod(self._take)

        def report(changes: set[tuple[int, str]]) -> None:
            if (method := take()) is not None:
                method(changes)

        self._watch = Watch(root / "news", report)

    def _take(self, changes: set[tuple[int, str]]) -> None:
        touched: set[str] = set()
        complete = bool(changes)  # an empty report is the watcher saying it failed
        for change, path in changes:
            rel = os.path.relpath(path, self.root).replace(os.sep, "/")
            if change == DELETED:
                if is_document(rel):
                    touched.add(rel)
                elif "." not in rel.rsplit("/", 1)[-1]:  # the archive's folders are numbers
                    complete = False  # a folder went (or moved away): what was below it is unknown
            elif os.path.isdir(path):
                if change == ADDED:
                    # Files may have landed in it before its watch existed: take them all.
                    touched.update(self._files_under(rel))
            elif is_document(rel):
                touched.add(rel)
        with self._lock:
            self._touched |= touched
            self._complete = self._complete and complete
        if self._on_change is not None and (touched or not complete):
            self._on_change()

    def _files_under(self, relpath: str) -> list[str]:
        files = []
        for dirpath, _, filenames in os.walk(self.root / relpath):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            files += [f"{rel}/{name}" for name in filenames if is_document(f"{rel}/{name}")]
        return files

    def changes(self, wait: bool = True) -> set[str] | None:
        """Relpaths of documents created, written, touched, moved or deleted since the last call,
        up to the call itself (it waits two rounds of the watcher: 20-60 ms); None when that
        cannot be known (then scan everything). Without `wait`, up to the watcher's last report:
        for a caller that refreshes on every report (`on_change`), which starts it again."""
        flushed = self._watch.flush() if wait else True  # what changed before this call is in the account
        with self._lock:
            touched, complete = self._touched, self._complete
            self._touched = set()
        if not complete or not flushed or not self._watch.alive:
            return None
        return touched

    def close(self) -> None:
        self._watch.close()
