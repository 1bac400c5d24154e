"""Arc-cosine kernel, stable pairwise angles and the exact derivative blocks.

Everything here is vectorised over a leading batch axis B and over all neuron
pairs at once; nothing knows about solvers.

Notation (DESIGN.md): x ~ N(0, I_d), sigma = ReLU, theta = angle(w, u),
``kappa(w, u) = E[sigma(w.x) sigma(u.x)] = |w||u| (sin t + (pi - t) cos t) / (2 pi)``.

Stable angles
-------------
Cosines come from one batched Gram product (BLAS).  Where ``|cos| <= 0.9`` the
angle ``atan2(sqrt(1 - c^2), c)`` is accurate to a few ulps.  Near-parallel
and near-antiparallel pairs, where ``arccos`` of a rounded cosine loses half the
digits (an error of 1e-8 rad at theta ~ 0), are recomputed from the unit vectors
with Kahan's formula ``theta = 2 atan2(|a - u|, |a + u|)`` (second order) or its
one-norm twin ``theta = 2 asin(|a - e u| / 2)``, ``e = sign(cos)`` (first order),
both accurate for every angle.  A neuron paired with itself gets theta = 0 exactly.

Exact limits at theta = 0 and theta = pi: every block below is written so that
the factors which vanish there (sin theta, pi - theta, the perpendicular
component) multiply bounded unit vectors; the unit vector of a zero
perpendicular component is taken as 0, which gives the exact limit.
"""

import math
import threading

import numpy as np

__all__ = ["row_norms", "pair_angles", "arccos_kernel", "unit_perpendiculars", "PopulationLoss"]

TWO_PI = 2.0 * np.pi
# Pairs with |cos theta| above this get their angle from Kahan's formula.
_KAHAN_COS = 0.9
# Below this norm the sum of squares may underflow; such rows are rescaled.
_TINY_NORM = 1e-150


class _Workspace(threading.local):
    """Per-thread scratch buffers of the first-order path, reused across calls.

    The temporaries of a row chunk are a few hundred kilobytes each, above glibc's
    mmap threshold: allocated afresh on every call they cost a page fault per 4 KiB
    (more than the arithmetic).  A buffer only grows; what it holds is scratch
    and never returned to a caller.
    """

    def __init__(self):
        self.buffers = {}

    def get(self, name, shape, dtype=np.float64):
        size = math.prod(shape)
        buf = self.buffers.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = self.buffers[name] = np.empty(size, dtype=dtype)
        return buf[:size].reshape(shape)


_scratch = _Workspace()


def row_norms(A):
    """Euclidean norms of the rows of A (..., d), robust to underflow."""
    n = np.sqrt(np.einsum("...d,...d->...", A, A))
    tiny = n < _TINY_NORM
    if np.any(tiny):
        rows = A[tiny]
        scale = np.max(np.abs(rows), axis=-1)
        safe = np.where(scale > 0, scale, 1.0)
        n[tiny] = scale * np.sqrt(np.einsum("...d,...d->...", rows / safe[:, None],
                                            rows / safe[:, None]))
    return n


def _units(A, nA, out=None):
    """Rows of A scaled to unit length; zero rows stay zero."""
    safe = np.where(nA > 0, nA, 1.0)
    return np.divide(A, safe[..., None], out=out)


