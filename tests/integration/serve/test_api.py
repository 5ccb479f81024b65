"""The REST API, served by `opencdp serve` on 127.0.0.1, on a tenant that went through the
real pipeline: curated tables, identity resolution, the loader and the search index.

Every endpoint, every kind of bad input, and tenant isolation: another tenant's key sees
nothing of this tenant on any endpoint."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr
from tests.support.collect import free_port, start_api, stop_service
from tests.support.curated import at, customer, event, order, write

from opencdp.db import Database, ensure_tenant
from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.identity.resolve import resolve
from opencdp.serve.keys import create_key
from opencdp.serve.refresh import refresh_tenant
from opencdp.settings import Settings, load_settings

pytestmark = [pytest.mark.integration]

ACME, GLOBEX = "acme", "globex"
EVENTS = 120
READER = "reader"  # the name of the key most tests use


@dataclass
class Served:
    url: str
    admin: str  # a superuser connection string to the test's database
    tokens: dict[str, str]
    profiles: dict[str, str]  # person -> profile_id

    def get(self, path: str, token: str | None = READER, **params: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[token]}"} if token else {}
        return requests.get(self.url + path, params=params, headers=headers, timeout=30)

    def post(self, path: str, body: Any, token: str = READER) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[token]}"}
        return requests.post(self.url + path, json=body, headers=headers, timeout=60)


def _acme(settings: Settings) -> None:
    write(settings, ACME, "customers", [
        customer("shopify", "101", email="john.smith@gmail.com", phone="+14155550100",
                 first_name="John", last_name="Smith", full_name="John Smith",
                 city="San Francisco", postcode="94107", country="US", updated_at=at(3)),
        customer("stripe", "cus_1", email="john.smith@gmail.com", first_name="Jonathan",
                 last_name="Smith", full_name="Jonathan Smith", country="US",
                 updated_at=at(1)),
        customer("crm", "7", email="maria.garcia@yahoo.com", phone="+33655999949",
                 first_name="María", last_name="García", full_name="María García",
                 city="Lyon", postcode="69001", country="FR"),
        customer("shopify", "102", email="ann.lee@outlook.com", first_name="Ann",
                 last_name="Lee", full_name="Ann Lee", city="Boston", country="US"),
        # One phone given by six different people: blocked, it identifies nobody.
        *(customer("crm", f"s{i}", email=f"shared{i}@gmail.com", phone="+14155550123",
                   first_name="Shared", last_name=f"Person{i}") for i in range(6)),
    ])  # fmt: skip
    write(settings, ACME, "orders", [
        order("shopify", "o1", source_customer_id="101", total_amount=30, status="paid",
              created_at=at(10), updated_at=at(10)),
        order("shopify", "o2", source_customer_id="101", total_amount=12, status="refunded",
              created_at=at(20), updated_at=at(20)),
        order("shopify", "o3", source_customer_id="102", total_amount=5, status="paid"),
    ])  # fmt: skip
    write(settings, ACME, "order_items", [
        {"provider": "shopify", "order_id": "o1", "line_id": f"l{i}", "sku": f"SKU{i}",
         "name": f"Item {i}", "quantity": i, "unit_price": 5, "total": 5 * i,
         "created_at": at(10), "updated_at": at(10), "_raw_file": "raw", "_line": i,
         "_ingested_at": at(0)}
        for i in (1, 2)
    ])  # fmt: skip
    write(settings, ACME, "events", [
        event("segment", f"e{i:03d}", user_id="101", type="track" if i % 3 else "page",
              name="Viewed" if i % 3 else None, timestamp=at(i),
              properties=f'{{"n": {i}}}')
        for i in range(EVENTS)
    ])  # fmt: skip


def _globex(settings: Settings, *, bridged: bool = False) -> None:
    """globex's customers; `bridged` adds a record with the email of one and the phone of
    the other, so that a resolution merges their profiles."""
    bridge = [customer("crm", "9", email="john.smith@gmail.com", phone="+14155550199")]
    write(settings, GLOBEX, "customers", [
        customer("shopify", "101", email="john.smith@gmail.com", first_name="Other",
                 last_name="Tenant"),
        customer("shopify", "102", email="other.person@example.com", phone="+14155550199"),
        *(bridge if bridged else []),
    ])  # fmt: skip


@pytest.fixture(scope="module")
def served(postgres_admin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    name = f"opencdp_test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_admin, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(postgres_admin, dbname=name)
    root: Path = tmp_path_factory.mktemp("api")
    tenants = {ACME: {"identity": {"user_id_provider": "shopify"}}}
    settings = load_settings(root, database={"url": url}, tenants=tenants)
    db = Database(SecretStr(url))
    _acme(settings)
    _globex(settings)
    with DuckDBEngine(workers=2) as engine:
        for tenant in (ACME, GLOBEX):
            resolve(settings, tenant, engine)
            ensure_tenant(db, tenant)
            refresh_tenant(settings, tenant)
        _globex(settings, bridged=True)
        resolve(settings, GLOBEX, engine)
        refresh_tenant(settings, GLOBEX)
    tokens = {
        "reader": create_key(db, ACME, "reader", ["profiles:read", "events:read"])[1],
        "profiles_only": create_key(db, ACME, "profiles", ["profiles:read"])[1],
        "admin": create_key(db, ACME, "admin", ["admin"])[1],
        "globex": create_key(db, GLOBEX, "globex", ["admin"])[1],
    }
    revoked, tokens["revoked"] = create_key(db, ACME, "revoked", ["admin"])
    expired, tokens["expired"] = create_key(
        db, ACME, "expired", ["admin"], expires_at=datetime.now(UTC) + timedelta(hours=1)
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE opencdp.api_keys SET revoked_at = now() WHERE key_id = %s",
                     (revoked.key_id,))  # fmt: skip
        # An hour passes: the key expires.
        conn.execute(
            "UPDATE opencdp.api_keys SET expires_at = now() - interval '1 second' "
            "WHERE key_id = %s",
            (expired.key_id,),
        )
        rows = conn.execute(
            "SELECT i.id_value, i.profile_id FROM t_acme.identities i WHERE i.id_type = 'email'"
        ).fetchall()
    profiles = {str(value).split("@")[0]: str(profile) for value, profile in rows}
    port = free_port()
    env = {"OPENCDP_DATABASE__URL": url, "OPENCDP_SERVE__KEY_CACHE_SECONDS": "0",
           "OPENCDP_SERVE__AUDIT_FLUSH_SECONDS": "0.2"}  # fmt: skip
    process = start_api(root, port, workers=1, env=env)
    try:
        yield Served(f"http://127.0.0.1:{port}", url, tokens, profiles)
    finally:
        stop_service(process)
        with psycopg.connect(postgres_admin, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def problem(response: requests.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].endswith("/" + kind), body
    assert body["detail"]
    return body


# --- profiles ------------------------------------------------------------------------------


def test_a_profile_with_traits_lineage_identities_and_computed_traits(served: Served) -> None:
    john = served.profiles["john.smith"]
    body = served.get(f"/v1/profiles/{john}").json()
    assert body["profile_id"] == john
    assert body["traits"]["email"] == "john.smith@gmail.com"
    assert body["traits"]["phone"] == "+14155550100"
    assert body["traits"]["city"] == "San Francisco"
    assert body["trait_lineage"]["city"]["provider"] == "shopify"
    assert {"shopify", "stripe"} <= set(body["sources"])
    identities = {(i["type"], i["value"]) for i in body["identities"]}
    assert {("email", "john.smith@gmail.com"), ("phone", "+14155550100"),
            ("shopify_id", "101"), ("stripe_id", "cus_1")} <= identities  # fmt: skip
    assert body["computed"]["order_count"] == 2
    assert float(body["computed"]["total_revenue"]) == 42


def test_an_unknown_or_malformed_profile_id(served: Served) -> None:
    problem(served.get("/v1/profiles/p_" + "0" * 24), 404, "profile-not-found")
    problem(served.get("/v1/profiles/not-a-profile"), 400, "malformed-profile-id")
    problem(served.get("/v1/profiles/p_" + "0" * 24 + "'; DROP TABLE x;--"), 400,
            "malformed-profile-id")  # fmt: skip


@pytest.mark.parametrize(
    "params",
    [
        {"email": "john.smith@gmail.com"},
        {"email": "  John.Smith@GMAIL.com "},
        {"phone": "+1 (415) 555-0100"},
        {"phone": "4155550100"},
        {"phone": "415.555.0100"},
        {"external_id": "cus_1", "source": "stripe"},
        {"external_id": "101", "source": "shopify"},
    ],
)
def test_lookup_by_any_identifier_in_any_format(served: Served, params: dict[str, str]) -> None:
    response = served.get("/v1/profiles/lookup", **params)
    assert response.status_code == 200, response.text
    assert response.json()["profile_id"] == served.profiles["john.smith"]


def test_lookup_bad_and_unknown_identifiers(served: Served) -> None:
    lookup = "/v1/profiles/lookup"
    problem(served.get(lookup, email="someone.else@gmail.com"), 404, "identifier-not-found")
    problem(served.get(lookup, email="not-an-email"), 400, "malformed-identifier")
    problem(served.get(lookup, phone="12"), 400, "malformed-identifier")
    problem(served.get(lookup, external_id="101"), 400, "malformed-identifier")
    problem(served.get(lookup), 400, "one-identifier")
    problem(served.get(lookup, email="john.smith@gmail.com", phone="4155550100"), 400,
            "one-identifier")  # fmt: skip
    problem(served.get(lookup, external_id="1", source="Bad Source!"), 400, "invalid-request")
    problem(served.get(lookup, email="x" * 400 + "@gmail.com"), 400, "invalid-request")
    blocked = problem(served.get(lookup, phone="+14155550123"), 404, "identifier-blocked")
    assert "phone" in blocked["detail"]


# --- timeline ------------------------------------------------------------------------------


def test_events_page_by_page_newest_first(served: Served) -> None:
    john = served.profiles["john.smith"]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 50, **({"cursor": cursor} if cursor else {})}
        body = served.get(f"/v1/profiles/{john}/events", **params).json()
        seen += [e["event_id"] for e in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"e{i:03d}" for i in reversed(range(EVENTS))]


def test_events_filtered_by_type_and_time(served: Served) -> None:
    john = served.profiles["john.smith"]
    path = f"/v1/profiles/{john}/events"
    pages = served.get(path, type="page", limit=500).json()["data"]
    assert {e["type"] for e in pages} == {"page"}
    assert len(pages) == len([i for i in range(EVENTS) if i % 3 == 0])
    window = served.get(path, since=at(10).isoformat(), until=at(20).isoformat()).json()
    assert [e["event_id"] for e in window["data"]] == [f"e{i:03d}" for i in range(19, 9, -1)]
    assert window["data"][0]["properties"] == {"n": 19}
    named = served.get(path, name="Viewed", limit=5).json()
    assert {e["name"] for e in named["data"]} == {"Viewed"}


def test_timeline_bad_input(served: Served) -> None:
    john = served.profiles["john.smith"]
    path = f"/v1/profiles/{john}/events"
    problem(served.get(path, cursor="garbage"), 400, "bad-cursor")
    problem(served.get(path, cursor="W10"), 400, "bad-cursor")  # "[]" in base64url
    problem(served.get(path, limit=0), 400, "invalid-request")
    problem(served.get(path, limit=100_000), 400, "invalid-request")
    problem(served.get(path, type="nonsense"), 400, "invalid-request")
    problem(served.get(path, since="yesterday"), 400, "invalid-request")
    problem(served.get("/v1/profiles/p_" + "0" * 24 + "/events"), 404, "profile-not-found")
    problem(served.get("/v1/profiles/p_" + "0" * 24 + "/orders"), 404, "profile-not-found")


def test_orders_with_items_newest_first(served: Served) -> None:
    john = served.profiles["john.smith"]
    body = served.get(f"/v1/profiles/{john}/orders", limit=1).json()
    assert [o["order_id"] for o in body["data"]] == ["o2"]
    following = served.get(f"/v1/profiles/{john}/orders", cursor=body["next_cursor"]).json()
    assert [o["order_id"] for o in following["data"]] == ["o1"]
    assert following["next_cursor"] is None
    items = following["data"][0]["items"]
    assert [(i["line_id"], i["quantity"]) for i in items] == [("l1", 1), ("l2", 2)]
    paid = served.get(f"/v1/profiles/{john}/orders", status="paid").json()
    assert [o["order_id"] for o in paid["data"]] == ["o1"]


# --- search --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "person"),
    [
        ("Jonh Smiht", "john.smith"),  # typos
        ("john.smith@gmial.com", "john.smith"),  # a misspelled email
        ("maria.gar", "maria.garcia"),  # the first letters of an email
        ("9949", "maria.garcia"),  # the last digits of a phone
        ("Maria Garcia", "maria.garcia"),  # without accents
    ],
)
def test_search_finds_the_person(served: Served, q: str, person: str) -> None:
    body = served.get("/v1/profiles/search", q=q).json()
    assert body["data"], body
    assert body["data"][0]["profile_id"] == served.profiles[person]
    assert body["data"][0]["score"] > 0


def test_search_filters_and_pages(served: Served) -> None:
    in_fr = served.get("/v1/profiles/search", q="", country="FR").json()
    assert [p["profile_id"] for p in in_fr["data"]] == [served.profiles["maria.garcia"]]
    page = served.get("/v1/profiles/search", q="Person", limit=2).json()
    assert len(page["data"]) == 2
    assert page["next_offset"] == 2
    assert page["total"] >= 6
    problem(served.get("/v1/profiles/search", q="x", shoe_size="42"), 400, "bad-search")
    odd = served.get("/v1/profiles/search", q='"(*:)' + "x" * 150)
    assert odd.status_code == 200
    assert odd.json()["data"] == []


# --- enrichment ----------------------------------------------------------------------------


def test_enrich_by_identifiers(served: Served) -> None:
    body = served.post("/v1/enrich", {"phone": "(415) 555-0100", "first_name": "John"}).json()
    assert body["profile_id"] == served.profiles["john.smith"]
    assert body["method"] == "identifier"
    assert body["matched_on"] == ["phone"]
    assert 0 < body["confidence"] <= 1
    assert body["profile"]["traits"]["email"] == "john.smith@gmail.com"
    both = served.post("/v1/enrich", {"email": "ANN.LEE@outlook.com", "external_id": "102",
                                      "source": "shopify"}).json()  # fmt: skip
    assert both["matched_on"] == ["email", "shopify_id"]


def test_enrich_bad_input(served: Served) -> None:
    problem(served.post("/v1/enrich", {}), 400, "too-little")
    problem(served.post("/v1/enrich", {"first_name": "John"}), 400, "too-little")
    problem(served.post("/v1/enrich", {"email": "nope"}), 400, "malformed-identifier")
    problem(served.post("/v1/enrich", {"shoe_size": 42}), 400, "invalid-request")
    problem(served.post("/v1/enrich", {"email": "someone.else@gmail.com"}), 404, "no-match")
    # Too few records were resolved here to train a model: trait matching says why not.
    no_model = served.post("/v1/enrich", {"first_name": "Ann", "last_name": "Lee",
                                          "city": "Boston"})  # fmt: skip
    problem(no_model, 404, "no-model")
    not_json = requests.post(served.url + "/v1/enrich", data=b"{", timeout=10,
                             headers={"Authorization": f"Bearer {served.tokens['reader']}",
                                      "Content-Type": "application/json"})  # fmt: skip
    problem(not_json, 400, "invalid-request")


# --- keys and tenants ----------------------------------------------------------------------


def _every_endpoint(served: Served) -> list[tuple[str, str, dict[str, Any]]]:
    john = served.profiles["john.smith"]
    return [
        ("get", f"/v1/profiles/{john}", {}),
        ("get", "/v1/profiles/lookup", {"email": "john.smith@gmail.com"}),
        ("get", f"/v1/profiles/{john}/events", {}),
        ("get", f"/v1/profiles/{john}/orders", {}),
        ("get", "/v1/profiles/search", {"q": "John Smith"}),
        ("post", "/v1/enrich", {"email": "john.smith@gmail.com"}),
    ]


def _call(served: Served, method: str, path: str, params: dict[str, Any], token: str | None
          ) -> requests.Response:  # fmt: skip
    if method == "post":
        headers = {"Authorization": f"Bearer {served.tokens[token]}"} if token else {}
        return requests.post(served.url + path, json=params, headers=headers, timeout=30)
    return served.get(path, token, **params)


def test_every_endpoint_refuses_a_missing_or_bad_key(served: Served) -> None:
    for method, path, params in _every_endpoint(served):
        missing = problem(_call(served, method, path, params, None), 401, "missing-key")
        assert missing
        for token in ("revoked", "expired"):
            problem(_call(served, method, path, params, token), 401, "invalid-key")
    john = served.profiles["john.smith"]
    for header in ("Basic abc", "Bearer", "Bearer ocdp_nope", "Bearer " + "x" * 5000):
        response = requests.get(f"{served.url}/v1/profiles/{john}",
                                headers={"Authorization": header}, timeout=10)  # fmt: skip
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"].startswith("Bearer")
    good = served.tokens["reader"]
    wrong_secret = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    served.tokens["wrong_secret"] = wrong_secret
    problem(served.get(f"/v1/profiles/{john}", "wrong_secret"), 401, "invalid-key")


def _merge_in_globex(served: Served) -> tuple[str, str]:
    """(the profile that lives on, the one merged into it) of globex's merge."""
    with psycopg.connect(served.admin, autocommit=True) as conn:
        row = conn.execute(
            "SELECT profile_id, other_profile_id FROM t_globex.profile_merges WHERE kind = 'merge'"
        ).fetchone()
    assert row is not None, "the bridging record merged two profiles"
    return str(row[0]), str(row[1])


