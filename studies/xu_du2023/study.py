"""Xu & Du (COLT 2023): over-parameterisation slows gradient descent on one ReLU teacher from
a linear rate to T^-3.

One teacher v = e_1, students sum_i relu(w_i . x), F(W) = 1/2 E[(sum_i relu(w_i . x) -
relu(v . x))^2] (``ls.ReluTeacherStudent``; note the 1/2), w_i(0) ~ N(0, sigma^2 I), gradient
descent with step eta, flow time t = eta * steps.  Measured: the geometric rate of n = 1; the
tail slopes of the loss (-3) and of the largest angle (-1) for n = 2, 3, 5, the constants
lim F t^3 and lim theta_max t, the three phases and the norm balance; the mirror-symmetric pair
under gradient flow and descent (phi ~ pi/t, F ~ pi^2/(6 t^3)).  Every run is one
``ls.descend(record_at=..., record_x=True)`` (the flow: ``t_eval=...``); late losses (~1e-12)
are also evaluated by the cancellation-free :func:`geometry`.  Run:
``landscape study xu_du2023 [--quick]``.
"""

import dataclasses
import os
import platform
import time
from pathlib import Path

import numpy as np
from scipy.stats import linregress
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

__all__ = ["TITLE", "PAPER", "Config", "teacher", "mirror", "record_schedule", "h_cubic",
           "geometry", "tail_fit", "asymptotic_constant", "local_constants",
           "phase_boundaries", "run"]

SINGLE_LOSS_WINDOW = (1e-13, 1e-5)     # the n = 1 geometric rate is fitted on this loss range
SINGLE_TARGET = 1e-14                  # "converged": library loss at or below this


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """The settings of one mode: ``[common]`` + ``[full]`` or ``[quick]`` of ``config.toml``,
    which documents each (steps are gradient-descent iterations; flow time t = lr * steps)."""

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
                     "balance_students", "balance_seeds"):
            value = int(getattr(self, name))
            if value < 1 or (name == "dense_steps" and value >= self.steps):
                raise ValueError(f"{name} must be a positive int (dense_steps < steps), got "
                                 f"{getattr(self, name)!r}; fix it in {CONFIG_FILE}")
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


def teacher(dim):
    """The teacher v = e_1 as a (1, dim) matrix (|v| = 1; any unit v is a rotation of it)."""
    return np.eye(1, dim)


def mirror(w, v):
    """The reflection 2 (w . v) v - w of `w` across the unit vector `v` (exact for v = e_1)."""
    return 2.0 * (np.asarray(w, dtype=float) @ v)[..., None] * v - w


def record_schedule(steps, dense_steps, log_records):
    """Steps at which iterates are recorded: 0..dense_steps, then log-spaced up to `steps`."""
    dense = np.arange(min(dense_steps, steps) + 1)
    tail = np.round(np.logspace(np.log10(max(dense_steps, 1)), np.log10(steps),
                                log_records)).astype(int)
    return np.unique(np.concatenate([dense, tail, [steps]]))


def h_cubic(theta):
    """h(theta) = sin theta - theta cos theta; below 0.1 rad its Taylor series to theta^11
    (truncation < 1e-18 relative) replaces the difference, which loses 1e-16/theta^2."""
    theta = np.asarray(theta, dtype=float)
    t2 = theta * theta
    series = theta * t2 * (1 / 3 + t2 * (-1 / 30 + t2 * (1 / 840 + t2 * (-1 / 45360
                                                                         + t2 / 3991680))))
    return np.where(theta < 0.1, series, np.sin(theta) - theta * np.cos(theta))


def geometry(W, v):
    """Norms, teacher angles and the split loss of students W (..., n, d) against v (d,).

    ``norms``, ``theta`` (..., n; atan2(|w_perp|, w . v)), ``radial`` = |sum_i w_i - v|^2/4,
    ``angular`` = [sum_{i != i'} |w_i||w_i'| h(theta_ii') - 2 |v| sum_i |w_i| h(theta_i)]/(4 pi)
    (pair angles by Kahan's 2 atan2(|a - b|, |a + b|)) and ``loss`` = radial + angular: an
    exact split of F (kappa = u.w/2 + |u||w| h/(2 pi)) free of cancellation, accurate where
    the closed form (a sum of O(1) terms) has an absolute floor near 1e-16.
    """
    W = np.asarray(W, dtype=float)
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
    return dict(norms=norms, theta=theta, radial=radial, angular=angular, loss=radial + angular)


def tail_fit(t, y, lo, hi):
    """``ls.power_law_fit`` of `y` on `t` over lo <= t <= hi (``.exponent``: log-log slope)."""
    t, y = np.asarray(t, dtype=float), np.asarray(y, dtype=float)
    return ls.power_law_fit(t[(t >= lo) & (t <= hi)], y[(t >= lo) & (t <= hi)])


