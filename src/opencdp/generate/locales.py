"""The countries people come from, built once from Faker's locale lists.

Faker is slow per call, so it is not called per field: its provider lists (names with their
weights, street suffixes, cities, regions) are read once and sampled with our own seeded
`random.Random`. A country also knows how its addresses, postcodes and phones are written.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from typing import Any

from opencdp.generate import phones
from opencdp.generate.phones import PhoneSpec
from opencdp.generate.rng import Picker, below, between, weighted_index


@dataclass(frozen=True, slots=True)
class Place:
    """A town of the tenant's world: people who live there share its region and postcode stem."""

    city: str
    region: str | None
    region_code: str | None
    stem: str  # US ZIP, GB outward code, NL digits, first digits elsewhere


@dataclass(frozen=True, slots=True)
class Country:
    code: str  # ISO 3166-1 alpha-2
    name: str
    aliases: tuple[str, ...]  # how free-text country fields spell it (CRM exports)
    locale: str
    currency: str
    weight: float
    female: Picker
    male: Picker
    last: Picker
    email_domains: Picker
    phone: PhoneSpec
    street: Callable[[random.Random], str]
    line2: Callable[[random.Random], str | None]
    place: Callable[[random.Random], Place]
    postcode: Callable[[random.Random, Place], str]


def _names(values: Any) -> Picker:
    """A Picker over a Faker list, weighted when Faker gives weights (an OrderedDict)."""
    if isinstance(values, dict):
        return Picker(list(values), list(values.values()))
    return Picker(list(values))


def _digits(rng: random.Random, n: int) -> str:
    return f"{below(rng, 10**n):0{n}d}"


