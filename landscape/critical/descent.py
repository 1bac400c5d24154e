"""Batched gradient descent and gradient flow over many starts at once.

One batched gradient per step for all unfinished rows; rows that reach gtol
(or fail) drop out of the working set.  Optionally records a :class:`Trace` of
loss, gradient norm, iterates and user metrics at chosen iterations (or flow
times), and the near-critical plateaus of each trajectory: places where the
gradient norm dipped by a factor and then rose again by that factor (GD
passing slowly by a saddle), with the iterate at the dip.
"""

import dataclasses
import numbers
from collections.abc import Mapping

import numpy as np

from .._results import Result
from .._validation import (as_batch, as_choice, as_float_array, as_positive_float,
                           as_positive_int)
from ._result import Status
from .advance import CONVERGED, DUE, FAILED, NONDIFF, DescentRun
from ..models.base import check_model

__all__ = ["descend", "Descent", "Trace"]

@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Trace(Result):
    """What :func:`descend` recorded for B starts at R record points.

    The record points are the iterations `record_at` of gradient descent, or the times
    `t_eval` of gradient flow (or of gradient descent, where time is ``lr`` times the
    iteration), or the log-spaced points of ``record=True``.

    Attributes
    ----------
    nit : ndarray of int, shape (R,), or None
        The iteration of each record (gradient descent); None for gradient flow.
    t : ndarray of shape (R,)
        The time of each record: the flow time, or ``lr * nit`` for gradient descent.
    loss, grad_norm : ndarray of shape (R, B)
        L and |grad L| of every start at every record (|grad L| is NaN where L is not
        differentiable).
    finished : ndarray of bool, shape (R, B)
        True where the start had stopped (converged, diverged, reached a non-differentiable
        point or its iteration budget) before the record point.  There every field holds the
        start's final values: ``Descent.loss``, ``Descent.grad_norm``, ``Descent.x`` and the
        callback's metrics at ``Descent.x``.
    x : ndarray of shape (R, B, n_params) or None
        The iterates (``record_x=True``).
    metrics : dict of str to ndarray of shape (R, B, ...)
        What ``callback(X, at)`` returned at each record, stacked along a new first axis
        (empty without a callback).
    """

    nit: np.ndarray | None
    t: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    finished: np.ndarray
    x: np.ndarray | None = None
    metrics: dict = dataclasses.field(default_factory=dict)

    def __repr__(self):
        shape = self.loss.shape
        return (f"Trace(records={shape[0]}, starts={shape[1]}, "
                f"x={'recorded' if self.x is not None else None}, "
                f"metrics={sorted(self.metrics)})")


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Descent(Result):
    """Outcome of :func:`descend` for B starts.

    Attributes
    ----------
    x : ndarray of shape (B, n_params)
        Final iterates.
    loss, grad_norm : ndarray of shape (B,)
        L and |grad L| at the final iterates.
    nit : ndarray of shape (B,)
        Iterations (gd) or right-hand-side evaluations (flow) per start.
    status : ndarray of shape (B,)
        :class:`Status` values (CONVERGED, MAXITER, NON_DIFFERENTIABLE, DIVERGED; NON_FINITE
        for gradient flow).
    success : ndarray of shape (B,)
        ``grad_norm <= gtol``.
    method : str
        "gd" or "flow".
    lr : float or None
        Step size (gd).
    trace : Trace or None
        The records (with `record_at`, `t_eval` or ``record=True``).
    record_at : ndarray of shape (R,) or None
        ``record=True``: iterations (gd) or times (flow) of the recorded trace.
    record_loss, record_grad_norm : ndarray of shape (B, R) or None
        ``record=True``: the trace, transposed, and NaN after a start has finished.
    plateau_start : ndarray of shape (P,) or None
        For each detected plateau, the index of its start (row of X0).
    plateau_at, plateau_grad_norm, plateau_loss : ndarray of shape (P,) or None
        Iteration (or time), gradient norm and loss at the dip.
    plateau_x : ndarray of shape (P, n_params) or None
        The iterate at the dip: a starting point for polishing the visited saddle.
    """

    x: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    nit: np.ndarray
    status: np.ndarray
    success: np.ndarray
    method: str
    lr: float | None
    trace: Trace | None = None
    record_at: np.ndarray | None = None
    record_loss: np.ndarray | None = None
    record_grad_norm: np.ndarray | None = None
    plateau_start: np.ndarray | None = None
    plateau_at: np.ndarray | None = None
    plateau_grad_norm: np.ndarray | None = None
    plateau_loss: np.ndarray | None = None
    plateau_x: np.ndarray | None = None

    @property
    def messages(self):
        """The status of each start in words."""
        return [Status(s).message for s in self.status]


