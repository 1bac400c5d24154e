"""Newton's method on grad L = 0, batched over starts: one driver, three directions.

One driver iterates every row of a batch at once: at each iteration it computes a
direction p for every unfinished row, then backtracks on all of them together,
with the gradients of every trial point in one batched call.  The methods differ
only in the direction (g = grad L(x), H = hess L(x), the Jacobian of g):

* ``"newton"`` solves H p = -g by a dense symmetric factorisation: quadratic
  convergence at nondegenerate critical points, saddles included.  It stops where
  H is singular to working precision.
* ``"lm"`` takes the Levenberg-Marquardt step p = -(H^2 + mu I)^-1 H g damped by
  mu = |g| (Fan & Yuan 2005): Newton's step where the curvature is resolved,
  almost nothing along directions where it is not.  It converges quadratically
  onto manifolds of critical points (split neurons, any Morse-Bott continuum)
  without the long steps a plain solve takes along nearly singular directions.
* ``"newton-mr"`` (Roosta, Liu, Xu & Mahoney 2022) takes the minimum-residual
  solution of H p = -g from MINRES on a :class:`~scipy.sparse.linalg.LinearOperator`
  built on the model's Hessian-vector product.  For singular H it still returns a
  descent direction for |g|^2 (p minimises |H p + g| over a Krylov space), so it
  keeps converging at degenerate critical points where the dense solve fails.

The dense directions share one routine (:func:`dense_directions`): Hessians built
batched, each factorised by its own LAPACK call.

Line search: backtracking (halving) on phi(t) = |g(x + t p)|^2 with the Armijo
condition ``phi(t) <= phi(0) + c t phi'(0)``, ``phi'(0) = 2 g.Hp``, c = 1e-4
(Nocedal & Wright 2006, eq. 3.4, applied to the merit function |g|^2).  A trial
point where L is not differentiable, or whose gradient is not finite, is rejected.

Manifold steps (``manifold=``, for over-parameterised networks): an iterate whose
neurons are within 1e-2 rad of collinear is moved onto the split manifold through
it (``model.align_collinear``, then Newton steps within the aligned configurations,
``model.aligned_basis``) when that does not increase |grad L|: the cubic valley
around such a manifold, which Newton crosses only linearly, is jumped across.

References
----------
J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, §3.1.
J. Fan, Y. Yuan, "On the quadratic convergence of the Levenberg-Marquardt method
without nonsingularity assumption", Computing 74 (2005) 23-39.
F. Roosta, Y. Liu, P. Xu, M. W. Mahoney, "Newton-MR: inexact Newton method with
minimum residual sub-problem solver", EURO J. Comput. Optim. 10 (2022) 100035.
"""

import dataclasses
import warnings

import numpy as np
import scipy.linalg
import scipy.linalg.blas
import scipy.linalg.lapack
from scipy.sparse.linalg import LinearOperator, minres

from .._linalg import each_hessian
from .._results import Result
from .._validation import as_batch, as_choice, as_positive_float, as_positive_int
from ..models.base import check_model
from ..spectrum import DENSE_LIMIT
from ._result import CriticalPoint, Status

__all__ = ["newton", "newton_mr", "newton_batch", "NewtonBatch", "dense_directions", "evaluate",
           "unusable_start", "uphill_tolerance", "DIRECTIONS", "MANIFOLD_STEPS"]

# Armijo constant c of the sufficient decrease phi(t) <= phi(0) + c t phi'(0).
_ARMIJO = 1e-4
_MAX_BACKTRACKS = 40
# Newton iterates whose neurons are within this angle of collinear are tried on the
# split manifold (made exactly collinear); kept when that does not increase |grad L|.
_ALIGN_ANGLE = 1e-2

#: Valid ``method`` values of :func:`newton_batch`.
DIRECTIONS = ("newton", "lm", "newton-mr")
#: Valid ``manifold`` values of :func:`newton_batch`: never, onto the manifold at the
#: end (converged rows only), or also after every step.
MANIFOLD_STEPS = (None, "end", "every-step")


# ---- one point ------------------------------------------------------------------------

def evaluate(model, x):
    """(loss, grad) at x, or None where L is not differentiable or not finite.

    Parameters
    ----------
    model : Model
    x : ndarray of shape (n_params,)

    Returns
    -------
    (float, ndarray of shape (n_params,)) or None
    """
    if model.nondifferentiable_units(x[None]).any():
        return None
    g = model.grad_kernel(x[None])[0]
    loss = float(model.loss_kernel(x[None])[0])
    if not (np.isfinite(loss) and np.all(np.isfinite(g))):
        return None
    return loss, g


