"""Settings: `config/feeds.toml` (or `FEEDS_CONFIG`), then `FEEDS_*` environment variables.

Relative paths in a config file are relative to that file's directory. Every value is checked
here, so a bad one stops the program with the key named, before anything is opened.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from feeds.config_names import named, unknown_key
from feeds.errors import ConfigError
from feeds.ids import topic_key
from feeds.language_tags import language_tag
from feeds.pages.wikitext import DEFAULT_VARIANT, VARIANTS

SOURCE_KINDS = ("directory", "http", "git")
DEFAULT_CONFIG = Path("config/feeds.toml")
DEFAULT_LANGUAGE = "en"
ACCESS_LOG_KINDS = ("off", "text", "json")


@dataclass(frozen=True)
class SourceConfig:
    name: str
    kind: str  # directory | http | git
    location: str  # a directory, a base URL, or a git repository (path or URL)
    # Template for an entry's web link; {path} is the page's path without extension
    # (`news/2018/01/1/slug`). Empty: entries carry no link.
    link: str = ""
    depth: int = 7  # http: days walked back from each start day at every refresh
    start: str = ""  # http: day listings the walks start from (space-separated); empty = probe back from today
    until: str = ""  # http: YYYY-MM-DD: walk on past `depth` down to this day, across refreshes; empty = no further
    max_gap: int = 31  # http: days in a row without a listing before a walk ends
    max_pages: int = 2_000  # http: requests per refresh at most (200 s at the default rate)
    concurrency: int = 4  # http: requests in flight
    rate: float = 10.0  # http: requests per second at most
    timeout: float = 10.0  # http: seconds per request
    max_bytes: int = 2_000_000  # http: largest response accepted
    retries: int = 2  # http: retries of a failed request, with exponential backoff
    deletion_grace: int = 86_400  # http: seconds a page must stay 404/410 before its event is deleted
    branch: str = ""  # git: branch to follow (empty: the remote's default)
    language: str = ""  # of its pages, a BCP 47 tag (empty: the top-level `language`, else "en")


@dataclass(frozen=True)
class Limits:
    """What one document may hold (the `max_*` settings, named in every rejection)."""

    max_document_bytes: int = 256 << 10
    max_headline_chars: int = 1_000
    max_summary_chars: int = 10_000
    max_sources: int = 30
    max_related: int = 50
    max_contexts: int = 150
    # Not a limit but how a document is read, carried with them to the readers: the language
    # variant wiki markup resolves to (`variant`, feeds.pages.wikitext).
    variant: str = DEFAULT_VARIANT


@dataclass(frozen=True)
class Settings:
    # Public URL of the feeds: self links, feed URLs, home links.
    base_url: str = "http://127.0.0.1:8000"
    database: str = "var/feeds.db"
    host: str = "127.0.0.1"
    port: int = 8000
    title: str = "Current events"
    author: str = "Wikipedia Current Events contributors"
    refresh_interval: int = 600  # seconds
    items_per_feed: int = 50
    cache_max_age: int = 300  # seconds, live feeds
    archive_max_age: int = 86_400  # seconds, date feeds older than the settle window
    # RFC 5861, for caches in front (deploy/): how long a stale copy may be served while it is
    # revalidated, and while the origin fails.
    cache_stale_while_revalidate: int = 60
    cache_stale_if_error: int = 86_400
    settle_days: int = 2
    tombstone_days: int = 7  # how long Atom feeds carry at:deleted-entry for a deleted event
    cache_bytes: int = 64 * 1024 * 1024  # per server process: rendered feeds kept in memory
    workers: int = 1  # server processes; exactly one of them runs the scheduler
    # What one document may hold; a page over any limit is rejected and reported with the limit's name.
    max_document_bytes: int = 256 << 10
    max_headline_chars: int = 1_000
    max_summary_chars: int = 10_000
    max_sources: int = 30
    max_related: int = 50
    max_contexts: int = 150  # context names over all related events: with the heading, the topics per event
    # What one served document may hold: a feed over it leaves out its oldest entries, and says so.
    max_feed_bytes: int = 4 << 20
    max_combined_topics: int = 10  # topics one combined feed (`/feeds/topics/a+b.atom`) may join
    access_log: str = "text"  # one line per request on stderr: off, text or json
    # Requests a second per client (token bucket; 0: no limit), and how many it may send at once.
    rate_limit: float = 20.0
    rate_burst: int = 300
    # Proxies whose X-Forwarded-For names the client (addresses or networks, e.g. "10.0.0.0/8").
    trusted_proxies: tuple[str, ...] = ()
    subscriber_stats: bool = True  # per feed and day: clients and reported subscribers (/stats)
    # WebSub (feeds/websub.py): the built-in hub at /websub, or another hub to advertise and ping.
    websub: bool = True
    websub_hub: str = ""
    websub_lease_seconds: int = 10 * 86_400  # when a subscriber asks for none
    websub_min_lease_seconds: int = 3_600
    websub_max_lease_seconds: int = 30 * 86_400
    websub_allow_private_callbacks: bool = False  # loopback, private and link-local callbacks
    # Subscriptions the hub holds, in all and per callback host: one client cannot fill the store.
    websub_max_subscriptions: int = 10_000
    websub_max_subscriptions_per_host: int = 100
    sources: tuple[SourceConfig, ...] = field(default_factory=tuple)
    # Names that are one topic, each (the name shown, (other names...)), from `[topic_aliases]`.
    topic_aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The feeds' language, a BCP 47 tag; empty: the language every source has, else "en".
    language: str = ""
    # The language variant (MediaWiki's: zh-cn, zh-tw, zh-hans, ...) that `-{zh-cn:...; zh-tw:...}-`
    # markup in a page resolves to: one name per thing in its titles and topics.
    variant: str = DEFAULT_VARIANT
    origin: str = "<defaults>"
    # No base_url was configured (file or FEEDS_BASE_URL): it follows the address served
    # (`serving`), so `feeds serve --port P` does not link every document to another port.
    follow_address: bool = False

    @property
    def limits(self) -> Limits:
        return Limits(
            self.max_document_bytes,
            self.max_headline_chars,
            self.max_summary_chars,
            self.max_sources,
            self.max_related,
            self.max_contexts,
            self.variant,
        )

    def source_language(self, name: str) -> str:
        """The language of a source's pages: its own `language`, else the top-level one, else "en"."""
        own = next((s.language for s in self.sources if s.name == name and s.language), "")
        return own or self.language or DEFAULT_LANGUAGE

    @property
    def feed_language(self) -> str:
        """The language every feed declares: the top-level `language`; unset, the language all
        sources share, or "en" when they differ (entries then say their own, where Atom can)."""
        if self.language:
            return self.language
        languages = {self.source_language(s.name) for s in self.sources}
        return languages.pop() if len(languages) == 1 else DEFAULT_LANGUAGE


