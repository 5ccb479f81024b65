"""The generator's request: source mix and variation rates, parsed and checked."""

from __future__ import annotations

import math
from dataclasses import asdict

import pytest

from opencdp.errors import ConfigError, InvalidNameError
from opencdp.generate import (
    DEFAULT_MIX,
    KINDS,
    SOURCES,
    UNITS,
    GenerateConfig,
    Rates,
    parse_mix,
    parse_rates,
)
from opencdp.generate.config import Membership


def test_mix_overrides_only_the_named_sources() -> None:
    mix = parse_mix(" crm=0.9 , stripe=0 ")
    assert mix == {**DEFAULT_MIX, "crm": 0.9, "stripe": 0.0}
    assert parse_mix(None) == DEFAULT_MIX
    assert parse_mix("") == DEFAULT_MIX


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("crm", "invalid source mix 'crm'"),
        ("crm=abc", "is not a number"),
        ("crm=1.5", "is not between 0 and 1"),
        ("crm=-0.1", "is not between 0 and 1"),
        ("hubspot=0.5", "unknown source mix name 'hubspot'"),
        ("crm=0.5,crm=0.6", "given twice"),
    ],
)
def test_bad_mix_is_a_config_error_naming_the_sources(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_mix(text)
    assert info.value.hint is not None
    assert "crm, shopify, stripe, events" in info.value.hint


def test_a_mix_that_cannot_cover_everyone_is_refused() -> None:
    mix = dict.fromkeys(SOURCES, 0.2)
    with pytest.raises(ConfigError, match=r"adds up to 0\.80"):
        GenerateConfig(tenant="t", people=10, mix=mix)
    # A source that holds everyone makes any other shares possible.
    GenerateConfig(tenant="t", people=10, mix={**dict.fromkeys(SOURCES, 0.0), "crm": 1.0})


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"people": 0}, ConfigError, "positive"),
        ({"people": -5}, ConfigError, "positive"),
        ({"seed": -1}, ConfigError, "seed"),
        ({"tenant": "Acme Corp"}, InvalidNameError, "tenant"),
        ({"mix": {"crm": 0.5}}, ConfigError, "each of crm, shopify, stripe, events"),
    ],
)
def test_bad_config_values(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    args: dict[str, object] = {"tenant": "acme", "people": 10, **kwargs}
    with pytest.raises(error, match=message):
        GenerateConfig(**args)  # type: ignore[arg-type]


def test_rates_parse_and_keep_defaults() -> None:
    rates = parse_rates("nickname=0.9,missing=0")
    assert rates.nickname == 0.9
    assert rates.missing == 0.0
    assert rates.case == Rates().case
    with pytest.raises(ConfigError, match="unknown variation rate name 'typo'"):
        parse_rates("typo=0.1")


def test_every_kind_has_a_unit_and_a_rate() -> None:
    assert set(KINDS) == set(UNITS) == set(asdict(Rates()))
    assert set(UNITS.values()) == {"record", "person", "household", "person_source"}


@pytest.mark.parametrize(
    "mix",
    [
        DEFAULT_MIX,
        {"crm": 0.9, "shopify": 0.2, "stripe": 0.0, "events": 0.1},
        {"crm": 1.0, "shopify": 0.5, "stripe": 0.5, "events": 0.5},
        {"crm": 0.25, "shopify": 0.25, "stripe": 0.25, "events": 0.3},
    ],
)
def test_membership_keeps_the_mix_exact_while_everyone_is_somewhere(
    mix: dict[str, float],
) -> None:
    m = Membership.from_mix(mix)
    # Z is P(at least one source) under independent draws with probabilities q.
    assert m.z == pytest.approx(1 - math.prod(1 - q for q in m.q), abs=1e-9)
    for i, source in enumerate(SOURCES):
        assert m.expected_share((i,)) == pytest.approx(mix[source], abs=1e-9)
    assert m.first_cum[-1] == pytest.approx(1.0, abs=1e-9)
