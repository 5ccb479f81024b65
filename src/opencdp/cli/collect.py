"""`opencdp collect serve|batcher`: the real-time collection service."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from opencdp.cli.context import HostOption, PortOption, WorkersOption, settings_of


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Signed webhooks and the Segment-compatible tracking API.", no_args_is_help=True
    )
    app.add_typer(group, name="collect")

    @group.command("serve")
    def serve(
        ctx: typer.Context,
        host: HostOption = None,
        port: PortOption = None,
        workers: WorkersOption = None,
        batcher: Annotated[
            bool, typer.Option(help="Also run the batcher (off when a separate one runs).")
        ] = True,
    ) -> None:
        """Serve webhooks and the tracking API until Ctrl-C; events land in the raw zone."""
        from opencdp.collect.server import serve as run

        settings = settings_of(ctx)
        collect = settings.collect
        run(
            settings,
            host=host or collect.host,
            port=port if port is not None else collect.port,
            workers=workers or collect.workers,
            batcher=batcher,
        )

    @group.command("batcher")
    def batcher(ctx: typer.Context) -> None:
        """Drain the event queue into raw-zone files (for a batcher of its own)."""
        from opencdp.collect.server import start_batcher

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        thread = start_batcher(settings_of(ctx), stop)
        try:
            while thread.is_alive():
                thread.join(timeout=1)
        except KeyboardInterrupt:
            stop.set()
            thread.join(timeout=30)
