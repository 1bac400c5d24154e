"""Empirical squared loss of a one-hidden-layer ReLU network on a finite sample.

:class:`EmpiricalReLU` is the finite-sample loss of Du, Zhai, Poczos & Singh (2019),
whose hidden layer W is trained while the output signs a are frozen, or, with
``train_output=True``, the loss with both layers trained (Tinaz, Xie &
Soltanolkotabi 2026); :func:`ntk_gram` is the infinite-width Gram matrix H-infinity
of Du et al., whose least eigenvalue lambda_0 governs the linear convergence rate of
gradient descent.
"""

import dataclasses
import numbers

import numpy as np

from .._validation import as_float_array, as_rng
from ..errors import NonDifferentiableError
from . import collinear
from ._kernels import TWO_PI, pair_angles, row_norms
from .base import Model, check_scale, row_norms_unscaled
from .symmetry import Symmetry

__all__ = ["EmpiricalReLU", "ntk_gram", "NTKGram"]


# ---- argument checks -----------------------------------------------------------------

def _check_samples(X, name="X"):
    """A finite, non-empty float64 matrix with one sample per row."""
    try:
        arr = as_float_array(X, name, allow_empty=True)
    except ValueError as exc:  # the only ValueError left is a non-finite entry
        raise ValueError(f"{exc}; remove or impute the non-finite samples") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n_samples, d) with one sample "
                         f"per row, got shape {arr.shape}; reshape a single sample with "
                         f"{name}[None, :] or a 1-D feature with {name}[:, None]")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one sample and one feature, got shape "
                         f"{arr.shape}")
    return arr


def _check_labels(y, n_samples):
    try:
        arr = as_float_array(y, "y", allow_empty=True)
    except ValueError as exc:
        raise ValueError(f"{exc}; remove or impute the non-finite labels (and their rows "
                         "of X)") from None
    if arr.shape != (n_samples,):
        raise ValueError(f"y must have shape ({n_samples},), one label per row of X, got "
                         f"{arr.shape}; pass a 1-D array (y.ravel() for a column vector)")
    return arr


def _check_width(width):
    if isinstance(width, bool) or not isinstance(width, numbers.Integral):
        raise TypeError(f"width must be an int (the number m of hidden neurons), got "
                        f"{type(width).__name__} {width!r}; pass e.g. width=int({width!r})")
    if width < 1:
        raise ValueError(f"width must be >= 1 (the number m of hidden neurons), got {width}")
    return int(width)


def _check_signs(a, width):
    arr = as_float_array(a, "a", allow_empty=True)
    if arr.shape != (width,):
        raise ValueError(f"a must have shape ({width},), one output sign per hidden neuron, "
                         f"got {arr.shape}; pass a=None to draw random signs")
    bad = np.flatnonzero(np.abs(arr) != 1.0)
    if bad.size:
        raise ValueError(f"a must contain only +1 and -1 (Du et al. freeze the output "
                         f"weights to signs), got a[{bad[0]}] = {arr[bad[0]]}; pass "
                         "np.sign(a) or a=None to draw random signs")
    return arr


def _readonly(arr):
    arr.setflags(write=False)
    return arr


def _check_reduction(reduction):
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' (1/2 sum_i e_i^2, Du et al.) or 'mean' "
                         f"(1/(2N) sum_i e_i^2, an estimate of the population loss), got "
                         f"{reduction!r}")
    return reduction


def _check_output_scale(output_scale, width):
    if output_scale is None:
        return 1.0 / np.sqrt(width)
    if isinstance(output_scale, bool) or not isinstance(output_scale, numbers.Real):
        raise TypeError(f"output_scale must be a positive float (the factor s in f = s sum_r "
                        f"a_r sigma(w_r.x)) or None for 1/sqrt(width), got "
                        f"{type(output_scale).__name__} {output_scale!r}")
    scale = float(output_scale)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"output_scale must be positive and finite, got {output_scale!r}; pass "
                         "None for Du et al.'s 1/sqrt(width) or 1.0 for an unscaled network")
    return scale


# ---- the model -----------------------------------------------------------------------

