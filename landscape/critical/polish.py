"""Descend to a coarse tolerance, then polish with Newton: the fast path to certified points.

Plain gradient descent spends most of its iterations in the linear tail near a
minimum (rate 1 - lr * lambda_min per step).  Newton's method finishes that tail
in a handful of steps.  To end where plain GD would, a polished point that is not
a minimum (GD was only passing slowly by a saddle when it reached the coarse
tolerance) is not accepted: the start is pushed off the saddle along its most
negative curvature direction, on the side GD was on, and descends again.
"""

import dataclasses

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
from scipy.optimize import brentq
from scipy.sparse.linalg import LinearOperator, eigsh
from threadpoolctl import ThreadpoolController

from .._noise import hessian_noise
from .._results import Result
from .._validation import as_batch, as_positive_float, as_positive_int
from ..models.base import check_model
from ._result import Status
from .descent import _Divergence
from .root import find_critical_point

__all__ = ["descend_and_polish", "PolishedDescent", "min_curvature", "newton_batch",
           "smallest_eigenvalues", "is_positive_definite"]

_DENSE_LIMIT = 2000
# Newton iterates whose neurons are within this angle of collinear are tried on the
# split manifold (made exactly collinear); kept when that does not increase |grad L|.
_ALIGN_ANGLE = 1e-2
# Armijo constant of the line search on |grad L|^2 (as newton.py).
_ARMIJO = 1e-4


