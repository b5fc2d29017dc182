"""What a reader may raise: only ParseError. Source bytes are untrusted, and a reader that lets
anything else escape (RecursionError from deep nesting, OverflowError from a far-off date, a bug
met by an odd page) would stop a whole batch instead of rejecting one document."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import TypeVar

from feeds.errors import ParseError

D = TypeVar("D")
R = TypeVar("R")


@contextlib.contextmanager
def reading(origin: str) -> Iterator[None]:
    """Any failure inside is a ParseError naming `origin` and why."""
    try:
        yield
    except ParseError:
        raise
    except RecursionError:
        raise ParseError(origin, "nested too deeply to read") from None
    except MemoryError:
        raise ParseError(origin, "too large to read in memory") from None
    except Exception as exc:
        raise ParseError(origin, f"unreadable ({type(exc).__name__}: {_brief(exc)})") from exc


def guarded(reader: Callable[[D, str, str], R]) -> Callable[[D, str, str], R]:
    """A reader `(data, path, origin) -> R` that raises only ParseError."""

    @functools.wraps(reader)
    def read(data: D, path: str, origin: str) -> R:
        with reading(origin):
            return reader(data, path, origin)

    return read


def _brief(exc: Exception, limit: int = 200) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "..."
