"""Classification of critical points: prescribed spectra, higher-order traps, points from the papers."""

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

import landscape as ls
from landscape.classify import KINDS, Classification, classify

LAMBDA_MIN_IDENTITY = 0.25 - 1 / (2 * np.pi)   # DESIGN.md reference value at W = V = I
GRAD_ATOL = 1e-12
LOSS_ATOL = 1e-12


def quadratic(eigenvalues, seed=0):
    """L(x) = x^T Q diag(lambda) Q^T x / 2 with a random orthogonal Q."""
    rng = np.random.default_rng(seed)
    n = len(eigenvalues)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = Q @ np.diag(eigenvalues) @ Q.T
    A = 0.5 * (A + A.T)
    return ls.AutogradModel(lambda x: 0.5 * x @ A @ x, n), Q


def split(W, j):
    """Replace neuron j by two halves (w/2, w/2): a critical point of the k+1 student."""
    W2 = np.vstack([W, W[j] / 2])
    W2[j] = W[j] / 2
    return W2


# ---- prescribed spectra --------------------------------------------------------------

@pytest.mark.parametrize("eigenvalues, kind, index, nullity, manifold", [
    ([1.0, 2.0, 3.0, 0.5], "strict-minimum", 0, 0, 0),
    ([1.0, -2.0, 3.0, 0.5], "strict-saddle", 1, 0, 0),
    ([-1.0, -2.0, -3.0], "maximum", 3, 0, 0),
    # a saddle: its zero mode is not tested by continuation (the verdict does not need it)
    ([1.0, -2.0, 0.0, 0.5], "strict-saddle", 1, 1, 0),
    # an exact zero eigenvalue at index 0: a line of minima (Morse-Bott)
    ([1.0, 2.0, 0.0, 0.5], "degenerate-minimum", 0, 0, 1),
    # tau = max(1e-10, 1e-9 * 3): +-1e-10 lies inside the band, 1e-7 outside; the
    # +-1e-10 directions are not flat (the gradient grows as 1e-10 r), so no manifold
    ([3.0, 1e-10, -1e-10, 1e-7], "degenerate", 0, 2, 0),
    ([3.0, 1.0, 1e-7, 2e-7], "strict-minimum", 0, 0, 0),
])
def test_prescribed_spectra(eigenvalues, kind, index, nullity, manifold):
    model, _ = quadratic(eigenvalues)
    c = classify(model, np.zeros(len(eigenvalues)))
    assert c.kind == kind
    assert c.index == index
    assert c.nullity == nullity
    assert c.manifold_nullity == manifold
    assert_allclose(c.eigenvalues, np.sort(eigenvalues), atol=1e-12)
    assert c.witness is None


def test_flat_quadratic_is_a_line_of_minima_known_optimum_or_not():
    model, _ = quadratic([2.0, 0.0, 1.0])
    c = classify(model, np.zeros(3))
    assert c.kind == "degenerate-minimum"
    assert (c.nullity, c.manifold_nullity) == (0, 1)
    assert "Morse-Bott" in c.message
    # with the optimum known, the value certifies it (no continuation needed)
    known = ls.AutogradModel(model.loss_fn, 3, optimal_loss=0.0)
    c = classify(known, np.zeros(3))
    assert (c.kind, c.nullity, c.is_global) == ("degenerate-minimum", 1, True)


def test_a_nearly_flat_quadratic_is_not_a_manifold_but_a_known_optimum_certifies_it():
    model, _ = quadratic([2.0, 1e-10, 1.0])        # in the zero band, yet not flat
    known = ls.AutogradModel(model.loss_fn, 3, optimal_loss=0.0)
    c = classify(model, np.zeros(3))
    assert (c.kind, c.nullity, c.manifold_nullity) == ("degenerate", 1, 0)
    c = classify(known, np.zeros(3))
    assert (c.kind, c.nullity, c.is_global) == ("degenerate-minimum", 1, True)


# ---- beyond the spectrum ---------------------------------------------------------------

