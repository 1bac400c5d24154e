"""The compiled (numba) kernels -- loss, gradient, Hessian, Hessian-vector products -- and the
fused descent, against the numpy reference (issue 17).

The numpy kernels of ``landscape.models._kernels`` are the reference; the numba kernels compute
the same closed forms with the same angle formulas, so they agree to rounding: a few ulps of the
O(1) terms each entry sums (1e-13 absolute here, entries and terms being O(1)).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import landscape as ls
from landscape.critical.advance import DescentRun
from landscape.models import compiled

pytestmark = pytest.mark.skipif(not compiled.AVAILABLE, reason="numba not installed")

ROUNDING = 1e-13      # a few ulps of O(1) terms, summed over k + n <= 40 pairs


def pair(teacher, k):
    return (ls.ReluTeacherStudent(teacher=teacher, n_students=k, backend="numba"),
            ls.ReluTeacherStudent(teacher=teacher, n_students=k, backend="numpy"))


def hard_points(model, rng):
    """Random starts, a global minimum, near-parallel and antiparallel students, a tiny row."""
    k, d = model.n_students, model.input_dim
    X = model.sample_init(6, rng=rng)
    V = model.teacher
    W = np.zeros((k, d))
    m = min(k, V.shape[0])
    W[:m] = V[:m]
    W[m:] = rng.standard_normal((k - m, d))               # extra students: O(1), not tiny
    near = W + 1e-9 * rng.standard_normal(W.shape)        # theta ~ 1e-9 to its teacher
    anti = X[0].reshape(k, d).copy()
    if k > 1:
        anti[1] = -2.0 * anti[0] + 1e-7 * rng.standard_normal(d)   # antiparallel pair
        anti[0] = anti[0] * (1 + 1e-12)
    tiny = X[1].reshape(k, d).copy()
    tiny[0] *= 1e-160                                     # below the underflow rescale
    return np.vstack([X, W.ravel(), near.ravel(), anti.ravel(), tiny.ravel()])


@pytest.mark.parametrize("teacher, k", [
    (np.eye(3), 3), (np.eye(6), 7), (np.eye(12), 12),
    (np.random.default_rng(1).standard_normal((4, 5)), 6),          # n != k != d
    (np.vstack([np.eye(3), np.zeros((1, 3))]), 2),                   # a zero teacher row
])
def test_loss_grad_and_hessian_equal_the_numpy_reference(teacher, k):
    fast, ref = pair(teacher, k)
    X = hard_points(ref, np.random.default_rng(k))
    assert_allclose(fast.loss_kernel(X), ref.loss_kernel(X), rtol=0, atol=ROUNDING)
    G = fast.grad_kernel(X)
    assert_allclose(G, ref.grad_kernel(X), rtol=0, atol=ROUNDING)
    smooth = ~ref.nondifferentiable_units(X).any(axis=1)
    U = np.random.default_rng(0).standard_normal(X.shape)
    assert_allclose(fast.hvp_kernel(X[smooth], U[smooth]), ref.hvp_kernel(X[smooth], U[smooth]),
                    rtol=1e-13, atol=ROUNDING)
    # the tiny row's diagonal block is O(1 / |w|) = 1e160: relative there
    assert_allclose(fast.hess_kernel(X[smooth]), ref.hess_kernel(X[smooth]), rtol=1e-13,
                    atol=ROUNDING)


def test_the_global_minimum_is_exact():
    fast, _ = pair(np.eye(5), 5)
    x = np.eye(5).ravel()
    assert fast.loss(x) == 0.0                      # every angle exact: no rounding at all
    assert np.abs(fast.grad(x)).max() == 0.0


def test_a_zero_student_keeps_the_loss_and_is_not_differentiable():
    fast, ref = pair(np.eye(3), 3)
    X = ref.sample_init(2, rng=0)
    X[0, :3] = 0.0
    assert_allclose(fast.loss_kernel(X), ref.loss_kernel(X), rtol=0, atol=ROUNDING)
    d = ls.descend(fast, X, lr=0.5, maxiter=50)
    assert d.status[0] == ls.Status.NON_DIFFERENTIABLE and np.isnan(d.grad_norm[0])
    assert np.all(np.isnan(fast.hess_kernel(X[:1])))


@pytest.mark.parametrize("k", [4, 8])
def test_fused_descent_follows_the_numpy_loop(k):
    """Same events, same step counts (to a step), same end points, same plateaus and records."""
    fast, ref = pair(np.eye(k), k)
    X0 = ref.sample_init(40, rng=3)
    kw = dict(lr=5 / k, gtol=1e-10, maxiter=20_000, record=True)
    a, b = ls.descend(fast, X0, **kw), ls.descend(ref, X0, **kw)
    assert_array_equal(a.status, b.status)
    # a rounding difference can move the step where |grad| crosses gtol by one
    assert np.max(np.abs(a.nit - b.nit)) <= 1
    assert_allclose(a.x, b.x, rtol=0, atol=1e-9)     # both within gtol / lambda_min of the point
    assert_allclose(a.record_loss, b.record_loss, rtol=1e-10, atol=1e-13)
    assert_array_equal(a.plateau_start, b.plateau_start)
    assert_array_equal(a.plateau_at, b.plateau_at)
    assert_allclose(a.plateau_x, b.plateau_x, rtol=0, atol=1e-8)


def test_descent_run_back_ends_give_the_same_events():
    fast, _ = pair(np.eye(6), 6)
    X0 = fast.sample_init(30, rng=5)
    stop_below = np.full(30, 1e-3)
    check_from = np.arange(30, dtype=np.int64) * 7
    runs = [DescentRun(fast, X0, lr=5 / 6, gtol=1e-12, maxiter=5_000, fused=f)
            for f in (True, False)]
    assert runs[0].kernel is not None and runs[1].kernel is None
    why = [r.advance(np.arange(30), stop_below, check_from) for r in runs]
    assert_array_equal(why[0], why[1])
    assert np.all(why[0] == ls.critical.advance.DUE)          # all reach 1e-3 first
    assert np.all(runs[0].it >= check_from)
    assert np.max(np.abs(runs[0].it - runs[1].it)) <= 1
    assert np.all(runs[0].gn <= 1e-3)


def test_divergence_is_caught_by_the_fused_loop():
    fast, ref = pair(np.eye(4), 4)
    X0 = fast.sample_init(5, rng=0)
    for m in (fast, ref):
        d = ls.descend(m, X0, lr=50.0, maxiter=10_000)        # far above 2 / lambda_max
        assert np.all(d.status == ls.Status.DIVERGED), m.backend
        assert np.all(d.nit < 1_000)


def test_descend_and_polish_same_ends_on_both_back_ends():
    fast, ref = pair(np.eye(6), 6)
    X0 = ref.sample_init(40, rng=11)
    a = ls.descend_and_polish(fast, X0, lr=5 / 6)
    b = ls.descend_and_polish(ref, X0, lr=5 / 6)
    assert np.all(a.success) and np.all(b.success)
    # same basins: the same critical values (to the certified gradient level)
    assert_allclose(a.loss, b.loss, rtol=0, atol=1e-12)


def test_backend_argument_is_checked():
    with pytest.raises(ValueError, match="backend"):
        ls.ReluTeacherStudent(teacher=np.eye(2), n_students=2, backend="fortran")
    assert ls.ReluTeacherStudent(teacher=np.eye(2), n_students=2).backend == "numba"
