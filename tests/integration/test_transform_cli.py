"""`opencdp transform`, `maintain` and `rollback` through the CLI, recorded in the run log of
a real PostgreSQL (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.support import data
from tests.support.raw import land_live, land_tap
from typer.testing import CliRunner

from opencdp.cli import main as cli
from opencdp.db import Database
from opencdp.db.runs import RunLog
from opencdp.lake import load_table, open_catalog
from opencdp.settings import Settings

pytestmark = pytest.mark.integration

TENANT = "acme"


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    if not any(command.name == "transform" for command in cli.app.registered_commands):
        cli._register()


def opencdp(settings: Settings, database: Database, *args: str) -> Any:
    return CliRunner().invoke(
        cli.app,
        ["--root", str(settings.root), *args],
        env={"OPENCDP_DATABASE__URL": database.conninfo(), "COLUMNS": "200"},
        catch_exceptions=False,
    )


def test_transform_then_maintain_then_rollback(settings: Settings, database: Database) -> None:
    land_tap(settings, TENANT, "shopify", "orders", data.records("shopify", "orders"))
    land_tap(settings, TENANT, "shopify", "customers", data.records("shopify", "customers"))

    first = opencdp(settings, database, "transform", "--tenant", TENANT)
    assert first.exit_code == 0, first.output
    assert "incremental on duckdb" in first.output
    assert "quality:" in first.output

    # Three more small runs: new orders appended to the months of older ones leave small
    # files beside the first run's.
    orders = data.records("shopify", "orders")
    landed = datetime.now(UTC)
    for n in range(3):
        changed = [
            dict(o, id=o["id"] + (n + 1) * 10**9, financial_status=f"status-{n}")
            for o in orders[:5]
        ]
        land_live(
            settings,
            TENANT,
            "shopify",
            "orders",
            [(f"w{n}{i}", "orders/updated", o) for i, o in enumerate(changed)],
            kind="webhook",
            at=landed + timedelta(seconds=n),  # files named by the second: one each
        )
        # Without identity resolution, which would restamp (and so rewrite) those months.
        ran = opencdp(settings, database, "transform", "--tenant", TENANT, "--no-identity")
        assert ran.exit_code == 0, ran.output
    rolled = opencdp(settings, database, "rollback", "--tenant", TENANT)
    assert rolled.exit_code == 0, rolled.output
    assert "rolled back" in rolled.output
    with open_catalog(settings) as catalog:  # the last run's new orders are gone
        statuses = {
            o["status"] for o in load_table(catalog, TENANT, "orders").scan().to_arrow().to_pylist()
        }
    assert "status-1" in statuses
    assert "status-2" not in statuses
    again = opencdp(settings, database, "transform", "--tenant", TENANT, "--no-identity")
    assert again.exit_code == 0, again.output

    with open_catalog(settings) as catalog:
        before = load_table(catalog, TENANT, "orders").scan().to_arrow().sort_by("order_id")
        files_before = len(load_table(catalog, TENANT, "orders").inspect.files())
    assert "status-2" in set(before.column("status").to_pylist())

    maintained = opencdp(settings, database, "maintain", "--tenant", TENANT, "--keep-days", "0")
    assert maintained.exit_code == 0, maintained.output
    with open_catalog(settings) as catalog:
        table = load_table(catalog, TENANT, "orders")
        assert len(table.inspect.files()) < files_before
        assert table.scan().to_arrow().sort_by("order_id").equals(before)
        assert len(table.snapshots()) == 1  # expired all but the current one

    # With the history expired there is nothing to go back to: a clear error, no change.
    refused = opencdp(settings, database, "rollback", "--tenant", TENANT)
    assert refused.exit_code == 2, refused.output
    assert "expired" in refused.output

    runs = [r for r in RunLog(database).recent(TENANT) if r.kind == "transform"]
    assert len(runs) == 5
    assert {r.status for r in runs} == {"succeeded"}


def test_rolling_back_a_run_takes_its_identity_stamps_along(
    settings: Settings, database: Database
) -> None:
    land_tap(settings, TENANT, "shopify", "customers", data.records("shopify", "customers"))
    first = opencdp(settings, database, "transform", "--tenant", TENANT, "--no-identity")
    assert first.exit_code == 0, first.output
    land_tap(settings, TENANT, "shopify", "orders", data.records("shopify", "orders"))
    second = opencdp(settings, database, "transform", "--tenant", TENANT)
    assert second.exit_code == 0, second.output
    assert "identity identity-" in second.output
    with open_catalog(settings) as catalog:
        stamped = load_table(catalog, TENANT, "customers").scan().to_arrow()
    assert stamped.column("profile_id").null_count == 0

    rolled = opencdp(settings, database, "rollback", "--tenant", TENANT)
    assert rolled.exit_code == 0, rolled.output
    with open_catalog(settings) as catalog:
        customers = load_table(catalog, TENANT, "customers").scan().to_arrow()
        orders = load_table(catalog, TENANT, "orders").scan().to_arrow()
    # Back to the first run: its customers, no profile ids yet; the orders run undone.
    assert customers.num_rows == stamped.num_rows
    assert customers.column("profile_id").null_count == customers.num_rows
    assert orders.num_rows == 0
