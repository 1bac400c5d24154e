"""Compiled (numba) first-order kernels of the teacher-student loss, and gradient descent fused
with them: many steps of one start in one compiled call.

The numpy kernels of :mod:`._kernels` are the reference; these compute the same numbers in the
same way (unit vectors, cosines by dot products, ``arccos`` where ``|cos| <= 0.9`` and the
half-angle formula of :meth:`PopulationLoss._near_pairs` elsewhere, self-pairs exact) and are
tested equal to them to 1e-13.  What they save is the batched program's overhead: a numpy step
of 500 starts at k = 12 makes ~40 array passes of (500, 12, 24) temporaries; here one start's
step is a few thousand fused multiply-adds on data that stays in the L1 cache, and a start that
has converged stops costing anything at once.

The loop :func:`advance` carries every per-start rule of :func:`landscape.descend` and
:func:`landscape.descend_and_polish`: the stopping tolerance, a hand-off threshold checked from
a given step on, the divergence rule (see ``DIVERGENCE_*`` in ``critical/descent.py``), the
plateau detector and the record points (loss and gradient norm).  It returns at the first event
of each start, and the Python driver decides what happens next.

numba is optional at run time: :data:`AVAILABLE` is False without it (or with the environment
variable ``LANDSCAPE_NUMBA=0``), and the drivers then use the numpy kernels.
"""

import math
import os

import numpy as np

try:                                     # pragma: no cover - exercised by the CI install
    import numba
except ImportError:                      # pragma: no cover
    numba = None

__all__ = ["AVAILABLE", "TeacherStudentKernel", "EVENTS"]

AVAILABLE = numba is not None and os.environ.get("LANDSCAPE_NUMBA", "1") != "0"

# Why advance() returned for a start (the reason array).
RUNNING, CONVERGED, DUE, NONDIFF, FAILED, MAXITER, FLUSH = range(7)
EVENTS = {CONVERGED: "converged", DUE: "due", NONDIFF: "non-differentiable",
          FAILED: "failed", MAXITER: "maxiter", FLUSH: "flush"}

_KAHAN_COS2 = 0.81            # |cos| > 0.9: the half-angle formula (as _kernels._KAHAN_COS)
_TINY_NORM = 1e-150           # as _kernels._TINY_NORM
_TWO_PI = 2.0 * math.pi
_INV_TWO_PI = 1.0 / _TWO_PI


def _jit(fn):
    if numba is None:
        return fn
    return numba.njit(cache=True, nogil=True, error_model="numpy")(fn)


# asin(x) = x + x R(x^2) on |x| <= 1/2, R a rational minimax approximation: the coefficients
# of fdlibm's e_asin.c / e_acos.c (Sun Microsystems, 1993; also in musl and FreeBSD's libm),
# accurate to < 1 ulp.  glibc's correctly rounded asin/acos cost ~17 ns a call, about half
# of a descent step at k = 12; these cost a few.
_PS0, _PS1, _PS2 = 1.66666666666666657415e-01, -3.25565818622400915405e-01, \
    2.01212532134862925881e-01
_PS3, _PS4, _PS5 = -4.00555345006794114027e-02, 7.91534994289814532176e-04, \
    3.47933107596021167570e-05
_QS1, _QS2, _QS3, _QS4 = -2.40339491173441421878e+00, 2.02094576023350569471e+00, \
    -6.88283971605453293030e-01, 7.70381505559019352791e-02


@_jit
def _asin_r(z):
    """R(z) of asin(x) = x + x R(x^2), 0 <= z <= 1/4."""
    p = z * (_PS0 + z * (_PS1 + z * (_PS2 + z * (_PS3 + z * (_PS4 + z * _PS5)))))
    q = 1.0 + z * (_QS1 + z * (_QS2 + z * (_QS3 + z * _QS4)))
    return p / q


@_jit
def _asin_small(x):
    """asin(x) for |x| <= 1/2."""
    return x + x * _asin_r(x * x)


