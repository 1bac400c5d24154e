"""The result of a critical-point search and its status vocabulary."""

import dataclasses
import enum

import numpy as np

from .._results import Result

__all__ = ["Status", "CriticalPoint"]


class Status(enum.IntEnum):
    """Why a solver stopped.  The message of each value is the user-facing text."""

    CONVERGED = 0
    MAXITER = 1
    STALLED = 2
    NOT_CRITICAL = 3
    NON_DIFFERENTIABLE = 4
    NON_FINITE = 5
    DIVERGED = 6
    WRONG_INDEX = 7
    SLOW = 8

    @property
    def message(self):
        return _MESSAGES[self]


_MESSAGES = {
    Status.CONVERGED: "converged: |grad L| <= gtol",
    Status.MAXITER: "stopped: maximum number of iterations reached before |grad L| <= gtol",
    Status.STALLED: ("stalled: no step reduced |grad L| (at the rounding floor of the gradient, "
                     "or at a degenerate point where this method cannot make progress)"),
    Status.NOT_CRITICAL: ("stopped at a stationary point of |grad L|^2 that is not a critical "
                          "point of L (H grad L = 0 with grad L != 0); restart elsewhere"),
    Status.NON_DIFFERENTIABLE: "stopped: the iterate reached a point where L is not "
                               "differentiable (a zero neuron)",
    Status.NON_FINITE: "stopped: the loss or gradient became non-finite",
    Status.DIVERGED: ("diverged: the loss grew without bound (or overflowed); the step size is "
                      "too large for the curvature here: pass a smaller lr"),
    Status.WRONG_INDEX: ("converged to a critical point of another Morse index than the one "
                         "asked for (find_saddle); start closer to the saddle sought"),
    Status.SLOW: ("stopped: |grad L| did not halve over the last min_progress iterations "
                  "(newton_batch's min_progress; far from the quadratic region)"),
}


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class CriticalPoint(Result):
    """A point x with (hopefully) grad L(x) = 0, as returned by :func:`find_critical_point`.

    Attributes
    ----------
    x : ndarray of shape (n_params,)
        The final iterate.
    loss : float
        L(x).
    grad_norm : float
        Euclidean norm of grad L(x).
    nit : int
        Iterations taken (0 when x0 already satisfied gtol).
    nfev : int
        Gradient evaluations (the loss is evaluated alongside).
    success : bool
        ``grad_norm <= gtol``.
    status : Status
        How the search ended (an ``IntEnum``: compares equal to its int value);
        ``message`` says it in words.
    message : str
    method : str
    history : dict or None
        With ``history=True``: arrays ``loss``, ``grad_norm`` and ``step`` per iteration.
    classification : Classification or None
        :func:`landscape.classify` of `x`, when the solver classified it
        (:func:`landscape.find_saddle` does, to confirm the index).
    """

    x: np.ndarray
    loss: float
    grad_norm: float
    nit: int
    nfev: int
    success: bool
    status: Status
    message: str
    method: str
    history: dict | None = None
    classification: object = None

    def __post_init__(self):
        # the Status enum whatever the caller passed (an int from a solver or from to_dict)
        object.__setattr__(self, "status", Status(int(self.status)))
