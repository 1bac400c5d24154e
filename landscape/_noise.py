"""The rounding noise of a model's Hessian and loss at a point.

A closed-form Hessian loses digits where its terms are large and cancel (a
neuron of norm 1e-10 multiplies rounding errors by 1e10), and BLAS kernels and
vector widths round differently.  Re-evaluating at x perturbed by a few ulps per
coordinate measures how much of H(x) and L(x) is rounding: verdicts that use
this as a floor cannot change with the machine.
"""

import numpy as np

__all__ = ["NOISE_ULPS", "NOISE_FACTOR", "rounding_noise"]

#: Coordinates are perturbed by this many ulps (relative), with fixed random signs.
NOISE_ULPS = 4
#: Decisions treat this multiple of the measured change as rounding.
NOISE_FACTOR = 100.0
_EPS = np.finfo(float).eps
_SEED = 0x5EED


def rounding_noise(model, x, *, dense=True):
    """(|H(x) - H(x')|, |L(x) - L(x')|) for x' = x (1 + NOISE_ULPS eps s), s random signs.

    The change of H bounds how far rounding moves the computed eigenvalues
    (Weyl: |lambda_i(A) - lambda_i(B)| <= |A - B|_2 <= the largest absolute row
    sum of A - B).  ``dense=True``: the two dense Hessians are compared (x must
    be a point of differentiability); otherwise Hessian-vector products with
    three random unit vectors (a lower estimate, for large models).

    Returns
    -------
    noise_H, noise_L : float
    """
    signs = np.random.default_rng(_SEED).choice([-1.0, 1.0], size=x.size)
    xp = x * (1.0 + NOISE_ULPS * _EPS * signs)
    if model._nondifferentiable(xp[None]).any():
        return 0.0, 0.0
    pair = np.vstack([x, xp])
    L = model._loss_batch(pair)
    noise_L = float(abs(L[1] - L[0]))
    if dense:
        H = model._hess_batch(pair)
        return float(np.abs(H[1] - H[0]).sum(axis=1).max()), noise_L
    V = np.random.default_rng(_SEED).standard_normal((3, x.size))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    D = model._hvp_batch(np.repeat(pair, 3, axis=0), np.tile(V, (2, 1)))
    return float(np.linalg.norm(D[3:] - D[:3], axis=1).max()), noise_L
