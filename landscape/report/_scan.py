"""The report of a scan: ``index.html`` + figures + ``report.json`` + ``graph.graphml``."""

import os
from collections import Counter
from pathlib import Path

import numpy as np

from ..classify import loss_tolerance
from ..convexity import DirectionalTest
from ..graph import disconnectivity, escape_barrier, minima
from . import figures
from ._mpl import new_figure, save_figure
from ._page import Section, Table, json_ready, write_json, write_page

__all__ = ["write_report", "report_data"]

_SETTINGS_SHOWN = ("n_starts", "lr", "gtol", "coarse_gtol", "visit_gtol", "maxiter",
                   "loss_rtol", "xtol", "saddle_step")


def _as_scan(scan_or_store):
    from ..scan import Scan

    if isinstance(scan_or_store, Scan):
        return scan_or_store
    if isinstance(scan_or_store, (str, os.PathLike)):
        return Scan.load(scan_or_store)
    raise TypeError("write_report expects a Scan or the path of a scan's store, got "
                    f"{type(scan_or_store).__name__}")


def _convexity_tests(scan, convexity):
    tests = list(convexity or [])
    for entry in scan.annotations.get("convexity", []):
        tests.append(DirectionalTest.from_dict(entry))
    for t in tests:
        if not isinstance(t, DirectionalTest):
            raise TypeError("convexity must hold DirectionalTest results (from local_convexity, "
                            f"one_point_strong_convexity or pl_condition), got {type(t).__name__}")
    return tests


def _model_description(scan):
    model = scan.annotations.get("model")
    if isinstance(model, dict) and model.get("description"):
        return str(model["description"])
    return str(scan.settings.get("model", {}).get("repr", "unknown model"))


class _Size:
    """What classify's loss tolerance reads of a model: its number of parameters."""

    def __init__(self, n_params):
        self.n_params = int(n_params)


def _known_optima(scan):
    """The known optimal loss of each point that classify found global (``is_global``).

    Classify compared the point's loss with the model's known optimal value within
    ``landscape.classify.loss_tolerance``; the value shown is the loss rounded at that tolerance, so that
    rounding noise (a global minimum at -1.8e-15) is shown as the optimum (0).

    Returns
    -------
    dict
        ``{point id: optimal loss}``, only for the global points.
    """
    size = _Size(scan.settings.get("model", {}).get("n_params", 1))
    out = {}
    for p in scan.points:
        if p.classification.is_global:
            tol = loss_tolerance(size, p.loss)
            out[p.id] = float(np.round(p.loss, int(-np.floor(np.log10(tol))))) + 0.0
    return out


def _escape_barriers(graph):
    """Each minimum's lowest barrier to a lower minimum (:func:`landscape.graph.escape_barrier`),
    by minimum; minima with none (the lowest of their part of the graph) are left out."""
    import networkx as nx

    out = []
    for m in minima(graph):
        try:
            out.append(escape_barrier(graph, m))
        except nx.NetworkXNoPath:
            continue
    return out


def _loss_text(loss, optimum=None):
    return f"{optimum:.6g} (global)" if optimum is not None else f"{loss:.6g}"


