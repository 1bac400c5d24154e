"""Critical points: root-finding on grad L = 0 and batched descent.  Solvers know nothing about ReLU."""

from ._result import CriticalPoint, Status
from .descent import Descent, Trace, descend
from .polish import (PolishedDescent, descend_and_polish, is_positive_definite, min_curvature,
                     newton_batch, smallest_eigenvalues)
from .root import METHODS, find_critical_point

__all__ = ["CriticalPoint", "Status", "Descent", "Trace", "descend", "PolishedDescent",
           "descend_and_polish", "min_curvature", "newton_batch", "smallest_eigenvalues",
           "is_positive_definite", "find_critical_point", "METHODS"]