_SETTINGS_TYPES: dict[str, type] = {
    "base_url": str,
    "database": str,
    "host": str,
    "port": int,
    "title": str,
    "author": str,
    "refresh_interval": int,
    "items_per_feed": int,
    "cache_max_age": int,
    "archive_max_age": int,
    "cache_stale_while_revalidate": int,
    "cache_stale_if_error": int,
    "settle_days": int,
    "tombstone_days": int,
    "cache_bytes": int,
    "workers": int,
    "language": str,
    "variant": str,
    "max_document_bytes": int,
    "max_headline_chars": int,
    "max_summary_chars": int,
    "max_sources": int,
    "max_related": int,
    "max_contexts": int,
    "max_feed_bytes": int,
    "max_combined_topics": int,
    "access_log": str,
    "rate_limit": float,
    "rate_burst": int,
    "subscriber_stats": bool,
    "websub": bool,
    "websub_hub": str,
    "websub_lease_seconds": int,
    "websub_min_lease_seconds": int,
    "websub_max_lease_seconds": int,
    "websub_allow_private_callbacks": bool,
    "websub_max_subscriptions": int,
    "websub_max_subscriptions_per_host": int,
}
_POSITIVE = {
    "port",
    "refresh_interval",
    "items_per_feed",
    "workers",
    "max_document_bytes",
    "max_headline_chars",
    "max_combined_topics",
    "rate_burst",
    "websub_max_subscriptions",
    "websub_max_subscriptions_per_host",
}
# Upper bounds, so a typo is refused at load rather than wrapped (a port) or overflowing (a timer).
_MAXIMA: dict[str, int] = {
    "port": 65_535,
    "refresh_interval": 31 * 86_400,
    "items_per_feed": 10_000,
    "cache_max_age": 365 * 86_400,
    "archive_max_age": 365 * 86_400,
    "cache_stale_while_revalidate": 365 * 86_400,
    "cache_stale_if_error": 365 * 86_400,
    "settle_days": 3_650,
    "tombstone_days": 3_650,
    "cache_bytes": 1 << 40,
    "workers": 64,
    "depth": 100_000,
    "max_gap": 100_000,
    "concurrency": 256,
    "rate": 10_000,
    "timeout": 3_600,
    "max_bytes": 1 << 30,
    "retries": 100,
    "deletion_grace": 3_650 * 86_400,
    "max_document_bytes": 1 << 30,
    "max_headline_chars": 1 << 20,
    "max_summary_chars": 1 << 26,
    "max_sources": 100_000,
    "max_related": 100_000,
    "max_contexts": 100_000,
    "max_feed_bytes": 1 << 30,
    "max_combined_topics": 100,
    "rate_limit": 1_000_000,
    "rate_burst": 1_000_000,
    "websub_lease_seconds": 365 * 86_400,
    "websub_min_lease_seconds": 365 * 86_400,
    "websub_max_lease_seconds": 365 * 86_400,
    "websub_max_subscriptions": 10_000_000,
    "websub_max_subscriptions_per_host": 10_000_000,
}
# Lower bounds above 1: a feed must hold its channel and at least one entry of any allowed page.
_MINIMA: dict[str, int] = {"max_feed_bytes": 64 << 10}
_SOURCE_TYPES: dict[str, type] = {
    "name": str,
    "kind": str,
    "location": str,
    "link": str,
    "depth": int,
    "start": str,
    "until": str,
    "max_gap": int,
    "max_pages": int,
    "concurrency": int,
    "rate": float,
    "timeout": float,
    "max_bytes": int,
    "retries": int,
    "deletion_grace": int,
    "branch": str,
    "language": str,
}


