"""Reading curated tables: DuckDB stands in for PyIceberg's reader on local files with many
row groups, and must give the same table, whatever the column types, a column added after
some files were written, or a snapshot other than the current one."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.expressions import AlwaysTrue
from tests.support.curated import at, customer, order

from opencdp.lake import ensure_namespace, load_table, open_catalog
from opencdp.lake import tables as lake_tables
from opencdp.lake.commit import commit, ensure_table
from opencdp.lake.tables import read_table
from opencdp.settings import Settings, load_settings
from opencdp.transform.model import CUSTOMERS, ORDERS

pytestmark = pytest.mark.integration

# One commit per batch: each adds a file per partition, so the scan holds many row groups.
BATCHES = 6


@pytest.fixture(autouse=True)
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader's choice as on a 2-core machine, whatever this one has: DuckDB from 4 row
    groups on (every test here writes at least 12, but the last one 2)."""
    monkeypatch.setattr(lake_tables, "DUCKDB_MIN_ROW_GROUPS", 4)


def customers(batch: int) -> list[dict[str, object]]:
    return [
        customer(
            provider,
            f"{batch}-{i}",
            email=f"person{batch}.{i}@example.com",
            first_name="Zoë" if i % 2 else None,
            external_ids=[(provider, f"{batch}-{i}"), ("crm", f"C{i}")],
            consent={"email": "granted", "sms": None, "ads": "denied", "updated_at": at(i)},
            updated_at=at(batch),
        )
        for i in range(3)
        for provider in ("shopify", "stripe")
    ]


def write_batches(settings: Settings, schema: pa.Schema, batches: range) -> None:
    with open_catalog(settings) as catalog:
        ensure_namespace(catalog, "acme")
        lake = ensure_table(catalog, "acme", "customers", schema, CUSTOMERS.partition, {})
        for batch in batches:
            rows = pa.Table.from_pylist(customers(batch), schema=CUSTOMERS.schema)
            commit(lake, rows.select(schema.names), run_id=f"run-{batch}", replace=None)


def both_readers(
    settings: Settings, name: str, schema: pa.Schema, snapshot_id: int | None = None
) -> tuple[pa.Table, pa.Table]:
    """The table read as read_table reads it, and by PyIceberg alone."""
    with open_catalog(settings) as catalog:
        fast = read_table(catalog, "acme", name, schema, snapshot_id=snapshot_id)
        scan = load_table(catalog, "acme", name).scan(snapshot_id=snapshot_id)
        assert (
            lake_tables._read_local_files(list(scan.plan_files()), tuple(schema.names)) is not None
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lake_tables, "_read_local_files", lambda *_: None)
        with open_catalog(settings) as catalog:
            plain = read_table(catalog, "acme", name, schema, snapshot_id=snapshot_id)
    return fast, plain


def ordered(table: pa.Table) -> pa.Table:
    return table.sort_by([("provider", "ascending"), ("source_id", "ascending")])


def test_duckdb_reads_what_pyiceberg_reads(settings: Settings) -> None:
    write_batches(settings, CUSTOMERS.schema, range(BATCHES))
    fast, plain = both_readers(settings, "customers", CUSTOMERS.schema)
    assert fast.num_rows == BATCHES * 6
    assert fast.schema == CUSTOMERS.schema
    assert ordered(fast).equals(ordered(plain))
    zoe = ordered(fast).slice(1, 1).to_pylist()[0]
    assert zoe["first_name"] == "Zoë"
    assert zoe["external_ids"] == [("shopify", "0-1"), ("crm", "C1")]
    assert zoe["consent"]["ads"] == "denied"


def test_keys_read_only_their_rows_with_either_reader(settings: Settings) -> None:
    write_batches(settings, CUSTOMERS.schema, range(BATCHES))
    keys = pa.table({"provider": ["stripe", "shopify", "crm"], "source_id": ["2-1", "0-0", "0-0"]})
    columns = ("provider", "source_id", "email")

    def read() -> pa.Table:
        with open_catalog(settings) as catalog:
            rows = read_table(catalog, "acme", "customers", CUSTOMERS.schema, columns, keys=keys)
        return ordered(rows)

    fast = read()
    with pytest.MonkeyPatch.context() as patch:  # as from an object store: PyIceberg reads
        patch.setattr(lake_tables, "read_local", lambda *_, **__: None)
        plain = read()
    assert fast.equals(plain)
    assert fast.to_pylist() == [
        {"provider": "shopify", "source_id": "0-0", "email": "person0.0@example.com"},
        {"provider": "stripe", "source_id": "2-1", "email": "person2.1@example.com"},
    ]


