"""Curated tables written straight into a tenant's catalog, for the stages after the
transform (identity resolution): rows given as dicts, every other column null."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue

from opencdp.lake import ensure_namespace, open_catalog
from opencdp.lake.commit import commit, ensure_table
from opencdp.lake.tables import load_table
from opencdp.settings import Settings
from opencdp.transform.model import TABLES

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def at(days: int) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def _row(provider: str, key: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A row of `provider` with its key, lineage columns and `values`."""
    lineage = {"_raw_file": f"raw/{provider}.ndjson.gz", "_line": 1, "_ingested_at": T0}
    return {"provider": provider, **key, **lineage, **values}


def customer(provider: str, source_id: str, **values: Any) -> dict[str, Any]:
    defaults = {"external_ids": [(provider, source_id)], "created_at": T0, "updated_at": T0}
    return _row(provider, {"source_id": source_id}, {**defaults, **values})


def event(provider: str, event_id: str, **values: Any) -> dict[str, Any]:
    defaults = {"type": "track", "timestamp": T0, "received_at": T0}
    return _row(provider, {"event_id": event_id}, {**defaults, **values})


def order(provider: str, order_id: str, **values: Any) -> dict[str, Any]:
    defaults = {"currency": "USD", "created_at": T0, "updated_at": T0}
    return _row(provider, {"order_id": order_id}, {**defaults, **values})


def write(settings: Settings, tenant: str, name: str, rows: list[dict[str, Any]]) -> None:
    """Replace the tenant's curated table `name` with `rows`."""
    model = TABLES[name]
    data = pa.Table.from_pylist(rows, schema=model.schema)
    with open_catalog(settings) as catalog:
        ensure_namespace(catalog, tenant)
        lake = ensure_table(catalog, tenant, name, model.schema, model.partition, {})
        commit(lake, data, run_id="test", replace=AlwaysTrue())


def read(settings: Settings, tenant: str, name: str) -> pa.Table:
    with open_catalog(settings) as catalog:
        return load_table(catalog, tenant, name).scan().to_arrow()
