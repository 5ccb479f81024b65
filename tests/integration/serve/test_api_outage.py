"""The API when its database goes away: a clear 503 with Retry-After, not a 500."""

from __future__ import annotations

import secrets
from pathlib import Path

import psycopg
import pytest
import requests
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr
from tests.support.collect import free_port, start_api, stop_service
from tests.support.curated import customer, write

from opencdp.db import Database
from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.identity.resolve import resolve
from opencdp.serve.keys import create_key
from opencdp.serve.refresh import refresh_tenant
from opencdp.settings import load_settings

pytestmark = [pytest.mark.integration]


def test_a_lost_database_is_a_503(postgres_admin: str, tmp_path: Path) -> None:
    name = f"opencdp_test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_admin, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(postgres_admin, dbname=name)
    settings = load_settings(tmp_path, database={"url": url})
    write(settings, "acme", "customers", [customer("crm", "1", email="ann.lee@gmail.com")])
    with DuckDBEngine(workers=1) as engine:
        resolve(settings, "acme", engine)
    refresh_tenant(settings, "acme")
    _, token = create_key(Database(SecretStr(url)), "acme", "test", ["profiles:read"])
    port = free_port()
    env = {"OPENCDP_DATABASE__URL": url, "OPENCDP_SERVE__KEY_CACHE_SECONDS": "0"}
    process = start_api(tmp_path, port, env=env)
    lookup = f"http://127.0.0.1:{port}/v1/profiles/lookup"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        found = requests.get(
            lookup, params={"email": "ann.lee@gmail.com"}, headers=headers, timeout=30
        )
        assert found.status_code == 200, found.text
        with psycopg.connect(postgres_admin, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        gone = requests.get(
            lookup, params={"email": "ann.lee@gmail.com"}, headers=headers, timeout=30
        )
        assert gone.status_code == 503, gone.text
        assert gone.headers["content-type"] == "application/problem+json"
        assert gone.headers["retry-after"] == "1"
        assert gone.json()["type"].endswith("/unavailable")
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        stop_service(process)