def pair_angles(A, U, nA, nU, *, self_pairs=False):
    """Cosine, sine and angle of every pair (A[b, i], U[b, j]).

    Parameters
    ----------
    A : ndarray of shape (B, p, d)
    U : ndarray of shape (B, q, d) or (1, q, d)
    nA, nU : ndarray of shape (B, p), (B or 1, q)
        Row norms of A and U.
    self_pairs : bool
        The first p rows of U are the rows of A: the pairs (i, i) get theta = 0
        exactly, without the Kahan correction.

    Returns
    -------
    cos, sin, theta : ndarray of shape (B, p, q)
        theta in [0, pi].  Pairs involving a zero row get theta = pi/2 (any
        value would do: every kernel term carries the zero norm as a factor).
    """
    G = A @ np.swapaxes(U, -1, -2)
    denom = nA[..., :, None] * nU[..., None, :]
    positive = denom > 0
    c = np.divide(G, denom, out=np.zeros_like(G), where=positive)
    np.clip(c, -1.0, 1.0, out=c)
    s = np.sqrt(np.maximum(0.0, (1.0 - c) * (1.0 + c)))
    theta = np.arctan2(s, c)
    near = (np.abs(c) > _KAHAN_COS) & positive
    if self_pairs:
        p = A.shape[1]
        diag = (slice(None), np.arange(p), np.arange(p))
        near[diag] = False
        c[diag], s[diag], theta[diag] = 1.0, 0.0, 0.0
    if np.any(near):
        b, i, j = np.nonzero(near)
        Ub = np.broadcast_to(U, (A.shape[0],) + U.shape[1:])
        nUb = np.broadcast_to(nU, (A.shape[0],) + nU.shape[1:])
        a = A[b, i] / nA[b, i, None]
        u = Ub[b, j] / nUb[b, j, None]
        t = 2.0 * np.arctan2(np.sqrt(np.einsum("nd,nd->n", a - u, a - u)),
                             np.sqrt(np.einsum("nd,nd->n", a + u, a + u)))
        theta[near] = t
        c[near] = np.cos(t)
        s[near] = np.sin(t)
    return c, s, theta


def arccos_kernel(nA, nU, c, s, theta):
    """kappa for every pair: |a||u| (sin t + (pi - t) cos t) / (2 pi), shape (B, p, q)."""
    return nA[..., :, None] * nU[..., None, :] * (s + (np.pi - theta) * c) / TWO_PI


def unit_perpendiculars(Abar, Ubar, c):
    """n[b, i, j] = unit(Ubar[b, j] - c[b, i, j] Abar[b, i]), shape (B, p, q, d).

    The unit vector of U's component perpendicular to A; 0 where that component
    vanishes (theta = 0 or pi), which yields the exact limits of the blocks.
    """
    P = Ubar[..., None, :, :] - c[..., None] * Abar[..., :, None, :]
    nP = np.sqrt(np.einsum("...d,...d->...", P, P))
    return np.divide(P, nP[..., None], out=np.zeros_like(P), where=nP[..., None] > 0)


