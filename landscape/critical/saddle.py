"""Saddle search of a chosen index: a restricted-step partitioned rational-function method.

At x, with g = grad L(x) and the Hessian's lowest modes H q_i = lambda_i q_i, the step
maximises the quadratic model along the `index` lowest modes and minimises it along
every other direction.  Along a mode, with b_i = q_i . g, the step is the partitioned
rational-function (P-RFO) step

    s_i = -b_i / (lambda_i - mu),

with one shift mu for the maximised modes (the largest eigenvalue of the augmented
Hessian [[diag lambda, b], [b^T, 0]] of those modes: mu >= max(lambda_i, 0), so the
step goes uphill) and one for the minimised modes (its smallest eigenvalue:
mu <= min(lambda_i, 0), downhill).  Both shifts vanish as O(|g|^2) at a critical
point of the requested index, where the step becomes Newton's and converges
quadratically (Banerjee, Adams, Simons & Shepard 1985; Baker 1986).

Up to :data:`~landscape.spectrum.DENSE_LIMIT` parameters (``method="dense"``) every
mode comes from a dense ``eigh``.  Beyond (``method="lanczos"``) only the `index`
lowest modes are computed, by Lanczos on Hessian-vector products
(:func:`landscape.spectrum.lowest_modes`), and the minimised part of the step is a
Steihaug truncated conjugate-gradient step on the Hessian projected off those modes
(Nocedal & Wright 2006, Algorithm 7.2): the Hessian is never formed.  If Lanczos
does not converge the search stops with status ``STALLED`` and says so.

The step is restricted to a trust radius driven by the ratio of the actual to the
predicted change of L (Sella's restricted-step rule: the model is trusted when the
ratio is near 1, whatever its sign; Hermes, Sargsyan, Najm & Zádor 2022).  The search
is local: it finds a critical point of the requested index near x0 when one attracts
it, as Sella does; it is not a global search for saddles (:func:`landscape.connect`
is the double-ended one).

References
----------
A. Banerjee, N. Adams, J. Simons, R. Shepard, "Search for stationary points on surfaces",
J. Phys. Chem. 89, 52 (1985).
J. Baker, "An algorithm for the location of transition states", J. Comput. Chem. 7, 385 (1986).
E. D. Hermes, K. Sargsyan, H. N. Najm, J. Zádor, "Sella, an open-source automation-friendly
molecular saddle point optimizer", J. Chem. Theory Comput. 18, 6974 (2022).
J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, Sec. 4.1, 7.2.
"""

import numpy as np
import scipy.linalg
from scipy.optimize import brentq
from scipy.sparse.linalg import ArpackNoConvergence

from .._linalg import small_matrix_threads
from .._validation import as_choice, as_positive_float, as_positive_int, as_rng
from ..classify import classify
from ..models.base import check_model
from ..spectrum import DENSE_LIMIT, lowest_modes
from ._result import CriticalPoint, Status
from .newton import evaluate, unusable_start

__all__ = ["find_saddle", "SADDLE_METHODS"]

#: Valid ``method`` values of :func:`find_saddle`.
SADDLE_METHODS = ("auto", "dense", "lanczos")

# Trust-radius rule on rho = actual / predicted change of L: shrink (and reject the step)
# outside [_RHO_REJECT_LO, _RHO_REJECT_HI]; shrink (keep) outside [_RHO_LO, _RHO_HI]; grow
# inside [_RHO_GOOD_LO, _RHO_GOOD_HI] when the step reached the radius.
_RHO_REJECT_LO, _RHO_REJECT_HI = 0.0, 4.0
_RHO_LO, _RHO_HI = 0.5, 2.0
_RHO_GOOD_LO, _RHO_GOOD_HI = 0.8, 1.25
# Below this many ulps of |L| the predicted change is rounding: the ratio test is skipped.
_ROUNDING_ULPS = 1e3
# Steihaug-CG: relative residual tolerance and iteration cap (multiple of the dimension).
_CG_RTOL = 1e-12
_CG_MAXITER = 500
# relative accuracy of the P-RFO shifts (brentq's smallest allowed rtol)
_BRENT_RTOL = 4 * np.finfo(float).eps


