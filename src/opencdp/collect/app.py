"""The collection service: a plain ASGI application.

    GET  /healthz                      the process is up
    GET  /readyz                       the queue accepts writes
    GET  /metrics                      Prometheus metrics
    POST /webhooks/{tenant}/{source}   a provider's signed webhook
    POST /v1/{identify|track|page|screen|group|alias|batch}   Segment's tracking API

A request is answered only after its events are durable in the queue (group commit: many
requests share one fsync). Requests that fail verification are refused (401) and their
bodies are not stored; a verified body that is not valid is answered 400 and kept in the
dead letter queue; nothing acknowledged is ever lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from opencdp.collect.envelope import envelope, received_at, webhook_stream
from opencdp.collect.http import (
    HttpError,
    Receive,
    Scope,
    Send,
    basic_user,
    decode_content,
    headers_of,
    read_body,
    require_json,
    respond,
    respond_json,
    respond_problem,
)
from opencdp.collect.metrics import CollectMetrics
from opencdp.collect.queue import EventQueue
from opencdp.collect.ratelimit import RateLimiter
from opencdp.collect.routes import Routes, SourceRoute, WebhookRoute
from opencdp.collect.signatures import RecentIds, SignatureError, ip_allowed, verify
from opencdp.collect.tracking import (
    EVENT_TYPES,
    MAX_BATCH_BYTES,
    TrackingError,
    event_name,
    parse_request,
)
from opencdp.logs import get_logger
from opencdp.settings import CollectSettings
from opencdp.storage.ndjson import GzipLines
from opencdp.storage.objectstore import ObjectStore
from opencdp.storage.rawzone import DeadLetterWriter

log = get_logger(__name__)

_TRACKING_PATHS = {f"/v1/{kind}": kind for kind in (*EVENT_TYPES, "batch")}
_MAX_DEDUP_ENTRIES = 1_000_000


class CollectApp:
    def __init__(
        self,
        settings: CollectSettings,
        routes: Routes,
        queue: EventQueue,
        store: ObjectStore,
        *,
        clock: Callable[[], float] = time.time,
        metrics: CollectMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.routes = routes
        self.queue = queue
        self.store = store
        self.clock = clock
        self.metrics = metrics or CollectMetrics()
        self.limiter = RateLimiter(
            settings.rate_limit_per_second, settings.rate_limit_burst, routes.rate_limits
        )
        self.seen = RecentIds(settings.dedup_window_seconds, _MAX_DEDUP_ENTRIES)
        # The request path is looked up whole: no split per request.
        self._webhook_paths = {
            f"/webhooks/{tenant}/{source}": route
            for (tenant, source), route in routes.webhooks.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        started = time.perf_counter()
        endpoint = "other"  # a bounded label: never a path a client made up
        try:
            if path.startswith("/webhooks/") and method == "POST":
                endpoint = "webhook"
                await self._webhook(scope, receive, send)
            elif path in _TRACKING_PATHS and method == "POST":
                endpoint = path
                await self._tracking(_TRACKING_PATHS[path], scope, receive, send)
            elif path == "/healthz":
                endpoint = path
                await respond_json(send, 200, {"status": "ok"})
            elif path == "/readyz":
                endpoint = path
                await respond_json(send, 200, {"status": "ready", "queue": self.queue.depth()})
            elif path == "/metrics":
                endpoint = path
                self.metrics.queue_depth = self.queue.depth()
                await respond(send, 200, self.metrics.render(), "text/plain; version=0.0.4")
            else:
                await respond_problem(
                    send, HttpError(404, "Not Found", f"no endpoint {method} {path}")
                )
        except HttpError as e:
            await respond_problem(send, e)
        finally:
            self.metrics.observe_latency(endpoint, time.perf_counter() - started)

    # --- webhooks ------------------------------------------------------------------------

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._webhook_paths.get(scope["path"])
        if route is None:
            # Counted without the names from the path: a client could make up any number.
            self.metrics.count_request("-", "-", 404)
            parts = scope["path"].split("/")
            if len(parts) != 4 or not parts[2] or not parts[3]:
                raise HttpError(404, "Not Found", "use POST /webhooks/{tenant}/{source}")
            tenant, source = parts[2], parts[3]
            raise HttpError(404, "Not Found", f"no webhook source {source!r} for tenant {tenant!r}")
        try:
            await self._accept_webhook(route, scope, receive, send)
        except HttpError as e:
            self.metrics.count_request(route.tenant, route.source, e.status)
            raise

    async def _accept_webhook(
        self, route: WebhookRoute, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if route.networks and not ip_allowed((scope.get("client") or ("", 0))[0], route.networks):
            raise HttpError(403, "Forbidden", "this address may not call this webhook")
        self._rate_limit(route.tenant)
        headers = headers_of(scope)
        require_json(headers)
        body = await read_body(receive, headers, route.max_body_bytes)
        now = self.clock()
        try:
            verified = verify(route.scheme, body, headers, route.verification, now)
        except SignatureError as e:
            log.warning("webhook_refused", tenant=route.tenant, source=route.source, reason=str(e))
            raise HttpError(401, "Unauthorized", f"signature verification failed: {e}") from e
        received = received_at(now)
        try:
            record = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            await self._dead_letter(
                route,
                Rejected("webhook", verified.event_id, verified.event_type, received),
                body.decode("utf-8", "replace"),
                "invalid_json",
                f"the verified body is not valid JSON: {e}",
            )
            raise HttpError(400, "Bad Request", f"the body is not valid JSON: {e}") from e
        if not isinstance(record, dict):
            await self._dead_letter(
                route,
                Rejected("webhook", verified.event_id, verified.event_type, received),
                record,
                "invalid_payload",
                "the body is not a JSON object",
            )
            raise HttpError(400, "Bad Request", "the body must be a JSON object")
        event_id = verified.event_id
        # An id outside the signature (Shopify, plain HMAC) could be swapped by a replayer:
        # there the signed body itself is the replay key.
        replay_key = event_id if verified.id_signed else hashlib.sha256(body).hexdigest()
        if replay_key is not None and self.seen.seen_before(
            f"{route.tenant}/{route.source}/{replay_key}", now
        ):
            self.metrics.count_request(route.tenant, route.source, 200)
            await respond_json(send, 200, {"status": "duplicate", "id": event_id})
            return
        line = envelope(
            tenant=route.tenant,
            provider=route.provider,
            stream=webhook_stream(verified.event_type),
            kind="webhook",
            event_id=event_id,
            received_at=received,
            event_type=verified.event_type,
            record=record,
        )
        await self.queue.put([line])
        self.metrics.count_request(route.tenant, route.source, 200)
        self.metrics.count_events(route.tenant, route.source)
        await respond_json(send, 200, {"status": "accepted", "id": event_id})

    # --- tracking API ---------------------------------------------------------------------

    async def _tracking(self, kind: str, scope: Scope, receive: Receive, send: Send) -> None:
        headers = headers_of(scope)
        require_json(headers)
        body = await read_body(receive, headers, MAX_BATCH_BYTES)
        body = decode_content(body, headers, MAX_BATCH_BYTES)
        now = self.clock()
        try:
            request = parse_request(kind, body, datetime.fromtimestamp(now, UTC))
        except TrackingError as e:
            raise HttpError(e.status, "Bad Request", e.reason) from e
        write_key = basic_user(headers) or request.write_key
        route = self.routes.write_keys.get(write_key or "")
        if route is None:
            self.metrics.count_request("-", "-", 401)
            raise HttpError(
                401, "Unauthorized", "unknown write key: send it as Basic auth user or writeKey"
            )
        self._rate_limit(route.tenant)
        received = received_at(now)
        lines = []
        for event in request.events:
            key = f"{route.tenant}/{route.source}/{event['messageId']}"
            if self.seen.seen_before(key, now):
                continue
            lines.append(
                envelope(
                    tenant=route.tenant,
                    provider=route.provider,
                    stream=event["type"],
                    kind="track",
                    event_id=event["messageId"],
                    received_at=received,
                    event_type=event_name(event),
                    record=event,
                )
            )
        for event, reason in request.rejected:
            await self._dead_letter(
                route,
                Rejected("track", event.get("messageId"), event.get("type"), received),
                event,
                "invalid_event",
                reason,
            )
        if lines:
            await self.queue.put(lines)
            self.metrics.count_events(route.tenant, route.source, len(lines))
        self.metrics.count_request(route.tenant, route.source, 200)
        await respond_json(send, 200, {"success": True})

    # --- shared ------------------------------------------------------------------------

    def _rate_limit(self, tenant: str) -> None:
        wait = self.limiter.take(tenant, self.clock())
        if wait:
            seconds = str(max(1, round(wait + 0.5)))
            raise HttpError(
                429,
                "Too Many Requests",
                f"tenant {tenant!r} is over its rate limit",
                {"Retry-After": seconds, "X-RateLimit-Reset": seconds},
            )

    async def _dead_letter(
        self, route: SourceRoute, what: Rejected, record: Any, error_type: str, reason: str
    ) -> None:
        lines = GzipLines()
        lines.add_json(
            {
                "_meta": {
                    "tenant": route.tenant,
                    "provider": route.provider,
                    "stream": None,
                    "kind": what.kind,
                    "id": what.event_id,
                    "received_at": what.received_at,
                    "extracted_at": None,
                    "batch_id": None,
                    "schema_version": None,
                    "event_type": what.event_type,
                },
                "record": record,
                "error": {
                    "type": error_type,
                    "reason": reason,
                    "field": None,
                    "at": what.received_at,
                    "retry_count": 0,
                },
            }
        )
        writer = DeadLetterWriter(self.store, route.tenant, route.provider)
        await asyncio.to_thread(writer.commit, error_type, lines.finish(), datetime.now(UTC))
        self.metrics.count_dlq_write(route.tenant, route.source, error_type)


@dataclass(frozen=True)
class Rejected:
    """What the DLQ keeps about a request's event besides its body."""

    kind: str
    event_id: str | None
    event_type: str | None
    received_at: str


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
