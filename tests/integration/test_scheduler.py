"""The scheduler runs due extractions, records every run and alerts on failures."""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from tests.support import data
from tests.support.raw import land_generated, land_tap

from opencdp.db import Database
from opencdp.db.runs import RunLog
from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.errors import NotFoundError
from opencdp.ingest.extract import ExtractResult
from opencdp.ingest.scheduler import PIPELINE, Scheduler, run_recorded
from opencdp.lake import load_table, open_catalog
from opencdp.lake.recorded import MAINTENANCE, maintain_recorded
from opencdp.pipeline import PipelineReport, run_pipeline
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


def test_up_for_good_it_keeps_the_engines_workers_for_every_run(
    data_root: Path, clean_env: None, database: Database
) -> None:
    # Three workers: a pool no other test starts.
    settings = load_settings(
        data_root,
        database={"url": database.conninfo()},
        transform={"workers": 3},
        tenants={"acme": {"pipeline_schedule": "0 * * * *"}},
    )
    stop = threading.Event()
    scheduler = Scheduler(settings, database)
    up = threading.Thread(target=scheduler.run_forever, kwargs={"tick": 3600, "stop": stop})
    with DuckDBEngine(workers=3) as engine:
        assert engine.starts_workers
        up.start()
        try:
            deadline = time.monotonic() + 60
            while engine.starts_workers and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not engine.starts_workers, "a run's small delta is staged on the workers"
        finally:
            stop.set()
            up.join(timeout=60)
        assert not up.is_alive()
        assert engine.starts_workers, "they stop with the scheduler"


def test_the_maintenance_job_folds_the_deletes_of_incremental_runs_back(
    data_root: Path, clean_env: None, database: Database
) -> None:
    settings = load_settings(
        data_root,
        database={"url": database.conninfo()},
        tenants={"acme": {"maintenance_schedule": "0 3 * * *", "keep_snapshot_days": 0}},
    )
    land_generated(settings, "acme", events=50)
    run_pipeline(settings, "acme", identity=False, load=False)
    first = curated(settings, "customers")
    # Ten customers again, newer: the incremental run deletes their rows by position.
    newer = [
        dict(c, email=f"new.{c['id']}@example.org", updated_at=datetime.now(UTC).isoformat())
        for c in data.records("shopify", "customers")[:10]
    ]
    land_tap(settings, "acme", "shopify", "customers", newer)
    run_pipeline(settings, "acme", identity=False, load=False)
    assert delete_files(settings, "customers") > 0
    changed = curated(settings, "customers")
    assert changed.num_rows == first.num_rows

    scheduler = Scheduler(settings, database)
    [outcome] = scheduler.run_once()
    scheduler.shutdown()

    assert isinstance(outcome, list), outcome
    customers = next(m for m in outcome if m.table == "customers")
    assert customers.partitions_compacted > 0
    assert customers.files_after < customers.files_before
    assert delete_files(settings, "customers") == 0
    assert curated(settings, "customers").equals(changed)
    [record] = [r for r in RunLog(database).recent("acme") if r.kind == "maintain"]
    assert (record.source, record.status) == (MAINTENANCE, "succeeded")
    assert {t["table"] for t in record.details["tables"]} >= {"customers", "orders", "events"}
    assert Scheduler(settings, database).run_once() == []  # not due again before 03:00


def curated(settings: Settings, name: str) -> pa.Table:
    with open_catalog(settings) as catalog:
        data = load_table(catalog, "acme", name).scan().to_arrow()
    return data.sort_by([("provider", "ascending"), ("source_id", "ascending")])


def delete_files(settings: Settings, name: str) -> int:
    with open_catalog(settings) as catalog:
        files = load_table(catalog, "acme", name).inspect.files()
    return sum(1 for content in files.column("content").to_pylist() if content == 1)


def test_a_run_that_raises_is_recorded_as_failed(
    data_root: Path, clean_env: None, database: Database
) -> None:
    """Maintenance of a tenant never transformed raises: the run log says so, and why."""
    settings = load_settings(data_root, database={"url": database.conninfo()})
    with pytest.raises(NotFoundError, match="no namespace"):
        maintain_recorded(settings, database, "ghost")
    [record] = RunLog(database).recent("ghost")
    assert (record.kind, record.source, record.status) == ("maintain", MAINTENANCE, "failed")
    assert record.details == {"error": "maintenance raised; see the log"}
    assert record.ended_at is not None
