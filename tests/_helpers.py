"""Helpers shared by the model test files (importable because pytest puts tests/ on sys.path)."""

import numpy as np
from numpy.testing import assert_allclose


def assert_close(actual, desired, rtol):
    """assert_allclose with rtol per entry and the same rtol relative to max |desired|."""
    atol = rtol * max(float(np.max(np.abs(desired))), np.finfo(float).tiny)
    assert_allclose(actual, desired, rtol=rtol, atol=atol)


def relu(z):
    return np.maximum(z, 0.0)
