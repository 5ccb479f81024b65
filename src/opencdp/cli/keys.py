"""`opencdp keys`: API keys of the serving API, created, listed and revoked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from opencdp.cli.context import settings_of
from opencdp.names import check_name

if TYPE_CHECKING:
    from opencdp.serve.keys import ApiKey

# opencdp.serve.keys (psycopg) is imported inside the commands: `opencdp --help` stays fast.

keys_app = typer.Typer(
    help="API keys of the serving API: one tenant each, with scopes and an expiry.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


def _when(value: datetime | None, empty: str = "-") -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value is not None else empty


@keys_app.command("create")
def create(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option(help="The tenant whose data the key reads.")],
    name: Annotated[str, typer.Option(help="What uses the key, e.g. checkout-service.")],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="profiles:read, events:read or admin (implies the others); repeat for "
            "several. Default: profiles:read and events:read.",
            show_default=False,
        ),
    ] = None,
    expires_in: Annotated[
        str | None,
        typer.Option(help="Expire after this long: 90m, 12h, 30d, 2w.", show_default=False),
    ] = None,
    expires_at: Annotated[
        str | None,
        typer.Option(
            help="Expire at this ISO 8601 time (UTC when it has no zone).", show_default=False
        ),
    ] = None,
) -> None:
    """Create a key and print its token, once: only its hash is kept."""
    from opencdp.db import Database, ensure_tenant, migrate_control, registered_tenants
    from opencdp.serve.keys import (
        EVENTS_READ,
        PROFILES_READ,
        check_key_name,
        create_key,
        normalize_scopes,
        parse_expiry,
    )
    from opencdp.serve.roles import ensure_tenant_role

    # Every input is checked before the database is touched.
    scopes = normalize_scopes(scope or [PROFILES_READ, EVENTS_READ])
    check_key_name(name)
    check_name(tenant, "tenant")
    expiry = parse_expiry(expires_in, expires_at, datetime.now(UTC))
    db = Database.from_settings(settings_of(ctx))
    migrate_control(db)
    if tenant in registered_tenants(db):
        # The API reads the tenant's data as its role: the schema must be current and the
        # role there. Done first, so that a failure here leaves no key without its token.
        ensure_tenant(db, tenant)
        with db.connect() as conn:
            ensure_tenant_role(conn, tenant)
    key, token = create_key(db, tenant, name, scopes, expiry)  # an unknown tenant fails here
    typer.echo(f"key id   {key.key_id}")
    typer.echo(f"tenant   {key.tenant}")
    typer.echo(f"name     {key.name}")
    typer.echo(f"scopes   {', '.join(key.scopes)}")
    typer.echo(f"expires  {_when(key.expires_at, 'never')}")
    typer.echo(f"token    {token}")
    typer.echo(
        "warning: this is the only time the token is shown (only its hash is stored); "
        "keep it in a secret store now",
        err=True,
    )


@keys_app.command("list")
def list_(
    ctx: typer.Context,
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant's keys.", show_default=False)
    ] = None,
) -> None:
    """List keys (never their secrets): id, tenant, name, scopes, dates and status."""
    from opencdp.db import Database, migrate_control
    from opencdp.serve.keys import list_keys

    db = Database.from_settings(settings_of(ctx))
    migrate_control(db)
    keys = list_keys(db, tenant)
    if not keys:
        typer.echo("no API keys" + (f" for tenant {tenant}" if tenant else ""))
        return
    _table(keys)


def _table(keys: list[ApiKey]) -> None:
    now = datetime.now(UTC)
    header = ("KEY ID", "TENANT", "NAME", "SCOPES", "CREATED", "EXPIRES", "REVOKED", "STATUS")
    rows = [
        (
            key.key_id,
            key.tenant,
            key.name,
            ",".join(key.scopes),
            _when(key.created_at),
            _when(key.expires_at, "never"),
            _when(key.revoked_at),
            key.status(now),
        )
        for key in keys
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key id, as `opencdp keys list` shows it.")],
) -> None:
    """Revoke a key: the API refuses it within serve.key_cache_seconds. Repeating is a no-op."""
    from opencdp.db import Database, migrate_control
    from opencdp.serve.keys import check_key_id, revoke_key

    check_key_id(key_id)
    db = Database.from_settings(settings_of(ctx))
    migrate_control(db)
    key = revoke_key(db, key_id)
    assert key.revoked_at is not None
    typer.echo(
        f"key {key.key_id} ({key.name}) of tenant {key.tenant} is revoked since "
        f"{_when(key.revoked_at)} UTC"
    )
