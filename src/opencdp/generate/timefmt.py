"""Timestamps as each source writes them. Times are carried as integer Unix seconds (or
milliseconds for events) and formatted only when a record is rendered."""

from __future__ import annotations

import time
from functools import lru_cache

DAY = 86_400
# Formatting is on the hot path (every record has a few timestamps): days are cached, the
# time of day is assembled from precomputed pieces instead of calling strftime.
_HOUR_MINUTE = tuple(f"{h:02d}:{m:02d}" for h in range(24) for m in range(60))
_TWO_DIGITS = tuple(f"{n:02d}" for n in range(60))
_MILLIS = tuple(f"{n:03d}" for n in range(1000))


@lru_cache(maxsize=16_384)
def _day(days: int) -> str:
    t = time.gmtime(days * DAY)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"


def _stamp(seconds: int) -> str:
    days, rest = divmod(seconds, DAY)
    minutes, secs = divmod(rest, 60)
    return f"{_day(days)}T{_HOUR_MINUTE[minutes]}:{_TWO_DIGITS[secs]}"


def iso_date(seconds: int) -> str:
    """YYYY-MM-DD (birthdates)."""
    return _day(seconds // DAY)


def salesforce(seconds: int) -> str:
    """Salesforce datetime fields: UTC with milliseconds, 2024-03-05T15:11:12.000Z."""
    return f"{_stamp(seconds)}.000Z"


def shopify(seconds: int, offset_minutes: int) -> str:
    """Shopify's shop-local time with its UTC offset, 2024-03-05T10:11:12-05:00."""
    return _stamp(seconds + offset_minutes * 60) + _offset(offset_minutes)


@lru_cache(maxsize=64)
def _offset(minutes: int) -> str:
    hours, rest = divmod(abs(minutes), 60)
    return f"{'-' if minutes < 0 else '+'}{hours:02d}:{rest:02d}"


def segment(millis: int) -> str:
    """Segment's ISO-8601 UTC timestamps with milliseconds, 2024-03-05T15:11:12.345Z."""
    seconds, ms = divmod(millis, 1000)
    return f"{_stamp(seconds)}.{_MILLIS[ms]}Z"


def segment_pair(millis: int, later: int) -> tuple[str, str]:
    """segment(millis), segment(millis + later): an event's timestamp and sentAt, sharing
    the formatting of the second they usually fall in."""
    first = segment(millis)
    ms = millis % 1000 + later
    if ms < 1000:
        return first, f"{first[:20]}{_MILLIS[ms]}Z"
    return first, segment(millis + later)
