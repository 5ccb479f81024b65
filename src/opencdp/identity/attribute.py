"""Stamping profile ids on the curated customers, orders and events.

Each row's profile comes from its node: a customer record's own, an order's customer (or,
for a guest order, the profile its email identifies), an event's user (or its device).
Only the partitions where some row's profile changed are rewritten (copy-on-write).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pyiceberg.table import Table as IcebergTable

from opencdp.engine.base import Engine
from opencdp.identity.identifiers import node_sql
from opencdp.identity.model import DEVICE_PREFIX, RECORD_PREFIX
from opencdp.lake.commit import commit, partition_filter
from opencdp.transform import merge
from opencdp.transform.model import Table

# Each row's new profile id, by its position `_row` (only the columns a join needs go
# through the engine; the wide rows stay in Arrow).
_PROFILE_OF = {
    "customers": f"""
        SELECT t._row, m.profile_id
        FROM rows AS t
        LEFT JOIN members AS m ON m.node = {node_sql(RECORD_PREFIX, "t.provider", "t.source_id")}
        ORDER BY t._row
    """,
    "orders": f"""
        SELECT t._row, coalesce(m.profile_id, e.profile_id) AS profile_id
        FROM rows AS t
        LEFT JOIN members AS m
          ON m.node = {node_sql(RECORD_PREFIX, "t.provider", "t.source_customer_id")}
        LEFT JOIN identities AS e ON e.id_type = 'email' AND e.id_value = t.email
        ORDER BY t._row
    """,
    "events": f"""
        SELECT t._row, coalesce(u.profile_id, d.profile_id) AS profile_id
        FROM rows AS t
        LEFT JOIN members AS u ON u.node = {node_sql(RECORD_PREFIX, "t.provider", "t.user_id")}
        LEFT JOIN members AS d
          ON d.node = {node_sql(DEVICE_PREFIX, "t.provider", "t.anonymous_id")}
        ORDER BY t._row
    """,
}
_JOIN_COLUMNS = {
    "customers": ("provider", "source_id"),
    "orders": ("provider", "source_customer_id", "email"),
    "events": ("provider", "user_id", "anonymous_id"),
}


def stamp(engine: Engine, model: Table, rows: pa.Table, members: pa.Table,
          identities: pa.Table) -> pa.Table:  # fmt: skip
    """`rows` with profile_id set, plus `_previous`: the profile id they had."""
    keys = _numbered(rows.select(list(_JOIN_COLUMNS[model.name])))
    found = engine.query(
        _PROFILE_OF[model.name], {"rows": keys, "members": members, "identities": identities}
    )
    column = rows.schema.get_field_index("profile_id")
    profile_ids = found.column("profile_id").cast(rows.schema.field(column).type)
    return rows.set_column(column, "profile_id", profile_ids).append_column(
        "_previous", rows.column(column)
    )


def rewrite(
    engine: Engine, model: Table, lake: IcebergTable, stamped: pa.Table, run_id: str
) -> int:
    """Commit the partitions whose profile ids changed; the number of rows rewritten."""
    (column, _), *more = model.partition
    assert not more, "curated tables are partitioned on one column"
    (part,) = merge.partition_exprs(model, "s.")
    narrow = stamped.select([column, "profile_id", "_previous"])
    parts = engine.query(
        f"SELECT {part} AS part, bool_or(s.profile_id IS DISTINCT FROM s._previous) AS changed "
        f"FROM stamped AS s GROUP BY {part}",
        {"stamped": narrow},
    )
    changed = parts.filter(parts.column("changed"))
    if changed.num_rows == 0:
        return 0
    data = stamped
    if changed.num_rows < parts.num_rows:  # some partitions keep their rows as they are
        rows = engine.query(
            f"SELECT s._row FROM stamped AS s WHERE EXISTS (SELECT 1 FROM changed AS c "
            f"WHERE c.part IS NOT DISTINCT FROM {part}) ORDER BY s._row",
            {"stamped": _numbered(narrow), "changed": changed},
        )
        data = stamped.take(rows.column("_row"))
    partitions = [(value,) for value in changed.column("part").to_pylist()]
    commit(
        lake,
        data.select(model.schema.names),
        run_id=run_id,
        replace=partition_filter(model.partition, partitions),
    )
    return int(data.num_rows)


def _numbered(table: pa.Table) -> pa.Table:
    """`table` with `_row`, each row's position."""
    return table.append_column("_row", pa.array(np.arange(table.num_rows), pa.int64()))
