"""Per-start seeding: start i draws its initial point from child i of one ``SeedSequence``.

No start depends on chunking, workers or interruptions: its initial point is a
function of the scan's seed and its own index only.  The seed is kept in the
store's settings as JSON data (``{"entropy": ..., "spawn_key": [...]}``).
"""

import hashlib
import numbers

import numpy as np

from .._validation import as_batch, as_positive_float

__all__ = ["seed_settings", "child_seed", "init_settings", "initial_points"]


def seed_settings(rng):
    """The scan seed of `rng` as JSON data: ``{"entropy": ..., "spawn_key": [...]}``.

    Parameters
    ----------
    rng : int, SeedSequence, Generator or None
        An int (>= 0) or a SeedSequence gives the same seed every time; a
        Generator gives a seed drawn from it; None a fresh seed.

    Examples
    --------
    >>> from landscape.scan import seed_settings
    >>> seed_settings(7)
    {'entropy': 7, 'spawn_key': []}
    """
    if isinstance(rng, np.random.Generator):
        rng = np.random.SeedSequence(rng.integers(0, 2**32, size=4, dtype=np.uint64).tolist())
    if rng is None:
        rng = np.random.SeedSequence()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng must be a non-negative seed, got {rng}")
        rng = np.random.SeedSequence(int(rng))
    if not isinstance(rng, np.random.SeedSequence):
        raise TypeError(f"rng must be an int seed, a SeedSequence, a numpy Generator or None, "
                        f"got {type(rng).__name__}")
    entropy = rng.entropy
    entropy = [int(e) for e in entropy] if isinstance(entropy, (list, tuple, np.ndarray)) \
        else int(entropy)
    return {"entropy": entropy, "spawn_key": [int(k) for k in rng.spawn_key]}


def child_seed(seed, i):
    """Child i of ``SeedSequence(seed).spawn(n)`` (any n > i), built directly from its spawn key.

    Parameters
    ----------
    seed : dict
        As :func:`seed_settings` returns.
    i : int
        The start index.
    """
    return np.random.SeedSequence(seed["entropy"], spawn_key=tuple(seed["spawn_key"]) + (int(i),))


def init_settings(model, init, n_starts):
    """How a scan draws its starts: (settings entry, explicit starts or None).

    Parameters
    ----------
    model : Model
    init : None, float or array_like of shape (n_starts, n_params)
        None: N(0, 1/d) entries (``{"kind": "normal", "scale": 1/sqrt(d)}``);
        a float: that standard deviation; an array: the starts themselves
        (``{"kind": "array", "sha256": ...}``, the digest of their float64 bytes).
    n_starts : int
    """
    if init is None:
        return {"kind": "normal", "scale": float(1.0 / np.sqrt(model.input_dim))}, None
    if isinstance(init, numbers.Real) and not isinstance(init, bool):
        return {"kind": "normal", "scale": as_positive_float(init, "init")}, None
    X0 = as_batch(init, model.n_params, "init")
    if X0.shape[0] != n_starts:
        raise ValueError(f"init must hold one start per row, shape ({n_starts}, "
                         f"{model.n_params}), got {X0.shape}; or pass a float (the scale)")
    digest = hashlib.sha256(np.ascontiguousarray(X0, dtype="<f8").tobytes()).hexdigest()
    return {"kind": "array", "sha256": digest}, X0


def initial_points(model, settings, starts):
    """The initial points of the given starts of a scan, as the scan draws them.

    Parameters
    ----------
    model : Model
    settings : dict
        A scan's settings (``Scan.settings``), or any dict with its ``"seed"``
        and ``"init"`` entries; ``init`` must be of kind ``"normal"`` (a scan
        from explicit starts does not store them).
    starts : sequence of int

    Returns
    -------
    ndarray of shape (len(starts), n_params)
        Row j: ``model.sample_init(1, rng=child_seed(seed, starts[j]), scale=...)``.

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> from landscape.scan import initial_points
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=4)
    >>> s = ls.scan(m, 4, rng=0, lr=5 / 4, progress=False)
    >>> X0 = initial_points(m, s.settings, range(4))
    >>> X0.shape, bool(np.all(X0[1] == m.sample_init(1, rng=np.random.SeedSequence(0).spawn(4)[1])))
    ((4, 16), True)
    """
    init = settings["init"]
    if init.get("kind") != "normal":
        raise ValueError(f"settings['init'] must be of kind 'normal' (drawn from the seed), got "
                         f"{init.get('kind')!r}: a scan from explicit starts does not store them")
    starts = [int(i) for i in starts]
    scale = init["scale"]
    return np.vstack([model.sample_init(1, rng=child_seed(settings["seed"], i), scale=scale)
                      for i in starts]).reshape(len(starts), model.n_params)
