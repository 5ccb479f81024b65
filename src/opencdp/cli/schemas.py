"""`opencdp schemas list|show|diff`: the schema registry."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from opencdp.cli.context import settings_of
from opencdp.errors import NotFoundError
from opencdp.ingest.schemas import SchemaRegistry, diff_schemas
from opencdp.storage import store_for

TenantOpt = Annotated[str, typer.Option(help="Tenant.")]
ProviderOpt = Annotated[str, typer.Option(help="Provider.")]
StreamOpt = Annotated[str, typer.Option(help="Stream name.")]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Registered stream schemas, versions and drift.", no_args_is_help=True)
    app.add_typer(group, name="schemas")

    def registry(ctx: typer.Context, tenant: str, provider: str) -> SchemaRegistry:
        return SchemaRegistry(store_for(settings_of(ctx)), tenant, provider)

    @group.command("list")
    def list_(ctx: typer.Context, tenant: TenantOpt, provider: ProviderOpt) -> None:
        """Every stream with its latest version, key and drift."""
        reg = registry(ctx, tenant, provider)
        table = Table(title=f"schemas of {tenant}/{provider}", title_justify="left")
        for column in ("stream", "versions", "key", "registered", "drift in latest"):
            table.add_column(column)
        streams = reg.streams()
        for stream_dir in streams:
            versions = reg.versions(stream_dir)  # folder names are file-safe stream names
            latest = versions[-1]
            table.add_row(
                latest.stream,
                str(latest.version),
                ", ".join(latest.key_properties),
                latest.registered_at,
                "; ".join(latest.drift) or "-",
            )
        Console().print(table if streams else f"no schemas registered for {tenant}/{provider}")

    @group.command("show")
    def show(
        ctx: typer.Context,
        tenant: TenantOpt,
        provider: ProviderOpt,
        stream: StreamOpt,
        version: Annotated[int | None, typer.Option(help="Version (default: latest).")] = None,
    ) -> None:
        """Print one version of a stream's JSON Schema."""
        v = registry(ctx, tenant, provider).get(stream, version)
        typer.echo(v.to_json().decode())

    @group.command("diff")
    def diff(
        ctx: typer.Context,
        tenant: TenantOpt,
        provider: ProviderOpt,
        stream: StreamOpt,
        from_version: Annotated[
            int | None, typer.Option("--from", help="Older version (default: latest - 1).")
        ] = None,
        to_version: Annotated[
            int | None, typer.Option("--to", help="Newer version (default: latest).")
        ] = None,
    ) -> None:
        """What changed between two versions of a stream's schema."""
        reg = registry(ctx, tenant, provider)
        new = reg.get(stream, to_version)
        old_number = from_version if from_version is not None else new.version - 1
        if old_number < 1:
            raise NotFoundError(f"stream {stream!r} has only one version: nothing to compare")
        old = reg.get(stream, old_number)
        changes = diff_schemas(old.schema, new.schema, old.key_properties, new.key_properties)
        typer.echo(f"{stream}: v{old.version} -> v{new.version}")
        for line in changes.describe() or ["(no field changes)"]:
            typer.echo(f"  {line}")
        typer.echo("  drift" if changes.is_drift else "  backward compatible")
