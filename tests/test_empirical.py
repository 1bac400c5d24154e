"""Tests of the empirical loss of Du, Zhai, Poczos & Singh (2019): EmpiricalReLU and ntk_gram."""

import dataclasses
import json

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import landscape as ls
from landscape.models import base
from landscape.models.autodiff import reference_model

# ---- tolerances ----------------------------------------------------------------------
AUTOGRAD_RTOL = 1e-10          # closed form vs autograd of the same formula
FD_RTOL = 1e-6                 # vs central differences
FD_STEP = 1e-6
BATCH_RTOL = 1e-12             # batched vs looped single calls
SYMMETRY_ATOL = 1e-14          # Hessian symmetry (relative to its norm)
TAYLOR_SLOPE_ATOL = 0.05       # log-log slope of the first Taylor remainder
ROUNDING_ATOL = 1e3 * np.finfo(float).eps   # "zero up to rounding" (relative to the loss)
MC_SIGMAS = 4.0                # Monte Carlo agreement, in standard errors
MC_SAMPLES = 2_000_000         # Gaussian directions w for the Monte Carlo H-infinity
MC_CHUNK = 250_000
WIDE_WIDTH = 20_000
WIDE_GRAM_ATOL = 0.02          # max |H(0) - H_inf| at width WIDE_WIDTH
GRAM_RTOL = 1e-12
ANGLE_RTOL = 1e-13             # near-parallel pair: naive arccos would be off by ~3e-10


# ---- helpers -------------------------------------------------------------------------

def unit_rows(rng, n, d):
    X = rng.standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def make_model(seed, n_samples=6, d=3, width=8):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, d))
    y = rng.standard_normal(n_samples)
    return ls.EmpiricalReLU(X, y, width, rng=rng)


def generic_point(model, rng, margin=1e-3):
    """A point with every |w_r . x_i| >= margin (far from every ReLU kink)."""
    for _ in range(100):
        x = rng.standard_normal(model.n_params)
        W = model.unflatten(x)
        if np.min(np.abs(model.X @ W.T)) >= margin:
            return x
    raise AssertionError("could not draw a generic point")  # pragma: no cover


def kink_distance(model, x, v):
    """Largest t such that no w_r . x_i changes sign on [x, x + t v]."""
    Z = model.X @ model.unflatten(x).T
    dZ = model.X @ model.unflatten(v).T
    with np.errstate(divide="ignore"):
        t = np.where(Z * dZ < 0, -Z / dZ, np.inf)
    return float(np.min(t))


def central_gradient(model, x, h=FD_STEP):
    E = np.eye(model.n_params) * h
    return np.array([(model.loss(x + e) - model.loss(x - e)) / (2 * h) for e in E])


def differenced_hessian(model, x, h=FD_STEP):
    E = np.eye(model.n_params) * h
    return np.stack([(model.grad(x + e) - model.grad(x - e)) / (2 * h) for e in E], axis=1)


def monte_carlo_gram(X, rng, n_samples=MC_SAMPLES, chunk=MC_CHUNK):
    """E_w[x_i.x_j 1{w.x_i >= 0, w.x_j >= 0}] estimated from n_samples Gaussian w."""
    counts = np.zeros((X.shape[0], X.shape[0]))
    for start in range(0, n_samples, chunk):
        w = rng.standard_normal((min(chunk, n_samples - start), X.shape[1]))
        S = (w @ X.T >= 0).astype(np.float64)
        counts += S.T @ S
    p_hat = counts / n_samples
    return (X @ X.T) * p_hat


# ---- construction --------------------------------------------------------------------

def test_attributes_and_repr():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((5, 3)), rng.standard_normal(5)
    m = ls.EmpiricalReLU(X, y, width=7, rng=1)
    assert (m.n_params, m.input_dim, m.width, m.n_samples) == (21, 3, 7, 5)
    assert m.optimal_loss is None
    assert_array_equal(m.X, X)
    assert_array_equal(m.y, y)
    assert set(np.unique(m.a)) <= {-1.0, 1.0} and m.a.shape == (7,)
    assert repr(m) == "EmpiricalReLU(n_samples=5, d=3, width=7, n_params=21)"
    W = rng.standard_normal((7, 3))
    assert_array_equal(m.unflatten(m.flatten(W)), W)


def test_signs_drawn_from_rng_are_reproducible_and_both_present():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((4, 2)), rng.standard_normal(4)
    m1 = ls.EmpiricalReLU(X, y, 200, rng=5)
    m2 = ls.EmpiricalReLU(X, y, 200, rng=np.random.default_rng(5))
    m3 = ls.EmpiricalReLU(X, y, 200, rng=6)
    assert_array_equal(m1.a, m2.a)
    assert not np.array_equal(m1.a, m3.a)
    assert 60 < np.count_nonzero(m1.a > 0) < 140


