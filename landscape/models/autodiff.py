"""Models from any autograd-differentiable loss, and autograd references of the closed forms.

:class:`AutogradModel` gives any smooth loss written with ``autograd.numpy`` the
full model interface.  :func:`reference_model` re-expresses a closed-form
model's loss with ``autograd.numpy`` so that its hand-written derivatives can be
checked against (and benchmarked against) automatic differentiation of the very
same formula.
"""

import autograd
import autograd.numpy as anp
import numpy as np

from .._validation import as_positive_int
from .base import Model

__all__ = ["AutogradModel", "reference_model", "population_loss_fn"]


class AutogradModel(Model):
    """A model whose derivatives come from autograd.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(x) -> float`` for x of shape (n_params,), written with
        ``autograd.numpy`` so that autograd can differentiate it.
    n_params : int
        Length of x.
    input_dim : int, optional
        Sets the default init scale ``1/sqrt(input_dim)``; default n_params.
    optimal_loss : float, optional
        Known global minimum value, if any.

    Notes
    -----
    Batched methods loop over rows: a generic Python function cannot be
    vectorised for it.  Use the closed-form models where speed matters.

    Examples
    --------
    >>> import autograd.numpy as anp, landscape as ls
    >>> m = ls.AutogradModel(lambda x: (x[1] - x[0]**2) * (x[1] - 2 * x[0]**2), 2)
    >>> m.grad([0.0, 0.0]).tolist(), m.hess([0.0, 0.0]).tolist()
    ([0.0, 0.0], [[0.0, 0.0], [0.0, 2.0]])
    """

    def __init__(self, loss_fn, n_params, *, input_dim=None, optimal_loss=None):
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        self.n_params = as_positive_int(n_params, "n_params")
        self.input_dim = (self.n_params if input_dim is None
                          else as_positive_int(input_dim, "input_dim"))
        self.optimal_loss = None if optimal_loss is None else float(optimal_loss)
        self.loss_fn = loss_fn
        self._grad = autograd.grad(loss_fn)
        self._hessian = autograd.hessian(loss_fn)
        self._hvp = autograd.grad(lambda x, v: anp.dot(self._grad(x), v))

    def flatten(self, params):
        """Identity on flat vectors (checked)."""
        return self.check_x(params, "params")

    def unflatten(self, x):
        """Identity on flat vectors (a checked copy)."""
        return self.check_x(x)

    def loss_kernel(self, X):
        return np.array([float(self.loss_fn(x)) for x in X])

    def grad_kernel(self, X):
        return np.stack([np.asarray(self._grad(x), dtype=float) for x in X])

    def hvp_kernel(self, X, U):
        return np.stack([np.asarray(self._hvp(x, u), dtype=float) for x, u in zip(X, U)])

    def hess_kernel(self, X):
        n = self.n_params
        H = np.stack([np.asarray(self._hessian(x), dtype=float).reshape(n, n) for x in X])
        return 0.5 * (H + np.swapaxes(H, 1, 2))

    def __repr__(self):
        name = getattr(self.loss_fn, "__name__", "loss_fn")
        return f"AutogradModel({name}, n_params={self.n_params})"


# ---- autograd expressions of the closed forms --------------------------------------

def _kappa_rows(A, B):
    """kappa(A[m], B[m]) for paired rows, written for autograd (generic points only)."""
    na = anp.sqrt(anp.sum(A * A, axis=1))
    nb = anp.sqrt(anp.sum(B * B, axis=1))
    dot = anp.sum(A * B, axis=1)
    cross = anp.sqrt(na**2 * nb**2 - dot**2)
    theta = anp.arctan2(cross, dot)
    return (cross + (np.pi - theta) * dot) / (2 * np.pi)


def population_loss_fn(k, d, V, c, beta, trained_a):
    """L(a, W) = 1/2 E[(sum a_i s(w_i.x) - sum c_j s(v_j.x) - beta.x)^2] written with
    autograd.numpy, on flat x (a then W when `trained_a`, else W with a = 1): the closed form
    the population models implement by hand, for :func:`reference_model`."""
    iu, ju = np.triu_indices(k, 1)
    I, J = np.meshgrid(np.arange(k), np.arange(V.shape[0]), indexing="ij")
    I, J = I.ravel(), J.ravel()
    iv, jv = np.triu_indices(V.shape[0], 1)
    KV = np.asarray(_kappa_rows(V[iv], V[jv])) if len(iv) else np.zeros(0)
    const = 0.5 * (np.sum(c**2 * np.sum(V * V, axis=1)) / 2 + 2 * np.sum(c[iv] * c[jv] * KV)
                   + c @ (V @ beta) + beta @ beta)

    def loss(x):
        if trained_a:
            a, W = x[:k], anp.reshape(x[k:], (k, d))
        else:
            a, W = anp.ones(k), anp.reshape(x, (k, d))
        self_terms = anp.sum(a**2 * anp.sum(W * W, axis=1)) / 4
        pairs = anp.sum(a[iu] * a[ju] * _kappa_rows(W[iu], W[ju])) if len(iu) else 0.0
        cross = anp.sum(a[I] * c[J] * _kappa_rows(W[I], V[J])) if len(J) else 0.0
        lin = anp.sum(a * anp.dot(W, beta))
        return self_terms + pairs - cross - 0.5 * lin + const

    return loss


def reference_model(model):
    """An :class:`AutogradModel` computing `model`'s loss with autograd.numpy.

    The derivatives of the result come from automatic differentiation of the
    same closed form the model implements by hand: the yardstick for the
    contract tests and the derivative benchmarks.  Valid at generic points
    (no aligned pairs: autograd's derivative of the angle is NaN there).

    Parameters
    ----------
    model : Model
        Any model with an ``autograd_loss_fn()`` method (ReluTeacherStudent,
        TwoLayerReLU, EmpiricalReLU).

    Returns
    -------
    AutogradModel
    """
    if not callable(getattr(model, "autograd_loss_fn", None)):
        raise TypeError(f"no autograd reference for {type(model).__name__}: it has no "
                        "autograd_loss_fn() method")
    fn = model.autograd_loss_fn()
    return AutogradModel(fn, model.n_params, input_dim=model.input_dim,
                         optimal_loss=model.optimal_loss)
