"""`opencdp init`: create a data root with an annotated example configuration."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from opencdp.cli.context import settings_of
from opencdp.settings import CONFIG_FILE

# The folders of DESIGN.md §3 that live in the data root.
ROOT_FOLDERS = ("raw", "dlq", "warehouse", "audiences", "state")


def example_config() -> str:
    return resources.files("opencdp").joinpath("opencdp.example.yaml").read_text("utf-8")


def init_root(root: Path, *, force: bool = False) -> Path:
    """Create `root`, its folders and an example opencdp.yaml; keep an existing config."""
    root.mkdir(parents=True, exist_ok=True)
    for folder in ROOT_FOLDERS:
        (root / folder).mkdir(exist_ok=True)
    config = root / CONFIG_FILE
    if force or not config.exists():
        config.write_text(example_config(), encoding="utf-8")
    return config


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        ctx: typer.Context,
        force: Annotated[
            bool, typer.Option(help="Overwrite an existing opencdp.yaml with the example.")
        ] = False,
    ) -> None:
        """Create a data root (raw zone, DLQ, warehouse, state) with an example opencdp.yaml."""
        settings = settings_of(ctx)
        config = init_root(settings.root, force=force)
        typer.echo(f"data root ready: {settings.root.resolve()}")
        typer.echo(f"configuration:   {config.resolve()}  (edit it to declare tenants and sources)")
