"""Validators and content coding, as pure functions (RFC 9110)."""

from __future__ import annotations

import datetime as dt

import pytest

from feeds.app import HTTPError, cache_control, feed_name
from feeds.conditional import choose_encoding, etag_header, http_date, is_not_modified
from feeds.config import Settings

T = dt.datetime(2023, 2, 6, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "identity"),
        ("", "identity"),
        ("gzip", "gzip"),
        ("br", "br"),
        ("gzip, br", "br"),
        ("gzip;q=1.0, br;q=0.5", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("br;q=0, gzip;q=0", "identity"),
        ("*", "br"),
        ("*;q=0.1, gzip;q=0.5", "gzip"),
        ("identity;q=1, gzip;q=0.9", "identity"),
        ("deflate", "identity"),
        ("GZIP", "gzip"),
        ("gzip;q=bogus, br;q=0.2", "br"),
    ],
)
def test_choose_encoding_honours_q_values(header: str | None, expected: str) -> None:
    assert choose_encoding(header) == expected


def test_each_representation_has_its_own_strong_etag() -> None:
    assert etag_header("abc", "identity") == '"abc"'
    assert etag_header("abc", "gzip") == '"abc-gz"'
    assert etag_header("abc", "br") == '"abc-br"'


@pytest.mark.parametrize(
    ("inm", "ims", "expected"),
    [
        ('"abc"', None, True),
        ('W/"abc"', None, True),
        ('"x", "abc"', None, True),
        ("*", None, True),
        ('"x"', http_date(T), False),  # If-None-Match present: If-Modified-Since is ignored
        (None, http_date(T), True),
        (None, http_date(T + dt.timedelta(seconds=5)), True),
        (None, http_date(T - dt.timedelta(seconds=1)), False),
        (None, "not a date", False),
        (None, None, False),
    ],
)
def test_is_not_modified(inm: str | None, ims: str | None, expected: bool) -> None:
    assert is_not_modified(inm, ims, '"abc"', T) is expected


def test_http_date_is_gmt() -> None:
    assert http_date(T) == "Mon, 06 Feb 2023 12:00:00 GMT"


def test_settled_days_get_a_long_max_age() -> None:
    settings = Settings(
        cache_max_age=300, archive_max_age=86400, settle_days=2, cache_stale_while_revalidate=0, cache_stale_if_error=0
    )
    today = dt.date(2023, 2, 10)
    assert cache_control(settings, "dates/2023-02-01", today) == "public, max-age=86400"
    assert cache_control(settings, "dates/2023-02-08", today) == "public, max-age=300"
    assert cache_control(settings, "dates/2023-02-10", today) == "public, max-age=300"
    assert cache_control(settings, "latest", today) == "public, max-age=300"
    assert cache_control(settings, "topics/isil/pages/2", today) == "public, max-age=300"


def test_caches_in_front_may_serve_stale_copies_while_revalidating_and_while_the_origin_fails() -> None:
    """RFC 5861: what deploy/nginx and deploy/varnish read from the origin."""
    settings = Settings(cache_max_age=300, cache_stale_while_revalidate=60, cache_stale_if_error=86400)
    expected = "public, max-age=300, stale-while-revalidate=60, stale-if-error=86400"
    assert cache_control(settings, "latest", dt.date(2023, 2, 10)) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("latest.rss", ("latest", "rss")),
        ("dates/2017-09-28.atom", ("dates/2017-09-28", "atom")),
        ("topics/isil.json", ("topics/isil", "json")),
        ("topics/isil/pages/2.atom", ("topics/isil/pages/2", "atom")),
    ],
)
def test_feed_names(path: str, expected: tuple[str, str]) -> None:
    assert feed_name(path) == expected


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("latest.html", 400),
        ("dates/2017-9-28.atom", 400),
        ("dates/2017-02-29.atom", 400),
        ("topics/ISIL.atom", 404),
        ("topics/isil/pages/0.atom", 400),
        ("topics/isil/pages/x.atom", 400),
        ("other/x.atom", 404),
    ],
)
def test_bad_feed_names(path: str, status: int) -> None:
    with pytest.raises(HTTPError) as info:
        feed_name(path)
    assert info.value.status == status
