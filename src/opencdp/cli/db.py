"""`opencdp db`: the serving database's status, schema migrations and embedded server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from opencdp.cli.context import settings_of
from opencdp.errors import ConfigError
from opencdp.names import check_name

if TYPE_CHECKING:
    from opencdp.db import Migration

# opencdp.db (psycopg) is imported inside the commands: `opencdp --help` stays fast.


def _report(schema: str, applied: list[Migration]) -> None:
    if applied:
        typer.echo(f"{schema}: applied {', '.join(m.label for m in applied)}")
    else:
        typer.echo(f"{schema}: up to date")


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(
        help="The serving PostgreSQL database: status, migrations, the embedded server.",
        no_args_is_help=True,
    )
    app.add_typer(db_app, name="db")

    @db_app.command("status")
    def status(ctx: typer.Context) -> None:
        """Show where the database is and the version of each schema (starts it if embedded)."""
        from opencdp.db import Database, database_status

        report = database_status(Database.from_settings(settings_of(ctx)))
        typer.echo(f"database  {report.location}")
        pid = f", pid {report.pid}" if report.pid is not None else ""
        typer.echo(f"server    PostgreSQL {report.server_version}{pid}")
        for schema in report.schemas:
            owner = f"tenant {schema.tenant}" if schema.tenant else "control"
            typer.echo(
                f"schema    {schema.schema:<24} version {schema.version} of {schema.latest}"
                f"  ({owner})"
            )
        pending = sum(max(schema.pending, 0) for schema in report.schemas)
        if pending:
            typer.echo(f"{pending} migration(s) pending: run `opencdp db migrate`")

    @db_app.command("migrate")
    def migrate(
        ctx: typer.Context,
        tenant: Annotated[
            str | None,
            typer.Option(
                help="Only this tenant (its schema is created if new).", show_default=False
            ),
        ] = None,
    ) -> None:
        """Apply pending migrations: control schema, then every registered or declared tenant."""
        from opencdp.db import (
            CONTROL_SCHEMA,
            Database,
            ensure_tenant,
            migrate_control,
            registered_tenants,
            tenant_schema,
        )

        settings = settings_of(ctx)
        if tenant is not None:
            check_name(tenant, "tenant")  # before anything is changed
        db = Database.from_settings(settings)
        _report(CONTROL_SCHEMA, migrate_control(db))
        tenants = (
            [tenant] if tenant else sorted(set(registered_tenants(db)) | set(settings.tenants))
        )
        for name in tenants:
            _report(tenant_schema(name), ensure_tenant(db, name))

    @db_app.command("stop")
    def stop(ctx: typer.Context) -> None:
        """Stop the embedded PostgreSQL of this data root; the next command starts it again."""
        from opencdp.db import Database

        db = Database.from_settings(settings_of(ctx))
        if db.server is None:
            raise ConfigError(
                f"the serving database is configured by URL ({db.location}); only the "
                "embedded server is OpenCDP's to stop",
                hint="stop that PostgreSQL with its own tools",
            )
        if db.server.stop():
            typer.echo(f"stopped the {db.location}")
        else:
            typer.echo(f"the {db.location} is not running")
