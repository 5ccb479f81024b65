"""`opencdp scheduler` and `opencdp runs`: scheduled extractions and their record."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from opencdp.cli.context import settings_of


def register(app: typer.Typer) -> None:
    @app.command("scheduler")
    def scheduler(
        ctx: typer.Context,
        once: Annotated[
            bool, typer.Option(help="Run what is due now, wait for it, and exit.")
        ] = False,
        parallel: Annotated[int, typer.Option(min=1, help="Extractions at once.")] = 2,
        tick: Annotated[float, typer.Option(min=1, help="Seconds between checks.")] = 30.0,
    ) -> None:
        """Run every tenant's due extractions by their cron `schedule`, and its batch
        pipeline (transform, identities, load) by `pipeline_schedule` (until Ctrl-C)."""
        from opencdp.db import Database
        from opencdp.ingest.extract import ExtractResult
        from opencdp.ingest.scheduler import Scheduler
        from opencdp.pipeline import PipelineReport

        settings = settings_of(ctx)
        runner = Scheduler(settings, Database.from_settings(settings), parallel=parallel)
        console = Console(stderr=True)
        if not runner.jobs:
            console.print(
                "nothing is scheduled: add `schedule: '0 * * * *'` to a source, or "
                "`pipeline_schedule: '15 * * * *'` to a tenant"
            )
            return
        console.print(f"{len(runner.jobs)} scheduled jobs, {parallel} at a time")
        if once:
            outcomes = runner.run_once()
            runner.shutdown()
            failed = 0
            for outcome in outcomes:
                if isinstance(outcome, ExtractResult):
                    console.print(f"{outcome.tenant}/{outcome.source}: {outcome.status}")
                    failed += outcome.status == "failed"
                elif isinstance(outcome, PipelineReport):
                    loaded = "loaded" if outcome.refresh else "nothing to load"
                    console.print(
                        f"{outcome.transform.tenant}: pipeline done, "
                        f"{outcome.transform.files} raw files transformed, {loaded}"
                    )
                else:
                    console.print(f"[red]error: {outcome}[/]")
                    failed += 1
            if failed:
                raise typer.Exit(1)
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            runner.run_forever(tick, stop)
        except KeyboardInterrupt:
            stop.set()
            runner.shutdown()

    @app.command("runs")
    def runs(
        ctx: typer.Context,
        tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
        limit: Annotated[int, typer.Option(min=1, help="Most recent first.")] = 30,
    ) -> None:
        """List pipeline runs: source, start, end, status, records, errors."""
        from opencdp.db import Database, migrate_control
        from opencdp.db.runs import RunLog

        db = Database.from_settings(settings_of(ctx))
        migrate_control(db)
        records = RunLog(db).recent(tenant, limit)
        table = Table(title="pipeline runs", title_justify="left")
        for column in ("tenant", "source", "kind", "started", "seconds", "status", "records"):
            table.add_column(column)
        table.add_column("errors")
        for r in records:
            seconds = (r.ended_at - r.started_at).total_seconds() if r.ended_at else None
            table.add_row(
                r.tenant,
                r.source,
                r.kind,
                f"{r.started_at:%Y-%m-%d %H:%M:%S}",
                f"{seconds:.1f}" if seconds is not None else "-",
                r.status,
                f"{r.records:,}",
                f"{r.errors:,}",
            )
        Console().print(table if records else "no runs recorded yet")
