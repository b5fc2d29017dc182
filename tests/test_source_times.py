"""The times sources record: HTTP-dates (RFC 9110 5.6.7, never later than now), and git commit
times as recorded, UTC in whole seconds."""

from __future__ import annotations

import datetime as dt

import pytest

from feeds.sources.times import from_timestamp, parse_http_date, recorded

NOW = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
NOV_1994 = dt.datetime(1994, 11, 6, 8, 49, 37, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sun, 06 Nov 1994 08:49:37 GMT", NOV_1994),  # IMF-fixdate
        ("Sunday, 06-Nov-94 08:49:37 GMT", NOV_1994),  # rfc850-date
        ("Sun Nov  6 08:49:37 1994", NOV_1994),  # asctime-date
        ("  Sun, 06 Nov 1994 08:49:37 GMT ", NOV_1994),
        ("Tuesday, 01-Jan-30 00:00:00 GMT", NOW),  # 2030: not 50 years ahead, so ahead of now
        ("Saturday, 01-Jan-77 00:00:00 GMT", dt.datetime(1977, 1, 1, tzinfo=dt.UTC)),  # 2077 is > 50 years ahead
        ("Wed, 31 Dec 2025 23:59:60 GMT", dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=dt.UTC)),  # leap second
        ("Thu, 01 Jan 2099 00:00:00 GMT", NOW),
    ],
)
def test_http_dates_in_every_form_a_recipient_must_accept(value: str, expected: dt.datetime) -> None:
    assert parse_http_date(value, NOW) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "yesterday",
        "Sun, 06 Nov 1994 08:49:37 UTC",  # only GMT
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 6 Nov 1994 08:49:37 GMT",  # IMF-fixdate days have two digits
        "sun, 06 nov 1994 08:49:37 gmt",  # the names are case-sensitive
        "Sun, 30 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "1994-11-06T08:49:37Z",
        "784111777",
    ],
)
def test_what_is_no_http_date_gives_no_time(value: str) -> None:
    assert parse_http_date(value, NOW) is None


def test_recorded_times_are_utc_whole_seconds_and_never_ahead_of_now() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert recorded(dt.datetime(2020, 5, 6, 9, 0, 0, 999_999, tzinfo=plus_two), NOW) == dt.datetime(
        2020, 5, 6, 7, 0, 0, tzinfo=dt.UTC
    )
    assert recorded(NOW + dt.timedelta(seconds=1), NOW) == NOW
    assert recorded(None, NOW) is None


def test_a_commit_time_is_what_the_record_says_whenever_it_is_read() -> None:
    """Not cut to the clock: two clones read at different times date a deletion alike."""
    assert from_timestamp(784111777) == NOV_1994
    assert from_timestamp(-1) == dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    assert from_timestamp(4_102_444_800) == dt.datetime(2100, 1, 1, tzinfo=dt.UTC)  # ahead of any clock here
    assert from_timestamp(10**15) is None and from_timestamp(-(10**15)) is None  # no datetime holds them