def report_data(scan, convexity=()):
    """Everything the report shows, as JSON-ready data (what ``report.json`` holds)."""
    from .. import __version__

    kinds = Counter(scan.outcomes.kind)
    optima = _known_optima(scan)
    tree = disconnectivity(scan.graph)
    points = []
    for p in scan.points:
        c = p.classification
        points.append({
            "id": p.id, "kind": p.kind, "loss": p.loss, "optimal_loss": optima.get(p.id),
            "loss_shown": _loss_text(p.loss, optima.get(p.id)), "grad_norm": c.grad_norm,
            "index": c.index, "nullity": c.nullity, "symmetry_nullity": c.symmetry_nullity,
            "manifold_nullity": c.manifold_nullity, "dimension": p.dimension,
            "n_members": p.n_members, "lambda_min": c.lambda_min, "lambda_max": c.lambda_max,
            "is_global": c.is_global, "basin_count": p.basin_count,
            "basin_fraction": p.basin_fraction, "basin_interval": p.basin_interval,
            "found_by": p.found_by, "first_start": p.first_start,
            "eigenvalues": (None if c.eigenvalues is None else
                            [[v, m] for v, m in figures.eigenvalue_multiplicities(c.eigenvalues)]),
            "has_witness": c.witness is not None,
            "certificate": None if p.certificate is None else {
                f: getattr(p.certificate, f) for f in (
                    "certified", "kind", "index", "index_exact", "radius", "distance_bound",
                    "unique", "lambda_min_lower", "lambda_min_upper", "grad_norm_upper",
                    "message")},
            "isotropy": c.isotropy,
        })
    settings = {k: scan.settings.get(k) for k in _SETTINGS_SHOWN if k in scan.settings}
    return json_ready({
        "landscape_version": __version__,
        "model": _model_description(scan),
        "model_class": scan.settings.get("model", {}).get("class"),
        "n_params": scan.settings.get("model", {}).get("n_params"),
        "settings": settings,
        "seed": scan.settings.get("seed"),
        "annotations": {k: v for k, v in scan.annotations.items()
                        if k not in ("convexity", "certificates")},
        "wall_seconds": scan.wall_seconds,
        "n_starts": scan.n_starts,
        "end_kinds": dict(sorted(kinds.items())),
        "n_points": len(scan.points), "n_minima": len(scan.minima),
        "n_saddles": len(scan.saddles),
        "spurious_fraction": scan.spurious_fraction,
        "spurious_interval": scan.spurious_interval,
        "unresolved_fraction": scan.unresolved_fraction,
        "unresolved_interval": scan.unresolved_interval,
        "unresolved_ends": scan.unresolved_ends,
        "points": points,
        "edges": [{"source": s, "target": t, "visits": v, "descents": d}
                  for s, t, v, d in scan.edges],
        "disconnectivity": {"order": list(tree.order), "joins": [
            {"saddle": j.saddle, "loss": j.loss, "groups": [list(g) for g in j.groups],
             "basin_count": j.basin_count} for j in tree.joins]},
        "loops": [{"minimum": q, "saddle": sid, "element": g.label,
                   "neurons": g.neurons.tolist(), "input_map": g.input_map.tolist(),
                   "sign": g.sign} for q, (sid, g) in sorted(scan.loops.items())],
        "barriers": [{"minimum": b.source, "to": b.target, "saddle": b.saddle, "loss": b.loss,
                      "height": b.height, "path": list(b.path)}
                     for b in _escape_barriers(scan.graph)],
        "convexity": [{"kind": t.kind, "n_directions": t.n_directions, "radii": t.radii,
                       "threshold": t.threshold, "fraction": t.fraction,
                       "fraction_interval": t.fraction_interval,
                       "worst_direction": t.worst_direction,
                       "worst_constants": t.worst_constants,
                       "median_exponent": (float(np.nanmedian(t.exponents))
                                           if np.isfinite(t.exponents).any() else None)}
                      for t in convexity],
    })


def _fmt_interval(iv):
    lo, hi = (0.0 if abs(v) < 1e-12 else v for v in iv)   # Wilson's 0 comes out as ~1e-19
    return f"[{lo:.3g}, {hi:.3g}]"


