"""Maintenance as `opencdp maintain` and the scheduler start it: every table of the tenant,
recorded in the run log (source MAINTENANCE, kind "maintain")."""

from __future__ import annotations

from datetime import timedelta

from opencdp.db import Database, ensure_tenant
from opencdp.db.runs import RunLog
from opencdp.lake import open_catalog
from opencdp.lake.maintain import Maintenance, maintain
from opencdp.settings import Settings

# The run log's source of maintenance runs: not a source name (the pipeline's is "*"), so
# that each job's last start is its own.
MAINTENANCE = "*maintain"


def maintain_recorded(
    settings: Settings, db: Database, tenant: str, *, keep_days: float | None = None
) -> list[Maintenance]:
    """Maintain every table, keeping `keep_days` of snapshots (the tenant's
    keep_snapshot_days when None)."""
    keep = timedelta(
        days=settings.tenant(tenant).keep_snapshot_days if keep_days is None else keep_days
    )
    ensure_tenant(db, tenant)
    runs = RunLog(db)
    run_id = runs.start(tenant, MAINTENANCE, "maintain")
    with (
        runs.failed_if_raised(run_id, "maintenance raised; see the log"),
        open_catalog(settings) as catalog,
    ):
        done = maintain(catalog, tenant, settings.transform.target_file_size_bytes, keep)
    runs.finish(run_id, "succeeded", 0, 0, {"tables": [vars(m) for m in done]})
    return done
