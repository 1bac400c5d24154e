"""Graph algorithms on a hand-built basin graph with known joins and barriers; graph files."""

import json

import networkx as nx
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from landscape.graph import (Disconnectivity, barrier, disconnectivity, escape_barrier,
                             joined_minima, minima, read_graph, saddles, write_graph)

# minima A..E (E has no saddle), saddles 5..10, and a point that is neither
A, B, C, D, E = 0, 1, 2, 3, 4


@pytest.fixture
def G():
    """Levels: A 0, E 0.5, B 1, C 1.5, D 2; saddle 5 (2.5) -> B, D; 6 (3) -> C; 7 (3, the same
    level as 6) -> A, C; 10 (3.5) -> nothing; 8 (4) -> B, C; 9 (5) -> D, A."""
    G = nx.DiGraph(n_starts=20)
    for node, loss, count in ((A, 0.0, 10), (B, 1.0, 6), (C, 1.5, 3), (D, 2.0, 1), (E, 0.5, 0)):
        G.add_node(node, kind="strict-minimum", loss=loss, basin_count=count)
    for node, loss in ((5, 2.5), (6, 3.0), (7, 3.0), (8, 4.0), (9, 5.0)):
        G.add_node(node, kind="strict-saddle", loss=loss, basin_count=0)
    G.add_node(10, kind="non-strict-saddle", loss=3.5)
    G.add_node(11, kind="degenerate", loss=0.2)
    G.add_edges_from([(5, D), (5, B), (6, C), (7, C), (7, A), (8, B), (8, C), (9, D), (9, A)])
    return G


def test_minima_saddles_and_joined_minima(G):
    assert minima(G) == [A, E, B, C, D]                       # by loss
    assert saddles(G) == [5, 6, 7, 10, 8, 9]                  # by loss, ties (6, 7) by id
    assert joined_minima(G, 5) == [B, D]
    assert joined_minima(G, 9) == [A, D]
    assert joined_minima(G, 10) == []
    with pytest.raises(ValueError, match="saddle must be a node of kind .* got node 0 of kind "
                                         "'strict-minimum'"):
        joined_minima(G, A)
    with pytest.raises(nx.NodeNotFound):
        joined_minima(G, 99)


def test_disconnectivity_joins(G):
    d = disconnectivity(G)
    got = [(j.saddle, j.loss, j.groups, j.minima, j.basin_count, j.is_merge) for j in d.joins]
    assert got == [
        (5, 2.5, ((B,), (D,)), (B, D), 7, True),
        (6, 3.0, ((C,),), (C,), 3, False),                    # leads into C alone
        (7, 3.0, ((A,), (C,)), (A, C), 13, True),
        (8, 4.0, ((A, C), (B, D)), (A, C, B, D), 20, True),   # groups by their lowest minimum
        (9, 5.0, ((A, C, B, D),), (A, C, B, D), 20, False),   # A and D are joined already
    ]
    assert [j.saddle for j in d.merges] == [5, 7, 8]
    assert d.order == (A, C, B, D, E)
    # each minimum's branch ends where its group first merges; E never merges
    assert_array_equal(d.top, [3.0, 3.0, 2.5, 2.5, np.nan])


def test_every_group_is_contiguous_in_the_leaf_order(G):
    d = disconnectivity(G)
    position = {m: i for i, m in enumerate(d.order)}
    for j in d.joins:
        at = sorted(position[m] for m in j.minima)
        assert at == list(range(at[0], at[0] + len(at))), j
        assert [position[m] for m in j.minima] == at           # and in leaf order


def test_barriers(G):
    b = barrier(G, D, A)
    assert (b.source, b.target, b.saddle, b.loss, b.height) == (D, A, 8, 4.0, 2.0)
    assert b.path == (D, 5, B, 8, C, 7, A)
    b = barrier(G, A, D)                                       # the height is from the source
    assert (b.saddle, b.loss, b.height, b.path) == (8, 4.0, 4.0, (A, 7, C, 8, B, 5, D))
    b = barrier(G, B, D)
    assert (b.saddle, b.loss, b.height, b.path) == (5, 2.5, 1.5, (B, 5, D))
    b = barrier(G, C, A)                                       # saddle 6 is at that level too
    assert (b.saddle, b.loss, b.height, b.path) == (7, 3.0, 1.5, (C, 7, A))


