"""Computer-assisted proofs that a true critical point lies near a float point.

Safran & Shamir (ICML 2018) verified every spurious minimum they reported with a
computer-assisted proof; :func:`certify` does the same in ball arithmetic (python-flint
``arb``), for any model that provides rigorous enclosures of its derivatives
(:meth:`Model.enclose_derivatives <landscape.Model.enclose_derivatives>`).

The proof (a Krawczyk / Newton-Kantorovich argument on the gradient)
---------------------------------------------------------------------
Let x be the float point, r > 0, B the Euclidean ball of radius r around x and [H] a ball
matrix with H(y) in [H] for every y in the box |y - x|_inf <= r (which contains B).

1. *Inertia.*  Q, lambda from a float ``eigh`` of the midpoint of [H]; in ball arithmetic
   M = Q^T [H] Q and E = Q^T Q - I.  With eta >= |E|_2 < 1, Q is invertible, so H(y) and
   Q^T H(y) Q are congruent (Sylvester).  Weyl's inequality puts the eigenvalues of every
   member of M within rho = |offdiag M|_2 of its (sorted) diagonal: #{hi_j + rho < 0}
   eigenvalues are negative and #{lo_j - rho > 0} positive for every y in B.  When these
   add up to the dimension, every H(y) is nonsingular with that inertia, and
   ``(min_j lo_j - rho) / (1 +- eta) <= lambda_min(H(y))``.
2. *Existence and uniqueness.*  With A = Q diag(1/lambda) Q^T (floats, exact in the
   balls), T(y) = y - A grad L(y) satisfies, for y, z in B,
   T(y) - T(z) = (I - A Hbar)(y - z) with Hbar an average of H over the segment, so in [H]:
   ``q = |I - A [H]|_2`` bounds the contraction and ``|T(y) - x| <= |A grad L(x)| + q r``.
   If ``beta + q r <= r`` with beta >= |A grad L(x)| and q < 1, T maps B into itself and
   contracts: it has exactly one fixed point in B (Banach), i.e. grad L has exactly one
   zero in B (A is invertible as |I - A Hbar| < 1), and it lies within beta / (1 - q) of x.
3. *Kind.*  Index 0: a strict local minimum with lambda_min >= lambda_min_lower > 0 on
   all of B.  Index m > 0: a nondegenerate saddle of index m.

Norms of ball matrices are bounded by ``min(|.|_F, max row sum)`` of the entrywise upper
bounds of |.|, rounded upwards.

Points on a critical manifold (split neurons, :meth:`Model.split_parent
<landscape.Model.split_parent>`): the Hessian is singular there, so the proof goes
through the smaller model the point is a split of: its critical point x_p* is certified,
the lift of x_p* is a true critical point within ``deviation + lipschitz * |x_p* - x_p|``
of x, and the inertia of [H] over that ball proves negative curvature: a strict saddle
(not unique: a whole segment of critical points).

References
----------
I. Safran, O. Shamir, "Spurious local minima are common in two-layer ReLU neural
networks", ICML 2018, Sec. 4 and App. (computer-assisted proofs).
R. Krawczyk, "Newton-Algorithmen zur Bestimmung von Nullstellen mit Fehlerschranken",
Computing 4 (1969).  S. M. Rump, "Verification methods", Acta Numerica 19 (2010), Sec. 13.
"""

import dataclasses

import numpy as np

from ._results import Result
from ._validation import as_positive_int
from .errors import NonDifferentiableError
from .models import Model, check_model
from .models.balls import PRECISION, flint_context

__all__ = ["Certificate", "certify"]