def test_given_signs_are_used_and_inputs_are_copied():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((4, 2)), rng.standard_normal(4)
    a = np.array([1, -1, -1])
    m = ls.EmpiricalReLU(X, y, 3, a=a)
    assert_array_equal(m.a, [1.0, -1.0, -1.0])
    X_before = X.copy()
    X[0, 0] = 100.0
    a[0] = -1
    assert_array_equal(m.X, X_before)
    assert m.a[0] == 1.0


def test_loss_matches_direct_formula():
    m = make_model(3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(m.n_params)
    W = m.unflatten(x)
    f = np.array([np.sum(m.a * np.maximum(W @ xi, 0.0)) for xi in m.X]) / np.sqrt(m.width)
    assert_allclose(m.loss(x), 0.5 * np.sum((f - m.y) ** 2), rtol=BATCH_RTOL)


def test_activation_patterns():
    m = make_model(4)
    x = generic_point(m, np.random.default_rng(4))
    A = m.activation_patterns(x)
    assert A.shape == (m.n_samples, m.width) and A.dtype == bool
    assert_array_equal(A, (m.X @ m.unflatten(x).T) > 0)


def test_dead_neuron_has_zero_gradient_and_hessian_block():
    rng = np.random.default_rng(40)
    X = rng.standard_normal((6, 3))
    X[:, 0] = np.abs(X[:, 0]) + 0.1          # every sample has x_0 > 0
    m = ls.EmpiricalReLU(X, rng.standard_normal(6), 4, rng=rng)
    W = rng.standard_normal((4, 3))
    W[1] = [-1.0, 0.0, 0.0]                  # neuron 1 is inactive on every sample
    x = m.flatten(W)
    assert not m.activation_patterns(x)[:, 1].any()
    assert m.is_differentiable(x)
    assert_array_equal(m.unflatten(m.grad(x))[1], 0.0)
    assert_array_equal(m.hess(x)[3:6], 0.0)
    assert np.any(m.unflatten(m.grad(x))[[0, 2, 3]] != 0)


# ---- derivatives ---------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_matches_autograd(seed):
    m = make_model(seed)
    ref = reference_model(m)
    rng = np.random.default_rng(10 + seed)
    for _ in range(3):
        x = generic_point(m, rng)
        g = m.grad(x)
        assert_allclose(m.loss(x), ref.loss(x), rtol=AUTOGRAD_RTOL)
        assert_allclose(g, ref.grad(x), rtol=AUTOGRAD_RTOL,
                        atol=AUTOGRAD_RTOL * np.linalg.norm(g))


@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_matches_central_differences(seed):
    m = make_model(seed)
    x = generic_point(m, np.random.default_rng(20 + seed))
    g = m.grad(x)
    assert_allclose(g, central_gradient(m, x), rtol=FD_RTOL, atol=FD_RTOL * np.linalg.norm(g))


@pytest.mark.parametrize("seed", [0, 1])
def test_hessian_matches_differenced_gradient_and_autograd(seed):
    m = make_model(seed)
    x = generic_point(m, np.random.default_rng(30 + seed))
    H = m.hess(x)
    scale = np.linalg.norm(H)
    assert_allclose(H, differenced_hessian(m, x), rtol=FD_RTOL, atol=FD_RTOL * scale)
    assert_allclose(H, reference_model(m).hess(x), rtol=AUTOGRAD_RTOL,
                    atol=AUTOGRAD_RTOL * scale)


def test_hessian_symmetric_psd_and_hvp():
    m = make_model(5)
    rng = np.random.default_rng(5)
    x = generic_point(m, rng)
    H = m.hess(x)
    scale = np.linalg.norm(H)
    assert_allclose(H, H.T, rtol=0, atol=SYMMETRY_ATOL * scale)
    # Gauss-Newton: H = J^T J is PSD with rank <= n_samples
    eig = np.linalg.eigvalsh(H)
    assert eig[0] >= -SYMMETRY_ATOL * scale
    assert np.count_nonzero(eig > 1e-10 * scale) <= m.n_samples
    for _ in range(3):
        v = rng.standard_normal(m.n_params)
        assert_allclose(m.hvp(x, v), H @ v, rtol=BATCH_RTOL,
                        atol=BATCH_RTOL * scale * np.linalg.norm(v))
    assert_allclose(reference_model(m).hvp(x, v), m.hvp(x, v), rtol=AUTOGRAD_RTOL,
                    atol=AUTOGRAD_RTOL * scale * np.linalg.norm(v))


def test_hessian_spectrum_equals_model_gram():
    """Nonzero eigenvalues of H = J^T J are those of Du et al.'s H(W) = J J^T."""
    m = make_model(6, n_samples=5, d=3, width=6)
    x = generic_point(m, np.random.default_rng(6))
    A = m.activation_patterns(x).astype(float)
    H_W = (m.X @ m.X.T) * (A @ A.T) / m.width
    top = np.linalg.eigvalsh(m.hess(x))[-m.n_samples:]
    assert_allclose(top, np.linalg.eigvalsh(H_W), rtol=GRAM_RTOL, atol=GRAM_RTOL)


def test_batched_equals_looped():
    m = make_model(7)
    rng = np.random.default_rng(7)
    X = np.stack([generic_point(m, rng) for _ in range(6)])
    U = rng.standard_normal(X.shape)
    assert_allclose(m.loss_batch(X), [m.loss(x) for x in X], rtol=BATCH_RTOL)
    assert_allclose(m.grad_batch(X), np.stack([m.grad(x) for x in X]), rtol=BATCH_RTOL,
                    atol=1e-14)
    assert_allclose(m.hvp_batch(X, U), np.stack([m.hvp(x, u) for x, u in zip(X, U)]),
                    rtol=BATCH_RTOL, atol=1e-14)
    assert_array_equal(m.is_differentiable_batch(X), True)


def test_batched_equals_looped_across_chunks(monkeypatch):
    m = make_model(8)
    rng = np.random.default_rng(8)
    X = np.stack([generic_point(m, rng) for _ in range(7)])
    U = rng.standard_normal(X.shape)
    whole = (m.loss_batch(X), m.grad_batch(X), m.hvp_batch(X, U))
    monkeypatch.setattr(base, "_BATCH_BUDGET", 2 * m.work_per_row())   # chunks of 2 rows
    chunked = (m.loss_batch(X), m.grad_batch(X), m.hvp_batch(X, U))
    for w, c in zip(whole, chunked):
        assert_allclose(c, w, rtol=BATCH_RTOL, atol=1e-14)


def test_taylor_remainders():
    """Piecewise quadratic loss: remainder 1 has slope 2, remainder 2 vanishes to rounding."""
    m = make_model(9)
    rng = np.random.default_rng(9)
    x = generic_point(m, rng)
    v = rng.standard_normal(m.n_params)
    v /= np.linalg.norm(v)
    t_kink = kink_distance(m, x, v)
    ts = t_kink * np.logspace(-3, -0.5, 8)
    L0, gv, vHv = m.loss(x), m.grad(x) @ v, v @ m.hvp(x, v)
    A0 = m.activation_patterns(x)
    for t in ts:
        assert_array_equal(m.activation_patterns(x + t * v), A0)
    first = np.array([m.loss(x + t * v) - L0 - t * gv for t in ts])
    second = first - 0.5 * ts**2 * vHv
    slope = np.polyfit(np.log(ts), np.log(np.abs(first)), 1)[0]
    assert abs(slope - 2.0) < TAYLOR_SLOPE_ATOL
    assert np.max(np.abs(second)) <= ROUNDING_ATOL * max(1.0, L0)
    assert np.all(np.abs(second) < 1e-5 * np.abs(first))
    # past a kink the quadratic model is no longer exact: the formulas are local
    t_far = 3.0 * t_kink
    assert not np.array_equal(m.activation_patterns(x + t_far * v), A0)
    far = m.loss(x + t_far * v) - L0 - t_far * gv - 0.5 * t_far**2 * vHv
    assert abs(far) > 1e3 * ROUNDING_ATOL * max(1.0, L0)


# ---- the non-smooth set --------------------------------------------------------------

def kinked_model():
    X = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, -1.0], [2.0, 1.0, 1.0]])
    y = np.array([1.0, -1.0, 0.5, 0.0])
    m = ls.EmpiricalReLU(X, y, 3, a=[1, -1, 1])
    W = np.array([[2.0, -1.0, 5.0],      # w_0 . x_0 == 0 exactly
                  [0.3, 0.7, -0.2],
                  [-0.4, 0.1, 0.9]])
    return m, W