def unusable_start(model, x, method, history):
    """The :class:`CriticalPoint` of a root-finder whose start x is unusable.

    Status ``NON_DIFFERENTIABLE`` where L is not differentiable at x, else
    ``NON_FINITE``; no iteration, no gradient evaluation counted.
    """
    status = (Status.NON_DIFFERENTIABLE if model.nondifferentiable_units(x[None]).any()
              else Status.NON_FINITE)
    return CriticalPoint(x=x, loss=float(model.loss_kernel(x[None])[0]), grad_norm=np.nan,
                         nit=0, nfev=0, success=False, status=int(status),
                         message=status.message, method=method,
                         history={} if history else None)


def uphill_tolerance(model, loss):
    """How far above ``loss`` a loss computed at the same critical point may come out.

    ``1e3 eps max(1, |loss|) sqrt(n_params)``: the rounding of the loss only.  A
    Newton end higher than its start by more than this went uphill.

    Parameters
    ----------
    model : Model
    loss : float or ndarray
    """
    return 1e3 * np.finfo(float).eps * np.maximum(1.0, np.abs(loss)) * np.sqrt(model.n_params)


# ---- directions -----------------------------------------------------------------------

def dense_directions(model, X, G, *, damped):
    """Newton or Levenberg-Marquardt directions on grad L = 0 at every row of X.

    Parameters
    ----------
    model : Model
    X, G : ndarray of shape (B, n_params)
        Points and their gradients.
    damped : bool
        False: the Newton step, H p = -g by a symmetric solve (LAPACK ``?sysv``);
        a row whose H is singular to working precision (reciprocal condition
        number below machine epsilon) gets no direction.  True: the
        Levenberg-Marquardt step ``p = -(H^2 + mu I)^-1 H g`` with mu = |g|, by
        Cholesky (an eigendecomposition if that fails).

    Returns
    -------
    P, HP : ndarray of shape (B, n_params)
        The directions and H p (NaN rows where no direction was found).

    Notes
    -----
    In an eigenbasis of H the damped step is ``-lambda_i g_i / (lambda_i^2 + mu)``:
    Newton's ``-g_i / lambda_i`` where lambda_i^2 >> mu, almost nothing along
    directions whose curvature is not resolved at this gradient level.  With
    mu = |g| (Fan & Yuan 2005, delta = 1) it converges quadratically at isolated
    nondegenerate critical points and, under a local error bound, onto manifolds of
    them (Yamashita & Fukushima 2001), where a plain solve takes long, meaningless
    steps along nearly singular directions -- steps that can carry an iterate along
    a continuum of critical points to its non-smooth end.

    References
    ----------
    J. Fan, Y. Yuan, Computing 74 (2005) 23-39.
    N. Yamashita, M. Fukushima, "On the rate of convergence of the Levenberg-Marquardt
    method", Computing Suppl. 15 (2001) 239-249.
    """
    P = np.full(X.shape, np.nan)
    HP = np.full(X.shape, np.nan)
    step = _lm_step if damped else _newton_step
    for i, H in each_hessian(model, X):
        p = step(H, G[i])
        if p is not None:
            P[i], HP[i] = p, H @ p
    return P, HP


def _newton_step(H, g):
    """-H^-1 g by a symmetric solve, or None where H is singular to working precision."""
    try:
        # rcond below machine epsilon: the solve is as meaningless as an exactly singular one
        with warnings.catch_warnings():
            warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
            p = scipy.linalg.solve(H, -g, assume_a="sym", check_finite=False)
    except (scipy.linalg.LinAlgError, scipy.linalg.LinAlgWarning, ValueError):
        return None
    return p if np.all(np.isfinite(p)) else None


# The Levenberg-Marquardt step differs from Newton's by the factor lambda^2 / (lambda^2 + mu)
# along an eigenvector of curvature lambda.  Where the Cholesky factor of H bounds
# lambda_min(H)^2 above mu / _NEWTON_LIKE, that factor is at least 1/2 everywhere: the point is
# nondegenerate at this gradient level, Newton's step converges quadratically there (in fewer
# steps than the damped one: 2,197 against 2,698 Newton steps for the 500 handed-off ends of
# V = I_12) and costs a sixth (no H^2).
_NEWTON_LIKE = 1.0


