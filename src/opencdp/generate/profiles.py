"""One source's view of a person: the truth, with the variations this record got.

A `Profile` is what a profile record (CRM contact, Shopify customer, Stripe customer,
Segment identify) says about its person. `draw_profile` decides each record-level variation
kind in a fixed order and notes which kinds could apply (eligible) and which did (applied),
so that the ground truth and the manifest can report them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from opencdp.generate import mutations
from opencdp.generate.nicknames import NICKNAMES
from opencdp.generate.people import Address, Person
from opencdp.generate.phones import e164, written
from opencdp.generate.rng import below, weighted_index
from opencdp.generate.variations import Rates

_MISSING_FIELDS = ("phone", "address", "birthdate", "email", "first_name")
_MISSING_CUM = (0.35, 0.6, 0.8, 0.9, 1.0)


@dataclass(slots=True)
class Profile:
    """Built and finished by `draw_profile`; renderers only read it."""

    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None  # as written in this record
    phone_e164: str | None  # the real number in E.164, None if missing or a placeholder
    address: Address | None
    birth: int | None  # Unix seconds
    applied: tuple[str, ...] = ()
    eligible: tuple[str, ...] = ()


class _Draw:
    """Rolls each kind once, remembering which could apply and which did."""

    __slots__ = ("applied", "eligible", "rng")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.applied: list[str] = []
        self.eligible: list[str] = []

    def __call__(self, kind: str, rate: float) -> bool:
        self.eligible.append(kind)
        if self.rng.random() < rate:
            self.applied.append(kind)
            return True
        return False


def draw_profile(person: Person, rng: random.Random, rates: Rates) -> Profile:
    roll = _Draw(rng)
    first, last = person.first_name, person.last_name
    address = person.address
    if person.previous_address is not None and roll("stale_address", rates.stale_address):
        address = person.previous_address
    email = person.alt_email if roll("alt_email", rates.alt_email) else person.email
    if roll("email_typo", rates.email_typo):
        email = mutations.email_typo(rng, email)
    first, last = _vary_names(roll, rng, rates, first, last)
    if not f"{first}{last}{address.line1}{address.city}".isascii() and roll(
        "ascii_fold", rates.ascii_fold
    ):
        first, last = mutations.fold_accents(rng, first), mutations.fold_accents(rng, last)
        address = address._replace(
            line1=mutations.fold_accents(rng, address.line1),
            city=mutations.fold_accents(rng, address.city),
        )
    if roll("case", rates.case):
        first, last, email, address = _recase(rng, first, last, email, address)
    if roll("whitespace", rates.whitespace):
        first, last, email, address = _pad(rng, first, last, email, address)
    spec = person.country.phone
    phone_e164 = e164(spec, person.phone)
    phone = written(spec, person.phone, rng) if roll("phone_format", rates.phone_format) else None
    profile = Profile(first, last, email, phone or phone_e164, phone_e164, address, person.birth)
    if roll("placeholder", rates.placeholder):
        _placeholder(rng, profile)
    if roll("missing", rates.missing):
        for _ in range(1 if rng.random() < 0.7 else 2):
            _blank(profile, _MISSING_FIELDS[weighted_index(rng, _MISSING_CUM)])
    profile.applied, profile.eligible = tuple(roll.applied), tuple(roll.eligible)
    return profile


def _vary_names(
    roll: _Draw, rng: random.Random, rates: Rates, first: str, last: str
) -> tuple[str, str]:
    nicks = NICKNAMES.get(first)
    if nicks and roll("nickname", rates.nickname):
        first = nicks[below(rng, len(nicks))]
    if roll("name_swap", rates.name_swap):
        first, last = last, first
    if roll("name_typo", rates.name_typo):
        if rng.random() < 0.5:
            first = mutations.typo(rng, first)
        else:
            last = mutations.typo(rng, last)
    return first, last


def _placeholder(rng: random.Random, profile: Profile) -> None:
    which = rng.random()
    if which < 0.4:
        profile.email = _pick(rng, mutations.PLACEHOLDER_EMAILS)
    elif which < 0.7:
        profile.phone, profile.phone_e164 = _pick(rng, mutations.PLACEHOLDER_PHONES), None
    elif which < 0.9 or profile.address is None:
        profile.first_name = _pick(rng, mutations.PLACEHOLDER_NAMES)
    else:
        street = _pick(rng, mutations.PLACEHOLDER_STREETS)
        profile.address = profile.address._replace(line1=street)


def _blank(profile: Profile, field: str) -> None:
    if field == "phone":
        profile.phone = profile.phone_e164 = None
    elif field == "address":
        profile.address = None
    elif field == "birthdate":
        profile.birth = None
    elif field == "email":
        profile.email = None
    else:
        profile.first_name = None


def _pick(rng: random.Random, values: tuple[str, ...]) -> str:
    return values[below(rng, len(values))]


def _recase(
    rng: random.Random, first: str, last: str, email: str, address: Address
) -> tuple[str, str, str, Address]:
    roll = rng.random()
    if roll < 0.3:
        return first, last, mutations.email_case(rng, email), address
    if roll < 0.5:
        return first, last, email, address._replace(city=mutations.change_case(rng, address.city))
    if roll < 0.75:
        return mutations.change_case(rng, first), last, email, address
    return first, mutations.change_case(rng, last), email, address


def _pad(
    rng: random.Random, first: str, last: str, email: str, address: Address
) -> tuple[str, str, str, Address]:
    roll = rng.random()
    if roll < 0.2:
        return first, last, mutations.add_whitespace(rng, email), address
    if roll < 0.4:
        line1 = mutations.add_whitespace(rng, address.line1)
        return first, last, email, address._replace(line1=line1)
    if roll < 0.7:
        return mutations.add_whitespace(rng, first), last, email, address
    return first, mutations.add_whitespace(rng, last), email, address
