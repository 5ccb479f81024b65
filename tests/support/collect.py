"""Running `opencdp collect serve` in a subprocess for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError("the collection service did not start")


def stop_collect(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
