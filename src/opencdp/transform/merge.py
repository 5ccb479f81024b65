"""The set-based stages as SQL, written once in DuckDB's dialect (engines transpile it).

- `split_quarantine`: rows whose key is incomplete break a hard rule and are set aside;
- `latest_per_key`: one row per key, the latest version (a total order: every engine
  picks the same row);
- `ranked_versions`, `newer_rows`, `lost_rows`: an incremental merge, where a delta's row
  replaces the live row of its key only if it is the later version (merge-on-read: the
  old row is deleted by position, lake/row_delta.py);
- `changed_order_customers`, `refreshed_customers`, `with_order_facts`: customers
  enriched with the facts of their orders, and rewritten when those change.
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
    keys = ", ".join(q(k) for k in model.key)
    return (
        f"SELECT {_columns(model)} FROM ("
        f"SELECT {_columns(model)}, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY "
        f"{_newest_first(model)}) AS _rank FROM ({union}) AS rows"
        f") AS ranked WHERE _rank = 1"
    )


def _newest_first(model: Table) -> str:
    version = ", ".join(q(c) for c in model.version)
    if len(model.version) > 1:
        version = f"COALESCE({version})"
    return (
        f"{version} DESC NULLS LAST, {q('_ingested_at')} DESC NULLS LAST, "
        f"{q('_raw_file')} DESC, {q('_line')} DESC"
    )


def rank_columns(model: Table) -> tuple[str, ...]:
    """The columns that decide which version of a key wins."""
    return tuple(dict.fromkeys([*model.key, *model.version, "_ingested_at", "_raw_file", "_line"]))


def ranked_versions(model: Table, old: str, delta: str) -> str:
    """For each key of `delta` (one row per key), its delta row and its live row in `old`
    (if any; one per key, numbered by `_row`), ranked newest first: (key..., _row, _rank),
    `_row` NULL for the delta's row."""
    columns = ", ".join(q(c) for c in rank_columns(model))
    keys = ", ".join(q(k) for k in model.key)
    same_key = " AND ".join(f"d.{q(k)} = o.{q(k)}" for k in model.key)
    return (
        f"SELECT {keys}, _row, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY "
        f"{_newest_first(model)}) AS _rank FROM ("
        f"SELECT {columns}, _row FROM {old} AS o "
        f"WHERE EXISTS (SELECT 1 FROM {delta} AS d WHERE {same_key}) "
        f"UNION ALL SELECT {columns}, CAST(NULL AS BIGINT) AS _row FROM {delta}"
        f") AS versions"
    )


def newer_rows(model: Table, delta: str, ranked: str) -> str:
    """The rows of `delta` that are their key's newest version (`ranked_versions`)."""
    same_key = " AND ".join(f"r.{q(k)} = d.{q(k)}" for k in model.key)
    return (
        f"SELECT {_columns(model, 'd.')} FROM {delta} AS d WHERE EXISTS (SELECT 1 FROM "
        f"{ranked} AS r WHERE {same_key} AND r._row IS NULL AND r._rank = 1)"
    )


def lost_rows(ranked: str) -> str:
    """The `_row` of each live row a newer delta row replaces (`ranked_versions`)."""
    return f"SELECT _row FROM {ranked} WHERE _row IS NOT NULL AND _rank = 2"


def repeated_keys(model: Table, relation: str) -> str:
    """One row, one boolean column `repeated`: does any (non-null) key occur twice."""
    keys = ", ".join(q(k) for k in model.key)
    return (
        f"SELECT COUNT(*) > 0 AS repeated FROM (SELECT {keys} FROM {relation} "
        f"WHERE {key_present(model)} GROUP BY {keys} HAVING COUNT(*) > 1) AS twice"
    )


def changed_order_customers(newer: str, old: str, lost: str) -> str:
    """(provider, source_customer_id) of the orders a merge appends (`newer`) and of those
    it replaces (the `old` rows whose `_row` is in `lost`): old and new customer alike,
    their order facts change."""
    return (
        f"SELECT provider, source_customer_id FROM {newer} UNION "
        f"SELECT provider, source_customer_id FROM {old} WHERE _row IN (SELECT _row FROM {lost})"
    )


def refreshed_customers(old: str, changed: str, newer: str) -> str:
    """The live customers (`old`) whose orders changed (`changed`, as from
    `changed_order_customers`) and that no newer row of theirs (`newer`) replaces: they are
    rewritten as they are, their order facts recomputed."""
    return (
        f"SELECT o.* FROM {old} AS o "
        f"WHERE EXISTS (SELECT 1 FROM {changed} AS c "
        f"WHERE c.provider = o.provider AND c.source_customer_id = o.source_id) "
        f"AND NOT EXISTS (SELECT 1 FROM {newer} AS n "
        f"WHERE n.provider = o.provider AND n.source_id = o.source_id)"
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


def partition_exprs(model: Table, alias: str = "") -> list[str]:
    return [
        # Through TIMESTAMP: without its ICU extension (a download) DuckDB cuts time-zoned
        # timestamps in UTC only this way, and Spark runs in UTC.
        f"CAST(date_trunc('{transform}', CAST({alias}{q(column)} AS TIMESTAMP)) AS DATE)"
        if transform != "identity"
        else f"{alias}{q(column)}"
        for column, transform in model.partition
    ]
