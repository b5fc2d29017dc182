"""BCP 47 language tags as settings give them (`language`, a source's `language`), checked and
put in their canonical case."""

from __future__ import annotations

import re

from feeds.errors import ConfigError

# BCP 47 as feeds use it: a language, then optionally a script, a region and variants
# (`zh`, `zh-Hant`, `zh-Hant-TW`, `en-US`, `de-CH-1996`).
_LANGUAGE_TAG = re.compile(
    r"^(?P<language>[A-Za-z]{2,3})(?:-(?P<script>[A-Za-z]{4}))?(?:-(?P<region>[A-Za-z]{2}|[0-9]{3}))?"
    r"(?P<variants>(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*)$"
)


def language_tag(key: str, value: str, origin: str) -> str:
    """A BCP 47 language tag in its canonical case (`zh-hant-tw` -> `zh-Hant-TW`), so two
    spellings of one language compare equal."""
    match = _LANGUAGE_TAG.match(value)
    if not match:
        raise ConfigError(key, f"must be a BCP 47 language tag such as en, zh or zh-Hant-TW, got {value!r}", origin)
    parts = [match["language"].lower()]
    if match["script"]:
        parts.append(match["script"].title())
    if match["region"]:
        parts.append(match["region"].upper())
    return "-".join(parts) + match["variants"].lower()
