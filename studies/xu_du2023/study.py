"""Xu & Du (COLT 2023): over-parameterisation slows gradient descent on one ReLU teacher from
a linear rate to T^-3.

One teacher neuron v (|v| = 1) in R^d, students sum_{i=1}^n relu(w_i . x), population loss

    F(W) = 1/2 E[(sum_i relu(w_i . x) - relu(v . x))^2],   x ~ N(0, I_d)

(the library's ``ReluTeacherStudent``; note the factor 1/2), small random initialisation
w_i(0) ~ N(0, sigma^2 I) and gradient descent W <- W - eta grad F(W).  Flow time is
t = eta * steps.  The study measures

* n = 1: the loss falls geometrically, at the rate (1 - eta/2)^2 per step that the Hessian
  I/2 at w = v predicts, below 1e-14 within a few hundred steps (``landscape.descend``);
* n = 2, 3, 5: the log-log slope of the loss on the tail [T 10^-1/2, T] (-3 in the paper),
  the slope of the largest student-teacher angle (-1), the constants lim L t^3 and
  lim theta_max t, the three phases (alignment, norm growth, slow local convergence) and the
  balance of the student norms (max/min ratio), also against the step size and init scale;
* the mirror-symmetric two-neuron case w_{1,2} = r(cos phi v +- sin phi u), under gradient
  flow (``landscape.descend(method="flow")``) and gradient descent: with the 1/2-loss,
  dphi/dt = -phi^2/pi (1 + o(1)), so phi ~ pi/t and F ~ phi^3/(6 pi) ~ pi^2/(6 t^3).

The n >= 2 runs take T = 10^5 steps of a tiny model (k <= 5, d = 10), where a gradient call
costs its few dozen numpy operations rather than arithmetic: ``descend`` (which also records
only the loss) or ``model.grad_batch`` would need one call per width and step.  So every
width and start runs in one padded batch through :func:`single_teacher_grad`, the same closed
form with the same stable angles in one call (X -= eta * grad, iterates stored at a
dense-then-log-spaced schedule).  It is checked against ``model.grad_batch`` at every stored
iterate and against ``descend`` (same iterates after ``check_steps`` steps), and the per-step
costs of both are measured side by side.  Late losses
(~1e-12) are evaluated twice: by ``model.loss_batch`` and by the cancellation-free form
F = |sum_i w_i - v|^2/4 + [sum_{i != i'} |w_i||w_i'| h(theta_ii') - 2 sum_i |w_i| h(theta_i)]
/ (4 pi), h(theta) = sin theta - theta cos theta (a series below 0.1 rad), which keeps full
relative accuracy down to the rounding of the iterates (the closed form sums O(1) terms and
bottoms out near 1e-16).

Run::

    landscape study xu_du2023 [--quick]
    python -c "from landscape.studies import run_study; run_study('xu_du2023', 'out')"
"""

import dataclasses
import os
import platform
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import landscape as ls
from landscape.studies import read_config
from landscape.report import (Section, Table, json_ready, new_figure, save_figure, write_json,
                              write_page)

TITLE = ("Xu & Du 2023: one ReLU teacher -- n = 1 student converges linearly, n >= 2 students "
         "as T^-3 (angles ~ 1/T, three phases, balanced norms)")
PAPER = ("W. Xu, S. S. Du, \"Over-parameterization exponentially slows down gradient descent "
         "for learning a single neuron\", COLT 2023")

CONFIG_FILE = Path(__file__).with_name("config.toml")

__all__ = ["TITLE", "PAPER", "Config", "TailFit", "teacher", "mirror", "record_schedule",
           "gd_trace", "h_cubic", "geometry", "fit_loglog", "asymptotic_constant",
           "local_constants", "phase_boundaries", "run"]

SINGLE_LOSS_WINDOW = (1e-13, 1e-5)     # the n = 1 geometric rate is fitted on this loss range
SINGLE_TARGET = 1e-14                  # "converged": library loss at or below this


