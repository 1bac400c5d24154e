"""How much of a computed Hessian (and loss) at a point is not resolved: its noise floor.

Two effects make the Hessian computed at x differ from the Hessian at the critical
point x stands for:

* rounding: a closed-form Hessian loses digits where its terms are large and cancel
  (a neuron of norm 1e-10 multiplies rounding errors by 1e10), and BLAS kernels and
  vector widths round differently.  Re-evaluating at x perturbed by a few ulps per
  coordinate measures it;
* position: x is a critical point only to |grad L| <= gtol.  The critical point it
  approximates lies about one Newton step away, and the Hessian there differs by
  the change of H over that step, which is large where H varies fast (again near a
  small neuron, where the third derivatives scale as 1/|w|^2).

Verdicts that take the larger of the two as a floor do not depend on the machine,
nor on where within gtol a solver happened to stop.
"""

import numpy as np
import scipy.linalg

__all__ = ["NOISE_ULPS", "NOISE_FACTOR", "POSITION_FACTOR", "hessian_noise"]

#: Coordinates are perturbed by this many ulps (relative), with fixed random signs.
NOISE_ULPS = 4
#: The measured rounding change is multiplied by this (rounding is a random walk:
#: another machine may round several times worse).
NOISE_FACTOR = 100.0
#: The change of H over the Newton step is a first-order estimate; this is its margin.
POSITION_FACTOR = 10.0
_EPS = np.finfo(float).eps
_SEED = 0x5EED


def hessian_noise(model, x, *, dense=True, eigen=None):
    """(noise_H, noise_L): the unresolved part of H(x) (a spectral-norm bound) and of L(x).

    ``noise_H = max(NOISE_FACTOR |H(x') - H(x)|, POSITION_FACTOR |H(x + p) - H(x)|)``
    with x' = x (1 + NOISE_ULPS eps s) (s fixed random signs) and p the
    Levenberg-Marquardt step -(H^2 + |g| I)^-1 H g towards the critical point x
    approximates; ``noise_L = NOISE_FACTOR |L(x') - L(x)|``.  Matrix norms are the
    largest absolute row sum, which bounds the spectral norm (so, by Weyl's
    inequality, how far any eigenvalue can move).  ``dense=False`` (large
    models): the rounding part only, from Hessian-vector products with three random
    unit vectors (a lower estimate).

    Parameters
    ----------
    model : Model
    x : ndarray of shape (n_params,)
        A point where the loss is twice differentiable.
    dense : bool
    eigen : (ndarray of shape (n,), ndarray of shape (n, n)), optional
        The eigenvalues and eigenvectors of H(x), when already known (saves a
        factorisation).
    """
    signs = np.random.default_rng(_SEED).choice([-1.0, 1.0], size=x.size)
    xp = x * (1.0 + NOISE_ULPS * _EPS * signs)
    if model.nondifferentiable_units(xp[None]).any():
        return 0.0, 0.0
    pair = np.vstack([x, xp])
    L = model.loss_kernel(pair)
    noise_L = NOISE_FACTOR * float(abs(L[1] - L[0]))
    if not dense:
        V = np.random.default_rng(_SEED).standard_normal((3, x.size))
        V /= np.linalg.norm(V, axis=1, keepdims=True)
        D = model.hvp_kernel(np.repeat(pair, 3, axis=0), np.tile(V, (2, 1)))
        return NOISE_FACTOR * float(np.linalg.norm(D[3:] - D[:3], axis=1).max()), noise_L
    g = model.grad_kernel(x[None])[0]
    mu = float(np.linalg.norm(g))
    if eigen is None:
        H = model.hess_kernel(x[None])[0]
        eigen = scipy.linalg.eigh(H, check_finite=False)
    lam, Q = eigen
    step = -Q @ (lam * (Q.T @ g) / (lam ** 2 + mu)) if mu > 0 else np.zeros_like(x)
    y = x + step
    # a step below a few ulps moves H no more than the rounding perturbation does
    far = np.linalg.norm(step) > NOISE_ULPS * _EPS * np.linalg.norm(x)
    if far and not model.nondifferentiable_units(y[None]).any():
        H = model.hess_kernel(np.vstack([x, xp, y]))
        return max(NOISE_FACTOR * _norm(H[1] - H[0]), POSITION_FACTOR * _norm(H[2] - H[0])), \
            noise_L
    H = model.hess_kernel(pair)
    return NOISE_FACTOR * _norm(H[1] - H[0]), noise_L


def _norm(A):
    """The largest absolute row sum (>= the spectral norm of a symmetric matrix)."""
    return float(np.abs(A).sum(axis=1).max())