def write_report(scan_or_store, out_dir, *, self_contained=False, title=None, convexity=None):
    """Write the report of a scan: ``index.html``, figures, ``report.json``, ``graph.graphml``.

    Parameters
    ----------
    scan_or_store : Scan or str or os.PathLike
        A finished scan, or the path of its store.
    out_dir : str or os.PathLike
        Created if missing; files of an earlier report there are replaced.
    self_contained : bool
        Embed the figures in ``index.html`` (one file to send).  The figure
        files are written either way.
    title : str, optional
    convexity : sequence of DirectionalTest, optional
        Direction-wise test results to show, besides those stored with the
        scan (``landscape convexity --store``).

    Returns
    -------
    pathlib.Path
        The path of ``index.html``.

    Examples
    --------
    >>> import numpy as np, tempfile, landscape as ls
    >>> s = ls.scan(ls.ReluTeacherStudent(teacher=np.eye(4), n_students=4), 6, rng=0,
    ...             lr=5 / 4, progress=False)
    >>> ls.write_report(s, tempfile.mkdtemp()).name
    'index.html'
    """
    scan = _as_scan(scan_or_store)
    tests = _convexity_tests(scan, convexity)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = report_data(scan, tests)
    sections = [_points_section(scan, data, out), _graph_section(scan, data, out),
                _descents_section(scan, out)]
    if tests:
        sections.append(_convexity_section(tests, out))
    scan.export_graph(out / "graph.graphml")
    write_json(out / "report.json", data)
    summary = [
        ("model", data["model"]),
        ("parameters", data["n_params"]),
        ("starts", scan.n_starts),
        ("seed", _seed_text(data["seed"])),
        *[(k, v) for k, v in data["settings"].items() if k != "n_starts"],
        ("end points by kind", ", ".join(f"{k}: {n}" for k, n in data["end_kinds"].items())),
        ("distinct critical points", f"{len(scan.points)} ({len(scan.minima)} minima, "
                                     f"{len(scan.saddles)} saddles)"),
        ("spurious fraction", f"{scan.spurious_fraction:.4g} "
                              f"{_fmt_interval(scan.spurious_interval)} (95% Wilson)"),
        ("unresolved ends (at no certified minimum)",
         f"{scan.unresolved_fraction:.4g} {_fmt_interval(scan.unresolved_interval)} (95% Wilson)"
         + "".join(f"{'; ' if i else ': '}{n} {k}"
                   for i, (k, n) in enumerate(scan.unresolved_ends.items()))),
        ("wall time", f"{scan.wall_seconds:.2f} s"),
        ("library", f"landscape {data['landscape_version']}"),
        ("store", scan.path or "in memory"),
    ]
    summary += [(f"config: {k}", v) for k, v in sorted(data["annotations"].get(
        "config", {}).items())]
    return write_page(out, title=title or "Landscape report", subtitle=data["model"],
                      summary=summary, sections=sections, self_contained=self_contained)


def _seed_text(seed):
    if isinstance(seed, dict):
        return str(seed.get("entropy"))
    return str(seed)


def _points_section(scan, data, out):
    rows = [[p["id"], p["kind"], p["loss_shown"], p["grad_norm"], p["index"], p["nullity"],
             p["symmetry_nullity"], p["manifold_nullity"], p["dimension"], p["n_members"],
             p["lambda_min"], p["basin_count"], p["basin_fraction"],
             _fmt_interval(p["basin_interval"]), p["found_by"],
             "" if p.get("isotropy") is None else p["isotropy"]] for p in data["points"]]
    table = Table(columns=["id", "kind", "loss", "|grad|", "index", "nullity", "sym. nullity",
                           "manifold nullity", "dimension", "members", "\u03bb_min", "basin",
                           "fraction", "95% interval", "found by", "isotropy"],
                  rows=rows, caption="Distinct critical points modulo symmetry and critical "
                  "manifolds, by loss: a continuum of critical points (e.g. a neuron split "
                  "between collinear students in any proportion) is one point, with its "
                  "dimension and the number of its members the starts reached. A "
                  "loss equal to the model's known optimum within the classification's "
                  "tolerance is shown as that optimum, marked (global). Isotropy: the "
                  "point's group of neuron and coordinate permutations, in Arjevani and "
                  "Field's notation (\u0394: the same permutation of neurons and coordinates).")
    spec_rows = []
    for p in data["points"]:
        if p["eigenvalues"] is None:
            spec = "not computed (large model: extremes and inertia only)"
        else:
            shown = p["eigenvalues"][:12]
            spec = ", ".join(f"{v:.4g}" + (f" \u00d7{m}" if m > 1 else "") for v, m in shown)
            if len(p["eigenvalues"]) > 12:
                spec += f", \u2026 ({len(p['eigenvalues'])} distinct values)"
        spec_rows.append([p["id"], p["kind"], spec])
    spectra = Table(columns=["id", "kind", "Hessian eigenvalues (\u00d7 multiplicity)"],
                    rows=spec_rows, caption="Hessian spectra, distinct eigenvalues ascending.")
    tables = [table, spectra]
    certified = [p for p in data["points"] if p["certificate"] is not None]
    if certified:
        tables.append(Table(
            columns=["id", "kind", "certified", "index", "radius", "distance bound",
                     "\u03bb_min \u2265", "\u03bb_min \u2264", "statement"],
            rows=[[p["id"], p["kind"], "yes" if c["certified"] else "no", c["index"],
                   c["radius"], c["distance_bound"], c["lambda_min_lower"],
                   c["lambda_min_upper"], c["message"]]
                  for p in certified for c in [p["certificate"]]],
            caption="Computer-assisted proofs (ls.certify, ball arithmetic): a true critical "
            "point lies within the radius of the point shown (within the distance bound), "
            "unique there unless on a critical manifold, of the certified index; the "
            "\u03bb_min bounds hold on the whole ball."))
    fig, ax = new_figure(6.4, 4.0)
    figures.plot_spectra(scan.points, ax=ax)
    f = save_figure(fig, out, "spectra.png", caption="Hessian eigenvalues of every critical "
                    "point; symlog axis, marker size grows with multiplicity.")
    return Section(title="Critical points", id="critical-points", tables=tables,
                   figures=[f], text=(
                       "Every point is certified (|grad L| <= gtol) and classified from its "
                       "Hessian spectrum; symmetric copies are merged and counted together."))


