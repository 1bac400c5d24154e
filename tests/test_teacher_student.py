"""ReluTeacherStudent: Monte Carlo, the degenerate set, known values, permutation symmetry.

The generic-point derivative checks live in the contract suite
(test_models_contract.py); here the closed form is checked where it is hardest:
aligned, anti-aligned, tiny and zero neurons, and at the reference points of
DESIGN.md ("The mathematics").
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import landscape as ls
from _helpers import assert_close, relu

TWO_PI = 2.0 * np.pi

# ---- tolerances ---------------------------------------------------------------------
MC_SAMPLES = 2**20           # >= 10^6 Gaussian inputs
MC_CHUNK = 2**17
MC_SIGMAS = 4.0              # |MC mean - loss| <= 4 standard errors
EXACT_ATOL = 1e-14           # "exactly zero" losses and gradients
REFERENCE_RTOL = 1e-12       # closed form vs the test's own per-pair formulas
FD_STEP = 1e-6
FD_RTOL = 1e-6               # vs central differences (relative to the largest entry)
ONE_SIDED_STEP = 1e-7
ONE_SIDED_RTOL = 1e-5        # forward difference of the gradient: error O(h)
LIMIT_ATOL = 1e-14           # Hessian blocks vs their exact limits at theta = 0, pi
EIG_ZERO_ATOL = 1e-10        # "zero" eigenvalue
PSD_ATOL = 1e-10
SCALING_RTOL = 1e-12         # homogeneity identities at tiny neurons
SLOPE_TOL = 0.1
PERMUTATION_RTOL = 1e-13
HYPOTHESIS = settings(max_examples=25, deadline=None)




# ---- an independent, per-pair implementation of DESIGN.md's formulas -----------------
# Pairs whose angle is exactly 0 or pi by construction are passed in `limits`, and the
# hand-derived limits are used for them; every other pair uses the textbook formulas
# (with an accurate angle, so that they also serve as a reference at theta ~ 1e-9).
def angle(u, w):
    """Kahan's formula 2 atan2(|ubar - wbar|, |ubar + wbar|): accurate at every angle."""
    ub, wb = u / np.linalg.norm(u), w / np.linalg.norm(w)
    return 2.0 * np.arctan2(np.linalg.norm(ub - wb), np.linalg.norm(ub + wb))


def kappa(u, w):
    t = angle(u, w)
    return np.linalg.norm(u) * np.linalg.norm(w) * (np.sin(t) + (np.pi - t) * np.cos(t)) / TWO_PI


def dkappa(w, u, limit=None):
    """grad_w kappa(w, u) = ((pi - t) u + |u| sin t wbar) / (2 pi); u/2 at t = 0, 0 at t = pi."""
    if limit == 0:
        return u / 2
    if limit == np.pi:
        return np.zeros_like(u)
    t = angle(w, u)
    return ((np.pi - t) * u + np.linalg.norm(u) * np.sin(t) * w / np.linalg.norm(w)) / TWO_PI


def h1(w, v, limit=None):
    """Hessian of kappa(w, v) in w: |v| sin t / (2 pi |w|) (I - wbar wbar^T + n n^T).

    n = unit(vbar - cos t wbar); the block is 0 at t = 0 and t = pi.
    """
    d = w.size
    if limit is not None:
        return np.zeros((d, d))
    t = angle(w, v)
    wb, vb = w / np.linalg.norm(w), v / np.linalg.norm(v)
    n = vb - np.cos(t) * wb
    n /= np.linalg.norm(n)
    return (np.linalg.norm(v) * np.sin(t) / (TWO_PI * np.linalg.norm(w))
            * (np.eye(d) - np.outer(wb, wb) + np.outer(n, n)))


def h2(w, u, limit=None):
    """d/du grad_w kappa(w, u) = [(pi - t) I + sin t (n_wu n_uw^T + wbar ubar^T)] / (2 pi).

    n_wu = unit(ubar - cos t wbar), n_uw = unit(wbar - cos t ubar); I/2 at t = 0, 0 at t = pi.
    """
    d = w.size
    if limit == 0:
        return np.eye(d) / 2
    if limit == np.pi:
        return np.zeros((d, d))
    t = angle(w, u)
    wb, ub = w / np.linalg.norm(w), u / np.linalg.norm(u)
    n_wu = (ub - np.cos(t) * wb) / np.sin(t)
    n_uw = (wb - np.cos(t) * ub) / np.sin(t)
    rank2 = np.outer(n_wu, n_uw) + np.outer(wb, ub)
    return ((np.pi - t) * np.eye(d) + np.sin(t) * rank2) / TWO_PI


