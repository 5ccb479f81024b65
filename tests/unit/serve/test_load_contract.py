"""The serving contract (opencdp.serve.tables): types, keys, indexes and the DDL built from
them; and the load's plan for a table."""

from __future__ import annotations

import pyarrow as pa
import pytest

from opencdp.errors import ConfigError
from opencdp.identity.model import PROFILES
from opencdp.serve.load.report import LoadReport, TableLoad
from opencdp.serve.load.snapshots import file_diff, plan
from opencdp.serve.tables import SERVED, ServedTable, pg_type, served


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (pa.string(), "text"),
        (pa.large_string(), "text"),
        (pa.int64(), "bigint"),
        (pa.int32(), "integer"),
        (pa.float64(), "double precision"),
        (pa.bool_(), "boolean"),
        (pa.decimal128(18, 4), "numeric(18, 4)"),
        (pa.timestamp("us", tz="UTC"), "timestamptz"),
        (pa.timestamp("us"), "timestamp"),
        (pa.date32(), "date"),
        (pa.map_(pa.string(), pa.string()), "jsonb"),
        (pa.struct([("a", pa.string())]), "jsonb"),
        (pa.list_(pa.string()), "jsonb"),
    ],
)
def test_arrow_types_map_to_postgresql_types(kind: pa.DataType, expected: str) -> None:
    assert pg_type(kind) == expected


def test_a_type_without_a_mapping_is_refused() -> None:
    with pytest.raises(ConfigError, match="no PostgreSQL type for Arrow type binary"):
        pg_type(pa.binary())


def test_the_served_tables_and_their_keys() -> None:
    assert list(SERVED) == [
        "customers", "orders", "order_items", "products", "events", "identities", "profiles",
        "profile_merges",
    ]  # fmt: skip
    assert SERVED["customers"].key == ("provider", "source_id")
    assert SERVED["order_items"].key == ("provider", "order_id", "line_id")
    assert SERVED["events"].key == ("event_id",)
    assert SERVED["identities"].key == ("id_type", "id_value")
    assert SERVED["profiles"].key == ("profile_id",)
    assert SERVED["profiles"].schema == PROFILES
    assert SERVED["profile_merges"].key == ("run_id", "kind", "profile_id", "other_profile_id")


@pytest.mark.parametrize("table", list(SERVED.values()), ids=list(SERVED))
def test_keys_and_indexed_columns_exist_and_keys_are_text(table: ServedTable) -> None:
    # The key checksum hashes the keys' text on both sides: only text keys hash alike.
    for column in table.key:
        assert pa.types.is_string(table.schema.field(column).type), column
    for index in table.indexes:
        assert set(index.columns) <= set(table.columns)
    for column in table.columns:
        table.pg_type(column)  # every column has a type


def test_json_text_and_nested_columns_become_jsonb() -> None:
    events = SERVED["events"]
    assert events.json_text == {"properties", "context", "traits"}
    assert events.pg_type("properties") == "jsonb"
    assert events.pg_type("_quality_flags") == "jsonb"  # list<string>
    assert events.pg_type("name") == "text"
    profiles = SERVED["profiles"]
    assert {"consent", "external_ids", "trait_lineage", "sources"} <= set(profiles.json_columns)
    assert profiles.pg_type("rfm_recency") == "integer"


def test_ddl_of_a_table_its_key_and_indexes() -> None:
    orders = SERVED["orders"]
    create = orders.create_table("t_acme", "orders__new").as_string(None)
    assert create.startswith('CREATE TABLE "t_acme"."orders__new" ("provider" text NOT NULL, ')
    assert '"total_amount" numeric(18, 4)' in create
    assert '"created_at" timestamptz' in create
    assert "PRIMARY KEY" not in create  # added after the bulk load
    assert orders.add_primary_key("t_acme", "orders").as_string(None) == (
        'ALTER TABLE "t_acme"."orders" ADD CONSTRAINT "orders_pkey" '
        'PRIMARY KEY ("provider", "order_id")'
    )
    [index] = orders.create_indexes("t_acme", "orders", if_not_exists=True)
    assert index.as_string(None) == (
        'CREATE INDEX IF NOT EXISTS "orders_by_profile" ON "t_acme"."orders" '
        '("profile_id", "created_at", "provider", "order_id")'
    )
    assert orders.index_names("orders__new") == ("orders__new_pkey", "orders__new_by_profile")
    assert orders.lookup_columns == ("provider", "order_id", "profile_id", "created_at")
    events = SERVED["events"].create_indexes("s", "events")[0].as_string(None)
    assert '("profile_id", "timestamp", "event_id")' in events
    assert SERVED["identities"].create_indexes("s", "identities")[0].as_string(None) == (
        'CREATE INDEX "identities_by_profile" ON "s"."identities" ("profile_id")'
    )


def test_choosing_tables_by_name() -> None:
    assert [t.name for t in served(["profiles", "customers"])] == ["customers", "profiles"]
    assert len(served()) == len(SERVED)
    with pytest.raises(ConfigError, match="not a served table: nope") as e:
        served(["customers", "nope"])
    assert "customers, orders" in str(e.value.hint)


@pytest.mark.parametrize(
    ("loaded", "current", "exists", "action"),
    [
        (None, 5, False, "build"),  # a first load
        (4, 5, False, "build"),  # the table was dropped from the database
        (None, 5, True, "reload"),  # rows without a recorded snapshot
        (5, 5, True, "skip"),
        (4, 5, True, "diff"),
        (6, 5, True, "diff"),  # a rollback moved the table back: still a diff
    ],
)
def test_plan(loaded: int | None, current: int, exists: bool, action: str) -> None:
    chosen, why = plan(loaded, current, exists)
    assert chosen == action
    assert (why is None) == (action in ("skip", "diff") or (loaded is None and action == "build"))


def test_file_diff_is_a_difference_of_sets_both_ways() -> None:
    diff = file_diff(["a", "b", "c"], ["b", "c", "d", "e"])
    assert diff.added == ("d", "e")
    assert diff.removed == ("a",)
    back = file_diff(["b", "c", "d", "e"], ["a", "b", "c"])  # a rollback
    assert (back.added, back.removed) == (("a",), ("d", "e"))
    assert file_diff(["a"], ["a"]) == file_diff([], [])


def test_report_summary() -> None:
    report = LoadReport("acme", historic=False)
    report.tables["customers"] = TableLoad("customers", "diff", 7, 3, 1, 0.5)
    report.tables["profiles"] = TableLoad("profiles", "skipped", notice="not in the lake")
    summary = report.summary()
    assert summary["tables"]["customers"] == {
        "mode": "diff", "snapshot_id": 7, "rows_upserted": 3, "rows_deleted": 1, "seconds": 0.5,
    }  # fmt: skip
    assert summary["tables"]["profiles"]["notice"] == "not in the lake"
    assert summary["profiles_changed"] == 0
    assert report.changed
    assert report.profiles_upserted.schema == PROFILES