# Automatic radii: the first is this many times the float Newton step |H^-1 grad|, at least
# _FLOOR relative to |x|_inf; each later attempt is _GROWTH times larger.
_SAFETY = 4.0
_FLOOR = 1e-13
_GROWTH = 30.0
_ATTEMPTS = 5
# A float Newton step beyond this (relative to |x|_inf) means x is far from a critical point.
_FAR = 1e-4


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Certificate(Result):
    """A computer-assisted proof about the critical point near x (or why none was found).

    Attributes
    ----------
    x : ndarray of shape (n_params,)
        The float point the proof is centred at.
    certified : bool
        Whether the statement below is proved.
    kind : str or None
        ``"strict-minimum"`` or ``"strict-saddle"`` when certified, else None.
    index : int or None
        Number of negative Hessian eigenvalues at the true critical point (for a split
        point, a lower bound unless ``index_exact``).
    index_exact : bool
    radius : float
        Radius r of the ball around x in which a true critical point provably lies (and, if
        ``unique``, is the only one); nan when not certified.
    distance_bound : float
        The true critical point lies within this distance of x (<= radius); nan when not
        certified.
    unique : bool
        Whether the critical point is the only one in the ball (False on a critical manifold).
    lambda_min_lower, lambda_min_upper : float
        Rigorous bounds of lambda_min of the Hessian over the whole ball (in the certified
        coordinates); nan when not computed.
    grad_norm_upper : float
        Rigorous upper bound of |grad L(x)| (certified coordinates).
    contraction : float
        The bound q of |I - A H(y)|_2 over the ball (step 2 of the proof); nan if unused.
    hessian_spread : float
        Upper bound of |H(y) - H(y')|_2 over the box (twice the radius of [H]).
    n_free : int
        Number of coordinates the proof is in (the model's slice; n_params when none).
    prec : int
        Working precision in bits.
    message : str
        What was proved, or what failed.
    """

    x: np.ndarray
    certified: bool
    kind: str = None
    index: int = None
    index_exact: bool = False
    radius: float = float("nan")
    distance_bound: float = float("nan")
    unique: bool = False
    lambda_min_lower: float = float("nan")
    lambda_min_upper: float = float("nan")
    grad_norm_upper: float = float("nan")
    contraction: float = float("nan")
    hessian_spread: float = float("nan")
    n_free: int = 0
    prec: int = PRECISION
    message: str = ""


def certify(model, x, *, radius=None, prec=PRECISION):
    """Prove in ball arithmetic that a true critical point lies within a radius of x.

    Parameters
    ----------
    model : Model
        A model with rigorous derivatives (:meth:`Model.enclose_derivatives
        <landscape.Model.enclose_derivatives>`): :class:`~landscape.ReluTeacherStudent` and
        :class:`~landscape.TwoLayerReLU` (in the slice of fixed output weights).
    x : array_like of shape (n_params,)
        A float approximation of a nondegenerate critical point (e.g. Newton-polished to
        |grad| ~ 1e-13).
    radius : float, optional
        The ball radius to prove the statement for.  Default: tried automatically, from a
        few times the float Newton step upwards; the smallest radius that succeeds is
        returned.
    prec : int
        Working precision in bits (default 106).

    Returns
    -------
    Certificate
        ``certified`` and what is proved; a failed proof is data (``message`` says why).

    Raises
    ------
    TypeError
        If the model cannot be certified (no ball-arithmetic derivatives, e.g. an
        :class:`~landscape.AutogradModel`).

    Notes
    -----
    The argument (Krawczyk's operator on grad L with a rigorous enclosure of the Hessian
    over the ball, Sylvester's law of inertia and Weyl's inequality) is in the module
    docstring of :mod:`landscape.certify`.  The ball must avoid the non-smooth set (a zero
    neuron); where neurons are parallel the loss is only C^2, and the enclosure bounds the
    Hessian there without dividing by sin(theta) (:mod:`landscape.models.balls`).  A point
    of a critical manifold (split neurons) is certified through the smaller model it is a
    split of, and can only be a (non-unique) strict saddle.  Models with a continuous
    symmetry the certified coordinates do not remove (e.g. a rank-deficient teacher) have
    singular Hessians: nothing is certified and the message says so.

    References
    ----------
    I. Safran, O. Shamir, ICML 2018 (their ``minimum.m`` does this with symbolic MATLAB).

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    >>> c = ls.certify(m, m.flatten(np.eye(3)))
    >>> c.certified, c.kind, c.index
    (True, 'strict-minimum', 0)
    >>> bool(0 < c.lambda_min_lower <= 0.25 - 1 / (2 * np.pi))
    True
    """
    model = check_model(model)
    x = model.check_x(x)
    prec = as_positive_int(prec, "prec")
    if radius is not None:
        radius = float(radius)
        if not np.isfinite(radius) or radius <= 0:
            raise ValueError(f"radius must be a positive finite float, got {radius!r}; pass "
                             "None to choose it automatically")
    if type(model).enclose_derivatives is Model.enclose_derivatives:
        model.enclose_derivatives(x, 0.0, prec=prec)      # its TypeError says why
    parent = model.split_parent(x)
    if parent is not None:
        return _certify_split(model, x, parent, radius, prec)
    return _certify_isolated(model, x, radius, prec)


