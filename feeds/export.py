"""`feeds export DIR`: the whole site as files nginx serves with the same URLs, bytes, ETags and
Last-Modified as `feeds serve`: every feed in every format, every page (topics, days, events and
their `.md`/`.json`/`.xml` twins), `/topics`, OPML and the stylesheet, each with its `.gz` and `.br`
twins, and a generated nginx configuration (feeds/export-nginx.conf, feeds/export_config.py).

The documents are asked of the app itself, in process, with each Accept-Encoding: what is exported
is what the server answers, made by the same code (a document made on request is made by asking).
Which documents: feeds/export_docs.py, from what the store holds, a part at a time, a few asked at
once; each file is written as it comes and noted in the manifest (feeds/export_manifest.py), so
memory stays bounded whatever the archive's size.

Incremental: the manifest records the store's counters (renditions written and deleted, its last
change) and the settings digest the export reflects. Next time only the documents a change since
then may have touched are asked, each with its files' ETags as If-None-Match (a 304 costs no
write); those that went are removed; with nothing changed nothing is asked. Without a record
(a first export, one interrupted, another store, other settings), every document is asked, with
the ETags the manifest holds, and files of documents that went are removed.

What depends on a query or a POST (search, combined feeds, `/changes`, the WebSub hub, a chosen
OPML list, filtered or paged `/topics`) is not a file: the configuration sends it to `--origin`
when one is given, and answers 404 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from starlette.types import ASGIApp, Message

from feeds import fingerprint
from feeds.config import Settings
from feeds.errors import FeedsError
from feeds.export_config import write_config
from feeds.export_docs import Doc, changed_docs, every_doc
from feeds.export_manifest import FORMAT, File, Manifest, ManifestError
from feeds.store import Store

ENCODINGS = {"identity": "", "gzip": ".gz", "br": ".br"}
PART = 200  # documents enumerated and noted in the manifest at once
AT_ONCE = 8  # documents asked of the app at once (its store reads overlap the others' rendering)
GONE = (301, 404, 410)  # a document no longer there (moved, never was, removed at its source)
EXPORT_CACHE_BYTES = 16 << 20  # the app's rendition cache: each document is asked once or thrice


class ExportError(FeedsError):
    pass


@dataclass
class Counts:
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    asked: int = 0  # requests made of the app
    walked: bool = False  # every document asked (no usable record), not only changed ones

    def line(self) -> str:
        return f"{self.written} files written, {self.unchanged} unchanged, {self.removed} removed"


def file_of(url: str) -> str:
    """Where a URL's bytes live under `site/`: `/` is index.html, a URL without an extension is
    its `.html` (a topic page `/topics/x` beside its older pages in `/topics/x/pages/`)."""
    if url.endswith("/"):
        return url + "index.html"
    if url == "/topics":
        return "/topics.html"
    if url == "/opml":
        return "/opml.opml"
    return url if "." in url.rpartition("/")[2] else url + ".html"


@contextlib.asynccontextmanager
async def _app(settings: Settings, store: Store) -> AsyncIterator[ASGIApp]:
    from feeds.app import create_app

    quiet = dataclasses.replace(
        settings, rate_limit=0.0, subscriber_stats=False, access_log="off", cache_bytes=EXPORT_CACHE_BYTES
    )
    app = create_app(quiet, store=store, scheduler=False, push=False)  # an export pushes nothing
    async with app.router.lifespan_context(app):
        yield app


async def _call(app: ASGIApp, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """GET `url` of the app in process, as a client on 127.0.0.1 would (httpx's ASGI transport
    did the same with a request and a response object per call: most of an export's time)."""
    started: dict[str, Any] = {}
    body: list[bytes] = []
    done = asyncio.Event()
    asked = False

    async def receive() -> Message:
        nonlocal asked
        if asked:
            await done.wait()
            return {"type": "http.disconnect"}
        asked = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(url),
        "raw_path": url.encode("ascii"),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"export.invalid")] + [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 0),
        "server": ("export.invalid", 80),
    }
    await app(scope, receive, send)
    got = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in started.get("headers", [])}
    return int(started["status"]), got, b"".join(body)


