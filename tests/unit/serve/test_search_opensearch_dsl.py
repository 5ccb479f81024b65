"""What the OpenSearch backend sends, decided without a server: the plan as query DSL, the
index's mappings and metadata, and the settings that choose the backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from opencdp.errors import ConfigError
from opencdp.identity.model import PROFILES
from opencdp.serve.search.documents import EMAIL, NAME, NAME_LETTERS, profile_documents
from opencdp.serve.search.opensearch_dsl import (
    FIELDS,
    FORMAT,
    MAX_TERM_CHARS,
    build_query,
    index_body,
    search_body,
    synced_snapshot,
)
from opencdp.serve.search.query import (
    EXACT_NAME,
    FUZZY_NAME,
    MAX_LIMIT,
    MAX_OFFSET,
    NAME_PREFIX,
    TRANSPOSED_NAME,
    SearchPlan,
    plan_search,
)
from opencdp.settings import load_settings


def plan(q: str, **filters: str) -> SearchPlan:
    return plan_search(q, filters, default_country="US")


def alternatives(query: dict[str, Any]) -> list[dict[str, Any]]:
    return query["dis_max"]["queries"] if "dis_max" in query else [query]


def leaves(query: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(kind, field, value) -> the constant_score around it, for each alternative."""
    found = {}
    for alternative in alternatives(query):
        if "constant_score" in alternative:
            ((kind, spec),) = alternative["constant_score"]["filter"].items()
            ((field, params),) = spec.items()
            found[kind, field, params["value"]] = alternative["constant_score"]
    return found


def test_a_word_is_a_dis_max_of_constant_scores() -> None:
    (clause,) = build_query(plan("jhon"))["bool"]["should"]
    assert clause["dis_max"]["tie_breaker"] == 0.0  # a clause scores its best alternative
    found = leaves(clause)
    assert found["term", NAME, "jhon"]["boost"] == EXACT_NAME
    assert found["term", NAME_LETTERS, "hjno"]["boost"] == TRANSPOSED_NAME
    assert found["prefix", NAME, "jhon"]["boost"] == NAME_PREFIX
    assert found["fuzzy", NAME, "jhon"] == {
        "filter": {
            "fuzzy": {
                NAME: {
                    "value": "jhon",
                    "fuzziness": 1,
                    "transpositions": True,
                    "prefix_length": 0,
                    "rewrite": "constant_score",  # every term within the distance counts
                }
            }
        },
        "boost": FUZZY_NAME[1],
    }


def test_a_long_word_is_fuzzy_within_one_and_within_two_edits() -> None:
    (clause,) = build_query(plan("smithsonn"))["bool"]["should"]
    fuzzy = [a for a in alternatives(clause) if "fuzzy" in a["constant_score"]["filter"]]
    found = {
        (a["constant_score"]["filter"]["fuzzy"][NAME]["fuzziness"], a["constant_score"]["boost"])
        for a in fuzzy
    }
    assert found == {(1, FUZZY_NAME[1]), (2, FUZZY_NAME[2])}


@pytest.mark.parametrize(
    ("q", "clauses", "required"), [("john", 1, 1), ("john smith", 2, 2), ("john paul smith", 3, 2)]
)
def test_clauses_are_should_with_the_plans_minimum(q: str, clauses: int, required: int) -> None:
    query = build_query(plan(q))["bool"]
    assert len(query["should"]) == clauses
    assert query["minimum_should_match"] == required
    assert "filter" not in query


def test_the_words_of_one_token_must_all_match() -> None:
    (clause,) = build_query(plan("jean-luc"))["bool"]["should"]
    (together,) = [a for a in alternatives(clause) if "bool" in a]
    jean, luc = together["bool"]["must"]
    assert ("term", NAME, "jean") in leaves(jean)
    assert ("prefix", NAME, "luc") in leaves(luc)  # the last word may be unfinished


def test_filters_are_terms_in_filter_context() -> None:
    query = build_query(plan("", country="fr", sources="shopify,stripe"))
    assert query == {
        "bool": {
            "filter": [
                {"terms": {"f_country": ["fr"]}},
                {"terms": {"f_sources": ["shopify", "stripe"]}},
            ]
        }
    }


def test_an_email_is_exact_prefix_and_fuzzy() -> None:
    (clause,) = build_query(plan("JSmith@Example.com"))["bool"]["should"]
    kinds = {(kind, field) for kind, field, _ in leaves(clause)}
    assert {("term", EMAIL), ("prefix", EMAIL), ("fuzzy", EMAIL)} <= kinds


