"""Critical-point finders, batched descent and descend-then-polish.

Known answers (global minima and strict saddles of the teacher-student loss, the
degenerate saddle of a two-layer network with a linear target), concordance of
the three root-finders with each other and with ``scipy.optimize.root``,
Newton's quadratic order, Newton-MR at degenerate points, trust-region from
farther away, the behaviour of ``descend`` (batched == looped, records,
plateaus, gradient flow, failures as data), the COLT'21 protocol, pushes off
saddles, bad input and result round trips.
"""

import json

import autograd.numpy as anp
import numpy as np
import pytest
import scipy.optimize
from numpy.testing import assert_allclose, assert_array_equal

import landscape as ls
from landscape.critical import Status, descend_and_polish, newton_batch
from landscape.critical.newton import dense_directions
from landscape.spectrum import min_curvature, smallest_eigenvalues

METHODS = ("newton", "newton-mr", "trust-region")

# ---- tolerances ---------------------------------------------------------------------
GTOL = 1e-12                 # certified critical point: |grad L| <= GTOL
LOSS_ATOL = 1e-12            # "zero" loss at a global minimum
X_ATOL = 1e-8                # same critical point (distance in parameter space)
TEACHER_ATOL = 1e-10         # W = V up to permutation at a nondegenerate minimum
NEARBY = 0.05                # scale of the perturbation for "nearby" starts
SADDLE_NEARBY = 1e-3         # ... around a strict saddle
AT_SOLUTION = 1e-13          # a start perturbed off a solution by rounding-size noise
ORDER_LOW, ORDER_HIGH = 1.7, 2.3   # fitted convergence order of Newton
ROUNDING_FLOOR = 1e-13       # gradient norms below this are rounding, not convergence
CURVATURE_ATOL = 1e-6        # nondegenerate: every |eigenvalue| above this
ZERO_EIGENVALUE = 1e-10      # a zero Hessian eigenvalue
LEVEL_ATOL = 1e-8            # two losses belong to one level
SPURIOUS_LEVEL = 0.0215      # the spurious level of V = I_8, k = 8 (Safran et al. 2021)
SPURIOUS_LEVEL_ATOL = 5e-4
AGREEMENT = 0.99             # fraction of starts where polished and plain GD agree
FLOW_GD_ATOL = 1e-6          # flow and GD end at the same minimum
FIRST_ORDER_LOW, FIRST_ORDER_HIGH = 1.8, 2.2   # GD vs flow error ratio when lr halves


# ---- helpers ------------------------------------------------------------------------
def matched_rows(W, V):
    """W's rows reordered to best match V's rows (students matched to teachers)."""
    cost = np.linalg.norm(W[:, None, :] - V[None, :, :], axis=2)
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    out = np.empty_like(V)
    out[cols] = W[rows]
    return out


def eigenvalues(model, x):
    return np.linalg.eigvalsh(model.hess(x))


def teacher_student(n, k=None):
    return ls.ReluTeacherStudent(teacher=np.eye(n), n_students=n if k is None else k)


# Three students arranged cyclically on the teacher directions e1, e2, e3 and one on e4:
# Newton from here lands on a nondegenerate index-1 saddle of V = I_4, k = 4 (loss 0.02396).
CYCLIC_START = np.array([[0.65, 0.65, -0.31, 0.0],
                         [0.0, 0.0, 0.0, 1.05],
                         [0.65, -0.31, 0.65, 0.0],
                         [-0.31, 0.65, 0.65, 0.0]])
CYCLIC_SADDLE_LOSS = 0.023957718810891


@pytest.fixture(scope="module")
def saddle():
    """(model, x) of the strict saddle of V = I_4, k = 4 reached from CYCLIC_START."""
    model = teacher_student(4)
    r = ls.find_critical_point(model, model.flatten(CYCLIC_START), method="newton")
    assert r.success
    return model, r.x


# ---- known answers ------------------------------------------------------------------
@pytest.mark.parametrize("n", [4, 6])
@pytest.mark.parametrize("method", METHODS)
def test_global_minimum_reached_from_nearby(n, method):
    model = teacher_student(n)
    rng = np.random.default_rng(n)
    for _ in range(3):
        W0 = np.eye(n)[rng.permutation(n)] + NEARBY * rng.standard_normal((n, n))
        r = ls.find_critical_point(model, model.flatten(W0), method=method)
        assert r.success, r.message
        assert r.status == Status.CONVERGED
        assert r.grad_norm <= GTOL
        assert abs(r.loss) <= LOSS_ATOL
        assert_allclose(matched_rows(model.unflatten(r.x), np.eye(n)), np.eye(n),
                        atol=TEACHER_ATOL)
        assert r.nfev >= r.nit + 1


def test_cyclic_point_is_a_nondegenerate_strict_saddle(saddle):
    model, xs = saddle
    assert np.linalg.norm(model.grad(xs)) <= GTOL
    assert_allclose(model.loss(xs), CYCLIC_SADDLE_LOSS, rtol=1e-10)
    lam = eigenvalues(model, xs)
    assert np.count_nonzero(lam < 0) == 1
    assert lam[0] < -0.04
    assert np.min(np.abs(lam)) > CURVATURE_ATOL


@pytest.mark.parametrize("method", METHODS)
def test_strict_saddle_found_from_nearby(saddle, method):
    model, xs = saddle
    rng = np.random.default_rng(11)
    for _ in range(4):
        x0 = xs + SADDLE_NEARBY * rng.standard_normal(xs.size)
        r = ls.find_critical_point(model, x0, method=method)
        assert r.success, r.message
        assert r.grad_norm <= GTOL
        assert np.linalg.norm(r.x - xs) <= X_ATOL
        assert eigenvalues(model, r.x)[0] < 0


