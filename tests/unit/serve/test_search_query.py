"""What a search asks and what a profile is indexed as, decided without an index."""

from __future__ import annotations

import pyarrow as pa
import pytest

from opencdp.identity.model import PROFILES
from opencdp.serve.search import FILTERS, SearchError
from opencdp.serve.search.documents import (
    EMAIL,
    IDS,
    NAME,
    NAME_LETTERS,
    PHONE,
    PHONE_SUFFIX,
    PROFILE_ID,
    TEXT,
    filter_field,
    fold,
    profile_documents,
    words,
)
from opencdp.serve.search.query import (
    EXACT_NAME,
    MAX_WORDS,
    AllOf,
    AnyOf,
    Match,
    SearchPlan,
    check_paging,
    plan_search,
)


def plan(q: str, **filters: str) -> SearchPlan:
    return plan_search(q, filters, default_country="US")


def matches(clause: AnyOf) -> set[tuple[str, str, str, int]]:
    return {
        (m.field, m.kind, m.text, m.distance) for m in clause.alternatives if isinstance(m, Match)
    }


# --- analysis ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("José", "jose"),
        ("JOSÉ", "jose"),
        ("Łódź", "lodz"),
        ("Straße", "strasse"),
        ("Søren Ærø", "soren aero"),
        ("\uff4a\uff4f\uff48\uff4e", "john"),  # full-width letters
    ],
)
def test_fold_removes_case_and_accents(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_words_split_on_anything_but_letters_and_digits() -> None:
    assert words("O'Brien-Núñez  Jr.") == ["o", "brien", "nunez", "jr"]
    assert words("王伟") == ["王伟"]
    assert words("!!! ... ---") == []
    assert words("x" * 65) == []  # not a word


def test_profile_documents_hold_the_terms_of_each_field() -> None:
    table = pa.Table.from_pylist(
        [
            {
                "profile_id": "P1",
                "first_name": "José",
                "last_name": "Núñez-García",
                "full_name": "José Núñez-García",
                "email": " Jose.Nunez@Example.ES ",
                "phone": "+34612345678",
                "company": "Acme S.A.",
                "city": "San Sebastián",
                "postcode": "20 001",
                "country": "ES",
                "sources": ["crm", "Shopify", "crm"],
                "identified": True,
                "external_ids": [("shopify", "SH-77"), ("crm", None)],
                "rfm_segment": "Champions",
            },
            {"profile_id": "P2"},
        ],
        schema=PROFILES,
    )
    first, second = profile_documents(table)
    assert first[PROFILE_ID] == "P1"
    assert first[NAME] == ["jose", "nunez", "garcia"]
    assert first[NAME_LETTERS] == ["ejos", "ennuz", "aacgir"]
    assert first[EMAIL] == "jose.nunez@example.es"
    assert first[PHONE] == "+34612345678"
    assert first[PHONE_SUFFIX] == "87654321643"
    assert first[TEXT] == ["acme", "s", "a", "san", "sebastian", "20", "001"]
    assert first[IDS] == ["p1", "sh-77"]
    assert first[filter_field("country")] == "es"
    assert first[filter_field("city")] == "san sebastian"
    assert first[filter_field("postcode")] == "20001"
    assert first[filter_field("sources")] == ["crm", "shopify"]
    assert first[filter_field("identified")] == "true"
    assert first[filter_field("rfm_segment")] == "champions"
    # Nothing but the id (and its id term) for a profile without traits.
    assert second == {PROFILE_ID: "P2", IDS: ["p2"]}


def test_profile_documents_accept_a_table_with_few_columns() -> None:
    table = pa.table({"profile_id": ["A", "B"], "last_name": ["Smith", None]})
    docs = list(profile_documents(table, batch_rows=1))
    assert [d.get(NAME) for d in docs] == [["smith"], None]


# --- text ----------------------------------------------------------------------------------


def test_a_misspelled_name_is_matched_within_edits_by_length() -> None:
    found = plan("Jonh Smiht")
    assert found.required == 2
    first, second = found.clauses
    assert (NAME, "fuzzy", "jonh", 1) in matches(first)
    assert (NAME, "exact", "jonh", 0) in matches(first)
    assert (NAME, "prefix", "jonh", 0) not in matches(first)  # only the last word
    assert (NAME, "prefix", "smiht", 0) in matches(second)
    assert (NAME_LETTERS, "exact", "himst", 0) in matches(second)  # = smith's letters
    long_word = plan("Alexandra").clauses[0]
    assert (NAME, "fuzzy", "alexandra", 2) in matches(long_word)
    assert (NAME, "fuzzy", "alexandra", 1) in matches(long_word)  # nearer words rank higher
    short = plan("Li").clauses[0]
    assert not any(kind == "fuzzy" for _, kind, _, _ in matches(short))


def test_a_plain_word_also_starts_an_email() -> None:
    (clause,) = plan("jsmi").clauses
    assert (EMAIL, "prefix", "jsmi", 0) in matches(clause)


def test_a_word_with_an_at_is_an_email() -> None:
    (clause,) = plan("<JSmith@Example.com>").clauses
    found = matches(clause)
    assert (EMAIL, "exact", "jsmith@example.com", 0) in found
    assert (EMAIL, "prefix", "jsmith@example.com", 0) in found
    assert (EMAIL, "fuzzy", "jsmith@example.com", 2) in found
    assert (EMAIL, "fuzzy", "jsmith@example.com", 1) in found
    assert not any(field == NAME for field, *_ in found)


def test_a_word_of_several_parts_needs_them_all() -> None:
    (clause,) = plan("jean-luc").clauses
    groups = [a for a in clause.alternatives if isinstance(a, AllOf)]
    assert len(groups) == 1
    assert [
        next(m.text for m in c.alternatives if isinstance(m, Match)) for c in groups[0].clauses
    ] == ["jean", "luc"]
    assert (IDS, "exact", "jean-luc", 0) in matches(clause)


def test_more_than_two_words_may_miss_one() -> None:
    assert plan("john smith boston").required == 2
    assert plan("john").required == 1


def test_exact_names_score_above_fuzzy_ones() -> None:
    (clause,) = plan("maria").clauses
    scores = {(m.kind, m.field): m.score for m in clause.alternatives if isinstance(m, Match)}
    assert scores[("exact", NAME)] == EXACT_NAME
    assert scores[("exact", NAME)] > scores[("prefix", NAME)] > scores[("fuzzy", NAME)]


# --- phones --------------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["+1 (415) 555-0100", "4155550100", "415.555.0100", "1-415-555-0100"])
def test_a_phone_written_any_way_is_normalized_as_the_pipeline_does(q: str) -> None:
    (clause,) = plan(q).clauses
    assert (PHONE, "exact", "+14155550100", 0) in matches(clause)


@pytest.mark.parametrize(("q", "suffix"), [("0100", "0010"), ("555-0100", "0010555")])
def test_the_last_digits_of_a_phone_are_a_prefix_of_its_reversed_digits(
    q: str, suffix: str
) -> None:
    (clause,) = plan(q).clauses
    found = matches(clause)
    assert (PHONE_SUFFIX, "prefix", suffix, 0) in found
    assert not any(field == PHONE for field, *_ in found)  # not a whole number


def test_a_national_number_also_matches_without_its_trunk_zero() -> None:
    (clause,) = plan("06 55 99 99 49").clauses
    found = matches(clause)
    assert (PHONE_SUFFIX, "prefix", "9499995560", 0) in found
    assert (PHONE_SUFFIX, "prefix", "949999556", 0) in found
    (short,) = plan("0100").clauses  # "100" is too short to stand for a number
    assert (PHONE_SUFFIX, "prefix", "001", 0) not in matches(short)


def test_the_tenant_default_country_reads_national_numbers() -> None:
    (clause,) = plan_search("020 7946 0958", {}, default_country="GB").clauses
    assert (PHONE, "exact", "+442079460958", 0) in matches(clause)


def test_two_digits_are_not_a_phone_search() -> None:
    (clause,) = plan("42").clauses
    assert not any(field in {PHONE, PHONE_SUFFIX} for field, *_ in matches(clause))


# --- absurd input --------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["", "   ", "!!!", "...", "\x00\x01", "-", "@", "@@"])
def test_text_without_words_asks_nothing(q: str) -> None:
    found = plan(q)
    assert found.clauses == ()
    assert found.matches_nothing


def test_query_syntax_is_only_text() -> None:
    (clause,) = plan('name:"john"').clauses
    groups = [a for a in clause.alternatives if isinstance(a, AllOf)]
    texts = {
        m.text
        for c in groups[0].clauses
        for m in c.alternatives
        if isinstance(m, Match) and m.field == NAME
    }
    assert texts == {"name", "john"}
    (star,) = plan("smi*").clauses
    assert (NAME, "prefix", "smi", 0) in matches(star)


def test_a_very_long_query_is_cut() -> None:
    found = plan(" ".join(["word"] * 500) + "x" * 1000)
    assert len(found.clauses) == MAX_WORDS
    assert plan("y" * 1000).clauses == ()  # one 256-letter "word" is not a word


# --- filters -------------------------------------------------------------------------------


def test_filters_are_analysed_as_the_profiles_were() -> None:
    found = plan(
        "",
        country="France",
        city="  São   Paulo ",
        postcode="SW1A 1AA",
        sources="shopify, CRM",
        identified="YES",
    )
    assert {(f.field, f.values) for f in found.filters} == {
        (filter_field("country"), ("fr",)),
        (filter_field("city"), ("sao paulo",)),
        (filter_field("postcode"), ("sw1a1aa",)),
        (filter_field("sources"), ("shopify", "crm")),
        (filter_field("identified"), ("true",)),
    }
    assert not found.matches_nothing  # a listing of the filtered profiles


def test_an_unknown_filter_lists_the_allowed_ones() -> None:
    with pytest.raises(SearchError, match="unknown search filter 'colour'") as caught:
        plan("john", colour="red")
    assert caught.value.hint is not None
    assert all(name in caught.value.hint for name in FILTERS)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("city", "", "needs a value"),
        ("city", "   ", "needs a value"),
        ("identified", "maybe", "true or false"),
        ("sources", " , ,", "needs a source"),
        ("region", "x" * 201, "longer than"),
    ],
)
def test_bad_filter_values_are_refused(name: str, value: str, message: str) -> None:
    with pytest.raises(SearchError, match=message):
        plan("", **{name: value})


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (1001, 0), (20, -1), (20, 10_001)])
def test_bad_paging_is_refused(limit: int, offset: int) -> None:
    with pytest.raises(SearchError):
        check_paging(limit, offset)


def test_good_paging_passes() -> None:
    check_paging(1, 0)
    check_paging(1000, 10_000)
