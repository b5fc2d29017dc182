"""`feeds export DIR`: the whole site as files nginx serves with the same URLs, bytes, ETags and
Last-Modified as `feeds serve`: every feed in every format, every page (topics, days, events and
their `.md`/`.json`/`.xml` twins), `/topics`, OPML and the stylesheet, each with its `.gz` and `.br`
twins, and a generated nginx configuration (feeds/export-nginx.conf).

The documents are asked of the app itself, in process, with each Accept-Encoding: what is exported
is what the server answers, made by the same code. Incremental: the previous export's manifest
gives each file's ETag, asked again as If-None-Match, so a document that did not change costs a
304 and no write; files of documents that went are removed.

What depends on a query or a POST (search, combined feeds, `/changes`, the WebSub hub, a chosen
OPML list, filtered or paged `/topics`) is not a file: the configuration sends it to `--origin`
when one is given, and answers 404 otherwise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email.utils
import json
import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
from jinja2 import Environment, StrictUndefined

from feeds.config import Settings
from feeds.errors import FeedsError
from feeds.model import FEED_FORMATS
from feeds.pages.write import archive_url, day_url
from feeds.render import feed_url, page_url
from feeds.render.topics import TOPICS_DOC
from feeds.responses import cache_control
from feeds.store import Store
from feeds.websub_links import hub_url

MANIFEST = "manifest.json"
PCHARS = "/:@!$&'()*+,;=~"
ENCODINGS = {"identity": "", "gzip": ".gz", "br": ".br"}
TWINS = ("html", "md", "json", "xml")
STATIC = ("/static/style.css", "/static/icon.svg")
# Headers an nginx map carries per URL; the rest follows from the URL (content type, Link).
CARRIED = ("etag", "cache-control", "vary")


class ExportError(FeedsError):
    pass


@dataclass
class Counts:
    written: int = 0
    unchanged: int = 0
    removed: int = 0

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


async def urls(store: Store) -> list[str]:
    """Every URL the export holds, in a stable order."""
    found: list[str] = ["/opml", "/topics", *STATIC]
    for feed, fmt in await store.rendition_keys():
        if feed == TOPICS_DOC:
            found.append("/topics.json")
        elif fmt in FEED_FORMATS:
            found.append(feed_url("", feed, fmt))
        elif fmt == "html":
            found.append(page_url("", feed))
    for date in await store.dates():
        found += [day_url(dt.date.fromisoformat(date), ext) for ext in TWINS if ext != "html"]
    for current in await store.live_pages():
        found += [archive_url(current, ext) for ext in TWINS]
    return sorted(set(found))


async def moves(store: Store) -> dict[str, str]:
    """Older versions' URLs (and padded days) -> the current version's, as the server redirects."""
    out = {}
    for path, current in [(current, current) for current in await store.live_pages()] + await store.older_versions():
        for ext in TWINS:
            target = archive_url(current, ext)
            for old in (archive_url(path, ext), f"{path}.{ext}"):
                if old != target:
                    out[old] = target
    return out


@contextlib.asynccontextmanager
async def _app_client(settings: Settings, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    from feeds.app import create_app

    quiet = dataclasses.replace(settings, rate_limit=0.0, subscriber_stats=False, access_log="off")
    app = create_app(quiet, store=store, scheduler=False, push=False)  # an export pushes nothing
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 0))
        async with httpx.AsyncClient(transport=transport, base_url="http://export.invalid") as client:
            yield client


def _write(root: Path, name: str, body: bytes, mtime: float) -> None:
    path = root / name.lstrip("/")
    if ".." in Path(name).parts:  # names come from stored paths: never outside the export
        raise ExportError(f"{name}: not a path inside the export")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(body)
    os.utime(temporary, (mtime, mtime))
    os.replace(temporary, path)


async def export(settings: Settings, store: Store, out: Path, origin: str = "") -> Counts:
    """Export the store's site into `out` (site/, nginx.conf, maps, manifest.json)."""
    site = out / "site"
    site.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    before: dict[str, dict[str, str]] = {}
    if manifest_path.exists():
        try:
            before = json.loads(manifest_path.read_text())["files"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ExportError(f"{manifest_path}: not an export manifest ({exc}); remove it to export anew") from None
    counts = Counts()
    files: dict[str, dict[str, str]] = {}
    accept = {"/topics": "text/html"}
    async with _app_client(settings, store) as client:
        for url in await urls(store):
            for encoding, suffix in ENCODINGS.items():
                name = file_of(url) + suffix
                old = before.get(name)
                headers = {"accept-encoding": encoding, "accept": accept.get(url, "*/*")}
                if old and (site / name.lstrip("/")).exists():
                    headers["if-none-match"] = old["etag"]
                async with client.stream("GET", url, headers=headers) as response:
                    body = b"".join([chunk async for chunk in response.aiter_raw()])
                if response.status_code == 304 and old:  # same bytes; a settled day's max-age may be new
                    files[name] = {**old, **{k: response.headers[k] for k in CARRIED if k in response.headers}}
                    counts.unchanged += 1
                    continue
                if response.status_code != 200:
                    raise ExportError(f"{url} ({encoding}): the server answered {response.status_code}: {body[:200]!r}")
                kept = {k: response.headers[k] for k in CARRIED if k in response.headers}
                kept["url"], kept["last-modified"] = url, response.headers["last-modified"]
                stamp = email.utils.parsedate_to_datetime(kept["last-modified"]).timestamp()
                _write(site, name, body, stamp)
                files[name] = kept
                counts.written += 1
    for name in sorted(set(before) - set(files)):
        with contextlib.suppress(FileNotFoundError):
            (site / name.lstrip("/")).unlink()
        counts.removed += 1
    _write_config(settings, out, files, await moves(store), origin)
    manifest_path.write_text(json.dumps({"files": files}, indent=0, sort_keys=True) + "\n")
    return counts


def _quote(value: str) -> str:
    """A string as an nginx configuration token in double quotes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _as_requested(url: str, safe: str = PCHARS) -> str:
    """A URL path as clients send it (`$request_uri`): UTF-8 percent-encoded, RFC 3986's path
    characters kept. A map's resulting values are not allowed a `$` (nginx reads a variable)."""
    return quote(unquote(url), safe=safe)


def _power_of_two(at_least: int, floor: int) -> int:
    return max(floor, 1 << (at_least - 1).bit_length())


def _map_lines(pairs: Iterable[tuple[str, str]]) -> str:
    return "".join(f"{_quote(k)} {_quote(v)};\n" for k, v in pairs)


def _write_config(
    settings: Settings, out: Path, files: dict[str, dict[str, str]], moved: dict[str, str], origin: str
) -> None:
    """nginx.conf (maps and a server block) and the maps it includes, next to site/."""
    live = cache_control(settings)
    by_suffix = {".gz": "gzip", ".br": "br"}
    etags = [
        (f"{_as_requested(h['url'])}|{by_suffix.get(name[-3:], 'identity')}", h["etag"])
        for name, h in sorted(files.items())
    ]
    controls = sorted(
        {(_as_requested(h["url"]), h["cache-control"]) for h in files.values() if h.get("cache-control", live) != live}
    )
    moved_lines = sorted(
        (_as_requested(old), _as_requested(new, PCHARS.replace("$", ""))) for old, new in moved.items()
    )
    keys = [k for k, _ in etags] + [k for k, _ in controls] + [k for k, _ in moved_lines]
    (out / "etags.map").write_text(_map_lines(etags))
    (out / "cache.map").write_text(_map_lines(controls))
    (out / "moved.map").write_text(
        _map_lines(
            sorted((_as_requested(old), _as_requested(new, PCHARS.replace("$", ""))) for old, new in moved.items())
        )
    )
    # Beside this module, not among the renderers' templates (their digest marks every entry).
    template = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True).from_string(
        Path(__file__).with_name("export-nginx.conf").read_text(encoding="utf-8")
    )
    (out / "nginx.conf").write_text(
        template.render(
            out=str(out.resolve()),
            base=settings.base_url.rstrip("/"),
            hub=hub_url(settings),
            origin=origin.rstrip("/"),
            live=live,
            quote=_quote,
            # nginx's map hashes must hold the longest key and every key of the largest map
            bucket_size=_power_of_two(max(map(len, keys), default=0) + 32, 64),
            max_size=_power_of_two(2 * len(etags), 2048),
        )
    )
