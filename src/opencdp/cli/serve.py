"""`opencdp serve`: the REST API for profiles, search and enrichment."""

from __future__ import annotations

from typing import Annotated

import typer

from opencdp.cli.context import settings_of


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        ctx: typer.Context,
        host: Annotated[str | None, typer.Option(help="Address (default: settings).")] = None,
        port: Annotated[int | None, typer.Option(help="Port (default: settings).")] = None,
        workers: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
    ) -> None:
        """Serve the profile API (OpenAPI at /openapi.json, docs at /docs) until stopped.

        Requests need an API key: `opencdp keys create --tenant T --name N`.
        """
        from opencdp.serve.server import serve as run

        settings = settings_of(ctx)
        serve_settings = settings.serve
        run(
            settings,
            host=host or serve_settings.host,
            port=port if port is not None else serve_settings.port,
            workers=workers or serve_settings.workers,
        )
