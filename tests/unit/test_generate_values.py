"""The generator's building blocks: phones, string variations, ids and timestamps."""

from __future__ import annotations

import random
import re
import time

import phonenumbers
import pytest

from opencdp.generate import mutations, phones, timefmt
from opencdp.generate.ids import Counters, salesforce_id, stripe_id
from opencdp.generate.locales import countries
from opencdp.generate.rng import base62, uuid4

SPECS = [(c.code, c.phone) for c in countries()]


@pytest.mark.parametrize(("region", "spec"), SPECS)
def test_every_written_form_of_a_phone_is_the_same_valid_number(
    region: str, spec: phones.PhoneSpec
) -> None:
    rng = random.Random(7)
    for index in range(0, 400_000, 997):
        nsn = spec.nsn(rng, index, offset=12345)
        expected = phones.e164(spec, nsn)
        forms = [expected, spec.trunk + nsn, *(phones.fill(t, nsn) for t in spec.national)]
        forms += [phones.fill(t, nsn) for t in spec.international]
        forms += [phones.written(spec, nsn, rng) for _ in range(5)]
        for form in forms:
            number = phonenumbers.parse(form, region)
            assert phonenumbers.is_valid_number(number), (form, region)
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            assert e164 == expected, form


@pytest.mark.parametrize(("region", "spec"), SPECS)
def test_phones_never_repeat_across_people(region: str, spec: phones.PhoneSpec) -> None:
    rng = random.Random(region)
    numbers = {spec.nsn(rng, index, offset=99) for index in range(50_000)}
    assert len(numbers) == 50_000


def test_typos_change_letters_only() -> None:
    rng = random.Random(1)
    for word in ("Elizabeth", "Li", "Anne-Marie", "O'Neil"):
        for _ in range(200):
            changed = mutations.typo(rng, word)
            assert changed != word
            assert abs(len(changed) - len(word)) <= 1


def test_email_typos_keep_the_digits_that_make_an_address_unique() -> None:
    rng = random.Random(2)
    for _ in range(500):
        email = "john.smith1234@gmail.com"
        changed = mutations.email_typo(rng, email)
        assert changed != email
        assert re.sub(r"\D", "", changed.split("@")[0]) == "1234"


def test_case_and_whitespace_always_change_the_value() -> None:
    rng = random.Random(3)
    for value in ("Smith", "SMITH", "smith", "Mary Ann"):
        assert mutations.change_case(rng, value) != value
        padded = mutations.add_whitespace(rng, value)
        assert padded != value
        assert padded.strip().replace("  ", " ") == value
    assert mutations.email_case(rng, "ann.lee1@gmail.com").lower() == "ann.lee1@gmail.com"


def test_accent_folding() -> None:
    assert mutations.ascii_only("Müller Straße") == "Muller Strasse"
    assert mutations.ascii_only("José Peña") == "Jose Pena"
    rng = random.Random(4)
    folds = {mutations.fold_accents(rng, "Müller") for _ in range(50)}
    assert folds == {"Muller", "Mueller"}


def test_salesforce_ids_carry_their_case_checksum() -> None:
    assert salesforce_id("003", 1) == "0038d0000000001AAA"
    ident = salesforce_id("001", 61)  # base 62: 61 -> 'z'
    assert len(ident) == 18
    assert ident[:15] == "0018d000000000z"
    # Upper-case letters in the first 15 characters set bits of the suffix.
    assert salesforce_id("003", 10)[15:] == "AAQ"  # 'A' is 5th of chunk 3: bit 4, 16 -> 'Q'


def test_ids_of_each_source() -> None:
    rng = random.Random(5)
    assert re.fullmatch(r"cus_[0-9A-Za-z]{14}", stripe_id(rng, "cus", 14))
    assert re.fullmatch(r"ch_[0-9A-Za-z]{24}", stripe_id(rng, "ch"))
    uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert re.fullmatch(uuid, uuid4(rng))
    assert base62(62, 3) == "010"
    counters = Counters()
    ids = [counters.shopify("customer", rng) for _ in range(1000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 1000
    assert [counters.order_number() for _ in range(3)] == [1001, 1002, 1003]


@pytest.mark.parametrize("seconds", [0, 1, 59, 86_399, 1_735_630_515, -1_000_000_000])
def test_timestamps_match_the_standard_library(seconds: int) -> None:
    utc = time.gmtime(seconds)
    assert timefmt.salesforce(seconds) == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", utc)
    assert timefmt.iso_date(seconds) == time.strftime("%Y-%m-%d", utc)
    assert timefmt.segment(seconds * 1000 + 7) == time.strftime("%Y-%m-%dT%H:%M:%S.007Z", utc)
    for later in (0, 20, 993, 1_999):
        pair = timefmt.segment_pair(seconds * 1000 + 7, later)
        assert pair == (
            timefmt.segment(seconds * 1000 + 7),
            timefmt.segment(seconds * 1000 + 7 + later),
        )
    local = time.gmtime(seconds - 5 * 3600)
    assert timefmt.shopify(seconds, -300) == time.strftime("%Y-%m-%dT%H:%M:%S-05:00", local)
