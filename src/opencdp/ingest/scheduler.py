"""The built-in scheduler: runs every tenant's due extractions by their cron schedules, its
batch pipeline (transform, identity resolution, load) by `pipeline_schedule`, and the
maintenance of its curated tables by `maintenance_schedule`.

Planning is pure (`due_jobs`: schedules, last starts and a time in, jobs out); running a
job records it in `opencdp.pipeline_runs`, alerts on failure, schema drift and a DLQ over
its threshold. Several jobs run at once (bounded); a job still running is never started
again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from croniter import croniter

from opencdp.alerts import Alerter
from opencdp.db import Database, ensure_tenant, migrate_control
from opencdp.db.runs import RunLog, RunStatus
from opencdp.engine import start_workers, stop_workers
from opencdp.ingest import dlq
from opencdp.ingest.extract import ExtractResult, extract
from opencdp.lake.maintain import Maintenance
from opencdp.lake.recorded import MAINTENANCE, maintain_recorded
from opencdp.logs import get_logger
from opencdp.pipeline import PipelineReport, run_pipeline
from opencdp.settings import Settings
from opencdp.storage import store_for

log = get_logger(__name__)

Outcome = ExtractResult | PipelineReport | list[Maintenance]

_STATUS: dict[str, RunStatus] = {"success": "succeeded", "failed": "failed", "timeout": "timed_out"}


# The source name of a tenant's pipeline job: the run log records transform, identity and
# load runs under it.
PIPELINE = "*"


@dataclass(frozen=True)
class Job:
    tenant: str
    source: str  # a declared source, or PIPELINE
    schedule: str


def scheduled_jobs(settings: Settings) -> list[Job]:
    jobs = [
        Job(tenant, name, source.schedule)
        for tenant, tenant_settings in sorted(settings.tenants.items())
        for name, source in sorted(tenant_settings.sources.items())
        if source.kind == "tap" and source.schedule
    ]
    for tenant, tenant_settings in sorted(settings.tenants.items()):
        if tenant_settings.pipeline_schedule:
            jobs.append(Job(tenant, PIPELINE, tenant_settings.pipeline_schedule))
        if tenant_settings.maintenance_schedule:
            jobs.append(Job(tenant, MAINTENANCE, tenant_settings.maintenance_schedule))
    return jobs


def due_jobs(
    jobs: list[Job], last_starts: dict[tuple[str, str], datetime], now: datetime
) -> list[Job]:
    """Jobs never run, or not run since their schedule last fired (pure)."""
    due = []
    for job in jobs:
        last = last_starts.get((job.tenant, job.source))
        fired: datetime = croniter(job.schedule, now).get_prev(datetime)
        if last is None or last < fired:
            due.append(job)
    return due


def run_recorded(
    settings: Settings,
    db: Database,
    tenant: str,
    source: str,
    *,
    alerter: Alerter | None = None,
    run: Callable[..., ExtractResult] = extract,
) -> ExtractResult:
    """One extraction, recorded in the run log, with its alerts."""
    alerter = alerter or Alerter(settings.alerts)
    ensure_tenant(db, tenant)
    runs = RunLog(db)
    run_id = runs.start(tenant, source, "extract")
    with runs.failed_if_raised(run_id, "extraction raised; see the log"):
        result = run(settings, tenant, source, alerter=alerter)
    drift = {s: c for a in result.attempts for s, c in a.summary.drift.items()}
    runs.finish(
        run_id,
        _STATUS[result.status],
        result.records,
        result.rejected,
        {
            "attempts": len(result.attempts),
            "error": result.error,
            "raw_files": sum(len(a.summary.raw_files) for a in result.attempts),
            "dlq_files": sum(len(a.summary.dlq_files) for a in result.attempts),
            "drift": drift,
        },
    )
    if drift:
        alerter.send(f"schema drift in {tenant}/{source}", {"streams": drift})
    waiting = sum(g.records for g in dlq.summarize(store_for(settings), tenant, result.provider))
    if waiting > settings.alerts.dlq_threshold:
        alerter.send(
            f"DLQ of {tenant}/{result.provider} holds {waiting:,} records",
            {"threshold": settings.alerts.dlq_threshold, "inspect": "opencdp dlq list"},
        )
    return result


class Scheduler:
    """Starts due jobs on a pool of `parallel` workers, at every tick."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        parallel: int = 2,
        run: Callable[..., ExtractResult] = extract,
    ) -> None:
        self.settings = settings
        self.db = db
        migrate_control(db)  # the run log lives in the control schema
        self.jobs = scheduled_jobs(settings)
        self.run = run
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="extract")
        self._running: dict[Job, Future[Outcome]] = {}
        self._lock = threading.Lock()

    def start_due(self, now: datetime | None = None) -> list[Future[Outcome]]:
        """Submit every due job that is not already running; return their futures."""
        now = now or datetime.now(UTC)
        last = RunLog(self.db).last_starts() if self.jobs else {}
        started = []
        with self._lock:
            for job in due_jobs(self.jobs, last, now):
                if job in self._running:
                    continue
                log.info("job_start", tenant=job.tenant, source=job.source)
                future: Future[Outcome] = self._pool.submit(self._job(job))
                future.add_done_callback(partial(self._done, job))
                self._running[job] = future
                started.append(future)
        return started

    def _job(self, job: Job) -> Callable[[], Outcome]:
        if job.source == PIPELINE:
            return partial(run_pipeline, self.settings, job.tenant)
        if job.source == MAINTENANCE:
            return partial(maintain_recorded, self.settings, self.db, job.tenant)
        return partial(run_recorded, self.settings, self.db, job.tenant, job.source, run=self.run)

    def _done(self, job: Job, _future: Future[Outcome]) -> None:
        with self._lock:
            future = self._running.pop(job)
        error = future.exception()
        if error is not None:
            log.error("job_failed", tenant=job.tenant, source=job.source, error=str(error))

    def run_forever(self, tick: float = 30.0, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        if any(job.source == PIPELINE for job in self.jobs):
            # Up for good: the engine's workers start once, and every pipeline run stages
            # its raw files on all of them (a one-off run stages a small delta on one core).
            start_workers(self.settings.transform.engine, self.settings.transform)
        while not stop.is_set():
            self.start_due()
            stop.wait(tick)
        self.shutdown()

    def run_once(self) -> list[Outcome | BaseException]:
        """Start everything due now and wait for it (for cron-driven deployments and tests)."""
        futures = self.start_due()
        outcomes: list[Outcome | BaseException] = []
        for future in futures:
            error = future.exception()
            outcomes.append(error if error is not None else future.result())
        return outcomes

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
        stop_workers()
