"""The engine-neutral checks of user SQL: one read-only query, and the tables it reads."""

from __future__ import annotations

import pytest

from opencdp.engine.sql import TableRef, parse_query, plan_query, table_references
from opencdp.errors import QueryError

TENANT_TABLES = ("customers", "orders", "order_items")


def refs(sql: str) -> set[TableRef]:
    return table_references(parse_query(sql))


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM customers", {"customers"}),
        ("FROM customers", {"customers"}),
        (
            "SELECT * FROM customers c JOIN orders o ON o.profile_id = c.profile_id",
            {"customers", "orders"},
        ),
        ("SELECT * FROM customers POSITIONAL JOIN orders", {"customers", "orders"}),
        ("SELECT * FROM (SELECT * FROM orders) AS o", {"orders"}),
        ("SELECT (SELECT max(total) FROM orders) AS m FROM customers", {"customers", "orders"}),
        (
            "SELECT 1 FROM customers c "
            "WHERE EXISTS (SELECT 1 FROM orders o WHERE o.email = c.email)",
            {"customers", "orders"},
        ),
        ("SELECT email FROM customers UNION SELECT email FROM orders", {"customers", "orders"}),
        ("SELECT * FROM Customers", {"customers"}),
        ('SELECT * FROM "ORDERS"', {"orders"}),
        ("SELECT 1", set()),
        ("SELECT * FROM range(10)", set()),
        ("SELECT * FROM read_csv('/etc/passwd')", set()),  # a function: DuckDB refuses it
    ],
)
def test_references_name_the_tables_read(sql: str, expected: set[str]) -> None:
    assert {ref.name for ref in refs(sql)} == expected


def test_cte_names_are_not_tables() -> None:
    sql = """
        WITH big AS (SELECT * FROM orders WHERE total > 100),
             buyers AS (SELECT DISTINCT email FROM big)
        SELECT * FROM buyers JOIN customers USING (email)
    """
    assert refs(sql) == {TableRef("orders"), TableRef("customers")}


def test_a_cte_that_shadows_a_table_reads_the_table_inside_its_body() -> None:
    assert refs("WITH customers AS (SELECT * FROM customers) SELECT * FROM customers") == {
        TableRef("customers")
    }


def test_a_recursive_cte_reads_no_table() -> None:
    sql = """
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3)
        SELECT * FROM n
    """
    assert refs(sql) == set()


def test_a_cte_inside_a_subquery_is_not_a_table() -> None:
    sql = """
        SELECT * FROM customers
        WHERE email IN (WITH q AS (SELECT email FROM orders) SELECT * FROM q)
    """
    assert refs(sql) == {TableRef("customers"), TableRef("orders")}


def test_qualified_names_keep_their_namespace_and_catalog() -> None:
    assert refs("SELECT * FROM acme.customers JOIN lake.acme.orders USING (email)") == {
        TableRef("customers", "acme"),
        TableRef("orders", "acme", "lake"),
    }


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("INSERT INTO customers VALUES (1)", "INSERT"),
        ("UPDATE customers SET email = NULL", "UPDATE"),
        ("DELETE FROM customers", "DELETE"),
        ("MERGE INTO customers USING orders ON true WHEN MATCHED THEN DELETE", "MERGE"),
        ("CREATE TABLE x AS SELECT * FROM customers", "CREATE"),
        ("CREATE VIEW v AS SELECT 1", "CREATE"),
        ("DROP TABLE customers", "DROP"),
        ("ALTER TABLE customers ADD COLUMN x INT", "ALTER"),
        ("COPY customers TO '/tmp/out.csv'", "COPY"),
        ("ATTACH '/tmp/other.db' AS other", "ATTACH"),
        ("INSTALL httpfs", "INSTALL"),
        ("LOAD httpfs", "LOAD"),
        ("SET enable_external_access = true", "SET"),
        ("PRAGMA version", "PRAGMA"),
        ("CALL pragma_version()", "CALL"),
        ("DESCRIBE customers", "DESCRIBE"),
        ("SELECT * INTO copy_of FROM customers", "INTO"),
        ("WITH a AS (SELECT 1) INSERT INTO customers SELECT * FROM a", "INSERT"),
    ],
)
def test_anything_but_a_query_is_refused(sql: str, kind: str) -> None:
    with pytest.raises(
        QueryError, match=rf"only (read-only )?queries are allowed.*\b{kind}\b"
    ) as e:
        parse_query(sql)
    assert e.value.hint is not None
    assert "SELECT" in e.value.hint


@pytest.mark.parametrize(
    "sql", ["SELECT 1; SELECT 2", "SELECT * FROM customers; DROP TABLE customers"]
)
def test_more_than_one_statement_is_refused(sql: str) -> None:
    with pytest.raises(QueryError, match="one statement at a time, got 2"):
        parse_query(sql)


@pytest.mark.parametrize("sql", ["", "  ", ";", " ; ;"])
def test_an_empty_query_is_refused(sql: str) -> None:
    with pytest.raises(QueryError, match="empty"):
        parse_query(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1;",
        "(SELECT 1)",
        "SELECT 1 UNION ALL SELECT 2",
        "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
        "FROM customers SELECT email",
    ],
)
def test_queries_are_accepted(sql: str) -> None:
    parse_query(sql)


def test_unparsable_sql_is_a_query_error() -> None:
    with pytest.raises(QueryError, match="cannot parse"):
        parse_query("SELECT (1")


def test_plan_keeps_the_sql_and_lists_the_tables_once_sorted() -> None:
    sql = (
        "SELECT * FROM orders o JOIN acme.customers c USING (email) JOIN customers d USING (email)"
    )
    plan = plan_query(sql, namespace="acme", available=TENANT_TABLES)
    assert plan.sql == sql
    assert plan.tables == ("customers", "orders")


@pytest.mark.parametrize(
    ("sql", "qualified"),
    [
        ("SELECT * FROM customers", False),
        ("SELECT * FROM customers JOIN acme.orders ON true", True),
    ],
)
def test_plan_says_whether_tables_are_qualified_by_the_tenant(sql: str, qualified: bool) -> None:
    assert plan_query(sql, namespace="acme", available=TENANT_TABLES).qualified is qualified


def test_plan_of_a_query_without_tables_needs_none() -> None:
    assert plan_query("SELECT 42", namespace="acme", available=()).tables == ()


def test_unknown_tables_are_named_with_the_tenants_tables_in_the_hint() -> None:
    with pytest.raises(QueryError, match="unknown tables clients, sales in tenant 'acme'") as e:
        plan_query("SELECT * FROM clients, sales", namespace="acme", available=TENANT_TABLES)
    assert e.value.hint == "tenant 'acme' has: customers, order_items, orders"


def test_a_tenant_without_tables_is_told_to_run_the_transform() -> None:
    with pytest.raises(QueryError, match="unknown table customers") as e:
        plan_query("SELECT * FROM customers", namespace="acme", available=())
    assert e.value.hint is not None
    assert "opencdp transform --tenant acme" in e.value.hint


@pytest.mark.parametrize(
    "table",
    ["globex.customers", "main.customers", "lake.acme.customers", "information_schema.tables"],
)
def test_tables_outside_the_tenant_are_refused(table: str) -> None:
    with pytest.raises(QueryError, match=rf"table {table} is outside tenant 'acme'"):
        plan_query(f"SELECT * FROM {table}", namespace="acme", available=TENANT_TABLES)
