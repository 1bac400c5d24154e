"""Ball arithmetic (python-flint ``arb``) for the closed forms of the population losses.

The certified counterpart of :class:`landscape.models._kernels.PopulationLoss`: the same
formulas, evaluated on balls so that every rounding and every point of a box is accounted
for.  :func:`landscape.certify` uses two enclosures per model:

* the gradient at the float point x itself (balls of radius 0 in, a tight ball out);
* the Hessian over the whole box ``|y_p - x_p| <= r`` (balls of radius r in): for every y
  in the box, H(y) lies entrywise in the returned ball matrix.

The loss is only C^2 where two neurons (or a neuron and a teacher neuron) are parallel
or antiparallel: the unit vector ``n_ij = unit(ubar_j - cos t wbar_i)`` is not defined at
t = 0 or pi.  Every n in the formulas is multiplied by ``sin t``, and ``|n| <= 1``: where the
enclosure of sin t reaches 0 each entry of n is enclosed by [-1, 1] (the term
``|u| sin t n n^T / |w|`` is then enclosed by a matrix of norm <= ``|u| sin t_max d / |w|``;
no division by sin t).  A box that reaches a zero neuron raises
:class:`~landscape.NonDifferentiableError`.

Nothing here knows about solvers.
"""

import contextlib
import dataclasses

import numpy as np

from ..errors import NonDifferentiableError

__all__ = ["BallDerivatives", "SplitParent", "PRECISION", "flint_context",
           "ball_population_derivatives", "arb_norm", "split_deviation"]

#: Working precision (bits) of the enclosures: twice float64, so that rounding inside the
#: enclosure is far below the float64 data it encloses.
PRECISION = 106


@dataclasses.dataclass(frozen=True)
class BallDerivatives:
    """Rigorous enclosures of a model's derivatives (the optional model contract of certify).

    Attributes
    ----------
    free : ndarray of int, shape (m,)
        The coordinates of x the enclosures refer to (all of them, or a slice transversal to
        a continuous symmetry; the other coordinates stay fixed at x).
    grad : flint.arb_mat of shape (m, 1)
        Encloses the gradient (in the free coordinates) at x exactly.
    hess : flint.arb_mat of shape (m, m)
        Encloses the Hessian (free coordinates) at every point of the box of half-width
        ``radius`` around x (in the free coordinates).
    radius : float
    """

    free: np.ndarray
    grad: object
    hess: object
    radius: float


@dataclasses.dataclass(frozen=True)
class SplitParent:
    """A point on a split manifold seen from the smaller model it is a split of.

    ``lift`` maps the parent's critical points to critical points of the model (each group
    of collinear neurons is the parent's neuron times fixed fractions summing to 1).

    Attributes
    ----------
    model : Model
        The smaller model (one neuron per group).
    x : ndarray
        The parent point (each group summed).
    deviation : float
        Rigorous upper bound of |x - lift(parent x)| (x is collinear up to rounding).
    lipschitz : float
        Rigorous upper bound of the Lipschitz constant of ``lift`` (<= 1).
    n_tangents : int
        Dimension of the split manifold through x (sum of group sizes - 1).
    """

    model: object
    x: np.ndarray
    deviation: float
    lipschitz: float
    n_tangents: int


@contextlib.contextmanager
def flint_context(prec=PRECISION):
    """python-flint's working precision set to ``prec`` bits inside the block."""
    import flint

    old = flint.ctx.prec
    flint.ctx.prec = prec
    try:
        yield flint
    finally:
        flint.ctx.prec = old


def arb_norm(v):
    """Euclidean norm of a list of arb balls (an enclosure, never below 0)."""
    import flint

    s = flint.arb(0)
    for t in v:
        s += t * t
    return s.nonnegative_part().sqrt()


def _pair(flint, wbar, ubar, d):
    """cos t, sin t, pi - t and an enclosure of n = unit(ubar - cos t wbar) for one pair."""
    arb = flint.arb
    c = sum((wbar[a] * ubar[a] for a in range(d)), arb(0)).intersection(arb(0, 1))
    p = [ubar[a] - c * wbar[a] for a in range(d)]
    s = arb_norm(p).intersection(arb(0.5, 0.5))            # sin t in [0, 1]
    pi = arb.pi()
    if c > 0:
        pt = pi - (s / c).atan()
    elif c < 0:
        pt = (s / -c).atan()
    else:                                                     # |cos| small: sin t near 1
        pt = pi / 2 + (c / s).atan()
    unit = arb(0, 1)
    if s > 0:
        n = [(pa / s).intersection(unit) for pa in p]
    else:                      # t may be 0 or pi in the box: only |n_a| <= 1 is known
        n = [unit] * d
    return c, s, pt, n