_LISTS = ("sources", "topic_aliases", "trusted_proxies")  # settings read on their own, not by _cast
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _cast(key: str, value: Any, kind: type, origin: str) -> Any:
    if kind is bool:
        if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
            return _BOOLEANS[value.strip().lower()]
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {value!r}", origin)
        return value
    if isinstance(value, str) and kind is not str:
        try:
            value = kind(value)
        except ValueError:
            raise ConfigError(key, f"must be {kind.__name__}, got {value!r}", origin) from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(key, f"must be {kind.__name__}, got {value!r}", origin)
    if isinstance(value, int | float) and value < 0:
        raise ConfigError(key, f"must not be negative, got {value!r}", origin)
    name = key.rpartition(".")[2].removeprefix("FEEDS_").lower()
    minimum = _MINIMA.get(name)
    if minimum is not None and isinstance(value, int | float) and value < minimum:
        raise ConfigError(key, f"must be at least {minimum:,}, got {value!r}", origin)
    maximum = _MAXIMA.get(name)
    if maximum is not None and isinstance(value, int | float) and value > maximum:
        raise ConfigError(key, f"must be at most {maximum:,}, got {value!r}", origin)
    return value


def _source(raw: Any, index: int, base: Path, origin: str) -> SourceConfig:
    where = f"sources[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(where, "must be a table", origin)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _SOURCE_TYPES:
            raise ConfigError(f"{where}.{key}", unknown_key(key, _SOURCE_TYPES), origin)
        if key == "start" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = " ".join(value)  # several day listings, each the head of a walk
        values[key] = _cast(f"{where}.{key}", value, _SOURCE_TYPES[key], origin)
    if "language" in values:
        values["language"] = language_tag(f"{where}.language", values["language"], origin)
    if values.get("until"):
        try:
            dt.date.fromisoformat(values["until"])
        except ValueError:
            raise ConfigError(f"{where}.until", f"must be a date YYYY-MM-DD, got {values['until']!r}", origin) from None
    for required in ("name", "location"):
        if not values.get(required):
            raise ConfigError(f"{where}.{required}", "is required", origin)
    values.setdefault("kind", guess_kind(values["location"]))
    if values["kind"] not in SOURCE_KINDS:
        raise ConfigError(f"{where}.kind", f"must be one of {', '.join(SOURCE_KINDS)}", origin)
    if values["kind"] == "directory" or (
        values["kind"] == "git" and "://" not in values["location"] and not is_remote_git(values["location"])
    ):
        values["location"] = str((base / values["location"]).resolve())
    return SourceConfig(**values)


