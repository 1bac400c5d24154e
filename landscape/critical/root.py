"""find_critical_point: the public entry point of the root-finders on grad L = 0."""

import numbers

from .._validation import as_choice, as_positive_float, as_positive_int
from ..models.base import check_model
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
                        **options):
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
    return METHODS[method](model, x0, gtol=gtol, maxiter=maxiter, history=bool(history),
                           options=options)
