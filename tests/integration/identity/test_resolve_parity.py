"""Identity resolution gives the same profiles on DuckDB and on Spark: the generated tenant,
every rule, the model trained once (on DuckDB) and reused by the Spark run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from tests.support.curated import read
from tests.support.raw import land_generated

from opencdp.engine.base import Engine
from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.identity.resolve import resolve
from opencdp.settings import Settings, load_settings
from opencdp.transform import mappings
from opencdp.transform.run import transform

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANT = "acme"
# Columns that hold the time of the run, not its result.
RUN_TIME = {"profiles": ("created_at", "updated_at")}


def sorted_rows(settings: Settings, name: str, key: list[str]) -> pa.Table:
    table = read(settings, TENANT, name)
    table = table.drop_columns([c for c in RUN_TIME.get(name, ()) if c in table.column_names])
    return table.sort_by([(k, "ascending") for k in key])


def test_duckdb_and_spark_resolve_alike(tmp_path: Path, spark_engine: Engine) -> None:
    duck_root = tmp_path / "duckdb"
    duck_root.mkdir()
    identity = {"identity": {"user_id_provider": "shopify"}}
    duck = load_settings(duck_root, tenants={TENANT: identity})
    land_generated(duck, TENANT)
    with DuckDBEngine(workers=2) as engine:
        transform(duck, TENANT, engine, mappings.combine(()))
        spark_root = tmp_path / "spark"
        shutil.copytree(duck_root, spark_root)  # the same curated tables, before identity
        resolve(duck, TENANT, engine)
    spark = load_settings(spark_root, tenants={TENANT: identity})
    model = "state/identity/acme/model.json"
    (spark_root / model).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(duck_root / model, spark_root / model)
    report = resolve(spark, TENANT, spark_engine)
    assert not report.model_trained
    for name, key in (
        ("profile_members", ["node"]),
        ("identities", ["id_type", "id_value"]),
        ("profiles", ["profile_id"]),
        ("customers", ["provider", "source_id"]),
        ("events", ["event_id"]),
    ):
        expected, got = sorted_rows(duck, name, key), sorted_rows(spark, name, key)
        assert got.num_rows == expected.num_rows, name
        differ = [
            (e, g) for e, g in zip(expected.to_pylist(), got.to_pylist(), strict=True) if e != g
        ]
        assert not differ, f"{name}: {len(differ)} rows differ, e.g. {differ[:2]}"