class PopulationLoss:
    """L(a, W) = 1/2 E[(sum_i a_i sigma(w_i.x) - sum_j c_j sigma(v_j.x) - beta.x)^2].

    The shared engine of :class:`~landscape.ReluTeacherStudent` (a = 1, beta = 0)
    and :class:`~landscape.TwoLayerReLU`.  All methods take batches
    ``a : (B, k)``, ``W : (B, k, d)`` and assume no student neuron is zero when
    derivatives are asked for.

    Notes
    -----
    With U = [W; V] and signed coefficients ``coef = [a, -c]`` the derivatives are

    * ``grad_a_i = sum_j coef_j kappa(w_i, u_j) - beta.w_i / 2``
    * ``grad_w_i = a_i g_i``, ``g_i = sum_j coef_j d1kappa(w_i, u_j) - beta / 2``,
      ``d1kappa(w, u) = ((pi - t) u + |u| sin t wbar) / (2 pi)``; the pair (i, i)
      contributes ``a_i w_i / 2`` (theta = 0), the derivative of kappa(w, w)/2.
    * ``H_{w_i w_l} = a_i a_l h2(w_i, w_l) + [i = l] a_i D_i``, with
      ``h2(w_i, w_l) = [(pi - t) I + sin t (n_il n_li^T + wbar_i wbar_l^T)] / (2 pi)``
      (``h2(w, w) = I/2``) and
      ``D_i = [S_i (I - wbar_i wbar_i^T) + sum_j gamma_ij n_ij n_ij^T] / (2 pi |w_i|)``,
      ``gamma_ij = coef_j |u_j| sin t_ij``, ``S_i = sum_j gamma_ij``,
      ``n_ij = unit(ubar_j - cos t_ij wbar_i)``.
    * ``H_{a_i a_l} = kappa(w_i, w_l)``, ``H_{a_i w_l} = a_l d1kappa(w_l, w_i) + [i = l] g_i``.

    The h1 block ``|u| sin t / (2 pi |w|) (I - wbar wbar^T + n n^T)`` is the Hessian of
    kappa(w, u) in w (Safran & Shamir 2018, Brutzkus & Globerson 2017); the
    formulas are checked against autograd and finite differences in the tests.
    """

    def __init__(self, V, c, beta):
        self.V = V                       # (n, d) teacher rows, possibly n = 0
        self.c = c                       # (n,)
        self.beta = beta                 # (d,)
        self.nV = row_norms(V)
        self.Vbar = _units(V, self.nV)
        KV = arccos_kernel(self.nV[None], self.nV[None],
                           *pair_angles(V[None], V[None], self.nV[None], self.nV[None]))[0]
        self.constant = 0.5 * (c @ KV @ c + c @ (V @ beta) + beta @ beta)
        # Precomputed teacher blocks of the first-order path.
        self._VbarT = np.ascontiguousarray(self.Vbar.T)
        self._cV = -c[:, None] * V
        self._cnV = -c * self.nV

    # -- shared pair data ------------------------------------------------------------
    def _pairs(self, a, W):
        B, k, _ = W.shape
        U = np.concatenate([W, np.broadcast_to(self.V, (B,) + self.V.shape)], axis=1)
        nW = row_norms(W)
        nU = np.concatenate([nW, np.broadcast_to(self.nV, (B, self.V.shape[0]))], axis=1)
        cos, sin, theta = pair_angles(W, U, nW, nU, self_pairs=True)
        coef = np.concatenate([a, np.broadcast_to(-self.c, (B, self.V.shape[0]))], axis=1)
        return U, nW, nU, cos, sin, theta, coef

    def _g(self, W, U, nW, nU, sin, theta, coef):
        """g_i = sum_j coef_j d1kappa(w_i, u_j) - beta/2, shape (B, k, d)."""
        lin = ((np.pi - theta) * coef[:, None, :]) @ U
        radial = np.einsum("bij,bj->bi", sin, coef * nU)
        return (lin + radial[..., None] * _units(W, nW)) / TWO_PI - 0.5 * self.beta

    # -- first order: the hot path of descent ------------------------------------------
    def _angles(self, W):
        """Angles of all (student, student) and (student, teacher) pairs, (B, k, k + n).

        Returns ``nW, Wbar, cos, sin, pt`` with ``pt = pi - theta``; all but ``nW``
        are per-thread scratch, valid until the next call.  The lean twin of
        :func:`pair_angles` for the first-order path: unit vectors once, every cosine
        from one batched product against ``[Wbar; Vbar]``, then ``sqrt(1 - c^2)`` and
        ``arccos`` (accurate to a few ulps where ``|c| <= 0.9``), self-pairs exact and
        the remaining near-(anti)parallel pairs redone by :meth:`_near_pairs`.  No
        clipping is needed: a rounded cosine can leave [-1, 1] only in a pair redone there.
        """
        B, k, d = W.shape
        J = k + self.V.shape[0]
        nW = row_norms(W)
        Wbar = _units(W, nW, out=_scratch.get("Wbar", (B, k, d)))
        UbarT = _scratch.get("UbarT", (B, d, J))
        UbarT[:, :, :k] = np.swapaxes(Wbar, 1, 2)
        UbarT[:, :, k:] = self._VbarT
        cos = np.matmul(Wbar, UbarT, out=_scratch.get("cos", (B, k, J)))
        sin = np.multiply(cos, cos, out=_scratch.get("sin", (B, k, J)))
        near = np.greater(sin, _KAHAN_COS**2, out=_scratch.get("near", (B, k, J), bool))
        np.subtract(1.0, sin, out=sin)
        with np.errstate(invalid="ignore"):       # only in pairs redone below
            np.sqrt(sin, out=sin)
            pt = np.arccos(cos, out=_scratch.get("pt", (B, k, J)))
        np.subtract(np.pi, pt, out=pt)
        ar = np.arange(k)
        cos[:, ar, ar], sin[:, ar, ar], pt[:, ar, ar] = 1.0, 0.0, np.pi
        near[:, ar, ar] = False
        if near.any():
            self._near_pairs(np.flatnonzero(near), Wbar, cos, sin, pt)
        return nW, Wbar, cos, sin, pt

    def _near_pairs(self, flat, Wbar, cos, sin, pt):
        """Redo the pairs at flat indices of (B, k, J) with |cos| > 0.9 from unit vectors.

        With ``e = sign(cos)`` and ``h = |e u - w| / 2 = sin(phi / 2)``, ``phi`` the angle
        between w and e u (below 26 degrees here), ``phi = 2 asin(h)`` to a few ulps for
        every angle, ``sin t = 2 h sqrt(1 - h^2)``, ``cos t = e (1 - 2 h^2)`` and
        ``pi - t = pi - phi`` (e = 1) or ``phi`` (e = -1).  Kahan's ``2 atan2(|w - u|,
        |w + u|)`` gives the same angle at twice the cost.
        """
        k, d = Wbar.shape[1:]
        J = cos.shape[2]
        row, j = np.divmod(flat, J)               # row = b k + i
        # Partners index one table: the student units of the chunk, then the teacher's.
        table = np.concatenate([Wbar.reshape(-1, d), self.Vbar])
        w = table.take(row, axis=0)
        u = table.take(np.where(j < k, row - row % k + j, Wbar.shape[0] * k + j - k), axis=0)
        e = np.sign(cos.take(flat))                 # never 0: |cos| > 0.9
        u *= e[:, None]
        u -= w
        h = np.sqrt(np.einsum("nd,nd->n", u, u))
        h *= 0.5
        np.minimum(h, 1.0, out=h)
        phi = 2.0 * np.arcsin(h)
        np.put(sin, flat, 2.0 * h * np.sqrt((1.0 - h) * (1.0 + h)))
        np.put(cos, flat, e * (1.0 - 2.0 * h * h))
        np.put(pt, flat, np.where(e > 0, np.pi - phi, phi))

    def _kernel_rows(self, anW, cos, sin, pt):
        """r_i = sum_j coef_j kappa(w_i, u_j) / |w_i| for every student, (B, k).

        ``anW`` holds a_i |w_i| (B, k).
        """
        k = anW.shape[1]
        f = sin + pt * cos
        r = np.einsum("bij,bj->bi", f[:, :, :k], anW)
        if self.V.shape[0]:
            r += f[:, :, k:] @ self._cnV
        return r / TWO_PI

    # -- loss and gradient -----------------------------------------------------------
    def loss(self, a, W):
        """Losses (B,); ``a = None`` means unit output weights.

        ``L = sum_i a_i |w_i| [sum_l a_l |w_l| f_il / 2 - sum_j c_j |v_j| f_ij] / (2 pi)
        - a.(W beta) / 2 + const`` with ``f = sin t + (pi - t) cos t``.
        """
        B, k, _ = W.shape
        nW, _, cos, sin, pt = self._angles(W)
        anW = nW if a is None else a * nW
        weights = _scratch.get("weights", (B, k + self.V.shape[0]))
        np.multiply(0.5, anW, out=weights[:, :k])
        weights[:, k:] = self._cnV
        f = np.multiply(pt, cos, out=pt)
        f += sin
        loss = np.einsum("bi,bij,bj->b", anW, f, weights) / TWO_PI + self.constant
        if np.any(self.beta):
            aW = W if a is None else a[..., None] * W
            loss -= 0.5 * np.einsum("bid,d->b", aW, self.beta)
        return loss

    def grad(self, a, W, with_a, out=None):
        """(grad_a (B, k) or None, grad_W (B, k, d)); ``a = None`` means unit output weights.

        ``out`` (B, k, d), if given, receives grad_W.

        ``g_i = [sum_j (pi - t_ij) coef_j u_j + (sum_j sin t_ij coef_j |u_j|) wbar_i] / (2 pi)
        - beta / 2`` as two batched products against ``[a W; -c V]`` and ``[a |W|; -c |V|]``.
        """
        B, k, d = W.shape
        J = k + self.V.shape[0]
        nW, Wbar, cos, sin, pt = self._angles(W)
        Uc = _scratch.get("Uc", (B, J, d))
        cn = _scratch.get("cn", (B, J, 1))
        if a is None:
            Uc[:, :k] = W
            cn[:, :k, 0] = nW
        else:
            np.multiply(a[..., None], W, out=Uc[:, :k])
            np.multiply(a, nW, out=cn[:, :k, 0])
        Uc[:, k:] = self._cV
        cn[:, k:, 0] = self._cnV
        grad_W = np.matmul(pt, Uc, out=out)
        grad_W += np.multiply(sin @ cn, Wbar, out=Wbar)
        grad_W *= 1.0 / TWO_PI
        if np.any(self.beta):
            grad_W -= 0.5 * self.beta
        if a is not None:
            grad_W *= a[..., None]
        if not with_a:
            return None, grad_W
        anW = nW if a is None else a * nW
        grad_a = nW * self._kernel_rows(anW, cos, sin, pt) - 0.5 * (W @ self.beta)
        return grad_a, grad_W

    # -- second order ------------------------------------------------------------------
    def _second_order_data(self, a, W):
        U, nW, nU, cos, sin, theta, coef = self._pairs(a, W)
        Wbar = _units(W, nW)
        Ubar = _units(U, nU)
        N = unit_perpendiculars(Wbar, Ubar, cos)                  # (B, k, J, d)
        gamma = coef[:, None, :] * nU[:, None, :] * sin           # (B, k, J)
        return U, nW, nU, cos, sin, theta, coef, Wbar, N, gamma

    def hvp(self, a, W, da, dW, with_a):
        """Hessian-vector products in O(B k J d) without forming the Hessian."""
        k = W.shape[1]
        U, nW, nU, cos, sin, theta, coef, Wbar, N, gamma = self._second_order_data(a, W)
        tWW, sWW = theta[:, :, :k], sin[:, :, :k]
        q = np.einsum("bld,bld->bl", Wbar, dW)                     # wbar_l . dw_l
        # sum_l a_l h2(w_i, w_l) dw_l
        along = np.einsum("blid,bld->bil", N[:, :, :k], dW)        # n_li . dw_l
        h2 = (((np.pi - tWW) * a[:, None, :]) @ dW
              + np.einsum("bil,bild->bid", a[:, None, :] * sWW * along, N[:, :, :k])
              + np.einsum("bil,bl->bi", sWW, a * q)[..., None] * Wbar) / TWO_PI
        # D_i dw_i
        qi = q
        S = gamma.sum(axis=2)
        proj = np.einsum("bijd,bid->bij", N, dW)
        D = (S[..., None] * (dW - qi[..., None] * Wbar)
             + np.einsum("bij,bijd->bid", gamma * proj, N)) / (TWO_PI * nW[..., None])
        H_W = a[..., None] * (h2 + D)
        if not with_a:
            return None, H_W
        g = self._g(W, U, nW, nU, sin, theta, coef)
        kap = arccos_kernel(nW, nU, cos, sin, theta)
        # a-row: K da + dw_i . g_i + sum_l a_l d1kappa(w_l, w_i) . dw_l
        P = dW @ np.swapaxes(W, -1, -2)                            # P[l, i] = dw_l . w_i
        cross = (np.einsum("bl,bli->bi", a, (np.pi - tWW) * P)
                 + nW * np.einsum("bl,bli->bi", a * q, sWW)) / TWO_PI
        H_a = (np.einsum("bil,bl->bi", kap[:, :, :k], da)
               + np.einsum("bid,bid->bi", dW, g) + cross)
        # W-row extra terms: da_i g_i + a_i sum_l da_l d1kappa(w_i, w_l)
        d1 = (((np.pi - tWW) * da[:, None, :]) @ W
              + np.einsum("bil,bl->bi", sWW, da * nW)[..., None] * Wbar) / TWO_PI
        H_W = H_W + da[..., None] * g + a[..., None] * d1
        return H_a, H_W

    def hess(self, a, W, with_a):
        """Dense Hessians of a batch (a: (B, k), W: (B, k, d)), shape (B, n, n).

        The parameter order is (a, W.ravel()) with_a, else W.ravel().
        """
        B, k, d = W.shape
        U, nW, nU, cos, sin, theta, coef, Wbar, N, gamma = self._second_order_data(a, W)
        tWW, sWW, NWW = theta[:, :, :k], sin[:, :, :k], N[:, :, :k]
        aa = a[:, :, None] * a[:, None, :] / TWO_PI
        # Rank-2 part of a_i a_l h2(w_i, w_l): sum over r of X[i, l, r] (x) Y[i, l, r].
        X = np.empty((B, k, k, 2, d))
        X[:, :, :, 0] = (aa * sWW)[..., None] * NWW                   # sin n_il
        X[:, :, :, 1] = (aa * sWW)[..., None] * Wbar[:, :, None, :]   # sin wbar_i
        Y = np.empty((B, k, k, 2, d))
        Y[:, :, :, 0] = NWW.transpose(0, 2, 1, 3)                      # n_li
        Y[:, :, :, 1] = Wbar[:, None, :, :]                            # wbar_l
        HW = np.empty((B, k, d, k, d))
        np.einsum("zilra,zilrc->zialc", X, Y, out=HW)
        # (pi - theta) I part of every block, written on the block diagonals.
        blockdiag = np.einsum("biala->bila", HW)                       # a view
        blockdiag += ((np.pi - tWW) * aa)[..., None]
        # Diagonal blocks a_i D_i.
        S = gamma.sum(axis=2)
        D = (np.einsum("bij,bija,bijc->biac", gamma, N, N)
             + S[..., None, None] * (np.eye(d) - np.einsum("bia,bic->biac", Wbar, Wbar)))
        D *= (a / (TWO_PI * nW))[..., None, None]
        il = np.arange(k)
        HW[:, il, :, il, :] += D.transpose(1, 0, 2, 3)
        HW2 = HW.reshape(B, k * d, k * d)
        if not with_a:
            return HW2
        g = self._g(W, U, nW, nU, sin, theta, coef)
        kap = arccos_kernel(nW, nU, cos, sin, theta)
        # E[l, i] = d1kappa(w_l, w_i) = ((pi - t_li) w_i + |w_i| sin t_li wbar_l) / (2 pi)
        E = ((np.pi - tWW)[..., None] * W[:, None, :, :]
             + (sWW * nW[:, None, :])[..., None] * Wbar[:, :, None, :]) / TWO_PI
        Haw = (a[:, :, None, None] * E).transpose(0, 2, 1, 3).copy()   # [i, l] = a_l E[l, i]
        Haw[:, il, il] += g
        n = k + k * d
        H = np.empty((B, n, n))
        H[:, :k, :k] = kap[:, :, :k]
        H[:, :k, k:] = Haw.reshape(B, k, k * d)
        H[:, k:, :k] = np.swapaxes(H[:, :k, k:], 1, 2)
        H[:, k:, k:] = HW2
        return H