# ---- the isolated case ----------------------------------------------------------------------
def _certify_isolated(model, x, radius, prec):
    """The given radius, or automatic radii growing by _GROWTH while the Newton step is the
    obstacle (a larger ball cannot help when the contraction or the inertia fails)."""
    if radius is not None:
        return _attempt(model, x, radius, prec)[0]
    r = first = _first_radius(model, x)
    for _ in range(_ATTEMPTS):
        cert, grow = _attempt(model, x, r, prec)
        if cert.certified or not grow:
            break
        r *= _GROWTH
    if not cert.certified and first > _FAR * max(1.0, float(np.max(np.abs(x)))):
        cert = dataclasses.replace(cert, message=(
            f"x does not look close to a critical point (the float Newton step is "
            f"{first / _SAFETY:.3g}): {cert.message}"))
    return cert


def _first_radius(model, x):
    """A few times the float Newton step, at least _FLOOR * max(1, |x|_inf)."""
    floor = _FLOOR * max(1.0, float(np.max(np.abs(x))))
    with np.errstate(all="ignore"):
        try:
            g, H = model.grad(x), model.hess(x)
            step = np.linalg.lstsq(H, g, rcond=None)[0]
            r = _SAFETY * float(np.linalg.norm(step))
        except (NonDifferentiableError, np.linalg.LinAlgError, ValueError):
            r = floor
    return max(r, floor) if np.isfinite(r) else floor


def _fail(x, message, prec, **fields):
    return Certificate(x=x, certified=False, message=message, prec=prec, **fields)


