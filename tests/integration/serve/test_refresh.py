"""The search index follows the loads: a delta after a delta, and a rebuild from the
loaded snapshot when the index fell behind (deleted, or a load stopped before it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.support.curated import customer, write

from opencdp.db import Database
from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.identity.resolve import resolve
from opencdp.serve.refresh import refresh_tenant
from opencdp.serve.search import open_search, search_folder
from opencdp.settings import Settings, load_settings

pytestmark = [pytest.mark.integration]


def _resolve(settings: Settings, emails: list[str]) -> None:
    rows = [customer("crm", str(i), email=e, last_name="Lovelace") for i, e in enumerate(emails)]
    write(settings, "acme", "customers", rows)
    with DuckDBEngine(workers=1) as engine:
        resolve(settings, "acme", engine)


def _found(settings: Settings, q: str) -> int:
    search = open_search(settings, "acme")
    try:
        return search.search(q).total
    finally:
        search.close()


def test_the_index_follows_loads_and_is_rebuilt_when_behind(
    database: Database, tmp_path: Path
) -> None:
    settings = load_settings(tmp_path, database={"url": database.conninfo()})
    _resolve(settings, ["ada@gmail.com", "bob@gmail.com"])
    first = refresh_tenant(settings, "acme")
    assert first.search == "rebuilt: 2 profiles"
    assert _found(settings, "Lovelace") == 2
    _resolve(settings, ["ada@gmail.com", "bob@gmail.com", "cy@gmail.com"])
    second = refresh_tenant(settings, "acme")
    assert second.search.startswith("updated:")
    assert _found(settings, "Lovelace") == 3
    assert refresh_tenant(settings, "acme").search == "up to date"
    shutil.rmtree(search_folder(settings.root, "acme"))
    behind = refresh_tenant(settings, "acme")  # the database has nothing new to load
    assert behind.load.tables["profiles"].mode == "skipped"
    assert behind.search == "rebuilt: 3 profiles"
    assert _found(settings, "Lovelace") == 3
