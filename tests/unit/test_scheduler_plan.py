from __future__ import annotations

from datetime import UTC, datetime

from opencdp.ingest.scheduler import Job, due_jobs

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
