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


# ---- both layers trained (train_output=True) ------------------------------------------

TRAINED_RTOL = 1e-10          # trained-mode closed forms vs hand-built matrices / autograd
MC_SAMPLES_POP = 400_000      # samples for the empirical-vs-population comparison
EPS = np.finfo(float).eps


def trained_model(seed, n_samples=7, d=3, width=4, **kwargs):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, d))
    return ls.EmpiricalReLU(X, rng.standard_normal(n_samples), width, train_output=True,
                            **kwargs)


def trained_point(model, rng, margin=1e-3):
    """(a, W) with every |w_r . x_i| >= margin and every |a_r| >= margin."""
    for _ in range(100):
        x = rng.standard_normal(model.n_params)
        a, W = model.unflatten(x)
        if np.min(np.abs(model.X @ W.T)) >= margin and np.min(np.abs(a)) >= margin:
            return x
    raise AssertionError("could not draw a generic point")  # pragma: no cover


def test_trained_attributes_layout_and_repr():
    m = trained_model(0, output_scale=1.0, reduction="mean")
    assert (m.n_params, m.width, m.input_dim) == (16, 4, 3)
    assert m.train_output and m.a is None and m.output_scale == 1.0 and m.reduction == "mean"
    assert repr(m) == ("EmpiricalReLU(n_samples=7, d=3, width=4, n_params=16, "
                       "train_output=True, output_scale=1, reduction='mean')")
    rng = np.random.default_rng(1)
    a, W = rng.standard_normal(4), rng.standard_normal((4, 3))
    x = m.flatten((a, W))
    # the layout of TwoLayerReLU: a first, then W row-major
    pop = ls.TwoLayerReLU(n_hidden=4, target=ls.LinearTarget(np.ones(3)))
    assert_array_equal(x, pop.flatten((a, W)))
    a2, W2 = m.unflatten(x)
    assert_array_equal(a2, a)
    assert_array_equal(W2, W)
    assert_array_equal(m.activation_patterns(x), m.X @ W.T > 0)
    # Du et al.'s frozen defaults are unchanged
    f = ls.EmpiricalReLU(m.X, m.y, 4, rng=0)
    assert not f.train_output and f.reduction == "sum"
    assert f.output_scale == 1 / np.sqrt(4)


@pytest.mark.parametrize("kwargs", [{}, dict(output_scale=1.0, reduction="mean")],
                         ids=["du-scaling", "unscaled-mean"])
def test_trained_loss_gradient_and_hessian_against_formulas(kwargs):
    """H = c (J^T J + E): the residual couples a_r with w_r only (bilinear f)."""
    m = trained_model(2, **kwargs)
    rng = np.random.default_rng(2)
    x = trained_point(m, rng)
    a, W = m.unflatten(x)
    s, c = m.output_scale, (1.0 if m.reduction == "sum" else 1.0 / m.n_samples)
    Z = m.X @ W.T                                     # (N, m)
    S, act = np.maximum(Z, 0.0), (Z > 0).astype(float)
    e = s * S @ a - m.y
    assert_allclose(m.loss(x), 0.5 * c * e @ e, rtol=BATCH_RTOL)
    J = np.hstack([s * S, (s * act[:, :, None] * a[None, :, None]
                           * m.X[:, None, :]).reshape(m.n_samples, -1)])
    assert_allclose(m.grad(x), c * J.T @ e, rtol=TRAINED_RTOL, atol=1e-15)
    E = np.zeros((m.n_params, m.n_params))
    for r in range(m.width):
        block = s * (act[:, r] * e) @ m.X
        E[r, m.width + 3 * r:m.width + 3 * r + 3] = block
        E[m.width + 3 * r:m.width + 3 * r + 3, r] = block
    H = m.hess(x)
    assert_allclose(H, c * (J.T @ J + E), rtol=TRAINED_RTOL,
                    atol=TRAINED_RTOL * np.abs(H).max())
    assert np.abs(E).max() > 1e-2 * np.abs(H).max()  # the cross terms matter here
    assert np.linalg.eigvalsh(H)[0] < -1e-6 * np.abs(H).max()    # indefinite away from a fit
    ref = reference_model(m)
    assert_allclose(H, ref.hess(x), rtol=AUTOGRAD_RTOL, atol=AUTOGRAD_RTOL * np.abs(H).max())
    v = rng.standard_normal(m.n_params)
    assert_allclose(m.hvp(x, v), H @ v, rtol=BATCH_RTOL,
                    atol=BATCH_RTOL * np.abs(H).max() * np.linalg.norm(v))


