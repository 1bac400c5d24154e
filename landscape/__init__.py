"""landscape: the optimization landscape of shallow ReLU networks.

Find critical points of population and empirical losses with Newton and
trust-region methods, classify them from their Hessian spectra, test
convexity-type conditions direction by direction and map gradient-descent
basins as a graph.
"""

from .certify import Certificate, certify
from .classify import KINDS, Classification, classify
from .critical import (CriticalPoint, Descent, PolishedDescent, Status, Trace, descend,
                       descend_and_polish, find_critical_point, find_saddle)
from .convexity import (DirectionalTest, local_convexity, one_point_strong_convexity,
                        pl_condition, random_directions)
from .errors import (DivergenceError, LandscapeError, LandscapeWarning, NonDifferentiableError,
                     StoreError, StoreInUseError)
from .models import (AutogradModel, EmpiricalReLU, LinearTarget, Model, NTKGram, ReluTarget,
                     ReluTeacherStudent, Stabilizer, Symmetry, TwoLayerReLU, align, canonicalize,
                     check_model, ntk_gram, orbit_distance, aligning_element, GroupElement)
from .isotropy import (FixedPointSubspace, Isotropy, IsotypicBasis, fixed_point_subspace,
                       isotropy, isotypic_basis)
from .spectrum import HessianSpectrum, hessian_spectrum, inertia
from .families import Family, continue_family, diagonal_type
from .stats import PowerLawFit, power_law_fit, wilson_interval
from .connect import Connection, Path, connect
from .scan import Distinct, Scan, deduplicate, scan
from .report import write_report
from .store import Store

__version__ = "0.1.0"

__all__ = [
    # models
    "Model",
    "check_model",
    "ReluTeacherStudent",
    "TwoLayerReLU",
    "LinearTarget",
    "ReluTarget",
    "EmpiricalReLU",
    "ntk_gram",
    "NTKGram",
    "AutogradModel",
    # symmetry
    "Symmetry",
    "Stabilizer",
    "canonicalize",
    "orbit_distance",
    "align",
    "aligning_element",
    "GroupElement",
    # symmetry reduction
    "isotropy",
    "Isotropy",
    "fixed_point_subspace",
    "FixedPointSubspace",
    "isotypic_basis",
    "IsotypicBasis",
    "continue_family",
    "diagonal_type",
    "Family",
    # critical points
    "find_critical_point",
    "find_saddle",
    "descend",
    "descend_and_polish",
    "CriticalPoint",
    "Descent",
    "Trace",
    "PolishedDescent",
    "Status",
    # saddle connections
    "connect",
    "Connection",
    "Path",
    # spectra and classification
    "hessian_spectrum",
    "HessianSpectrum",
    "inertia",
    "classify",
    "Classification",
    "KINDS",
    "certify",
    "Certificate",
    # direction-wise convexity tests
    "random_directions",
    "local_convexity",
    "one_point_strong_convexity",
    "pl_condition",
    "DirectionalTest",
    # statistics
    "wilson_interval",
    "power_law_fit",
    "PowerLawFit",
    # scans, basin graphs and their store
    "scan",
    "Scan",
    "deduplicate",
    "Distinct",
    "Store",
    "write_report",
    # errors
    "StoreError",
    "StoreInUseError",
    "DivergenceError",
    "LandscapeError",
    "LandscapeWarning",
    "NonDifferentiableError",
]
