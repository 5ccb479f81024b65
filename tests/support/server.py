"""A provider API played by a real HTTP server on 127.0.0.1, in a thread.

A subclass answers requests from its records (`answer`); this base adds what production
APIs show now and then: a 429 with Retry-After every Nth request, a 503 every Mth. Every
request is logged with its query and status, so tests can check how a client behaved.
"""

from __future__ import annotations

import http.server
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import orjson

Params = dict[str, list[str]]


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Logged:
    path: str
    params: Params
    headers: dict[str, str]
    status: int


@dataclass
class Faults:
    rate_limit_every: int = 0  # every Nth request answers 429
    retry_after: str | None = "0.5"  # the 429's Retry-After header; None: no header
    fail_every: int = 0  # every Nth request answers 503


class LocalServer:
    """A threaded HTTP server on a free port of 127.0.0.1, serving in a thread of its own
    while used as a context manager."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._http.shutdown()
        self._http.server_close()


class ProviderServer(LocalServer, ABC):
    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.log: list[Logged] = []
        self.lock = threading.Lock()
        super().__init__(_handler(self))

    def statuses(self) -> list[int]:
        return [entry.status for entry in self.log]

    def dispatch(self, target: str, headers: dict[str, str]) -> Reply:
        split = urlsplit(target)
        params = parse_qs(split.query, keep_blank_values=True)
        with self.lock:
            number = len(self.log) + 1
            reply = self._fault(number) or self.answer(split.path, params, headers)
            self.log.append(Logged(split.path, params, headers, reply.status))
        return reply

    def _fault(self, number: int) -> Reply | None:
        every = self.faults.rate_limit_every
        if every and number % every == 0:
            reply = self.too_many_requests()
            if self.faults.retry_after is not None:
                reply.headers["Retry-After"] = self.faults.retry_after
            return reply
        if self.faults.fail_every and number % self.faults.fail_every == 0:
            return self.unavailable()
        return None

    @abstractmethod
    def answer(self, path: str, params: Params, headers: dict[str, str]) -> Reply: ...

    @abstractmethod
    def too_many_requests(self) -> Reply: ...

    @abstractmethod
    def unavailable(self) -> Reply: ...


def _handler(server: ProviderServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            reply = server.dispatch(self.path, {k.lower(): v for k, v in self.headers.items()})
            body = orjson.dumps(reply.body)
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def one(params: Params, name: str) -> str | None:
    """A query parameter's single value (the last one when repeated)."""
    values = params.get(name)
    return values[-1] if values else None
