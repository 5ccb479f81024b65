"""The set-based merge SQL on DuckDB: which version of a key wins, and which rows an
incremental change appends and deletes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.transform import merge
from opencdp.transform.model import ORDERS

pytestmark = pytest.mark.integration


def at(month: int, day: int = 1) -> datetime:
    return datetime(2025, month, day, tzinfo=UTC)


def orders(*rows: dict[str, Any]) -> pa.Table:
    base = {
        "provider": "shop",
        "_raw_file": "raw/f1",
        "_line": 1,
        "_ingested_at": at(1),
        "_quality_flags": [],
    }
    return pa.Table.from_pylist([{**base, **r} for r in rows], schema=ORDERS.schema)


@pytest.fixture(scope="module")
def engine() -> Any:
    with DuckDBEngine(workers=1) as e:
        yield e


def ids_and_status(table: pa.Table) -> list[tuple[str, str]]:
    return sorted(
        zip(table.column("order_id").to_pylist(), table.column("status").to_pylist(), strict=True)
    )


def test_the_latest_version_wins_and_ties_are_broken_the_same_way_every_time(engine: Any) -> None:
    delta = orders(
        {"order_id": "1", "status": "old", "created_at": at(1), "updated_at": at(2)},
        {"order_id": "1", "status": "new", "created_at": at(1), "updated_at": at(3)},
        {"order_id": "1", "status": "undated", "created_at": at(1)},  # created_at stands in: older
        {"order_id": "2", "status": "first-file", "created_at": at(1), "_raw_file": "raw/a"},
        {"order_id": "2", "status": "later-file", "created_at": at(1), "_raw_file": "raw/b"},
        {"order_id": "3", "status": "line-1", "created_at": at(1), "_line": 1},
        {"order_id": "3", "status": "line-9", "created_at": at(1), "_line": 9},
        {"order_id": "4", "status": "ingested-late", "created_at": at(1), "_ingested_at": at(6)},
        {
            "order_id": "4",
            "status": "ingested-early",
            "created_at": at(1),
            "_ingested_at": at(5),
            "_raw_file": "raw/z",
        },
    )
    winners = engine.query(merge.latest_per_key(ORDERS, "delta"), {"delta": delta})
    assert ids_and_status(winners) == [
        ("1", "new"),
        ("2", "later-file"),
        ("3", "line-9"),
        ("4", "ingested-late"),
    ]


def merged(engine: Any, old: pa.Table, delta: pa.Table) -> tuple[pa.Table, list[int]]:
    """The delta rows an incremental merge appends, and the `_row`s of `old` it deletes."""
    numbered = old.append_column("_row", pa.array(range(old.num_rows), pa.int64()))
    ranked = engine.query(
        merge.ranked_versions(ORDERS, "old", "delta"), {"old": numbered, "delta": delta}
    )
    newer = engine.query(
        merge.newer_rows(ORDERS, "delta", "ranked"), {"delta": delta, "ranked": ranked}
    )
    lost = engine.query(merge.lost_rows("ranked"), {"ranked": ranked})
    return newer, sorted(lost.column("_row").to_pylist())


def test_a_newer_delta_row_replaces_the_live_row_and_new_keys_are_appended(engine: Any) -> None:
    old = orders(
        {"order_id": "1", "status": "old", "created_at": at(1, 15), "updated_at": at(1, 15)},
        {"order_id": "5", "status": "kept", "created_at": at(1, 20)},
    )
    delta = orders(
        {"order_id": "1", "status": "new", "created_at": at(1, 15), "updated_at": at(2)},
        {"order_id": "9", "status": "appended", "created_at": at(6, 2)},
    )
    newer, lost = merged(engine, old, delta)
    assert ids_and_status(newer) == [("1", "new"), ("9", "appended")]
    assert lost == [0]  # order 1's old row; order 5 is not in the delta


def test_a_stale_delta_row_loses_to_the_live_row(engine: Any) -> None:
    """Only the delta's keys are ranked, by the same order as `latest_per_key`: a stale
    row changes nothing, and a row that moves partition is one more appended row."""
    old = orders(
        {"order_id": "1", "status": "newer", "created_at": at(1, 15), "updated_at": at(3)},
        {"order_id": "2", "status": "old", "created_at": at(1, 16), "updated_at": at(1, 16)},
        {"order_id": "3", "status": "tie", "created_at": at(2, 16), "_raw_file": "raw/b"},
    )
    delta = orders(
        {"order_id": "1", "status": "stale", "created_at": at(1, 15), "updated_at": at(2)},
        {"order_id": "2", "status": "moved", "created_at": at(2, 3), "updated_at": at(4)},
        {"order_id": "3", "status": "tie", "created_at": at(2, 16), "_raw_file": "raw/a"},
    )
    newer, lost = merged(engine, old, delta)
    assert ids_and_status(newer) == [("2", "moved")]
    assert newer.column("created_at").to_pylist() == [at(2, 3)]
    assert lost == [1]


def test_order_facts_count_every_order_of_the_same_provider_and_customer(engine: Any) -> None:
    from opencdp.transform.model import CUSTOMERS

    customers = pa.Table.from_pylist(
        [
            {"provider": "shop", "source_id": "c1"},
            {"provider": "shop", "source_id": "c2"},
            {"provider": "other", "source_id": "c1"},
        ],
        schema=CUSTOMERS.schema,
    )
    placed = orders(
        {
            "order_id": "1",
            "source_customer_id": "c1",
            "total_amount": Decimal("10.50"),
            "created_at": at(1),
        },
        {
            "order_id": "2",
            "source_customer_id": "c1",
            "total_amount": Decimal("4.25"),
            "created_at": at(3),
        },
        {
            "order_id": "3",
            "source_customer_id": None,
            "total_amount": Decimal(99),
            "created_at": at(2),
        },
    )
    facts = engine.query(merge.with_order_facts(CUSTOMERS, "c", "o"), {"c": customers, "o": placed})
    got = {(r["provider"], r["source_id"]): r for r in facts.to_pylist()}
    assert got[("shop", "c1")]["order_count"] == 2
    assert str(got[("shop", "c1")]["total_revenue"]) == "14.7500"
    assert got[("shop", "c1")]["first_order_at"] == at(1)
    assert got[("shop", "c1")]["last_order_at"] == at(3)
    assert got[("shop", "c2")]["order_count"] is None
    assert got[("other", "c1")]["order_count"] is None


def test_repeated_keys_are_found_on_the_key_columns(engine: Any) -> None:
    unique = orders({"order_id": "1", "created_at": at(1)}, {"order_id": "2", "created_at": at(1)})
    twice = orders({"order_id": "1", "created_at": at(1)}, {"order_id": "1", "created_at": at(2)})
    keyless = orders(
        {"order_id": None, "created_at": at(1)}, {"order_id": None, "created_at": at(1)}
    )
    for rows, expected in ((unique, False), (twice, True), (keyless, False)):
        found = engine.query(merge.repeated_keys(ORDERS, "t"), {"t": rows})
        assert found.column("repeated").to_pylist() == [expected]
