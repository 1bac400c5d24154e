"""Dense linear algebra on many small Hessians: built in batches, factorised one by one.

Solvers and spectral tests factorise the Hessian of every row of a batch (a Newton
step, a Cholesky test, a smallest eigenvalue).  The Hessians are built by the
model's batched kernel in memory-bounded chunks; each is then factorised by its own
LAPACK call, with one BLAS thread for small matrices: numpy's stacked solvers thread
badly on many small matrices, and threads only fight over a 100 x 100 factorisation.
"""

import contextlib

from threadpoolctl import ThreadpoolController

__all__ = ["small_matrix_threads", "each_hessian", "SMALL_MATRIX"]

#: Matrices with fewer rows than this are factorised with one BLAS thread.
SMALL_MATRIX = 1000
# Entries (float64) of the Hessians and kernel work of one chunk: 2 MiB, so that each Hessian is
# factorised while it is still in cache (at n = 400, Newton's polish of 200 starts of V = I_20
# with the smallest eigenvalue of each end took 5.3 s, against 7.2 s with 128 MiB chunks).
_CHUNK_ENTRIES = 1 << 18
_CONTROLLER = []


def small_matrix_threads(n):
    """Context manager: one BLAS thread while factorising n x n matrices with n < 1000.

    For larger n it does nothing (``contextlib.nullcontext``).  The threadpoolctl
    controller inspects the loaded libraries once; a fresh ``threadpool_limits`` per
    call would rescan them every time.

    Parameters
    ----------
    n : int
        The order of the matrices.
    """
    if n >= SMALL_MATRIX:
        return contextlib.nullcontext()
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def each_hessian(model, X):
    """Yield ``(i, H)`` with H the Hessian (n_params, n_params) at row i of X, in row order.

    Hessians are built with ``model.hess_kernel`` in chunks of at most 2^18 float64
    entries (Hessians plus the model's per-row work); the consumer's loop body runs
    under :func:`small_matrix_threads`, so each factorisation it makes uses one BLAS
    thread for small matrices.  H is the kernel's own array: the consumer may
    overwrite it.

    Parameters
    ----------
    model : Model
    X : ndarray of shape (B, n_params)
    """
    n = model.n_params
    step = max(1, _CHUNK_ENTRIES // max(1, n * n + model.work_per_row()))
    for s in range(0, len(X), step):
        Hs = model.hess_kernel(X[s:s + step])
        with small_matrix_threads(n):
            for j, H in enumerate(Hs):
                yield s + j, H
