"""Two-layer ReLU network with trained output weights on a population loss (Tinaz et al. 2026)."""

import numpy as np

from .._validation import as_float_array, as_positive_int
from . import collinear
from ._kernels import PopulationLoss, row_norms
from .balls import BallDerivatives, ball_population_derivatives
from .base import Model, check_matrix, check_scale, row_norms_unscaled
from .symmetry import Stabilizer, Symmetry

__all__ = ["TwoLayerReLU", "LinearTarget", "ReluTarget"]


class LinearTarget:
    """Planted linear target y = beta.x.

    Parameters
    ----------
    beta : array_like of shape (d,)
    """

    def __init__(self, beta):
        self.beta = as_float_array(beta, "beta", ndim=1)
        check_scale(row_norms_unscaled(self.beta[None]), "beta", "rescale it: the landscape "
                    "is the same up to scale, L(a, cW; c beta) = c^2 L(a, W; beta)")

    @property
    def input_dim(self):
        return self.beta.shape[0]

    def __repr__(self):
        return f"LinearTarget(d={self.input_dim})"


class ReluTarget:
    """ReLU teacher y = sum_j a_star[j] sigma(v_j.x).

    Parameters
    ----------
    V : array_like of shape (n, d)
        Teacher neurons as rows.
    a_star : array_like of shape (n,), optional
        Teacher output weights (default all ones).
    """

    def __init__(self, V, a_star=None):
        self.V = check_matrix(V, "V")
        n = self.V.shape[0]
        self.a_star = (np.ones(n) if a_star is None
                       else as_float_array(a_star, "a_star", shape=(n,)))
        with np.errstate(over="ignore"):
            norms = np.abs(self.a_star) * row_norms_unscaled(self.V)
        check_scale(norms, "V" if a_star is None else "the teacher (V, a_star)",
                    "rescale it: the landscape is the same up to scale")

    @property
    def input_dim(self):
        return self.V.shape[1]

    def __repr__(self):
        return f"ReluTarget(n={self.V.shape[0]}, d={self.input_dim})"


