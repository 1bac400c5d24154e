r"""Direction-wise convexity tests: local convexity, one-point strong convexity and PL.

Near a minimum x* a researcher asks *in which directions* the landscape is benign.
For unit directions u and radii r the tests evaluate, at the points
y = x* + r u (all directions and radii in one batch),

- local convexity: the curvature u^T H(y) u along u, and optionally lambda_min(H(y));
- one-point strong convexity (OPSC): <grad L(y), y - p(y)> / |y - p(y)|^2, with p(y) = x*
  or a projection onto the set of minimizers;
- the Polyak-Lojasiewicz (PL) condition: |grad L(y)|^2 / (2 (L(y) - L*)).

Each returns a :class:`DirectionalTest` holding the constants (directions x radii),
which directions pass a threshold, the fraction passing with a Wilson interval, the
worst direction, and the exponent p of constant ~ r^p as r -> 0 per direction.
"""

import dataclasses
import numbers
import warnings

import numpy as np

from ._results import Result
from ._validation import as_batch, as_choice, as_float_array, as_positive_float
from ._validation import as_positive_int, as_rng
from .models.base import check_model
from .spectrum import smallest_eigenvalues
from .errors import LandscapeWarning
from .stats import wilson_interval

__all__ = ["random_directions", "local_convexity", "one_point_strong_convexity",
           "pl_condition", "DirectionalTest", "DIRECTION_KINDS"]

DIRECTION_KINDS = ("uniform", "neuron", "split-rotation")

# Default threshold of the OPSC and PL tests: "positive beyond rounding".  Both
# constants are computed from a gradient whose absolute rounding error is about
# eps * (size of the loss's terms); divided by |y - x*| = r this stays far below
# 1e-8 for radii r >= 1e-6 on O(1)-scaled losses such as the ReLU population losses.
POSITIVE_THRESHOLD = 1e-8

# Pairs of neurons closer than this angle (radians) count as aligned for
# ``random_directions(kind="split-rotation", pair=None)``.
ALIGNED_ANGLE = 1e-6

_EPS = np.finfo(float).eps


# ---- the result ----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class DirectionalTest(Result):
    """Outcome of a direction-wise test at the points y = x + r u.

    Attributes
    ----------
    kind : str
        "local-convexity", "opsc" or "pl".
    x : ndarray of shape (n_params,)
        The base point (``x`` of local convexity, ``x_star`` of OPSC and PL).
    directions : ndarray of shape (n_directions, n_params)
        The unit directions u (the rows passed in, normalised).
    radii : ndarray of shape (n_radii,)
        The distances r from x, in the order passed in.
    constants : ndarray of shape (n_directions, n_radii)
        The constant at y = x + radii[j] directions[i]: the curvature u^T H(y) u, the
        OPSC ratio or the PL ratio.  NaN where undefined (see ``n_undefined``).
    threshold : float
        A direction passes when its constant is >= threshold at every radius.
    passes : ndarray of bool, shape (n_directions,)
        Per direction: constant >= threshold at every radius where it is defined
        (and defined at one radius at least).
    fraction : float
        Fraction of the directions that pass.
    fraction_interval : ndarray of shape (2,)
        95% Wilson score interval of ``fraction`` (:func:`wilson_interval`).
    worst_direction : int
        Index of the direction with the smallest constant over the radii.
    worst_constants : ndarray of shape (n_radii,)
        Its constants.
    exponents : ndarray of shape (n_directions,)
        Least-squares slope p of log(constant) against log(r) over all radii, so that
        constant ~ r^p: p ~ 0 means the constant stays bounded away from zero as
        r -> 0, p ~ 1 that it vanishes linearly ("fails locally").  NaN where a
        constant of the direction is <= 0 or undefined, or with fewer than two
        distinct radii.  The fit is an r -> 0 scaling only if the radii are small.
    lambda_min : ndarray of shape (n_directions, n_radii) or None
        lambda_min(H(y)) for local convexity when asked (``lambda_min=True``).
    n_undefined : int
        Number of points y where the constant is undefined: not differentiable there
        (a zero ReLU neuron), y is its own reference point (OPSC), or
        L(y) - L* <= loss_atol (PL).

    Notes
    -----
    ``passes`` concerns the sampled radii only.  A constant that vanishes as r -> 0
    (the signature of a condition failing locally) still passes a small threshold at
    every positive radius: read ``exponents`` and ``worst_constants`` with it.
    """

    kind: str
    x: np.ndarray
    directions: np.ndarray
    radii: np.ndarray
    constants: np.ndarray
    threshold: float
    passes: np.ndarray
    fraction: float
    fraction_interval: np.ndarray
    worst_direction: int
    worst_constants: np.ndarray
    exponents: np.ndarray
    lambda_min: np.ndarray = None
    n_undefined: int = 0

    @property
    def n_directions(self):
        """Number of directions tested."""
        return self.directions.shape[0]

    @property
    def failing(self):
        """Indices of the directions that do not pass, shape (n_failing,)."""
        return np.flatnonzero(~self.passes)


