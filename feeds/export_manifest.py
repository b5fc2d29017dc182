"""What an export holds (feeds/export.py): `manifest.sqlite` in the export directory, one row per
file (its URL, the document it is part of, its validators) and a record of what the store was
when the export was last complete. Rows are written as files are, a batch per transaction, so
memory stays bounded whatever the archive's size and an interrupted export keeps what it wrote.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from feeds.errors import FeedsError

NAME = "manifest.sqlite"
OLD_NAME = "manifest.json"  # what exports before the manifest was a database kept
FORMAT = "1"  # the manifest's own layout: another one is read as no record (a full walk)
SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    name TEXT PRIMARY KEY,  -- the file under site/, with its .gz or .br suffix
    url TEXT NOT NULL,
    doc TEXT NOT NULL,  -- the document it is part of: a feed's name, `event:<key>`, `index`, `static`
    etag TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    control TEXT NOT NULL,  -- Cache-Control
    run INTEGER NOT NULL  -- the run that last saw it (a full walk removes what it did not see)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_doc ON files(doc);
CREATE TABLE IF NOT EXISTS record (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""


class ManifestError(FeedsError):
    pass


@dataclass(frozen=True)
class File:
    name: str
    url: str
    doc: str
    etag: str
    last_modified: str
    control: str


class Manifest:
    """The export's manifest, open. Record keys: `format`, `store` (which database file), the
    store's counters `renditions`, `renditions_deleted`, `changes`, `settings` (the settings
    digest), `origin`, `complete` ("1" once a run finished), `run`."""

    def __init__(self, out: Path) -> None:
        path = out / NAME
        try:
            self._db = sqlite3.connect(path)  # a transaction per `with self._db:`
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._db.execute("SELECT count(*) FROM record").fetchone()
        except sqlite3.DatabaseError as exc:
            raise ManifestError(f"{path}: not an export manifest ({exc}); remove it to export anew") from None
        self._adopt(out / OLD_NAME)

    def _adopt(self, old: Path) -> None:
        """A manifest.json of an older export becomes rows (with no record: the next run walks
        every document, asking with their ETags), then goes."""
        if not old.exists():
            return
        try:
            files = json.loads(old.read_text())["files"]
            rows = [
                (n, f["url"], "", f["etag"], f["last-modified"], f.get("cache-control", "")) for n, f in files.items()
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"{old}: not an export manifest ({exc}); remove it to export anew") from None
        with self.batch():
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,0)", rows)
        old.unlink()

    def close(self) -> None:
        self._db.close()

    def batch(self) -> sqlite3.Connection:
        """`with manifest.batch():` one transaction, committed at its end."""
        return self._db

    # The record.

    def record(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM record").fetchall())

    def set_record(self, values: dict[str, str]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO record VALUES (?, ?)", sorted(values.items()))

    # Files.

    def of_docs(self, docs: Iterable[str]) -> dict[str, File]:
        """name -> file of every file of these documents."""
        out: dict[str, File] = {}
        docs = list(docs)
        for i in range(0, len(docs), 500):
            part = docs[i : i + 500]
            query = f"SELECT * FROM files WHERE doc IN ({','.join('?' * len(part))})"
            out.update((r[0], File(*r[:6])) for r in self._db.execute(query, part))
        return out

    def of_names(self, names: list[str]) -> dict[str, File]:
        out: dict[str, File] = {}
        for i in range(0, len(names), 500):
            part = names[i : i + 500]
            query = f"SELECT * FROM files WHERE name IN ({','.join('?' * len(part))})"
            out.update((r[0], File(*r[:6])) for r in self._db.execute(query, part))
        return out

    def docs_under(self, prefix: str) -> list[str]:
        """Documents whose name starts with `prefix` (a topic's older pages)."""
        rows = self._db.execute(
            "SELECT DISTINCT doc FROM files WHERE doc >= ? AND doc < ?", (prefix, prefix + "\U0010ffff")
        )
        return [d for (d,) in rows]

    def put(self, files: Iterable[File], run: int) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)",
            [(f.name, f.url, f.doc, f.etag, f.last_modified, f.control, run) for f in files],
        )

    def seen(self, names: Iterable[str], run: int) -> None:
        self._db.executemany("UPDATE files SET run = ? WHERE name = ?", [(run, n) for n in names])

    def forget(self, names: Iterable[str]) -> None:
        self._db.executemany("DELETE FROM files WHERE name = ?", [(n,) for n in names])

    def unseen(self, run: int, size: int = 1000) -> Iterator[list[str]]:
        """Names of files a run did not see, in parts (each part to be forgotten before the next)."""
        while True:
            rows = self._db.execute("SELECT name FROM files WHERE run != ? LIMIT ?", (run, size)).fetchall()
            if not rows:
                return
            yield [n for (n,) in rows]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM files").fetchone()[0])

    def ordered(self) -> Iterator[tuple[str, str, str, str]]:
        """(name, url, etag, Cache-Control) of every file by name, read as they are used."""
        with closing(self._db.execute("SELECT name, url, etag, control FROM files ORDER BY name")) as rows:
            while part := rows.fetchmany(2000):
                yield from part