def asymptotic_constant(t, y, power, lo, hi):
    """C in y ~ C (t + c)^-power free of the shift c: y^(-1/power) is a line in t of slope
    C^(-1/power) (least squares over lo <= t <= hi; lim y t for angles, lim y t^3 for F)."""
    t, y = np.asarray(t, dtype=float), np.asarray(y, dtype=float)
    keep = (t >= lo) & (t <= hi) & (y > 0)
    return float(linregress(t[keep], y[keep] ** (-1.0 / power)).slope ** (-power))


def local_constants(t, y, power):
    """:func:`asymptotic_constant` between consecutive records: midpoints and estimates."""
    t = np.asarray(t, dtype=float)
    z = np.asarray(y, dtype=float) ** (-1.0 / power)
    return np.sqrt(t[1:] * t[:-1]), (np.diff(z) / np.diff(t)) ** (-power)


def phase_boundaries(t, theta_max, radial, angular, *, align_angle):
    """Per start, from records (R, B) at times t: t1, the first record from which on every
    student stays within `align_angle` of v, and t2, from which on the radial misfit stays
    below the angular part of the loss (the slow local phase); NaN if never."""
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


def _seed(config, key):
    """The random stream of one run: a SeedSequence of (config.seed, key)."""
    return np.random.SeedSequence([config.seed, key])


def _descend(model, X0, lr, record_at, bar):
    """Gradient descent to record_at[-1] with the iterates recorded; (trace, states, seconds)."""
    start = time.perf_counter()
    d = ls.descend(model, X0, lr=lr, gtol=0.0, maxiter=int(record_at[-1]), record_at=record_at,
                   record_x=True)
    seconds = time.perf_counter() - start
    bar.update(1)
    R, B = d.trace.loss.shape
    return d.trace, d.trace.x.reshape(R, B, -1, model.teacher.shape[1]), seconds


def _single(config, v, bar):
    """n = 1: the library and the precise loss at log-spaced steps."""
    m = ls.ReluTeacherStudent(teacher=v, n_students=1)
    X0 = m.sample_init(config.seeds, rng=_seed(config, 1), scale=config.init_scale)
    steps = config.single_steps
    record_at = np.unique(np.round(np.logspace(0, np.log10(steps), steps + 1)).astype(int))
    trace, S, seconds = _descend(m, X0, config.lr, np.append(0, record_at), bar)
    at, loss = trace.nit, trace.loss                              # (R,), (R, B)
    lo, hi = SINGLE_LOSS_WINDOW
    ratios, spreads, reach = [], [], []
    for col in loss.T:
        idx = np.flatnonzero((col >= lo) & (col <= hi))
        ratios.append(np.exp(linregress(at[idx], np.log(col[idx])).slope))
        local = np.exp(np.diff(np.log(col[idx])) / np.diff(at[idx]))
        spreads.append(np.max(np.abs(local / ratios[-1] - 1.0)))
        hit = np.flatnonzero(col <= SINGLE_TARGET)
        reach.append(at[hit[0]] if hit.size else np.nan)
    precise = geometry(S, v[0])["loss"]
    return dict(
        at=at, loss=loss, precise=precise, results=dict(
            steps=config.single_steps, ratio_per_step=_spread(ratios),
            ratio_predicted=(1.0 - config.lr / 2.0) ** 2,
            ratio_max_local_deviation=float(np.max(spreads)),
            ratio_window=list(SINGLE_LOSS_WINDOW), steps_to_target=_spread(reach),
            target=SINGLE_TARGET, final_library_loss=_spread(loss[-1]),
            final_precise_loss=_spread(precise[-1]), descend_seconds=seconds,
            descend_us_per_step=1e6 * seconds / config.single_steps))


def _symmetric_summary(t, phi, loss, theta, norms, window):
    """Constants, raw products, slopes and mirror asymmetry of the symmetric pair's records."""
    return dict(angle_constant=asymptotic_constant(t, phi, 1, *window),
                loss_constant=asymptotic_constant(t, loss, 3, *window),
                angle_t_at_end=float(phi[-1] * t[-1]), loss_t3_at_end=float(loss[-1] * t[-1] ** 3),
                loss_slope=tail_fit(t, loss, *window).exponent,
                angle_slope=tail_fit(t, phi, *window).exponent,
                asymmetry=float(max(np.max(np.abs(theta[:, 0] - theta[:, 1])),
                                    np.max(np.abs(norms[:, 0] - norms[:, 1])))),
                window_t=list(window))