# ---- Wilson interval -----------------------------------------------------------------

# ---- directions ----------------------------------------------------------------------

def random_directions(model, n, rng, *, kind="uniform", x=None, pair=None):
    r"""Random unit directions in parameter space.

    Parameters
    ----------
    model : Model
    n : int
        Number of directions.
    rng : int, Generator, SeedSequence or None
    kind : {"uniform", "neuron", "split-rotation"}
        - "uniform": uniform on the unit sphere (normalised Gaussian vectors).
        - "neuron": each direction moves the parameters of one neuron only (its input
          weights w_i, and its output weight a_i for models that train it), the neuron
          drawn uniformly, the direction uniform on that neuron's sphere.
        - "split-rotation": the directions that rotate two aligned neurons i, j (two
          halves of one teacher neuron) apart: w_i -> w_i + s e / a_i,
          w_j -> w_j - s e / a_j, with e a random unit vector perpendicular to w_i and
          w_j and a the output weights (1 for models without trained output weights).
          The pair's contribution a_i w_i + a_j w_j is unchanged and the two neurons
          turn in opposite directions in the plane of e.  Needs ``x``.
    x : array_like of shape (n_params,), optional
        The point whose neurons are split ("split-rotation" only).
    pair : tuple of two ints, optional
        The neurons to rotate apart ("split-rotation" only).  Default: the most nearly
        aligned pair of non-zero neurons of x, which must be aligned to within
        ``ALIGNED_ANGLE`` radians.

    Returns
    -------
    ndarray of shape (n, n_params)
        Unit rows.

    Notes
    -----
    Neurons are read from ``model.unflatten``: a (k, d) array of rows (teacher-student,
    empirical) or a pair (a, W) of output and input weights (two-layer).  Models without
    that structure (``AutogradModel``) support "uniform" only.

    Along a split rotation the two halves of v = w_i + w_j stay summing to v, and the
    loss grows only through the angle between them: as r^3 for the teacher-student
    loss (h(theta) = theta^3/3 + ..., DESIGN.md).

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=4)
    >>> x = m.flatten([[0.5, 0, 0], [0.5, 0, 0], [0, 1, 0], [0, 0, 1]])
    >>> U = ls.random_directions(m, 2, rng=0, kind="split-rotation", x=x)
    >>> np.allclose(np.linalg.norm(U, axis=1), 1), np.allclose(U[:, :3] + U[:, 3:6], 0)
    (True, True)
    """
    check_model(model)
    n = as_positive_int(n, "n")
    kind = as_choice(kind, "kind", DIRECTION_KINDS)
    rng = as_rng(rng)
    p = model.n_params
    if kind != "split-rotation" and (x is not None or pair is not None):
        raise ValueError(f"x and pair apply to kind='split-rotation' only, not kind={kind!r}")
    if kind == "uniform":
        U = rng.standard_normal((n, p))
    elif kind == "neuron":
        a_idx, w_idx = _neuron_layout(model, kind)
        idx = w_idx if a_idx is None else np.column_stack([a_idx, w_idx])
        which = rng.integers(idx.shape[0], size=n)
        U = np.zeros((n, p))
        U[np.arange(n)[:, None], idx[which]] = rng.standard_normal(idx[which].shape)
    else:
        U = _split_rotations(model, n, rng, x, pair)
    norms = np.linalg.norm(U, axis=1)
    if np.any(norms == 0):  # a Gaussian draw of exactly zero: probability zero
        raise ValueError("a random direction came out zero; use another rng")
    return U / norms[:, None]


