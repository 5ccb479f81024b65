"""The Stripe API's list endpoints, as documented, for customers and charges.

- `GET /v1/customers`, `GET /v1/charges` -> `{"object": "list", "data": [...],
  "has_more": bool, "url": "/v1/..."}`, newest first (by `created`, then id).
- `limit` 1..100 (default 10), else a 400; `starting_after=<id>` continues after that
  object (an unknown id is a 400); `created` as a number or `created[gt|gte|lt|lte]`.
- The secret key as `Authorization: Bearer <key>` or Basic (key as user name), else 401.
- Errors are `{"error": {"type", "message", ...}}`; a 429 carries code `rate_limit` and
  no Retry-After unless the faults add one.
"""

from __future__ import annotations

import base64
import operator
from collections.abc import Iterable, Mapping
from typing import Any

from tests.support.server import Faults, Params, ProviderServer, Reply, one

RESOURCES = ("customers", "charges")
_BOUNDS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def _error(status: int, message: str, **extra: str) -> Reply:
    return Reply(status, {"error": {"type": "invalid_request_error", "message": message, **extra}})


def _order(record: dict[str, Any]) -> tuple[int, str]:
    return record["created"], record["id"]


class StripeServer(ProviderServer):
    def __init__(
        self,
        api_key: str,
        records: Mapping[str, Iterable[dict[str, Any]]],
        *,
        faults: Faults | None = None,
    ) -> None:
        super().__init__(faults or Faults(retry_after=None))
        self.api_key = api_key
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in RESOURCES}
        for resource, rows in records.items():
            for row in rows:
                self.put(resource, row)

    def put(self, resource: str, record: dict[str, Any]) -> None:
        with self.lock:
            self.records[resource][record["id"]] = record

    def answer(self, path: str, params: Params, headers: dict[str, str]) -> Reply:
        resource = path.removeprefix("/v1/")
        if resource not in RESOURCES:
            return _error(404, f"Unrecognized request URL (GET: {path}).")
        denied = self._authenticate(headers.get("authorization", ""))
        if denied is not None:
            return denied
        limit = int(one(params, "limit") or 10)
        if not 1 <= limit <= 100:
            return _error(
                400,
                f"This value must be between 1 and 100 (it currently is '{limit}').",
                param="limit",
            )
        rows = sorted(self.records[resource].values(), key=_order, reverse=True)
        try:
            rows = [r for r in rows if _created_matches(r["created"], params)]
        except ValueError:
            return _error(400, "Invalid integer for created.", param="created")
        after = one(params, "starting_after")
        if after is not None:
            cursor = self.records[resource].get(after)
            if cursor is None:
                return _error(400, f"No such {resource[:-1]}: '{after}'", param="starting_after")
            rows = [r for r in rows if _order(r) < _order(cursor)]
        body = {
            "object": "list",
            "data": rows[:limit],
            "has_more": len(rows) > limit,
            "url": path,
        }
        return Reply(200, body, {"Request-Id": f"req_{len(self.log) + 1:08d}"})

    def _authenticate(self, authorization: str) -> Reply | None:
        scheme, _, value = authorization.partition(" ")
        if scheme == "Basic":
            value = base64.b64decode(value).decode().partition(":")[0]
        elif scheme != "Bearer":
            return _error(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth.",
            )
        if value != self.api_key:
            return _error(401, f"Invalid API Key provided: {value[:8]}{'*' * 8}{value[-4:]}")
        return None

    def too_many_requests(self) -> Reply:
        return _error(
            429,
            "Request rate limit exceeded. Learn more about rate limits here "
            "https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        )

    def unavailable(self) -> Reply:
        return Reply(
            503, {"error": {"type": "api_error", "message": "The service is unavailable."}}
        )


def _created_matches(created: int, params: Params) -> bool:
    exact = one(params, "created")
    if exact is not None and created != int(exact):
        return False
    return all(
        test(created, int(bound))
        for op, test in _BOUNDS.items()
        if (bound := one(params, f"created[{op}]")) is not None
    )