def _over(config, v, bar):
    """n >= 2: one ``descend`` per width; the n = 2 batch ends with the symmetric pair."""
    record_at = record_schedule(config.steps, config.dense_steps, config.log_records)
    t = config.lr * record_at
    T = config.steps
    lo = T * 10.0 ** -config.fit_decades
    window = (config.lr * lo, config.lr * T)
    rnd = slice(0, config.seeds)
    over, traces = {}, {}

    def per(stat):
        return _spread([stat(b) for b in range(config.seeds)])

    for n in config.students:
        m = ls.ReluTeacherStudent(teacher=v, n_students=n)
        X0 = m.sample_init(config.seeds, rng=_seed(config, n), scale=config.init_scale)
        if n == 2:
            w = X0[0, :config.dim]
            X0 = np.vstack([X0, np.concatenate([w, mirror(w, v[0])])])
        trace, S, seconds = _descend(m, X0, config.lr, record_at, bar)
        geo = geometry(S, v[0])
        loss, norms = geo["loss"], geo["norms"]
        theta_max = geo["theta"].max(axis=-1)
        ratio = norms.max(axis=-1) / norms.min(axis=-1)
        t1, t2 = phase_boundaries(t, theta_max, geo["radial"], geo["angular"],
                                  align_angle=config.align_angle)
        big = loss > 1e-10
        o = over[str(n)] = dict(
            n=n,
            loss_slope=dict(per(lambda b: tail_fit(record_at, loss[:, b], lo, T).exponent),
                            window_steps=[lo, float(T)], n_points=int(np.sum(record_at >= lo))),
            angle_slope=dict(per(lambda b: tail_fit(record_at, theta_max[:, b], lo, T).exponent),
                             window_steps=[lo, float(T)]),
            loss_constant=per(lambda b: asymptotic_constant(t, loss[:, b], 3, *window)),
            angle_constant=per(lambda b: asymptotic_constant(t, theta_max[:, b], 1, *window)),
            loss_t3_at_end=_spread(loss[-1, rnd] * t[-1] ** 3),
            angle_t_at_end=_spread(theta_max[-1, rnd] * t[-1]),
            final_loss=_spread(loss[-1, rnd]),
            final_library_loss=_spread(trace.loss[-1, rnd]),
            phases=dict(alignment_end_steps=_spread(t1[rnd] / config.lr),
                        local_start_steps=_spread(t2[rnd] / config.lr),
                        norm_sum_at_alignment_end=_spread(_sum_at(t, norms, t1)[rnd]),
                        align_angle=config.align_angle),
            norm_ratio_end=_spread(ratio[-1, rnd]),
            norm_sum_end=_spread(norms[-1, rnd].sum(axis=-1)),
            norm_ratio_drift_on_tail=float(np.max(np.abs(ratio[record_at >= lo][:, rnd]
                                                         / ratio[-1, rnd] - 1))),
            library_loss_rel_diff=float(np.max(np.abs(trace.loss - loss)[big] / loss[big])),
            descend_seconds=seconds, descend_us_per_step=1e6 * seconds / T, rows=len(X0))
        traces[n] = dict(record_at=record_at, loss=loss, theta_max=theta_max, norms=norms,
                         ratio=ratio, t1=t1, t2=t2)
        if n == 2:
            # reduced dynamics of a pair with final norms r_1 + r_2 = 1 (section "symmetric")
            r = norms[-1, rnd] / norms[-1, rnd].sum(axis=-1, keepdims=True)
            pred_angle = 2.0 * np.pi * r.max(axis=-1)
            pred_loss = 8.0 * np.pi**2 * (r[:, 0] * r[:, 1]) ** 2 / 3.0
            o["pair_prediction"] = dict(
                angle_constant=_spread(pred_angle), loss_constant=_spread(pred_loss),
                angle_max_rel_dev=np.max(np.abs(o["angle_constant"]["per_start"] / pred_angle - 1)),
                loss_max_rel_dev=np.max(np.abs(o["loss_constant"]["per_start"] / pred_loss - 1)))
            phi = geo["theta"][:, -1, 0]
            o["symmetric_gd"] = _symmetric_summary(t, phi, loss[:, -1], geo["theta"][:, -1],
                                                   norms[:, -1], window)
            traces[2]["symmetric"] = dict(phi=phi, loss=loss[:, -1])
    total = sum(o["descend_seconds"] for o in over.values())
    return over, traces, dict(steps=T, seconds=total, us_per_step=1e6 * total / T)