class TwoLayerReLU(Model):
    r"""L(a, W) = 1/2 E[(sum_i a_i sigma(w_i.x) - y(x))^2] with both layers trained.

    Parameters
    ----------
    n_hidden : int
        Number k >= 1 of hidden neurons.
    target : LinearTarget or ReluTarget

    Notes
    -----
    Parameters are ``x = (a, W.ravel())`` with a of shape (k,) and W of shape (k, d).
    For a linear target (Tinaz, Xie & Soltanolkotabi 2026)

    .. math:: L(a, W) = \tfrac12\big[a^\top K(W) a - \textstyle\sum_i a_i\,\beta\cdot w_i
              + \|\beta\|^2\big], \quad K_{ii'} = \kappa(w_i, w_{i'}).

    The rescalings (a_i, w_i) -> (a_i / c, c w_i), c > 0, leave L unchanged: one
    zero Hessian eigenvalue per neuron at every critical point
    (:meth:`symmetry_tangents`).

    References
    ----------
    A. Tinaz, Y. Xie, M. Soltanolkotabi, "When both layers learn: training dynamics of
    representing linear models via ReLU networks", COLT 2026.

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget([1.0, 0.0]))
    >>> x = m.flatten(([1.0, -1.0], [[1.0, 0.0], [-1.0, 0.0]]))   # beta.x = s(x1) - s(-x1)
    >>> abs(m.loss(x)) < 1e-15, float(np.abs(m.grad(x)).max()) < 1e-15
    (True, True)
    """

    def __init__(self, n_hidden, target):
        if not isinstance(target, (LinearTarget, ReluTarget)):
            raise TypeError("target must be a LinearTarget(beta) or a ReluTarget(V, a_star), "
                            f"got {type(target).__name__}")
        self.n_hidden = as_positive_int(n_hidden, "n_hidden")
        self.target = target
        d = target.input_dim
        self.input_dim = d
        self.n_params = self.n_hidden * (d + 1)
        if isinstance(target, LinearTarget):
            V, c, beta = np.zeros((0, d)), np.zeros(0), target.beta
            needed = 2 if np.any(beta != 0) else 0
            # one neuron can fit only sigma(beta.x): the best residual is |beta|^2/4
            self.optimal_loss = (0.0 if self.n_hidden >= needed
                                 else float(beta @ beta) / 4.0)
        else:
            V, c, beta = target.V, target.a_star, np.zeros(d)
            active = int(np.count_nonzero((row_norms(V) > 0) & (c != 0)))
            self.optimal_loss = 0.0 if self.n_hidden >= active else None
        self._engine = PopulationLoss(V, c, beta)

    # ---- parameters ---------------------------------------------------------------
    def flatten(self, params):
        """(a, W) with a of shape (k,) and W of shape (k, d) -> x of shape (k (d + 1),)."""
        try:
            a, W = params
        except (TypeError, ValueError):
            raise TypeError("params must be a pair (a, W) of output weights and hidden "
                            "weights") from None
        a = as_float_array(a, "a", shape=(self.n_hidden,))
        W = check_matrix(W, "W", cols=self.input_dim)
        if W.shape[0] != self.n_hidden:
            raise ValueError(f"W must have {self.n_hidden} rows (one per hidden neuron), "
                             f"got {W.shape[0]}")
        return np.concatenate([a, W.ravel()])

    def unflatten(self, x):
        """x -> (a, W) with a of shape (k,) and W of shape (k, d) (copies)."""
        x = self.check_x(x)
        k = self.n_hidden
        return x[:k].copy(), x[k:].reshape(k, self.input_dim)

    def symmetry(self):
        """Permutations, rescalings and the target's stabiliser (see :class:`~landscape.Symmetry`).

        The rescalings (a_i, w_i) -> (a_i / c, c w_i), c > 0, and the orthogonal
        maps that preserve the target: for a :class:`ReluTarget` those permuting
        the teacher neurons together with their output weights a*_j, for a
        :class:`LinearTarget` beta those fixing beta (``O(d - 1)`` on the
        complement of beta) and the odd map (a, W) -> (-a, -W) (f(x) -> -f(-x):
        the target is odd and x ~ N(0, I) symmetric).
        """
        k, d = self.n_hidden, self.input_dim
        if isinstance(self.target, LinearTarget):
            stabilizer, odd = Stabilizer.of_teacher(self.target.beta[None]), True
        else:
            stabilizer, odd = Stabilizer.of_teacher(self.target.V, self.target.a_star), False
        return Symmetry(input_weights=k + np.arange(k * d).reshape(k, d),
                        output_weights=np.arange(k), stabilizer=stabilizer, rescaling=True,
                        odd=odd)

    def symmetry_tangents(self, x):
        """One rescaling tangent per neuron: (a_i, w_i) -> (-a_i, w_i), shape (k, n_params)."""
        a, W = self.unflatten(x)
        k = self.n_hidden
        T = np.zeros((k, self.n_params))
        T[np.arange(k), np.arange(k)] = -a
        for i in range(k):
            T[i, k + i * self.input_dim:k + (i + 1) * self.input_dim] = W[i]
        return T

    # ---- critical manifolds -------------------------------------------------------
    def manifold_tangents(self, x):
        """Redistributions of a_i |w_i| within each group of positively collinear neurons.

        A group along u computes (sum_i a_i |w_i|) sigma(u . x); moving output
        weight between two members at a fixed sum, delta a_j = |w_0|, delta a_0 =
        -|w_j|, keeps the function.  With the rescalings
        (:meth:`symmetry_tangents`) these span the group's 2m - 1 dimensional
        manifold.  Shape (m, n_params).
        """
        return collinear.trained_split_tangents(*self.unflatten(x))

    def merge_collinear(self, x):
        """Each group of positively collinear neurons as one: a = sum a_i |w_i|, w = unit direction.

        The function-space key of a split manifold.
        """
        return collinear.merge_trained(*self.unflatten(x))

    def smooth_radius(self, x):
        """min(|w_i|, |a_i| over a_i != 0).

        Within it no neuron vanishes or flips its output sign.
        """
        a, W = self.unflatten(x)
        a = np.abs(a[a != 0])
        return float(min(row_norms(W).min(), a.min() if a.size else np.inf))

    # ---- certification ----------------------------------------------------------------
    def enclose_derivatives(self, x, radius, *, prec=106):
        """Ball-arithmetic derivatives in the slice of fixed output weights a (free: W).

        The rescalings (a_i, w_i) -> (a_i / c, c w_i) make every critical point a curve, so the
        full Hessian is singular.  The slice {a = a(x)} meets each curve transversally where
        every a_i != 0, and a critical point of W -> L(a, W) is one of L: differentiating
        L(a_i / c, c w_i) = L(a, W) at c = 1 gives ``a_i dL/da_i = w_i . dL/dw_i``.  The
        Hessian of L at such a point is congruent to diag(H_WW, 0): its inertia is that of
        the slice Hessian plus one zero per neuron.

        Raises
        ------
        ValueError
            If an output weight a_i is 0 (the slice is not transversal there).
        """
        a, W = self.unflatten(x)
        zero = np.flatnonzero(a == 0)
        if zero.size:
            raise ValueError(f"output weight(s) a[{zero.tolist()}] are 0: the slice of fixed "
                             "output weights is not transversal to the rescalings there, so the "
                             "critical point cannot be certified isolated in it")
        e = self._engine
        g, H = ball_population_derivatives(a, W, e.V, e.c, e.beta, float(radius), prec=prec)
        k = self.n_hidden
        return BallDerivatives(free=np.arange(k, self.n_params), grad=g, hess=H,
                               radius=float(radius))

    def align_collinear(self, X, angle_tol):
        A, Wb = self._split(X)
        Wo, changed = collinear.align_trained(A, Wb, angle_tol)
        return (self._join(A, Wo) if changed.any() else X), changed

    def aligned_basis(self, x, angle_tol):
        k = self.n_hidden
        return collinear.trained_aligned_basis(x[k:].reshape(k, self.input_dim), angle_tol)

    # ---- kernels ------------------------------------------------------------------
    def _split(self, X):
        k = self.n_hidden
        return X[:, :k], X[:, k:].reshape(X.shape[0], k, self.input_dim)

    def _join(self, ga, gW):
        return np.concatenate([ga, gW.reshape(ga.shape[0], -1)], axis=1)

    def autograd_loss_fn(self):
        """The same loss written with autograd.numpy (for ``reference_model``)."""
        from .autodiff import population_loss_fn

        e = self._engine
        return population_loss_fn(self.n_hidden, self.input_dim, e.V, e.c, e.beta,
                                  trained_a=True)

    def loss_kernel(self, X):
        return self._engine.loss(*self._split(X))

    def grad_kernel(self, X):
        return self._join(*self._engine.grad(*self._split(X), with_a=True))

    def hvp_kernel(self, X, U):
        a, W = self._split(X)
        da, dW = self._split(U)
        return self._join(*self._engine.hvp(a, W, da, dW, with_a=True))

    def hess_kernel(self, X):
        return self._engine.hess(*self._split(X), with_a=True)

    def nondifferentiable_units(self, X):
        return row_norms(self._split(X)[1]) == 0

    def work_per_row(self):
        J = self.n_hidden + self._engine.V.shape[0]
        return self.n_hidden * J * (self.input_dim + 4)

    def __repr__(self):
        return f"TwoLayerReLU(n_hidden={self.n_hidden}, target={self.target!r})"
