"""Names of settings as an operator types them: the closest known name to a misspelt key or
`FEEDS_*` variable, and the variables that name no setting (a typo there is otherwise ignored)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

# FEEDS_* variables that are not settings: read by the program itself or by its tests.
PROCESS_VARIABLES = frozenset(
    {
        "FEEDS_CONFIG",
        "FEEDS_SOURCES",
        "FEEDS_TRUSTED_PROXIES",
        "FEEDS_VERBOSE",
        "FEEDS_DEBUG_LIBRARIES",
        "FEEDS_START_FAILURE",
        "FEEDS_TEST_ARTIFACTS",
    }
)


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name most like `name` (difflib's ratio, at least 0.6), or None."""
    found = difflib.get_close_matches(name, list(known), n=1)
    return found[0] if found else None


def unknown_key(name: str, known: Iterable[str]) -> str:
    """The reason given for a key that is no setting: the closest one, not the whole list."""
    near = closest(name, known)
    return f"unknown key; did you mean {near!r}?" if near else "unknown key (README.md lists the settings)"


def unknown_variables(env: Mapping[str, str], settings: Iterable[str]) -> list[str]:
    """One warning per `FEEDS_*` variable that names no setting, with the closest variable that does."""
    known = {f"FEEDS_{s.upper()}" for s in settings} | PROCESS_VARIABLES
    out = []
    for variable in sorted(v for v in env if v.startswith("FEEDS_") and v not in known):
        # Compared without the prefix every one shares, which would make any two look alike.
        near = closest(variable.removeprefix("FEEDS_"), [k.removeprefix("FEEDS_") for k in known])
        hint = f"; did you mean FEEDS_{near}?" if near else ""
        out.append(f"environment: {variable} names no setting and is ignored{hint}")
    return out


def named(key: str, env: Mapping[str, str], origin: str) -> tuple[str, str]:
    """(name, where) of a setting's value for an error: its variable when the environment set it
    (there may be no file at all), else its key in the file."""
    variable = f"FEEDS_{key.upper()}"
    return (variable, "environment") if variable in env else (key, origin)
