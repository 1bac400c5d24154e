"""Geometry of the basin-graph figure: a layered layout (loss upward) and edges routed around
nodes.

Pure numpy, in data units: levels are 1 apart vertically, nodes of a level 1 apart
horizontally, node radii at most ``_MAX_RADIUS`` < 1/2 - ``PAD``.  An edge is a polyline that
stays at least ``radius + PAD`` away from the centre of every node other than its two ends:
the straight segment when it is clear, else the shallowest clear quadratic arc, else a route
through the empty corridors half-way between levels and a free lane right of all nodes.  The
segment and the arcs are checked numerically (:func:`clearance`); the corridor route is clear
by construction, and tests check it.
"""

import dataclasses

import numpy as np

__all__ = ["Layout", "layered_layout", "route_edges", "clearance"]

MIN_RADIUS = 0.17       # an empty basin (a saddle): still room for a two-digit id
_MAX_RADIUS = 0.34
PAD = 0.1               # an edge passes every other node at least this far outside it
_GAP = 0.04             # between a node's rim and the ends of its edges
_ARC_BULGES = (0.25, 0.45, 0.7, 1.0, 1.4)   # arc apex offset / chord length, tried in order
_SAMPLES = 48


@dataclasses.dataclass(frozen=True, kw_only=True)
class Layout:
    """Node positions of a layered drawing.

    Attributes
    ----------
    nodes : list
        The graph's nodes, in the order of the arrays.
    xy : ndarray of shape (n_nodes, 2)
        Centres; y is the level (0 = lowest loss).
    radius : ndarray of shape (n_nodes,)
    levels : list of list
        The nodes of each level, lowest loss first.
    """

    nodes: list
    xy: np.ndarray
    radius: np.ndarray
    levels: list

    def index(self, node):
        return self.nodes.index(node)


def _loss_levels(graph, rtol):
    """Nodes grouped by loss, lowest first: global minima share the lowest level; other losses
    that agree within ``rtol max(1, |L|)`` share one."""
    nodes = sorted(graph.nodes, key=lambda n: (graph.nodes[n].get("loss", 0.0), n))
    levels = [[n for n in nodes if graph.nodes[n].get("is_global")]]
    level_loss = None
    for n in nodes:
        if graph.nodes[n].get("is_global"):
            continue
        loss = graph.nodes[n].get("loss", 0.0)
        if level_loss is None or loss > level_loss + rtol * max(1.0, abs(level_loss)):
            levels.append([])
            level_loss = loss
        levels[-1].append(n)
    return [lv for lv in levels if lv]


def layered_layout(graph, *, rtol=1e-9):
    """Levels by loss (lowest at y = 0), nodes of a level ordered by the mean position of their
    neighbours below (fewer crossings), radius growing with the square root of the basin.

    Parameters
    ----------
    graph : networkx.DiGraph
        Node attributes ``loss``, ``is_global`` (optional) and ``basin_count``.
    rtol : float
        Losses within ``rtol max(1, |L|)`` share a level.

    Returns
    -------
    Layout
    """
    levels = _loss_levels(graph, rtol)
    undirected = graph.to_undirected(as_view=True)
    x = {}
    for level in levels:
        level.sort(key=lambda n: (_barycentre(undirected, n, x), n))
        for j, n in enumerate(level):
            x[n] = j - (len(level) - 1) / 2
    nodes = [n for level in levels for n in level]
    xy = np.array([(x[n], y) for y, level in enumerate(levels) for n in level], dtype=float)
    basin = np.array([graph.nodes[n].get("basin_count", 0) for n in nodes], dtype=float)
    radius = MIN_RADIUS + (_MAX_RADIUS - MIN_RADIUS) * np.sqrt(basin / max(1.0, basin.max()))
    return Layout(nodes=nodes, xy=xy.reshape(len(nodes), 2), radius=radius, levels=levels)


def _barycentre(graph, node, x):
    """Mean x of the node's neighbours placed so far (0 if none)."""
    placed = [x[m] for m in graph.neighbors(node) if m in x]
    return float(np.mean(placed)) if placed else 0.0


