"""Connected components computed in the engine: against a union-find reference on random
graphs, on shapes that break naive algorithms (long chains, stars), on edge cases (isolated
nodes, self-loops, duplicates, no edges, unknown nodes), on numbered nodes as SciPy takes
them, and DuckDB against Spark."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from opencdp.engine.base import Engine
from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.identity.components import (
    COMPONENTS,
    LABELS,
    connected_components,
    find_components,
    label_components,
)

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def duckdb_engine() -> Iterator[Engine]:
    with DuckDBEngine(workers=2) as engine:
        yield engine


def reference(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, str]:
    """node -> smallest name of its component, by union-find."""
    parent = {node: node for node in nodes}

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for left, right in edges:
        a, b = root(left), root(right)
        if a != b:
            parent[max(a, b)] = min(a, b)  # the smaller name stays the root
    return {node: root(node) for node in nodes}


def tables(nodes: list[str], edges: list[tuple[str, str]]) -> tuple[pa.Table, pa.Table]:
    return (
        pa.table({"node": pa.array(nodes, pa.string())}),
        pa.table(
            {
                "left": pa.array([e[0] for e in edges], pa.string()),
                "right": pa.array([e[1] for e in edges], pa.string()),
            }
        ),
    )


def components(engine: Engine, nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, str]:
    table = connected_components(engine, *tables(nodes, edges))
    assert table.schema.equals(COMPONENTS)
    got = dict(
        zip(table.column("node").to_pylist(), table.column("component").to_pylist(), strict=True)
    )
    assert table.num_rows == len(got) == len(nodes), "one row per node"
    return got


def random_graph(
    seed: int, n: int, edges_per_node: float
) -> tuple[list[str], list[tuple[str, str]]]:
    """Nodes named like identity resolution's (and a few names that sort unlike their
    numbers, with quotes and non-ASCII letters); edges mostly within small clusters, some
    across them, with duplicates and self-loops."""
    rng = random.Random(seed)
    extra = ["o'brien", "zoë", "Zed", "élan", "9", "10", "a\\b"]
    names = [f"c:{rng.choice(['shopify', 'stripe', 'crm'])}:{i * 7919 % 100_003}" for i in range(n)]
    nodes = names + extra
    rng.shuffle(nodes)
    edges = []
    for _ in range(int(n * edges_per_node)):
        i = rng.randrange(len(nodes))
        j = (
            min(len(nodes) - 1, i + rng.randrange(4))
            if rng.random() < 0.8
            else rng.randrange(len(nodes))
        )
        edges.append((nodes[i], nodes[j]))
    edges += rng.sample(edges, len(edges) // 10)  # duplicates
    edges += [(b, a) for a, b in rng.sample(edges, len(edges) // 10)]  # both ways
    rng.shuffle(edges)
    return nodes, edges


@pytest.mark.parametrize(
    ("seed", "n", "edges_per_node"),
    [(1, 50, 0.3), (2, 400, 0.5), (3, 400, 0.9), (4, 2000, 1.2), (5, 300, 3.0)],
)
def test_random_graphs_match_union_find(
    duckdb_engine: Engine, seed: int, n: int, edges_per_node: float
) -> None:
    nodes, edges = random_graph(seed, n, edges_per_node)
    expected = reference(nodes, edges)
    assert 1 < len(set(expected.values())) < len(nodes), "a graph of several components"
    assert components(duckdb_engine, nodes, edges) == expected


@pytest.mark.parametrize(("n", "order"), [(20_000, "shuffled"), (100_000, "in order")])
def test_a_long_chain_takes_few_rounds(duckdb_engine: Engine, n: int, order: str) -> None:
    # A chain is the worst case of plain label propagation (n - 1 rounds) and, numbered in
    # chain order, of contraction onto the smallest neighbour (one node a round).
    names = [f"c:shopify:{i:06d}" for i in range(n)]
    if order == "shuffled":  # the chain's order, and the node table's, unlike the names'
        chain = random.Random(7).sample(names, n)
        listed = random.Random(8).sample(names, n)
    else:  # the node table, the names and the chain in one order
        chain = listed = names
    nodes, edges = tables(listed, list(itertools.pairwise(chain)))
    result = find_components(duckdb_engine, nodes, edges)
    print(f"chain of {n:,} ({order}): {result.rounds} rounds, {result.edges_per_round}")
    assert set(result.table.column("component").to_pylist()) == {"c:shopify:000000"}
    assert result.table.num_rows == n
    # log2(n) is 14.3 and 16.6; each round should leave well under half the edges.
    assert result.rounds <= 2 * math.log2(n)
    assert all(b < 0.6 * a for a, b in itertools.pairwise(result.edges_per_round))


def test_stars(duckdb_engine: Engine) -> None:
    # Centres that sort after their leaves, and one before; a leaf on two stars joins them.
    edges = [("m", leaf) for leaf in ("a", "b", "z")]
    edges += [("x", leaf) for leaf in ("y", "q")]
    edges += [("0", leaf) for leaf in ("1", "2", "3")] + [("3", "5"), ("5", "4")]
    edges += [("k", "w"), ("l", "w")]  # w is a leaf of both k and l
    nodes = sorted({node for edge in edges for node in edge})
    expected = dict.fromkeys(("m", "a", "b", "z"), "a")
    expected |= dict.fromkeys(("x", "y", "q"), "q")
    expected |= dict.fromkeys(("0", "1", "2", "3", "4", "5"), "0")
    expected |= dict.fromkeys(("k", "l", "w"), "k")
    assert components(duckdb_engine, nodes, edges) == expected


def test_isolated_nodes_are_their_own_components(duckdb_engine: Engine) -> None:
    nodes = ["c:crm:3", "c:crm:1", "a:segment:x", "c:crm:2"]
    assert components(duckdb_engine, nodes, []) == {node: node for node in nodes}
    # Beside a component: only the nodes on edges join.
    assert components(duckdb_engine, nodes, [("c:crm:3", "c:crm:2")]) == {
        "c:crm:3": "c:crm:2",
        "c:crm:2": "c:crm:2",
        "c:crm:1": "c:crm:1",
        "a:segment:x": "a:segment:x",
    }


def test_self_loops_and_duplicate_edges(duckdb_engine: Engine) -> None:
    nodes = ["d", "c", "b", "a", "e"]
    edges = [("d", "d"), ("c", "d"), ("d", "c"), ("c", "d"), ("e", "e"), ("b", "b"), ("b", "a")]
    assert components(duckdb_engine, nodes, edges) == {
        "a": "a",
        "b": "a",
        "c": "c",
        "d": "c",
        "e": "e",  # a self-loop alone joins nothing
    }


def test_no_edges_and_no_nodes(duckdb_engine: Engine) -> None:
    empty_edges = pa.table({"left": pa.array([], pa.string()), "right": pa.array([], pa.string())})
    nodes = pa.table({"node": ["b", "a"]})
    result = find_components(duckdb_engine, nodes, empty_edges)
    assert result.rounds == 0
    assert sorted(result.table.to_pylist(), key=str) == [
        {"node": "a", "component": "a"},
        {"node": "b", "component": "b"},
    ]
    none = connected_components(duckdb_engine, nodes.slice(0, 0), empty_edges)
    assert none.num_rows == 0
    assert none.schema.equals(COMPONENTS)


def test_an_edge_naming_an_unknown_node_is_refused(duckdb_engine: Engine) -> None:
    nodes, edges = tables(["a", "b", "c"], [("a", "b"), ("b", "ghost"), ("zombie", "c")])
    with pytest.raises(ValueError, match=r"not in nodes: \['ghost', 'zombie'\]"):
        connected_components(duckdb_engine, nodes, edges)


def test_a_node_named_twice_is_refused(duckdb_engine: Engine) -> None:
    nodes, edges = tables(["a", "b", "a"], [("a", "b")])
    with pytest.raises(ValueError, match="nodes holds a name twice"):
        connected_components(duckdb_engine, nodes, edges)


def test_malformed_input_is_refused(duckdb_engine: Engine) -> None:
    nodes, edges = tables(["a", "b"], [("a", "b")])
    with pytest.raises(ValueError, match="edges has no column 'right'"):
        connected_components(duckdb_engine, nodes, edges.rename_columns(["left", "to"]))
    with pytest.raises(ValueError, match=r"nodes\.node holds nulls"):
        connected_components(duckdb_engine, pa.table({"node": ["a", None]}), edges)
    with pytest.raises(ValueError, match=r"edges\.left holds nulls"):
        connected_components(duckdb_engine, nodes, pa.table({"left": [None], "right": ["a"]}))


def numbered(engine: Engine, count: int, edges: list[tuple[int, int]]) -> dict[int, int]:
    table = pa.table(
        {
            "a": pa.array([e[0] for e in edges], pa.int32()),
            "b": pa.array([e[1] for e in edges], pa.int32()),
        }
    )
    result = label_components(engine, count, table).table
    assert result.schema.equals(LABELS)
    got = dict(
        zip(result.column("node").to_pylist(), result.column("label").to_pylist(), strict=True)
    )
    assert result.num_rows == len(got) == count, "one row per node"
    return got


def partition(labels: dict[Any, Any]) -> set[frozenset[Any]]:
    groups: dict[Any, set[Any]] = {}
    for node, label in labels.items():
        groups.setdefault(label, set()).add(node)
    return {frozenset(group) for group in groups.values()}


@pytest.mark.parametrize(("seed", "n", "edges_per_node"), [(6, 300, 0.6), (7, 3000, 1.2)])
def test_numbered_nodes_match_union_find(
    duckdb_engine: Engine, seed: int, n: int, edges_per_node: float
) -> None:
    names, named_edges = random_graph(seed, n, edges_per_node)
    number = {name: i for i, name in enumerate(names)}
    edges = [(number[a], number[b]) for a, b in named_edges]
    got = numbered(duckdb_engine, len(names), edges)
    assert all(got[got[node]] == got[node] for node in got), "a label is a node of its own"
    expected = {number[node]: number[root] for node, root in reference(names, named_edges).items()}
    assert partition(got) == partition(expected)
    assert len(partition(got)) > 1


def test_numbered_nodes_on_no_edge_label_themselves(duckdb_engine: Engine) -> None:
    assert numbered(duckdb_engine, 3, []) == {0: 0, 1: 1, 2: 2}
    got = numbered(duckdb_engine, 5, [(4, 1), (1, 1), (3, 3)])
    assert got[4] == got[1] in (1, 4)
    assert {node: got[node] for node in (0, 2, 3)} == {0: 0, 2: 2, 3: 3}
    assert numbered(duckdb_engine, 0, []) == {}


def test_numbered_input_that_breaks_the_contract_is_refused(duckdb_engine: Engine) -> None:
    def call(count: int, edges: pa.Table) -> None:
        label_components(duckdb_engine, count, edges)

    with pytest.raises(ValueError, match=r"numbers outside 0\.\.2"):
        call(3, pa.table({"a": [0, 1], "b": [2, 3]}))
    with pytest.raises(ValueError, match=r"edges\.a holds numbers outside"):
        call(3, pa.table({"a": [-1], "b": [0]}))
    with pytest.raises(ValueError, match=r"edges\.b holds string, not integers"):
        call(3, pa.table({"a": [0], "b": ["1"]}))
    with pytest.raises(ValueError, match=r"edges\.a holds nulls"):
        call(
            3,
            pa.table(
                {"a": [None, 1], "b": [0, 1]}, pa.schema([("a", pa.int64()), ("b", pa.int64())])
            ),
        )
    with pytest.raises(ValueError, match="edges has no column 'b'"):
        call(3, pa.table({"a": [0]}))
    with pytest.raises(ValueError, match="not -1"):
        call(-1, pa.table({"a": pa.array([], pa.int64()), "b": pa.array([], pa.int64())}))


@pytest.mark.slow
def test_duckdb_and_spark_agree(duckdb_engine: Engine, spark_engine: Engine) -> None:
    nodes, edges = random_graph(11, 3000, 1.0)
    on_duckdb = components(duckdb_engine, nodes, edges)
    on_spark = components(spark_engine, nodes, edges)
    assert on_spark == on_duckdb == reference(nodes, edges)
    # On numbered nodes the labels are the contraction's choice: the same on both engines.
    number = {name: i for i, name in enumerate(nodes)}
    numbered_edges = [(number[a], number[b]) for a, b in edges]
    labels = numbered(duckdb_engine, len(nodes), numbered_edges)
    assert numbered(spark_engine, len(nodes), numbered_edges) == labels
