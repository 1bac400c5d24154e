"""Classification of a point from its Hessian spectrum, and beyond it where the spectrum is degenerate.

Rules (DESIGN.md, "Classification"):

1. a ReLU neuron at zero -> ``non-differentiable``;
2. |grad L| > gtol -> ``not-critical``;
3. with tau = max(atol, rtol |H|): index = #{lambda < -tau}, nullity = #{|lambda| <= tau}
   less the zero modes explained by the model's continuous symmetries
   (``symmetry_nullity``, reported separately); index = n -> ``maximum``;
   index > 0 -> ``strict-saddle``; index = 0 and nullity = 0 -> ``strict-minimum``;
4. index = 0 and nullity > 0: the higher-order test.  It searches the null space N
   with the positive-curvature complement re-minimised (the reduced function
   phi(u) = min_v L(x + N u + P v)), from directions seeded by third- and
   fourth-order directional derivatives (differences of Hessian-vector
   products) and random ones.  A point y with |y - x| <= radius and
   L(y) < L(x) - margin is a verified witness: ``non-strict-saddle``.  Without one,
   ``degenerate-minimum`` only when L(x) equals the model's known optimal value;
   otherwise ``degenerate`` (undetermined) with the radius searched.  Never guess.

A null-direction-only test is fooled by f = (y - x^2)(y - 2 x^2) at the origin
(f(t, 0) = 2 t^4 >= 0, yet min_y f(t, y) = -t^4/4): the re-minimised complement is
what sees the descent.
"""

import dataclasses

import numpy as np
import scipy.linalg

from ._results import Result
from ._validation import as_positive_float, as_positive_int, as_rng
from .critical.root import check_model
from .spectrum import hessian_spectrum

__all__ = ["classify", "Classification", "KINDS"]

KINDS = ("strict-minimum", "degenerate-minimum", "strict-saddle", "non-strict-saddle",
         "degenerate", "maximum", "not-critical", "non-differentiable")
_EPS = np.finfo(float).eps


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Classification(Result):
    """What a point is, and how sure.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    loss, grad_norm : float
    index : int or None
        Number of Hessian eigenvalues below -tau.
    nullity : int or None
        Number of eigenvalues in [-tau, tau] not explained by continuous symmetries.
    symmetry_nullity : int or None
        Zero modes explained by the model's continuous symmetries (e.g. one per
        neuron for the rescalings of a two-layer network).
    n_positive : int or None
    tau : float or None
        The zero tolerance max(atol, rtol |H|).
    gap : float or None
        Distance from zero of the nearest eigenvalue outside [-tau, tau].
    lambda_min, lambda_max : float or None
    eigenvalues : ndarray or None
        All eigenvalues (dense) or the computed extremes (Lanczos), ascending.
    is_global : bool or None
        L(x) equals the model's known optimal value (None when unknown).
    witness : ndarray or None
        For ``non-strict-saddle``: a point y with |y - x| <= radius and
        L(y) < L(x) - margin.
    witness_loss : float or None
    margin : float or None
        The loss decrease a witness must exceed (well above rounding in L).
    radius : float or None
        The radius searched by the higher-order test.
    message : str
        A sentence on how the verdict was reached.
    """

    kind: str
    loss: float
    grad_norm: float
    index: int | None = None
    nullity: int | None = None
    symmetry_nullity: int | None = None
    n_positive: int | None = None
    tau: float | None = None
    gap: float | None = None
    lambda_min: float | None = None
    lambda_max: float | None = None
    eigenvalues: np.ndarray | None = None
    is_global: bool | None = None
    witness: np.ndarray | None = None
    witness_loss: float | None = None
    margin: float | None = None
    radius: float | None = None
    message: str = ""

    @property
    def is_minimum(self):
        """A strict or certified degenerate minimum."""
        return self.kind in ("strict-minimum", "degenerate-minimum")

    @property
    def is_saddle(self):
        return self.kind in ("strict-saddle", "non-strict-saddle")


def _loss_tolerance(model, loss):
    """How far from the known optimum a loss may be and still count as equal to it."""
    return 1e3 * _EPS * max(1.0, abs(loss)) * max(1.0, np.sqrt(model.n_params))


