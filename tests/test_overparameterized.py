"""Over-parameterised landscapes: critical manifolds, the classifier on them, scans that end
where gradient descent ends (issue 14)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from threadpoolctl import threadpool_limits

import landscape as ls
from landscape.critical import newton_batch
from landscape.models._kernels import row_norms

GTOL = 1e-12
# Rounding of a closed-form loss or gradient at O(1) parameters (tens of terms of size ~1).
ROUND = 1e-13


def split(W, j, alpha):
    """Neuron j -> (alpha w_j, (1 - alpha) w_j), the second half appended as the last row."""
    W2 = np.vstack([W, (1 - alpha) * W[j]])
    W2[j] = alpha * W[j]
    return W2


def one_sided_fit(rho, beta):
    """Two-layer network with neurons aligned with +-beta: a_i |w_i| = rho_i, a_i^2 = |w_i|^2."""
    bhat = beta / np.linalg.norm(beta)
    r = np.sqrt(np.abs(rho))
    return np.sign(rho) * r, r[:, None] * bhat


# ---- the model hooks ---------------------------------------------------------------------

def test_split_tangents_are_zero_modes_and_keep_the_point_critical():
    m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=6)
    W = np.vstack([0.2 * np.eye(4)[0], np.eye(4)[1:], 0.5 * np.eye(4)[0], 0.3 * np.eye(4)[0]])
    x = m.flatten(W)
    assert m.loss(x) <= ROUND and np.linalg.norm(m.grad(x)) <= ROUND
    T = m.manifold_tangents(x)
    assert T.shape == (2, m.n_params)                  # a group of 3 collinear students
    for t in T:
        assert np.linalg.norm(m.hvp(x, t)) <= ROUND
        for s in (0.05, -0.1):                         # along the simplex: still critical
            assert np.linalg.norm(m.grad(x + s * t)) <= ROUND
    key = m.merge_collinear(x).reshape(6, 4)
    assert_allclose(key, np.vstack([np.eye(4), np.zeros((2, 4))]), atol=ROUND)
    assert m.smooth_radius(x) == pytest.approx(0.2)


def test_two_layer_tangents_redistribute_output_weight():
    beta = np.array([1.0, 0.0, 0.0])
    m = ls.TwoLayerReLU(n_hidden=3, target=ls.LinearTarget(beta))
    a, W = one_sided_fit(np.array([0.5, 0.5, -1.0]), beta)
    W[2] = -W[2]                                       # the negative side fits -sigma(-x1)
    x = m.flatten((a, W))
    assert m.loss(x) <= ROUND and np.linalg.norm(m.grad(x)) <= ROUND
    T = m.manifold_tangents(x)
    assert T.shape == (1, m.n_params)
    assert np.linalg.norm(m.hvp(x, T[0])) <= ROUND
    assert np.linalg.norm(m.grad(x + 0.1 * T[0])) <= ROUND
    a_key, _ = m.unflatten(m.merge_collinear(x))
    assert sorted(np.round(a_key, 12).tolist()) == [-1.0, 0.0, 1.0]
    assert m.smooth_radius(x) == pytest.approx(np.sqrt(0.5))


def test_align_collinear_keeps_the_group_sum_and_skips_other_rows():
    m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=4)
    W = np.vstack([0.3 * np.eye(3)[0], np.eye(3)[1:], 0.7 * np.eye(3)[0]])
    W[0] += [0.0, 1e-3, 0.0]
    X = np.vstack([m.flatten(W), m.sample_init(1, rng=0)])
    Y, changed = m.align_collinear(X, 1e-2)
    assert changed.tolist() == [True, False]
    Wy = m.unflatten(Y[0])
    assert_allclose(Wy[0] + Wy[3], W[0] + W[3], rtol=0, atol=1e-15)
    cos = Wy[0] @ Wy[3] / np.linalg.norm(Wy[0]) / np.linalg.norm(Wy[3])
    assert cos == pytest.approx(1.0, abs=1e-15)
    assert_allclose(Y[1], X[1], rtol=0, atol=0)


def test_newton_lands_on_the_continuum_without_travelling_along_it():
    """From where gradient descent hands over, Levenberg-Marquardt steps end on the split
    continuum at GD's split ratio: a plain Newton solve moved mass along the nearly singular
    split direction and drove the small half to ~1e-10 (the continuum's non-smooth end)."""
    m = ls.ReluTeacherStudent(teacher=np.eye(6), n_students=7)
    x0 = m.sample_init(1, rng=np.random.SeedSequence(0, spawn_key=(35,)))
    d = ls.descend(m, x0, lr=5 / 7, gtol=3e-5, maxiter=10_000)
    r = newton_batch(m, d.x, gtol=GTOL)
    X, gn, ok = r.x, r.grad_norm, r.success
    assert ok[0] and gn[0] <= GTOL and abs(m.loss(X[0])) <= ROUND
    small = row_norms(m.unflatten(d.x[0])).min()
    assert row_norms(m.unflatten(X[0])).min() == pytest.approx(small, rel=1e-2)
    assert len(m.manifold_tangents(X[0])) == 1         # exactly collinear: on the manifold


# ---- classification on manifolds ----------------------------------------------------------

def test_circle_of_minima_is_a_degenerate_minimum_by_morse_bott():
    circle = ls.AutogradModel(lambda z: (z[0] ** 2 + z[1] ** 2 - 1) ** 2, 2)
    for x in ([1.0, 0.0], [0.6, -0.8]):
        c = ls.classify(circle, x)
        assert (c.kind, c.index, c.nullity, c.manifold_nullity) == (
            "degenerate-minimum", 0, 0, 1)
        assert "Morse-Bott" in c.message and c.witness is None


def test_a_cubic_valley_is_not_mistaken_for_a_manifold():
    model = ls.AutogradModel(lambda z: z[0] ** 3 + z[1] ** 2, 2)
    c = ls.classify(model, [0.0, 0.0])
    assert (c.kind, c.manifold_nullity) == ("non-strict-saddle", 0)


@pytest.fixture(scope="module")
def spurious_minima():
    """One spurious minimum of V = I_k, k = n, for k = 7..10 (Safran et al. 2021)."""
    out = {}
    for k in (7, 8, 9, 10):
        m = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
        p = ls.descend_and_polish(m, m.sample_init(60, rng=1), lr=5 / k)
        j = np.flatnonzero(p.success & (p.loss > 1e-6))
        assert j.size, k
        out[k] = p.x[j[0]]
    return out


@pytest.mark.parametrize("k", [7, 8, 9, 10])
def test_splits_of_spurious_minima_are_strict_saddles_on_a_manifold(spurious_minima, k):
    m = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k + 1)
    W = spurious_minima[k].reshape(k, k)
    X = np.array([m.flatten(split(W, 0, a)) for a in (0.5, 0.25, 0.1)])
    for x in X:
        c = ls.classify(m, x, gtol=GTOL)
        assert c.kind == "strict-saddle" and c.index >= 1
        assert c.manifold_nullity == 1                  # the split direction: a manifold
    # the continuum, and its images under relabelling, deduplicate to one point
    perm = np.random.default_rng(k).permutation(k)
    relabelled = m.flatten(split(W, 0, 0.3)[np.r_[perm, k]][:, perm])
    d = ls.deduplicate(m, np.vstack([X, relabelled]))
    assert d.labels.tolist() == [0, 0, 0, 0]
    assert d.n_members.tolist() == [4]


