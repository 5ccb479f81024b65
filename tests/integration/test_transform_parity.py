"""One transform definition, two engines: the same raw zone through DuckDB and Spark must give
identical curated tables, row for row and value for value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from tests.support import data
from tests.support.raw import land_generated, land_live, land_tap

from opencdp.engine.base import Engine
from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.lake import load_table, open_catalog
from opencdp.settings import Settings, load_settings
from opencdp.transform import mappings
from opencdp.transform.model import TABLES
from opencdp.transform.run import transform

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANT = "acme"


def curated(settings: Settings, name: str) -> pa.Table:
    with open_catalog(settings) as catalog:
        table = load_table(catalog, TENANT, name).scan().to_arrow()
    return table.sort_by([(k, "ascending") for k in TABLES[name].key])


def test_duckdb_and_spark_build_identical_tables(
    settings: Settings, tmp_path: Path, spark_engine: Engine
) -> None:
    land_generated(settings, TENANT, events=1500)
    events = data.records("events", "events")
    # Live lines too: tracking-API events (some already seen by the tap) and a webhook.
    land_live(
        settings,
        TENANT,
        "segment",
        "track",
        [(e["messageId"], e["type"], e) for e in events[1000:]],
    )
    order = data.records("shopify", "orders")[0]
    land_live(
        settings, TENANT, "shopify", "orders", [("wh1", "orders/updated", order)], kind="webhook"
    )

    spark_root = tmp_path / "spark-root"
    spark_root.mkdir()
    shutil.copytree(settings.root / "raw", spark_root / "raw")
    shutil.copytree(settings.root / "state" / "schemas", spark_root / "state" / "schemas")
    spark_settings = load_settings(spark_root)

    with DuckDBEngine(workers=2) as duckdb_engine:
        on_duckdb = transform(settings, TENANT, duckdb_engine, mappings.BUILTIN, historic=True)
    on_spark = transform(spark_settings, TENANT, spark_engine, mappings.BUILTIN, historic=True)

    assert on_duckdb.lines == on_spark.lines
    assert_same_tables(settings, spark_settings)

    # An incremental run on both: updated customers and orders, new events.
    customers = [
        dict(c, email=f"new.{c['id']}@fastmail.com", updated_at="2031-01-01T00:00:00Z")
        for c in data.records("shopify", "customers")[:20]
    ]
    land_tap(settings, TENANT, "shopify", "customers", customers)
    changed = [
        dict(o, financial_status="refunded", updated_at="2031-01-01T00:00:00Z")
        for o in data.records("shopify", "orders")[:20]
    ]
    land_live(
        settings,
        TENANT,
        "shopify",
        "orders",
        [(f"u{o['id']}", "orders/updated", o) for o in changed],
        kind="webhook",
    )
    shutil.copytree(settings.root / "raw", spark_root / "raw", dirs_exist_ok=True)
    with DuckDBEngine(workers=2) as duckdb_engine:
        step = transform(settings, TENANT, duckdb_engine, mappings.BUILTIN)
    spark_step = transform(spark_settings, TENANT, spark_engine, mappings.BUILTIN)
    assert step.tables["orders"].deletes == len(changed)
    assert vars(step.tables["orders"]) == vars(spark_step.tables["orders"])
    assert_same_tables(settings, spark_settings)


def assert_same_tables(settings: Settings, spark_settings: Settings) -> None:
    for name in TABLES:
        mine, theirs = curated(settings, name), curated(spark_settings, name)
        assert mine.num_rows > 0, name
        assert mine.schema == theirs.schema, name
        assert mine.equals(theirs), f"{name} differs between DuckDB and Spark"