def ball_population_derivatives(a, W, V, c, beta, radius, *, prec=PRECISION):
    """Enclosures of the W-gradient at (a, W) and of the W-Hessian over a box, a fixed.

    The loss is ``L = 1/2 E[(sum_i a_i sigma(w_i.x) - sum_j c_j sigma(v_j.x) - beta.x)^2]``
    (unit output weights a = 1 give the teacher-student loss).  The formulas are those of
    :class:`~landscape.models._kernels.PopulationLoss`: with ``coef = [a, -c]``, ``U = [W; V]``,

    * ``g_i = a_i [sum_j coef_j ((pi - t_ij) u_j + |u_j| sin t_ij wbar_i) / (2 pi) - beta / 2]``
    * ``H_il = a_i a_l [(pi - t_il) I + sin t_il (n_il n_li^T + wbar_i wbar_l^T)] / (2 pi)``
      for i != l, and ``H_ii = a_i^2 I / 2 + a_i [S_i (I - wbar_i wbar_i^T) + sum_j gamma_ij
      n_ij n_ij^T] / (2 pi |w_i|)``, ``gamma_ij = coef_j |u_j| sin t_ij``, ``S_i = sum_j
      gamma_ij``.

    Parameters
    ----------
    a : ndarray of shape (k,)
        Output weights (exact: not part of the box).
    W : ndarray of shape (k, d)
    V : ndarray of shape (n, d); c : ndarray of shape (n,); beta : ndarray of shape (d,)
    radius : float
        Half-width of the box around W for the Hessian enclosure.

    Returns
    -------
    grad : flint.arb_mat of shape (k d, 1)
    hess : flint.arb_mat of shape (k d, k d)

    Raises
    ------
    NonDifferentiableError
        If the box reaches a zero neuron (the non-differentiable set).
    """
    with flint_context(prec) as flint:
        grad = _gradient(flint, a, W, V, c, beta)
        hess = _hessian(flint, a, W, V, c, radius)
    return grad, hess


def _rows(flint, M, radius):
    return [[flint.arb(float(v), radius) if radius else flint.arb(float(v)) for v in row]
            for row in M]


def _geometry(flint, a, W, V, c, radius):
    """Norms and unit vectors of the student rows (balls of half-width radius) and teachers."""
    k, d = W.shape
    Wb = _rows(flint, W, radius)
    nW = [arb_norm(w) for w in Wb]
    zero = [i for i in range(k) if not nW[i] > 0]
    if zero:
        what = "is zero" if radius == 0 else f"can reach zero within {radius:.3g}"
        raise NonDifferentiableError(f"student neuron(s) {zero} {what}: the loss is not "
                                     "differentiable there", zero)
    Vb = _rows(flint, V, 0.0)
    nV = [arb_norm(v) for v in Vb]
    U = Wb + Vb
    nU = nW + nV
    Ubar = [[t / nU[j] for t in U[j]] if nU[j] > 0 else [flint.arb(0)] * d
            for j in range(len(U))]
    coef = [flint.arb(float(t)) for t in a] + [flint.arb(-float(t)) for t in c]
    return Wb, nW, U, nU, Ubar, coef


def _gradient(flint, a, W, V, c, beta):
    k, d = W.shape
    Wb, nW, U, nU, Ubar, coef = _geometry(flint, a, W, V, c, 0.0)
    two_pi = 2 * flint.arb.pi()
    out = flint.arb_mat(k * d, 1)
    for i in range(k):
        acc = [flint.arb(0)] * d
        radial = flint.arb(0)
        for j in range(len(U)):
            if nU[j].is_zero():
                continue                              # a zero teacher row contributes 0
            if j == i:
                ct, s, pt = flint.arb(1), flint.arb(0), flint.arb.pi()
            else:
                ct, s, pt, _ = _pair(flint, Ubar[i], Ubar[j], d)
            w = coef[j] * pt
            acc = [acc[b] + w * U[j][b] for b in range(d)]
            radial += coef[j] * nU[j] * s
        for b in range(d):
            out[i * d + b, 0] = coef[i] * ((acc[b] + radial * Ubar[i][b]) / two_pi
                                           - flint.arb(float(beta[b])) / 2)
    return out


