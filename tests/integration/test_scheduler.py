"""The scheduler runs due extractions, records every run and alerts on failures."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support.raw import land_generated

from opencdp.db import Database
from opencdp.db.runs import RunLog
from opencdp.ingest.extract import ExtractResult
from opencdp.ingest.scheduler import PIPELINE, Scheduler, run_recorded
from opencdp.pipeline import PipelineReport
from opencdp.serve.search import open_search
from opencdp.settings import Settings, load_settings

pytestmark = pytest.mark.integration

COUNTING_TAP = Path(__file__).parent.parent / "data" / "taps" / "counting_tap.py"
TAP = f"command:{sys.executable} {COUNTING_TAP}"


def configure(root: Path, sources: dict[str, dict[str, Any]]) -> Settings:
    for source in sources.values():
        source.setdefault("provider", "counter")
        source.setdefault("tap", TAP)
    config = {"tenants": {"acme": {"sources": sources}}}
    (root / "opencdp.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_settings(root)


def test_due_sources_run_once_and_are_recorded(
    data_root: Path, clean_env: None, database: Database
) -> None:
    settings = configure(
        data_root,
        {
            "hourly": {"schedule": "0 * * * *", "config": {"total": 30}},
            "daily": {"schedule": "0 3 * * *", "config": {"total": 10}},
            "manual": {"config": {"total": 5}},  # no schedule: never run by the scheduler
        },
    )
    scheduler = Scheduler(settings, database, parallel=2)
    outcomes = scheduler.run_once()
    assert sorted(o.source for o in outcomes if isinstance(o, ExtractResult)) == ["daily", "hourly"]
    runs = RunLog(database).recent("acme")
    assert {(r.source, r.status, r.records) for r in runs} == {
        ("hourly", "succeeded", 30),
        ("daily", "succeeded", 10),
    }
    assert all(r.ended_at is not None and r.kind == "extract" for r in runs)
    # Nothing is due again until the schedules fire next.
    assert Scheduler(settings, database).run_once() == []
    scheduler.shutdown()


def test_a_failed_run_is_recorded_as_failed(
    data_root: Path, clean_env: None, database: Database, tmp_path: Path
) -> None:
    settings = configure(
        data_root,
        {
            "flaky": {
                "schedule": "* * * * *",
                "max_retries": 0,
                "config": {
                    "total": 30,
                    "fail_at": 5,
                    "fail_times": 9,
                    "attempts_file": str(tmp_path / "n"),
                },
            }
        },
    )
    result = run_recorded(settings, database, "acme", "flaky")
    assert result.status == "failed"
    [run] = RunLog(database).recent("acme")
    assert run.status == "failed"
    assert "simulated failure" in run.details["error"]
    assert run.details["attempts"] == 1


def test_runs_command_lists_runs(data_root: Path, clean_env: None, database: Database) -> None:
    from typer.testing import CliRunner

    from opencdp.cli.main import _register, app

    settings = configure(data_root, {"items": {"config": {"total": 3}}})
    run_recorded(settings, database, "acme", "items")
    _register()
    env = {"OPENCDP_DATABASE__URL": database.conninfo(), "COLUMNS": "200"}
    result = CliRunner().invoke(
        app, ["--root", str(data_root), "runs", "--tenant", "acme"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "items" in result.output
    assert "succeeded" in result.output


def test_the_pipeline_job_transforms_resolves_and_loads(
    data_root: Path, clean_env: None, database: Database
) -> None:
    url = database.conninfo()
    settings = load_settings(
        data_root, database={"url": url}, tenants={"acme": {"pipeline_schedule": "0 * * * *"}}
    )
    land_generated(settings, "acme", events=200)
    scheduler = Scheduler(settings, database)
    [outcome] = scheduler.run_once()
    scheduler.shutdown()
    assert isinstance(outcome, PipelineReport), outcome
    assert outcome.transform.files > 0
    assert outcome.resolution is not None
    assert outcome.refresh is not None
    with database.connect() as conn:
        served = conn.execute("SELECT count(*) AS n FROM t_acme.profiles").fetchone()
    assert served is not None
    assert served["n"] == outcome.resolution.profiles
    search = open_search(settings, "acme")
    assert search.synced_snapshot() == outcome.refresh.load.tables["profiles"].snapshot_id
    search.close()
    kinds = {r.kind for r in RunLog(database).recent("acme") if r.source == PIPELINE}
    assert kinds == {"transform", "identity", "load"}
    # Not due again before the schedule fires next.
    assert Scheduler(settings, database).run_once() == []
