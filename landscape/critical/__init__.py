"""Critical points: root-finding on grad L = 0 and batched descent.  Solvers know nothing about ReLU."""

from ._result import CriticalPoint, Status
from .descent import Descent, Trace, descend
from .newton import NewtonBatch, newton_batch
from .polish import PolishedDescent, descend_and_polish
from .root import METHODS, find_critical_point
from .saddle import SADDLE_METHODS, find_saddle

__all__ = ["CriticalPoint", "Status", "Descent", "Trace", "descend", "PolishedDescent",
           "descend_and_polish", "newton_batch", "NewtonBatch", "find_critical_point", "METHODS",
           "find_saddle", "SADDLE_METHODS"]