@pytest.mark.parametrize("method", METHODS)
def test_start_at_a_solution_returns_it(saddle, method):
    model, xs = saddle
    rng = np.random.default_rng(3)
    for x in (teacher_student(4).flatten(np.eye(4)), xs):
        r = ls.find_critical_point(model, x, method=method)
        assert r.success and r.nit == 0 and r.nfev == 1
        assert_array_equal(r.x, x)
        r = ls.find_critical_point(model, x + AT_SOLUTION * rng.standard_normal(x.size),
                                   method=method)
        assert r.success and r.nit <= 1
        assert np.linalg.norm(r.x - x) <= X_ATOL


def test_two_layer_linear_target_degenerate_saddle():
    # a = 0, w_i orthogonal to beta: grad_a L = K a - W beta / 2 = 0 and grad_W L = 0, but
    # the mixed block d^2L / da_i dw_i = -beta / 2 gives negative curvature.
    beta = np.array([1.0, 0.0, 0.0])
    model = ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget(beta))
    x = model.flatten(([0.0, 0.0], [[0.0, 1.0, 0.5], [0.0, -0.3, 1.0]]))
    assert np.linalg.norm(model.grad(x)) <= GTOL
    assert_allclose(model.loss(x), 0.5 * beta @ beta, rtol=1e-14)
    lam = eigenvalues(model, x)
    assert lam[0] < -0.2
    assert np.count_nonzero(np.abs(lam) <= ZERO_EIGENVALUE) >= 2     # a degenerate saddle
    for method in METHODS:
        r = ls.find_critical_point(model, x, method=method)
        assert r.success and r.nit == 0
    rng = np.random.default_rng(0)
    for method in ("newton-mr", "trust-region"):
        for _ in range(3):
            r = ls.find_critical_point(model, x + SADDLE_NEARBY * rng.standard_normal(x.size),
                                       method=method)
            assert r.success, r.message
            a, W = model.unflatten(r.x)
            # back on the set of such saddles: a = 0 and W beta = 0
            assert_allclose(a, 0.0, atol=X_ATOL)
            assert_allclose(W @ beta, 0.0, atol=X_ATOL)
            assert eigenvalues(model, r.x)[0] < 0


def test_zero_neuron_start_is_reported_not_raised():
    model = teacher_student(3)
    W0 = np.eye(3)
    W0[1] = 0.0
    for method in METHODS:
        r = ls.find_critical_point(model, model.flatten(W0), method=method)
        assert not r.success
        assert r.status == Status.NON_DIFFERENTIABLE
        assert "zero neuron" in r.message
        assert r.nit == 0


def test_maxiter_zero_reports_maxiter():
    model = teacher_student(3)
    x0 = model.flatten(np.eye(3) + 0.1)
    r = ls.find_critical_point(model, x0, maxiter=0)
    assert not r.success and r.nit == 0 and r.status == Status.MAXITER
    assert "maximum number of iterations" in r.message
    assert_array_equal(r.x, x0)


# ---- concordance --------------------------------------------------------------------
def _generic_teacher_model():
    V = np.eye(3) + 0.3 * np.random.default_rng(7).standard_normal((3, 3))
    return ls.ReluTeacherStudent(teacher=V, n_students=3), V


@pytest.mark.parametrize("case", ["identity-minimum", "identity-saddle", "generic-minimum"])
def test_methods_agree_with_each_other_and_scipy_root(case, saddle):
    if case == "generic-minimum":
        model, V = _generic_teacher_model()
        centre, scale = model.flatten(V), 0.05
    elif case == "identity-minimum":
        model, centre, scale = teacher_student(4), np.eye(4).ravel(), 0.05
    else:
        (model, centre), scale = saddle, 0.02
    rng = np.random.default_rng(1)
    for _ in range(3):
        x0 = centre + scale * rng.standard_normal(centre.size)
        results = [ls.find_critical_point(model, x0, method=m) for m in METHODS]
        reference = scipy.optimize.root(model.grad, x0, jac=model.hess, method="hybr")
        assert reference.success, reference.message
        for r in results:
            assert r.success, (r.method, r.message)
            assert_allclose(r.x, results[0].x, rtol=0, atol=X_ATOL)
            assert_allclose(r.x, reference.x, rtol=0, atol=X_ATOL)


# ---- one batched driver -------------------------------------------------------------
@pytest.mark.parametrize("method", ["newton", "newton-mr"])
def test_find_critical_point_is_the_one_start_case_of_newton_batch(saddle, method):
    model, xs = saddle
    rng = np.random.default_rng(2)
    X0 = np.vstack([xs + 0.02 * rng.standard_normal((3, xs.size)),             # -> the saddle
                    np.eye(4).ravel() + NEARBY * rng.standard_normal((3, xs.size)),  # -> W = I
                    model.sample_init(2, rng=rng)])                           # from anywhere
    b = newton_batch(model, X0, gtol=GTOL, maxiter=100, method=method, manifold=None)
    X, gn, ok, nit = b.x, b.grad_norm, b.success, b.nit
    for i, x0 in enumerate(X0):
        r = ls.find_critical_point(model, x0, method=method, gtol=GTOL, maxiter=100)
        assert ok[i] == r.success, (i, r.message)
        assert_allclose(X[i], r.x, rtol=0, atol=X_ATOL)
        # batched and one-row gradients may round differently: that can decide one step
        # at the rounding floor, never more
        assert abs(nit[i] - r.nit) <= 1
        if r.success:
            assert gn[i] <= GTOL
    assert ok[:6].all()                          # the nearby starts converge