def _neuron_layout(model, kind):
    """Indices of each neuron's output weight (k,) or None, and input weights (k, d)."""
    parts = model.unflatten(np.arange(model.n_params, dtype=float))
    if isinstance(parts, np.ndarray) and parts.ndim == 2:
        return None, parts.astype(int)
    if (isinstance(parts, tuple) and len(parts) == 2 and np.ndim(parts[0]) == 1
            and np.ndim(parts[1]) == 2 and len(parts[0]) == len(parts[1])):
        return np.asarray(parts[0]).astype(int), np.asarray(parts[1]).astype(int)
    raise ValueError(f"kind={kind!r} needs a model made of neurons (ReluTeacherStudent, "
                     f"TwoLayerReLU, EmpiricalReLU); {type(model).__name__} has no neuron "
                     "structure: use kind='uniform'")


def _split_rotations(model, n, rng, x, pair):
    if x is None:
        raise ValueError("x is required for kind='split-rotation': pass the point whose "
                         "neurons are split, e.g. x=model.flatten(W)")
    x = model.check_x(x)
    a_idx, w_idx = _neuron_layout(model, "split-rotation")
    k, d = w_idx.shape
    W = x[w_idx]
    a = np.ones(k) if a_idx is None else x[a_idx]
    i, j = _aligned_pair(W, pair)
    if a[i] == 0 or a[j] == 0:
        raise ValueError(f"pair {(i, j)}: neuron {i if a[i] == 0 else j} has output weight 0, "
                         "so rotating it changes nothing; pick a pair of active neurons")
    # orthonormal basis of span(w_i, w_j); e is drawn in its orthogonal complement
    _, s, Vt = np.linalg.svd(np.stack([W[i], W[j]]))
    rank = int(np.count_nonzero(s > _EPS * max(s[0], 1.0) * d))
    if rank >= d:
        raise ValueError(f"pair {(i, j)}: no direction in R^{d} is perpendicular to both "
                         "neurons, so they cannot be rotated apart")
    E = rng.standard_normal((n, d))
    E -= (E @ Vt[:rank].T) @ Vt[:rank]
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    U = np.zeros((n, model.n_params))
    U[:, w_idx[i]] = E / a[i]
    U[:, w_idx[j]] = -E / a[j]
    return U


def _aligned_pair(W, pair):
    k = W.shape[0]
    if pair is not None:
        if (isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2
                or not all(isinstance(q, numbers.Integral) and not isinstance(q, bool)
                           for q in pair)):
            raise TypeError(f"pair must be two neuron indices (i, j), got {pair!r}")
        i, j = int(pair[0]), int(pair[1])
        if i == j or min(i, j) < 0 or max(i, j) >= k:
            raise ValueError(f"pair must be two distinct neuron indices in [0, {k}), "
                             f"got {pair!r}")
        if not (np.any(W[i]) and np.any(W[j])):
            raise ValueError(f"pair {(i, j)}: neuron {i if not np.any(W[i]) else j} is zero; "
                             "a split rotation needs two non-zero neurons")
        return i, j
    norms = np.linalg.norm(W, axis=1)
    live = np.flatnonzero(norms > 0)
    if live.size < 2:
        raise ValueError("pair=None needs two non-zero neurons in x to split; x has "
                         f"{live.size}")
    Wb = W[live] / norms[live, None]
    # Kahan's angle 2 atan2(|a - b|, |a + b|): accurate for nearly aligned pairs
    diff = np.linalg.norm(Wb[:, None] - Wb[None], axis=2)
    summ = np.linalg.norm(Wb[:, None] + Wb[None], axis=2)
    theta = 2.0 * np.arctan2(diff, summ)
    theta[np.diag_indices_from(theta)] = np.inf
    p, q = np.unravel_index(np.argmin(theta), theta.shape)
    if theta[p, q] > ALIGNED_ANGLE:
        raise ValueError(f"pair=None: no two neurons of x are aligned (the closest, {live[p]} "
                         f"and {live[q]}, are {theta[p, q]:.3g} rad apart); pass pair=(i, j)")
    return int(min(live[p], live[q])), int(max(live[p], live[q]))


