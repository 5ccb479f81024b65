"""Cleaning: white space, Unicode forms, invisible characters and placeholder values."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from opencdp.generate import mutations
from opencdp.transform.clean import PLACEHOLDERS, PlaceholderKind, clean_text, null_placeholders


def strings(*values: str | None) -> pa.Array:
    return pa.array(values, pa.string())


def test_clean_text_trims_collapses_and_composes() -> None:
    raw = strings(
        "\u00a0 Jose\u0301  \t M\u00fcller\u2003",  # NBSP, combining accent, tab, em space
        "Anne\nMarie",
        "\ufeffZo\u200be",  # BOM and zero-width space inside a word
        "Stra\u00adße 1",  # soft hyphen
        "plain value",
    )
    assert clean_text(raw).to_pylist() == [
        "José Müller",
        "Anne Marie",
        "Zoe",
        "Straße 1",
        "plain value",
    ]


def test_clean_text_blank_becomes_null_and_nulls_stay() -> None:
    assert clean_text(strings("", "   ", "\t\u00a0", None, "x")).to_pylist() == [
        None,
        None,
        None,
        None,
        "x",
    ]


def test_clean_text_casts_other_types_and_keeps_the_input() -> None:
    numbers = pa.array([1, None, 30])
    assert clean_text(numbers).to_pylist() == ["1", None, "30"]
    raw = strings(" a ")
    clean_text(raw)
    assert raw.to_pylist() == [" a "]
    assert clean_text(pa.array([], pa.string())).to_pylist() == []
    assert clean_text(pa.nulls(2)).to_pylist() == [None, None]


def test_clean_text_undoes_the_generators_whitespace_variants() -> None:
    rng = random.Random(3)
    values = ["John", "Anne Marie", "12 Rue de la Paix", "SW1A 1AA"] * 25
    padded = [mutations.add_whitespace(rng, v) for v in values]
    assert padded != values
    assert clean_text(strings(*padded)).to_pylist() == values


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("email", mutations.PLACEHOLDER_EMAILS),
        ("phone", mutations.PLACEHOLDER_PHONES),
        ("name", mutations.PLACEHOLDER_NAMES),
        ("text", mutations.PLACEHOLDER_STREETS),
    ],
)
def test_every_generator_placeholder_is_nulled_and_flagged(
    kind: PlaceholderKind, values: tuple[str, ...]
) -> None:
    cleaned, flagged = null_placeholders(strings(*values), kind)
    assert cleaned.to_pylist() == [None] * len(values)
    assert flagged.to_pylist() == [True] * len(values)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("email", " TEST@Test.com "),
        ("email", "Example@Example.com"),
        ("email", "noemail@acme.de"),
        ("email", "none@gmail.com"),
        ("email", "jane@shop.example"),
        ("email", "jane@example.org"),
        ("email", "x@corp.test"),
        ("phone", "n/a"),
        ("phone", "999-999-9999"),
        ("phone", "+1 (000) 000-0000"),
        ("phone", "+1 (123) 456-7890"),
        ("phone", "123456789"),
        ("phone", "(987) 654-3210"),
        ("phone", "+44 7777 777777"),
        ("phone", "-"),
        ("name", "UNKNOWN"),
        ("name", "asdf"),
        ("name", "XXXX"),
        ("name", "???"),
        ("name", "123"),
        ("name", "Test"),
        ("text", "NULL"),
        ("text", "  n/a  "),
        ("text", "--"),
        ("postcode", "00000"),
        ("postcode", "N/A"),
        ("postcode", "-"),
    ],
)
def test_common_placeholders_any_case(kind: PlaceholderKind, value: str) -> None:
    cleaned, flagged = null_placeholders(strings(value), kind)
    assert cleaned.to_pylist() == [None]
    assert flagged.to_pylist() == [True]


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("email", "john.smith12@gmail.com"),
        ("email", "testa.rossi3@libero.it"),
        ("email", "bob@email.com"),
        ("phone", "+1 415-555-0100"),
        ("phone", "+33 6 12 34 56 78"),
        ("phone", "0172 - 19400783"),
        ("phone", "0151 23456789"),  # a real number that holds a counting run
        ("phone", "+49 30 1234567890"),
        ("name", "Anne"),
        ("name", "Na"),  # a Korean family name, not N/A
        ("name", "J."),
        ("name", "Xavier"),
        ("text", "12 Main St"),
        ("text", "Testament Road 4"),
        ("postcode", "SW1A 1AA"),
        ("postcode", "10115"),
        ("postcode", "1011 AB"),
    ],
)
def test_real_values_are_kept(kind: PlaceholderKind, value: str) -> None:
    cleaned, flagged = null_placeholders(strings(value), kind)
    assert cleaned.to_pylist() == [value]
    assert flagged.to_pylist() == [False]


def test_placeholder_flags_are_null_where_nothing_was_given() -> None:
    cleaned, flagged = null_placeholders(strings(None, "  ", "N/A", "Ann  Lee "), "name")
    assert cleaned.to_pylist() == [None, None, None, "Ann Lee"]
    assert flagged.to_pylist() == [None, None, True, False]


def test_placeholder_sets_are_lower_case() -> None:
    for kind, values in PLACEHOLDERS.items():
        assert all(v == v.lower().strip() for v in values), kind
