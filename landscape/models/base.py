"""The model contract: a loss on flat float64 parameter vectors with exact derivatives.

A model knows nothing about solvers.  A subclass implements ``flatten``/``unflatten``
and a handful of public batched *kernels* (the contract below); this base class
supplies validation, the single-point methods, memory-bounded batching and the
defaults every model shares.  Solvers call the kernels directly on arrays they have
already checked, so a user's model is a solver's model.

The contract (see :class:`Model`):

=============================  =======================================================
``loss_kernel(X)``             (B,) losses of the rows of X (required)
``grad_kernel(X)``             (B, n_params) gradients (required)
``hvp_kernel(X, U)``           (B, n_params) rows H(X[b]) @ U[b] (one of these two)
``hess_kernel(X)``             (B, n_params, n_params) dense Hessians
``nondifferentiable_units(X)`` (B, n_units) bool: units on the non-smooth set
``work_per_row()``             float64 entries a kernel touches per row (chunk size)
``symmetry()``                 the symmetry group as data (:class:`~landscape.Symmetry`)
``symmetry_tangents(x)``       continuous symmetries at x (zero modes of the loss)
``manifold_tangents(x)``       tangents of known critical manifolds at x
=============================  =======================================================

Kernels receive clean float64 arrays and do no validation; they may return non-finite
values (a diverging descent is data).  ``check_x``, ``check_batch``, ``in_chunks`` and
``require_differentiable`` are the checks and batching the public methods use, for
solvers that call kernels.  :func:`check_model` verifies an object is a model.
"""

import abc

import numpy as np

from .._validation import as_batch, as_float_array, as_positive_float, as_positive_int, as_rng
from .._validation import as_vector
from ..errors import NonDifferentiableError

__all__ = ["Model", "check_model"]

# Batched kernels hold a few arrays of about `B * work_per_row` float64 entries;
# batches are cut into chunks so that these stay near this many entries.
_BATCH_BUDGET = 2**20
# A point whose largest |entry| exceeds this is "too large" in the message of a non-finite
# result: the closed forms multiply pairs of norms, which overflow float64 beyond ~1e154.
_HUGE = 1e100