def min_curvature(model, x):
    """Smallest Hessian eigenvalue at x and its unit eigenvector.

    Dense ``eigh`` up to 2,000 parameters; Lanczos (``eigsh`` on Hessian-vector
    products) beyond.
    """
    n = model.n_params
    if n <= _DENSE_LIMIT:
        lam, Q = scipy.linalg.eigh(model.hess_kernel(x[None])[0], subset_by_index=(0, 0), check_finite=False)
        return float(lam[0]), Q[:, 0]
    op = LinearOperator((n, n), matvec=lambda v: model.hvp_kernel(x[None], v[None])[0],
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
    """Levenberg-Marquardt steps on grad L = 0 for every row: -(H^2 + mu I)^-1 H g, mu = |g|.

    Newton's method for the system grad L = 0 with Jacobian H, damped by
    mu = |grad L| (Fan & Yuan 2005, delta = 1): in an eigenbasis of H the step
    is -lambda_i g_i / (lambda_i^2 + mu), Newton's g_i / lambda_i where
    lambda_i^2 >> mu and almost nothing along directions whose curvature is not
    resolved at this gradient level.  Where critical points are isolated and
    nondegenerate it converges quadratically like Newton (mu shrinks with the
    gradient); where they form a manifold (a split neuron, any Morse-Bott
    continuum) it converges quadratically onto the manifold (under a local error
    bound) without the long, meaningless steps a plain Newton solve takes along
    nearly singular directions -- steps that can carry an iterate along a
    continuum of critical points to its non-smooth end.

    Hessians are built batched; each system is factorised by its own LAPACK call
    (numpy's stacked solvers thread badly on many small matrices).

    References
    ----------
    J. Fan, Y. Yuan, "On the quadratic convergence of the Levenberg-Marquardt method
    without nonsingularity assumption", Computing 74 (2005) 23-39.
    N. Yamashita, M. Fukushima, "On the rate of convergence of the Levenberg-Marquardt
    method", Computing Suppl. 15 (2001) 239-249.
    """
    n = model.n_params
    P = np.full_like(X, np.nan)
    step = max(1, (1 << 24) // max(1, n * n + model.work_per_row()))
    for s in range(0, len(X), step):
        Hs = model.hess_kernel(X[s:s + step])
        with _small_matrix_threads(n):
            for j, H in enumerate(Hs):
                P[s + j] = _lm_step(H, G[s + j])
    return P


def _lm_step(H, g):
    """-(H^2 + mu I)^-1 H g with mu = |g| (Cholesky), by an eigendecomposition if that fails."""
    mu = float(np.linalg.norm(g))
    Hg = H @ g
    A = H @ H
    A.flat[::A.shape[0] + 1] += mu
    try:
        c, info = scipy.linalg.lapack.dpotrf(A, lower=1, overwrite_a=1, clean=0)
        if info == 0:
            p, info = scipy.linalg.lapack.dpotrs(c, Hg, lower=1)
            if info == 0 and np.all(np.isfinite(p)):
                return -p
    except (scipy.linalg.LinAlgError, ValueError):
        pass
    try:
        lam, Q = scipy.linalg.eigh(H, check_finite=False)
    except (scipy.linalg.LinAlgError, ValueError):
        return np.nan
    return -Q @ (lam * (Q.T @ g) / (lam ** 2 + mu))


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

    Newton-type steps with the Armijo backtracking on |grad L|^2 of
    ``find_critical_point(method="newton")``, with Hessians built and factorised
    for all unfinished rows together.  Two additions make it converge onto
    manifolds of critical points (over-parameterised networks):

    * the steps are Levenberg-Marquardt steps damped by |grad L| (see
      ``_newton_directions``): Newton's where the curvature is resolved, nothing
      along directions where it is not, so degenerate and non-isolated critical
      points are reached quadratically and continua are not travelled along;
    * an iterate whose neurons are nearly collinear (within ``_ALIGN_ANGLE``) is
      moved onto the split manifold through it (``model.align_collinear``)
      whenever that does not increase |grad L| (or keeps it <= gtol): the cubic
      valley around such a manifold, which Newton crosses only linearly, is
      jumped across.  A converged row is tried too, so that its end point lies on
      the manifold and its Hessian shows the manifold's exact zero modes.

    Returns
    -------
    X, grad_norm, success, nit : ndarrays over rows
    """
    n = model.n_params
    grad = lambda A: model.in_chunks(model.grad_kernel, A, out_shape=(n,))  # noqa: E731
    X = X.copy()
    G = grad(X)
    gn = np.linalg.norm(G, axis=1)
    nit = np.zeros(len(X), dtype=int)
    _align(model, X, G, gn, np.arange(len(X)), gtol, grad)
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
            smooth = ~model.nondifferentiable_units(T).any(axis=1)
            phi = np.full(len(todo), np.inf)
            GT = np.zeros_like(T)
            if smooth.any():
                GT[smooth] = grad(T[smooth])
                phi[smooth] = np.einsum("bn,bn->b", GT[smooth], GT[smooth])
            ok = phi <= phi0[todo] * (1.0 - 2 * _ARMIJO * t[todo])
            rows = todo[ok]
            Xa[rows], Ga[rows], moved[rows] = T[ok], GT[ok], True
            todo = todo[~ok]
            t[todo] *= 0.5
        X[active], G[active] = Xa, Ga
        gn[active] = np.linalg.norm(Ga, axis=1)
        nit[active] += 1
        _align(model, X, G, gn, active[moved], gtol, grad)
        success[active] = gn[active] <= gtol
        active = active[moved & ~success[active]]
    _settle(model, X, G, gn, np.flatnonzero(success), gtol, grad)
    return X, gn, success, nit


def _settle(model, X, G, gn, rows, gtol, grad):
    """Converged rows with nearly collinear neurons, moved exactly onto their split manifold.

    A row may meet gtol a little off the manifold: along the rotations that open a
    split the loss is only cubic, so the gradient is tiny there.  ``_onto_manifold``
    lands on the manifold itself; the result replaces the row when it meets gtol at
    the same loss (in place).
    """
    idx, Y, GY, gY = _onto_manifold(model, X[rows], rows, gtol, grad, iters=10)
    if idx.size == 0:
        return
    before, after = model.loss_kernel(X[idx]), model.loss_kernel(Y)
    ok = (gY <= gtol) & (np.abs(after - before) <= _uphill_tolerance(model, before))
    X[idx[ok]], G[idx[ok]], gn[idx[ok]] = Y[ok], GY[ok], gY[ok]


def _align(model, X, G, gn, rows, gtol, grad):
    """Newton iterates moved onto the split manifold near them when that lowers |grad L| (in
    place): the cubic valley around a manifold, which Levenberg-Marquardt crosses only
    linearly, is jumped across."""
    idx, Y, GY, gY = _onto_manifold(model, X[rows], rows, gtol, grad, iters=1)
    if idx.size == 0:
        return
    before, after = model.loss_kernel(X[idx]), model.loss_kernel(Y)
    ok = (gY <= np.maximum(gn[idx], gtol)) & (after <= before + _uphill_tolerance(model, before))
    X[idx[ok]], G[idx[ok]], gn[idx[ok]] = Y[ok], GY[ok], gY[ok]


def _onto_manifold(model, X, rows, gtol, grad, iters):
    """(rows, Y, G(Y), |G(Y)|) for the rows of X with nearly collinear neurons, moved onto
    their split manifold: aligned (groups made exactly collinear), then up to `iters`
    Levenberg-Marquardt steps taken within the set of aligned configurations
    (``model.aligned_basis``: each member's norm, the group's common rotation, every
    other coordinate), aligning again after each.  The critical points of that set
    are critical points of L, and Newton converges to them quadratically."""
    n = model.n_params
    empty = (np.zeros(0, dtype=int), np.zeros((0, n)), np.zeros((0, n)), np.zeros(0))
    if rows.size == 0:
        return empty
    Y, changed = model.align_collinear(X, _ALIGN_ANGLE)
    idx, Y = rows[changed], Y[changed]
    smooth = ~model.nondifferentiable_units(Y).any(axis=1)
    idx, Y = idx[smooth], Y[smooth]
    if idx.size == 0:
        return empty
    GY = grad(Y)
    gY = np.linalg.norm(GY, axis=1)
    for _ in range(iters):
        todo = np.flatnonzero(gY > gtol)
        if todo.size == 0:
            break
        P = np.zeros((todo.size, n))
        H = model.hess_kernel(Y[todo])
        for j, b in enumerate(todo):
            Z = model.aligned_basis(Y[b], _ALIGN_ANGLE)
            if Z is None:
                P[j] = _lm_step(H[j], GY[b])
            else:
                P[j] = Z @ _lm_step(Z.T @ H[j] @ Z, Z.T @ GY[b])
        T, _ = model.align_collinear(Y[todo] + P, _ALIGN_ANGLE)
        smooth = np.all(np.isfinite(T), axis=1)
        smooth[smooth] = ~model.nondifferentiable_units(T[smooth]).any(axis=1)
        todo, T = todo[smooth], T[smooth]
        if todo.size == 0:
            break
        GT = grad(T)
        gT = np.linalg.norm(GT, axis=1)
        better = gT < gY[todo]            # a step that does not help ends the row's descent
        Y[todo[better]], GY[todo[better]], gY[todo[better]] = T[better], GT[better], gT[better]
        if not better.any():
            break
    return idx, Y, GY, gY


def is_positive_definite(model, X):
    """Whether H(x) is positive definite, for every row of X (shape (B,) bool).

    Cholesky (LAPACK potrf) of each Hessian, built batched; one BLAS thread for
    small matrices.
    """
    n = model.n_params
    out = np.zeros(len(X), dtype=bool)
    step = max(1, (1 << 24) // max(1, n * n + model.work_per_row()))
    for s in range(0, len(X), step):
        Hs = model.hess_kernel(X[s:s + step])
        with _small_matrix_threads(n):
            for j, H in enumerate(Hs):
                _, info = scipy.linalg.lapack.dpotrf(H, lower=1, overwrite_a=1, clean=0)
                out[s + j] = info == 0
    return out


def _escape(model, x_saddle, x_near, lr, push, tol):
    """Where GD from x_near leaves the saddle: its linearised escape, grown to length `push`.

    Near a saddle x_s, GD multiplies the component of x - x_s along an eigenvector
    with eigenvalue lambda < 0 by (1 + lr |lambda|) per step and lets the others
    decay.  The escape point is x_s + sum_i c_i (1 + lr |lambda_i|)^t v_i with t such
    that its length is `push` (c_i = v_i . (x_near - x_s)).  When x_near has no
    unstable component (it lies in an invariant subspace through the saddle, which
    plain GD leaves only through rounding errors), the jump is along the most
    negative curvature direction.  Returns (point, exact) with exact False in that case.
    """
    lam, Q = scipy.linalg.eigh(model.hess_kernel(x_saddle[None])[0], check_finite=False)
    neg = lam < -tol
    c = Q[:, neg].T @ (x_near - x_saddle)
    if np.linalg.norm(c) <= 1e-13 * max(1.0, np.linalg.norm(x_saddle)):
        return x_saddle + push * Q[:, 0], False
    rate = np.log1p(lr * np.abs(lam[neg]))

    def length(t):
        return np.linalg.norm(c * np.exp(rate * t)) - push

    t = 0.0
    if length(0.0) < 0:
        hi = 1.0
        while length(hi) < 0:
            hi *= 2.0
        t = brentq(length, 0.0, hi, xtol=1e-12)
    return x_saddle + Q[:, neg] @ (c * np.exp(rate * t)), True


def descend_and_polish(model, X0, *, lr, gtol=1e-12, coarse_gtol=1e-3, maxiter=100_000,
                       push=1e-2, max_pushes=10, curvature_tol=1e-9, patience=5,
                       check_every=10):
    """Gradient descent until Newton can take over, Newton to `gtol`, ending where plain GD would.

    One batched loop runs gradient descent on every unfinished start.  A start
    whose gradient norm is <= `coarse_gtol` is checked (a Cholesky test of its
    Hessian after 10, 20, 40, ... further steps): where the Hessian is positive
    definite it is handed to batched Newton, which converges to the minimum of
    that convex region -- where GD is going.  Near a saddle plateau the Hessian
    is indefinite and descent goes on, as plain GD would; a start refused
    `patience` times is polished anyway, and if it sits by a saddle it jumps
    ahead along GD's own linearised escape (the unstable components of its
    offset from the saddle, grown at rates log(1 + lr |lambda_i|)) and descends on.

    Parameters
    ----------
    model : Model
    X0 : array_like of shape (B, n_params)
    lr : float
        Gradient-descent step size.
    gtol : float
        Certified tolerance |grad L| <= gtol of the final points.
    coarse_gtol : float
        Gradient norm below which a start may be handed to Newton.
    maxiter : int
        Budget of gradient steps per start.
    push : float
        Length of the escape jump off a saddle.
    max_pushes : int
    curvature_tol : float
        lambda_min(H) < -curvature_tol * max(1, |lambda_min|) makes a polished point a saddle.
    patience : int
        Refused checks after which a start is polished anyway.
    check_every : int
        Steps before the first check (doubling after each refusal).

    Returns
    -------
    PolishedDescent
        A start whose descent diverges stops with status ``DIVERGED`` (the rule
        of :func:`descend`).

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
    coarse_gtol = max(as_positive_float(coarse_gtol, "coarse_gtol"), gtol)
    maxiter = as_positive_int(maxiter, "maxiter", minimum=0)
    push = as_positive_float(push, "push")
    max_pushes = as_positive_int(max_pushes, "max_pushes", minimum=0)
    curvature_tol = as_positive_float(curvature_tol, "curvature_tol", allow_zero=True)
    patience = as_positive_int(patience, "patience", minimum=0)
    check_every = as_positive_int(check_every, "check_every")

    B, n = X0.shape
    divergence = _Divergence(model, X0)
    X = X0.copy()
    loss = np.full(B, np.nan)
    gnorm = np.full(B, np.nan)
    lam_min = np.full(B, np.nan)
    it_descent = np.zeros(B, dtype=int)
    it_polish = np.zeros(B, dtype=int)
    pushes = np.zeros(B, dtype=int)
    status = np.full(B, int(Status.MAXITER))
    message = ["descent: " + Status.MAXITER.message] * B
    next_check = np.zeros(B, dtype=int)
    wait = np.full(B, check_every)
    refused = np.zeros(B, dtype=int)
    grad = lambda A: model.in_chunks(model.grad_kernel, A, out_shape=(n,))  # noqa: E731
    saddle = {}          # row -> (just below) the loss of the saddle it was last pushed off
    handoff_below = np.full(B, coarse_gtol)   # after a failed Newton: 100x lower

    rows = np.arange(B)
    Xa = X.copy()
    clock = 0
    with np.errstate(over="ignore", invalid="ignore"):
        while rows.size:
            bad = model.nondifferentiable_units(Xa).any(axis=1)
            G = np.zeros_like(Xa)
            if np.any(~bad):
                G[~bad] = grad(Xa[~bad])
            gn = np.sqrt(np.einsum("bn,bn->b", G, G))
            gn[bad] = np.nan
            finite = np.isfinite(gn)
            failed = ~finite | divergence.check(rows, Xa, gn, clock)   # bad or diverged
            finished = ~failed & (gn <= gtol)
            due = (~failed & ~finished & (gn <= handoff_below[rows])
                   & (clock >= next_check[rows]))
            pushed = [j for j in np.flatnonzero(due) if rows[j] in saddle]
            if pushed:
                # a start pushed off a saddle is handed over once it is below the saddle's
                # loss: gradient descent, never increasing the loss, cannot go back there
                below = model.loss_kernel(Xa[pushed]) < [saddle[rows[j]] for j in pushed]
                for j, ok in zip(pushed, below):
                    if ok:
                        del saddle[rows[j]]
                    else:
                        due[j] = False
                        next_check[rows[j]] = clock + check_every
            handoff = np.zeros(len(rows), dtype=bool)
            if np.any(due):
                idx = np.flatnonzero(due)
                r = rows[idx]
                pd = is_positive_definite(model, Xa[idx])
                no = r[~pd]
                refused[no] += 1
                next_check[no] = clock + wait[no]
                wait[no] *= 2
                handoff[idx] = pd | (refused[r] > patience)
            out_of_budget = it_descent[rows] >= maxiter
            leave = failed | finished | handoff | out_of_budget
            for j in np.flatnonzero(failed):
                row = rows[j]
                status[row] = int(Status.NON_DIFFERENTIABLE if bad[j] else Status.DIVERGED)
                message[row] = "descent: " + Status(status[row]).message
                X[row] = Xa[j]
            for j in np.flatnonzero(leave & ~failed & out_of_budget & ~handoff & ~finished):
                X[rows[j]], gnorm[rows[j]] = Xa[j], gn[j]
            back = []
            # starts that reached gtol by descent alone still get the saddle check
            hand = np.flatnonzero(leave & ~failed & (handoff | finished))
            if hand.size:
                back = _polish_handed(model, rows[hand], Xa[hand], lr, gtol, push, max_pushes,
                                      curvature_tol, X, gnorm, lam_min, it_polish, pushes,
                                      status, message, saddle)
                # Newton failed on these: descent carries them until |grad| is 100x lower,
                # instead of handing them back (and failing) every few hundred steps
                failed = [r for r, _, why in back if why == "failed"]
                handoff_below[failed] /= 100.0
            keep = ~leave
            rows, Xa, G = rows[keep], Xa[keep], G[keep]
            Xa -= lr * G
            it_descent[rows] += 1
            if back:
                rb = np.array([b[0] for b in back])
                rows = np.concatenate([rows, rb])
                Xa = np.concatenate([Xa, np.array([b[1] for b in back]).reshape(-1, n)])
                # Newton went uphill (to a critical point GD cannot reach from here): back
                # off as after a refused check; otherwise check again soon
                up = np.array([why == "uphill" for _, _, why in back])
                fresh = rb[~up]
                refused[fresh] = 0
                wait[fresh] = check_every
                next_check[fresh] = clock + check_every
                next_check[rb[up]] = clock + wait[rb[up]]
                wait[rb[up]] *= 2
            clock += 1
    with np.errstate(over="ignore", invalid="ignore"):     # diverged starts: inf/NaN loss
        loss = model.in_chunks(model.loss_kernel, X, out_shape=())
    return PolishedDescent(x=X, loss=loss, grad_norm=gnorm, min_eigenvalue=lam_min,
                           descent_iterations=it_descent, polish_iterations=it_polish,
                           pushes=pushes, status=status,
                           success=status == int(Status.CONVERGED), message=message)


def _polish_handed(model, rows, Xc, lr, gtol, push, max_pushes, curvature_tol, X, gnorm,
                   lam_min, it_polish, pushes, status, message, saddle):
    """Newton on the handed-over starts; returns [(row, x, why)] of starts that descend on.

    ``why`` is ``"failed"`` (Newton did not converge), ``"uphill"`` (it converged
    to a critical point above the loss it started from, which gradient descent,
    never increasing the loss, cannot reach: typically the saddle a start was just
    pushed off) or ``"pushed"`` (it converged to a saddle and the start jumps
    ahead along GD's escape from it).
    """
    Xs, gs, ok, nits = newton_batch(model, Xc, gtol=gtol, maxiter=20)
    it_polish[rows] += nits
    rescued = []
    for j in np.flatnonzero(~ok):
        # a cheap rescue only: a start it cannot finish goes back to descent
        r = find_critical_point(model, Xc[j], method="newton-mr", gtol=gtol, maxiter=20,
                                minres_maxiter=max(50, model.n_params))
        it_polish[rows[j]] += r.nit
        if r.success:
            Xs[j], gs[j], ok[j] = r.x, r.grad_norm, True
            rescued.append(j)
    if rescued:
        grad = _grad_of(model)
        _settle(model, Xs, grad(Xs), gs, np.array(rescued), gtol, grad)
    back = [(rows[j], Xc[j], "failed") for j in np.flatnonzero(~ok)]   # descend on
    good = np.flatnonzero(ok)
    start = model.in_chunks(model.loss_kernel, Xc[good], out_shape=())
    end = model.in_chunks(model.loss_kernel, Xs[good], out_shape=())
    uphill = end > start + _uphill_tolerance(model, start)
    back += [(rows[j], Xc[j], "uphill") for j in good[uphill]]
    end_loss = dict(zip(good.tolist(), end))
    good = good[~uphill]
    for j, lam in zip(good, smallest_eigenvalues(model, Xs[good])):
        row = rows[j]
        threshold = -curvature_tol * max(1.0, abs(lam))
        if lam < threshold:
            # a negative eigenvalue within the Hessian's noise floor is not a saddle
            threshold = min(threshold, -hessian_noise(
                model, Xs[j], dense=model.n_params <= _DENSE_LIMIT)[0])
        if lam < threshold and pushes[row] < max_pushes:
            y, exact = _escape(model, Xs[j], Xc[j], lr, push, -threshold)
            pushes[row] += 1
            saddle[row] = end_loss[j] - _uphill_tolerance(model, end_loss[j])
            if not exact:
                message[row] = ("pushed along the most negative curvature off a saddle GD "
                                "could leave only through rounding; ")
            back.append((row, y, "pushed"))
            continue
        X[row], gnorm[row], lam_min[row] = Xs[j], gs[j], lam
        status[row] = int(Status.CONVERGED)
        note = message[row] if message[row].startswith("pushed") else ""
        message[row] = note + ("converged" if lam >= threshold else
                               f"converged to a saddle after {max_pushes} pushes")
    return back


def _grad_of(model):
    """Batched gradients of any number of rows, in memory-bounded chunks."""
    return lambda A: model.in_chunks(model.grad_kernel, A, out_shape=(model.n_params,))


def _uphill_tolerance(model, loss):
    """How much higher than its start a Newton end may be (rounding of the loss only)."""
    return 1e3 * np.finfo(float).eps * np.maximum(1.0, np.abs(loss)) * np.sqrt(model.n_params)


def smallest_eigenvalues(model, X):
    """lambda_min(H(x)) for every row of X, shape (B,).

    Hessians built batched and one LAPACK eigvalsh (smallest only) each; Lanczos
    on Hessian-vector products above 2,000 parameters.
    """
    n = model.n_params
    if len(X) == 0:
        return np.zeros(0)
    if n > _DENSE_LIMIT:
        return np.array([min_curvature(model, x)[0] for x in X])
    out = np.empty(len(X))
    step = max(1, (1 << 24) // max(1, n * n + model.work_per_row()))
    for s in range(0, len(X), step):
        Hs = model.hess_kernel(X[s:s + step])
        with _small_matrix_threads(n):
            for j, H in enumerate(Hs):
                out[s + j] = scipy.linalg.eigvalsh(H, subset_by_index=(0, 0),
                                                   check_finite=False)[0]
    return out