def test_newton_line_search_decreases_the_gradient_norm_every_step():
    # f = sum log cosh x_i, grad f = tanh x: from |x_i| > 1.09 the full Newton step
    # x -> x - sinh x cosh x overshoots to a larger |tanh|; the backtracking on |grad f|^2
    # shortens it, and every accepted step decreases |grad f|
    model = ls.AutogradModel(lambda x: anp.sum(anp.log(anp.cosh(x))), 2)
    x0 = np.array([1.3, -1.2])
    full_step = np.linalg.norm(np.linalg.solve(model.hess(x0), model.grad(x0)))
    r = ls.find_critical_point(model, x0, method="newton", history=True)
    assert r.success, r.message
    g = r.history["grad_norm"]
    assert np.all(g[1:] < g[:-1])
    assert r.history["step"][1] < 0.75 * full_step          # halved at least once
    assert_allclose(r.x, [0.0, 0.0], atol=GTOL)             # |tanh x| <= GTOL


def test_newton_batch_returns_unusable_starts_unchanged():
    model = teacher_student(3)
    W = np.eye(3)
    W[1] = 0.0                                   # a zero neuron: L is not differentiable
    X0 = np.vstack([model.flatten(W), np.eye(3).ravel() + 0.01])
    for method in ("lm", "newton", "newton-mr"):
        b = newton_batch(model, X0, gtol=GTOL, method=method)
        X, gn, ok, nit = b.x, b.grad_norm, b.success, b.nit
        assert_array_equal(X[0], X0[0])
        assert b.status[0] != int(ls.Status.CONVERGED) and len(b.message) == 2
        assert np.isnan(gn[0]) and not ok[0] and nit[0] == 0
        assert ok[1] and gn[1] <= GTOL           # the other row is not held back


def test_dense_directions_newton_and_levenberg_marquardt():
    # H with a prescribed spectrum, one eigenvalue exactly 0: Newton's solve fails there,
    # the damped step is -Q diag(lam / (lam^2 + |g|)) Q^T g (Fan & Yuan 2005)
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    model = ls.AutogradModel(lambda x: 0.0 * x[0], 5)          # only its n_params is used

    class Quadratic(type(model)):
        def hess_kernel(self, X):
            return np.stack([(Q * lam) @ Q.T for lam in spectra])

    spectra = [np.array([-2.0, -0.5, 0.3, 1.0, 4.0]), np.array([-1.0, 0.0, 0.5, 1.0, 2.0])]
    quad = Quadratic(lambda x: 0.0 * x[0], 5)
    G = rng.standard_normal((2, 5))
    P, HP = dense_directions(quad, np.zeros((2, 5)), G, damped=False)
    assert_allclose(P[0], -Q @ ((Q.T @ G[0]) / spectra[0]), rtol=1e-12)
    assert_allclose(HP[0], -G[0], rtol=1e-12)
    assert np.all(np.isnan(P[1])) and np.all(np.isnan(HP[1]))    # singular: no Newton step
    P, HP = dense_directions(quad, np.zeros((2, 5)), G, damped=True)
    for lam, g, p, hp in zip(spectra, G, P, HP):
        mu = np.linalg.norm(g)
        assert_allclose(p, -Q @ (lam * (Q.T @ g) / (lam ** 2 + mu)), rtol=1e-10, atol=1e-14)
        assert_allclose(hp, (Q * lam) @ Q.T @ p, rtol=1e-12, atol=1e-14)
        assert g @ hp < 0                        # a descent direction for |grad L|^2


def test_min_progress_stops_rows_whose_gradient_does_not_halve():
    # L = eps x^2 / 2 with eps = 1e-4.  From x = 1 the damped step is -eps x / (eps + x):
    # mu = |g| = 1e-4 is far above lambda^2 = 1e-8, each step gains ~1e-4 of x, so |g| does
    # not halve in 8 iterations.  From x = 1e-7, mu = 1e-11 <= lambda^2: Newton's step, done.
    eps = 1e-4
    model = ls.AutogradModel(lambda x: 0.5 * eps * x[0] ** 2, 1)
    X = np.array([[1.0], [1e-7]])
    r = newton_batch(model, X, gtol=1e-14, maxiter=50, min_progress=8)
    assert r.status[0] == Status.SLOW and r.nit[0] == 8 and not r.success[0]
    assert 0.99 < r.x[0, 0] < 1.0                               # it did move, slowly
    assert r.status[1] == Status.CONVERGED and r.nit[1] <= 2
    plain = newton_batch(model, X[:1], gtol=1e-14, maxiter=50)
    assert plain.status[0] == Status.MAXITER and plain.nit[0] == 50
    with pytest.raises(ValueError, match="min_progress"):
        newton_batch(model, X, gtol=1e-14, min_progress=0)


# ---- Newton's quadratic order -------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_newton_converges_quadratically_at_a_nondegenerate_minimum(seed):
    n = 6
    model = teacher_student(n)
    W0 = np.eye(n) + NEARBY * np.random.default_rng(seed).standard_normal((n, n))
    r = ls.find_critical_point(model, model.flatten(W0), method="newton", history=True)
    assert r.success
    assert np.min(np.abs(eigenvalues(model, r.x))) > CURVATURE_ATOL
    g = r.history["grad_norm"]
    assert len(g) == r.nit + 1
    # |grad L| = |H e| + O(e^2) tracks the error e; fit log g_{k+1} = q log g_k + c on the
    # last pairs above the rounding floor.
    k = np.flatnonzero(g[1:] >= ROUNDING_FLOOR)[-3:]
    assert len(k) >= 2
    order = np.polyfit(np.log(g[k]), np.log(g[k + 1]), 1)[0]
    assert ORDER_LOW <= order <= ORDER_HIGH, (order, g)


# ---- degenerate critical points -----------------------------------------------------
def _ridge(x):
    return ((x[0] + x[1]) ** 2 - 1.0) ** 2