def _shift(lam, b, side):
    """The P-RFO shift: the smallest (side=-1) or largest (side=+1) eigenvalue of the
    augmented Hessian [[diag lam, b], [b^T, 0]].

    It is the root, below min(lam, 0) (or above max(lam, 0)), of the monotone secular
    function phi(mu) = mu + sum b_i^2 / (lam_i - mu); the eigenvalues of the augmented
    matrix lie within |b| of those of diag(lam, 0).
    """
    if lam.size == 0 or not np.any(b):
        return 0.0
    bb = b * b
    edge = min(lam.min(), 0.0) if side < 0 else max(lam.max(), 0.0)
    width = float(np.sqrt(bb.sum())) + 1e-300

    def phi(mu):
        return mu + np.sum(bb / (lam - mu))

    if side < 0:
        lo, hi = edge - width, edge
        hi_val = phi(np.nextafter(hi, -np.inf))
        if not hi_val > 0:          # b = 0 on the lowest mode (hard case): the edge itself
            return edge
        return brentq(phi, lo, np.nextafter(hi, -np.inf), xtol=1e-300, rtol=_BRENT_RTOL)
    lo, hi = edge, edge + width
    lo_val = phi(np.nextafter(lo, np.inf))
    if not lo_val < 0:
        return edge
    return brentq(phi, np.nextafter(lo, np.inf), hi, xtol=1e-300, rtol=_BRENT_RTOL)


def _prfo(lam, b, side):
    """P-RFO coefficients -b_i / (lam_i - mu) of one partition (zero where the two cancel)."""
    mu = _shift(lam, b, side)
    den = lam - mu
    c = np.zeros_like(b)
    ok = den != 0
    c[ok] = -b[ok] / den[ok]
    return c


def _steihaug(hvp, g, radius, project):
    """Steihaug truncated CG on min g.s + 1/2 s.H s, |s| <= radius, s in the range of
    `project` (an orthogonal projector, applied to every vector)."""
    s = np.zeros_like(g)
    r = project(g)
    d = -r
    r0 = float(np.linalg.norm(r))
    if r0 == 0:
        return s
    for _ in range(min(_CG_MAXITER, g.size)):
        Hd = project(hvp(d))
        curv = float(d @ Hd)
        if curv <= 0:
            return s + _to_boundary(s, d, radius) * d
        alpha = float(r @ r) / curv
        s_next = s + alpha * d
        if np.linalg.norm(s_next) >= radius:
            return s + _to_boundary(s, d, radius) * d
        r_next = r + alpha * Hd
        if np.linalg.norm(r_next) <= _CG_RTOL * r0:
            return s_next
        beta = float(r_next @ r_next) / float(r @ r)
        s, r, d = s_next, r_next, -r_next + beta * d
    return s


def _to_boundary(s, d, radius):
    """tau >= 0 with |s + tau d| = radius."""
    a, b, c = d @ d, 2 * (s @ d), s @ s - radius**2
    return float((-b + np.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a))


def _dense_model(model, x, g, index):
    """radius -> (step, predicted change of L), from one dense eigendecomposition at x."""
    with small_matrix_threads(model.n_params):     # one BLAS thread for small matrices
        lam, Q = scipy.linalg.eigh(model.hess_kernel(x[None])[0], check_finite=False)
    b = Q.T @ g
    full = np.concatenate([_prfo(lam[:index], b[:index], +1),
                           _prfo(lam[index:], b[index:], -1)])
    norm = float(np.linalg.norm(full))

    def step(radius):
        c = full * (radius / norm) if norm > radius else full
        return Q @ c, float(b @ c + 0.5 * np.sum(lam * c * c))

    return step