def test_trained_hessian_at_an_exact_fit_is_gauss_newton():
    """At e = 0 the cross terms vanish: H = c J^T J, PSD with the rescaling zero modes."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((12, 3))
    a0, W0 = np.array([1.5, -0.5]), rng.standard_normal((2, 3))
    y = np.maximum(X @ W0.T, 0.0) @ a0
    m = ls.EmpiricalReLU(X, y, 2, train_output=True, output_scale=1.0, reduction="mean")
    x = m.flatten((a0, W0))
    assert m.loss(x) <= 1e-30
    H = m.hess(x)
    eig = np.linalg.eigvalsh(H)
    assert eig[0] >= -1e-14 * eig[-1]
    T = m.symmetry_tangents(x)
    assert_allclose(H @ T.T, 0.0, atol=1e-13 * eig[-1])
    # 12 generic samples >= m d = 6: no zero mode beyond the 2 rescalings
    c = ls.classify(m, x)
    assert c.kind == "strict-minimum"
    assert c.symmetry_nullity == 2 and c.nullity == 0 and c.index == 0


def test_trained_rescaling_symmetry():
    m = trained_model(4)
    rng = np.random.default_rng(4)
    x = trained_point(m, rng)
    a, W = m.unflatten(x)
    t = np.array([0.5, 2.0, 3.0, 0.25])               # powers of two: exact rescalings
    y = m.flatten((a / t, t[:, None] * W))
    assert m.loss(y) == pytest.approx(m.loss(x), rel=1e-15)
    T = m.symmetry_tangents(x)
    assert T.shape == (m.width, m.n_params)
    # the tangent of (a_r e^-u, e^u w_r) at u = 0, as a central difference of the path
    h = 1e-6
    for r in range(m.width):
        u = np.zeros(m.width)
        u[r] = h
        plus = m.flatten((a * np.exp(-u), np.exp(u)[:, None] * W))
        minus = m.flatten((a * np.exp(u), np.exp(-u)[:, None] * W))
        assert_allclose((plus - minus) / (2 * h), T[r], atol=1e-9)
    g = m.grad(x)
    assert np.all(np.abs(T @ g) <= 1e-13 * np.linalg.norm(g) * np.linalg.norm(T, axis=1))
    # frozen output signs: no continuous symmetry
    f = make_model(4)
    assert f.symmetry_tangents(generic_point(f, rng)).shape == (0, f.n_params)


def test_trained_collinear_neurons():
    """Two positively collinear neurons act as one neuron of contribution a_1|w_1| + a_2|w_2|."""
    m = trained_model(5, n_samples=8, d=3, width=3)
    rng = np.random.default_rng(5)
    u = rng.standard_normal(3)
    u /= np.linalg.norm(u)
    a = np.array([0.7, -0.2, 1.1])
    W = np.vstack([1.5 * u, 0.5 * u, rng.standard_normal(3)])
    x = m.flatten((a, W))
    T = m.manifold_tangents(x)
    assert T.shape == (1, m.n_params)
    assert_allclose(T[0, :3], [-0.5, 1.5, 0.0])      # delta a_1 = |w_0|, delta a_0 = -|w_1|
    assert_array_equal(T[0, 3:], 0.0)
    L0 = m.loss(x)
    for t in (0.1, -0.3):                             # the function is constant along it
        assert m.loss(x + t * T[0]) == pytest.approx(L0, rel=1e-14)
    key = m.merge_collinear(x)
    ak, Wk = m.unflatten(key)
    assert_allclose(ak, [0.7 * 1.5 - 0.2 * 0.5, 0.0, 1.1], rtol=1e-14)
    assert_allclose(Wk[0], u, rtol=1e-14)
    assert_array_equal(Wk[1], 0.0)
    assert m.loss(key) == pytest.approx(L0, rel=1e-13)
    # nearly collinear -> exactly collinear; the aligned basis keeps the group collinear
    W_near = W.copy()
    W_near[1] += 1e-9 * np.cross(u, W[2])
    X_al, changed = m.align_collinear(m.flatten((a, W_near))[None], 1e-6)
    assert changed.tolist() == [True]
    a_al, W_al = m.unflatten(X_al[0])
    assert_array_equal(a_al, a)
    assert np.linalg.norm(np.cross(W_al[0], W_al[1])) <= 1e-15
    Z = m.aligned_basis(X_al[0], 1e-6)
    assert Z.shape[0] == m.n_params
    assert_allclose(Z.T @ Z, np.eye(Z.shape[1]), atol=1e-14)
    assert m.aligned_basis(trained_point(m, rng), 1e-6) is None


def test_trained_smooth_radius():
    X = np.array([[1.0, 0.0], [0.0, 2.0]])
    m = ls.EmpiricalReLU(X, np.zeros(2), 2, train_output=True)
    x = m.flatten(([0.05, -3.0], [[0.5, 1.0], [-0.2, 0.4]]))
    # kinks: |w . x_i| / |x_i| = 0.5, 1.0, 0.2, 0.4; output weights 0.05, 3
    assert m.smooth_radius(x) == pytest.approx(0.05)
    assert m.smooth_radius(m.flatten(([0.0, 3.0], [[0.5, 1.0], [-0.2, 0.4]]))) == \
        pytest.approx(0.2)


def test_trained_kink_is_non_differentiable():
    X = np.array([[1.0, 2.0], [0.0, 1.0], [1.0, -1.0]])
    m = ls.EmpiricalReLU(X, np.ones(3), 2, train_output=True)
    x = m.flatten(([0.5, -1.0], [[0.3, 0.4], [1.0, 1.0]]))   # w_1 . x_2 == 0
    assert not m.is_differentiable(x)
    with pytest.raises(ls.NonDifferentiableError, match="neuron 1 sits on the ReLU kink of "
                                                        "sample 2"):
        m.grad(x)
    assert np.isfinite(m.loss(x))
    assert m.nondifferentiable_units(x[None]).tolist() == [[False, True]]


@pytest.mark.parametrize("trained", [False, True], ids=["frozen", "trained"])
def test_empirical_loss_estimates_the_population_loss(trained):
    """reduction='mean', output_scale=1: E over x ~ N(0, I) of the empirical loss (and
    gradient) is TwoLayerReLU's population loss; a large sample agrees within MC_SIGMAS
    standard errors."""
    rng = np.random.default_rng(6)
    d, k = 4, 3
    beta = rng.standard_normal(d)
    pop = ls.TwoLayerReLU(n_hidden=k, target=ls.LinearTarget(beta))
    a, W = rng.choice([-1.0, 1.0], k), rng.standard_normal((k, d))
    X = rng.standard_normal((MC_SAMPLES_POP, d))
    kwargs = dict(train_output=True) if trained else dict(a=a)
    m = ls.EmpiricalReLU(X, X @ beta, k, output_scale=1.0, reduction="mean", **kwargs)
    x = m.flatten((a, W)) if trained else m.flatten(W)
    e = np.maximum(X @ W.T, 0.0) @ a - X @ beta
    stderr = np.std(0.5 * e * e) / np.sqrt(MC_SAMPLES_POP)
    assert abs(m.loss(x) - pop.loss(pop.flatten((a, W)))) <= MC_SIGMAS * stderr
    if trained:
        g, gp = m.grad(x), pop.grad(pop.flatten((a, W)))
        assert np.max(np.abs(g - gp)) <= 0.05 * np.max(np.abs(gp))   # ~ 1/sqrt(N) noise


def _exact_loss(m, x):
    """The loss of m at x in exact rational arithmetic (float inputs are exact rationals)."""
    from fractions import Fraction
    if m.train_output:
        a, W = m.unflatten(x)
    else:
        a, W = m.a, m.unflatten(x)
    s = Fraction(m.output_scale)
    c = Fraction(1) if m.reduction == "sum" else Fraction(1, m.n_samples)
    total = Fraction(0)
    for xi, yi in zip(m.X, m.y):
        f = sum(Fraction(ar) * max(sum(Fraction(w) * Fraction(v) for w, v in zip(wr, xi)),
                                   Fraction(0)) for ar, wr in zip(a, W))
        total += (s * f - Fraction(yi)) ** 2
    return c * total / 2


@pytest.mark.parametrize("trained", [False, True], ids=["frozen-du", "trained-mean"])
def test_loss_near_an_exact_fit_has_no_cancellation(trained):
    """Labels fitted to 1e-10: the loss (~1e-20) is computed from the residuals, so it is
    accurate to the rounding of the residuals (relative ~1e-6 here), whereas the expansion
    sum f^2 - 2 sum f y + sum y^2 would carry an error of eps |y|^2 ~ 1e-16."""
    from fractions import Fraction
    rng = np.random.default_rng(7)
    N, d, width = 9, 3, 4                      # width 4: Du's scale 1/sqrt(4) = 1/2 is exact
    X = rng.standard_normal((N, d))
    W = rng.standard_normal((width, d))
    a = np.array([1.0, -1.0, 1.0, -1.0]) if not trained else rng.standard_normal(width)
    kwargs = (dict(train_output=True, output_scale=1.0, reduction="mean") if trained
              else dict(a=a))
    probe = ls.EmpiricalReLU(X, np.zeros(N), width, **kwargs)
    x = probe.flatten((a, W)) if trained else probe.flatten(W)
    s = probe.output_scale
    f = s * np.maximum(X @ W.T, 0.0) @ a
    y = f + 1e-10 * rng.standard_normal(N)       # residuals ~ 1e-10
    m = ls.EmpiricalReLU(X, y, width, **kwargs)
    exact = _exact_loss(m, x)
    loss = m.loss(x)
    assert 1e-22 < float(exact) < 1e-18
    # rounding of each residual: (d + 3) eps times the sum of the magnitudes it adds up
    mag = s * np.abs(X) @ np.abs(W).T @ np.abs(a) + np.abs(y)
    err = (d + 3) * EPS * mag
    c = 1.0 if m.reduction == "sum" else 1.0 / N
    e = np.abs(f - y)
    bound = c * np.sum((e + err) * err) + 4 * EPS * float(exact)
    assert abs(Fraction(loss) - exact) <= Fraction(bound)
    assert bound <= 1e-4 * float(exact)          # the bound itself is tight: 1e-4 relative
    # the expansion loses every digit here (so this test can tell the two apart)
    expanded = 0.5 * c * (f @ f - 2 * f @ y + y @ y)
    assert abs(Fraction(expanded) - exact) > 1e3 * Fraction(bound)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(train_output=True, a=[1, -1, 1, -1]), ValueError,
     r"a is a parameter when train_output=True.*flatten\(\(a, W\)\)"),
    (dict(train_output=1), TypeError, "train_output must be True or False"),
    (dict(reduction="avg"), ValueError, "reduction must be 'sum'.*or 'mean'.*'avg'"),
    (dict(output_scale=0.0), ValueError, "output_scale must be positive"),
    (dict(output_scale=np.inf), ValueError, "output_scale must be positive and finite"),
    (dict(output_scale="1"), TypeError, "output_scale must be a positive float"),
])
def test_bad_trained_constructor_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        ls.EmpiricalReLU(GOOD_X, GOOD_Y, 4, **kwargs)


def test_bad_trained_parameters():
    m = ls.EmpiricalReLU(GOOD_X, GOOD_Y, 4, train_output=True)
    with pytest.raises(TypeError, match=r"params must be a pair \(a, W\)"):
        m.flatten(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"a must have shape \(4,\)"):
        m.flatten((np.ones(3), np.ones((4, 2))))
    with pytest.raises(ValueError, match=r"W must have shape \(4, 2\)"):
        m.flatten((np.ones(4), np.ones((2, 4))))
    with pytest.raises(ValueError, match=r"x must have shape \(12,\)"):
        m.loss(np.ones(8))


def test_symmetry_group_as_data():
    """Trained: every permutation of the neurons and the rescalings; frozen: permutations
    within equal output signs only (the data have no symmetry of their own)."""
    rng = np.random.default_rng(8)
    m = trained_model(8, width=3)
    x = trained_point(m, rng)
    a, W = m.unflatten(x)
    perm, c = [2, 0, 1], np.array([2.0, 0.5, 3.0])
    y = m.flatten(((a / c)[perm], (c[:, None] * W)[perm]))
    assert m.loss(y) == pytest.approx(m.loss(x), rel=1e-14)
    assert np.linalg.norm(y - x) > 1.0
    assert ls.orbit_distance(m, x, y) <= 1e-12 * np.linalg.norm(x)
    assert_allclose(ls.canonicalize(m, y), ls.canonicalize(m, x), atol=1e-12)
    sym = m.symmetry()
    assert sym.rescaling and not sym.odd
    assert_allclose(sym.tangents(x), m.symmetry_tangents(x), atol=0)
    f = ls.EmpiricalReLU(m.X, m.y, 3, a=[1, 1, -1])
    Wf = rng.standard_normal((3, 3))
    swapped = f.flatten(Wf[[1, 0, 2]])                 # equal signs: a symmetry
    crossed = f.flatten(Wf[[2, 1, 0]])                 # opposite signs: not one
    assert ls.orbit_distance(f, f.flatten(Wf), swapped) <= 1e-12
    assert ls.orbit_distance(f, f.flatten(Wf), crossed) > 1e-3
