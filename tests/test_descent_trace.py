"""``descend`` records what studies need: ``record_at=``/``t_eval=``, ``record_x=``, ``callback=``.

The trace must be the trajectory itself (recording changes nothing), hold final values for
starts that had stopped before a record point, and reject every malformed option with a
message that names it.
"""

import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import landscape as ls
from landscape.critical import Status

LR = 0.5
# The trace and a direct evaluation call the same kernels on the same iterates, but on batches
# of other sizes (rows drop out), so only the summation order can differ: a few ulps.
SAME_KERNEL_RTOL = 1e-13
# the descent's compiled kernel and the numpy kernel round the O(1) terms of a small gradient
# differently: a few ulps of those terms, absolute
KERNELS_ATOL = 1e-15
# RK45 at rtol 1e-10, read at t_eval through its dense-output interpolant (4th order).
FLOW_RTOL = 1e-7


def teacher_student(k=3):
    return ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)


def quadratic():
    """L(x) = |x|^2 / 2: the flow is x(t) = exp(-t) x0, gradient descent x_T = (1 - lr)^T x0."""
    return ls.AutogradModel(lambda x: anp.sum(x ** 2) / 2, 2)


def row_norms(X, at):
    """A per-row metric of two kinds: a vector per row and a scalar per row."""
    W = X.reshape(len(X), 3, 3)
    return {"norms": np.linalg.norm(W, axis=-1), "total": np.abs(X).sum(axis=1)}


# ---- gradient descent -------------------------------------------------------------------

def test_record_at_holds_the_iterates_of_shorter_runs():
    m = teacher_student()
    X0 = m.sample_init(5, rng=1)
    at = [0, 1, 7, 40, 200]
    d = ls.descend(m, X0, lr=LR, gtol=0.0, maxiter=200, record_at=at, record_x=True)
    tr = d.trace
    assert_array_equal(tr.nit, at)
    assert_allclose(tr.t, LR * np.array(at), rtol=0)
    assert tr.x.shape == (5, 5, m.n_params) and tr.loss.shape == tr.grad_norm.shape == (5, 5)
    assert not tr.finished.any()                  # gtol = 0: every start runs to maxiter
    assert_array_equal(tr.x[0], X0)
    for r, n in enumerate(at):
        # x after n iterations is exactly what a run of n iterations ends at
        short = ls.descend(m, X0, lr=LR, gtol=0.0, maxiter=n)
        assert_array_equal(tr.x[r], short.x)
        assert_allclose(tr.loss[r], m.loss_batch(short.x), rtol=SAME_KERNEL_RTOL)
        assert_allclose(tr.grad_norm[r], np.linalg.norm(m.grad_batch(short.x), axis=1),
                        rtol=SAME_KERNEL_RTOL, atol=KERNELS_ATOL)
    assert_array_equal(tr.x[-1], d.x)


def test_recording_does_not_change_the_descent():
    m = teacher_student()
    X0 = m.sample_init(6, rng=2)
    plain = ls.descend(m, X0, lr=LR, gtol=1e-8, maxiter=3000)
    assert plain.trace is None
    rec = ls.descend(m, X0, lr=LR, gtol=1e-8, maxiter=3000, record_at=np.arange(0, 3001, 3),
                     record_x=True, callback=row_norms)
    for field in ("x", "loss", "grad_norm", "nit", "status"):
        assert_array_equal(getattr(plain, field), getattr(rec, field))


def test_a_finished_start_holds_its_final_values():
    m = teacher_student()
    X0 = m.sample_init(6, rng=3)
    at = np.arange(0, 3001, 50)
    seen = []

    def callback(X, nit):
        seen.append(nit)
        return row_norms(X, nit)

    d = ls.descend(m, X0, lr=LR, gtol=1e-6, maxiter=3000, record_at=at, record_x=True,
                   callback=callback)
    tr = d.trace
    assert np.all(d.status == Status.CONVERGED) and len(np.unique(d.nit)) > 1
    assert seen == list(at)                      # once per record, with its iteration
    assert_array_equal(tr.finished, d.nit[None, :] < at[:, None])
    assert tr.finished[-1].all() and not tr.finished[0].any()
    r, b = np.nonzero(tr.finished)
    assert_array_equal(tr.x[r, b], d.x[b])
    assert_array_equal(tr.loss[r, b], d.loss[b])
    assert_array_equal(tr.grad_norm[r, b], d.grad_norm[b])
    # the metrics are the callback at the recorded iterates, finished or not
    assert tr.metrics["norms"].shape == (len(at), 6, 3)
    assert tr.metrics["total"].shape == (len(at), 6)
    for k in range(len(at)):
        expected = row_norms(tr.x[k], None)
        assert_array_equal(tr.metrics["norms"][k], expected["norms"])
        assert_array_equal(tr.metrics["total"][k], expected["total"])
    # while running, gradient descent descends
    running = ~tr.finished
    for b in range(6):
        assert np.all(np.diff(tr.loss[running[:, b], b]) <= 0)


