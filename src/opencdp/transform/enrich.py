"""Enrichment: facts derived from normalized values, row by row: an email's domain and
whether it is a free or a disposable mailbox, a phone's country and line type, and the
person's time zone.

Every function takes and returns pyarrow arrays of one length, null in → null out.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from disposable_email_domains import blocklist
from phonenumbers import PhoneNumberType
from phonenumbers.tzdata import TIMEZONE_DATA

from opencdp.transform.normalize import parse_phones, per_distinct

# Providers with a domain per country: yahoo.fr, hotmail.co.uk, outlook.com.br, gmx.at, ...
_FREE_FAMILIES = re.compile(
    r"(?:yahoo|hotmail|outlook|live|gmx|aol|yandex)\.(?:[a-z]{2,3}|co\.[a-z]{2}|com\.[a-z]{2})"
)
# The most populous zone where zone.tab lists another first (it orders zones by geography).
_MAIN_ZONES = {
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "PS": "Asia/Hebron",
    "RU": "Europe/Moscow",
    "UA": "Europe/Kyiv",
    "UZ": "Asia/Tashkent",
}
_UNKNOWN_ZONE = "Etc/Unknown"
_GEOGRAPHIC = pa.array(["fixed_line", "fixed_line_or_mobile"], pa.string())
_NULL_STRING = pa.scalar(None, pa.string())


def email_domains(emails: pa.Array) -> pa.StringArray:
    """The part after the @ of normalized emails (null without exactly one @)."""
    text = pc.cast(emails, pa.string())
    return pc.struct_field(pc.extract_regex(text, r"^[^@]*@(?P<domain>[^@]+)$"), "domain")


@cache
def _free_domains() -> frozenset[str]:
    text = resources.files("opencdp.transform").joinpath("data", "free_mail_domains.txt")
    lines = (line.strip() for line in text.read_text(encoding="utf-8").splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


def _is_free(domain: str) -> bool:
    return domain in _free_domains() or _FREE_FAMILIES.fullmatch(domain) is not None


def is_free_mail(domains: pa.Array) -> pa.BooleanArray:
    """Whether each domain is a consumer mailbox (webmail or ISP mail: the curated
    data/free_mail_domains.txt and the yahoo.*, hotmail.*, outlook.*, live.*, gmx.*, aol.*,
    yandex.* families) rather than a company's own domain."""
    return per_distinct(pc.utf8_lower(pc.cast(domains, pa.string())), _is_free, pa.bool_())


def _is_disposable(domain: str) -> bool:
    # Throwaway services also hand out subdomains (x.33mail.com): check the parents too.
    labels = domain.split(".")
    return any(".".join(labels[i:]) in blocklist for i in range(len(labels) - 1))


def is_disposable(domains: pa.Array) -> pa.BooleanArray:
    """Whether each domain (or a parent domain) is a throwaway mailbox service, from the
    disposable-email-domains project's list."""
    return per_distinct(pc.utf8_lower(pc.cast(domains, pa.string())), _is_disposable, pa.bool_())


def phone_facts(e164: pa.Array) -> tuple[pa.StringArray, pa.StringArray]:
    """The ISO alpha-2 region and the line type (mobile, fixed_line, fixed_line_or_mobile,
    toll_free, premium_rate, shared_cost, voip, personal_number, pager, uan, voicemail) of
    E.164 numbers; null for numbers that are not valid."""
    numbers = parse_phones(e164)
    return numbers.country, numbers.line_type


@cache
def country_zones() -> dict[str, str]:
    """One IANA zone per country: the first zone.tab (tzdata) lists, or the most populous."""
    table = resources.files("tzdata").joinpath("zoneinfo", "zone.tab")
    zones: dict[str, str] = {}
    for line in table.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            country, _, zone = line.split("\t")[:3]
            zones.setdefault(country, zone)
    return {**zones, **_MAIN_ZONES}


def _pick_zone(zones: tuple[str, ...], region: str | None) -> str | None:
    """The one zone, or among several the region's own (else the first, deterministic)."""
    if zones == (_UNKNOWN_ZONE,):
        return None
    if len(zones) == 1:
        return zones[0]
    home = country_zones().get(region or "")
    return home if home in zones else zones[0]


@cache
def _prefixes(length: int) -> pa.Array:
    """phonenumbers' time-zone prefixes of one length."""
    return pa.array(sorted(k for k in TIMEZONE_DATA if len(k) == length), pa.string())


def _longest_prefix(digits: pa.Array) -> pa.StringArray:
    """The longest time-zone prefix of each digit string (phonenumbers' lookup order)."""
    found = pa.nulls(len(digits), pa.string())
    lengths = sorted({len(k) for k in TIMEZONE_DATA}, reverse=True)
    for length in lengths:
        head = pc.utf8_slice_codeunits(digits, 0, length)
        hit = pc.and_(pc.is_null(found), pc.is_in(head, value_set=_prefixes(length)))
        found = pc.if_else(hit, head, found)
    return found


def _region_facts(region: str) -> dict[str, object]:
    """The zone of the region's numbers without an area (by country code, picked for the
    region) and whether its mobile numbers have areas."""
    code = phonenumbers.country_code_for_region(region)
    digits = str(code)
    prefix = next(
        (digits[:n] for n in range(len(digits), 0, -1) if digits[:n] in TIMEZONE_DATA), None
    )
    zones = TIMEZONE_DATA[prefix] if prefix else (_UNKNOWN_ZONE,)
    return {
        "country_zone": _pick_zone(zones, region),
        "geo_mobile": phonenumbers.is_number_type_geographical(PhoneNumberType.MOBILE, code),
    }


_REGION_FACTS = pa.struct([("country_zone", pa.string()), ("geo_mobile", pa.bool_())])


def _phone_zones(e164: pa.Array) -> pa.StringArray:
    """phonenumbers.timezone.time_zones_for_number, one zone picked per number."""
    numbers = parse_phones(e164)
    facts = per_distinct(numbers.country, _region_facts, _REGION_FACTS)
    kind = numbers.line_type
    geographic = pc.or_(
        pc.is_in(kind, value_set=_GEOGRAPHIC),
        pc.and_(pc.equal(kind, "mobile"), pc.struct_field(facts, "geo_mobile")),
    )
    geographic = pc.fill_null(geographic, False)
    # Numbers with an area (fixed lines, mobiles in some countries): by their longest prefix.
    digits = pc.utf8_slice_codeunits(numbers.e164.filter(geographic), 1)
    regions = numbers.country.filter(geographic)
    prefix = _longest_prefix(digits)
    keyed = pc.binary_join_element_wise(prefix, pc.fill_null(regions, ""), "|")
    local = per_distinct(keyed, _zone_of_key, pa.string())
    country_level = pc.if_else(geographic, _NULL_STRING, pc.struct_field(facts, "country_zone"))
    return pc.replace_with_mask(country_level, geographic, local)


def _zone_of_key(key: str) -> str | None:
    prefix, _, region = key.partition("|")
    return _pick_zone(TIMEZONE_DATA[prefix], region or None)


def timezones(phone_e164: pa.Array, country: pa.Array) -> pa.StringArray:
    """An IANA time zone per person: from the phone number's area as phonenumbers maps it
    (among several, the zone of the number's country when it is one of them, else the
    first), else from the country (ISO alpha-2) by `country_zones`, else null."""
    home = per_distinct(
        pc.utf8_upper(pc.cast(country, pa.string())), country_zones().get, pa.string()
    )
    return pc.coalesce(_phone_zones(phone_e164), home)