def test_kink_is_non_differentiable():
    m, W = kinked_model()
    x = m.flatten(W)
    assert not m.is_differentiable(x)
    with pytest.raises(ls.NonDifferentiableError, match="neuron 0") as info:
        m.grad(x)
    assert info.value.neurons == (0,)
    with pytest.raises(ls.NonDifferentiableError, match="sample 0"):
        m.hess(x)
    with pytest.raises(ls.NonDifferentiableError):
        m.hvp(x, np.ones(m.n_params))
    # the loss itself is defined on the kink
    f = np.maximum(m.X @ W.T, 0.0) @ m.a / np.sqrt(3)
    assert_allclose(m.loss(x), 0.5 * np.sum((f - m.y) ** 2), rtol=BATCH_RTOL)
    # moving off the kink restores differentiability
    W_off = W.copy()
    W_off[0, 0] += 0.25
    assert m.is_differentiable(m.flatten(W_off))


def test_kink_in_a_batch_and_zero_neuron():
    m, W = kinked_model()
    W_good = W.copy()
    W_good[0] = [0.5, 0.25, 0.125]
    W_zero = W_good.copy()
    W_zero[2] = 0.0
    X = np.stack([m.flatten(W_good), m.flatten(W), m.flatten(W_zero)])
    assert_array_equal(m.is_differentiable_batch(X), [True, False, False])
    assert_array_equal(m.nondifferentiable_units(X),
                       [[False, False, False], [True, False, False], [False, False, True]])
    with pytest.raises(ls.NonDifferentiableError, match="row 1, neuron 0"):
        m.grad_batch(X)
    assert np.all(np.isfinite(m.loss_batch(X)))


