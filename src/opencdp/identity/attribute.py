"""Stamping profile ids on the curated customers, orders and events.

Each row's profile comes from its node: a customer record's own, an order's customer (or,
for a guest order, the profile its email identifies), an event's user (or its device).
Only the partitions where some row's profile changed are rewritten (copy-on-write).
"""

from __future__ import annotations

import pyarrow as pa
from pyiceberg.table import Table as IcebergTable

from opencdp.engine.base import Engine
from opencdp.identity.identifiers import node_sql
from opencdp.identity.model import DEVICE_PREFIX, RECORD_PREFIX
from opencdp.lake.commit import commit, partition_filter
from opencdp.transform import merge
from opencdp.transform.model import Table

_PROFILE_OF = {
    "customers": f"""
        SELECT t.* EXCLUDE (profile_id), m.profile_id, t.profile_id AS _previous
        FROM rows AS t
        LEFT JOIN members AS m ON m.node = {node_sql(RECORD_PREFIX, "t.provider", "t.source_id")}
    """,
    "orders": f"""
        SELECT t.* EXCLUDE (profile_id), coalesce(m.profile_id, e.profile_id) AS profile_id,
               t.profile_id AS _previous
        FROM rows AS t
        LEFT JOIN members AS m
          ON m.node = {node_sql(RECORD_PREFIX, "t.provider", "t.source_customer_id")}
        LEFT JOIN identities AS e ON e.id_type = 'email' AND e.id_value = t.email
    """,
    "events": f"""
        SELECT t.* EXCLUDE (profile_id), coalesce(u.profile_id, d.profile_id) AS profile_id,
               t.profile_id AS _previous
        FROM rows AS t
        LEFT JOIN members AS u ON u.node = {node_sql(RECORD_PREFIX, "t.provider", "t.user_id")}
        LEFT JOIN members AS d
          ON d.node = {node_sql(DEVICE_PREFIX, "t.provider", "t.anonymous_id")}
    """,
}


def stamp(engine: Engine, model: Table, rows: pa.Table, members: pa.Table,
          identities: pa.Table) -> pa.Table:  # fmt: skip
    """`rows` with profile_id set, plus `_previous`: the profile id they had."""
    return engine.query(
        _PROFILE_OF[model.name],
        {"rows": rows, "members": members, "identities": identities},
    )


def rewrite(
    engine: Engine, model: Table, lake: IcebergTable, stamped: pa.Table, run_id: str
) -> int:
    """Commit the partitions whose profile ids changed; the number of rows rewritten."""
    (_column, _), *more = model.partition
    assert not more, "curated tables are partitioned on one column"
    (part,) = merge.partition_exprs(model, "s.")
    changed = engine.query(
        f"SELECT DISTINCT {part} AS part FROM stamped AS s "
        "WHERE s.profile_id IS DISTINCT FROM s._previous",
        {"stamped": stamped},
    )
    if changed.num_rows == 0:
        return 0
    data = engine.query(
        f"SELECT s.* EXCLUDE (_previous) FROM stamped AS s WHERE EXISTS "
        f"(SELECT 1 FROM changed AS c WHERE c.part IS NOT DISTINCT FROM {part})",
        {"stamped": stamped, "changed": changed},
    ).select(model.schema.names)
    partitions = [(value,) for value in changed.column("part").to_pylist()]
    commit(lake, data, run_id=run_id, replace=partition_filter(model.partition, partitions))
    return int(data.num_rows)