def test_the_barrier_is_the_lowest_level_of_any_path(G):
    """Brute force: over every simple path, the highest saddle; the lowest such is the barrier."""
    U = nx.Graph((s, m) for s in saddles(G) for m in joined_minima(G, s))
    for a in minima(G):
        for b in minima(G):
            if a == b:
                continue
            paths = list(nx.all_simple_paths(U, a, b)) if a in U and b in U else []
            if not paths:
                with pytest.raises(nx.NetworkXNoPath):
                    barrier(G, a, b)
                continue
            best = min(max(G.nodes[n]["loss"] for n in p if n in saddles(G)) for p in paths)
            got = barrier(G, a, b)
            assert got.loss == best
            assert max(G.nodes[n]["loss"] for n in got.path[1::2]) == best
            assert got.path[0] == a and got.path[-1] == b and got.saddle in got.path


def test_escape_barriers(G):
    got = {m: escape_barrier(G, m) for m in (B, C, D)}
    assert [(b.target, b.saddle, b.loss, b.height) for b in got.values()] == [
        (A, 8, 4.0, 3.0), (A, 7, 3.0, 1.5), (B, 5, 2.5, 0.5)]
    assert got[B].path == (B, 8, C, 7, A)
    for m in (A, E):                       # the lowest minimum; a minimum without saddles
        with pytest.raises(nx.NetworkXNoPath, match="lowest of its part of the graph"):
            escape_barrier(G, m)
    with pytest.raises(ValueError, match="minimum must be a node of kind"):
        escape_barrier(G, 5)


def test_bad_barrier_arguments(G):
    with pytest.raises(ValueError, match="target must be a minimum .* got node 5"):
        barrier(G, A, 5)
    with pytest.raises(ValueError, match="source must be a minimum .* got node 11 of kind "
                                         "'degenerate'"):
        barrier(G, 11, A)
    with pytest.raises(ValueError, match="two different minima"):
        barrier(G, A, A)
    with pytest.raises(nx.NodeNotFound):
        barrier(G, A, 99)


def test_saddles_at_equal_loss_are_taken_by_id():
    """Symmetric copies have exactly equal losses: the lower id joins, the other joins nothing."""
    G = nx.DiGraph()
    G.add_nodes_from([(0, dict(kind="strict-minimum", loss=0.0)),
                      (1, dict(kind="degenerate-minimum", loss=0.0)),
                      (3, dict(kind="strict-saddle", loss=1.0)),
                      (2, dict(kind="non-strict-saddle", loss=1.0))])
    G.add_edges_from([(3, 0), (3, 1), (2, 1), (2, 0)])
    d = disconnectivity(G)
    assert [(j.saddle, j.is_merge) for j in d.joins] == [(2, True), (3, False)]
    assert d.order == (0, 1)
    assert barrier(G, 1, 0).saddle == 2 and barrier(G, 1, 0).path == (1, 2, 0)


def test_a_graph_without_minima():
    G = nx.DiGraph()
    G.add_node(0, kind="strict-saddle", loss=1.0)
    d = disconnectivity(G)
    assert d.order == () and d.joins == () and d.top.shape == (0,)


def test_disconnectivity_round_trips_as_data(G):
    d = disconnectivity(G)
    back = Disconnectivity.from_dict(json.loads(json.dumps(d.to_dict())))
    assert back.order == d.order
    assert [(j.saddle, j.loss, j.groups, j.minima) for j in back.joins] == \
        [(j.saddle, j.loss, j.groups, j.minima) for j in d.joins]
    assert_array_equal(back.top, d.top)


