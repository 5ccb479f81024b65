"""The reference of the intake benchmark: a bare ASGI app that verifies an HMAC-SHA256
signature (constant-time) and appends the body to a per-process file, without fsync.
Everything the collection service does beyond this is what the benchmark measures."""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

SECRET = os.environ.get("BENCH_SECRET", "bench-secret").encode()
_spool: int | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _spool  # noqa: PLW0603 - one file per worker process, opened on first use
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    signature = b""
    for name, value in scope["headers"]:
        if name == b"x-hub-signature-256":
            signature = value.removeprefix(b"sha256=")
    expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest().encode()
    status = 202 if hmac.compare_digest(expected, signature) else 401
    if status == 202:
        if _spool is None:
            folder = os.environ.get("BENCH_SPOOL", "/tmp")
            _spool = os.open(
                f"{folder}/spool-{os.getpid()}", os.O_WRONLY | os.O_CREAT | os.O_APPEND
            )
        os.write(_spool, body + b"\n")
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})
