"""The Iceberg catalog: one behaviour suite run against the embedded default and against a
catalog chosen by configuration alone (a PyIceberg SQL catalog set in opencdp.yaml)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from pyiceberg.catalog.sql import SqlCatalog

from opencdp.errors import ConfigError, InvalidNameError, NotFoundError
from opencdp.lake import ensure_namespace, list_tables, load_table, open_catalog, table_identifier
from opencdp.settings import CONFIG_FILE, Settings, load_settings

pytestmark = pytest.mark.integration

CUSTOMERS = pa.table({"profile_id": ["p1", "p2"], "email": ["ann@example.com", None]})


def configured_settings(data_root: Path, elsewhere: Path) -> Settings:
    """Settings whose opencdp.yaml points the catalog at a SQLite file outside the root."""
    config = {
        "catalog": {
            "name": "configured",
            "properties": {
                "type": "sql",
                "uri": f"sqlite:///{elsewhere / 'iceberg.db'}",
                "warehouse": (elsewhere / "lake").as_uri(),
            },
        }
    }
    (data_root / CONFIG_FILE).write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_settings(data_root)


@pytest.fixture(params=["embedded", "configured"])
def lake_settings(
    request: pytest.FixtureRequest, settings: Settings, data_root: Path, tmp_path: Path
) -> Settings:
    if request.param == "embedded":
        return settings
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return configured_settings(data_root, elsewhere)


def test_tables_round_trip(lake_settings: Settings) -> None:
    with open_catalog(lake_settings) as catalog:
        ensure_namespace(catalog, "acme")
        ensure_namespace(catalog, "acme")  # idempotent
        for name in ("orders", "customers"):
            table = catalog.create_table(table_identifier("acme", name), schema=CUSTOMERS.schema)
            table.append(CUSTOMERS)
        assert list_tables(catalog, "acme") == ["customers", "orders"]
        assert load_table(catalog, "acme", "customers").scan().to_arrow().equals(CUSTOMERS)


def test_an_empty_namespace_lists_no_tables(lake_settings: Settings) -> None:
    with open_catalog(lake_settings) as catalog:
        ensure_namespace(catalog, "acme")
        assert list_tables(catalog, "acme") == []


def test_an_unknown_tenant_is_not_found_with_a_hint(lake_settings: Settings) -> None:
    with open_catalog(lake_settings) as catalog, pytest.raises(NotFoundError) as e:
        list_tables(catalog, "globex")
    assert "globex" in e.value.message
    assert e.value.hint == (
        "run `opencdp transform --tenant globex` first to build its curated tables"
    )


def test_a_missing_table_is_not_found_with_a_hint(lake_settings: Settings) -> None:
    with open_catalog(lake_settings) as catalog:
        ensure_namespace(catalog, "acme")
        with pytest.raises(NotFoundError, match=r"table acme\.profiles does not exist") as e:
            load_table(catalog, "acme", "profiles")
    assert e.value.hint is not None
    assert "opencdp transform --tenant acme" in e.value.hint


@pytest.mark.parametrize(("tenant", "table"), [("Acme", "customers"), ("acme", "../x")])
def test_unsafe_names_are_refused(lake_settings: Settings, tenant: str, table: str) -> None:
    with open_catalog(lake_settings) as catalog, pytest.raises(InvalidNameError):
        load_table(catalog, tenant, table)


def test_embedded_catalog_and_warehouse_live_in_the_data_root(settings: Settings) -> None:
    with open_catalog(settings) as catalog:
        assert isinstance(catalog, SqlCatalog)
        ensure_namespace(catalog, "acme")
        catalog.create_table(("acme", "customers"), schema=CUSTOMERS.schema).append(CUSTOMERS)
    assert (settings.root / "catalog.db").is_file()
    assert list((settings.root / "warehouse" / "acme" / "customers" / "data").glob("*.parquet"))


def test_configured_catalog_lives_where_its_properties_say(
    data_root: Path, tmp_path: Path, clean_env: None
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with open_catalog(configured_settings(data_root, elsewhere)) as catalog:
        assert catalog.name == "configured"
        ensure_namespace(catalog, "acme")
        catalog.create_table(("acme", "customers"), schema=CUSTOMERS.schema).append(CUSTOMERS)
    assert (elsewhere / "iceberg.db").is_file()
    assert list((elsewhere / "lake" / "acme" / "customers" / "data").glob("*.parquet"))
    assert not (data_root / "catalog.db").exists()
    assert not (data_root / "warehouse").exists()


def test_a_missing_data_root_is_not_found(tmp_path: Path, clean_env: None) -> None:
    with pytest.raises(NotFoundError, match="does not exist") as e:
        open_catalog(load_settings(tmp_path / "nowhere"))
    assert e.value.hint is not None
    assert "opencdp init" in e.value.hint


@pytest.mark.skipif(importlib.util.find_spec("thrift") is not None, reason="hive is installed")
def test_a_catalog_whose_library_is_missing_says_what_to_install(
    data_root: Path, clean_env: None
) -> None:
    settings = load_settings(
        data_root, catalog={"properties": {"type": "hive", "uri": "thrift://127.0.0.1:9083"}}
    )
    with pytest.raises(ConfigError, match=r"pip install 'pyiceberg\[hive\]'") as e:
        open_catalog(settings)
    assert "type hive" in e.value.message
    assert e.value.hint is not None
    assert "catalog.properties" in e.value.hint


@pytest.mark.parametrize(
    ("properties", "match"),
    [
        ({"type": "no_such_type"}, "'no_such_type' is not a valid CatalogType"),
        ({"type": "sql"}, "URI missing"),
        ({"uri": "ftp://example.com"}, "Could not infer the catalog type"),
    ],
)
def test_bad_catalog_properties_are_config_errors(
    data_root: Path, clean_env: None, properties: dict[str, str], match: str
) -> None:
    settings = load_settings(data_root, catalog={"properties": properties})
    with pytest.raises(ConfigError, match=match) as e:
        open_catalog(settings)
    assert e.value.hint is not None
    assert "catalog.properties" in e.value.hint
