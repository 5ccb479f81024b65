"""Connected components in the engine's SQL: the clustering step of identity resolution.

The algorithm is randomised contraction (Bögeholz, Brand and Todor, "In-database connected
component analysis", ICDE 2020). Each round every node picks the node of lowest priority
among itself and its neighbours, then follows that node's own pick (one pointer jump);
edges are rewritten onto the picks, dropping loops and duplicates, and the next round runs on
that smaller graph. The priority is a hash of the node and the round, fresh each round:
with a fixed order (smallest id first) a chain numbered in order loses a node or two a round,
with a random one every round shrinks the graph by a constant factor (to about 0.4 on a
chain), so a chain of n nodes takes O(log n) rounds and all rounds together cost little more
than the first. Plain label propagation would take as many rounds as the longest shortest
path. It stops when no edge is left; the picks of all rounds, composed from the last back,
give each node a representative, and a component is named after its smallest node name.

The contraction works on nodes numbered 0..n-1 (`label_components`, SciPy's
`connected_components` input: a node count and integer edges). `connected_components` maps
names to those numbers first, their row numbers in `nodes` (joins and grouping on integers
are much cheaper than on strings), and back at the end. Every step is one SELECT in the SQL
subset both engines run alike (tests/integration/test_engine_parity.py); intermediate results
are Arrow tables passed back in as relations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from opencdp.engine.base import Engine
from opencdp.logs import get_logger

log = get_logger(__name__)

COMPONENTS = pa.schema(
    [pa.field("node", pa.string(), nullable=False), pa.field("component", pa.string())]
)
LABELS = pa.schema([pa.field("node", pa.int64()), pa.field("label", pa.int64())])
# A priority packs (hash, id) in one BIGINT: hash * 2^31 + id, so that MIN picks the lowest
# hash, ties go to the smaller id, and `% 2^31` gives the id back. Ids and hashes stay below
# 2^31 and no intermediate product reaches 2^63 (both engines raise on overflow).
_ID_LIMIT = 2**31
# The hash: multiply-mod, square-mod, multiply-mod under two primes below 2^31. Linear steps
# alone keep some of a chain's order when it is numbered along the chain (its rounds then
# shrink it less); the square breaks that.
_P1 = 2_147_483_629
_P2 = 2_147_483_647
_M1 = 1_327_217_885  # about 2^31 / golden ratio
_M2 = 1_201_633_337

# Edges as id pairs: an edge whose name is not a node drops out (cheaper than a LEFT JOIN;
# the row count tells). Loops and duplicates stay: they change no pick, and the first
# contraction drops them.
_EDGE_IDS = """
SELECT x.id AS a, y.id AS b
FROM edges AS e
JOIN ids AS x ON x.node = e."left"
JOIN ids AS y ON y.node = e."right"
"""

_UNKNOWN = """
SELECT DISTINCT e.name
FROM (SELECT "left" AS name FROM edges UNION ALL SELECT "right" AS name FROM edges) AS e
WHERE NOT EXISTS (SELECT 1 FROM nodes AS n WHERE n.node = e.name)
ORDER BY e.name
LIMIT 5
"""

# Each node's pick (the lowest priority among itself and its neighbours), then the pick's
# own pick: the jump merges more per round (3 rounds instead of 4 on the benchmark's graph,
# 12 instead of 16 on a chain of 100,000) for one join on the nodes.
_PICK = """
WITH picked AS (
    SELECT v, least(MIN(k), {key_v}) % {id_limit} AS rep
    FROM (
        SELECT a AS v, {key_b} AS k FROM edges
        UNION ALL
        SELECT b AS v, {key_a} AS k FROM edges
    ) AS ends
    GROUP BY v
)
SELECT p.v, j.rep FROM picked AS p JOIN picked AS j ON j.v = p.rep
"""

# The graph on the picks: a group of nodes with the same pick is one node now.
_CONTRACT = """
SELECT DISTINCT least(x.rep, y.rep) AS a, greatest(x.rep, y.rep) AS b
FROM edges AS e
JOIN reps AS x ON x.v = e.a
JOIN reps AS y ON y.v = e.b
WHERE x.rep <> y.rep
"""

# A round's picks followed by the later rounds' (composed already): a pick that took part
# in no later round is final.
_COMPOSE = """
SELECT r.v, coalesce(l.rep, r.rep) AS rep
FROM reps AS r LEFT JOIN later AS l ON l.v = r.rep
"""

# Every node's label: the first round's picks (the largest) composed with the later rounds'
# on the way; a node on no edge is a component of its own.
_LABELS = """
SELECT n.node, coalesce(l.rep, r.rep, n.node) AS label
FROM ids AS n
LEFT JOIN reps AS r ON r.v = n.node
LEFT JOIN later AS l ON l.v = r.rep
"""

# Back to names, composing the picks the same way: a component is named after its smallest
# name; a node on no edge skips the grouping and the join back.
_NAMES = """
WITH labelled AS (
    SELECT n.node, coalesce(l.rep, r.rep) AS rep
    FROM ids AS n
    LEFT JOIN reps AS r ON r.v = n.id
    LEFT JOIN later AS l ON l.v = r.rep
),
named AS (
    SELECT rep, MIN(node) AS component FROM labelled WHERE rep IS NOT NULL GROUP BY rep
)
SELECT l.node, c.component FROM labelled AS l JOIN named AS c ON c.rep = l.rep
UNION ALL
SELECT node, node AS component FROM labelled WHERE rep IS NULL
"""

_NO_REPS = pa.table({"v": pa.array([], pa.int64()), "rep": pa.array([], pa.int64())})


@dataclass(frozen=True)
class Components:
    """The components (COMPONENTS, or LABELS from `label_components`) and how the
    contraction went."""

    table: pa.Table
    rounds: int
    edges_per_round: tuple[int, ...]  # distinct edges each round started with (first: as given)


def connected_components(engine: Engine, nodes: pa.Table, edges: pa.Table) -> pa.Table:
    """nodes: one column `node` (string, unique, no nulls); edges: columns `left` and `right`
    (string node names, each present in nodes; duplicates and self-loops allowed).
    Returns (node: string, component: string) with one row per node, where `component` is
    the smallest node name (string order) in its connected component.

    Raises ValueError when the input breaks this contract (a missing column, a null name, an
    edge naming a node that is not in `nodes`, naming the first five such names, or a name
    twice in `nodes` that an edge names): that is a bug of the caller, not bad data."""
    return find_components(engine, nodes, edges).table


def find_components(engine: Engine, nodes: pa.Table, edges: pa.Table) -> Components:
    """`connected_components`, with the number of contraction rounds it took."""
    for table, what, columns in ((nodes, "nodes", ("node",)), (edges, "edges", ("left", "right"))):
        _check_columns(table, what, columns)
    # Numbers in any order: a component is named by its smallest *name* at the end, so the
    # names need no sort (on a million nodes, a fifth of the whole run).
    ids = pa.table({"node": nodes.column("node"), "id": np.arange(nodes.num_rows)})
    pairs = engine.query(_EDGE_IDS, {"edges": edges, "ids": ids})
    # Each end of an edge matches one id: fewer rows mean an unknown name, more a name that
    # is twice in nodes (both at once could cancel out; uniqueness is the caller's to keep).
    if pairs.num_rows != edges.num_rows:
        unknown = engine.query(_UNKNOWN, {"nodes": nodes, "edges": edges})
        if unknown.num_rows:
            names = unknown.column("name").to_pylist()
            raise ValueError(f"edges name nodes that are not in nodes: {names}")
        raise ValueError("nodes holds a name twice: node names must be unique")
    picks = _contract(engine, pairs)
    table = engine.query(_NAMES, {"ids": ids, **picks.relations}).cast(COMPONENTS)
    return Components(table, picks.rounds, picks.edges_per_round)


def label_components(engine: Engine, count: int, edges: pa.Table) -> Components:
    """Components of the nodes numbered 0..count-1 (SciPy's input): edges has integer
    columns `a` and `b` in [0, count), duplicates and self-loops allowed.
    Returns Components of LABELS (node, label), one row per node, where `label` is one node
    of its component, the same for all of them (which one is the contraction's choice).

    Raises ValueError when the input breaks this contract (a missing or non-integer column,
    a null, a number outside [0, count))."""
    if not 0 <= count < _ID_LIMIT:
        raise ValueError(f"between 0 and {_ID_LIMIT - 1:,} nodes, not {count:,}")
    _check_columns(edges, "edges", ("a", "b"))
    for column in ("a", "b"):
        if not pa.types.is_integer(edges.schema.field(column).type):
            raise ValueError(
                f"edges.{column} holds {edges.schema.field(column).type}, not integers"
            )
        low, high = pc.min_max(edges.column(column)).values()
        if edges.num_rows and (low.as_py() < 0 or high.as_py() >= count):
            raise ValueError(f"edges.{column} holds numbers outside 0..{count - 1}")
    pairs = edges.select(["a", "b"]).cast(pa.schema([("a", pa.int64()), ("b", pa.int64())]))
    picks = _contract(engine, pairs)
    ids = pa.table({"node": np.arange(count, dtype=np.int64)})
    table = engine.query(_LABELS, {"ids": ids, **picks.relations}).cast(LABELS)
    return Components(table, picks.rounds, picks.edges_per_round)


@dataclass(frozen=True)
class _Picks:
    """Every round's picks: the first round's, and the later rounds' composed already."""

    first: pa.Table  # (v, rep)
    later: pa.Table  # (v, rep)
    edges_per_round: tuple[int, ...]

    @property
    def rounds(self) -> int:
        return len(self.edges_per_round)

    @property
    def relations(self) -> dict[str, pa.Table]:
        return {"reps": self.first, "later": self.later}


def _contract(engine: Engine, pairs: pa.Table) -> _Picks:
    """Contraction rounds on (a, b) BIGINT edges until no edge is left."""
    picks: list[pa.Table] = []
    sizes: list[int] = []
    # Each round removes at least one node from every component left (its lowest-priority
    # node's neighbours all pick it), so the loop ends; no edge left means nothing changes.
    while pairs.num_rows:
        sizes.append(pairs.num_rows)
        reps = engine.query(_pick_sql(len(picks)), {"edges": pairs})
        picks.append(reps)
        pairs = engine.query(_CONTRACT, {"edges": pairs, "reps": reps})
    log.debug("connected components", rounds=len(picks), edges_per_round=sizes)

    later = picks[-1] if len(picks) > 1 else _NO_REPS
    for reps in reversed(picks[1:-1]):
        later = engine.query(_COMPOSE, {"reps": reps, "later": later})
    return _Picks(picks[0] if picks else _NO_REPS, later, tuple(sizes))


def _check_columns(table: pa.Table, what: str, columns: tuple[str, ...]) -> None:
    for column in columns:
        if column not in table.column_names:
            raise ValueError(f"{what} has no column {column!r}: {table.column_names}")
        if table.column(column).null_count:
            raise ValueError(f"{what}.{column} holds nulls: every node has a name")


def _pick_sql(round_: int) -> str:
    return _PICK.format(
        key_v=_priority("v", round_),
        key_a=_priority("a", round_),
        key_b=_priority("b", round_),
        id_limit=_ID_LIMIT,
    )


def _priority(column: str, round_: int) -> str:
    """SQL for the node's priority in this round: (hash, id) packed in one BIGINT."""
    seed = (round_ * 1_103_515_245 + 12_345) % _P2
    spread = f"((({column} + {seed}) * {_M1}) % {_P1})"
    mixed = f"((({spread} * {spread}) % {_P2} * {_M2} + {seed}) % {_P2})"
    return f"({mixed} * {_ID_LIMIT} + {column})"