def test_a_column_added_later_reads_as_null_in_older_files(settings: Settings) -> None:
    older = pa.schema([f for f in CUSTOMERS.schema if f.name != "first_name"])
    write_batches(settings, older, range(BATCHES))
    write_batches(settings, CUSTOMERS.schema, range(BATCHES, BATCHES + 1))
    fast, plain = both_readers(settings, "customers", CUSTOMERS.schema)
    assert ordered(fast).equals(ordered(plain))
    names = fast.column("first_name").to_pylist()
    assert names.count("Zoë") == 2  # only the last batch wrote names (row 1 of 2 providers)
    assert sum(name is None for name in names) == fast.num_rows - 2


def test_an_older_snapshot_reads_its_own_files(settings: Settings) -> None:
    write_batches(settings, CUSTOMERS.schema, range(BATCHES))
    with open_catalog(settings) as catalog:
        history = load_table(catalog, "acme", "customers").history()
    fast, plain = both_readers(settings, "customers", CUSTOMERS.schema, history[-2].snapshot_id)
    assert fast.num_rows == (BATCHES - 1) * 6
    assert ordered(fast).equals(ordered(plain))


def test_exact_amounts_and_times_survive(settings: Settings) -> None:
    rows = [
        order(
            "shopify",
            f"o{month}-{i}",
            total_amount=Decimal("1234.5678"),
            created_at=dt.datetime(2013 + month, month, 1, 23, 59, 59, 999_999, tzinfo=dt.UTC),
        )
        for month in range(1, 13)
        for i in range(2)
    ]  # a partition, so a file, per year: enough row groups for DuckDB
    with open_catalog(settings) as catalog:
        ensure_namespace(catalog, "acme")
        lake = ensure_table(catalog, "acme", "orders", ORDERS.schema, ORDERS.partition, {})
        commit(lake, pa.Table.from_pylist(rows, schema=ORDERS.schema), run_id="r",
               replace=AlwaysTrue())  # fmt: skip
    fast, plain = both_readers(settings, "orders", ORDERS.schema)
    key = [("order_id", "ascending")]
    assert fast.sort_by(key).equals(plain.sort_by(key))
    assert set(fast.column("total_amount").to_pylist()) == {Decimal("1234.5678")}
    assert max(fast.column("created_at").to_pylist()) == dt.datetime(
        2025, 12, 1, 23, 59, 59, 999_999, tzinfo=dt.UTC
    )


def test_few_row_groups_stay_with_pyiceberg(settings: Settings) -> None:
    write_batches(settings, CUSTOMERS.schema, range(1))
    with open_catalog(settings) as catalog:
        scan = load_table(catalog, "acme", "customers").scan()
        assert (
            lake_tables._read_local_files(list(scan.plan_files()), tuple(CUSTOMERS.schema.names))
            is None
        )
        assert read_table(catalog, "acme", "customers", CUSTOMERS.schema).num_rows == 6


def test_a_root_whose_path_holds_a_space_and_a_percent_sign(
    tmp_path: Path, clean_env: None
) -> None:
    """PyIceberg takes a file:// path literally: the tables land under the root itself, and
    DuckDB finds their files where PyIceberg wrote them."""
    root = tmp_path / "my cdp 100%"
    root.mkdir()
    settings = load_settings(root)
    write_batches(settings, CUSTOMERS.schema, range(BATCHES))
    fast, plain = both_readers(settings, "customers", CUSTOMERS.schema)
    assert fast.num_rows == BATCHES * 6
    assert ordered(fast).equals(ordered(plain))
    assert list((root / "warehouse").rglob("*.parquet"))
    assert [p.name for p in tmp_path.iterdir()] == [root.name]  # no "my%20cdp%20100%25"