def classify(model, x, *, gtol=1e-8, rtol=1e-9, atol=1e-10, radius=1e-1, rng=0,
             n_directions=16, margin=None, method="auto"):
    """Classify x as a minimum, a strict or non-strict saddle, a maximum, or say it cannot.

    Parameters
    ----------
    model : Model
    x : array_like of shape (n_params,)
    gtol : float
        A point with |grad L| > gtol is ``not-critical``.
    rtol, atol : float
        Zero tolerance of eigenvalues: tau = max(atol, rtol |H|).
    radius : float
        Radius of the higher-order search around a degenerate point.
    rng : int, Generator or None
        Random directions of the higher-order search.
    n_directions : int
        Random null-space directions tried (in addition to derivative-seeded ones).
    margin : float, optional
        Decrease a witness must achieve; default ``1e4 eps max(1, |L(x)|)
        sqrt(n_params)``, far above the rounding error of the closed-form losses.
    method : {"auto", "dense", "lanczos"}
        Spectrum method (:func:`hessian_spectrum`).

    Returns
    -------
    Classification

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    >>> c = ls.classify(m, m.flatten(np.eye(3)))
    >>> c.kind, c.index, c.nullity, c.is_global
    ('strict-minimum', 0, 0, True)
    >>> trap = ls.AutogradModel(lambda z: (z[1] - z[0]**2) * (z[1] - 2 * z[0]**2), 2)
    >>> c = ls.classify(trap, [0.0, 0.0])
    >>> c.kind, bool(trap.loss(c.witness) < 0)
    ('non-strict-saddle', True)
    """
    check_model(model)
    x = model._check_x(x)
    gtol = as_positive_float(gtol, "gtol", allow_zero=True)
    radius = as_positive_float(radius, "radius")
    n_directions = as_positive_int(n_directions, "n_directions", minimum=0)
    rng = as_rng(rng)
    loss = model.loss(x)
    if margin is None:
        margin = 1e4 * _EPS * max(1.0, abs(loss)) * np.sqrt(model.n_params)
    margin = as_positive_float(margin, "margin")
    if not model.is_differentiable(x):
        return Classification(kind="non-differentiable", loss=loss, grad_norm=float("nan"),
                              message="the loss is not differentiable here (a zero neuron)")
    gnorm = float(np.linalg.norm(model.grad(x)))
    if gnorm > gtol:
        return Classification(kind="not-critical", loss=loss, grad_norm=gnorm,
                              message=f"|grad L| = {gnorm:.3g} > gtol = {gtol:.3g}")
    dense = method == "dense" or (method == "auto" and model.n_params <= 2000)
    spec = hessian_spectrum(model, x, rtol=rtol, atol=atol,
                            method="dense" if dense else method, vectors=dense)
    n = model.n_params
    known = model.optimal_loss
    is_global = None if known is None else bool(loss <= known + _loss_tolerance(model, loss))
    sym = _symmetry_basis(model, x, spec, dense)
    n_sym = sym.shape[1]
    nullity = max(0, spec.n_zero - n_sym)
    common = dict(loss=loss, grad_norm=gnorm, index=spec.n_negative, nullity=nullity,
                  symmetry_nullity=n_sym, n_positive=spec.n_positive, tau=spec.tau,
                  gap=spec.gap, lambda_min=spec.lambda_min, lambda_max=spec.lambda_max,
                  eigenvalues=spec.eigenvalues, is_global=is_global)
    if spec.n_negative == n:
        return Classification(kind="maximum", message="every Hessian eigenvalue is < -tau",
                              **common)
    if spec.n_negative > 0:
        return Classification(kind="strict-saddle", message=(
            f"{spec.n_negative} Hessian eigenvalue(s) below -tau; lambda_min = "
            f"{spec.lambda_min:.3g}"), **common)
    if nullity == 0:
        return Classification(kind="strict-minimum", message=(
            "every Hessian eigenvalue is > tau" + (
                f" (besides {n_sym} symmetry zero mode(s))" if n_sym else "")), **common)
    if not dense:
        # The higher-order test needs a null-space basis; large models stop here honestly.
        return Classification(kind="degenerate-minimum" if is_global else "degenerate",
                              radius=0.0, margin=margin, message=(
                                  f"index 0 with nullity {nullity}: the higher-order test "
                                  "needs a dense spectrum (n_params > 2000); "
                                  + ("L(x) equals the known optimal value" if is_global
                                     else "undetermined")), **common)
    if is_global:
        # L(x) is the known global value: no point lies lower, so there is nothing to search
        return Classification(kind="degenerate-minimum", margin=margin, radius=0.0,
                              message=(f"index 0 with nullity {nullity}; L(x) equals the "
                                       f"known optimal value {known:.6g}"), **common)
    null, comp = _split_spaces(spec, sym)
    y, ly = _higher_order_search(model, x, loss, null, comp, radius, margin, rng,
                                 n_directions)
    if y is not None:
        return Classification(kind="non-strict-saddle", witness=y, witness_loss=ly,
                              margin=margin, radius=radius, message=(
                                  f"index 0 with nullity {nullity}, but L decreases by "
                                  f"{loss - ly:.3g} > margin {margin:.3g} at distance "
                                  f"{np.linalg.norm(y - x):.3g} <= {radius:.3g}"), **common)
    return Classification(kind="degenerate", margin=margin, radius=radius, message=(
        f"index 0 with nullity {nullity}; no descent found within radius {radius:.3g} "
        "and no known optimal value to certify a minimum: undetermined"), **common)


def _symmetry_basis(model, x, spec, dense):
    """Orthonormal basis of the symmetry tangents that are zero modes of H at x."""
    T = model.symmetry_tangents(x)
    if T.shape[0] == 0:
        return np.zeros((model.n_params, 0))
    keep = []
    for t in T:
        nt = np.linalg.norm(t)
        if nt > 0 and np.linalg.norm(model.hvp(x, t / nt)) <= max(spec.tau, 1e-8):
            keep.append(t / nt)
    if not keep:
        return np.zeros((model.n_params, 0))
    Q, R = np.linalg.qr(np.array(keep).T)
    rank = int(np.sum(np.abs(np.diag(R)) > 1e-10))
    return Q[:, :rank]