# ---- the infinite-width Gram matrix --------------------------------------------------

def test_ntk_gram_matches_monte_carlo():
    rng = np.random.default_rng(11)
    X = unit_rows(rng, 8, 4)
    H = ls.ntk_gram(X).gram
    H_mc = monte_carlo_gram(X, rng)
    p = H / np.where(X @ X.T != 0, X @ X.T, 1.0)     # exact probabilities
    stderr = np.abs(X @ X.T) * np.sqrt(p * (1 - p) / MC_SAMPLES)
    assert np.all(np.abs(H_mc - H) <= MC_SIGMAS * stderr)


def test_ntk_gram_unit_formula_symmetric_psd():
    rng = np.random.default_rng(12)
    X = unit_rows(rng, 20, 5)
    g = ls.ntk_gram(X)
    G = X @ X.T
    naive = G * (np.pi - np.arccos(np.clip(G, -1, 1))) / (2 * np.pi)
    off = ~np.eye(20, dtype=bool)
    assert_allclose(g.gram[off], naive[off], rtol=GRAM_RTOL)
    assert_allclose(np.diag(g.gram), 0.5, rtol=GRAM_RTOL)
    assert_array_equal(g.gram, g.gram.T)
    assert_allclose(g.eigenvalues, np.linalg.eigvalsh(g.gram), rtol=GRAM_RTOL, atol=GRAM_RTOL)
    assert np.all(np.diff(g.eigenvalues) >= 0)
    assert g.lambda0 == g.eigenvalues[0]
    assert g.lambda0 > 1e-3        # distinct points: lambda_0 > 0 (Du et al., Thm 3.1)


def test_ntk_gram_duplicate_points_have_lambda0_zero():
    rng = np.random.default_rng(13)
    X = unit_rows(rng, 5, 3)
    X = np.vstack([X, X[2]])
    g = ls.ntk_gram(X)
    assert abs(g.lambda0) < 1e-14
    assert ls.ntk_gram(X[:-1]).lambda0 > 1e-3


def test_ntk_gram_scaling_and_general_rows():
    rng = np.random.default_rng(14)
    U = unit_rows(rng, 6, 3)
    s = rng.uniform(0.1, 10.0, 6)
    H_unit = ls.ntk_gram(U).gram
    assert_allclose(ls.ntk_gram(s[:, None] * U).gram, s[:, None] * H_unit * s[None, :],
                    rtol=GRAM_RTOL)
    # antiparallel pair: theta = pi, entry exactly 0; a zero sample: zero row
    g = ls.ntk_gram([[1.0, 2.0], [-1.0, -2.0], [0.0, 0.0]])
    assert_allclose(g.gram, [[2.5, 0, 0], [0, 2.5, 0], [0, 0, 0]], atol=1e-15)


def test_ntk_gram_near_parallel_angle_is_accurate():
    delta = 1e-9
    g = ls.ntk_gram([[1.0, 0.0], [np.cos(delta), np.sin(delta)]])
    expected = np.cos(delta) * (np.pi - delta) / (2 * np.pi)
    assert_allclose(g.gram[0, 1], expected, rtol=ANGLE_RTOL)
    assert g.gram[0, 1] < 0.5       # arccos of the rounded cosine would give exactly 1/2


