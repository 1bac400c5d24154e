"""The one gradient-descent loop: many starts, each descended until its next event.

:func:`~landscape.descend` and :func:`~landscape.descend_and_polish` both drive a
:class:`DescentRun`: the iterates of B starts with each start's step count, the state of the
divergence rule, of the plateau detector and of the record points.  ``run.advance(rows,
...)`` steps every given start until its first event -- converged (``|grad L| <= gtol``), due
(``|grad L| <= stop_below`` at a step ``>= check_from``: a caller's check, e.g. the hand-off to
Newton), not differentiable, failed (non-finite or diverged), out of budget -- and says which.

Two back ends compute the same thing: the model's compiled fused kernel
(:meth:`Model.fused_kernel`, numba; the teacher-student model has one), which runs each start's
steps in one compiled loop, and the numpy loop below, which steps all unfinished starts at
once with the model's batched kernels and is the reference (tests compare the two).
"""

import numpy as np

from ..models import compiled

__all__ = ["DescentRun", "Divergence", "DIVERGENCE_FACTOR", "DIVERGENCE_EVERY",
           "DIVERGENCE_CHECKS", "CONVERGED", "DUE", "NONDIFF", "FAILED", "MAXITER"]

# ---- divergence -------------------------------------------------------------------------
# A start of gradient descent has diverged (Status.DIVERGED) when its gradient or loss is not
# finite, or when its loss keeps growing far above where it started: every DIVERGENCE_EVERY
# steps, a start whose gradient norm is above its starting value has its loss checked, and
# one whose loss exceeded L(x0) + DIVERGENCE_FACTOR * max(1, |L(x0)|) at DIVERGENCE_CHECKS
# consecutive checks, each higher than the last, has diverged.  With a stable step gradient
# descent never increases the loss (the descent lemma: L(x - lr g) <= L(x) - lr (1 - lr
# lambda / 2) |g|^2 while lr < 2 / lambda), so a loss a thousand units (or times, for
# |L(x0)| > 1) above its start and still rising comes from a step too large for the curvature.
# The ReLU losses grow quadratically at infinity, so such a start runs away geometrically and
# crosses the bound within a few dozen steps.  Converging starts, whose gradient norm stays
# below its starting value, cost no loss evaluations.
DIVERGENCE_FACTOR = 1e3
DIVERGENCE_EVERY = 20
DIVERGENCE_CHECKS = 3

CONVERGED, DUE, NONDIFF, FAILED, MAXITER = (compiled.CONVERGED, compiled.DUE, compiled.NONDIFF,
                                            compiled.FAILED, compiled.MAXITER)
_FLUSH = compiled.FLUSH
_EVENT_CAPACITY = 8          # plateau events held per start between two flushes


class Divergence:
    """The starting losses of B starts and the loss bound of the divergence rule above."""

    def __init__(self, model, X0, name="X0"):
        L0 = model.in_chunks(model.loss_kernel, X0, out_shape=())
        bad = np.flatnonzero(~np.isfinite(L0))
        if bad.size:
            i = bad[0]
            raise ValueError(f"{name} row {i}: the loss is not finite there ({L0[i]}; largest "
                             f"|entry| {np.abs(X0[i]).max():.3g}): the model overflows float64 "
                             f"at this start; pass smaller starting points")
        self.loss0 = L0
        self.bound = L0 + DIVERGENCE_FACTOR * np.maximum(1.0, np.abs(L0))