def test_records_after_every_start_stopped_still_call_the_callback():
    m = quadratic()
    d = ls.descend(m, [[1.0, -2.0]], lr=LR, gtol=1e-3, maxiter=1000, record_at=[0, 5, 500, 1000],
                   callback=lambda X, nit: {"x0": X[:, 0].copy()})
    assert d.nit[0] < 500
    assert_array_equal(d.trace.finished[:, 0], [False, False, True, True])
    assert_allclose(d.trace.metrics["x0"][:, 0], [1.0, 0.5 ** 5, d.x[0, 0], d.x[0, 0]],
                    rtol=1e-15)               # (1 - lr)^T exactly in binary
    assert_array_equal(d.trace.loss[2:, 0], d.loss[0])


def test_t_eval_for_gd_records_iteration_t_over_lr():
    m = teacher_student()
    X0 = m.sample_init(3, rng=4)
    by_time = ls.descend(m, X0, lr=0.25, gtol=0.0, maxiter=400, t_eval=[0.0, 1.0, 2.6, 100.0],
                         record_x=True)
    assert_array_equal(by_time.trace.nit, [0, 4, 10, 400])   # round(t / lr); 2.6 -> 10.4 -> 10
    assert_allclose(by_time.trace.t, [0.0, 1.0, 2.5, 100.0], rtol=0)   # lr * iterations
    by_iter = ls.descend(m, X0, lr=0.25, gtol=0.0, maxiter=400, record_at=[0, 4, 10, 400],
                         record_x=True)
    assert_array_equal(by_time.trace.x, by_iter.trace.x)


def test_record_true_keeps_its_legacy_fields_as_a_view_of_the_trace():
    m = teacher_student()
    X0 = m.sample_init(4, rng=5)
    d = ls.descend(m, X0, lr=LR, gtol=1e-8, maxiter=3000, record=True, n_records=50)
    tr = d.trace
    assert_array_equal(tr.nit, d.record_at)
    assert_array_equal(d.record_loss, np.where(tr.finished, np.nan, tr.loss).T)
    assert_array_equal(d.record_grad_norm, np.where(tr.finished, np.nan, tr.grad_norm).T)
    # record=True with record_at: the plateau detector runs and the records are those asked
    e = ls.descend(m, X0, lr=LR, gtol=1e-8, maxiter=3000, record=True, record_at=[0, 10])
    assert_array_equal(e.record_at, [0.0, 10.0]) and e.plateau_start is not None


def test_trace_round_trips_through_to_dict():
    m = teacher_student()
    d = ls.descend(m, m.sample_init(2, rng=6), lr=LR, gtol=0.0, maxiter=20, record_at=[0, 20],
                   record_x=True, callback=row_norms)
    back = ls.Descent.from_dict(d.to_dict())
    assert isinstance(back.trace, ls.Trace)
    assert_array_equal(back.trace.x, d.trace.x)
    assert_array_equal(back.trace.metrics["norms"], d.trace.metrics["norms"])
    assert_array_equal(back.trace.finished, d.trace.finished)
    assert "metrics=['norms', 'total']" in repr(d.trace)


# ---- gradient flow ----------------------------------------------------------------------