class _Recorder:
    """Fills a :class:`Trace` at the record points `at` of one run, in order.

    ``take`` records the next point: the active rows (original indices `rows`) with their
    iterates and gradient norms; `X` is the full (B, n) array whose other rows hold final
    iterates.  ``trace`` fills what finished rows hold and returns the Trace.
    """

    def __init__(self, model, B, n, at, record_x, callback):
        R = len(at)
        self.model, self.B, self.at, self.callback = model, B, at, callback
        self.k = 0
        self.loss = np.full((R, B), np.nan)
        self.grad_norm = np.full((R, B), np.nan)
        self.finished = np.ones((R, B), dtype=bool)
        self.x = np.full((R, B, n), np.nan) if record_x else None
        self.metrics = None

    @property
    def next_at(self):
        """The next record point, or -1 when every point is recorded."""
        return self.at[self.k] if self.k < len(self.at) else -1

    def take(self, rows, Xa, gn, X):
        k = self.k
        if rows.size:
            self.finished[k, rows] = False
            self.grad_norm[k, rows] = gn
            self.loss[k, rows] = self.model.in_chunks(self.model.loss_kernel, Xa, out_shape=())
            if self.x is not None:
                self.x[k, rows] = Xa
        if self.callback is not None:
            full = X.copy()
            full[rows] = Xa
            self._store(k, self.callback(full, self.at[k].item()))
        self.k += 1

    def _store(self, k, out):
        where = f"at the record {self.at[k].item()}"
        if not isinstance(out, Mapping):
            raise TypeError(f"callback must return a dict of name -> array with one row per "
                            f"start, got {type(out).__name__} {where}")
        if self.metrics is None:
            self.metrics = {}
            for name, value in out.items():
                if not isinstance(name, str):
                    raise TypeError(f"callback's metric names must be str, got {name!r}")
                arr = np.asarray(value)
                if arr.ndim == 0 or arr.shape[0] != self.B or arr.dtype == object:
                    raise ValueError(f"callback's metric {name!r} has shape {arr.shape} "
                                     f"(dtype {arr.dtype}) {where}; return a numeric array "
                                     f"whose first axis is the {self.B} rows of X")
                self.metrics[name] = np.zeros((len(self.at),) + arr.shape, dtype=arr.dtype)
        if set(out) != set(self.metrics):
            raise ValueError(f"callback returned the metrics {sorted(out)} {where} but "
                             f"{sorted(self.metrics)} at the first record; return the same "
                             f"names every time")
        for name, value in out.items():
            arr = np.asarray(value)
            store = self.metrics[name]
            fits = np.can_cast(arr.dtype, store.dtype, "same_kind")
            if arr.shape != store.shape[1:] or not fits:
                raise ValueError(f"callback's metric {name!r} has shape {arr.shape} and dtype "
                                 f"{arr.dtype} {where} but {store.shape[1:]} and "
                                 f"{store.dtype} at the first record; keep them fixed")
            store[k] = arr

    def trace(self, X, loss, grad_norm, *, nit, t):
        r, b = np.nonzero(self.finished)
        self.loss[r, b] = loss[b]
        self.grad_norm[r, b] = grad_norm[b]
        if self.x is not None:
            self.x[r, b] = X[b]
        return Trace(nit=nit, t=t, loss=self.loss, grad_norm=self.grad_norm,
                     finished=self.finished, x=self.x, metrics=self.metrics or {})

    def legacy(self):
        """The ``record=True`` fields: (B, R) arrays, NaN where a start had finished."""
        return dict(record_loss=np.where(self.finished, np.nan, self.loss).T,
                    record_grad_norm=np.where(self.finished, np.nan, self.grad_norm).T)