async def _state(store: Store, settings: Settings) -> dict[str, str]:
    """What the store is now, as the record notes it. `store`: which database file (another one
    put in its place is another store)."""
    renditions, deleted = await store.rendition_versions()
    stat = os.stat(store.path)
    return {
        "format": FORMAT,
        "store": f"{stat.st_dev}:{stat.st_ino}",
        "renditions": str(renditions),
        "renditions_deleted": str(deleted),
        "changes": str(await store.last_change()),
        "settings": fingerprint.settings_digest(settings),
    }


def _follows(record: dict[str, str], now: dict[str, str]) -> bool:
    """Whether an export recorded as `record` can be brought to `now` by following the changes:
    it finished, from this store and these settings, whose counters only grew since."""
    if record.get("complete") != "1" or any(record.get(k) != now[k] for k in ("format", "store", "settings")):
        return False
    try:
        return all(int(record[k]) <= int(now[k]) for k in ("renditions", "renditions_deleted", "changes"))
    except (KeyError, ValueError):
        return False


class _Run:
    """One export run: asks documents, writes their files, notes them in the manifest."""

    def __init__(self, app: ASGIApp, store: Store, settings: Settings, site: Path, manifest: Manifest):
        self.app, self.store, self.settings, self.site, self.manifest = app, store, settings, site, manifest
        self.run = int(manifest.record().get("run", "0")) + 1
        self.counts = Counts()
        self.limit = asyncio.Semaphore(AT_ONCE)
        self.dirs: set[Path] = set()

    async def part(self, docs: list[Doc], extra: bool) -> list[str]:
        """Ask these documents (`extra`: also at the URLs the manifest holds for them), write and
        note their files; the documents that are gone."""
        names = [file_of(url) + suffix for _, urls in docs for url in urls for suffix in ENCODINGS.values()]
        known = self.manifest.of_names(names)
        if extra:
            known.update(self.manifest.of_docs(doc for doc, _ in docs))
        by_doc: dict[str, set[str]] = {}
        for file in known.values():
            by_doc.setdefault(file.doc, set()).add(file.url)
        results = await asyncio.gather(
            *(self._doc(doc, sorted({*urls, *by_doc.get(doc, ())}), known) for doc, urls in docs)
        )
        kept = [f for files, _, _ in results for f in files]
        gone_names = [n for _, names, _ in results for n in names]
        with self.manifest.batch():
            self.manifest.put(kept, self.run)
            self.manifest.forget(gone_names)
        return [doc for (doc, _), (_, _, gone) in zip(docs, results, strict=True) if gone]

    async def _doc(self, doc: str, urls: list[str], known: dict[str, File]) -> tuple[list[File], list[str], bool]:
        """(files kept or written, names removed, whether the document is gone) of one document."""
        kept: list[File] = []
        removed: list[str] = []
        async with self.limit:
            for url in urls:
                for encoding, suffix in ENCODINGS.items():
                    name = file_of(url) + suffix
                    file = await self._ask(doc, url, name, encoding, known.get(name))
                    if file is not None:
                        kept.append(file)
                    elif name in known:
                        with contextlib.suppress(FileNotFoundError):
                            (self.site / name.lstrip("/")).unlink()
                        removed.append(name)
                        self.counts.removed += 1
        return kept, removed, not kept

    async def _ask(self, doc: str, url: str, name: str, encoding: str, old: File | None) -> File | None:
        """The file of one URL in one coding, written if it changed; None if the URL is gone."""
        headers = {"accept-encoding": encoding, "accept": "text/html" if url == "/topics" else "*/*"}
        if old and old.etag and (self.site / name.lstrip("/")).exists():
            headers["if-none-match"] = old.etag
        status, got, body = await self._get(url, headers)  # made by the app if it has no current one
        control = got.get("cache-control", "")
        if status == 304 and old:  # same bytes; a settled day's max-age may be new
            return dataclasses.replace(old, doc=doc, control=control)
        if status in GONE:
            return None
        if status != 200:
            raise ExportError(f"{url} ({encoding}): the server answered {status}: {body[:200]!r}")
        file = File(name, url, doc, got["etag"], got["last-modified"], control)
        stamp = email.utils.parsedate_to_datetime(file.last_modified).timestamp()
        self._write(name, body, stamp)
        self.counts.written += 1
        return file

    async def _get(self, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.counts.asked += 1
        return await _call(self.app, url, headers)

    def _write(self, name: str, body: bytes, mtime: float) -> None:
        if ".." in Path(name).parts:  # names come from stored paths: never outside the export
            raise ExportError(f"{name}: not a path inside the export")
        path = self.site / name.lstrip("/")
        if path.parent not in self.dirs:  # a few per day and topic, not per file
            path.parent.mkdir(parents=True, exist_ok=True)
            self.dirs.add(path.parent)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(body)
        os.utime(temporary, (mtime, mtime))
        os.replace(temporary, path)

    async def walk(self) -> None:
        """Every document; then what the manifest holds that no document had goes."""
        self.counts.walked = True
        async for docs in every_doc(self.store, self.settings, PART):
            await self.part(docs, extra=False)
        for names in self.manifest.unseen(self.run):
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    (self.site / name.lstrip("/")).unlink()
            with self.manifest.batch():
                self.manifest.forget(names)
            self.counts.removed += len(names)

    async def follow(self, docs: dict[str, tuple[str, ...]]) -> None:
        """The documents a change touched, asked also at the URLs they were exported at; a topic
        gone takes its older pages along."""
        items = sorted(docs.items())
        while items:
            gone = await self.part(items[:PART], extra=True)
            items = items[PART:]
            items += [(d, ()) for g in gone if g.startswith("topics/") for d in self.manifest.docs_under(g + "/pages/")]


def _open(out: Path) -> Manifest:
    out.mkdir(parents=True, exist_ok=True)
    try:
        return Manifest(out)
    except ManifestError as exc:
        raise ExportError(str(exc)) from None


async def export(settings: Settings, store: Store, out: Path, origin: str = "") -> Counts:
    """Export the store's site into `out` (site/, nginx.conf, maps, manifest.sqlite)."""
    manifest = _open(out)
    try:
        return await _export(settings, store, out, origin, manifest)
    finally:
        manifest.close()


async def _export(settings: Settings, store: Store, out: Path, origin: str, manifest: Manifest) -> Counts:
    record, now = manifest.record(), await _state(store, settings)
    content = await store.content_version()
    follows = _follows(record, now)
    if follows and all(record[k] == now[k] for k in ("renditions", "renditions_deleted", "changes")):
        if record.get("origin") != origin:
            await write_config(settings, store, out, manifest, origin)
            manifest.set_record({"origin": origin})
        return Counts(unchanged=manifest.count())
    docs = (
        await changed_docs(store, settings, manifest, int(record["renditions"]), int(record["changes"]))
        if follows
        else None
    )
    site = out / "site"
    site.mkdir(exist_ok=True)
    manifest.set_record({"complete": "0"})  # until this run ends, the next one walks everything
    async with _app(settings, store) as app:
        run = _Run(app, store, settings, site, manifest)
        if docs is None:
            await run.walk()
        else:
            await run.follow(docs)
    await write_config(settings, store, out, manifest, origin)
    if await store.content_version() == content:
        # Nothing changed while it ran: what was written meanwhile is what this run made the app
        # render (documents made on request), and is exported as made.
        now = await _state(store, settings)
    manifest.set_record({**now, "origin": origin, "run": str(run.run), "complete": "1"})
    counts = run.counts
    counts.unchanged = manifest.count() - counts.written
    return counts