def _lm_step(H, g):
    """-(H^2 + mu I)^-1 H g with mu = |g| (Cholesky), by an eigendecomposition if that fails.

    Where H is positive definite and ``mu <= l^2``, with ``l = rcond * |H|_1`` a LAPACK
    estimate of lambda_min (``?pocon``; the 1-norm bounds the 2-norm of a symmetric
    matrix), the step is Newton's, ``-H^-1 g``, from the same factorisation: there the
    damping would change no component by more than a factor 2 and the point is
    nondegenerate at this gradient level; near degenerate points (small lambda_min,
    saddles) the damped step is kept.
    """
    mu = float(np.linalg.norm(g))
    c, info = scipy.linalg.lapack.dpotrf(H, lower=1, overwrite_a=0, clean=0)
    if info == 0:
        anorm = float(np.abs(H).sum(axis=0).max())
        rcond, info = scipy.linalg.lapack.dpocon(c, anorm, uplo="L")
        if info == 0 and mu <= _NEWTON_LIKE * (rcond * anorm) ** 2:
            p, info = scipy.linalg.lapack.dpotrs(c, g, lower=1)
            if info == 0 and np.all(np.isfinite(p)):
                return -p
    Hg = H @ g
    # H^2 = H H^T by a symmetric rank-k update: its lower triangle only, half a product's
    # flops (H.T: the same symmetric data in the Fortran order BLAS wants, no copy)
    A = scipy.linalg.blas.dsyrk(1.0, H.T, lower=1)
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
        return None
    p = -Q @ (lam * (Q.T @ g) / (lam ** 2 + mu))
    return p if np.all(np.isfinite(p)) else None


def _minres_directions(model, X, G, options):
    """Newton-MR directions: MINRES on Hessian-vector products, row by row."""
    n = model.n_params
    P = np.full(X.shape, np.nan)
    HP = np.full(X.shape, np.nan)
    for i, (x, g) in enumerate(zip(X, G)):
        op = LinearOperator((n, n), matvec=lambda v, x=x: model.hvp_kernel(x[None], v[None])[0],
                            dtype=np.float64)
        # Inexact-Newton forcing term: superlinear convergence (Eisenstat & Walker 1996).
        rtol = min(options.get("forcing", 0.1), np.sqrt(np.linalg.norm(g)))
        p, _info = minres(op, -g, rtol=max(rtol, 1e-14),
                          maxiter=options.get("minres_maxiter", 5 * n))
        if np.all(np.isfinite(p)):
            P[i], HP[i] = p, op.matvec(p)
    return P, HP


def _directions(model, X, G, method, options):
    if method == "newton-mr":
        return _minres_directions(model, X, G, options)
    return dense_directions(model, X, G, damped=method == "lm")


# ---- the driver -----------------------------------------------------------------------

class _Rows:
    """The driver's per-row state and outcome (x, grad, grad_norm, nit, nfev, status, ...)."""

    def __init__(self, X, history):
        B = len(X)
        self.x = X.copy()
        self.grad = np.zeros_like(self.x)
        self.grad_norm = np.full(B, np.nan)
        self.nit = np.zeros(B, dtype=int)
        self.nfev = np.zeros(B, dtype=int)
        self.status = np.full(B, int(Status.MAXITER))
        self.solve_failed = np.zeros(B, dtype=bool)
        self.trace = ([{"loss": [], "grad_norm": [], "step": []} for _ in range(B)]
                      if history else None)

    def record(self, model, rows, steps):
        if self.trace is None or len(rows) == 0:
            return
        loss = model.loss_kernel(self.x[rows])
        for r, L, s in zip(rows, loss, steps):
            self.trace[r]["loss"].append(float(L))
            self.trace[r]["grad_norm"].append(float(self.grad_norm[r]))
            self.trace[r]["step"].append(float(s))


