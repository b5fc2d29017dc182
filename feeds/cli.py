"""The `feeds` command: serve, ingest, refresh, publish, topics, export, stats. Composes the other modules.

Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from feeds import config, fingerprint, startup
from feeds.config import Settings, SourceConfig
from feeds.errors import FeedsError
from feeds.process import configure_logging, tune_gc
from feeds.store import Store

if TYPE_CHECKING:
    from feeds.refresh import Report

T = TypeVar("T")
log = logging.getLogger("feeds.cli")


def run(fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(fn())  # type: ignore[arg-type]
    except FeedsError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: config/feeds.toml or $FEEDS_CONFIG).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log this program's debug lines.")
@click.option("--debug-libraries", is_flag=True, help="Log the libraries' debug lines too (SQL statements, requests).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool, debug_libraries: bool) -> None:
    """A syndication feed server for current events."""
    configure_logging(verbose, debug_libraries)
    try:
        ctx.obj = config.load(config_path)
    except FeedsError as exc:
        raise click.ClickException(str(exc)) from exc
    if ctx.invoked_subcommand != "serve":  # serve says it once it knows the address it serves
        startup.announce(ctx.invoked_subcommand or "feeds", ctx.obj)


@cli.command()
@click.option("--host", default=None, help="Interface to bind (default from config).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default from config).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Server processes (default from config); one runs the scheduler.",
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the feeds, refreshing the configured sources on schedule."""
    import uvicorn

    settings = config.serving(ctx.obj, host, port)
    startup.announce("serve", settings)
    if settings.follow_address:
        log.info("base_url not configured: feeds link to %s, the address served", settings.base_url)
        if config.is_wildcard(settings.host):
            log.warning(
                "serving on every interface (%s) without base_url: links point at %s; "
                "set base_url (or FEEDS_BASE_URL) to the address readers use",
                settings.host,
                settings.base_url,
            )
    # A store that cannot be opened (not SQLite, no such folder, no permission) is one line here,
    # not a worker's traceback.
    run(lambda: _open_and_close(settings))
    startup.check_address(settings.host, settings.port)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "info",
        "log_config": None,  # uvicorn's lines through our handler: with the time, like every other line
        "loop": "uvloop",
        "http": "feeds.http_limits:BoundedHttpToolsProtocol",  # httptools, heads bounded (431)
        "access_log": False,  # feeds' own (feeds/access.py)
        "proxy_headers": False,  # X-Forwarded-For is believed from trusted_proxies only (feeds/ratelimit.py)
    }
    count = workers or settings.workers
    if count > 1:
        # Workers are separate processes: they rebuild the app from the same config file, and the
        # address (which a base URL that is not configured follows) from these variables.
        # Settings from FEEDS_* variables alone (no file) reach the workers through those variables.
        if Path(settings.origin).is_file():
            os.environ["FEEDS_CONFIG"] = str(Path(settings.origin).resolve())
        os.environ["FEEDS_HOST"], os.environ["FEEDS_PORT"] = settings.host, str(settings.port)
        if logging.getLogger("feeds").level <= logging.DEBUG:
            os.environ["FEEDS_VERBOSE"] = "1"
        if logging.getLogger().level <= logging.DEBUG:
            os.environ["FEEDS_DEBUG_LIBRARIES"] = "1"
        with (
            tempfile.NamedTemporaryFile("r", prefix="feeds-start-", suffix=".txt", encoding="utf-8") as failure,
            tempfile.TemporaryDirectory(prefix="feeds-metrics-") as samples,
        ):
            os.environ["FEEDS_START_FAILURE"] = failure.name
            # /metrics sums the samples every worker writes there (feeds/metrics.py).
            os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", samples)
            uvicorn.run("feeds.app:app_from_environment", factory=True, workers=count, **options)
            reasons = failure.read().splitlines()
        if reasons:
            raise click.ClickException(f"a server worker cannot start: {reasons[0]}")
    else:
        from feeds.app import create_app

        uvicorn.run(create_app(settings), **options)


