"""The REST API: profiles, lookup, timeline, search and enrichment, per tenant, by API key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI
from fastapi.responses import Response

from opencdp.db import Database
from opencdp.serve.api import enrich, profiles, search
from opencdp.serve.api.problems import install_problem_handlers
from opencdp.serve.api.state import ApiState
from opencdp.serve.keys import KeyVerifier
from opencdp.settings import Settings

DESCRIPTION = """Unified customer profiles, served per tenant.

Every request carries an API key (`Authorization: Bearer <key>`, made with
`opencdp keys create`): the key decides the tenant and what may be read. Errors are
RFC 9457 problem details (`application/problem+json`)."""


def create_app(settings: Settings) -> FastAPI:
    """The API for `settings`; the database is reached when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        conninfo = Database.from_settings(settings).conninfo()
        verifier = KeyVerifier(conninfo, cache_seconds=settings.serve.key_cache_seconds)
        await verifier.open()
        state = ApiState(settings=settings, conninfo=conninfo, verifier=verifier)
        app.state.api = state
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(
        title="OpenCDP",
        version=version("opencdp"),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    install_problem_handlers(app)
    # Fixed paths first: /v1/profiles/search and /lookup are not profile ids.
    app.include_router(search.router)
    app.include_router(profiles.router)
    app.include_router(enrich.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return Response("ok\n", media_type="text/plain")

    return app
