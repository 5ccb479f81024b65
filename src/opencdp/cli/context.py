"""Helpers shared by the CLI commands."""

from __future__ import annotations

import typer

from opencdp.settings import Settings


def settings_of(ctx: typer.Context) -> Settings:
    """The settings built once by the root callback."""
    settings = ctx.find_root().obj
    if not isinstance(settings, Settings):  # pragma: no cover - wiring error
        raise TypeError("the CLI root callback did not build the settings")
    return settings
