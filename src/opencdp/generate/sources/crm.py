"""A CRM export in Salesforce's shape: Contact and Account rows under their API field names.

As in a real export, text is free-form: MailingStreet holds both street lines separated by a
newline, states are written as codes or names, countries in several spellings.
"""

from __future__ import annotations

import random

from opencdp.generate import timefmt
from opencdp.generate.companies import Company
from opencdp.generate.ids import salesforce_id
from opencdp.generate.people import Address, Person
from opencdp.generate.profiles import Profile

CONTACT_COLUMNS = (
    "Id",
    "FirstName",
    "LastName",
    "Email",
    "Phone",
    "MobilePhone",
    "AccountId",
    "MailingStreet",
    "MailingCity",
    "MailingState",
    "MailingPostalCode",
    "MailingCountry",
    "Birthdate",
    "LeadSource",
    "CreatedDate",
    "LastModifiedDate",
)
ACCOUNT_COLUMNS = (
    "Id",
    "Name",
    "Website",
    "Phone",
    "Industry",
    "NumberOfEmployees",
    "BillingStreet",
    "BillingCity",
    "BillingState",
    "BillingPostalCode",
    "BillingCountry",
    "CreatedDate",
    "LastModifiedDate",
)
_LEAD_SOURCES = ("Web", "Web", "Phone Inquiry", "Partner Referral", "Trade Show", "Other", "")


def account_id(index: int) -> str:
    return salesforce_id("001", index + 1)


def account_row(company: Company) -> list[str]:
    place = company.place
    return [
        account_id(company.index),
        company.name,
        f"www.{company.domain}",
        "",
        company.industry,
        str(company.employees),
        company.street,
        place.city,
        place.region_code or place.region or "",
        company.postcode,
        company.country.name,
        timefmt.salesforce(company.created),
        timefmt.salesforce(company.updated),
    ]


def contact_row(
    person: Person,
    profile: Profile,
    contact_id: str,
    created: int,
    updated: int,
    rng: random.Random,
) -> list[str]:
    phone = profile.phone or ""
    mobile = rng.random() < 0.6
    street, city, state, postcode, country = _mailing(profile.address, rng)
    return [
        contact_id,
        profile.first_name or "",
        profile.last_name or "",
        profile.email or "",
        "" if mobile else phone,
        phone if mobile else "",
        account_id(person.account) if person.account is not None else "",
        street,
        city,
        state,
        postcode,
        country,
        timefmt.iso_date(profile.birth) if profile.birth is not None else "",
        _LEAD_SOURCES[int(rng.random() * len(_LEAD_SOURCES))],
        timefmt.salesforce(created),
        timefmt.salesforce(updated),
    ]


def _mailing(address: Address | None, rng: random.Random) -> tuple[str, str, str, str, str]:
    if address is None:
        return "", "", "", "", ""
    street = f"{address.line1}\n{address.line2}" if address.line2 else address.line1
    state = address.region or ""
    if address.region_code and rng.random() < 0.7:
        state = address.region_code
    aliases = address.country.aliases
    return street, address.city, state, address.postcode, aliases[int(rng.random() * len(aliases))]
