"""Read-only SQL on DuckDB, in process, over Arrow tables.

Every connection is locked down: no file, network or extension access (so read_csv, COPY,
ATTACH, INSTALL and LOAD fail), no scans of Python variables by name, and the settings are
locked so the query cannot turn any of that back on. Data comes in only as Arrow tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import duckdb
import pyarrow as pa

from opencdp.engine.sql import READ_ONLY_HINT
from opencdp.errors import QueryError

_NO_ACCESS_HINT = (
    "a query reads only the tenant's curated tables: files, URLs, other databases and "
    "extensions are off limits"
)


def check_statement(sql: str) -> None:
    """Refuse what DuckDB's own parser rejects or does not classify as one SELECT."""
    with _connect() as con:
        _check(con, sql)


def execute(
    sql: str,
    tables: Mapping[str, pa.Table],
    *,
    namespace: str | None = None,
    parameters: Mapping[str, object] | None = None,
) -> pa.Table:
    """Run `sql` over `tables`, each reachable by name and, given a namespace, as
    `namespace.name` too; `parameters` fill its `$name` placeholders."""
    with _connect() as con:
        _check(con, sql)
        try:
            for name, data in tables.items():
                con.register(name, data)  # a temporary view over the Arrow table, no copy
            if namespace:
                _add_schema(con, namespace, tables)
            return con.sql(sql, params=dict(parameters) if parameters else None).to_arrow_table()
        except duckdb.PermissionException as e:
            raise QueryError(f"query refused: {e}", hint=_NO_ACCESS_HINT) from e
        except duckdb.Error as e:
            raise QueryError(f"query failed: {e}") from e


def _connect() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(
        ":memory:",
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "python_enable_replacements": False,
            "lock_configuration": True,
        },
    )


def _check(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise QueryError(f"invalid SQL: {e}") from e
    if not statements:
        raise QueryError("the query is empty", hint=READ_ONLY_HINT)
    if len(statements) > 1:
        raise QueryError(f"one statement at a time, got {len(statements)}", hint=READ_ONLY_HINT)
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryError(f"only queries are allowed, not {kind.name}", hint=READ_ONLY_HINT)


def _add_schema(con: duckdb.DuckDBPyConnection, namespace: str, names: Iterable[str]) -> None:
    # Asked for only when the query qualifies names: a schema named like a DuckDB catalog
    # (temp, system) would make every bare table name ambiguous.
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(namespace)}")
    for name in names:
        con.execute(
            f"CREATE VIEW {_quote(namespace)}.{_quote(name)} "
            f"AS SELECT * FROM temp.main.{_quote(name)}"
        )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
