"""Argument checks shared by the public entry points.

Validation happens at the public boundary only; every message names the
argument, what was received and how to fix it.
"""

import numbers

import numpy as np

__all__ = [
    "as_float_array",
    "as_vector",
    "as_batch",
    "as_rng",
    "as_positive_int",
    "as_positive_float",
    "as_choice",
]


def as_float_array(value, name, *, ndim=None, shape=None, allow_empty=False):
    """Return `value` as a finite float64 ndarray, or raise a helpful error."""
    if type(value) is np.ndarray and value.dtype == np.float64:
        # the common case, checked in a few microseconds (model.grad(x) is called in loops)
        arr = value.copy()
    else:
        arr = _converted(value, name)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        where = tuple(int(i) for i in bad)
        raise ValueError(f"{name} must be finite; entry {where} is {arr[where]}")
    return arr


def _converted(value, name):
    """`value` converted to a new float64 array, or a TypeError naming `name`."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be an array of real numbers: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be an array of real numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got a complex array; pass its real part explicitly")
    return np.array(arr, dtype=np.float64, copy=True)


def as_vector(x, n, name="x", hint=""):
    """A finite float64 vector of length `n` (a flat parameter vector)."""
    arr = as_float_array(x, name)
    if arr.shape != (n,):
        fix = hint or "pass a flat parameter vector (model.flatten(...))"
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}; {fix}")
    return arr


def as_batch(X, n, name="X"):
    """A finite float64 batch of shape (B, n); a single vector becomes B = 1."""
    arr = as_float_array(X, name, allow_empty=True)
    if arr.ndim == 1 and arr.shape == (n,):
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != n:
        raise ValueError(f"{name} must have shape (B, {n}) with one parameter vector per row, "
                         f"got {arr.shape}")
    return arr


def as_rng(rng, name="rng"):
    """Normalise int | Generator | SeedSequence | None to a numpy Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (numbers.Integral, np.random.SeedSequence)):
        if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and rng < 0:
            raise ValueError(f"{name} must be a non-negative seed, got {rng}")
        return np.random.default_rng(rng)
    raise TypeError(f"{name} must be an int seed, a numpy Generator, a SeedSequence or None, "
                    f"got {type(rng).__name__}")


def as_positive_int(value, name, *, minimum=1):
    """An int >= `minimum` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def as_positive_float(value, name, *, allow_zero=False):
    """A finite float > 0 (or >= 0 with `allow_zero`)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value}")
    return value


def as_choice(value, name, choices):
    """One of `choices` (strings), with the valid options in the message."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}; got {value!r}")
    return value
