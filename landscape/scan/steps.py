"""The step size of a scan: its default (1 / lambda_max at the first starts), and what a
step too large for the curvature does (:class:`~landscape.DivergenceError`)."""

import numpy as np
import scipy.sparse.linalg

from ..errors import DivergenceError
from .seeding import initial_points

__all__ = ["LR_PROBES", "DIVERGED_TOLERANCE", "probe_starts", "estimate_lambda_max",
           "divergence_error"]

#: Starts at which lambda_max is estimated (the default lr, the stable step).
LR_PROBES = 8
#: A scan raises DivergenceError as soon as more than this fraction of its n_starts have
#: diverged (a step too large for the curvature); up to it, diverged starts are ends with
#: status DIVERGED (no point), with a LandscapeWarning.
DIVERGED_TOLERANCE = 0.01
# Above this many parameters lambda_max comes from Lanczos on hvp, not a dense Hessian.
_DENSE_LIMIT = 2000


def probe_starts(model, settings, X0_all, n_starts):
    """The initial points of the first starts (at most :data:`LR_PROBES`) of a scan.

    Parameters
    ----------
    model : Model
    settings : dict
        The scan's ``seed`` and ``init`` (see :func:`~landscape.scan.initial_points`).
    X0_all : ndarray of shape (n_starts, n_params) or None
        The explicit starts, if the scan has them.
    n_starts : int
    """
    first = np.arange(min(n_starts, LR_PROBES))
    return X0_all[first] if X0_all is not None else initial_points(model, settings, first)


def estimate_lambda_max(model, X0):
    """The largest Hessian eigenvalue over the rows of X0 (rows with a zero neuron skipped).

    Dense for up to 2000 parameters, else Lanczos (``eigsh``) on the model's
    Hessian-vector product.  The default step of a scan is its inverse.

    Raises
    ------
    ValueError
        Every row has a zero neuron (no Hessian): pass ``lr=...`` to the scan.
    """
    X = X0[~model.nondifferentiable_units(X0).any(axis=1)]
    if len(X) == 0:
        raise ValueError("cannot estimate lr: every initial point has a zero neuron; pass lr=...")
    lam = 0.0
    for x in X:
        if model.n_params <= _DENSE_LIMIT:
            top = np.linalg.eigvalsh(model.hess_kernel(x[None])[0])[-1]
        else:
            op = scipy.sparse.linalg.LinearOperator(
                (model.n_params,) * 2, dtype=np.float64,
                matvec=lambda v, x=x: model.hvp_kernel(x[None], v[None])[0])
            top = scipy.sparse.linalg.eigsh(op, k=1, which="LA", tol=1e-6,
                                            v0=np.ones(model.n_params))[0][0]
        lam = max(lam, float(top))
    return lam


def divergence_error(model, settings, X0_all, *, n_diverged, n_run, path, n_kept, removed):
    """The :class:`~landscape.DivergenceError` of a scan whose starts diverged, with the
    largest stable step (2 / lambda_max) estimated at its first starts.

    Parameters
    ----------
    model : Model
    settings : dict
        The scan's settings (``lr``, ``n_starts``, ``seed``, ``init``).
    X0_all : ndarray or None
        The explicit starts, if any.
    n_diverged, n_run : int
        Starts diverged, of the starts run so far.
    path : str or None
        The store file (None: in memory).
    n_kept : int
        Starts the store keeps.
    removed : bool
        The store held no start and was removed.
    """
    lr, n_starts = settings["lr"], settings["n_starts"]
    try:
        X = probe_starts(model, settings, X0_all, n_starts)
        with np.errstate(over="ignore", invalid="ignore"):
            lam = estimate_lambda_max(model, X)
        stable = 2.0 / lam if np.isfinite(lam) and lam > 0 else None
    except ValueError:                  # every probe start has a zero neuron
        stable = None
    text = (f"gradient descent diverged from {n_diverged} of the {n_run} starts run (of "
            f"{n_starts}) with lr = {lr:.4g}: the step is too large for the curvature of the "
            "loss, and a diverged start ends at no critical point (a scan tolerates at most "
            f"{DIVERGED_TOLERANCE:.0%} of its starts diverging).  ")
    if stable is not None:
        text += (f"The largest stable step at the first {len(X)} starts is about "
                 f"2/lambda_max = {stable:.4g} (lambda_max = {2.0 / stable:.4g}, the largest "
                 f"Hessian eigenvalue there): pass a smaller lr, e.g. lr = {stable / 2:.4g} "
                 "(1/lambda_max, the default).")
    else:
        text += "Pass a smaller lr."
    if removed:
        text += f"  The store {path} held no start and was removed."
    elif path is not None:
        text += (f"  Store {path} keeps the {n_kept} starts finished with lr = "
                 f"{lr:.4g}; scan with another lr into a new store.")
    return DivergenceError(text, lr=lr, lr_stable=stable, n_diverged=n_diverged, n_run=n_run,
                           n_starts=n_starts, path=path, store_removed=removed)