@pytest.mark.parametrize("x0, s_end", [([0.7, 0.2], 1.0), ([0.3, 0.9], 1.0),
                                        ([1.5, -0.2], 1.0), ([0.1, 0.2], 0.0)])
def test_newton_mr_converges_where_the_hessian_is_singular_everywhere(x0, s_end):
    # f(x, y) = ((x + y)^2 - 1)^2: H = f''(s) [[1, 1], [1, 1]] (s = x + y) has rank <= 1 at
    # every point; the critical points are the lines s = -1, 0, 1.
    model = ls.AutogradModel(_ridge, 2)
    assert np.linalg.matrix_rank(model.hess(x0)) == 1
    plain = ls.find_critical_point(model, x0, method="newton")
    assert not plain.success
    assert plain.status == Status.STALLED and plain.nit == 0
    assert "singular" in plain.message and "newton-mr" in plain.message
    r = ls.find_critical_point(model, x0, method="newton-mr")
    assert r.success, r.message
    assert r.grad_norm <= GTOL
    assert r.x[0] + r.x[1] == pytest.approx(s_end, abs=1e-12)
    # MINRES gives the minimum-norm step: it moves only along (1, 1)
    assert_allclose(r.x[0] - r.x[1], x0[0] - x0[1], atol=1e-12)


@pytest.mark.parametrize("n", [3, 4])
def test_newton_mr_reaches_the_split_neuron_minimum(n):
    # V = I_n, k = n + 1: W = (v1/2, v1/2, v2, ..., vn) lies on a curve of global minima.
    model = teacher_student(n, n + 1)
    W = np.vstack([np.eye(n)[0] / 2, np.eye(n)[0] / 2, np.eye(n)[1:]])
    xs = model.flatten(W)
    assert abs(model.loss(xs)) <= LOSS_ATOL
    lam = eigenvalues(model, xs)
    assert np.count_nonzero(np.abs(lam) <= ZERO_EIGENVALUE) >= 1     # H singular
    rng = np.random.default_rng(n)
    for scale in (1e-3, 1e-2, 5e-2):
        r = ls.find_critical_point(model, xs + scale * rng.standard_normal(xs.size),
                                   method="newton-mr", maxiter=200)
        assert r.success, r.message
        assert r.grad_norm <= GTOL
        assert abs(r.loss) <= LOSS_ATOL


