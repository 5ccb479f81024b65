"""The record of pipeline runs (control table `opencdp.pipeline_runs`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from opencdp.db.database import Database, database_errors
from opencdp.db.schemas import CONTROL_SCHEMA

RunStatus = Literal["running", "succeeded", "failed", "timed_out"]
_RUNS = sql.Identifier(CONTROL_SCHEMA, "pipeline_runs")


@dataclass(frozen=True)
class RunRecord:
    run_id: UUID
    tenant: str
    source: str
    kind: str
    started_at: datetime
    ended_at: datetime | None
    status: RunStatus
    records: int
    errors: int
    details: dict[str, Any]


class RunLog:
    """Starts, finishes and lists runs; the tenant must exist (`ensure_tenant`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, tenant: str, source: str, kind: str) -> UUID:
        with database_errors("recording a run start"), self.db.connect() as conn:
            row = conn.execute(
                sql.SQL(
                    "INSERT INTO {} (tenant, source, kind) VALUES (%s, %s, %s) RETURNING run_id"
                ).format(_RUNS),
                (tenant, source, kind),
            ).fetchone()
        assert row is not None
        run_id: UUID = row["run_id"]
        return run_id

    def finish(
        self,
        run_id: UUID,
        status: RunStatus,
        records: int,
        errors: int,
        details: dict[str, Any],
    ) -> None:
        with database_errors("recording a run end"), self.db.connect() as conn:
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET ended_at = greatest(now(), started_at), status = %s, "
                    "records = %s, errors = %s, details = %s WHERE run_id = %s"
                ).format(_RUNS),
                (status, records, errors, Jsonb(details), run_id),
            )

    @contextmanager
    def failed_if_raised(self, run_id: UUID, error: str) -> Iterator[None]:
        """Record the run as failed, with `error`, when the block raises (then re-raise)."""
        try:
            yield
        except BaseException:
            self.finish(run_id, "failed", 0, 1, {"error": error})
            raise

    def recent(self, tenant: str | None = None, limit: int = 50) -> list[RunRecord]:
        query = sql.SQL("SELECT * FROM {} {} ORDER BY started_at DESC LIMIT %s").format(
            _RUNS, sql.SQL("WHERE tenant = %s" if tenant else "")
        )
        params: tuple[Any, ...] = (tenant, limit) if tenant else (limit,)
        with database_errors("listing runs"), self.db.connect() as conn:
            rows = conn.execute(query, params).fetchall()
        return [RunRecord(**row) for row in rows]

    def last_starts(self) -> dict[tuple[str, str], datetime]:
        """The latest start of every (tenant, source): when each was last run."""
        with database_errors("reading the last runs"), self.db.connect() as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT tenant, source, max(started_at) AS at FROM {} GROUP BY 1, 2"
                ).format(_RUNS)
            ).fetchall()
        return {(r["tenant"], r["source"]): r["at"] for r in rows}
