"""The times sources record (a commit's, an HTTP response's): timezone-aware UTC, whole seconds.
They decide whether to look again, and date a git deletion; an event's times come from its page."""

from __future__ import annotations

import datetime as dt
import re

from feeds.model import UTC, as_utc, utcnow

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAY = "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = f"(?P<month>{'|'.join(_MONTH_NAMES)})"
_TIME = r"(?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)"
# RFC 9110 5.6.7: the preferred IMF-fixdate and the two obsolete forms a recipient must accept.
_IMF_FIXDATE = re.compile(rf"{_DAY}, (?P<day>\d\d) {_MONTH} (?P<year>\d{{4}}) {_TIME} GMT")
_RFC850 = re.compile(rf"{_LONG_DAY}, (?P<day>\d\d)-{_MONTH}-(?P<year>\d\d) {_TIME} GMT")
_ASCTIME = re.compile(rf"{_DAY} {_MONTH} (?P<day>[ \d]\d) {_TIME} (?P<year>\d{{4}})")


def recorded(when: dt.datetime | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """`when` in UTC, cut to whole seconds, and `now` if it is later (a clock ahead, a forged
    date): a source can only say a document changed before it was collected."""
    if when is None:
        return None
    limit = (now or utcnow()).replace(microsecond=0)
    return min(as_utc(when).replace(microsecond=0), limit)


def from_timestamp(seconds: int) -> dt.datetime | None:
    """A Unix time in whole seconds (a git commit's), in UTC, as the record says it: not cut to the
    clock, so every copy of the record gives the same time whenever it is read. None when no date
    can hold it."""
    try:
        return dt.datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_http_date(value: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """An HTTP-date (RFC 9110 5.6.7: IMF-fixdate, rfc850-date or asctime-date), as `recorded`
    gives it; None when the value is none of them or names no real instant."""
    text = value.strip()
    match = _IMF_FIXDATE.fullmatch(text) or _RFC850.fullmatch(text) or _ASCTIME.fullmatch(text)
    if match is None:
        return None
    now = now or utcnow()
    year = int(match["year"])
    if len(match["year"]) == 2:
        # A two-digit year more than 50 years ahead is the latest past year with those digits.
        year += now.year - now.year % 100
        if year > now.year + 50:
            year -= 100
    # A leap second (60) is the last second of its minute: datetime has no 60.
    second = min(int(match["second"]), 59)
    try:
        when = dt.datetime(
            year, _MONTHS[match["month"]], int(match["day"]), int(match["hour"]), int(match["minute"]), second,
            tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        return None  # 31 Feb, 25:00 ...
    return recorded(when, now)