def _graph_section(scan, data, out):
    optima = _known_optima(scan)
    fig, ax = new_figure(*figures.basin_graph_size(scan.graph))
    figures.plot_basin_graph(scan.graph, ax=ax, loss_labels={
        p.id: _loss_text(p.loss, optima[p.id]) if p.id in optima else f"{p.loss:.4g}"
        for p in scan.points})
    g = save_figure(fig, out, "basin_graph.png", caption="Basin graph, one row per loss "
                    "level (lowest at the bottom): node area = basin, colour = kind; edges "
                    "from saddles to the minima they lead to, wider for more starts, drawn "
                    "around the nodes they do not join.")
    fig, ax = new_figure(6.4, 4.2)
    figures.plot_disconnectivity(scan.graph, ax=ax)
    d = save_figure(fig, out, "disconnectivity.png", caption="Disconnectivity: the loss levels "
                    "of the minima and of the saddles that join them into ever larger groups.")
    rows = [[s, scan.points[s].kind, t, scan.points[t].kind, v, n] for s, t, v, n in scan.edges]
    if not rows:
        return Section(title="Basin graph", id="basin-graph", figures=[g, d],
                       text="No saddle \u2192 minimum edges: the scan found no saddle, or no "
                            "descent passed one.")
    table = Table(columns=["saddle", "kind", "minimum", "kind", "visits", "descents"],
                  rows=rows, caption="Edges: starts that passed the saddle and ended at the "
                  "minimum (visits), and descents off the saddle that reached it.")
    tables = [table]
    barriers = [[b["minimum"], _loss_text(scan.points[b["minimum"]].loss,
                                          optima.get(b["minimum"])),
                 b["saddle"], f"{b['loss']:.6g}", f"{b['height']:.4g}", b["to"],
                 " \u2192 ".join(str(n) for n in b["path"])] for b in data["barriers"]]
    if barriers:
        tables.append(Table(columns=["minimum", "loss", "saddle", "saddle loss", "barrier",
                                     "to minimum", "path"], rows=barriers, caption=(
            "The lowest barrier from each minimum to a lower one along the graph: the "
            "saddle at which its group first holds a lower minimum in the disconnectivity "
            "graph, the barrier height (saddle loss minus the minimum's loss) and a path "
            "through saddles no higher.")))
    loops = [[q["minimum"], _loss_text(scan.points[q["minimum"]].loss, optima.get(q["minimum"])),
              q["saddle"], f"{scan.points[q['saddle']].loss:.6g}",
              f"{scan.points[q['saddle']].loss - scan.points[q['minimum']].loss:.4g}",
              q["element"]] for q in data["loops"]]
    if loops:
        tables.append(Table(columns=["minimum", "loss", "saddle", "saddle loss", "barrier",
                                     "group element"], rows=loops, caption=(
            "Self-loops: the lowest saddle joining each minimum to a symmetric copy of "
            "itself, and the group element mapping the minimum one side of the saddle "
            "descends to onto the other side's (neuron and input-coordinate "
            "permutations in cycle notation).")))
    return Section(title="Basin graph", id="basin-graph", figures=[g, d], tables=tables)


