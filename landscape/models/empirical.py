"""Empirical squared loss of a wide one-hidden-layer ReLU network (Du, Zhai, Poczos & Singh 2019).

:class:`EmpiricalReLU` is the finite-sample loss whose hidden layer W is trained
while the output signs a are frozen; :func:`ntk_gram` is the infinite-width Gram
matrix H-infinity of the same paper, whose least eigenvalue lambda_0 governs the
linear convergence rate of gradient descent.
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


# ---- the model -----------------------------------------------------------------------

class EmpiricalReLU(Model):
    r"""L(W) = 1/2 sum_i (f(x_i) - y_i)^2 with f(x) = m^-1/2 sum_r a_r sigma(w_r.x).

    The hidden weights W are the parameters; the output weights a_r = +-1 are
    frozen, as in Du, Zhai, Poczos & Singh (2019).

    Parameters
    ----------
    X : array_like of shape (n_samples, d)
        Training inputs x_i as rows (Du et al. assume ``|x_i| = 1``; any finite
        rows are accepted).
    y : array_like of shape (n_samples,)
        Labels y_i.
    width : int
        Number m >= 1 of hidden neurons.  Parameters are ``x = W.ravel()`` with
        W of shape (m, d), so ``n_params = m * d``.
    a : array_like of shape (m,), optional
        Output signs, each +1 or -1.  Default: drawn uniformly from `rng`.
    rng : int, Generator, SeedSequence or None, default 0
        Source of the random signs when `a` is None.

    Attributes
    ----------
    X : ndarray of shape (n_samples, d)
    y : ndarray of shape (n_samples,)
    a : ndarray of shape (m,)
    width : int
    n_params : int
        ``width * d``.
    input_dim : int
        d.
    optimal_loss : None
        Zero is attainable only for some data and widths, so it is not claimed.

    Notes
    -----
    The loss is Du et al.'s convention, one half of the *sum* (not the mean) of
    squared residuals e_i = f(x_i) - y_i:

    .. math:: L(W) = \tfrac12 \sum_{i=1}^N \Big(\frac{1}{\sqrt m}\sum_{r=1}^m a_r
              \sigma(w_r\cdot x_i) - y_i\Big)^2 .

    f is piecewise linear in W, so L is piecewise quadratic.  Where no
    w_r . x_i is zero, with :math:`\mathbb 1_{ri} = \mathbb 1[w_r\cdot x_i > 0]`,

    .. math:: \nabla_{w_r} L = \frac{a_r}{\sqrt m}\sum_i e_i \mathbb 1_{ri}\, x_i, \qquad
              \nabla^2_{w_r w_s} L = \frac{a_r a_s}{m}\sum_i \mathbb 1_{ri}\mathbb 1_{si}\,
              x_i x_i^\top ,

    i.e. the Hessian is exactly the Gauss-Newton matrix JᵀJ (sigma'' = 0 off
    the kink) and is positive semi-definite.  Its nonzero eigenvalues are those
    of Du et al.'s Gram matrix :math:`H(W)_{ij} = \frac{x_i\cdot x_j}{m}\sum_r
    \mathbb 1_{ri}\mathbb 1_{rj} = (JJ^\top)_{ij}`.  The loss is not
    differentiable where some w_r . x_i = 0 exactly (the ReLU kink, including
    every zero neuron): :meth:`grad`, :meth:`hess` and :meth:`hvp` raise
    :class:`~landscape.NonDifferentiableError` there; :meth:`loss` is defined.

    Du et al. initialise w_r ~ N(0, I); use ``sample_init(n, scale=1.0)`` for that
    (the default scale 1/sqrt(d) gives the same activation patterns).

    References
    ----------
    S. S. Du, X. Zhai, B. Poczos, A. Singh, "Gradient descent provably optimizes
    over-parameterized neural networks", ICLR 2019, eqs. (1)-(2) (network and loss),
    eq. (3) and Assumption 3.1 (H-infinity and lambda_0), Theorem 3.2.

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
    """

    optimal_loss = None

    def __init__(self, X, y, width, *, a=None, rng=0):
        Xs = _check_samples(X, "X")
        ys = _check_labels(y, Xs.shape[0])
        check_scale(row_norms_unscaled(Xs).max(keepdims=True), "X", "rescale the samples")
        check_scale(row_norms_unscaled(ys[None]), "y", "rescale the labels")
        self.X = _readonly(Xs)
        self.y = _readonly(ys)
        self.width = _check_width(width)
        if a is None:
            signs = as_rng(rng).choice(np.array([-1.0, 1.0]), size=self.width)
        else:
            signs = _check_signs(a, self.width)
        self.a = _readonly(signs)
        self.input_dim = Xs.shape[1]
        self.n_params = self.width * self.input_dim
        self._scale = 1.0 / np.sqrt(self.width)

    @property
    def n_samples(self):
        """Number N of training samples."""
        return self.X.shape[0]

    # ---- parameters ---------------------------------------------------------------
    def flatten(self, W):
        """W of shape (width, d) -> x of shape (width * d,).

        Parameters
        ----------
        W : array_like of shape (width, d)
            Hidden neurons w_r as rows.

        Returns
        -------
        ndarray of shape (n_params,)
        """
        W = as_float_array(W, "W", allow_empty=True)
        if W.shape != (self.width, self.input_dim):
            raise ValueError(f"W must have shape ({self.width}, {self.input_dim}), one hidden "
                             f"neuron per row, got {W.shape}")
        return W.ravel()

    def unflatten(self, x):
        """x of shape (width * d,) -> W of shape (width, d) (a copy)."""
        return self.check_x(x).reshape(self.width, self.input_dim)

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
        W = self.unflatten(x)
        return (self.X @ W.T) > 0

    def symmetry(self):
        """Permutations among neurons with the same output sign (see :class:`~landscape.Symmetry`).

        The data are not assumed to have symmetries: no map of input space.
        """
        m, d = self.width, self.input_dim
        return Symmetry(input_weights=np.arange(m * d).reshape(m, d),
                        classes=(self.a > 0).astype(np.intp))

    # ---- critical manifolds -------------------------------------------------------
    def manifold_tangents(self, x):
        """Split directions of every group of positively collinear neurons with equal signs."""
        W = self.unflatten(x)
        T = collinear.split_tangents(W, collinear.collinear_groups(W, labels=self.a))
        return T.reshape(T.shape[0], self.n_params)

    def merge_collinear(self, x):
        """Each group of positively collinear, equal-sign neurons replaced by their sum."""
        W = self.unflatten(x)
        return collinear.merge_rows(W, collinear.collinear_groups(W, labels=self.a))[0].ravel()

    def smooth_radius(self, x):
        """Distance to the nearest ReLU kink: min over neurons and samples of |w_r . x_i| / |x_i|."""
        W = self.unflatten(x)
        norms = row_norms(self.X)
        live = norms > 0
        if not live.any():
            return np.inf
        return float(np.min(np.abs(self.X[live] @ W.T) / norms[live, None]))

    def align_collinear(self, X, angle_tol):
        Wb = X.reshape(X.shape[0], self.width, self.input_dim)
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
        W = x.reshape(self.width, self.input_dim)
        groups = collinear.collinear_groups(W, angle_tol, labels=self.a)
        return collinear.aligned_basis(W, groups) if groups else None

    # ---- kernels ------------------------------------------------------------------
    def _forward(self, X):
        """Pre-activations Z (B, m, N), activations 1[Z > 0] and residuals e (B, N)."""
        W = X.reshape(X.shape[0], self.width, self.input_dim)
        Z = W @ self.X.T
        active = (Z > 0).astype(np.float64)
        f = self._scale * np.einsum("r,brn->bn", self.a, np.maximum(Z, 0.0))
        return active, f - self.y

    def loss_kernel(self, X):
        _, e = self._forward(X)
        return 0.5 * np.einsum("bn,bn->b", e, e)

    def _backward(self, active, e):
        """J^T e for every row: (a_r / sqrt m) sum_i e_i 1_ri x_i, shape (B, n_params)."""
        G = (active * e[:, None, :]) @ self.X
        G *= (self._scale * self.a)[None, :, None]
        return G.reshape(G.shape[0], -1)

    def grad_kernel(self, X):
        return self._backward(*self._forward(X))

    def hvp_kernel(self, X, U):
        # H u = J^T (J u): J u is the directional derivative of the outputs f(x_i).
        active, _ = self._forward(X)
        P = U.reshape(U.shape[0], self.width, self.input_dim) @ self.X.T
        Ju = self._scale * np.einsum("r,brn->bn", self.a, active * P)
        return self._backward(active, Ju)

    def hess_kernel(self, X):
        active, _ = self._forward(X)
        # J[b, i, r, :] = a_r / sqrt(m) * 1_bri * x_i; H = J^T J (Gauss-Newton is exact here)
        J = (self._scale * self.a[None, None, :, None] * np.swapaxes(active, 1, 2)[..., None]
             * self.X[None, :, None, :]).reshape(len(X), self.n_samples, self.n_params)
        H = np.swapaxes(J, 1, 2) @ J
        return 0.5 * (H + np.swapaxes(H, 1, 2))

    def nondifferentiable_units(self, X):
        W = X.reshape(X.shape[0], self.width, self.input_dim)
        return np.any((W @ self.X.T) == 0, axis=2)

    def work_per_row(self):
        return self.width * (self.n_samples + self.input_dim)

    def require_differentiable(self, X):
        # The base message speaks of zero neurons; here the kink is any w_r . x_i = 0.
        bad = self.nondifferentiable_units(X)
        if np.any(bad):
            rows, units = np.nonzero(bad)
            W = X[rows[0]].reshape(self.width, self.input_dim)
            sample = int(np.flatnonzero(self.X @ W[units[0]] == 0)[0])
            where = (f"neuron {units[0]}" if X.shape[0] == 1
                     else f"row {rows[0]}, neuron {units[0]}")
            raise NonDifferentiableError(
                f"the loss is not differentiable here: {where} sits on the ReLU kink of "
                f"sample {sample} (w_r . x_i == 0 exactly; kinked neurons: "
                f"{sorted(set(units.tolist()))}); move off the kink or use model.loss, "
                "which is defined there", neurons=units)

    def _autograd_loss_fn(self):
        """The same loss written with autograd.numpy (for reference_model)."""
        import autograd.numpy as anp

        X, y, a = self.X, self.y, self.a
        shape, scale = (self.width, self.input_dim), self._scale

        def empirical_loss(x):
            W = anp.reshape(x, shape)
            f = scale * anp.dot(anp.maximum(anp.dot(X, W.T), 0.0), a)
            return 0.5 * anp.sum((f - y) ** 2)

        return empirical_loss

    def __repr__(self):
        return (f"EmpiricalReLU(n_samples={self.n_samples}, d={self.input_dim}, "
                f"width={self.width}, n_params={self.n_params})")


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
