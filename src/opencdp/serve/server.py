"""Running the API: granian workers, each building the app from the environment.

The settings travel to the worker processes as OPENCDP_* variables (`app_from_env` is
granian's factory). The embedded database is started once, here, before any worker.
"""

from __future__ import annotations

import gc

from fastapi import FastAPI

from opencdp.collect.server import run_granian
from opencdp.db import Database, migrate_control
from opencdp.logs import configure_logging, get_logger
from opencdp.serve.api.app import create_app
from opencdp.settings import Settings, load_settings

log = get_logger(__name__)


def app_from_env() -> FastAPI:
    """granian's factory: one app per worker process, built from OPENCDP_* variables."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    gc.freeze()  # what lives as long as the worker stays out of full collections
    return app


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Serve the API until interrupted."""
    db = Database.from_settings(settings)
    migrate_control(db)  # API keys live there; also starts the embedded server once
    log.info("api_serving", host=host, port=port, workers=workers, database=db.location)
    run_granian("opencdp.serve.server:app_from_env", settings, host, port, workers)