def test_split_continuum_of_global_minima_is_one_point():
    m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=5)
    X = [m.flatten(split(np.eye(4), j, a)) for j in (0, 2) for a in (0.5, 0.2, 1e-3)]
    X.append(m.flatten(np.vstack([np.eye(4), 1e-14 * np.ones(4)])))   # the end: a dead neuron
    d = ls.deduplicate(m, X)
    assert d.labels.tolist() == [0] * 7
    assert d.representative[0] == 0                   # the most regular member stands for it


BETA = np.array([1.0, 0.0, 0.0])


@pytest.mark.parametrize("a2", [1e-2, 1e-3, 1e-4, 1e-5, 1e-6])
def test_equal_sign_one_sided_fits_with_a_small_neuron_are_never_saddles(a2):
    """All a_i > 0: f >= 0, so L >= |beta|^2/4 = L(x) on the ball of radius min a_i (Tinaz et
    al. 2026): a local minimum.  A witness that flips the sign of a_2 lies outside that ball."""
    m = ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget(BETA))
    x = m.flatten(one_sided_fit(np.array([1 - a2 ** 2, a2 ** 2]), BETA))
    assert np.linalg.norm(m.grad(x)) <= GTOL and m.loss(x) == pytest.approx(0.25, abs=ROUND)
    for radius in (0.1, 0.01):
        c = ls.classify(m, x, radius=radius)
        assert c.kind in ("degenerate", "degenerate-minimum"), (a2, radius, c.message)
        assert c.witness is None


