"""`opencdp load` against real PostgreSQL (embedded and $OPENCDP_TEST_DATABASE_URL): values
round-trip exactly, a rerun changes nothing, the snapshot diff after new commits, a
partition rewrite, identity merges, a rollback and expired snapshots, the historic
rebuild and swap, tables the lake lacks, bad input, and the CLI.

Every check of content compares the database with the Iceberg table row for row, both
turned into Python values independently of the loader's own conversions."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from pyiceberg.expressions import AlwaysTrue
from tests.support.curated import at, customer, event, order, write
from typer.testing import CliRunner

from opencdp.cli import main as cli
from opencdp.db import Database
from opencdp.engine.base import Engine
from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.errors import InvalidNameError, NotFoundError
from opencdp.identity.model import TABLES as IDENTITY_TABLES
from opencdp.identity.resolve import resolve
from opencdp.lake import ensure_namespace, load_table, open_catalog
from opencdp.lake.commit import commit, ensure_table, partition_filter
from opencdp.lake.maintain import expire
from opencdp.lake.row_delta import FILE, POS, commit_row_delta, live_rows
from opencdp.serve.load import LoadError, LoadReport, load_tenant
from opencdp.serve.tables import SERVED, ServedTable, is_nested
from opencdp.settings import Settings, load_settings
from opencdp.transform.model import TABLES

pytestmark = pytest.mark.integration

TENANT = "acme"
SCHEMA = f"t_{TENANT}"
T = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


@pytest.fixture
def s(data_root: Path, clean_env: None, database: Database) -> Settings:
    identity = {"priority": ["external_id", "phone", "email", "anonymous_id"]}
    return load_settings(
        data_root,
        database={"url": database.conninfo()},
        tenants={TENANT: {"identity": identity}},
    )


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with DuckDBEngine(workers=1) as e:
        yield e


def load(settings: Settings, **options: Any) -> tuple[LoadReport, list[str]]:
    said: list[str] = []
    return load_tenant(settings, TENANT, progress=said.append, **options), said


def modes(report: LoadReport) -> dict[str, str]:
    return {name: t.mode for name, t in report.tables.items()}


# --- the lake and the database as Python values ---------------------------------------------


def write_identity(settings: Settings, name: str, rows: list[dict[str, Any]]) -> None:
    schema = IDENTITY_TABLES[name]
    with open_catalog(settings) as catalog:
        ensure_namespace(catalog, TENANT)
        table = ensure_table(catalog, TENANT, name, schema, (), {})
        commit(table, pa.Table.from_pylist(rows, schema=schema), run_id="t", replace=AlwaysTrue())


def _document(value: Any, kind: pa.DataType) -> Any:
    """A nested Arrow value (as pyarrow gives it to Python) as the JSON it should be."""
    result = value
    if value is None:
        pass
    elif pa.types.is_map(kind):
        result = {k: _document(v, kind.item_type) for k, v in value}
    elif pa.types.is_struct(kind):
        result = {f.name: _document(value[f.name], f.type) for f in kind}
    elif pa.types.is_list(kind):
        result = [_document(v, kind.value_type) for v in value]
    elif pa.types.is_timestamp(kind):
        result = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    elif pa.types.is_date(kind):
        result = value.isoformat()
    elif isinstance(value, str):
        result = value.replace("\x00", "")
    return result


def _expected(served: ServedTable, column: str, value: Any) -> Any:
    kind = served.schema.field(column).type
    if value is None:
        return None
    if column in served.json_text:
        return json.loads(value, parse_float=Decimal)
    if is_nested(kind):
        return _document(value, kind)
    if isinstance(value, str):
        return value.replace("\x00", "")
    return value


def lake_rows(settings: Settings, name: str) -> list[dict[str, Any]]:
    """The current rows of the Iceberg table as the database should hold them."""
    served = SERVED[name]
    with open_catalog(settings) as catalog:
        data = load_table(catalog, TENANT, name).scan().to_arrow()
    rows = [
        {c: _expected(served, c, row.get(c)) for c in served.columns} for row in data.to_pylist()
    ]
    return sorted(rows, key=lambda r: tuple(r[c] for c in served.key))


def database_rows(database: Database, name: str, table: str | None = None) -> list[dict[str, Any]]:
    served = SERVED[name]
    with psycopg.connect(database.conninfo(), row_factory=dict_row) as conn:
        set_json_loads(partial(json.loads, parse_float=Decimal), conn)
        rows = conn.execute(
            sql.SQL("SELECT * FROM {}").format(sql.Identifier(SCHEMA, table or name))
        ).fetchall()
    return sorted(rows, key=lambda r: tuple(r[c] for c in served.key))


def assert_mirrors(settings: Settings, database: Database, *names: str) -> None:
    for name in names:
        expected = lake_rows(settings, name)
        assert database_rows(database, name) == expected, name


def query(database: Database, statement: str, *args: Any) -> list[dict[str, Any]]:
    with psycopg.connect(database.conninfo(), row_factory=dict_row) as conn:
        return conn.execute(statement.encode(), args).fetchall()


def load_state(database: Database) -> dict[str, tuple[int, datetime]]:
    rows = query(database, f"SELECT * FROM {SCHEMA}.load_state")
    return {r["table_name"]: (r["snapshot_id"], r["loaded_at"]) for r in rows}


def snapshot_of(settings: Settings, name: str) -> int:
    with open_catalog(settings) as catalog:
        return int(load_table(catalog, TENANT, name).current_snapshot().snapshot_id)


# --- values ---------------------------------------------------------------------------------

TRICKY = [
    "plain",
    "",
    'quote " and, comma',
    "new\nline\r\nand\ttab",
    "ünïcødé 東京 😀",
    "back\\slash",
]


def test_every_kind_of_value_round_trips_exactly(s: Settings, database: Database) -> None:
    write(s, TENANT, "customers", [
        customer("crm", f"c{i}", first_name=text, email=None if i % 2 else "",
                 birth_date=date(1, 1, 1) if i == 0 else date(2000, 2, 29),
                 consent={"email": "granted", "updated_at": T}, email_free=i % 2 == 0,
                 total_revenue=Decimal("-12345678901234.5678") if i == 0 else Decimal("0.0001"),
                 order_count=2**62, external_ids=[("crm", f"c{i}"), ("shop\"ify", text)],
                 created_at=datetime(1, 1, 1, tzinfo=UTC) if i == 1 else T,
                 _quality_flags=["email_placeholder", text])
        for i, text in enumerate(TRICKY)
    ] + [customer("crm", "nul", first_name="a\x00b", consent=None)])  # fmt: skip
    write(s, TENANT, "events", [
        event("segment", "e1", properties='{"a": 1.50, "b": "x\\"y", "c": [null, true], "d": "ü"}',
              context="{}", traits=None, timestamp=T),
        event("segment", "e2", properties='{"nested": {"deep": [1, {"k": "v"}]}}',
              context='{"ip": "1.2.3.4", "s": "line\\nbreak"}', name="Order Completed"),
    ])  # fmt: skip
    write(s, TENANT, "orders", [
        order("shopify", "o1", total_amount=Decimal("99999999999999.9999"), status="paid"),
        order("shopify", "o2", total_amount=None, discount=Decimal("0")),
    ])  # fmt: skip
    write_identity(s, "identities", [
        {"id_type": "email", "id_value": "a@x.com", "profile_id": "p_1", "rule": "record",
         "confidence": 0.1, "records": 1, "first_seen": T, "last_seen": T, "blocked": False},
        {"id_type": "phone", "id_value": "+1415", "profile_id": None, "confidence": 1 / 3,
         "blocked": True, "blocked_reason": "on 2 profiles"},
    ])  # fmt: skip
    write_identity(s, "profiles", [
        {"profile_id": "p_1", "email": "a@x.com", "birth_date": date(1990, 5, 6),
         "consent": {"email": "granted", "sms": None, "ads": "denied", "updated_at": T},
         "external_ids": [("crm", "c1")],
         "trait_lineage": [("email", {"provider": "crm", "source_id": "c\"1", "rule": "record"})],
         "sources": ["crm", "shopify"], "identified": True, "rfm_recency": 5,
         "total_revenue": Decimal("10.5000"), "created_at": T},
        {"profile_id": "p_2", "external_ids": [], "trait_lineage": None, "sources": []},
    ])  # fmt: skip
    write_identity(s, "profile_merges", [
        {"run_id": "identity-1", "changed_at": T, "kind": "merge", "profile_id": "p_1",
         "other_profile_id": "p_9", "nodes": 2, "reason": "email a@x.com"},
    ])  # fmt: skip
    report, _ = load(s)
    assert modes(report) == {
        "customers": "full", "orders": "full", "order_items": "skipped", "products": "skipped",
        "events": "full", "identities": "full", "profiles": "full", "profile_merges": "full",
    }  # fmt: skip
    assert report.tables["customers"].rows_upserted == len(TRICKY) + 1
    assert_mirrors(s, database, "customers", "events", "orders", "identities", "profiles")
    # Spot checks of what the comparison above covers, in PostgreSQL's own terms.
    [row] = query(
        database,
        f"SELECT first_name, email, consent->>'updated_at' AS at, external_ids->>'shop\"ify' AS x,"
        f" pg_typeof(consent)::text AS t FROM {SCHEMA}.customers WHERE source_id = 'c2'",
    )
    assert row == {
        "first_name": 'quote " and, comma', "email": "", "at": "2025-03-04T05:06:07.890123Z",
        "x": 'quote " and, comma', "t": "jsonb",
    }  # fmt: skip
    assert query(database, f"SELECT email FROM {SCHEMA}.customers WHERE source_id = 'c1'") == [
        {"email": None}
    ]
    [nul] = query(database, f"SELECT first_name FROM {SCHEMA}.customers WHERE source_id = 'nul'")
    assert nul == {"first_name": "ab"}  # PostgreSQL text cannot hold NUL: dropped
    [profile] = query(
        database,
        f"SELECT trait_lineage #>> '{{email,source_id}}' AS source, sources, rfm_recency "
        f"FROM {SCHEMA}.profiles WHERE profile_id = 'p_1'",
    )
    assert profile == {"source": 'c"1', "sources": ["crm", "shopify"], "rfm_recency": 5}
    assert report.profiles_full
    assert sorted(report.profiles_upserted.column("profile_id").to_pylist()) == ["p_1", "p_2"]


def test_json_text_with_nul_escapes_loads_without_them(s: Settings, database: Database) -> None:
    write(s, TENANT, "events", [
        event("segment", "e1", properties='{"a": "x\\u0000y", "b\\u0000": "\\\\u0000"}'),
    ])  # fmt: skip
    load(s)
    [row] = query(database, f"SELECT properties FROM {SCHEMA}.events")
    assert row["properties"] == {"a": "xy", "b": "\\u0000"}


# --- incremental ----------------------------------------------------------------------------


def test_a_second_load_changes_nothing(s: Settings, database: Database) -> None:
    write(s, TENANT, "customers", [customer("crm", "1", email="a@x.com")])
    write(s, TENANT, "events", [event("segment", "e1")])
    load(s)
    before = database_rows(database, "customers"), database_rows(database, "events")
    state = load_state(database)
    report, said = load(s)
    assert set(modes(report).values()) == {"skipped"}
    assert report.tables["customers"].notice == "unchanged"
    assert not report.changed
    assert (database_rows(database, "customers"), database_rows(database, "events")) == before
    assert load_state(database) == state  # not even the load times moved
    assert report.profiles_upserted.num_rows == 0
    assert not report.profiles_full
    assert "customers: skipped (unchanged)" in said


def test_the_snapshot_diff_sends_only_what_changed(s: Settings, database: Database) -> None:
    write(s, TENANT, "customers", [
        customer("crm", "1", email="same@x.com"),
        customer("crm", "2", email="old@x.com"),
        customer("shopify", "3", email="gone@x.com"),
    ])  # fmt: skip
    load(s)
    # A whole new snapshot: every file rewritten, one row changed, one gone, one new.
    write(s, TENANT, "customers", [
        customer("crm", "1", email="same@x.com"),
        customer("crm", "2", email="new@x.com"),
        customer("shopify", "4", email="new@y.com"),
    ])  # fmt: skip
    report, said = load(s)
    customers = report.tables["customers"]
    assert customers.mode == "diff"
    assert (customers.rows_upserted, customers.rows_deleted) == (2, 1)
    assert customers.snapshot_id == snapshot_of(s, "customers")
    assert load_state(database)["customers"][0] == customers.snapshot_id
    assert any("2 files added (3 rows), 2 removed (3 rows)" in line for line in said)
    assert_mirrors(s, database, "customers")


def test_a_partition_rewrite_reads_only_that_partition(s: Settings, database: Database) -> None:
    this_year, next_year = at(10), at(400)  # a partition a year
    rows = [order("shopify", f"o{i}", created_at=this_year, status="paid") for i in range(3)]
    rows += [order("shopify", f"f{i}", created_at=next_year, status="paid") for i in range(3)]
    write(s, TENANT, "orders", rows)
    load(s)
    model = TABLES["orders"]
    changed = [order("shopify", f"f{i}", created_at=next_year, status="paid") for i in range(3)]
    changed[1]["status"] = "refunded"
    with open_catalog(s) as catalog:
        table = load_table(catalog, TENANT, "orders")
        next_year_only = partition_filter(model.partition, [(date(2026, 1, 1),)])
        data = pa.Table.from_pylist(changed, schema=model.schema)
        commit(table, data, run_id="r2", replace=next_year_only)
    report, said = load(s)
    assert (report.tables["orders"].rows_upserted, report.tables["orders"].rows_deleted) == (1, 0)
    assert any("1 files added (3 rows), 1 removed (3 rows)" in line for line in said)
    assert_mirrors(s, database, "orders")
    [row] = query(database, f"SELECT status FROM {SCHEMA}.orders WHERE order_id = 'f1'")
    assert row == {"status": "refunded"}


def test_position_deletes_load_as_a_diff_both_ways(s: Settings, database: Database) -> None:
    """Merge-on-read (an incremental transform): a newer row appended, its old row
    deleted by position in a file that stays. The diff sends the change, and a rollback's
    diff brings the old row back."""
    rows = [order("shopify", f"o{i}", created_at=at(10), status="paid") for i in range(4)]
    write(s, TENANT, "orders", rows)
    load(s)
    first = snapshot_of(s, "orders")
    with open_catalog(s) as catalog:
        table = load_table(catalog, TENANT, "orders")
        read = live_rows(table, ["order_id"])
        old = read.rows.filter(pc.equal(read.rows.column("order_id"), "o2"))
        deletes = pa.table(
            {"file_path": old.column(FILE).cast(pa.string()), "pos": old.column(POS)}
        )
        newer = order("shopify", "o2", created_at=at(10), status="refunded")
        data = pa.Table.from_pylist([newer], schema=TABLES["orders"].schema)
        commit_row_delta(table, data, deletes, read, {})
    report, said = load(s)
    orders = report.tables["orders"]
    assert (orders.mode, orders.rows_upserted, orders.rows_deleted) == ("diff", 1, 0)
    assert any("1 rows deleted by position, 0 restored" in line for line in said)
    assert_mirrors(s, database, "orders")
    [row] = query(database, f"SELECT status FROM {SCHEMA}.orders WHERE order_id = 'o2'")
    assert row == {"status": "refunded"}

    with open_catalog(s) as catalog:
        table = load_table(catalog, TENANT, "orders")
        table.manage_snapshots().set_current_snapshot(snapshot_id=first).commit()
    report, said = load(s)
    orders = report.tables["orders"]
    assert (orders.mode, orders.rows_upserted, orders.rows_deleted) == ("diff", 1, 0)
    assert any("0 rows deleted by position, 1 restored" in line for line in said)
    assert_mirrors(s, database, "orders")


def test_a_profile_merged_away_disappears(s: Settings, database: Database, engine: Engine) -> None:
    write(s, TENANT, "customers", [
        customer("crm", "1", email="ann@x.com", first_name="Ann"),
        customer("shopify", "2", phone="+14155550100", first_name="Ann"),
    ])  # fmt: skip
    write(s, TENANT, "orders", [order("shopify", "o1", source_customer_id="2")])
    resolve(s, TENANT, engine)
    first, _ = load(s)
    assert first.profiles_full
    before = {r["profile_id"] for r in database_rows(database, "profiles")}
    assert len(before) == 2
    assert set(first.profiles_upserted.column("profile_id").to_pylist()) == before
    # A third record carries both identifiers: the two profiles become one.
    write(s, TENANT, "customers", [
        customer("crm", "1", email="ann@x.com", first_name="Ann"),
        customer("shopify", "2", phone="+14155550100", first_name="Ann"),
        customer("stripe", "3", email="ann@x.com", phone="+14155550100"),
    ])  # fmt: skip
    resolve(s, TENANT, engine)
    report, _ = load(s)
    after = {r["profile_id"] for r in database_rows(database, "profiles")}
    assert len(after) == 1
    (absorbed,) = before - after
    assert report.tables["profiles"].mode == "diff"
    assert report.profiles_deleted == [absorbed]
    assert not report.profiles_full
    assert report.profiles_upserted.column("profile_id").to_pylist() == list(after)
    assert report.profiles_upserted.schema == IDENTITY_TABLES["profiles"]
    assert_mirrors(s, database, "customers", "orders", "identities", "profiles")
    assert not query(database, f"SELECT 1 FROM {SCHEMA}.identities WHERE profile_id = %s", absorbed)


def test_a_rollback_loads_as_a_diff_backwards(s: Settings, database: Database) -> None:
    write(s, TENANT, "customers", [customer("crm", "1", email="v1@x.com")])
    first = snapshot_of(s, "customers")
    write(s, TENANT, "customers", [
        customer("crm", "1", email="v2@x.com"), customer("crm", "2", email="new@x.com"),
    ])  # fmt: skip
    load(s)
    with open_catalog(s) as catalog:
        table = load_table(catalog, TENANT, "customers")
        table.manage_snapshots().set_current_snapshot(snapshot_id=first).commit()
    report, _ = load(s)
    customers = report.tables["customers"]
    assert (customers.mode, customers.snapshot_id) == ("diff", first)
    assert (customers.rows_upserted, customers.rows_deleted) == (1, 1)
    assert_mirrors(s, database, "customers")
    assert load_state(database)["customers"][0] == first


def test_an_expired_snapshot_falls_back_to_a_full_reload(s: Settings, database: Database) -> None:
    write(s, TENANT, "customers", [customer("crm", "1"), customer("crm", "2")])
    load(s)
    loaded = snapshot_of(s, "customers")
    write(s, TENANT, "customers", [customer("crm", "1", email="x@y.com"), customer("crm", "3")])
    with open_catalog(s) as catalog:
        expired = expire(load_table(catalog, TENANT, "customers"), timedelta(0))
    assert expired >= 1
    report, said = load(s)
    customers = report.tables["customers"]
    assert customers.mode == "full"
    assert (customers.rows_upserted, customers.rows_deleted) == (2, 1)
    assert f"snapshot {loaded}, loaded last, is gone (expired)" in str(customers.notice)
    assert any("is gone (expired); loading every row" in line for line in said)
    assert_mirrors(s, database, "customers")


def test_tables_the_lake_lacks_are_skipped_and_created_empty(
    s: Settings, database: Database
) -> None:
    write(s, TENANT, "customers", [customer("crm", "1")])
    report, said = load(s)
    assert report.tables["profiles"].mode == "skipped"
    assert report.tables["profiles"].notice == "not in the lake; created empty"
    assert "identities: skipped (not in the lake; created empty)" in said
    for name in ("orders", "order_items", "products", "events", "identities", "profiles"):
        assert database_rows(database, name) == []
    assert set(load_state(database)) == {"customers"}
    indexes = {r["indexname"] for r in query(
        database, "SELECT indexname FROM pg_indexes WHERE schemaname = %s", SCHEMA
    )}  # fmt: skip
    assert {"profiles_pkey", "identities_by_profile", "events_by_profile"} <= indexes
    # Identity resolution ran since: the next load fills them.
    write_identity(s, "profiles", [{"profile_id": "p_1", "email": "a@x.com"}])
    report, _ = load(s)
    assert report.tables["profiles"].mode == "full"
    assert report.tables["profiles"].notice == "no loaded snapshot recorded"
    assert_mirrors(s, database, "profiles")


def test_only_the_tables_asked_for(s: Settings, database: Database) -> None:
    write(s, TENANT, "customers", [customer("crm", "1")])
    write(s, TENANT, "events", [event("segment", "e1")])
    report, _ = load(s, tables=["events"])
    assert modes(report) == {"events": "full"}
    assert set(load_state(database)) == {"events"}


# --- historic -------------------------------------------------------------------------------


def test_historic_rebuilds_checks_and_swaps(s: Settings, database: Database) -> None:
    write(s, TENANT, "customers", [customer("crm", "1"), customer("crm", "2")])
    write(s, TENANT, "events", [event("segment", "e1")])
    load(s)
    write(s, TENANT, "customers", [customer("crm", "1", email="new@x.com"), customer("crm", "3")])
    report, said = load(s, historic=True)
    assert report.historic
    assert modes(report) == {
        "customers": "historic", "orders": "skipped", "order_items": "skipped",
        "products": "skipped", "events": "historic", "identities": "skipped",
        "profiles": "skipped", "profile_merges": "skipped",
    }  # fmt: skip
    customers = report.tables["customers"]
    assert (customers.rows_upserted, customers.rows_deleted) == (2, 1)  # crm 2 went
    assert "swapped in 2 tables: customers, events" in said
    assert_mirrors(s, database, "customers", "events")
    assert load_state(database)["customers"][0] == snapshot_of(s, "customers")
    tables = {r["tablename"] for r in query(
        database, "SELECT tablename FROM pg_tables WHERE schemaname = %s", SCHEMA
    )}  # fmt: skip
    assert not {t for t in tables if t.endswith("__new")}
    indexes = {r["indexname"] for r in query(
        database, "SELECT indexname FROM pg_indexes WHERE tablename = 'customers'"
    )}  # fmt: skip
    assert indexes == {"customers_pkey", "customers_by_profile"}
    again, _ = load(s, historic=True)  # the index names are free for the next one
    assert again.tables["customers"].rows_deleted == 0
    assert_mirrors(s, database, "customers", "events")
    after, _ = load(s)
    assert after.tables["customers"].mode == "skipped"


def test_historic_profiles_give_the_whole_table_to_the_index(
    s: Settings, database: Database
) -> None:
    write_identity(s, "profiles", [{"profile_id": "p_1"}, {"profile_id": "p_2"}])
    load(s)
    write_identity(s, "profiles", [{"profile_id": "p_2", "email": "b@x.com"}])
    report, _ = load(s, historic=True)
    assert report.profiles_full
    assert report.profiles_upserted.column("profile_id").to_pylist() == ["p_2"]
    assert report.profiles_deleted == ["p_1"]
    assert_mirrors(s, database, "profiles")


def test_the_tenant_role_reads_the_tables_swapped_in(s: Settings, database: Database) -> None:
    from opencdp.db import ensure_tenant
    from opencdp.serve.roles import ensure_tenant_role, tenant_role

    tenant = f"acme_{secrets.token_hex(3)}"
    write(s, tenant, "customers", [customer("crm", "1")])
    ensure_tenant(database, tenant)
    role = tenant_role(tenant)
    try:
        with psycopg.connect(database.conninfo()) as conn:
            ensure_tenant_role(conn, tenant)
        load_tenant(s, tenant, historic=True)
        with psycopg.connect(database.conninfo()) as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            count = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(
                    sql.Identifier(f"t_{tenant}", "customers")
                )
            ).fetchone()
        assert count == (1,)
    finally:
        with psycopg.connect(database.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


# --- bad input ------------------------------------------------------------------------------


def test_an_unknown_tenant_is_not_found(s: Settings, database: Database) -> None:
    with pytest.raises(NotFoundError, match="tenant 'nobody' has no namespace") as e:
        load_tenant(s, "nobody")
    assert "opencdp transform --tenant nobody" in str(e.value.hint)
    with pytest.raises(InvalidNameError):
        load_tenant(s, "Bad-Name")
    assert not query(database, "SELECT 1 FROM pg_namespace WHERE nspname IN ('t_nobody', 't_acme')")


def test_a_tenant_never_transformed_is_not_found(s: Settings, database: Database) -> None:
    with open_catalog(s) as catalog:
        ensure_namespace(catalog, TENANT)
    with pytest.raises(NotFoundError, match="has no curated tables to load") as e:
        load_tenant(s, TENANT)
    assert f"opencdp transform --tenant {TENANT}" in str(e.value.hint)


def test_a_data_file_missing_from_the_lake_fails_the_load_cleanly(
    s: Settings, database: Database
) -> None:
    write(s, TENANT, "customers", [customer("crm", "1")])
    load(s)
    before = database_rows(database, "customers"), load_state(database)
    write(s, TENANT, "customers", [customer("crm", "1", email="new@x.com")])
    with open_catalog(s) as catalog:
        [task] = load_table(catalog, TENANT, "customers").scan().plan_files()
    Path(task.file.file_path.removeprefix("file://")).unlink()
    with pytest.raises(LoadError, match="cannot read customers of tenant acme") as e:
        load(s)
    assert "opencdp transform --tenant acme --historic" in str(e.value.hint)
    assert (database_rows(database, "customers"), load_state(database)) == before


# --- the command ----------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    if not any(command.name == "load" for command in cli.app.registered_commands):
        cli._register()


def opencdp(settings: Settings, database: Database, *args: str) -> Any:
    return CliRunner().invoke(
        cli.app,
        ["--root", str(settings.root), "--log-level", "warning", *args],
        env={"OPENCDP_DATABASE__URL": database.conninfo(), "COLUMNS": "200"},
    )


def test_the_command_prints_progress_and_a_summary(s: Settings, database: Database) -> None:
    write(s, TENANT, "customers", [customer("crm", "1"), customer("crm", "2")])
    done = opencdp(s, database, "load", "--tenant", TENANT, "--table", "customers")
    assert done.exit_code == 0, done.output
    snapshot = snapshot_of(s, "customers")
    assert "customers: snapshot" in done.stderr
    assert f"customers │ full │ {snapshot} │        2 │       0" in done.stdout
    assert "search index: no profiles loaded" in done.stdout
    again = opencdp(s, database, "load", "--tenant", TENANT, "--historic")
    assert again.exit_code == 0, again.output
    assert "historic (rebuilt, checked and swapped in)" in again.stdout
    assert "profiles: not in the lake; created empty" in again.stdout
    missing = opencdp(s, database, "load", "--tenant", "nobody")
    assert missing.exit_code == 2
    assert "error: tenant 'nobody' has no namespace" in missing.stderr
    wrong = opencdp(s, database, "load", "--tenant", TENANT, "--table", "nope")
    assert wrong.exit_code == 2
    assert "not a served table: nope" in wrong.stderr
