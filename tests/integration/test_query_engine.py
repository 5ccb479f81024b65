"""The DuckDB query engine on its own: Arrow tables in, and nothing else reachable."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from opencdp.engine.duckdb_query import check_statement, execute
from opencdp.errors import QueryError

pytestmark = pytest.mark.integration

TABLES = {
    "customers": pa.table({"profile_id": ["p1", "p2"], "email": ["a@x.com", "b@y.com"]}),
    "orders": pa.table({"profile_id": ["p1", "p1", "p2"], "total": [5, 7, 1]}),
}


def test_arrow_tables_are_queryable_bare_and_qualified_while_locked_down() -> None:
    result = execute(
        """SELECT c.email, sum(o.total) AS spent
           FROM customers c JOIN acme.orders o USING (profile_id)
           GROUP BY c.email ORDER BY spent DESC""",
        TABLES,
        namespace="acme",
    )
    assert result.to_pylist() == [
        {"email": "a@x.com", "spent": 12},
        {"email": "b@y.com", "spent": 1},
    ]


def test_tables_are_qualified_only_when_a_namespace_is_given() -> None:
    result = execute("SELECT count(*) AS n FROM customers", TABLES)
    assert result.to_pylist() == [{"n": 2}]
    result = execute("SELECT count(*) AS n FROM main.customers", TABLES, namespace="main")
    assert result.to_pylist() == [{"n": 2}]


@pytest.mark.parametrize(
    "reader", ["read_csv('{path}')", "read_text('{path}')", "glob('{path}')", "'{path}'"]
)
def test_files_cannot_be_read_even_by_a_select(tmp_path: Path, reader: str) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n", encoding="utf-8")
    with pytest.raises(QueryError) as e:
        execute(f"SELECT * FROM {reader.format(path=secret)}", TABLES)
    assert "hunter2" not in str(e.value)


def test_reading_a_file_names_the_lock_in_the_hint(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="disabled by configuration") as e:
        execute(f"SELECT * FROM read_csv('{tmp_path / 'x.csv'}')", {})
    assert e.value.hint is not None
    assert "off limits" in e.value.hint


def test_python_variables_are_not_tables() -> None:
    # DuckDB would otherwise find Arrow objects among the caller's local variables by name.
    hidden = pa.table({"secret": ["hunter2"]})
    with pytest.raises(QueryError, match="hidden"):
        execute("SELECT * FROM hidden", TABLES)
    assert hidden.num_rows == 1


@pytest.mark.parametrize(
    "sql",
    [
        "COPY customers TO '/tmp/opencdp-copy.csv'",
        "ATTACH '/tmp/opencdp-other.db' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "CREATE TABLE x AS SELECT 1",
        "PRAGMA version",
        "EXPLAIN SELECT 1",
    ],
)
def test_duckdb_refuses_what_it_does_not_parse_as_a_select(sql: str) -> None:
    with pytest.raises(QueryError, match="only queries are allowed"):
        execute(sql, TABLES)


def test_several_statements_are_refused() -> None:
    with pytest.raises(QueryError, match="one statement at a time, got 2"):
        check_statement("SELECT 1; SELECT 2")


def test_a_syntax_error_carries_duckdbs_message() -> None:
    with pytest.raises(QueryError, match='syntax error at or near "SELEC"'):
        check_statement("SELEC 1")


def test_an_execution_error_carries_duckdbs_message() -> None:
    with pytest.raises(QueryError, match="Could not convert string 'x'"):
        execute("SELECT CAST('x' AS INTEGER)", {})
