"""Exceptions and warnings raised by landscape.

Every error the library raises on purpose derives from :class:`LandscapeError`,
so ``except landscape.LandscapeError`` catches them all.  Bad arguments raise
the built-in :class:`ValueError` / :class:`TypeError` (with a message naming the
argument and the fix), as numpy and scipy do.
"""

__all__ = ["LandscapeError", "NonDifferentiableError", "StoreError", "StoreInUseError",
           "DivergenceError", "LandscapeWarning"]


class LandscapeError(Exception):
    """Base class of every error landscape raises on purpose."""


class NonDifferentiableError(LandscapeError, ArithmeticError):
    """A derivative was asked for at a point where the loss has none.

    For ReLU losses this happens where a student neuron is exactly zero: the
    population loss is only positively homogeneous there.  ``neurons`` lists the
    offending neuron indices.
    """

    def __init__(self, message, neurons=()):
        super().__init__(message)
        self.neurons = tuple(int(i) for i in neurons)


class StoreError(LandscapeError):
    """A scan store cannot be used: not a landscape store, another schema version,
    corrupt or damaged (an array fails its checksum), written with different scan
    settings, or in use by another writer (:class:`StoreInUseError`).

    The message names the file (``path``) and what to do about it.
    """

    def __init__(self, message, path=None):
        super().__init__(message)
        self.path = None if path is None else str(path)


class StoreInUseError(StoreError):
    """Another writer holds the store: a second scan would mix its results in.

    ``pid`` is the holder's process id (None when it could not be read).
    """

    def __init__(self, message, path=None, *, pid=None):
        super().__init__(message, path)
        self.pid = pid


class DivergenceError(LandscapeError):
    """Gradient descent diverged from more starts of a scan than it tolerates: the step is too
    large for the curvature of the loss.

    Attributes
    ----------
    lr : float
        The step size of the scan.
    lr_stable : float or None
        An estimate of the largest stable step: 2 / lambda_max, the largest Hessian
        eigenvalue over the scan's first starts (None when it could not be estimated).
    n_diverged, n_run, n_starts : int
        Starts that diverged, starts run when the scan stopped, starts asked for.
    path : str or None
        The store; ``store_removed`` says whether it was removed (it held no start).
    """

    def __init__(self, message, *, lr, lr_stable, n_diverged, n_run, n_starts, path=None,
                 store_removed=False):
        super().__init__(message)
        self.lr, self.lr_stable = lr, lr_stable
        self.n_diverged, self.n_run, self.n_starts = n_diverged, n_run, n_starts
        self.path, self.store_removed = path, store_removed


class LandscapeWarning(UserWarning):
    """Warnings issued by landscape (results that are valid but deserve a look)."""