def _iterate(model, X, *, method, gtol, maxiter, max_backtracks, manifold, history, options,
             min_progress=None):
    """The one damped-Newton driver: every row of X iterated at once (see the module doc)."""
    grad = _grad_of(model)
    out = _Rows(X, history)
    smooth = ~model.nondifferentiable_units(out.x).any(axis=1)
    out.status[~smooth] = int(Status.NON_DIFFERENTIABLE)
    rows = np.flatnonzero(smooth)
    if rows.size:
        out.grad[rows] = grad(out.x[rows])
        out.nfev[rows] = 1
        with np.errstate(over="ignore", invalid="ignore"):
            finite = (np.all(np.isfinite(out.grad[rows]), axis=1)
                      & np.isfinite(model.in_chunks(model.loss_kernel, out.x[rows], out_shape=())))
        out.status[rows[~finite]] = int(Status.NON_FINITE)
        rows = rows[finite]
        out.grad_norm[rows] = np.linalg.norm(out.grad[rows], axis=1)
    out.record(model, rows, np.zeros(len(rows)))
    if manifold == "every-step":
        _align(model, out.x, out.grad, out.grad_norm, rows, gtol, grad)
    done = out.grad_norm[rows] <= gtol
    out.status[rows[done]] = int(Status.CONVERGED)
    active = rows[~done]
    if min_progress is not None:
        # |g| of the last min_progress iterations per row (a ring indexed by nit)
        recent = np.full((len(X), min_progress), np.inf)
    for _ in range(maxiter):
        if active.size == 0:
            break
        if min_progress is not None:
            slot = out.nit[active] % min_progress
            slow = out.grad_norm[active] > 0.5 * recent[active, slot]
            out.status[active[slow]] = int(Status.SLOW)
            recent[active, slot] = out.grad_norm[active]
            active = active[~slow]
            if active.size == 0:
                break
        Xa, Ga = out.x[active], out.grad[active]
        P, HP = _directions(model, Xa, Ga, method, options)
        found = np.all(np.isfinite(P), axis=1) & np.all(np.isfinite(HP), axis=1)
        slope = np.full(len(active), np.nan)              # d/dt |g(x + t p)|^2 at t = 0
        slope[found] = 2.0 * np.einsum("bn,bn->b", Ga[found], HP[found])
        downhill = slope < 0
        out.solve_failed[active[~found]] = True
        out.status[active[~found]] = int(Status.STALLED)
        # p is no descent direction for |g|^2: H g ~ 0 (a stationary point of |g|^2 that is
        # not critical) for the minimum-residual and damped steps; rounding for Newton's
        out.status[active[found & ~downhill]] = int(
            Status.STALLED if method == "newton" else Status.NOT_CRITICAL)
        phi0 = out.grad_norm[active] ** 2
        t = np.ones(len(active))
        moved = np.zeros(len(active), dtype=bool)
        todo = np.flatnonzero(downhill)
        for _ in range(max_backtracks):
            if todo.size == 0:
                break
            T = Xa[todo] + t[todo, None] * P[todo]
            out.nfev[active[todo]] += 1
            ok = ~model.nondifferentiable_units(T).any(axis=1)
            GT = np.zeros_like(T)
            phi = np.full(len(todo), np.inf)
            if ok.any():
                GT[ok] = grad(T[ok])
                phi[ok] = np.einsum("bn,bn->b", GT[ok], GT[ok])
            with np.errstate(invalid="ignore"):
                ok = phi <= phi0[todo] + _ARMIJO * t[todo] * slope[todo]   # NaN fails
            accepted = todo[ok]
            Xa[accepted], Ga[accepted], moved[accepted] = T[ok], GT[ok], True
            todo = todo[~ok]
            t[todo] *= 0.5
        out.nit[active[downhill]] += 1
        out.status[active[downhill & ~moved]] = int(Status.STALLED)
        stepped = active[moved]
        out.x[stepped], out.grad[stepped] = Xa[moved], Ga[moved]
        out.grad_norm[stepped] = np.linalg.norm(Ga[moved], axis=1)
        if manifold == "every-step":
            _align(model, out.x, out.grad, out.grad_norm, stepped, gtol, grad)
        out.record(model, stepped, t[moved] * np.linalg.norm(P[moved], axis=1))
        done = out.grad_norm[stepped] <= gtol
        out.status[stepped[done]] = int(Status.CONVERGED)
        active = stepped[~done]
    if manifold is not None:
        _settle(model, out.x, out.grad, out.grad_norm,
                np.flatnonzero(out.status == int(Status.CONVERGED)), gtol, grad)
    return out


def _grad_of(model):
    """Batched gradients of any number of rows, in memory-bounded chunks."""
    return lambda A: model.in_chunks(model.grad_kernel, A, out_shape=(model.n_params,))


