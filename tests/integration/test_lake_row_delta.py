"""Merge-on-read commits: rows replaced by position deletes and new data files in one
snapshot, read back by every reader (PyIceberg's scans, `read_table`'s DuckDB path,
`live_rows`), refused when the table moved on, and folded back by compaction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.exceptions import ValidationException
from pyiceberg.table import Table
from pyiceberg.types import StringType
from tests.support.curated import at, order
from tests.support.s3 import CREDENTIALS, REGION, s3_client

from opencdp.lake import ensure_namespace, open_catalog
from opencdp.lake import tables as lake_tables
from opencdp.lake.commit import RUN_PROPERTY, commit, ensure_table, last_run
from opencdp.lake.maintain import compact
from opencdp.lake.row_delta import FILE, POS, LiveRows, commit_row_delta, live_rows
from opencdp.lake.tables import read_table
from opencdp.settings import Settings, load_settings
from opencdp.transform.model import ORDERS

pytestmark = pytest.mark.integration


@pytest.fixture
def orders(settings: Settings) -> Iterator[Table]:
    yield from orders_in(settings)


def orders_in(settings: Settings) -> Iterator[Table]:
    """An orders table of 3 years x 4 orders (a partition a year), one commit per year:
    three data files."""
    with open_catalog(settings) as catalog:
        ensure_namespace(catalog, "acme")
        lake = ensure_table(catalog, "acme", "orders", ORDERS.schema, ORDERS.partition, {})
        for year in range(3):
            rows = [
                order("shop", f"{year}-{i}", status="placed", created_at=at(366 * year + i))
                for i in range(4)
            ]
            commit(lake, table_of(rows), run_id=f"run-{year}", replace=None)
        yield lake


def table_of(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ORDERS.schema)


def by_id(data: pa.Table) -> dict[str, str]:
    ids, status = data.column("order_id").to_pylist(), data.column("status").to_pylist()
    return dict(zip(ids, status, strict=True))


def statuses(lake: Table) -> dict[str, str]:
    return by_id(lake.refresh().scan().to_arrow())


def replace(lake: Table, read: LiveRows, changed: dict[str, str], run: str) -> None:
    """Commit new versions of the `changed` orders (id -> status) over their live rows."""
    rows = read.rows
    old = rows.filter(pc.is_in(rows.column("order_id"), pa.array(list(changed))))
    deletes = pa.table({"file_path": old.column(FILE).cast(pa.string()), "pos": old.column(POS)})
    new = table_of(
        [
            order("shop", order_id, status=status, created_at=created)
            for order_id, status, created in zip(
                old.column("order_id").to_pylist(),
                [changed[i] for i in old.column("order_id").to_pylist()],
                old.column("created_at").to_pylist(),
                strict=True,
            )
        ]
    )
    commit_row_delta(lake, new, deletes, read, {RUN_PROPERTY: run})


def test_replaced_rows_are_gone_for_every_reader(
    orders: Table, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    replace(orders, live_rows(orders, ["order_id", "created_at"]), {"0-1": "paid"}, "r1")
    replace(
        orders,
        live_rows(orders.refresh(), ["order_id", "created_at"]),
        {"0-1": "sent", "2-3": "paid"},
        "r2",
    )

    expected = {f"{m}-{i}": "placed" for m in range(3) for i in range(4)}
    expected |= {"0-1": "sent", "2-3": "paid"}
    assert statuses(orders) == expected
    assert last_run(orders) == "r2"
    # The delete files are file-scoped, and counted in the snapshot summary.
    files = orders.inspect.files()
    assert pc.sum(pc.equal(files.column("content"), 1)).as_py() == 3
    summary = orders.current_snapshot().summary  # type: ignore[union-attr]
    assert summary["total-position-deletes"] == "3"
    # live_rows: the same rows, each at the place it lives.
    live = live_rows(orders, ["order_id", "status"])
    assert by_id(live.rows) == expected
    assert live.rows.num_rows == 12

    # read_table's DuckDB path must not stand in while deletes apply: same rows.
    monkeypatch.setattr(lake_tables, "DUCKDB_MIN_ROW_GROUPS", 1)
    with open_catalog(settings) as catalog:
        assert by_id(read_table(catalog, "acme", "orders", ORDERS.schema)) == expected


def test_a_delete_is_refused_once_the_table_moved_on(orders: Table) -> None:
    read = live_rows(orders, ["order_id", "created_at"])
    commit(orders, table_of([order("shop", "9-9", created_at=at(5))]), run_id="other", replace=None)
    before = statuses(orders)
    with pytest.raises(ValidationException, match="changed since its rows were read"):
        replace(orders, read, {"0-1": "paid"}, "late")
    assert statuses(orders) == before  # nothing half-done


def test_a_delete_of_a_file_that_is_not_live_is_refused(orders: Table) -> None:
    read = live_rows(orders, ["order_id"])
    ghost = pa.table(
        {"file_path": ["file:///nowhere/ghost.parquet"], "pos": pa.array([0], pa.int64())}
    )
    with pytest.raises(ValidationException, match="not live"):
        commit_row_delta(orders, table_of([]), ghost, read, {})


def test_compaction_folds_the_deletes_back_and_then_has_nothing_to_do(orders: Table) -> None:
    replace(
        orders, live_rows(orders, ["order_id", "created_at"]), {"0-1": "paid", "1-2": "paid"}, "r1"
    )
    expected = statuses(orders)

    before, after, partitions = compact(orders, 128 * 1024 * 1024)

    assert partitions == 2  # the two years with deletes; the third is one file already
    files = orders.refresh().inspect.files()
    assert pc.sum(pc.equal(files.column("content"), 1)).as_py() == 0
    assert after == len(files) < before
    assert statuses(orders) == expected
    assert last_run(orders) == "r1"  # a rollback still undoes the run, not the compaction
    # Nothing small, no deletes: a second pass rewrites nothing.
    snapshot = orders.current_snapshot()
    assert compact(orders, 128 * 1024 * 1024)[2] == 0
    assert orders.refresh().current_snapshot() == snapshot


def test_in_an_s3_warehouse_rows_are_read_file_by_file(
    s3_endpoint: str, data_root: Path, clean_env: None
) -> None:
    """DuckDB reads local files only: in S3, `live_rows` reads each file with PyArrow."""
    s3_client(s3_endpoint).create_bucket(Bucket="lake")
    options = {"endpoint_url": s3_endpoint, **CREDENTIALS, "client_kwargs": {"region_name": REGION}}
    settings = load_settings(data_root, storage={"url": "s3://lake/cdp", "options": options})
    for lake in orders_in(settings):
        assert next(iter(live_rows(lake, ["order_id"]).files)).startswith("s3://")
        replace(lake, live_rows(lake, ["order_id", "created_at"]), {"1-1": "paid"}, "r1")
        keys = pa.table({"provider": ["shop", "shop"], "order_id": ["1-1", "2-0"]})
        live = live_rows(lake.refresh(), ["order_id", "status"], keys)
        assert by_id(live.rows) == {"1-1": "paid", "2-0": "placed"}
        assert statuses(lake)["1-1"] == "paid"
        assert compact(lake, 128 * 1024 * 1024)[2] == 1  # the year with the delete file
        assert statuses(lake)["1-1"] == "paid"
        # A column added after the files were written reads as nulls.
        with lake.update_schema() as update:
            update.add_column("note", StringType())
        noted = live_rows(lake.refresh(), ["order_id", "note"]).rows
        assert noted.num_rows == 12
        assert noted.column("note").null_count == 12
