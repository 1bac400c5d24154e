"""Self-loops of the basin graph: saddles joining a minimum to a symmetric copy of itself,
labelled by the group element relating the two copies (issue 19).

``aligning_element`` returns the element g that ``align`` applies; on a real network
(V = I_3, k = 3) an index-1 saddle whose two sides descend to the global minimum W = I and
its copy with two neurons exchanged becomes a self-loop of the minimum, labelled by that
exchange, in the scan's graph, its store, its JSON form and its report.
"""

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

import landscape as ls

GTOL = 1e-12
# a group element maps a point onto its copy exactly up to the rounding of the features
# (rotations by orthogonal maps, balancing): ~1e-15 |x|
COPY_ATOL = 1e-12
# the two sides' minima are polished to |grad L| <= 1e-12 with lambda_min ~ 0.09 (W = I):
# each is within ~1e-11 of the exact minimum, so copies agree to far better than 1e-8
SIDES_ATOL = 1e-8
# the V = I_3, k = 3 saddle (found here; loss to the digits the solver reaches at 1e-12)
I3_SADDLE_LOSS = 0.0720656011433
I3_LOSS_ATOL = 1e-11


def _copy(W, rng, permute_inputs):
    perm = rng.permutation(W.shape[0])
    cols = rng.permutation(W.shape[1]) if permute_inputs else np.arange(W.shape[1])
    return W[perm][:, cols]


@pytest.mark.parametrize("k", [3, 8])            # S_3 enumerated; S_8 as coordinate permutations
def test_aligning_element_maps_a_copy_back(k):
    rng = np.random.default_rng(k)
    m = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    W = rng.standard_normal((k, k))
    x, y = m.flatten(W), m.flatten(_copy(W, rng, True))
    g = ls.aligning_element(m, x, y)
    assert g.distance <= COPY_ATOL * np.linalg.norm(x)
    assert_allclose(g.apply(m, y), x, rtol=0, atol=COPY_ATOL)
    assert_allclose(g.apply(m, y), ls.align(m, x, y), rtol=0, atol=0)
    Q = g.input_map                                 # V = I: a permutation matrix
    assert set(np.unique(Q)) <= {0.0, 1.0} and np.all(Q.sum(axis=0) == 1)


def test_aligning_element_with_a_continuous_part_and_the_odd_symmetry():
    rng = np.random.default_rng(1)
    # a rank-2 teacher in R^4: every rotation of the 2-dimensional complement is a symmetry
    V = rng.standard_normal((2, 4))
    m = ls.ReluTeacherStudent(teacher=V, n_students=3)
    W = rng.standard_normal((3, 4))
    B = np.linalg.qr(np.hstack([V.T, rng.standard_normal((4, 2))]))[0]
    theta = 0.7
    R = np.eye(4)
    R[2:, 2:] = [[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]
    Q = B @ R @ B.T                                 # rotates the complement of span(V)
    x, y = m.flatten(W), m.flatten((W @ Q.T)[[2, 0, 1]])
    g = ls.aligning_element(m, x, y)
    assert_allclose(g.apply(m, y), x, rtol=0, atol=COPY_ATOL)
    assert_allclose(g.input_map @ g.input_map.T, np.eye(4), atol=1e-12)
    assert g.label.startswith("neurons (") and g.label.endswith("inputs orthogonal")
    # odd linear target: (a, W) -> (-a, -W) and the rescalings
    t = ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget([1.0, 0.0]))
    a, W = np.array([1.0, -1.0]), np.array([[1.0, 0.3], [-1.0, 0.5]])
    c = np.array([2.0, 0.25])
    x = t.flatten((a, W))
    y = t.flatten((-a[::-1] / c, -W[::-1] * c[:, None]))          # swapped, negated, rescaled
    g = ls.aligning_element(t, x, y)
    assert g.sign == -1 and g.label.startswith("negated; neurons (0 1)")
    # with rescalings g y is the balanced form (|a_i| = |w_i|) of x's orbit representative
    balanced = ls.aligning_element(t, x, x).apply(t, x)
    assert_allclose(g.apply(t, y), balanced, rtol=0, atol=COPY_ATOL)
    assert_allclose(t.loss(balanced), t.loss(x), rtol=1e-13)


def test_labels_and_identity():
    m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    W = np.array([[0.9, 0.1, 0.0], [0.2, 1.1, 0.0], [0.0, 0.3, 0.8]])
    x = m.flatten(W)
    assert ls.aligning_element(m, x, x).is_identity
    assert ls.aligning_element(m, x, x).label == "identity"
    g = ls.aligning_element(m, x, m.flatten(W[[1, 2, 0]][:, [2, 0, 1]]))
    assert not g.is_identity
    assert g.label == "neurons (0 1 2); inputs (0 2 1)"
    assert_allclose(g.apply(m, m.flatten(W[[1, 2, 0]][:, [2, 0, 1]])), x, rtol=0, atol=0)
    assert ls.GroupElement.from_dict(json.loads(json.dumps(g.to_dict()))).label == g.label
    with pytest.raises(ValueError, match="model it was found for"):
        g.apply(ls.ReluTeacherStudent(teacher=np.eye(2), n_students=2), np.zeros(4))


