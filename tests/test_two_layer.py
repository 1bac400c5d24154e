"""TwoLayerReLU (both layers trained) with LinearTarget and ReluTarget.

Monte Carlo checks of the closed-form loss, the known global minima, the
rescaling symmetry (a_i, w_i) -> (a_i / c, c w_i), the degenerate set and
permutation symmetry.  Generic-point derivatives are in test_models_contract.py.
"""

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import landscape as ls
from _helpers import assert_close, relu

TWO_PI = 2.0 * np.pi

# ---- tolerances ---------------------------------------------------------------------
MC_SAMPLES = 2**20           # >= 10^6 Gaussian inputs
MC_CHUNK = 2**17
MC_SIGMAS = 4.0
EXACT_ATOL = 1e-14           # "exactly zero" losses and gradients
PSD_RTOL = 1e-12             # lambda_min >= -PSD_RTOL * |H|
NULL_RTOL = 1e-12            # |H t| <= NULL_RTOL |H| |t| for symmetry tangents t
INVARIANCE_RTOL = 1e-13      # loss under rescaling / permutation
FD_STEP = 1e-6
FD_RTOL = 1e-6
ONE_SIDED_STEP = 1e-7
ONE_SIDED_RTOL = 1e-5
LIMIT_ATOL = 1e-14
OPTIMUM_ATOL = 1e-10         # numerical minimisation reaches the known optimum
HYPOTHESIS = settings(max_examples=25, deadline=None)




def linear_model(k, d, rng):
    beta = rng.standard_normal(d)
    return ls.TwoLayerReLU(n_hidden=k, target=ls.LinearTarget(beta)), beta


def relu_model(k, rng, n=3, d=3, a_star=(1.5, -1.0, 0.7)):
    V = rng.standard_normal((n, d))
    return ls.TwoLayerReLU(n_hidden=k, target=ls.ReluTarget(V, a_star=a_star[:n])), V


def w_slice(model, i):
    """Indices of w_i in the flat vector (a, W.ravel())."""
    k, d = model.n_hidden, model.input_dim
    return slice(k + i * d, k + (i + 1) * d)


