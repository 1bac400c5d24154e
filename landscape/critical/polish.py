"""Descend to a coarse tolerance, then polish with Newton: the fast path to certified points.

Plain gradient descent spends most of its iterations in the linear tail near a
minimum (rate 1 - lr * lambda_min per step).  Newton's method finishes that tail
in a handful of steps.  To end where plain GD would, a polished point that is not
a minimum (GD was only passing slowly by a saddle when it reached the coarse
tolerance) is not accepted: the start is pushed off the saddle along its most
negative curvature direction, on the side GD was on, and descends again.
"""

import dataclasses
import warnings

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
from scipy.sparse.linalg import LinearOperator, eigsh
from threadpoolctl import ThreadpoolController

from .._results import Result
from .._validation import as_batch, as_positive_float, as_positive_int
from ._result import Status
from .descent import descend
from .root import check_model, find_critical_point

__all__ = ["descend_and_polish", "PolishedDescent", "min_curvature", "newton_batch"]

_DENSE_LIMIT = 2000


def min_curvature(model, x):
    """Smallest Hessian eigenvalue at x and its unit eigenvector.

    Dense ``eigh`` up to 2,000 parameters; Lanczos (``eigsh`` on Hessian-vector
    products) beyond.
    """
    n = model.n_params
    if n <= _DENSE_LIMIT:
        lam, Q = scipy.linalg.eigh(model._hess(x), subset_by_index=(0, 0), check_finite=False)
        return float(lam[0]), Q[:, 0]
    op = LinearOperator((n, n), matvec=lambda v: model._hvp_batch(x[None], v[None])[0],
                        dtype=np.float64)
    lam, Q = eigsh(op, k=1, which="SA", tol=1e-10)
    return float(lam[0]), Q[:, 0]


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class PolishedDescent(Result):
    """Outcome of :func:`descend_and_polish` for B starts.

    Attributes
    ----------
    x : ndarray of shape (B, n_params)
        Final points: critical points with |grad L| <= gtol where ``success``.
    loss, grad_norm : ndarray of shape (B,)
    min_eigenvalue : ndarray of shape (B,)
        Smallest Hessian eigenvalue at the final point (NaN where not reached).
    descent_iterations : ndarray of shape (B,)
        Gradient steps taken in all descent phases.
    polish_iterations : ndarray of shape (B,)
        Newton iterations taken in all polishing phases.
    pushes : ndarray of shape (B,)
        How many times the start was pushed off a saddle.
    status : ndarray of shape (B,)
        :class:`Status` values.
    success : ndarray of shape (B,)
    message : list of str
        Per start, how it ended.
    """

    x: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    min_eigenvalue: np.ndarray
    descent_iterations: np.ndarray
    polish_iterations: np.ndarray
    pushes: np.ndarray
    status: np.ndarray
    success: np.ndarray
    message: list