# ---- trust region from farther away -------------------------------------------------
def _rosenbrock(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def test_trust_region_converges_from_farther_than_newton():
    # Rosenbrock's Hessian is singular on the curve y = x^2 + 1/200, next to the valley
    # floor; Newton's line-search iterates on grad f creep along it, trust-region steps
    # (Levenberg-Marquardt) do not.
    model = ls.AutogradModel(_rosenbrock, 2)
    x0 = [2.0, -2.0]
    plain = ls.find_critical_point(model, x0, method="newton", maxiter=100)
    assert not plain.success
    assert plain.status == Status.MAXITER
    assert plain.grad_norm > 1.0
    r = ls.find_critical_point(model, x0, method="trust-region", maxiter=100)
    assert r.success, r.message
    assert r.nit <= 30
    assert_allclose(r.x, [1.0, 1.0], atol=X_ATOL)


def test_trust_region_with_an_exactly_zero_eigenvalue_along_the_gradient():
    # f = (x - 1)^4 + 0 y: H = diag(12 (x - 1)^2, 0) and g = (4 (x - 1)^3, 0).  From x = 7 the
    # Gauss-Newton step is longer than the unit radius, so the secular equation is solved;
    # its zero eigenvalue has lam g = 0 and once made |p(0)| a 0 / 0 (brentq on a NaN).
    model = ls.AutogradModel(lambda x: (x[0] - 1.0) ** 4 + 0.0 * x[1], 2)
    r = ls.find_critical_point(model, [7.0, 0.5], method="trust-region", gtol=GTOL)
    assert r.success, r.message
    assert r.x[1] == 0.5                       # steps never move along the null direction
    # |grad f| = 4 |x - 1|^3 <= GTOL at a degenerate (quartic) minimum
    assert abs(r.x[0] - 1.0) <= (GTOL / 4) ** (1 / 3)


# ---- descend ------------------------------------------------------------------------
def test_descend_batched_equals_one_start_at_a_time():
    model = teacher_student(4)
    X0 = model.sample_init(8, rng=5)
    kwargs = dict(lr=0.5, gtol=1e-8, maxiter=3000, record=True)
    d = ls.descend(model, X0, **kwargs)
    assert np.all(d.success)
    assert len(np.unique(d.nit)) > 1             # rows finish (and drop out) at different times
    for i, x0 in enumerate(X0):
        one = ls.descend(model, x0, **kwargs)
        assert_array_equal(one.x[0], d.x[i])
        assert one.nit[0] == d.nit[i]
        assert one.status[0] == d.status[i]
        assert_array_equal(one.record_loss[0], d.record_loss[i])
        assert_array_equal(one.record_grad_norm[0], d.record_grad_norm[i])


def test_descend_is_deterministic_and_finished_rows_stop():
    model = teacher_student(4)
    runs = [ls.descend(model, model.sample_init(6, rng=9), lr=0.5, gtol=1e-8, maxiter=m)
            for m in (3000, 3000, 6000)]
    for field in ("x", "loss", "grad_norm", "nit", "status"):
        assert_array_equal(getattr(runs[0], field), getattr(runs[1], field))
        # a larger budget changes nothing for rows that had already finished
        assert_array_equal(getattr(runs[0], field), getattr(runs[2], field))
    d = runs[0]
    assert np.all(d.status == Status.CONVERGED) and np.all(d.grad_norm <= 1e-8)
    assert np.all(d.nit < 3000)
    # the descent's own kernel (compiled, where numba is) and the numpy kernel round the O(1)
    # terms of a ~1e-8 gradient differently: agreement to a few ulps of those terms
    assert_allclose(d.grad_norm, np.linalg.norm(model.grad_batch(d.x), axis=1), rtol=1e-12,
                    atol=1e-15)
    assert_allclose(d.loss, model.loss_batch(d.x), rtol=1e-12)
    assert d.messages == [Status.CONVERGED.message] * 6


def test_descend_record_is_log_spaced_and_nan_after_finishing():
    model = teacher_student(4)
    X0 = model.sample_init(5, rng=2)
    maxiter, n_records = 3000, 100
    d = ls.descend(model, X0, lr=0.5, gtol=1e-8, maxiter=maxiter, record=True,
                   n_records=n_records)
    at = d.record_at
    assert at[0] == 0 and at[-1] == maxiter and len(at) <= n_records
    assert np.all(np.diff(at) > 0)
    assert_array_equal(at, np.round(at))         # iterations
    ratio = maxiter ** (1 / (n_records - 1))
    big = at[:-1] >= 100                          # away from integer rounding
    assert_allclose(at[1:][big] / at[:-1][big], ratio, rtol=0.02)
    assert d.record_loss.shape == d.record_grad_norm.shape == (5, len(at))
    assert_allclose(d.record_loss[:, 0], model.loss_batch(X0), rtol=1e-14)
    for i in range(5):
        running = at <= d.nit[i]
        assert np.all(np.isfinite(d.record_loss[i, running]))
        assert np.all(np.isfinite(d.record_grad_norm[i, running]))
        assert np.all(np.isnan(d.record_loss[i, ~running]))
        assert np.all(np.isnan(d.record_grad_norm[i, ~running]))
        assert np.all(np.diff(d.record_loss[i, running]) <= 1e-15)   # GD descends here


def test_descend_finds_the_plateau_of_a_saddle(saddle):
    model, xs = saddle
    lam, Q = np.linalg.eigh(model.hess(xs))
    rng = np.random.default_rng(0)
    # mostly along the stable directions, 1e-6 along the unstable one: GD approaches the
    # saddle (|grad L| dips), then leaves it (|grad L| rises) and ends at a minimum.
    x0 = xs + 1e-6 * Q[:, 0] + 1e-2 * Q[:, 1:] @ rng.standard_normal(xs.size - 1)
    d = ls.descend(model, x0, lr=0.5, gtol=1e-10, maxiter=20_000, record=True)
    assert d.success[0]
    assert d.loss[0] < CYCLIC_SADDLE_LOSS
    assert len(d.plateau_start) >= 1 and np.all(d.plateau_start == 0)
    j = int(np.argmin(d.plateau_grad_norm))
    assert d.plateau_grad_norm[j] < 1e-3
    assert 0 < d.plateau_at[j] < d.nit[0]
    assert_allclose(d.plateau_loss[j], CYCLIC_SADDLE_LOSS, rtol=1e-4)
    assert_allclose(d.plateau_loss[j], model.loss(d.plateau_x[j]), rtol=1e-14)
    r = ls.find_critical_point(model, d.plateau_x[j], method="newton")
    assert r.success
    assert np.linalg.norm(r.x - xs) <= X_ATOL
    assert min_curvature(model, r.x)[0] < 0


def test_flow_reaches_the_minimum_and_agrees_with_small_step_gd():
    model = teacher_student(3)
    rng = np.random.default_rng(0)
    X0 = np.stack([model.flatten(np.eye(3) + 0.2 * rng.standard_normal((3, 3)))
                   for _ in range(3)])
    flow = ls.descend(model, X0, method="flow", t_max=500.0, gtol=1e-8)
    assert np.all(flow.status == Status.CONVERGED) and flow.method == "flow"
    assert np.all(flow.grad_norm <= 1e-8)
    gd = ls.descend(model, X0, lr=0.5, gtol=1e-8, maxiter=10_000)
    assert_allclose(flow.x, gd.x, atol=FLOW_GD_ATOL)
    for x in flow.x:
        assert_allclose(matched_rows(model.unflatten(x), np.eye(3)), np.eye(3), atol=1e-7)
    # at a finite time, GD with step h is a first-order approximation of the flow
    T = 1.0
    flow = ls.descend(model, X0, method="flow", t_max=T, gtol=0.0)
    errors = [np.abs(ls.descend(model, X0, lr=h, gtol=0.0, maxiter=round(T / h)).x
                     - flow.x).max() for h in (2e-3, 1e-3)]
    assert errors[1] < 1e-4
    assert FIRST_ORDER_LOW <= errors[0] / errors[1] <= FIRST_ORDER_HIGH


def test_flow_record_and_plateau_fields():
    model = ls.AutogradModel(lambda x: anp.sum(x ** 2) / 2, 2)
    d = ls.descend(model, [[1.0, 1.0]], method="flow", t_max=100.0, gtol=1e-8, record=True,
                   n_records=20)
    assert d.success[0]
    assert d.record_at[0] == 0 and d.record_at[-1] == 100.0
    finite = np.isfinite(d.record_loss[0])
    # dx/dt = -x: the recorded loss is exp(-2t) |x0|^2 / 2 while running
    assert_allclose(d.record_loss[0, finite], np.exp(-2 * d.record_at[finite]), rtol=1e-6,
                    atol=1e-16)
    assert len(d.plateau_start) == 0 and d.plateau_x.shape == (0, 2)
    # recording must not change the trajectory: x(T) = exp(-T) x0 either way
    T = 3.0
    ends = [ls.descend(model, [[1.0, 1.0]], method="flow", t_max=T, gtol=0.0, record=record,
                       n_records=20).x[0] for record in (False, True)]
    assert_allclose(ends[0], np.exp(-T), rtol=1e-8)
    assert_allclose(ends[1], ends[0], rtol=1e-12)


def test_descend_failures_are_data_not_exceptions():
    quadratic = ls.AutogradModel(lambda x: anp.sum(x ** 2) / 2, 2)
    # lr = 2 on |x|^2 / 2 maps x to -x forever; lr = 3 doubles |x| each step until overflow
    d = ls.descend(quadratic, [[1.0, 1.0]], lr=2.0, maxiter=50)
    assert d.status[0] == Status.MAXITER and d.nit[0] == 50 and not d.success[0]
    assert_allclose(d.x[0], [1.0, 1.0])
    d = ls.descend(quadratic, [[1.0, 1.0], [0.0, 0.0]], lr=3.0, maxiter=5000)
    assert_array_equal(d.status, [Status.DIVERGED, Status.CONVERGED])
    assert d.nit[0] < 5000 and "diverged" in d.messages[0] and "lr" in d.messages[0]
    model = teacher_student(3)
    d = ls.descend(model, model.sample_init(3, rng=0), lr=100.0, maxiter=2000)
    assert_array_equal(d.status, Status.DIVERGED)        # never MAXITER at a garbage point
    assert not np.any(d.success)
    W0 = np.eye(3)
    W0[0] = 0.0
    d = ls.descend(model, model.flatten(W0), lr=0.5)
    assert d.status[0] == Status.NON_DIFFERENTIABLE and d.nit[0] == 0


# ---- the COLT'21 protocol -----------------------------------------------------------
# the divergence rule (landscape/critical/descent.py): the loss, checked every 20 steps, above
# L(x0) + 1000 max(1, |L(x0)|) at 3 consecutive rising checks
DIVERGENCE_BOUND = 1e3
DIVERGENCE_LATENCY = 3 * 20


def test_a_step_too_large_diverges_in_both_descent_loops():
    """Issue 15 item 2: lr = 50 on V = I_4 is DIVERGED, not a point with a NaN loss."""
    model = teacher_student(4)
    X0 = model.sample_init(5, rng=0)
    d = ls.descend(model, X0, lr=50.0, maxiter=2000, gtol=1e-4, record=True)
    p = descend_and_polish(model, X0, lr=50.0, maxiter=2000)
    for status, nit in ((d.status, d.nit), (p.status, p.nit_descent)):
        assert_array_equal(status, Status.DIVERGED)
        assert np.all(nit <= 2 * DIVERGENCE_LATENCY)        # stopped soon, not at maxiter
    assert not np.any(p.success) and all("diverged" in m for m in p.message)
    assert np.all(d.loss > DIVERGENCE_BOUND * model.loss_batch(X0))
    # the stable step of the COLT'21 protocol is untouched
    p = descend_and_polish(model, X0, lr=5 / 4)
    assert np.all(p.success)


def test_a_slow_divergence_is_caught_by_the_loss_rule():
    """|1 - lr| = 1.001 on |x|^2/2: the loss grows 0.2% a step and stays finite for 10^5 steps."""
    quadratic = ls.AutogradModel(lambda x: anp.sum(x ** 2) / 2, 2)
    X0 = [[1.0, 1.0]]
    d = ls.descend(quadratic, X0, lr=2.001, maxiter=10_000)
    assert d.status[0] == Status.DIVERGED and np.all(np.isfinite(d.x))
    # the loss 1 crossed 1 + 1000 after ln(1001) / ln(1.001^2) = 3456 steps
    crossing = np.log(1 + DIVERGENCE_BOUND) / (2 * np.log(1.001))
    assert crossing <= d.nit[0] <= crossing + DIVERGENCE_LATENCY
    assert d.loss[0] > 1 + DIVERGENCE_BOUND
    p = descend_and_polish(quadratic, X0, lr=2.001, maxiter=10_000)
    assert p.status[0] == Status.DIVERGED
    # a bounded oscillation (lr = 2 maps x to -x) is not divergence: it runs out of steps
    d = ls.descend(quadratic, X0, lr=2.0, maxiter=10_000)
    assert d.status[0] == Status.MAXITER


def test_descend_rejects_a_start_where_the_loss_overflows():
    model = teacher_student(3)
    X0 = model.sample_init(2, rng=0)
    X0[1] *= 1e200                            # |w|^2 = 1e400 overflows
    for run in (lambda: ls.descend(model, X0, lr=1.0), lambda: descend_and_polish(model, X0,
                                                                                  lr=1.0)):
        with pytest.raises(ValueError, match="X0 row 1: the loss is not finite"):
            run()


def test_colt21_gd_then_polish_ends_at_two_loss_levels():
    model = teacher_student(8)
    X0 = model.sample_init(200, rng=0)
    assert_allclose(X0.std(), 1 / np.sqrt(8), rtol=0.05)
    p = descend_and_polish(model, X0, lr=5 / 8)
    assert np.all(p.success)
    assert np.all(p.grad_norm <= GTOL)
    assert_allclose(p.grad_norm, np.linalg.norm(model.grad_batch(p.x), axis=1),
                    rtol=0, atol=GTOL)
    assert np.all(p.lambda_min > 0)
    levels = _levels(p.loss)
    assert len(levels) == 2
    assert abs(levels[0]) <= LEVEL_ATOL
    assert abs(levels[1] - SPURIOUS_LEVEL) <= SPURIOUS_LEVEL_ATOL
    plain = ls.descend(model, X0, lr=5 / 8, gtol=GTOL, maxiter=200_000)
    assert np.all(plain.success)
    same = np.abs(plain.loss - p.loss) <= LEVEL_ATOL
    assert same.mean() >= AGREEMENT


def test_polish_computes_lambda_min_once_per_minimum_modulo_symmetry(monkeypatch):
    """Ends that are copies of one strict minimum share one eigvalsh; each shared value
    agrees with the end's own smallest eigenvalue to 1e-10 (the ends are within
    |grad L| / lambda_min <= 1e-12 / 0.02 of copies of one point, so their Hessians differ by
    |D^3 L| times that, and LAPACK's own error is ~1e-15 |H|)."""
    polish = __import__("landscape.critical.polish", fromlist=["smallest_eigenvalues"])
    model = teacher_student(8)
    X0 = model.sample_init(60, rng=0)
    computed = []

    def counting(m, X):
        computed.append(len(X))
        return smallest_eigenvalues(m, X)

    monkeypatch.setattr(polish, "smallest_eigenvalues", counting)
    p = descend_and_polish(model, X0, lr=5 / 8)
    assert np.all(p.success)
    own = smallest_eigenvalues(model, p.x)
    assert_allclose(p.lambda_min, own, rtol=0, atol=1e-10)
    assert np.all(own > 0)
    # 60 ends at two loss levels (the global and the spurious minimum of V = I_8, each
    # modulo symmetry): a handful of eigenvalue problems, not sixty
    assert len(_levels(p.loss)) == 2
    assert 2 <= sum(computed) <= 10


def _levels(losses):
    """Distinct loss levels: sorted losses split where consecutive ones differ by > tol."""
    s = np.sort(losses)
    breaks = np.flatnonzero(np.diff(s) > LEVEL_ATOL)
    return [float(g.mean()) for g in np.split(s, breaks + 1)]


# ---- descend_and_polish pushes off saddles ------------------------------------------
def test_descend_and_polish_pushes_off_a_saddle(saddle):
    model, xs = saddle
    rng = np.random.default_rng(4)
    # within 1e-9 of the saddle |grad L| is far below coarse_gtol: descent hands over at
    # once and Newton lands on the saddle, which must not be accepted.
    X0 = np.stack([xs, xs + 1e-9 * rng.standard_normal(xs.size)])
    p = descend_and_polish(model, X0, lr=0.5)
    assert np.all(p.success)
    assert np.all(p.pushes >= 1)
    assert np.all(p.lambda_min > 0)
    assert np.all(p.grad_norm <= GTOL)
    assert np.all(p.loss < CYCLIC_SADDLE_LOSS - 1e-3)
    # exactly on the saddle there is no unstable offset to follow: the jump is along
    # the most negative curvature, and the message says so
    assert p.message[0].startswith("pushed along the most negative curvature")
    assert p.message[0].endswith("converged")
    assert p.message[1] == "converged"


def test_descend_and_polish_without_lambda_min_ends_alike(saddle):
    # lambda_min=False tells ends from saddles by a Cholesky test: the same pushes and ends,
    # the eigenvalue kept only where it was computed (at the saddle accepted after 0 pushes)
    model, xs = saddle
    rng = np.random.default_rng(4)
    X0 = np.stack([xs, xs + 1e-9 * rng.standard_normal(xs.size)])
    full = descend_and_polish(model, X0, lr=0.5)
    lean = descend_and_polish(model, X0, lr=0.5, lambda_min=False)
    assert_array_equal(lean.x, full.x)
    assert_array_equal(lean.pushes, full.pushes)
    assert lean.message == full.message
    assert np.all(full.lambda_min > 0) and np.all(np.isnan(lean.lambda_min))
    kept = descend_and_polish(model, xs, lr=0.5, max_pushes=0, lambda_min=False)
    assert kept.lambda_min[0] < 0 and "saddle" in kept.message[0]


def test_descend_and_polish_accepts_a_saddle_after_max_pushes(saddle):
    model, xs = saddle
    p = descend_and_polish(model, xs, lr=0.5, max_pushes=0)
    assert p.success[0] and p.pushes[0] == 0
    assert_allclose(p.x[0], xs, atol=X_ATOL)
    assert p.lambda_min[0] < 0
    assert "saddle" in p.message[0]


# ---- bad input ----------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(method="bfgs"), ValueError, "method must be one of"),
    (dict(method=None), TypeError, "method must be a string"),
    (dict(gtol=-1.0), ValueError, "gtol"),
    (dict(maxiter=2.5), TypeError, "maxiter must be an integer"),
    (dict(maxiter=-1), ValueError, "maxiter must be >= 0"),
    (dict(radius=1.0), TypeError, r"unknown option\(s\) \['radius'\]"),
    (dict(method="newton", forcing=0.1), TypeError, "unknown option.*forcing"),
    (dict(method="trust-region", initial_radius=-1.0), ValueError, "initial_radius"),
    (dict(method="newton-mr", max_backtracks=True), ValueError, "max_backtracks"),
    (dict(method="newton", max_backtracks=2.5), ValueError,
     "max_backtracks must be a positive integer"),
])
def test_find_critical_point_rejects_bad_options(kwargs, error, match):
    model = teacher_student(3)
    with pytest.raises(error, match=match):
        ls.find_critical_point(model, np.eye(3).ravel(), **kwargs)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(method="bfgs"), ValueError, "method must be one of"),
    (dict(manifold="always"), ValueError, "manifold must be one of"),
    (dict(method="lm", forcing=0.1), TypeError, "unknown option.*forcing"),
    (dict(method="newton-mr", minres_maxiter=0), ValueError, "minres_maxiter"),
    (dict(max_backtracks=0), ValueError, "max_backtracks"),
    (dict(gtol=-1.0), ValueError, "gtol"),
])
def test_newton_batch_rejects_bad_options(kwargs, error, match):
    model = teacher_student(3)
    kwargs = {"gtol": GTOL, **kwargs}
    with pytest.raises(error, match=match):
        newton_batch(model, np.eye(3).ravel()[None], **kwargs)
    with pytest.raises(ValueError, match=r"X must have shape \(B, 9\)"):
        newton_batch(model, np.zeros((2, 4)), gtol=GTOL)


