"""The basin graph of a scan, its algorithms, and its GraphML / JSON files.

Nodes are distinct critical points (one per symmetry orbit and critical
manifold) with the attributes ``kind`` and ``loss`` (and more, see
:func:`basin_graph`); edges go from a saddle to a minimum that gradient descent
reaches from it.  Everything here is a plain function over such a graph, in the
networkx style, so it works on ``Scan.graph``, on a graph read back with
:func:`read_graph`, and on a graph built by hand:

* :func:`minima`, :func:`saddles`, :func:`joined_minima`: which nodes are
  minima and saddles, and which minima a saddle leads to;
* :func:`disconnectivity`: the joins of a disconnectivity graph (Becker &
  Karplus 1997): minima merged into ever larger groups as the loss level rises
  through the saddles that connect them;
* :func:`barrier`: the lowest saddle level over which two minima are joined
  along the graph, its saddle and a path; :func:`escape_barrier`: the lowest
  barrier from a minimum to any lower one.

Ties between saddles at the same loss are broken by node id, so every result
is deterministic (symmetric copies of a saddle have exactly equal losses).

References
----------
O. M. Becker and M. Karplus, "The topology of multidimensional potential energy
surfaces: theory and application to peptide structure and kinetics", J. Chem.
Phys. 106, 1495 (1997).
"""

import dataclasses
import os

import numpy as np

from ._results import Result

__all__ = ["MINIMUM_KINDS", "SADDLE_KINDS", "basin_graph", "write_graph", "read_graph",
           "minima", "saddles", "joined_minima", "disconnectivity", "Disconnectivity", "Join",
           "barrier", "barriers", "escape_barrier", "Barrier"]

#: Node kinds that are minima (see :data:`landscape.KINDS`).
MINIMUM_KINDS = ("strict-minimum", "degenerate-minimum")
#: Node kinds that are saddles.
SADDLE_KINDS = ("strict-saddle", "non-strict-saddle")


