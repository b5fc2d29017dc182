"""Stateless helpers of the git source: the environment git runs in, locations, and readers of
git's `-z` output (trees, tree comparisons, the history pass that finds when each file last
changed)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

TREE_ROOT = "news"
# `git` arguments for `LastChanges`: the followed branch's own line of commits (a merge counts as
# the change it brought to it), every path a commit changed (the root commit's too), each commit led
# by \x01 and its committer time, whatever the user's log settings. No rename detection: it would
# need the blobs the cache does not keep.
LOG_ARGS = (
    *("-c", "log.follow=false", "log", "--root", "--no-show-signature", "--first-parent", "--no-renames"),
    *("-z", "--name-only", "--format=%x01%ct"),
)

# Variables that would point git at another repository than the cache (set, e.g., in a git hook).
_REPO_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_QUARANTINE_PATH",
)


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REPO_VARIABLES}
    env["GIT_TERMINAL_PROMPT"] = "0"  # never wait for a password on a terminal
    env["GCM_INTERACTIVE"] = "never"  # nor in Git Credential Manager
    if "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"  # nor for an ssh passphrase or host key
    return env


def redact(location: str) -> str:
    """The location without a password it may carry (`https://user:token@host/...`)."""
    if "://" not in location:
        return location
    parts = urlsplit(location)
    if parts.password is None:
        return location
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def is_local(location: str) -> bool:
    """A path or a file:// URL (git's own rule: no `host:` before the first slash)."""
    if location.startswith("file://"):
        return True
    if "://" in location:
        return False
    colon, slash = location.find(":"), location.find("/")
    return colon < 0 or 0 <= slash < colon


def safe_name(name: str) -> str:
    """A directory name for a source; distinct names never share one."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")
    if safe != name or not safe:
        safe = f"{safe or 'source'}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"
    return safe


def summary(stderr: bytes) -> str:
    """The useful lines of git's stderr, on one line."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    wanted = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines[-3:]
    text = "; ".join(wanted) or "no message"
    return text if len(text) <= 500 else text[:497] + "..."


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        if hasattr(os, "killpg"):
            os.killpg(pid, signal.SIGKILL)  # git and whatever it started (ssh, remote helpers)
        else:  # pragma: no cover
            os.kill(pid, signal.SIGTERM)


def parse_tree(out: bytes) -> list[tuple[str, str, str]]:
    """`git ls-tree -r -z` output -> (mode, oid, relpath) of every blob."""
    found = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, oid = meta.decode("ascii").split(" ")
        if kind == "blob":
            found.append((mode, oid, path.decode("utf-8", "replace")))
    return found


def parse_diff(out: bytes) -> list[tuple[str, str, str, str]]:
    """`git diff-tree -r -z` output -> (status, new mode, new oid, relpath) of every change."""
    fields = out.split(b"\0")
    changes = []
    i = 0
    while i + 1 < len(fields):
        meta = fields[i].decode("ascii")
        if not meta.startswith(":"):
            i += 1
            continue
        _, new_mode, _, new_oid, status = meta[1:].split(" ")
        changes.append((status[:1], new_mode, new_oid, fields[i + 1].decode("utf-8", "replace")))
        i += 2
    return changes


def day_spellings(path: str) -> list[str]:
    """Every folder a canonical page path's file may live in (`news/2018/01/1`, `news/2018/1/01`...)."""
    _, _, year, month, day, _ = path.split("/", 5)
    return sorted({f"{TREE_ROOT}/{year}/{m}/{d}" for m in (month, str(int(month))) for d in (day, str(int(day)))})


class LastChanges:
    """Reads `git log LOG_ARGS <head>` as it streams, newest commit first: a wanted path's time is
    the committer time of the first commit that names it, the last one that changed it. `done`
    once every wanted path has its time, so the reader can stop the walk there."""

    def __init__(self, wanted: Iterable[str], key: Callable[[str], str | None] | None = None) -> None:
        """`key`: what a changed path counts as (e.g. its canonical page path); the path itself by default."""
        self.remaining = set(wanted)
        self._key = key
        self.times: dict[str, int] = {}
        self._when: int | None = None
        self._tail = b""

    @property
    def done(self) -> bool:
        return not self.remaining

    def feed(self, chunk: bytes) -> None:
        records = (self._tail + chunk).split(b"\0")
        self._tail = records.pop()  # the start of a record the next chunk ends
        for record in records:
            if record.startswith(b"\x01"):
                self._when = int(record[1:])
            elif record and self._when is not None:
                # The first path of a commit follows a newline after its header.
                path: str | None = record.removeprefix(b"\n").decode("utf-8", "replace")
                if self._key is not None and path is not None:
                    path = self._key(path)
                if path is not None and path in self.remaining:
                    self.remaining.discard(path)
                    self.times[path] = self._when
