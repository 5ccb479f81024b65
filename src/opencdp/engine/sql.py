"""Engine-neutral analysis of user SQL: is it one read-only query, and which tables does it
read. Pure functions over sqlglot trees; no engine and no catalog is touched here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import traverse_scope

from opencdp.errors import QueryError

READ_ONLY_HINT = "write one read-only query: SELECT ..., WITH ... SELECT ..., or FROM ..."


@dataclass(frozen=True)
class TableRef:
    """A table named in a query; `namespace` and `catalog` are "" when not written."""

    name: str
    namespace: str = ""
    catalog: str = ""

    def __str__(self) -> str:
        return ".".join(part for part in (self.catalog, self.namespace, self.name) if part)


@dataclass(frozen=True)
class QueryPlan:
    """What running a query needs: the SQL, unchanged, and the curated tables it reads."""

    sql: str
    tables: tuple[str, ...]
    # True when some table is written `namespace.table`, so the engine must expose that too.
    qualified: bool = False


def parse_query(sql: str, dialect: str = "duckdb") -> exp.Query:
    """The one read-only query in `sql`; QueryError for anything else."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except SqlglotError as e:
        raise QueryError(f"cannot parse the query: {e}", hint=READ_ONLY_HINT) from e
    if not statements:
        raise QueryError("the query is empty", hint=READ_ONLY_HINT)
    if len(statements) > 1:
        raise QueryError(f"one statement at a time, got {len(statements)}", hint=READ_ONLY_HINT)
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        raise QueryError(f"only queries are allowed, not {_kind(statement)}", hint=READ_ONLY_HINT)
    # A query can still hide a write: SELECT ... INTO, or a data-modifying CTE.
    if writer := statement.find(exp.Into, exp.DML, exp.DDL, exp.Command):
        raise QueryError(
            f"only read-only queries are allowed, this one contains {_kind(writer)}",
            hint=READ_ONLY_HINT,
        )
    return statement


def table_references(query: exp.Query) -> set[TableRef]:
    """The tables `query` reads, lower-cased; CTE names and table functions are left out."""
    try:
        scopes = traverse_scope(query)
    except SqlglotError as e:
        raise QueryError(f"cannot analyse the query: {e}", hint=READ_ONLY_HINT) from e
    # A scope's sources map each name to a Table, or to the Scope of a CTE or subquery.
    return {
        TableRef(source.name.lower(), source.db.lower(), source.catalog.lower())
        for scope in scopes
        for source in scope.sources.values()
        if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier)
    }


def plan_query(
    sql: str, *, namespace: str, available: Collection[str], dialect: str = "duckdb"
) -> QueryPlan:
    """Check `sql` and resolve its tables against the tenant's `available` tables.

    A table is written bare (`customers`) or qualified by the tenant (`acme.customers`).
    """
    refs = table_references(parse_query(sql, dialect))
    for ref in refs:
        if ref.catalog or ref.namespace not in ("", namespace):
            raise QueryError(
                f"table {ref} is outside tenant {namespace!r}",
                hint=f"name tables as `table` or `{namespace}.table`",
            )
    names = {ref.name for ref in refs}
    if unknown := sorted(names - set(available)):
        raise QueryError(
            f"unknown table{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"in tenant {namespace!r}",
            hint=_tables_hint(namespace, available),
        )
    return QueryPlan(
        sql=sql,
        tables=tuple(sorted(names)),
        qualified=any(ref.namespace for ref in refs),
    )


def _tables_hint(namespace: str, available: Collection[str]) -> str:
    if not available:
        return (
            f"tenant {namespace!r} has no curated tables yet: "
            f"run `opencdp transform --tenant {namespace}` first"
        )
    return f"tenant {namespace!r} has: {', '.join(sorted(available))}"


def _kind(node: exp.Expr) -> str:
    # Statements sqlglot cannot parse become a Command that keeps the first keyword.
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()