class DescentRun:
    """Gradient descent with step `lr` on B starts, advanced event by event.

    Parameters
    ----------
    model : Model
    X0 : ndarray (B, n_params)
        Validated starting points (copied).
    lr, gtol : float
        Step size; a start stops as converged once ``|grad L| <= gtol``.
    maxiter : int
        Step budget of every start.
    record_at : ndarray of int, optional
        Steps at which to record each start's loss and gradient norm (``rec_loss``,
        ``rec_g`` of shape (R, B); ``rec_open[r, b]`` False where start b had stopped).
    plateau_factor : float, optional
        Detect plateaus (a dip of ``|grad L|`` by this factor followed by a rise by it): the
        list ``plateaus`` of (start, step, grad_norm, x) at the dips.
    fused : bool
        Use the model's compiled kernel when it has one (and numba is available).

    Attributes
    ----------
    X : ndarray (B, n_params)
        Current iterates; ``X[b]`` is the iterate of step ``it[b]``.
    it : ndarray of int64 (B,)
    gn : ndarray (B,)
        ``|grad L|`` at each start's current iterate after its last advance (NaN where not
        differentiable).
    """

    def __init__(self, model, X0, *, lr, gtol, maxiter, record_at=None, plateau_factor=None,
                 fused=True):
        B, n = X0.shape
        self.model = model
        self.kernel = model.fused_kernel() if (fused and compiled.AVAILABLE) else None
        self.X = np.array(X0, dtype=float, order="C", copy=True)
        self.lr, self.gtol = float(lr), float(gtol)
        self.it = np.zeros(B, dtype=np.int64)
        self.max_it = np.full(B, int(maxiter), dtype=np.int64)
        self.gn = np.full(B, np.nan)
        div = Divergence(model, self.X)
        self.loss0 = div.loss0
        self.g0 = np.full(B, np.nan)
        self.bound = div.bound
        self.last = div.loss0.copy()
        self.streak = np.zeros(B, dtype=np.int64)
        self.div_every, self.div_checks = DIVERGENCE_EVERY, DIVERGENCE_CHECKS
        self.plateau_on = plateau_factor is not None
        self.factor = float(plateau_factor) if self.plateau_on else 1.0
        cap, m = (_EVENT_CAPACITY, n) if self.plateau_on else (0, 0)
        self.hi = np.full(B, np.nan)
        self.lo = np.full(B, np.nan)
        self.x_lo = np.zeros((B, m))
        self.at_lo = np.zeros(B)
        self.ev_at = np.zeros((B, cap))
        self.ev_g = np.zeros((B, cap))
        self.ev_x = np.zeros((B, cap, m))
        self.ev_n = np.zeros(B, dtype=np.int64)
        self.plateaus = []
        at = np.zeros(0, dtype=np.int64) if record_at is None else np.asarray(record_at,
                                                                                np.int64)
        self.rec_at = at
        self.rec_ptr = np.zeros(B, dtype=np.int64)
        self.rec_loss = np.full((len(at), B), np.nan)
        self.rec_g = np.full((len(at), B), np.nan)
        self.rec_open = np.zeros((len(at), B), dtype=bool)

    def advance(self, rows, stop_below=None, check_from=None):
        """Descend the starts `rows` until each one's first event; returns the events (len(rows),).

        stop_below, check_from : ndarray (B,), optional
            Start b stops as DUE once ``|grad L| <= stop_below[b]`` at a step
            ``>= check_from[b]``.
        """
        B = len(self.X)
        rows = np.asarray(rows, dtype=np.int64)
        stop_below = np.full(B, -1.0) if stop_below is None else np.asarray(stop_below, float)
        check_from = (np.zeros(B, dtype=np.int64) if check_from is None
                      else np.asarray(check_from, dtype=np.int64))
        reason = np.full(B, _FLUSH, dtype=np.int64)
        todo = rows
        while todo.size:
            if self.kernel is not None:
                active = np.zeros(B, dtype=bool)
                active[todo] = True
                self.kernel.advance(self, active, stop_below, check_from, self.gn, reason)
            else:
                self._advance_numpy(todo, stop_below, check_from, reason)
            self._flush(todo)
            todo = todo[reason[todo] == _FLUSH]
        return reason[rows]

    def _flush(self, rows):
        for b in rows[self.ev_n[rows] > 0]:
            for e in range(self.ev_n[b]):
                self.plateaus.append((int(b), float(self.ev_at[b, e]), float(self.ev_g[b, e]),
                                      self.ev_x[b, e].copy()))
            self.ev_n[b] = 0

    def _advance_numpy(self, rows, stop_below, check_from, reason):
        """The reference back end: every unfinished start of `rows` one batched step at a time."""
        model, n = self.model, self.X.shape[1]
        act = rows.copy()
        Xa = self.X[act]
        while act.size:
            full = self.ev_n[act] >= self.ev_x.shape[1] if self.plateau_on else np.zeros(
                len(act), dtype=bool)
            t = self.it[act]
            bad = model.nondifferentiable_units(Xa).any(axis=1)
            G = np.zeros_like(Xa)
            good = ~bad & ~full
            if np.any(good):
                G[good] = model.in_chunks(model.grad_kernel, Xa[good], out_shape=(n,))
            gn = np.sqrt(np.einsum("bn,bn->b", G, G))
            gn[bad] = np.nan
            finite = np.isfinite(gn)
            live = ~full
            ptr = np.minimum(self.rec_ptr[act], max(len(self.rec_at) - 1, 0))
            recording = live & (self.rec_ptr[act] < len(self.rec_at))
            if recording.any():
                recording &= self.rec_at[ptr] == t
            checking = live & finite & (t > 0) & (t % self.div_every == 0)
            first = live & (t == 0) & np.isnan(self.g0[act])
            watch = checking & ~first & (gn > self.g0[act])
            need = recording | watch
            loss = np.full(len(act), np.nan)
            if need.any():
                loss[need] = model.in_chunks(model.loss_kernel, Xa[need], out_shape=())
            if self.plateau_on:
                self._plateau_numpy(act[live], Xa[live], np.where(finite, gn, np.inf)[live],
                                    t[live])
            for j in np.flatnonzero(recording):
                b, p = act[j], self.rec_ptr[act[j]]
                self.rec_loss[p, b], self.rec_g[p, b], self.rec_open[p, b] = loss[j], gn[j], True
                self.rec_ptr[b] = p + 1
            self.gn[act[live]] = gn[live]
            self.g0[act[first]] = gn[first]
            quiet = checking & ~first & ~watch
            self.streak[act[quiet]] = 0
            diverged = np.zeros(len(act), dtype=bool)
            if watch.any():
                b = act[watch]
                L = loss[watch]
                rising = ~(L <= self.bound[b]) & ~(L <= self.last[b])
                self.streak[b] = np.where(rising, self.streak[b] + 1, 0)
                self.last[b] = L
                diverged[watch] = ~np.isfinite(L) | (self.streak[b] >= self.div_checks)
            why = np.zeros(len(act), dtype=np.int64)
            why[live & (t >= self.max_it[act])] = MAXITER
            why[live & (gn <= stop_below[act]) & (t >= check_from[act])] = DUE
            why[live & (gn <= self.gtol)] = CONVERGED
            why[live & diverged] = FAILED
            why[live & ~finite] = FAILED
            why[live & bad] = NONDIFF
            why[full] = _FLUSH
            stop = why > 0
            if stop.any():
                self.X[act[stop]] = Xa[stop]
                reason[act[stop]] = why[stop]
                keep = ~stop
                act, Xa, G = act[keep], Xa[keep], G[keep]
            Xa -= self.lr * G
            self.it[act] += 1

    def _plateau_numpy(self, rows, Xa, g, t):
        """The plateau detector (see DescentRun), one step of the given starts."""
        hi, lo = self.hi[rows], self.lo[rows]
        new = np.isnan(hi)
        fire = ~new & (lo <= hi / self.factor) & (g >= lo * self.factor)
        for j in np.flatnonzero(fire):
            b = rows[j]
            e = self.ev_n[b]
            self.ev_at[b, e], self.ev_g[b, e] = self.at_lo[b], self.lo[b]
            self.ev_x[b, e] = self.x_lo[b]
            self.ev_n[b] = e + 1
        up = ~new & ~fire & (g > hi)
        down = ~new & ~fire & ~up & (g < lo)
        reset = new | fire | up
        self.hi[rows[reset]] = g[reset]
        self.lo[rows[reset | down]] = g[reset | down]
        self.at_lo[rows[reset | down]] = t[reset | down]
        self.x_lo[rows[new | down]] = Xa[new | down]
