"""Running `opencdp collect serve` in a subprocess for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from opencdp.collect.probe import free_port, wait_healthy

__all__ = ["free_port", "start_collect", "stop_collect"]


def start_collect(
    root: Path, port: int, *, workers: int = 1, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start the service in a process group of its own (so that a signal reaches every
    worker) and wait until it answers /healthz."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENCDP_")}
    opencdp = Path(sys.executable).parent / "opencdp"
    process = subprocess.Popen(
        [
            str(opencdp),
            "--root",
            str(root),
            "collect",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env={**clean, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if wait_healthy(port):
        return process
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError("the collection service did not start")


def stop_collect(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
