"""The batch pipeline after extraction, as `opencdp transform` and the scheduler run it:
the raw zone into the curated tables, identities resolved when the tables changed, and
what the API serves refreshed (the database and the search index). Each step is recorded
in the run log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opencdp.db import Database
from opencdp.errors import NotFoundError
from opencdp.identity.recorded import resolve_recorded
from opencdp.identity.resolve import ResolveReport
from opencdp.lake import list_tables, open_catalog
from opencdp.serve.refresh import RefreshReport, refresh_tenant
from opencdp.settings import Settings
from opencdp.transform.recorded import transform_recorded
from opencdp.transform.run import RunReport


@dataclass
class PipelineReport:
    transform: RunReport
    resolution: ResolveReport | None = None  # None: the tables did not change, or skipped
    refresh: RefreshReport | None = None  # None: loading skipped


def run_pipeline(
    settings: Settings,
    tenant: str,
    *,
    historic: bool = False,
    engine: str | None = None,
    identity: bool = True,
    load: bool = True,
    progress: Callable[[str], None] | None = None,
    after: Callable[[object], None] | None = None,
) -> PipelineReport:
    """Transform, then resolve (with `identity`, after a run that read raw files), then load
    (with `load`). `after` sees each step's report as soon as the step ends."""
    say = progress or (lambda _: None)
    done = after or (lambda _: None)
    db = Database.from_settings(settings)
    report = PipelineReport(
        transform_recorded(settings, db, tenant, historic=historic, engine=engine, progress=say)
    )
    done(report.transform)
    if identity and report.transform.files:
        report.resolution = resolve_recorded(settings, db, tenant, engine=engine, progress=say)
        done(report.resolution)
    if load and not _never_built(settings, tenant):
        report.refresh = refresh_tenant(settings, tenant, historic=historic, progress=say)
        done(report.refresh)
    elif load:
        say(f"nothing to load: tenant {tenant} has no curated tables yet")
    return report


def _never_built(settings: Settings, tenant: str) -> bool:
    """The tenant has no curated table yet (no raw file was ever transformed)."""
    with open_catalog(settings) as catalog:
        try:
            return not list_tables(catalog, tenant)
        except NotFoundError:
            return True