class Model(abc.ABC):
    """A twice-differentiable loss L: R^n_params -> R (off a non-smooth set).

    Public methods validate their arguments and then call the batched kernels
    ``loss_kernel``, ``grad_kernel``, ``hvp_kernel`` and ``hess_kernel`` (the
    model contract, module docstring), which receive clean float64 arrays.  A
    non-finite result at a finite point (float64 overflow at a huge point, e.g.
    ``x * 1e300``) is a ValueError naming the argument, never a silent NaN; the
    kernels return it as data (a diverging descent).

    Examples
    --------
    A model of one's own implements two kernels (here L(x) = |x|^4 / 4):

    >>> import numpy as np, landscape as ls
    >>> class Quartic(ls.Model):
    ...     n_params = input_dim = 2
    ...     optimal_loss = 0.0
    ...     def flatten(self, params): return self.check_x(params, "params")
    ...     def unflatten(self, x): return self.check_x(x)
    ...     def loss_kernel(self, X): return 0.25 * np.sum(X * X, axis=1) ** 2
    ...     def grad_kernel(self, X): return np.sum(X * X, axis=1)[:, None] * X
    ...     def hvp_kernel(self, X, U):
    ...         return (np.sum(X * X, axis=1)[:, None] * U
    ...                 + 2 * np.sum(X * U, axis=1)[:, None] * X)
    >>> m = ls.check_model(Quartic())
    >>> float(m.loss([1.0, 1.0])), m.hess([1.0, 0.0]).tolist()
    (1.0, [[3.0, 0.0], [0.0, 1.0]])

    Attributes
    ----------
    n_params : int
        Length of the flat parameter vector ``x``.
    input_dim : int
        Dimension d of the network input (sets the default init scale 1/sqrt(d)).
    optimal_loss : float or None
        The known global minimum value of the loss, or None when unknown.
    """

    n_params: int
    input_dim: int
    optimal_loss = None

    # ---- to implement -------------------------------------------------------------
    @abc.abstractmethod
    def flatten(self, params):
        """Structured parameters -> flat float64 vector of shape (n_params,)."""

    @abc.abstractmethod
    def unflatten(self, x):
        """Flat vector of shape (n_params,) -> structured parameters."""

    # ---- the kernels ---------------------------------------------------------------
    @abc.abstractmethod
    def loss_kernel(self, X):
        """Losses of the rows of X, shape (B,)."""

    @abc.abstractmethod
    def grad_kernel(self, X):
        """Gradients of the rows of X, shape (B, n_params)."""

    def hvp_kernel(self, X, U):
        """Hessian-vector products H(X[b]) @ U[b], shape (B, n_params).

        Default: from the dense Hessians of :meth:`hess_kernel`.
        """
        return np.einsum("bij,bj->bi", self.hess_kernel(X), U)

    def hess_kernel(self, X):
        """Dense Hessians of the rows of X, shape (B, n_params, n_params), symmetric.

        Default: n_params Hessian-vector products per row (the columns of H).
        """
        if type(self).hvp_kernel is Model.hvp_kernel:
            raise NotImplementedError(f"{type(self).__name__} implements neither hvp_kernel "
                                      "nor hess_kernel")
        n, eye = self.n_params, np.eye(self.n_params)
        H = np.stack([self.hvp_kernel(np.repeat(x[None], n, axis=0), eye) for x in X])
        return 0.5 * (H + np.swapaxes(H, 1, 2))

    def nondifferentiable_units(self, X):
        """Boolean array (B, n_units): which units of each row sit on the non-smooth set."""
        return np.zeros((X.shape[0], 0), dtype=bool)

    def fused_kernel(self):
        """A compiled first-order kernel for gradient descent, or None (the default).

        Optional part of the contract.  A model may return an object with the method
        ``advance(run, active, stop_below, check_from, gn, reason)`` that steps the active
        rows of a :class:`landscape.critical.advance.DescentRun` to their next event, exactly
        as the run's numpy back end does with :meth:`grad_kernel` (the reference it is
        tested against).  :class:`~landscape.ReluTeacherStudent` returns a numba kernel.
        """
        return None

    def work_per_row(self):
        """Rough number of float64 entries a batched kernel touches per row."""
        return self.n_params

    # ---- single points ------------------------------------------------------------
    def loss(self, x):
        """Loss at x.

        Parameters
        ----------
        x : array_like of shape (n_params,)

        Returns
        -------
        float
        """
        x = self.check_x(x)
        with np.errstate(over="ignore", invalid="ignore"):
            out = self.loss_kernel(x[None])
        return float(_finite(out, x[None], "loss", "x")[0])

    def grad(self, x):
        """Gradient at x, shape (n_params,).

        Raises
        ------
        NonDifferentiableError
            If x lies on the non-smooth set (e.g. a zero ReLU neuron).
        """
        x = self.check_x(x)
        self.require_differentiable(x[None])
        with np.errstate(over="ignore", invalid="ignore"):
            out = self.grad_kernel(x[None])
        return _finite(out, x[None], "gradient", "x")[0]

    def hess(self, x):
        """Dense Hessian at x, shape (n_params, n_params), symmetric."""
        x = self.check_x(x)
        self.require_differentiable(x[None])
        with np.errstate(over="ignore", invalid="ignore"):
            out = self.hess_kernel(x[None])[0]
        return _finite(out[None], x[None], "Hessian", "x")[0]

    def hvp(self, x, v):
        """Hessian-vector product H(x) @ v without forming H, shape (n_params,)."""
        x = self.check_x(x)
        v = as_vector(v, self.n_params, "v", "pass a direction of the same length as x")
        self.require_differentiable(x[None])
        with np.errstate(over="ignore", invalid="ignore"):
            out = self.hvp_kernel(x[None], v[None])
        return _finite(out, x[None], "Hessian-vector product", "x")[0]

    def is_differentiable(self, x):
        """Whether the loss is twice differentiable at x (no unit on the non-smooth set)."""
        x = self.check_x(x)
        return not bool(np.any(self.nondifferentiable_units(x[None])))

    # ---- batches ------------------------------------------------------------------
    def loss_batch(self, X):
        """Losses of every row of X.

        Parameters
        ----------
        X : array_like of shape (B, n_params)

        Returns
        -------
        ndarray of shape (B,)
        """
        X = self.check_batch(X)
        with np.errstate(over="ignore", invalid="ignore"):
            out = self.in_chunks(self.loss_kernel, X, out_shape=())
        return _finite(out, X, "loss", "X", batch=True)

    def grad_batch(self, X):
        """Gradients of every row of X, shape (B, n_params); vectorised over rows."""
        X = self.check_batch(X)
        self.require_differentiable(X)
        with np.errstate(over="ignore", invalid="ignore"):
            out = self.in_chunks(self.grad_kernel, X, out_shape=(self.n_params,))
        return _finite(out, X, "gradient", "X", batch=True)

    def hvp_batch(self, X, U):
        """Row-wise Hessian-vector products H(X[b]) @ U[b], shape (B, n_params)."""
        X = self.check_batch(X)
        U = as_batch(U, self.n_params, "U")
        if U.shape != X.shape:
            raise ValueError(f"U must have the shape of X {X.shape} (one direction per row), "
                             f"got {U.shape}")
        self.require_differentiable(X)
        with np.errstate(over="ignore", invalid="ignore"):
            out = self.in_chunks(self.hvp_kernel, X, U, out_shape=(self.n_params,))
        return _finite(out, X, "Hessian-vector product", "X", batch=True)

    def hess_batch(self, X):
        """Dense Hessians of every row of X, shape (B, n_params, n_params)."""
        X = self.check_batch(X)
        self.require_differentiable(X)
        n = self.n_params
        B = X.shape[0]
        out = np.empty((B, n, n))
        step = max(1, _BATCH_BUDGET // max(1, n * n + self.work_per_row()))
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, B, step):
                out[start:start + step] = self.hess_kernel(X[start:start + step])
        return _finite(out, X, "Hessian", "X", batch=True)

    def is_differentiable_batch(self, X):
        """Boolean array (B,): which rows of X are points of twice-differentiability."""
        X = self.check_batch(X)
        return ~np.any(self.nondifferentiable_units(X), axis=1)

    # ---- initialisation and symmetry ----------------------------------------------
    def sample_init(self, n, rng=0, scale=None):
        """Draw n starting points with i.i.d. N(0, scale^2) entries.

        Parameters
        ----------
        n : int
            Number of starts.
        rng : int, Generator, SeedSequence or None
        scale : float, optional
            Standard deviation of every entry; default ``1/sqrt(input_dim)``
            (Xavier-style, the N(0, 1/d) initialisation of Safran et al. 2021).

        Returns
        -------
        ndarray of shape (n, n_params)
        """
        n = as_positive_int(n, "n")
        scale = (1.0 / np.sqrt(self.input_dim) if scale is None
                 else as_positive_float(scale, "scale"))
        return scale * as_rng(rng).standard_normal((n, self.n_params))

    def symmetry(self):
        """The symmetry group of the loss, as data: a :class:`~landscape.Symmetry`.

        :func:`~landscape.canonicalize`, :func:`~landscape.orbit_distance` and
        scans' deduplication work modulo this group.  A model with neurons
        overrides it to declare its neuron layout (which entries of x are each
        neuron's input and output weights), which neurons may be exchanged, the
        orthogonal maps of input space that fix its target
        (:class:`~landscape.Stabilizer`), and whether positive rescalings and the
        odd map x -> -x act.  It is read once per model, so it must not change
        over the model's life.

        Default: ``Symmetry()``, the trivial group (the orbit of x is {x}).

        Returns
        -------
        Symmetry

        Examples
        --------
        >>> import numpy as np, landscape as ls
        >>> ls.AutogradModel(lambda x: (x ** 2).sum(), 2).symmetry()
        Symmetry()
        >>> ls.ReluTeacherStudent(teacher=np.eye(2), n_students=3).symmetry()
        Symmetry(n_neurons=3, input_dim=2, classes=(3,),
                 stabilizer=Stabilizer(input_dim=2, rank=2, kind='finite', order=2),
                 rescaling=False, odd=False)
        """
        from .symmetry import Symmetry      # symmetry.py imports this module
        return Symmetry()

    def symmetry_tangents(self, x):
        """Tangent vectors of the model's continuous symmetries at x, shape (m, n_params).

        Directions along which the loss is exactly constant (e.g. the rescalings
        (a_i, w_i) -> (a_i/c, c w_i) of a two-layer network); they explain zero
        Hessian eigenvalues.  Empty for models without continuous symmetries.
        """
        self.check_x(x)
        return np.zeros((0, self.n_params))

    # ---- critical manifolds ---------------------------------------------------------
    def manifold_tangents(self, x):
        """Tangents at x of the manifolds of critical points the model knows, shape (m, n_params).

        Over-parameterised networks have continua of critical points: neurons
        that point the same way compute one neuron, and how they share it
        changes neither the loss nor (at a critical point) the gradient.  Each
        row is one such direction at x (unnormalised): for a group of m
        positively collinear neurons, m - 1 split directions.  Unlike
        :meth:`symmetry_tangents` these are not symmetries of the loss: they are
        zero modes only where x is critical.  Empty by default.
        """
        self.check_x(x)
        return np.zeros((0, self.n_params))

    def merge_collinear(self, x):
        """The same network function with each group of collinear neurons merged into one.

        The function-space key of a critical manifold: every point of a split
        continuum has the same merged form (the other neurons of a group become
        zero), so points are deduplicated by the orbit distance of their merged
        forms.  The result is a key, not necessarily a point where the loss is
        differentiable.  Default: x itself (a model without neurons).

        Returns
        -------
        ndarray of shape (n_params,)
        """
        return self.check_x(x).copy()

    # ---- certification (ball arithmetic) ---------------------------------------------
    def enclose_derivatives(self, x, radius, *, prec=106):
        """Rigorous enclosures of the derivatives for :func:`~landscape.certify` (optional).

        A model that can be certified returns a :class:`~landscape.models.balls.BallDerivatives`:
        python-flint ball enclosures of the gradient at x exactly and of the Hessian at every
        point of the box ``|y_p - x_p| <= radius`` (in the coordinates it names ``free``; the
        others stay at x, e.g. a slice transversal to a continuous symmetry).  Every rounding
        must be accounted for; a model whose box reaches its non-smooth set raises
        :class:`~landscape.NonDifferentiableError`.

        The default raises TypeError: a model without ball-arithmetic derivatives (e.g. an
        :class:`~landscape.AutogradModel`, whose float derivatives carry no error bound)
        cannot be certified.

        Parameters
        ----------
        x : ndarray of shape (n_params,)
        radius : float
            Half-width of the box of the Hessian enclosure (0: the point x alone).
        prec : int
            Working precision in bits.
        """
        raise TypeError(f"{type(self).__name__} cannot be certified: ls.certify needs rigorous "
                        "ball-arithmetic derivatives (Model.enclose_derivatives), which only "
                        "the closed-form models ReluTeacherStudent and TwoLayerReLU provide; "
                        "float derivatives (autograd, finite differences) carry no error bound")

    def split_parent(self, x):
        """x as a split of a smaller model's point (a :class:`~landscape.models.balls.SplitParent`),
        or None (the default) when x lies on no split manifold the model knows."""
        self.check_x(x)
        return None

    def smooth_radius(self, x):
        """Radius of the ball around x on which no neuron can vanish or change sign.

        The scale x itself sets for the higher-order test of :func:`~landscape.classify`:
        descent that does not persist inside this ball (e.g. a witness that flips the
        sign of a small output weight) proves nothing about x.  ``inf`` by default.
        """
        self.check_x(x)
        return np.inf

    def align_collinear(self, X, angle_tol):
        """Rows of X with nearly collinear neurons (angle <= angle_tol) made exactly collinear.

        The projection onto a split manifold used when polishing; returns
        (X_aligned, changed) with changed a (B,) bool mask.  Default: X unchanged.
        """
        return X, np.zeros(X.shape[0], dtype=bool)

    def aligned_basis(self, x, angle_tol):
        """Orthonormal basis (n_params, m) of the moves that keep x's collinear groups collinear.

        Used to take Newton steps within the set of aligned configurations (where
        the critical points of a split manifold lie); None when x has no group
        within `angle_tol` (the default: a model without neurons).
        """
        return None

    # ---- helpers ------------------------------------------------------------------
    def check_x(self, x, name="x"):
        return as_vector(x, self.n_params, name,
                         f"pass a flat parameter vector of length {self.n_params} "
                         "(use model.flatten(...))")

    def check_batch(self, X, name="X"):
        return as_batch(X, self.n_params, name)

    def require_differentiable(self, X):
        bad = self.nondifferentiable_units(X)
        if bad.any():
            rows, units = np.nonzero(bad)
            where = (f"neuron {units[0]}" if X.shape[0] == 1
                     else f"row {rows[0]}, neuron {units[0]}")
            raise NonDifferentiableError(
                f"the loss is not differentiable here: {where} is exactly zero "
                f"(zero neurons: {sorted(set(units.tolist()))}); move off the zero neuron "
                "or use model.loss, which is defined there", neurons=units)

    def in_chunks(self, kernel, X, *others, out_shape):
        B = X.shape[0]
        out = np.empty((B,) + out_shape)
        step = max(1, _BATCH_BUDGET // max(1, self.work_per_row()))

        # A kernel marked `writes_out` takes out= and fills its rows of the output itself.
        writes_out = getattr(kernel, "writes_out", False)
        for start in range(0, B, step):
            sl = slice(start, start + step)
            if writes_out:
                kernel(X[sl], *(o[sl] for o in others), out=out[sl])
            else:
                out[sl] = kernel(X[sl], *(o[sl] for o in others))
        return out

    def __repr__(self):
        return f"{type(self).__name__}(n_params={self.n_params})"


def check_model(model, name="model"):
    """`model` itself if it implements the model contract, else a TypeError naming `name`."""
    if not isinstance(model, Model):
        raise TypeError(f"{name} must be a landscape model (ReluTeacherStudent, TwoLayerReLU, "
                        f"EmpiricalReLU, AutogradModel, or a subclass of landscape.Model "
                        f"implementing its kernels), got {type(model).__name__}")
    return model


def _finite(out, X, what, name, batch=False):
    """`out` (one row per row of X) if finite, else a ValueError naming the argument and row."""
    if out.size == 0 or np.isfinite(out).all():
        return out
    ok = np.isfinite(out.reshape(len(X), -1)).all(axis=1)
    if ok.all():
        return out
    i = int(np.flatnonzero(~ok)[0])
    where = f"{name} row {i}" if batch else name
    big = float(np.abs(X[i]).max()) if X.shape[1] else 0.0
    if big > _HUGE:
        raise ValueError(f"{where}: the {what} overflows float64 here (entries up to {big:.3g} "
                         "in absolute value); pass a point of a sensible scale (the losses "
                         "are homogeneous: rescale the teacher and the point together)")
    raise ValueError(f"{where}: the {what} is not finite here; the model's loss is not "
                     "defined at this point (for an AutogradModel: loss_fn returned inf or nan)")


def check_scale(norms, name, fix):
    """Refuse data whose size makes the loss overflow: (sum of the `norms`)^2 must be finite.

    The population losses are sums of kappa(u, w) <= |u||w| / 2 over pairs of neurons, so the
    target's own term is at most (sum_j |v_j|)^2 / 4 (or |beta|^2 for a linear target).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.square(np.sum(norms, dtype=np.float64))
    if not np.isfinite(total):
        raise ValueError(f"{name} is too large: the loss overflows float64 (its norms reach "
                         f"{_largest(norms)}); {fix}")


def _largest(values):
    with np.errstate(over="ignore", invalid="ignore"):
        return f"{float(np.max(values)):.3g}"


def row_norms_unscaled(A):
    """Row norms computed without overflow (scaled by the largest entry)."""
    scale = np.abs(A).max() if A.size else 0.0
    if scale == 0 or not np.isfinite(scale):
        return np.linalg.norm(A, axis=-1)
    return scale * np.linalg.norm(A / scale, axis=-1)


def check_matrix(value, name, *, cols=None, fix=""):
    """A finite, non-empty 2-D float64 matrix (rows are neurons)."""
    arr = as_float_array(value, name, allow_empty=True)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array with one neuron per row, got shape "
                         f"{arr.shape}{'; ' + fix if fix else ''}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got shape "
                         f"{arr.shape}")
    if cols is not None and arr.shape[1] != cols:
        raise ValueError(f"{name} must have {cols} columns (the input dimension), got "
                         f"{arr.shape[1]}{'; ' + fix if fix else ''}")
    return arr
