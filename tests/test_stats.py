"""landscape.stats: the Wilson interval and the power-law fit the reports quote."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import ndtri

import landscape as ls

FORMULA_RTOL = 1e-13     # scipy's Wilson interval vs the closed form: a few roundings apart
FIT_RTOL = 1e-12         # an exact power law through log/exp: a few roundings


def wilson_formula(s, n, c=0.95):
    """Wilson (1927), the score interval written out (the reference of the test)."""
    z = ndtri(0.5 + c / 2)
    p = s / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("s, n", [(1, 10), (8, 10), (281, 500), (1, 500), (499, 500), (3, 7)])
@pytest.mark.parametrize("c", [0.9, 0.95, 0.99])
def test_wilson_interval_matches_the_formula(s, n, c):
    assert_allclose(ls.wilson_interval(s, n, confidence=c), wilson_formula(s, n, c),
                    rtol=FORMULA_RTOL)


def test_wilson_interval_ends_are_exact():
    lo, hi = ls.wilson_interval(0, 20)
    assert lo == 0.0 and 0 < hi < 1
    lo, hi = ls.wilson_interval(20, 20)
    assert hi == 1.0 and 0 < lo < 1


@pytest.mark.parametrize("args, match", [((11, 10), "successes must be <= n"),
                                         ((-1, 10), "successes"), ((1, 0), "n"),
                                         ((1, 10, 1.0), "confidence")])
def test_wilson_interval_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        ls.wilson_interval(*args)


def test_power_law_fit_recovers_an_exact_law():
    x = np.geomspace(1e-4, 1e-1, 7)
    f = ls.power_law_fit(x, 0.7 * x ** -1.5)
    assert_allclose([f.exponent, f.prefactor, f.r2], [-1.5, 0.7, 1.0], rtol=FIT_RTOL)
    # stderr comes from 1 - r^2, ~1e-16 by cancellation at an exact fit: ~1e-8 is rounding
    assert f.n_points == 7 and f.stderr < 1e-6


def test_power_law_fit_noisy_law_and_dropped_points():
    rng = np.random.default_rng(0)
    x = np.geomspace(1, 1e3, 40)
    y = 2.0 * x ** 0.5 * np.exp(0.05 * rng.standard_normal(40))
    y[[3, 9]] = [0.0, np.nan]                    # not positive / not finite: left out
    f = ls.power_law_fit(x, y)
    assert f.n_points == 38
    # the slope's standard error is ~0.05 / sqrt(38 * var(log x)) ~ 0.004: 5 sigma is 0.02
    assert abs(f.exponent - 0.5) < 0.02 and 0.9 < f.r2 < 1.0 and 0 < f.stderr < 0.01


def test_power_law_fit_needs_two_points():
    with pytest.raises(ValueError, match="at least two distinct positive x"):
        ls.power_law_fit([1.0, 2.0], [1.0, -1.0])
    with pytest.raises(ValueError, match="same length"):
        ls.power_law_fit([1.0, 2.0], [1.0])
