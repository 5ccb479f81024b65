"""`opencdp extract`: run a tenant's tap into the raw zone, with state and retries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from opencdp.cli.context import settings_of

if TYPE_CHECKING:
    from opencdp.ingest.extract import ExtractResult


EXIT_EXTRACT_FAILED = 1


def print_result(result: ExtractResult, console: Console) -> None:
    from opencdp.cli.ingest import print_summary

    for number, attempt in enumerate(result.attempts, start=1):
        console.print(
            f"attempt {number}: exit code {attempt.exit_code}"
            + (" (timed out: stopped cleanly, resumes next run)" if attempt.timed_out else "")
        )
        print_summary(attempt.summary, console)
    seconds = (result.ended_at - result.started_at).total_seconds()
    console.print(
        f"{result.tenant}/{result.source}: {result.status} in {seconds:.1f} s, "
        f"{result.records:,} records landed, {result.rejected:,} rejected"
    )
    if result.error and result.status == "failed":
        console.print(f"[red]{result.error}[/]")


def register(app: typer.Typer) -> None:
    @app.command("extract")
    def extract_(
        ctx: typer.Context,
        tenant: Annotated[str, typer.Option(help="Tenant.")],
        source: Annotated[str, typer.Option(help="Source declared in opencdp.yaml.")],
    ) -> None:
        """Run a source's Singer tap into the raw zone (resumes from the saved state); the
        run is recorded (see `opencdp runs`)."""
        from opencdp.db import Database
        from opencdp.ingest.scheduler import run_recorded

        settings = settings_of(ctx)
        result = run_recorded(settings, Database.from_settings(settings), tenant, source)
        print_result(result, Console(stderr=True))
        if result.status == "failed":
            raise typer.Exit(EXIT_EXTRACT_FAILED)
