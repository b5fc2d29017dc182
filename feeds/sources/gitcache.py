"""The bare git cache a git source reads from: where it lives, the lock that serialises processes
sharing it, fetching the followed branch into it (a blobless partial clone, see `git.py`), and
running git with a timeout in its own process group."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from feeds.errors import SourceError
from feeds.sources.gittools import git_env, is_local, kill_group, safe_name, summary
from feeds.store import Store

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("feeds.sources.git")

HEAD_REF = "refs/feeds/head"  # the fetched head: what a collect reads
REMOTE = "feeds"  # the cache's name for the followed repository (see `_remote`)
_COMMIT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


class GitCache:
    """The cache side of a git source (`GitSource` adds what it collects)."""

    fetch_timeout = 900.0  # seconds for a fetch (the first one downloads the whole tree)
    command_timeout = 120.0  # seconds for any other git command
    name: str
    location: str
    display: str
    branch: str | None
    _tempdir: str | None
    _checked_branch: bool

    # ----- the cache -------------------------------------------------------------------------------

    def cache_dir(self, store: Store) -> Path:
        """`<database dir>/git/<name>`; a temporary directory (removed by aclose) for `:memory:`."""
        if store.path and store.path != ":memory:":
            return Path(store.path).resolve().parent / "git" / safe_name(self.name)
        if self._tempdir is None:
            self._tempdir = tempfile.mkdtemp(prefix=f"feeds-git-{safe_name(self.name)}-")
        return Path(self._tempdir) / "repo.git"

    @contextlib.asynccontextmanager
    async def _cache_lock(self, cache: Path) -> AsyncIterator[None]:
        cache.parent.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover
            yield
            return
        lock_path = cache.parent / f"{cache.name}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.fetch_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if loop.time() > deadline:
                        raise SourceError(
                            self.name, f"{cache} stayed locked by another process for {self.fetch_timeout:g} s"
                        ) from None
                    await asyncio.sleep(0.1)
            yield
        finally:
            os.close(fd)  # releases the lock

    async def _prepare(self, cache: Path) -> None:
        if not self._checked_branch and self.branch:
            ref = self.branch if self.branch.startswith("refs/") else f"refs/heads/{self.branch}"
            code, _, _ = await self._run(["check-ref-format", ref], self.command_timeout, "check-ref-format")
            if code != 0:
                raise SourceError(self.name, f"branch {self.branch!r} is not a valid branch name")
        self._checked_branch = True
        if (cache / "HEAD").is_file() and (cache / "objects").is_dir():
            return
        log.info("source %s: new cache %s for %s", self.name, cache, self.display)
        code, _, err = await self._run(
            ["-c", "init.defaultBranch=main", "init", "--bare", "--quiet", str(cache)], self.command_timeout, "init"
        )
        if code != 0:
            raise SourceError(self.name, f"unable to create the git cache {cache}: {summary(err)}")

    async def _fetch(self, cache: Path) -> str:
        if self.branch:
            src = self.branch if self.branch.startswith("refs/") else f"refs/heads/{self.branch}"
        else:
            src = "HEAD"
        what = f"branch {self.branch!r}" if self.branch else "the default branch"
        code, _, _ = await self._run(
            [f"--git-dir={cache}", "rev-parse", "--verify", "--quiet", HEAD_REF], self.command_timeout, "rev-parse"
        )
        # A cache with the history: new commits come whole, with their blobs. A new one (or a shallow
        # one, as older versions left): the head with its blobs, then the history behind it, commits
        # and trees only (a blobless partial clone: old versions' blobs are never read).
        whole = code == 0 and not (cache / "shallow").exists()
        depth = [] if whole else ["--depth=1"]
        await self._fetch_step(cache, what, "--no-filter", *depth, "--", REMOTE, f"+{src}:{HEAD_REF}")
        if (cache / "shallow").exists():
            await self._fetch_step(cache, what, "--filter=blob:none", "--unshallow", "--", REMOTE, src)
        out = await self._git(cache, "rev-parse", "--verify", f"{HEAD_REF}^{{commit}}", what="no fetched head")
        head = out.decode("ascii").strip()
        if not _COMMIT_ID.fullmatch(head):
            raise SourceError(self.name, f"unexpected head {head!r} fetched from {self.display}")
        return head

    async def _fetch_step(self, cache: Path, what: str, *args: str) -> None:
        fetch = [f"--git-dir={cache}", *self._remote(), "-c", "gc.autoDetach=false", "fetch", "--quiet", "--no-tags"]
        code, _, err = await self._run([*fetch, *args], self.fetch_timeout, f"fetch of {what} from {self.display}")
        if code != 0:
            raise SourceError(self.name, f"unable to fetch {what} from {self.display} (into {cache}): {summary(err)}")

    def _remote(self) -> list[str]:
        """Config naming the followed repository as the cache's promisor remote, given only to the
        commands that may fetch: it is never stored (the location may carry a password), so every
        other command finds a missing object missing instead of fetching it."""
        config = [f"url={self.location}", "promisor=true", "partialclonefilter=blob:none"]
        if is_local(self.location):
            # Its upload-pack runs here, under no config that allows a filter (git's default is off).
            config.append("uploadpack=git -c uploadpack.allowFilter=true upload-pack")
        return [arg for item in config for arg in ("-c", f"remote.{REMOTE}.{item}")]

    async def _has_tree(self, cache: Path, commit: str) -> bool:
        code, _, _ = await self._run(
            [f"--git-dir={cache}", "cat-file", "-e", f"{commit}^{{tree}}"], self.command_timeout, "cat-file"
        )
        return code == 0

    # ----- running git -----------------------------------------------------------------------------

    async def _git(self, cache: Path, *args: str, what: str) -> bytes:
        code, out, err = await self._run([f"--git-dir={cache}", *args], self.command_timeout, f"git {args[0]}")
        if code != 0:
            raise SourceError(self.name, f"{what} (repository {self.display}, cache {cache}): {summary(err)}")
        return out

    async def _run(self, args: list[str], seconds: float, label: str) -> tuple[int, bytes, bytes]:
        """(exit status, stdout, stderr) of `git args`; SourceError when git is missing or too slow."""
        try:
            proc = await asyncio.create_subprocess_exec(
                "git",
                *args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=git_env(),
                start_new_session=True,
            )
        except FileNotFoundError:
            raise SourceError(self.name, "the git command is not installed (no git on PATH)") from None
        except OSError as exc:
            raise SourceError(self.name, f"unable to run git: {exc}") from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(), seconds)
        except TimeoutError:
            kill_group(proc.pid)
            await proc.communicate()
            raise SourceError(self.name, f"{label} timed out after {seconds:g} s") from None
        except BaseException:
            kill_group(proc.pid)
            with contextlib.suppress(BaseException):
                await asyncio.shield(proc.wait())
            raise
        assert proc.returncode is not None
        return proc.returncode, out, err