class _Plateaus:
    """Online detection of dips of |grad L| by `factor` followed by a rise by `factor`."""

    def __init__(self, X, g, factor):
        self.factor = factor
        self.hi = g.copy()
        self.lo = g.copy()
        self.x_lo = X.copy()
        self.at_lo = np.zeros(len(g))
        self.found = []          # (row, at, grad_norm, x)

    def update(self, rows, X, g, at):
        """rows: original indices of the active rows; X, g: their iterates and norms."""
        fire = (self.lo <= self.hi / self.factor) & (g >= self.lo * self.factor)
        for r in np.flatnonzero(fire):
            self.found.append((rows[r], self.at_lo[r], self.lo[r], self.x_lo[r].copy()))
        self.hi[fire] = g[fire]
        self.lo[fire] = g[fire]
        up = g > self.hi
        self.hi[up] = g[up]
        self.lo[up] = g[up]
        down = g < self.lo
        self.lo[down] = g[down]
        self.x_lo[down] = X[down]
        self.at_lo[down] = at
        self.at_lo[up | fire] = at

    def keep(self, mask):
        self.hi, self.lo = self.hi[mask], self.lo[mask]
        self.x_lo, self.at_lo = self.x_lo[mask], self.at_lo[mask]


def _record_schedule(maxiter, n_points):
    pts = np.unique(np.round(np.logspace(0, np.log10(max(maxiter, 1)), n_points)).astype(int))
    return np.concatenate([[0], pts[pts > 0]])


