"""Refreshing what the API serves: the curated tables loaded into PostgreSQL, the tenant's
database role, then the search index brought to the profiles just loaded.

The index follows the database: it records the profiles snapshot it reflects. When that is
the snapshot the database held before this load, the load's delta is applied; otherwise
(a first load, an index deleted or interrupted) it is rebuilt from the loaded snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from opencdp.db import Database, ensure_tenant, tenant_schema
from opencdp.db.runs import RunLog
from opencdp.identity.model import PROFILES
from opencdp.lake import open_catalog
from opencdp.lake.tables import read_table
from opencdp.serve.load import LoadReport, load_tenant
from opencdp.serve.load.state import loaded_snapshots
from opencdp.serve.roles import ensure_tenant_role
from opencdp.serve.search import open_search
from opencdp.settings import Settings


@dataclass(frozen=True)
class RefreshReport:
    load: LoadReport
    search: str  # what happened to the search index, in words


def refresh_tenant(
    settings: Settings,
    tenant: str,
    *,
    historic: bool = False,
    tables: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RefreshReport:
    """Load the tenant's curated tables (`opencdp load`) and sync its search index; the
    run is recorded in the run log."""
    db = Database.from_settings(settings)
    ensure_tenant(db, tenant)
    with db.connect() as conn:
        before = loaded_snapshots(conn, tenant_schema(tenant)).get("profiles")
        ensure_tenant_role(conn, tenant)
    runs = RunLog(db)
    run_id = runs.start(tenant, "*", "load")
    with runs.failed_if_raised(run_id, "the load raised; see the log"):
        report = load_tenant(settings, tenant, historic=historic, tables=tables, progress=progress)
        refreshed = RefreshReport(report, sync_search(settings, tenant, report, before))
    rows = sum(t.rows_upserted + t.rows_deleted for t in report.tables.values())
    details = {**report.summary(), "search": refreshed.search}
    details.pop("tenant")
    runs.finish(run_id, "succeeded", rows, 0, details)
    return refreshed


def sync_search(settings: Settings, tenant: str, report: LoadReport, before: int | None) -> str:
    loaded = report.tables.get("profiles")
    if loaded is None or loaded.snapshot_id is None:
        return "no profiles loaded: unchanged"
    snapshot = loaded.snapshot_id
    index = open_search(settings, tenant)
    try:
        synced = index.synced_snapshot()
        if synced == snapshot and not report.profiles_full:
            return "up to date"
        if report.profiles_full:
            rows = report.profiles_upserted
        elif synced is not None and synced == before:
            index.sync(
                report.profiles_upserted,
                report.profiles_deleted,
                full=False,
                snapshot_id=snapshot,
            )
            return (
                f"updated: {report.profiles_upserted.num_rows:,} profiles changed, "
                f"{len(report.profiles_deleted):,} removed"
            )
        else:
            rows = _profiles_at(settings, tenant, snapshot)
        index.sync(rows, [], full=True, snapshot_id=snapshot)
        return f"rebuilt: {rows.num_rows:,} profiles"
    finally:
        index.close()


def _profiles_at(settings: Settings, tenant: str, snapshot_id: int) -> pa.Table:
    with open_catalog(settings) as catalog:
        return read_table(catalog, tenant, "profiles", PROFILES, snapshot_id=snapshot_id)
