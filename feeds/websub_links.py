"""Where a feed's WebSub hub is (what documents and Link headers advertise): the configured
`websub_hub`, else this server's own hub at `/websub` when `websub` is on, else none."""

from __future__ import annotations

from feeds.config import Settings
from feeds.render import feed_url


def hub_url(settings: Settings) -> str:
    if settings.websub_hub:
        return settings.websub_hub
    return settings.base_url.rstrip("/") + "/websub" if settings.websub else ""


def link_header(settings: Settings, feed: str, fmt: str) -> str:
    """The HTTP Link header of a feed response: its hub and itself (WebSub section 4)."""
    hub = hub_url(settings)
    own = feed_url(settings.base_url, feed, fmt)
    return f'<{hub}>; rel="hub", <{own}>; rel="self"' if hub else ""
