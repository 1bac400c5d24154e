"""Figures of a scan and of direction-wise tests.

Every function takes the data and ``ax=None`` and returns the Axes it drew on;
with ``ax=None`` it draws on a new pyplot-free figure (see
:func:`landscape.report.new_figure`).  matplotlib is imported only when a figure
is made; no global state (backend, rcParams, style) is touched.
"""

import numpy as np

from ._mpl import new_axes

__all__ = ["KIND_COLORS", "plot_basin_graph", "basin_graph_size", "plot_disconnectivity", "plot_spectra",
           "plot_end_losses", "plot_trajectories", "plot_pass_fraction",
           "plot_convexity_constants", "eigenvalue_multiplicities"]

KIND_COLORS = {
    "strict-minimum": "#2e7d32",
    "degenerate-minimum": "#81c784",
    "strict-saddle": "#c62828",
    "non-strict-saddle": "#ef6c00",
    "degenerate": "#6a1b9a",
    "maximum": "#37474f",
    "not-critical": "#9e9e9e",
    "non-differentiable": "#bdbdbd",
}
_LOSS_FLOOR = 1e-16


def _color(kind):
    return KIND_COLORS.get(kind, "#9e9e9e")


def _kind_legend(ax, kinds, *, outside=False):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ls="", color=_color(k), label=k)
               for k in KIND_COLORS if k in kinds]
    if handles:
        where = dict(loc="upper left", bbox_to_anchor=(1.02, 1.0)) if outside else dict(
            loc="best")
        ax.legend(handles=handles, fontsize="small", frameon=False, **where)


def _plot_loss(loss):
    """Losses on a log axis: exact zeros and rounding-level negatives sit at the floor."""
    return np.maximum(np.asarray(loss, dtype=float), _LOSS_FLOOR)


def eigenvalue_multiplicities(eigenvalues, *, rtol=1e-6, atol=1e-10):
    """Group sorted eigenvalues that agree within ``atol + rtol |lambda|``.

    Returns
    -------
    list of (float, int)
        (mean value, multiplicity) per group, ascending.
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=float))
    groups = []
    for v in lam:
        if groups and abs(v - groups[-1][-1]) <= atol + rtol * abs(v):
            groups[-1].append(v)
        else:
            groups.append([v])
    return [(float(np.mean(g)), len(g)) for g in groups]


def _basin_drawing(graph):
    """Layout, edge routes and the data box (lower-left, upper-right) of a basin graph."""
    from ._layout import layered_layout, route_edges

    lay = layered_layout(graph)
    routes = route_edges(lay, graph.edges)
    points = np.vstack([lay.xy - lay.radius[:, None], lay.xy + lay.radius[:, None],
                        *routes.values()])
    return lay, routes, points.min(axis=0) - 0.25, points.max(axis=0) + 0.25


def basin_graph_size(graph, *, scale=0.8):
    """(width, height) in inches at which :func:`plot_basin_graph` draws `graph` at `scale`
    inches per loss level, so that every id is readable (capped at 12 x 14 in)."""
    if graph.number_of_nodes() == 0:
        return 6.4, 4.4
    _, _, lo, hi = _basin_drawing(graph)
    width, height = (hi - lo) * scale
    return min(12.0, max(4.8, width + 3.0)), min(14.0, max(2.6, height + 1.0))


def plot_basin_graph(graph, ax=None, *, loss_labels=None):
    """The basin graph, layered by loss: one row per loss level (lowest at the bottom), node
    area ~ basin (never below a size that shows its id), colour = kind; saddle -> minimum
    edges, wider for more starts, routed around every other node.

    Parameters
    ----------
    graph : networkx.DiGraph
        ``Scan.graph``.
    ax : matplotlib Axes, optional
        Drawn with equal aspect; :func:`basin_graph_size` gives a figure size at which
        the ids are readable.
    loss_labels : dict, optional
        Text of each node's loss, shown on the level's tick (default: 4 significant
        digits, and "global" for nodes whose ``is_global`` is true).

    Notes
    -----
    Levels are 1 apart in data units and node radii below 1/2, so an edge never passes
    closer than ``radius + 0.1`` to the centre of a node it does not join (see
    :mod:`landscape.report._layout`).  Edges are ``FancyArrowPatch`` artists with gid
    ``"edge u->v"``, nodes ``Circle`` patches with gid ``"node n"``.
    """
    from matplotlib.patches import Circle, FancyArrowPatch
    from matplotlib.path import Path

    ax = new_axes(ax, *basin_graph_size(graph))
    if graph.number_of_nodes() == 0:
        ax.text(0.5, 0.5, "no critical points", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    lay, routes, lo, hi = _basin_drawing(graph)
    counts = np.array([graph.edges[e].get("count", 1) for e in graph.edges], dtype=float)
    top = max(1.0, counts.max()) if len(counts) else 1.0
    for (u, v), count in zip(graph.edges, counts):
        if u == v:          # a self-loop (a saddle joining a minimum to its copy): in the tables
            continue
        ax.add_patch(FancyArrowPatch(
            path=Path(routes[(u, v)]), arrowstyle="-|>", mutation_scale=10,
            shrinkA=0, shrinkB=0, color="#78909c", lw=0.8 + 1.6 * np.sqrt(count / top),
            zorder=1, gid=f"edge {u}->{v}"))
    for n, (x, y), r in zip(lay.nodes, lay.xy, lay.radius):
        kind = graph.nodes[n].get("kind")
        ax.add_patch(Circle((x, y), r, facecolor=_color(kind), edgecolor="white", lw=0.8,
                            zorder=2, gid=f"node {n}"))
        ax.text(x, y, str(n), ha="center", va="center", fontsize=8, zorder=3,
                color=_text_color(_color(kind)), gid=f"label {n}")
    ax.update_datalim([lo, hi])
    ax.margins(0.0)
    ax.autoscale_view()
    ax.set_aspect("equal", adjustable="datalim")
    labels = loss_labels or {}
    ax.set_yticks(range(len(lay.levels)),
                  [" / ".join(dict.fromkeys(labels.get(n, _default_loss_label(graph, n))
                                            for n in level)) for level in lay.levels])
    ax.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.set_ylabel("loss (one row per level)")
    ax.set_title("basin graph: node = critical point (area ~ basin);\nedge = saddle \u2192 "
                 "minimum (width ~ starts)", fontsize="medium")
    _kind_legend(ax, {graph.nodes[n].get("kind") for n in graph.nodes}, outside=True)
    return ax


def _default_loss_label(graph, node):
    attrs = graph.nodes[node]
    return "global" if attrs.get("is_global") else f"{attrs.get('loss', float('nan')):.4g}"


def _text_color(fill):
    """Black or white, whichever reads better on `fill`."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(fill)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"