def test_flow_t_eval_records_the_exact_flow():
    m = quadratic()
    x0 = np.array([[1.0, -2.0], [0.5, 0.25]])
    times = np.array([0.0, 0.1, 1.0, 2.5, 4.0])
    d = ls.descend(m, x0, method="flow", t_eval=times, gtol=0.0, record_x=True,
                   callback=lambda X, t: {"t": np.full(len(X), t)})
    tr = d.trace
    assert tr.nit is None
    assert_array_equal(tr.t, times)
    assert_allclose(tr.x, np.exp(-times)[:, None, None] * x0[None], rtol=FLOW_RTOL)
    assert_allclose(tr.loss, np.exp(-2 * times)[:, None] * (x0 ** 2).sum(1) / 2,
                    rtol=2 * FLOW_RTOL)
    assert_array_equal(tr.metrics["t"], np.repeat(times[:, None], 2, axis=1))
    # t_max defaults to the last time; recording does not change where the flow ends
    plain = ls.descend(m, x0, method="flow", t_max=4.0, gtol=0.0)
    assert_allclose(d.x, plain.x, rtol=1e-12)
    assert_array_equal(tr.x[-1], d.x)


def test_flow_start_that_converged_holds_its_final_values():
    m = quadratic()
    x0 = np.array([[1e-3, 0.0], [1.0, 1.0]])   # the first converges at the first segment end, t = 1
    d = ls.descend(m, x0, method="flow", t_eval=[0.0, 0.5, 2.0, 8.0], gtol=1e-3)
    tr = d.trace
    assert np.all(d.status == Status.CONVERGED)
    assert_array_equal(tr.finished[:, 0], [False, False, True, True])
    assert_array_equal(tr.loss[2:, 0], d.loss[0])
    assert not tr.finished[:, 1].any()          # the second converges at t_max = 8


# ---- validation -------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, words", [
    (dict(record_at=[0, 5], t_eval=[0.0, 1.0]), TypeError, "record_at and t_eval"),
    (dict(record_at=[5, 5]), ValueError, "strictly increasing"),
    (dict(record_at=[-1, 5]), ValueError, "non-negative"),
    (dict(record_at=[0, 2.5]), ValueError, "whole iteration"),
    (dict(record_at=[[0, 1]]), ValueError, "1-d"),
    (dict(record_at=[0, 50]), ValueError, "maxiter >= 50"),
    (dict(record_at=[0, np.nan]), ValueError, "finite"),
    (dict(t_eval=[0.0, 0.1, 0.2]), ValueError, "distinct iterations"),
    (dict(t_eval=[0.0, 100.0]), ValueError, "maxiter >= 200"),
    (dict(record_x=True), TypeError, "record points"),
    (dict(callback=row_norms), TypeError, "record points"),
    (dict(record_at=[0, 1], record_x=1), TypeError, "record_x must be True or False"),
    (dict(record_at=[0, 1], callback="norms"), TypeError, "callback must be a callable"),
])
def test_gd_options_are_validated(kwargs, error, words):
    m = teacher_student()
    with pytest.raises(error, match=words):
        ls.descend(m, m.sample_init(2, rng=0), lr=LR, maxiter=10, **kwargs)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(record_at=[0, 1]), TypeError, "pass t_eval"),
    (dict(t_eval=[0.0, 5.0], t_max=1.0), ValueError, "larger t_max"),
    (dict(t_eval=[1.0, 0.5]), ValueError, "strictly increasing"),
    (dict(), TypeError, "t_max=... \\(or t_eval"),
])
def test_flow_options_are_validated(kwargs, error, words):
    with pytest.raises(error, match=words):
        ls.descend(quadratic(), [[1.0, 1.0]], method="flow", **kwargs)


@pytest.mark.parametrize("callback, words", [
    (lambda X, nit: [1.0] * len(X), "must return a dict"),
    (lambda X, nit: {"a": np.ones(len(X) + 1)}, "first axis is the 2 rows"),
    (lambda X, nit: {"a": 1.0}, "first axis is the 2 rows"),
    (lambda X, nit: {"a" if nit == 0 else "b": np.ones(len(X))}, "same names"),
    (lambda X, nit: {"a": np.ones((len(X), 1 + nit))}, "keep them fixed"),
    (lambda X, nit: {"a": np.ones(len(X), dtype=int if nit == 0 else float)}, "keep them fixed"),
])
def test_callback_output_is_validated(callback, words):
    m = teacher_student()
    with pytest.raises((TypeError, ValueError), match=words):
        ls.descend(m, m.sample_init(2, rng=0), lr=LR, maxiter=10, record_at=[0, 1],
                   callback=callback)