class EmpiricalReLU(Model):
    r"""Empirical squared loss of f(x) = s sum_r a_r sigma(w_r.x) on samples (x_i, y_i).

    By default the loss of Du, Zhai, Poczos & Singh (2019): L(W) = 1/2 sum_i
    (f(x_i) - y_i)^2 with s = m^-1/2, the hidden weights W trained and the output
    signs a_r = +-1 frozen.  With ``train_output=True`` the output weights are
    trained too (parameters (a, W) as in :class:`~landscape.TwoLayerReLU`), and
    ``output_scale=1.0, reduction="mean"`` gives the empirical counterpart
    1/(2N) sum_i (f(x_i) - y_i)^2 of the population loss of Tinaz, Xie &
    Soltanolkotabi (2026).

    Parameters
    ----------
    X : array_like of shape (n_samples, d)
        Training inputs x_i as rows (Du et al. assume ``|x_i| = 1``; any finite
        rows are accepted).
    y : array_like of shape (n_samples,)
        Labels y_i.
    width : int
        Number m >= 1 of hidden neurons.
    a : array_like of shape (m,), optional
        Frozen output signs, each +1 or -1 (``train_output=False`` only).
        Default: drawn uniformly from `rng`.
    rng : int, Generator, SeedSequence or None, default 0
        Source of the random signs when `a` is None and the output layer is frozen.
    train_output : bool, default False
        False: parameters ``x = W.ravel()``, W of shape (m, d), ``n_params = m d``,
        the output weights frozen to `a`.  True: parameters ``x = (a, W.ravel())``
        (``flatten((a, W))``), the layout of :class:`~landscape.TwoLayerReLU`,
        ``n_params = m (d + 1)``.
    output_scale : float, optional
        The factor s in front of the sum over neurons; default ``1/sqrt(width)``
        (Du et al.).
    reduction : {"sum", "mean"}, default "sum"
        "sum": 1/2 sum_i e_i^2 (Du et al.); "mean": 1/(2N) sum_i e_i^2.

    Attributes
    ----------
    X : ndarray of shape (n_samples, d)
    y : ndarray of shape (n_samples,)
    a : ndarray of shape (m,) or None
        The frozen output signs; None when ``train_output=True`` (a is then part
        of the parameters).
    width : int
    train_output : bool
    output_scale : float
    reduction : str
    n_params : int
        ``width * d``, or ``width * (d + 1)`` with ``train_output=True``.
    input_dim : int
        d.
    optimal_loss : None
        Zero is attainable only for some data and widths, so it is not claimed.

    Notes
    -----
    With residuals e_i = f(x_i) - y_i and c = 1 ("sum") or 1/N ("mean"),

    .. math:: L = \tfrac c2 \sum_{i=1}^N e_i^2, \qquad
              f(x) = s \sum_{r=1}^m a_r \sigma(w_r\cdot x).

    The loss is evaluated from the residuals, never as the expansion
    sum f^2 - 2 sum f y + sum y^2, so a near-perfect fit keeps its digits (a loss
    of 1e-20 is accurate to the rounding of the residuals, not of |y|^2).

    f is piecewise linear in W, so L is piecewise quadratic.  Where no
    w_r . x_i is zero, with :math:`\mathbb 1_{ri} = \mathbb 1[w_r\cdot x_i > 0]`
    and J the Jacobian of (f(x_i))_i,

    .. math:: \nabla_{w_r} L = c\,s\,a_r\sum_i e_i \mathbb 1_{ri}\, x_i, \qquad
              \nabla_{a_r} L = c\,s\sum_i e_i\,\sigma(w_r\cdot x_i).

    With frozen output weights the Hessian is exactly the Gauss-Newton matrix
    c JᵀJ (sigma'' = 0 off the kink), positive semi-definite; for ``c = 1`` and
    ``s = m^-1/2`` its nonzero eigenvalues are those of Du et al.'s Gram matrix
    :math:`H(W)_{ij} = \frac{x_i\cdot x_j}{m}\sum_r \mathbb 1_{ri}\mathbb 1_{rj} =
    (JJ^\top)_{ij}`.  With trained output weights f is bilinear in (a_r, w_r) and
    the Hessian gains the residual terms

    .. math:: \nabla^2 L = c\,\big(J^\top J + E\big), \qquad
              E_{a_r, w_r} = E_{w_r, a_r}^\top = s \sum_i e_i \mathbb 1_{ri}\, x_i ,

    which make it indefinite away from a fit; the rescalings (a_r, w_r) ->
    (a_r / t, t w_r), t > 0, leave L unchanged (:meth:`symmetry_tangents`).  The
    loss is not differentiable where some w_r . x_i = 0 exactly (the ReLU kink,
    including every zero neuron): :meth:`grad`, :meth:`hess` and :meth:`hvp`
    raise :class:`~landscape.NonDifferentiableError` there; :meth:`loss` is defined.

    Du et al. initialise w_r ~ N(0, I); use ``sample_init(n, scale=1.0)`` for that
    (the default scale 1/sqrt(d) gives the same activation patterns).

    References
    ----------
    S. S. Du, X. Zhai, B. Poczos, A. Singh, "Gradient descent provably optimizes
    over-parameterized neural networks", ICLR 2019, eqs. (1)-(2) (network and loss),
    eq. (3) and Assumption 3.1 (H-infinity and lambda_0), Theorem 3.2.
    A. Tinaz, Y. Xie, M. Soltanolkotabi, "When both layers learn: training dynamics of
    representing linear models via ReLU networks", COLT 2026 (both layers trained).

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((5, 3)), rng.standard_normal(5)
    >>> m = ls.EmpiricalReLU(X, y, width=4, a=[1, -1, 1, -1])
    >>> m
    EmpiricalReLU(n_samples=5, d=3, width=4, n_params=12)
    >>> x = m.sample_init(1, rng=1, scale=1.0)[0]
    >>> m.grad(x).shape, m.activation_patterns(x).shape
    ((12,), (5, 4))
    >>> v = rng.standard_normal(12)
    >>> bool(np.allclose(m.hess(x) @ v, m.hvp(x, v)))
    True

    Both layers trained, parameters (a, W):

    >>> t = ls.EmpiricalReLU(X, y, width=4, train_output=True, output_scale=1.0,
    ...                      reduction="mean")
    >>> t.n_params, t.a is None
    (16, True)
    >>> a, W = t.unflatten(t.sample_init(1, rng=1)[0])
    >>> a.shape, W.shape
    ((4,), (4, 3))
    """

    optimal_loss = None

    def __init__(self, X, y, width, *, a=None, rng=0, train_output=False, output_scale=None,
                 reduction="sum"):
        Xs = _check_samples(X, "X")
        ys = _check_labels(y, Xs.shape[0])
        check_scale(row_norms_unscaled(Xs).max(keepdims=True), "X", "rescale the samples")
        check_scale(row_norms_unscaled(ys[None]), "y", "rescale the labels")
        self.X = _readonly(Xs)
        self.y = _readonly(ys)
        self.width = _check_width(width)
        if not isinstance(train_output, (bool, np.bool_)):
            raise TypeError(f"train_output must be True or False, got "
                            f"{type(train_output).__name__} {train_output!r}")
        self.train_output = bool(train_output)
        self.output_scale = _check_output_scale(output_scale, self.width)
        self.reduction = _check_reduction(reduction)
        self.input_dim = Xs.shape[1]
        if self.train_output:
            if a is not None:
                raise ValueError("a is a parameter when train_output=True, not a constructor "
                                 "argument: drop a= and pass the output weights in the point, "
                                 "x = model.flatten((a, W))")
            self.a = None
            self.n_params = self.width * (self.input_dim + 1)
        else:
            signs = (as_rng(rng).choice(np.array([-1.0, 1.0]), size=self.width) if a is None
                     else _check_signs(a, self.width))
            self.a = _readonly(signs)
            self.n_params = self.width * self.input_dim
        self._scale = self.output_scale
        # c in L = c/2 sum_i e_i^2
        self._weight = 1.0 if self.reduction == "sum" else 1.0 / self.n_samples

    @property
    def n_samples(self):
        """Number N of training samples."""
        return self.X.shape[0]

    # ---- parameters ---------------------------------------------------------------
    def flatten(self, params):
        """Structured parameters -> x of shape (n_params,).

        Parameters
        ----------
        params : array_like of shape (width, d), or a pair (a, W)
            W, hidden neurons w_r as rows; with ``train_output=True`` the pair
            (a, W) with a of shape (width,).

        Returns
        -------
        ndarray of shape (n_params,)
            ``W.ravel()``, or ``concatenate([a, W.ravel()])``.
        """
        if self.train_output:
            try:
                a, W = params
            except (TypeError, ValueError):
                raise TypeError("params must be a pair (a, W) of output weights and hidden "
                                "weights (train_output=True)") from None
            a = as_float_array(a, "a", shape=(self.width,))
            return np.concatenate([a, self._check_W(W).ravel()])
        return self._check_W(params).ravel()

    def _check_W(self, W):
        W = as_float_array(W, "W", allow_empty=True)
        if W.shape != (self.width, self.input_dim):
            raise ValueError(f"W must have shape ({self.width}, {self.input_dim}), one hidden "
                             f"neuron per row, got {W.shape}")
        return W

    def unflatten(self, x):
        """x -> W of shape (width, d), or (a, W) with ``train_output=True`` (copies)."""
        x = self.check_x(x)
        if self.train_output:
            m = self.width
            return x[:m].copy(), x[m:].reshape(m, self.input_dim)
        return x.reshape(self.width, self.input_dim)

    def _hidden(self, x):
        """The hidden weights W (width, d) of a checked x."""
        return x[self.n_params - self.width * self.input_dim:].reshape(self.width,
                                                                       self.input_dim)

    def _split(self, X):
        """Output weights (B, m) or None (frozen) and hidden weights (B, m, d) of a batch."""
        B, m = X.shape[0], self.width
        if self.train_output:
            return X[:, :m], X[:, m:].reshape(B, m, self.input_dim)
        return None, X.reshape(B, m, self.input_dim)

    def activation_patterns(self, x):
        """Which neurons are active on which samples: 1[w_r . x_i > 0].

        Parameters
        ----------
        x : array_like of shape (n_params,)

        Returns
        -------
        ndarray of bool, shape (n_samples, width)
            Entry (i, r) is True when neuron r is active on sample i.
        """
        W = self._hidden(self.check_x(x))
        return (self.X @ W.T) > 0

    def symmetry(self):
        """The symmetry group as data (see :class:`~landscape.Symmetry`).

        Frozen output signs: permutations among neurons with the same sign.  Trained
        output weights: every permutation of the neurons (a_r, w_r) and the rescalings
        (a_r, w_r) -> (a_r / c, c w_r), c > 0.  The data are not assumed to have
        symmetries: no map of input space.
        """
        m, d = self.width, self.input_dim
        if self.train_output:
            return Symmetry(input_weights=m + np.arange(m * d).reshape(m, d),
                            output_weights=np.arange(m), rescaling=True)
        return Symmetry(input_weights=np.arange(m * d).reshape(m, d),
                        classes=(self.a > 0).astype(np.intp))

    def symmetry_tangents(self, x):
        """Rescaling tangents (a_r, w_r) -> (-a_r, w_r), shape (width, n_params) when trained.

        Empty with frozen output weights (no continuous symmetry).
        """
        return self.symmetry().tangents(self.check_x(x))

    # ---- critical manifolds -------------------------------------------------------
    def manifold_tangents(self, x):
        """Tangents of the manifolds of equal functions through x.

        Frozen output signs: the splits of every group of positively collinear
        neurons with equal signs (length moved between members).  Trained output
        weights: the redistributions of a_r |w_r| at fixed sum within each group
        of positively collinear neurons (as :class:`~landscape.TwoLayerReLU`).
        Shape (n_tangents, n_params).
        """
        if self.train_output:
            return collinear.trained_split_tangents(*self.unflatten(x))
        W = self.unflatten(x)
        T = collinear.split_tangents(W, collinear.collinear_groups(W, labels=self.a))
        return T.reshape(T.shape[0], self.n_params)

    def merge_collinear(self, x):
        """Each group of collinear neurons as one (the function-space key).

        Frozen: equal-sign groups replaced by their sum.  Trained: a = sum a_r |w_r|,
        w = the unit direction.
        """
        if self.train_output:
            return collinear.merge_trained(*self.unflatten(x))
        W = self.unflatten(x)
        return collinear.merge_rows(W, collinear.collinear_groups(W, labels=self.a))[0].ravel()

    def smooth_radius(self, x):
        """Distance to the nearest ReLU kink, min_{r, i} |w_r . x_i| / |x_i|.

        With trained output weights also at most min |a_r| over a_r != 0 (no output
        weight changes sign inside).
        """
        x = self.check_x(x)
        W = self._hidden(x)
        norms = row_norms(self.X)
        live = norms > 0
        radius = (float(np.min(np.abs(self.X[live] @ W.T) / norms[live, None])) if live.any()
                  else np.inf)
        if self.train_output:
            a = np.abs(x[:self.width])
            a = a[a != 0]
            radius = min(radius, float(a.min()) if a.size else np.inf)
        return radius

    def align_collinear(self, X, angle_tol):
        A, Wb = self._split(X)
        if self.train_output:
            Wo, changed = collinear.align_trained(A, Wb, angle_tol)
            return (np.concatenate([A, Wo.reshape(len(X), -1)], axis=1) if changed.any()
                    else X), changed
        changed = collinear.nearly_collinear(Wb, angle_tol)
        if not changed.any():
            return X, changed
        out = X.copy()
        Wo = out.reshape(Wb.shape)
        for b in np.flatnonzero(changed):
            groups = collinear.collinear_groups(Wb[b], angle_tol, labels=self.a)
            changed[b] = bool(groups)
            if groups:
                Wo[b] = collinear.align_rows(Wb[b], groups)
        return out, changed

    def aligned_basis(self, x, angle_tol):
        W = self._hidden(x)
        if self.train_output:
            return collinear.trained_aligned_basis(W, angle_tol)
        groups = collinear.collinear_groups(W, angle_tol, labels=self.a)
        return collinear.aligned_basis(W, groups) if groups else None

    # ---- kernels ------------------------------------------------------------------
    # Frozen output weights: W (B, m, d); trained: A (B, m) and W.  Z = W X^T (B, m, N).
    def _forward(self, X):
        """Output weights A (None if frozen), pre-activations Z (B, m, N), 1[Z > 0], e (B, N)."""
        A, W = self._split(X)
        Z = W @ self.X.T
        active = (Z > 0).astype(np.float64)
        if A is None:
            f = self._scale * np.einsum("r,brn->bn", self.a, np.maximum(Z, 0.0))
        else:
            f = self._scale * np.einsum("br,brn->bn", A, np.maximum(Z, 0.0))
        return A, Z, active, f - self.y

    def loss_kernel(self, X):
        e = self._forward(X)[3]
        return (0.5 * self._weight) * np.einsum("bn,bn->b", e, e)

    def _jte(self, A, Z, active, e):
        """J^T e for every row, shape (B, n_params) (the gradient without the factor c)."""
        G = (active * e[:, None, :]) @ self.X                   # sum_i e_i 1_ri x_i (B, m, d)
        if A is None:
            G *= (self._scale * self.a)[None, :, None]
            return G.reshape(G.shape[0], -1)
        ga = self._scale * np.einsum("brn,bn->br", np.maximum(Z, 0.0), e)
        gW = (self._scale * A)[:, :, None] * G
        return np.concatenate([ga, gW.reshape(G.shape[0], -1)], axis=1)

    def grad_kernel(self, X):
        g = self._jte(*self._forward(X))
        return g if self._weight == 1.0 else self._weight * g

    def hvp_kernel(self, X, U):
        # H u = c (J^T (J u) + E u): J u is the directional derivative of the outputs f(x_i);
        # E (trained output weights only) couples a_r and w_r through the residuals.
        A, Z, active, e = self._forward(X)
        dA, dW = self._split(U)
        P = dW @ self.X.T
        if A is None:
            Ju = self._scale * np.einsum("r,brn->bn", self.a, active * P)
            out = self._jte(A, Z, active, Ju)
            return out if self._weight == 1.0 else self._weight * out
        S = np.maximum(Z, 0.0)
        Ju = self._scale * (np.einsum("br,brn->bn", dA, S)
                            + np.einsum("br,brn->bn", A, active * P))
        out = self._jte(A, Z, active, Ju)
        G = (active * e[:, None, :]) @ self.X                   # (B, m, d)
        m = self.width
        out[:, :m] += self._scale * np.einsum("brd,brd->br", G, dW)
        out[:, m:] += (self._scale * dA[:, :, None] * G).reshape(len(X), -1)
        return self._weight * out

    def hess_kernel(self, X):
        A, Z, active, e = self._forward(X)
        B, N, m, d = len(X), self.n_samples, self.width, self.input_dim
        s = self._scale
        act = np.swapaxes(active, 1, 2)[..., None]              # (B, N, m, 1)
        if A is None:
            # J[b, i, r, :] = s a_r 1_bri x_i; H = J^T J (Gauss-Newton is exact here)
            J = (s * self.a[None, None, :, None] * act
                 * self.X[None, :, None, :]).reshape(B, N, self.n_params)
            H = np.swapaxes(J, 1, 2) @ J
        else:
            Jw = (s * A[:, None, :, None] * act * self.X[None, :, None, :]).reshape(B, N, m * d)
            J = np.concatenate([s * np.swapaxes(np.maximum(Z, 0.0), 1, 2), Jw], axis=2)
            H = np.swapaxes(J, 1, 2) @ J
            G = s * ((active * e[:, None, :]) @ self.X)         # E_{a_r, w_r} (B, m, d)
            r = np.arange(m)
            cols = m + r[:, None] * d + np.arange(d)[None, :]   # (m, d) columns of w_r
            H[:, r[:, None], cols] += G
            H[:, cols, r[:, None]] += G
        H = 0.5 * (H + np.swapaxes(H, 1, 2))
        return H if self._weight == 1.0 else self._weight * H

    def nondifferentiable_units(self, X):
        W = self._split(X)[1]
        return np.any((W @ self.X.T) == 0, axis=2)

    def work_per_row(self):
        return self.width * (self.n_samples + self.input_dim + self.train_output)

    def require_differentiable(self, X):
        # The base message speaks of zero neurons; here the kink is any w_r . x_i = 0.
        bad = self.nondifferentiable_units(X)
        if np.any(bad):
            rows, units = np.nonzero(bad)
            W = self._hidden(X[rows[0]])
            sample = int(np.flatnonzero(self.X @ W[units[0]] == 0)[0])
            where = (f"neuron {units[0]}" if X.shape[0] == 1
                     else f"row {rows[0]}, neuron {units[0]}")
            raise NonDifferentiableError(
                f"the loss is not differentiable here: {where} sits on the ReLU kink of "
                f"sample {sample} (w_r . x_i == 0 exactly; kinked neurons: "
                f"{sorted(set(units.tolist()))}); move off the kink or use model.loss, "
                "which is defined there", neurons=units)

    def autograd_loss_fn(self):
        """The same loss written with autograd.numpy (for reference_model)."""
        import autograd.numpy as anp

        X, y, a, trained = self.X, self.y, self.a, self.train_output
        m, shape, scale, c = self.width, (self.width, self.input_dim), self._scale, self._weight

        def empirical_loss(x):
            out, W = (x[:m], anp.reshape(x[m:], shape)) if trained else (a, anp.reshape(x, shape))
            f = scale * anp.dot(anp.maximum(anp.dot(X, W.T), 0.0), out)
            return 0.5 * c * anp.sum((f - y) ** 2)

        return empirical_loss

    def __repr__(self):
        extra = ""
        if self.train_output:
            extra += ", train_output=True"
        if self.output_scale != 1.0 / np.sqrt(self.width):
            extra += f", output_scale={self.output_scale:g}"
        if self.reduction != "sum":
            extra += f", reduction={self.reduction!r}"
        return (f"EmpiricalReLU(n_samples={self.n_samples}, d={self.input_dim}, "
                f"width={self.width}, n_params={self.n_params}{extra})")


