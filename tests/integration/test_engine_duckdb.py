"""The DuckDB engine's own settings: how many threads its queries use."""

from __future__ import annotations

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
