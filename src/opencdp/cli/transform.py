"""`opencdp transform`: the raw zone into curated Iceberg tables, on DuckDB or Spark."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from opencdp.cli.context import settings_of

if TYPE_CHECKING:
    from opencdp.transform.run import RunReport


def print_report(report: RunReport, console: Console) -> None:
    if not report.files:
        console.print(f"{report.tenant}: no new raw files; the curated tables are current")
        return
    mode = "historic rebuild" if report.historic else "incremental"
    console.print(
        f"run {report.run_id} ({mode} on {report.engine}"
        + (", resumed" if report.resumed else "")
        + f"): {report.files:,} raw files, {report.lines:,} lines, "
        f"{report.rejected:,} to the DLQ, {report.unmapped:,} not mapped"
    )
    table = RichTable("table", "staged", "written", "replaced", "quarantined", "deleted rows")
    for name, t in report.tables.items():
        if t.skipped:
            table.add_row(name, f"{t.staged:,}", "(committed before the interruption)", "", "", "")
        else:
            table.add_row(
                name,
                f"{t.staged:,}",
                f"{t.written:,}",
                f"{t.replaced:,}",
                f"{t.quarantined:,}",
                f"{t.deletes:,}" if t.deletes else "append" if not report.historic else "all",
            )
    console.print(table)
    failures = [r for r in report.quality if not r.passed]
    console.print(
        f"quality: {len(report.quality) - len(failures)} of {len(report.quality)} rules passed"
        f' (opencdp query --tenant {report.tenant} "select * from quality_reports")'
    )
    for r in failures:
        console.print(
            f"[yellow]  {r.table}/{r.provider} {r.rule}: {r.rate:.1%} valid "
            f"< {r.threshold:.0%} ({r.failed:,} of {r.checked:,} values)[/]"
        )
    stages = ", ".join(f"{name} {s:.2f} s" for name, s in report.seconds.items())
    console.print(f"time: {stages}; the run {report.elapsed:.2f} s")


def register(app: typer.Typer) -> None:
    @app.command("transform")
    def transform_(
        ctx: typer.Context,
        tenant: Annotated[str, typer.Option(help="Tenant.")],
        historic: Annotated[
            bool,
            typer.Option(help="Rebuild every table from every raw file (atomic replace)."),
        ] = False,
        engine: Annotated[
            str | None,
            typer.Option(help="duckdb or spark (default: transform.engine in opencdp.yaml)."),
        ] = None,
        identity: Annotated[
            bool, typer.Option(help="Resolve identities after a run that changed the tables.")
        ] = True,
        load: Annotated[
            bool, typer.Option(help="Then load the serving database and the search index.")
        ] = True,
    ) -> None:
        """Transform the tenant's raw zone into its curated Iceberg tables: only new raw
        files by default, or everything with --historic; then resolve identities and load
        what the API serves (with --historic, loaded afresh too). The runs are recorded."""
        from opencdp.cli.identity import print_resolution
        from opencdp.cli.load import print_refresh
        from opencdp.identity.resolve import ResolveReport
        from opencdp.pipeline import run_pipeline
        from opencdp.serve.refresh import RefreshReport
        from opencdp.transform.run import RunReport

        console = Console(stderr=True)

        def show(step: object) -> None:
            if isinstance(step, RunReport):
                print_report(step, console)
            elif isinstance(step, ResolveReport):
                print_resolution(step, console)
            elif isinstance(step, RefreshReport):
                print_refresh(step, console)

        run_pipeline(
            settings_of(ctx),
            tenant,
            historic=historic,
            engine=engine,
            identity=identity,
            load=load,
            progress=console.print,
            after=show,
        )
