"""Helpers shared by the CLI commands."""

from __future__ import annotations

from typing import Annotated

import typer

from opencdp.settings import Settings


def settings_of(ctx: typer.Context) -> Settings:
    """The settings built once by the root callback."""
    settings = ctx.find_root().obj
    if not isinstance(settings, Settings):  # pragma: no cover - wiring error
        raise TypeError("the CLI root callback did not build the settings")
    return settings


# The options of a command that serves HTTP; unset, the command's settings section decides.
HostOption = Annotated[str | None, typer.Option(help="Address (default: settings).")]
PortOption = Annotated[int | None, typer.Option(help="Port (default: settings).")]
WorkersOption = Annotated[int | None, typer.Option(min=1, help="Worker processes.")]