def _newton_directions(model, X, G):
    """Newton steps -H^-1 g for every row, NaN rows where H is singular.

    Hessians are built batched; each is factorised by its own LAPACK call
    (numpy's stacked solvers thread badly on many small matrices).
    """
    n = model.n_params
    P = np.full_like(X, np.nan)
    step = max(1, (1 << 24) // max(1, n * n + model._pair_work()))
    for s in range(0, len(X), step):
        Hs = model._hess_batch(X[s:s + step])
        with _small_matrix_threads(n):
            for j, H in enumerate(Hs):
                try:
                    # rcond below machine epsilon: as meaningless as a singular solve
                    with warnings.catch_warnings():
                        warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
                        P[s + j] = scipy.linalg.solve(H, -G[s + j], assume_a="sym",
                                                      check_finite=False)
                except (scipy.linalg.LinAlgError, scipy.linalg.LinAlgWarning, ValueError):
                    pass
    return P


_CONTROLLER = []


def _small_matrix_threads(n):
    """One BLAS thread for loops of small factorisations (threads only fight there).

    The controller inspects the loaded libraries once; a fresh threadpool_limits
    per call would rescan them every time.
    """
    if n >= 1000:
        return _NoLimit()
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


class _NoLimit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def newton_batch(model, X, *, gtol, maxiter=50, max_backtracks=40):
    """Newton's method on grad L = 0 for every row of X at once.

    The batched twin of ``find_critical_point(method="newton")``: the same steps
    and the same Armijo backtracking on |grad L|^2, with Hessians built and
    factorised for all unfinished rows together.

    Returns
    -------
    X, grad_norm, success, nit : ndarrays over rows
    """
    n = model.n_params
    grad = lambda A: model._chunked(model._grad_batch, A, out_shape=(n,))  # noqa: E731
    X = X.copy()
    G = grad(X)
    gn = np.linalg.norm(G, axis=1)
    nit = np.zeros(len(X), dtype=int)
    success = gn <= gtol
    active = np.flatnonzero(~success)
    for _ in range(maxiter):
        if active.size == 0:
            break
        Xa, Ga = X[active], G[active]
        P = _newton_directions(model, Xa, Ga)
        phi0 = gn[active] ** 2
        t = np.ones(len(active))
        moved = np.zeros(len(active), dtype=bool)
        todo = np.flatnonzero(np.all(np.isfinite(P), axis=1))
        for _ in range(max_backtracks):
            if todo.size == 0:
                break
            T = Xa[todo] + t[todo, None] * P[todo]
            smooth = ~model._nondifferentiable(T).any(axis=1)
            phi = np.full(len(todo), np.inf)
            GT = np.zeros_like(T)
            if smooth.any():
                GT[smooth] = grad(T[smooth])
                phi[smooth] = np.einsum("bn,bn->b", GT[smooth], GT[smooth])
            ok = phi <= phi0[todo] * (1.0 - 2e-4 * t[todo])
            rows = todo[ok]
            Xa[rows], Ga[rows], moved[rows] = T[ok], GT[ok], True
            todo = todo[~ok]
            t[todo] *= 0.5
        X[active], G[active] = Xa, Ga
        gn[active] = np.linalg.norm(Ga, axis=1)
        nit[active] += 1
        success[active] = gn[active] <= gtol
        active = active[moved & ~success[active]]
    return X, gn, success, nit


class _ConvexHandoff:
    """stop_when for descent: hand a start to Newton where its Hessian is positive definite.

    Near a saddle plateau the Hessian is indefinite and GD keeps going, as plain
    GD would.  A start refused `patience` times (e.g. at a degenerate minimum,
    where H is only semidefinite) is handed over anyway; Newton and the saddle
    check then decide.
    """

    def __init__(self, model, patience):
        self.model = model
        self.patience = patience
        self.refused = {}

    def __call__(self, X, starts):
        ok = _is_positive_definite(self.model, X)
        for s, good in zip(starts, ok):
            if not good:
                self.refused[s] = self.refused.get(s, 0) + 1
        return ok | np.array([self.refused.get(s, 0) > self.patience for s in starts],
                             dtype=bool)


def _is_positive_definite(model, X):
    """Cholesky succeeds on H(x) for every row (LAPACK potrf, one thread)."""
    n = model.n_params
    out = np.zeros(len(X), dtype=bool)
    step = max(1, (1 << 24) // max(1, n * n + model._pair_work()))
    for s in range(0, len(X), step):
        Hs = model._hess_batch(X[s:s + step])
        with _small_matrix_threads(n):
            for j, H in enumerate(Hs):
                _, info = scipy.linalg.lapack.dpotrf(H, lower=1, overwrite_a=1, clean=0)
                out[s + j] = info == 0
    return out


def descend_and_polish(model, X0, *, lr, gtol=1e-12, coarse_gtol=1e-2, maxiter=100_000,
                       push=1e-2, max_pushes=10, curvature_tol=1e-9, patience=5):
    """Gradient descent to `coarse_gtol`, then Newton to `gtol`, ending where plain GD would.

    Parameters
    ----------
    model : Model
    X0 : array_like of shape (B, n_params)
    lr : float
        Gradient-descent step size.
    gtol : float
        Certified tolerance |grad L| <= gtol of the final points.
    coarse_gtol : float
        Descent hands a start over to Newton once |grad L| <= coarse_gtol and its
        Hessian is positive definite (a Cholesky test every 10 steps): near a
        saddle plateau the Hessian is indefinite and descent goes on, as plain GD
        would.
    patience : int
        A start refused that many times (the checks back off: after 10, 20, 40, ...
        steps) is handed over anyway (degenerate minima
        have only semidefinite Hessians).
    maxiter : int
        Budget of gradient steps per start over all descent phases.
    push : float
        Length of the push along negative curvature when Newton lands on a saddle.
    max_pushes : int
    curvature_tol : float
        A polished point with lambda_min(H) < -curvature_tol * max(1, |lambda_min|)
        is a saddle that GD was only passing: the start goes on descending from its
        coarse iterate, pushed along the saddle's most negative curvature direction
        on the side GD was on.

    Returns
    -------
    PolishedDescent

    Notes
    -----
    Newton runs batched over all starts (:func:`newton_batch`); a start where it
    fails is retried with Newton-MR, and otherwise finished by plain descent.

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=4)
    >>> p = ls.descend_and_polish(m, m.sample_init(20, rng=0), lr=5 / 4)
    >>> bool(np.all(p.grad_norm <= 1e-12)), bool(np.all(p.min_eigenvalue > 0))
    (True, True)
    """
    check_model(model)
    X0 = as_batch(X0, model.n_params, "X0")
    lr = as_positive_float(lr, "lr")
    gtol = as_positive_float(gtol, "gtol", allow_zero=True)
    coarse_gtol = as_positive_float(coarse_gtol, "coarse_gtol")
    maxiter = as_positive_int(maxiter, "maxiter", minimum=0)
    push = as_positive_float(push, "push")
    max_pushes = as_positive_int(max_pushes, "max_pushes", minimum=0)
    curvature_tol = as_positive_float(curvature_tol, "curvature_tol", allow_zero=True)

    B, n = X0.shape
    X = X0.copy()
    loss = np.full(B, np.nan)
    gnorm = np.full(B, np.nan)
    lam_min = np.full(B, np.nan)
    it_descent = np.zeros(B, dtype=int)
    it_polish = np.zeros(B, dtype=int)
    pushes = np.zeros(B, dtype=int)
    status = np.full(B, int(Status.MAXITER))
    message = [""] * B
    pending = np.arange(B)
    while pending.size:
        budget = maxiter - it_descent[pending]
        handoff = _ConvexHandoff(model, patience)
        d = descend(model, X[pending], lr=lr, gtol=max(coarse_gtol, gtol),
                    maxiter=int(budget.max()), stop_when=handoff)
        it_descent[pending] += np.minimum(d.nit, budget)
        X[pending] = d.x
        reached = (d.status == Status.CONVERGED) & (d.nit <= budget)
        for j in np.flatnonzero(~reached):
            row = pending[j]
            status[row] = int(d.status[j]) if d.status[j] != Status.CONVERGED \
                else int(Status.MAXITER)
            loss[row], gnorm[row] = d.loss[j], d.grad_norm[j]
            message[row] = "descent: " + Status(status[row]).message
        rows = pending[reached]
        Xc = d.x[reached]
        Xs, gs, ok, nits = newton_batch(model, Xc, gtol=gtol)
        it_polish[rows] += nits
        for j in np.flatnonzero(~ok):
            r = find_critical_point(model, Xc[j], method="newton-mr", gtol=gtol, maxiter=200)
            it_polish[rows[j]] += r.nit
            if r.success:
                Xs[j], gs[j], ok[j] = r.x, r.grad_norm, True
        again = []
        for j in np.flatnonzero(~ok):
            # Newton could not finish: let plain descent do it.
            row = rows[j]
            tail = descend(model, Xc[j][None], lr=lr, gtol=gtol,
                           maxiter=max(0, int(maxiter - it_descent[row])))
            it_descent[row] += int(tail.nit[0])
            X[row], loss[row], gnorm[row] = tail.x[0], tail.loss[0], tail.grad_norm[0]
            status[row] = int(tail.status[0])
            message[row] = "polish failed; plain descent: " + Status(status[row]).message
            if tail.success[0] and model.is_differentiable(X[row]):
                lam_min[row] = min_curvature(model, X[row])[0]
        good = np.flatnonzero(ok)
        lams = _smallest_eigenvalues(model, Xs[good])
        for j, lam in zip(good, lams):
            row = rows[j]
            threshold = -curvature_tol * max(1.0, abs(lam))
            if lam < threshold and pushes[row] < max_pushes:
                _, v = min_curvature(model, Xs[j])
                side = np.sign((Xc[j] - Xs[j]) @ v) or 1.0
                X[row] = Xc[j] + push * side * v
                pushes[row] += 1
                again.append(row)
                continue
            X[row], gnorm[row], lam_min[row] = Xs[j], gs[j], lam
            status[row] = int(Status.CONVERGED)
            message[row] = ("converged" if lam >= threshold else
                            f"converged to a saddle after {max_pushes} pushes")
        pending = np.array(again, dtype=int)
    done = np.isnan(loss)
    loss[done] = model._chunked(model._loss_batch, X[done], out_shape=())
    return PolishedDescent(x=X, loss=loss, grad_norm=gnorm, min_eigenvalue=lam_min,
                           descent_iterations=it_descent, polish_iterations=it_polish,
                           pushes=pushes, status=status,
                           success=status == int(Status.CONVERGED), message=message)


def _smallest_eigenvalues(model, X):
    """lambda_min(H(x)) for every row: batched eigvalsh, Lanczos for large models."""
    n = model.n_params
    if len(X) == 0:
        return np.zeros(0)
    if n > _DENSE_LIMIT:
        return np.array([min_curvature(model, x)[0] for x in X])
    out = np.empty(len(X))
    step = max(1, (1 << 24) // max(1, n * n + model._pair_work()))
    for s in range(0, len(X), step):
        Hs = model._hess_batch(X[s:s + step])
        with _small_matrix_threads(n):
            for j, H in enumerate(Hs):
                out[s + j] = scipy.linalg.eigvalsh(H, subset_by_index=(0, 0),
                                                   check_finite=False)[0]
    return out