def _check_newton_options(method, manifold, options):
    as_choice(method, "method", DIRECTIONS)
    as_choice(manifold, "manifold", MANIFOLD_STEPS)
    valid = {"forcing", "minres_maxiter"} if method == "newton-mr" else set()
    unknown = set(options) - valid
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)} for method {method!r}; "
                        f"valid options: {sorted(valid)}")
    if "forcing" in options:
        as_positive_float(options["forcing"], "forcing")
    if "minres_maxiter" in options:
        as_positive_int(options["minres_maxiter"], "minres_maxiter")


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class NewtonBatch(Result):
    """Outcome of :func:`newton_batch` for B rows (the batched :class:`CriticalPoint`).

    Attributes
    ----------
    x : ndarray of shape (B, n_params)
    grad_norm, nit, nfev, status : ndarray of shape (B,)
    success : ndarray of shape (B,), bool
    message : list of str
    """

    x: np.ndarray
    grad_norm: np.ndarray
    nit: np.ndarray
    nfev: np.ndarray
    status: np.ndarray
    success: np.ndarray
    message: list


def newton_batch(model, X, *, gtol, maxiter=50, max_backtracks=_MAX_BACKTRACKS, method="auto",
                 manifold="every-step", min_progress=None, **options):
    """Newton's method on grad L = 0 for every row of X at once.

    The driver behind every Newton method of this package:
    ``find_critical_point(method="newton")`` is its one-row case with
    ``method="newton", manifold=None``.  Steps along the chosen direction with the
    Armijo backtracking on |grad L|^2 (see the module documentation); Hessians
    built and factorised for all unfinished rows together, the gradients of all
    trial points in one batched call.  The defaults are the polish of
    :func:`descend_and_polish` and the scan, made to converge onto manifolds of
    critical points (over-parameterised networks):

    * Levenberg-Marquardt steps damped by |grad L| (:func:`dense_directions`):
      Newton's where the curvature is resolved, nothing along directions where it
      is not, so degenerate and non-isolated critical points are reached
      quadratically and continua are not travelled along;
    * an iterate whose neurons are nearly collinear (within 1e-2 rad) is moved
      onto the split manifold through it (``model.align_collinear``) whenever
      that does not increase |grad L| (or keeps it <= gtol): the cubic valley
      around such a manifold, which Newton crosses only linearly, is jumped
      across.  A converged row is tried too, so that its end point lies on the
      manifold and its Hessian shows the manifold's exact zero modes.

    Parameters
    ----------
    model : Model
    X : array_like of shape (B, n_params)
        Starts.  A start where L is not differentiable or not finite is returned
        unchanged, unconverged.
    gtol : float
        Converged when |grad L| <= gtol.
    maxiter : int
        Iterations per row.
    max_backtracks : int
        Halvings of the step per line search before a row stalls.
    method : {"auto", "lm", "newton", "newton-mr"}
        The direction: Levenberg-Marquardt damped by |grad L|, the plain Newton
        solve, or MINRES on Hessian-vector products (see the module documentation).
        ``"auto"``: ``"lm"`` up to :data:`~landscape.spectrum.DENSE_LIMIT` parameters,
        ``"newton-mr"`` beyond (no dense Hessian: at 10^4 parameters one is 800 MB and
        its solve takes ~15 s, a Hessian-vector product a few ms).
    manifold : {"every-step", "end", None}
        Manifold steps after the start and every Newton step and onto the manifold
        at the end (converged rows); only at the end; or never.
    min_progress : int, optional
        A row whose |grad L| has not halved over its last `min_progress` iterations
        stops with status ``SLOW`` (None: never).  For callers with a better use of
        the time: :func:`descend_and_polish` hands such a start back to gradient
        descent, which used to discard twenty such iterations and twenty of the
        Newton-MR rescue (minima of V = I_20 with lambda_min = 4e-4, handed over at
        |grad L| = 1e-3, where the damped steps gain 2-5% each).
    **options
        ``forcing`` and ``minres_maxiter`` of ``method="newton-mr"``.

    Returns
    -------
    NewtonBatch
        ``x`` (B, n_params); ``grad_norm`` (NaN at unusable starts); ``nit`` (Newton
        iterations per row: those in which a direction was found and searched along);
        ``nfev``; ``status`` (:class:`Status` values); ``success`` (``grad_norm <= gtol``);
        ``message`` per row.

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> from landscape.critical import newton_batch
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    >>> X0 = m.flatten(np.eye(3)) + 0.05 * np.random.default_rng(0).standard_normal((4, 9))
    >>> r = newton_batch(m, X0, gtol=1e-12)
    >>> bool(r.success.all()), bool(np.all(r.grad_norm <= 1e-12)), bool(np.all(r.nit <= 8))
    (True, True, True)
    """
    check_model(model)
    X = as_batch(X, model.n_params, "X")
    gtol = as_positive_float(gtol, "gtol", allow_zero=True)
    maxiter = as_positive_int(maxiter, "maxiter", minimum=0)
    max_backtracks = as_positive_int(max_backtracks, "max_backtracks")
    if method == "auto":
        method = "lm" if model.n_params <= DENSE_LIMIT else "newton-mr"
    _check_newton_options(method, manifold, options)
    if min_progress is not None:
        min_progress = as_positive_int(min_progress, "min_progress")
    out = _iterate(model, X, method=method, gtol=gtol, maxiter=maxiter,
                   max_backtracks=max_backtracks, manifold=manifold, history=False,
                   options=options, min_progress=min_progress)
    status = np.asarray(out.status, dtype=int)
    return NewtonBatch(x=out.x, grad_norm=out.grad_norm, nit=np.asarray(out.nit),
                       nfev=np.asarray(out.nfev), status=status,
                       success=status == int(Status.CONVERGED),
                       message=[Status(int(v)).message for v in status])


