"""Stable profile ids: each group of linked nodes keeps the id its nodes had before.

Every previous profile has a home: the group that holds most of its nodes (ties: the
smallest group name). A group keeps, of the profiles at home in it, the one with most of
its nodes (ties: the smallest id); the others at home there were merged into it. A profile
whose nodes went to several groups was split: it lives on in its home group. A group with
no profile at home gets a new id made from its smallest node's name, so that a run from
scratch gives the same ids every time. Every merge and split is reported with its reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from opencdp.engine.base import Engine

ID_PREFIX = "p_"
_ID_HEX = 24

ASSIGNMENT = pa.schema([pa.field("grp", pa.string()), pa.field("profile_id", pa.string())])
CHANGES = pa.schema(
    [
        pa.field("kind", pa.string()),
        pa.field("profile_id", pa.string()),
        pa.field("other_profile_id", pa.string()),
        pa.field("nodes", pa.int64()),
        pa.field("reason", pa.string()),
    ]
)


@dataclass(frozen=True)
class Assignment:
    members: pa.Table  # node, profile_id
    changes: pa.Table  # CHANGES


def new_profile_id(first_node: str, attempt: int = 0) -> str:
    seed = first_node if attempt == 0 else f"{first_node}#{attempt}"
    return ID_PREFIX + hashlib.sha256(seed.encode()).hexdigest()[:_ID_HEX]


# How many nodes of each previous profile each group holds, and each profile's home.
_HOMES = """
WITH overlap AS (
    SELECT g.grp, p.profile_id, count(*) AS n
    FROM groups AS g JOIN previous AS p ON p.node = g.node
    GROUP BY g.grp, p.profile_id
),
home AS (
    SELECT profile_id, grp, n FROM (
        SELECT profile_id, grp, n,
               ROW_NUMBER() OVER (PARTITION BY profile_id ORDER BY n DESC, grp) AS rn
        FROM overlap
    ) AS x WHERE rn = 1
)"""

_KEPT = f"""{_HOMES},
kept AS (
    SELECT grp, profile_id FROM (
        SELECT grp, profile_id,
               ROW_NUMBER() OVER (PARTITION BY grp ORDER BY n DESC, profile_id) AS rn
        FROM home
    ) AS x WHERE rn = 1
)
SELECT grp, kept_id, first_node, '{ID_PREFIX}' || left(sha256(first_node), {_ID_HEX}) AS fresh_id
FROM (
    SELECT g.grp, min(k.profile_id) AS kept_id, min(g.node) AS first_node
    FROM groups AS g LEFT JOIN kept AS k ON k.grp = g.grp
    GROUP BY g.grp
) AS x
"""

# Previous profiles that lost nodes to a group other than their home: merged into it when
# it is their home too (and another id was kept), split off otherwise.
_CHANGES = f"""{_HOMES}
SELECT CASE WHEN h.grp = o.grp THEN 'merge' ELSE 'split' END AS kind,
       CASE WHEN h.grp = o.grp THEN a.profile_id ELSE o.profile_id END AS profile_id,
       CASE WHEN h.grp = o.grp THEN o.profile_id ELSE a.profile_id END AS other_profile_id,
       o.n AS nodes, o.grp
