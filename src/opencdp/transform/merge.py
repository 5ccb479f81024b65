"""The set-based stages as SQL, written once in DuckDB's dialect (engines transpile it).

- `split_quarantine`: rows whose key is incomplete break a hard rule and are set aside;
- `latest_per_key`: one row per key, the latest version (a total order: every engine
  picks the same row);
- `touched_partitions`: the partitions a delta rewrites, old versions' partitions included;
- `with_order_facts`: customers enriched with the facts of their orders.
"""

from __future__ import annotations

from opencdp.transform.model import Table


def q(name: str) -> str:
    return '"' + name + '"'


def _columns(model: Table, prefix: str = "") -> str:
    return ", ".join(prefix + q(c) for c in model.schema.names)


def key_present(model: Table) -> str:
    return " AND ".join(f"{q(k)} IS NOT NULL" for k in model.key)


def select_rows(model: Table, relation: str, condition: str) -> str:
    return f"SELECT {_columns(model)} FROM {relation} WHERE {condition}"


def latest_per_key(model: Table, *relations: str) -> str:
    """One row per key from the union of `relations` (all of the table's schema)."""
    union = " UNION ALL ".join(f"SELECT {_columns(model)} FROM {r}" for r in relations)
    version = ", ".join(q(c) for c in model.version)
    if len(model.version) > 1:
        version = f"COALESCE({version})"
    keys = ", ".join(q(k) for k in model.key)
    return (
        f"SELECT {_columns(model)} FROM ("
        f"SELECT {_columns(model)}, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY "
        f"{version} DESC NULLS LAST, {q('_ingested_at')} DESC NULLS LAST, "
        f"{q('_raw_file')} DESC, {q('_line')} DESC) AS _rank FROM ({union}) AS rows"
        f") AS ranked WHERE _rank = 1"
    )


def repeated_keys(model: Table, relation: str) -> str:
    """One row, one boolean column `repeated`: does any (non-null) key occur twice."""
    keys = ", ".join(q(k) for k in model.key)
    return (
        f"SELECT COUNT(*) > 0 AS repeated FROM (SELECT {keys} FROM {relation} "
        f"WHERE {key_present(model)} GROUP BY {keys} HAVING COUNT(*) > 1) AS twice"
    )


def partition_values(model: Table, alias: str = "") -> str:
    """The partition of a row as SQL expressions: identity values and months."""
    return ", ".join(
        f"{expression} AS {q(column)}"
        for (column, _), expression in zip(
            model.partition, partition_exprs(model, alias), strict=True
        )
    )


def touched_partitions(model: Table, delta: str, existing_keys: str) -> str:
    """The partitions an update rewrites: for every delta key that exists already, the
    partition of its old row and of its new one (an update may move a row). Delta rows
    with new keys touch nothing: they are appended."""
    join = " AND ".join(f"e.{q(k)} = d.{q(k)}" for k in model.key)
    return (
        f"SELECT DISTINCT {partition_values(model, 'd.')} "
        f"FROM {delta} AS d JOIN {existing_keys} AS e ON {join} "
        f"UNION SELECT DISTINCT {partition_values(model, 'e.')} "
        f"FROM {existing_keys} AS e JOIN {delta} AS d ON {join}"
    )


def with_order_facts(customers: Table, rows: str, orders: str) -> str:
    """`rows` of customers with order_count, total_revenue, first_order_at and
    last_order_at recomputed from every order of the same provider and customer."""
    facts = ("order_count", "total_revenue", "first_order_at", "last_order_at")
    kept = ", ".join(f"c.{q(n)}" for n in customers.schema.names if n not in facts)
    return (
        f"SELECT {kept}, f.order_count, f.total_revenue, f.first_order_at, f.last_order_at "
        f"FROM {rows} AS c LEFT JOIN ("
        f"SELECT provider, source_customer_id, COUNT(*) AS order_count, "
        f"SUM(total_amount) AS total_revenue, MIN(created_at) AS first_order_at, "
        f"MAX(created_at) AS last_order_at FROM {orders} "
        f"WHERE source_customer_id IS NOT NULL GROUP BY provider, source_customer_id"
        f") AS f ON c.provider = f.provider AND c.source_id = f.source_customer_id"
    )


def merge_touched(model: Table, old: str, delta: str, touched: str) -> str:
    """The rows to commit for an incremental change: the touched partitions rebuilt (their
    old rows and the delta's rows that fall in them, latest per key), plus the delta's rows
    that fall elsewhere (new keys: appended as they are).

    `old` holds one row per key (every commit writes the latest per key), so only the keys
    the delta brings are ranked; the other old rows are kept as they are (ranking whole
    partitions cost most of an incremental run)."""
    inside = " AND ".join(
        f"t.{q(column)} IS NOT DISTINCT FROM {expression}"
        for (column, _), expression in zip(
            model.partition, partition_exprs(model, "d."), strict=True
        )
    )
    in_touched = f"EXISTS (SELECT 1 FROM {touched} AS t WHERE {inside})"
    same_key = " AND ".join(f"k.{q(k)} = o.{q(k)}" for k in model.key)
    in_delta = f"EXISTS (SELECT 1 FROM {delta} AS k WHERE {same_key})"
    old_rows = f"SELECT {_columns(model, 'o.')} FROM {old} AS o"
    delta_rows = f"SELECT {_columns(model, 'd.')} FROM {delta} AS d"
    ranked = latest_per_key(
        model, f"({old_rows} WHERE {in_delta}) AS ok", f"({delta_rows} WHERE {in_touched}) AS dt"
    )
    return (
        f"{old_rows} WHERE NOT {in_delta} UNION ALL {ranked} "
        f"UNION ALL {delta_rows} WHERE NOT {in_touched}"
    )


def partition_exprs(model: Table, alias: str = "") -> list[str]:
    return [
        # Through TIMESTAMP: without its ICU extension (a download) DuckDB cuts time-zoned
        # timestamps in UTC only this way, and Spark runs in UTC.
        f"CAST(date_trunc('month', CAST({alias}{q(column)} AS TIMESTAMP)) AS DATE)"
        if transform == "month"
        else f"{alias}{q(column)}"
        for column, transform in model.partition
    ]
