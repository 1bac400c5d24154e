"""Newton and Newton-MR root-finding on grad L = 0, globalised by a line search on |grad L|^2.

Both methods share one driver; they differ only in the direction plug-in:

* ``newton`` solves H p = -g with a dense LU factorisation (quadratic
  convergence at nondegenerate critical points, saddles included).
* ``newton-mr`` (Roosta, Liu, Xu & Mahoney 2022) takes the minimum-residual
  solution of H p = -g from MINRES on a :class:`~scipy.sparse.linalg.LinearOperator`
  built on the model's Hessian-vector product.  For singular H it still returns
  a descent direction for |g|^2 (p minimises |H p + g| over a Krylov space), so
  it keeps converging at degenerate critical points where the dense solve fails.

Line search: backtracking on phi(t) = |g(x + t p)|^2 with the Armijo condition
``phi(t) <= phi(0) + 2 c t g.Hp`` (Nocedal & Wright 2006, eq. 3.4, applied to
the merit function |g|^2 whose slope along p is 2 g.Hp).
"""

import warnings

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator, minres

from ._result import CriticalPoint, Status

__all__ = ["newton", "newton_mr"]

_ARMIJO = 1e-4
_MAX_BACKTRACKS = 40


def _evaluate(model, x):
    """(loss, grad) at x, or None when x is off the smooth set or non-finite."""
    if model.nondifferentiable_units(x[None]).any():
        return None
    g = model.grad_kernel(x[None])[0]
    loss = float(model.loss_kernel(x[None])[0])
    if not (np.isfinite(loss) and np.all(np.isfinite(g))):
        return None
    return loss, g


def _unusable_start(model, x, method, history):
    """The result for a start where L is not differentiable or not finite."""
    status = (Status.NON_DIFFERENTIABLE if model.nondifferentiable_units(x[None]).any()
              else Status.NON_FINITE)
    return CriticalPoint(x=x, loss=float(model.loss_kernel(x[None])[0]), grad_norm=np.nan,
                         nit=0, nfev=0, success=False, status=int(status),
                         message=status.message, method=method,
                         history={} if history else None)


def _dense_direction(model, x, g, _options):
    H = model.hess_kernel(x[None])[0]
    try:
        # rcond below machine epsilon: the solve is as meaningless as an exactly singular one
        with warnings.catch_warnings():
            warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
            p = scipy.linalg.solve(H, -g, assume_a="sym", check_finite=False)
    except (scipy.linalg.LinAlgError, scipy.linalg.LinAlgWarning, ValueError):
        return None
    if not np.all(np.isfinite(p)):
        return None
    return p, H @ p


def _minres_direction(model, x, g, options):
    n = x.size
    op = LinearOperator((n, n), matvec=lambda v: model.hvp_kernel(x[None], v[None])[0],
                        dtype=np.float64)
    gnorm = np.linalg.norm(g)
    # Inexact-Newton forcing term: superlinear convergence (Eisenstat & Walker 1996).
    rtol = min(options.get("forcing", 0.1), np.sqrt(gnorm))
    p, _info = minres(op, -g, rtol=max(rtol, 1e-14), maxiter=options.get("minres_maxiter", 5 * n))
    if not np.all(np.isfinite(p)):
        return None
    return p, op.matvec(p)


def _line_search_root(model, x0, direction, *, method, gtol, maxiter, history, options):
    x = x0.copy()
    ev = _evaluate(model, x)
    if ev is None:
        return _unusable_start(model, x, method, history)
    loss, g = ev
    nfev = 1
    gnorm = float(np.linalg.norm(g))
    trace = {"loss": [loss], "grad_norm": [gnorm], "step": [0.0]}
    status = Status.MAXITER
    nit = 0
    detail = ""
    while True:
        if gnorm <= gtol:
            status = Status.CONVERGED
            break
        if nit >= maxiter:
            break
        d = direction(model, x, g, options)
        if d is None:
            status, detail = Status.STALLED, " (the linear solve failed: H is singular; " \
                                             "use method='newton-mr')"
            break
        p, Hp = d
        slope = 2.0 * float(g @ Hp)            # d/dt |g(x + t p)|^2 at t = 0
        if not slope < 0:
            status = Status.NOT_CRITICAL if method != "newton" else Status.STALLED
            break
        phi0 = gnorm**2
        t = 1.0
        accepted = False
        for _ in range(options.get("max_backtracks", _MAX_BACKTRACKS)):
            trial = x + t * p
            ev = _evaluate(model, trial)
            nfev += 1
            if ev is not None:
                tl, tg = ev
                phi = float(tg @ tg)
                if phi <= phi0 + _ARMIJO * t * slope:
                    accepted = True
                    break
            t *= 0.5
        nit += 1
        if not accepted:
            status = Status.STALLED
            break
        x, loss, g = trial, tl, tg
        gnorm = float(np.sqrt(phi))
        if history:
            trace["loss"].append(loss)
            trace["grad_norm"].append(gnorm)
            trace["step"].append(t * float(np.linalg.norm(p)))
    return CriticalPoint(
        x=x, loss=loss, grad_norm=gnorm, nit=nit, nfev=nfev,
        success=status == Status.CONVERGED, status=int(status),
        message=status.message + detail + (f"; |grad L| = {gnorm:.3g}, gtol = {gtol:.3g}"
                                           if status != Status.CONVERGED else ""),
        method=method,
        history={k: np.asarray(v) for k, v in trace.items()} if history else None)


def newton(model, x0, *, gtol, maxiter, history, options):
    """Newton's method on grad L = 0 with a dense Hessian solve."""
    return _line_search_root(model, x0, _dense_direction, method="newton", gtol=gtol,
                             maxiter=maxiter, history=history, options=options)


def newton_mr(model, x0, *, gtol, maxiter, history, options):
    """Newton-MR: MINRES directions on Hessian-vector products; for singular Hessians."""
    return _line_search_root(model, x0, _minres_direction, method="newton-mr", gtol=gtol,
                             maxiter=maxiter, history=history, options=options)
