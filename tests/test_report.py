"""The scan report: files, figures, report.json, escaping, and matplotlib hygiene."""

import html.parser
import json
import subprocess
import sys
from pathlib import Path

import matplotlib
import matplotlib.image
import numpy as np
import pytest

import landscape as ls
from landscape.report import figures
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
        lambda ax: figures.plot_disconnectivity(s.points, s.edges, ax=ax),
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


def test_scan_traces_are_stored_and_independent_of_chunking(scanned):
    s, _ = scanned
    m = ls.ReluTeacherStudent(teacher=np.eye(8), n_students=8)
    again = ls.scan(m, 40, rng=0, lr=5 / 8, progress=False, chunk_size=7)
    assert sorted(again.traces) == sorted(s.traces) == list(range(32))
    for k, t in s.traces.items():
        for name, v in t.items():
            np.testing.assert_array_equal(v, again.traces[k][name])
        # each trace ends at the start's final (polished) loss
        assert t["loss"][-1] == s.outcomes.loss[k]
        assert np.all(np.diff(t["at"]) > 0)
    assert s.wall_seconds > 0
