"""An export's nginx configuration (feeds/export.py): `nginx.conf` from feeds/export-nginx.conf and
the maps it includes (`etags.map`: URL and coding -> ETag; `cache.map`: URLs whose Cache-Control
is not the live one; `moved.map`: older versions' URLs -> the current one's), each written a line
at a time from the manifest and the store, never held whole."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO
from urllib.parse import quote, unquote

from jinja2 import Environment, StrictUndefined

from feeds.config import Settings
from feeds.export_manifest import Manifest
from feeds.pages.write import archive_url
from feeds.responses import cache_control
from feeds.store import Store
from feeds.websub_links import hub_url

PCHARS = "/:@!$&'()*+,;=~"
TWINS = ("html", "md", "json", "xml")
BY_SUFFIX = {".gz": "gzip", ".br": "br"}


def _quote(value: str) -> str:
    """A string as an nginx configuration token in double quotes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _as_requested(url: str, safe: str = PCHARS) -> str:
    """A URL path as clients send it (`$request_uri`): UTF-8 percent-encoded, RFC 3986's path
    characters kept. A map's resulting values are not allowed a `$` (nginx reads a variable)."""
    return quote(unquote(url), safe=safe)


def _power_of_two(at_least: int, floor: int) -> int:
    return max(floor, 1 << (at_least - 1).bit_length())


class _MapFile:
    """A map file written line by line, counting its entries and its longest key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temporary = path.with_name(f".{path.name}.tmp")
        self.out: TextIO = self.temporary.open("w", encoding="utf-8")
        self.entries = 0
        self.longest = 0

    def add(self, key: str, value: str) -> None:
        self.out.write(f"{_quote(key)} {_quote(value)};\n")
        self.entries += 1
        self.longest = max(self.longest, len(key))

    def done(self) -> None:
        self.out.close()
        os.replace(self.temporary, self.path)


async def write_moves(store: Store, out: Path, size: int = 2000) -> tuple[int, int]:
    """moved.map from the store, a part at a time; (entries, longest key)."""
    moved = _MapFile(out / "moved.map")
    target_safe = PCHARS.replace("$", "")

    def add(pairs: list[tuple[str, str]]) -> None:
        for path, current in pairs:
            for ext in TWINS:
                target = archive_url(current, ext)
                for old in dict.fromkeys((archive_url(path, ext), f"{path}.{ext}")):  # one unless padded
                    if old != target:
                        moved.add(_as_requested(old), _as_requested(target, target_safe))

    try:
        after = ""
        while part := await store.live_events_after(after, size):
            add([(current, current) for _, current in part])
            after = part[-1][0]
        after = ""
        while older := await store.older_versions_after(after, size):
            add(older)
            after = older[-1][0]
    finally:
        moved.done()
    return moved.entries, moved.longest


async def write_config(settings: Settings, store: Store, out: Path, manifest: Manifest, origin: str) -> None:
    """nginx.conf (maps and a server block) and the maps it includes, next to site/."""
    live = cache_control(settings)
    etags, controls = _MapFile(out / "etags.map"), _MapFile(out / "cache.map")
    try:
        last = ""
        for name, url, etag, control in manifest.ordered():
            requested = _as_requested(url)
            etags.add(f"{requested}|{BY_SUFFIX.get(name[-3:], 'identity')}", etag)
            # One line per URL (its files are next to each other in name order).
            if control and control != live and url != last:
                controls.add(requested, control)
            last = url
    finally:
        etags.done()
        controls.done()
    _, longest_move = await write_moves(store, out)
    longest = max(etags.longest, controls.longest, longest_move)
    _write_nginx_conf(
        settings,
        out,
        origin,
        # nginx's map hashes must hold the longest key and every key of the largest map
        bucket_size=_power_of_two(longest + 32, 64),
        max_size=_power_of_two(2 * etags.entries, 2048),
    )


def _write_nginx_conf(settings: Settings, out: Path, origin: str, bucket_size: int, max_size: int) -> None:
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
            live=cache_control(settings),
            quote=_quote,
            bucket_size=bucket_size,
            max_size=max_size,
        )
    )