def _attempt(model, x, r, prec):
    """One proof at radius r: (Certificate, whether a larger radius may succeed)."""
    try:
        D = model.enclose_derivatives(x, r, prec=prec)
    except NonDifferentiableError as e:
        return _fail(x, f"the ball of radius {r:.3g} reaches the non-differentiable set: "
                     f"{e}", prec), False
    except ValueError as e:
        return _fail(x, f"cannot be certified: {e}", prec), False
    with flint_context(prec) as flint:
        m = D.hess.nrows()
        gnorm = _norm_upper(flint, D.grad)
        inertia = _inertia(flint, D.hess)
        common = dict(grad_norm_upper=gnorm, hessian_spread=2 * inertia["spread"], n_free=m,
                      lambda_min_lower=inertia["lower"], lambda_min_upper=inertia["upper"])
        if inertia["unresolved"]:
            return _fail(x, f"the Hessian is not proved nonsingular on the ball of radius "
                         f"{r:.3g}: {inertia['unresolved']} eigenvalue(s) within "
                         f"{inertia['rho']:.3g} of 0 (a singular Hessian: a continuous "
                         "symmetry or a critical manifold through x, or a degenerate point), "
                         f"{inertia['neg']} proved negative, {inertia['pos']} positive", prec,
                         **common), False
        Q, lam = inertia["Q"], inertia["lam"]
        A = flint.arb_mat(((Q / lam) @ Q.T).tolist())
        # |A|_2 <= |A - Q diag(1/lam) Q^T|_2 + |Q|_2^2 max 1/|lam|
        Qb = flint.arb_mat(Q.tolist())
        inv = flint.arb_mat(m, m)
        for i in range(m):
            inv[i, i] = 1 / flint.arb(float(lam[i]))
        norm_A = (flint.arb(_norm_upper(flint, A - Qb * inv * Qb.transpose()))
                  + (1 + flint.arb(inertia["eta"])) * max(abs(inv[i, i]).upper()
                                                          for i in range(m)))
        # q >= |I - A H(y)|_2 for every y: |I - A Hm|_2 + |A|_2 |H(y) - Hm|_2
        q = _up(flint.arb(_norm_upper(flint, _identity(flint, m) - A * inertia["Hm"]))
                + norm_A * flint.arb(inertia["spread"]))
        beta = _norm_upper(flint, A * D.grad)
        common["contraction"] = q
        if not q < 1:
            return _fail(x, f"no contraction on the ball of radius {r:.3g}: |I - A H| <= "
                         f"{q:.3g} is not < 1 (the Hessian varies too much over the ball)",
                         prec, **common), False
        rb, qb, bb = flint.arb(r), flint.arb(q), flint.arb(beta)
        if not bb + qb * rb <= rb:
            return _fail(x, f"the Newton step |A grad| <= {beta:.3g} is too large for the "
                         f"ball of radius {r:.3g} (contraction {q:.3g}): x may not be close "
                         "enough to a critical point", prec, **common), True
        dist = _up(bb / (1 - qb))
    neg = inertia["neg"]
    kind = "strict-minimum" if neg == 0 else "strict-saddle"
    what = (f"a unique critical point lies within {dist:.3g} of x (ball of radius {r:.3g}); "
            + (f"it is a strict minimum, lambda_min >= {inertia['lower']:.6g} on the ball"
               if neg == 0 else
               f"it is a strict saddle of index {neg}, lambda_min <= {inertia['upper']:.3g}"))
    if m < x.size:
        what += (f" (in the model's slice of {m} free coordinates, the other {x.size - m} fixed "
                 "at x: unique there, see Model.enclose_derivatives)")
    return Certificate(x=x, certified=True, kind=kind, index=neg, index_exact=True, radius=r,
                       distance_bound=min(dist, r), unique=True, prec=prec, message=what,
                       **common), False


# ---- points on a split manifold ---------------------------------------------------------------
def _certify_split(model, x, parent, radius, prec):
    pc = certify(parent.model, parent.x, prec=prec)
    if not pc.certified:
        return _fail(x, "x is a split of a point of the smaller model "
                     f"{parent.model!r}, which could not be certified: {pc.message}", prec)
    with flint_context(prec) as flint:
        R = _up(flint.arb(parent.deviation) + flint.arb(parent.lipschitz)
                * flint.arb(pc.distance_bound))
    if radius is not None and radius > R:
        R = radius
    try:
        D = model.enclose_derivatives(x, R, prec=prec)
    except NonDifferentiableError as e:
        return _fail(x, f"the ball of radius {R:.3g} reaches the non-differentiable set: "
                     f"{e}", prec)
    with flint_context(prec) as flint:
        m = D.hess.nrows()
        inertia = _inertia(flint, D.hess)
        common = dict(grad_norm_upper=_norm_upper(flint, D.grad), n_free=m,
                      hessian_spread=2 * inertia["spread"],
                      lambda_min_lower=inertia["lower"], lambda_min_upper=inertia["upper"])
    neg, pos = inertia["neg"], inertia["pos"]
    if neg == 0:
        return _fail(x, f"x lies on a split manifold ({parent.n_tangents} split "
                     f"direction(s)) of a certified {pc.kind} of {parent.model!r}; no negative "
                     f"curvature was proved on the ball of radius {R:.3g} ({pos} eigenvalues "
                     "proved positive): a degenerate point is not certified", prec, **common)
    exact = neg + pos + parent.n_tangents == m
    message = (f"a true critical point lies within {R:.3g} of x: the split of the certified "
               f"{pc.kind} of {parent.model!r} (within {pc.distance_bound:.3g} there); it is "
               f"a strict saddle, lambda_min <= {inertia['upper']:.3g} on the ball, index "
               + (f"{neg} (with {pos} positive eigenvalues and the {parent.n_tangents} null "
                  "direction(s) of the split manifold)" if exact else f">= {neg}")
               + "; not unique: it lies on a segment of critical points")
    return Certificate(x=x, certified=True, kind="strict-saddle", index=neg, index_exact=exact,
                       radius=R, distance_bound=R, unique=False, prec=prec, message=message,
                       **common)