# ---- a real self-loop: V = I_3, k = 3 -------------------------------------------------
@pytest.fixture(scope="module")
def i3_saddle():
    """An index-1 saddle of V = I_3, k = 3: neurons 0 and 1 on the plane x_0 = x_1 (one long,
    one short), found from a start that breaks the exchange of the two neurons."""
    m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    W = np.eye(3)
    W[0, :2], W[1, :2] = 0.8, 0.1
    p = ls.find_saddle(m, m.flatten(W), index=1, gtol=GTOL)
    assert p.success and p.classification.index == 1, p.message
    return m, p


def _sides(m, x, step=1e-3):
    """The minima gradient descent reaches from x +- step v (v the negative mode)."""
    w, V = np.linalg.eigh(m.hess(x))
    v = V[:, 0]
    d = ls.descend_and_polish(m, np.vstack([x + step * v, x - step * v]), lr=1.0, gtol=GTOL)
    assert d.success.all()
    return d.x


def test_the_i3_saddle_joins_the_global_minimum_to_a_copy(i3_saddle):
    m, p = i3_saddle
    assert_allclose(p.loss, I3_SADDLE_LOSS, atol=I3_LOSS_ATOL)
    W = m.unflatten(p.x)
    assert_allclose(W[:2, 0], W[:2, 1], atol=1e-10)        # on the plane x_0 = x_1
    plus, minus = _sides(m, p.x)
    assert abs(m.loss(plus)) < 1e-14 and abs(m.loss(minus)) < 1e-14     # both global minima
    assert np.linalg.norm(plus - minus) > 1.0              # ... and different copies of it
    g = ls.aligning_element(m, plus, minus)
    assert_allclose(g.apply(m, minus), plus, rtol=0, atol=SIDES_ATOL)


@pytest.fixture(scope="module")
def loop_scan(i3_saddle, tmp_path_factory):
    """A scan starting at the saddle (it stays there: a critical end point) and at 3 Xavier
    starts (they reach W = I); the descents off the saddle find the self-loop."""
    m, p = i3_saddle
    X0 = np.vstack([p.x, m.sample_init(3, rng=1)])
    path = tmp_path_factory.mktemp("loops") / "run.db"
    return m, p, ls.scan(m, 4, rng=0, init=X0, progress=False, store=str(path)), path


def test_the_scan_graph_keeps_the_self_loop_and_its_element(loop_scan):
    m, p, s, _ = loop_scan
    (minimum,) = [q.id for q in s.points if q.classification.is_minimum]
    (saddle,) = [q.id for q in s.points if q.kind == "strict-saddle"]
    assert_allclose(s.points[saddle].loss, I3_SADDLE_LOSS, atol=I3_LOSS_ATOL)
    G = s.graph
    assert G.has_edge(minimum, minimum) and G.has_edge(saddle, minimum)
    attrs = G.edges[minimum, minimum]
    assert attrs["saddle"] == saddle and attrs["descents"] == 1
    sid, g = s.loops[minimum]
    assert sid == saddle and attrs["element"] == g.label and not g.is_identity
    # the element maps one side's minimum onto the other's (which side is "+" depends on
    # the sign of the computed eigenvector, so try both orders)
    plus, minus = _sides(m, s.points[saddle].x)
    err = min(np.max(np.abs(g.apply(m, minus) - plus)), np.max(np.abs(g.apply(m, plus) - minus)))
    assert err <= SIDES_ATOL


def test_the_self_loop_survives_the_store_json_and_graph_files(loop_scan, tmp_path):
    m, p, s, path = loop_scan
    for other in (ls.Scan.load(str(path)), ls.Scan.from_dict(json.loads(json.dumps(s.to_dict())))):
        assert other.loops.keys() == s.loops.keys()
        for q in s.loops:
            assert other.loops[q][0] == s.loops[q][0]
            assert_allclose(other.loops[q][1].input_map, s.loops[q][1].input_map, rtol=0, atol=0)
            assert np.array_equal(other.loops[q][1].neurons, s.loops[q][1].neurons)
        assert list(other.graph.edges(data=True)) == list(s.graph.edges(data=True))
    s.export_graph(tmp_path / "g.graphml")
    H = ls.graph.read_graph(tmp_path / "g.graphml")
    q = next(iter(s.loops))
    assert H.edges[q, q]["element"] == s.loops[q][1].label


def test_the_report_lists_the_self_loop(loop_scan, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    _, _, s, _ = loop_scan
    ls.write_report(s, tmp_path / "report")
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    (loop,) = data["loops"]
    q = next(iter(s.loops))
    assert loop["minimum"] == q and loop["element"] == s.loops[q][1].label
    assert s.loops[q][1].label in (tmp_path / "report" / "index.html").read_text()
