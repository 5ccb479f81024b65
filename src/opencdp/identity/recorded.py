"""A resolution run as the CLI, the transform and the demo start it: the configured engine,
and the run recorded in the run log."""

from __future__ import annotations

from collections.abc import Callable

from opencdp.db import Database, ensure_tenant
from opencdp.db.runs import RunLog
from opencdp.engine import open_engine
from opencdp.engine.base import Engine
from opencdp.identity.resolve import ResolveReport, resolve
from opencdp.settings import Settings


def resolve_recorded(
    settings: Settings,
    db: Database,
    tenant: str,
    *,
    engine: str | Engine | None = None,
    retrain: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ResolveReport:
    """Resolve on `engine` (an open engine, a name, or the configured one)."""
    ensure_tenant(db, tenant)
    runs = RunLog(db)
    run_id = runs.start(tenant, "*", "identity")
    say = progress or (lambda _: None)
    with runs.failed_if_raised(run_id, "identity resolution raised"):
        if isinstance(engine, Engine):
            report = resolve(settings, tenant, engine, retrain=retrain, say=say)
        else:
            with open_engine(engine or settings.transform.engine, settings.transform) as eng:
                report = resolve(settings, tenant, eng, retrain=retrain, say=say)
    runs.finish(run_id, "succeeded", report.records, 0, report.summary())
    return report