# ---- the three tests -----------------------------------------------------------------

def local_convexity(model, x, directions, radii, *, lambda_min=False, threshold=0.0):
    r"""Curvature along each direction at y = x + r u (and optionally lambda_min(H(y))).

    Parameters
    ----------
    model : Model
    x : array_like of shape (n_params,)
        The base point (a minimum, typically).  It may itself be non-differentiable.
    directions : array_like of shape (n_directions, n_params)
        Directions u, normalised to unit length here.
    radii : array_like of shape (n_radii,)
        Positive distances r.
    lambda_min : bool
        Also compute the smallest Hessian eigenvalue at every y (dense ``eigh`` up to
        2,000 parameters, Lanczos on Hessian-vector products beyond).
    threshold : float
        A direction passes when u^T H(y) u >= threshold at every radius.

    Returns
    -------
    DirectionalTest
        ``kind="local-convexity"``, ``constants[i, j] = u_i^T H(x + r_j u_i) u_i``.

    Notes
    -----
    ``passes`` concerns the curvature *along* each direction.  Local convexity in the
    full sense fails as soon as some sampled y has lambda_min(H(y)) < 0: ask for
    ``lambda_min=True`` and look at ``np.nanmin(result.lambda_min)``.  With the default
    threshold 0, a direction of exactly zero curvature can fail by rounding; pass a
    small negative threshold to tolerate that.  All Hessian-vector products are one
    call to ``model.hvp_batch``.

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    >>> U = ls.random_directions(m, 20, rng=0)
    >>> t = ls.local_convexity(m, m.flatten(np.eye(3)), U, [1e-6, 1e-3], lambda_min=True)
    >>> t.fraction, round(float(t.lambda_min[:, 0].min()), 4)    # 1/4 - 1/(2 pi) at r -> 0
    (1.0, 0.0908)
    """
    x, U, radii, Y, smooth = _prepare(model, x, directions, radii, "x")
    threshold = _check_threshold(threshold, 0.0)
    n_rad = radii.size
    URep = np.repeat(U, n_rad, axis=0)
    curvature = np.full(Y.shape[0], np.nan)
    lam = np.full(Y.shape[0], np.nan) if lambda_min else None
    if smooth.any():
        Ys = Y[smooth]
        HU = model.hvp_batch(Ys, URep[smooth])
        curvature[smooth] = np.einsum("bn,bn->b", HU, URep[smooth])
        if lambda_min:
            lam[smooth] = smallest_eigenvalues(model, Ys)
    n_bad = int(np.count_nonzero(~smooth))
    if n_bad:
        _warn_undefined("local-convexity", n_bad, Y.shape[0], not_smooth=n_bad)
    return _summarise("local-convexity", x, U, radii, curvature.reshape(-1, n_rad),
                      threshold, None if lam is None else lam.reshape(-1, n_rad), n_bad)