def _letters(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(alphabet[int(rng.random() * len(alphabet))] for _ in range(n))


def _maybe(rng: random.Random, p: float, make: Callable[[], str]) -> str | None:
    return make() if rng.random() < p else None


def _us() -> Country:
    from faker.providers.address.en_US import Provider as Address
    from faker.providers.person.en_US import Provider as Person

    female, male, last = (
        _names(Person.first_names_female),
        _names(Person.first_names_male),
        _names(Person.last_names),
    )
    first_any = _names(Person.first_names)
    suffixes, prefixes = Picker(Address.street_suffixes), Picker(Address.city_prefixes)
    city_suffixes = Picker(Address.city_suffixes)
    states = [(abbr, name) for abbr, name in zip(Address.states_abbr, Address.states, strict=False)]

    def street(rng: random.Random) -> str:
        name = first_any(rng) if rng.random() < 0.4 else last(rng)
        return f"{between(rng, 1, 9999)} {name} {suffixes(rng)}"

    def city(rng: random.Random) -> str:
        roll = rng.random()
        if roll < 0.25:
            return f"{prefixes(rng)} {first_any(rng)}{city_suffixes(rng)}"
        if roll < 0.5:
            return f"{prefixes(rng)} {first_any(rng)}"
        if roll < 0.75:
            return f"{first_any(rng)}{city_suffixes(rng)}"
        return f"{last(rng)}{city_suffixes(rng)}"

    def place(rng: random.Random) -> Place:
        abbr, name = states[int(rng.random() * len(states))]
        lo, hi = Address.states_postcode[abbr]
        return Place(city(rng), name, abbr, f"{between(rng, lo, max(lo, hi - 20)):05d}")

    return Country(
        code="US",
        name="United States",
        aliases=("United States", "USA", "US", "United States of America", "U.S."),
        locale="en-US",
        currency="USD",
        weight=0.45,
        female=female,
        male=male,
        last=last,
        email_domains=Picker(
            [
                "gmail.com",
                "yahoo.com",
                "hotmail.com",
                "outlook.com",
                "icloud.com",
                "aol.com",
                "comcast.net",
            ],
            [45, 15, 8, 10, 10, 5, 7],
        ),
        phone=phones.US,
        street=street,
        line2=lambda rng: _maybe(
            rng, 0.2, lambda: f"{'Apt.' if rng.random() < 0.7 else 'Suite'} {between(rng, 1, 999)}"
        ),
        place=place,
        postcode=lambda rng, p: f"{int(p.stem) + below(rng, 20):05d}",
    )


def _gb() -> Country:
    from faker.providers.address.en_GB import Provider as Address
    from faker.providers.person.en_GB import Provider as Person

    last = _names(Person.last_names)
    first_any = _names(Person.first_names)
    suffixes, prefixes = Picker(Address.street_suffixes), Picker(Address.city_prefixes)
    city_suffixes, counties = Picker(Address.city_suffixes), Picker(Address.counties)
    zones = Picker(Address.POSTAL_ZONES)

    def city(rng: random.Random) -> str:
        if rng.random() < 0.5:
            return f"{last(rng)}{city_suffixes(rng)}"
        return f"{prefixes(rng)} {first_any(rng)}{city_suffixes(rng)}"

    def place(rng: random.Random) -> Place:
        return Place(city(rng), counties(rng), None, f"{zones(rng)}{between(rng, 1, 20)}")

    return Country(
        code="GB",
        name="United Kingdom",
        aliases=("United Kingdom", "UK", "GB", "Great Britain", "England"),
        locale="en-GB",
        currency="GBP",
        weight=0.15,
        female=_names(Person.first_names_female),
        male=_names(Person.first_names_male),
        last=last,
        email_domains=Picker(
            [
                "gmail.com",
                "hotmail.co.uk",
                "yahoo.co.uk",
                "outlook.com",
                "btinternet.com",
                "icloud.com",
                "sky.com",
            ],
            [40, 15, 10, 12, 8, 10, 5],
        ),
        phone=phones.GB,
        street=lambda rng: (
            f"{between(rng, 1, 250)} "
            f"{first_any(rng) if rng.random() < 0.3 else last(rng)} {suffixes(rng)}"
        ),
        line2=lambda rng: _maybe(rng, 0.15, lambda: f"Flat {between(rng, 1, 40)}"),
        place=place,
        postcode=lambda rng, p: (
            f"{p.stem} {between(rng, 1, 9)}{_letters(rng, 'ABDEFGHJLNPQRSTUWXYZ', 2)}"
        ),
    )


def _de() -> Country:
    from faker.providers.address.de_DE import Provider as Address
    from faker.providers.person.de_DE import Provider as Person

    last, cities = _names(Person.last_names), Picker(Address.cities)
    suffixes = Picker(
        ["straße", "str.", "weg", "platz", "gasse", "ring", "allee"], [50, 15, 15, 6, 5, 5, 4]
    )

    return Country(
        code="DE",
        name="Germany",
        aliases=("Germany", "Deutschland", "DE", "GER"),
        locale="de-DE",
        currency="EUR",
        weight=0.12,
        female=_names(Person.first_names_female),
        male=_names(Person.first_names_male),
        last=last,
        email_domains=Picker(
            ["gmail.com", "web.de", "gmx.de", "t-online.de", "outlook.de"], [30, 25, 25, 12, 8]
        ),
        phone=phones.DE,
        street=lambda rng: f"{last(rng)}{suffixes(rng)} {between(rng, 1, 180)}",
        line2=lambda rng: None,
        place=lambda rng: Place(cities(rng), None, None, f"{between(rng, 1, 99):02d}"),
        postcode=lambda rng, p: f"{p.stem}{_digits(rng, 3)}",
    )


def _fr() -> Country:
    from faker.providers.address.fr_FR import Provider as Address
    from faker.providers.person.fr_FR import Provider as Person

    last, first_any = _names(Person.last_names), _names(Person.first_names)
    street_prefixes = Picker(
        ["rue", "avenue", "boulevard", "chemin", "place", "impasse", "allée"],
        [50, 18, 10, 8, 6, 4, 4],
    )
    city_prefixes, city_suffixes = Picker(Address.city_prefixes), Picker(Address.city_suffixes)
    departments = Address.departments

    def street(rng: random.Random) -> str:
        roll = rng.random()
        name = last(rng) if roll < 0.5 else f"{first_any(rng)} {last(rng)}"
        sep = ", " if rng.random() < 0.5 else " "
        return f"{between(rng, 1, 120)}{sep}{street_prefixes(rng)} {name}"

    def place(rng: random.Random) -> Place:
        code, _ = departments[int(rng.random() * len(departments))]
        roll = rng.random()
        if roll < 0.6:
            city = last(rng)
        elif roll < 0.8:
            city = f"{city_prefixes(rng)}-{first_any(rng)}"
        else:
            city = f"{last(rng)}{city_suffixes(rng)}"
        return Place(city, None, None, "20" if code in ("2A", "2B") else code)

    return Country(
        code="FR",
        name="France",
        aliases=("France", "FR", "FRA", "République française"),
        locale="fr-FR",
        currency="EUR",
        weight=0.1,
        female=_names(Person.first_names_female),
        male=_names(Person.first_names_male),
        last=last,
        email_domains=Picker(
            ["gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr", "sfr.fr"],
            [40, 20, 12, 10, 12, 6],
        ),
        phone=phones.FR,
        street=street,
        line2=lambda rng: _maybe(rng, 0.1, lambda: f"Appartement {between(rng, 1, 60)}"),
        place=place,
        postcode=lambda rng, p: f"{p.stem}{_digits(rng, 3)}",
    )


def _es() -> Country:
    from faker.providers.address.es_ES import Provider as Address
    from faker.providers.person.es_ES import Provider as Person

    last, first_any = _names(Person.last_names), _names(Person.first_names)
    prefixes = Picker(
        ["Calle", "Avenida", "Plaza", "Paseo", "Camino", "Ronda", "Rambla"], [55, 18, 8, 7, 5, 4, 3]
    )
    provinces = Address.states

    def place(rng: random.Random) -> Place:
        i = int(rng.random() * len(provinces))
        return Place(provinces[i], provinces[i], None, f"{i + 1:02d}")

    return Country(
        code="ES",
        name="Spain",
        aliases=("Spain", "España", "ES", "ESP"),
        locale="es-ES",
        currency="EUR",
        weight=0.1,
        female=_names(Person.first_names_female),
        male=_names(Person.first_names_male),
        last=last,
        email_domains=Picker(
            ["gmail.com", "hotmail.es", "yahoo.es", "outlook.es", "telefonica.net"],
            [50, 20, 10, 10, 10],
        ),
        phone=phones.ES,
        street=lambda rng: f"{prefixes(rng)} {first_any(rng)} {last(rng)}, {between(rng, 1, 150)}",
        line2=lambda rng: _maybe(
            rng, 0.35, lambda: f"Piso {between(rng, 1, 9)}, puerta {rng.choice('ABCD')}"
        ),
        place=place,
        postcode=lambda rng, p: f"{p.stem}{_digits(rng, 3)}",
    )


def _nl() -> Country:
    from faker.providers.address.nl_NL import Provider as Address
    from faker.providers.person.nl_NL import Provider as Person

    first_any, cities = _names(Person.first_names), Picker(Address.cities)
    suffixes = Picker(Address.street_suffixes)

    return Country(
        code="NL",
        name="Netherlands",
        aliases=("Netherlands", "The Netherlands", "Nederland", "NL", "Holland"),
        locale="nl-NL",
        currency="EUR",
        weight=0.08,
        female=_names(Person.first_names_female),
        male=_names(Person.first_names_male),
        last=_names(Person.last_names),
        email_domains=Picker(
            ["gmail.com", "hotmail.nl", "ziggo.nl", "kpnmail.nl", "outlook.com", "live.nl"],
            [40, 15, 15, 12, 12, 6],
        ),
        phone=phones.NL,
        street=lambda rng: f"{first_any(rng)}{suffixes(rng)} {between(rng, 1, 200)}",
        line2=lambda rng: None,
        place=lambda rng: Place(cities(rng), None, None, str(between(rng, 1000, 9999))),
        postcode=lambda rng, p: f"{p.stem} {_letters(rng, 'ABCEGHJKLMNPRTVWXZ', 2)}",
    )


@cache
def countries() -> tuple[Country, ...]:
    """Every country, in a fixed order (the order is part of what makes output reproducible)."""
    return (_us(), _gb(), _de(), _fr(), _es(), _nl())


@cache
def _country_cum() -> tuple[float, ...]:
    return tuple(accumulate(c.weight for c in countries()))


def pick_country(rng: random.Random) -> Country:
    return countries()[weighted_index(rng, _country_cum())]
