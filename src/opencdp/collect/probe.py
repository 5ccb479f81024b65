"""Finding a port and waiting for an HTTP server on 127.0.0.1 to answer (the demo, the
benchmarks and the tests start the collection service as a process of its own)."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request


def free_port(preferred: int = 0) -> int:
    """`preferred` if it is free on 127.0.0.1, else any free port."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(port: int, timeout: float = 30.0) -> bool:
    """True as soon as 127.0.0.1:`port` answers GET /healthz with any HTTP status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # it answered
        except OSError:
            time.sleep(0.1)
    return False