def _hessian(flint, a, W, V, c, radius):
    k, d = W.shape
    arb = flint.arb
    Wb, nW, U, nU, Ubar, coef = _geometry(flint, a, W, V, c, radius)
    two_pi = 2 * arb.pi()
    J = len(U)
    pairs = {}
    for i in range(k):
        for j in range(J):
            if j != i and nU[j] > 0:
                pairs[i, j] = _pair(flint, Ubar[i], Ubar[j], d)
    rows = [[None] * (k * d) for _ in range(k * d)]
    for i in range(k):
        wi = Ubar[i]
        # diagonal block: a_i^2 I / 2 + a_i [S (I - wbar wbar^T) + sum_j gamma n n^T] / (2 pi |w_i|)
        S = arb(0)
        Nrows, gam = [], []
        for j in range(J):
            if (i, j) in pairs:
                _, s, _, n = pairs[i, j]
                g = coef[j] * nU[j] * s
                S += g
                gam.append(g)
                Nrows.append(n)
        scale = coef[i] / (two_pi * nW[i])
        if Nrows:
            N = flint.arb_mat(Nrows)                          # (J', d)
            GN = flint.arb_mat([[gam[r] * N[r, b] for b in range(d)] for r in range(len(gam))])
            NGN = N.transpose() * GN
        half = coef[i] * coef[i] / 2
        for p in range(d):
            row = rows[i * d + p]
            for q in range(d):
                v = S * ((1 if p == q else 0) - wi[p] * wi[q])
                if Nrows:
                    v += NGN[p, q]
                v = scale * v
                if p == q:
                    v += half
                row[i * d + q] = v
        # off-diagonal blocks (i, l), l != i
        for l in range(k):
            if l == i:
                continue
            _, s, pt, n_il = pairs[i, l]
            n_li = pairs[l, i][3]
            f = coef[i] * coef[l] / two_pi
            sf = s * f
            sn = [sf * t for t in n_il]
            sw = [sf * t for t in wi]
            diag = f * pt
            wl = Ubar[l]
            for p in range(d):
                row = rows[i * d + p]
                snp, swp = sn[p], sw[p]
                for q in range(d):
                    v = snp * n_li[q] + swp * wl[q]
                    if p == q:
                        v += diag
                    row[l * d + q] = v
    return flint.arb_mat(rows)


def split_deviation(W, merged, groups, *, prec=PRECISION):
    """Rigorous |W - lift(merged)| and the Lipschitz constant of the lift.

    A group g of rows is lifted from its merged row u (``merged[g[0]]``, the float row of the
    parent point, whose sum is rounded) as ``t_a u`` with ``t_a = |w_a| / sum |w_b|`` for all
    members but the last and ``t_last = 1 - sum of the others`` (exact in ball arithmetic, so
    that the fractions sum to 1 and the lift of a critical point is critical).  Rows outside
    the groups are the parent's own.

    Returns
    -------
    deviation, lipschitz : float
        Upper bounds (rounded outwards).
    """
    with flint_context(prec) as flint:
        arb = flint.arb
        dev2 = arb(0)
        lip2 = arb(0)
        for g in groups:
            Wg = [[arb(float(v)) for v in W[a]] for a in g]
            u = [arb(float(v)) for v in merged[g[0]]]
            norms = [float(np.linalg.norm(W[a])) for a in g]
            t = [arb(v) / arb(float(sum(norms))) for v in norms[:-1]]
            t.append(1 - sum(t, arb(0)))
            if not t[-1] > 0:
                raise ValueError("a group of collinear neurons has a non-positive fraction")
            for r in range(len(g)):
                dev2 += sum(((Wg[r][b] - t[r] * u[b]) ** 2 for b in range(W.shape[1])), arb(0))
            lip2 = lip2.max(sum((tr * tr for tr in t), arb(0)))
        dev = dev2.nonnegative_part().sqrt()
        lip = arb(1).max(lip2.nonnegative_part().sqrt())
        return (float(np.nextafter(float(dev.upper()), np.inf)),
                float(np.nextafter(float(lip.upper()), np.inf)))