def test_wrong_sign_one_sided_fit_is_a_saddle_with_a_persisting_witness():
    m = ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget(BETA))
    x = m.flatten(one_sided_fit(np.array([1.5, -0.5]), BETA))
    c = ls.classify(m, x)
    assert c.kind == "non-strict-saddle" and c.manifold_nullity == 1
    assert m.loss(c.witness) < c.loss - c.margin
    # descent was followed down well inside the ball where no output weight changes sign
    assert c.witness_floor <= 0.5 * m.smooth_radius(x)
    assert c.witness_floor <= 0.05 * c.radius          # persisted over 1.5 decades


def test_quartic_is_not_a_saddle_and_the_trap_is():
    quartic = ls.AutogradModel(lambda z: z[0] ** 4 + z[1] ** 2, 2)
    assert ls.classify(quartic, [0.0, 0.0]).kind == "degenerate"
    trap = ls.AutogradModel(lambda z: (z[1] - z[0] ** 2) * (z[1] - 2 * z[0] ** 2), 2)
    c = ls.classify(trap, [0.0, 0.0])
    assert c.kind == "non-strict-saddle"
    # the witness at the largest radius: far above rounding, the same on every machine
    assert np.linalg.norm(c.witness) == pytest.approx(0.1, rel=1e-9)
    assert c.witness_loss < -1e-5


# ---- verdicts that rounding cannot change --------------------------------------------------

def _rounding_cases(spurious_minima):
    W8 = spurious_minima[8].reshape(8, 8)
    ts = ls.ReluTeacherStudent(teacher=np.eye(8), n_students=9)
    tl = ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget(BETA))
    trap = ls.AutogradModel(lambda z: (z[1] - z[0] ** 2) * (z[1] - 2 * z[0] ** 2), 2)
    circle = ls.AutogradModel(lambda z: (z[0] ** 2 + z[1] ** 2 - 1) ** 2, 2)
    return [
        (ls.ReluTeacherStudent(teacher=np.eye(8), n_students=8), W8.ravel()),
        (ts, ts.flatten(split(W8, 0, 0.5))),
        (ts, ts.flatten(split(np.eye(8), 0, 0.3))),
        (ts, ts.flatten(split(np.eye(8), 0, 1e-9))),          # a half of norm 1e-9
        (tl, tl.flatten(one_sided_fit(np.array([1 - 1.5e-7, 1.5e-7]), BETA))),
        (tl, tl.flatten(one_sided_fit(np.array([1.5, -0.5]), BETA))),
        (trap, np.zeros(2)),
        (circle, np.array([0.6, 0.8])),
    ]


