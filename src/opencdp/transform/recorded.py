"""A transform run as the CLI, the demo and the scheduler start it: the tenant's mappings,
the configured engine, the run recorded in the run log, and an alert on failed rules."""

from __future__ import annotations

from opencdp.alerts import Alerter
from opencdp.db import Database, ensure_tenant
from opencdp.db.runs import RunLog
from opencdp.engine import open_engine
from opencdp.settings import Settings
from opencdp.transform import mappings
from opencdp.transform.run import Progress, RunReport, transform


def transform_recorded(
    settings: Settings,
    db: Database,
    tenant: str,
    *,
    historic: bool = False,
    engine: str | None = None,
    progress: Progress | None = None,
) -> RunReport:
    ensure_tenant(db, tenant)
    runs = RunLog(db)
    run_id = runs.start(tenant, "*", "transform")
    with runs.failed_if_raised(run_id, "transform raised; see the log"):
        declared = mappings.declared(settings.tenant(tenant).mappings)
        with open_engine(engine or settings.transform.engine, settings.transform) as eng:
            report = transform(
                settings,
                tenant,
                eng,
                mappings.combine(declared),
                historic=historic,
                progress=progress,
            )
    summary = report.summary()
    runs.finish(run_id, "succeeded", report.lines, report.rejected, summary)
    if summary["quality_failures"]:
        Alerter(settings.alerts).send(
            f"quality rules failed in {tenant}", {"failures": summary["quality_failures"]}
        )
    return report
