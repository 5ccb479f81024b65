"""One identifier normalized as the row stage normalizes it, fast enough for every API request.

The row stage works on Arrow arrays: its regular expressions are compiled on every call,
which costs half a millisecond for a single value. Here the same patterns, compiled once
with Python's `re`, settle the common case (a value of printable ASCII) in microseconds;
anything else goes through the row stage itself. tests/unit/transform/test_single.py checks
that both give the same answers.
"""

from __future__ import annotations

import re
from functools import lru_cache

from opencdp.transform import clean, normalize
from opencdp.transform.rows import normalize_values

_CLEAN = re.compile(clean.CLEAN_TEXT)
_EMAIL = re.compile(normalize.EMAIL_PATTERN)
_EMAIL_PLACEHOLDER = re.compile(clean.PLACEHOLDER_PATTERNS["email"])
_PHONE_PLACEHOLDER = re.compile(clean.PLACEHOLDER_PHONE_DIGITS)
_NON_DIGITS = re.compile(r"\D+")


def normalize_email(value: str) -> str | None:
    """The address as the pipeline stores it, or None when it would store none (invalid
    syntax, a placeholder)."""
    if not _CLEAN.match(value):
        return _reference("email", value, "US")
    email = value.lower()
    if email in clean.PLACEHOLDERS["email"] or _EMAIL_PLACEHOLDER.search(email):
        return None
    too_long = len(email) > normalize.MAX_EMAIL or email.find("@") > normalize.MAX_EMAIL_LOCAL
    if too_long or not _EMAIL.match(email):
        return None
    return email


def normalize_phone(value: str, default_country: str) -> str | None:
    """The number in E.164 as the pipeline stores it, read in `default_country` unless it is
    written internationally; None when it is not a valid number or is a placeholder."""
    default_country = default_country.upper()
    if not _CLEAN.match(value):
        return _reference("phone", value, default_country)
    key = value.lower()
    if key in clean.PLACEHOLDERS["phone"] or _PHONE_PLACEHOLDER.search(_NON_DIGITS.sub("", key)):
        return None
    parsed = normalize.parse_phone(value, default_country)
    return parsed[0] if parsed else None


@lru_cache(maxsize=4096)
def _reference(kind: str, value: str, default_country: str) -> str | None:
    result = normalize_values(kind, [value], default_country)[0].as_py()  # type: ignore[arg-type]
    return result if isinstance(result, str) else None