def test_a_merged_away_profile_redirects_to_the_one_that_absorbed_it(served: Served) -> None:
    survivor, merged = _merge_in_globex(served)
    assert served.get(f"/v1/profiles/{survivor}", "globex").status_code == 200
    moved = served.get(f"/v1/profiles/{merged}", "globex")  # requests follows the redirect
    assert moved.status_code == 200
    assert moved.json()["profile_id"] == survivor
    assert [r.status_code for r in moved.history] == [308]

    headers = {"Authorization": f"Bearer {served.tokens['globex']}"}
    once = requests.get(f"{served.url}/v1/profiles/{merged}/events?limit=5&type=track",
                        headers=headers, allow_redirects=False, timeout=30)  # fmt: skip
    body = problem(once, 308, "profile-merged")
    assert body["merged_into"] == survivor
    assert once.headers["location"] == f"/v1/profiles/{survivor}/events?limit=5&type=track"


def test_a_merge_in_another_tenant_is_not_followed(served: Served) -> None:
    _survivor, merged = _merge_in_globex(served)
    problem(served.get(f"/v1/profiles/{merged}"), 404, "profile-not-found")
    problem(served.get(f"/v1/profiles/{merged}/orders"), 404, "profile-not-found")


def test_scopes(served: Served) -> None:
    john = served.profiles["john.smith"]
    assert served.get(f"/v1/profiles/{john}", "profiles_only").status_code == 200
    problem(served.get(f"/v1/profiles/{john}/events", "profiles_only"), 403, "missing-scope")
    problem(served.get(f"/v1/profiles/{john}/orders", "profiles_only"), 403, "missing-scope")
    assert served.get(f"/v1/profiles/{john}/events", "admin").status_code == 200


