"""The statistics every report quotes: binomial intervals and power-law fits.

Thin, validated front ends to :mod:`scipy.stats` (its Wilson interval and least-squares line
fit are maintained, tested and documented there), with the argument checks and return
types the rest of the library and the studies use.
"""

import dataclasses
import numbers

import numpy as np
import scipy.stats

from ._results import Result
from ._validation import as_positive_int

__all__ = ["wilson_interval", "power_law_fit", "PowerLawFit"]


def wilson_interval(successes, n, confidence=0.95):
    r"""Wilson score interval for a binomial proportion.

    Parameters
    ----------
    successes : int
        Number of successes, 0 <= successes <= n.
    n : int
        Number of trials, n >= 1.
    confidence : float
        Coverage in (0, 1).

    Returns
    -------
    ndarray of shape (2,)
        The lower and upper ends, within [0, 1] (exactly 0 at s = 0 and 1 at s = n).

    Notes
    -----
    :func:`scipy.stats.binomtest`'s ``proportion_ci(method="wilson")``: with
    :math:`\hat p = s/n` and :math:`z` the :math:`(1 + c)/2` normal quantile,

    .. math:: \frac{\hat p + z^2/(2n)}{1 + z^2/n} \pm
              \frac{z}{1 + z^2/n}\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}.

    Unlike the normal (Wald) interval it stays inside [0, 1] and has sensible width
    at s = 0 and s = n.

    References
    ----------
    E. B. Wilson, "Probable inference, the law of succession, and statistical
    inference", J. Amer. Statist. Assoc. 22 (1927), 209-212.

    Examples
    --------
    >>> import landscape as ls
    >>> ls.wilson_interval(8, 10).round(4).tolist()
    [0.4902, 0.9433]
    """
    n = as_positive_int(n, "n")
    successes = as_positive_int(successes, "successes", minimum=0)
    if successes > n:
        raise ValueError(f"successes must be <= n = {n}, got {successes}")
    if (isinstance(confidence, bool) or not isinstance(confidence, numbers.Real)
            or not 0.0 < float(confidence) < 1.0):
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    ci = scipy.stats.binomtest(successes, n).proportion_ci(float(confidence), method="wilson")
    lo = 0.0 if successes == 0 else ci.low        # exact ends: no ~1e-17 rounding
    hi = 1.0 if successes == n else ci.high
    return np.clip(np.array([lo, hi], dtype=float), 0.0, 1.0)


@dataclasses.dataclass(frozen=True, repr=False)
class PowerLawFit(Result):
    """y ~ prefactor * x**exponent, fitted as a line in log-log coordinates.

    Attributes
    ----------
    exponent : float
        Slope of log y against log x.
    prefactor : float
        exp(intercept).
    r2 : float
        Coefficient of determination of the log-log line (1 for an exact power law).
    stderr : float
        Standard error of the exponent (0 for two points).
    n_points : int
        Points used (those with x > 0, y > 0 and both finite).
    """

    exponent: float
    prefactor: float
    r2: float
    stderr: float
    n_points: int


def power_law_fit(x, y):
    """Fit y = c x^p by least squares on (log x, log y) (:func:`scipy.stats.linregress`).

    Points where x or y is not positive and finite are left out (a power law says nothing
    about them); at least two distinct x must remain.

    Parameters
    ----------
    x, y : array_like of shape (m,)

    Returns
    -------
    PowerLawFit

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> r = np.geomspace(1e-3, 1e-1, 5)
    >>> f = ls.power_law_fit(r, 3 * r**2)
    >>> round(f.exponent, 12), round(f.prefactor, 12), f.r2
    (2.0, 3.0, 1.0)
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly = np.log(x[keep]), np.log(y[keep])
    if np.unique(lx).size < 2:
        raise ValueError(f"power_law_fit needs at least two distinct positive x with positive "
                         f"finite y, got {int(keep.sum())} usable point(s) of {x.size}")
    fit = scipy.stats.linregress(lx, ly)
    r2 = 1.0 if lx.size == 2 else float(fit.rvalue) ** 2
    return PowerLawFit(exponent=float(fit.slope), prefactor=float(np.exp(fit.intercept)),
                       r2=r2, stderr=float(fit.stderr) if lx.size > 2 else 0.0,
                       n_points=int(lx.size))