@_jit
def _pi_minus_acos(c):
    """pi - arccos(c) for |c| <= 1, to about an ulp: fdlibm's two reductions (|c| <= 1/2:
    pi/2 + asin(c); else through asin(sqrt((1 - |c|) / 2)) = arccos(|c|) / 2) computed side by
    side and one selected, without a branch, so that a loop over many c vectorises."""
    a = abs(c)
    big = a > 0.5
    zb = 0.5 * (1.0 - a)
    z = zb if big else c * c
    t = math.sqrt(zb) if big else c
    r = t + t * _asin_r(z)
    return (math.pi - 2.0 * r if c > 0 else 2.0 * r) if big else 0.5 * math.pi + r


@_jit
def _dot4(u, v, lo, hi):
    """sum of u[j] v[j] over lo <= j < hi in four interleaved partial sums: a fixed order (the
    same on every CPU) without one long chain of dependent additions."""
    s0 = s1 = s2 = s3 = 0.0
    j = lo
    while j + 4 <= hi:
        s0 += u[j] * v[j]
        s1 += u[j + 1] * v[j + 1]
        s2 += u[j + 2] * v[j + 2]
        s3 += u[j + 3] * v[j + 3]
        j += 4
    while j < hi:
        s0 += u[j] * v[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


@_jit
def _scratch(k, d, Vbar, cV, cnV):
    """Per-call work arrays of one thread; the teacher's columns are filled here once.

    UT (d, k + n): unit vectors as columns (students, then teacher); Uc (k + n, d): the
    rows of the gradient's product (students, then -c_j v_j); cn (k + n,): |w_j|, then
    -c_j |v_j|; Wbar (k, d); S, PT, C (k, k + n): sin, pi - theta, cos of every pair;
    Gm (k, d).
    """
    nt = Vbar.shape[0]
    J = k + nt
    UT = np.empty((d, J))
    Uc = np.empty((J, d))
    cn = np.empty(J)
    for j in range(nt):
        for a in range(d):
            UT[a, k + j] = Vbar[j, a]
            Uc[k + j, a] = cV[j, a]
        cn[k + j] = cnV[j]
    return (UT, Uc, cn, np.empty(k), np.empty((k, d)), np.empty((k, J)), np.empty((k, J)),
            np.empty((k, J)), np.empty((k, d)))


@_jit
def _row_angles(x, k, d, UT, Uc, cn, nW, Wbar, S, PT, C):
    """Norms, unit vectors and the sin, pi - theta and cos of every pair of one start x.

    Returns False when a student is exactly zero (not differentiable; everything is still
    computed, the zero student with unit vector 0 and theta = pi/2 to every other row, so the
    loss is right there).  The cosines are one
    BLAS product ``Wbar @ [Wbar; Vbar]^T`` as in the numpy kernel; pairs with |cos| > 0.9 are
    redone by the half-angle formula of ``PopulationLoss._near_pairs``.
    """
    J = UT.shape[1]
    ok = True
    for i in range(k):
        n = math.sqrt(_dot4(x, x, i * d, i * d + d))
        if n < _TINY_NORM:                 # rescale, as row_norms does
            m = 0.0
            for a in range(d):
                m = max(m, abs(x[i * d + a]))
            if m > 0.0:
                s2 = 0.0
                for a in range(d):
                    t = x[i * d + a] / m
                    s2 += t * t
                n = m * math.sqrt(s2)
        nW[i] = n
        cn[i] = n
        if n == 0.0:
            ok = False
        inv = 1.0 / n if n > 0.0 else 0.0
        for a in range(d):
            Wbar[i, a] = x[i * d + a] * inv
            UT[a, i] = Wbar[i, a]
            Uc[i, a] = x[i * d + a]
    np.dot(Wbar, UT, C)
    # One branch-free pass over every pair, rows contiguous (both (i, j) and (j, i) of the
    # students: no strided mirror stores), which LLVM vectorises (vsqrtpd / vdivpd).  Pairs
    # with |cos| > 0.9 (NaN here where rounding put |cos| above 1) are redone after.
    for i in range(k):
        Ci, Si, Pi = C[i], S[i], PT[i]
        for j in range(J):
            c = Ci[j]
            Pi[j] = _pi_minus_acos(c)
            Si[j] = math.sqrt(1.0 - c * c)
    for i in range(k):
        for j in range(J):
            c = C[i, j]
            if c * c > _KAHAN_COS2 and j != i:
                e = 1.0 if c > 0 else -1.0
                h2 = 0.0
                for a in range(d):
                    t = e * UT[a, j] - Wbar[i, a]
                    h2 += t * t
                h = min(0.5 * math.sqrt(h2), 1.0)
                phi = 2.0 * _asin_small(h)        # h <= sin(13 deg) here
                S[i, j] = 2.0 * h * math.sqrt((1.0 - h) * (1.0 + h))
                C[i, j] = e * (1.0 - 2.0 * h * h)
                PT[i, j] = math.pi - phi if e > 0 else phi
        S[i, i], PT[i, i], C[i, i] = 0.0, math.pi, 1.0
    return ok


@_jit
def _row_value(x, k, d, const, want_loss, UT, Uc, cn, nW, Wbar, S, PT, C, Gm, g):
    """Gradient (into g) and, if want_loss, the loss of one start x (k * d,).

    Returns (ok, loss); ok is False when a student is exactly zero (not differentiable; the
    loss is still right).  The gradient's ``(pi - Theta) @ [W; -c V]`` is a BLAS product, as in the numpy kernel.
    """
    ok = _row_angles(x, k, d, UT, Uc, cn, nW, Wbar, S, PT, C)
    J = UT.shape[1]
    np.dot(PT, Uc, Gm)
    loss = 0.0
    for i in range(k):
        radial = _dot4(S[i], cn, 0, J)
        li = 0.0
        if want_loss:
            for j in range(k):
                li += (S[i, j] + PT[i, j] * C[i, j]) * 0.5 * cn[j]
            for j in range(k, J):
                li += (S[i, j] + PT[i, j] * C[i, j]) * cn[j]
        for a in range(d):
            g[i * d + a] = (Gm[i, a] + radial * Wbar[i, a]) * _INV_TWO_PI
        loss += nW[i] * li
    return ok, loss / _TWO_PI + const


@_jit
def _loss_batch(X, k, d, Vbar, cV, cnV, const, L):
    """Losses of the rows of X (right at zero students too)."""
    UT, Uc, cn, nW, Wbar, S, PT, C, Gm = _scratch(k, d, Vbar, cV, cnV)
    J = UT.shape[1]
    for b in range(X.shape[0]):
        _row_angles(X[b], k, d, UT, Uc, cn, nW, Wbar, S, PT, C)
        loss = 0.0
        for i in range(k):
            li = 0.0
            for j in range(k):
                li += (S[i, j] + PT[i, j] * C[i, j]) * 0.5 * cn[j]
            for j in range(k, J):
                li += (S[i, j] + PT[i, j] * C[i, j]) * cn[j]
            loss += nW[i] * li
        L[b] = loss / _TWO_PI + const


@_jit
def _unit_perp(UT, Wbar, i, j, c, d, out):
    """out = unit(ubar_j - c wbar_i) (0 where that vanishes); ubar_j is column j of UT."""
    q = 0.0
    for a in range(d):
        t = UT[a, j] - c * Wbar[i, a]
        out[a] = t
        q += t * t
    q = math.sqrt(q)
    for a in range(d):
        out[a] = out[a] / q if q > 0 else 0.0


@_jit
def _hvp_batch(X, U, k, d, Vbar, cV, cnV, const, out):
    """Hessian-vector products H(x_b) u_b of the rows of X and U into out, in O(k (k + n) d).

    ``PopulationLoss.hvp`` with unit output weights:
    ``(H u)_i = sum_l [(pi - t_il) u_l + sin t_il ((n_li . u_l) n_il + (wbar_l . u_l) wbar_i)]
    / (2 pi) + [S_i (u_i - (wbar_i . u_i) wbar_i) + sum_j gamma_ij (n_ij . u_i) n_ij]
    / (2 pi |w_i|)``.
    """
    UT, Uc, cn, nW, Wbar, S, PT, C, Gm = _scratch(k, d, Vbar, cV, cnV)
    J = UT.shape[1]
    q = np.empty(k)
    nil = np.empty(d)
    nli = np.empty(d)
    acc = np.empty(d)
    for b in range(X.shape[0]):
        u = U[b]
        o = out[b]
        if not _row_angles(X[b], k, d, UT, Uc, cn, nW, Wbar, S, PT, C):
            o[:] = np.nan
            continue
        for l in range(k):
            t = 0.0
            for a in range(d):
                t += Wbar[l, a] * u[l * d + a]
            q[l] = t
        for i in range(k):
            for a in range(d):
                acc[a] = math.pi * u[i * d + a]
            along_q = 0.0
            for l in range(k):
                if l == i:
                    continue
                p, sn = PT[i, l], S[i, l]
                for a in range(d):
                    acc[a] += p * u[l * d + a]
                if sn != 0.0:
                    _unit_perp(UT, Wbar, i, l, C[i, l], d, nil)     # n_il
                    _unit_perp(UT, Wbar, l, i, C[i, l], d, nli)     # n_li
                    along = 0.0
                    for a in range(d):
                        along += nli[a] * u[l * d + a]
                    for a in range(d):
                        acc[a] += sn * along * nil[a]
                    along_q += sn * q[l]
            Si = 0.0
            for a in range(d):
                o[i * d + a] = (acc[a] + along_q * Wbar[i, a]) / _TWO_PI
                acc[a] = 0.0
            for j in range(J):
                if j == i:
                    continue
                gam = cn[j] * S[i, j]
                Si += gam
                if gam != 0.0:
                    _unit_perp(UT, Wbar, i, j, C[i, j], d, nil)     # n_ij
                    proj = 0.0
                    for a in range(d):
                        proj += nil[a] * u[i * d + a]
                    for a in range(d):
                        acc[a] += gam * proj * nil[a]
            scale = 1.0 / (_TWO_PI * nW[i])
            for a in range(d):
                o[i * d + a] += (Si * (u[i * d + a] - q[i] * Wbar[i, a]) + acc[a]) * scale


@_jit
def _hess_batch(X, k, d, Vbar, cV, cnV, const, H, ok):
    """Dense Hessians of the rows of X into H (B, k d, k d); ok[b] False at a zero student.

    The blocks of ``PopulationLoss.hess`` with unit output weights:
    ``H_il = [(pi - t_il) I + sin t_il (n_il n_li^T + wbar_i wbar_l^T)] / (2 pi)`` (i != l),
    ``H_ii = I / 2 + [S_i (I - wbar_i wbar_i^T) + sum_j gamma_ij n_ij n_ij^T] / (2 pi |w_i|)``
    with ``gamma_ij = coef_j |u_j| sin t_ij``, ``n_ij = unit(ubar_j - cos t_ij wbar_i)``.
    """
    UT, Uc, cn, nW, Wbar, S, PT, C, Gm = _scratch(k, d, Vbar, cV, cnV)
    J = UT.shape[1]
    N = np.empty((k, J, d))
    Ns = np.empty((J, d))
    D = np.empty((d, d))
    for b in range(X.shape[0]):
        Hb = H[b]
        ok[b] = _row_angles(X[b], k, d, UT, Uc, cn, nW, Wbar, S, PT, C)
        if not ok[b]:
            Hb[:, :] = np.nan
            continue
        for i in range(k):
            for j in range(J):
                q = 0.0
                for a in range(d):
                    t = UT[a, j] - C[i, j] * Wbar[i, a]
                    N[i, j, a] = t
                    q += t * t
                q = math.sqrt(q)
                for a in range(d):
                    N[i, j, a] = N[i, j, a] / q if q > 0 else 0.0
        for i in range(k):
            for l in range(k):
                if l == i:
                    continue
                f = S[i, l] / _TWO_PI
                p = PT[i, l] / _TWO_PI
                for a in range(d):
                    r = i * d + a
                    na = f * N[i, l, a]
                    wa = f * Wbar[i, a]
                    for c in range(d):
                        Hb[r, l * d + c] = na * N[l, i, c] + wa * Wbar[l, c]
                    Hb[r, l * d + a] += p
            Si = 0.0
            for j in range(J):
                gam = cn[j] * S[i, j]
                Si += gam
                for a in range(d):
                    Ns[j, a] = gam * N[i, j, a]
            np.dot(Ns.T, N[i], D)
            scale = 1.0 / (_TWO_PI * nW[i])
            for a in range(d):
                r = i * d + a
                for c in range(d):
                    Hb[r, i * d + c] = (D[a, c] - Si * Wbar[i, a] * Wbar[i, c]) * scale
                Hb[r, r] += Si * scale + 0.5


@_jit
def _grad_batch(X, k, d, Vbar, cV, cnV, const, G, L, want_loss):
    """Gradients (and losses) of the rows of X (a gradient at a zero student is meaningless)."""
    UT, Uc, cn, nW, Wbar, S, PT, C, Gm = _scratch(k, d, Vbar, cV, cnV)
    for b in range(X.shape[0]):
        ok, L[b] = _row_value(X[b], k, d, const, want_loss, UT, Uc, cn, nW, Wbar, S, PT, C,
                              Gm, G[b])


@_jit
def _advance(active, X, k, d, Vbar, cV, cnV, const, lr, gtol, stop_below, check_from, it, max_it,
             g0, bound, last, streak, div_every, div_checks,
             plateau, factor, hi, lo, x_lo, at_lo, ev_at, ev_g, ev_x, ev_n,
             rec_at, rec_ptr, rec_loss, rec_g, rec_open, gn_out, reason):
    n = k * d
    UT, Uc, cn, nW, Wbar, S, PT, C, Gm = _scratch(k, d, Vbar, cV, cnV)
    g = np.empty(n)
    cap = ev_at.shape[1]
    R = rec_at.shape[0]
    for b in range(X.shape[0]):
        if not active[b]:
            continue
        x = X[b]
        reason[b] = RUNNING
        while True:
            if plateau and ev_n[b] == cap:
                reason[b] = FLUSH
                break
            t = it[b]
            recording = rec_ptr[b] < R and rec_at[rec_ptr[b]] == t
            checking = t > 0 and t % div_every == 0
            ok, loss = _row_value(x, k, d, const, recording or checking, UT, Uc, cn, nW, Wbar,
                                  S, PT, C, Gm, g)
            gn = math.sqrt(_dot4(g, g, 0, n)) if ok else np.nan
            finite = math.isfinite(gn)
            if plateau:
                gp = gn if finite else np.inf
                if math.isnan(hi[b]):                                 # the row's first point
                    hi[b], lo[b], at_lo[b] = gp, gp, t
                    for a in range(n):
                        x_lo[b, a] = x[a]
                elif lo[b] <= hi[b] / factor and gp >= lo[b] * factor:      # a dip, then a rise
                    e = ev_n[b]
                    ev_at[b, e], ev_g[b, e] = at_lo[b], lo[b]
                    for a in range(n):
                        ev_x[b, e, a] = x_lo[b, a]
                    ev_n[b] = e + 1
                    hi[b], lo[b], at_lo[b] = gp, gp, t
                elif gp > hi[b]:
                    hi[b], lo[b], at_lo[b] = gp, gp, t
                elif gp < lo[b]:
                    lo[b], at_lo[b] = gp, t
                    for a in range(n):
                        x_lo[b, a] = x[a]
            if recording:
                p = rec_ptr[b]
                rec_loss[p, b], rec_g[p, b], rec_open[p, b] = loss, gn, True
                rec_ptr[b] = p + 1
            gn_out[b] = gn
            if not ok:
                reason[b] = NONDIFF
                break
            if not finite:
                reason[b] = FAILED
                break
            # the divergence rule of critical/descent.py (Divergence.check)
            if t == 0 and math.isnan(g0[b]):
                g0[b] = gn
            elif checking:
                if gn > g0[b]:
                    rising = not (loss <= bound[b]) and not (loss <= last[b])
                    streak[b] = streak[b] + 1 if rising else 0
                    last[b] = loss
                    if not math.isfinite(loss) or streak[b] >= div_checks:
                        reason[b] = FAILED
                        break
                else:
                    streak[b] = 0
            if gn <= gtol:
                reason[b] = CONVERGED
                break
            if gn <= stop_below[b] and t >= check_from[b]:
                reason[b] = DUE
                break
            if t >= max_it[b]:
                reason[b] = MAXITER
                break
            for a in range(n):
                x[a] -= lr * g[a]
            it[b] = t + 1


class TeacherStudentKernel:
    """The compiled first-order kernel of a teacher-student population loss (unit output weights).

    Built by :meth:`ReluTeacherStudent.fused_kernel`; holds the teacher's precomputed blocks.
    """

    def __init__(self, k, d, Vbar, cV, cnV, const):
        self.k, self.d = int(k), int(d)
        self.Vbar = np.ascontiguousarray(Vbar, dtype=float)
        self.cV = np.ascontiguousarray(cV, dtype=float)
        self.cnV = np.ascontiguousarray(cnV, dtype=float)
        self.const = float(const)

    def grad(self, X, want_loss=False, out=None):
        """(G, L) for the rows of X (B, k * d): gradients (into `out` if given) and, if
        want_loss, losses."""
        X = np.ascontiguousarray(X, dtype=float)
        G = np.empty_like(X) if out is None else out
        L = np.empty(X.shape[0])
        _grad_batch(X, self.k, self.d, self.Vbar, self.cV, self.cnV, self.const, G, L,
                    bool(want_loss))
        return G, L

    def loss(self, X):
        """Losses (B,) of the rows of X."""
        X = np.ascontiguousarray(X, dtype=float)
        L = np.empty(X.shape[0])
        _loss_batch(X, self.k, self.d, self.Vbar, self.cV, self.cnV, self.const, L)
        return L

    def hess(self, X):
        """Dense Hessians (B, k d, k d) of the rows of X (NaN rows at a zero student)."""
        X = np.ascontiguousarray(X, dtype=float)
        n = self.k * self.d
        H = np.empty((X.shape[0], n, n))
        ok = np.empty(X.shape[0], dtype=np.bool_)
        _hess_batch(X, self.k, self.d, self.Vbar, self.cV, self.cnV, self.const, H, ok)
        return H

    def hvp(self, X, U):
        """Hessian-vector products (B, k d) of the rows of X and U (NaN rows at a zero student)."""
        X = np.ascontiguousarray(X, dtype=float)
        U = np.ascontiguousarray(U, dtype=float)
        out = np.empty_like(X)
        _hvp_batch(X, U, self.k, self.d, self.Vbar, self.cV, self.cnV, self.const, out)
        return out

    def advance(self, run, active, stop_below, check_from, gn, reason):
        """Descend the rows of ``run`` (a :class:`landscape.critical.advance.DescentRun`) that
        are `active` until each one's first event; see the module docstring."""
        _advance(active, run.X, self.k, self.d, self.Vbar, self.cV, self.cnV, self.const,
                 run.lr, run.gtol, stop_below, check_from, run.it, run.max_it,
                 run.g0, run.bound, run.last, run.streak, run.div_every, run.div_checks,
                 run.plateau_on, run.factor, run.hi, run.lo, run.x_lo, run.at_lo,
                 run.ev_at, run.ev_g, run.ev_x, run.ev_n,
                 run.rec_at, run.rec_ptr, run.rec_loss, run.rec_g, run.rec_open, gn, reason)