def one_point_strong_convexity(model, x_star, directions, radii, *, reference=None,
                               threshold=None):
    r"""One-point strong convexity ratio <grad L(y), y - p(y)> / |y - p(y)|^2 at y = x* + r u.

    Parameters
    ----------
    model : Model
    x_star : array_like of shape (n_params,)
        The minimum around which to test (it may itself be non-differentiable).
    directions : array_like of shape (n_directions, n_params)
        Directions u, normalised to unit length here.
    radii : array_like of shape (n_radii,)
        Positive distances r.
    reference : callable, optional
        ``reference(Y)`` maps a batch Y of shape (B, n_params) to the reference points
        P = p(Y), shape (B, n_params): a row-wise projection onto the set of minimizers.
        Default: p(y) = x_star.  Wrap a one-point projection ``proj`` as
        ``lambda Y: np.apply_along_axis(proj, 1, Y)``.
    threshold : float, optional
        A direction passes when its ratio is >= threshold at every radius.  Default
        ``POSITIVE_THRESHOLD`` = 1e-8: "positive beyond rounding".  To ask for OPSC with
        a constant mu, pass ``threshold=mu``.

    Returns
    -------
    DirectionalTest
        ``kind="opsc"``.

    Notes
    -----
    L is one-point strongly convex with respect to p near x* when
    :math:`\langle\nabla L(y), y - p(y)\rangle \ge \mu\|y - p(y)\|^2` for some
    :math:`\mu > 0` and all y near x*; the ratio is the best :math:`\mu` at y.  At a
    twice-differentiable minimum with p = x*, the ratio tends to u^T H(x*) u as
    r -> 0 (exponent 0); along a direction where L grows as r^3 it vanishes linearly
    (exponent 1): OPSC fails locally although every sampled ratio is positive.
    Where y is its own reference point (|y - p(y)| <= 16 eps max(1, |y|)) or L is not
    differentiable, the ratio is NaN and counted in ``n_undefined`` (with a warning).
    The gradients are one call to ``model.grad_batch``.

    References
    ----------
    I. Safran, G. Yehudai, O. Shamir, "The effects of mild over-parameterization on the
    optimization landscape of shallow ReLU neural networks", COLT 2021 (OPSC in most
    directions, but not locally, once k > n).

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=4)
    >>> x = m.flatten([[0.5, 0, 0], [0.5, 0, 0], [0, 1, 0], [0, 0, 1]])  # split minimum
    >>> U = ls.random_directions(m, 3, rng=0, kind="split-rotation", x=x)
    >>> t = ls.one_point_strong_convexity(m, x, U, np.geomspace(1e-4, 1e-2, 5))
    >>> np.round(t.exponents, 2).tolist()                  # vanishes linearly in r
    [1.0, 1.0, 1.0]
    """
    x_star, U, radii, Y, smooth = _prepare(model, x_star, directions, radii, "x_star")
    threshold = _check_threshold(threshold, POSITIVE_THRESHOLD)
    if reference is None:
        P = np.broadcast_to(x_star, Y.shape)
    else:
        P = _call_reference(reference, Y)
    D = Y - P
    dd = np.einsum("bn,bn->b", D, D)
    at_reference = np.sqrt(dd) <= 16.0 * _EPS * np.maximum(1.0, np.linalg.norm(Y, axis=1))
    ok = smooth & ~at_reference
    ratio = np.full(Y.shape[0], np.nan)
    if ok.any():
        G = model.grad_batch(Y[ok])
        ratio[ok] = np.einsum("bn,bn->b", G, D[ok]) / dd[ok]
    n_bad = int(np.count_nonzero(~ok))
    if n_bad:
        _warn_undefined("opsc", n_bad, Y.shape[0], not_smooth=int(np.count_nonzero(~smooth)),
                        at_reference=int(np.count_nonzero(smooth & at_reference)))
    return _summarise("opsc", x_star, U, radii, ratio.reshape(-1, radii.size), threshold,
                      None, n_bad)