def reference_loss(W, V):
    students = sum(kappa(w, u) for w in W for u in W)
    cross = sum(kappa(w, v) for w in W for v in V)
    teachers = sum(kappa(v, u) for v in V for u in V)
    return 0.5 * students - cross + 0.5 * teachers


def reference_grad(W, V, limits=None):
    """grad_{w_i} F = w_i/2 + sum_{i' != i} dkappa(w_i, w_i') - sum_j dkappa(w_i, v_j).

    limits[(i, "w", i')] or limits[(i, "v", j)] is 0 or pi for pairs aligned by construction.
    """
    limits = limits or {}
    G = np.empty_like(W)
    for i, w in enumerate(W):
        G[i] = w / 2
        G[i] += sum(dkappa(w, W[l], limits.get((i, "w", l))) for l in range(len(W)) if l != i)
        G[i] -= sum(dkappa(w, V[j], limits.get((i, "v", j))) for j in range(len(V)))
    return G.ravel()


def reference_hess(W, V, limits=None):
    """Blocks: diagonal 1/2 I + sum h1(w_i, w_i') - sum h1(w_i, v_j), off-diagonal h2(w_i, w_l)."""
    limits = limits or {}
    k, d = W.shape
    H = np.zeros((k, d, k, d))
    for i, w in enumerate(W):
        H[i, :, i] = np.eye(d) / 2
        for l in range(k):
            if l != i:
                H[i, :, i] += h1(w, W[l], limits.get((i, "w", l)))
                H[i, :, l] = h2(w, W[l], limits.get((i, "w", l)))
        for j in range(len(V)):
            H[i, :, i] -= h1(w, V[j], limits.get((i, "v", j)))
    return H.reshape(k * d, k * d)


def symmetric_limits(limits):
    """Student-student limits hold for both orders of the pair."""
    out = dict(limits)
    out.update({(l, "w", i): t for (i, kind, l), t in limits.items() if kind == "w"})
    return out


def test_reference_formulas_match_finite_differences(fd_grad, fd_jac):
    """The test's own formulas are right at a generic point (so they can judge the model)."""
    rng = np.random.default_rng(0)
    V, W = rng.standard_normal((3, 4)), rng.standard_normal((4, 4))
    x = W.ravel()
    loss = lambda y: reference_loss(y.reshape(W.shape), V)  # noqa: E731
    grad = lambda y: reference_grad(y.reshape(W.shape), V)  # noqa: E731
    assert_close(grad(x), fd_grad(loss, x, 1e-5), FD_RTOL)
    assert_close(reference_hess(W, V), fd_jac(grad, x, 1e-5), FD_RTOL)