def test_ntk_gram_result_roundtrip_and_frozen():
    g = ls.ntk_gram(unit_rows(np.random.default_rng(15), 4, 3))
    d = json.loads(json.dumps(g.to_dict()))
    g2 = ls.NTKGram.from_dict(d)
    assert g2 == g
    assert_array_equal(g2.gram, g.gram)
    assert g2.lambda0 == g.lambda0
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.lambda0 = 1.0
    with pytest.raises(ValueError):
        g.gram[0, 0] = 1.0
    assert repr(g).startswith("NTKGram(n_samples=4, lambda0=")


def test_model_gram_at_init_approaches_ntk_gram():
    rng = np.random.default_rng(16)
    X = unit_rows(rng, 10, 5)
    y = rng.standard_normal(10)
    H_inf = ls.ntk_gram(X).gram
    errors = []
    for width in (200, WIDE_WIDTH):
        m = ls.EmpiricalReLU(X, y, width, rng=rng)
        x0 = m.sample_init(1, rng=rng, scale=1.0)[0]      # w_r ~ N(0, I)
        A = m.activation_patterns(x0).astype(float)
        H0 = (X @ X.T) * (A @ A.T) / width
        errors.append(np.max(np.abs(H0 - H_inf)))
    assert errors[1] < WIDE_GRAM_ATOL
    assert errors[1] < errors[0]


# ---- bad input -----------------------------------------------------------------------

GOOD_X = np.ones((3, 2)) * [[1.0], [2.0], [3.0]]
GOOD_Y = np.zeros(3)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(X=np.ones(3)), ValueError, r"X must be a 2-D array.*got shape \(3,\)"),
    (dict(X=np.ones((0, 2)), y=np.zeros(0)), ValueError, "X must have at least one sample"),
    (dict(X=np.ones((3, 0))), ValueError, "X must have at least one sample"),
    (dict(X=[[1.0, np.nan], [0, 1], [1, 1]]), ValueError, "X must be finite.*nan"),
    (dict(X=[[1.0, np.inf], [0, 1], [1, 1]]), ValueError, "X must be finite.*inf"),
    (dict(X="data"), TypeError, "X must be an array"),
    (dict(y=np.zeros(4)), ValueError, r"y must have shape \(3,\).*got \(4,\)"),
    (dict(y=np.zeros((3, 1))), ValueError, r"y must have shape \(3,\).*ravel"),
    (dict(y=[0.0, np.nan, 1.0]), ValueError, "y must be finite"),
    (dict(width=0), ValueError, "width must be >= 1.*got 0"),
    (dict(width=-3), ValueError, "width must be >= 1.*got -3"),
    (dict(width=2.0), TypeError, "width must be an int.*float"),
    (dict(width=True), TypeError, "width must be an int"),
    (dict(width=None), TypeError, "width must be an int"),
    (dict(a=[1.0, -1.0]), ValueError, r"a must have shape \(4,\).*got \(2,\)"),
    (dict(a=[1.0, -1.0, 0.5, 1.0]), ValueError, r"a must contain only \+1 and -1.*0\.5"),
    (dict(a=[1.0, -1.0, 0.0, 1.0]), ValueError, r"a\[2\] = 0\.0"),
    (dict(a=[1.0, np.nan, 1.0, 1.0]), ValueError, "a must be finite"),
    (dict(rng="seed"), TypeError, "rng must be"),
])
def test_bad_constructor_input(kwargs, error, match):
    args = dict(X=GOOD_X, y=GOOD_Y, width=4) | kwargs
    with pytest.raises(error, match=match):
        ls.EmpiricalReLU(**args)


@pytest.mark.parametrize("X, error, match", [
    (np.ones(3), ValueError, "X must be a 2-D array"),
    (np.ones((0, 3)), ValueError, "X must have at least one sample"),
    ([[1.0, np.inf]], ValueError, "X must be finite"),
    (None, TypeError, "X must be an array"),
])
def test_bad_ntk_gram_input(X, error, match):
    with pytest.raises(error, match=match):
        ls.ntk_gram(X)


def test_bad_parameter_shapes():
    m = ls.EmpiricalReLU(GOOD_X, GOOD_Y, 4)
    with pytest.raises(ValueError, match=r"W must have shape \(4, 2\)"):
        m.flatten(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"x must have shape \(8,\)"):
        m.activation_patterns(np.ones(7))
    with pytest.raises(ValueError, match="x must be finite"):
        m.loss(np.full(8, np.nan))