# ---- loss vs Monte Carlo ----------------------------------------------------------------
@pytest.mark.parametrize("target", ["linear", "relu"])
def test_loss_matches_monte_carlo(target):
    rng = np.random.default_rng(21)
    d, k = 3, 4
    if target == "linear":
        model, beta = linear_model(k, d, rng)
        teacher = lambda X: X @ beta  # noqa: E731
    else:
        model, V = relu_model(k, rng, d=d)
        a_star = model.target.a_star
        teacher = lambda X: relu(X @ V.T) @ a_star  # noqa: E731
    a, W = rng.standard_normal(k), rng.standard_normal((k, d)) / np.sqrt(d)
    total = total_sq = 0.0
    for _ in range(MC_SAMPLES // MC_CHUNK):
        X = rng.standard_normal((MC_CHUNK, d))
        s = 0.5 * (relu(X @ W.T) @ a - teacher(X)) ** 2
        total += s.sum()
        total_sq += (s * s).sum()
    mean = total / MC_SAMPLES
    stderr = np.sqrt((total_sq / MC_SAMPLES - mean**2) / MC_SAMPLES)
    assert abs(mean - model.loss(model.flatten((a, W)))) <= MC_SIGMAS * stderr


# ---- known minima -----------------------------------------------------------------------
def assert_critical_with_flat_tangents(model, x):
    """Zero gradient, PSD Hessian and every rescaling tangent in the Hessian's null space."""
    assert np.max(np.abs(model.grad(x))) <= EXACT_ATOL
    H = model.hess(x)
    scale = np.linalg.norm(H, 2)
    assert np.linalg.eigvalsh(H)[0] >= -PSD_RTOL * scale
    T = model.symmetry_tangents(x)
    assert T.shape == (model.n_hidden, model.n_params)
    for t in T:
        assert np.linalg.norm(H @ t) <= NULL_RTOL * scale * np.linalg.norm(t)
        assert_allclose(model.hvp(x, t), 0.0, atol=NULL_RTOL * scale * np.linalg.norm(t))


@pytest.mark.parametrize("d", [1, 3])
def test_linear_target_two_neuron_global_minimum(d):
    """beta.x = sigma(beta.x) - sigma(-beta.x): a = (1, -1), W = (beta, -beta) has loss 0."""
    model, beta = linear_model(2, d, np.random.default_rng(d))
    assert model.optimal_loss == 0.0
    x = model.flatten(([1.0, -1.0], [beta, -beta]))
    assert abs(model.loss(x)) <= EXACT_ATOL
    assert_critical_with_flat_tangents(model, x)
    # rescaled copies are minima too
    y = model.flatten(([0.5, -4.0], [2.0 * beta, -0.25 * beta]))
    assert abs(model.loss(y)) <= EXACT_ATOL
    assert_critical_with_flat_tangents(model, y)


def test_linear_target_single_neuron_optimum():
    """k = 1 fits only sigma(beta.x) (or -sigma(-beta.x)): the best loss is |beta|^2 / 4."""
    rng = np.random.default_rng(2)
    d = 2
    model, beta = linear_model(1, d, rng)
    best = beta @ beta / 4
    assert_allclose(model.optimal_loss, best, rtol=1e-15)
    for a, w in [(1.0, beta), (-1.0, -beta), (0.5, 2 * beta)]:
        x = model.flatten(([a], [w]))
        assert_allclose(model.loss(x), best, rtol=1e-14)
        assert_critical_with_flat_tangents(model, x)
    # it is the minimum over a fine grid (|a| = 1 loses nothing, by the rescaling symmetry)
    g = np.linspace(-3, 3, 301)
    G = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    G = G[np.any(G != 0, axis=1)]
    for sign in (1.0, -1.0):
        X = np.column_stack([np.full(len(G), sign), G])
        losses = model.loss_batch(X)
        assert losses.min() >= best - EXACT_ATOL
        assert losses.min() <= best + 1e-3
    # and numerical minimisation from random starts reaches it and never beats it
    for x0 in model.sample_init(5, rng=rng, scale=1.0):
        res = scipy.optimize.minimize(model.loss, x0, jac=model.grad, method="BFGS",
                                      options={"gtol": 1e-12})
        assert res.fun >= best - EXACT_ATOL
        assert abs(res.fun - best) <= OPTIMUM_ATOL


def test_linear_target_optimal_loss_values():
    beta = np.array([0.3, -1.2, 2.0])
    for k in (2, 3, 7):
        assert ls.TwoLayerReLU(n_hidden=k, target=ls.LinearTarget(beta)).optimal_loss == 0.0
    assert ls.TwoLayerReLU(n_hidden=1, target=ls.LinearTarget(np.zeros(3))).optimal_loss == 0.0


def test_relu_target_realised_exactly_is_a_global_minimum():
    rng = np.random.default_rng(4)
    model, V = relu_model(3, rng)
    assert model.optimal_loss == 0.0
    x = model.flatten((model.target.a_star, V))
    assert abs(model.loss(x)) <= EXACT_ATOL
    assert_critical_with_flat_tangents(model, x)
    # fewer neurons than active teachers: the optimum is not known
    assert relu_model(2, rng)[0].optimal_loss is None
    zero_weight = ls.TwoLayerReLU(n_hidden=2, target=ls.ReluTarget(V, a_star=[1.0, 0.0, -2.0]))
    assert zero_weight.optimal_loss == 0.0


def test_relu_target_with_unit_weights_reduces_to_teacher_student():
    rng = np.random.default_rng(6)
    V, W = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    two_layer = ls.TwoLayerReLU(n_hidden=5, target=ls.ReluTarget(V))
    student = ls.ReluTeacherStudent(teacher=V, n_students=5)
    x, xs = two_layer.flatten((np.ones(5), W)), student.flatten(W)
    assert_allclose(two_layer.loss(x), student.loss(xs), rtol=1e-13)
    assert_close(two_layer.grad(x)[5:], student.grad(xs), 1e-13)
    assert_close(two_layer.hess(x)[5:, 5:], student.hess(xs), 1e-13)


# ---- the rescaling symmetry ---------------------------------------------------------------
@pytest.mark.parametrize("target", ["linear", "relu"])
@pytest.mark.parametrize("c", [0.25, 3.0])
def test_rescaling_invariance(target, c):
    """L(a_i / c, c w_i) = L; grad_a_i scales by c and grad_w_i by 1/c."""
    rng = np.random.default_rng(13)
    model = linear_model(4, 3, rng)[0] if target == "linear" else relu_model(4, rng)[0]
    x = rng.standard_normal(model.n_params)
    g = model.grad(x)
    for i in range(model.n_hidden):
        y = x.copy()
        y[i] /= c
        y[w_slice(model, i)] *= c
        assert_allclose(model.loss(y), model.loss(x), rtol=INVARIANCE_RTOL)
        expected = g.copy()
        expected[i] *= c
        expected[w_slice(model, i)] /= c
        assert_close(model.grad(y), expected, 1e-12)


@pytest.mark.parametrize("target", ["linear", "relu"])
def test_symmetry_tangents_are_the_rescaling_velocities(target):
    """Row i is d/dc (a_i / c, c w_i) at c = 1, and is orthogonal to the gradient."""
    rng = np.random.default_rng(14)
    model = linear_model(3, 2, rng)[0] if target == "linear" else relu_model(3, rng)[0]
    x = rng.standard_normal(model.n_params)
    T = model.symmetry_tangents(x)
    h = 1e-6
    for i, t in enumerate(T):
        def curve(c):
            y = x.copy()
            y[i] /= c
            y[w_slice(model, i)] *= c
            return y
        assert_allclose(t, (curve(1 + h) - curve(1 - h)) / (2 * h), atol=1e-9)
    g = model.grad(x)
    assert np.all(np.abs(T @ g) <= 1e-13 * np.linalg.norm(g) * np.linalg.norm(T, axis=1))


# ---- the degenerate set ---------------------------------------------------------------------
def degenerate_two_layer(kind, rng):
    """(model, a, W, pairs): pairs maps (i, l) of student pairs at angle exactly 0 or pi."""
    k, d = 4, 3
    a = rng.standard_normal(k)
    W = rng.standard_normal((k, d))
    pairs = {}
    if kind == "linear-aligned-students":
        model, beta = linear_model(k, d, rng)
        W[2] = 1.8 * W[0]
        pairs = {(0, 2): 0}
    elif kind == "linear-opposite-students":
        model, beta = linear_model(k, d, rng)
        W[3] = -0.5 * W[1]
        pairs = {(1, 3): np.pi}
    elif kind == "linear-student-on-beta":
        model, beta = linear_model(k, d, rng)
        W[0], W[1] = 2.0 * beta, -0.7 * beta
        pairs = {(0, 1): np.pi}
    elif kind == "relu-student-on-teacher":
        model, V = relu_model(k, rng, d=d)
        W[1] = 0.9 * V[0]
        W[2] = -1.1 * V[2]
    elif kind == "relu-all-at-once":
        model, V = relu_model(k, rng, d=d)
        W[0] = V[1]
        W[3] = 2.0 * V[1]
        W[2] = -W[0]
        pairs = {(0, 3): 0, (0, 2): np.pi, (2, 3): np.pi}
    pairs.update({(l, i): t for (i, l), t in pairs.items()})
    return model, a, W, pairs


TWO_LAYER_DEGENERATE = ["linear-aligned-students", "linear-opposite-students",
                        "linear-student-on-beta", "relu-student-on-teacher", "relu-all-at-once"]


@pytest.mark.parametrize("kind", TWO_LAYER_DEGENERATE)
def test_aligned_neurons(kind, fd_grad):
    rng = np.random.default_rng(31)
    model, a, W, pairs = degenerate_two_layer(kind, rng)
    k, d = W.shape
    x = model.flatten((a, W))
    L, g, H = model.loss(x), model.grad(x), model.hess(x)
    assert np.isfinite(L) and np.all(np.isfinite(g)) and np.all(np.isfinite(H))
    assert np.max(np.abs(H - H.T)) <= 1e-14 * np.abs(H).max()
    assert_close(g, fd_grad(model.loss, x, FD_STEP), FD_RTOL)
    for _ in range(3):   # one-sided differences of the gradient, off the aligned set
        u = rng.standard_normal(x.size)
        u /= np.linalg.norm(u)
        forward = (model.grad(x + ONE_SIDED_STEP * u) - g) / ONE_SIDED_STEP
        assert_allclose(forward, H @ u, rtol=0, atol=ONE_SIDED_RTOL * np.abs(H).max())
    # exact limits of the blocks of aligned (theta = 0) and opposite (theta = pi) pairs
    for (i, l), t in pairs.items():
        nw = np.linalg.norm(W[i]) * np.linalg.norm(W[l])
        ww = a[i] * a[l] * np.eye(d) / 2 if t == 0 else np.zeros((d, d))
        aw = a[l] * W[i] / 2 if t == 0 else np.zeros(d)        # a_l grad kappa(w_l, w_i)
        aa = nw / 2 if t == 0 else 0.0                          # kappa(w_i, w_l)
        assert_allclose(H[w_slice(model, i), w_slice(model, l)], ww, atol=LIMIT_ATOL)
        assert_allclose(H[i, w_slice(model, l)], aw, atol=LIMIT_ATOL)
        assert_allclose(H[i, l], aa, atol=LIMIT_ATOL)


@pytest.mark.parametrize("target", ["linear", "relu"])
@pytest.mark.parametrize("t", [1e-8, 1e-30])
def test_tiny_neuron(target, t):
    rng = np.random.default_rng(32)
    k = 3
    model = linear_model(k, 3, rng)[0] if target == "linear" else relu_model(k, rng)[0]
    smaller = (ls.TwoLayerReLU(n_hidden=k - 1, target=model.target))
    a, W = rng.standard_normal(k), rng.standard_normal((k, 3))
    W[1] *= t / np.linalg.norm(W[1])
    x = model.flatten((a, W))
    L, g, H = model.loss(x), model.grad(x), model.hess(x)
    assert np.isfinite(L) and np.all(np.isfinite(g)) and np.all(np.isfinite(H))
    assert model.is_differentiable(x)
    rest = smaller.flatten((np.delete(a, 1), np.delete(W, 1, axis=0)))
    assert abs(L - smaller.loss(rest)) <= (10 * t + 1e-15) * (1 + abs(L))
    # grad_w of the tiny neuron is a_1 (direction-only term + t u / 2): bounded, not O(1/t)
    assert np.linalg.norm(g[w_slice(model, 1)]) <= 10 * abs(a[1]) * (1 + np.abs(W).max())
    # its diagonal Hessian block carries the 1/|w| curvature
    block = H[w_slice(model, 1), w_slice(model, 1)]
    assert np.abs(block).max() * t <= 10 * abs(a[1]) * (1 + np.abs(W).max() + np.abs(a).max())


@pytest.mark.parametrize("target", ["linear", "relu"])
def test_zero_neuron_is_not_differentiable(target):
    rng = np.random.default_rng(33)
    k = 3
    model = linear_model(k, 2, rng)[0] if target == "linear" else relu_model(k, rng, d=2)[0]
    a, W = rng.standard_normal(k), rng.standard_normal((k, model.input_dim))
    W[2] = 0.0
    x = model.flatten((a, W))
    assert not model.is_differentiable(x)
    for call in (model.grad, model.hess, lambda y: model.hvp(y, np.ones_like(y))):
        with pytest.raises(ls.NonDifferentiableError, match=r"neuron 2\b") as err:
            call(x)
        assert err.value.neurons == (2,)
    smaller = ls.TwoLayerReLU(n_hidden=k - 1, target=model.target)
    L = model.loss(x)
    assert np.isfinite(L)
    assert_allclose(L, smaller.loss(smaller.flatten((a[:2], W[:2]))), rtol=1e-13)


# ---- permutation symmetry (hypothesis) ------------------------------------------------------
@HYPOTHESIS
@given(st.integers(1, 5).flatmap(lambda k: st.tuples(
    st.permutations(range(k)), st.integers(1, 4), st.integers(0, 2**32 - 1),
    st.sampled_from(["linear", "relu"]))))
def test_loss_invariant_gradient_equivariant_under_neuron_permutations(data):
    perm, d, seed, target = np.array(data[0]), data[1], data[2], data[3]
    k = perm.size
    rng = np.random.default_rng(seed)
    if target == "linear":
        model = ls.TwoLayerReLU(n_hidden=k, target=ls.LinearTarget(rng.standard_normal(d)))
    else:
        model = ls.TwoLayerReLU(n_hidden=k, target=ls.ReluTarget(
            rng.standard_normal((2, d)), a_star=[1.0, -0.5]))
    a, W = rng.standard_normal(k), rng.standard_normal((k, d))
    x, xp = model.flatten((a, W)), model.flatten((a[perm], W[perm]))
    assert_allclose(model.loss(xp), model.loss(x), rtol=INVARIANCE_RTOL, atol=EXACT_ATOL)
    ga, gW = model.unflatten(model.grad(x))
    gpa, gpW = model.unflatten(model.grad(xp))
    assert_close(gpa, ga[perm], INVARIANCE_RTOL)
    assert_close(gpW, gW[perm], INVARIANCE_RTOL)


@HYPOTHESIS
@given(st.integers(1, 4).flatmap(lambda d: st.tuples(
    st.permutations(range(d)), st.integers(1, 4), st.integers(0, 2**32 - 1))))
def test_linear_target_invariant_under_coordinate_permutations(data):
    """Permuting the input coordinates of W and beta together leaves L unchanged."""
    coords, k, seed = np.array(data[0]), data[1], data[2]
    d = coords.size
    rng = np.random.default_rng(seed)
    beta, a, W = rng.standard_normal(d), rng.standard_normal(k), rng.standard_normal((k, d))
    model = ls.TwoLayerReLU(n_hidden=k, target=ls.LinearTarget(beta))
    permuted = ls.TwoLayerReLU(n_hidden=k, target=ls.LinearTarget(beta[coords]))
    x, xp = model.flatten((a, W)), permuted.flatten((a, W[:, coords]))
    assert_allclose(permuted.loss(xp), model.loss(x), rtol=INVARIANCE_RTOL, atol=EXACT_ATOL)
    ga, gW = model.unflatten(model.grad(x))
    gpa, gpW = permuted.unflatten(permuted.grad(xp))
    assert_close(gpa, ga, INVARIANCE_RTOL)
    assert_close(gpW, gW[:, coords], INVARIANCE_RTOL)