_SCP_STYLE = re.compile(r"^[\w.-]+@[\w.-]+:")  # git@github.com:owner/repo.git


def is_remote_git(location: str) -> bool:
    return location.startswith(("file://", "ssh://", "git://", "git+ssh://")) or bool(_SCP_STYLE.match(location))


def guess_kind(location: str) -> str:
    if location.startswith(("http://", "https://")):
        return "git" if location.endswith(".git") else "http"
    if is_remote_git(location) or location.endswith(".git") or Path(location, ".git").exists():
        return "git"
    return "directory"


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the config file (if any) and the environment, validated."""
    env = os.environ if env is None else env
    chosen = Path(path or env.get("FEEDS_CONFIG") or DEFAULT_CONFIG)
    raw: dict[str, Any] = {}
    origin = str(chosen)
    if chosen.exists():
        try:
            raw = tomllib.loads(chosen.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError("file", f"not valid TOML: {exc}", origin) from exc
    elif path is not None or "FEEDS_CONFIG" in env:
        raise ConfigError("file", "no such file", origin)
    base = chosen.parent.resolve()
    values: dict[str, Any] = {"origin": origin}
    for key, value in raw.items():
        if key in _LISTS:
            continue
        if key not in _SETTINGS_TYPES:
            raise ConfigError(key, unknown_key(key, [*_SETTINGS_TYPES, *_LISTS]), origin)
        values[key] = _cast(key, value, _SETTINGS_TYPES[key], origin)
    for key, kind in _SETTINGS_TYPES.items():
        env_key = f"FEEDS_{key.upper()}"
        if env_key in env:
            values[key] = _cast(env_key, env[env_key], kind, "environment")
    for key, where in (named(k, env, origin) for k in sorted(_POSITIVE) if values.get(k) == 0):
        raise ConfigError(key, "must be positive", where)
    if "language" in values:
        key, where = named("language", env, origin)
        values["language"] = language_tag(key, values["language"], where)
    if "variant" in values:
        key, where = ("FEEDS_VARIANT", "environment") if "FEEDS_VARIANT" in env else ("variant", origin)
        values["variant"] = values["variant"].strip().lower()
        if values["variant"] not in VARIANTS:
            raise ConfigError(key, f"must be one of {', '.join(VARIANTS)}, got {values['variant']!r}", where)
    if values.get("access_log", "text") not in ACCESS_LOG_KINDS:
        key, where = named("access_log", env, origin)
        raise ConfigError(key, f"must be one of {', '.join(ACCESS_LOG_KINDS)}, got {values['access_log']!r}", where)
    if values.get("websub_hub") and not re.match(r"^https?://[^/?#\s]+", values["websub_hub"]):
        raise ConfigError("websub_hub", f"must be an absolute http(s) URL, got {values['websub_hub']!r}", origin)
    lease = [
        values.get(k, getattr(Settings, k))
        for k in ("websub_min_lease_seconds", "websub_lease_seconds", "websub_max_lease_seconds")
    ]
    if not lease[0] <= lease[1] <= lease[2]:
        raise ConfigError(
            "websub_lease_seconds",
            f"must be within websub_min_lease_seconds and websub_max_lease_seconds, got {lease}",
            origin,
        )
    if values.get("base_url") and not re.match(r"^https?://[^/?#\s]+", values["base_url"]):
        key, where = named("base_url", env, origin)
        raise ConfigError(key, f"must be an absolute http(s) URL, got {values['base_url']!r}", where)
    if "database" in values and "FEEDS_DATABASE" not in env and raw.get("database"):
        values["database"] = str((base / values["database"]).resolve())
    sources_raw = raw.get("sources", [])
    if not isinstance(sources_raw, list):
        raise ConfigError("sources", "must be an array of tables ([[sources]])", origin)
    sources = tuple(_source(s, i, base, origin) for i, s in enumerate(sources_raw))
    if "FEEDS_SOURCES" in env:
        # Comma-separated locations replace the file's sources (handy for one-off runs).
        sources = tuple(
            _source({"name": f"source{i + 1}", "location": loc.strip()}, i, Path.cwd(), "FEEDS_SOURCES")
            for i, loc in enumerate(env["FEEDS_SOURCES"].split(","))
            if loc.strip()
        )
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ConfigError("sources", f"source names must be unique, got {names}", origin)
    values["topic_aliases"] = topic_aliases(raw.get("topic_aliases", {}), origin)
    values["trusted_proxies"] = _proxies(raw, env, origin)
    settings = Settings(**values)
    settings = replace(settings, sources=sources, base_url=settings.base_url.rstrip("/"))
    if not values.get("base_url"):
        settings = replace(settings, follow_address=True, base_url=address_url(settings.host, settings.port))
    return settings


def _proxies(raw: Mapping[str, Any], env: Mapping[str, str], origin: str) -> tuple[str, ...]:
    """`trusted_proxies` (a list in the file; FEEDS_TRUSTED_PROXIES, comma-separated), each an
    address or a network."""
    from feeds.ratelimit import networks

    key, where = (
        ("FEEDS_TRUSTED_PROXIES", "environment") if "FEEDS_TRUSTED_PROXIES" in env else ("trusted_proxies", origin)
    )
    value: Any = env["FEEDS_TRUSTED_PROXIES"].split(",") if key.startswith("FEEDS") else raw.get("trusted_proxies", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(key, "must be a list of IP addresses or networks", where)
    try:
        return tuple(str(n) for n in networks([v for v in value if v.strip()]))
    except ValueError as exc:
        raise ConfigError(key, str(exc), where) from None


def topic_aliases(raw: Any, origin: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`[topic_aliases]`: `"Name shown" = ["Other name", ...]`, each name in one group only (as
    topics compare names: case, diacritics and script folded). Sorted, so the order written
    does not matter."""
    if not isinstance(raw, Mapping):
        raise ConfigError("topic_aliases", 'must be a table of "Name" = ["Other name", ...]', origin)
    seen: dict[str, str] = {}
    groups = []
    for shown, others in raw.items():
        where = f"topic_aliases.{shown!r}"
        if not isinstance(others, list) or not others or not all(isinstance(o, str) for o in others):
            raise ConfigError(where, "must be a non-empty list of topic names", origin)
        for name in (shown, *others):
            key = topic_key(name)
            if not key:
                raise ConfigError(where, f"{name!r} has no words to name a topic by", origin)
            if key in seen and seen[key] != shown:
                raise ConfigError(where, f"{name!r} is already in the group of {seen[key]!r}", origin)
            seen[key] = shown
        groups.append((shown, tuple(sorted({o for o in others if topic_key(o) != topic_key(shown)}))))
    return tuple(sorted(groups))


_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def address_url(host: str, port: int) -> str:
    """The base URL of a server bound to host:port. A wildcard address is no place to send a
    reader: it is taken as this machine's loopback (set base_url for other machines)."""
    host = _WILDCARDS.get(host, host)
    netloc = f"[{host}]" if ":" in host else host
    return f"http://{netloc}" if port == 80 else f"http://{netloc}:{port}"


def is_wildcard(host: str) -> bool:
    return host in _WILDCARDS


def serving(settings: Settings, host: str | None = None, port: int | None = None) -> Settings:
    """The settings of a server bound to `host`:`port` (the command line's, else the configured
    ones): without a configured base_url, the base URL is that address."""
    settings = replace(settings, host=host or settings.host, port=port or settings.port)
    if settings.follow_address:
        settings = replace(settings, base_url=address_url(settings.host, settings.port))
    return settings