def _one_start(model, x0, method, *, gtol, maxiter, history, options):
    """find_critical_point's Newton methods: the driver on one row, as a CriticalPoint."""
    out = _iterate(model, x0[None], method=method, gtol=gtol, maxiter=maxiter,
                   max_backtracks=options.get("max_backtracks", _MAX_BACKTRACKS),
                   manifold=None, history=history, options=options)
    status = Status(out.status[0])
    if status in (Status.NON_DIFFERENTIABLE, Status.NON_FINITE):
        return unusable_start(model, x0, method, history)
    x, gnorm = out.x[0], float(out.grad_norm[0])
    detail = (" (the linear solve failed: H is singular; use method='newton-mr')"
              if out.solve_failed[0] and method == "newton" else "")
    if status != Status.CONVERGED:
        detail += f"; |grad L| = {gnorm:.3g}, gtol = {gtol:.3g}"
    loss = out.trace[0]["loss"][-1] if history else float(model.loss_kernel(x[None])[0])
    return CriticalPoint(
        x=x, loss=loss, grad_norm=gnorm, nit=int(out.nit[0]), nfev=int(out.nfev[0]),
        success=status == Status.CONVERGED, status=int(status),
        message=status.message + detail, method=method,
        history={k: np.asarray(v) for k, v in out.trace[0].items()} if history else None)


def newton(model, x0, *, gtol, maxiter, history, options):
    """Newton's method on grad L = 0 with a dense Hessian solve (one start)."""
    return _one_start(model, x0, "newton", gtol=gtol, maxiter=maxiter, history=history,
                      options=options)


def newton_mr(model, x0, *, gtol, maxiter, history, options):
    """Newton-MR: MINRES directions on Hessian-vector products; for singular Hessians."""
    return _one_start(model, x0, "newton-mr", gtol=gtol, maxiter=maxiter, history=history,
                      options=options)


# ---- manifold steps -------------------------------------------------------------------

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
    ok = (gY <= gtol) & (np.abs(after - before) <= uphill_tolerance(model, before))
    X[idx[ok]], G[idx[ok]], gn[idx[ok]] = Y[ok], GY[ok], gY[ok]


def _align(model, X, G, gn, rows, gtol, grad):
    """Newton iterates moved onto the split manifold near them when that lowers |grad L| (in
    place): the cubic valley around a manifold, which Levenberg-Marquardt crosses only
    linearly, is jumped across."""
    idx, Y, GY, gY = _onto_manifold(model, X[rows], rows, gtol, grad, iters=1)
    if idx.size == 0:
        return
    before, after = model.loss_kernel(X[idx]), model.loss_kernel(Y)
    ok = (gY <= np.maximum(gn[idx], gtol)) & (after <= before + uphill_tolerance(model, before))
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
                p = _lm_step(H[j], GY[b])
            else:
                p = _lm_step(Z.T @ H[j] @ Z, Z.T @ GY[b])
                p = None if p is None else Z @ p
            P[j] = np.nan if p is None else p
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
