"""`opencdp maintain` and `opencdp rollback`: keep a tenant's curated tables healthy."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from opencdp.cli.context import settings_of


def register(app: typer.Typer) -> None:
    @app.command("maintain")
    def maintain(
        ctx: typer.Context,
        tenant: Annotated[str, typer.Option(help="Tenant.")],
        keep_days: Annotated[
            float | None,
            typer.Option(
                min=0,
                help="Keep snapshots this recent, for rollback (default: the tenant's "
                "keep_snapshot_days, 7).",
            ),
        ] = None,
    ) -> None:
        """Compact each table's small files and fold its position deletes back into the data
        (incremental runs write them), and expire its old snapshots; recorded in the run log."""
        from opencdp.db import Database
        from opencdp.lake.recorded import maintain_recorded

        settings = settings_of(ctx)
        console = Console(stderr=True)
        db = Database.from_settings(settings)
        for m in maintain_recorded(settings, db, tenant, keep_days=keep_days):
            console.print(
                f"{m.table}: {m.files_before} files -> {m.files_after} "
                f"({m.partitions_compacted} partitions compacted), "
                f"{m.snapshots_expired} snapshots expired"
            )

    @app.command("rollback")
    def rollback_(
        ctx: typer.Context,
        tenant: Annotated[str, typer.Option(help="Tenant.")],
    ) -> None:
        """Undo the tenant's last transform run: every table it changed goes back to its
        snapshot before that run, and the run's raw files count as unprocessed again."""
        from opencdp.lake import list_tables, load_table, open_catalog
        from opencdp.lake.commit import last_run
        from opencdp.lake.maintain import rollback
        from opencdp.storage import store_for
        from opencdp.transform.ledger import Ledger

        settings = settings_of(ctx)
        console = Console(stderr=True)
        ledger = Ledger(store_for(settings), tenant)
        runs = ledger.runs()
        if not runs:
            console.print(f"{tenant}: no finished transform run to roll back")
            raise typer.Exit(1)
        run_id = runs[-1].run_id
        with open_catalog(settings) as catalog:
            changed = [
                name
                for name in list_tables(catalog, tenant)
                if last_run(load_table(catalog, tenant, name)) == run_id
            ]
            rolled = rollback(catalog, tenant, changed)
        ledger.forget(run_id)
        for name, snapshot in rolled.items():
            console.print(f"{name}: back to snapshot {snapshot}")
        console.print(f"run {run_id} rolled back; its raw files will be transformed again")
