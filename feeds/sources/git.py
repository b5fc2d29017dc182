"""A git repository holding the archive tree (`news/YYYY/MM/D/*.md|json|xml`), local or remote.

The repository is fetched into a bare cache next to the database (`<db dir>/git/<source name>`; a
temporary directory for an in-memory store); each fetch brings the followed branch (`branch`, else
the remote's HEAD) into `refs/feeds/head`. The cache is a blobless partial clone: it has every
commit and tree of the branch's history but only the blobs of the versions it reads. A new cache
(or a shallow one, as older versions left) first fetches the head with its blobs (`--depth=1`),
then the history behind it without blobs (`--unshallow --filter=blob:none`; a local repository's
upload-pack is run allowing the filter); later fetches bring new commits whole. The remote is
named on the command line of the commands that may fetch, never stored in the cache's config.

Commits decide only what to read: an event's times come from its page, so a directory copy, an
HTTP site and a clone of the same pages serve the same bytes. A deleted page's time is the
committer time of the newest commit on the branch's first-parent line that changed one of its
files, the commit that removed it (a merge counts for what it brought): the same in every clone.
One `git log --name-only` streams from the head and stops once every gone page has its time: a
few commits for an update, more of the history (commits and trees, no blobs) when the cache is new.

The last ingested commit is the source's cursor in the store (saved by refresh once the batch is
stored, so a crash in between re-ingests, which is idempotent). A collect reads:

- nothing when the head is the cursor;
- the files that differ between the cursor's tree and the head's (`git diff-tree`), when the cursor
  commit is in the cache: added or modified documents are read, deleted pages are reported gone
  (unless another file of the head still holds the same page: another extension or day spelling).
  Trees are compared, not history, so a force-pushed (rewritten) branch costs no more than a commit;
- every document of the head otherwise (first run, cache lost, cursor pruned), and as deleted every
  stored page of this source the head no longer has.

Git runs as a subprocess (`git` on PATH), never prompting (`GIT_TERMINAL_PROMPT=0`, ssh in batch
mode), with a timeout, in its own process group (killed whole on timeout or cancellation). Documents
are read lazily through one `git cat-file --batch` process by blob id, on the thread that consumes
them (refresh reads batches off the event loop), so a large tree is never held in memory at once.
A lock file serialises processes sharing a cache (a server worker and `feeds ingest`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from feeds.config import SourceConfig
from feeds.errors import SourceError
from feeds.ids import page_path
from feeds.pages import is_day_listing, is_document
from feeds.sources import Collected, Document
from feeds.sources.gitcache import GitCache
from feeds.sources.gittools import (
    LOG_ARGS,
    TREE_ROOT,
    LastChanges,
    day_spellings,
    git_env,
    kill_group,
    parse_diff,
    parse_tree,
    redact,
    summary,
)
from feeds.sources.times import from_timestamp
from feeds.store import Store

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("feeds.sources.git")

BASE_REF = "refs/feeds/base"  # the stored cursor, kept reachable so gc never prunes its tree
_COMMIT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_REGULAR = ("100644", "100755")


@dataclass(frozen=True)
class Entry:
    """A file of a tree: its path and the blob to read."""

    relpath: str
    oid: str


class GitSource(GitCache):
    def __init__(self, config: SourceConfig) -> None:
        self.name = config.name
        self.config = config
        self.location = config.location
        self.display = redact(config.location)
        self.branch = config.branch
        self._lock = asyncio.Lock()
        self._tempdir: str | None = None
        self._checked_branch = False

    # ----- collect ---------------------------------------------------------------------------------

    async def collect(self, store: Store) -> Collected:
        if not self.location.strip():
            raise SourceError(self.name, "no repository given (location is empty)")
        cache = self.cache_dir(store)
        async with self._lock, self._cache_lock(cache):
            await self._prepare(cache)
            cursor = await store.cursor(self.name)
            if cursor is not None and not _COMMIT_ID.fullmatch(cursor):
                log.warning("source %s: stored cursor %r is not a commit id; reading every document", self.name, cursor)
                cursor = None
            if cursor is not None and await self._has_tree(cache, cursor):
                # Reachable from a ref, the cursor's objects outlive any gc the fetch starts.
                await self._git(cache, "update-ref", BASE_REF, cursor, what="unable to record the cursor")
            head = await self._fetch(cache)
            if cursor == head:
                return Collected(cursor=head, expected=0)
            if cursor is not None and await self._has_tree(cache, cursor):
                collected = await self._changes(cache, cursor, head)
                log.info(
                    "source %s: %s..%s: %d documents to read, %d pages gone",
                    self.name,
                    cursor[:12],
                    head[:12],
                    collected.expected,
                    len(collected.deleted),
                )
            else:
                if cursor is not None:
                    log.info(
                        "source %s: commit %s is not in %s any more; reading every document",
                        self.name,
                        cursor[:12],
                        self.display,
                    )
                collected = await self._everything(cache, head, store)
                log.info(
                    "source %s: %s: %d documents to read, %d pages gone",
                    self.name,
                    head[:12],
                    collected.expected,
                    len(collected.deleted),
                )
            return collected

    async def _changes(self, cache: Path, old: str, head: str) -> Collected:
        out = await self._git(
            cache,
            "diff-tree",
            "-r",
            "-z",
            "--no-renames",
            old,
            head,
            "--",
            TREE_ROOT,
            what=f"unable to compare commits {old[:12]} and {head[:12]}",
        )
        reads: list[Entry] = []
        gone: list[str] = []
        problems: list[str] = []
        for status, mode, oid, relpath in parse_diff(out):
            if not is_document(relpath):
                continue
            if status == "D" or (status == "T" and mode not in _REGULAR):
                gone.append(relpath)
            elif mode in _REGULAR:
                reads.append(Entry(relpath, oid))
            else:
                problems.append(f"{self.display}@{head[:12]}:{relpath}: not a regular file (mode {mode}), skipped")
        deleted = await self._gone_pages(cache, head, gone, reads)
        return Collected(
            documents=self._read(cache, head, reads),
            deleted=deleted,
            deleted_at=await self._times(cache, head, deleted),
            problems=problems,
            cursor=head,
            expected=len(reads),
        )

    async def _gone_pages(self, cache: Path, head: str, gone: list[str], reads: list[Entry]) -> list[str]:
        """Canonical paths of the deleted files' pages that no file of the head still holds."""
        candidates = {p for rel in gone if not is_day_listing(rel) and (p := page_path(rel))}
        candidates -= {page_path(e.relpath) for e in reads}
        if not candidates:
            return []
        folders = sorted({d for p in candidates for d in day_spellings(p)})
        present: set[str | None] = set()
        for i in range(0, len(folders), 200):
            out = await self._git(
                cache,
                "ls-tree",
                "-r",
                "-z",
                "--name-only",
                head,
                "--",
                *folders[i : i + 200],
                what=f"unable to list commit {head[:12]}",
            )
            present |= {page_path(rel) for rel in out.decode("utf-8", "replace").split("\0") if is_document(rel)}
        return sorted(candidates - present)

    async def _everything(self, cache: Path, head: str, store: Store) -> Collected:
        out = await self._git(
            cache, "ls-tree", "-r", "-z", head, "--", TREE_ROOT, what=f"unable to list commit {head[:12]}"
        )
        reads: list[Entry] = []
        problems: list[str] = []
        for mode, oid, relpath in parse_tree(out):
            if not is_document(relpath):
                continue
            if mode in _REGULAR:
                reads.append(Entry(relpath, oid))
            else:
                problems.append(f"{self.display}@{head[:12]}:{relpath}: not a regular file (mode {mode}), skipped")
        present = {p for e in reads if not is_day_listing(e.relpath) and (p := page_path(e.relpath))}
        deleted = sorted(await store.missing_pages(self.name, present))
        return Collected(
            documents=self._read(cache, head, reads),
            deleted=deleted,
            deleted_at=await self._times(cache, head, deleted),
            problems=problems,
            cursor=head,
            expected=len(reads),
        )

    async def _times(self, cache: Path, head: str, pages: Sequence[str]) -> dict[str, dt.datetime]:
        """Gone page path -> committer time of the newest commit on the head's line that changed
        one of its files: the commit that removed it.

        One `git log` from the head, read as it streams and stopped once every page has its time:
        a few commits for the pages an update removes, more of the history after a lost cursor.
        """
        changes = LastChanges(pages, key=page_path)
        if changes.done:
            return {}
        args = ["git", f"--git-dir={cache}", *LOG_ARGS, head, "--", TREE_ROOT]
        try:
            proc = await asyncio.create_subprocess_exec(
                *args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=git_env(),
                start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise SourceError(self.name, f"unable to run git: {exc}") from exc
        assert proc.stdout is not None and proc.stderr is not None
        errors = asyncio.ensure_future(proc.stderr.read())
        try:
            async with asyncio.timeout(self.fetch_timeout):
                while not changes.done and (chunk := await proc.stdout.read(1 << 16)):
                    changes.feed(chunk)
                if not changes.done:
                    await proc.wait()
        except TimeoutError:
            reason = f"reading the history of {head[:12]} timed out after {self.fetch_timeout:g} s"
            raise SourceError(self.name, reason) from None
        finally:
            if proc.returncode is None:  # stopped early, timed out or cancelled
                kill_group(proc.pid)
                await asyncio.shield(proc.wait())
            err = await errors
        if not changes.done:
            if proc.returncode != 0:
                where = f"repository {self.display}, cache {cache}"
                raise SourceError(self.name, f"unable to read the history of {head[:12]} ({where}): {summary(err)}")
            log.info(
                "source %s: %d gone pages are named by no commit of %s; the archive's newest time dates them",
                *(self.name, len(changes.remaining), head[:12]),
            )
        when = {path: from_timestamp(seconds) for path, seconds in changes.times.items()}
        return {path: at for path, at in when.items() if at is not None}

    def _read(self, cache: Path, head: str, entries: Sequence[Entry]) -> Iterator[Document]:
        """The entries' contents, through one `git cat-file --batch`, started on the first read.

        Plain blocking I/O: the consumer (refresh) runs it on a worker thread.
        """
        if not entries:
            return
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(
                # With the remote named, a blob the cache lacks is fetched (partial clone).
                ["git", f"--git-dir={cache}", *self._remote(), "cat-file", "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=git_env(),
            )
            assert proc.stdin is not None and proc.stdout is not None
            try:
                for entry in entries:
                    try:
                        proc.stdin.write(entry.oid.encode("ascii") + b"\n")
                        proc.stdin.flush()
                    except BrokenPipeError:
                        pass  # reported below: no header
                    header = proc.stdout.readline().split()
                    if len(header) != 3 or header[1] != b"blob":
                        errors.seek(0)
                        reason = summary(errors.read()) if not header else header[-1].decode("ascii", "replace")
                        raise SourceError(
                            self.name, f"unable to read {entry.relpath} ({entry.oid}) of commit {head[:12]}: {reason}"
                        )
                    size = int(header[2])
                    data = proc.stdout.read(size)
                    proc.stdout.read(1)  # the newline after each object
                    if len(data) != size:
                        errors.seek(0)
                        raise SourceError(
                            self.name,
                            f"unable to read {entry.relpath} of commit {head[:12]}: git stopped after "
                            f"{len(data)} of {size} bytes: {summary(errors.read())}",
                        )
                    origin = f"{self.display}@{head[:12]}:{entry.relpath}"
                    yield Document(entry.relpath, data, origin)
            finally:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()

    async def aclose(self) -> None:
        if self._tempdir is not None:
            await asyncio.to_thread(shutil.rmtree, self._tempdir, True)
            self._tempdir = None