# ---- loss vs Monte Carlo ----------------------------------------------------------------
@pytest.mark.parametrize("teacher", ["random", "identity"])
def test_loss_matches_monte_carlo(teacher):
    rng = np.random.default_rng(11)
    d = 3
    V = rng.standard_normal((2, d)) if teacher == "random" else np.eye(d)
    W = rng.standard_normal((4, d)) / np.sqrt(d)
    model = ls.ReluTeacherStudent(teacher=V, n_students=4)
    total = total_sq = 0.0
    for _ in range(MC_SAMPLES // MC_CHUNK):
        X = rng.standard_normal((MC_CHUNK, d))
        s = 0.5 * (relu(X @ W.T).sum(axis=1) - relu(X @ V.T).sum(axis=1)) ** 2
        total += s.sum()
        total_sq += (s * s).sum()
    mean = total / MC_SAMPLES
    stderr = np.sqrt((total_sq / MC_SAMPLES - mean**2) / MC_SAMPLES)
    assert abs(mean - model.loss(model.flatten(W))) <= MC_SIGMAS * stderr


# ---- the degenerate set: exactly aligned and anti-aligned neurons ----------------------
def degenerate_point(kind, rng):
    """(V, W, limits) with one pair at angle exactly 0 or pi and every other pair generic."""
    V = rng.standard_normal((3, 4))
    W = rng.standard_normal((4, 4))
    if kind == "student-on-teacher":
        W[0] = 1.7 * V[1]
        limits = {(0, "v", 1): 0}
    elif kind == "student-equals-teacher":
        W[2] = V[0]
        limits = {(2, "v", 0): 0}
    elif kind == "student-opposite-teacher":
        W[1] = -0.6 * V[2]
        limits = {(1, "v", 2): np.pi}
    elif kind == "aligned-students":
        W[3] = 2.5 * W[1]
        limits = {(1, "w", 3): 0}
    elif kind == "opposite-students":
        W[2] = -0.4 * W[0]
        limits = {(0, "w", 2): np.pi}
    elif kind == "all-at-once":
        W[0] = 1.7 * V[1]
        W[1] = 0.3 * W[0]
        W[2] = -2.0 * V[0]
        W[3] = V[2]
        limits = {(0, "v", 1): 0, (1, "v", 1): 0, (0, "w", 1): 0, (2, "v", 0): np.pi,
                  (3, "v", 2): 0}
    return V, W, symmetric_limits(limits)


DEGENERATE_KINDS = ["student-on-teacher", "student-equals-teacher", "student-opposite-teacher",
                    "aligned-students", "opposite-students", "all-at-once"]


@pytest.mark.parametrize("kind", DEGENERATE_KINDS)
def test_aligned_neurons_match_analytic_limits(kind):
    V, W, limits = degenerate_point(kind, np.random.default_rng(3))
    model = ls.ReluTeacherStudent(teacher=V, n_students=len(W))
    x = model.flatten(W)
    L, g, H = model.loss(x), model.grad(x), model.hess(x)
    assert np.isfinite(L) and np.all(np.isfinite(g)) and np.all(np.isfinite(H))
    assert model.is_differentiable(x)
    assert_allclose(L, reference_loss(W, V), rtol=REFERENCE_RTOL)
    assert_close(g, reference_grad(W, V, limits), REFERENCE_RTOL)
    assert_close(H, reference_hess(W, V, limits), REFERENCE_RTOL)


@pytest.mark.parametrize("kind", DEGENERATE_KINDS)
def test_aligned_hessian_blocks_equal_their_limits(kind):
    """h2 -> I/2 (theta = 0) or 0 (theta = pi); h1 of an aligned teacher drops out."""
    V, W, limits = degenerate_point(kind, np.random.default_rng(3))
    k, d = W.shape
    model = ls.ReluTeacherStudent(teacher=V, n_students=k)
    H = model.hess(model.flatten(W)).reshape(k, d, k, d)
    for (i, what, l), t in limits.items():
        if what == "w":
            limit_block = np.eye(d) / 2 if t == 0 else np.zeros((d, d))
            assert_allclose(H[i, :, l], limit_block, rtol=0, atol=LIMIT_ATOL)
    # A diagonal block is 1/2 I plus the h1 terms of its generic pairs only: the h1 of an
    # aligned or anti-aligned partner vanishes.
    for i in {key[0] for key in limits}:
        generic = np.eye(d) / 2
        generic += sum(h1(W[i], W[m]) for m in range(k) if m != i and (i, "w", m) not in limits)
        generic -= sum(h1(W[i], V[j]) for j in range(len(V)) if (i, "v", j) not in limits)
        assert_close(H[i, :, i], generic, REFERENCE_RTOL)


@pytest.mark.parametrize("kind", DEGENERATE_KINDS)
def test_aligned_derivatives_match_finite_differences(kind, fd_grad):
    """The loss is C^2 across the aligned set: differences in every direction agree."""
    rng = np.random.default_rng(3)
    V, W, _ = degenerate_point(kind, rng)
    model = ls.ReluTeacherStudent(teacher=V, n_students=len(W))
    x = model.flatten(W)
    g, H = model.grad(x), model.hess(x)
    assert_close(g, fd_grad(model.loss, x, FD_STEP), FD_RTOL)
    # One-sided difference of the gradient along generic directions (off the aligned set).
    for _ in range(3):
        u = rng.standard_normal(x.size)
        u /= np.linalg.norm(u)
        forward = (model.grad(x + ONE_SIDED_STEP * u) - g) / ONE_SIDED_STEP
        assert_allclose(forward, H @ u, rtol=0, atol=ONE_SIDED_RTOL * np.abs(H).max())


def _rotated(w, p, theta):
    """w rotated by theta towards the unit vector p (p orthogonal to w)."""
    return np.cos(theta) * w + np.sin(theta) * np.linalg.norm(w) * p


@pytest.mark.parametrize("pair", ["student-teacher", "student-student"])
@pytest.mark.parametrize("theta", [1e-9, 1e-6])
def test_near_aligned_pairs_are_continuous_with_the_limit(pair, theta):
    rng = np.random.default_rng(5)
    V, W = rng.standard_normal((3, 4)), rng.standard_normal((4, 4))
    target = V[0] if pair == "student-teacher" else W[1]
    W[0] = 1.3 * target
    p = rng.standard_normal(4)
    p -= (p @ target) / (target @ target) * target
    p /= np.linalg.norm(p)
    model = ls.ReluTeacherStudent(teacher=V, n_students=4)
    x0 = model.flatten(W)
    W[0] = _rotated(W[0], p, theta)
    x = model.flatten(W)
    dx = x - x0
    g0, H0 = model.grad(x0), model.hess(x0)
    scale = np.linalg.norm(H0, 2)
    # gradient: Lipschitz, and first-order accurate with the limit Hessian
    dg = model.grad(x) - g0
    assert np.linalg.norm(dg) <= 2 * scale * np.linalg.norm(dx)
    assert np.linalg.norm(dg - H0 @ dx) <= scale * np.linalg.norm(dx) ** 2 + 1e-14 * scale
    # Hessian: the h1 and h2 blocks move by O(theta)
    assert np.linalg.norm(model.hess(x) - H0, 2) <= 10 * scale * theta
    assert abs(model.loss(x) - model.loss(x0)) <= 2 * np.linalg.norm(g0) * np.linalg.norm(dx)
    # and the near-aligned point itself is computed accurately (no premature limit)
    assert_close(model.grad(x), reference_grad(W, V), REFERENCE_RTOL)
    assert_close(model.hess(x), reference_hess(W, V), REFERENCE_RTOL)


ANGLE_ATOL = 2 * np.spacing(np.pi)   # 2 ulp of pi: first-order angles vs the construction


@pytest.mark.parametrize("pair", ["student-teacher", "student-student"])
@pytest.mark.parametrize("phi", [0.0, 1e-12, 1e-9, 1e-6, 0.2, 0.45, 1.0])
@pytest.mark.parametrize("anti", [False, True], ids=["parallel", "antiparallel"])
def test_first_order_angles_are_exact_near_parallel(pair, phi, anti):
    """The first-order path's angles (2 asin(|w - e u| / 2) where |cos| > 0.9, arccos
    elsewhere) against the angle the pair was built with, in both orientations."""
    d = 3
    u = np.array([1.0, 0.0, 0.0])
    w = np.array([np.cos(phi), np.sin(phi), 0.0])
    if anti:
        w = -w
    theta = np.pi - phi if anti else phi
    others = np.array([[0.0, 0.0, 1.0], [0.3, -0.2, 0.9]])
    if pair == "student-teacher":
        V, W = np.vstack([u, others]), np.vstack([2.0 * w, others[::-1]])
        column = len(W)                              # pair (student 0, teacher 0)
    else:
        V, W = others, np.vstack([2.0 * w, 0.5 * u])
        column = 1                                   # pair (student 0, student 1)
    model = ls.ReluTeacherStudent(teacher=V, n_students=len(W))
    nW, _, cos, sin, pt = model._engine._angles(W[None].copy())
    assert abs(pt[0, 0, column] - (np.pi - theta)) <= ANGLE_ATOL
    assert abs(sin[0, 0, column] - np.sin(theta)) <= ANGLE_ATOL
    assert abs(cos[0, 0, column] - np.cos(theta)) <= ANGLE_ATOL
    assert (pt[0, 0, 0], sin[0, 0, 0], cos[0, 0, 0]) == (np.pi, 0.0, 1.0)      # self-pair
    # the second-order path (Kahan's formula) agrees
    U = np.vstack([W, V])
    nU = np.linalg.norm(U, axis=1)
    _, _, theta2 = ls.models._kernels.pair_angles(W[None], U[None], nW, nU[None],
                                                  self_pairs=True)
    assert abs(theta2[0, 0, column] - theta) <= ANGLE_ATOL


def test_results_do_not_alias_scratch_buffers():
    """The first-order kernels reuse scratch buffers: nothing they return may alias them."""
    rng = np.random.default_rng(3)
    model = ls.ReluTeacherStudent(teacher=rng.standard_normal((3, 4)), n_students=4)
    X = model.sample_init(8, rng=rng)
    kept = model.grad(X[0]), model.loss_batch(X[:4]), model.grad_batch(X)
    copies = [a.copy() for a in kept]
    model.grad_batch(model.sample_init(8, rng=rng))          # the same buffers, new values
    model.grad(X[5])
    model.loss_batch(X[4:])
    for a, b in zip(kept, copies):
        np.testing.assert_array_equal(a, b)


# ---- tiny and zero neurons -----------------------------------------------------------------
@pytest.mark.parametrize("t", [1e-8, 1e-30, 1e-200])
def test_tiny_neuron_obeys_homogeneity(t, fd_grad, fd_jac):
    """A neuron t * u (|u| = 1): derivatives follow exactly from those at t = 1.

    kappa is 1-homogeneous in each argument, so with F_1 the model at t = 1 and F_0 the
    model without the neuron: g_i(t) = g_i(1) - u/2 + t u/2, g_l(t) = g_l^0 + t (g_l(1) - g_l^0),
    H_ii(t) = I/2 + (H_ii(1) - I/2)/t, H_il(t) = H_il(1), H_ll(t) = H_ll^0 + t (H_ll(1) - H_ll^0).
    """
    rng = np.random.default_rng(8)
    V, W = rng.standard_normal((3, 4)), rng.standard_normal((4, 4))
    k, d = W.shape
    W[0] /= np.linalg.norm(W[0])
    model = ls.ReluTeacherStudent(teacher=V, n_students=k)
    without = ls.ReluTeacherStudent(teacher=V, n_students=k - 1)
    x1, x0 = model.flatten(W), without.flatten(W[1:])
    g1, H1 = model.grad(x1).reshape(k, d), model.hess(x1).reshape(k, d, k, d)
    # the unit-norm point is generic: check it first
    assert_close(g1.ravel(), fd_grad(model.loss, x1, 1e-5), FD_RTOL)
    assert_close(H1.reshape(k * d, -1), fd_jac(model.grad, x1, 1e-5), FD_RTOL)
    g0 = without.grad(x0).reshape(k - 1, d)
    H0 = without.hess(x0).reshape(k - 1, d, k - 1, d)

    Wt = W.copy()
    Wt[0] *= t
    xt = model.flatten(Wt)
    L, g, H = model.loss(xt), model.grad(xt).reshape(k, d), model.hess(xt).reshape(k, d, k, d)
    assert np.isfinite(L) and np.all(np.isfinite(g)) and np.all(np.isfinite(H))
    assert model.is_differentiable(xt)
    u, eye = W[0], np.eye(d)
    assert_close(g[0], g1[0] - u / 2 + t * u / 2, SCALING_RTOL)
    assert_close(g[1:], g0 + t * (g1[1:] - g0), SCALING_RTOL)
    assert_close(H[0, :, 0], eye / 2 + (H1[0, :, 0] - eye / 2) / t, SCALING_RTOL)
    assert_close(H[0, :, 1:], H1[0, :, 1:], SCALING_RTOL)
    for l in range(1, k):
        assert_close(H[l, :, l], H0[l - 1, :, l - 1] + t * (H1[l, :, l] - H0[l - 1, :, l - 1]),
                     SCALING_RTOL)
    # the other neurons are generic: central differences in their coordinates
    fd = fd_grad(lambda y: model.loss(np.concatenate([xt[:d], y])), xt[d:], FD_STEP)
    assert_close(g[1:].ravel(), fd, FD_RTOL)
    # the loss tends to the loss without the neuron, linearly in t
    assert abs(L - without.loss(x0)) <= t * (np.abs(g1).sum() + 1.0) + EXACT_ATOL


@pytest.mark.parametrize("zero", [0, 2])
def test_zero_neuron_is_not_differentiable(zero):
    rng = np.random.default_rng(9)
    V, W = rng.standard_normal((2, 3)), rng.standard_normal((4, 3))
    W[zero] = 0.0
    model = ls.ReluTeacherStudent(teacher=V, n_students=4)
    x = model.flatten(W)
    assert not model.is_differentiable(x)
    match = rf"neuron {zero}\b"
    with pytest.raises(ls.NonDifferentiableError, match=match) as err:
        model.grad(x)
    assert err.value.neurons == (zero,)
    with pytest.raises(ls.NonDifferentiableError, match=match):
        model.hess(x)
    with pytest.raises(ls.NonDifferentiableError, match=match):
        model.hvp(x, np.ones_like(x))
    X = np.stack([rng.standard_normal(x.size), x])
    assert model.is_differentiable_batch(X).tolist() == [True, False]
    with pytest.raises(ls.NonDifferentiableError, match=rf"row 1, neuron {zero}\b"):
        model.grad_batch(X)
    # the loss is defined there and equals the loss of the network without the neuron
    without = ls.ReluTeacherStudent(teacher=V, n_students=3)
    L = model.loss(x)
    assert np.isfinite(L)
    assert_allclose(L, without.loss(without.flatten(np.delete(W, zero, axis=0))),
                    rtol=REFERENCE_RTOL)
    assert_allclose(model.loss_batch(X)[1], L, rtol=REFERENCE_RTOL)


# ---- known values (DESIGN.md) -----------------------------------------------------------
@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_identity_teacher_global_minimum(k):
    model = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    x = model.flatten(np.eye(k))
    assert abs(model.loss(x)) <= EXACT_ATOL
    assert np.max(np.abs(model.grad(x))) <= EXACT_ATOL
    assert model.optimal_loss == 0.0
    eigenvalues = np.linalg.eigvalsh(model.hess(x))
    assert_allclose(eigenvalues[0], 0.25 - 1 / TWO_PI, rtol=REFERENCE_RTOL)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_identity_teacher_loss_near_the_origin(k):
    """F(tW) = F0 - t S + t^2 A / 2 exactly (kappa is bilinear under scaling).

    F0 = k/4 + k(k-1)/(4 pi), S = sum kappa(w_i, v_j), A = sum kappa(w_i, w_i').
    """
    rng = np.random.default_rng(k)
    V, W = np.eye(k), rng.standard_normal((k, k))
    model = ls.ReluTeacherStudent(teacher=V, n_students=k)
    F0 = k / 4 + k * (k - 1) / (4 * np.pi)
    S = sum(kappa(w, v) for w in W for v in V)
    A = sum(kappa(w, u) for w in W for u in W)
    assert_allclose(model.loss(model.flatten(1e-8 * W)), F0, rtol=1e-7)
    for t in [1e-8, 1e-5, 1e-2, 1.0]:
        F = model.loss(model.flatten(t * W))
        assert_allclose(F, F0 - t * S + 0.5 * t**2 * A, rtol=REFERENCE_RTOL)
    # the linear approach: (F(tW) - F0) / t -> -S
    for t in [1e-4, 1e-6]:
        slope = (model.loss(model.flatten(t * W)) - F0) / t
        assert abs(slope + S) <= t * A + 1e-9


def split_neuron_point(n):
    """V = I_n; students (v1/2, v1/2, v2, ..., vn)."""
    return np.eye(n), np.vstack([np.eye(n)[:1] / 2, np.eye(n)[:1] / 2, np.eye(n)[1:]])


@pytest.mark.parametrize("n", [2, 3, 4])
def test_split_neuron_global_minimum(n):
    V, W = split_neuron_point(n)
    model = ls.ReluTeacherStudent(teacher=V, n_students=n + 1)
    x = model.flatten(W)
    assert abs(model.loss(x)) <= EXACT_ATOL
    assert np.max(np.abs(model.grad(x))) <= EXACT_ATOL
    H = model.hess(x)
    eigenvalues = np.linalg.eigvalsh(H)
    assert eigenvalues[0] >= -PSD_ATOL
    assert np.min(np.abs(eigenvalues)) <= EIG_ZERO_ATOL
    # the flat direction: move mass between the halves, w1 + w2 fixed
    shift = np.zeros_like(W)
    shift[0, 0], shift[1, 0] = 1.0, -1.0
    assert np.max(np.abs(H @ shift.ravel())) <= EIG_ZERO_ATOL
    assert abs(model.loss(model.flatten(W + 0.1 * shift))) <= EXACT_ATOL


def test_split_neuron_rotation_raises_loss_cubically():
    """Rotating the halves apart by eps raises F as Theta(eps^3).

    Exactly F = (1 - cos eps)^2 / 4 + (h(2 eps) / 4 - h(eps)) / (2 pi) ~ eps^3 / (6 pi).
    """
    n = 3
    V, W = split_neuron_point(n)
    model = ls.ReluTeacherStudent(teacher=V, n_students=n + 1)
    e1, e2 = np.eye(n)[0], np.eye(n)[1]
    h = lambda t: np.sin(t) - t * np.cos(t)  # noqa: E731
    eps = np.geomspace(1e-3, 1e-1, 9)
    F = []
    for s in eps:
        Ws = W.copy()
        Ws[0] = 0.5 * (np.cos(s) * e1 + np.sin(s) * e2)
        Ws[1] = 0.5 * (np.cos(s) * e1 - np.sin(s) * e2)
        F.append(model.loss(model.flatten(Ws)))
    F = np.array(F)
    exact = 0.25 * (1 - np.cos(eps)) ** 2 + (h(2 * eps) / 4 - h(eps)) / TWO_PI
    assert_allclose(F, exact, rtol=1e-6, atol=EXACT_ATOL)
    slope = np.polyfit(np.log(eps), np.log(F), 1)[0]
    assert abs(slope - 3.0) <= SLOPE_TOL, slope
    assert_allclose(F[0] / eps[0] ** 3, 1 / (6 * np.pi), rtol=1e-2)   # next term: eps^4 / 16


def test_optimal_loss_known_only_when_realisable():
    V = np.random.default_rng(0).standard_normal((3, 2))
    assert ls.ReluTeacherStudent(teacher=V, n_students=3).optimal_loss == 0.0
    assert ls.ReluTeacherStudent(teacher=V, n_students=5).optimal_loss == 0.0
    assert ls.ReluTeacherStudent(teacher=V, n_students=2).optimal_loss is None


# ---- permutation symmetry (hypothesis) -------------------------------------------------------
@st.composite
def students_and_permutation(draw, max_k=5):
    k = draw(st.integers(1, max_k))
    d = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    perm = np.array(draw(st.permutations(range(k))))
    return k, d, seed, perm


@HYPOTHESIS
@given(students_and_permutation())
def test_loss_invariant_gradient_equivariant_under_student_permutations(data):
    k, d, seed, perm = data
    rng = np.random.default_rng(seed)
    V, W = rng.standard_normal((3, d)), rng.standard_normal((k, d))
    model = ls.ReluTeacherStudent(teacher=V, n_students=k)
    x, xp = model.flatten(W), model.flatten(W[perm])
    assert_allclose(model.loss(xp), model.loss(x), rtol=PERMUTATION_RTOL, atol=EXACT_ATOL)
    assert_close(model.grad(xp).reshape(k, d), model.grad(x).reshape(k, d)[perm],
                 PERMUTATION_RTOL)
    # and the teacher's order does not matter either
    teacher_perm = rng.permutation(3)
    other = ls.ReluTeacherStudent(teacher=V[teacher_perm], n_students=k)
    assert_allclose(other.loss(x), model.loss(x), rtol=PERMUTATION_RTOL, atol=EXACT_ATOL)


@HYPOTHESIS
@given(st.integers(1, 5).flatmap(lambda k: st.tuples(
    st.permutations(range(k)), st.permutations(range(k)), st.integers(0, 2**32 - 1))))
def test_identity_teacher_invariant_under_students_and_coordinates(data):
    """V = I: permuting students and input coordinates together leaves F unchanged."""
    perm, coords, seed = (np.array(data[0]), np.array(data[1]), data[2])
    k = perm.size
    W = np.random.default_rng(seed).standard_normal((k, k))
    model = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    x, xp = model.flatten(W), model.flatten(W[perm][:, coords])
    assert_allclose(model.loss(xp), model.loss(x), rtol=PERMUTATION_RTOL, atol=EXACT_ATOL)
    G = model.grad(x).reshape(k, k)
    assert_close(model.grad(xp).reshape(k, k), G[perm][:, coords], PERMUTATION_RTOL)
