"""Linking with guardrails: nodes that share an identifier join, strongest rule first.

Resolution runs one round per link rule in priority order. A round looks at every value of
its identifiers that touches two or more groups (the profiles so far) and refuses the
value, reporting why, when joining those groups would
- put more distinct values of a limited identifier type in one profile than its limit (a
  family's shared email touching two people with different phones),
- join more separate people than `max_people` (an office address, a placeholder), or
- join two nodes an unlink rule keeps apart.
The accepted values join groups (connected components). Several values that pass one by one
can still break a limit together: the weakest value in such a group is refused and the
round's components are computed again, until no group breaks a limit.

Probabilistic links go through the same round as the last rule: each link is a "value"
carried by its two records, weighed by its match probability.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa

from opencdp.engine.base import Engine
from opencdp.identity.components import connected_components
from opencdp.identity.identifiers import RULE_OF_TYPE

# Passes of "refuse the weakest value per group that breaks a limit" before a round refuses
# every value it accepted in the groups still breaking one.
_MAX_PASSES = 8

# A round's candidates: (node, id_type, id_value, weight). weight orders values from the
# weakest (refused first): 1.0 for identifiers, the match probability for model links.
CANDIDATE = pa.schema(
    [
        pa.field("node", pa.string()),
        pa.field("id_type", pa.string()),
        pa.field("id_value", pa.string()),
        pa.field("weight", pa.float64()),
    ]
)
BLOCKED = pa.schema(
    [
        pa.field("id_type", pa.string()),
        pa.field("id_value", pa.string()),
        pa.field("rule", pa.string()),
        pa.field("people", pa.int64()),
        pa.field("reason", pa.string()),
    ]
)
LINKS = pa.schema(
    [
        pa.field("left_node", pa.string()),
        pa.field("right_node", pa.string()),
        pa.field("rule", pa.string()),
        pa.field("id_type", pa.string()),
        pa.field("id_value", pa.string()),
    ]
)


@dataclass(frozen=True)
class Guardrails:
    limits: Mapping[str, int]  # identifier type -> most distinct values in a profile
    max_people: int
    blocked_values: pa.Table  # (id_type, id_value) an unlink rule blocks
    apart: pa.Table  # (node_a, node_b) an unlink rule keeps in different profiles


@dataclass
class Linking:
    """The state between rounds: each node's group, the accepted and refused values."""

    groups: pa.Table  # node, grp
    limited: pa.Table  # node, id_type, id_value: the identifiers the limits count
    links: list[pa.Table] = field(default_factory=list)  # LINKS
    blocked: list[pa.Table] = field(default_factory=list)  # BLOCKED

    @classmethod
    def start(
        cls, engine: Engine, nodes: pa.Table, ids: pa.Table, limits: Mapping[str, int]
    ) -> Linking:
        groups = engine.query("SELECT node, node AS grp FROM nodes", {"nodes": nodes})
        types = pa.array(sorted(limits), pa.string())
        limited = engine.query(
            "SELECT DISTINCT node, id_type, id_value FROM ids WHERE id_type IN "
            "(SELECT id_type FROM types)",
            {"ids": ids, "types": pa.table({"id_type": types})},
        )
        return cls(groups=groups, limited=limited)


