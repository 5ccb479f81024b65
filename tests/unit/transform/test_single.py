"""The one-value normalizers agree with the row stage on every kind of input."""

from __future__ import annotations

import pytest

from opencdp.transform.rows import normalize_values
from opencdp.transform.single import normalize_email, normalize_phone

EMAILS = [
    "jsmith@gmail.com",
    "JSmith@Gmail.COM",
    "  jsmith@gmail.com ",
    "j.smith+tag@mail.co.uk",
    "jsmith@gmail",
    "jsmith@@gmail.com",
    "@gmail.com",
    "test@test.com",
    "noreply@shop.com",
    "someone@example.com",
    "x" * 65 + "@gmail.com",
    "a" * 60 + "@" + "b" * 200 + ".com",
    "josé@gmail.com",
    "jsmith@gmail.com\u200b",
    "jsmith\u00a0@gmail.com",
    "N/A",
    "jsmith@xn--bcher-kva.de",
    "first last@gmail.com",
]

PHONES = [
    ("+1 (415) 555-0100", "US"),
    ("4155550100", "US"),
    ("(415) 555-0100", "US"),
    ("415.555.0100", "US"),
    ("+44 20 7946 0958", "US"),
    ("020 7946 0958", "GB"),
    ("020 7946 0958", "US"),
    ("06 55 99 99 49", "FR"),
    ("0000000000", "US"),
    ("+1 123 456 7890", "US"),
    ("n/a", "US"),
    ("555", "US"),
    ("+1 415 555 0100 ext. 12", "US"),
    ("\uff10\uff16 \uff15\uff15 \uff19\uff19 \uff19\uff19 \uff14\uff19", "FR"),  # full width
    ("+1\u00a0415\u00a0555\u00a00100", "US"),
    ("not a phone", "US"),
]


@pytest.mark.parametrize("value", EMAILS)
def test_email_as_the_row_stage(value: str) -> None:
    assert normalize_email(value) == normalize_values("email", [value], "US")[0].as_py()


@pytest.mark.parametrize(("value", "country"), PHONES)
def test_phone_as_the_row_stage(value: str, country: str) -> None:
    expected = normalize_values("phone", [value], country)[0].as_py()
    assert normalize_phone(value, country) == expected


def test_the_same_person_in_two_formats() -> None:
    assert normalize_phone("+1 (415) 555-0100", "US") == normalize_phone("4155550100", "US")
    assert normalize_phone("4155550100", "US") == "+14155550100"
    assert normalize_email(" JSmith@Gmail.com") == "jsmith@gmail.com"


WRITTEN = [
    "+1 (415) 555-0100", "(415) 555 0100 ext. 12", "0100", "555-0100", "+44 20 7946 0958",
    "0033655999949", "011 33 6 55 99 99 49", "1-800-FLOWERS", "+999 123", "12",
]  # fmt: skip


@pytest.mark.parametrize("country", ["US", "GB", "FR", "de"])
def test_phones_in_every_country_as_the_row_stage(country: str) -> None:
    expected = normalize_values("phone", WRITTEN, country.upper()).to_pylist()
    assert [normalize_phone(p, country) for p in WRITTEN] == expected
    assert any(expected)