def _lanczos_model(model, x, g, index, v0=None):
    """radius -> (step, predicted change of L), from the `index` lowest modes at x
    (Lanczos started from `v0`, the previous iterate's modes summed) and Steihaug-CG off
    them; no dense Hessian."""
    lam, VM = lowest_modes(model, x, index, v0=v0)
    bM = VM.T @ g
    full = _prfo(lam[:index], bM, +1)

    def hvp(v):
        return model.hvp_kernel(x[None], v[None])[0]

    def project(v):
        return v - VM @ (VM.T @ v)

    def step(radius):
        if radius is None:                     # the modes, to warm-start the next Lanczos
            return VM.sum(axis=1)
        cM, nM = full, float(np.linalg.norm(full))
        if nM > radius:
            cM, nM = full * (radius / nM), radius
        rest = np.sqrt(max(radius**2 - nM**2, 0.0))
        sC = _steihaug(hvp, g, rest, project) if rest > 0 else np.zeros_like(g)
        p = VM @ cM + sC
        return p, float(g @ p + 0.5 * p @ hvp(p))

    return step


def find_saddle(model, x0, *, index=1, gtol=1e-12, maxiter=200, method="auto",
                initial_radius=0.1, max_radius=1.0, rng=0, history=False):
    """Find a critical point of a chosen Morse index near x0 (a saddle search).

    Maximises L along the `index` lowest-curvature directions and minimises it along
    all others, with restricted (trust-region) partitioned rational-function steps
    (P-RFO, see the module notes), until |grad L| <= gtol; then classifies the end
    point.  Local, like Sella: it converges to the critical point of that index
    whose attraction basin holds x0, if any.  Non-convergence is data.

    Parameters
    ----------
    model : Model
    x0 : array_like of shape (n_params,)
        Start, e.g. the highest point of a path between two minima.  At a critical
        point of another index (a minimum, say) the gradient is zero and the search
        cannot leave it: displace x0 along a negative-curvature direction first.
    index : int
        The Morse index sought (>= 1; 1 for a transition state).
    gtol : float
        Stop when |grad L| <= gtol.
    maxiter : int
        Maximum number of steps (accepted or rejected).
    method : {"auto", "dense", "lanczos"}
        ``"dense"``: every mode from a dense ``eigh`` of the Hessian.
        ``"lanczos"``: the `index` lowest modes by Lanczos on
        Hessian-vector products and a truncated-CG step in their complement;
        the Hessian is never formed.  ``"auto"``: dense up to
        :data:`landscape.spectrum.DENSE_LIMIT` parameters.
    initial_radius, max_radius : float
        The trust radius at the start, and its cap.
    rng : int, Generator or None
        Passed to :func:`landscape.classify` (its higher-order test).
    history : bool
        Record loss, gradient norm and step length per accepted step.

    Returns
    -------
    CriticalPoint
        ``method`` is ``"saddle"``; ``classification`` is
        :func:`landscape.classify` of the end point when the search converged.
        ``success`` is True when |grad L| <= gtol *and* the classification's
        index equals `index`; a converged search that found another index has
        status ``WRONG_INDEX``.

    Notes
    -----
    Along eigenvector q_i of the Hessian with b_i = q_i . g, the step is
    s_i = -b_i / (lambda_i - mu), with mu the largest eigenvalue of the augmented
    Hessian of the maximised modes and the smallest of the minimised ones (Baker
    1986, eqs. 8-10).  The step is scaled to the trust radius; the radius follows the
    ratio rho of actual to predicted change of L (rejected outside [0, 4], shrunk
    outside [0.5, 2], grown inside [0.8, 1.25]).

    References
    ----------
    J. Baker, J. Comput. Chem. 7, 385 (1986).  E. D. Hermes et al., J. Chem. Theory
    Comput. 18, 6974 (2022) (Sella).

    Examples
    --------
    The saddle of L(x, y) = x^2 - y^2 + y^4 / 2 at the origin (index 1), from nearby:

    >>> import autograd.numpy as anp, landscape as ls
    >>> m = ls.AutogradModel(lambda z: z[0]**2 - z[1]**2 + z[1]**4 / 2, 2)
    >>> p = ls.find_saddle(m, [0.3, 0.2])
    >>> p.success, p.classification.kind, p.classification.index, bool(abs(p.x).max() < 1e-12)
    (True, 'strict-saddle', 1, True)
    """
    check_model(model)
    x0 = model.check_x(x0, "x0")
    index = as_positive_int(index, "index")
    if index >= model.n_params:
        raise ValueError(f"index must be < n_params = {model.n_params} (a saddle, not a "
                         f"maximum), got {index}")
    gtol = as_positive_float(gtol, "gtol", allow_zero=True)
    maxiter = as_positive_int(maxiter, "maxiter", minimum=0)
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    as_choice(method, "method", SADDLE_METHODS)
    radius = as_positive_float(initial_radius, "initial_radius")
    max_radius = as_positive_float(max_radius, "max_radius")
    rng = as_rng(rng)
    if method == "auto":
        method = "dense" if model.n_params <= DENSE_LIMIT else "lanczos"
    local_model = _dense_model if method == "dense" else _lanczos_model

    name = "saddle"
    x = x0.copy()
    ev = evaluate(model, x)
    if ev is None:
        return unusable_start(model, x, name, history)
    loss, g = ev
    gnorm = float(np.linalg.norm(g))
    nfev, nit = 1, 0
    trace = {"loss": [loss], "grad_norm": [gnorm], "step": [0.0]}
    status, detail = Status.MAXITER, ""
    fresh, v0 = True, None
    while True:
        if gnorm <= gtol:
            status = Status.CONVERGED
            break
        if nit >= maxiter:
            break
        if fresh:                   # a rejected step reuses the modes at x
            try:
                quadratic = (local_model(model, x, g, index) if method == "dense" else
                             local_model(model, x, g, index, v0=v0))
                v0 = quadratic(None) if method == "lanczos" else None
            except ArpackNoConvergence:
                status, detail = Status.STALLED, "; Lanczos did not converge on the lowest modes"
                break
            fresh = False
        p, predicted = quadratic(radius)
        nit += 1
        step = float(np.linalg.norm(p))
        if step == 0:
            status = Status.STALLED
            break
        trial = x + p
        ev = evaluate(model, trial)
        nfev += 1
        if ev is None:
            radius = 0.25 * step
            continue
        t_loss, t_g = ev
        actual = t_loss - loss
        rounding = _ROUNDING_ULPS * np.finfo(float).eps * max(1.0, abs(loss))
        if abs(predicted) <= rounding:
            rho = 1.0                           # both at rounding level: trust the step
        else:
            rho = actual / predicted
        if not (_RHO_REJECT_LO < rho < _RHO_REJECT_HI) and abs(predicted) > rounding:
            radius = 0.25 * step
            if radius <= 1e-15 * (1.0 + float(np.linalg.norm(x))):
                status = Status.STALLED
                break
            continue
        if not (_RHO_LO <= rho <= _RHO_HI):
            radius = 0.5 * step
        elif _RHO_GOOD_LO <= rho <= _RHO_GOOD_HI and step >= 0.9 * radius:
            radius = min(2.0 * radius, max_radius)
        x, loss, g = trial, t_loss, t_g
        gnorm = float(np.linalg.norm(g))
        fresh = True
        if history:
            trace["loss"].append(loss)
            trace["grad_norm"].append(gnorm)
            trace["step"].append(step)
    classification = None
    message = status.message
    success = False
    if status == Status.CONVERGED:
        classification = classify(model, x, gtol=max(gtol, 1e-8), rng=rng)
        if classification.index == index:
            success = True
        else:
            status = Status.WRONG_INDEX
            message = (status.message + f": asked for index {index}, found "
                       f"{classification.kind} of index {classification.index}")
    else:
        message += detail + f"; |grad L| = {gnorm:.3g}, gtol = {gtol:.3g}"
    return CriticalPoint(
        x=x, loss=loss, grad_norm=gnorm, nit=nit, nfev=nfev, success=success,
        status=int(status), message=message, method=name,
        history={k: np.asarray(v) for k, v in trace.items()} if history else None,
        classification=classification)
