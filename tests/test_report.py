"""The scan report: files, figures, report.json, escaping, and matplotlib hygiene."""

import html.parser
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import matplotlib
import matplotlib.image
import networkx as nx
import numpy as np
import pytest

import landscape as ls
from landscape.report import _layout, figures
from landscape.report._scan import _known_optima, _sample_traces
from landscape.store import Store

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INJECTED = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """V = I_8, k = 8 (spurious minima and saddles exist), 40 starts, with OPSC results."""
    path = tmp_path_factory.mktemp("scan") / "run.db"
    m = ls.ReluTeacherStudent(teacher=np.eye(8), n_students=8)
    s = ls.scan(m, 40, rng=0, lr=5 / 8, store=path, progress=False)
    x = s.minima[0].x
    tests = [ls.one_point_strong_convexity(m, x, ls.random_directions(m, 6, rng=1),
                                           np.logspace(-3, -1, 4)),
             ls.local_convexity(m, x, ls.random_directions(m, 6, rng=2), np.logspace(-3, -1, 4))]
    with Store.open(path) as st:
        st.set_annotation("config", {"name": INJECTED})
        st.set_annotation("convexity", [t.to_dict() for t in tests])
    return ls.Scan.load(path), tests


@pytest.fixture(scope="module")
def report(scanned, tmp_path_factory):
    s, _ = scanned
    out = tmp_path_factory.mktemp("report")
    index = ls.write_report(s.path, out, title=f"run {INJECTED}")
    return s, out, index


