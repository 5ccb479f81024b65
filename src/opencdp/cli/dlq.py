"""`opencdp dlq list|show|reprocess`: the dead letter queue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from opencdp.cli.context import settings_of
from opencdp.errors import ConfigError
from opencdp.ingest import dlq
from opencdp.storage import store_for

TenantOpt = Annotated[str, typer.Option(help="Tenant.")]
ProviderOpt = Annotated[str, typer.Option(help="Provider.")]
ErrorTypeOpt = Annotated[
    str | None, typer.Option(help="Only this error type (validation, missing_schema, ...).")
]
REF = "_dlq_ref"


def read_edits(path: Path) -> dict[str, dict[str, Any]]:
    """Edited records from a JSONL file of `dlq show --format jsonl` lines."""
    edits: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise ConfigError(f"{path}:{n} is not valid JSON: {e}") from e
        if not isinstance(doc, dict) or not isinstance(doc.get(REF), str):
            raise ConfigError(
                f"{path}:{n} has no '{REF}'",
                hint="start from the output of `opencdp dlq show --format jsonl`",
            )
        if not isinstance(doc.get("record"), dict):
            raise ConfigError(f"{path}:{n}: 'record' must be a JSON object")
        edits[doc[REF]] = doc["record"]
    return edits


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Inspect and reprocess the dead letter queue.", no_args_is_help=True)
    app.add_typer(group, name="dlq")

    @group.command("list")
    def list_(
        ctx: typer.Context,
        tenant: TenantOpt,
        provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
    ) -> None:
        """Count DLQ files and records per provider and error type."""
        groups = dlq.summarize(store_for(settings_of(ctx)), tenant, provider)
        table = Table(title=f"dead letter queue of {tenant}", title_justify="left")
        for column in ("provider", "error type", "files", "records"):
            table.add_column(column, justify="right" if column in ("files", "records") else "left")
        for g in groups:
            table.add_row(g.provider, g.error_type, f"{g.files:,}", f"{g.records:,}")
        Console().print(table if groups else f"the DLQ of {tenant} is empty")

    @group.command("show")
    def show(
        ctx: typer.Context,
        tenant: TenantOpt,
        provider: ProviderOpt,
        error_type: ErrorTypeOpt = None,
        limit: Annotated[int, typer.Option(min=1, help="At most this many records.")] = 50,
        output: Annotated[
            str, typer.Option("--format", help="table, or jsonl (editable, for reprocess --edits).")
        ] = "table",
    ) -> None:
        """Show DLQ records with their errors."""
        if output not in ("table", "jsonl"):
            raise typer.BadParameter("must be 'table' or 'jsonl'", param_hint="--format")
        store = store_for(settings_of(ctx))
        shown = []
        for n, entry in enumerate(dlq.entries(store, tenant, provider, error_type)):
            if n >= limit:
                break
            shown.append(entry)
        if output == "jsonl":
            for entry in shown:
                typer.echo(orjson.dumps({REF: entry.ref, **entry.doc}).decode())
            return
        table = Table(title=f"DLQ {tenant}/{provider}", title_justify="left", show_lines=True)
        for column in ("ref", "stream", "error", "field", "reason", "retries", "record"):
            table.add_column(column, overflow="fold")
        for entry in shown:
            error = entry.doc.get("error") or {}
            record = orjson.dumps(entry.doc.get("record")).decode()
            table.add_row(
                entry.ref.rsplit("/", 1)[-1],
                str((entry.doc.get("_meta") or {}).get("stream") or ""),
                str(error.get("type", "")),
                str(error.get("field") or ""),
                str(error.get("reason", "")),
                str(error.get("retry_count", 0)),
                record[:300],
            )
        Console().print(table if shown else "no records")

    @group.command("reprocess")
    def reprocess(
        ctx: typer.Context,
        tenant: TenantOpt,
        provider: ProviderOpt,
        error_type: ErrorTypeOpt = None,
        edits: Annotated[
            Path | None,
            typer.Option(help="JSONL of edited records (from `dlq show --format jsonl`)."),
        ] = None,
    ) -> None:
        """Send DLQ records (optionally edited) back through validation into the raw zone."""
        settings = settings_of(ctx)
        report = dlq.reprocess(
            store_for(settings),
            tenant,
            provider,
            error_type,
            edits=read_edits(edits) if edits else None,
            batch_size=settings.batch_size,
        )
        typer.echo(f"reprocessed {report.total:,} records: {report.passed:,} now pass")
        for kind, count in sorted(report.still_failing.items()):
            typer.echo(f"  still failing ({kind}): {count:,}")
        if report.raw_files:
            typer.echo(f"written to the raw zone: {', '.join(report.raw_files)}")
