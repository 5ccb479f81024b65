"""Enrichment: email domains, free and disposable mailboxes, phone facts, time zones."""

from __future__ import annotations

import random
from zoneinfo import ZoneInfo

import phonenumbers
import pyarrow as pa
import pytest
from phonenumbers.timezone import time_zones_for_number

from opencdp.generate import mutations
from opencdp.generate.companies import company
from opencdp.generate.locales import countries
from opencdp.transform.enrich import (
    country_zones,
    email_domains,
    is_disposable,
    is_free_mail,
    phone_facts,
    timezones,
)


def strings(*values: str | None) -> pa.Array:
    return pa.array(values, pa.string())


def test_email_domains() -> None:
    emails = strings("anne@gmail.com", "bob.o@mail.acme.co.uk", None, "no-at-sign", "a@b@c.com")
    assert email_domains(emails).to_pylist() == ["gmail.com", "mail.acme.co.uk", None, None, None]


def test_every_generator_mailbox_is_free_mail() -> None:
    domains = sorted({d for c in countries() for d in c.email_domains.values})
    assert len(domains) > 20
    assert is_free_mail(strings(*domains)).to_pylist() == [True] * len(domains)


def test_company_and_typo_domains_are_not_free_mail() -> None:
    work = [company(7, index, 0, 10**9).domain for index in range(50)]
    rng = random.Random(1)
    typos = {mutations.email_typo(rng, "anne@gmail.com").partition("@")[2] for _ in range(200)}
    typos -= {"gmail.com"}
    assert typos
    assert not any(is_free_mail(strings(*work, *sorted(typos))).to_pylist())


@pytest.mark.parametrize(
    ("domain", "free"),
    [
        ("yahoo.fr", True),
        ("hotmail.com.br", True),
        ("GMX.at", True),
        ("outlook.co.jp", True),
        ("proton.me", True),
        ("mail.ru", True),
        ("acme.com", False),
        ("yahoo.acme.com", False),
        (None, None),
    ],
)
def test_free_mail(domain: str | None, free: bool | None) -> None:
    assert is_free_mail(strings(domain)).to_pylist() == [free]


@pytest.mark.parametrize(
    ("domain", "disposable"),
    [
        ("mailinator.com", True),
        ("yopmail.com", True),
        ("guerrillamail.com", True),
        ("inbox.mailinator.com", True),  # a subdomain of a throwaway service
        ("gmail.com", False),
        ("web.de", False),
        ("acme.com", False),
        ("com", False),
        (None, None),
    ],
)
def test_disposable(domain: str | None, disposable: bool | None) -> None:
    assert is_disposable(strings(domain)).to_pylist() == [disposable]


def test_phone_facts() -> None:
    numbers = strings(
        "+14155550100",
        "+18005550199",
        "+18765550199",
        "+14165550199",
        "+447400123456",
        "+442071234567",
        "+4917232801617",
        "+33655999949",
        "+1555",
        None,
    )
    country, line_type = phone_facts(numbers)
    assert country.to_pylist() == ["US", "US", "JM", "CA", "GB", "GB", "DE", "FR", None, None]
    assert line_type.to_pylist() == [
        "fixed_line_or_mobile",
        "toll_free",
        "mobile",
        "fixed_line_or_mobile",
        "mobile",
        "fixed_line",
        "mobile",
        "mobile",
        None,
        None,
    ]


def test_timezones_from_the_phone() -> None:
    numbers = strings(
        "+14155550100",  # San Francisco
        "+12125550100",  # New York
        "+18005550199",  # toll free: every NANP zone; the country's own is picked
        "+18765550199",  # Jamaica, on +1 too
        "+447400123456",  # a UK mobile: London, Guernsey, Isle of Man, Jersey
        "+34612345678",  # Madrid or the Canaries
        "+4917232801617",
        "+61412345678",  # an Australian mobile: every Australian zone
    )
    zones = timezones(numbers, pa.nulls(len(numbers), pa.string()))
    assert zones.to_pylist() == [
        "America/Los_Angeles",
        "America/New_York",
        "America/New_York",
        "America/Jamaica",
        "Europe/London",
        "Europe/Madrid",
        "Europe/Berlin",
        "Australia/Sydney",
    ]


def test_timezones_fall_back_to_the_country() -> None:
    numbers = strings(None, "+1555", None, None, "+33655999949", None)
    country = strings("DE", "br", None, "XX", "US", "NL")
    assert timezones(numbers, country).to_pylist() == [
        "Europe/Berlin",
        "America/Sao_Paulo",
        None,
        None,
        "Europe/Paris",  # the phone wins over the address
        "Europe/Amsterdam",
    ]


def test_phone_zones_are_among_phonenumbers_zones() -> None:
    rng = random.Random(9)
    samples = []
    for region in ("US", "CA", "GB", "DE", "FR", "ES", "NL", "AU", "BR", "MX", "RU", "IN"):
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
            example = phonenumbers.example_number_for_type(region, kind)
            assert example is not None
            samples.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    samples += [
        f"+1{rng.choice((212, 305, 415, 512, 617, 702, 808, 907))}555{rng.randrange(10**4):04d}"
        for _ in range(50)
    ]
    zones = timezones(strings(*samples), pa.nulls(len(samples), pa.string())).to_pylist()
    for number, zone in zip(samples, zones, strict=True):
        assert zone in time_zones_for_number(phonenumbers.parse(number)), number


def test_country_zones() -> None:
    zones = country_zones()
    assert zones["US"] == "America/New_York"
    assert zones["GB"] == "Europe/London"
    assert zones["NL"] == "Europe/Amsterdam"
    assert zones["AU"] == "Australia/Sydney"
    assert zones["RU"] == "Europe/Moscow"
    assert len(zones) > 240
    for zone in set(zones.values()):
        ZoneInfo(zone)
