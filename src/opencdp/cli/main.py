"""The `opencdp` command: the composition root where settings are built once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.core import Context as ClickContext  # typer vendors click
from typer.core import TyperGroup

from opencdp.errors import OpenCDPError
from opencdp.logs import configure_logging, redact_text
from opencdp.settings import load_settings

# Exit codes: 2 for errors that need a change (EX_USAGE-like), 75 (EX_TEMPFAIL) for
# errors worth retrying, so that schedulers can tell them apart.
EXIT_TERMINAL = 2
EXIT_TRANSIENT = 75


class _Group(TyperGroup):
    """Turns OpenCDP errors into a clear message and an exit code, for every command."""

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except OpenCDPError as e:
            typer.echo(f"error: {redact_text(str(e))}", err=True)
            raise typer.Exit(EXIT_TRANSIENT if e.retryable else EXIT_TERMINAL) from e


app = typer.Typer(
    name="opencdp",
    cls=_Group,
    help="OpenCDP: an open-source Customer Data Platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    root: Annotated[
        Path | None,
        typer.Option(help="Data root (default: $OPENCDP_ROOT or ./cdp-data).", show_default=False),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning or error.", show_default=False)
    ] = None,
    log_json: Annotated[bool, typer.Option(help="Log as JSON lines.")] = False,
) -> None:
    overrides: dict[str, object] = {}
    if log_level:
        overrides["log_level"] = log_level
    if log_json:
        overrides["log_format"] = "json"
    settings = load_settings(root, **overrides)
    configure_logging(settings.log_level, settings.log_format)
    ctx.obj = settings


def _register() -> None:
    # Each command lives in its own module; importing it here keeps this file the one
    # place that shows the whole command tree.
    from opencdp.cli import (
        collect,
        db,
        demo,
        dlq,
        extract,
        generate,
        identity,
        ingest,
        init,
        keys,
        load,
        maintain,
        query,
        scheduler,
        schemas,
        serve,
        transform,
    )

    init.register(app)
    db.register(app)
    ingest.register(app)
    extract.register(app)
    scheduler.register(app)
    schemas.register(app)
    dlq.register(app)
    query.register(app)
    generate.register(app)
    demo.register(app)
    collect.register(app)
    transform.register(app)
    identity.register(app)
    maintain.register(app)
    load.register(app)
    keys.register(app)
    serve.register(app)


def main() -> None:
    _register()
    app()


if __name__ == "__main__":
    main()
