"""Running `opencdp collect serve` or `opencdp serve` in a subprocess for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from opencdp.collect.probe import free_port, wait_healthy

__all__ = ["free_port", "start_api", "start_collect", "start_service", "stop_service"]


def start_service(
    root: Path, command: list[str], port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `opencdp --root ROOT COMMAND...` in a process group of its own (so that a
    signal reaches every worker) and wait until it answers /healthz on `port`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENCDP_")}
    opencdp = Path(sys.executable).parent / "opencdp"
    process = subprocess.Popen(
        [str(opencdp), "--root", str(root), *command],
        env={**clean, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if wait_healthy(port):
        return process
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError(f"`opencdp {' '.join(command)}` did not start")


def start_collect(
    root: Path, port: int, *, workers: int = 1, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    command = ["collect", "serve", "--port", str(port), "--workers", str(workers)]
    return start_service(root, command, port, env)


def start_api(
    root: Path, port: int, *, workers: int = 1, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    command = ["serve", "--port", str(port), "--workers", str(workers)]
    return start_service(root, command, port, env)


def stop_service(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