# ---- the infinite-width Gram matrix --------------------------------------------------

@dataclasses.dataclass(frozen=True, kw_only=True)
class NTKGram:
    """The infinite-width Gram matrix H-infinity and its spectrum.

    Attributes
    ----------
    gram : ndarray of shape (n_samples, n_samples)
        H-infinity, symmetric positive semi-definite.
    lambda0 : float
        Its least eigenvalue lambda_0 (> 0 when no two samples are parallel).
    eigenvalues : ndarray of shape (n_samples,)
        All eigenvalues, ascending.
    """

    gram: np.ndarray
    lambda0: float
    eigenvalues: np.ndarray

    def __post_init__(self):
        gram = as_float_array(self.gram, "gram", ndim=2)
        if gram.shape[0] != gram.shape[1]:
            raise ValueError(f"gram must be square, got shape {gram.shape}")
        eig = as_float_array(self.eigenvalues, "eigenvalues", shape=(gram.shape[0],))
        object.__setattr__(self, "gram", _readonly(gram))
        object.__setattr__(self, "eigenvalues", _readonly(eig))
        object.__setattr__(self, "lambda0", float(self.lambda0))

    @property
    def n_samples(self):
        """Number N of samples."""
        return self.gram.shape[0]

    def to_dict(self):
        """Plain-Python (JSON-ready) representation."""
        return {"gram": self.gram.tolist(), "lambda0": self.lambda0,
                "eigenvalues": self.eigenvalues.tolist()}

    @classmethod
    def from_dict(cls, data):
        """Inverse of :meth:`to_dict`."""
        return cls(gram=np.asarray(data["gram"], dtype=float), lambda0=data["lambda0"],
                   eigenvalues=np.asarray(data["eigenvalues"], dtype=float))

    def __eq__(self, other):
        if not isinstance(other, NTKGram):
            return NotImplemented
        return (self.lambda0 == other.lambda0
                and np.array_equal(self.gram, other.gram)
                and np.array_equal(self.eigenvalues, other.eigenvalues))

    def __repr__(self):
        return (f"NTKGram(n_samples={self.n_samples}, lambda0={self.lambda0:.6g}, "
                f"lambda_max={self.eigenvalues[-1]:.6g})")