def test_trap_is_a_non_strict_saddle_with_a_verified_witness():
    # f = (y - x^2)(y - 2x^2): f(t, 0) = 2 t^4 >= 0 along the null direction, yet
    # min_y f(t, y) = -t^4 / 4 < 0: only a re-minimised complement sees it.
    trap = ls.AutogradModel(lambda z: (z[1] - z[0] ** 2) * (z[1] - 2 * z[0] ** 2), 2)
    c = classify(trap, [0.0, 0.0], radius=0.1)
    assert c.kind == "non-strict-saddle"
    assert (c.index, c.nullity) == (0, 1)
    assert np.linalg.norm(c.witness) <= 0.1 * (1 + 1e-12)
    assert trap.loss(c.witness) < -c.margin
    assert c.witness_loss == trap.loss(c.witness)
    # along the null direction alone the trap looks like a minimum
    ts = np.linspace(-0.1, 0.1, 41)
    assert np.all([trap.loss([t, 0.0]) >= 0 for t in ts])


def test_quartic_is_never_a_saddle():
    model = ls.AutogradModel(lambda z: z[0] ** 4 + z[1] ** 2, 2)
    assert classify(model, [0.0, 0.0]).kind == "degenerate"
    known = ls.AutogradModel(model.loss_fn, 2, optimal_loss=0.0)
    assert classify(known, [0.0, 0.0]).kind == "degenerate-minimum"


def test_a_lower_point_at_a_finite_distance_is_not_a_descent_witness():
    """g(x) = x^4 - 20 x^6 + y^2: a (degenerate) local minimum at 0, yet g < 0 for |x| > 0.224.

    With radius 1 a lower point lies inside the ball, but no descent persists as the radius
    shrinks, so the point is not a saddle (found by the tinaz2026 study on a real model)."""
    model = ls.AutogradModel(lambda z: z[0] ** 4 - 20 * z[0] ** 6 + z[1] ** 2, 2)
    assert model.loss([0.5, 0.0]) < 0                       # a lower point within radius 1
    c = classify(model, [0.0, 0.0], radius=1.0)
    assert c.kind == "degenerate"
    assert c.witness is None


def test_cubic_is_a_non_strict_saddle():
    model = ls.AutogradModel(lambda z: z[0] ** 3 + z[1] ** 2, 2)
    c = classify(model, [0.0, 0.0])
    assert c.kind == "non-strict-saddle"
    assert c.witness[0] < 0
    assert model.loss(c.witness) < -c.margin


def test_not_critical_and_non_differentiable():
    m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    W = np.eye(3) + 0.1
    c = classify(m, m.flatten(W))
    assert c.kind == "not-critical"
    assert c.grad_norm > 1e-8
    W[1] = 0.0
    c = classify(m, m.flatten(W))
    assert c.kind == "non-differentiable"
    assert np.isfinite(c.loss)


# ---- teacher-student ---------------------------------------------------------------------

@pytest.mark.parametrize("k", [3, 5])
def test_teacher_equals_student_is_a_global_strict_minimum(k):
    m = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    c = classify(m, m.flatten(np.eye(k)))
    assert c.kind == "strict-minimum"
    assert c.is_global is True
    assert c.is_minimum and not c.is_saddle
    assert_allclose(c.lambda_min, LAMBDA_MIN_IDENTITY, rtol=1e-12)
    assert c.gap == pytest.approx(LAMBDA_MIN_IDENTITY, rel=1e-12)


def test_split_neuron_global_minimum_is_degenerate_minimum():
    n = 4
    m = ls.ReluTeacherStudent(teacher=np.eye(n), n_students=n + 1)
    c = classify(m, m.flatten(split(np.eye(n), 0)))
    assert c.kind == "degenerate-minimum"
    assert c.index == 0 and c.nullity >= 1
    assert c.is_global is True
    assert abs(c.loss) <= LOSS_ATOL


@pytest.fixture(scope="module")
def spurious_minimum_8():
    """A spurious minimum of V = I_8, k = 8 found by descent and Newton (Safran et al. 2021)."""
    m = ls.ReluTeacherStudent(teacher=np.eye(8), n_students=8)
    p = ls.descend_and_polish(m, m.sample_init(200, rng=0), lr=5 / 8)
    spurious = np.flatnonzero(p.success & (p.loss > 1e-6))
    assert spurious.size > 0
    return m, p.x[spurious[0]], p.loss[spurious[0]]


