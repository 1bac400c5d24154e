"""Figures of a scan and of direction-wise tests.

Every function takes the data and ``ax=None`` and returns the Axes it drew on;
with ``ax=None`` it draws on a new pyplot-free figure (see
:func:`landscape.report.new_figure`).  matplotlib is imported only when a figure
is made; no global state (backend, rcParams, style) is touched.
"""

import numpy as np

from ._mpl import new_axes

__all__ = ["KIND_COLORS", "plot_basin_graph", "plot_disconnectivity", "plot_spectra",
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


def _kind_legend(ax, kinds):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ls="", color=_color(k), label=k)
               for k in KIND_COLORS if k in kinds]
    if handles:
        ax.legend(handles=handles, fontsize="small", loc="best", frameon=False)


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


def plot_basin_graph(graph, ax=None):
    """The basin graph: nodes at height = loss, size = basin, colour = kind; saddle -> minimum
    edges with their counts.

    Parameters
    ----------
    graph : networkx.DiGraph
        ``Scan.graph``.
    ax : matplotlib Axes, optional
    """
    import networkx as nx

    ax = new_axes(ax, 6.4, 4.4)
    if graph.number_of_nodes() == 0:
        ax.text(0.5, 0.5, "no critical points", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    pos = _graph_layout(graph)
    basin = np.array([graph.nodes[n].get("basin_count", 0) for n in graph.nodes], float)
    size = 60 + 900 * np.sqrt(basin / max(1.0, basin.max()))
    colors = [_color(graph.nodes[n].get("kind")) for n in graph.nodes]
    nx.draw_networkx_edges(graph, pos, ax=ax, arrows=True, arrowstyle="-|>", arrowsize=10,
                           edge_color="#90a4ae", node_size=size, width=1.0)
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_size=size, node_color=colors,
                           edgecolors="white", linewidths=0.8)
    nx.draw_networkx_labels(graph, pos, ax=ax, font_size=8, font_color="black",
                            labels={n: str(n) for n in graph.nodes})
    ax.set_ylabel("loss (rank)")
    ax.set_xticks([])
    ax.set_title("basin graph: node = critical point (size = basin), edge = saddle \u2192 minimum",
                 fontsize="medium")
    _kind_legend(ax, {graph.nodes[n].get("kind") for n in graph.nodes})
    return ax


def _graph_layout(graph):
    """Nodes ordered by loss vertically (by rank: losses span decades), spread horizontally."""
    nodes = sorted(graph.nodes, key=lambda n: (graph.nodes[n].get("loss", 0.0), n))
    rank = {n: i for i, n in enumerate(nodes)}
    levels = {}
    for n in nodes:
        levels.setdefault(round(graph.nodes[n].get("loss", 0.0), 12), []).append(n)
    pos = {}
    for group in levels.values():
        for j, n in enumerate(group):
            pos[n] = (j - (len(group) - 1) / 2 + 0.35 * (rank[n] % 3 - 1), rank[n])
    return pos


def plot_disconnectivity(points, edges, ax=None):
    """A loss-level diagram: each minimum a vertical line from its loss up to the lowest
    saddle joining it to another minimum; saddles as horizontal bars over the minima they
    connect.

    Parameters
    ----------
    points : sequence of Point
        ``Scan.points``.
    edges : sequence of (source, target, visits, descents)
        ``Scan.edges`` (saddle -> minimum).
    ax : matplotlib Axes, optional
    """
    ax = new_axes(ax, 6.4, 4.2)
    minima = [p for p in points if p.is_minimum]
    if not minima:
        ax.text(0.5, 0.5, "no minima", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    by_id = {p.id: p for p in points}
    xpos = {p.id: i for i, p in enumerate(minima)}
    joins = {}
    for s, t, *_ in edges:
        if s in by_id and t in xpos:
            joins.setdefault(s, set()).add(t)
    top = {p.id: p.loss for p in minima}
    for s, targets in sorted(joins.items(), key=lambda kv: by_id[kv[0]].loss):
        level = by_id[s].loss
        xs = sorted(xpos[t] for t in targets)
        for t in targets:
            top[t] = max(top[t], level)
        if len(xs) > 1:
            ax.plot([xs[0], xs[-1]], [level, level], color=_color(by_id[s].kind), lw=2)
        ax.plot([np.mean(xs)], [level], marker="s", ms=6, color=_color(by_id[s].kind))
        ax.annotate(str(s), (np.mean(xs), level), textcoords="offset points", xytext=(4, 3),
                    fontsize=7)
    for p in minima:
        x = xpos[p.id]
        ax.plot([x, x], [p.loss, top[p.id]], color=_color(p.kind), lw=1.5)
        ax.plot([x], [p.loss], marker="o", ms=4 + 10 * np.sqrt(p.basin_fraction),
                color=_color(p.kind))
    ax.set_xticks(range(len(minima)), [str(p.id) for p in minima], fontsize=8)
    ax.set_xlabel("minimum (id)")
    ax.set_ylabel("loss")
    ax.set_xlim(-0.7, len(minima) - 0.3)
    ax.set_title("loss levels of minima and the saddles joining them", fontsize="medium")
    return ax


def plot_spectra(points, ax=None):
    """Hessian eigenvalues of each critical point (symlog axis), marker size ~ multiplicity."""
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
    if points:
        ax.set_xticks([p.id for p in points])
    _kind_legend(ax, kinds)
    return ax


def plot_end_losses(losses, kinds=None, ax=None, bins=40):
    """Histogram of the end losses of every start (log axis; exact zeros at 1e-16)."""
    ax = new_axes(ax, 6.4, 3.6)
    loss = np.asarray(losses, dtype=float)
    loss = loss[np.isfinite(loss)]
    if loss.size == 0:
        ax.text(0.5, 0.5, "no finite end losses", ha="center", va="center",
                transform=ax.transAxes)
        return ax
    v = np.log10(_plot_loss(loss))
    lo, hi = v.min(), v.max()
    edges = np.linspace(lo - 0.5, hi + 0.5, bins + 1)
    if kinds is None:
        ax.hist(v, bins=edges, color="#1f5f99")
    else:
        kinds = np.asarray(kinds)[np.isfinite(np.asarray(losses, dtype=float))]
        present = [k for k in KIND_COLORS if k in set(kinds)]
        ax.hist([v[kinds == k] for k in present], bins=edges, stacked=True,
                color=[_color(k) for k in present], label=present)
        ax.legend(fontsize="small", frameon=False)
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
    ax = new_axes(ax, 6.4, 4.0)
    marked = False
    for start in sorted(traces)[:max_curves]:
        t = traces[start]
        y = _plot_loss(t[quantity])
        line, = ax.loglog(np.asarray(t["at"]) + 1, y, lw=1, label=f"start {start}")
        key = "plateau_loss" if quantity == "loss" else "plateau_grad_norm"
        if len(t.get("plateau_at", ())):
            ax.loglog(np.asarray(t["plateau_at"]) + 1, _plot_loss(t[key]), ls="", marker="D",
                      ms=5, color=line.get_color(), markeredgecolor="black",
                      label=None if marked else "plateau (visited saddle)")
            marked = True
    ax.set_xlabel("iteration + 1")
    ax.set_ylabel("loss" if quantity == "loss" else "gradient norm")
    ax.set_title(f"{'loss' if quantity == 'loss' else 'gradient norm'} along sample descents",
                 fontsize="medium")
    if traces:
        ax.legend(fontsize="x-small", frameon=False, ncol=2)
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