def ntk_gram(X):
    r"""The infinite-width Gram matrix H-infinity of Du et al. and its least eigenvalue.

    Parameters
    ----------
    X : array_like of shape (n_samples, d)
        Samples x_i as rows.

    Returns
    -------
    NTKGram
        ``gram`` (N, N), ``lambda0`` = its least eigenvalue, ``eigenvalues`` ascending.

    Notes
    -----
    With theta_ij the angle between x_i and x_j,

    .. math:: H^\infty_{ij} = \mathbb E_{w\sim N(0,I)}\big[x_i\cdot x_j\,
              \mathbb 1\{w\cdot x_i \ge 0,\ w\cdot x_j \ge 0\}\big]
              = x_i\cdot x_j\,\frac{\pi - \theta_{ij}}{2\pi},

    which for unit samples is x_i . x_j (pi - arccos(x_i . x_j)) / (2 pi).  The
    angle is computed stably (atan2 for well-separated pairs, Kahan's
    ``2 atan2(|a - b|, |a + b|)`` of the unit vectors for near-parallel and
    near-antiparallel ones), never as arccos of a rounded cosine.  A zero sample
    gives a zero row and column.  lambda_0 > 0 whenever no two samples are
    parallel (Du et al., Theorem 3.1).

    References
    ----------
    S. S. Du, X. Zhai, B. Poczos, A. Singh, "Gradient descent provably optimizes
    over-parameterized neural networks", ICLR 2019, eq. (3), Assumption 3.1.

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> g = ls.ntk_gram([[1.0, 0.0], [np.sqrt(0.5), np.sqrt(0.5)]])
    >>> g.gram.round(6).tolist()     # 1/2 on the diagonal; cos(pi/4) (3/4) / 2 off it
    [[0.5, 0.265165], [0.265165, 0.5]]
    >>> round(g.lambda0, 6)
    0.234835
    """
    Xs = _check_samples(X, "X")
    norms = row_norms(Xs)
    _, _, theta = pair_angles(Xs[None], Xs[None], norms[None], norms[None])
    dots = Xs @ Xs.T
    gram = dots * (np.pi - theta[0]) / TWO_PI
    gram = 0.5 * (gram + gram.T)
    eigenvalues = np.linalg.eigvalsh(gram)
    return NTKGram(gram=gram, lambda0=float(eigenvalues[0]), eigenvalues=eigenvalues)
