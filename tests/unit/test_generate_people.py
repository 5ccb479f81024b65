"""The planned people of a tenant: how many, in which sources, and what they share."""

from __future__ import annotations

import math
from collections import Counter
from itertools import combinations

import pytest

from opencdp.generate import DEFAULT_MIX, SOURCES, GenerateConfig
from opencdp.generate.config import Membership
from opencdp.generate.people import Person, plan_households
from opencdp.generate.world import build_world

N = 20_000


def plan(**kwargs: object) -> list[list[Person]]:
    args: dict[str, object] = {"tenant": "acme", "people": N, "seed": 11, **kwargs}
    world = build_world(GenerateConfig(**args))  # type: ignore[arg-type]
    return [list(h.members) for h in plan_households(world)]


@pytest.fixture(scope="module")
def households() -> list[list[Person]]:
    return plan()


def within(observed: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """`observed` is a plausible draw of Binomial(n, p)."""
    return abs(observed - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


def test_exactly_the_people_asked_for(households: list[list[Person]]) -> None:
    people = [p for h in households for p in h]
    assert len(people) == N
    assert [p.ordinal for p in people] == list(range(N))
    assert len({p.person_id for p in people}) == N
    assert all(1 <= len(h) <= 4 for h in households)


@pytest.mark.parametrize(
    "mix",
    [DEFAULT_MIX, {"crm": 0.9, "shopify": 0.3, "stripe": 0.1, "events": 0.2}],
)
def test_sources_and_overlaps_follow_the_mix(mix: dict[str, float]) -> None:
    people = [p for h in plan(mix=mix) for p in h]
    membership = Membership.from_mix(mix)
    assert all(p.sources for p in people), "everyone is in at least one source"
    single = Counter(s for p in people for s in p.sources)
    pairs = Counter(pair for p in people for pair in combinations(p.sources, 2))
    for source in SOURCES:
        assert within(single[source], N, mix[source]), (source, single[source])
    for a, b in combinations(range(len(SOURCES)), 2):
        share = membership.expected_share((a, b))
        observed = pairs[SOURCES[a], SOURCES[b]]
        assert within(observed, N, share), (SOURCES[a], SOURCES[b], observed, N * share)


def test_a_source_at_zero_holds_nobody() -> None:
    mix = {**DEFAULT_MIX, "stripe": 0.0}
    assert not any("stripe" in p.sources for h in plan(mix=mix, people=2000) for p in h)


def test_emails_are_only_shared_within_households_that_share_one(
    households: list[list[Person]],
) -> None:
    owners: dict[str, set[int]] = {}
    for household in households:
        for person in household:
            for email in {person.email, person.alt_email}:
                owners.setdefault(email, set()).add(person.household)
            assert person.email != person.alt_email
            if person.shared_email:
                assert person.email == household[0].email
    assert all(len(h) == 1 for h in owners.values()), "no two households share an address"
    shared = [h for h in households if len({p.email for p in h}) < len(h)]
    assert shared
    assert all(p.shared_email for h in shared for p in h)


def test_household_variations_follow_their_rates(households: list[list[Person]]) -> None:
    rates = GenerateConfig(tenant="acme", people=1).rates
    families = [h for h in households if len(h) > 1]
    sharing = sum(h[0].shared_email for h in families)
    assert within(sharing, len(families), rates.shared_email)
    moved = sum(h[0].previous_address is not None for h in households)
    assert within(moved, len(households), rates.moved)
    eligible = [(p, s) for h in households for p in h for s in p.sources if s != "events"]
    duplicated = sum(s in p.duplicates for p, s in eligible)
    assert within(duplicated, len(eligible), rates.duplicate)
    assert all(
        s in p.sources and s != "events" for h in households for p in h for s in p.duplicates
    )


def test_households_share_an_address_and_mostly_a_name(households: list[list[Person]]) -> None:
    families = [h for h in households if len(h) > 1]
    assert all(len({p.address for p in h}) == 1 for h in families)
    same_name = sum(len({p.last_name for p in h}) == 1 for h in families)
    assert same_name > 0.5 * len(families)


def test_people_come_from_several_countries(households: list[list[Person]]) -> None:
    countries = Counter(p.country.code for h in households for p in h)
    assert set(countries) == {"US", "GB", "DE", "FR", "ES", "NL"}
    assert countries.most_common(1)[0][0] == "US"