def test_another_tenants_key_sees_nothing_of_this_tenant(served: Served) -> None:
    for method, path, params in _every_endpoint(served):
        response = _call(served, method, path, params, "globex")
        if path == "/v1/profiles/search":
            assert response.status_code == 200
            ids = [p["profile_id"] for p in response.json()["data"]]
            assert served.profiles["john.smith"] not in ids
        elif "lookup" in path or path == "/v1/enrich":
            # globex has a john.smith@gmail.com of its own: never acme's profile
            assert response.status_code == 200, response.text
            assert response.json()["profile_id"] != served.profiles["john.smith"]
        else:
            assert response.status_code == 404, (path, response.text)


def test_profile_reads_are_audited_in_the_tenants_own_log(served: Served) -> None:
    john = served.profiles["john.smith"]
    marker = served.get(f"/v1/profiles/{john}", "admin")
    assert marker.status_code == 200
    deadline = time.monotonic() + 10
    rows: list[tuple[Any, ...]] = []
    while time.monotonic() < deadline:
        with psycopg.connect(served.admin, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT a.action, a.profile_id FROM t_acme.audit_log a "
                "JOIN opencdp.api_keys k ON k.key_id = a.key_id WHERE k.name = 'admin'"
            ).fetchall()
        if ("profile.read", john) in rows:
            break
        time.sleep(0.2)
    assert ("profile.read", john) in rows
    with psycopg.connect(served.admin, autocommit=True) as conn:
        leaked = conn.execute(
            "SELECT count(*) FROM t_globex.audit_log WHERE profile_id = %s", (john,)
        ).fetchone()
    assert leaked == (0,)


def test_openapi_document(served: Served) -> None:
    document = requests.get(served.url + "/openapi.json", timeout=10).json()
    paths = set(document["paths"])
    assert {"/v1/profiles/{profile_id}", "/v1/profiles/lookup", "/v1/profiles/search",
            "/v1/profiles/{profile_id}/events", "/v1/profiles/{profile_id}/orders",
            "/v1/enrich"} <= paths  # fmt: skip
    problem(requests.get(served.url + "/v1/nothing-here", timeout=10), 404, "not-found")
