"""`opencdp load`: the tenant's curated tables into its PostgreSQL schema."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from opencdp.cli.context import settings_of

if TYPE_CHECKING:
    from opencdp.serve.load import LoadReport
    from opencdp.serve.refresh import RefreshReport


def print_load(report: LoadReport, console: Console) -> None:
    mode = "historic (rebuilt, checked and swapped in)" if report.historic else "incremental"
    console.print(f"{report.tenant}: {mode} load in {report.seconds:.2f} s")
    table = RichTable()
    for column in ("table", "mode", "snapshot"):
        table.add_column(column, no_wrap=True)
    for column in ("upserted", "deleted", "seconds"):
        table.add_column(column, justify="right", no_wrap=True)
    for name, t in report.tables.items():
        table.add_row(
            name,
            t.mode,
            str(t.snapshot_id) if t.snapshot_id is not None else "-",
            f"{t.rows_upserted:,}",
            f"{t.rows_deleted:,}",
            f"{t.seconds:.2f}",
        )
    console.print(table)
    for name, t in report.tables.items():
        if t.notice:
            console.print(f"  {name}: {t.notice}")


def print_refresh(report: RefreshReport, console: Console) -> None:
    """A load and the search index sync that followed it."""
    print_load(report.load, console)
    console.print(f"search index: {report.search}")


def register(app: typer.Typer) -> None:
    @app.command("load")
    def load_(
        ctx: typer.Context,
        tenant: Annotated[str, typer.Option(help="Tenant.")],
        historic: Annotated[
            bool,
            typer.Option(help="Rebuild every table afresh, check it, then swap all in at once."),
        ] = False,
        table: Annotated[
            list[str] | None,
            typer.Option(help="Load only this table (repeatable; default: every served table)."),
        ] = None,
    ) -> None:
        """Load the tenant's curated tables into its PostgreSQL schema: what changed since
        the last load (the Iceberg snapshot diff), or everything with --historic. One
        transaction: the database shows the old tables or the new ones, never a mix. Then
        the profile search index follows; the run is recorded."""
        from opencdp.serve.refresh import refresh_tenant

        settings = settings_of(ctx)
        progress = Console(stderr=True)

        def say(line: str) -> None:
            progress.print(line, markup=False, highlight=False)

        refreshed = refresh_tenant(
            settings, tenant, historic=historic, tables=table or None, progress=say
        )
        console = Console()
        print_refresh(refreshed, console)
