"""Trust-region (Levenberg-Marquardt) root-finding on grad L = 0.

Minimises the merit function phi(x) = 1/2 |g(x)|^2, g = grad L, whose
Gauss-Newton model at x is ``m(p) = 1/2 |g + H p|^2`` (H = hess L is the
Jacobian of g).  Each step minimises m over the ball |p| <= Delta:
``p(mu) = -(H^2 + mu I)^{-1} H g`` with mu >= 0 chosen so that |p(mu)| = Delta when
the Gauss-Newton step is longer (Moré 1978; Nocedal & Wright 2006, sec. 10.3).
With H = Q diag(lambda) Q^T, ``p(mu) = -Q diag(lambda / (lambda^2 + mu)) Q^T g`` and
the secular equation is solved by a scalar root-finder.  The ratio of actual to
predicted reduction drives the radius (Nocedal & Wright, Algorithm 4.1).

Converges from farther away than the line-search methods; near the answer it
is Newton's method.  It can stop at a stationary point of phi that is not a
critical point of L (H g = 0, g != 0); that is reported, not hidden.
"""

import numpy as np
import scipy.linalg
from scipy.optimize import brentq

from ._result import CriticalPoint, Status
from .newton import evaluate, unusable_start

__all__ = ["trust_region"]

_ETA = 1e-4


def _lm_step(lam, b, radius):
    """Coefficients c (in the eigenbasis) of the constrained Gauss-Newton step."""
    scale = np.max(np.abs(lam)) if lam.size else 0.0
    keep = np.abs(lam) > 1e-14 * max(scale, 1e-300)
    c = np.zeros_like(b)
    c[keep] = -b[keep] / lam[keep]
    if np.linalg.norm(c) <= radius:
        return c
    lb = lam * b
    # components with lam b = 0 (H singular along g's null part) add nothing to |p(mu)|;
    # left in, they would make |p(0)| a 0 / 0
    lb_nz, lam2_nz = lb[lb != 0], lam[lb != 0] ** 2

    def excess(mu):
        return np.linalg.norm(lb_nz / (lam2_nz + mu)) - radius

    hi = np.linalg.norm(lb) / radius
    lo = hi * 1e-300 if excess(0.0) > 0 else 0.0
    mu = brentq(excess, lo, hi, xtol=1e-300, rtol=1e-12) if excess(hi) < 0 else hi
    return -lb / (lam**2 + mu)


def trust_region(model, x0, *, gtol, maxiter, history, options):
    """Levenberg-Marquardt trust region on 1/2 |grad L|^2."""
    x = x0.copy()
    ev = evaluate(model, x)
    method = "trust-region"
    if ev is None:
        return unusable_start(model, x, method, history)
    loss, g = ev
    nfev = 1
    gnorm = float(np.linalg.norm(g))
    radius = float(options.get("initial_radius", 1.0))
    max_radius = float(options.get("max_radius", 1e3))
    trace = {"loss": [loss], "grad_norm": [gnorm], "step": [0.0]}
    status = Status.MAXITER
    nit = 0
    fresh = True
    while True:
        if gnorm <= gtol:
            status = Status.CONVERGED
            break
        if nit >= maxiter:
            break
        if fresh:
            lam, Q = scipy.linalg.eigh(model.hess_kernel(x[None])[0], check_finite=False)
            b = Q.T @ g
            fresh = False
        c = _lm_step(lam, b, radius)
        predicted = 0.5 * (b @ b) - 0.5 * np.sum((b + lam * c) ** 2)
        nit += 1
        if predicted <= 1e-3 * np.finfo(float).eps * (b @ b):
            # H g = 0 with g != 0: no Gauss-Newton model decrease exists.
            status = (Status.NOT_CRITICAL if np.linalg.norm(lam * b) <= 1e-8 * gnorm
                      * max(np.max(np.abs(lam)), 1e-300) else Status.STALLED)
            break
        p = Q @ c
        step = float(np.linalg.norm(c))
        trial = x + p
        ev = evaluate(model, trial)
        nfev += 1
        if ev is None:
            rho = -np.inf
        else:
            tl, tg = ev
            actual = 0.5 * gnorm**2 - 0.5 * float(tg @ tg)
            rho = actual / predicted
        if rho < 0.25:
            radius = 0.25 * step
        elif rho > 0.75 and step >= 0.99 * radius:
            radius = min(2.0 * radius, max_radius)
        if rho > _ETA:
            x, loss, g = trial, tl, tg
            gnorm = float(np.linalg.norm(g))
            fresh = True
            if history:
                trace["loss"].append(loss)
                trace["grad_norm"].append(gnorm)
                trace["step"].append(step)
        elif radius <= 1e-15 * (1.0 + float(np.linalg.norm(x))):
            status = Status.STALLED
            break
    return CriticalPoint(
        x=x, loss=loss, grad_norm=gnorm, nit=nit, nfev=nfev,
        success=status == Status.CONVERGED, status=int(status),
        message=status.message + (f"; |grad L| = {gnorm:.3g}, gtol = {gtol:.3g}"
                                  if status != Status.CONVERGED else ""),
        method=method,
        history={k: np.asarray(v) for k, v in trace.items()} if history else None)