def _as_points(values, name):
    """A non-empty, strictly increasing, finite, non-negative 1-d float array."""
    if isinstance(values, numbers.Real):
        values = [values]
    arr = as_float_array(values, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array of record points, got shape {arr.shape}")
    if arr[0] < 0 or np.any(np.diff(arr) <= 0):
        raise ValueError(f"{name} must be non-negative and strictly increasing, got "
                         f"{np.array2string(arr, threshold=8)}")
    return arr


def _record_points(method, record_at, t_eval, lr, maxiter, t_max):
    """The record points of gd (int iterations) or flow (float times), or None."""
    if record_at is not None and t_eval is not None:
        raise TypeError("record_at and t_eval are mutually exclusive: pass iterations as "
                        "record_at=... or times as t_eval=... (gd time is lr * iterations)")
    if method == "flow":
        if record_at is not None:
            raise TypeError("record_at is for method='gd' (iterations); gradient flow records "
                            "at times: pass t_eval=...")
        if t_eval is None:
            return None
        times = _as_points(t_eval, "t_eval")
        if t_max is not None and times[-1] > t_max:
            raise ValueError(f"t_eval must lie in [0, t_max = {t_max}], its last time is "
                             f"{times[-1]}; pass a larger t_max (or omit it: it defaults to "
                             f"t_eval[-1])")
        return times
    if t_eval is not None:
        times = _as_points(t_eval, "t_eval")
        at = np.round(times / lr)
        if np.any(np.diff(at) <= 0):
            raise ValueError(f"t_eval must map to distinct iterations round(t / lr) with "
                             f"lr = {lr}; space its times at least lr apart, or pass "
                             f"record_at=... iterations")
    elif record_at is not None:
        at = _as_points(record_at, "record_at")
        if np.any(at != np.round(at)):
            raise ValueError("record_at must hold whole iteration numbers, got "
                             f"{np.array2string(at, threshold=8)}; for times pass t_eval=...")
    else:
        return None
    name = "record_at" if record_at is not None else "t_eval / lr"
    if at[-1] > maxiter:
        raise ValueError(f"{name} reaches iteration {int(at[-1])} beyond maxiter = {maxiter}; "
                         f"pass maxiter >= {int(at[-1])}")
    return at.astype(np.int64)


def descend(model, X0, *, lr=None, maxiter=10_000, gtol=1e-8, method="gd", t_max=None,
            record=False, n_records=200, plateau_factor=10.0, stop_when=None, check_every=10,
            record_at=None, t_eval=None, record_x=False, callback=None):
    """Gradient descent (or gradient flow) from every row of X0 at once.

    Parameters
    ----------
    model : Model
    X0 : array_like of shape (B, n_params)
        Starting points, one per row (a single vector is one start).
    lr : float
        Step size of gradient descent (``method="gd"``).
    maxiter : int
        Maximum iterations (gd) or right-hand-side evaluations per start (flow).
    gtol : float
        A start finishes when |grad L| <= gtol (``gtol=0`` runs every start to `maxiter`).
    method : {"gd", "flow"}
        ``"gd"``: x <- x - lr grad L(x).  ``"flow"``: gradient flow
        dx/dt = -grad L(x) integrated by an adaptive Runge-Kutta method (RK45)
        up to time `t_max`, in segments of doubling length after which finished
        rows drop out.
    t_max : float
        Final time of the flow (``method="flow"``; defaults to ``t_eval[-1]``).
    record : bool
        Detect near-critical plateaus, and fill ``record_loss``/``record_grad_norm``
        (and `trace`) at ~`n_records` log-spaced iterations (or times), or at
        `record_at`/`t_eval` when given.
    n_records : int
    plateau_factor : float
        A plateau is a dip of |grad L| by this factor below its previous peak
        followed by a rise by this factor above the dip.
    stop_when : callable, optional
        ``stop_when(X, starts) -> bool array``: a start that reached gtol finishes
        only when this accepts it (X holds such rows, ``starts`` their indices in
        X0); rejected rows keep descending and are asked again after
        `check_every` iterations, then twice as many after each further refusal
        (gd only).
    check_every : int
    record_at : array_like of int, optional
        Increasing iterations (gd; 0 is the start, at most `maxiter`) at which to record
        loss, gradient norm and, as asked, iterates and metrics into ``Descent.trace``.
    t_eval : array_like of float, optional
        Increasing times at which to record.  Gradient flow: times in [0, t_max].
        Gradient descent: time is ``lr`` times the iteration, so t records iteration
        ``round(t / lr)``.  Mutually exclusive with `record_at`.
    record_x : bool
        Also record the iterates (``trace.x``, R * B * n_params floats).
    callback : callable, optional
        ``callback(X, at) -> dict[str, ndarray]``, called at each record with every
        start's iterate X (B, n_params; a start that has finished holds its final
        iterate) and the iteration (gd) or time (flow) `at`.  Each returned array has
        one row per row of X; they are stacked in ``trace.metrics``.

    Returns
    -------
    Descent

    Raises
    ------
    ValueError
        The loss is not finite at a row of `X0` (it overflows float64 there).

    Notes
    -----
    A start of gradient descent that diverges stops with status ``DIVERGED``:
    its gradient or loss became non-finite, or its loss, checked every 20 steps
    while its gradient norm is above its starting value, exceeded
    ``L(x0) + 1000 * max(1, |L(x0)|)`` at 3 consecutive checks, each higher than
    the last.  A stable step never increases the loss (the descent lemma), so
    such a start only comes from a step too large for the curvature: pass a
    smaller `lr`.

    Recording costs one loss evaluation of the running starts per record (plus the
    callback); without records the loop evaluates one gradient per step and nothing
    else.

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    >>> d = ls.descend(m, m.sample_init(4, rng=0), lr=1 / 3, gtol=1e-10)
    >>> d.x.shape, bool(np.all(d.grad_norm <= 1e-10))
    ((4, 9), True)

    Iterates and a metric at chosen iterations:

    >>> norms = lambda X, nit: {"norms": np.linalg.norm(X.reshape(len(X), 3, 3), axis=-1)}
    >>> d = ls.descend(m, m.sample_init(4, rng=0), lr=1 / 3, gtol=0.0, maxiter=100,
    ...                record_at=[0, 10, 100], record_x=True, callback=norms)
    >>> d.trace.nit, d.trace.x.shape, d.trace.metrics["norms"].shape
    (array([  0,  10, 100]), (3, 4, 9), (3, 4, 3))
    """
    check_model(model)
    X0 = as_batch(X0, model.n_params, "X0")
    as_choice(method, "method", ("gd", "flow"))
    maxiter = as_positive_int(maxiter, "maxiter", minimum=0)
    gtol = as_positive_float(gtol, "gtol", allow_zero=True)
    n_records = as_positive_int(n_records, "n_records", minimum=2)
    plateau_factor = as_positive_float(plateau_factor, "plateau_factor")
    if plateau_factor <= 1:
        raise ValueError(f"plateau_factor must be > 1, got {plateau_factor}")
    if not isinstance(record_x, (bool, np.bool_)):
        raise TypeError(f"record_x must be True or False, got {record_x!r}")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be a callable callback(X, at) -> dict of name -> "
                        f"array with one row per start, got {type(callback).__name__}")
    if method == "gd":
        if lr is None:
            raise TypeError("descend(method='gd') needs a step size: pass lr=... "
                            "(e.g. lr=5/k for the teacher-student model of Safran et al.)")
        lr = as_positive_float(lr, "lr")
        if t_max is not None:
            raise TypeError("t_max is for method='flow'; gradient descent stops at maxiter")
        check_every = as_positive_int(check_every, "check_every")
        if stop_when is not None and not callable(stop_when):
            raise TypeError("stop_when must be a callable stop_when(X, starts) -> bool array")
    else:
        if lr is not None:
            raise TypeError("lr is for method='gd'; gradient flow adapts its own steps "
                            "(pass t_max=...)")
        if t_max is not None:
            t_max = as_positive_float(t_max, "t_max")
    at = _record_points(method, record_at, t_eval, lr, maxiter, t_max)
    if at is None and (record_x or callback is not None) and not record:
        raise TypeError("record_x and callback need record points: pass record_at=... "
                        "(iterations) or t_eval=... (times)")
    if method == "flow":
        if t_max is None:
            if at is None:
                raise TypeError("descend(method='flow') needs a final time: pass t_max=... "
                                "(or t_eval=..., whose last time it then is)")
            t_max = float(at[-1])
        if at is None and record:
            at = np.concatenate([[0.0], np.logspace(np.log10(t_max) - 6, np.log10(t_max),
                                                    n_records - 1)])
    elif at is None and record:
        at = _record_schedule(maxiter, n_records)
    recorder = (_Recorder(model, len(X0), model.n_params, at, record_x, callback)
                if at is not None else None)
    # A diverging row is reported as DIVERGED (data), not as overflow warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        if method == "gd":
            return _gd(model, X0, lr, maxiter, gtol, record, plateau_factor, recorder,
                       stop_when, check_every)
        return _flow(model, X0, t_max, maxiter, gtol, record, plateau_factor, recorder)