def test_the_search_body_pages_and_breaks_ties_by_profile_id() -> None:
    body = search_body(plan("smith", city="Paris"), limit=20, offset=40)
    assert (body["from"], body["size"]) == (40, 20)
    assert body["track_total_hits"] is True
    assert body["track_scores"] is True
    assert body["sort"] == [{"_score": {"order": "desc"}}, {"profile_id": {"order": "asc"}}]
    assert body["_source"] is False
    assert body["query"]["bool"]["filter"] == [{"terms": {"f_city": ["paris"]}}]


def test_every_field_of_a_document_is_a_keyword_of_the_mapping() -> None:
    row = {"profile_id": "p1", "first_name": "Ann", "email": "a@b.c", "phone": "+14155550100",
           "city": "Lyon", "country": "FR", "sources": ["crm"], "identified": True,
           "rfm_segment": "champions", "preferred_channel": "email", "region": "ARA",
           "postcode": "69001", "external_ids": [("shopify", "S1")], "company": "Acme"}  # fmt: skip
    (document,) = profile_documents(pa.Table.from_pylist([row], schema=PROFILES))
    mappings = index_body(1)["mappings"]
    assert set(document) <= set(mappings["properties"]) == set(FIELDS)
    assert mappings["dynamic"] == "strict"  # a field nobody mapped fails loudly
    for field, spec in mappings["properties"].items():
        assert spec == {
            "type": "keyword",
            "ignore_above": MAX_TERM_CHARS,
            "doc_values": field == "profile_id",
        }
    assert MAX_TERM_CHARS * 4 <= 32_766  # Lucene's limit on a term, in UTF-8 bytes


def test_the_index_refreshes_when_asked_and_pages_as_deep_as_the_api() -> None:
    settings = index_body(1)["settings"]["index"]
    assert settings["refresh_interval"] == "-1"
    assert settings["max_result_window"] >= MAX_OFFSET + MAX_LIMIT


@pytest.mark.parametrize("snapshot_id", [0, 7, 2**63 - 1])
def test_the_snapshot_goes_through_the_metadata(snapshot_id: int) -> None:
    mappings = index_body(snapshot_id)["mappings"]
    assert mappings["_meta"] == {"format": FORMAT, "snapshot_id": str(snapshot_id)}
    assert synced_snapshot(mappings) == snapshot_id


@pytest.mark.parametrize(
    "meta",
    [None, {}, {"format": FORMAT - 1, "snapshot_id": "7"}, {"format": FORMAT},
     {"format": FORMAT, "snapshot_id": "seven"}],
)  # fmt: skip
def test_metadata_of_another_format_records_no_snapshot(meta: dict[str, Any] | None) -> None:
    assert synced_snapshot({} if meta is None else {"_meta": meta}) is None


# --- settings ------------------------------------------------------------------------------


def test_the_search_backend_defaults_to_tantivy(tmp_path: Path, clean_env: None) -> None:
    search = load_settings(tmp_path).serve.search
    assert (search.backend, search.url, search.index_prefix) == ("tantivy", None, "opencdp")
    assert search.verify_certs is True


def test_the_password_comes_from_the_environment(
    tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENCDP_SERVE__SEARCH__BACKEND", "opensearch")
    monkeypatch.setenv("OPENCDP_SERVE__SEARCH__URL", "https://search.internal:9200")
    monkeypatch.setenv("OPENCDP_SERVE__SEARCH__USERNAME", "opencdp")
    monkeypatch.setenv("OPENCDP_SERVE__SEARCH__PASSWORD", "s3cret")
    search = load_settings(tmp_path).serve.search
    assert search.password is not None
    assert search.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(search)


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({"backend": "opensearch"}, "needs serve.search.url"),
        ({"url": "ftp://search.internal"}, "http:// or https://"),
        ({"url": "https://user:s3cret@search.internal:port"}, "http:// or https://"),
        ({"index_prefix": "OpenCDP"}, "lower case"),
        ({"index_prefix": "_hidden"}, "starts with a letter or a digit"),
        ({"backend": "elastic"}, "backend"),
    ],
)
def test_bad_search_settings_are_refused(
    tmp_path: Path, clean_env: None, search: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(tmp_path, serve={"search": search})
    assert "s3cret" not in str(caught.value)