def _split_spaces(spec, sym):
    """Null space (symmetry modes projected out) and positive-curvature complement."""
    lam, V = spec.eigenvalues, spec.eigenvectors
    zero = np.abs(lam) <= spec.tau
    Z = V[:, zero]
    if sym.shape[1]:
        Z = Z - sym @ (sym.T @ Z)
        U, s, _ = np.linalg.svd(Z, full_matrices=False)
        Z = U[:, s > 1e-6]
    return Z, V[:, lam > spec.tau]


def _reduced(model, x, step, comp, iters=12):
    """min over v in span(comp) of L(x + step + comp v), by projected Newton from v = 0."""
    y = x + step
    fy = model.loss(y)
    if comp.shape[1] == 0 or not model.is_differentiable(y):
        return y, fy
    for _ in range(iters):
        if not model.is_differentiable(y):
            break
        g = comp.T @ model.grad(y)
        if np.linalg.norm(g) <= 1e-15 * max(1.0, abs(fy)):
            break
        Hc = comp.T @ model.hess(y) @ comp
        try:
            p = -scipy.linalg.solve(Hc, g, assume_a="sym", check_finite=False)
        except (scipy.linalg.LinAlgError, ValueError):
            p = -g
        if g @ p >= 0:
            p = -g
        t = 1.0
        while t > 1e-8:
            trial = y + comp @ (t * p)
            ft = model.loss(trial)
            if ft < fy:
                break
            t *= 0.5
        if t <= 1e-8:
            break
        y, fy = trial, ft
    return y, fy


def _seed_directions(model, x, null, rng, n_random):
    """Unit null-space coordinate vectors: derivative-seeded first, then random."""
    z = null.shape[1]
    h = 1e-4
    cands = [e for e in np.eye(z)]
    cands += [u / np.linalg.norm(u) for u in rng.standard_normal((max(4 * z, 8), z))]
    scored = []
    for c in cands:
        u = null @ c
        hp = model.hvp(x + h * u, u) @ u if model.is_differentiable(x + h * u) else np.nan
        hm = model.hvp(x - h * u, u) @ u if model.is_differentiable(x - h * u) else np.nan
        h0 = model.hvp(x, u) @ u
        third = (hp - hm) / (2 * h)                 # D^3 L[u, u, u]
        fourth = (hp - 2 * h0 + hm) / h**2          # D^4 L[u, u, u, u]
        if np.isfinite(third) and third != 0:
            scored.append((-abs(third), -np.sign(third) * c))
        if np.isfinite(fourth):
            scored.append((min(fourth, 0.0), c))
    scored.sort(key=lambda s: s[0])
    seeded = [c for _, c in scored[:z + 4]]
    random = [u / np.linalg.norm(u) for u in rng.standard_normal((n_random, z))]
    return seeded + random


def _higher_order_search(model, x, loss, null, comp, radius, margin, rng, n_random):
    """A verified witness (y, L(y)) with L(y) < L(x) - margin, |y - x| <= radius, or (None, None).

    Descent must persist as the radius shrinks.  Along each seed direction the radii
    ``radius * logspace(0, -3, 10)`` are walked downwards; from the first radius with a
    witness on, every smaller radius must have one too (at distance <= 1.5 r), until the
    decrease a quartic law predicts for the next radius, ``decrease * (r'/r)^4``, drops
    below 2 * margin and can no longer be resolved.  The witness at the smallest radius is
    returned.  A local minimum with a lower point at a finite distance (past the sign change
    of a small output weight, say) fails this: at the radii where the sign cannot change,
    the predicted decrease is resolvable and no witness exists.
    """
    if null.shape[1] == 0:
        return None, None
    radii = radius * np.logspace(0, -3, 10)
    for c in _seed_directions(model, x, null, rng, n_random):
        for sign in (1.0, -1.0):
            u = sign * (null @ c)
            found = None
            for j, r in enumerate(radii):
                w = _witness_at(model, x, loss, r * u, comp, min(radius, 1.5 * r), margin)
                if w is None:
                    if found is not None:        # descent stopped while still resolvable
                        break
                    continue
                found = w
                resolvable = (j + 1 < len(radii) and
                              (loss - w[1]) * (radii[j + 1] / r) ** 4 >= 2 * margin)
                if not resolvable:
                    return found
    return None, None


def _witness_at(model, x, loss, step, comp, bound, margin):
    """(y, L(y)) with L(y) < L(x) - margin and |y - x| <= bound from the reduced step, or None."""
    y, fy = _reduced(model, x, step, comp)
    dist = np.linalg.norm(y - x)
    if dist > bound:
        # the complement moved too far: pull back onto the ball
        y = x + (y - x) * (bound / dist)
        fy = model.loss(y)
    if fy < loss - margin and np.linalg.norm(y - x) <= bound * (1 + 1e-12):
        verified = model.loss(y)            # recompute: never trust a cached value
        if verified < loss - margin:
            return y, verified
    return None
