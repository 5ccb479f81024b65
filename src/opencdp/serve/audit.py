"""The audit log: every access of the API to a tenant's profiles, written to that tenant's
`audit_log` table.

One `AuditLog` per tenant, writing through the tenant's connection pool, whose sessions run
as the tenant's role: the one table that role may insert into is its own audit log, so
entries cannot land in another tenant's schema. `record` only appends to a buffer, so a
request pays nothing for it; a background task writes the buffer at least every
`flush_seconds` (sooner when it holds `batch_size` entries) with one COPY in one
transaction, and `close` writes what is left, so a normal shutdown loses nothing. When the
database is away, entries stay buffered and are retried; once `max_pending` wait, `record`
refuses (`AuditBacklogError`): the API stops serving rather than serve without an audit
trail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from opencdp.db import database_errors, tenant_schema
from opencdp.errors import OpenCDPError, TransientError
from opencdp.logs import get_logger
from opencdp.serve.roles import AUDIT_TABLE

log = get_logger(__name__)

# The `action` values the audit_log table accepts (tenant migration 0002_audit_log).
AUDIT_ACTIONS: Final = (
    "profile.read",
    "profile.lookup",
    "profile.search",
    "profile.events",
    "profile.orders",
    "enrich",
)
AUDIT_COLUMNS: Final = ("at", "key_id", "action", "profile_id", "detail")

# A row of audit_log as written: at, key_id, action, profile_id, detail (JSON text).
AuditRow = tuple[datetime, str, str, str | None, str]


class AuditBacklogError(TransientError):
    """Too many audit entries wait for the database: accesses are refused until they are
    written (HTTP 503 at the API edge)."""


def audit_row(
    key_id: str,
    action: str,
    profile_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditRow:
    """The row of one access, checked when recorded so that no entry can make a batch fail
    later. The key id and action come from the API itself: a bad one is a `ValueError`. The
    profile id and the detail may carry request text: characters PostgreSQL cannot store
    (NUL, lone surrogates) are replaced by U+FFFD, so the access is still recorded."""
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; actions are {', '.join(AUDIT_ACTIONS)}")
    if not key_id or _storable(key_id) != key_id:
        raise ValueError(f"not a key id: {key_id!r}")
    when = at or datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError("an audit entry's time needs a time zone")
    try:
        text = json.dumps(_storable_json(dict(detail or {})), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"an audit entry's detail is not JSON: {e}") from e
    return (when, key_id, action, None if profile_id is None else _storable(profile_id), text)


def _storable(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


def _storable_json(value: object) -> object:
    if isinstance(value, str):
        return _storable(value)
    if isinstance(value, Mapping):
        return {_storable(str(k)): _storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable_json(v) for v in value]
    return value


class AuditLog:
    """Buffers one tenant's audit entries and writes them to its audit_log table.

    `pool` is the tenant's pool (sessions as the tenant's role, see
    `opencdp.serve.roles.tenant_connection_options`), opened by its owner. Use as
    `async with AuditLog(pool, tenant, flush_seconds=...) as audit:`, or `start()` and
    `close()`; `close` does not close the pool.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        tenant: str,
        *,
        flush_seconds: float,
        batch_size: int = 10_000,
        max_pending: int = 200_000,
    ) -> None:
        if not (flush_seconds > 0 and math.isfinite(flush_seconds)):
            raise ValueError("flush_seconds must be a positive number")
        if not 1 <= batch_size <= max_pending:
            raise ValueError("need 1 <= batch_size <= max_pending")
        self.tenant = tenant
        self._pool = pool
        self._copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(tenant_schema(tenant), AUDIT_TABLE),  # validates the tenant
            sql.SQL(", ").join(map(sql.Identifier, AUDIT_COLUMNS)),
        )
        self._flush_seconds = flush_seconds
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._pending: list[AuditRow] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._closed = False

    @property
    def pending(self) -> int:
        """Entries recorded and not yet written."""
        return len(self._pending)

    async def start(self) -> None:
        """Start the background flush."""
        if self._closed:
            raise RuntimeError("the audit log is closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"audit log {self.tenant}"
            )

    def record(
        self,
        key_id: str,
        action: str,
        profile_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Buffer one access, timed now. `ValueError` for an invalid entry (see `audit_row`),
        `AuditBacklogError` when too many wait to be written."""
        if self._closed:
            raise RuntimeError("the audit log is closed")
        row = audit_row(key_id, action, profile_id, detail)
        if len(self._pending) >= self._max_pending:
            raise AuditBacklogError(
                f"{len(self._pending):,} audit entries of tenant {self.tenant} are waiting "
                "to be written",
                hint="the serving database is unreachable or too slow; see the log",
            )
        self._pending.append(row)
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    async def flush(self) -> int:
        """Write every buffered entry now, in one transaction; returns how many.

        On failure the entries stay buffered, ahead of newer ones, for the next flush.
        """
        async with self._lock:
            rows, self._pending = self._pending, []
            if not rows:
                return 0
            try:
                with database_errors(
                    f"writing {len(rows)} audit entries of tenant {self.tenant}",
                    hint=f"the tenant's schema and role must exist: run `opencdp db migrate "
                    f"--tenant {self.tenant}` (and a load), then start the API again",
                ):
                    async with (
                        self._pool.connection() as conn,
                        conn.transaction(),
                        conn.cursor() as cur,
                        cur.copy(self._copy) as out,
                    ):
                        for row in rows:
                            await out.write_row(row)
            except BaseException as e:
                # Also when cancelled: nothing of the transaction was committed.
                self._pending[:0] = rows
                if isinstance(e, OpenCDPError):
                    log.error(  # noqa: TRY400 - the message says it all, no traceback
                        "audit entries not written, kept for the next flush",
                        tenant=self.tenant,
                        entries=len(rows),
                        error=e.message,
                    )
                raise
            return len(rows)

    async def close(self) -> None:
        """Stop the background flush and write what is left."""
        if self._closed:
            return
        self._stopping = True
        self._wake.set()
        try:
            if self._task is not None:
                await self._task
            await self.flush()
        finally:
            self._closed = True
            if self._pending:
                log.error(
                    "audit entries lost at shutdown", tenant=self.tenant, entries=self.pending
                )

    async def __aenter__(self) -> AuditLog:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._flush_seconds)
            self._wake.clear()
            if self._stopping:
                return  # close() writes the rest
            with contextlib.suppress(OpenCDPError):  # logged; retried next time
                await self.flush()
