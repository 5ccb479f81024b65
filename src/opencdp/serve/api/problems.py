"""Errors as RFC 9457 problem details (`application/problem+json`), for every failure the API
answers: its own, FastAPI's request validation, and any unexpected exception."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from opencdp.errors import TransientError
from opencdp.logs import get_logger
from opencdp.serve.audit import AuditBacklogError

log = get_logger(__name__)

PROBLEM_TYPE = "https://opencdp.dev/problems/"
_TITLES = {
    308: "Permanent redirect",
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Content too large",
    422: "Invalid request",
    500: "Internal server error",
    503: "Service unavailable",
}


class ApiError(Exception):
    """An answer other than success: `status`, a short `kind` (the last part of the problem
    type URI) and a `detail` for the person reading it."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions


def problem_response(
    status: int,
    kind: str,
    detail: str,
    instance: str,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response:
    document = {
        "type": PROBLEM_TYPE + kind,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": instance,
        **extensions,
    }
    return Response(
        orjson.dumps(document),
        status_code=status,
        media_type="application/problem+json",
        headers=dict(headers or {}),
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of `app` as a problem document."""

    async def on_problem(request: Request, error: Exception) -> Response:
        assert isinstance(error, ApiError)
        return problem_response(
            error.status,
            error.kind,
            error.detail,
            request.url.path,
            error.headers,
            **error.extensions,
        )

    async def on_http(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        kind = "not-found" if error.status_code == 404 else "http-error"
        return problem_response(
            error.status_code, kind, str(error.detail), request.url.path, error.headers
        )

    async def on_invalid(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        errors = [
            {"location": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in error.errors()
        ]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
        return problem_response(400, "invalid-request", detail, request.url.path, errors=errors)

    async def on_backlog(request: Request, error: Exception) -> Response:
        return problem_response(
            503,
            "audit-backlog",
            "profile accesses cannot be written to the audit log right now; retry shortly",
            request.url.path,
            {"Retry-After": "1"},
        )

    async def on_unavailable(request: Request, error: Exception) -> Response:
        log.warning("api_unavailable", path=request.url.path, error=str(error))
        return problem_response(
            503,
            "unavailable",
            "the database or the search index is unavailable right now; retry shortly",
            request.url.path,
            {"Retry-After": "1"},
        )

    async def on_unexpected(request: Request, error: Exception) -> Response:
        log.exception("api_unexpected_error", path=request.url.path)
        return problem_response(
            500, "internal", "the server failed to answer; see its log", request.url.path
        )

    app.add_exception_handler(ApiError, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(AuditBacklogError, on_backlog)
    for transient in (TransientError, PoolTimeout, psycopg.OperationalError):
        app.add_exception_handler(transient, on_unavailable)
    app.add_exception_handler(Exception, on_unexpected)
