"""Descend to a coarse tolerance, then polish with Newton: the fast path to certified points.

Plain gradient descent spends most of its iterations in the linear tail near a
minimum (rate 1 - lr * lambda_min per step).  Newton's method finishes that tail
in a handful of steps.  To end where plain GD would, a polished point that is not
a minimum (GD was only passing slowly by a saddle when it reached the coarse
tolerance) is not accepted: the start is pushed off the saddle along its most
negative curvature direction, on the side GD was on, and descends again.

The Newton part is :func:`~landscape.critical.newton_batch` (the one Newton driver:
Levenberg-Marquardt steps and the split-manifold moves), with Newton-MR as a rescue.
"""

import dataclasses

import numpy as np
import scipy.linalg
from scipy.optimize import brentq

from .._noise import hessian_noise
from .._results import Result
from .._validation import as_batch, as_positive_float, as_positive_int
from ..models.base import check_model
from ..models.symmetry import same_point
from ..spectrum import DENSE_LIMIT, is_positive_definite, lowest_modes, smallest_eigenvalues
from ._result import Status
from .advance import CONVERGED, DUE, FAILED, MAXITER, NONDIFF, DescentRun
from .newton import newton_batch, uphill_tolerance

__all__ = ["descend_and_polish", "PolishedDescent"]


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class PolishedDescent(Result):
    """Outcome of :func:`descend_and_polish` for B starts.

    Attributes
    ----------
    x : ndarray of shape (B, n_params)
        Final points: critical points with |grad L| <= gtol where ``success``.
    loss, grad_norm : ndarray of shape (B,)
    lambda_min : ndarray of shape (B,)
        Smallest Hessian eigenvalue at the final point (NaN where not reached).
    nit : ndarray of shape (B,)
        All iterations: ``nit_descent + nit_polish``.
    nit_descent : ndarray of shape (B,)
        Gradient steps taken in all descent phases.
    nit_polish : ndarray of shape (B,)
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
    lambda_min: np.ndarray
    nit: np.ndarray
    nit_descent: np.ndarray
    nit_polish: np.ndarray
    pushes: np.ndarray
    status: np.ndarray
    success: np.ndarray
    message: list


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
    if model.n_params <= DENSE_LIMIT:
        lam, Q = scipy.linalg.eigh(model.hess_kernel(x_saddle[None])[0], check_finite=False)
    else:
        # no dense Hessian at this size: the few lowest modes by Lanczos (a saddle of a
        # gradient-descent path has a low index)
        lam, Q = lowest_modes(model, x_saddle, min(8, model.n_params - 1))
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
                       check_every=10, lambda_min=True):
    """Gradient descent until Newton can take over, Newton to `gtol`, ending where plain GD would.

    One batched loop runs gradient descent on every unfinished start.  A start
    whose gradient norm is <= `coarse_gtol` is checked (a Cholesky test of its
    Hessian after 10, 20, 40, ... further steps): where the Hessian is positive
    definite it is handed to batched Newton, which converges to the minimum of
    that convex region -- where GD is going (a start whose |grad L| does not
    halve in 8 Newton iterations, near a minimum whose lambda_min^2 is far below
    |grad L|, goes back to descent at once and is handed over again 100x lower).
    Near a saddle plateau the Hessian is indefinite and descent goes on, as plain
    GD would; a start refused
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
    lambda_min : bool
        Compute the smallest Hessian eigenvalue of every end: one restricted
        ``eigvalsh`` (~8 ms at 400 parameters) per strict minimum modulo symmetry,
        its copies among the ends (losses within 1e-9 relative, orbit distance
        within 1e-6 |x|: the scan's deduplication rule) sharing its value, which
        agrees with their own to the accuracy either has as the minimum's; other
        ends get their own.  False: an end is told from a saddle by a Cholesky test of
        H + curvature_tol I, the eigenvalue is computed only where that fails, and
        ``lambda_min`` is NaN elsewhere -- for callers that classify the ends anyway
        (:func:`landscape.scan`).

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
    >>> bool(np.all(p.grad_norm <= 1e-12)), bool(np.all(p.lambda_min > 0))
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
    run = DescentRun(model, X0, lr=lr, gtol=gtol, maxiter=maxiter)
    X = run.X                           # current iterates, final points once a start ends
    gnorm = np.full(B, np.nan)
    lam_min = np.full(B, np.nan)
    it_polish = np.zeros(B, dtype=int)
    pushes = np.zeros(B, dtype=int)
    status = np.full(B, int(Status.MAXITER))
    message = ["descent: " + Status.MAXITER.message] * B
    check_from = np.zeros(B, dtype=np.int64)     # the next hand-off check, in steps
    wait = np.full(B, check_every, dtype=np.int64)
    refused = np.zeros(B, dtype=int)
    saddle = {}          # row -> (just below) the loss of the saddle it was last pushed off
    handoff_below = np.full(B, coarse_gtol)   # after a failed Newton: 100x lower

    known = []           # strict minima whose lambda_min was computed, for their copies
    rows = np.arange(B)
    with np.errstate(over="ignore", invalid="ignore"):
        while rows.size:
            why = run.advance(rows, handoff_below, check_from)
            it = run.it[rows]
            due = why == DUE
            pushed = [j for j in np.flatnonzero(due) if rows[j] in saddle]
            if pushed:
                # a start pushed off a saddle is handed over once it is below the saddle's
                # loss: gradient descent, never increasing the loss, cannot go back there
                below = model.loss_kernel(X[rows[pushed]]) < [saddle[rows[j]] for j in pushed]
                for j, ok in zip(pushed, below):
                    if ok:
                        del saddle[rows[j]]
                    else:
                        due[j] = False
                        check_from[rows[j]] = it[j] + check_every
            handoff = np.zeros(len(rows), dtype=bool)
            if np.any(due):
                idx = np.flatnonzero(due)
                r = rows[idx]
                pd = is_positive_definite(model, X[r])
                no = r[~pd]
                refused[no] += 1
                check_from[no] = run.it[no] + wait[no]
                wait[no] *= 2
                handoff[idx] = pd | (refused[r] > patience)
            failed = (why == NONDIFF) | (why == FAILED)
            for j in np.flatnonzero(failed):
                row = rows[j]
                status[row] = int(Status.NON_DIFFERENTIABLE if why[j] == NONDIFF
                                  else Status.DIVERGED)
                message[row] = "descent: " + Status(status[row]).message
            spent = why == MAXITER
            gnorm[rows[spent]] = run.gn[rows[spent]]
            # starts that reached gtol by descent alone still get the saddle check
            hand = np.flatnonzero(handoff | (why == CONVERGED))
            back = []
            if hand.size:
                back = _polish_handed(model, rows[hand], X[rows[hand]], lr, gtol, push,
                                      max_pushes, curvature_tol, X, gnorm, lam_min, it_polish,
                                      pushes, status, message, saddle, lambda_min, known)
                # Newton failed on these: descent carries them until |grad| is 100x lower,
                # instead of handing them back (and failing) every few hundred steps
                failed_newton = [r for r, _, why_ in back if why_ == "failed"]
                handoff_below[failed_newton] /= 100.0
            leave = failed | spent | handoff | (why == CONVERGED)
            rows = rows[~leave]
            if back:
                rb = np.array([b[0] for b in back])
                X[rb] = np.array([b[1] for b in back]).reshape(-1, n)
                rows = np.concatenate([rows, rb])
                # Newton went uphill (to a critical point GD cannot reach from here): back
                # off as after a refused check; otherwise check again soon
                up = np.array([why_ == "uphill" for _, _, why_ in back])
                fresh = rb[~up]
                refused[fresh] = 0
                wait[fresh] = check_every
                check_from[fresh] = run.it[fresh] + check_every
                check_from[rb[up]] = run.it[rb[up]] + wait[rb[up]]
                wait[rb[up]] *= 2
            rows = np.sort(rows)
    with np.errstate(over="ignore", invalid="ignore"):     # diverged starts: inf/NaN loss
        loss = model.in_chunks(model.loss_kernel, X, out_shape=())
    it_descent = run.it.astype(int)
    return PolishedDescent(x=X, loss=loss, grad_norm=gnorm, lambda_min=lam_min,
                           nit=it_descent + it_polish, nit_descent=it_descent, nit_polish=it_polish,
                           pushes=pushes, status=status,
                           success=status == int(Status.CONVERGED), message=message)


def _shared_smallest_eigenvalues(model, X, loss, curvature_tol, known):
    """lambda_min of every row of X (converged ends, losses `loss`), computed once per strict
    minimum modulo symmetry.

    A row that is a copy (the scan's deduplication rule) of a minimum in `known` or of an
    earlier row whose lambda_min exceeds `curvature_tol` takes that lambda_min: the group
    acts by isometries preserving L, so the Hessians of the two copies of one isolated
    critical point are orthogonally similar; the ends are within |grad L| / lambda_min of
    it, so their own values differ from the shared one by about |D^3 L| times that -- the
    accuracy to which either is the critical point's.  Other rows (saddles, degenerate
    points, where nearby points of one manifold can differ) get their own.  `known`, a list
    of ``[x, loss, lambda_min]``, is extended with the minima computed here.  In a COLT'21
    protocol most ends are copies of a handful of minima: one restricted ``eigvalsh`` each
    instead of one per end (a seventh of a k = 16 polish).
    """
    out = np.full(len(X), np.nan)
    rep = np.full(len(X), -1)                 # the earlier row of X this one copies
    heads = []                                # rows whose own value is computed first
    for i, x in enumerate(X):
        for y, Ly, lam in known:
            if same_point(model, x, loss[i], y, Ly):
                out[i] = lam
                break
        else:
            for h in heads:
                if same_point(model, x, loss[i], X[h], loss[h]):
                    rep[i] = h
                    break
            else:
                heads.append(i)
    heads = np.array(heads, dtype=int)
    out[heads] = smallest_eigenvalues(model, X[heads])
    for h in heads:
        if out[h] > curvature_tol:
            known.append([X[h], float(loss[h]), float(out[h])])
    copies = np.flatnonzero(rep >= 0)
    share = out[rep[copies]] > curvature_tol
    out[copies[share]] = out[rep[copies[share]]]
    own = copies[~share]
    out[own] = smallest_eigenvalues(model, X[own])
    return out


# Newton iterations over which |grad L| must halve, or the start goes back to descent at once.
# Near a minimum whose lambda_min^2 is far below |grad L| the damped steps gain a few percent
# each; twenty of them and twenty of the rescue were spent before the start went back
# anyway (11 of the first 200 starts of V = I_20, 42% of all Newton iterations).
_MIN_PROGRESS = 8


def _polish_handed(model, rows, Xc, lr, gtol, push, max_pushes, curvature_tol, X, gnorm,
                   lam_min, it_polish, pushes, status, message, saddle, want_lambda_min=True,
                   known=None):
    """Newton on the handed-over starts; returns [(row, x, why)] of starts that descend on.

    `known`: the minima whose lambda_min this call has computed (see
    :func:`_shared_smallest_eigenvalues`), updated.

    ``why`` is ``"failed"`` (Newton did not converge), ``"uphill"`` (it converged
    to a critical point above the loss it started from, which gradient descent,
    never increasing the loss, cannot reach: typically the saddle a start was just
    pushed off) or ``"pushed"`` (it converged to a saddle and the start jumps
    ahead along GD's escape from it).
    """
    r = newton_batch(model, Xc, gtol=gtol, maxiter=20, min_progress=_MIN_PROGRESS)
    Xs, gs, ok = r.x.copy(), r.grad_norm.copy(), r.success.copy()
    it_polish[rows] += r.nit
    # a cheap rescue only (Newton-MR, then onto the split manifold where it converged) where
    # the damped steps failed, not where they were merely slow: a start it cannot finish
    # goes back to descent
    fail = np.flatnonzero(~ok & (r.status != int(Status.SLOW)))
    if fail.size:
        rr = newton_batch(model, Xc[fail], gtol=gtol, maxiter=20, method="newton-mr",
                          manifold="end", minres_maxiter=max(50, model.n_params),
                          min_progress=_MIN_PROGRESS)
        it_polish[rows[fail]] += rr.nit
        okr = rr.success
        Xs[fail[okr]], gs[fail[okr]], ok[fail[okr]] = rr.x[okr], rr.grad_norm[okr], True
    back = [(rows[j], Xc[j], "failed") for j in np.flatnonzero(~ok)]   # descend on
    good = np.flatnonzero(ok)
    start = model.in_chunks(model.loss_kernel, Xc[good], out_shape=())
    end = model.in_chunks(model.loss_kernel, Xs[good], out_shape=())
    uphill = end > start + uphill_tolerance(model, start)
    back += [(rows[j], Xc[j], "uphill") for j in good[uphill]]
    end_loss = dict(zip(good.tolist(), end))
    good = good[~uphill]
    if want_lambda_min:
        lams = _shared_smallest_eigenvalues(model, Xs[good], end[~uphill], curvature_tol,
                                            known)
    else:
        lams = np.full(len(good), np.nan)   # NaN: lambda_min > -curvature_tol, not computed
        need = ~is_positive_definite(model, Xs[good], shift=curvature_tol)
        lams[need] = smallest_eigenvalues(model, Xs[good[need]])
    for j, lam in zip(good, lams):
        row = rows[j]
        threshold = -curvature_tol * max(1.0, 0.0 if np.isnan(lam) else abs(lam))
        if lam < threshold:                                       # False for NaN
            # a negative eigenvalue within the Hessian's noise floor is not a saddle
            threshold = min(threshold, -hessian_noise(
                model, Xs[j], dense=model.n_params <= DENSE_LIMIT)[0])
        if lam < threshold and pushes[row] < max_pushes:
            y, exact = _escape(model, Xs[j], Xc[j], lr, push, -threshold)
            pushes[row] += 1
            saddle[row] = end_loss[j] - uphill_tolerance(model, end_loss[j])
            if not exact:
                message[row] = ("pushed along the most negative curvature off a saddle GD "
                                "could leave only through rounding; ")
            back.append((row, y, "pushed"))
            continue
        X[row], gnorm[row], lam_min[row] = Xs[j], gs[j], lam
        status[row] = int(Status.CONVERGED)
        note = message[row] if message[row].startswith("pushed") else ""
        message[row] = note + ("converged" if not lam < threshold else
                               f"converged to a saddle after {max_pushes} pushes")
    return back
