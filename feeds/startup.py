"""What a `feeds` command says before it starts: where its settings came from, the store, the
sources and the base URL, so that a command started in the wrong folder (no config found, a new
empty store) says so in its first line rather than serving nothing in silence."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path

import click

from feeds.config import Settings
from feeds.config_names import unknown_variables

log = logging.getLogger("feeds.cli")

NO_SOURCE = "no source configured: nothing is refreshed (add [[sources]] to the config file, or set FEEDS_SOURCES)"


def describe(settings: Settings, env: Mapping[str, str] | None = None) -> str:
    """One line: the config file (or none), the database, the sources, the base URL."""
    env = os.environ if env is None else env
    file = Path(settings.origin)
    config = str(file.resolve()) if file.is_file() else "none: defaults"
    if any(f"FEEDS_{name.upper()}" in env for name in [*_setting_names(), "sources"]):
        config += " and FEEDS_* variables"
    sources = ", ".join(f"{s.name} ({s.kind} {s.location})" for s in settings.sources) or "none"
    database = Path(settings.database).resolve()
    fresh = "" if database.exists() else " (new)"
    return f"config {config}; database {database}{fresh}; sources: {sources}; base URL {settings.base_url}"


def announce(command: str, settings: Settings, env: Mapping[str, str] | None = None) -> None:
    """The command's first log lines: what it runs with, then what in the environment is ignored."""
    env = os.environ if env is None else env
    log.info("%s: %s", command, describe(settings, env))
    for warning in unknown_variables(env, _setting_names()):
        log.warning("%s", warning)
    if command in ("serve", "refresh") and not settings.sources:
        log.warning("%s", NO_SOURCE)


def _setting_names() -> list[str]:
    from feeds import config

    return list(config._SETTINGS_TYPES)


def check_address(host: str, port: int) -> None:
    """An address that cannot be listened on (in use, not this machine's) is one line here, not
    uvicorn's error followed by a traceback of the scheduler it stops."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
