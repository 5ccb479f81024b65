"""Running the collection service: granian workers for the HTTP side, one batcher thread.

Workers are separate processes: each builds its app from the environment
(`app_from_env`, granian's factory), so the settings travel as OPENCDP_* variables. The
batcher runs once, in the parent, so that two workers never drain the same queue.
"""

from __future__ import annotations

import gc
import os
import threading

from opencdp.collect.app import CollectApp
from opencdp.collect.batcher import Batcher
from opencdp.collect.metrics import BATCHER_METRICS_FILE, CollectMetrics
from opencdp.collect.queue import open_queue
from opencdp.collect.routes import build_routes
from opencdp.logs import configure_logging, get_logger
from opencdp.settings import Settings, load_settings
from opencdp.storage import store_for

log = get_logger(__name__)

# How granian runs each worker, besides their number (its defaults for ASGI, spelled out so
# that benchmarks/bench_collect.py runs its reference app the same way): a Rust runtime of
# one thread beside the worker's asyncio event loop.
GRANIAN_SETTINGS: dict[str, str | int] = {
    "interface": "asgi",
    "http": "auto",
    "runtime_mode": "mt",
    "runtime_threads": 1,
    "loop": "asyncio",
    "task_impl": "asyncio",
}


def build_app(settings: Settings) -> CollectApp:
    collect = settings.collect
    queue = open_queue(collect.queue_url, settings.root, collect.queue_options)
    metrics = CollectMetrics(batcher_file=settings.root / BATCHER_METRICS_FILE)
    return CollectApp(collect, build_routes(settings), queue, store_for(settings), metrics=metrics)


def app_from_env() -> CollectApp:
    """granian's factory: one app per worker process, built from OPENCDP_* variables."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = build_app(settings)
    # Everything imported and built so far lives as long as the worker: kept out of the
    # garbage collector's full passes, which would otherwise walk it all every few
    # seconds under load (tens of ms of stalled requests each time).
    gc.freeze()
    return app


def start_batcher(settings: Settings, stop: threading.Event) -> threading.Thread:
    collect = settings.collect
    queue = open_queue(collect.queue_url, settings.root, collect.queue_options)
    batcher = Batcher.from_settings(settings, queue)
    thread = threading.Thread(target=batcher.run_forever, args=(stop,), name="batcher", daemon=True)
    thread.start()
    return thread


def run_granian(factory: str, settings: Settings, host: str, port: int, workers: int) -> None:
    """Serve the app `factory` ("module:function") builds in each of `workers` processes,
    until interrupted. The workers read the settings from the OPENCDP_* environment."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes, TaskImpl
    from granian.log import LogLevels

    os.environ["OPENCDP_ROOT"] = str(settings.root.resolve())
    os.environ["OPENCDP_LOG_LEVEL"] = settings.log_level
    Granian(
        factory,
        address=host,
        port=port,
        workers=workers,
        interface=Interfaces(GRANIAN_SETTINGS["interface"]),
        http=HTTPModes(GRANIAN_SETTINGS["http"]),
        runtime_mode=RuntimeModes(GRANIAN_SETTINGS["runtime_mode"]),
        runtime_threads=int(GRANIAN_SETTINGS["runtime_threads"]),
        loop=Loops(GRANIAN_SETTINGS["loop"]),
        task_impl=TaskImpl(GRANIAN_SETTINGS["task_impl"]),
        factory=True,
        log_level=LogLevels(settings.log_level),
    ).serve()


def serve(settings: Settings, *, host: str, port: int, workers: int, batcher: bool) -> None:
    """Serve until interrupted; with `batcher`, also drain the queue into the raw zone."""
    build_routes(settings)  # refuse a bad configuration before any worker starts
    stop = threading.Event()
    thread = start_batcher(settings, stop) if batcher else None
    log.info("collect_serving", host=host, port=port, workers=workers, batcher=batcher)
    try:
        run_granian("opencdp.collect.server:app_from_env", settings, host, port, workers)
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=30)