# ---- configuration -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """The settings of one mode of the study (``config.toml``: ``[common]`` + ``[full]`` or
    ``[quick]``).

    Attributes
    ----------
    mode : {"full", "quick"}
    dim : int
        Input dimension d; the teacher is v = e_1.
    init_scale : float
        sigma: every student entry starts N(0, sigma^2).
    lr : float
        Gradient-descent step eta.
    students : tuple of int
        The over-parameterised widths n >= 2.
    seeds : int
        Random starts per width (rows of one batch).
    steps : int
        T for n >= 2.
    single_steps : int
        Steps of the n = 1 run.
    dense_steps, log_records : int
        Every step is recorded up to `dense_steps`, then `log_records` log-spaced steps.
    fit_decades : float
        Tail fits use [T 10^-fit_decades, T] (and [t_max 10^-fit_decades, t_max] for the flow).
    align_angle : float
        The alignment phase ends once every student stays within this angle of v.
    check_steps : int
        Steps of ``landscape.descend`` compared with the fused loop.
    seed : int
    flow_time : float
        Gradient flow of the symmetric two-neuron case runs to this time.
    balance_students, balance_seeds : int
    balance_flow_time : float
    balance_lrs, balance_scales : tuple of float
        The sweep of the final norm ratio over step sizes and init scales.
    """

    mode: str
    dim: int
    init_scale: float
    lr: float
    students: tuple
    seeds: int
    steps: int
    single_steps: int
    dense_steps: int
    log_records: int
    fit_decades: float
    align_angle: float
    check_steps: int
    seed: int
    flow_time: float
    balance_students: int
    balance_flow_time: float
    balance_seeds: int
    balance_lrs: tuple
    balance_scales: tuple

    def __post_init__(self):
        students = tuple(int(n) for n in self.students)
        if not students or min(students) < 2 or 2 not in students:
            raise ValueError(f"students must be widths n >= 2 including 2 (the symmetric pair "
                             f"runs with n = 2), got {self.students!r}; fix [common] students "
                             f"in {CONFIG_FILE}")
        for name in ("dim", "seeds", "steps", "single_steps", "dense_steps", "log_records",
                     "check_steps", "balance_students", "balance_seeds"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}; "
                                 f"fix it in {CONFIG_FILE}")
        if not (self.dense_steps < self.steps and self.check_steps <= self.steps):
            raise ValueError(f"need dense_steps < steps and check_steps <= steps; fix "
                             f"{CONFIG_FILE}")
        if not 0 < float(self.lr) < 4:
            raise ValueError(f"lr must lie in (0, 4) (eta * 1/2 < 2 for a stable descent near "
                             f"the minimum), got {self.lr!r}")
        object.__setattr__(self, "students", students)
        object.__setattr__(self, "balance_lrs", tuple(float(v) for v in self.balance_lrs))
        object.__setattr__(self, "balance_scales", tuple(float(v) for v in self.balance_scales))

    @classmethod
    def load(cls, quick, path=CONFIG_FILE):
        """The ``[quick]`` or ``[full]`` settings merged with ``[common]``."""
        return cls(**read_config(path, quick))


# ---- model pieces and gradient descent -----------------------------------------------

def teacher(dim):
    """The teacher v = e_1 as a (1, dim) matrix (|v| = 1; any unit v is a rotation of it)."""
    V = np.zeros((1, dim))
    V[0, 0] = 1.0
    return V


def mirror(w, v):
    """The reflection 2 (w . v) v - w of `w` across the line of the unit vector `v`.

    For v = e_1 it flips the signs of coordinates 2..d, exactly in floating point, so a
    pair (w, mirror(w, v)) is mirror-symmetric about v to the last bit.
    """
    w = np.asarray(w, dtype=float)
    return 2.0 * (w @ v)[..., None] * v - w


def record_schedule(steps, dense_steps, log_records, extra=()):
    """Steps at which iterates are stored: 0..dense_steps, then log-spaced up to `steps`."""
    dense = np.arange(min(dense_steps, steps) + 1)
    tail = np.round(np.logspace(np.log10(max(dense_steps, 1)), np.log10(steps),
                                log_records)).astype(int)
    return np.unique(np.concatenate([dense, tail, np.asarray(extra, dtype=int), [steps]]))


def single_teacher_grad(W, active, v):
    """grad F for one teacher, fused, on a padded batch of student sets.

    Parameters
    ----------
    W : ndarray of shape (B, k, d)
        Student neurons; row b uses the students with ``active[b]`` (no active zero neuron).
    active : ndarray of shape (B, k)
        1.0 for a student of the set, 0.0 for padding (padding rows are any fixed nonzero
        vectors: they neither move nor act on the others).
    v : ndarray of shape (d,)
        The teacher neuron.

    Returns
    -------
    ndarray of shape (B, k, d)

    Notes
    -----
    The library's gradient (DESIGN.md) for unit output weights,
    grad_{w_i} F = [sum_j a_j ((pi - theta_ij) w_j + |w_j| sin theta_ij wbar_i)
    - (pi - theta_iv) v - |v| sin theta_iv wbar_i] / (2 pi), with every student-student angle
    from Kahan's 2 atan2(|a - b|, |a + b|) of the unit vectors and the teacher angles from
    atan2(|w_perp|, w . vbar): the same stable angles as ``landscape``'s kernels, in about a
    dozen array operations for all widths at once (``model.grad_batch`` is the reference it
    is checked against).
    """
    nv = np.linalg.norm(v)
    vbar = v / nv
    norms = np.sqrt(np.einsum("bkd,bkd->bk", W, W))
    units = W / norms[..., None]
    diff = units[:, :, None, :] - units[:, None, :, :]
    summ = units[:, :, None, :] + units[:, None, :, :]
    pair = 2.0 * np.arctan2(np.sqrt(np.einsum("bijd,bijd->bij", diff, diff)),
                            np.sqrt(np.einsum("bijd,bijd->bij", summ, summ)))
    along = W @ vbar
    perp = W - along[..., None] * vbar
    perp_norm = np.sqrt(np.einsum("bkd,bkd->bk", perp, perp))
    theta_v = np.arctan2(perp_norm, along)
    lin = ((np.pi - pair) * active[:, None, :]) @ W - (np.pi - theta_v)[..., None] * v
    radial = (np.einsum("bij,bj->bi", np.sin(pair), active * norms)
              - nv * perp_norm / norms)
    return active[..., None] * (lin + radial[..., None] * units) / (2.0 * np.pi)


def gd_trace(grad, X0, lr, record_at, bar=None):
    """Gradient descent X <- X - lr grad(X) on a whole batch, keeping the iterates at `record_at`.

    Parameters
    ----------
    grad : callable
        ``grad(X)`` for the batch X (e.g. ``model.grad_batch`` or
        :func:`single_teacher_grad` with its padding mask).
    X0 : ndarray
        The batch of starts (any shape `grad` accepts).
    lr : float
    record_at : ndarray of int, increasing, starting at 0
    bar : tqdm, optional
        Advanced by the number of steps done.

    Returns
    -------
    states : ndarray of shape (len(record_at),) + X0.shape
    seconds : float
        Wall time of the loop (one `grad` call per step for the whole batch).
    """
    X = np.array(X0, dtype=float)
    states = np.empty((len(record_at),) + X.shape)
    done = 0
    start = time.perf_counter()
    for j, stop in enumerate(record_at):
        for _ in range(stop - done):
            X -= lr * grad(X)
        if bar is not None:
            bar.update(stop - done)
        done = stop
        states[j] = X
    return states, time.perf_counter() - start


def h_cubic(theta):
    """h(theta) = sin theta - theta cos theta, without cancellation for small theta.

    Below 0.1 rad the Taylor series theta^3/3 - theta^5/30 + theta^7/840 - theta^9/45360
    + theta^11/3991680 (relative truncation error < 1e-18) replaces the difference, whose
    rounding error relative to h grows like 1e-16/theta^2.
    """
    theta = np.asarray(theta, dtype=float)
    t2 = theta * theta
    series = theta * t2 * (1 / 3 + t2 * (-1 / 30 + t2 * (1 / 840 + t2 * (-1 / 45360
                                                                         + t2 / 3991680))))
    return np.where(theta < 0.1, series, np.sin(theta) - theta * np.cos(theta))


def geometry(W, v):
    """Norms, teacher angles and the split loss of students W against the teacher v.

    Parameters
    ----------
    W : ndarray of shape (..., n, d)
        Student neurons as rows (no zero row).
    v : ndarray of shape (d,)
        The teacher neuron.

    Returns
    -------
    dict
        ``norms`` (..., n); ``theta`` (..., n), the angles to v from
        atan2(|w_perp|, w . vbar); ``radial`` (...), |sum_i w_i - v|^2 / 4; ``angular``
        (...), [sum_{i != i'} |w_i||w_i'| h(theta_ii') - 2 |v| sum_i |w_i| h(theta_i)] /
        (4 pi) with the student-student angles from Kahan's 2 atan2(|a - b|, |a + b|) of
        the unit vectors; ``loss`` = radial + angular.

    Notes
    -----
    With kappa(u, w) = u.w/2 + |u||w| h(theta)/(2 pi) the population loss splits exactly into
    the radial and angular parts above (DESIGN.md); both are evaluated without cancellation,
    so ``loss`` is accurate to relative rounding error where the closed form
    ``model.loss_batch`` (a sum of O(1) terms) has an absolute floor near 1e-16.
    """
    W = np.asarray(W, dtype=float)
    v = np.asarray(v, dtype=float)
    nv = np.linalg.norm(v)
    vbar = v / nv
    norms = np.sqrt(np.einsum("...kd,...kd->...k", W, W))
    along = W @ vbar
    perp = W - along[..., None] * vbar
    theta = np.arctan2(np.sqrt(np.einsum("...kd,...kd->...k", perp, perp)), along)
    units = W / norms[..., None]
    diff = units[..., :, None, :] - units[..., None, :, :]
    summ = units[..., :, None, :] + units[..., None, :, :]
    pair = 2.0 * np.arctan2(np.sqrt(np.einsum("...ijd,...ijd->...ij", diff, diff)),
                            np.sqrt(np.einsum("...ijd,...ijd->...ij", summ, summ)))
    resid = W.sum(axis=-2) - v
    radial = 0.25 * np.einsum("...d,...d->...", resid, resid)
    angular = (np.einsum("...i,...ij,...j->...", norms, h_cubic(pair), norms)
               - 2.0 * nv * np.einsum("...i,...i->...", norms, h_cubic(theta))) / (4.0 * np.pi)
    return dict(norms=norms, theta=theta, radial=radial, angular=angular,
                loss=radial + angular)


# ---- fits ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, kw_only=True)
class TailFit:
    """Least-squares line of log y on log t over the window [lo, hi].

    Attributes
    ----------
    slope, intercept : float
        log y = intercept + slope log t.
    lo, hi : float
        The window (in the units of t).
    n_points : int
    """

    slope: float
    intercept: float
    lo: float
    hi: float
    n_points: int


def fit_loglog(t, y, lo, hi):
    """:class:`TailFit` of log `y` on log `t` over the points with lo <= t <= hi, y > 0."""
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = (t >= lo) & (t <= hi) & (y > 0) & np.isfinite(y)
    if keep.sum() < 3:
        raise ValueError(f"fewer than 3 points to fit in [{lo}, {hi}]")
    slope, intercept = np.polyfit(np.log(t[keep]), np.log(y[keep]), 1)
    return TailFit(slope=float(slope), intercept=float(intercept), lo=float(lo), hi=float(hi),
                   n_points=int(keep.sum()))


def asymptotic_constant(t, y, power, lo, hi):
    """C in y ~ C (t + c)^-power, free of the unknown shift c.

    y^(-1/power) = C^(-1/power) (t + c) is a line in t; C = slope^-power of its least-squares
    fit over lo <= t <= hi.  For y = max angle and power = 1 this is lim y t; for y = loss and
    power = 3 it is lim y t^3, both approached much faster than by y t^power itself.
    """
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = (t >= lo) & (t <= hi) & (y > 0)
    slope = np.polyfit(t[keep], y[keep] ** (-1.0 / power), 1)[0]
    return float(slope ** (-power))


def local_constants(t, y, power):
    """The shift-free estimate of :func:`asymptotic_constant` between consecutive records.

    Returns the midpoints sqrt(t_k t_{k+1}) and (Delta y^(-1/power) / Delta t)^-power.
    """
    t = np.asarray(t, dtype=float)
    z = np.asarray(y, dtype=float) ** (-1.0 / power)
    slope = np.diff(z) / np.diff(t)
    return np.sqrt(t[1:] * t[:-1]), slope ** (-power)


def phase_boundaries(t, theta_max, radial, angular, *, align_angle):
    """Ends of the alignment and norm-growth phases, per start.

    Parameters
    ----------
    t : ndarray of shape (R,)
        Flow times of the records (increasing).
    theta_max, radial, angular : ndarray of shape (R, B)
        Largest student-teacher angle and the two parts of the loss (:func:`geometry`).
    align_angle : float
        A student is aligned once its angle to v stays below this.

    Returns
    -------
    t1 : ndarray of shape (B,)
        End of alignment: the first record from which on every student stays within
        `align_angle` of v (NaN if never).
    t2 : ndarray of shape (B,)
        End of norm growth, start of the slow local phase: the first record from which on the
        radial misfit |sum w_i - v|^2/4 stays below the angular part of the loss, i.e. the
        loss is made of angles (NaN if never).

    Notes
    -----
    From a small start, gradient flow keeps each student's component perpendicular to v
    of order sigma while the parallel one grows (theta |w| ~ constant), so alignment is
    over at norms of order sigma / align_angle, long before the norms reach 1/n.
    """
    def first_settled(ok):
        settled = np.flip(np.logical_and.accumulate(np.flip(ok, 0), axis=0), 0)
        return np.where(settled.any(axis=0), t[np.argmax(settled, axis=0)], np.nan)

    return first_settled(theta_max <= align_angle), first_settled(radial < angular)


def _sum_at(t, norms, at):
    """sum_i |w_i| of each start b at its time at[b] (NaN where at[b] is NaN)."""
    idx = np.searchsorted(t, np.nan_to_num(at, nan=t[-1]))
    total = norms[idx, np.arange(norms.shape[1])].sum(axis=-1)
    return np.where(np.isfinite(at), total, np.nan)


def _spread(values):
    values = np.asarray(values, dtype=float)
    return dict(median=float(np.nanmedian(values)), min=float(np.nanmin(values)),
                max=float(np.nanmax(values)), per_start=values)


# ---- the runs ------------------------------------------------------------------------

def _seed(config, key):
    """The random stream of one run: a SeedSequence of (config.seed, key)."""
    return np.random.SeedSequence([config.seed, key])


def _single(config, v, bar):
    """n = 1: library descent (loss record) and a per-step ``grad_batch`` trace (precise loss)."""
    m = ls.ReluTeacherStudent(teacher=v, n_students=1)
    X0 = m.sample_init(config.seeds, rng=_seed(config, 1), scale=config.init_scale)
    start = time.perf_counter()
    d = ls.descend(m, X0, lr=config.lr, maxiter=config.single_steps, gtol=0.0, record=True,
                   n_records=config.single_steps + 1)
    seconds = time.perf_counter() - start
    bar.update(config.single_steps)
    at, loss = d.record_at, d.record_loss                        # (R,), (B, R)
    lo, hi = SINGLE_LOSS_WINDOW
    ratios, spreads, reach = [], [], []
    for row in loss:
        keep = (row >= lo) & (row <= hi)
        slope = np.polyfit(at[keep], np.log(row[keep]), 1)[0]
        ratios.append(np.exp(slope))
        idx = np.flatnonzero(keep)
        local = np.exp(np.diff(np.log(row[idx])) / np.diff(at[idx]))
        spreads.append(np.max(np.abs(local / np.exp(slope) - 1.0)))
        hit = np.flatnonzero(row <= SINGLE_TARGET)
        reach.append(at[hit[0]] if hit.size else np.nan)
    record_at = np.arange(config.single_steps + 1)
    states, _ = gd_trace(m.grad_batch, X0, config.lr, record_at)
    geo = geometry(states.reshape(len(record_at), config.seeds, 1, config.dim), v[0])
    return dict(
        descend=d, seconds=seconds, record_at=record_at, loss=geo["loss"],
        theta=geo["theta"][..., 0],
        results=dict(
            steps=config.single_steps,
            ratio_per_step=_spread(ratios),
            ratio_predicted=(1.0 - config.lr / 2.0) ** 2,
            ratio_max_local_deviation=float(np.max(spreads)),
            ratio_window=list(SINGLE_LOSS_WINDOW),
            steps_to_target=_spread(reach),
            target=SINGLE_TARGET,
            final_library_loss=_spread(d.loss),
            final_precise_loss=_spread(geo["loss"][-1]),
            descend_seconds=seconds,
            descend_us_per_step=1e6 * seconds / config.single_steps,
        ))


def _padded_starts(config, v):
    """All widths' starts in one (B, k_max, d) batch, with the padding mask.

    Width n gets `seeds` rows drawn from its own stream (so a width's starts do not depend
    on the other widths); the last row is the mirror-symmetric pair (w, mirror(w)) with w the
    first student of the first n = 2 start.
    Padding students are e_2 with mask 0.
    """
    kmax = max(config.students)
    blocks, masks, widths = [], [], []
    for block, n in enumerate(config.students + (2,)):
        m = ls.ReluTeacherStudent(teacher=v, n_students=n)
        X0 = m.sample_init(config.seeds, rng=_seed(config, n), scale=config.init_scale)
        W = X0.reshape(config.seeds, n, config.dim)
        if block == len(config.students):                # the symmetric row
            W = np.stack([W[0, 0], mirror(W[0, 0], v[0])])[None]
        pad = np.zeros((W.shape[0], kmax, config.dim))
        pad[:, :, 1] = 1.0
        pad[:, :n] = W
        mask = np.zeros((W.shape[0], kmax))
        mask[:, :n] = 1.0
        blocks.append(pad)
        masks.append(mask)
        widths += [n] * W.shape[0]
    return np.concatenate(blocks), np.concatenate(masks), np.array(widths)  # last: symmetric


def _step_costs(config, v, W, active, widths, reps):
    """Per-step cost of the fused gradient and of ``model.grad_batch``, side by side.

    Both are timed on the same iterates `W` (the final ones: every pair nearly parallel,
    the library's most expensive case), alternating in rounds so that machine load hits
    both alike.  Returns microseconds per step: the fused call on the whole batch, and one
    ``model.grad_batch`` call per width on that width's rows.
    """
    models = {n: ls.ReluTeacherStudent(teacher=v, n_students=n) for n in config.students}
    Xs = {n: W[:-1][widths[:-1] == n, :n].reshape(config.seeds, -1) for n in config.students}
    fused, library = 0.0, {n: 0.0 for n in config.students}
    rounds = 5
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps // rounds):
            single_teacher_grad(W, active, v[0])
        fused += time.perf_counter() - start
        for n in config.students:
            start = time.perf_counter()
            for _ in range(reps // rounds):
                models[n].grad_batch(Xs[n])
            library[n] += time.perf_counter() - start
    count = rounds * (reps // rounds)
    return 1e6 * fused / count, {n: 1e6 * c / count for n, c in library.items()}


def _over(config, v, bar):
    """n >= 2 students: every width and start (+ the symmetric pair) in one fused batch."""
    X0, active, widths = _padded_starts(config, v)
    record_at = record_schedule(config.steps, config.dense_steps, config.log_records,
                                extra=[config.check_steps])
    states, seconds = gd_trace(lambda W: single_teacher_grad(W, active, v[0]), X0, config.lr,
                               record_at, bar)
    t = config.lr * record_at
    T = config.steps
    lo = T * 10.0 ** -config.fit_decades
    tail = record_at >= lo
    sym_row = len(widths) - 1
    over, traces, grad_checks = {}, {}, []
    for n in config.students:
        rows = np.flatnonzero(widths[:sym_row] == n)
        if n == 2:
            rows = np.append(rows, sym_row)
        m = ls.ReluTeacherStudent(teacher=v, n_students=n)
        S = states[:, rows, :n]                                   # (R, B, n, d)
        R, B = S.shape[:2]
        flat = S.reshape(R * B, -1)
        # the fused gradient against the library's at every record
        G_lib = m.grad_batch(flat).reshape(R, B, n, config.dim)
        G = single_teacher_grad(S.reshape(R * B, n, config.dim), np.ones((R * B, n)),
                                v[0]).reshape(G_lib.shape)
        scale = np.sqrt(np.einsum("rbkd,rbkd->rb", G_lib, G_lib))
        err = np.sqrt(np.einsum("rbkd,rbkd->rb", G - G_lib, G - G_lib))
        grad_checks.append((float(err.max()), float(np.max(err / scale))))
        # the library's descent from the same starts
        start = time.perf_counter()
        d = ls.descend(m, S[0].reshape(B, -1), lr=config.lr, maxiter=config.check_steps,
                       gtol=0.0)
        descend_seconds = time.perf_counter() - start
        bar.update(config.check_steps)
        check = float(np.max(np.abs(d.x - S[np.searchsorted(record_at,
                                                            config.check_steps)].reshape(B, -1))))
        geo = geometry(S, v[0])
        lib_loss = m.loss_batch(flat).reshape(R, B)
        theta_max = geo["theta"].max(axis=-1)
        norms = geo["norms"]
        ratio = norms.max(axis=-1) / norms.min(axis=-1)
        rnd = slice(0, config.seeds)
        loss_fits = [fit_loglog(record_at, geo["loss"][:, b], lo, T) for b in range(config.seeds)]
        angle_fits = [fit_loglog(record_at, theta_max[:, b], lo, T)
                      for b in range(config.seeds)]
        t1, t2 = phase_boundaries(t, theta_max, geo["radial"], geo["angular"],
                                  align_angle=config.align_angle)
        big = geo["loss"] > 1e-10
        agree = np.abs(lib_loss - geo["loss"])[big] / geo["loss"][big]
        window = (config.lr * lo, config.lr * T)
        over[str(n)] = dict(
            n=n,
            loss_slope=dict(_spread([f.slope for f in loss_fits]), window_steps=[lo, float(T)],
                            n_points=loss_fits[0].n_points),
            angle_slope=dict(_spread([f.slope for f in angle_fits]),
                             window_steps=[lo, float(T)]),
            loss_constant=_spread([asymptotic_constant(t, geo["loss"][:, b], 3, *window)
                                   for b in range(config.seeds)]),
            angle_constant=_spread([asymptotic_constant(t, theta_max[:, b], 1, *window)
                                    for b in range(config.seeds)]),
            loss_t3_at_end=_spread(geo["loss"][-1, rnd] * t[-1] ** 3),
            angle_t_at_end=_spread(theta_max[-1, rnd] * t[-1]),
            final_loss=_spread(geo["loss"][-1, rnd]),
            final_library_loss=_spread(lib_loss[-1, rnd]),
            phases=dict(alignment_end_steps=_spread(t1[rnd] / config.lr),
                        local_start_steps=_spread(t2[rnd] / config.lr),
                        norm_sum_at_alignment_end=_spread(_sum_at(t, norms, t1)[rnd]),
                        align_angle=config.align_angle),
            norm_ratio_end=_spread(ratio[-1, rnd]),
            norm_sum_end=_spread(norms[-1, rnd].sum(axis=-1)),
            norm_ratio_drift_on_tail=float(np.max(np.abs(ratio[tail][:, rnd]
                                                         / ratio[-1, rnd] - 1))),
            library_loss_rel_diff=float(agree.max()),
            fused_grad_max_abs_diff=grad_checks[-1][0],
            fused_grad_max_rel_diff=grad_checks[-1][1],
            descend_seconds=descend_seconds,
            descend_us_per_step=1e6 * descend_seconds / config.check_steps,
            descend_max_abs_diff=check, rows=B,
        )
        traces[n] = dict(record_at=record_at, t=t, loss=geo["loss"], lib_loss=lib_loss,
                         theta_max=theta_max, norms=norms, ratio=ratio, t1=t1, t2=t2)
        if n == 2:
            # reduced dynamics of a pair with final norms r_1 + r_2 = 1 (section "symmetric")
            r = norms[-1, rnd] / norms[-1, rnd].sum(axis=-1, keepdims=True)
            pred_angle = 2.0 * np.pi * r.max(axis=-1)
            pred_loss = 8.0 * np.pi**2 * (r[:, 0] * r[:, 1]) ** 2 / 3.0
            got = over["2"]
            got["pair_prediction"] = dict(
                angle_constant=_spread(pred_angle), loss_constant=_spread(pred_loss),
                angle_max_rel_dev=float(np.max(np.abs(got["angle_constant"]["per_start"]
                                                      / pred_angle - 1))),
                loss_max_rel_dev=float(np.max(np.abs(got["loss_constant"]["per_start"]
                                                     / pred_loss - 1))))
            phi = geo["theta"][:, -1, 0]
            sym_loss = geo["loss"][:, -1]
            over["2"]["symmetric_gd"] = dict(
                angle_constant=asymptotic_constant(t, phi, 1, *window),
                loss_constant=asymptotic_constant(t, sym_loss, 3, *window),
                angle_t_at_end=float(phi[-1] * t[-1]),
                loss_t3_at_end=float(sym_loss[-1] * t[-1] ** 3),
                loss_slope=fit_loglog(record_at, sym_loss, lo, T).slope,
                angle_slope=fit_loglog(record_at, phi, lo, T).slope,
                asymmetry=float(max(np.max(np.abs(geo["theta"][:, -1, 0]
                                                  - geo["theta"][:, -1, 1])),
                                    np.max(np.abs(norms[:, -1, 0] - norms[:, -1, 1])))),
                window_t=list(window))
            traces[2]["symmetric"] = dict(phi=phi, loss=sym_loss)
    fused_us, library_us = _step_costs(config, v, states[-1], active, widths, reps=500)
    library_total = float(sum(library_us.values()))
    cost = dict(rows=int(len(widths)), widths=list(config.students), steps=T,
                fused_seconds=seconds, fused_us_per_step=1e6 * seconds / T,
                bench_fused_us_per_step=fused_us,
                library_grad_batch_us_per_step={str(n): c for n, c in library_us.items()},
                library_all_widths_us_per_step=library_total,
                speedup=library_total / fused_us,
                fused_grad_max_abs_diff=max(a for a, _ in grad_checks),
                fused_grad_max_rel_diff=max(r for _, r in grad_checks))
    return over, traces, cost


def _symmetric_flow(config, v, bar):
    """Gradient flow of the mirror-symmetric pair, chained ``descend(method="flow")`` calls."""
    m = ls.ReluTeacherStudent(teacher=v, n_students=2)
    w = m.sample_init(config.seeds, rng=_seed(config, 2), scale=config.init_scale)[0, :config.dim]
    x = np.concatenate([w, mirror(w, v[0])])[None]
    times = np.concatenate([[0.0], np.logspace(-2, np.log10(config.flow_time),
                                               config.log_records)])
    states = np.empty((len(times), m.n_params))
    states[0] = x[0]
    nfev = 0
    start = time.perf_counter()
    for j in range(1, len(times)):
        d = ls.descend(m, x, method="flow", t_max=times[j] - times[j - 1], gtol=0.0,
                       maxiter=10**9)
        if not np.all(np.isfinite(d.x)):
            raise RuntimeError(f"gradient flow failed before t = {times[j]}: {d.messages[0]}")
        x = d.x
        nfev += int(d.nit[0])
        states[j] = x[0]
        bar.update(1)
    seconds = time.perf_counter() - start
    geo = geometry(states.reshape(len(times), 2, config.dim), v[0])
    phi = geo["theta"][:, 0]
    lo = config.flow_time * 10.0 ** -config.fit_decades
    res = dict(
        t_max=config.flow_time, window_t=[lo, config.flow_time],
        angle_constant=asymptotic_constant(times, phi, 1, lo, config.flow_time),
        loss_constant=asymptotic_constant(times, geo["loss"], 3, lo, config.flow_time),
        angle_t_at_end=float(phi[-1] * times[-1]),
        loss_t3_at_end=float(geo["loss"][-1] * times[-1] ** 3),
        loss_slope=fit_loglog(times, geo["loss"], lo, config.flow_time).slope,
        angle_slope=fit_loglog(times, phi, lo, config.flow_time).slope,
        norm_at_end=float(geo["norms"][-1, 0]),
        asymmetry=float(max(np.max(np.abs(geo["theta"][:, 0] - geo["theta"][:, 1])),
                            np.max(np.abs(geo["norms"][:, 0] - geo["norms"][:, 1])))),
        rhs_evaluations=nfev, seconds=seconds,
        library_loss_rel_diff=float(abs(m.loss(states[-1]) - geo["loss"][-1]) / geo["loss"][-1]))
    return res, dict(t=times, phi=phi, loss=geo["loss"])


def _balance(config, v, bar):
    """Final norm ratio and phase ends against step size and init scale (n fixed)."""
    n = config.balance_students
    m = ls.ReluTeacherStudent(teacher=v, n_students=n)
    directions = m.sample_init(config.balance_seeds, rng=_seed(config, 100 + n), scale=1.0)
    rows = []
    for scale in config.balance_scales:
        for lr in config.balance_lrs:
            steps = int(round(config.balance_flow_time / lr))
            record_at = record_schedule(steps, min(config.dense_steps, steps - 1),
                                        config.log_records)
            W0 = scale * directions.reshape(config.balance_seeds, n, config.dim)
            active = np.ones(W0.shape[:2])
            states, seconds = gd_trace(lambda W: single_teacher_grad(W, active, v[0]), W0, lr,
                                       record_at, bar)
            geo = geometry(states, v[0])
            t = lr * record_at
            t1, t2 = phase_boundaries(t, geo["theta"].max(axis=-1), geo["radial"],
                                      geo["angular"], align_angle=config.align_angle)
            norms = geo["norms"][-1]
            rows.append(dict(init_scale=scale, lr=lr, steps=steps, seconds=seconds,
                             norm_ratio=_spread(norms.max(axis=-1) / norms.min(axis=-1)),
                             alignment_end_t=_spread(t1), local_start_t=_spread(t2),
                             norm_sum_at_alignment_end=_spread(_sum_at(t, geo["norms"], t1))))
    return dict(n=n, flow_time=config.balance_flow_time, seeds=config.balance_seeds, runs=rows)


# ---- driver --------------------------------------------------------------------------

def run(out_dir, *, quick=False, progress=True):
    """Run the study; write ``results.json``, ``index.html`` and the figures to `out_dir`.

    Parameters
    ----------
    out_dir : str or os.PathLike
    quick : bool
        The CI mode (4 starts, T = 5 10^4, flow to t = 10^3, a smaller balance sweep)
        instead of 16 starts, T = 10^5 and flow to t = 10^4 (``config.toml``).
    progress : bool
        Show a progress bar (tqdm, on stderr).

    Returns
    -------
    dict
        The contents of ``results.json``.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = Config.load(quick)
    v = teacher(config.dim)
    balance_steps = len(config.balance_scales) * sum(
        int(round(config.balance_flow_time / lr)) for lr in config.balance_lrs)
    total = (config.single_steps + config.steps + len(config.students) * config.check_steps
             + config.log_records + balance_steps)
    with tqdm(total=total, desc="xu_du2023", disable=not progress, unit="step") as bar:
        single = _single(config, v, bar)
        over, traces, cost = _over(config, v, bar)
        flow, flow_trace = _symmetric_flow(config, v, bar)
        balance = _balance(config, v, bar)
    sym_gd = over["2"].pop("symmetric_gd")
    results = dict(
        title=TITLE, paper=PAPER, mode=config.mode, config=dataclasses.asdict(config),
        conventions=("F(W) = 1/2 E[(sum_i relu(w_i.x) - relu(v.x))^2], x ~ N(0, I_d), v = e_1; "
                     "gradient descent W <- W - lr grad F; flow time t = lr * steps; angles "
                     "in radians; 'steps' are gradient-descent iterations T"),
        single=single["results"], over=over,
        symmetric=dict(predicted_angle_constant=np.pi, predicted_loss_constant=np.pi**2 / 6,
                       flow=flow, gd=sym_gd),
        balance=balance, cost=cost,
        machine=dict(platform=platform.platform(), processor=platform.processor(),
                     cpu_count=os.cpu_count(), numpy=np.__version__,
                     openblas_threads=os.environ.get("OPENBLAS_NUM_THREADS")),
    )
    figures = _figures(out_dir, config, single, traces, flow_trace, results)
    results["seconds"] = time.perf_counter() - started
    results = json_ready(results)
    write_json(out_dir / "results.json", results)
    write_page(out_dir, title=TITLE, subtitle=PAPER, summary=_summary(results),
               sections=_sections(results, figures))
    return results


# ---- figures ---------------------------------------------------------------------------

_COLORS = {1: "tab:gray", 2: "tab:blue", 3: "tab:orange", 5: "tab:green"}
_PHASES = (("alignment", "#fde0c5"), ("norm growth", "#d9ecd0"), ("local convergence", "#dde6f5"))


def _color(n):
    return _COLORS.get(n, f"C{n % 10}")


def _positive(x, y):
    keep = (x > 0) & (y > 0) & np.isfinite(y)
    return x[keep], y[keep]


def _figures(out_dir, config, single, traces, flow_trace, results):
    figs = {}
    T = config.steps
    lo = T * 10.0 ** -config.fit_decades

    # loss against steps, n = 1, 2, 3, 5, phases marked
    ns = [1] + list(config.students)
    ncols = 2
    nrows = -(-len(ns) // ncols)
    fig, axes = new_figure(9.5, 3.4 * nrows, nrows=nrows, ncols=ncols, squeeze=False)
    for ax, n in zip(axes.ravel(), ns):
        if n == 1:
            at, loss = single["record_at"].astype(float), single["loss"]
            for b in range(loss.shape[1]):
                ax.plot(*_positive(at, loss[:, b]), color=_color(1), lw=0.8, alpha=0.6)
            ax.plot(*_positive(at, np.median(loss, axis=1)), color="k", lw=1.6,
                    label="median (precise loss)")
            ax.set_title("n = 1: geometric decay, then the rounding floor of the iterates")
        else:
            tr = traces[n]
            at = tr["record_at"].astype(float)
            loss = tr["loss"][:, :config.seeds]
            t1 = np.nanmedian(tr["t1"][:config.seeds]) / config.lr
            t2 = np.nanmedian(tr["t2"][:config.seeds]) / config.lr
            edges = [1.0, max(t1, 1.0), max(t2, t1, 1.0), float(T)]
            for (name, col), a, b in zip(_PHASES, edges[:-1], edges[1:]):
                if b > a:
                    ax.axvspan(a, b, color=col, lw=0, label=name)
            for b in range(loss.shape[1]):
                ax.plot(*_positive(at, loss[:, b]), color=_color(n), lw=0.7, alpha=0.5)
            med = np.median(loss, axis=1)
            ax.plot(*_positive(at, med), color=_color(n), lw=1.8, label="median")
            keep = at >= T / 1e3
            ax.plot(at[keep], med[-1] * (at[keep] / at[-1]) ** -3.0, "k--", lw=1,
                    label="T$^{-3}$")
            ax.axvline(lo, color="k", lw=0.6, ls=":")
            s = results["over"][str(n)]["loss_slope"]
            ax.set_title(f"n = {n}: tail slope {s['median']:.3f} "
                         f"[{s['min']:.3f}, {s['max']:.3f}]")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("gradient-descent step T")
        ax.set_ylabel("loss F")
        ax.legend(fontsize=7, loc="lower left")
    for ax in axes.ravel()[len(ns):]:
        ax.set_visible(False)
    figs["loss"] = save_figure(fig, out_dir, "loss.png", caption=(
        f"Loss against the step T (log-log), {config.seeds} random starts per n (thin) and "
        f"their median (thick); eta = {config.lr}, sigma = {config.init_scale}, d = "
        f"{config.dim}.  Shaded: the three phases for n >= 2 (median boundaries: alignment "
        f"ends when every student is within {config.align_angle} rad of v, the local phase "
        "starts when the loss is dominated by its angular part).  "
        "Dotted: start of the fit window; dashed: T^-3 through the median's end point."))

    # n = 1: semilog
    fig, ax = new_figure(6.4, 3.8)
    d = single["descend"]
    at = d.record_at
    for b in range(d.record_loss.shape[0]):
        ax.plot(*_positive(at, d.record_loss[b]), "o", ms=1.5, color="tab:red", alpha=0.5,
                label="landscape.descend (model loss)" if b == 0 else None)
    at1, loss1 = single["record_at"].astype(float), single["loss"]
    ax.plot(*_positive(at1, np.median(loss1, axis=1)), color="k", lw=1.2,
            label="precise loss, median")
    r = results["single"]["ratio_predicted"]
    anchor = np.median(loss1[100])
    ax.plot(at1, anchor * r ** (at1 - 100), "b--", lw=1,
            label=f"(1 - eta/2)^(2T) = {r:.4f}^T")
    ax.axhline(SINGLE_TARGET, color="gray", lw=0.6, ls=":")
    ax.set_yscale("log")
    ax.set_ylim(1e-33, 1)
    ax.set_xlabel("gradient-descent step T")
    ax.set_ylabel("loss F")
    ax.legend(fontsize=8)
    figs["single"] = save_figure(fig, out_dir, "single_neuron.png", caption=(
        "n = 1 (exact parameterisation): linear convergence.  Red: the loss recorded by "
        "landscape.descend (the closed form, which rounds to 0 below ~1e-16); black: the "
        "cancellation-free loss, geometric down to the rounding of the iterate (~1e-31); "
        "dashed: the rate (1 - eta/2)^2 per step of the Hessian I/2 at w = v; dotted: 1e-14."))

    # local log-log slope
    fig, ax = new_figure(6.4, 3.8)
    for n in config.students:
        tr = traces[n]
        at = tr["record_at"].astype(float)
        med = np.median(tr["loss"][:, :config.seeds], axis=1)
        keep = at >= config.dense_steps
        a, m_ = at[keep], med[keep]
        local = np.diff(np.log(m_)) / np.diff(np.log(a))
        ax.plot(np.sqrt(a[1:] * a[:-1]), local, color=_color(n), label=f"n = {n}")
    ax.axhspan(-3.2, -2.8, color="0.9", lw=0)
    ax.axhline(-3, color="k", lw=0.8)
    ax.axvspan(lo, T, color="tab:blue", alpha=0.08, lw=0, label="fit window")
    ax.set_xscale("log")
    ax.set_ylim(-4, 0)
    ax.set_xlabel("gradient-descent step T")
    ax.set_ylabel("d log F / d log T (median start)")
    ax.legend(fontsize=8)
    figs["slope"] = save_figure(fig, out_dir, "local_slope.png", caption=(
        "Local log-log slope of the median loss: it tends to -3 (grey band: -3 +- 0.2) as "
        "the angles shrink; the approach is slow because F ~ C/(t + c)^3 with a shift c of "
        "the order of pi / (angle at the start of the local phase)."))

    # max angle
    fig, (ax, bx) = new_figure(10, 3.8, ncols=2)
    for n in config.students:
        tr = traces[n]
        at = tr["record_at"].astype(float)
        th = tr["theta_max"][:, :config.seeds]
        ax.fill_between(at[1:], th[1:].min(axis=1), th[1:].max(axis=1), color=_color(n),
                        alpha=0.2, lw=0)
        ax.plot(at[1:], np.median(th[1:], axis=1), color=_color(n), label=f"n = {n}")
        bx.plot(at[1:], np.median(th[1:], axis=1) * config.lr * at[1:], color=_color(n),
                label=f"n = {n}")
    sym = traces[2]["symmetric"]
    at = traces[2]["record_at"].astype(float)
    ax.plot(at[1:], sym["phi"][1:], "k:", lw=1.2, label="symmetric pair (GD)")
    bx.plot(at[1:], sym["phi"][1:] * config.lr * at[1:], "k:", lw=1.2,
            label="symmetric pair (GD)")
    ax.plot(at[at >= 100], np.pi / (config.lr * at[at >= 100]), "k--", lw=0.8,
            label="pi / t")
    bx.axhline(np.pi, color="k", lw=0.8, ls="--", label="pi")
    for a in (ax, bx):
        a.set_xscale("log")
        a.set_xlabel("gradient-descent step T")
        a.legend(fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("max_i angle(w_i, v)  [rad]")
    bx.set_ylabel("max angle x t   (t = eta T)")
    figs["angle"] = save_figure(fig, out_dir, "max_angle.png", caption=(
        "Largest student-teacher angle (median and range over starts): after alignment it "
        "decays as 1/T.  Right: angle x flow time, which tends to a constant (pi for the "
        "symmetric pair)."))

    # norms and balance
    fig, axes = new_figure(14, 3.8, ncols=3)
    ax, bx, cx = axes
    for n in config.students:
        tr = traces[n]
        at = tr["record_at"].astype(float)
        ax.plot(at[1:], tr["norms"][1:, 0, :], color=_color(n), lw=1)
        ax.plot([], [], color=_color(n), label=f"n = {n} (start 0)")
        bx.plot(at[1:], np.median(tr["ratio"][1:, :config.seeds], axis=1), color=_color(n),
                label=f"n = {n}")
    for n in config.students:
        ax.axhline(1.0 / n, color=_color(n), lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("gradient-descent step T")
    ax.set_ylabel("|w_i|")
    ax.legend(fontsize=7)
    bx.set_xscale("log")
    bx.set_xlabel("gradient-descent step T")
    bx.set_ylabel("max_i |w_i| / min_i |w_i|  (median start)")
    bx.legend(fontsize=7)
    runs = results["balance"]["runs"]
    for k, scale in enumerate(config.balance_scales):
        sel = [r for r in runs if r["init_scale"] == scale]
        lrs = np.array([r["lr"] for r in sel])
        med = np.array([r["norm_ratio"]["median"] for r in sel]) - 1
        lo_ = np.array([r["norm_ratio"]["min"] for r in sel]) - 1
        hi_ = np.array([r["norm_ratio"]["max"] for r in sel]) - 1
        cx.errorbar(lrs, med, yerr=[med - lo_, hi_ - med], marker="o", capsize=3,
                    color=f"C{k}", label=f"sigma = {scale:g}")
    cx.set_xscale("log")
    cx.set_yscale("log")
    cx.set_xlabel("step size eta")
    cx.set_ylabel(f"final max/min norm ratio - 1  (n = {results['balance']['n']})")
    cx.legend(fontsize=7)
    figs["norms"] = save_figure(fig, out_dir, "norms.png", caption=(
        "Left: the student norms of one start per n grow together to about 1/n (dotted).  "
        "Middle: max/min norm ratio (median over starts), frozen after the norm-growth phase.  "
        "Right: the final ratio - 1 against the step size for two init scales (median and "
        "range over starts): the imbalance is set during alignment and shrinks with eta and "
        "sigma -- balance is exact only in the small-step, small-init limit."))

    # symmetric case
    fig, (ax, bx) = new_figure(10, 3.8, ncols=2)
    tf, phi, loss = flow_trace["t"], flow_trace["phi"], flow_trace["loss"]
    keep = tf >= 1.0
    ax.plot(tf[keep], phi[keep] * tf[keep] / np.pi, color="tab:purple", label="flow: phi t / pi")
    ax.plot(tf[keep], loss[keep] * tf[keep] ** 3 / (np.pi**2 / 6), color="tab:red",
            label="flow: F t^3 / (pi^2/6)")
    mid, c_phi = local_constants(tf[keep], phi[keep], 1)
    _, c_loss = local_constants(tf[keep], loss[keep], 3)
    every = slice(None, None, max(1, len(mid) // 40))
    ax.plot(mid[every], c_phi[every] / np.pi, "o", ms=3, color="tab:purple",
            label="flow: shift-free estimate of lim phi t, / pi")
    ax.plot(mid[every], c_loss[every] / (np.pi**2 / 6), "s", ms=3, color="tab:red",
            label="flow: shift-free estimate of lim F t^3, / (pi^2/6)")
    at = traces[2]["record_at"].astype(float)
    tg = config.lr * at
    keep = tg >= 1.0
    ax.plot(tg[keep], sym["phi"][keep] * tg[keep] / np.pi, "--", color="tab:purple", lw=0.8,
            label="GD (eta T = t): phi t / pi")
    ax.plot(tg[keep], sym["loss"][keep] * tg[keep] ** 3 / (np.pi**2 / 6), "--", color="tab:red",
            lw=0.8, label="GD: F t^3 / (pi^2/6)")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.3)
    ax.set_xlabel("flow time t")
    ax.legend(fontsize=6.5, loc="upper left")
    keep = tf > 0
    bx.plot(tf[keep], phi[keep], color="tab:purple", label="phi (flow)")
    bx.plot(tf[keep], loss[keep], color="tab:red", label="F (flow)")
    late = tf >= 10
    bx.plot(tf[late], np.pi / tf[late], "k--", lw=0.8, label="pi / t")
    bx.plot(tf[late], np.pi**2 / 6 / tf[late] ** 3, "k:", lw=0.8, label="pi^2 / (6 t^3)")
    bx.set_xscale("log")
    bx.set_yscale("log")
    bx.set_xlabel("flow time t")
    bx.legend(fontsize=7)
    figs["symmetric"] = save_figure(fig, out_dir, "symmetric.png", caption=(
        "Mirror-symmetric pair w_1,2 = r(cos phi v +- sin phi u) from a small start.  Left: "
        "phi t / pi and F t^3 / (pi^2/6) under gradient flow (solid) and GD (dashed, t = eta "
        "T) approach 1 slowly (phi = pi/(t + c)); the shift-free estimates (markers, from "
        "the slopes of 1/phi and F^-1/3 in t) sit at 1 from early on.  Right: phi and F "
        "against pi/t and pi^2/(6 t^3)."))
    return figs


# ---- page ------------------------------------------------------------------------------

def _pm(s, digits=3):
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}, {s['max']:.{digits}f}]"


def _summary(r):
    s1 = r["single"]
    rows = [("mode", r["mode"]),
            ("n = 1: steps to loss <= 1e-14", _pm(s1["steps_to_target"], 0)),
            ("n = 1: loss ratio per step (predicted (1 - eta/2)^2)",
             f"{_pm(s1['ratio_per_step'], 5)} ({s1['ratio_predicted']:.5f})")]
    for n, o in r["over"].items():
        rows.append((f"n = {n}: tail log-log slope of the loss (paper: -3)",
                     _pm(o["loss_slope"])))
    for n, o in r["over"].items():
        rows.append((f"n = {n}: tail slope of the max angle (paper: -1)",
                     _pm(o["angle_slope"])))
    f = r["symmetric"]["flow"]
    rows += [("symmetric flow: lim phi t (predicted pi = 3.14159)",
              f"{f['angle_constant']:.5f}"),
             ("symmetric flow: lim F t^3 (predicted pi^2/6 = 1.64493)",
              f"{f['loss_constant']:.5f}"),
             ("one GD step for all widths and starts, late iterates",
              f"fused gradient {r['cost']['bench_fused_us_per_step']:.0f} us "
              f"({r['cost']['rows']} rows); model.grad_batch "
              f"{r['cost']['library_all_widths_us_per_step']:.0f} us (one call per width)"),
             (f"T = {r['config']['steps']} steps, all widths",
              f"{r['cost']['fused_seconds']:.1f} s"),
             ("wall time", f"{r['seconds']:.1f} s")]
    return rows


def _sections(r, figs):
    c = r["config"]
    s1 = r["single"]
    over = r["over"]
    sym = r["symmetric"]
    f, g = sym["flow"], sym["gd"]
    setup = Section(title="Setup and conventions", id="setup", text=[
        "Teacher v = e_1 in R^d (|v| = 1), d = {dim}; students sum_i relu(w_i . x); population "
        "loss F(W) = 1/2 E[(sum_i relu(w_i . x) - relu(v . x))^2], x ~ N(0, I_d), in closed form "
        "(landscape.ReluTeacherStudent).  Note the factor 1/2: for the loss without it, "
        "L = 2F, every gradient doubles and the flow runs twice as fast, so the symmetric-case "
        "constants become lim phi t = pi/2 and lim L t^3 = pi^2/24; all constants here are for "
        "the 1/2-loss F and flow time t = eta T.".format(
            dim=c["dim"]),
        "Every student entry starts i.i.d. N(0, sigma^2), sigma = {s}; gradient descent "
        "W <- W - eta grad F with eta = {lr}; flow time t = eta T.  n = 1 runs {s1} steps with "
        "landscape.descend (record=True); n = {ns} run T = {T} steps from {seeds} random starts "
        "each, plus the mirror-symmetric pair, all in one batch (padded to k = {kmax} students) "
        "through a fused single-teacher gradient checked against model.grad_batch (section Cost "
        "and checks); the iterates are stored at every step up to {dense}, then at {logr} "
        "log-spaced steps.  Fits use the tail window [T 10^-{fd}, T] = [{lo:.0f}, {T}] "
        "steps.".format(
            kmax=max(c["students"]), s=c["init_scale"], lr=c["lr"], s1=c["single_steps"],
            ns=", ".join(str(n) for n in c["students"]), T=c["steps"], seeds=c["seeds"],
            dense=c["dense_steps"], logr=c["log_records"], fd=c["fit_decades"],
            lo=c["steps"] * 10 ** -c["fit_decades"]),
        "Losses are evaluated without cancellation as F = |sum_i w_i - v|^2/4 + [sum_{{i != i'}} "
        "|w_i||w_i'| h(theta_ii') - 2 sum_i |w_i| h(theta_i)]/(4 pi), h(theta) = sin theta - "
        "theta cos theta; it agrees with model.loss_batch to a relative {agree:.1e} wherever "
        "F > 1e-10, and keeps its relative accuracy below the closed form's absolute floor "
        "(~1e-16).".format(agree=max(o["library_loss_rel_diff"] for o in over.values())),
    ])
    single = Section(title="n = 1: linear convergence", id="single", text=[
        "With one student the loss falls geometrically: the Hessian at w = v is I/2 "
        "(h''' terms vanish there), so GD contracts by 1 - eta/2 per step and the loss by "
        "(1 - eta/2)^2 = {pred:.5f}.  Measured on loss in [{lo:g}, {hi:g}]: ratio {ratio}; "
        "local ratios deviate from the fit by at most {dev:.1e}.  The library loss reaches "
        "1e-14 after {reach} steps and ends at {final:.1e} (its rounding floor); the "
        "cancellation-free loss ends at {prec:.1e} (the rounding of the iterate).".format(
            pred=s1["ratio_predicted"], lo=s1["ratio_window"][0], hi=s1["ratio_window"][1],
            ratio=_pm(s1["ratio_per_step"], 5), dev=s1["ratio_max_local_deviation"],
            reach=_pm(s1["steps_to_target"], 0), final=s1["final_library_loss"]["max"],
            prec=s1["final_precise_loss"]["median"])],
        figures=[figs["single"]])
    rows = []
    for n, o in over.items():
        rows.append([n, _pm(o["loss_slope"]), _pm(o["angle_slope"]),
                     _pm(o["loss_constant"]), _pm(o["angle_constant"]),
                     f"{o['final_loss']['median']:.3e}",
                     _pm(o["phases"]["alignment_end_steps"], 0),
                     _pm(o["phases"]["local_start_steps"], 0),
                     _pm(o["norm_ratio_end"], 4)])
    table = Table(columns=["n", "loss slope", "max-angle slope", "lim F t^3", "lim angle t",
                           "F(T)", "alignment ends (step)", "local phase from (step)",
                           "max/min norm"],
                  rows=rows, caption=("median [min, max] over starts; slopes fitted on "
                                      "[T 10^-{fd}, T]; the limits are the shift-free "
                                      "estimates on the same window (t = eta T)").format(
                                          fd=c["fit_decades"]))
    slow = Section(title="n >= 2: the loss decays as T^-3", id="over", text=[
        "Over-parameterised students converge only polynomially.  The tail log-log slope of "
        "the loss is close to -3 for every n and start, and still drifting towards it: the "
        "loss behaves as C/(t + c)^3 with a shift c set by the angle at which the local phase "
        "starts, so a window ending at T sees slope -3 T/(T + c) on average.",
        "Phases (median boundaries in the table and shaded in the figure): alignment, until "
        "every student is within {aa} rad of v; norm growth, until sum_i w_i = v up to a misfit "
        "smaller than the angular part of the loss (sum_i w_i -> v exponentially, at rate n/2 "
        "in t); then slow local convergence of the angles.  At eta = {lr} the phases overlap: "
        "the first step moves each student by up to eta/4 along v and by eta sin(theta)/(2 pi) "
        "along itself, both far more than sigma sqrt(d) = {ss:.1e}, so alignment ends only "
        "when the norms have grown to sum_i |w_i| = {ns} and the angle at which the local "
        "phase starts is set by eta, not by sigma.  The small-step sweep (section Norms and "
        "balance) shows the phases separating as eta -> 0.".format(
            aa=c["align_angle"], lr=c["lr"], ss=c["init_scale"] * np.sqrt(c["dim"]),
            ns="; ".join(f"{_pm(o['phases']['norm_sum_at_alignment_end'], 2)} (n = {n})"
                         for n, o in over.items()))],
        tables=[table], figures=[figs["loss"], figs["slope"]])
    pp = over["2"]["pair_prediction"]
    angle = Section(title="The largest angle decays as 1/T", id="angle", text=[
        "After alignment the largest student-teacher angle decays as 1/T (slopes in the "
        "table).  For n = 2 the constant follows from the reduced dynamics of a pair with "
        "final norms r_1 + r_2 = 1 (section The symmetric two-neuron case): the centre of "
        "mass pins r_1 phi_1 = r_2 phi_2, the opening Phi = phi_1 + phi_2 obeys "
        "dPhi/dt = -Phi^2/(2 pi) whatever the r_i, so max angle x t -> 2 pi max(r_1, r_2) and "
        "F t^3 -> 8 pi^2 (r_1 r_2)^2 / 3.  From each start's final norms this predicts "
        "{pa} and {pl}; the measured constants differ from the prediction by at most "
        "{da:.1e} and {dl:.1e} (relative).  The lighter student lies farther from v, so "
        "the max-angle constant exceeds pi while the loss constant stays just below "
        "pi^2/6.".format(
            pa=_pm(pp["angle_constant"], 4), pl=_pm(pp["loss_constant"], 4),
            da=pp["angle_max_rel_dev"], dl=pp["loss_max_rel_dev"])],
        figures=[figs["angle"]])
    brows = [[f"{b['init_scale']:g}", f"{b['lr']:g}", b["steps"], _pm(b["norm_ratio"], 4),
              _pm(b["alignment_end_t"], 2), _pm(b["norm_sum_at_alignment_end"], 4),
              _pm(b["local_start_t"], 2)]
             for b in r["balance"]["runs"]]
    balance = Section(title="Norms and balance", id="norms", text=[
        "The students' norms grow together and freeze once the sum has reached v.  Their "
        "max/min ratio at the end is {ratios}: nearly, not exactly, equal.  The imbalance is "
        "created in the alignment phase (a student's norm grows at a rate that depends on its "
        "angle to v) and shrinks with the step size and the init scale (table; n = {n}, run to "
        "flow time {ft:g}, {bs} starts).".format(
            ratios="; ".join(f"n = {n}: {_pm(o['norm_ratio_end'], 4)}"
                             for n, o in over.items()),
            n=r["balance"]["n"], ft=r["balance"]["flow_time"], bs=r["balance"]["seeds"])],
        tables=[Table(columns=["sigma", "eta", "steps", "final max/min norm",
                               "alignment ends (t)", "sum |w_i| then", "local phase from (t)"],
                      rows=brows,
                      caption="median [min, max] over starts")],
        figures=[figs["norms"]])
    symmetric = Section(title="The symmetric two-neuron case", id="symmetric", text=[
        "Derivation (1/2-loss).  For w_1,2 = r(cos phi v +- sin phi u), F = (2 r cos phi - 1)^2/4 "
        "+ [r^2 h(2 phi) - 2 r h(phi)]/(2 pi).  Gradient flow on W gives dr/dt = -(1/2) dF/dr and "
        "dphi/dt = -(1/(2 r^2)) dF/dphi.  Once r = 1/2 (norm growth is exponentially fast), "
        "F = phi^3/(6 pi) + O(phi^4), so dphi/dt = -phi^2/pi: phi = pi/(t + c) and F t^3 -> "
        "pi^3/(6 pi) = pi^2/6.  With unequal norms r_1 + r_2 = 1 the fast radial mode keeps "
        "r_1 phi_1 = r_2 phi_2, F = r_1^2 r_2^2 Phi^3 / (3 pi) + O(Phi^4) in the opening "
        "Phi = phi_1 + phi_2, and the flow in the metric sum_i r_i^2 dphi_i^2 gives "
        "dPhi/dt = -Phi^2/(2 pi): Phi t -> 2 pi, F t^3 -> 8 pi^2 (r_1 r_2)^2 / 3.",
        "Measured under gradient flow (chained landscape.descend(method='flow'), RK45, "
        "rtol 1e-10) to t = {tm:g}: shift-free constants on [{wl:g}, {tm:g}]: lim phi t = "
        "{ac:.5f} (pi = {pi:.5f}), lim F t^3 = {lc:.5f} (pi^2/6 = {p6:.5f}); the raw products at "
        "t = {tm:g} are phi t = {ae:.4f} and F t^3 = {le:.4f} (the shift c ~ pi/phi(start of the "
        "local phase) is large after a small start).  GD with eta = {lr} from the same start "
        "(t = eta T): {gac:.5f} and {glc:.5f}; its raw products approach the limits sooner "
        "because its first steps leave a larger angle, hence a smaller shift c.  Log-log "
        "slope of F on the flow tail: {fs:.4f}.  The pair stays symmetric to "
        "{asym:.1e}.".format(
            tm=f["t_max"], wl=f["window_t"][0], ac=f["angle_constant"], pi=np.pi,
            lc=f["loss_constant"], p6=np.pi**2 / 6, ae=f["angle_t_at_end"],
            le=f["loss_t3_at_end"], lr=c["lr"], gac=g["angle_constant"],
            glc=g["loss_constant"], fs=f["loss_slope"], asym=max(f["asymmetry"],
                                                                 g["asymmetry"]))],
        figures=[figs["symmetric"]])
    cost = r["cost"]
    trows = [[n, o["rows"], f"{cost['library_grad_batch_us_per_step'][n]:.0f}",
              f"{o['descend_us_per_step']:.0f}", f"{o['descend_max_abs_diff']:.1e}",
              f"{o['fused_grad_max_rel_diff']:.1e}"]
             for n, o in over.items()]
    timing = Section(title="Cost and checks", id="timing", text=[
        "The n >= 2 runs need T = {T} steps of a tiny model (k <= {kmax} students, d = {d}), "
        "where a gradient call costs its few dozen numpy operations rather than arithmetic.  "
        "Side by side on the final iterates (every pair nearly parallel, the library's "
        "Kahan path): model.grad_batch takes {lib:.0f} us per step for the {w} widths (one call "
        "per width, each nearly independent of its number of rows), the fused single-teacher "
        "gradient {bf:.0f} us for all {rows} rows at once (padded to k = {kmax}), {sp:.1f}x "
        "less.  The T = {T} loop took {fsec:.1f} s ({fused:.0f} us per step on average, "
        "machine load included).  The fused gradient matches model.grad_batch at every "
        "recorded iterate (largest difference {abs_:.1e} absolute, {rel:.1e} relative to the "
        "late gradients of size ~angle^2), and landscape.descend from the same starts reaches "
        "the same iterates after {cs} steps (table; its per-step cost there is for early "
        "iterates, where the library's angles take the cheaper path).  Symmetric flow: {nfev} "
        "right-hand-side evaluations in {flsec:.1f} s.  Machine: {mach}, {cpus} cores, numpy "
        "{np_}, OPENBLAS_NUM_THREADS={th}.".format(
            d=c["dim"], lib=cost["library_all_widths_us_per_step"], w=len(over),
            bf=cost["bench_fused_us_per_step"], sp=cost["speedup"],
            rows=cost["rows"], kmax=max(c["students"]), fused=cost["fused_us_per_step"],
            fsec=cost["fused_seconds"], T=cost["steps"], rel=cost["fused_grad_max_rel_diff"],
            abs_=cost["fused_grad_max_abs_diff"], cs=c["check_steps"],
            nfev=f["rhs_evaluations"], flsec=f["seconds"], mach=r["machine"]["platform"],
            cpus=r["machine"]["cpu_count"], np_=r["machine"]["numpy"],
            th=r["machine"]["openblas_threads"])],
        tables=[Table(columns=["n", "rows", "model.grad_batch (us/step)",
                               "landscape.descend (us/step)",
                               f"max |descend - fused| after {c['check_steps']} steps",
                               "max rel. |fused - library gradient|"], rows=trows)])
    return [setup, single, slow, angle, balance, symmetric, timing]