def _gd(model, X0, lr, maxiter, gtol, record, plateau_factor, recorder, stop_when=None,
         check_every=10):
    """Gradient descent on a :class:`~landscape.critical.advance.DescentRun`.

    Loss and gradient-norm records are taken inside the run; iterates and callback metrics
    (``record_x``, ``callback``) need every start at the record step, so then the run is
    advanced one record segment at a time.  ``stop_when`` turns convergence into a check
    (DUE events) that the callable accepts or refuses (asked again after `check_every`
    steps, doubling).
    """
    B, n = X0.shape
    snap = recorder is not None and (recorder.x is not None or recorder.callback is not None)
    run = DescentRun(model, X0, lr=lr, gtol=-1.0 if stop_when is not None else gtol,
                     maxiter=maxiter, record_at=None if recorder is None or snap else recorder.at,
                     plateau_factor=plateau_factor if record else None)
    status = np.full(B, int(Status.MAXITER))
    stop_below = check_from = None
    if stop_when is not None:
        stop_below = np.full(B, gtol)
        check_from = np.zeros(B, dtype=np.int64)
        wait = np.full(B, check_every, dtype=np.int64)
    rows = np.arange(B)
    while rows.size:
        at = recorder.next_at if snap else -1
        run.max_it[rows] = maxiter if at < 0 else min(at, maxiter)
        why = run.advance(rows, stop_below, check_from)
        if at >= 0:
            here = rows[run.it[rows] == at]
            recorder.take(here, run.X[here], run.gn[here], run.X)
        done = why == CONVERGED
        if stop_when is not None and np.any(why == DUE):
            ask = np.flatnonzero(why == DUE)
            ok = np.asarray(stop_when(run.X[rows[ask]], rows[ask]), dtype=bool)
            done[ask[ok]] = True
            refused = rows[ask[~ok]]
            check_from[refused] = run.it[refused] + wait[refused]
            wait[refused] *= 2
        status[rows[done]] = int(Status.CONVERGED)
        status[rows[why == NONDIFF]] = int(Status.NON_DIFFERENTIABLE)
        status[rows[why == FAILED]] = int(Status.DIVERGED)
        out = done | (why == NONDIFF) | (why == FAILED) | (run.it[rows] >= maxiter)
        rows = rows[~out]
    X, nit, gnorm = run.X, run.it.astype(int), run.gn
    loss = model.in_chunks(model.loss_kernel, X, out_shape=())
    extra = {}
    if recorder is not None:
        if not snap:
            recorder.loss, recorder.grad_norm = run.rec_loss, run.rec_g
            recorder.finished = ~run.rec_open
            recorder.k = len(recorder.at)
        none = np.zeros(0, dtype=int)
        while recorder.next_at >= 0:          # every start stopped before these records
            recorder.take(none, X[none], gnorm[none], X)
        extra["trace"] = recorder.trace(X, loss, gnorm, nit=recorder.at,
                                        t=lr * recorder.at.astype(float))
        if record:
            extra.update(recorder.legacy(), record_at=recorder.at.astype(float))
    if record:
        extra.update(_plateau_fields(model, sorted(run.plateaus, key=lambda f: (f[0], f[1])),
                                     n))
    return Descent(x=X, loss=loss, grad_norm=gnorm, nit=nit, status=status,
                   success=status == int(Status.CONVERGED), method="gd", lr=lr, **extra)


