"""The true people of a tenant, drawn household by household.

A `Person` is the truth the sources are rendered from: canonical names, both email
addresses, the phone, the current and (for people who moved) the previous address, the
sources the person appears in and where they have a duplicate record. Members of a household
share an address and usually a last name; some share one email address.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from opencdp.generate.companies import company
from opencdp.generate.config import SOURCES
from opencdp.generate.locales import Country, pick_country
from opencdp.generate.mutations import ascii_only
from opencdp.generate.rng import Purpose, below, between, rng_for, weighted_index
from opencdp.generate.timefmt import DAY
from opencdp.generate.world import World

# Sources where a person can have a second record of their own (events use devices instead).
DUPLICABLE = ("crm", "shopify", "stripe")
_HOUSEHOLD_SIZES = (0.58, 0.86, 0.95, 1.0)  # cumulative: 1, 2, 3 or 4 people
_YEAR = 365.25 * DAY
# Share of people with a job at one of the tenant's CRM accounts (work email, AccountId).
EMPLOYED = 0.35


class Address(NamedTuple):
    line1: str
    line2: str | None
    city: str
    region: str | None
    region_code: str | None
    postcode: str
    country: Country


class Person(NamedTuple):
    person_id: str
    ordinal: int  # 0, 1, 2, ... in the order people are drawn
    household: int
    country: Country
    female: bool
    first_name: str
    last_name: str
    birth: int  # Unix seconds, midnight UTC of the birthday
    email: str
    alt_email: str
    phone: str  # national significant number
    address: Address
    previous_address: Address | None
    account: int | None
    first_seen: int
    sources: tuple[str, ...]
    duplicates: tuple[str, ...]
    shared_email: bool


@dataclass(frozen=True, slots=True)
class Household:
    index: int
    members: tuple[Person, ...]
    # The stream that drew the household; rendering its records continues on it.
    rng: random.Random


def person_id(index: int) -> str:
    return f"P{index:08d}"


def plan_households(world: World) -> Iterator[Household]:
    """All people of the tenant, a household at a time, until `people` are drawn."""
    index, number = 0, 0
    people = world.config.people
    while index < people:
        rng = rng_for(world.seed, Purpose.HOUSEHOLD, number)
        size = min(weighted_index(rng, _HOUSEHOLD_SIZES) + 1, people - index)
        yield Household(number, _draw_household(world, rng, number, index, size), rng)
        index += size
        number += 1


def _draw_household(
    world: World, rng: random.Random, number: int, first_index: int, size: int
) -> tuple[Person, ...]:
    rates = world.config.rates
    country = pick_country(rng)
    address = _address(world, rng, country)
    previous = _address(world, rng, country) if rng.random() < rates.moved else None
    family_name = country.last(rng)
    share_email = size > 1 and rng.random() < rates.shared_email
    since = between(rng, world.start, world.end - 30 * DAY)
    members: list[Person] = []
    for k in range(size):
        index = first_index + k
        # Partners (the second member) are mostly of the other sex.
        female = members[0].female != (rng.random() < 0.85) if k == 1 else rng.random() < 0.5
        first = (country.female if female else country.male)(rng)
        last = family_name if k == 0 or rng.random() < 0.8 else country.last(rng)
        account = below(rng, world.accounts) if rng.random() < EMPLOYED else None
        own_email = _email(rng, first, last, index, country.email_domains(rng))
        email = members[0].email if share_email and k > 0 else own_email
        sources = _sources(world, rng)
        age = rng.uniform(18, 80) if k < 2 else rng.uniform(18, 30)
        members.append(
            Person(
                person_id=person_id(index),
                ordinal=index,
                household=number,
                country=country,
                female=female,
                first_name=first,
                last_name=last,
                birth=(world.end - int(age * _YEAR)) // DAY * DAY,
                email=email,
                alt_email=_alt_email(
                    world, rng, country, first, last, index, own_email, email, account
                ),
                phone=country.phone.nsn(rng, index, world.phone_offset),
                address=address,
                previous_address=previous,
                account=account,
                first_seen=min(world.end - DAY, since + below(rng, 180 * DAY)),
                sources=sources,
                duplicates=tuple(
                    s for s in sources if s in DUPLICABLE and rng.random() < rates.duplicate
                ),
                shared_email=share_email,
            )
        )
    return tuple(members)


def _sources(world: World, rng: random.Random) -> tuple[str, ...]:
    # The first source is drawn from P(first member = s | at least one), the rest freely:
    # exactly independent draws conditioned on "at least one", without rejection.
    membership = world.membership
    first = weighted_index(rng, membership.first_cum)
    chosen = [SOURCES[first]]
    for j in range(first + 1, len(SOURCES)):
        if rng.random() < membership.q[j]:
            chosen.append(SOURCES[j])
    return tuple(chosen)


def _address(world: World, rng: random.Random, country: Country) -> Address:
    place = world.places[country.code][weighted_index(rng, world.place_cum)]
    return Address(
        line1=country.street(rng),
        line2=country.line2(rng),
        city=place.city,
        region=place.region,
        region_code=place.region_code,
        postcode=country.postcode(rng, place),
        country=country,
    )


@lru_cache(maxsize=65_536)
def _slug(name: str) -> str:
    return "".join(ch for ch in ascii_only(name).lower() if ch.isalnum()) or "user"


def _email(rng: random.Random, first: str, last: str, index: int, domain: str) -> str:
    # Every pattern ends with the person's index: letters then exactly that number, so no
    # two people ever get the same address by chance (sharing one is a tracked variation).
    f, last_slug = _slug(first), _slug(last)
    roll = rng.random()
    if roll < 0.35:
        local = f"{f}.{last_slug}{index}"
    elif roll < 0.55:
        local = f"{f}{last_slug}{index}"
    elif roll < 0.7:
        local = f"{f[0]}{last_slug}{index}"
    elif roll < 0.8:
        local = f"{f}_{last_slug}{index}"
    elif roll < 0.9:
        local = f"{last_slug}.{f}{index}"
    else:
        local = f"{f}{index}"
    return f"{local}@{domain}"


def _alt_email(
    world: World,
    rng: random.Random,
    country: Country,
    first: str,
    last: str,
    index: int,
    own: str,
    primary: str,
    account: int | None,
) -> str:
    """A second address: at work for people with a job, else another mailbox or their own
    when the primary one is shared with the family."""
    if primary != own:
        return own
    if account is not None:
        domain = company(world.seed, account, world.start, world.end).domain
        return f"{_slug(first)}.{_slug(last)}{index}@{domain}"
    domain = own.rpartition("@")[2]
    other = country.email_domains(rng)
    if other == domain:
        other = "outlook.com" if domain != "outlook.com" else "gmail.com"
    return _email(rng, first, last, index, other)
