"""Errors of every stage. Each names what was wrong and where.

FeedsError
 +-- ParseError     a document could not be read (carries the document's origin and the field)
 +-- ConfigError    a setting is missing or malformed (carries the key)
 +-- SourceError    a source could not be listed or fetched (carries the source)
 +-- StoreError     the database could not be opened or written
      +-- StoreFull     its disk is full (what was stored stays; retried)
      +-- StoreDamaged  its file is damaged (restore a backup or rebuild it)

ParseWarning (not raised): a document was read, but part of it was left out.
"""

from __future__ import annotations

from dataclasses import dataclass


class FeedsError(Exception):
    """Base of every error this package raises on purpose."""


class ParseError(FeedsError):
    def __init__(self, origin: str, reason: str, field: str | None = None) -> None:
        self.origin = origin
        self.reason = reason
        self.field = field
        where = f"{origin}: {field}: " if field else f"{origin}: "
        super().__init__(where + reason)

    def __reduce__(self) -> tuple[type[ParseError], tuple[str, str, str | None]]:
        # Raised in worker processes (a bulk load parses there): pickled with what made it.
        return type(self), (self.origin, self.reason, self.field)


@dataclass(frozen=True)
class ParseWarning:
    """What a reader left out of a document it could read; plain strings, so it crosses process
    boundaries with the parsed batch. Reads like a ParseError: `origin: field: reason`."""

    origin: str
    reason: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.origin}: {self.field}: {self.reason}" if self.field else f"{self.origin}: {self.reason}"


class ConfigError(FeedsError):
    def __init__(self, key: str, reason: str, origin: str | None = None) -> None:
        self.key = key
        self.reason = reason
        self.origin = origin
        prefix = f"{origin}: " if origin else ""
        super().__init__(f"{prefix}config {key}: {reason}")

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, str, str | None]]:
        return type(self), (self.key, self.reason, self.origin)


class SourceError(FeedsError):
    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"source {source}: {reason}")

    def __reduce__(self) -> tuple[type[SourceError], tuple[str, str]]:
        # Raised in the process that reads a bulk load: pickled with what made it.
        return type(self), (self.source, self.reason)


class StoreError(FeedsError):
    pass


class StoreFull(StoreError):
    pass


class StoreDamaged(StoreError):
    pass