def _plateau_fields(model, found, n):
    px = np.array([f[3] for f in found]).reshape(len(found), n)
    return dict(
        plateau_start=np.array([f[0] for f in found], dtype=int),
        plateau_at=np.array([f[1] for f in found], dtype=float),
        plateau_grad_norm=np.array([f[2] for f in found], dtype=float),
        plateau_loss=(model.in_chunks(model.loss_kernel, px, out_shape=()) if len(found)
                      else np.zeros(0)),
        plateau_x=px)


def _flow(model, X0, t_max, maxiter, gtol, record, plateau_factor, recorder):
    from scipy.integrate import solve_ivp     # imported when gradient flow is used

    B, n = X0.shape
    X = X0.copy()
    nit = np.zeros(B, dtype=int)
    status = np.full(B, int(Status.MAXITER))
    grad = lambda A: model.in_chunks(model.grad_kernel, A, out_shape=(n,))  # noqa: E731
    bad = model.nondifferentiable_units(X).any(axis=1)
    status[bad] = int(Status.NON_DIFFERENTIABLE)
    rows = np.flatnonzero(~bad)
    times = recorder.at if recorder is not None else np.zeros(0)
    plateaus = None
    if (record or times.size and times[0] == 0) and rows.size:
        g0 = np.linalg.norm(grad(X[rows]), axis=1)
        if times.size and times[0] == 0:
            recorder.take(rows, X[rows], g0, X)
        if record:
            plateaus = _Plateaus(X[rows], g0, plateau_factor)
    t, seg_end = 0.0, min(t_max, 1.0)
    while rows.size:
        m = len(rows)
        calls = [0]

        def rhs(_t, y):
            calls[0] += 1
            Y = y.reshape(m, n)
            if model.nondifferentiable_units(Y).any():
                return np.full_like(y, np.nan)
            return -grad(Y).ravel()

        # seg_end is always evaluated: the segment must end there, recorded times or not
        inside = times[(times > t) & (times <= seg_end)]
        t_eval = np.union1d(inside, [seg_end]) if inside.size else None
        sol = solve_ivp(rhs, (t, seg_end), X[rows].ravel(), method="RK45", rtol=1e-10,
                        atol=1e-14, t_eval=t_eval)
        nit[rows] += calls[0]
        for j, tj in enumerate(sol.t if inside.size else ()):
            if recorder.next_at != tj:
                continue                      # the segment end, not a recorded time
            Y = sol.y[:, j].reshape(m, n)
            g = np.linalg.norm(grad(Y), axis=1)
            recorder.take(rows, Y, g, X)
            if plateaus is not None:
                plateaus.update(rows, Y, g, tj)
        Xa = sol.y[:, -1].reshape(m, n) if np.size(sol.y) else X[rows]
        X[rows] = Xa
        if not sol.success or not np.all(np.isfinite(Xa)):
            status[rows] = int(Status.NON_FINITE)
            break
        done = np.linalg.norm(grad(Xa), axis=1) <= gtol
        status[rows[done]] = int(Status.CONVERGED)
        t = seg_end
        keep = ~done & (nit[rows] < maxiter) & (t < t_max)
        if plateaus is not None:
            plateaus.keep(keep)
        rows = rows[keep]
        seg_end = min(t_max, 2.0 * seg_end)
    loss = model.in_chunks(model.loss_kernel, X, out_shape=())
    gnorm = np.full(B, np.nan)
    ok = ~model.nondifferentiable_units(X).any(axis=1)
    gnorm[ok] = np.linalg.norm(grad(X[ok]), axis=1)
    extra = {}
    if recorder is not None:
        none = np.zeros(0, dtype=int)
        while recorder.next_at >= 0:          # every start stopped before these records
            recorder.take(none, X[none], gnorm[none], X)
        extra["trace"] = recorder.trace(X, loss, gnorm, nit=None, t=recorder.at)
        if record:
            extra.update(recorder.legacy(), record_at=recorder.at)
    if record:
        extra.update(_plateau_fields(model, plateaus.found if plateaus is not None else [], n))
    return Descent(x=X, loss=loss, grad_norm=gnorm, nit=nit, status=status,
                   success=status == int(Status.CONVERGED), method="flow", lr=None, **extra)