def run_round(
    engine: Engine, state: Linking, rule: str, candidates: pa.Table, guard: Guardrails
) -> None:
    """Join the groups this rule's accepted values link, updating `state`."""
    rels: dict[str, pa.Table] = {
        "cand": candidates,
        "groups": state.groups,
        "limited": state.limited,
        "limits": _limits_table(guard.limits),
        "manual": guard.blocked_values,
        "apart": guard.apart,
    }
    # Each value and the groups it touches, for the values touching two or more.
    touching = engine.query(_TOUCHING, rels)
    refused = engine.query(_refusals(rule, guard.max_people), {**rels, "touching": touching})
    accepted = engine.query(
        "SELECT t.* FROM touching AS t WHERE NOT EXISTS (SELECT 1 FROM refused AS r "
        "WHERE r.id_type = t.id_type AND r.id_value = t.id_value)",
        {"touching": touching, "refused": refused},
    )
    # Only the groups an accepted value touches can change: the passes work on those
    # alone (a round touches a fraction of the graph, and may take several passes).
    touched = engine.query(_TOUCHED, {"groups": state.groups, "accepted": accepted})
    untouched = engine.query(
        "SELECT g.* FROM groups AS g WHERE NOT EXISTS (SELECT 1 FROM touched AS t "
        "WHERE t.node = g.node)",
        {"groups": state.groups, "touched": touched},
    )
    limited = engine.query(
        "SELECT l.* FROM limited AS l WHERE EXISTS (SELECT 1 FROM touched AS t "
        "WHERE t.node = l.node)",
        {"limited": state.limited, "touched": touched},
    )
    late: list[pa.Table] = []
    attempt = 0
    while True:
        merged = _merge_groups(engine, touched, accepted)
        breaking = engine.query(
            _BREAKING,
            {"merged": merged, "before": touched, "limited": limited, "limits": rels["limits"]},
        )
        if breaking.num_rows == 0:
            break
        # After the passes, every value in a breaking group goes: the groups fall back to
        # the ones this round started from, which kept their limits.
        sql = _WEAKEST if attempt < _MAX_PASSES else _ALL_IN
        out = engine.query(sql, {"accepted": accepted, "merged": merged, "breaking": breaking})
        attempt += 1
        late.append(
            engine.query(
                f"SELECT id_type, id_value, '{rule}' AS rule, CAST(count(*) AS BIGINT) AS people, "
                "'together with other links, more values than a limit allows' AS reason "
                "FROM accepted AS a WHERE EXISTS (SELECT 1 FROM out AS o WHERE "
                "o.id_type = a.id_type AND o.id_value = a.id_value) GROUP BY id_type, id_value",
                {"accepted": accepted, "out": out},
            )
        )
        accepted = engine.query(
            "SELECT a.* FROM accepted AS a WHERE NOT EXISTS (SELECT 1 FROM out AS o "
            "WHERE o.id_type = a.id_type AND o.id_value = a.id_value)",
            {"accepted": accepted, "out": out},
        )
    # One schema whatever the engine says of nullability, so that rounds concatenate.
    state.blocked.extend(t.select(BLOCKED.names).cast(BLOCKED) for t in (refused, *late))
    state.links.append(
        engine.query(
            _node_links(rule), {"cand": candidates, "accepted": accepted, "groups": state.groups}
        )
        .select(LINKS.names)
        .cast(LINKS)
    )
    state.groups = pa.concat_tables([untouched, merged.cast(untouched.schema)])


def _limits_table(limits: Mapping[str, int]) -> pa.Table:
    return pa.table(
        {
            "id_type": pa.array(list(limits), pa.string()),
            "max_values": pa.array(list(limits.values()), pa.int64()),
        }
    )


_TOUCHING = """
SELECT id_type, id_value, grp, weight
FROM (
    SELECT c.id_type, c.id_value, g.grp, max(c.weight) AS weight,
           count(*) OVER (PARTITION BY c.id_type, c.id_value) AS grps
    FROM cand AS c JOIN groups AS g ON g.node = c.node
    WHERE NOT EXISTS (SELECT 1 FROM manual AS m
                      WHERE m.id_type = c.id_type AND m.id_value = c.id_value)
    GROUP BY c.id_type, c.id_value, g.grp
) AS x
WHERE grps > 1
"""


# The nodes of the groups the accepted values touch, with their group.
_TOUCHED = """
SELECT g.node, g.grp FROM groups AS g
WHERE g.grp IN (SELECT DISTINCT grp FROM accepted)
"""


def _refusals(rule: str, max_people: int) -> str:
    """(BLOCKED) the values that would break a guardrail on their own."""
    return f"""
    WITH people AS (
        SELECT id_type, id_value, CAST(count(*) AS BIGINT) AS people
        FROM touching GROUP BY id_type, id_value
    ),
    over_limit AS (
        SELECT t.id_type, t.id_value, l.id_type AS limited_type,
               count(DISTINCT l.id_value) AS n, min(x.max_values) AS max_values
        FROM touching AS t
        JOIN groups AS g ON g.grp = t.grp
        JOIN limited AS l ON l.node = g.node
        JOIN limits AS x ON x.id_type = l.id_type
        GROUP BY t.id_type, t.id_value, l.id_type
        HAVING count(DISTINCT l.id_value) > min(x.max_values)
    ),
    kept_apart AS (
        SELECT DISTINCT ta.id_type, ta.id_value
        FROM touching AS ta
        JOIN groups AS ga ON ga.grp = ta.grp
        JOIN apart AS p ON p.node_a = ga.node
        JOIN groups AS gb ON gb.node = p.node_b
        JOIN touching AS tb ON tb.id_type = ta.id_type AND tb.id_value = ta.id_value
                           AND tb.grp = gb.grp
    ),
    reasons AS (
        SELECT id_type, id_value,
               'shared by ' || CAST(people AS VARCHAR) || ' people (more than '
               || '{max_people}' || ')' AS reason
        FROM people WHERE people > {max_people}
        UNION ALL
        SELECT id_type, id_value,
               'would give one profile ' || CAST(n AS VARCHAR) || ' ' || limited_type
               || ' values (limit ' || CAST(max_values AS VARCHAR) || ')' AS reason
        FROM over_limit
        UNION ALL
        SELECT id_type, id_value, 'an unlink rule keeps these records apart' AS reason
        FROM kept_apart
    )
    SELECT r.id_type, r.id_value, '{rule}' AS rule, p.people, min(r.reason) AS reason
    FROM reasons AS r JOIN people AS p ON p.id_type = r.id_type AND p.id_value = r.id_value
    GROUP BY r.id_type, r.id_value, p.people
    """


