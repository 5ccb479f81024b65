"""`opencdp serve`: the REST API for profiles, search and enrichment."""

from __future__ import annotations

import typer

from opencdp.cli.context import HostOption, PortOption, WorkersOption, settings_of


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        ctx: typer.Context,
        host: HostOption = None,
        port: PortOption = None,
        workers: WorkersOption = None,
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