def clearance(path, centres, radii):
    """Smallest ``distance(path, centre) - radius`` over the given nodes (inf for none).

    Parameters
    ----------
    path : ndarray of shape (m, 2)
        A polyline.
    centres : ndarray of shape (k, 2)
    radii : ndarray of shape (k,)
    """
    if len(centres) == 0:
        return np.inf
    a, b = path[:-1], path[1:]
    ab = b - a
    length2 = np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-300)
    ac = centres[:, None, :] - a[None]                                    # (k, m-1, 2)
    t = np.clip(np.einsum("kij,ij->ki", ac, ab) / length2, 0.0, 1.0)
    nearest = a[None] + t[..., None] * ab[None]
    dist = np.linalg.norm(centres[:, None, :] - nearest, axis=-1).min(axis=1)
    return float(np.min(dist - radii))


def _arc(p, q, bulge):
    """A quadratic Bezier from p to q whose apex is ``bulge |q - p|`` off the chord."""
    chord = q - p
    normal = np.array([chord[1], -chord[0]])            # the chord turned clockwise
    control = (p + q) / 2 + 2 * bulge * normal          # apex offset = half the control offset
    t = np.linspace(0.0, 1.0, _SAMPLES)[:, None]
    return (1 - t) ** 2 * p + 2 * (1 - t) * t * control + t ** 2 * q


def _corridor_route(p, q, lane):
    """Down from p to the empty corridor below its level, along it to the free lane, down the
    lane, along the corridor above q's level, and down into q.

    Clear by construction: nodes of a level are 1 apart, levels are 1 apart, every radius plus
    PAD is below 1/2, and the lane is right of every node by more than that.
    """
    if p[1] < q[1]:                         # an upward edge: the same route, reversed
        return _corridor_route(q, p, lane)[::-1]
    below_p, above_q = p[1] - 0.5, q[1] + 0.5
    if below_p <= above_q:                  # adjacent or equal levels: one corridor suffices
        corridor = below_p
        return np.array([p, (p[0], corridor), (q[0], corridor), q], dtype=float)
    return np.array([p, (p[0], below_p), (lane, below_p), (lane, above_q), (q[0], above_q), q],
                    dtype=float)


def _clip(path, centre, radius):
    """The polyline from the point where it leaves the disc (centre, radius) on."""
    d = np.linalg.norm(path - centre, axis=1)
    out = np.flatnonzero(d >= radius)
    if len(out) == 0:
        return path[-1:]
    i = out[0]
    if i == 0:
        return path
    a, b = path[i - 1], path[i]                       # a inside, b outside: the crossing
    ab = b - a
    # |a + s ab - centre| = radius for s in (0, 1]
    ac = a - centre
    qa, qb, qc = ab @ ab, 2 * ab @ ac, ac @ ac - radius ** 2
    s = (-qb + np.sqrt(max(qb * qb - 4 * qa * qc, 0.0))) / (2 * qa)
    return np.vstack([a + s * ab, path[i:]])


def route_edges(layout, edges):
    """A clear polyline for every edge, clipped to the rims of its two nodes.

    Parameters
    ----------
    layout : Layout
    edges : iterable of (source, target)

    Returns
    -------
    dict
        ``{(source, target): ndarray of shape (m, 2)}``, from the source's rim to the
        target's.
    """
    xy, radius = layout.xy, layout.radius
    first_lane = (xy[:, 0].max() if len(xy) else 0.0) + _MAX_RADIUS + PAD + 0.2
    lanes = 0
    routes = {}
    for u, v in edges:
        i, j = layout.index(u), layout.index(v)
        p, q = xy[i], xy[j]
        others = np.ones(len(xy), dtype=bool)
        others[[i, j]] = False
        C, R = xy[others], radius[others] + PAD
        candidates = [np.array([p, q])]
        candidates += [_arc(p, q, sign * b) for b in _ARC_BULGES for sign in (1, -1)]
        path = next((c for c in candidates if clearance(c, C, R) >= 0), None)
        if path is None:
            path = _corridor_route(p, q, first_lane + 0.3 * lanes)
            lanes += 1
        path = _clip(path, p, radius[i] + _GAP)
        path = _clip(path[::-1], q, radius[j] + _GAP)[::-1]
        routes[(u, v)] = path
    return routes