def _symmetric_flow(config, v, bar):
    """Gradient flow of the mirror-symmetric pair: ``descend(method="flow", t_eval=...)``."""
    m = ls.ReluTeacherStudent(teacher=v, n_students=2)
    w = m.sample_init(config.seeds, rng=_seed(config, 2), scale=config.init_scale)[0, :config.dim]
    times = np.append(0.0, np.logspace(-2, np.log10(config.flow_time), config.log_records))
    start = time.perf_counter()
    d = ls.descend(m, np.concatenate([w, mirror(w, v[0])]), method="flow", t_eval=times,
                   gtol=0.0, maxiter=10**9, record_x=True)
    seconds = time.perf_counter() - start
    if d.status[0] != ls.Status.MAXITER:           # gtol = 0: it must run to t_max
        raise RuntimeError(f"gradient flow failed before t = {config.flow_time}: "
                           f"{d.messages[0]}")
    bar.update(1)
    geo = geometry(d.trace.x.reshape(len(times), 2, config.dim), v[0])
    phi = geo["theta"][:, 0]
    lo = config.flow_time * 10.0 ** -config.fit_decades
    res = dict(t_max=config.flow_time,
               **_symmetric_summary(times, phi, geo["loss"], geo["theta"], geo["norms"],
                                    (lo, config.flow_time)),
               norm_at_end=float(geo["norms"][-1, 0]), rhs_evaluations=int(d.nit[0]),
               seconds=seconds,
               library_loss_rel_diff=float(abs(d.loss[0] - geo["loss"][-1]) / geo["loss"][-1]))
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
            _, S, seconds = _descend(m, scale * directions, lr, record_at, bar)
            geo = geometry(S, v[0])
            t = lr * record_at
            t1, t2 = phase_boundaries(t, geo["theta"].max(axis=-1), geo["radial"],
                                      geo["angular"], align_angle=config.align_angle)
            norms = geo["norms"][-1]
            rows.append(dict(init_scale=scale, lr=lr, steps=steps, seconds=seconds,
                             norm_ratio=_spread(norms.max(axis=-1) / norms.min(axis=-1)),
                             alignment_end_t=_spread(t1), local_start_t=_spread(t2),
                             norm_sum_at_alignment_end=_spread(_sum_at(t, geo["norms"], t1))))
    return dict(n=n, flow_time=config.balance_flow_time, seeds=config.balance_seeds, runs=rows)