def plot_disconnectivity(graph, ax=None):
    """The disconnectivity diagram of a basin graph: each minimum a vertical line from its
    loss up to the saddles it leads to; at each saddle that joins groups of minima, a
    horizontal bar over them from which the joined group goes on up as one line; every
    saddle a square at its loss, over the group(s) it leads into.

    The joins are :func:`landscape.graph.disconnectivity`'s; this only draws them.  The
    bar of a join has gid ``"join <saddle>"``, the line of a group ``"branch <ids>"``.

    Parameters
    ----------
    graph : networkx.DiGraph
        ``Scan.graph`` (node attributes ``kind``, ``loss``, ``basin_fraction``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    from ..graph import disconnectivity

    ax = new_axes(ax, 6.4, 4.2)
    d = disconnectivity(graph)
    if not d.order:
        ax.text(0.5, 0.5, "no minima", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    nodes = graph.nodes
    # every group of minima: its x (mean of its leaves) and the level its line starts at
    x = {(m,): float(i) for i, m in enumerate(d.order)}
    base = {(m,): nodes[m]["loss"] for m in d.order}
    for j in d.joins:
        color = _color(nodes[j.saddle].get("kind"))
        xs = [x[g] for g in j.groups]
        for g in j.groups:                  # each group's line rises to the saddle
            ax.plot([x[g], x[g]], [base[g], j.loss], color="#546e7a", lw=1.5,
                    gid=f"branch {' '.join(map(str, g))}")
            base[g] = j.loss
        if j.is_merge:                      # ... and goes on up as one group
            ax.plot([min(xs), max(xs)], [j.loss, j.loss], color=color, lw=2,
                    gid=f"join {j.saddle}")
            for g in j.groups:
                x.pop(g), base.pop(g)
            x[j.minima], base[j.minima] = float(np.mean(xs)), j.loss
        ax.plot([np.mean(xs)], [j.loss], marker="s", ms=6, color=color)
        ax.annotate(str(j.saddle), (np.mean(xs), j.loss), textcoords="offset points",
                    xytext=(4, 3), fontsize=7)
    for i, m in enumerate(d.order):
        ax.plot([i], [nodes[m]["loss"]], marker="o",
                ms=4 + 10 * np.sqrt(nodes[m].get("basin_fraction", 0.0)),
                color=_color(nodes[m].get("kind")))
    ax.set_xticks(range(len(d.order)), [str(m) for m in d.order], fontsize=8)
    ax.set_xlabel("minimum (id)")
    ax.set_ylabel("loss")
    ax.set_xlim(-0.7, len(d.order) - 0.3)
    ax.set_title("disconnectivity: loss levels at which saddles join the minima",
                 fontsize="medium")
    return ax


def plot_spectra(points, ax=None):
    """Hessian eigenvalues of each critical point (symlog axis), marker size ~ multiplicity."""
    from matplotlib.ticker import MaxNLocator

    ax = new_axes(ax, 6.4, 4.0)
    kinds = set()
    for p in points:
        lam = p.classification.eigenvalues
        if lam is None:
            continue
        groups = eigenvalue_multiplicities(lam)
        vals = np.array([g[0] for g in groups])
        mult = np.array([g[1] for g in groups])
        ax.scatter(np.full(len(vals), p.id), vals, s=12 + 10 * np.sqrt(mult),
                   color=_color(p.kind), alpha=0.8, linewidths=0)
        kinds.add(p.kind)
    ax.axhline(0.0, color="#777", lw=0.6)
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("critical point (id)")
    ax.set_ylabel("Hessian eigenvalue")
    ax.set_title("Hessian spectra (marker size ~ multiplicity)", fontsize="medium")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _kind_legend(ax, kinds)
    return ax


def plot_end_losses(losses, kinds=None, ax=None, bins=40, *, at_optimum=None,
                    optimum_label="optimum"):
    """Histogram of the end losses of every start (log axis; exact zeros at 1e-16); the ends
    at the known optimum in a bar of their own, left of the others.

    Parameters
    ----------
    losses : array_like of shape (n_starts,)
    kinds : sequence of str, optional
        Kind of each end point (stacked bars by kind).
    at_optimum : array_like of bool, shape (n_starts,), optional
        Ends whose loss equals the known optimal loss: drawn as one bar, so that their
        rounding errors (1e-16 ... 1e-14) do not read as decades of loss.
    optimum_label : str
        Tick label of that bar, e.g. ``"0 (global)"``.
    """
    from matplotlib.ticker import MaxNLocator

    ax = new_axes(ax, 6.4, 3.6)
    loss = np.asarray(losses, dtype=float)
    finite = np.isfinite(loss)
    if not finite.any():
        ax.text(0.5, 0.5, "no finite end losses", ha="center", va="center",
                transform=ax.transAxes)
        return ax
    best = np.zeros(len(loss), dtype=bool) if at_optimum is None else np.asarray(
        at_optimum, dtype=bool)
    best = best[finite]
    v = np.log10(_plot_loss(loss[finite]))
    rest = v[~best] if (~best).any() else np.zeros(1)
    edges = np.linspace(rest.min() - 0.5, rest.max() + 0.5, bins + 1)
    ticks, labels = [], []
    if best.any():         # one bin further left, after an empty bin
        width = edges[1] - edges[0]
        v[best] = edges[0] - 1.5 * width
        ticks, labels = [v[best][0]], [optimum_label]
        edges = np.concatenate([edges[0] - np.array([2.0, 1.0]) * width, edges])
    if kinds is None:
        ax.hist(v, bins=edges, color="#1f5f99")
    else:
        kinds = np.asarray(kinds)[finite]
        present = [k for k in KIND_COLORS if k in set(kinds)]
        ax.hist([v[kinds == k] for k in present], bins=edges, stacked=True,
                color=[_color(k) for k in present], label=present)
        ax.legend(fontsize="small", frameon=False)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if best.any():
        if (~best).any():
            lo, hi = v[~best].min() - 0.5, v[~best].max() + 0.5
            decades = [t for t in MaxNLocator(nbins=6, integer=True).tick_values(lo, hi)
                       if lo <= t <= hi]
            ticks += decades
            labels += [f"{t:g}" for t in decades]
        ax.set_xticks(ticks, labels)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("log10 end loss (losses <= 1e-16 at -16)")
    ax.set_ylabel("starts")
    ax.set_title("end losses of all starts", fontsize="medium")
    return ax


def plot_trajectories(traces, ax=None, *, quantity="loss", max_curves=12):
    """Loss (or gradient norm) against iteration + 1 on log-log axes; plateaus marked.

    Parameters
    ----------
    traces : dict
        ``Scan.traces``: ``{start: {"at", "loss", "grad_norm", "plateau_at", ...}}``.
    quantity : {"loss", "grad_norm"}
    """
    if quantity not in ("loss", "grad_norm"):
        raise ValueError(f"quantity must be 'loss' or 'grad_norm', got {quantity!r}")
    from matplotlib.lines import Line2D

    ax = new_axes(ax, 6.4, 4.0)
    marked = False
    for start in sorted(traces)[:max_curves]:
        t = traces[start]
        y = _plot_loss(t[quantity])
        line, = ax.loglog(np.asarray(t["at"]) + 1, y, lw=1, label=f"start {start}")
        key = "plateau_loss" if quantity == "loss" else "plateau_grad_norm"
        if len(t.get("plateau_at", ())):
            ax.loglog(np.asarray(t["plateau_at"]) + 1, _plot_loss(t[key]), ls="", marker="D",
                      ms=5, color=line.get_color(), markeredgecolor="black")
            marked = True
    ax.set_xlabel("iteration + 1")
    ax.set_ylabel("loss" if quantity == "loss" else "gradient norm")
    ax.set_title(f"{'loss' if quantity == 'loss' else 'gradient norm'} along sample descents",
                 fontsize="medium")
    if traces:
        handles = ax.get_legend_handles_labels()[0]
        if marked:            # one neutral entry for the marks, whatever their curves' colours
            handles.append(Line2D([], [], ls="", marker="D", ms=5, color="#bdbdbd",
                                  markeredgecolor="black", label="plateau (visited saddle)"))
        ax.legend(handles=handles, fontsize="x-small", frameon=False, ncol=2)
    return ax


def plot_pass_fraction(tests, ax=None):
    """Fraction of directions whose constant is >= threshold at each radius, per test."""
    ax = new_axes(ax, 6.4, 3.8)
    for t in tests:
        C = np.asarray(t.constants, dtype=float)
        with np.errstate(invalid="ignore"):
            ok = np.where(np.isnan(C), np.nan, C >= t.threshold)
        frac = np.nanmean(ok, axis=0) if C.size else np.zeros(0)
        order = np.argsort(t.radii)
        ax.semilogx(np.asarray(t.radii)[order], frac[order], marker="o", ms=3, label=t.kind)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("radius r")
    ax.set_ylabel("fraction of directions passing")
    ax.set_title("direction-wise tests: pass fraction vs radius", fontsize="medium")
    if tests:
        ax.legend(fontsize="small", frameon=False)
    return ax


def plot_convexity_constants(test, ax=None, *, max_curves=30):
    """|constant| against radius on log-log axes for each direction; the worst in black;
    negative constants drawn dashed."""
    ax = new_axes(ax, 6.4, 3.8)
    r = np.asarray(test.radii, dtype=float)
    order = np.argsort(r)
    C = np.asarray(test.constants, dtype=float)
    for i in range(min(len(C), max_curves)):
        c = C[i, order]
        neg = np.nanmax(c) < 0 if np.isfinite(c).any() else False
        ax.loglog(r[order], np.abs(c), lw=0.7, alpha=0.5, color="#1f5f99",
                  ls="--" if neg else "-")
    w = np.asarray(test.worst_constants, dtype=float)[order]
    ax.loglog(r[order], np.abs(w), color="black", lw=2,
              label=f"worst direction ({test.worst_direction})")
    ax.set_xlabel("radius r")
    ax.set_ylabel(f"|{test.kind} constant|")
    fit = np.asarray(test.exponents, dtype=float)
    fit = fit[np.isfinite(fit)]
    extra = f"; median exponent {np.median(fit):.2f}" if fit.size else ""
    ax.set_title(f"{test.kind}: constants vs radius{extra}", fontsize="medium")
    ax.legend(fontsize="small", frameon=False)
    return ax