def test_json_files_are_networkx_node_link_data(G, tmp_path):
    path = tmp_path / "g.json"
    write_graph(G, path)
    data = json.loads(path.read_text())
    assert set(data) >= {"directed", "multigraph", "graph", "nodes", "edges"}
    H = nx.node_link_graph(data, edges="edges")               # networkx reads it as is
    assert H.is_directed() and dict(H.nodes(data=True)) == dict(G.nodes(data=True))
    assert sorted(H.edges) == sorted(G.edges)
    H = read_graph(path)
    assert H.graph == {"n_starts": 20} and sorted(H.edges) == sorted(G.edges)
    assert disconnectivity(H).order == disconnectivity(G).order
    G.nodes[A]["loss"] = np.float64(0.0)                      # numpy scalars are written too
    write_graph(G, path)
    assert read_graph(path).nodes[A]["loss"] == 0.0


def random_graph(seed, n_minima=5, n_saddles=6, levels=3):
    """A random basin graph with few distinct losses (many exact ties, like symmetric
    copies), saddles leading to one or two minima, and self-loops on minima (a saddle
    joining a minimum to a copy of itself, as scan(connect=True) writes them)."""
    rng = np.random.default_rng(seed)
    G = nx.DiGraph()
    for m in range(n_minima):
        G.add_node(m, kind="strict-minimum", loss=float(rng.integers(levels)),
                   basin_count=int(rng.integers(5)))
    for s in range(n_minima, n_minima + n_saddles):
        G.add_node(s, kind="strict-saddle", loss=float(levels + rng.integers(levels)))
        targets = rng.choice(n_minima, size=int(rng.integers(1, 3)), replace=False)
        G.add_edges_from((s, int(t)) for t in targets)
        if len(targets) == 1:
            G.add_edge(int(targets[0]), int(targets[0]), count=2, visits=0, descents=2)
    return G


def brute_force_barrier(G, a, b):
    """min over simple paths of the highest saddle on the path (None: no path)."""
    U = nx.Graph((s, m) for s in saddles(G) for m in joined_minima(G, s))
    if a not in U or b not in U:
        return None
    levels = [max(G.nodes[n]["loss"] for n in p if n in set(saddles(G)))
              for p in nx.all_simple_paths(U, a, b)]
    return min(levels) if levels else None


@pytest.mark.parametrize("seed", range(40))
def test_barrier_is_the_brute_force_minimax_on_random_graphs_with_ties(seed):
    G = random_graph(seed)
    for a in minima(G):
        for b in minima(G):
            if a == b:
                continue
            best = brute_force_barrier(G, a, b)
            if best is None:
                with pytest.raises(nx.NetworkXNoPath):
                    barrier(G, a, b)
                continue
            got = barrier(G, a, b)
            assert got.loss == best                     # exact: losses are small integers
            assert got.height == best - G.nodes[a]["loss"]
            assert got.path[0] == a and got.path[-1] == b
            assert max(G.nodes[n]["loss"] for n in got.path[1::2]) == best
            assert barrier(G, b, a).loss == best        # symmetric


@pytest.mark.parametrize("seed", range(40))
def test_disconnectivity_with_tied_losses_and_self_loops_never_crashes(seed):
    """Exactly equal losses everywhere (few levels) and self-loops: a deterministic tree
    (ties by id) whose groups are contiguous in the leaf order and whose merges are the
    brute-force barriers."""
    G = random_graph(seed)
    d = disconnectivity(G)
    H = nx.DiGraph()                       # the same graph, inserted in reverse order
    H.add_nodes_from(reversed(list(G.nodes(data=True))))
    H.add_edges_from(reversed(list(G.edges(data=True))))
    again = disconnectivity(H)
    assert again.order == d.order and again.joins == d.joins
    assert_array_equal(again.top, d.top)
    assert sorted(d.order) == sorted(minima(G))
    position = {m: i for i, m in enumerate(d.order)}
    for j in d.joins:
        idx = sorted(position[m] for m in j.minima)
        assert idx == list(range(idx[0], idx[0] + len(idx)))
    levels = [j.loss for j in d.joins]
    assert levels == sorted(levels)
    for j in d.merges:
        a, b = j.groups[0][0], j.groups[1][0]
        assert brute_force_barrier(G, a, b) == j.loss
