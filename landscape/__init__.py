"""landscape: the optimization landscape of shallow ReLU networks.

Find critical points of population and empirical losses with Newton and
trust-region methods, classify them from their Hessian spectra, test
convexity-type conditions direction by direction and map gradient-descent
basins as a graph.
"""

from .errors import LandscapeError, LandscapeWarning, NonDifferentiableError
from .models import LinearTarget, Model, ReluTarget, ReluTeacherStudent, TwoLayerReLU

__version__ = "0.1.0"

__all__ = [
    "LandscapeError",
    "LandscapeWarning",
    "NonDifferentiableError",
    "Model",
    "ReluTeacherStudent",
    "TwoLayerReLU",
    "LinearTarget",
    "ReluTarget",
]