def _merge_groups(engine: Engine, groups: pa.Table, accepted: pa.Table) -> pa.Table:
    """(node, grp): the groups after joining those the accepted values touch."""
    grp_nodes = engine.query("SELECT DISTINCT grp AS node FROM groups", {"groups": groups})
    edges = engine.query(
        "SELECT a.grp AS left, b.grp AS right FROM ("
        "  SELECT id_type, id_value, min(grp) AS grp FROM accepted GROUP BY id_type, id_value"
        ") AS a JOIN accepted AS b ON b.id_type = a.id_type AND b.id_value = a.id_value "
        "WHERE b.grp <> a.grp",
        {"accepted": accepted},
    )
    components = connected_components(engine, grp_nodes, edges)
    return engine.query(
        "SELECT g.node, c.component AS grp FROM groups AS g JOIN components AS c ON c.node = g.grp",
        {"groups": groups, "components": components},
    )


# Groups this round made (of two or more groups) that hold more values of a limited type
# than its limit.
_BREAKING = """
WITH joined AS (
    SELECT m.grp FROM merged AS m JOIN before AS b ON b.node = m.node
    GROUP BY m.grp HAVING count(DISTINCT b.grp) > 1
)
SELECT m.grp, l.id_type, count(DISTINCT l.id_value) AS n
FROM merged AS m JOIN limited AS l ON l.node = m.node
JOIN limits AS x ON x.id_type = l.id_type
WHERE m.grp IN (SELECT grp FROM joined)
GROUP BY m.grp, l.id_type
HAVING count(DISTINCT l.id_value) > min(x.max_values)
"""

# The weakest accepted value in each breaking group (then the greatest, to be total).
_WEAKEST = """
SELECT id_type, id_value FROM (
    SELECT a.id_type, a.id_value,
           ROW_NUMBER() OVER (PARTITION BY m.grp ORDER BY a.weight, a.id_type DESC,
                              a.id_value DESC) AS rn
    FROM accepted AS a
    JOIN (SELECT DISTINCT node, grp FROM merged) AS m ON m.node = a.grp
    WHERE m.grp IN (SELECT grp FROM breaking)
) AS x WHERE rn = 1
"""

_ALL_IN = """
SELECT DISTINCT a.id_type, a.id_value
FROM accepted AS a JOIN merged AS m ON m.node = a.grp
WHERE m.grp IN (SELECT grp FROM breaking)
"""


def _node_links(rule: str) -> str:
    """(LINKS) for each accepted value, a link from its smallest node to each other node
    of another group (enough to explain every join)."""
    return f"""
    WITH carriers AS (
        SELECT DISTINCT c.node, c.id_type, c.id_value, g.grp
        FROM cand AS c
        JOIN groups AS g ON g.node = c.node
        JOIN (SELECT DISTINCT id_type, id_value FROM accepted) AS a
          ON a.id_type = c.id_type AND a.id_value = c.id_value
    ),
    firsts AS (
        SELECT id_type, id_value, min(node) AS node FROM carriers GROUP BY id_type, id_value
    )
    SELECT f.node AS left_node, c.node AS right_node, '{rule}' AS rule,
           c.id_type, c.id_value
    FROM firsts AS f
    JOIN carriers AS c ON c.id_type = f.id_type AND c.id_value = f.id_value
    JOIN carriers AS cf ON cf.id_type = f.id_type AND cf.id_value = f.id_value
                       AND cf.node = f.node
    WHERE c.grp <> cf.grp
    """


def identifier_candidates(engine: Engine, ids: pa.Table, rule: str) -> pa.Table:
    """The round's candidates for an identifier rule: every node's values of its types."""
    if rule == "external_id":
        where = "id_type NOT IN (SELECT id_type FROM named)"
    else:
        where = "id_type IN (SELECT id_type FROM named WHERE rule = '" + rule + "')"
    named = pa.table(
        {
            "id_type": pa.array(list(RULE_OF_TYPE), pa.string()),
            "rule": pa.array(list(RULE_OF_TYPE.values()), pa.string()),
        }
    )
    return engine.query(
        f"SELECT node, id_type, id_value, CAST(1.0 AS DOUBLE) AS weight FROM ids WHERE {where}",
        {"ids": ids, "named": named},
    )