def pl_condition(model, x_star, directions, radii, *, optimal_loss=None, threshold=None,
                 loss_atol=None):
    r"""Polyak-Lojasiewicz ratio |grad L(y)|^2 / (2 (L(y) - L*)) at y = x* + r u.

    Parameters
    ----------
    model : Model
    x_star : array_like of shape (n_params,)
        The minimum around which to test.
    directions : array_like of shape (n_directions, n_params)
        Directions u, normalised to unit length here.
    radii : array_like of shape (n_radii,)
        Positive distances r.
    optimal_loss : float, optional
        L*; default ``model.optimal_loss`` (a ValueError if that is None).
    threshold : float, optional
        A direction passes when its ratio is >= threshold at every radius where it is
        defined.  Default ``POSITIVE_THRESHOLD`` = 1e-8; pass ``threshold=mu`` to ask
        for the PL inequality with constant mu.
    loss_atol : float, optional
        Where L(y) - L* <= loss_atol, y is optimal to rounding and the ratio is
        undefined (NaN).  Default 100 eps max(1, |L*|) (about 2e-14); raise it for
        losses with many terms, whose rounding is larger.

    Returns
    -------
    DirectionalTest
        ``kind="pl"``.

    Notes
    -----
    L satisfies the PL inequality near x* with constant mu when
    :math:`\|\nabla L(y)\|^2 \ge 2\mu (L(y) - L^*)` for y near x*; the ratio is the best
    mu at y.  At a point y with L(y) = L* (another minimizer) the inequality holds
    trivially: such points are NaN, counted in ``n_undefined``, reported by a
    :class:`LandscapeWarning`, and skipped by ``passes`` (never a division by zero).
    Points with L(y) < L* - loss_atol suggest that L* is wrong; the warning says so.
    Losses and gradients are one call each to ``model.loss_batch`` and
    ``model.grad_batch``.

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    >>> U = ls.random_directions(m, 20, rng=0)
    >>> t = ls.pl_condition(m, m.flatten(np.eye(3)), U, [1e-4, 1e-3, 1e-2])
    >>> t.fraction, bool(np.all(np.abs(t.exponents) < 0.05))
    (1.0, True)
    """
    x_star, U, radii, Y, smooth = _prepare(model, x_star, directions, radii, "x_star")
    threshold = _check_threshold(threshold, POSITIVE_THRESHOLD)
    if optimal_loss is None:
        if model.optimal_loss is None:
            raise ValueError(f"optimal_loss: {type(model).__name__}.optimal_loss is None (the "
                             "global minimum value is not known); pass optimal_loss=L*")
        optimal_loss = model.optimal_loss
    if isinstance(optimal_loss, bool) or not isinstance(optimal_loss, numbers.Real) \
            or not np.isfinite(optimal_loss):
        raise ValueError(f"optimal_loss must be a finite number, got {optimal_loss!r}")
    optimal_loss = float(optimal_loss)
    loss_atol = (100.0 * _EPS * max(1.0, abs(optimal_loss)) if loss_atol is None
                 else as_positive_float(loss_atol, "loss_atol", allow_zero=True))
    gap = model.loss_batch(Y) - optimal_loss
    ok = smooth & (gap > loss_atol)
    ratio = np.full(Y.shape[0], np.nan)
    if ok.any():
        G = model.grad_batch(Y[ok])
        ratio[ok] = np.einsum("bn,bn->b", G, G) / (2.0 * gap[ok])
    n_bad = int(np.count_nonzero(~ok))
    if n_bad:
        _warn_undefined("pl", n_bad, Y.shape[0], not_smooth=int(np.count_nonzero(~smooth)),
                        optimal=int(np.count_nonzero(smooth & (gap <= loss_atol))),
                        below=int(np.count_nonzero(smooth & (gap < -loss_atol))),
                        loss_atol=loss_atol)
    return _summarise("pl", x_star, U, radii, ratio.reshape(-1, radii.size), threshold,
                      None, n_bad)


# ---- shared machinery ----------------------------------------------------------------

