"""Normalization: emails, phones (against phonenumbers itself), names, countries,
currencies, amounts, instants and dates."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from decimal import Decimal

import phonenumbers
import pyarrow as pa
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from phonenumbers.phonenumberutil import SUPPORTED_REGIONS

from opencdp.generate import mutations, phones
from opencdp.generate.locales import countries
from opencdp.transform import normalize
from opencdp.transform.normalize import (
    AMOUNT,
    LINE_TYPES,
    UTC_TIMESTAMP,
    normalize_countries,
    normalize_currencies,
    normalize_emails,
    normalize_names,
    normalize_phones,
    parse_phones,
    to_amounts,
    to_dates,
    to_utc_timestamps,
)


def strings(*values: str | None) -> pa.Array:
    return pa.array(values, pa.string())


# --- emails --------------------------------------------------------------------------------


def test_emails_are_trimmed_and_lower_cased_typos_kept() -> None:
    emails, invalid = normalize_emails(
        strings(" John.Smith12@Gmail.com\t", "JANE_DOE+shop@WEB.DE", "jonh.smith@gmial.com")
    )
    assert emails.to_pylist() == [
        "john.smith12@gmail.com",
        "jane_doe+shop@web.de",
        "jonh.smith@gmial.com",
    ]
    assert invalid.to_pylist() == [False, False, False]


@pytest.mark.parametrize(
    "value",
    [
        "john.smith",
        "john@@gmail.com",
        "john@smith@gmail.com",
        "john@localhost",
        "john smith@gmail.com",
        ".john@gmail.com",
        "john.@gmail.com",
        "jo..hn@gmail.com",
        "john@gmail..com",
        "john@-gmail.com",
        "john@gmx.d",  # a generator typo with a one-letter top-level domain
        "josé@exemple.fr",
        "a" * 65 + "@gmail.com",
    ],
)
def test_invalid_emails_are_nulled_and_flagged(value: str) -> None:
    emails, invalid = normalize_emails(strings(value))
    assert emails.to_pylist() == [None]
    assert invalid.to_pylist() == [True]


def test_every_generator_email_shape_is_valid() -> None:
    rng = random.Random(5)
    values = []
    for country in countries():
        for domain in country.email_domains.values:
            email = f"anne.o{rng.randrange(1000)}@{domain}"
            values += [email, mutations.email_case(rng, email), mutations.email_typo(rng, email)]
    emails, invalid = normalize_emails(strings(*values))
    ok = [e is not None for e in emails.to_pylist()]
    # Only a typo that breaks the syntax (gmx.d) is invalid.
    assert [v for v, good in zip(values, ok, strict=True) if not good] == [
        v for v in values if v.endswith("@gmx.d")
    ]
    assert all(e == e.lower() for e in emails.to_pylist() if e)
    assert invalid.to_pylist() == [not good for good in ok]


def test_missing_emails_are_not_invalid() -> None:
    emails, invalid = normalize_emails(strings(None, " ", ""))
    assert emails.to_pylist() == [None, None, None]
    assert invalid.to_pylist() == [None, None, None]
    assert normalize_emails(strings())[0].to_pylist() == []


# --- phones --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "country", "expected"),
    [
        ("+33 (0)6 55 99 99 49", "FR", "+33655999949"),
        ("+33 (0)6 55 99 99 49", "US", "+33655999949"),
        ("0172 - 19400783", "DE", "+4917219400783"),
        ("0172/19400783", "DE", "+4917219400783"),
        ("(415) 555-0100", "US", "+14155550100"),
        ("4155550100", "US", "+14155550100"),
        ("1-415-555-0100", "US", "+14155550100"),
        ("+1.415.555.0100", "GB", "+14155550100"),
        ("+4917232801617", "US", "+4917232801617"),
        ("4917232801617", "DE", "+494917232801617"),  # as phonenumbers reads it
        ("00 44 7400 123456", "GB", "+447400123456"),
        ("0044 7400 123456", "DE", "+447400123456"),
        ("011 44 7400 123456", "US", "+447400123456"),
        ("+44 (0)7400 123456", "GB", "+447400123456"),
        ("07400 123 456", "GB", "+447400123456"),
        ("06-12345678", "NL", "+31612345678"),
        ("612 34 56 78", "ES", "+34612345678"),
        ("(415) 555-0100 ext. 12", "US", "+14155550100"),
        ("+1 415 555 0100 x12", "US", "+14155550100"),
        ("416 555 0199", "CA", "+14165550199"),
        ("011 15 1234 5678", "AR", "+5491112345678"),
    ],
)
def test_phone_formats_become_e164(text: str, country: str, expected: str) -> None:
    e164, invalid = normalize_phones(strings(text), country)
    assert e164.to_pylist() == [expected]
    assert invalid.to_pylist() == [False]


@pytest.mark.parametrize(
    ("text", "country"),
    [
        ("0044 7400 123456", "US"),  # 00 is not the US international prefix
        ("0172 19400783", "US"),
        ("0172 19400783", None),  # a national number needs a country
        ("0172 19400783", "ZZ"),
        ("555-0100", "US"),
        ("12", "US"),
        ("+", "US"),
        ("+999 1234567", "US"),
        ("call me", "US"),
        ("0000000000", "US"),
    ],
)
def test_invalid_phones_are_nulled_and_flagged(text: str, country: str | None) -> None:
    e164, invalid = normalize_phones(strings(text), pa.array([country], pa.string()))
    assert e164.to_pylist() == [None]
    assert invalid.to_pylist() == [True]


def test_each_row_is_read_in_its_country_and_nulls_take_the_fallback() -> None:
    texts = strings("06 12 34 56 78", "06 12 34 56 78", "06 12 34 56 78", None, "")
    rows = pa.array(["FR", "nl", None, "FR", "FR"], pa.string())
    e164, invalid = normalize_phones(texts, rows, fallback="fr")
    assert e164.to_pylist() == ["+33612345678", "+31612345678", "+33612345678", None, None]
    assert invalid.to_pylist() == [False, False, False, None, None]
    without, _ = normalize_phones(texts, rows)
    assert without.to_pylist()[2] is None


def test_every_generator_phone_format_is_read_without_phonenumbers() -> None:
    rng = random.Random(11)
    texts, rows, expected = [], [], []
    for country in countries():
        spec = country.phone
        for index in range(200):
            nsn = spec.nsn(rng, index, 777)
            for template in (*spec.national, *spec.international):
                texts.append(phones.fill(template, nsn))
                rows.append(country.code)
                expected.append(phones.e164(spec, nsn))
            texts.append(spec.trunk + nsn)
            rows.append(country.code)
            expected.append(phones.e164(spec, nsn))
    before = normalize.parse_phone.cache_info().misses
    e164, invalid = normalize_phones(strings(*texts), pa.array(rows, pa.string()))
    assert e164.to_pylist() == expected
    assert not any(invalid.to_pylist())
    # The vectorized path settled them all: none reached the per-number fallback.
    assert normalize.parse_phone.cache_info().misses == before


# The reference: phonenumbers itself, called as the fallback calls it, without its cache.
_reference = normalize.parse_phone.__wrapped__


def test_parse_phones_agrees_with_phonenumbers_everywhere() -> None:
    """Example numbers of every region and type, altered and written in several ways, read
    with their own, another and no region: the same result as phonenumbers, row for row."""
    rng = random.Random(2024)
    regions = sorted(SUPPORTED_REGIONS)
    kinds = [k for k in LINE_TYPES if k != PhoneNumberType.UNKNOWN]
    texts: list[str] = []
    rows: list[str | None] = []
    for region in regions:
        for kind in kinds:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            nsn = list(phonenumbers.national_significant_number(example))
            nsn[rng.randrange(len(nsn))] = str(rng.randrange(10))
            if rng.random() < 0.2:
                nsn.append(str(rng.randrange(10)))
            digits = "".join(nsn)
            try:
                number = phonenumbers.parse(f"+{example.country_code}{digits}")
            except phonenumbers.NumberParseException:
                continue
            for form in (
                phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
                phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL),
                f"00{example.country_code} {digits}",
                f"{example.country_code}{digits}",
                digits,
            ):
                texts.append(form)
                rows.append(rng.choice((region, region, rng.choice(regions), None)))
    assert len(texts) > 5000
    found = parse_phones(strings(*texts), pa.array(rows, pa.string()))
    got = zip(
        found.e164.to_pylist(), found.country.to_pylist(), found.line_type.to_pylist(), strict=True
    )
    for text, region, (e164, country, kind) in zip(texts, rows, got, strict=True):
        expected = _reference(text, region)
        assert ((e164, country, kind) if e164 else None) == expected, (text, region)


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("SMITH", "Smith"),
        ("smith", "Smith"),
        ("VAN DER BERG", "van der Berg"),
        ("ludwig van beethoven", "Ludwig van Beethoven"),
        ("DE LA CRUZ", "de la Cruz"),
        ("LE", "Le"),
        ("VAN", "Van"),
        ("o'brien", "O'Brien"),
        ("O\u2019NEIL", "O\u2019Neil"),
        ("MCDONALD", "McDonald"),
        ("JEAN-LUC", "Jean-Luc"),
        ("anne-marie", "Anne-Marie"),
        ("ÉLODIE", "Élodie"),
        ("MÜLLER-LÜDENSCHEIDT", "Müller-Lüdenscheidt"),
        ("  JOHN  ", "John"),
        ("MacLeod", "MacLeod"),
        ("McDonald", "McDonald"),
        ("van der Berg", "van der Berg"),
        ("DeShawn", "DeShawn"),
        ("J", "J"),
    ],
)
def test_names(raw: str, expected: str) -> None:
    assert normalize_names(strings(raw)).to_pylist() == [expected]


def test_names_keep_nulls_and_blanks_out() -> None:
    assert normalize_names(strings(None, " ", "ANN")).to_pylist() == [None, None, "Ann"]
    assert normalize_names(strings()).to_pylist() == []


# --- countries and currencies --------------------------------------------------------------


def test_every_generator_country_spelling() -> None:
    values, expected = [], []
    for country in countries():
        for alias in (*country.aliases, country.name, country.code):
            values += [alias, alias.upper(), alias.lower()]
            expected += [country.code] * 3
    codes, invalid = normalize_countries(strings(*values))
    assert codes.to_pylist() == expected
    assert not any(invalid.to_pylist())


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("u.s.a.", "US"),
        ("U.K.", "GB"),
        ("the netherlands", "NL"),
        ("Espana", "ES"),
        ("DEU", "DE"),
        ("fra", "FR"),
        ("Italia", "IT"),
        ("Brasil", "BR"),
        ("Korea, Republic of", "KR"),
        ("Viet Nam", "VN"),
        ("Türkiye", "TR"),
        (" Schweiz ", "CH"),
    ],
)
def test_country_names_and_codes(raw: str, code: str) -> None:
    assert normalize_countries(strings(raw))[0].to_pylist() == [code]


def test_unknown_countries_are_invalid() -> None:
    codes, invalid = normalize_countries(strings("Atlantis", "XX", None, ""))
    assert codes.to_pylist() == [None, None, None, None]
    assert invalid.to_pylist() == [True, True, None, None]


def test_currencies() -> None:
    codes, invalid = normalize_currencies(strings("eur", " USD ", "Gbp", "XYZ", "€", None))
    assert codes.to_pylist() == ["EUR", "USD", "GBP", None, None, None]
    assert invalid.to_pylist() == [False, False, False, True, True, None]


# --- amounts -------------------------------------------------------------------------------


def test_decimal_strings_are_exact() -> None:
    values = strings("132.19", "49.99", "-5", "+0.5", "12.340000", "0.0001", "99999999999999.9999")
    amounts, invalid = to_amounts(values, pa.nulls(len(values), pa.string()))
    assert amounts.type == AMOUNT
    assert amounts.to_pylist() == [
        Decimal("132.19"),
        Decimal("49.99"),
        Decimal("-5"),
        Decimal("0.5"),
        Decimal("12.34"),
        Decimal("0.0001"),
        Decimal("99999999999999.9999"),
    ]
    assert not any(invalid.to_pylist())


def test_unparseable_amounts_are_invalid() -> None:
    values = strings("1.23456", "abc", "1,234.56", "1e3", "", None, "123456789012345")
    amounts, invalid = to_amounts(values, pa.nulls(len(values), pa.string()))
    assert amounts.to_pylist() == [None] * 7
    assert invalid.to_pylist() == [True, True, True, True, None, None, True]


def test_numbers_become_amounts() -> None:
    currencies = pa.nulls(3, pa.string())
    ints, _ = to_amounts(pa.array([5, -12, None]), currencies)
    assert ints.to_pylist() == [Decimal(5), Decimal(-12), None]
    floats, _ = to_amounts(pa.array([0.1 + 0.2, 12.3456, 1 / 3]), currencies)
    assert floats.to_pylist() == [Decimal("0.3"), Decimal("12.3456"), Decimal("0.3333")]


def test_minor_units_follow_each_currency() -> None:
    values = pa.array([11099, 11099, 500, 1234, 5, -250, 100, 100, 100])
    currencies = strings("eur", "USD", "jpy", "KWD", "gbp", "eur", "XXX", "ABC", None)
    amounts, invalid = to_amounts(values, currencies, minor_units=True)
    assert amounts.to_pylist() == [
        Decimal("110.99"),
        Decimal("110.99"),
        Decimal(500),
        Decimal("1.234"),
        Decimal("0.05"),
        Decimal("-2.5"),
        None,  # no minor unit
        None,  # not a currency
        None,
    ]
    assert invalid.to_pylist() == [False] * 6 + [True] * 3


def test_minor_units_from_strings() -> None:
    amounts, invalid = to_amounts(
        strings("11099", "11099.0", "110.99", None),
        strings("EUR", "EUR", "EUR", "EUR"),
        minor_units=True,
    )
    assert amounts.to_pylist() == [Decimal("110.99"), Decimal("110.99"), None, None]
    assert invalid.to_pylist() == [False, False, True, None]


# --- instants and dates --------------------------------------------------------------------


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_timestamps_of_every_source_format() -> None:
    stamps, invalid = to_utc_timestamps(
        strings(
            "2024-10-15T00:03:53-05:00",  # Shopify
            "2022-01-30T23:42:46.000Z",  # Salesforce
            "2024-03-05T15:11:12.345Z",  # Segment
            "2024-03-05 15:11:12+0100",
            "2024-03-05T15:11",  # naive: UTC
            "1988-03-03",  # a date: midnight UTC
            "1733213958",  # Stripe, as digits
            "2024-03-05T15:11:12.1234567Z",  # beyond microseconds: read by Python
            "20240305T151112Z",
        )
    )
    assert stamps.type == UTC_TIMESTAMP
    assert stamps.to_pylist() == [
        utc(2024, 10, 15, 5, 3, 53),
        utc(2022, 1, 30, 23, 42, 46),
        utc(2024, 3, 5, 15, 11, 12, 345000),
        utc(2024, 3, 5, 14, 11, 12),
        utc(2024, 3, 5, 15, 11),
        utc(1988, 3, 3),
        utc(2024, 12, 3, 8, 19, 18),
        utc(2024, 3, 5, 15, 11, 12, 123456),
        utc(2024, 3, 5, 15, 11, 12),
    ]
    assert not any(invalid.to_pylist())


def test_epoch_numbers() -> None:
    stamps, invalid = to_utc_timestamps(pa.array([1733213958, 0, None, 10**15]))
    assert stamps.to_pylist() == [utc(2024, 12, 3, 8, 19, 18), utc(1970, 1, 1), None, None]
    assert invalid.to_pylist() == [False, False, None, True]
    floats, _ = to_utc_timestamps(pa.array([1733213958.25]))
    assert floats.to_pylist() == [utc(2024, 12, 3, 8, 19, 18, 250000)]


def test_unreadable_timestamps_are_invalid_and_do_not_spoil_the_rest() -> None:
    good = [f"2024-01-{day:02d}T10:00:00Z" for day in range(1, 29)] * 1000
    values = [*good, "2024-02-30T10:00:00Z", "yesterday", "2024", "", None]
    stamps, invalid = to_utc_timestamps(strings(*values))
    flags = invalid.to_pylist()
    assert flags[: len(good)] == [False] * len(good)
    assert flags[len(good) :] == [True, True, True, None, None]
    assert stamps.to_pylist()[-5:] == [None] * 5
    assert stamps.to_pylist()[27] == utc(2024, 1, 28, 10)


def test_timestamp_and_date_inputs() -> None:
    zoned = pa.array([datetime(2024, 1, 1, 12, tzinfo=UTC)], pa.timestamp("s", "Europe/Paris"))
    assert to_utc_timestamps(zoned)[0].to_pylist() == [utc(2024, 1, 1, 12)]
    naive = pa.array([datetime(2024, 1, 1, 12)], pa.timestamp("ms"))
    assert to_utc_timestamps(naive)[0].to_pylist() == [utc(2024, 1, 1, 12)]
    days = pa.array([date(1988, 3, 3)], pa.date32())
    assert to_utc_timestamps(days)[0].to_pylist() == [utc(1988, 3, 3)]


def test_dates() -> None:
    days, invalid = to_dates(
        strings(
            "1988-03-03",
            "1988-03-03T23:00:00-05:00",  # the date as written, not in UTC
            "1988-02-30",
            "03/03/1988",  # not a format the sources use
            "19880303",
            None,
            " ",
        )
    )
    assert days.to_pylist() == [
        date(1988, 3, 3),
        date(1988, 3, 3),
        None,
        None,
        date(1988, 3, 3),
        None,
        None,
    ]
    assert invalid.to_pylist() == [False, False, True, True, False, None, None]
    stamps = pa.array([datetime(1988, 3, 3, 10)], pa.timestamp("us"))
    assert to_dates(stamps)[0].to_pylist() == [date(1988, 3, 3)]