@cli.command()
@click.argument("location")
@click.option(
    "--name",
    default=None,
    help="Source name to record (default: a configured source with this location, else the location).",
)
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: when stderr is a terminal).")
@click.pass_obj
def ingest(settings: Settings, location: str, name: str | None, progress: bool | None) -> None:
    """Ingest a directory tree, a single document or an HTTP base URL, then render what changed."""
    from tqdm import tqdm

    from feeds.refresh import ingest as ingest_collected
    from feeds.refresh import publish_report
    from feeds.sources import Collected, Document

    show = sys.stderr.isatty() if progress is None else progress
    path = Path(location)
    # One file is read here, before the event loop; a tree or a site is read by its source.
    single = Document(_relpath(path), path.read_bytes(), str(path)) if path.is_file() else None
    local_git = path.exists()
    resolved = str(path.resolve())

    async def go() -> int:
        started = time.perf_counter()
        await _open_and_close(settings)
        if single is not None:
            collected = Collected(documents=[single], expected=1)
            store = await Store.open(settings.database, topic_aliases=settings.topic_aliases)
            try:
                report = await ingest_collected(
                    store, name or _source_name(settings, location), collected, limits=settings.limits
                )
            finally:
                await store.close()
        else:
            kind = config.guess_kind(location)
            local = kind == "directory" or (kind == "git" and local_git)
            loc = resolved if local else location
            source = SourceConfig(name=name or _source_name(settings, loc), kind=kind, location=loc)
            # Reading a large tree leaves a few hundred MB in the reading process (file lists,
            # parsed batches, heap that glibc keeps) that publishing does not need: reading runs
            # in a process of its own, which hands back its report and ends before publishing
            # starts its processes.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(1, mp_context=context, initializer=tune_gc) as pool:
                report = await asyncio.get_running_loop().run_in_executor(
                    pool, read_and_store, settings, source, show, os.cpu_count() or 1
                )
        stored = time.perf_counter()
        store = await Store.open(settings.database, topic_aliases=settings.topic_aliases)
        try:
            rendering = await fingerprint.for_store(store, settings)
            with tqdm(unit="feed", desc="publish", disable=not show) as bar:
                await publish_report(store, rendering, report, bar.update, os.cpu_count() or 1)
        finally:
            await store.close()
        published = time.perf_counter()
        for line in report.lines():
            click.echo(line)
        click.echo(f"read and stored in {stored - started:.1f} s, published in {published - stored:.1f} s")
        return 1 if report.problems else 0

    sys.exit(run(go))


async def _open_and_close(settings: Settings) -> None:
    """The store opens, and SQLite's quick check finds no damage (else one line saying what to do)."""
    store = await Store.open(settings.database, topic_aliases=settings.topic_aliases, check=True)
    await store.close()


def read_and_store(settings: Settings, config: SourceConfig, show: bool, processes: int) -> Report:
    """Collect a source, store what it has, move its cursor (in a process of its own)."""
    from tqdm import tqdm

    from feeds.refresh import settle
    from feeds.sources import open_source

    async def go() -> Report:
        store = await Store.open(settings.database, topic_aliases=settings.topic_aliases)
        source = open_source(config)
        try:
            collected = await source.collect(store)
            with tqdm(total=collected.expected, unit="doc", desc="ingest", disable=not show) as bar:

                def advance(n: int) -> None:
                    bar.update(n)

                return await settle(
                    store, source, collected, progress=advance, processes=processes, limits=settings.limits
                )
        finally:
            await source.aclose()
            await store.close()

    return asyncio.run(go())


def _relpath(path: Path) -> str:
    parts = path.resolve().parts
    if "news" not in parts:
        raise click.ClickException(f"{path}: not under a news/YYYY/MM/D/ folder")
    return "/".join(parts[len(parts) - 1 - parts[::-1].index("news") :])


def _source_name(settings: Settings, location: str) -> str:
    for source in settings.sources:
        if source.location == location:
            return source.name
    return location


@cli.command()
@click.pass_obj
def refresh(settings: Settings) -> None:
    """Refresh every configured source once and re-render what changed."""
    from feeds.refresh import open_sources, refresh_all

    if not settings.sources:
        sys.exit(1)  # said in the first lines (startup.announce): "0 new" would read as success

    async def go() -> int:
        store = await Store.open(settings.database, topic_aliases=settings.topic_aliases, check=True)
        sources = open_sources(settings.sources)
        try:
            report = await refresh_all(store, await fingerprint.for_store(store, settings), sources)
        finally:
            for source in sources:
                await source.aclose()
            await store.close()
        for line in report.lines():
            click.echo(line)
        return 1 if report.failed_sources else 0

    sys.exit(run(go))


