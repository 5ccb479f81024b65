from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from opencdp.ingest.scheduler import PIPELINE, Job, due_jobs, scheduled_jobs
from opencdp.lake.recorded import MAINTENANCE
from opencdp.settings import Settings

HOURLY = Job("acme", "shop", "0 * * * *")
DAILY = Job("acme", "crm", "30 2 * * *")
NOW = datetime(2025, 1, 15, 10, 20, tzinfo=UTC)


def test_never_run_jobs_are_due() -> None:
    assert due_jobs([HOURLY, DAILY], {}, NOW) == [HOURLY, DAILY]


def test_a_job_is_due_when_its_schedule_fired_after_its_last_start() -> None:
    last = {
        ("acme", "shop"): datetime(2025, 1, 15, 9, 59, tzinfo=UTC),  # before the 10:00 fire
        ("acme", "crm"): datetime(2025, 1, 15, 2, 31, tzinfo=UTC),  # after today's 02:30
    }
    assert due_jobs([HOURLY, DAILY], last, NOW) == [HOURLY]


def test_a_job_started_after_the_last_fire_waits_for_the_next() -> None:
    last = {("acme", "shop"): datetime(2025, 1, 15, 10, 0, 5, tzinfo=UTC)}
    assert due_jobs([HOURLY], last, NOW) == []
    assert due_jobs([HOURLY], last, datetime(2025, 1, 15, 11, 0, 1, tzinfo=UTC)) == [HOURLY]


def test_a_tenant_with_a_pipeline_schedule_gets_a_pipeline_job() -> None:
    settings = Settings(tenants={"acme": {"pipeline_schedule": "15 * * * *"}, "globex": {}})
    assert scheduled_jobs(settings) == [Job("acme", PIPELINE, "15 * * * *")]


def test_a_pipeline_schedule_must_be_a_cron_expression() -> None:
    with pytest.raises(ValidationError, match="not a cron expression"):
        Settings(tenants={"acme": {"pipeline_schedule": "every hour"}})


def test_a_maintenance_schedule_gets_a_job_of_its_own() -> None:
    settings = Settings(
        tenants={"acme": {"pipeline_schedule": "15 * * * *", "maintenance_schedule": "0 3 * * *"}}
    )
    pipeline, maintenance = scheduled_jobs(settings)
    assert pipeline == Job("acme", PIPELINE, "15 * * * *")
    assert maintenance == Job("acme", MAINTENANCE, "0 3 * * *")
    # Each job is due by its own last start: a pipeline run does not count as maintenance.
    last = {("acme", PIPELINE): datetime(2025, 1, 15, 10, 16, tzinfo=UTC)}
    assert due_jobs([pipeline, maintenance], last, NOW) == [maintenance]
    with pytest.raises(ValidationError, match="not a cron expression"):
        Settings(tenants={"acme": {"maintenance_schedule": "nightly"}})