def _prepare(model, x, directions, radii, x_name):
    """Validate, normalise the directions and build Y[i * n_radii + j] = x + r_j u_i."""
    check_model(model)
    n = model.n_params
    x = model.check_x(x, x_name)
    U = as_batch(directions, n, "directions")
    if U.shape[0] == 0:
        raise ValueError(f"directions must hold at least one direction, got shape {U.shape}")
    norms = np.linalg.norm(U, axis=1)
    if np.any(norms == 0):
        raise ValueError(f"directions must be non-zero; row {int(np.argmin(norms))} is zero "
                         "(use random_directions)")
    U = U / norms[:, None]
    radii = as_float_array(radii, "radii")
    if radii.ndim == 0:
        radii = radii.reshape(1)
    if radii.ndim != 1:
        raise ValueError(f"radii must be a 1-D array of distances, got shape {radii.shape}")
    if np.any(radii <= 0):
        raise ValueError(f"radii must be > 0, got {radii[radii <= 0][0]}; the base point "
                         "itself is not tested")
    Y = (x[None, None, :] + radii[None, :, None] * U[:, None, :]).reshape(-1, n)
    smooth = model.is_differentiable_batch(Y)
    return x, U, radii, Y, smooth


def _check_threshold(threshold, default):
    if threshold is None:
        return default
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) \
            or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return float(threshold)


def _call_reference(reference, Y):
    if not callable(reference):
        raise TypeError(f"reference must be a callable P = reference(Y) (a projection onto "
                        f"the minimizers), got {type(reference).__name__}")
    P = reference(Y.copy())
    try:
        P = as_float_array(P, "reference(Y)")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"reference: {exc}") from None
    if P.shape != Y.shape:
        raise ValueError(f"reference(Y) must return one point per row of Y, shape {Y.shape}, "
                         f"got {P.shape}; it receives the whole batch")
    return P


def _warn_undefined(kind, n_bad, n_total, *, not_smooth=0, at_reference=0, optimal=0, below=0,
                    loss_atol=None):
    reasons = []
    if not_smooth:
        reasons.append(f"{not_smooth} not differentiable (a zero neuron)")
    if at_reference:
        reasons.append(f"{at_reference} at their own reference point")
    if optimal:
        reasons.append(f"{optimal} optimal to rounding (L(y) - L* <= loss_atol = "
                       f"{loss_atol:.3g})")
    message = (f"{kind}: the constant is undefined (NaN) at {n_bad} of {n_total} points: "
               + ", ".join(reasons))
    if below:
        message += (f"; {below} have L(y) < L* - loss_atol: is optimal_loss the global "
                    "minimum value?")
    warnings.warn(message, LandscapeWarning, stacklevel=3)


def _summarise(kind, x, U, radii, C, threshold, lam, n_undefined):
    defined = np.isfinite(C)
    passes = np.all((C >= threshold) | ~defined, axis=1) & np.any(defined, axis=1)
    n_dir = C.shape[0]
    row_min = np.min(np.where(defined, C, np.inf), axis=1)
    worst = int(np.argmin(row_min))
    return DirectionalTest(kind=kind, x=x, directions=U, radii=radii, constants=C,
                           threshold=threshold, passes=passes,
                           fraction=float(np.count_nonzero(passes) / n_dir),
                           fraction_interval=wilson_interval(int(np.count_nonzero(passes)),
                                                             n_dir),
                           worst_direction=worst, worst_constants=C[worst].copy(),
                           exponents=_exponents(radii, C), lambda_min=lam,
                           n_undefined=int(n_undefined))


def _exponents(radii, C):
    """Per row, the least-squares slope of log C against log r (NaN if any C <= 0)."""
    log_r = np.log(radii)
    centred = log_r - log_r.mean()
    ss = float(centred @ centred)
    out = np.full(C.shape[0], np.nan)
    good = np.all(np.isfinite(C) & (C > 0), axis=1)
    if ss > 0 and good.any():
        log_c = np.log(C[good])
        out[good] = (log_c - log_c.mean(axis=1, keepdims=True)) @ centred / ss
    return out
