"""The basin graph of a scan as a networkx DiGraph, and its GraphML / JSON files.

Nodes are distinct critical points (one per symmetry orbit); edges go from a
saddle to a minimum that gradient descent reaches from it.  Plain functions
over a graph, in the networkx style.
"""

import json
import os


__all__ = ["basin_graph", "write_graph", "read_graph"]

_NODE_KEYS = ("kind", "loss", "index", "nullity", "lambda_min", "is_global", "basin_count",
              "basin_fraction", "basin_low", "basin_high", "first_start", "found_by")


def _native(value):
    """numpy scalars -> Python scalars (GraphML and JSON know only these)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def basin_graph(points, edges, *, n_starts):
    """Build the basin graph.

    Parameters
    ----------
    points : sequence of Point
        Distinct critical points (``id``, ``classification``, ``basin_count``,
        ``basin_fraction``, ``basin_interval``, ``first_start``, ``found_by``).
    edges : sequence of (source, target, visits, descents)
        Saddle -> minimum: ``visits`` starts passed the saddle on their way to
        the minimum; ``descents`` of the descents off the saddle (along
        +- its most negative curvature direction, or from its witness) reached it.
    n_starts : int

    Returns
    -------
    networkx.DiGraph
        Node attributes ``kind, loss, index, nullity, lambda_min, is_global``
        (when known), ``basin_count, basin_fraction, basin_low, basin_high``
        (95% Wilson interval), ``first_start`` (-1: no start ended there) and
        ``found_by``; edge attributes ``count = visits + descents``,
        ``visits``, ``descents``.  Attributes that are unknown are left out
        (GraphML has no null).
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
    import networkx as nx

    fmt = _format(path)
    if fmt == "graphml":
        nx.write_graphml(G, path)
        return
    data = {"directed": G.is_directed(), "multigraph": False,
            "graph": {k: _native(v) for k, v in G.graph.items()},
            "nodes": [{"id": _native(n), **{k: _native(v) for k, v in a.items()}}
                      for n, a in G.nodes(data=True)],
            "edges": [{"source": _native(u), "target": _native(v),
                       **{k: _native(w) for k, w in a.items()}}
                      for u, v, a in G.edges(data=True)]}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, allow_nan=False)


def read_graph(path):
    """Read a graph written by :func:`write_graph` (format by suffix); nodes are ints."""
    import networkx as nx

    fmt = _format(path)
    if fmt == "graphml":
        G = nx.read_graphml(path, node_type=int)
        return G if G.is_directed() else G.to_directed()
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    G = nx.DiGraph(**data.get("graph", {}))
    for node in data["nodes"]:
        attrs = dict(node)
        G.add_node(attrs.pop("id"), **attrs)
    for edge in data["edges"]:
        attrs = dict(edge)
        G.add_edge(attrs.pop("source"), attrs.pop("target"), **attrs)
    return G
