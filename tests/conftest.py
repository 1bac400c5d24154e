"""Shared fixtures for the landscape tests.

Only fixtures live here (nothing runs at import time and no global state is
changed), so this file is harmless for every other test module.
"""

import numpy as np
import pytest

import landscape.models.base as _base


def _central_gradient(f, x, h):
    """Central differences (f(x + h e_i) - f(x - h e_i)) / 2h of a scalar function."""
    x = np.asarray(x, dtype=float)
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2.0 * h)
    return g


def _central_jacobian(g, x, h):
    """Central differences of a vector function; column i is d g / d x_i."""
    x = np.asarray(x, dtype=float)
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        cols.append((np.asarray(g(x + e)) - np.asarray(g(x - e))) / (2.0 * h))
    return np.stack(cols, axis=1)


@pytest.fixture
def fd_grad():
    """``fd_grad(f, x, h)``: central-difference gradient of a scalar function."""
    return _central_gradient


@pytest.fixture
def fd_jac():
    """``fd_jac(g, x, h)``: central-difference Jacobian (columns = coordinates)."""
    return _central_jacobian


@pytest.fixture
def rows_per_chunk(monkeypatch):
    """``rows_per_chunk(model, r)`` shrinks the batch budget so batches are cut every r rows.

    Monkeypatches ``landscape.models.base._BATCH_BUDGET`` for the duration of the test only.
    """
    def set_rows(model, rows):
        monkeypatch.setattr(_base, "_BATCH_BUDGET", rows * max(1, model.work_per_row()))
    return set_rows
