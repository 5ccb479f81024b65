"""Cleaning: raw text → trimmed NFC strings, with placeholders (test@test.com, N/A,
0000000000) nulled and flagged.

Every function takes and returns pyarrow arrays of one length and never mutates its input.
A flag array is null where the cleaned value is null (the input was null or blank), true or
false elsewhere: "missing" is not "invalid".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

PlaceholderKind = Literal["email", "phone", "name", "text", "postcode"]

# Already clean: printable ASCII words separated by single spaces (most values).
CLEAN_TEXT = r"^[\x21-\x7e]+(?: [\x21-\x7e]+)*$"
# Invisible characters that copy and paste leave inside words: removed, not spaced.
_INVISIBLE = r"[\x{00AD}\x{200B}\x{2060}\x{FEFF}]"
# Any Unicode white space: ASCII controls \t\n\v\f\r, NEL, and the Z categories (NBSP, em
# space, line and paragraph separators, ...).
_SPACES = r"[\s\x0B\x{0085}\p{Z}]+"

# What people type into forms when they have nothing to say.
_COMMON = frozenset(
    {
        "n/a", "n.a.", "n.a", "n / a", "na", "#n/a", "none", "null", "nil", "nan",
        "undefined", "unknown", "unkown", "not available", "not applicable",
        "not provided", "not known", "no data", "tbd", "tba", "test", "testing",
        "asdf", "asd", "qwerty", "xxx", "xx", "x", "dummy", "fake", "sample",
        "-", "--", "---", ".", "..", "...", "?", "??", "???", "*", "0",
    }
)  # fmt: skip
PLACEHOLDERS: Mapping[PlaceholderKind, frozenset[str]] = {
    "email": _COMMON
    | {
        "test@test.com", "example@example.com", "test@example.com", "email@email.com",
        "noemail@noemail.com", "none@none.com", "no@email.com", "a@a.com", "x@x.com",
    },
    "phone": _COMMON | {"no phone", "nophone", "no number"},
    # "Na" is a Korean family name: only the slashed and dotted forms count for names.
    "name": (_COMMON - {"na"})
    | {
        "customer", "client", "guest", "user", "anonymous", "anon", "noname", "no name",
        "name", "first name", "firstname", "last name", "lastname", "test test",
        "test user", "unknown unknown",
    },
    "text": _COMMON | {"123 test st", "123 test street", "test street", "test address"},
    "postcode": _COMMON | {"00000", "99999", "xxxxx"},
}  # fmt: skip

# Patterns over the lower-cased value, beyond the exact sets above.
_EMAIL_LOCALS = (
    "test|testing|tester|noemail|no-email|no_email|no\\.email|nomail|no-mail|none|no|noone|"
    "nobody|null|unknown|noreply|no-reply|donotreply|do-not-reply|fake|asdf|qwerty|x+|a|"
    "dummy|example|sample|email"
)
_EMAIL_DOMAINS = (
    "(?:[^@]+\\.)?(?:example|test|invalid|localhost)|example\\.(?:com|net|org)|"
    "(?:test|testing|noemail|no-email|nomail|none|nowhere|fake|asdf|domain)\\.com"
)
PLACEHOLDER_PATTERNS: Mapping[PlaceholderKind, str] = {
    "email": f"^(?:{_EMAIL_LOCALS})@|@(?:{_EMAIL_DOMAINS})$",
    # Not a single letter (1-2-3, ?, digits only) or keyboard mashing.
    "name": r"^[^\p{L}]+$|^(?:x+|asdf\w*|qwert\w*)$",
    "text": r"^[^\p{L}\p{N}]+$",
    "postcode": r"^[^\p{L}\p{N}]+$|^(?:0+|9+|x+)$",
}
# Over a phone's digits: one digit repeated (0000000000, 999-999-9999), optionally after a
# country code of up to three digits (+1 000 000 0000), or the whole number a counting run
# (123456, 1234567890, +1 123 456 7890). A real number may hold a run: 0151 23456789.
PLACEHOLDER_PHONE_DIGITS = (
    r"^\d{0,3}(?:0{6,}|1{6,}|2{6,}|3{6,}|4{6,}|5{6,}|6{6,}|7{6,}|8{6,}|9{6,})$"
    r"|^(?:0+|1+|2+|3+|4+|5+|6+|7+|8+|9+)$|^[01]?1234567890?$|^9876543210?$|^0?123456$"
)


def clean_text(values: pa.Array) -> pa.StringArray:
    """Cast to string, Unicode NFC, drop invisible characters (soft hyphen, zero-width
    space, BOM), collapse runs of white space (NBSP and other Unicode spaces included) to
    one space, trim; empty → null."""
    text = pc.cast(values, pa.string())
    dirty = pc.invert(pc.fill_null(pc.match_substring_regex(text, CLEAN_TEXT), True))
    if not pc.any(dirty).as_py():
        return text
    # Only what is not already clean goes through the costly steps.
    fixed = pc.utf8_normalize(pc.filter(text, dirty), "NFC")
    fixed = pc.replace_substring_regex(fixed, _INVISIBLE, "")
    fixed = pc.utf8_trim(pc.replace_substring_regex(fixed, _SPACES, " "), " ")
    fixed = pc.if_else(pc.equal(fixed, ""), pa.scalar(None, pa.string()), fixed)
    return pc.replace_with_mask(text, dirty, fixed)


def null_placeholders(
    values: pa.Array, kind: PlaceholderKind
) -> tuple[pa.StringArray, pa.BooleanArray]:
    """Clean (as `clean_text`), then null the placeholder values of `kind`, matched
    case-insensitively; returns the values and which were placeholders."""
    text = clean_text(values)
    key = pc.utf8_lower(text)
    flag = pc.is_in(key, value_set=pa.array(sorted(PLACEHOLDERS[kind]), pa.string()))
    pattern = PLACEHOLDER_PATTERNS.get(kind)
    if pattern is not None:
        flag = pc.or_(flag, pc.match_substring_regex(key, pattern))
    if kind == "phone":
        digits = pc.replace_substring_regex(key, r"\D+", "")
        flag = pc.or_(flag, pc.match_substring_regex(digits, PLACEHOLDER_PHONE_DIGITS))
    flag = pc.if_else(pc.is_null(text), pa.scalar(None, pa.bool_()), flag)
    return pc.if_else(flag, pa.scalar(None, pa.string()), text), flag
