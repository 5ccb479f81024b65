"""The companies people work for: the CRM's accounts and the domains of work emails.

A company is a pure function of (seed, index), so contacts can point at any of them without
the generator keeping a list in memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from opencdp.generate.locales import Country, Place, pick_country
from opencdp.generate.mutations import ascii_only
from opencdp.generate.rng import Picker, Purpose, between, rng_for

_SUFFIXES = {
    "US": ("Inc", "LLC", "Group", "Corp", "& Co"),
    "GB": ("Ltd", "PLC", "Group", "& Sons"),
    "DE": ("GmbH", "AG", "GmbH & Co. KG", "KG"),
    "FR": ("SA", "SARL", "SAS", "et Fils"),
    "ES": ("S.L.", "S.A.", "Grupo"),
    "NL": ("B.V.", "N.V.", "Groep"),
}
_TLDS = {"US": "com", "GB": "co.uk", "DE": "de", "FR": "fr", "ES": "es", "NL": "nl"}
_INDUSTRIES = Picker(
    ["Retail", "Technology", "Finance", "Healthcare", "Manufacturing", "Education",
     "Hospitality", "Media", "Consulting", "Transportation"],
)  # fmt: skip
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Company:
    index: int
    name: str
    domain: str
    industry: str
    employees: int
    country: Country
    street: str
    place: Place
    postcode: str
    created: int  # Unix seconds
    updated: int


@lru_cache(maxsize=8192)
def company(seed: int, index: int, start: int, end: int) -> Company:
    """Company `index` of the tenant; created between `start` and `end` (Unix seconds)."""
    rng = rng_for(seed, Purpose.ACCOUNT, index)
    country = pick_country(rng)
    a, b = country.last(rng), country.last(rng)
    roll = rng.random()
    if roll < 0.6:
        name = f"{a} {rng.choice(_SUFFIXES[country.code])}"
    elif roll < 0.85:
        name = f"{a}-{b}"
    else:
        name = f"{a}, {b} and {country.last(rng)}" if country.code in ("US", "GB") else f"{a} & {b}"
    slug = _SLUG.sub("-", ascii_only(f"{a} {b}" if roll >= 0.6 else a).lower()).strip("-")
    place = country.place(rng)
    created = between(rng, start, end)
    return Company(
        index=index,
        name=name,
        domain=f"{slug or 'company'}.{_TLDS[country.code]}",
        industry=_INDUSTRIES(rng),
        employees=int(10 ** rng.uniform(0.7, 4.5)),
        country=country,
        street=country.street(rng),
        place=place,
        postcode=country.postcode(rng, place),
        created=created,
        updated=between(rng, created, end),
    )