def test_find_critical_point_rejects_bad_points():
    model = teacher_student(3)
    x0 = np.eye(3).ravel()
    with pytest.raises(ValueError, match="x0 must be finite"):
        ls.find_critical_point(model, np.where(x0 == 0, np.nan, x0))
    with pytest.raises(ValueError, match=r"x0 must have shape \(9,\)"):
        ls.find_critical_point(model, np.eye(3))
    with pytest.raises(ValueError, match=r"x0 must have shape \(9,\)"):
        ls.find_critical_point(model, x0[:4])
    with pytest.raises(TypeError, match="x0 must be an array"):
        ls.find_critical_point(model, "eye")
    with pytest.raises(TypeError, match="model must be a landscape model"):
        ls.find_critical_point(lambda x: x, x0)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(lr=0.0), ValueError, "lr must be finite and > 0"),
    (dict(lr=-0.1), ValueError, "lr must be finite and > 0"),
    (dict(lr=np.inf), ValueError, "lr must be finite"),
    (dict(), TypeError, "needs a step size: pass lr="),
    (dict(lr=0.1, method="adam"), ValueError, "method must be one of"),
    (dict(lr=0.1, t_max=1.0), TypeError, "t_max is for method='flow'"),
    (dict(lr=0.1, method="flow", t_max=1.0), TypeError, "lr is for method='gd'"),
    (dict(method="flow"), TypeError, "needs a final time: pass t_max="),
    (dict(method="flow", t_max=-1.0), ValueError, "t_max"),
    (dict(lr=0.1, maxiter=1.5), TypeError, "maxiter"),
    (dict(lr=0.1, gtol=-1e-3), ValueError, "gtol"),
    (dict(lr=0.1, plateau_factor=1.0), ValueError, "plateau_factor must be > 1"),
    (dict(lr=0.1, n_records=1), ValueError, "n_records"),
    (dict(lr=0.1, momentum=0.9), TypeError, "momentum"),
])
def test_descend_rejects_bad_options(kwargs, error, match):
    model = teacher_student(3)
    with pytest.raises(error, match=match):
        ls.descend(model, model.sample_init(2), **kwargs)


