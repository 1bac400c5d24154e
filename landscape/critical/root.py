"""find_critical_point: the public entry point of the root-finders on grad L = 0."""

import dataclasses
import numbers

import numpy as np

from .._validation import as_choice, as_positive_float, as_positive_int
from ..isotropy import Isotropy, fixed_point_subspace
from ..models.base import check_model
from ..models.restricted import RestrictedModel
from .newton import newton, newton_mr
from .trust_region import trust_region

__all__ = ["find_critical_point", "METHODS"]

METHODS = {"newton": newton, "newton-mr": newton_mr, "trust-region": trust_region}
_OPTIONS = {
    "newton": {"max_backtracks"},
    "newton-mr": {"max_backtracks", "forcing", "minres_maxiter"},
    "trust-region": {"initial_radius", "max_radius"},
}
_INTEGER_OPTIONS = {"max_backtracks", "minres_maxiter"}


def find_critical_point(model, x0, *, method="newton", gtol=1e-12, maxiter=100, history=False,
                        isotropy=None, **options):
    """Find a critical point (grad L = 0) near x0: a minimum or a saddle alike.

    A root-find on the gradient, not a minimisation: every method can converge
    to saddles.  Non-convergence is reported in the result (``success=False``
    with a message), never raised.

    Parameters
    ----------
    model : Model
    x0 : array_like of shape (n_params,)
        Starting point.
    method : {"newton", "newton-mr", "trust-region"}
        ``"newton"``: dense Newton steps with a backtracking line search on
        |grad L|^2 (quadratic convergence at nondegenerate points); the one-start
        case of :func:`~landscape.critical.newton_batch`.
        ``"newton-mr"``: MINRES on Hessian-vector products (never forms H); keeps
        converging where H is singular, e.g. at degenerate minima.  Same driver
        and line search as ``"newton"``.
        ``"trust-region"``: Levenberg-Marquardt trust region on 1/2 |grad L|^2;
        converges from farther away.
    gtol : float
        Stop when |grad L(x)| <= gtol (Euclidean norm).
    maxiter : int
    history : bool
        Record loss, gradient norm and step length per iteration.
    isotropy : Isotropy, optional
        Solve inside the fixed-point subspace Fix(G) of this group (from
        :func:`~landscape.isotropy` or :meth:`Isotropy.diagonal
        <landscape.Isotropy.diagonal>`): x0 is projected onto Fix(G) and the
        method runs on L restricted to it, whose dimension is the number of
        orbits of G on the entries of W (5 for ``Δ(S_{k-1} x S_1)`` at any k).
        Its Hessian comes from that many Hessian-vector products; the full
        Hessian is never formed.  By the principle of symmetric criticality
        (grad L at a G-fixed point is G-fixed) the result is a critical point of
        L; ``grad_norm`` is the full gradient's norm there.
    **options
        Method options: ``max_backtracks`` (integer: step halvings per line search,
        default 40), ``forcing`` and ``minres_maxiter`` (integer) of newton-mr,
        ``initial_radius`` and ``max_radius`` of trust-region.

    Returns
    -------
    CriticalPoint

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    >>> x0 = m.flatten(np.eye(3) + 0.05 * np.random.default_rng(0).standard_normal((3, 3)))
    >>> r = ls.find_critical_point(m, x0, method="newton")
    >>> r.success, r.grad_norm <= 1e-12, np.allclose(m.unflatten(r.x), np.eye(3))
    (True, True, True)

    Newton in the 2-dimensional Fix(G) of G = Δ(S_200) (W = a I + b (J - I), 40,000
    parameters):

    >>> m = ls.ReluTeacherStudent(teacher=np.eye(200), n_students=200)
    >>> G = ls.Isotropy.diagonal(m, [200])
    >>> r = ls.find_critical_point(m, m.flatten(0.9 * np.eye(200) + 0.01), isotropy=G)
    >>> r.success, np.allclose(m.unflatten(r.x), np.eye(200))
    (True, True)
    """
    check_model(model)
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    as_choice(method, "method", tuple(METHODS))
    x0 = model.check_x(x0, "x0")
    gtol = as_positive_float(gtol, "gtol", allow_zero=True)
    maxiter = as_positive_int(maxiter, "maxiter", minimum=0)
    unknown = set(options) - _OPTIONS[method]
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)} for method {method!r}; "
                        f"valid options: {sorted(_OPTIONS[method])}")
    for key, value in options.items():
        kind = numbers.Integral if key in _INTEGER_OPTIONS else numbers.Real
        if not isinstance(value, kind) or isinstance(value, bool) or value <= 0:
            what = "integer" if key in _INTEGER_OPTIONS else "number"
            raise ValueError(f"option {key} must be a positive {what}, got {value!r}")
    if isotropy is None:
        return METHODS[method](model, x0, gtol=gtol, maxiter=maxiter, history=bool(history),
                               options=options)
    if not isinstance(isotropy, Isotropy):
        raise TypeError(f"isotropy must be a landscape.Isotropy (ls.isotropy(model, x) or "
                        f"ls.Isotropy.diagonal) or None, got {type(isotropy).__name__}")
    F = fixed_point_subspace(model, isotropy)
    reduced = RestrictedModel(model, F)
    r = METHODS[method](reduced, F.coordinates(x0), gtol=gtol, maxiter=maxiter,
                        history=bool(history), options=options)
    x = F.point(r.x)
    grad_norm = r.grad_norm
    if model.is_differentiable(x):
        grad_norm = float(np.linalg.norm(model.grad(x)))
    return dataclasses.replace(r, x=x, grad_norm=grad_norm)
