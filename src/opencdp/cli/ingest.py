"""`opencdp ingest`: a Singer target reading messages from stdin or a file."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from opencdp.alerts import Alerter
from opencdp.cli.context import settings_of
from opencdp.ingest.pipeline import ingest_lines
from opencdp.ingest.schemas import DriftPolicy
from opencdp.ingest.singer.target import IngestSummary

# EX_DATAERR: the input broke the Singer protocol (the bad lines are in the DLQ).
EXIT_PROTOCOL_ERRORS = 65


def print_summary(summary: IngestSummary, console: Console) -> None:
    table = Table(title=f"ingested {summary.tenant}/{summary.provider}", title_justify="left")
    for column in ("stream", "in", "written", "rejected", "files", "raw bytes", "gzip bytes"):
        table.add_column(column, justify="left" if column == "stream" else "right")
    for name, s in sorted(summary.streams.items()):
        table.add_row(
            name,
            f"{s.records_in:,}",
            f"{s.written:,}",
            f"{s.rejected:,}",
            f"{s.files:,}",
            f"{s.raw_bytes:,}",
            f"{s.compressed_bytes:,}",
        )
    console.print(table)
    saved = "state saved" if summary.states_saved else "no state received"
    console.print(
        f"{len(summary.raw_files)} raw files, {len(summary.dlq_files)} DLQ files, {saved}, "
        f"{summary.protocol_errors} protocol errors"
    )
    for stream, changes in summary.drift.items():
        console.print(f"[yellow]schema drift in {stream}:[/] " + "; ".join(changes))


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest(
        ctx: typer.Context,
        tenant: Annotated[str, typer.Option(help="Tenant the data belongs to.")],
        provider: Annotated[str, typer.Option(help="Provider name (shopify, stripe, crm, ...).")],
        input_file: Annotated[
            Path | None,
            typer.Option("--input", help="Read Singer messages from this file instead of stdin."),
        ] = None,
        source: Annotated[
            str | None, typer.Option(help="Source name for the saved state (default: provider).")
        ] = None,
        batch_size: Annotated[
            int | None, typer.Option(min=1, help="Records per raw file (default: settings).")
        ] = None,
        drift_policy: Annotated[
            str, typer.Option(help="On schema drift: 'warn' (accept) or 'dlq' (reject records).")
        ] = "warn",
    ) -> None:
        """Land Singer messages (a tap's output) in the raw zone: `tap | opencdp ingest ...`."""
        settings = settings_of(ctx)
        if drift_policy not in ("warn", "dlq"):
            raise typer.BadParameter("must be 'warn' or 'dlq'", param_hint="--drift-policy")
        policy: DriftPolicy = "dlq" if drift_policy == "dlq" else "warn"
        err = Console(stderr=True)

        def progress(summary: IngestSummary, elapsed: float) -> None:
            total = sum(s.records_in for s in summary.streams.values())
            err.print(f"  {total:,} records in {elapsed:.0f} s ({total / elapsed:,.0f}/s)")

        source_file = input_file.open("rb") if input_file else nullcontext(sys.stdin.buffer)
        with source_file as lines:
            summary = ingest_lines(
                settings,
                tenant=tenant,
                provider=provider,
                lines=lines,
                source=source,
                batch_size=batch_size,
                drift_policy=policy,
                progress=progress,
            )
        print_summary(summary, err)
        if summary.drift:
            Alerter(settings.alerts).send(
                f"schema drift in {tenant}/{provider}", {"streams": summary.drift}
            )
        if not summary.ok:
            raise typer.Exit(EXIT_PROTOCOL_ERRORS)