def test_descend_rejects_bad_starts():
    model = teacher_student(3)
    X0 = model.sample_init(2)
    with pytest.raises(ValueError, match=r"X0 must have shape \(B, 9\)"):
        ls.descend(model, X0[:, :5], lr=0.1)
    with pytest.raises(ValueError, match=r"X0 must have shape \(B, 9\)"):
        ls.descend(model, X0.reshape(2, 3, 3), lr=0.1)
    bad = X0.copy()
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match=r"X0 must be finite; entry \(1, 2\) is inf"):
        ls.descend(model, bad, lr=0.1)
    with pytest.raises(TypeError, match="model must be a landscape model"):
        ls.descend(None, X0, lr=0.1)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(lr=0.0), ValueError, "lr must be finite and > 0"),
    (dict(lr=0.1, coarse_gtol=0.0), ValueError, "coarse_gtol"),
    (dict(lr=0.1, push=-1.0), ValueError, "push"),
    (dict(lr=0.1, max_pushes=-1), ValueError, "max_pushes"),
])
def test_descend_and_polish_rejects_bad_options(kwargs, error, match):
    model = teacher_student(3)
    with pytest.raises(error, match=match):
        descend_and_polish(model, model.sample_init(2), **kwargs)


# ---- results ------------------------------------------------------------------------
@pytest.mark.parametrize("history", [False, True])
def test_critical_point_round_trips_through_dict_and_json(history):
    model = teacher_student(4)
    x0 = model.flatten(np.eye(4) + 0.05 * np.random.default_rng(0).standard_normal((4, 4)))
    r = ls.find_critical_point(model, x0, method="trust-region", history=history)
    data = r.to_dict()
    for back in (ls.CriticalPoint.from_dict(data),
                 ls.CriticalPoint.from_dict(json.loads(json.dumps(data)))):
        assert type(back) is ls.CriticalPoint
        assert_array_equal(back.x, r.x)
        assert back.x.dtype == np.float64
        for field in ("loss", "grad_norm", "nit", "nfev", "success", "status", "message",
                      "method"):
            assert getattr(back, field) == getattr(r, field)
        if history:
            assert set(back.history) == {"loss", "grad_norm", "step"}
            for key, value in r.history.items():
                assert_array_equal(back.history[key], value)
        else:
            assert back.history is None
    with pytest.raises(ValueError, match="does not know"):
        ls.CriticalPoint.from_dict({**data, "colour": "red"})


def test_critical_point_repr_is_readable():
    model = teacher_student(4)
    r = ls.find_critical_point(model, np.eye(4).ravel(), method="newton")
    text = repr(r)
    assert text.startswith("CriticalPoint(")
    assert "x=<array (16,) float64>" in text
    assert "success=True" in text and "method='newton'" in text and "nit=0" in text
    assert "converged" in text
    assert "\n" not in text and len(text) < 400
    small = ls.find_critical_point(ls.AutogradModel(_ridge, 2), [0.7, 0.2], method="newton-mr")
    assert "x=[0.75, 0.25]" in repr(small)


def test_descent_round_trips_through_dict():
    model = teacher_student(3)
    d = ls.descend(model, model.sample_init(3, rng=1), lr=0.5, gtol=1e-6, record=True)
    back = ls.Descent.from_dict(json.loads(json.dumps(d.to_dict())))
    for field in ("x", "loss", "grad_norm", "nit", "status", "success", "record_at",
                  "record_loss", "record_grad_norm", "plateau_x"):
        assert_array_equal(getattr(back, field), getattr(d, field))
    assert back.method == "gd" and back.lr == 0.5
    assert repr(d).startswith("Descent(")
