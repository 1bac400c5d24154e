"""Teacher-student population loss with unit output weights (Safran et al. 2021, Xu & Du 2023)."""

import numpy as np

from .._validation import as_choice, as_positive_int
from . import collinear
from . import compiled
from .balls import BallDerivatives, SplitParent, ball_population_derivatives, split_deviation
from ._kernels import PopulationLoss, row_norms
from .base import Model, check_matrix, check_scale, row_norms_unscaled
from .symmetry import Stabilizer, Symmetry

__all__ = ["ReluTeacherStudent"]


class ReluTeacherStudent(Model):
    r"""F(W) = 1/2 E[(sum_i sigma(w_i.x) - sum_j sigma(v_j.x))^2], x ~ N(0, I_d).

    Parameters
    ----------
    teacher : array_like of shape (n, d)
        Teacher neurons v_j as rows.
    n_students : int
        Number k >= 1 of student neurons; parameters are W (k, d) flattened.
    backend : {"auto", "numba", "numpy"}
        Who computes loss, gradient and Hessian: compiled numba kernels (``"auto"`` when numba
        is installed: loss, gradient, Hessian, Hessian-vector products and a fused
        gradient-descent loop, :meth:`fused_kernel`) or the batched
        numpy kernels, the tested reference (they agree to ~1e-15; see
        ``tests/test_fused.py``).

    Notes
    -----
    Closed form (Cho & Saul's arc-cosine kernel), with theta the angle of a pair,

    .. math:: F = \tfrac12 \sum_{i,i'} \kappa(w_i, w_{i'}) - \sum_{i,j}\kappa(w_i, v_j)
              + \tfrac12 \sum_{j,j'} \kappa(v_j, v_{j'}),\quad
              \kappa(u, w) = \frac{\|u\|\|w\|}{2\pi}(\sin\theta + (\pi - \theta)\cos\theta).

    Gradient, Hessian and Hessian-vector product are exact closed forms
    (see :class:`landscape.models._kernels.PopulationLoss`).  The loss is not
    differentiable where a student neuron is zero.

    References
    ----------
    I. Safran, G. Yehudai, O. Shamir, "The effects of mild over-parameterization on the
    optimization landscape of shallow ReLU neural networks", COLT 2021, eq. (1).

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    >>> x = m.flatten(np.eye(3))
    >>> m.loss(x), float(np.abs(m.grad(x)).max())
    (0.0, 0.0)
    >>> round(float(np.linalg.eigvalsh(m.hess(x))[0]), 6)   # 1/4 - 1/(2 pi)
    0.090845
    """

    def __init__(self, teacher, n_students, *, backend="auto"):
        V = check_matrix(teacher, "teacher")
        check_scale(row_norms_unscaled(V), "teacher", "rescale it: the landscape is the same "
                    "up to scale, F(cW; cV) = c^2 F(W; V)")
        self.teacher = V
        self.n_students = as_positive_int(n_students, "n_students")
        self.input_dim = V.shape[1]
        self.n_params = self.n_students * self.input_dim
        self._engine = PopulationLoss(V, np.ones(V.shape[0]), np.zeros(self.input_dim))
        as_choice(backend, "backend", ("auto", "numba", "numpy"))
        if backend == "numba" and not compiled.AVAILABLE:
            raise ImportError("backend='numba' needs numba (pip install numba) and "
                              "LANDSCAPE_NUMBA unset; use backend='numpy' or 'auto'")
        self.backend = "numba" if backend != "numpy" and compiled.AVAILABLE else "numpy"
        self._fused = None
        if self.backend == "numba":
            nV = row_norms(V)
            Vbar = V / np.where(nV > 0, nV, 1.0)[:, None]
            self._fused = compiled.TeacherStudentKernel(self.n_students, self.input_dim, Vbar,
                                                      -V, -nV, self._engine.constant)
        n_active = int(np.count_nonzero(row_norms(V) > 0))
        self.optimal_loss = 0.0 if self.n_students >= n_active else None

    # ---- parameters ---------------------------------------------------------------
    def flatten(self, W):
        """W of shape (n_students, d) -> x of shape (n_students * d,)."""
        W = check_matrix(W, "W", cols=self.input_dim)
        if W.shape[0] != self.n_students:
            raise ValueError(f"W must have {self.n_students} rows (one per student), "
                             f"got {W.shape[0]}")
        return W.ravel()

    def unflatten(self, x):
        """x of shape (n_students * d,) -> W of shape (n_students, d) (a copy)."""
        return self.check_x(x).reshape(self.n_students, self.input_dim)

    def symmetry(self):
        """Student permutations and the teacher's stabiliser (see :class:`~landscape.Symmetry`).

        F(W Q^T) = F(W) for every orthogonal Q with ``V Q^T = P V`` (P a
        permutation of the teacher rows): :meth:`Stabilizer.of_teacher
        <landscape.Stabilizer.of_teacher>` of V.  For ``V = I`` it permutes input
        coordinates; when rank V < d it rotates span(V)^perp freely.
        """
        k, d = self.n_students, self.input_dim
        return Symmetry(input_weights=np.arange(k * d).reshape(k, d),
                        stabilizer=Stabilizer.of_teacher(self.teacher))

    # ---- critical manifolds -------------------------------------------------------
    def manifold_tangents(self, x):
        """Split directions of every group of positively collinear students, shape (m, n_params).

        A group of m students along u spans an (m - 1)-dimensional simplex of
        critical points (when x is critical): moving mass t u from one member to
        another keeps sum_i sigma(w_i . x) and every gradient.
        """
        W = self.unflatten(x)
        T = collinear.split_tangents(W, collinear.collinear_groups(W))
        return T.reshape(T.shape[0], self.n_params)

    def merge_collinear(self, x):
        """Each group of positively collinear students replaced by their sum (the others zero)."""
        W = self.unflatten(x)
        return collinear.merge_rows(W, collinear.collinear_groups(W))[0].ravel()

    def smooth_radius(self, x):
        """The smallest student norm: within it no student reaches zero."""
        return float(row_norms(self.unflatten(x)).min())

    # ---- certification ----------------------------------------------------------------
    def enclose_derivatives(self, x, radius, *, prec=106):
        """Ball-arithmetic gradient at x and Hessian over the box of half-width radius.

        See :meth:`Model.enclose_derivatives`; the formulas and the treatment of parallel
        neurons are in :func:`landscape.models.balls.ball_population_derivatives`.
        """
        W = self.unflatten(x)
        n = self.teacher.shape[0]
        g, H = ball_population_derivatives(np.ones(self.n_students), W, self.teacher,
                                           np.ones(n), np.zeros(self.input_dim),
                                           float(radius), prec=prec)
        return BallDerivatives(free=np.arange(self.n_params), grad=g, hess=H,
                               radius=float(radius))

    def split_parent(self, x, angle_tol=collinear.COLLINEAR_ANGLE):
        """x as a split of a point with one student per group of collinear students, or None.

        The lift puts fractions ``t_a`` (summing to 1) of the merged row on the group's
        members: a critical point of the parent lifts to a critical point here (unit output
        weights: ``sum_a sigma(t_a u.x) = sigma(u.x)``, and every member's gradient is the
        parent's).
        """
        W = self.unflatten(x)
        groups = collinear.collinear_groups(W, angle_tol)
        if not groups:
            return None
        drop = np.concatenate([g[1:] for g in groups])
        merged = collinear.merge_rows(W, groups)[0]
        keep = np.setdiff1d(np.arange(self.n_students), drop)
        parent = ReluTeacherStudent(self.teacher, keep.size, backend=self.backend)
        deviation, lipschitz = split_deviation(W, merged, groups)
        return SplitParent(model=parent, x=merged[keep].ravel(), deviation=deviation,
                           lipschitz=lipschitz, n_tangents=int(drop.size))

    def align_collinear(self, X, angle_tol):
        Wb = self._students(X)
        changed = collinear.nearly_collinear(Wb, angle_tol)
        if not changed.any():
            return X, changed
        out = X.copy()
        Wo = self._students(out)
        for b in np.flatnonzero(changed):
            groups = collinear.collinear_groups(Wb[b], angle_tol)
            changed[b] = bool(groups)
            if groups:
                Wo[b] = collinear.align_rows(Wb[b], groups)
        return out, changed

    def aligned_basis(self, x, angle_tol):
        W = x.reshape(self.n_students, self.input_dim)
        groups = collinear.collinear_groups(W, angle_tol)
        return collinear.aligned_basis(W, groups) if groups else None

    # ---- kernels ------------------------------------------------------------------
    def _students(self, X):
        """(B, n_params) -> W of shape (B, k, d), a view."""
        return X.reshape(X.shape[0], self.n_students, self.input_dim)

    def _split(self, X):
        """Unit output weights and W, the arguments of the second-order kernels."""
        return np.ones((X.shape[0], self.n_students)), self._students(X)

    def autograd_loss_fn(self):
        """The same loss written with autograd.numpy (for ``reference_model``)."""
        from .autodiff import population_loss_fn

        d = self.input_dim
        return population_loss_fn(self.n_students, d, self.teacher,
                                  np.ones(self.teacher.shape[0]), np.zeros(d), trained_a=False)

    def loss_kernel(self, X):
        if self._fused is not None:
            return self._fused.loss(X)
        return self._engine.loss(None, self._students(X))

    def grad_kernel(self, X, out=None):
        if self._fused is not None:
            return self._fused.grad(X, out=out)[0]
        G = None if out is None else self._students(out)
        _, G = self._engine.grad(None, self._students(X), with_a=False, out=G)
        return G.reshape(X.shape[0], -1)

    grad_kernel.writes_out = True      # Model.in_chunks hands it its rows of the output

    def hvp_kernel(self, X, U):
        if self._fused is not None:
            return self._fused.hvp(X, U)
        a, W = self._split(X)
        _, H = self._engine.hvp(a, W, np.zeros_like(a), U.reshape(W.shape), with_a=False)
        return H.reshape(X.shape[0], -1)

    def hess_kernel(self, X):
        if self._fused is not None:
            return self._fused.hess(X)
        return self._engine.hess(*self._split(X), with_a=False)

    def nondifferentiable_units(self, X):
        # a row's norm is 0 exactly when every entry is (row_norms rescales tiny rows)
        if X.all():                      # no zero entry at all: the common case, fast
            return np.zeros((X.shape[0], self.n_students), dtype=bool)
        return ~X.reshape(X.shape[0], self.n_students, self.input_dim).any(axis=2)

    def fused_kernel(self):
        """The compiled (numba) gradient-descent kernel of this loss; None with backend numpy."""
        return self._fused

    def work_per_row(self):
        return self.n_students * (self.n_students + self.teacher.shape[0]) * (
            self.input_dim + 4)

    def __repr__(self):
        n, d = self.teacher.shape
        return f"ReluTeacherStudent(n_teacher={n}, n_students={self.n_students}, d={d})"
