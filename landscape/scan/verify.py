"""Is a store the scan of this model, and are its stored points critical?

A store keeps the :func:`fingerprint` of the model it scanned; verification
re-evaluates the gradient at every stored critical point with the model
(``Scan.load(path, model, verify=True)``), which catches a file rewritten
consistently (array and checksum), which checksums cannot.
"""

import numpy as np

from ..errors import StoreError
from .result import CRITICAL_KINDS

__all__ = ["fingerprint", "check_same_model", "verify_scan", "verify_stored_ends",
           "VERIFY_FACTOR"]

_PROBE_SEED = 20210901
#: Verification accepts |grad L| <= VERIFY_FACTOR * gtol.  Every stored critical point passed
#: |grad L| <= gtol when it was written; evaluated again elsewhere (another BLAS kernel, thread
#: count or CPU) only the rounding of the gradient changes, by about n_params * eps * |x|^2:
#: measured, 1e-15 at W = I for k = 8 and 1e-14 for k = 50 (x moved by up to 4 ulps), and the
#: points of the V = I_8 scan (|grad L| up to 0.36 gtol) move by under 3e-15 with 1 or 2 BLAS
#: threads.  So 10 gtol leaves a decade above the certified bound for rounding, while a stored x
#: that is not the point the scan certified is off by orders of magnitude (|grad L| 0.175
#: against gtol 1e-12 in issue 15).
VERIFY_FACTOR = 10.0


def fingerprint(model):
    """What identifies a model across processes: class, size, repr and losses at probe points.

    Returns
    -------
    dict
        JSON data: ``class``, ``n_params``, ``repr`` and ``probe`` (the losses at
        three fixed random points, to 13 significant digits).
    """
    P = np.random.default_rng(_PROBE_SEED).standard_normal((3, model.n_params)) / np.sqrt(
        max(1, model.input_dim))
    probe = [float(f"{v:.12e}") for v in model.loss_kernel(P)]
    return {"class": type(model).__name__, "n_params": int(model.n_params),
            "repr": repr(model), "probe": probe}


def check_same_model(model, settings, path):
    """Raise ValueError unless `model` is the model scanned into the store at `path`."""
    stored = settings["model"]
    if fingerprint(model) != stored:
        raise ValueError(f"model {model!r} is not the model scanned into store {path} "
                         f"({stored['repr']}: its losses at probe points differ); pass the "
                         "model the scan was run with")


def verify_scan(model, s):
    """Raise StoreError unless every point and critical end of Scan `s` is critical for `model`
    (|grad L| <= :data:`VERIFY_FACTOR` * gtol); ValueError if `model` is not its model."""
    check_same_model(model, s.settings, s.path)
    critical = np.flatnonzero([k in CRITICAL_KINDS for k in s.outcomes.kind])
    labels = [f"point {p.id} (table points, row id {p.id})" for p in s.points] + [
        f"the end point of start {s.outcomes.start[i]} (table starts, row start "
        f"{s.outcomes.start[i]})" for i in critical]
    X = [p.x for p in s.points] + list(s.outcomes.x[critical])
    _check_gradients(model, X, labels, s.settings["gtol"], s.path)


def verify_stored_ends(model, store):
    """Before resuming: every stored end point classified as critical is critical for `model`."""
    settings = store.settings
    check_same_model(model, settings, store.path)
    rec = store.read_outcomes(model.n_params)
    critical = np.flatnonzero([c.kind in CRITICAL_KINDS for c in rec.classification])
    labels = [f"the end point of start {rec.start[i]} (table starts, row start "
              f"{rec.start[i]})" for i in critical]
    _check_gradients(model, rec.x[critical], labels, settings["gtol"], store.path)


def _check_gradients(model, X, labels, gtol, path):
    """Raise StoreError naming the first row of X whose |grad L| exceeds VERIFY_FACTOR * gtol."""
    limit = VERIFY_FACTOR * gtol
    X = np.asarray(X, dtype=np.float64).reshape(len(labels), model.n_params)
    gnorm = np.full(len(X), np.nan)          # NaN: no gradient (non-finite or a zero neuron)
    smooth = np.all(np.isfinite(X), axis=1)
    smooth[smooth] = ~model.nondifferentiable_units(X[smooth]).any(axis=1)
    if smooth.any():       # the kernel, not grad_batch: an overflowing x is a bad row, not an error
        with np.errstate(over="ignore", invalid="ignore"):
            G = model.in_chunks(model.grad_kernel, X[smooth], out_shape=(model.n_params,))
            gnorm[smooth] = np.linalg.norm(G, axis=1)
    bad = np.flatnonzero(~(gnorm <= limit))
    if bad.size == 0:
        return
    i = bad[0]
    found = ("has no gradient (a non-finite entry or a zero neuron)" if np.isnan(gnorm[i])
             else f"has |grad L| = {gnorm[i]:.3g}")
    raise StoreError(f"store {path}: {labels[i]} {found} when re-evaluated with the model, "
                     f"above {VERIFY_FACTOR:g} x gtol = {limit:.3g}: its stored x is not the "
                     f"critical point the scan certified ({bad.size} of {len(X)} stored points "
                     "fail).  The file was altered; move it away and re-run the scan into a new "
                     "store", path)