def test_verdicts_do_not_change_with_ulps_or_blas_threads(spurious_minima):
    """The BLAS kernel and numpy's SIMD paths round differently on other CPUs; a few ulps of
    the input and the thread count stand in for them on this one."""
    signs = np.random.default_rng(7)
    for model, x in _rounding_cases(spurious_minima):
        verdicts = set()
        for threads in (1, 2):
            with threadpool_limits(threads):
                for ulps in (0, 3, -5):
                    s = signs.choice([-1.0, 1.0], size=x.size)
                    y = x * (1 + ulps * np.finfo(float).eps * s)
                    c = ls.classify(model, y, gtol=1e-10)
                    verdicts.add((c.kind, c.index, c.nullity, c.manifold_nullity))
        assert len(verdicts) == 1, (model, verdicts)


# ---- scans ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_one_neuron_more_gives_one_global_point_and_only_minima():
    m = ls.ReluTeacherStudent(teacher=np.eye(6), n_students=7)
    s = ls.scan(m, 200, rng=0, lr=5 / 7, progress=False)
    glob = [p for p in s.points if p.classification.is_global]
    assert len(glob) == 1
    assert glob[0].basin_count + sum(p.basin_count for p in s.spurious_minima) == 200
    assert all(k in ("strict-minimum", "degenerate-minimum") for k in s.outcomes.kind)
    assert np.all(s.outcomes.grad_norm <= 1e-10)
    assert glob[0].dimension >= 1 and glob[0].n_members > 1


def test_scan_results_do_not_depend_on_the_chunk_size():
    m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=5)
    a = ls.scan(m, 24, rng=3, lr=1.0, progress=False, chunk_size=5)
    b = ls.scan(m, 24, rng=3, lr=1.0, progress=False, chunk_size=24)
    assert a.outcomes.point.tolist() == b.outcomes.point.tolist()
    assert [(p.kind, p.dimension, p.n_members) for p in a.points] == [
        (p.kind, p.dimension, p.n_members) for p in b.points]
    assert_allclose(a.outcomes.x, b.outcomes.x, rtol=0, atol=0)


@pytest.mark.slow
def test_a_start_that_passes_a_weak_saddle_ends_where_gradient_descent_ends():
    """V = I_17, k = 17, seed 2021, start 366: plain GD with step 5/17 reaches the spurious
    minimum F = 0.0247664 after 17,869 steps; the scan used to end at the strict saddle
    F = 0.05388 it passes (lambda_min = -9.5e-4), pulled back by Newton after every push."""
    k = 17
    m = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    x0 = m.sample_init(1, rng=np.random.SeedSequence(2021, spawn_key=(366,)),
                       scale=1 / np.sqrt(k))
    s = ls.scan(m, 1, rng=0, init=x0, lr=5 / k, progress=False)
    assert s.outcomes.kind == ["strict-minimum"]
    assert s.outcomes.loss[0] == pytest.approx(0.0247664, abs=1e-7)


def test_one_sided_fits_of_a_two_layer_scan_are_one_point_on_their_manifold():
    """Two neurons, linear target (Tinaz et al. 2026): starts with equal output signs stop at
    the one-sided fit L = |beta|^2/4, a continuum (the two aligned neurons share a_i |w_i|).
    Its ends are moved exactly onto the manifold, and its copies under the odd symmetry
    (a, W) -> (-a, -W) (fitting sigma(beta.x) or -sigma(-beta.x)) are one point."""
    m = ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget(np.eye(4)[0]))
    s = ls.scan(m, 20, rng=0, progress=False)
    stuck = [p for p in s.points if p.loss == pytest.approx(0.25, abs=1e-12)]
    assert len(stuck) == 1 and stuck[0].basin_count >= 2
    assert stuck[0].dimension == 1 and stuck[0].classification.manifold_nullity == 1
    ends = s.outcomes.x[s.outcomes.point == stuck[0].id]
    for x in ends:
        assert len(m.manifold_tangents(x)) == 1      # exactly collinear: on the manifold
