"""The OpenSearch search backend against the local contract server: the alias swap, failed
writes, an unreachable or unavailable cluster, racing writers, tenants side by side, the
settings that choose it, the loader following loads, and the same scores as Tantivy; then
the contract server's own contract, through the official client."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, RequestError
from tests.support.curated import customer, write
from tests.support.opensearch import OpenSearchServer

from opencdp.db import Database
from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.identity.model import PROFILES
from opencdp.identity.resolve import resolve
from opencdp.serve.refresh import refresh_tenant
from opencdp.serve.search import (
    SearchBackendError,
    SearchIndexBusyError,
    SearchIndexUnavailableError,
    SearchPage,
    SearchRebuildNeededError,
    open_search,
)
from opencdp.serve.search.opensearch_index import OpenSearchProfileSearch
from opencdp.serve.search.query import MAX_LIMIT, MAX_OFFSET
from opencdp.serve.search.tantivy_index import TantivyProfileSearch
from opencdp.settings import SearchSettings, Settings, load_settings

pytestmark = pytest.mark.integration

ALIAS = "opencdp-profiles-acme"
PEOPLE: list[dict[str, Any]] = [
    {"profile_id": "id-john", "first_name": "John", "last_name": "Smith",
     "email": "jsmith@example.com", "phone": "+14155550100", "city": "San Francisco",
     "country": "US", "sources": ["crm"], "identified": True, "company": "Initech"},
    {"profile_id": "id-jon", "first_name": "Jon", "last_name": "Smith",
     "email": "jon.s@example.org", "phone": "+14155550199", "city": "Oakland",
     "country": "US", "sources": ["stripe"], "identified": True},
    {"profile_id": "id-jose", "first_name": "José", "last_name": "Núñez",
     "email": "jose.nunez@example.es", "country": "ES", "sources": ["crm"]},
]  # fmt: skip


def profiles(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=PROFILES)


def ids(page: SearchPage) -> list[str]:
    return [hit.profile_id.removeprefix("id-") for hit in page.hits]


@pytest.fixture
def server() -> Iterator[OpenSearchServer]:
    with OpenSearchServer() as running:
        yield running


def settings_for(url: str, **search: Any) -> SearchSettings:
    return SearchSettings(backend="opensearch", url=url, **search)


def watch(server: OpenSearchServer, q: str) -> dict[str, list[str]]:
    """What a reader finds for `q` after each request of a writer (its own searches aside)."""
    reader = OpenSearchProfileSearch(settings_for(server.url), "acme")
    seen: dict[str, list[str]] = {}

    def look(request: str) -> None:
        if not request.endswith("/_search"):
            seen[request] = sorted(ids(reader.search(q)))

    server.after = look
    return seen


@pytest.fixture
def index(server: OpenSearchServer) -> Iterator[OpenSearchProfileSearch]:
    search = OpenSearchProfileSearch(settings_for(server.url), "acme")
    search.sync(profiles(PEOPLE), [], full=True, snapshot_id=7)
    yield search
    search.close()


# --- the alias and its generations ---------------------------------------------------------


def test_a_full_sync_builds_a_new_index_and_swaps_the_alias_in_one_request(
    server: OpenSearchServer, index: OpenSearchProfileSearch
) -> None:
    assert server.aliases() == {ALIAS: [f"{ALIAS}-000001"]}
    seen = watch(server, "smith")
    start = len(server.log)
    index.sync(profiles(PEOPLE[2:]), [], full=True, snapshot_id=8)
    server.after = None
    requests = [r for r in server.requests()[start:] if not r.endswith("/_search")]
    assert requests == [
        f"GET /{ALIAS}/_mapping",
        f"PUT /{ALIAS}-000002",
        f"POST /{ALIAS}-000002/_bulk",
        f"POST /{ALIAS}-000002/_refresh",
        "POST /_aliases",  # the new index in, the old one deleted: one atomic request
    ]
    # Until the swap readers find the old index whole, then the new one whole.
    assert [seen[r] for r in requests[:-1]] == [["john", "jon"]] * 4
    assert seen["POST /_aliases"] == []
    assert server.aliases() == {ALIAS: [f"{ALIAS}-000002"]}
    assert sorted(server.indices) == [f"{ALIAS}-000002"]
    assert index.synced_snapshot() == 8


def test_an_incremental_sync_shows_its_delta_at_one_refresh(
    server: OpenSearchServer, index: OpenSearchProfileSearch
) -> None:
    seen = watch(server, "smith")
    mei = {"profile_id": "id-mei", "first_name": "Mei", "last_name": "Smith"}
    index.sync(profiles([mei]), ["id-jon"], full=False, snapshot_id=8)
    server.after = None
    assert seen[f"POST /{ALIAS}-000001/_bulk"] == ["john", "jon"]  # written, not yet shown
    assert seen[f"POST /{ALIAS}-000001/_refresh"] == ["john", "mei"]
    assert index.synced_snapshot() == 8
    assert server.requests("PUT")[-1] == f"PUT /{ALIAS}-000001/_mapping"  # the snapshot, last


def test_a_refused_document_leaves_the_old_index_and_raises(
    server: OpenSearchServer, index: OpenSearchProfileSearch
) -> None:
    server.faults.refuse = {"id-jose"}
    renamed = [{**person, "last_name": "Doe"} for person in PEOPLE]
    with pytest.raises(SearchBackendError, match=r"refused profile 'id-jose'.*mapper_parsing"):
        index.sync(profiles(renamed), [], full=True, snapshot_id=8)
    assert server.aliases() == {ALIAS: [f"{ALIAS}-000001"]}
    assert sorted(server.indices) == [f"{ALIAS}-000001"]  # the half-built one is gone
    assert index.synced_snapshot() == 7
    assert ids(index.search("smith")) == ["john", "jon"]
    with pytest.raises(SearchBackendError, match="refused profile 'id-jose'"):
        index.sync(profiles(renamed[2:]), [], full=False, snapshot_id=8)
    assert index.synced_snapshot() == 7  # not recorded: the loader will rebuild
    server.faults.refuse = set()
    index.sync(profiles(renamed), [], full=True, snapshot_id=8)
    assert sorted(ids(index.search("doe"))) == ["john", "jon", "jose"]


def test_a_swap_whose_answer_was_lost_is_retried_and_succeeds(
    server: OpenSearchServer, index: OpenSearchProfileSearch
) -> None:
    server.faults.lose_answer = {"POST /_aliases"}
    index.sync(profiles(PEOPLE[2:]), [], full=True, snapshot_id=8)
    assert server.requests("POST")[-2:] == ["POST /_aliases", "POST /_aliases"]  # retried
    assert server.aliases() == {ALIAS: [f"{ALIAS}-000002"]}
    assert index.synced_snapshot() == 8


def test_a_missing_alias_needs_a_full_sync(server: OpenSearchServer) -> None:
    search = OpenSearchProfileSearch(settings_for(server.url), "acme")
    assert search.synced_snapshot() is None
    assert search.search("john") == SearchPage((), 0)
    with pytest.raises(SearchRebuildNeededError, match="does not exist"):
        search.sync(profiles(PEOPLE), [], full=False, snapshot_id=1)
    assert server.indices == {}  # nothing was written
    search.close()


def test_an_index_of_an_older_format_needs_a_full_sync(
    server: OpenSearchServer, index: OpenSearchProfileSearch
) -> None:
    server.indices[f"{ALIAS}-000001"].mappings.meta = {"format": 0, "snapshot_id": "7"}
    assert index.synced_snapshot() is None
    with pytest.raises(SearchRebuildNeededError, match="older format"):
        index.sync(profiles(PEOPLE), [], full=False, snapshot_id=8)
    index.sync(profiles(PEOPLE), [], full=True, snapshot_id=8)
    assert index.synced_snapshot() == 8
    assert server.aliases() == {ALIAS: [f"{ALIAS}-000002"]}


def test_a_deep_page_is_within_the_result_window(index: OpenSearchProfileSearch) -> None:
    page = index.search("smith", limit=MAX_LIMIT, offset=MAX_OFFSET)
    assert page == SearchPage((), 2)


def test_a_value_longer_than_a_term_may_be_does_not_fail_the_sync(
    index: OpenSearchProfileSearch,
) -> None:
    long_city = "Llan" + "gollen" * 6000  # 36,004 characters: over Lucene's 32,766 bytes
    mei = {"profile_id": "id-mei", "first_name": "Mei", "city": long_city}
    index.sync(profiles([mei]), [], full=False, snapshot_id=8)
    assert ids(index.search("mei")) == ["mei"]


# --- the cluster out of reach --------------------------------------------------------------


def test_a_cluster_out_of_reach_is_unavailable_and_hides_the_password() -> None:
    with OpenSearchServer() as gone:
        url = gone.url.replace("http://", "http://opencdp:s3cret@")
    search = OpenSearchProfileSearch(settings_for(url, timeout_seconds=2), "acme")
    for attempt in (
        lambda: search.search("john"),
        search.synced_snapshot,
        lambda: search.sync(profiles(PEOPLE), [], full=True, snapshot_id=1),
    ):
        with pytest.raises(SearchIndexUnavailableError, match="cannot be reached") as caught:
            attempt()
        assert caught.value.retryable
        assert "s3cret" not in str(caught.value)
        assert "http://127.0.0.1:" in str(caught.value)


def test_a_cluster_without_a_manager_is_unavailable(
    server: OpenSearchServer, index: OpenSearchProfileSearch
) -> None:
    server.faults.unavailable = True
    with pytest.raises(SearchIndexUnavailableError, match="answered 503"):
        index.search("john")
    with pytest.raises(SearchIndexUnavailableError):
        index.sync(profiles(PEOPLE), [], full=True, snapshot_id=8)
    server.faults.unavailable = False
    assert index.synced_snapshot() == 7
    assert ids(index.search("john smith"))[0] == "john"


def test_credentials_are_sent_as_basic_auth(server: OpenSearchServer) -> None:
    settings = settings_for(server.url, username="opencdp", password="s3cret")
    search = OpenSearchProfileSearch(settings, "acme")
    search.search("john")
    expected = "Basic " + base64.b64encode(b"opencdp:s3cret").decode()
    assert {request.authorization for request in server.log} == {expected}
    search.close()


# --- writers that overlap ------------------------------------------------------------------


def test_of_two_rebuilds_from_one_index_the_second_to_swap_fails(
    server: OpenSearchServer, index: OpenSearchProfileSearch
) -> None:
    other = OpenSearchProfileSearch(settings_for(server.url), "acme")

    def rebuild_meanwhile(request: str) -> None:
        if request == f"PUT /{ALIAS}-000002":  # this sync has created its index
            server.after = None
            other.sync(profiles(PEOPLE[2:]), [], full=True, snapshot_id=9)

    server.after = rebuild_meanwhile
    with pytest.raises(SearchIndexBusyError, match="another sync replaced"):
        index.sync(profiles(PEOPLE[:1]), [], full=True, snapshot_id=8)
    # The other sync skipped generation 2, swapped first and deleted both older indices.
    assert server.aliases() == {ALIAS: [f"{ALIAS}-000003"]}
    assert sorted(server.indices) == [f"{ALIAS}-000003"]
    assert index.synced_snapshot() == 9
    assert ids(index.search("jose")) == ["jose"]
    other.close()


def test_an_incremental_sync_overtaken_by_a_rebuild_fails(
    server: OpenSearchServer, index: OpenSearchProfileSearch
) -> None:
    other = OpenSearchProfileSearch(settings_for(server.url), "acme")

    def rebuild_meanwhile(request: str) -> None:
        if request == f"POST /{ALIAS}-000001/_bulk":
            server.after = None
            other.sync(profiles(PEOPLE), [], full=True, snapshot_id=9)

    server.after = rebuild_meanwhile
    mei = {"profile_id": "id-mei", "first_name": "Mei"}
    with pytest.raises(SearchIndexBusyError, match="another sync replaced"):
        index.sync(profiles([mei]), [], full=False, snapshot_id=8)
    assert server.aliases() == {ALIAS: [f"{ALIAS}-000002"]}
    assert index.synced_snapshot() == 9  # the rebuild's, not the delta's
    assert ids(index.search("mei")) == []
    other.close()


def test_an_alias_on_two_indices_needs_a_full_sync_which_repairs_it(
    server: OpenSearchServer, index: OpenSearchProfileSearch
) -> None:
    """Two first rebuilds at once can both add the alias; the next full sync repairs it."""
    stray = OpenSearchProfileSearch(settings_for(server.url), "stray")
    stray.sync(profiles(PEOPLE[2:]), [], full=True, snapshot_id=3)
    server.indices["opencdp-profiles-stray-000001"].aliases = {ALIAS}
    assert index.synced_snapshot() is None
    with pytest.raises(SearchRebuildNeededError, match="points at 2 indices"):
        index.sync(profiles(PEOPLE), [], full=False, snapshot_id=8)
    index.sync(profiles(PEOPLE), [], full=True, snapshot_id=8)
    assert server.aliases() == {ALIAS: [f"{ALIAS}-000002"]}
    assert index.synced_snapshot() == 8
    stray.close()


def test_a_leftover_generation_is_skipped_and_then_deleted(
    server: OpenSearchServer, index: OpenSearchProfileSearch
) -> None:
    """A rebuild that stopped before its swap left generation 2 behind."""
    index.client.indices.create(index=f"{ALIAS}-000002", body={})
    index.sync(profiles(PEOPLE), [], full=True, snapshot_id=8)
    assert server.aliases() == {ALIAS: [f"{ALIAS}-000003"]}
    assert sorted(server.indices) == [f"{ALIAS}-000003"]


# --- tenants, settings and the loader ------------------------------------------------------


def test_tenants_have_aliases_and_indices_of_their_own(
    server: OpenSearchServer, index: OpenSearchProfileSearch
) -> None:
    globex = OpenSearchProfileSearch(settings_for(server.url), "globex")
    globex.sync(profiles(PEOPLE[2:]), [], full=True, snapshot_id=3)
    assert ids(globex.search("smith")) == []
    assert ids(index.search("jose")) == ["jose"]
    globex.sync(profiles([]), [], full=True, snapshot_id=4)
    assert ids(globex.search("jose")) == []
    assert ids(index.search("jose")) == ["jose"]
    assert server.aliases() == {
        ALIAS: [f"{ALIAS}-000001"],
        "opencdp-profiles-globex": ["opencdp-profiles-globex-000002"],
    }
    assert (index.synced_snapshot(), globex.synced_snapshot()) == (7, 4)
    globex.close()


def test_open_search_chooses_opensearch_from_the_settings(
    server: OpenSearchServer, tmp_path: Path, clean_env: None
) -> None:
    settings = load_settings(
        tmp_path,
        serve={"search": {"backend": "opensearch", "url": server.url, "index_prefix": "crm"}},
        tenants={"acme_uk": {"default_country": "GB"}},
    )
    search = open_search(settings, "acme_uk")
    assert isinstance(search, OpenSearchProfileSearch)
    assert (search.alias, search.default_country) == ("crm-profiles-acme_uk", "GB")
    jo = {"profile_id": "id-jo", "phone": "+442079460958"}
    search.sync(profiles([jo]), [], full=True, snapshot_id=1)
    assert ids(open_search(settings, "acme_uk").search("020 7946 0958")) == ["jo"]
    assert server.aliases() == {"crm-profiles-acme_uk": ["crm-profiles-acme_uk-000001"]}
    assert not (tmp_path / "state" / "search").exists()  # nothing on disk


def _resolve(settings: Settings, emails: list[str]) -> None:
    rows = [customer("crm", str(i), email=e, last_name="Lovelace") for i, e in enumerate(emails)]
    write(settings, "acme", "customers", rows)
    with DuckDBEngine(workers=1) as engine:
        resolve(settings, "acme", engine)


def test_the_index_follows_loads_and_is_rebuilt_when_behind(
    server: OpenSearchServer, database: Database, tmp_path: Path, clean_env: None
) -> None:
    settings = load_settings(
        tmp_path,
        database={"url": database.conninfo()},
        serve={"search": {"backend": "opensearch", "url": server.url}},
    )
    search = open_search(settings, "acme")
    _resolve(settings, ["ada@gmail.com", "bob@gmail.com"])
    assert refresh_tenant(settings, "acme").search == "rebuilt: 2 profiles"
    assert search.search("Lovelace").total == 2
    _resolve(settings, ["ada@gmail.com", "bob@gmail.com", "cy@gmail.com"])
    assert refresh_tenant(settings, "acme").search.startswith("updated:")
    assert search.search("Lovelace").total == 3
    assert refresh_tenant(settings, "acme").search == "up to date"
    search.client.indices.delete(index=f"{ALIAS}-000001")  # the index is lost
    behind = refresh_tenant(settings, "acme")
    assert behind.load.tables["profiles"].mode == "skipped"
    assert behind.search == "rebuilt: 3 profiles"
    assert search.search("Lovelace").total == 3
    search.close()


# --- the same ranking as Tantivy -----------------------------------------------------------


@pytest.mark.parametrize(
    "q",
    ["smith", "Jonh Smiht", "jsmtih@example.com", "jsmi", "0100", "+1 (415) 555-0100",
     "jose nunez", "initech", "jo", "j smith", "san francisco", "sh-1001", "oakland 0199"],
)  # fmt: skip
def test_both_backends_score_alike(index: OpenSearchProfileSearch, tmp_path: Path, q: str) -> None:
    tantivy = TantivyProfileSearch(tmp_path / "tantivy")
    tantivy.sync(profiles(PEOPLE), [], full=True, snapshot_id=7)
    for filters in ({}, {"country": "US"}):
        expected, found = tantivy.search(q, filters=filters), index.search(q, filters=filters)
        assert found.total == expected.total
        assert sorted(found.hits, key=repr) == sorted(expected.hits, key=repr)


# --- the contract server itself ------------------------------------------------------------


@pytest.fixture
def client(server: OpenSearchServer) -> Iterator[OpenSearch]:
    raw = OpenSearch(hosts=[server.url], max_retries=0)
    yield raw
    raw.close()


def _strict(client: OpenSearch, name: str = "people", **settings: Any) -> None:
    mappings = {"dynamic": "strict", "properties": {"name": {"type": "keyword"}}}
    client.indices.create(index=name, body={"settings": settings, "mappings": mappings})


def _search(client: OpenSearch, query: dict[str, Any], **body: Any) -> list[str]:
    found = client.search(index="people", body={"query": query, **body})
    return [hit["_id"] for hit in found["hits"]["hits"]]


def test_the_contract_server_answers_errors_in_opensearchs_shape(client: OpenSearch) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.indices.get_mapping(index="nobody")
    assert caught.value.info == {
        "error": {
            "root_cause": [caught.value.info["error"]["root_cause"][0]],
            "type": "index_not_found_exception",
            "reason": "no such index [nobody]",
            "index": "nobody",
            "resource.type": "index_or_alias",
            "resource.id": "nobody",
            "index_uuid": "_na_",
        },
        "status": 404,
    }
    _strict(client)
    with pytest.raises(RequestError, match="resource_already_exists_exception"):
        _strict(client)
    with pytest.raises(RequestError, match="invalid_index_name_exception"):
        _strict(client, "People")


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"match": {"name": "ann"}}, "not modeled"),  # a full-text query
        ({"term": {"name": "ann"}}, "not modeled"),  # scored by BM25
        ({"bool": {"must": [{"prefix": {"name": "a"}}]}}, "not modeled"),
        ({"constant_score": {"filter": {"term": {"name": "ann"}}, "_name": "x"}}, "not modeled"),
        ({"fuzzy": {"name": {"value": "ann", "fuzziness": 3}}}, "not modeled|edit distances"),
        ({"terms_of_service": {}}, "unknown query"),
    ],
)
def test_the_contract_server_refuses_what_it_does_not_model(
    client: OpenSearch, query: dict[str, Any], error: str
) -> None:
    _strict(client)
    with pytest.raises(RequestError, match=error):
        _search(client, query)


@pytest.mark.parametrize(
    ("mappings", "error"),
    [
        ({"colour": "red"}, r"unsupported parameters: \[colour\]"),  # unknown to OpenSearch
        ({"_source": {"enabled": False}}, r"mapping parameter \[_source\] is not modeled"),
        ({"properties": {"name": {"type": "keyword", "shade": 1}}}, r"unknown parameter \[shade\]"),
        (
            {"properties": {"name": {"type": "keyword", "store": True}}},
            r"keyword parameter \[store\] of \[name\] is not modeled",
        ),
    ],
)
def test_the_contract_server_refuses_mapping_parameters_it_does_not_know_or_model(
    client: OpenSearch, mappings: dict[str, Any], error: str
) -> None:
    with pytest.raises(RequestError, match=error):
        client.indices.create(index="people", body={"mappings": mappings})
    assert not client.indices.exists(index="people")


def test_the_contract_server_follows_the_bulk_contract(client: OpenSearch) -> None:
    _strict(client, refresh_interval="-1")
    body = [
        {"index": {"_id": "1"}}, {"name": "ann"},
        {"delete": {"_id": "nobody"}},
        {"index": {"_id": "2"}}, {"name": "bob", "age": 7},
        {"index": {"_index": "missing", "_id": "3"}}, {"name": "cy"},
    ]  # fmt: skip
    answer = client.bulk(index="people", body=body)
    assert answer["errors"] is True
    statuses = [(op, item["status"]) for entry in answer["items"] for op, item in entry.items()]
    assert statuses == [("index", 201), ("delete", 404), ("index", 400), ("index", 404)]
    assert answer["items"][1]["delete"]["result"] == "not_found"
    assert answer["items"][2]["index"]["error"]["type"] == "strict_dynamic_mapping_exception"
    assert answer["items"][3]["index"]["error"]["type"] == "index_not_found_exception"
    clean = client.bulk(index="people", body=[{"delete": {"_id": "nobody"}}])
    assert clean["errors"] is False  # a missing document to delete is not an error
    query = {"constant_score": {"filter": {"term": {"name": "ann"}}}}
    assert _search(client, query) == []  # not refreshed yet
    client.indices.refresh(index="people")
    assert _search(client, query) == ["1"]
    with pytest.raises(RequestError, match="terminated by a newline"):
        client.transport.perform_request("POST", "/_bulk", body='{"delete": {"_id": "1"}}')


def test_the_contract_server_refuses_an_immense_term_unless_ignored(client: OpenSearch) -> None:
    _strict(client)
    ignored = {"type": "keyword", "ignore_above": 10}
    client.indices.create(index="kept", body={"mappings": {"properties": {"name": ignored}}})
    immense = {"name": "x" * 32_767}
    refused = client.bulk(body=[{"index": {"_index": "people", "_id": "1"}}, immense])
    assert refused["items"][0]["index"]["error"]["reason"].startswith("Document contains at")
    kept = client.bulk(body=[{"index": {"_index": "kept", "_id": "1"}}, immense])
    assert kept["errors"] is False


def test_the_contract_server_applies_alias_actions_all_or_nothing(
    client: OpenSearch, server: OpenSearchServer
) -> None:
    _strict(client, "a")
    _strict(client, "b")
    client.indices.update_aliases(body={"actions": [{"add": {"index": "a", "alias": "live"}}]})
    swap = [{"add": {"index": "b", "alias": "live"}}, {"remove_index": {"index": "gone"}}]
    with pytest.raises(NotFoundError, match="index_not_found_exception"):
        client.indices.update_aliases(body={"actions": swap})
    assert server.aliases() == {"live": ["a"]}
    swap = [{"add": {"index": "b", "alias": "live"}}, {"remove_index": {"index": "a"}}]
    client.indices.update_aliases(body={"actions": swap})
    assert server.aliases() == {"live": ["b"]}
    assert sorted(server.indices) == ["b"]
    with pytest.raises(NotFoundError, match="aliases_not_found_exception"):
        client.indices.update_aliases(
            body={"actions": [{"remove": {"index": "b", "alias": "old", "must_exist": True}}]}
        )
    assert client.indices.exists_alias(name="live")
    assert not client.indices.exists_alias(name="old")


def test_the_contract_servers_fuzzy_query_keeps_the_nearest_terms_unless_rewritten(
    client: OpenSearch,
) -> None:
    _strict(client, refresh_interval="-1")
    names = ["smith", "smyth", "smit", "smithe", "smiths"]
    body = [line for i, n in enumerate(names) for line in ({"index": {"_id": n}}, {"name": n})]
    client.bulk(index="people", body=body, params={"refresh": "true"})
    fuzzy = {"value": "smith", "fuzziness": 1, "max_expansions": 2}
    nearest = _search(client, {"constant_score": {"filter": {"fuzzy": {"name": fuzzy}}}})
    assert sorted(nearest) == ["smit", "smith"]  # distance 0, then the first of distance 1
    every = {**fuzzy, "rewrite": "constant_score"}
    assert len(_search(client, {"constant_score": {"filter": {"fuzzy": {"name": every}}}})) == 5
    swapped = {"value": "msith", "fuzziness": 1}
    assert _search(client, {"constant_score": {"filter": {"fuzzy": {"name": swapped}}}}) == [
        "smith"
    ]
    levenshtein = {**swapped, "transpositions": False}
    assert _search(client, {"constant_score": {"filter": {"fuzzy": {"name": levenshtein}}}}) == []