class _Images(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.src, self.ids, self.scripts = [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.src.append(attrs["src"])
        if tag == "script":
            self.scripts += 1
        if "id" in attrs:
            self.ids.append(attrs["id"])


def _parse(text):
    p = _Images()
    p.feed(text)
    return p


def test_report_files_exist_and_every_figure_is_a_valid_image(report):
    _, out, index = report
    assert index == out / "index.html"
    for name in ("index.html", "report.json", "graph.graphml"):
        assert (out / name).is_file(), name
    page = _parse(index.read_text())
    expected = {"spectra.png", "basin_graph.png", "disconnectivity.png", "end_losses.png",
                "trajectories.png", "convexity_pass.png"}
    assert expected <= set(page.src)
    for src in page.src:
        data = (out / src).read_bytes()
        assert data[:8] == PNG_SIGNATURE, src
        img = matplotlib.image.imread(out / src)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100, src
        assert img.std() > 0.01, f"{src} is blank"


def test_report_has_every_section(report):
    _, _, index = report
    ids = _parse(index.read_text()).ids
    for section in ("summary", "critical-points", "basin-graph", "descents", "convexity"):
        assert section in ids


def test_report_json_round_trips_and_matches_the_scan(report):
    s, out, _ = report
    text = (out / "report.json").read_text()
    data = json.loads(text)
    assert json.loads(json.dumps(data)) == data
    assert data == ls.report.report_data(s, [ls.DirectionalTest.from_dict(d)
                                             for d in s.annotations["convexity"]])
    assert [p["id"] for p in data["points"]] == [p.id for p in s.points]
    assert [p["kind"] for p in data["points"]] == [p.kind for p in s.points]
    assert [p["loss"] for p in data["points"]] == [p.loss for p in s.points]
    assert sum(p["basin_count"] for p in data["points"]) == \
        int(np.sum(s.outcomes.point >= 0))
    assert data["spurious_fraction"] == s.spurious_fraction
    assert data["unresolved_fraction"] == s.unresolved_fraction
    assert data["unresolved_ends"] == s.unresolved_ends
    # eigenvalue multiplicities add up to the number of parameters
    for p in data["points"]:
        assert sum(m for _, m in p["eigenvalues"]) == 64
    assert [t["kind"] for t in data["convexity"]] == ["opsc", "local-convexity"]
    G = ls.graph.read_graph(out / "graph.graphml")
    assert sorted(G.nodes) == [p.id for p in s.points]


def test_user_strings_are_escaped(report):
    _, _, index = report
    text = index.read_text()
    assert INJECTED not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert text.count("&lt;script&gt;alert(1)") >= 3           # title, header, config value
    assert _parse(text).scripts == 0


def test_self_contained_report_embeds_every_figure(scanned, tmp_path):
    s, _ = scanned
    index = ls.write_report(s, tmp_path, self_contained=True)
    src = _parse(index.read_text()).src
    assert src and all(v.startswith("data:image/png;base64,") for v in src)


def test_convexity_results_passed_in_are_shown(scanned, tmp_path):
    s, tests = scanned
    bare = ls.Scan(points=s.points, outcomes=s.outcomes, edges=s.edges, settings=s.settings)
    ls.write_report(bare, tmp_path, convexity=tests[:1])
    data = json.loads((tmp_path / "report.json").read_text())
    assert [t["kind"] for t in data["convexity"]] == ["opsc"]
    ls.write_report(bare, tmp_path / "none")
    assert 'id="convexity"' not in (tmp_path / "none" / "index.html").read_text()
    with pytest.raises(TypeError, match="DirectionalTest"):
        ls.write_report(bare, tmp_path / "bad", convexity=["opsc"])


def test_the_summary_counts_ends_at_no_certified_minimum(tmp_path):
    """Issue 15 item 12: beside the spurious fraction, the ends that are not certified minima."""
    s = ls.scan(ls.ReluTeacherStudent(teacher=np.eye(4), n_students=4), 20, rng=0, lr=5 / 4,
                maxiter=30, progress=False)
    n = s.unresolved_ends["not-converged"]
    assert n > 0
    page = ls.write_report(s, tmp_path).read_text()
    assert "unresolved ends (at no certified minimum)" in page
    assert f"{n / 20:.4g} [" in page and f": {n} not-converged" in page
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["unresolved_ends"] == {"not-converged": n}


def test_write_report_refuses_other_inputs(tmp_path):
    with pytest.raises(TypeError, match="Scan or the path"):
        ls.write_report(42, tmp_path)
    with pytest.raises(ls.StoreError, match="no store"):
        ls.write_report(tmp_path / "absent.db", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---- plotting functions -------------------------------------------------------------------
def _plots(s, tests):
    return [
        lambda ax: figures.plot_basin_graph(s.graph, ax=ax),
        lambda ax: figures.plot_disconnectivity(s.graph, ax=ax),
        lambda ax: figures.plot_spectra(s.points, ax=ax),
        lambda ax: figures.plot_end_losses(s.outcomes.loss, s.outcomes.kind, ax=ax),
        lambda ax: figures.plot_trajectories(s.traces, ax=ax),
        lambda ax: figures.plot_pass_fraction(tests, ax=ax),
        lambda ax: figures.plot_convexity_constants(tests[0], ax=ax),
    ]


def test_plot_functions_take_ax_and_return_the_axes(scanned):
    s, tests = scanned
    rc = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    for plot in _plots(s, tests):
        fig, ax = ls.report.new_figure()
        assert plot(ax) is ax
        assert ax.has_data() or ax.collections or ax.lines
        fresh = plot(None)
        assert fresh is not ax and fresh.figure is not fig
        assert fresh.has_data() or fresh.collections or fresh.lines
    assert matplotlib.get_backend() == backend
    assert dict(matplotlib.rcParams) == rc                       # no global style change


def test_trajectory_plot_rejects_an_unknown_quantity(scanned):
    with pytest.raises(ValueError, match="quantity must be"):
        figures.plot_trajectories(scanned[0].traces, quantity="lr")


def test_eigenvalue_multiplicities():
    groups = figures.eigenvalue_multiplicities([2.0, 0.5, 0.5 + 1e-12, -1.0, 2.0])
    assert groups == [(-1.0, 1), (pytest.approx(0.5), 2), (2.0, 2)]


def test_importing_landscape_imports_no_matplotlib_or_jinja2():
    code = ("import sys, landscape; "
            "print(sorted(m for m in ('matplotlib', 'jinja2', 'matplotlib.pyplot') "
            "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def _visit_starts(path):
    with Store.open(path) as st:
        return set(st.read_outcomes().visit_start.tolist())


def test_scan_traces_are_stored_and_independent_of_chunking(scanned):
    s, _ = scanned
    m = ls.ReluTeacherStudent(teacher=np.eye(8), n_students=8)
    again = ls.scan(m, 40, rng=0, lr=5 / 8, progress=False, chunk_size=7)
    traced = sorted(set(range(32)) | _visit_starts(s.path))
    assert sorted(again.traces) == sorted(s.traces) == traced
    for k, t in s.traces.items():
        for name, v in t.items():
            np.testing.assert_array_equal(v, again.traces[k][name])
        # each trace ends at the start's final (polished) loss
        assert t["loss"][-1] == s.outcomes.loss[k]
        assert np.all(np.diff(t["at"]) > 0)
    assert s.wall_seconds > 0


# ---- what the figures must not mislead about (issue 15, item 11) --------------------------
def _graph(losses, edges, basins=None, is_global=()):
    G = nx.DiGraph()
    for i, loss in enumerate(losses):
        G.add_node(i, kind="strict-saddle" if any(e[0] == i for e in edges) else
                   "strict-minimum", loss=float(loss),
                   basin_count=0 if basins is None else int(basins[i]))
        if i in is_global:
            G.nodes[i]["is_global"] = True
    for u, v in edges:
        G.add_edge(u, v, count=1)
    return G


def _draw(fig):
    """Render `fig` with Agg (tick labels, text extents); returns the renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _drawn_graph(G):
    fig, ax = ls.report.new_figure(*figures.basin_graph_size(G))
    assert figures.plot_basin_graph(G, ax=ax) is ax
    _draw(fig)
    nodes = {int(p.get_gid().split()[1]): p for p in ax.patches
             if (p.get_gid() or "").startswith("node ")}
    edges = {tuple(int(v) for v in p.get_gid().split()[1].split("->")): p for p in ax.patches
             if (p.get_gid() or "").startswith("edge ")}
    return ax, nodes, edges


def _distance_to_polyline(centre, polyline):
    a, b = polyline[:-1], polyline[1:]
    ab = b - a
    t = np.clip(np.einsum("ij,ij->i", centre - a, ab) / np.maximum(
        np.einsum("ij,ij->i", ab, ab), 1e-300), 0, 1)
    return float(np.min(np.linalg.norm(a + t[:, None] * ab - centre, axis=1)))


def _assert_edges_clear_of_other_nodes(nodes, edges):
    """Every drawn edge (line and arrow head) stays a node radius away from every node it
    does not join."""
    assert edges
    for (u, v), arrow in edges.items():
        pieces = arrow.get_path().to_polygons(closed_only=False)       # data coordinates
        for n, circle in nodes.items():
            if n in (u, v):
                continue
            centre = np.asarray(circle.center, dtype=float)
            gap = min(_distance_to_polyline(centre, piece) for piece in pieces)
            assert gap >= circle.radius, (f"edge {u}->{v} passes {gap:.3f} from the centre of "
                                          f"node {n} (radius {circle.radius:.3f})")


def test_basin_graph_edges_go_around_the_nodes_of_a_collinear_chain():
    """Losses 0, 1, 2 with edges 2->0, 2->1, 1->0: the straight edge 2->0 would run through
    node 1 and read as the chain 2->1->0."""
    G = _graph([0.0, 1.0, 2.0], [(2, 0), (2, 1), (1, 0)], basins=[10, 3, 0])
    ax, nodes, edges = _drawn_graph(G)
    assert set(edges) == set(G.edges) and set(nodes) == set(G.nodes)
    centres = {n: np.asarray(c.center) for n, c in nodes.items()}
    assert centres[0][1] < centres[1][1] < centres[2][1]                # loss upward, layered
    # the three are stacked: a straight 2 -> 0 would cross node 1, so the check below can fail
    straight = np.array([centres[2], centres[0]])
    assert _distance_to_polyline(centres[1], straight) < nodes[1].radius
    _assert_edges_clear_of_other_nodes(nodes, edges)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2"]


def test_basin_graph_edges_clear_every_node_in_a_crowded_graph():
    rng = np.random.default_rng(3)
    losses = rng.integers(0, 7, size=16).astype(float)
    edges = {(int(a), int(b)) for a, b in rng.integers(0, 16, size=(40, 2))
             if losses[a] > losses[b]}
    G = _graph(losses, sorted(edges), basins=rng.integers(0, 50, size=16))
    _, nodes, drawn = _drawn_graph(G)
    assert set(drawn) == edges
    _assert_edges_clear_of_other_nodes(nodes, drawn)


def test_corridor_routes_are_clear_where_no_arc_is():
    """Five full levels of nine nodes: the fallback route through the corridors between
    levels and a lane beside them clears every node, for any pair of nodes."""
    G = _graph(np.repeat(np.arange(5.0), 9), [], basins=np.arange(45))
    lay = _layout.layered_layout(G)
    others = np.ones(len(lay.nodes), dtype=bool)
    lane = lay.xy[:, 0].max() + 1.0
    for i in range(len(lay.nodes)):
        for j in range(len(lay.nodes)):
            if i == j:
                continue
            route = _layout._corridor_route(lay.xy[i], lay.xy[j], lane)
            mask = others.copy()
            mask[[i, j]] = False
            assert _layout.clearance(route, lay.xy[mask], lay.radius[mask] + _layout.PAD) >= 0
    straight = np.array([lay.xy[4], lay.xy[-5]])            # centre of the top to the bottom
    assert _layout.clearance(straight, lay.xy[9:-9], lay.radius[9:-9]) < 0


def test_every_node_is_large_enough_to_show_its_id():
    """Saddles have empty basins; their nodes still hold their (two-digit) ids."""
    G = _graph([0.0, 0.5, 1.0, 1.5] + [2.0] * 8, [(11, 0), (10, 1), (3, 2)],
               basins=[1000, 10, 1, 0] + [0] * 8)
    ax, nodes, _ = _drawn_graph(G)
    renderer = _draw(ax.figure)
    labels = {int(t.get_gid().split()[1]): t for t in ax.texts
              if (t.get_gid() or "").startswith("label ")}
    assert set(labels) == set(nodes)
    radii = np.array([c.radius for c in nodes.values()])
    assert radii.min() >= _layout.MIN_RADIUS
    assert radii.max() / radii.min() > 1.5                      # size still shows the basin
    for n, circle in nodes.items():
        assert labels[n].get_text() == str(n)
        text = labels[n].get_window_extent(renderer)
        disc = circle.get_window_extent(renderer)
        # the label's box fits inside the disc (its inscribed square is disc / sqrt 2)
        assert text.width <= disc.width / np.sqrt(2) and text.height <= disc.height / np.sqrt(2), \
            (n, text.bounds, disc.bounds)


def _tick_numbers(labels):
    texts = [t.get_text().replace("\u2212", "-") for t in labels if t.get_text()]
    assert texts
    return texts


def test_integer_quantities_get_integer_ticks(scanned):
    """Starts per bar and point ids are integers: no 0.5 ticks, even for a handful of starts."""
    s, _ = scanned
    ax = figures.plot_end_losses([1e-3, 1e-3, 2e-2, 0.5], ["strict-minimum"] * 4)
    _draw(ax.figure)
    for text in _tick_numbers(ax.get_yticklabels()):
        assert re.fullmatch(r"-?\d+", text), text
    ax = figures.plot_spectra(s.points[:2])
    _draw(ax.figure)
    for text in _tick_numbers(ax.get_xticklabels()):
        assert re.fullmatch(r"-?\d+", text), text


def test_the_global_minimum_is_shown_as_the_optimum(report):
    s, out, index = report
    g = next(p for p in s.points if p.classification.is_global)
    assert g.loss != 0.0 and abs(g.loss) < 1e-12     # rounding noise the report must not show
    text = index.read_text()
    row = re.search(rf"<tr><td>{g.id}</td><td>{g.kind}</td><td>([^<]*)</td>", text)
    assert row and row.group(1) == "0 (global)"
    assert f"{g.loss:.6g}" not in text and f"{g.loss:.3g}" not in text
    data = json.loads((out / "report.json").read_text())
    assert data["points"][g.id]["optimal_loss"] == 0.0
    assert data["points"][g.id]["loss"] == g.loss              # the number itself is kept
    assert _known_optima(s) == {p.id: 0.0 for p in s.points
                                         if p.classification.is_global}
    # the figures say it too: the basin graph's lowest level and the end-loss histogram
    ax = figures.plot_basin_graph(s.graph, loss_labels={g.id: "0 (global)"})
    assert ax.get_yticklabels()[0].get_text() == "0 (global)"
    at = np.isin(s.outcomes.point, [g.id])
    ax = figures.plot_end_losses(s.outcomes.loss, s.outcomes.kind, at_optimum=at,
                                 optimum_label="0 (global)")
    assert ax.get_xticklabels()[0].get_text() == "0 (global)"
    where = ax.get_xticks()[0]                      # the optimum's bar holds exactly its ends
    bars = [p for p in ax.patches if p.get_height() > 0]
    assert sum(p.get_height() for p in bars
               if p.get_x() <= where <= p.get_x() + p.get_width()) == at.sum() > 0


@pytest.fixture(scope="module")
def visited(tmp_path_factory):
    """V = I_7, k = 7, 80 starts: some starts beyond the first 32 pass a saddle."""
    path = tmp_path_factory.mktemp("visits") / "run.db"
    m = ls.ReluTeacherStudent(teacher=np.eye(7), n_students=7)
    return ls.scan(m, 80, rng=0, lr=5 / 7, store=path, progress=False)


def test_the_starts_that_visited_a_saddle_are_traced_and_their_diamonds_drawn(visited):
    s = visited
    late = sorted(v for v in _visit_starts(s.path) if v >= 32)
    assert late, "the fixture must have a start beyond the first 32 that visited a saddle"
    for v in late:
        assert v in s.traces and len(s.traces[v]["plateau_at"]) >= 1
    assert set(s.traces) == set(range(32)) | _visit_starts(s.path)
    sample = _sample_traces(s)
    shown = [v for v in sample if len(sample[v]["plateau_at"])]
    assert shown and set(late) & set(sample)
    ax = figures.plot_trajectories(sample)
    diamonds = [ln for ln in ax.lines if ln.get_marker() == "D"]
    assert len(diamonds) == len(shown)
    assert sum(len(ln.get_xdata()) for ln in diamonds) == sum(
        len(sample[v]["plateau_at"]) for v in shown)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "plateau (visited saddle)" in legend


def test_the_disconnectivity_and_barriers_shown_are_the_graph_algorithms(visited, tmp_path):
    """report.json, the barrier table and the figure hold what landscape.graph computes."""
    s = visited
    assert s.saddles, "the fixture must have a saddle that joins the two minima"
    G = s.graph
    d = ls.graph.disconnectivity(G)
    ls.write_report(s, tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["disconnectivity"]["order"] == list(d.order)
    assert [(j["saddle"], j["loss"], j["groups"]) for j in data["disconnectivity"]["joins"]] == \
        [(j.saddle, j.loss, [list(g) for g in j.groups]) for j in d.joins]
    spurious = s.spurious_minima[0].id
    b = ls.graph.escape_barrier(G, spurious)
    assert data["barriers"] == [{"minimum": spurious, "to": b.target, "saddle": b.saddle,
                                 "loss": b.loss, "height": b.height, "path": list(b.path)}]
    assert b.target == s.minima[0].id and b.height == b.loss - s.points[spurious].loss > 0
    page = (tmp_path / "index.html").read_text()
    assert "The lowest barrier from each minimum to a lower one" in page
    assert " \u2192 ".join(map(str, b.path)) in page
    ax = figures.plot_disconnectivity(G)
    x = {m: i for i, m in enumerate(d.order)}
    for j in d.merges:      # one bar per merge at its loss, over its (single-minimum) groups
        (bar,) = [ln for ln in ax.lines if ln.get_gid() == f"join {j.saddle}"]
        assert list(bar.get_ydata()) == [j.loss, j.loss]
        assert list(bar.get_xdata()) == [min(x[g[0]] for g in j.groups),
                                         max(x[g[0]] for g in j.groups)]


def test_a_start_that_stopped_beside_a_saddle_is_marked_where_it_stopped():
    """A visit without a plateau (descent stopped at visit_gtol where the Hessian is
    indefinite) is marked at the stop."""
    from landscape.scan.pipeline import descent_traces

    d = types.SimpleNamespace(
        record_at=np.array([0.0, 1.0, 3.0]), record_loss=np.array([[3.0, 2.0, 1.0]] * 2),
        record_grad_norm=np.array([[1.0, 0.5, 0.1]] * 2), nit=np.array([3, 3]),
        loss=np.array([1.0, 1.0]), grad_norm=np.array([1e-4, 1e-4]),
        plateau_start=np.zeros(0, dtype=int), plateau_at=np.zeros(0),
        plateau_loss=np.zeros(0), plateau_grad_norm=np.zeros(0))
    traces = descent_traces(d, np.array([40, 41]), np.array([9, 9]), np.zeros(2),
                            np.zeros(2), np.array([1]))
    assert [t["start"] for t in traces] == [41]
    np.testing.assert_array_equal(traces[0]["plateau_at"], [3.0])
    np.testing.assert_array_equal(traces[0]["plateau_grad_norm"], [1e-4])


def test_a_continuum_of_minima_is_one_row_with_its_dimension_and_members(tmp_path):
    """k = n + 1: the split global minima are one point of dimension 1 in the report."""
    m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=5)
    s = ls.scan(m, 12, rng=0, lr=1.0, progress=False)
    ls.write_report(s, tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    glob = [p for p in data["points"] if p["is_global"]]
    assert len(glob) == 1
    assert glob[0]["dimension"] == 1 and glob[0]["manifold_nullity"] >= 0
    assert glob[0]["n_members"] == s.points[glob[0]["id"]].n_members > 1
    page = (tmp_path / "index.html").read_text()
    assert "manifold nullity" in page and "members" in page