def _native(value):
    """numpy scalars -> Python scalars (GraphML and JSON know only these)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


# ---- building, writing and reading ------------------------------------------------------
def basin_graph(points, edges, *, n_starts, loops=None):
    """Build the basin graph.

    Parameters
    ----------
    points : sequence of Point
        Distinct critical points (``id``, ``classification``, ``basin_count``,
        ``basin_fraction``, ``basin_interval``, ``first_start``, ``found_by``).
    edges : sequence of (source, target, visits, descents)
        Saddle -> minimum: ``visits`` starts passed the saddle on their way to
        the minimum; ``descents`` of the descents off the saddle (along
        +- its most negative curvature direction, or from its witness, or by
        :func:`landscape.connect`) reached it.  Minimum -> itself (a self-loop,
        from a scan with ``connect=True``): ``descents`` saddles join the
        minimum to a symmetric copy of itself (each such saddle is a node whose
        only minimum successor is this one).
    n_starts : int
    loops : dict, optional
        ``{minimum: (saddle, GroupElement)}`` (:attr:`Scan.loops
        <landscape.Scan.loops>`): the self-loop of each such minimum is labelled
        by the lowest saddle joining it to a symmetric copy of itself and the
        group element relating the copies.

    Returns
    -------
    networkx.DiGraph
        Node attributes ``kind, loss, index, nullity, lambda_min, is_global``
        (when known), ``basin_count, basin_fraction, basin_low, basin_high``
        (95% Wilson interval), ``first_start`` (-1: no start ended there) and
        ``found_by``; edge attributes ``count = visits + descents``,
        ``visits``, ``descents``; a self-loop also ``saddle`` (the id of its
        lowest saddle) and ``element`` (the group element's
        :attr:`~landscape.GroupElement.label`, e.g. ``"neurons (0 1)"``).
        Attributes that are unknown are left out (GraphML has no null).
    """
    import networkx as nx

    G = nx.DiGraph(n_starts=int(n_starts))
    for p in points:
        c = p.classification
        attrs = dict(kind=c.kind, loss=c.loss, index=c.index, nullity=c.nullity,
                     lambda_min=c.lambda_min, is_global=c.is_global,
                     basin_count=p.basin_count, basin_fraction=p.basin_fraction,
                     basin_low=p.basin_interval[0], basin_high=p.basin_interval[1],
                     first_start=p.first_start, found_by=p.found_by)
        G.add_node(int(p.id), **{k: _native(v) for k, v in attrs.items() if v is not None})
    for source, target, visits, descents in edges:
        G.add_edge(int(source), int(target), count=int(visits) + int(descents),
                   visits=int(visits), descents=int(descents))
    for q, (saddle, g) in (loops or {}).items():
        if G.has_edge(int(q), int(q)):
            G.edges[int(q), int(q)].update(saddle=int(saddle), element=g.label)
    return G


def _format(path):
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix in (".graphml", ".xml"):
        return "graphml"
    if suffix == ".json":
        return "json"
    raise ValueError(f"path must end in .graphml (GraphML) or .json (node-link JSON), got "
                     f"{os.fspath(path)!r}")


def write_graph(G, path):
    """Write a basin graph as GraphML (``.graphml``) or node-link JSON (``.json``).

    JSON is networkx's node-link format (:func:`networkx.node_link_data` with
    the edge list under ``"edges"``), which :func:`networkx.node_link_graph`
    and :func:`read_graph` read back.

    Examples
    --------
    >>> import networkx as nx, tempfile, os
    >>> from landscape.graph import write_graph, read_graph
    >>> G = nx.DiGraph(n_starts=3)
    >>> G.add_node(0, kind="strict-minimum", loss=0.0)
    >>> G.add_node(1, kind="strict-saddle", loss=0.125)
    >>> G.add_edge(1, 0, count=2, visits=1, descents=1)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for name in ("g.graphml", "g.json"):
    ...         write_graph(G, os.path.join(d, name))
    ...         H = read_graph(os.path.join(d, name))
    ...         print(name, dict(H.nodes(data=True)) == dict(G.nodes(data=True)),
    ...               list(H.edges(data=True)) == list(G.edges(data=True)))
    g.graphml True True
    g.json True True
    """
    import json

    import networkx as nx

    fmt = _format(path)
    if fmt == "graphml":
        nx.write_graphml(G, path)
        return
    data = nx.node_link_data(G, edges="edges")
    data = _json_native(data)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, allow_nan=False)


def _json_native(value):
    if isinstance(value, dict):
        return {k: _json_native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_native(v) for v in value]
    return _native(value)


def read_graph(path):
    """Read a graph written by :func:`write_graph` (format by suffix); nodes are ints."""
    import json

    import networkx as nx

    fmt = _format(path)
    if fmt == "graphml":
        G = nx.read_graphml(path, node_type=int)
        return G if G.is_directed() else G.to_directed()
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return nx.node_link_graph(data, directed=True, multigraph=False, edges="edges")


# ---- queries ------------------------------------------------------------------------------
def _loss(G, n):
    return float(G.nodes[n].get("loss", np.nan))


def _by_loss(G, nodes):
    """Nodes by increasing loss, ties by id."""
    return sorted(nodes, key=lambda n: (_loss(G, n), n))


def _kind_of(G, n):
    if n not in G:
        import networkx as nx

        raise nx.NodeNotFound(f"node {n!r} is not in the graph")
    return G.nodes[n].get("kind")


def minima(G):
    """The minima of `G` (kind ``strict-minimum`` or ``degenerate-minimum``), by loss.

    Parameters
    ----------
    G : networkx.DiGraph
        A basin graph: nodes with ``kind`` and ``loss`` attributes.

    Returns
    -------
    list
        Node ids by increasing loss, ties by id.

    Examples
    --------
    >>> import networkx as nx
    >>> from landscape.graph import minima, saddles
    >>> G = nx.DiGraph()
    >>> G.add_nodes_from([(0, dict(kind="strict-minimum", loss=0.5)),
    ...                   (1, dict(kind="strict-minimum", loss=0.0)),
    ...                   (2, dict(kind="strict-saddle", loss=1.0))])
    >>> minima(G), saddles(G)
    ([1, 0], [2])
    """
    return _by_loss(G, [n for n, kind in G.nodes(data="kind") if kind in MINIMUM_KINDS])


def saddles(G):
    """The saddles of `G` (kind ``strict-saddle`` or ``non-strict-saddle``), by loss
    (ties by id); see :func:`minima`."""
    return _by_loss(G, [n for n, kind in G.nodes(data="kind") if kind in SADDLE_KINDS])


def joined_minima(G, saddle):
    """The minima that descent from `saddle` reaches (its out-edges to minima), by loss.

    Parameters
    ----------
    G : networkx.DiGraph
    saddle : node
        A node of kind ``strict-saddle`` or ``non-strict-saddle``.

    Returns
    -------
    list
        Node ids by increasing loss, ties by id.  Two or more: the saddle
        joins those minima; one: both sides of it descend into one basin.

    Raises
    ------
    networkx.NodeNotFound
        `saddle` is not a node of `G`.
    ValueError
        `saddle` is not a saddle.

    Examples
    --------
    >>> import networkx as nx
    >>> from landscape.graph import joined_minima
    >>> G = nx.DiGraph()
    >>> G.add_nodes_from([(0, dict(kind="strict-minimum", loss=0.0)),
    ...                   (1, dict(kind="strict-minimum", loss=0.5)),
    ...                   (2, dict(kind="strict-saddle", loss=1.0))])
    >>> G.add_edges_from([(2, 1), (2, 0)])
    >>> joined_minima(G, 2)
    [0, 1]
    """
    kind = _kind_of(G, saddle)
    if kind not in SADDLE_KINDS:
        raise ValueError(f"saddle must be a node of kind {' or '.join(SADDLE_KINDS)}, "
                         f"got node {saddle!r} of kind {kind!r}")
    return _by_loss(G, [m for m in G.successors(saddle)
                        if G.nodes[m].get("kind") in MINIMUM_KINDS])


# ---- disconnectivity ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Join(Result):
    """One saddle of a disconnectivity graph (see :func:`disconnectivity`).

    Attributes
    ----------
    saddle : int
        Its node id.
    loss : float
        Its loss: the level of the join.
    groups : tuple of tuple of int
        The groups of minima it connects, each as they stood just below this
        level (minima joined by lower saddles are one group), ordered by their
        lowest minimum; each group in leaf order.  One group: the saddle joins
        nothing new (it leads into one group only).
    minima : tuple of int
        The union of the groups, in leaf order.
    basin_count : int
        Starts that ended at any of these minima (the sum of their
        ``basin_count``): the basin of the group above this level.
    """

    saddle: int
    loss: float
    groups: tuple
    minima: tuple
    basin_count: int

    def __post_init__(self):
        object.__setattr__(self, "groups", tuple(tuple(g) for g in self.groups))
        object.__setattr__(self, "minima", tuple(self.minima))

    @property
    def is_merge(self):
        """The saddle connects two or more groups that no lower saddle connects."""
        return len(self.groups) > 1


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Disconnectivity(Result):
    """The joins of a disconnectivity graph (see :func:`disconnectivity`).

    Attributes
    ----------
    order : tuple of int
        The minima in leaf order: left to right in the diagram.  The minima of
        every group at every level are contiguous in it.
    joins : tuple of Join
        Every saddle that leads to a minimum, by increasing loss (ties by id).
    top : ndarray of shape (len(order),)
        For each minimum of `order`, the level at which its group first merges
        with another (its branch ends there); NaN if it never does.
    """

    order: tuple
    joins: tuple
    top: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "order", tuple(self.order))
        object.__setattr__(self, "joins", tuple(self.joins))

    @property
    def merges(self):
        """The joins that connect two or more groups (:attr:`Join.is_merge`)."""
        return tuple(j for j in self.joins if j.is_merge)


class _Groups:
    """Union-find over minima; each group keeps its minima in leaf order."""

    def __init__(self, G, nodes):
        self.G = G
        self.parent = {m: m for m in nodes}
        self.members = {m: [m] for m in nodes}

    def find(self, m):
        while self.parent[m] != m:
            self.parent[m] = self.parent[self.parent[m]]
            m = self.parent[m]
        return m

    def lowest(self, root):
        return (_loss(self.G, self.members[root][0]), self.members[root][0])

    def roots(self, nodes):
        """The distinct groups of `nodes`, ordered by their lowest minimum."""
        return sorted({self.find(m) for m in nodes}, key=self.lowest)

    def merge(self, roots):
        """One group of the groups `roots` (ordered); its members concatenated."""
        first = roots[0]
        for r in roots[1:]:
            self.parent[r] = first
            self.members[first] = self.members[first] + self.members.pop(r)
        return first


def _sweep(G, groups):
    """Yield (saddle, its minima, the groups they were in) by increasing saddle level,
    merging the groups of `groups` (a _Groups) as it goes."""
    for s in saddles(G):
        targets = joined_minima(G, s)
        if not targets:
            continue
        roots = groups.roots(targets)
        before = [tuple(groups.members[r]) for r in roots]
        if len(roots) > 1:
            groups.merge(roots)
        yield s, targets, before


def disconnectivity(G):
    """The disconnectivity graph of a basin graph: which minima join at which loss level.

    Raise a level from the lowest minimum upward: at each saddle (by
    increasing loss, ties by id) the groups of minima it leads to become one
    group.  The result lists every saddle's join and a left-to-right order of
    the minima in which every group is contiguous (at a merge the groups are
    placed by their lowest minimum), which is what a disconnectivity diagram
    draws (:func:`landscape.report.figures.plot_disconnectivity`).

    Parameters
    ----------
    G : networkx.DiGraph
        A basin graph: ``kind`` and ``loss`` on every node, saddle -> minimum
        edges (``basin_count`` on minima, if present, is summed per group).

    Returns
    -------
    Disconnectivity

    Notes
    -----
    Only saddle -> minimum edges count: the minima a saddle joins are those
    descent from it reached (:func:`joined_minima`).  A saddle that leads into
    one group is a join of one group (``is_merge`` False).

    References
    ----------
    Becker & Karplus, J. Chem. Phys. 106, 1495 (1997), Sec. II.

    Examples
    --------
    Minima A (0, loss 0), B (1, loss 1) and C (2, loss 2); saddle 3 at loss 3
    leads to B and C, saddle 4 at loss 5 to A and B:

    >>> import networkx as nx
    >>> from landscape.graph import disconnectivity
    >>> G = nx.DiGraph()
    >>> G.add_nodes_from([(0, dict(kind="strict-minimum", loss=0.0, basin_count=5)),
    ...                   (1, dict(kind="strict-minimum", loss=1.0, basin_count=3)),
    ...                   (2, dict(kind="strict-minimum", loss=2.0, basin_count=2)),
    ...                   (3, dict(kind="strict-saddle", loss=3.0)),
    ...                   (4, dict(kind="strict-saddle", loss=5.0))])
    >>> G.add_edges_from([(3, 1), (3, 2), (4, 0), (4, 1)])
    >>> d = disconnectivity(G)
    >>> d.order
    (0, 1, 2)
    >>> [(j.saddle, j.loss, j.groups, j.basin_count) for j in d.joins]
    [(3, 3.0, ((1,), (2,)), 5), (4, 5.0, ((0,), (1, 2)), 10)]
    >>> d.top.tolist()
    [5.0, 3.0, 3.0]
    """
    nodes = minima(G)
    groups = _Groups(G, nodes)
    joins, top = [], {}
    for s, _, before in _sweep(G, groups):
        union = tuple(m for g in before for m in g)
        if len(before) > 1:
            for m in union:
                top.setdefault(m, _loss(G, s))
        joins.append(Join(saddle=s, loss=_loss(G, s), groups=before, minima=union,
                          basin_count=int(sum(G.nodes[m].get("basin_count", 0)
                                              for m in union))))
    order = [m for r in groups.roots(nodes) for m in groups.members[r]]
    return Disconnectivity(order=order, joins=joins,
                           top=np.array([top.get(m, np.nan) for m in order], dtype=float))


# ---- barriers -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Barrier(Result):
    """The lowest barrier between two minima along a basin graph (see :func:`barrier`).

    Attributes
    ----------
    source, target : int
        The two minima.
    saddle : int
        The highest saddle on the lowest path: where the two minima's groups
        join in :func:`disconnectivity`.
    loss : float
        Its loss: the lowest level at which a path of saddles joins the two.
    height : float
        ``loss`` minus the loss of `source`: the barrier seen from `source`.
    path : tuple of int
        A path from `source` to `target` (minima and saddles alternating)
        whose saddles all lie at or below `loss`; it passes `saddle`.
    """

    source: int
    target: int
    saddle: int
    loss: float
    height: float
    path: tuple

    def __post_init__(self):
        object.__setattr__(self, "path", tuple(self.path))


def barrier(G, source, target):
    """The lowest barrier between minima `source` and `target` along the basin graph.

    Of all paths from `source` to `target` through saddles (each saddle joining
    the minima it leads to), the one whose highest saddle is lowest (a
    minimax path): the level at which the two minima's groups join in
    :func:`disconnectivity`.

    Parameters
    ----------
    G : networkx.DiGraph
        A basin graph (see :func:`disconnectivity`).
    source, target : node
        Two different minima.

    Returns
    -------
    Barrier

    Raises
    ------
    networkx.NodeNotFound
        `source` or `target` is not a node of `G`.
    ValueError
        `source` or `target` is not a minimum, or they are the same node.
    networkx.NetworkXNoPath
        No path of saddles joins them.

    Examples
    --------
    Minima 0 (loss 0), 1 (loss 1), 2 (loss 2); saddle 3 (loss 3) leads to 1
    and 2, saddle 4 (loss 5) to 0 and 1, saddle 5 (loss 6) to 0 and 2:

    >>> import networkx as nx
    >>> from landscape.graph import barrier
    >>> G = nx.DiGraph()
    >>> G.add_nodes_from([(0, dict(kind="strict-minimum", loss=0.0)),
    ...                   (1, dict(kind="strict-minimum", loss=1.0)),
    ...                   (2, dict(kind="strict-minimum", loss=2.0)),
    ...                   (3, dict(kind="strict-saddle", loss=3.0)),
    ...                   (4, dict(kind="strict-saddle", loss=5.0)),
    ...                   (5, dict(kind="strict-saddle", loss=6.0))])
    >>> G.add_edges_from([(3, 1), (3, 2), (4, 0), (4, 1), (5, 0), (5, 2)])
    >>> b = barrier(G, 2, 0)
    >>> b.saddle, b.loss, b.height, b.path
    (4, 5.0, 3.0, (2, 3, 1, 4, 0))
    """
    import networkx as nx

    for name, node in (("source", source), ("target", target)):
        kind = _kind_of(G, node)
        if kind not in MINIMUM_KINDS:
            raise ValueError(f"{name} must be a minimum (kind {' or '.join(MINIMUM_KINDS)}), "
                             f"got node {node!r} of kind {kind!r}")
    if source == target:
        raise ValueError(f"source and target must be two different minima, got {source!r} "
                         "twice")
    H = nx.Graph()                     # the saddles and minima below the current level
    H.add_nodes_from([source, target])
    groups = _Groups(G, minima(G))
    for s, targets, _ in _sweep(G, groups):
        H.add_edges_from((s, m) for m in targets)
        if groups.find(source) == groups.find(target):
            path = nx.shortest_path(H, source, target)
            level = _loss(G, s)
            return Barrier(source=source, target=target, saddle=s, loss=level,
                           height=level - _loss(G, source), path=path)
    raise nx.NetworkXNoPath(f"no path of saddles joins minima {source!r} and {target!r} in "
                            "the graph")


def barriers(G, target):
    """The lowest barrier from every minimum of `G` joined to `target` (e.g. the global
    minimum), by :func:`barrier`.

    Parameters
    ----------
    G : networkx.DiGraph
    target : node
        A minimum.

    Returns
    -------
    dict
        ``{minimum: Barrier}`` (source: that minimum, target: `target`) for every other
        minimum a path of saddles joins to `target`; the others are left out.

    Examples
    --------
    The graph of :func:`barrier`'s example:

    >>> import networkx as nx
    >>> from landscape.graph import barriers
    >>> G = nx.DiGraph()
    >>> G.add_nodes_from([(0, dict(kind="strict-minimum", loss=0.0)),
    ...                   (1, dict(kind="strict-minimum", loss=1.0)),
    ...                   (2, dict(kind="strict-minimum", loss=2.0)),
    ...                   (3, dict(kind="strict-saddle", loss=3.0)),
    ...                   (4, dict(kind="strict-saddle", loss=5.0)),
    ...                   (5, dict(kind="strict-saddle", loss=6.0))])
    >>> G.add_edges_from([(3, 1), (3, 2), (4, 0), (4, 1), (5, 0), (5, 2)])
    >>> {m: (b.saddle, b.height) for m, b in barriers(G, 0).items()}
    {1: (4, 4.0), 2: (4, 3.0)}
    """
    import networkx as nx

    out = {}
    for m in minima(G):
        if m == target:
            continue
        try:
            out[m] = barrier(G, m, target)
        except nx.NetworkXNoPath:
            pass
    return out


def escape_barrier(G, minimum):
    """The lowest barrier from `minimum` to a lower minimum: how high the loss must rise to
    leave its basin downhill along the graph.

    Raising the level through the saddles (as :func:`disconnectivity` does),
    the first level at which the group of `minimum` holds a lower minimum (by
    loss, ties by id); the barrier is to the lowest minimum of that group.

    Parameters
    ----------
    G : networkx.DiGraph
    minimum : node

    Returns
    -------
    Barrier
        From `minimum` (``source``) to that lower minimum (``target``).

    Raises
    ------
    networkx.NodeNotFound
        `minimum` is not a node of `G`.
    ValueError
        `minimum` is not a minimum.
    networkx.NetworkXNoPath
        No path of saddles leads from `minimum` to a lower minimum (it is the
        lowest minimum of its part of the graph).

    Examples
    --------
    The graph of :func:`barrier`'s example: minimum 2 (loss 2) first joins
    minimum 1 (loss 1) over saddle 3 (loss 3); minimum 1 joins minimum 0 over
    saddle 4 (loss 5):

    >>> import networkx as nx
    >>> from landscape.graph import escape_barrier
    >>> G = nx.DiGraph()
    >>> G.add_nodes_from([(0, dict(kind="strict-minimum", loss=0.0)),
    ...                   (1, dict(kind="strict-minimum", loss=1.0)),
    ...                   (2, dict(kind="strict-minimum", loss=2.0)),
    ...                   (3, dict(kind="strict-saddle", loss=3.0)),
    ...                   (4, dict(kind="strict-saddle", loss=5.0)),
    ...                   (5, dict(kind="strict-saddle", loss=6.0))])
    >>> G.add_edges_from([(3, 1), (3, 2), (4, 0), (4, 1), (5, 0), (5, 2)])
    >>> [(b.source, b.target, b.saddle, b.height) for b in (escape_barrier(G, 2),
    ...                                                     escape_barrier(G, 1))]
    [(2, 1, 3, 1.0), (1, 0, 4, 4.0)]
    """
    import networkx as nx

    kind = _kind_of(G, minimum)
    if kind not in MINIMUM_KINDS:
        raise ValueError(f"minimum must be a node of kind {' or '.join(MINIMUM_KINDS)}, got "
                         f"node {minimum!r} of kind {kind!r}")
    groups = _Groups(G, minima(G))
    own = (_loss(G, minimum), minimum)
    for _ in _sweep(G, groups):
        lowest = groups.lowest(groups.find(minimum))
        if lowest < own:
            return barrier(G, minimum, lowest[1])
    raise nx.NetworkXNoPath(f"no path of saddles leads from minimum {minimum!r} to a lower "
                            "minimum: it is the lowest of its part of the graph")