def _descents_section(scan, out):
    optima = _known_optima(scan)
    at_optimum = np.isin(scan.outcomes.point, list(optima))
    values = set(optima.values())
    label = f"{values.pop():.6g} (global)" if len(values) == 1 else "optimum (global)"
    fig, ax = new_figure(6.4, 3.6)
    figures.plot_end_losses(scan.outcomes.loss, scan.outcomes.kind, ax=ax,
                            at_optimum=at_optimum, optimum_label=label)
    h = save_figure(fig, out, "end_losses.png", caption="End losses of all starts, by the "
                    "kind of the point each ended at; the ends at the known optimum in one "
                    "bar on the left.")
    figs = [h]
    if scan.traces:
        traces = _sample_traces(scan)
        fig, (a1, a2) = new_figure(10.0, 3.8, ncols=2)
        figures.plot_trajectories(traces, ax=a1, quantity="loss")
        figures.plot_trajectories(traces, ax=a2, quantity="grad_norm")
        figs.append(save_figure(fig, out, "trajectories.png", caption="Loss and gradient norm "
                                "of sample descents (log-log), among them descents that "
                                "visited a saddle; diamonds mark where they passed it."))
    return Section(title="Descents", id="descents", figures=figs)


def _sample_traces(scan, n=10):
    """Up to n recorded descents: up to n/2 that visited a saddle, then one per end point not
    shown yet, then the rest, by start."""
    point_of = dict(zip(scan.outcomes.start.tolist(), scan.outcomes.point.tolist()))
    starts = sorted(scan.traces)
    visiting = [s for s in starts if len(scan.traces[s]["plateau_at"])]
    chosen = visiting[:n // 2]
    seen = {point_of.get(s) for s in chosen}
    for s in starts:
        if point_of.get(s) not in seen and s not in chosen and len(chosen) < n:
            seen.add(point_of.get(s))
            chosen.append(s)
    chosen += [s for s in starts if s not in chosen][:n - len(chosen)]
    return {s: scan.traces[s] for s in sorted(chosen)}


def _convexity_section(tests, out):
    figs = []
    fig, ax = new_figure(6.4, 3.8)
    figures.plot_pass_fraction(tests, ax=ax)
    figs.append(save_figure(fig, out, "convexity_pass.png", caption="Fraction of directions "
                            "whose constant is at least the threshold, per radius."))
    for i, t in enumerate(tests):
        fig, ax = new_figure(6.4, 3.8)
        figures.plot_convexity_constants(t, ax=ax)
        figs.append(save_figure(fig, out, f"convexity_{i}_{t.kind}.png",
                                caption=f"{t.kind}: |constant| vs radius per direction."))
    rows = []
    for t in tests:
        fit = np.asarray(t.exponents, dtype=float)
        fit = fit[np.isfinite(fit)]
        rows.append([t.kind, t.n_directions, f"{min(t.radii):.3g} \u2013 {max(t.radii):.3g}",
                     t.threshold, t.fraction, _fmt_interval(t.fraction_interval),
                     float(np.min(t.worst_constants)) if len(t.worst_constants) else None,
                     float(np.median(fit)) if fit.size else None])
    table = Table(columns=["test", "directions", "radii", "threshold", "pass fraction",
                           "95% interval", "worst constant", "median exponent"], rows=rows)
    return Section(title="Direction-wise convexity", id="convexity", tables=[table],
                   figures=figs, text=(
                       "At y = x + r u for unit directions u: local convexity uses u^T H(y) u, "
                       "OPSC <grad L(y), y - x*>/|y - x*|^2, PL |grad L(y)|^2 / (2 (L(y) - L*)). "
                       "An exponent near 1 means the constant vanishes linearly as r -> 0: the "
                       "condition fails locally in that direction."))