def test_spurious_minimum_is_strict_and_not_global(spurious_minimum_8):
    m, x, loss = spurious_minimum_8
    c = classify(m, x)
    assert c.kind == "strict-minimum"
    assert c.is_global is False
    assert c.loss == pytest.approx(loss, abs=1e-14)


@pytest.mark.parametrize("j", [0, 3, 7])
def test_splitting_a_spurious_minimum_gives_a_strict_saddle(spurious_minimum_8, j):
    m, x, loss = spurious_minimum_8
    m9 = ls.ReluTeacherStudent(teacher=np.eye(8), n_students=9)
    c = classify(m9, m9.flatten(split(m.unflatten(x), j)))
    assert c.kind == "strict-saddle"
    assert c.grad_norm <= GRAD_ATOL
    assert c.loss == pytest.approx(loss, abs=1e-13)
    assert c.lambda_min < -0.1


# ---- two-layer network, linear target (Tinaz, Xie & Soltanolkotabi 2026) -------------------

BETA = np.array([1.0, 0.0, 0.0])


def test_zero_output_weights_orthogonal_to_beta_is_a_strict_saddle():
    m = ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget(BETA))
    x = m.flatten(([0.0, 0.0], [[0.0, 1.0, 0.0], [0.0, 0.3, 1.0]]))
    c = classify(m, x)
    assert c.kind == "strict-saddle"
    assert c.index >= 1


def test_one_sided_fit_with_a_wrong_sign_is_a_non_strict_saddle():
    # a = (2, -1), w1 = w2 = e1: the network outputs sigma(x1), loss |beta|^2 / 4
    m = ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget(BETA))
    x = m.flatten(([2.0, -1.0], [BETA, BETA]))
    c = classify(m, x)
    assert c.loss == pytest.approx(0.25, abs=1e-15)
    assert c.grad_norm <= GRAD_ATOL
    assert c.kind == "non-strict-saddle"
    assert c.index == 0
    assert c.symmetry_nullity == 2
    assert m.loss(c.witness) < c.loss - c.margin
    assert np.linalg.norm(c.witness - x) <= c.radius * (1 + 1e-12)


@pytest.mark.parametrize("scales", [(1.0, 1.0), (2.0, 0.5), (0.3, 3.0)])
def test_global_minima_have_one_symmetry_zero_mode_per_neuron(scales):
    m = ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget(BETA))
    c1, c2 = scales
    x = m.flatten(([1.0 / c1, -1.0 / c2], [c1 * BETA, -c2 * BETA]))
    c = classify(m, x)
    assert c.kind == "strict-minimum"
    assert c.symmetry_nullity == m.n_hidden
    assert c.nullity == 0
    assert c.is_global is True


# ---- results and input ---------------------------------------------------------------------

def test_classification_round_trips_through_json():
    trap = ls.AutogradModel(lambda z: (z[1] - z[0] ** 2) * (z[1] - 2 * z[0] ** 2), 2)
    c = classify(trap, [0.0, 0.0])
    back = Classification.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back.kind == c.kind
    assert_allclose(back.witness, c.witness, rtol=0, atol=0)
    assert_allclose(back.eigenvalues, c.eigenvalues, rtol=0, atol=0)
    assert "non-strict-saddle" in repr(c)
    assert c.kind in KINDS


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(radius=0.0), ValueError, "radius"),
    (dict(radius=-1.0), ValueError, "radius"),
    (dict(gtol=-1.0), ValueError, "gtol"),
    (dict(n_directions=-1), ValueError, "n_directions"),
    (dict(rng="seed"), TypeError, "rng"),
])
def test_bad_arguments(kwargs, error, match):
    m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    with pytest.raises(error, match=match):
        classify(m, m.flatten(np.eye(3)), **kwargs)


def test_bad_point_and_model():
    m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    with pytest.raises(ValueError, match="x"):
        classify(m, np.ones(4))
    with pytest.raises(ValueError, match="finite"):
        classify(m, np.full(9, np.nan))
    with pytest.raises(TypeError, match="model"):
        classify("model", np.ones(9))