def run(out_dir, *, quick=False, progress=True):
    """Run the study (`quick`: the CI mode of ``config.toml``); write ``results.json``,
    ``index.html`` and the figures to `out_dir`; return the results (tqdm bar: `progress`)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = Config.load(quick)
    v = teacher(config.dim)
    runs = 2 + len(config.students) + len(config.balance_scales) * len(config.balance_lrs)
    with tqdm(total=runs, desc="xu_du2023", disable=not progress, unit="run") as bar:
        single = _single(config, v, bar)
        over, traces, cost = _over(config, v, bar)
        flow, flow_trace = _symmetric_flow(config, v, bar)
        balance = _balance(config, v, bar)
    results = dict(
        title=TITLE, paper=PAPER, mode=config.mode, config=dataclasses.asdict(config),
        conventions=("F(W) = 1/2 E[(sum_i relu(w_i.x) - relu(v.x))^2], x ~ N(0, I_d), v = e_1; "
                     "gradient descent W <- W - lr grad F; flow time t = lr * steps; angles "
                     "in radians; 'steps' are gradient-descent iterations T"),
        single=single["results"], over=over,
        symmetric=dict(predicted_angle_constant=np.pi, predicted_loss_constant=np.pi**2 / 6,
                       flow=flow, gd=over["2"].pop("symmetric_gd")),
        balance=balance, cost=cost,
        machine=dict(platform=platform.platform(), processor=platform.processor(),
                     cpu_count=os.cpu_count(), numpy=np.__version__,
                     openblas_threads=os.environ.get("OPENBLAS_NUM_THREADS")))
    figures = _figures(out_dir, config, single, traces, flow_trace, results)
    results["seconds"] = time.perf_counter() - started
    results = json_ready(results)
    write_json(out_dir / "results.json", results)
    write_page(out_dir, title=TITLE, subtitle=PAPER, summary=_summary(results),
               sections=_sections(results, figures))
    return results


_COLORS = {1: "tab:gray", 2: "tab:blue", 3: "tab:orange", 5: "tab:green"}
_PHASES = (("alignment", "#fde0c5"), ("norm growth", "#d9ecd0"), ("local convergence", "#dde6f5"))


def _color(n):
    return _COLORS.get(n, f"C{n % 10}")


def _positive(x, y):
    keep = (x > 0) & (y > 0) & np.isfinite(y)
    return x[keep], y[keep]


def _axes(ax, xlabel, ylabel, *, xlog=True, ylog=False, fontsize=7, **legend):
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.set_xscale("log" if xlog else "linear")
    ax.set_yscale("log" if ylog else "linear")
    ax.legend(fontsize=fontsize, **legend)


def _figures(out_dir, config, single, traces, flow_trace, results):
    figs, T, seeds = {}, config.steps, config.seeds
    lo = T * 10.0 ** -config.fit_decades
    step = "gradient-descent step T"
    ns = [1] + list(config.students)
    nrows = -(-len(ns) // 2)
    fig, axes = new_figure(9.5, 3.4 * nrows, nrows=nrows, ncols=2, squeeze=False)
    for ax, n in zip(axes.ravel(), ns):
        tr = traces.get(n, {})
        at = (single["at"] if n == 1 else tr["record_at"]).astype(float)
        loss = single["precise"] if n == 1 else tr["loss"][:, :seeds]
        for b in range(seeds):
            ax.plot(*_positive(at, loss[:, b]), color=_color(n), lw=0.7, alpha=0.5)
        med = np.median(loss, axis=1)
        ax.plot(*_positive(at, med), color="k" if n == 1 else _color(n), lw=1.8,
                label="median (precise loss)" if n == 1 else "median")
        if n == 1:
            ax.set_title("n = 1: geometric decay, then the rounding floor of the iterates")
        else:
            t1, t2 = (np.nanmedian(tr[k][:seeds]) / config.lr for k in ("t1", "t2"))
            edges = [1.0, max(t1, 1.0), max(t2, t1, 1.0), float(T)]
            for (name, col), a, b in zip(_PHASES, edges[:-1], edges[1:]):
                if b > a:
                    ax.axvspan(a, b, color=col, lw=0, label=name)
            keep = at >= T / 1e3
            ax.plot(at[keep], med[-1] * (at[keep] / at[-1]) ** -3.0, "k--", lw=1,
                    label="T$^{-3}$")
            ax.axvline(lo, color="k", lw=0.6, ls=":")
            ax.set_title(f"n = {n}: tail slope {_pm(results['over'][str(n)]['loss_slope'])}")
        _axes(ax, step, "loss F", ylog=True, loc="lower left")
    for ax in axes.ravel()[len(ns):]:
        ax.set_visible(False)
    figs["loss"] = save_figure(fig, out_dir, "loss.png", caption=(
        f"Loss against the step T, {seeds} starts per n (thin) and their median (thick); eta = "
        f"{config.lr}, sigma = {config.init_scale}, d = {config.dim}.  Shaded: the phases for "
        f"n >= 2 (median boundaries: alignment ends when every student is within "
        f"{config.align_angle} rad of v, the local phase starts when the angular part of the "
        "loss dominates).  Dotted: start of the fit window; dashed: T^-3 through the end."))

    fig, ax = new_figure(6.4, 3.8)
    at = single["at"].astype(float)
    for b in range(seeds):
        ax.plot(*_positive(at, single["loss"][:, b]), "o", ms=1.5, color="tab:red", alpha=0.5,
                label="landscape.descend (model loss)" if b == 0 else None)
    ax.plot(*_positive(at, np.median(single["precise"], axis=1)), color="k", lw=1.2,
            label="precise loss, median")
    r = results["single"]["ratio_predicted"]
    i100 = np.searchsorted(at, 100)
    ax.plot(at, np.median(single["precise"][i100]) * r ** (at - at[i100]), "b--", lw=1,
            label=f"(1 - eta/2)^(2T) = {r:.4f}^T")
    ax.axhline(SINGLE_TARGET, color="gray", lw=0.6, ls=":")
    ax.set_ylim(1e-33, 1)
    _axes(ax, step, "loss F", xlog=False, ylog=True, fontsize=8)
    figs["single"] = save_figure(fig, out_dir, "single_neuron.png", caption=(
        "n = 1: linear convergence.  Red: the loss recorded by landscape.descend (the closed "
        "form, 0 below ~1e-16); black: the cancellation-free loss, geometric down to the "
        "rounding of the iterate (~1e-31); dashed: (1 - eta/2)^2 per step; dotted: 1e-14."))

    fig, ax = new_figure(6.4, 3.8)
    for n in config.students:
        at = traces[n]["record_at"].astype(float)
        keep = at >= config.dense_steps
        a, med = at[keep], np.median(traces[n]["loss"][keep, :seeds], axis=1)
        ax.plot(np.sqrt(a[1:] * a[:-1]), np.diff(np.log(med)) / np.diff(np.log(a)),
                color=_color(n), label=f"n = {n}")
    ax.axhspan(-3.2, -2.8, color="0.9", lw=0)
    ax.axhline(-3, color="k", lw=0.8)
    ax.axvspan(lo, T, color="tab:blue", alpha=0.08, lw=0, label="fit window")
    ax.set_ylim(-4, 0)
    _axes(ax, step, "d log F / d log T (median start)", fontsize=8)
    figs["slope"] = save_figure(fig, out_dir, "local_slope.png", caption=(
        "Local log-log slope of the median loss: it tends to -3 (grey: -3 +- 0.2) as the angles "
        "shrink, slowly: F ~ C/(t + c)^3, c ~ pi / (angle at the start of the local phase)."))

    fig, (ax, bx) = new_figure(10, 3.8, ncols=2)
    at = traces[2]["record_at"].astype(float)[1:]
    for n in config.students:
        th = traces[n]["theta_max"][1:, :seeds]
        med = np.median(th, axis=1)
        ax.fill_between(at, th.min(axis=1), th.max(axis=1), color=_color(n), alpha=0.2, lw=0)
        ax.plot(at, med, color=_color(n), label=f"n = {n}")
        bx.plot(at, med * config.lr * at, color=_color(n), label=f"n = {n}")
    phi = traces[2]["symmetric"]["phi"][1:]
    ax.plot(at, phi, "k:", lw=1.2, label="symmetric pair (GD)")
    bx.plot(at, phi * config.lr * at, "k:", lw=1.2, label="symmetric pair (GD)")
    ax.plot(at[at >= 100], np.pi / (config.lr * at[at >= 100]), "k--", lw=0.8, label="pi / t")
    bx.axhline(np.pi, color="k", lw=0.8, ls="--", label="pi")
    _axes(ax, step, "max_i angle(w_i, v)  [rad]", ylog=True)
    _axes(bx, step, "max angle x t   (t = eta T)")
    figs["angle"] = save_figure(fig, out_dir, "max_angle.png", caption=(
        "Largest student-teacher angle (median and range over starts): after alignment it decays "
        "as 1/T.  Right: angle x flow time, tending to a constant (pi for the symmetric pair)."))

    fig, (ax, bx, cx) = new_figure(14, 3.8, ncols=3)
    for n in config.students:
        ax.plot(at, traces[n]["norms"][1:, 0, :], color=_color(n), lw=1)
        ax.plot([], [], color=_color(n), label=f"n = {n} (start 0)")
        ax.axhline(1.0 / n, color=_color(n), lw=0.6, ls=":")
        bx.plot(at, np.median(traces[n]["ratio"][1:, :seeds], axis=1), color=_color(n),
                label=f"n = {n}")
    _axes(ax, step, "|w_i|", ylog=True)
    _axes(bx, step, "max_i |w_i| / min_i |w_i|  (median start)")
    for k, scale in enumerate(config.balance_scales):
        sel = [b for b in results["balance"]["runs"] if b["init_scale"] == scale]
        med, low, high = (np.array([b["norm_ratio"][q] for b in sel]) - 1
                          for q in ("median", "min", "max"))
        cx.errorbar([b["lr"] for b in sel], med, yerr=[med - low, high - med], marker="o",
                    capsize=3, color=f"C{k}", label=f"sigma = {scale:g}")
    _axes(cx, "step size eta", f"final max/min norm ratio - 1  (n = {results['balance']['n']})",
          ylog=True)
    figs["norms"] = save_figure(fig, out_dir, "norms.png", caption=(
        "Left: the norms of one start per n grow together to about 1/n (dotted).  Middle: "
        "max/min norm ratio (median start), frozen after norm growth.  Right: final ratio - 1 "
        "against eta (median and range): the imbalance is set during alignment and shrinks "
        "with eta and sigma -- balance is exact only in the small-step, small-init limit."))

    fig, (ax, bx) = new_figure(10, 3.8, ncols=2)
    tf, phi, loss = flow_trace["t"], flow_trace["phi"], flow_trace["loss"]
    tg = config.lr * traces[2]["record_at"].astype(float)
    sym = traces[2]["symmetric"]
    every = slice(None, None, max(1, int(np.sum(tf >= 1.0)) // 40))
    for y, power, limit, col, mark, name in ((phi, 1, np.pi, "tab:purple", "o", "phi t / pi"),
                                             (loss, 3, np.pi**2 / 6, "tab:red", "s",
                                              "F t^3 / (pi^2/6)")):
        keep = tf >= 1.0
        ax.plot(tf[keep], y[keep] * tf[keep] ** power / limit, color=col, label=f"flow: {name}")
        mid, c = local_constants(tf[keep], y[keep], power)
        ax.plot(mid[every], c[every] / limit, mark, ms=3, color=col,
                label=f"flow: shift-free estimate of {name}")
        g = sym["phi" if power == 1 else "loss"]
        keep = tg >= 1.0
        ax.plot(tg[keep], g[keep] * tg[keep] ** power / limit, "--", color=col, lw=0.8,
                label=f"GD (eta T = t): {name}")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_ylim(0, 1.3)
    _axes(ax, "flow time t", "", fontsize=6.5, loc="upper left")
    keep, late = tf > 0, tf >= 10
    bx.plot(tf[keep], phi[keep], color="tab:purple", label="phi (flow)")
    bx.plot(tf[keep], loss[keep], color="tab:red", label="F (flow)")
    bx.plot(tf[late], np.pi / tf[late], "k--", lw=0.8, label="pi / t")
    bx.plot(tf[late], np.pi**2 / 6 / tf[late] ** 3, "k:", lw=0.8, label="pi^2 / (6 t^3)")
    _axes(bx, "flow time t", "", ylog=True)
    figs["symmetric"] = save_figure(fig, out_dir, "symmetric.png", caption=(
        "Mirror-symmetric pair w_1,2 = r(cos phi v +- sin phi u) from a small start.  Left: "
        "phi t / pi and F t^3 / (pi^2/6) under gradient flow (solid) and GD (dashed, t = eta T) "
        "approach 1 slowly (phi = pi/(t + c)); the shift-free estimates (markers: slopes of "
        "1/phi and F^-1/3 in t) sit at 1 early on.  Right: phi, F, pi/t and pi^2/(6 t^3)."))
    return figs


def _pm(s, digits=3):
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}, {s['max']:.{digits}f}]"


def _summary(r):
    s1, f, cost = r["single"], r["symmetric"]["flow"], r["cost"]
    return ([("mode", r["mode"]),
             ("n = 1: loss ratio per step (predicted (1 - eta/2)^2)",
              f"{_pm(s1['ratio_per_step'], 5)} ({s1['ratio_predicted']:.5f})")]
            + [(f"n = {n}: tail slopes of the loss (paper: -3) and max angle (-1)",
                f"{_pm(o['loss_slope'])}; {_pm(o['angle_slope'])}") for n, o in r["over"].items()]
            + [("symmetric flow: lim phi t and lim F t^3 (pi = 3.14159, pi^2/6 = 1.64493)",
                f"{f['angle_constant']:.5f}; {f['loss_constant']:.5f}"),
               (f"T = {cost['steps']} steps, all widths", f"{cost['seconds']:.1f} s"),
               ("wall time", f"{r['seconds']:.1f} s")])


def _sections(r, figs):
    c, s1, over, b, cost, m = (r[k] for k in ("config", "single", "over", "balance", "cost",
                                              "machine"))
    f, g = r["symmetric"]["flow"], r["symmetric"]["gd"]
    T, fd = c["steps"], c["fit_decades"]
    sums = "; ".join(f"{_pm(o['phases']['norm_sum_at_alignment_end'], 2)} (n = {n})"
                     for n, o in over.items())
    ratios = "; ".join(f"n = {n}: {_pm(o['norm_ratio_end'], 4)}" for n, o in over.items())
    speeds = "; ".join(f"{o['descend_us_per_step']:.0f} (n = {n})" for n, o in over.items())
    setup = Section(title="Setup and conventions", id="setup", text=[
        f"Teacher v = e_1 in R^{c['dim']}; F(W) = 1/2 E[(sum_i relu(w_i . x) - relu(v . x))^2], "
        "x ~ N(0, I), in closed form (landscape.ReluTeacherStudent).  Note the 1/2: for L = 2F "
        "the flow runs twice as fast and the symmetric constants become pi/2 and pi^2/24.  "
        f"Starts N(0, sigma^2), sigma = {c['init_scale']}; eta = {c['lr']}; t = eta T.  n = 1 "
        f"runs {c['single_steps']} steps; n = {', '.join(str(n) for n in c['students'])} run "
        f"T = {T} steps from {c['seeds']} starts each (n = 2 plus the mirror-symmetric pair), "
        "one landscape.descend(record_at=..., record_x=True) per width, recording every step "
        f"up to {c['dense_steps']}, then {c['log_records']} log-spaced steps.  Fits use the "
        f"tail [T 10^-{fd}, T] = [{T * 10 ** -fd:.0f}, {T}] steps.  The cancellation-free loss "
        "(radial |sum_i w_i - v|^2/4 plus the angular part, h by its series below 0.1 rad) "
        f"agrees with the library's to {max(o['library_loss_rel_diff'] for o in over.values()):.1e}"
        " relative wherever F > 1e-10 and stays accurate below its absolute floor (~1e-16)."])
    single = Section(title="n = 1: linear convergence", id="single", text=[
        "The Hessian at w = v is I/2, so GD contracts the loss by (1 - eta/2)^2 = "
        f"{s1['ratio_predicted']:.5f} per step.  Measured on loss in [{s1['ratio_window'][0]:g}, "
        f"{s1['ratio_window'][1]:g}]: {_pm(s1['ratio_per_step'], 5)}; local ratios within "
        f"{s1['ratio_max_local_deviation']:.1e} of the fit.  The library loss reaches 1e-14 "
        f"after {_pm(s1['steps_to_target'], 0)} steps and ends at "
        f"{s1['final_library_loss']['max']:.1e} (its rounding floor); the cancellation-free "
        f"loss ends at {s1['final_precise_loss']['median']:.1e} (the rounding of the iterate)."],
        figures=[figs["single"]])
    table = Table(columns=["n", "loss slope", "max-angle slope", "lim F t^3", "lim angle t",
                           "F(T)", "alignment ends (step)", "local phase from (step)",
                           "max/min norm"],
                  rows=[[n, _pm(o["loss_slope"]), _pm(o["angle_slope"]),
                         _pm(o["loss_constant"]), _pm(o["angle_constant"]),
                         f"{o['final_loss']['median']:.3e}",
                         _pm(o["phases"]["alignment_end_steps"], 0),
                         _pm(o["phases"]["local_start_steps"], 0), _pm(o["norm_ratio_end"], 4)]
                        for n, o in over.items()],
                  caption=(f"median [min, max] over starts; slopes on [T 10^-{fd}, T]; limits: "
                           "shift-free estimates on the same window (t = eta T)"))
    slow = Section(title="n >= 2: the loss decays as T^-3", id="over", text=[
        "The tail log-log slope of the loss is close to -3 for every n and start, and still "
        "drifting towards it: F ~ C/(t + c)^3 with a shift c set by the angle at which the "
        "local phase starts, so a window ending at T sees -3 T/(T + c) on average.",
        f"Phases (median boundaries): alignment, until every student is within "
        f"{c['align_angle']} rad of v; norm growth, until the misfit |sum_i w_i - v|^2/4 is below "
        "the angular part of the loss; then slow local convergence of the angles.  At eta = "
        f"{c['lr']} they overlap: the first step moves each student by up to eta/4 along v, far "
        f"more than sigma sqrt(d) = {c['init_scale'] * np.sqrt(c['dim']):.1e}, so alignment ends "
        f"only when sum_i |w_i| = {sums}"
        " and the angle entering the local phase is set by eta, not sigma; the small-step "
        "sweep (section Norms and balance) separates them."],
        tables=[table], figures=[figs["loss"], figs["slope"]])
    pp = over["2"]["pair_prediction"]
    angle = Section(title="The largest angle decays as 1/T", id="angle", text=[
        "After alignment the largest angle decays as 1/T (slopes in the table).  For n = 2 the "
        "reduced pair dynamics (section The symmetric two-neuron case) give max angle x t -> "
        "2 pi max(r_1, r_2) and F t^3 -> 8 pi^2 (r_1 r_2)^2 / 3 from the final norms "
        f"r_1 + r_2 = 1: predicted {_pm(pp['angle_constant'], 4)} and "
        f"{_pm(pp['loss_constant'], 4)}, measured within {pp['angle_max_rel_dev']:.1e} and "
        f"{pp['loss_max_rel_dev']:.1e} (relative).  The lighter student lies farther from v, "
        "so the angle constant exceeds pi while the loss constant stays below pi^2/6."],
        figures=[figs["angle"]])
    balance = Section(title="Norms and balance", id="norms", text=[
        "The norms grow together and freeze once sum_i w_i has reached v; the final max/min "
        f"ratio is {ratios}"
        ": nearly, not exactly, equal.  The imbalance is created during alignment (a norm grows "
        "at a rate that depends on its angle to v) and shrinks with the step size and the init "
        f"scale (table: n = {b['n']}, to flow time {b['flow_time']:g}, {b['seeds']} starts)."],
        tables=[Table(columns=["sigma", "eta", "steps", "final max/min norm",
                               "alignment ends (t)", "sum |w_i| then", "local phase from (t)"],
                      rows=[[f"{x['init_scale']:g}", f"{x['lr']:g}", x["steps"],
                             _pm(x["norm_ratio"], 4), _pm(x["alignment_end_t"], 2),
                             _pm(x["norm_sum_at_alignment_end"], 4), _pm(x["local_start_t"], 2)]
                            for x in b["runs"]],
                      caption="median [min, max] over starts")],
        figures=[figs["norms"]])
    symmetric = Section(title="The symmetric two-neuron case", id="symmetric", text=[
        "For w_1,2 = r(cos phi v +- sin phi u), F = (2 r cos phi - 1)^2/4 + [r^2 h(2 phi) - "
        "2 r h(phi)]/(2 pi); once r = 1/2, F = phi^3/(6 pi) + O(phi^4) and the flow gives "
        "dphi/dt = -phi^2/pi: phi = pi/(t + c), F t^3 -> pi^2/6.  With unequal norms "
        "r_1 + r_2 = 1, r_1 phi_1 = r_2 phi_2 and the opening Phi = phi_1 + phi_2 obeys "
        "dPhi/dt = -Phi^2/(2 pi) (derivation in the study's README).",
        f"Gradient flow (landscape.descend(method='flow', t_eval=...), RK45, rtol 1e-10) to "
        f"t = {f['t_max']:g}; shift-free constants on [{f['window_t'][0]:g}, {f['t_max']:g}]: "
        f"lim phi t = {f['angle_constant']:.5f} (pi = {np.pi:.5f}), lim F t^3 = "
        f"{f['loss_constant']:.5f} (pi^2/6 = {np.pi**2 / 6:.5f}); raw products at the end "
        f"phi t = {f['angle_t_at_end']:.4f}, F t^3 = {f['loss_t3_at_end']:.4f} (the shift "
        f"c ~ pi/phi is large after a small start).  GD with eta = {c['lr']} (t = eta T): "
        f"{g['angle_constant']:.5f} and {g['loss_constant']:.5f}; its first steps leave a larger "
        "angle, hence a smaller shift.  Log-log slope of F on the flow tail: "
        f"{f['loss_slope']:.4f}.  The pair stays symmetric to "
        f"{max(f['asymmetry'], g['asymmetry']):.1e}."],
        figures=[figs["symmetric"]])
    timing = Section(title="Cost", id="timing", text=[
        f"T = {T} steps of a tiny model (k <= {max(c['students'])}, d = {c['dim']}), where a "
        "gradient costs its few dozen numpy calls rather than arithmetic: landscape.descend "
        f"took {cost['seconds']:.1f} s for the {len(over)} widths, in us per step "
        f"{speeds} "
        f"(machine load included); n = 1: {s1['descend_seconds']:.2f} s for {s1['steps']} "
        f"steps; symmetric flow: {f['rhs_evaluations']} gradient evaluations in "
        f"{f['seconds']:.1f} s.  {m['platform']}, {m['cpu_count']} cores, numpy {m['numpy']}, "
        f"OPENBLAS_NUM_THREADS={m['openblas_threads']}."])
    return [setup, single, slow, angle, balance, symmetric, timing]