# ---- rigorous linear algebra on ball matrices ------------------------------------------------
def _up(value):
    """A float >= the arb value (its upper bound rounded outwards)."""
    return float(np.nextafter(float(value.upper()), np.inf))


def _down(value):
    return float(np.nextafter(float(value.lower()), -np.inf))


def _identity(flint, m):
    eye = flint.arb_mat(m, m)
    for i in range(m):
        eye[i, i] = 1
    return eye


def _abs_upper(M):
    """Entrywise upper bounds of |M| as a float array (>= exact)."""
    rows, cols = M.nrows(), M.ncols()
    vals = [[float(M[i, j].abs_upper()) for j in range(cols)] for i in range(rows)]
    # arb returns its bounds as exact binary numbers; float() rounds to nearest: step up
    return np.nextafter(np.array(vals), np.inf)


def _norm_upper(flint, M):
    """An upper bound of |M|_2 (min of Frobenius and max row sum, symmetric or not: the
    row-sum bound sqrt(|M|_1 |M|_inf)), computed in ball arithmetic from float bounds."""
    B = _abs_upper(M)
    Bl = [[flint.arb(float(v)) for v in row] for row in B]
    fro = sum((v * v for row in Bl for v in row), flint.arb(0)).sqrt()
    rows = max((sum(row, flint.arb(0)) for row in Bl), key=lambda a: float(a.upper()))
    cols = max((sum((Bl[i][j] for i in range(len(Bl))), flint.arb(0))
                for j in range(len(Bl[0]))), key=lambda a: float(a.upper()))
    return min(_up(fro), _up((rows * cols).sqrt()))


def _inertia(flint, Hb):
    """Inertia and lambda_min bounds valid for every member of the ball matrix Hb.

    Hb = Hm + E with Hm the float midpoint and |E| <= R entrywise, so |E|_2 <= |R|_2 =: spread.
    M = Q^T Hm Q is enclosed tightly (point matrices); Weyl puts the eigenvalues of
    Q^T H(y) Q within |offdiag M|_2 + |Q|_2^2 spread of the diagonal of M.
    """
    m = Hb.nrows()
    Hm = np.array([[float(Hb[i, j].mid()) for j in range(m)] for i in range(m)])
    Hm = 0.5 * (Hm + Hm.T)
    Hmb = flint.arb_mat(Hm.tolist())
    spread = _norm_upper(flint, Hb - Hmb)
    lam, Q = np.linalg.eigh(Hm)
    Qb = flint.arb_mat(Q.tolist())
    Qt = Qb.transpose()
    M = Qt * Hmb * Qb
    eta = _norm_upper(flint, Qt * Qb - _identity(flint, m))
    out = dict(Q=Q, lam=lam, Hm=Hmb, spread=spread, eta=eta, gap=float(np.min(np.abs(lam))))
    if eta >= 1:                                  # Q not provably invertible
        out.update(neg=0, pos=0, unresolved=m, rho=float("inf"), lower=float("nan"),
                   upper=float("nan"))
        return out
    diag = [M[i, i] for i in range(m)]
    for i in range(m):
        M[i, i] = 0
    e = flint.arb(eta)
    rho = flint.arb(_norm_upper(flint, M)) + (1 + e) * flint.arb(spread)
    lo = [d.lower() - rho for d in diag]
    hi = [d.upper() + rho for d in diag]
    out.update(rho=_up(rho), neg=sum(1 for h in hi if h < 0), pos=sum(1 for v in lo if v > 0))
    out["unresolved"] = m - out["neg"] - out["pos"]
    low = min(lo, key=lambda a: float(a.lower()))
    low = low / (1 + e) if low > 0 else low / (1 - e)
    high = min(hi, key=lambda a: float(a.upper()))
    high = high / (1 + e) if high < 0 else high / (1 - e)
    out["lower"], out["upper"] = _down(low), _up(high)
    return out
