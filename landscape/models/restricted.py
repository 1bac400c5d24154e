r"""A model restricted to a linear subspace: L(B z), with exact derivatives from the full model.

With B an (n_params, p) matrix with orthonormal columns, the restricted loss
``L_B(z) = L(B z)`` has gradient ``B^T grad L(B z)`` and Hessian ``B^T H(B z) B``:
p Hessian-vector products of the full model, never its n_params x n_params
Hessian.  Any solver runs on it unchanged (it is a :class:`Model`).  Used for
the fixed-point subspaces of isotropy groups (principle of symmetric
criticality: for B spanning Fix(G) the gradient at B z lies in Fix(G), so a
critical point of L_B is a critical point of L).
"""

import numpy as np

from .base import Model, check_model

__all__ = ["RestrictedModel"]


class RestrictedModel(Model):
    r"""L_B(z) = L(B z) for a model L and a subspace with orthonormal basis B.

    Parameters
    ----------
    model : Model
    subspace : object
        The subspace, with ``dim`` (p), ``point(Z)`` (the rows of Z, shape (B, p),
        mapped to B z, shape (B, n_params)) and ``coordinates(x)`` (B^T x for one
        x of shape (n_params,)): e.g. a :class:`~landscape.FixedPointSubspace`.

    Notes
    -----
    ``grad L_B(z) = B^T grad L(Bz)``, ``H_B(z) u = B^T H(Bz) B u``.  The dense
    Hessian is built from p Hessian-vector products.

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> from landscape.models.restricted import RestrictedModel
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(50), n_students=50)
    >>> F = ls.fixed_point_subspace(m, ls.Isotropy.diagonal(m, [50]))   # W = a I + b (J - I)
    >>> r = RestrictedModel(m, F)
    >>> r.n_params, round(r.loss(F.coordinates(m.flatten(np.eye(50)))), 12)
    (2, 0.0)
    """

    def __init__(self, model, subspace):
        self.model = check_model(model)
        self.subspace = subspace
        self.n_params = int(subspace.dim)
        self.input_dim = model.input_dim
        self.optimal_loss = model.optimal_loss

    def flatten(self, params):
        return self.check_x(params, "params")

    def unflatten(self, x):
        return self.check_x(x)

    def lift(self, Z):
        """B z for each row z of Z, shape (B, n_params of the full model)."""
        return self.subspace.point(Z)

    def restrict(self, X):
        """B^T x for each row x of X, shape (B, p)."""
        return np.stack([self.subspace.coordinates(x) for x in X])

    def loss_kernel(self, X):
        return self.model.loss_kernel(self.lift(X))

    def grad_kernel(self, X):
        return self.restrict(self.model.grad_kernel(self.lift(X)))

    def hvp_kernel(self, X, U):
        return self.restrict(self.model.hvp_kernel(self.lift(X), self.lift(U)))

    def nondifferentiable_units(self, X):
        return self.model.nondifferentiable_units(self.lift(X))

    def work_per_row(self):
        return self.model.work_per_row()

    def __repr__(self):
        return f"RestrictedModel({self.model!r}, dim={self.n_params})"
