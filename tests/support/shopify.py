"""The Shopify REST Admin API, as documented, for customers, orders and products.

- `GET /admin/api/{version}/{customers|orders|products}.json` -> `{"<resource>": [...]}`,
  ordered by id; `limit` 1..250 (default 50).
- Filters `updated_at_min`, `updated_at_max` (inclusive); orders also `status` (default `open`:
  neither closed nor cancelled; `closed`, `cancelled`, `any`).
- Cursor pagination: a `Link` header with `<...page_info=...>; rel="next"` (and
  `rel="previous"` after the first page); a request with `page_info` may add only
  `limit` and `fields`, anything else is a 400.
- `X-Shopify-Access-Token` must match, else 401.
- A leaky bucket per shop (40 calls, leaking 2 a second by default): each response says
  `X-Shopify-Shop-Api-Call-Limit: used/size`; a call into a full bucket gets a 429 with
  Retry-After, counted in `overflows`.
"""

from __future__ import annotations

import base64
import math
import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from tests.support.server import Faults, Params, ProviderServer, Reply, one

RESOURCES = ("customers", "orders", "products")
_PATH = re.compile(r"/admin/api/(\d{4}-\d{2}|unstable)/(\w+)\.json")
_FILTERS = ("updated_at_min", "updated_at_max", "status")
_PAGE_PARAMS = {"page_info", "limit", "fields"}
_INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
_THROTTLED = (
    "Exceeded 2 calls per second for api client. Reduce request rates to resume "
    "uninterrupted service."
)


class Bucket:
    """A shop's request bucket; `level` is its content at the first call (as if other
    apps had just filled it), from when it starts leaking."""

    def __init__(self, size: int, leak_rate: float, level: float = 0.0) -> None:
        self.size, self.leak_rate, self.level = size, leak_rate, level
        self._at: float | None = None

    def take(self) -> float | None:
        """Count one call; None if it fits, else the seconds until it would."""
        now = time.monotonic()
        if self._at is not None:
            self.level = max(0.0, self.level - (now - self._at) * self.leak_rate)
        self._at = now
        if self.level + 1 > self.size:
            return (self.level + 1 - self.size) / self.leak_rate
        self.level += 1
        return None

    def header(self) -> str:
        return f"{math.ceil(self.level)}/{self.size}"


class ShopifyServer(ProviderServer):
    def __init__(
        self,
        token: str,
        records: Mapping[str, Iterable[dict[str, Any]]],
        *,
        faults: Faults | None = None,
        bucket: Bucket | None = None,
    ) -> None:
        super().__init__(faults)
        self.token = token
        self.records: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in RESOURCES}
        for resource, rows in records.items():
            for row in rows:
                self.put(resource, row)
        self.bucket = bucket or Bucket(40, 2.0)
        self.overflows = 0

    def put(self, resource: str, record: dict[str, Any]) -> None:
        """Add or replace a record (by id), as a change in the shop would."""
        with self.lock:
            self.records[resource][record["id"]] = record

    def answer(self, path: str, params: Params, headers: dict[str, str]) -> Reply:
        match = _PATH.fullmatch(path)
        if match is None or match.group(2) not in RESOURCES:
            return self._reply(404, {"errors": "Not Found"})
        if headers.get("x-shopify-access-token") != self.token:
            return self._reply(401, {"errors": _INVALID_TOKEN})
        wait = self.bucket.take()
        if wait is not None:
            self.overflows += 1
            reply = self.too_many_requests()
            reply.headers["Retry-After"] = f"{wait:.1f}"
            return reply
        version, resource = match.groups()
        try:
            filters, after = self._cursor(params)
            limit = int(one(params, "limit") or 50)
        except ValueError as e:
            return self._reply(400, {"errors": str(e)})
        if not 1 <= limit <= 250:
            return self._reply(400, {"errors": {"limit": ["must be between 1 and 250"]}})
        rows = [
            r for _, r in sorted(self.records[resource].items()) if _matches(resource, r, filters)
        ]
        rows = [r for r in rows if r["id"] > after]
        page = rows[:limit]
        reply = self._reply(200, {resource: page})
        reply.headers["X-Shopify-API-Version"] = version
        cursors = []
        if "page_info" in params:
            cursors.append({"dir": "prev", "before": page[0]["id"] if page else after})
        if len(rows) > limit:
            cursors.append({"dir": "next", "after": page[-1]["id"], "filters": filters})
        if cursors:
            reply.headers["Link"] = ", ".join(self._link(path, limit, c) for c in cursors)
        return reply

    def _cursor(self, params: Params) -> tuple[dict[str, str], int]:
        token = one(params, "page_info")
        if token is None:
            filters = {name: value for name in _FILTERS if (value := one(params, name))}
            for name in ("updated_at_min", "updated_at_max"):
                if name in filters:
                    datetime.fromisoformat(filters[name])  # a ValueError is a 400
            return filters, 0
        extra = sorted(set(params) - _PAGE_PARAMS)
        if extra:
            raise ValueError(f"{extra[0]} cannot be passed when page_info is present.")
        try:
            cursor = orjson.loads(base64.urlsafe_b64decode(token))
        except (ValueError, orjson.JSONDecodeError) as e:
            raise ValueError("Invalid page_info.") from e
        if cursor.get("dir") != "next":
            raise ValueError("Only forward pagination is played by this server.")
        return cursor["filters"], cursor["after"]

    def _link(self, path: str, limit: int, cursor: dict[str, Any]) -> str:
        token = base64.urlsafe_b64encode(orjson.dumps(cursor)).decode()
        query = urlencode({"limit": limit, "page_info": token})
        rel = "next" if cursor["dir"] == "next" else "previous"
        return f'<{self.url}{path}?{query}>; rel="{rel}"'

    def _reply(self, status: int, body: Any) -> Reply:
        return Reply(status, body, {"X-Shopify-Shop-Api-Call-Limit": self.bucket.header()})

    def too_many_requests(self) -> Reply:
        return self._reply(429, {"errors": _THROTTLED})

    def unavailable(self) -> Reply:
        return self._reply(503, {"errors": "Service Unavailable"})


def _matches(resource: str, record: dict[str, Any], filters: dict[str, str]) -> bool:
    updated = datetime.fromisoformat(record["updated_at"])
    if "updated_at_min" in filters and updated < datetime.fromisoformat(filters["updated_at_min"]):
        return False
    if "updated_at_max" in filters and updated > datetime.fromisoformat(filters["updated_at_max"]):
        return False
    status = filters.get("status", "open")
    if resource != "orders" or status == "any":
        return True
    closed, cancelled = record.get("closed_at"), record.get("cancelled_at")
    return {
        "open": not closed and not cancelled,
        "closed": bool(closed),
        "cancelled": bool(cancelled),
    }.get(status, False)
