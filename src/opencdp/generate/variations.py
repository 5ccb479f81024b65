"""The kinds of variation the generator puts between the records of one person, and their rates.

Each kind has a unit, the thing its rate is a probability of:
- record: one profile record (CRM contact, Shopify customer, Stripe customer, Segment
  identify), among the records where the kind can apply (a nickname needs a first name that
  has one, an accent needs a letter to drop it from, a stale address needs a person who moved);
- person / household: decided once per person, or once per household of two or more;
- person_source: decided once per (person, source) for the CRM, Shopify and Stripe.
The ground truth lists the kinds applied to each record, and the manifest counts, for every
kind, the units where it could apply (eligible) and where it did (applied).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

from opencdp.errors import ConfigError

Unit = Literal["record", "person", "household", "person_source"]


@dataclass(frozen=True, slots=True)
class Rates:
    """The probability of each kind of variation per eligible unit."""

    duplicate: float = 0.04  # a second record of the person in the same source
    shared_email: float = 0.3  # a household of 2+ uses one email address
    moved: float = 0.12  # the person moved: an older address exists
    stale_address: float = 0.5  # a record of a person who moved has the older address
    alt_email: float = 0.1  # the record has the person's other (second) email
    email_typo: float = 0.03  # a typo in the email (jonh.smith@, @gmial.com)
    nickname: float = 0.3  # first name as a nickname (Robert -> Bob)
    name_swap: float = 0.01  # first and last name swapped
    name_typo: float = 0.04  # a typo in the first or last name
    ascii_fold: float = 0.3  # accents dropped or transliterated (Müller -> Mueller)
    case: float = 0.1  # a name, email or city in other case (SMITH, John.Smith@Gmail.com)
    whitespace: float = 0.05  # stray spaces around or inside a value
    phone_format: float = 0.6  # the phone is not written in E.164
    missing: float = 0.15  # one or two fields left empty
    placeholder: float = 0.02  # a test or placeholder value (test@test.com, N/A, 0000000000)


UNITS: dict[str, Unit] = {
    "duplicate": "person_source",
    "shared_email": "household",
    "moved": "person",
    **dict.fromkeys(
        (
            "stale_address",
            "alt_email",
            "email_typo",
            "nickname",
            "name_swap",
            "name_typo",
            "ascii_fold",
            "case",
            "whitespace",
            "phone_format",
            "missing",
            "placeholder",
        ),
        "record",
    ),
}

KINDS: tuple[str, ...] = tuple(f.name for f in fields(Rates))


def parse_rates(text: str | None, base: Rates | None = None) -> Rates:
    """'nickname=0.5,missing=0' -> Rates; kinds not named keep their default."""
    rates = base or Rates()
    if not text or not text.strip():
        return rates
    values = parse_assignments(text, KINDS, what="variation rate")
    return replace(rates, **values)


def parse_assignments(text: str, allowed: tuple[str, ...], *, what: str) -> dict[str, float]:
    """Parse 'a=0.1,b=0.2' into probabilities, with an error that lists the allowed names."""
    values: dict[str, float] = {}
    for part in text.split(","):
        name, sep, raw = part.strip().partition("=")
        name = name.strip()
        hint = f"write name=probability pairs separated by commas; names: {', '.join(allowed)}"
        if not sep or not name:
            raise ConfigError(f"invalid {what} {part.strip()!r}", hint=hint)
        if name not in allowed:
            raise ConfigError(f"unknown {what} name {name!r}", hint=hint)
        if name in values:
            raise ConfigError(f"{what} {name!r} is given twice", hint=hint)
        try:
            value = float(raw)
        except ValueError as e:
            raise ConfigError(f"{what} {name}={raw.strip()!r} is not a number", hint=hint) from e
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{what} {name}={value} is not between 0 and 1", hint=hint)
        values[name] = value
    return values