@cli.command()
@click.option("--all", "everything", is_flag=True, help="Every document the store holds.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@click.pass_obj
def publish(settings: Settings, everything: bool, progress: bool | None) -> None:
    """Render stored documents again (--all: every one, including those otherwise made on their
    first request; unchanged bytes keep their ETags)."""
    from tqdm import tqdm

    from feeds.publish import publish_all

    if not everything:
        raise click.UsageError("say which documents: --all")
    show = sys.stderr.isatty() if progress is None else progress

    async def go() -> int:
        store = await Store.open(settings.database, topic_aliases=settings.topic_aliases)
        try:
            with tqdm(unit="feed", desc="publish", disable=not show) as bar:
                return await publish_all(
                    store,
                    await fingerprint.for_store(store, settings),
                    bar.update,
                    processes=os.cpu_count() or 1,
                    everything=True,
                )
        finally:
            await store.close()

    rendered = run(go)
    click.echo(f"{rendered} feed file{'' if rendered == 1 else 's'} re-rendered")


@cli.command()
@click.option(
    "--suggest-aliases",
    "suggest",
    is_flag=True,
    help="List likely renames (names one after the other in time, in the same company) as [topic_aliases] to confirm.",
)
@click.option(
    "--min-events", default=5, show_default=True, help="With --suggest-aliases: topics of at least this many events."
)
@click.pass_obj
def topics(settings: Settings, suggest: bool, min_events: int) -> None:
    """List the topics: events, slug, name."""
    from feeds import aliases

    async def go() -> list[Any]:
        store = await Store.open(settings.database, topic_aliases=settings.topic_aliases)
        try:
            return await (store.topic_profiles(min_events) if suggest else store.topics())
        finally:
            await store.close()

    rows = run(go)
    if suggest:
        found = aliases.suggest(rows)
        click.echo(aliases.as_toml(found) if found else f"# no likely renames among topics of {min_events}+ events")
        return
    for row in rows:
        click.echo(f"{row.events:6d}  {row.slug}  {row.name}")


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--origin",
    default="",
    help="A feeds server nginx sends what is not a file to (search, combined feeds, /changes, the hub); default: 404.",
)
@click.pass_obj
def export(settings: Settings, directory: str, origin: str) -> None:
    """Write the site as files (.gz and .br twins) with an nginx configuration serving them as the
    server does. Again after a refresh: only changed files are written, gone ones removed."""
    from feeds.export import export as export_site

    if origin and not origin.startswith(("http://", "https://")):
        raise click.BadParameter(f"an http(s) URL, got {origin!r}", param_hint="--origin")

    async def go() -> str:
        store = await Store.open(settings.database, topic_aliases=settings.topic_aliases)
        try:
            return (await export_site(settings, store, Path(directory), origin)).line()
        finally:
            await store.close()

    click.echo(f"{run(go)}; nginx: include {Path(directory).resolve() / 'nginx.conf'} in its http block")


@cli.command()
@click.option("--day", default=None, help="A day, YYYY-MM-DD (default: the newest with statistics).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="Feeds to list.")
@click.pass_obj
def stats(settings: Settings, day: str | None, limit: int) -> None:
    """The most-followed feeds of a day: followers (reported subscribers and readers polling for
    themselves), distinct clients, subscribers reported by aggregators."""

    async def go() -> tuple[str, list[dict[str, Any]]]:
        store = await Store.open(settings.database)
        try:
            days = await store.stats_days()
            chosen = day or (days[0] if days else "")
            return chosen, (await store.most_followed(chosen, limit) if chosen else [])
        finally:
            await store.close()

    if day:
        try:
            dt.date.fromisoformat(day)
        except ValueError:
            raise click.BadParameter(f"a date as YYYY-MM-DD, got {day!r}", param_hint="--day") from None
    chosen, rows = run(go)
    if not rows:
        click.echo(f"no statistics{' for ' + chosen if chosen else ' yet'}: feeds served by `feeds serve` are counted")
        return
    click.echo(f"{chosen}\n{'followers':>9}  {'clients':>7}  {'reported':>8}  feed")
    for row in rows:
        click.echo(f"{row['followers']:9d}  {row['clients']:7d}  {row['subscribers']:8d}  {row['feed']}")


def main() -> None:
    tune_gc()
    cli(prog_name="feeds")
