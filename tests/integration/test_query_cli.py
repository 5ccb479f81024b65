"""`opencdp query` end to end: real Iceberg tables in a temporary data root, read by DuckDB,
through typer's CliRunner (and once through the installed console script)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from typer.testing import CliRunner

from opencdp.cli import main as cli
from opencdp.lake import ensure_namespace, open_catalog, table_identifier
from opencdp.settings import CONFIG_FILE, Settings, load_settings

pytestmark = pytest.mark.integration

CUSTOMERS = pa.table(
    {
        "profile_id": ["p1", "p2", "p3"],
        "email": ["ann@example.com", None, "[b]bob[/b]@example.com"],
        "external_ids": pa.array([[("shopify", "7")], [], None], pa.map_(pa.string(), pa.string())),
        "created_at": pa.array(
            [datetime(2025, 1, 15, 1, 0, tzinfo=UTC)] * 3, pa.timestamp("us", tz="UTC")
        ),
    }
)
ORDERS = pa.table(
    {
        "order_id": ["o1", "o2", "o3"],
        "profile_id": ["p1", "p1", "p3"],
        "total_amount": pa.array(
            [Decimal("10.50"), Decimal("4.25"), Decimal("99.99")], pa.decimal128(12, 2)
        ),
    }
)


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str


def fill_lake(settings: Settings) -> None:
    """Tenant acme with customers and orders; tenant empty_co with a namespace, no tables."""
    with open_catalog(settings) as catalog:
        ensure_namespace(catalog, "acme")
        ensure_namespace(catalog, "empty_co")
        for name, data in (("customers", CUSTOMERS), ("orders", ORDERS)):
            catalog.create_table(table_identifier("acme", name), schema=data.schema).append(data)


@pytest.fixture
def lake(settings: Settings) -> Settings:
    fill_lake(settings)
    return settings


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    if not any(command.name == "query" for command in cli.app.registered_commands):
        cli._register()


def query(settings: Settings, *args: str) -> Run:
    """`opencdp --root ROOT query ARGS`; OpenCDP errors become a message and an exit code."""
    result = CliRunner().invoke(
        cli.app, ["--root", str(settings.root), "query", *args], catch_exceptions=False
    )
    return Run(result.exit_code, result.stdout, result.stderr)


# --- output ------------------------------------------------------------------------------


def test_table_format_is_the_default(lake: Settings) -> None:
    run = query(lake, "--tenant", "acme", "SELECT profile_id, email FROM customers ORDER BY 1")
    assert run.exit_code == 0
    assert "profile_id" in run.stdout
    assert "ann@example.com" in run.stdout
    assert "NULL" in run.stdout
    assert "[b]bob[/b]@example.com" in run.stdout  # data is never read as rich markup
    assert "3 rows" in run.stdout


def test_table_format_notes_the_rows_it_leaves_out(lake: Settings) -> None:
    run = query(lake, "--tenant", "acme", "--limit", "1", "SELECT * FROM orders ORDER BY 1")
    assert run.exit_code == 0
    assert "o1" in run.stdout
    assert "o2" not in run.stdout
    assert "2 more rows" in run.stdout


def test_csv_format(lake: Settings) -> None:
    sql = """
        WITH spend AS (
            SELECT profile_id, sum(total_amount) AS spent FROM acme.orders GROUP BY 1
        )
        SELECT c.profile_id, c.email, s.spent
        FROM customers c LEFT JOIN spend s USING (profile_id)
        ORDER BY c.profile_id
    """
    run = query(lake, "--tenant", "acme", "--format", "csv", sql)
    assert run.exit_code == 0
    assert list(csv.reader(io.StringIO(run.stdout))) == [
        ["profile_id", "email", "spent"],
        ["p1", "ann@example.com", "14.75"],
        ["p2", "", ""],
        ["p3", "[b]bob[/b]@example.com", "99.99"],
    ]


def test_json_format(lake: Settings) -> None:
    sql = "SELECT profile_id, external_ids, created_at FROM customers ORDER BY 1"
    run = query(lake, "--tenant", "acme", "--format", "json", sql)
    assert run.exit_code == 0
    assert json.loads(run.stdout) == [
        {
            "profile_id": "p1",
            "external_ids": {"shopify": "7"},
            "created_at": "2025-01-15T01:00:00+00:00",
        },
        {"profile_id": "p2", "external_ids": {}, "created_at": "2025-01-15T01:00:00+00:00"},
        {"profile_id": "p3", "external_ids": None, "created_at": "2025-01-15T01:00:00+00:00"},
    ]


def test_jsonl_format_with_a_limit(lake: Settings) -> None:
    sql = "SELECT order_id, total_amount FROM orders ORDER BY total_amount DESC"
    run = query(lake, "--tenant", "acme", "--format", "jsonl", "--limit", "2", sql)
    assert run.exit_code == 0
    assert [json.loads(line) for line in run.stdout.splitlines()] == [
        {"order_id": "o3", "total_amount": "99.99"},
        {"order_id": "o1", "total_amount": "10.50"},
    ]


def test_sql_from_stdin(lake: Settings) -> None:
    result = CliRunner().invoke(
        cli.app,
        ["--root", str(lake.root), "query", "--tenant", "acme", "--format", "csv", "-"],
        input="SELECT count(*) AS n FROM customers",
        catch_exceptions=False,
    )
    assert result.stdout == "n\n3\n"


def test_a_query_without_tables_runs_on_an_empty_tenant(lake: Settings) -> None:
    run = query(lake, "--tenant", "empty_co", "--format", "csv", "SELECT 6 * 7 AS answer")
    assert run.stdout == "answer\n42\n"


def test_a_tenant_named_like_a_duckdb_catalog_can_query_bare_names(settings: Settings) -> None:
    # No tenant schema is made in DuckDB unless the SQL qualifies a table: "system" or
    # "temp" as a schema would make every bare name ambiguous.
    with open_catalog(settings) as catalog:
        ensure_namespace(catalog, "system")
        catalog.create_table(("system", "orders"), schema=ORDERS.schema).append(ORDERS)
    run = query(settings, "--tenant", "system", "--format", "csv", "SELECT count(*) n FROM orders")
    assert run.stdout == "n\n3\n"


def test_only_the_tables_the_query_names_are_scanned(lake: Settings) -> None:
    with open_catalog(lake) as catalog:
        events = catalog.create_table(
            table_identifier("acme", "events"), schema=pa.schema([("event_id", pa.string())])
        )
        events.append(pa.table({"event_id": ["e1"]}))
    # Break events: any scan of it would now fail on the missing data file.
    for data_file in (lake.root / "warehouse" / "acme" / "events" / "data").glob("*.parquet"):
        data_file.unlink()
    run = query(lake, "--tenant", "acme", "--format", "csv", "SELECT count(*) AS n FROM orders")
    assert run.stdout == "n\n3\n"


def test_the_configured_catalog_serves_queries(
    data_root: Path, tmp_path: Path, clean_env: None
) -> None:
    catalog_folder = tmp_path / "catalog"
    catalog_folder.mkdir()
    config = {
        "catalog": {
            "properties": {
                "type": "sql",
                "uri": f"sqlite:///{catalog_folder / 'iceberg.db'}",
                "warehouse": (catalog_folder / "warehouse").as_uri(),
            }
        }
    }
    (data_root / CONFIG_FILE).write_text(yaml.safe_dump(config), encoding="utf-8")
    settings = load_settings(data_root)
    fill_lake(settings)
    run = query(settings, "--tenant", "acme", "--format", "csv", "SELECT count(*) n FROM orders")
    assert run.stdout == "n\n3\n"
    assert not (data_root / "catalog.db").exists()


@pytest.mark.slow
def test_the_console_script(lake: Settings) -> None:
    script = Path(sys.executable).with_name("opencdp")
    completed = subprocess.run(
        [
            str(script),
            "--root",
            str(lake.root),
            "query",
            "--tenant",
            "acme",
            "--format",
            "csv",
            "SELECT max(total_amount) AS top FROM orders",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (completed.returncode, completed.stdout) == (0, "top\n99.99\n")


# --- errors: a clear message on stderr and exit code 2 -------------------------------------


def assert_refused(run: Run, *fragments: str) -> None:
    assert run.exit_code == cli.EXIT_TERMINAL == 2
    assert run.stdout == ""
    assert run.stderr.startswith("error: ")
    for fragment in fragments:
        assert fragment in run.stderr


def test_unknown_table_lists_the_tenants_tables(lake: Settings) -> None:
    run = query(lake, "--tenant", "acme", "SELECT * FROM clients")
    assert_refused(
        run, "unknown table clients in tenant 'acme'", "tenant 'acme' has: customers, orders"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO customers (profile_id) VALUES ('p9')",
        "UPDATE customers SET email = NULL",
        "DELETE FROM customers",
        "DROP TABLE customers",
        "CREATE TABLE stolen AS SELECT * FROM customers",
        "SELECT 1; DROP TABLE customers",
        "COPY customers TO 'stolen.csv'",
        "ATTACH 'other.db' AS other",
        "INSTALL httpfs",
        "SET enable_external_access = true",
    ],
)
def test_write_attempts_are_refused(lake: Settings, sql: str) -> None:
    run = query(lake, "--tenant", "acme", sql)
    assert_refused(run, "hint: write one read-only query")
    unchanged = query(
        lake, "--tenant", "acme", "--format", "csv", "SELECT count(*) n FROM customers"
    )
    assert unchanged.stdout == "n\n3\n"


def test_files_outside_the_lake_cannot_be_read(lake: Settings, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n", encoding="utf-8")
    sql = f"SELECT * FROM read_csv('{secret}')"
    run = query(lake, "--tenant", "acme", sql)
    assert_refused(run, "file system operations are disabled", "off limits")
    assert "hunter2" not in run.stderr


def test_a_bad_tenant_name_is_refused(lake: Settings) -> None:
    run = query(lake, "--tenant", "Acme; DROP", "SELECT 1")
    assert_refused(run, "invalid tenant name", "a tenant name uses a-z")


def test_a_syntax_error_shows_duckdbs_message(lake: Settings) -> None:
    run = query(lake, "--tenant", "acme", "SELECT FROM WHERE")
    assert_refused(run, "invalid SQL: Parser Error: syntax error")


def test_an_unknown_tenant_is_told_to_run_the_transform(lake: Settings) -> None:
    run = query(lake, "--tenant", "globex", "SELECT 1")
    assert_refused(run, "tenant 'globex' has no namespace", "opencdp transform --tenant globex")


def test_an_empty_tenant_is_told_to_run_the_transform(lake: Settings) -> None:
    run = query(lake, "--tenant", "empty_co", "FROM customers")
    assert_refused(run, "unknown table customers", "has no curated tables yet", "opencdp transform")
