"""The API on the session's generated tenant, where resolution trained a model: enrichment
by traits alone (no identifier) matches by the model, as resolution compares records."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr
from tests.support.collect import free_port, start_api, stop_service
from tests.support.raw import land_generated

from opencdp.db import Database
from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.identity.resolve import resolve
from opencdp.serve.keys import create_key
from opencdp.serve.refresh import refresh_tenant
from opencdp.settings import load_settings
from opencdp.transform import mappings
from opencdp.transform.run import transform

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANT = "acme"


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, embedded_server: Any
) -> Iterator[tuple[str, dict[str, str], list[dict[str, Any]]]]:
    admin = embedded_server.start().conninfo()
    name = f"opencdp_test_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(admin, dbname=name)
    root = tmp_path_factory.mktemp("generated-api")
    settings = load_settings(
        root,
        database={"url": url},
        tenants={TENANT: {"identity": {"user_id_provider": "shopify"}}},
    )
    land_generated(settings, TENANT)
    with DuckDBEngine(workers=2) as engine:
        transform(settings, TENANT, engine, mappings.combine(()))
        report = resolve(settings, TENANT, engine)
    assert report.model_trained
    refresh_tenant(settings, TENANT)
    _, token = create_key(Database(SecretStr(url)), TENANT, "test", ["profiles:read"])
    with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        people = conn.execute(
            "SELECT profile_id, first_name, last_name, postcode, birth_date, city "
            "FROM t_acme.profiles WHERE first_name IS NOT NULL AND last_name IS NOT NULL "
            "AND postcode IS NOT NULL AND birth_date IS NOT NULL AND length(first_name) > 4 "
            "ORDER BY profile_id LIMIT 5"
        ).fetchall()
    port = free_port()
    process = start_api(root, port, env={"OPENCDP_DATABASE__URL": url})
    try:
        yield f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}, people
    finally:
        stop_service(process)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_enrich_by_traits_matches_by_the_model(
    api: tuple[str, dict[str, str], list[dict[str, Any]]],
) -> None:
    url, headers, people = api
    assert people
    for person in people:
        first = person["first_name"]
        misspelled = first[0] + first[2] + first[1] + first[3:]  # two letters swapped
        body = {
            "first_name": misspelled,
            "last_name": person["last_name"],
            "postcode": person["postcode"],
            "birth_date": person["birth_date"].isoformat(),
        }
        response = requests.post(f"{url}/v1/enrich", json=body, headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        found = response.json()
        assert found["profile_id"] == person["profile_id"], (body, found)
        assert found["method"] == "model"
        assert found["confidence"] >= 0.8
        assert {"last_name", "birth_date"} <= set(found["matched_on"])


def test_enrich_by_traits_of_nobody_finds_nothing(
    api: tuple[str, dict[str, str], list[dict[str, Any]]],
) -> None:
    url, headers, _ = api
    body = {"first_name": "Zebulon", "last_name": "Quaxworthy", "postcode": "00001",
            "birth_date": "1901-02-03"}  # fmt: skip
    response = requests.post(f"{url}/v1/enrich", json=body, headers=headers, timeout=60)
    assert response.status_code == 404, response.text
    assert response.json()["type"].endswith("/no-match")
