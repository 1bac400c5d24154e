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
from ._noise import hessian_noise
from ._validation import as_choice, as_positive_float, as_positive_int, as_rng
from .isotropy import Isotropy, has_permutation_symmetry, isotropy
from .models.base import check_model
from .spectrum import DENSE_LIMIT, METHODS, hessian_spectrum

__all__ = ["classify", "Classification", "KINDS", "loss_tolerance"]

KINDS = ("strict-minimum", "degenerate-minimum", "strict-saddle", "non-strict-saddle",
         "degenerate", "maximum", "not-critical", "non-differentiable")
_EPS = np.finfo(float).eps
# classify(symmetry=None) names the isotropy group only when finding it costs little
# (O(k^2 d) for k neurons in R^d): not for, say, 10^4 neurons of an empirical network.
_ISOTROPY_BUDGET = 10**8


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
    manifold_nullity : int or None
        Zero modes explained by a manifold of critical points through x: the
        splits of collinear neurons (:meth:`Model.manifold_tangents`) and null
        directions along which continuation finds critical points at the same
        loss.  When ``nullity`` is 0 and this is not, x is a Morse-Bott point.
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
    witness_floor : float or None
        For ``non-strict-saddle``: the smallest radius down to which descent was
        verified to persist (inside half the smooth ball, see :func:`classify`).
    margin : float or None
        The loss decrease a witness must exceed (well above rounding in L).
    radius : float or None
        The radius searched by the higher-order test.  The zero band, margin and
        radii are documented in :func:`classify`.
    message : str
        A sentence on how the verdict was reached.
    isotropy : str or None
        The isotropy group of x (its name, e.g. ``"Δ(S_6 × S_1)"``, see
        :func:`~landscape.isotropy`) for models whose symmetry permutes neurons
        and coordinates; None for other models and for points that are not
        critical.
    """

    kind: str
    loss: float
    grad_norm: float
    index: int | None = None
    nullity: int | None = None
    symmetry_nullity: int | None = None
    manifold_nullity: int | None = None
    n_positive: int | None = None
    tau: float | None = None
    gap: float | None = None
    lambda_min: float | None = None
    lambda_max: float | None = None
    eigenvalues: np.ndarray | None = None
    is_global: bool | None = None
    witness: np.ndarray | None = None
    witness_loss: float | None = None
    witness_floor: float | None = None
    margin: float | None = None
    radius: float | None = None
    message: str = ""
    isotropy: str | None = None

    @property
    def is_minimum(self):
        """A strict or certified degenerate minimum."""
        return self.kind in ("strict-minimum", "degenerate-minimum")

    @property
    def is_saddle(self):
        return self.kind in ("strict-saddle", "non-strict-saddle")


def loss_tolerance(model, loss):
    """How far from the known optimum a loss may be and still count as equal to it.

    1000 ulps of max(1, |loss|), times sqrt(n_params) for the rounding of a sum over that
    many terms: the test of ``Classification.is_global`` and of the report's "equals the
    optimum" display.
    """
    return 1e3 * _EPS * max(1.0, abs(loss)) * max(1.0, np.sqrt(model.n_params))


def classify(model, x, *, gtol=1e-8, rtol=1e-9, atol=1e-10, radius=1e-1, rng=0,
             n_directions=16, margin=None, method="auto", symmetry=None):
    """Classify x as a minimum, a strict or non-strict saddle, a maximum, or say it cannot.

    Parameters
    ----------
    model : Model
    x : array_like of shape (n_params,)
    gtol : float
        A point with |grad L| > gtol is ``not-critical``.
    rtol, atol : float
        Zero tolerance of eigenvalues: tau = max(atol, rtol |H|, the rounding
        noise of H at x) (see Notes).
    radius : float
        Radius of the higher-order search around a degenerate point, and of the
        continuation test of critical manifolds.
    rng : int, Generator or None
        Random directions of the higher-order search.
    n_directions : int
        Random null-space directions tried (in addition to derivative-seeded ones).
    margin : float, optional
        Decrease a witness must achieve; default the larger of ``1e4 eps max(1,
        |L(x)|) sqrt(n_params)`` and 100 times the rounding noise of L at x: far
        above the rounding error of the loss.
    method : {"auto", "dense", "lanczos"}
        Spectrum method (:func:`hessian_spectrum`).
    symmetry : None, "auto" or Isotropy
        ``None``: the spectrum from `method`; the isotropy group of x is still
        named in the result when the model's symmetry permutes neurons and
        coordinates (and k^2 d <= 1e8 for k neurons in R^d: finding it costs
        O(k^2 d)).  ``"auto"``: find the isotropy group G of x
        (:func:`~landscape.isotropy`) and, when it is not trivial, take the
        exact spectrum from its isotypic blocks (``hessian_spectrum(...,
        isotropy=G)``: k in the hundreds) — `method` is then not used unless
        the blocks show zero eigenvalues at index 0 and n_params <=
        ``DENSE_LIMIT``, where the dense path and its higher-order test decide.
        An :class:`~landscape.Isotropy`: use that group.

    Returns
    -------
    Classification

    Notes
    -----
    *Noise floor.*  H and L are evaluated again at x perturbed by four ulps per
    coordinate, and H one Newton step away, at the critical point x stands for
    (x is critical only to gtol); 100 times the rounding change and 10 times the
    positional change of H bound the zero band from below, 100 times the
    rounding change of L the witness margin (see ``landscape._noise``).  Both are
    negligible at ordinary points and dominant where the closed forms lose digits
    or vary fast (near a neuron of norm 1e-6, say), so no eigenvalue whose sign
    rounding or the solver's stopping point decides is counted as negative or
    positive, and the verdict does not depend on the BLAS kernel.

    *Critical manifolds.*  Zero modes along the model's continuous symmetries
    (``symmetry_nullity``) and along the manifolds of critical points it knows
    (``manifold_nullity``: the splits of collinear neurons, see
    :meth:`Model.manifold_tangents`) are set apart.  Where it decides the verdict
    (index 0, L(x) not the known optimum) the remaining null space is tested by
    continuation: from x + r u (u in the null space, r up to
    `radius`), Newton on the complement must reach points with |grad L| at the
    rounding level and L(x) unchanged.  When it does for every direction tried,
    the null space is tangent to a manifold of critical points too.  A point
    whose null space is all manifold is a Morse-Bott point: the normal index
    decides (index 0: ``degenerate-minimum``, a manifold of minima), with no
    witness search.

    *Higher-order test.*  A ``non-strict-saddle`` needs descent that persists as
    the radius shrinks: along a seed direction the radii ``radius * 10**(-j/3)``
    are walked down; from the first radius with a witness on, every smaller
    radius must have one until the decrease a quartic law predicts for the next
    radius falls below 10 margins, and descent must reach inside half the ball
    on which no neuron vanishes or changes sign (:meth:`Model.smooth_radius`):
    the scale the point itself sets.  A lower point beyond that ball (past the
    sign change of a small output weight, say) proves nothing.  The witness
    returned is the one at the largest radius (its decrease is the largest).

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
    >>> circle = ls.AutogradModel(lambda z: (z[0]**2 + z[1]**2 - 1)**2, 2)
    >>> c = ls.classify(circle, [1.0, 0.0])          # a circle of minima: Morse-Bott
    >>> c.kind, c.nullity, c.manifold_nullity
    ('degenerate-minimum', 0, 1)
    """
    check_model(model)
    x = model.check_x(x)
    gtol = as_positive_float(gtol, "gtol", allow_zero=True)
    rtol = as_positive_float(rtol, "rtol", allow_zero=True)
    atol = as_positive_float(atol, "atol", allow_zero=True)
    radius = as_positive_float(radius, "radius")
    n_directions = as_positive_int(n_directions, "n_directions", minimum=0)
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    as_choice(method, "method", METHODS)
    rng = as_rng(rng)
    if margin is not None:
        margin = as_positive_float(margin, "margin")
    loss = model.loss(x)
    if not model.is_differentiable(x):
        return Classification(kind="non-differentiable", loss=loss, grad_norm=float("nan"),
                              message="the loss is not differentiable here (a zero neuron)")
    gnorm = float(np.linalg.norm(model.grad(x)))
    if gnorm > gtol:
        return Classification(kind="not-critical", loss=loss, grad_norm=gnorm,
                              message=f"|grad L| = {gnorm:.3g} > gtol = {gtol:.3g}")
    n = model.n_params
    G = _isotropy_group(model, x, symmetry)
    name = None if G is None else G.name
    if symmetry is not None and G is not None and G.order > 1:
        verdict = _isotypic_verdict(model, x, G, loss, gnorm, rtol, atol, margin)
        if verdict is not None:
            return verdict
    dense = method == "dense" or (method == "auto" and n <= DENSE_LIMIT)
    spec = hessian_spectrum(model, x, rtol=rtol, atol=atol,
                            method="dense" if dense else method, vectors=dense)
    noise_H, noise_L = hessian_noise(
        model, x, dense=dense,
        eigen=(spec.eigenvalues, spec.eigenvectors) if dense else None)
    if noise_H > spec.tau:
        spec = _with_tau(model, x, spec, noise_H, dense)
    if margin is None:
        margin = max(1e4 * _EPS * max(1.0, abs(loss)) * np.sqrt(n), noise_L)
    known = model.optimal_loss
    is_global = None if known is None else bool(loss <= known + loss_tolerance(model, loss))
    sym = _tangent_basis(model, x, model.symmetry_tangents(x), spec.tau)
    man = _tangent_basis(model, x, model.manifold_tangents(x), spec.tau, exclude=sym)
    n_sym, n_man = sym.shape[1], man.shape[1]
    nullity = max(0, spec.n_zero - n_sym - n_man)
    null = comp = None
    how_man = "collinear neurons" if n_man else ""
    if dense and nullity > 0:
        null, comp = _split_spaces(spec, np.hstack([sym, man]))
    # continuation only where it decides the verdict: index 0, not known to be global
    if null is not None and spec.n_negative == 0 and not is_global:
        scale = max(1.0, spec.norm)
        if _is_flat(model, x, loss, gnorm, null, comp, radius, margin, scale, rng):
            n_man += null.shape[1]
            nullity = 0
            how_man = "continuation" if not how_man else how_man + " and continuation"
    common = dict(loss=loss, grad_norm=gnorm, index=spec.n_negative, nullity=nullity,
                  symmetry_nullity=n_sym, manifold_nullity=n_man, n_positive=spec.n_positive,
                  tau=spec.tau, gap=spec.gap, lambda_min=spec.lambda_min,
                  lambda_max=spec.lambda_max, eigenvalues=spec.eigenvalues,
                  is_global=is_global, isotropy=name)
    morse_bott = (f"; a Morse-Bott point of a {n_man}-dimensional manifold of critical "
                  f"points (found from {how_man})" if n_man and nullity == 0 else "")
    if spec.n_negative == n:
        return Classification(kind="maximum", message="every Hessian eigenvalue is < -tau",
                              **common)
    if spec.n_negative > 0:
        return Classification(kind="strict-saddle", message=(
            f"{spec.n_negative} Hessian eigenvalue(s) below -tau; lambda_min = "
            f"{spec.lambda_min:.3g}" + morse_bott), **common)
    if nullity == 0 and n_man:
        return Classification(kind="degenerate-minimum", message=(
            "index 0 and every zero mode is explained" + morse_bott
            + "; the normal Hessian is positive definite: a manifold of minima"), **common)
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
    floor = 0.5 * model.smooth_radius(x)
    # the search moves along the manifold too: descent may need a free move along it first
    # (the end a_2 = 0 of a split of a two-layer network descends only past it)
    search = _split_spaces(spec, sym)[0] if n_man else null
    y, ly, r_low = _higher_order_search(model, x, loss, search, comp, radius, margin, floor, rng,
                                        n_directions)
    if y is not None:
        return Classification(kind="non-strict-saddle", witness=y, witness_loss=ly,
                              witness_floor=r_low, margin=margin, radius=radius, message=(
                                  f"index 0 with nullity {nullity}, but L decreases by "
                                  f"{loss - ly:.3g} > margin {margin:.3g} at distance "
                                  f"{np.linalg.norm(y - x):.3g} <= {radius:.3g}, and descent "
                                  f"persists down to radius {r_low:.3g}"), **common)
    inside = ("" if not np.isfinite(floor) else
              f" persisting inside half the smooth ball (radius {floor:.3g})")
    return Classification(kind="degenerate", margin=margin, radius=radius, message=(
        f"index 0 with nullity {nullity}; no descent found within radius {radius:.3g}"
        f"{inside} and no known optimal value to certify a minimum: undetermined"), **common)


def _isotropy_group(model, x, symmetry):
    """The isotropy group `symmetry` asks for (None when the model has no permutation group)."""
    if isinstance(symmetry, Isotropy):
        if symmetry.n_params != model.n_params:
            raise ValueError(f"symmetry acts on {symmetry.n_params} parameters but the model "
                             f"has {model.n_params}; build it for this model")
        return symmetry
    if symmetry not in (None, "auto"):
        raise ValueError(f"symmetry must be None, 'auto' or a landscape.Isotropy, got "
                         f"{symmetry!r}")
    if not has_permutation_symmetry(model):
        return None
    k, d = np.shape(model.symmetry().input_weights)
    if symmetry is None and k * k * d > _ISOTROPY_BUDGET:
        return None
    return isotropy(model, x)


def _isotypic_verdict(model, x, G, loss, gnorm, rtol, atol, margin):
    """The classification from the isotypic blocks of G, or None when they cannot decide.

    They decide when no eigenvalue is in the zero band, or when one is below it
    (a strict saddle); a zero band at index 0 goes to the dense path and its
    higher-order test when n_params <= DENSE_LIMIT, and is ``degenerate`` (or a
    certified global ``degenerate-minimum``) beyond.
    """
    n = model.n_params
    spec = hessian_spectrum(model, x, rtol=rtol, atol=atol, isotropy=G)
    noise_H, _ = hessian_noise(model, x, dense=False)
    if noise_H > spec.tau:
        spec = _with_tau(model, x, spec, noise_H, True)
    if spec.n_zero and not spec.n_negative and n <= DENSE_LIMIT:
        return None
    known = model.optimal_loss
    is_global = None if known is None else bool(loss <= known + loss_tolerance(model, loss))
    sym = _tangent_basis(model, x, model.symmetry_tangents(x), spec.tau) if spec.n_zero else \
        np.zeros((n, 0))
    man = (_tangent_basis(model, x, model.manifold_tangents(x), spec.tau, exclude=sym)
           if spec.n_zero else np.zeros((n, 0)))
    nullity = max(0, spec.n_zero - sym.shape[1] - man.shape[1])
    common = dict(loss=loss, grad_norm=gnorm, index=spec.n_negative, nullity=nullity,
                  symmetry_nullity=sym.shape[1], manifold_nullity=man.shape[1],
                  n_positive=spec.n_positive, tau=spec.tau, gap=spec.gap,
                  lambda_min=spec.lambda_min, lambda_max=spec.lambda_max,
                  eigenvalues=spec.eigenvalues, is_global=is_global, isotropy=G.name)
    how = (f" (exact spectrum from {spec.block_eigenvalues.size} isotypic block eigenvalues "
           f"of {G.name})")
    if spec.n_negative == n:
        return Classification(kind="maximum", message="every Hessian eigenvalue is < -tau" + how,
                              **common)
    if spec.n_negative:
        return Classification(kind="strict-saddle", message=(
            f"{spec.n_negative} Hessian eigenvalue(s) below -tau; lambda_min = "
            f"{spec.lambda_min:.3g}" + how), **common)
    if not spec.n_zero:
        return Classification(kind="strict-minimum",
                              message="every Hessian eigenvalue is > tau" + how, **common)
    if not nullity:
        return Classification(kind="degenerate-minimum", message=(
            "index 0 and every zero mode is explained by symmetries or collinear neurons: a "
            "manifold of minima" + how), **common)
    return Classification(
        kind="degenerate-minimum" if is_global else "degenerate", radius=0.0, margin=margin,
        message=(f"index 0 with {spec.n_zero} zero eigenvalue(s)" + how + "; the higher-order "
                 "test needs a dense spectrum (n_params > 2000); "
                 + ("L(x) equals the known optimal value" if is_global else "undetermined")),
        **common)


def _with_tau(model, x, spec, tau, dense):
    """The spectrum with the counts (and gap) redone for a larger zero band tau."""
    if not dense:
        return hessian_spectrum(model, x, tau=tau, method=spec.method)
    lam = np.asarray(spec.eigenvalues)
    outside = np.abs(lam[np.abs(lam) > tau])
    return dataclasses.replace(
        spec, tau=float(tau), n_negative=int(np.count_nonzero(lam < -tau)),
        n_zero=int(np.count_nonzero(np.abs(lam) <= tau)),
        n_positive=int(np.count_nonzero(lam > tau)),
        gap=float(outside.min()) if outside.size else np.inf)


def _tangent_basis(model, x, T, tau, exclude=None):
    """Orthonormal basis of the tangents in T (rows) that are zero modes of H at x.

    With `exclude` (an orthonormal basis), the part of the span already in it is
    removed first.
    """
    keep = []
    for t in T:
        nt = np.linalg.norm(t)
        if nt > 0 and np.linalg.norm(model.hvp(x, t / nt)) <= max(tau, 1e-8):
            keep.append(t / nt)
    if not keep:
        return np.zeros((model.n_params, 0))
    A = np.array(keep).T
    if exclude is not None and exclude.shape[1]:
        A = A - exclude @ (exclude.T @ A)
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    return U[:, s > 1e-8 * max(1.0, s.max(initial=0.0))]


def _split_spaces(spec, known):
    """Null space (known zero modes projected out) and the complement (|lambda| > tau)."""
    lam, V = spec.eigenvalues, spec.eigenvectors
    zero = np.abs(lam) <= spec.tau
    Z = V[:, zero]
    if known.shape[1]:
        Z = Z - known @ (known.T @ Z)
        U, s, _ = np.linalg.svd(Z, full_matrices=False)
        Z = U[:, s > 1e-6]
    return Z, V[:, ~zero]


# Continuation test: random null directions tried, and the radii (fractions of `radius`).
_FLAT_DIRECTIONS = 2
_FLAT_RADII = (1.0, 0.25)


def _is_flat(model, x, loss, gnorm, null, comp, radius, margin, scale, rng):
    """Whether the null space is tangent to a manifold of critical points through x.

    Lyapunov-Schmidt: for u in the null space and each radius r, Newton on the
    complement gradient finds y = x + r null u + comp v with comp^T grad L(y) = 0.
    The critical points near x are exactly the y where null^T grad L(y) = 0 too; a
    null space that is all tangent gives |grad L(y)| at the rounding level and
    L(y) = L(x) for every u.  A degenerate point that is not Morse-Bott fails at
    some radius (its reduced gradient grows like r^2 or r^3, far above rounding at
    r = `radius`).
    """
    gflat = max(10.0 * gnorm, 1e3 * _EPS * scale * max(1.0, np.linalg.norm(x)))
    for c in rng.standard_normal((_FLAT_DIRECTIONS, null.shape[1])):
        for sign in (1.0, -1.0):
            u = sign * null @ (c / np.linalg.norm(c))
            for frac in _FLAT_RADII:
                r = frac * radius
                y = _complement_root(model, x + r * u, comp, gflat)
                if y is None:
                    return False
                if abs(model.loss(y) - loss) > margin + 2.0 * gnorm * r:
                    return False
    return True


def _complement_root(model, y, comp, gtol, iters=20):
    """y + comp v with |grad L| <= gtol, by Newton on comp^T grad L; None when that fails.

    Stops (None) as soon as the complement gradient is at gtol but the whole
    gradient is not: the null part of the gradient is what the test measures.
    """
    for _ in range(iters):
        if not model.is_differentiable(y):
            return None
        g = model.grad(y)
        if np.linalg.norm(g) <= gtol:
            return y
        gc = comp.T @ g
        if np.linalg.norm(gc) <= gtol:
            return None
        Hc = comp.T @ model.hess(y) @ comp
        try:
            v = scipy.linalg.solve(Hc, -gc, assume_a="sym", check_finite=False)
        except (scipy.linalg.LinAlgError, ValueError):
            return None
        y = y + comp @ v
    return None


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
        # backtracking t = 1, 1/2, ... 2^-26: every trial in one batched evaluation
        trials = y + (_BACKTRACK[:, None] * (comp @ p)[None, :])
        ft = model.loss_kernel(trials)
        lower = np.flatnonzero(ft < fy)
        if lower.size == 0:
            break
        y, fy = trials[lower[0]], float(ft[lower[0]])
    return y, fy


_BACKTRACK = 0.5 ** np.arange(27)


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


# A decrease is resolvable when it is at least this many margins (so that a witness
# predicted at that size is found robustly, whatever the rounding).
_RESOLVE = 10.0
# Descent is followed down the radii r * _STEP**j; a first witness is looked for on the
# coarser grid radius * 10**-j (a descent region is an interval of radii).
_STEP = 10.0 ** (-1.0 / 3.0)


def _higher_order_search(model, x, loss, null, comp, radius, margin, floor, rng, n_random):
    """(y, L(y), r_low): a witness with L(y) < L(x) - margin, |y - x| <= radius, or Nones.

    Descent must persist as the radius shrinks.  Along each seed direction a first
    witness is looked for at radius, radius/10, ... down to 1e-3 radius (or a tenth of
    `floor`); from there the radii ``r * _STEP**j`` are walked downwards and every
    one must have a witness too (at distance <= 1.5 r), until the decrease a quartic
    law predicts for the next radius, ``decrease * _STEP**4``, drops below
    ``_RESOLVE * margin`` and can no longer be resolved.  That radius r_low must be
    <= `floor` (half the ball on which no neuron vanishes or changes sign): descent
    that cannot be followed inside the ball proves nothing.  The witness at the
    largest radius is returned.
    """
    if null.shape[1] == 0:
        return None, None, None
    lowest = min(1e-3 * radius, 0.1 * floor) if np.isfinite(floor) else 1e-3 * radius
    coarse = radius * 10.0 ** -np.arange(int(np.floor(np.log10(radius / lowest) + 1e-9)) + 1)
    for c in _seed_directions(model, x, null, rng, n_random):
        for sign in (1.0, -1.0):
            u = sign * (null @ c)
            for r0 in coarse:
                first = _witness_at(model, x, loss, r0 * u, comp, min(radius, 1.5 * r0), margin)
                if first is not None:
                    break
            else:
                continue
            w, r = first, r0
            while True:
                if (loss - w[1]) * _STEP ** 4 < _RESOLVE * margin or r * _STEP < 0.1 * lowest:
                    if r <= floor:                # followed to the resolution limit
                        return first[0], first[1], r
                    break
                r *= _STEP
                w = _witness_at(model, x, loss, r * u, comp, min(radius, 1.5 * r), margin)
                if w is None:                     # descent stopped while still resolvable
                    break
    return None, None, None


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
