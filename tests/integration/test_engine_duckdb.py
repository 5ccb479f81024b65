"""The DuckDB engine's own settings: how many threads its queries use, and its workers,
which outlive it for the process's next engine."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

from opencdp.engine.duckdb_engine import DuckDBEngine

pytestmark = pytest.mark.integration


def threads(engine: DuckDBEngine) -> int:
    found = engine.query("SELECT current_setting('threads') AS threads", {})
    return int(found.column("threads")[0].as_py())


def test_it_leaves_the_cores_to_a_linkage_beside_it_and_takes_them_back() -> None:
    with DuckDBEngine(workers=2) as engine:
        assert threads(engine) == 2
        with engine.leave_cores_to_linkage():
            assert threads(engine) == 1
        assert threads(engine) == 2
        with pytest.raises(RuntimeError, match="the model failed"), engine.leave_cores_to_linkage():
            raise RuntimeError("the model failed")
        assert threads(engine) == 2, "an error inside gives the cores back too"


def worker_pids() -> set[int | None]:
    return {p.pid for p in multiprocessing.active_children()}


def test_its_workers_outlive_it_for_the_next_engine() -> None:
    with DuckDBEngine(workers=2) as first:
        assert first.map(abs, [-1, -2, -3]) == [1, 2, 3]
    workers = worker_pids()
    assert workers, "the workers are kept after the engine closed"
    with DuckDBEngine(workers=2) as second:
        assert not second.starts_workers, "a small delta may be staged on them"
        assert second.map(abs, [-4, -5, -6]) == [4, 5, 6]
    assert worker_pids() == workers, "the same processes did the work"


def test_workers_killed_between_runs_are_replaced() -> None:
    with DuckDBEngine(workers=2) as first:
        first.map(abs, [-1, -2, -3])
    killed = worker_pids()
    for pid in killed:
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while worker_pids() & killed and time.monotonic() < deadline:
        time.sleep(0.05)
    with DuckDBEngine(workers=2) as second:
        assert second.map(abs, [-4, -5, -6]) == [4, 5, 6]
    assert worker_pids().isdisjoint(killed)


def test_stopping_workers_no_run_started_leaves_duckdb_unimported() -> None:
    """A scheduler that only extracts stops "its workers" at shutdown: no DuckDB for that."""
    check = (
        "import sys; from opencdp.engine import stop_workers; stop_workers(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('duckdb', '_duckdb')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