FROM overlap AS o
JOIN home AS h ON h.profile_id = o.profile_id
JOIN assigned AS a ON a.grp = o.grp
WHERE a.profile_id <> o.profile_id
"""


def assign_ids(
    engine: Engine,
    groups: pa.Table,
    previous: pa.Table,
    retired: pa.Array,
    links: pa.Table,
    apart: pa.Table,
) -> Assignment:
    """groups: (node, grp); previous: (node, profile_id) of the last run; retired: ids of
    profiles merged away (never given out again); links: the accepted links (left_node,
    right_node, rule, id_type, id_value, probability) for the reasons; apart: (node_a,
    node_b) of the unlink rules."""
    kept = engine.query(_KEPT, {"groups": groups, "previous": previous})
    assigned = _with_new_ids(kept, pa.concat_arrays([
        previous.column("profile_id").combine_chunks().cast(pa.string()),
        retired.cast(pa.string()),
    ]))  # fmt: skip
    members = engine.query(
        "SELECT g.node, a.profile_id FROM groups AS g JOIN assigned AS a ON a.grp = g.grp",
        {"groups": groups, "assigned": assigned},
    )
    raw = engine.query(_CHANGES, {"groups": groups, "previous": previous, "assigned": assigned})
    changes = engine.query(
        _REASONS,
        {"raw": raw, "groups": groups, "previous": previous, "links": links, "apart": apart},
    ).cast(CHANGES)
    return Assignment(members=members, changes=changes)


def _with_new_ids(kept: pa.Table, used: pa.Array) -> pa.Table:
    """(grp, profile_id): the kept id, or a new one that no profile has or had."""
    kept_ids = kept.column("kept_id")
    taken = pa.concat_arrays([used, kept_ids.drop_null().combine_chunks().cast(pa.string())])
    fresh = kept.column("fresh_id")
    ids = pc.coalesce(kept_ids, fresh).to_pylist()
    # A new id some profile has or had: rare (a split brings a node back), so redone in turn.
    clash = pc.and_(pc.is_null(kept_ids), pc.is_in(fresh, value_set=taken))
    if pc.any(clash).as_py():
        used = set(taken.to_pylist()) | set(ids)
        firsts = kept.column("first_node").to_pylist()
        for i in pc.indices_nonzero(clash).to_pylist():
            attempt, candidate = 1, new_profile_id(firsts[i], 1)
            while candidate in used:
                attempt += 1
                candidate = new_profile_id(firsts[i], attempt)
            used.add(candidate)
            ids[i] = candidate
    return pa.table({"grp": kept.column("grp"), "profile_id": pa.array(ids, pa.string())})


# Why: for a merge, a link of the run from a node the absorbed profile had into the group;
# for a split, an unlink rule between the two sides, else no link joins them any more.
_REASONS = """
WITH moved AS (
    SELECT r.kind, r.profile_id, r.other_profile_id, r.nodes, r.grp, p.node
    FROM raw AS r
    JOIN previous AS p ON p.profile_id = CASE WHEN r.kind = 'merge'
                                              THEN r.other_profile_id ELSE r.profile_id END
    JOIN groups AS g ON g.node = p.node AND g.grp = r.grp
),
via_link AS (
    SELECT m.kind, m.profile_id, m.other_profile_id,
           min(l.rule || ': ' || CASE WHEN l.id_type IS NULL
               THEN 'match probability ' || CAST(round(l.probability, 4) AS VARCHAR)
               ELSE l.id_type || ' ' || l.id_value END
               || ' links ' || l.left_node || ' and ' || l.right_node) AS reason
    FROM moved AS m
    JOIN links AS l ON l.left_node = m.node OR l.right_node = m.node
    JOIN groups AS gl ON gl.node = l.left_node AND gl.grp = m.grp
    JOIN groups AS gr ON gr.node = l.right_node AND gr.grp = m.grp
    GROUP BY m.kind, m.profile_id, m.other_profile_id
),
via_rule AS (
    SELECT m.kind, m.profile_id, m.other_profile_id,
           min('unlink rule: ' || u.node_a || ' apart from ' || u.node_b) AS reason
    FROM moved AS m
    JOIN apart AS u ON u.node_a = m.node OR u.node_b = m.node
    GROUP BY m.kind, m.profile_id, m.other_profile_id
)
SELECT r.kind, r.profile_id, r.other_profile_id, CAST(r.nodes AS BIGINT) AS nodes,
       CASE WHEN r.kind = 'split'
            THEN coalesce(u.reason, 'no link joins these records any more')
            ELSE coalesce(v.reason, 'linked') END AS reason
FROM raw AS r
LEFT JOIN via_link AS v ON v.kind = r.kind AND v.profile_id = r.profile_id
                       AND v.other_profile_id = r.other_profile_id
LEFT JOIN via_rule AS u ON u.kind = r.kind AND u.profile_id = r.profile_id
                       AND u.other_profile_id = r.other_profile_id
"""
