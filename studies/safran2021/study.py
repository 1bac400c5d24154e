"""Safran, Yehudai & Shamir (COLT 2021): mild over-parameterization of a shallow ReLU network.

Teacher V = I_n (d = n), a student of k unit-output ReLU neurons and the population loss
F(W) = 1/2 E[(sum_i relu(w_i.x) - sum_j relu(v_j.x))^2], x ~ N(0, I_n).  The study measures

1. *spurious minima are common* (k = n): gradient descent with step 5/k from N(0, 1/d) entries,
   through ``landscape.scan``: every end point polished by Newton to |grad F| <= 1e-12,
   classified from its Hessian spectrum and deduplicated modulo the symmetry group (joint
   permutations of neurons and coordinates).  Per k: the fraction of starts that end at a
   spurious (non-global) minimum with its 95% Wilson interval, and every distinct minimum
   (loss, lambda_min, basin);
2. *one neuron more turns each spurious minimum into a saddle*: every distinct spurious minimum
   W of k = n is split, w_i -> (alpha w_i, (1 - alpha) w_i), into a critical point of the
   k + 1 student with the same loss; each split is classified, and gradient descent is run
   from it perturbed (along +- its most negative curvature direction, and a random
   direction) to see where it goes (``landscape.scan`` from those starts).  The paper's
   technical quantities: lambda_min of each neuron's diagonal Hessian block without its
   1/2 I term, M_i = H_ii - I/2, and the sum of the neuron norms.  Along the direction
   (u, -u) on the split pair the curvature is
   u^T M_i u / (alpha (1 - alpha)) per |(u, -u)|^2 / |u|^2 = 2, so
   lambda_min(H_split) <= lambda_min(M_i) / (2 alpha (1 - alpha)): a negative lambda_min(M_i)
   makes every split a strict saddle;
3. *k = n + 1 from random starts*: ``landscape.scan`` with n + 1 students (step 5/(n + 1)),
   against item 1.  Its global minima form a continuum (a teacher neuron split between two
   collinear students in any proportion); the scan converges onto it, certifies every end to
   |grad F| <= 1e-12, classifies it and lists the continuum as one point (its ``dimension``
   and the ``n_members`` the starts reached);
4. *local geometry at the global minimum*: k = n is locally strongly convex
   (lambda_min = 1/4 - 1/(2 pi)); with k = n + 1 at the split global minimum
   (v_1/2, v_1/2, v_2, ..., v_n) the Hessian is singular, points y arbitrarily close have a
   negative Hessian eigenvalue (no local convexity), OPSC and PL constants vanish linearly
   along the rotations that split the doubled neuron, yet OPSC holds in (almost) every
   random direction;
5. timings of every stage, and of the published protocol (plain batched GD to 1e-12,
   ``benchmarks/protocol.py``) from the same starts on a subset of k.

Run::

    landscape study safran2021 [--quick]
    python -c "from landscape.studies import run_study; run_study('safran2021', 'out')"

Every stage is cached in ``out_dir`` (scan stores ``k<k>-<starts>.db`` for k = n and
``n<n>-k<n+1>-<starts>.db`` for k = n + 1, other stages ``cache/*.json`` keyed by their
settings), so an interrupted run resumes.
"""

import dataclasses
import importlib.util
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

import landscape as ls
from landscape.studies import read_config
from landscape.report import (Section, Table, json_ready, new_figure, save_figure, write_json,
                              write_page)

TITLE = ("Safran et al. 2021: spurious minima of k = n are common, one neuron more turns them "
         "into saddles, and k > n is not locally convex at the global minimum")
PAPER = ("I. Safran, G. Yehudai, O. Shamir, \"The effects of mild over-parameterization on the "
         "optimization landscape of shallow ReLU neural networks\", COLT 2021 (PMLR 134)")

CONFIG_FILE = Path(__file__).with_name("config.toml")
PROTOCOL_FILE = Path(__file__).resolve().parents[2] / "benchmarks" / "protocol.py"
BENCHMARK_FILE = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "scan.json"

LAMBDA_MIN_GLOBAL = 0.25 - 1.0 / (2.0 * np.pi)   # lambda_min(hess F) at W = V = I (k = n)
SPURIOUS_LOSS = 1e-9        # a minimum with F above this is spurious (F* = 0)
NEGATIVE_EIGENVALUE = 1e-9  # lambda_min(H(y)) below -this: a negative curvature direction
DRIVER = "landscape.scan"   # descends k = n + 1 and off the splits; part of every cache key
RECORDS = 2                 # format of the split and k = n + 1 records (in their cache keys)

_MINIMA = ("strict-minimum", "degenerate-minimum")
_SADDLES = ("strict-saddle", "non-strict-saddle")

__all__ = ["TITLE", "PAPER", "Config", "initial_points", "split_neuron", "neuron_block_minima",
           "split_projection", "run"]


# ---- configuration -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """The settings of one mode of the study (``config.toml``: [common] and [full] or [quick])."""

    mode: str
    seed: int
    gtol: float
    split_alphas: tuple
    perturbation: float
    convexity_radii: tuple
    opsc_thresholds: tuple
    protocol_maxiter: int
    ks: tuple
    starts: int
    plus_ns: tuple
    plus_starts: int
    convexity_ns: tuple
    n_directions: int
    n_rotations: int
    protocol_ks: tuple
    protocol_starts: int

    @classmethod
    def load(cls, quick, path=CONFIG_FILE):
        cfg = cls(**read_config(path, quick))
        if not set(cfg.protocol_ks) <= set(cfg.ks):
            raise ValueError(f"{path}: protocol_ks {cfg.protocol_ks} must be among ks {cfg.ks}")
        if cfg.protocol_starts > cfg.starts:
            raise ValueError(f"{path}: protocol_starts must be <= starts")
        return cfg

    def to_dict(self):
        return dataclasses.asdict(self)


# ---- building blocks -----------------------------------------------------------------

def initial_points(model, n_starts, seed):
    """The starts of ``landscape.scan(model, n_starts, rng=seed)``: start i draws N(0, 1/d)
    entries from child i of ``SeedSequence(seed)``.

    Returns
    -------
    ndarray of shape (n_starts, n_params)
    """
    children = np.random.SeedSequence(seed).spawn(n_starts)
    return np.vstack([model.sample_init(1, rng=c) for c in children])


def split_neuron(W, i, alpha):
    """W (k, d) -> (k + 1, d): neuron i becomes alpha w_i (row i) and (1 - alpha) w_i (last row).

    Both halves point along w_i, so sum_i relu(w_i . x) is unchanged: F and grad F are the
    same (the gradient of a neuron depends on its direction only), a critical point stays one.
    """
    W = np.asarray(W, dtype=float)
    out = np.vstack([W, (1.0 - alpha) * W[i]])
    out[i] = alpha * W[i]
    return out


def neuron_block_minima(model, x):
    """lambda_min(H_ii - I/2) for every neuron i: the diagonal Hessian blocks without 1/2 I.

    Returns
    -------
    ndarray of shape (k,)
    """
    W = model.unflatten(x)
    k, d = W.shape
    H = model.hess(x)
    return np.array([np.linalg.eigvalsh(H[i * d:(i + 1) * d, i * d:(i + 1) * d]
                                        - 0.5 * np.eye(d))[0] for i in range(k)])


def split_projection(model, x_star, a, b):
    """The OPSC reference p(Y): the nearest point of the curve of split global minima.

    The curve is {(alpha v, (1 - alpha) v) on students a and b, v = w*_a + w*_b, the other
    students at their rows of `x_star`}; for a point y the nearest alpha is
    (v.(y_a - y_b) + |v|^2) / (2 |v|^2), clipped to [0, 1].

    Returns
    -------
    callable
        ``project(Y)`` for a batch Y of shape (B, n_params), as
        ``one_point_strong_convexity(..., reference=project)`` expects.
    """
    rows = model.unflatten(x_star)
    v = rows[a] + rows[b]
    vv = float(v @ v)

    def project(Y):
        W = Y.reshape(len(Y), *rows.shape)
        alpha = np.clip((np.einsum("bd,d->b", W[:, a] - W[:, b], v) + vv) / (2 * vv), 0.0, 1.0)
        P = np.broadcast_to(rows, W.shape).copy()
        P[:, a] = alpha[:, None] * v
        P[:, b] = (1.0 - alpha)[:, None] * v
        return P.reshape(len(Y), -1)

    return project


def _interval(count, n):
    return [float(v) for v in ls.wilson_interval(int(count), int(n))]


def _cached(out_dir, name, settings, compute):
    """compute() once per settings: the JSON in out_dir/cache/<name>.json is reused.

    Returns
    -------
    result : JSON data
    hit : bool
        Read from the cache.
    seconds : float
        The compute time of the run that produced `result`.
    """
    path = Path(out_dir) / "cache" / f"{name}.json"
    settings = json.loads(json.dumps(json_ready(settings)))
    if path.is_file():
        with open(path, encoding="utf-8") as fh:
            stored = json.load(fh)
        if stored.get("settings") == settings and "seconds" in stored:
            return stored["result"], True, stored["seconds"]
    t = time.perf_counter()
    result = json.loads(json.dumps(json_ready(compute())))
    seconds = time.perf_counter() - t
    write_json(path, {"settings": settings, "seconds": seconds, "result": result})
    return result, False, seconds


# ---- 1. k = n: the certified scan ------------------------------------------------------

def scan_k_equals_n(k, cfg, out_dir, progress):
    """landscape.scan of V = I_k, k students; the store out_dir/k<k>-<starts>.db resumes.

    Returns
    -------
    row : dict
    scan : landscape.Scan
    """
    model = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    store = Path(out_dir) / f"k{k}-{cfg.starts}.db"
    t = time.perf_counter()
    s = ls.scan(model, cfg.starts, rng=cfg.seed, lr=5.0 / k, gtol=cfg.gtol, store=store,
                progress=progress)
    elapsed = time.perf_counter() - t
    with ls.Store.open(store) as st:
        compute_seconds = st.wall_seconds
    out = s.outcomes
    certified = np.array([(kd in _MINIMA + _SADDLES) for kd in out.kind]) & \
        (out.grad_norm <= cfg.gtol) & (out.point >= 0)
    minima = []
    for p in s.minima:
        c = p.classification
        W = model.unflatten(p.x)
        minima.append(dict(
            id=p.id, kind=p.kind, loss=p.loss, lambda_min=c.lambda_min, index=c.index,
            nullity=c.nullity, grad_norm=c.grad_norm, is_global=c.is_global,
            spurious=p.loss > SPURIOUS_LOSS, basin_count=p.basin_count,
            basin_fraction=p.basin_fraction, basin_interval=[float(v) for v in p.basin_interval],
            found_by=p.found_by, sum_norms=float(np.linalg.norm(W, axis=1).sum()),
            certified=bool(c.grad_norm <= cfg.gtol and p.kind == "strict-minimum")))
    row = dict(
        k=k, n=k, n_starts=s.n_starts, lr=5.0 / k, store=store.name,
        spurious_fraction=s.spurious_fraction, spurious_count=s.spurious_count,
        spurious_interval=[float(v) for v in s.spurious_interval],
        n_minima=len(s.minima), n_spurious_minima=len(s.spurious_minima),
        n_saddles=len(s.saddles), n_certified_ends=int(certified.sum()),
        end_kinds={str(kd): int(c) for kd, c in zip(*np.unique(out.kind, return_counts=True))},
        max_grad_norm=float(np.nanmax(out.grad_norm)),
        all_minima_certified=all(m["certified"] for m in minima),
        minima=minima, seconds=elapsed, compute_seconds=compute_seconds)
    return row, s


# ---- 2. split spurious minima into the k + 1 student -------------------------------------

def split_study(k, s, cfg, rng):
    """Split every distinct spurious minimum of the k = n scan `s`; classify; descend off."""
    model = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    big = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k + 1)
    minima, starts, owners = [], [], []
    for p in s.spurious_minima:
        W = model.unflatten(p.x)
        lam_M = neuron_block_minima(model, p.x)
        chosen = int(np.argmin(lam_M))
        entry = dict(k=k, id=p.id, loss=p.loss, lambda_min=p.classification.lambda_min,
                     basin_count=p.basin_count, sum_norms=float(np.linalg.norm(W, axis=1).sum()),
                     lambda_min_M=lam_M.tolist(), lambda_min_M_min=float(lam_M.min()),
                     lambda_min_M_max=float(lam_M.max()),
                     n_negative_M=int(np.count_nonzero(lam_M < 0)), chosen_neuron=chosen,
                     all_neuron_splits=[], splits=[], descents=[])
        # w_i -> (w_i/2, w_i/2) for every neuron i
        for i in range(k):
            entry["all_neuron_splits"].append(
                _split_record(model, big, p, W, i, 0.5, lam_M, cfg, vector=False)[0])
        # the neuron with the most negative lambda_min(M_i), at every ratio, and descents
        for alpha in cfg.split_alphas:
            rec, x1, v_min = _split_record(model, big, p, W, chosen, alpha, lam_M, cfg)
            entry["splits"].append(rec)
            u = rng.standard_normal(big.n_params)
            u /= np.linalg.norm(u)
            for label, direction in (("+v_min", v_min), ("-v_min", -v_min), ("random", u)):
                starts.append(x1 + cfg.perturbation * direction)
                owners.append((len(minima), alpha, label))
        minima.append(entry)
    if starts:
        d = ls.scan(big, len(starts), rng=0, init=np.array(starts), lr=5.0 / (k + 1),
                    gtol=cfg.gtol, progress=False)
        out, outcome, certified = d.outcomes, _end_outcomes(d), _certified(d, cfg.gtol)
        for i, (m_idx, alpha, label) in enumerate(owners):
            loss = float(out.loss[i])
            minima[m_idx]["descents"].append(dict(
                alpha=alpha, perturbation=label, outcome=outcome[i], kind=out.kind[i],
                point=int(out.point[i]), loss=loss, grad_norm=float(out.grad_norm[i]),
                certified=bool(certified[i]), message=out.message[i],
                below_split=loss < minima[m_idx]["loss"] - SPURIOUS_LOSS))
        for entry in minima:
            entry["descent_points"] = _points(d, {e["point"] for e in entry["descents"]})
    return minima


def _end_outcomes(s):
    """Per start of scan `s`: "global", "spurious-minimum", "saddle" or "other" (no
    certified critical point, or one the scan could not classify as either)."""
    spurious = {p.id for p in s.spurious_minima}
    labels = []
    for i in s.outcomes.point:
        p = s.points[i] if i >= 0 else None
        if p is None or not (p.is_minimum or p.is_saddle):
            labels.append("other")
        elif p.is_saddle:
            labels.append("saddle")
        else:
            labels.append("spurious-minimum" if p.id in spurious else "global")
    return labels


def _certified(s, gtol):
    """Per start of scan `s`: its end is a critical point (|grad F| <= gtol) the scan
    classified as a minimum or a saddle."""
    out = s.outcomes
    return (np.array([kd in _MINIMA + _SADDLES for kd in out.kind], dtype=bool)
            & (out.grad_norm <= gtol) & (out.point >= 0))


def _points(s, ids):
    """The Points of scan `s` with the given ids, as records."""
    spurious = {p.id for p in s.spurious_minima}
    out = []
    for i in sorted(i for i in ids if i >= 0):
        p, c = s.points[i], s.points[i].classification
        out.append(dict(
            id=p.id, kind=p.kind, loss=p.loss, lambda_min=c.lambda_min, index=c.index,
            nullity=c.nullity, manifold_nullity=c.manifold_nullity, grad_norm=c.grad_norm,
            is_global=c.is_global, spurious=p.id in spurious, dimension=p.dimension,
            n_members=p.n_members, basin_count=p.basin_count, found_by=p.found_by))
    return out


def _split_record(model, big, p, W, i, alpha, lam_M, cfg, vector=True):
    W1 = split_neuron(W, i, alpha)
    x1 = big.flatten(W1)
    gnorm = float(np.linalg.norm(big.grad(x1)))
    polished = False
    if gnorm > cfg.gtol:
        # the split's gradient is the minimum's with the split neuron's counted twice, so a
        # minimum certified just below gtol can split just above it.  The split lies on a
        # curve of critical points (its Hessian is singular along it): Newton-MR, not Newton.
        r = ls.find_critical_point(big, x1, method="newton-mr", gtol=cfg.gtol)
        x1, gnorm, polished = r.x, float(r.grad_norm), True
    c = ls.classify(big, x1, gtol=cfg.gtol)
    v_min = np.linalg.eigh(big.hess(x1))[1][:, 0] if vector else None
    rec = dict(neuron=int(i), alpha=float(alpha), loss=c.loss, loss_change=c.loss - p.loss,
               grad_norm=gnorm, polished=polished, kind=c.kind, index=c.index,
               nullity=c.nullity, lambda_min=c.lambda_min,
               bound=float(lam_M[i] / (2 * alpha * (1 - alpha))))
    return rec, x1, v_min


# ---- 3. k = n + 1 from random starts -------------------------------------------------------

def scan_k_equals_n_plus_1(n, cfg, out_dir, progress):
    """landscape.scan of V = I_n with n + 1 students, step 5/(n + 1); the store
    out_dir/n<n>-k<n+1>-<starts>.db resumes.  Every end is certified and classified by the
    scan, which lists the continuum of split global minima as one point."""
    model = ls.ReluTeacherStudent(teacher=np.eye(n), n_students=n + 1)
    store = Path(out_dir) / f"n{n}-k{n + 1}-{cfg.plus_starts}.db"
    t = time.perf_counter()
    s = ls.scan(model, cfg.plus_starts, rng=cfg.seed, lr=5.0 / (n + 1), gtol=cfg.gtol,
                store=store, progress=progress)
    seconds = time.perf_counter() - t
    with ls.Store.open(store) as st:
        compute_seconds = st.wall_seconds
    out, outcome, certified = s.outcomes, _end_outcomes(s), _certified(s, cfg.gtol)
    counts = {o: outcome.count(o) for o in ("global", "spurious-minimum", "saddle", "other")}
    glob = [p for p in s.minima if p.classification.is_global]
    uncertified = [dict(start=int(out.start[i]), kind=out.kind[i], loss=float(out.loss[i]),
                        grad_norm=float(out.grad_norm[i]), status=int(out.status[i]),
                        message=out.message[i]) for i in np.flatnonzero(~certified)]
    return dict(
        n=n, k=n + 1, n_starts=s.n_starts, lr=5.0 / (n + 1), store=store.name, counts=counts,
        spurious_fraction=s.spurious_fraction, spurious_count=s.spurious_count,
        spurious_interval=[float(v) for v in s.spurious_interval],
        n_certified_ends=int(certified.sum()), uncertified_ends=uncertified,
        end_kinds={str(kd): int(c) for kd, c in zip(*np.unique(out.kind, return_counts=True))},
        max_grad_norm=float(np.nanmax(out.grad_norm)),
        global_points=_points(s, [p.id for p in glob]),
        spurious_minima=_points(s, [p.id for p in s.spurious_minima]),
        n_spurious_minima=len(s.spurious_minima),
        saddles=_points(s, [p.id for p in s.saddles]),
        n_points=len(s.points), seconds=seconds, compute_seconds=compute_seconds)


# ---- 4. local geometry at the global minimum ------------------------------------------------

def convexity_study(n, cfg):
    """k = n at W = I and k = n + 1 at the split global minimum: direction-wise tests."""
    radii = np.array(cfg.convexity_radii)
    out = dict(n=n, radii=radii.tolist())
    # k = n: strongly convex
    m = ls.ReluTeacherStudent(teacher=np.eye(n), n_students=n)
    x = m.flatten(np.eye(n))
    c = ls.classify(m, x, gtol=cfg.gtol)
    U = ls.random_directions(m, cfg.n_directions, rng=cfg.seed)
    lc = ls.local_convexity(m, x, U, radii, lambda_min=True)
    op = ls.one_point_strong_convexity(m, x, U, radii)
    pl = ls.pl_condition(m, U, radii, x_star=x)
    out["k_equals_n"] = dict(
        kind=c.kind, lambda_min=c.lambda_min, reference=LAMBDA_MIN_GLOBAL,
        lambda_min_error=abs(c.lambda_min - LAMBDA_MIN_GLOBAL),
        min_lambda_min_per_radius=np.nanmin(lc.lambda_min, axis=0).tolist(),
        opsc_fraction=op.fraction, opsc_min=_finite(np.min, op.constants),
        opsc_exponent_median=_median(op.exponents),
        pl_fraction=pl.fraction, pl_min=_finite(np.min, pl.constants),
        pl_exponent_median=_median(pl.exponents))
    # k = n + 1: the split global minimum (v_1/2, v_1/2, v_2, ..., v_n)
    big = ls.ReluTeacherStudent(teacher=np.eye(n), n_students=n + 1)
    V = np.eye(n)
    x_star = big.flatten(np.vstack([V[0] / 2, V[0] / 2, V[1:]]))
    spec = ls.hessian_spectrum(big, x_star)
    U = ls.random_directions(big, cfg.n_directions, rng=cfg.seed)
    R = ls.random_directions(big, cfg.n_rotations, rng=cfg.seed + 1, kind="split-rotation",
                             x=x_star)
    project = split_projection(big, x_star, 0, 1)
    lcU = ls.local_convexity(big, x_star, U, radii, lambda_min=True)
    lcR = ls.local_convexity(big, x_star, R, radii, lambda_min=True)
    neg = lcU.lambda_min < -NEGATIVE_EIGENVALUE
    min_lam = np.nanmin(lcU.lambda_min, axis=0)
    opsc = {}
    for label, ref in (("x_star", None), ("projection", project)):
        per_mu = []
        for mu in cfg.opsc_thresholds:
            t = ls.one_point_strong_convexity(big, x_star, U, radii, reference=ref, threshold=mu)
            passed = t.constants >= mu
            per_mu.append(dict(
                threshold=mu, fraction=t.fraction, interval=[float(v) for v in t.fraction_interval],
                per_radius=passed.mean(axis=0).tolist(),
                per_radius_interval=[_interval(int(c), passed.shape[0])
                                     for c in passed.sum(axis=0)],
                exponent_median=_median(t.exponents),
                min_constant=_finite(np.min, t.constants)))
        opsc[label] = per_mu
    opR = ls.one_point_strong_convexity(big, x_star, R, radii)
    opRp = ls.one_point_strong_convexity(big, x_star, R, radii, reference=project)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ls.LandscapeWarning)
        plU = ls.pl_condition(big, U, radii, x_star=x_star)
        plR = ls.pl_condition(big, R, radii, x_star=x_star)
    pl_warnings = [str(w.message) for w in caught]

    def rotation_summary(t):
        return dict(exponents=t.exponents.tolist(),
                    exponent_median=_median(t.exponents),
                    exponent_min=_finite(np.min, t.exponents),
                    exponent_max=_finite(np.max, t.exponents),
                    median_constants=[_median(c) for c in t.constants.T],
                    worst_constants=t.worst_constants.tolist(),
                    fit=_fit_loglog(radii, [_median(c) for c in t.constants.T]))

    fit_neg = _fit_loglog(radii, -min_lam) if np.all(min_lam < 0) else None
    out["k_equals_n_plus_1"] = dict(
        loss=float(big.loss(x_star)), grad_norm=float(np.linalg.norm(big.grad(x_star))),
        index=spec.n_negative, n_zero=spec.n_zero, n_positive=spec.n_positive,
        lambda_min=spec.lambda_min, tau=spec.tau,
        negative_fraction_per_radius=neg.mean(axis=0).tolist(),
        negative_interval_per_radius=[_interval(int(c), neg.shape[0]) for c in neg.sum(axis=0)],
        min_lambda_min_per_radius=min_lam.tolist(), negative_eigenvalue_fit=fit_neg,
        curvature_along_direction_min=_finite(np.min, lcU.constants),
        rotation_curvature=rotation_summary(lcR),
        rotation_lambda_min_min=float(np.nanmin(lcR.lambda_min)),
        opsc_uniform=opsc, opsc_rotation=rotation_summary(opR),
        opsc_rotation_projection=rotation_summary(opRp),
        pl_uniform=dict(fraction=plU.fraction, interval=[float(v) for v in plU.fraction_interval],
                        exponent_median=_median(plU.exponents),
                        min_constant=_finite(np.min, plU.constants)),
        pl_rotation=rotation_summary(plR), pl_undefined=plU.n_undefined + plR.n_undefined,
        pl_warnings=pl_warnings)
    return out


def _finite(fn, a):
    """fn over the finite entries of a (None if there are none)."""
    a = np.asarray(a, dtype=float)
    a = a[np.isfinite(a)]
    return float(fn(a)) if a.size else None


def _median(a):
    return _finite(np.median, a)


def _fit_loglog(x, y):
    """Least-squares slope and intercept of log y against log x (y > 0), with R^2."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    A = np.column_stack([lx, np.ones_like(lx)])
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    resid = ly - A @ coef
    ss = float(((ly - ly.mean()) ** 2).sum())
    return dict(exponent=float(coef[0]), prefactor=float(np.exp(coef[1])),
                r2=float(1 - (resid @ resid) / ss) if ss > 0 else 1.0)


# ---- 5. the published protocol, timed --------------------------------------------------------

def _load_protocol():
    """benchmarks/protocol.py of the checkout, or None (an installed package has no benchmarks)."""
    if not PROTOCOL_FILE.is_file():
        return None
    saved = list(sys.path)
    try:
        spec = importlib.util.spec_from_file_location("safran2021_protocol", PROTOCOL_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


def time_protocol(proto, k, s, cfg):
    """The published protocol (plain batched GD to |grad F| <= 1e-12) from the scan's first
    `protocol_starts` starts, and its agreement with the scan (same final loss within 1e-9)."""
    model = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    N = cfg.protocol_starts
    X0 = initial_points(model, N, cfg.seed)
    t = time.perf_counter()
    loss, nit = proto.protocol(X0, k, 5.0 / k, cfg.protocol_maxiter)
    seconds = time.perf_counter() - t
    done = nit < cfg.protocol_maxiter
    agree = np.abs(loss - s.outcomes.loss[:N]) <= 1e-9
    return dict(k=k, n_starts=N, seconds=seconds, converged=int(done.sum()),
                iterations_total=int(nit.sum()), iterations_max=int(nit.max()),
                agreement=float(agree.mean()),
                spurious_fraction=float(np.mean(loss[done] > 1e-9)) if done.any() else None)


def _benchmark_reference():
    if not BENCHMARK_FILE.is_file():
        return None
    with open(BENCHMARK_FILE, encoding="utf-8") as fh:
        data = json.load(fh)
    return dict(file="benchmarks/results/scan.json", date=data.get("date"),
                command=data.get("command"), machine=data.get("machine"),
                settings=data.get("settings"),
                rows=[dict(k=r["k"], n_starts=r["n_starts"],
                           spurious_fraction=r["spurious_fraction"], minima=r["minima"],
                           scan_seconds=r["scan_seconds"], protocol_seconds=r["protocol_seconds"])
                      for r in data.get("rows", [])])


# ---- the study ----------------------------------------------------------------------------

def run(out_dir, *, quick=False, progress=True):
    """Run the study; write out_dir/results.json, out_dir/index.html, figures, minima.npz.

    Returns
    -------
    dict
        The results (also in ``results.json``).
    """
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = Config.load(quick)
    compute, this_run, cached_stages = {}, {}, []
    common = dict(seed=cfg.seed, gtol=cfg.gtol, driver=DRIVER, version=ls.__version__)

    def stage(name, items, key, label, make, seconds=None):
        """Run (or read from the cache) one part per item; time the stage (``seconds(res)``:
        the compute time a part reports itself)."""
        t = time.perf_counter()
        out, total = [], 0.0
        for item in tqdm(items, desc=name, disable=not progress):
            settings, fn = make(item)
            res, hit, sec = _cached(out_dir, key(item), settings, fn)
            out.append(res)
            total += sec if seconds is None else seconds(res)
            if hit:
                cached_stages.append(f"{name}: {label} = {item}")
        compute[name] = total
        this_run[name] = time.perf_counter() - t
        return out

    # 1. k = n: landscape.scan, resumable from its stores
    t = time.perf_counter()
    rows, scans = [], {}
    for k in tqdm(cfg.ks, desc="k = n scans", disable=not progress):
        row, s = scan_k_equals_n(k, cfg, out_dir, progress)
        rows.append(row)
        scans[k] = s
    compute["k = n scans"] = sum(row["compute_seconds"] for row in rows)
    this_run["k = n scans"] = time.perf_counter() - t
    _save_minima(out_dir / "minima.npz", scans)

    # 2. splits of every spurious minimum
    splits = stage("splits", cfg.ks, lambda k: f"split-k{k}-{cfg.starts}", "k", lambda k: (
        dict(common, k=k, starts=cfg.starts, alphas=cfg.split_alphas, records=RECORDS,
             perturbation=cfg.perturbation,
             minima=[[p.id, p.loss] for p in scans[k].spurious_minima]),
        lambda: split_study(k, scans[k], cfg, np.random.default_rng([cfg.seed, k]))))
    splits = [e for part in splits for e in part]

    # 3. k = n + 1 from random starts
    # (a JSON cache over a scan store: the cache skips a finished n, the store resumes an
    # interrupted one, and the stage's compute time is the store's)
    plus = stage("k = n + 1 scans", cfg.plus_ns, lambda n: f"plus-n{n}-{cfg.plus_starts}",
                 "n", lambda n: (dict(common, n=n, starts=cfg.plus_starts, records=RECORDS),
                                 lambda: scan_k_equals_n_plus_1(n, cfg, out_dir, progress)),
                 seconds=lambda res: res["compute_seconds"])

    # 4. local geometry at the global minimum
    convexity = stage("convexity", cfg.convexity_ns, lambda n: f"convexity-n{n}", "n",
                      lambda n: (dict(common, n=n, radii=cfg.convexity_radii,
                                      mu=cfg.opsc_thresholds, n_directions=cfg.n_directions,
                                      n_rotations=cfg.n_rotations),
                                 lambda: convexity_study(n, cfg)))

    # 5. the published protocol, on a subset of k
    proto = _load_protocol()
    protocol_rows = [] if proto is None else stage(
        "published protocol", cfg.protocol_ks,
        lambda k: f"protocol-k{k}-{cfg.protocol_starts}", "k",
        lambda k: (dict(common, k=k, starts=cfg.protocol_starts, maxiter=cfg.protocol_maxiter),
                   lambda: time_protocol(proto, k, scans[k], cfg)))

    results = dict(
        study="safran2021", title=TITLE, paper=PAPER, quick=bool(quick), config=cfg.to_dict(),
        machine=dict(platform=platform.platform(), cpus=os.cpu_count(),
                     python=platform.python_version(), numpy=np.__version__,
                     landscape=ls.__version__, load_average=list(os.getloadavg()),
                     openblas_threads=os.environ.get("OPENBLAS_NUM_THREADS")),
        k_equals_n=rows, splits=splits, k_equals_n_plus_1=plus, convexity=convexity,
        protocol=protocol_rows, benchmark_reference=_benchmark_reference(),
        cached_stages=cached_stages)
    results["technical"] = _technical(splits)
    results["summary"] = _summary(results)
    t = time.perf_counter()
    figures = _figures(out_dir, results)
    results["figures"] = sorted(f.path for f in figures.values())
    this_run["figures"] = compute["figures"] = time.perf_counter() - t
    results["wall_seconds"] = time.perf_counter() - t_start
    results["timings"] = dict(
        stages=compute, this_run=this_run, wall_seconds=results["wall_seconds"],
        compute_seconds=sum(compute.values()))
    results = json.loads(json.dumps(json_ready(results)))
    _page(out_dir, results, figures)
    write_json(out_dir / "results.json", results)
    return results


def _save_minima(path, scans):
    """Every distinct minimum of the k = n scans as W (k, k), named k<k>_p<id> (no pickles)."""
    arrays = {}
    for k, s in scans.items():
        for p in s.minima:
            arrays[f"k{k}_p{p.id}"] = p.x.reshape(k, k)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _technical(splits):
    """Per k: the technical quantities over the distinct spurious minima."""
    by_k = {}
    for e in splits:
        by_k.setdefault(e["k"], []).append(e)
    out = []
    for k, es in sorted(by_k.items()):
        out.append(dict(
            k=k, n_spurious_minima=len(es),
            lambda_min_M_min=min(e["lambda_min_M_min"] for e in es),
            lambda_min_M_max=max(e["lambda_min_M_max"] for e in es),
            all_neurons_negative=all(e["n_negative_M"] == k for e in es),
            sum_norms_min=min(e["sum_norms"] for e in es),
            sum_norms_max=max(e["sum_norms"] for e in es),
            deficit_min=min(k - e["sum_norms"] for e in es),
            deficit_max=max(k - e["sum_norms"] for e in es)))
    return out


def _summary(r):
    rows = {row["k"]: row for row in r["k_equals_n"]}
    plus = {row["n"]: row for row in r["k_equals_n_plus_1"]}
    all_splits = [s for e in r["splits"] for s in e["splits"] + e["all_neuron_splits"]]
    descents = [d for e in r["splits"] for d in e["descents"]]
    rot = [c["k_equals_n_plus_1"]["opsc_rotation"]["exponent_median"] for c in r["convexity"]]
    return dict(
        spurious_fraction={k: row["spurious_fraction"] for k, row in rows.items()},
        spurious_fraction_plus={n: row["spurious_fraction"] for n, row in plus.items()},
        distinct_minima={k: row["n_minima"] for k, row in rows.items()},
        all_minima_certified=all(row["all_minima_certified"] for row in rows.values()),
        n_spurious_minima_split=len(r["splits"]), n_splits=len(all_splits),
        all_splits_strict_saddles=bool(all_splits) and all(
            s["kind"] == "strict-saddle" for s in all_splits),
        max_split_grad_norm=max((s["grad_norm"] for s in all_splits), default=None),
        max_split_loss_change=max((abs(s["loss_change"]) for s in all_splits), default=None),
        split_descents=len(descents),
        split_descent_outcomes={o: sum(d["outcome"] == o for d in descents)
                                for o in sorted({d["outcome"] for d in descents})},
        split_descents_by_k=_descents_by_k(r["splits"]),
        opsc_rotation_exponents=rot,
        lambda_min_k_equals_n=[c["k_equals_n"]["lambda_min"] for c in r["convexity"]])


def _descents_by_k(splits):
    """Per k: where the descents off its splits went (one scan per k, so point ids of the
    same k name the same point)."""
    out, reached = {}, {}
    for e in splits:
        row = out.setdefault(e["k"], dict(k=e["k"], descents=0, outcomes={}, all_below=True,
                                          all_certified=True, max_grad_norm=0.0))
        for d in e["descents"]:
            row["descents"] += 1
            row["outcomes"][d["outcome"]] = row["outcomes"].get(d["outcome"], 0) + 1
            row["all_below"] &= bool(d["below_split"])
            row["all_certified"] &= bool(d["certified"])
            row["max_grad_norm"] = max(row["max_grad_norm"], d["grad_norm"])
            if d["outcome"] == "spurious-minimum":
                reached.setdefault(e["k"], set()).add(d["point"])
    for k, row in out.items():
        row["distinct_spurious_minima"] = len(reached.get(k, ()))
    return [out[k] for k in sorted(out)]


# ---- figures and page ------------------------------------------------------------------------

def _figures(out_dir, r):
    figs = {}
    rows, plus = r["k_equals_n"], r["k_equals_n_plus_1"]

    fig, ax = new_figure(6.4, 4.0)
    for data, key, label, fmt in ((rows, "k", "k = n", "o-"),
                                  (plus, "n", "k = n + 1", "s--")):
        if not data:
            continue
        x = np.array([row[key] for row in data])
        f = np.array([row["spurious_fraction"] for row in data])
        lo = np.array([row["spurious_interval"][0] for row in data])
        hi = np.array([row["spurious_interval"][1] for row in data])
        ax.errorbar(x, f, yerr=[np.maximum(f - lo, 0), np.maximum(hi - f, 0)], fmt=fmt,
                    capsize=3, label=f"{label} ({data[0]['n_starts']} starts per n)")
    ax.set_xlabel("teacher neurons n (= input dimension d)")
    ax.set_ylabel("fraction of starts at a spurious minimum")
    ax.set_ylim(-0.02, 1.0)
    ax.grid(alpha=0.3)
    ax.legend()
    figs["fraction"] = save_figure(fig, out_dir, "fraction.png", caption=(
        "Fraction of gradient-descent starts that end at a certified spurious minimum, with "
        "95% Wilson intervals: k = n students (landscape.scan) and k = n + 1 students."))

    fig, ax = new_figure(6.4, 4.0)
    for row in rows:
        for m in row["minima"]:
            size = 12 + 150 * m["basin_fraction"]
            ax.scatter(row["k"], m["loss"], s=size, c="C3" if m["spurious"] else "C0",
                       alpha=0.7, edgecolors="none")
    ax.set_xlabel("k = n")
    ax.set_ylabel("F at the minimum")
    ax.grid(alpha=0.3)
    ax.set_title("distinct minima modulo symmetry (blue: global; area ~ basin)", fontsize=9)
    figs["minima"] = save_figure(fig, out_dir, "minima.png", caption=(
        "Every distinct minimum of each k = n scan (modulo joint permutations of neurons and "
        "coordinates): its loss, marker area growing with its basin fraction."))

    fig, ax = new_figure(6.4, 4.0)
    pts = [(s["bound"], s["lambda_min"], s["alpha"]) for e in r["splits"] for s in e["splits"]
           if s["lambda_min"] is not None]         # None: the split was not certified critical
    if pts:
        b, lam, alpha = (np.array(v) for v in zip(*pts))
        for a, mk in zip(sorted(set(alpha), reverse=True), "osd^v"):
            sel = alpha == a
            ax.scatter(b[sel], lam[sel], marker=mk, label=f"alpha = {a:g}", alpha=0.8)
        lim = [min(b.min(), lam.min()) * 1.1, 0]
        ax.plot(lim, lim, "k:", lw=1, label="lambda_min = bound")
        ax.legend()
    ax.set_xlabel("lambda_min(M_i) / (2 alpha (1 - alpha))")
    ax.set_ylabel("lambda_min of the split point (k + 1)")
    ax.grid(alpha=0.3)
    figs["split"] = save_figure(fig, out_dir, "split.png", caption=(
        "Each spurious minimum of k = n split along its neuron with the most negative "
        "lambda_min(M_i): the split's smallest Hessian eigenvalue against the bound "
        "lambda_min(M_i) / (2 alpha (1 - alpha)) (equality on the dotted line)."))

    fig, axes = new_figure(9.0, 3.6, ncols=2)
    for e in r["splits"]:
        axes[0].plot([e["k"], e["k"]], [e["lambda_min_M_min"], e["lambda_min_M_max"]], "C3-",
                     alpha=0.6)
        axes[0].scatter([e["k"]], [e["lambda_min_M_min"]], c="C3", s=12)
        axes[1].scatter([e["k"]], [e["k"] - e["sum_norms"]], c="C3", s=14)
    axes[0].axhline(0, color="k", lw=0.8)
    axes[0].set_xlabel("k = n")
    axes[0].set_ylabel("lambda_min(H_ii - I/2), range over neurons i")
    axes[1].set_xlabel("k = n")
    axes[1].set_ylabel("n - sum_i |w_i|")
    for ax in axes:
        ax.grid(alpha=0.3)
    figs["technical"] = save_figure(fig, out_dir, "technical.png", caption=(
        "Technical quantities at every distinct spurious minimum: left, the range over neurons "
        "of lambda_min of the diagonal Hessian block without its 1/2 I term (all < 0: every "
        "neuron's split is a saddle); right, the deficit of the sum of neuron norms from the "
        "teacher's sum n (0 at the global minimum)."))

    fig, axes = new_figure(10.0, 3.8, ncols=2)
    for c, col in zip(r["convexity"], ("C0", "C1", "C2", "C3")):
        radii = np.array(c["radii"])
        big = c["k_equals_n_plus_1"]
        for o, ls_ in zip(big["opsc_uniform"]["x_star"], ("-", "--")):
            axes[0].semilogx(radii, o["per_radius"], ls_, color=col,
                             label=f"n = {c['n']}: OPSC, mu = {o['threshold']:g}")
        axes[0].semilogx(radii, big["negative_fraction_per_radius"], ":", color=col,
                         label=f"n = {c['n']}: lambda_min(H(y)) < 0")
        rot = big["opsc_rotation"]
        axes[1].loglog(radii, rot["median_constants"], "o-", color=col,
                       label=f"n = {c['n']}: OPSC, p = {rot['exponent_median']:.3f}")
        pl = big["pl_rotation"]
        axes[1].loglog(radii, pl["median_constants"], "s--", color=col,
                       label=f"n = {c['n']}: PL, p = {pl['exponent_median']:.3f}")
        cu = big["rotation_curvature"]
        axes[1].loglog(radii, cu["median_constants"], "^:", color=col,
                       label=f"n = {c['n']}: u'H(y)u, p = {cu['exponent_median']:.3f}")
    axes[0].set_xlabel("radius r")
    axes[0].set_ylabel("fraction of random directions")
    axes[0].set_ylim(-0.03, 1.05)
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("radius r")
    axes[1].set_ylabel("constant along a split rotation (median)")
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
    figs["convexity"] = save_figure(fig, out_dir, "convexity.png", caption=(
        "k = n + 1 at the split global minimum x* = (v_1/2, v_1/2, v_2, ..., v_n), at "
        "y = x* + r u.  Left: fraction of uniformly random directions u in which the OPSC ratio "
        "<grad F(y), y - x*>/|y - x*|^2 is >= mu, and in which H(y) has a negative eigenvalue. "
        "Right: the constants along split rotations on log-log axes with the fitted exponent p "
        "(p = 1: they vanish linearly, the condition fails locally).  The OPSC lines of the "
        "left panel lie on top of each other at 1.0, and the constants along rotations do not "
        "depend on n, so the right panel's curves for different n coincide."))

    if r["protocol"]:
        fig, ax = new_figure(6.4, 4.0)
        ks = [p["k"] for p in r["protocol"]]
        scan_s = {row["k"]: row["compute_seconds"] * p["n_starts"] / row["n_starts"]
                  for row in rows for p in r["protocol"] if p["k"] == row["k"]}
        ax.semilogy(ks, [p["seconds"] for p in r["protocol"]], "o-",
                    label="published protocol (GD to 1e-12)")
        ax.semilogy(ks, [scan_s[k] for k in ks], "s-",
                    label="landscape.scan (certified, classified, deduplicated)")
        ax.set_xlabel("k = n")
        ax.set_ylabel(f"seconds for {r['protocol'][0]['n_starts']} starts")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
        figs["timings"] = save_figure(fig, out_dir, "timings.png", caption=(
            "Wall time on this machine for the same starts: the published protocol as a batched "
            "numpy program (benchmarks/protocol.py) and landscape.scan."))
    return figs


def _fmt_interval(iv):
    return f"[{iv[0]:.1%}, {iv[1]:.1%}]"


def _page(out_dir, r, figs):
    cfg = r["config"]
    rows, plus = r["k_equals_n"], r["k_equals_n_plus_1"]
    plus_by_n = {p["n"]: p for p in plus}
    sm = r["summary"]
    sections = []

    sections.append(Section(title="Setting and protocol", id="setting", text=[
        "Teacher V = I_n (input dimension d = n), student W with k rows, "
        "F(W) = 1/2 E[(sum_i relu(w_i.x) - sum_j relu(v_j.x))^2], x ~ N(0, I).  The published "
        "protocol: gradient descent with step 5/k from i.i.d. N(0, 1/k) entries until "
        "|grad F| <= 1e-12, points identified up to permutations, every Hessian spectrum "
        "computed.",
        f"Here: {cfg['starts']} starts per k = n (seed {cfg['seed']}; start i draws N(0, 1/d) "
        "entries from child i of SeedSequence(seed), as landscape.scan does), step 5/k, "
        "landscape.scan: descent, Newton polish of every end to |grad F| <= 1e-12, "
        "classification from the Hessian spectrum, deduplication modulo joint permutations of "
        "neurons and coordinates.  A minimum is spurious when F > 1e-9 (the global value is 0).",
        f"k = n + 1: {cfg['plus_starts']} starts per n, landscape.scan with step 5/(n + 1) "
        "and the same starts convention: every end certified to |grad F| <= 1e-12 and "
        "classified; the continuum of split global minima (a teacher neuron shared by two "
        "collinear students in any proportion) is one point of the scan.",
        f"Mode: {'quick (CI)' if r['quick'] else 'full'}."]))

    table = []
    for row in rows:
        p = plus_by_n.get(row["k"])
        table.append([row["k"], row["n_starts"],
                      f"{row['spurious_fraction']:.1%} {_fmt_interval(row['spurious_interval'])}",
                      row["n_minima"], row["n_spurious_minima"], row["n_saddles"],
                      f"{row['n_certified_ends']}/{row['n_starts']}",
                      f"{row['max_grad_norm']:.1e}",
                      "—" if p is None else
                      f"{p['spurious_fraction']:.1%} {_fmt_interval(p['spurious_interval'])}"])
    for p in plus:
        if p["n"] not in {row["k"] for row in rows}:
            table.append([p["n"], "—", "—", "—", "—", "—", "—", "—",
                          f"{p['spurious_fraction']:.1%} {_fmt_interval(p['spurious_interval'])}"])
    sections.append(Section(title="Spurious minima are common (k = n)", id="fraction", text=[
        "Fraction of starts ending at a certified spurious minimum, 95% Wilson interval.  "
        "'certified ends': starts whose end point is a classified critical point with "
        "|grad F| <= 1e-12.  The last column is item 3 (k = n + 1 students, same n)."],
        tables=[Table(columns=["k = n", "starts", "spurious [95% CI]", "distinct minima",
                               "spurious minima", "saddles found", "certified ends",
                               "max |grad F|", "k = n + 1: spurious [95% CI]"],
                      rows=table)],
        figures=[figs["fraction"]]))

    mrows = []
    for row in rows:
        for m in row["minima"]:
            mrows.append([row["k"], m["id"], _loss(m["loss"]), f"{m['lambda_min']:.5f}",
                          m["kind"], f"{m['grad_norm']:.1e}", "no" if m["spurious"] else "yes",
                          f"{m['basin_count']} ({m['basin_fraction']:.1%})", m["found_by"],
                          f"{m['sum_norms']:.5f}"])
    sections.append(Section(title="Distinct minima per k", id="minima", text=[
        "Every distinct minimum (modulo symmetry) of each k = n scan.  All are strict minima "
        f"with |grad F| <= 1e-12: {'yes' if sm['all_minima_certified'] else 'NO'}.  'found by "
        "saddle-descent': reached only by descending off a saddle the scan found (basin 0 "
        "among the starts)."],
        tables=[Table(columns=["k", "id", "F", "lambda_min", "kind", "|grad F|", "global",
                               "basin", "found by", "sum |w_i|"], rows=mrows)],
        figures=[figs["minima"]]))

    srows = []
    for e in r["splits"]:
        for s in e["splits"]:
            ds = [d for d in e["descents"] if d["alpha"] == s["alpha"]]
            where = "; ".join(f"{d['perturbation']}: {d['outcome']} (F = {d['loss']:.2e}"
                              + ("" if d["certified"] else
                                 f", {d['kind']}, |grad F| = {d['grad_norm']:.1e}") + ")"
                              for d in ds)
            srows.append([e["k"], e["id"], f"{e['loss']:.6f}", s["neuron"], s["alpha"],
                          f"{s['loss_change']:.1e}", f"{s['grad_norm']:.1e}", s["kind"],
                          s["index"], _f4(s['lambda_min']), f"{s['bound']:.4f}", where])
    all_half = [s for e in r["splits"] for s in e["all_neuron_splits"]]
    outcomes = ", ".join(f"{v} {k}" for k, v in sm["split_descent_outcomes"].items())
    split_text = [
        f"{sm['n_spurious_minima_split']} distinct spurious minima of k = n split into the "
        f"k + 1 student ({sm['n_splits']} split points: every neuron at alpha = 1/2, and the "
        "neuron with the most negative lambda_min(M_i) at every alpha).  All strict saddles: "
        f"{'yes' if sm['all_splits_strict_saddles'] else 'NO'}; largest |grad F| after the "
        f"split {_g(sm['max_split_grad_norm'])}, largest |F change| "
        f"{_g(sm['max_split_loss_change'])} (no polishing needed).",
        f"Every neuron split at alpha = 1/2: {len(all_half)} points, kinds "
        f"{sorted({s['kind'] for s in all_half})}.",
        f"Descents in the k + 1 model from the split points perturbed by "
        f"{r['config']['perturbation']:g} (+- the most negative curvature direction, and a "
        f"random direction): {outcomes}."]
    sections.append(Section(
        title="One neuron more: every spurious minimum becomes a saddle", id="splits",
        text=split_text,
        tables=[Table(columns=["k", "descents", "to the global minimum",
                               "to a spurious minimum of k + 1 (distinct)", "saddle or other",
                               "all certified", "max |grad F|", "all end below the split's F"],
                      rows=[[d["k"], d["descents"], d["outcomes"].get("global", 0),
                             f"{d['outcomes'].get('spurious-minimum', 0)} "
                             f"({d['distinct_spurious_minima']})",
                             d["outcomes"].get("other", 0) + d["outcomes"].get("saddle", 0),
                             "yes" if d["all_certified"] else "NO",
                             f"{d['max_grad_norm']:.1e}",
                             "yes" if d["all_below"] else "NO"]
                            for d in sm["split_descents_by_k"]],
                      caption="Where gradient descent in the k + 1 model goes from the split "
                              "saddles, perturbed (landscape.scan from those starts: every end "
                              "certified and classified)."),
                Table(columns=["k", "minimum", "F", "neuron", "alpha", "F change",
                               "|grad F|", "kind (k + 1)", "index", "lambda_min",
                               "bound", "perturbed descent went to"], rows=srows)],
        figures=[figs["split"]]))

    trows = [[t["k"], t["n_spurious_minima"], f"{t['lambda_min_M_min']:.4f}",
              f"{t['lambda_min_M_max']:.4f}", "yes" if t["all_neurons_negative"] else "no",
              f"{t['sum_norms_min']:.5f} – {t['sum_norms_max']:.5f}",
              f"{t['deficit_min']:.2e} – {t['deficit_max']:.2e}"] for t in r["technical"]]
    sections.append(Section(title="Technical quantities", id="technical", text=[
        "M_i = H_ii - I/2, the diagonal Hessian block of neuron i without its 1/2 I term "
        "(zero at the global minimum W = V).  On the pair of halves of a split neuron the "
        "direction (u, -u) has curvature u^T M_i u / (2 alpha (1 - alpha)) per unit length, so "
        "lambda_min(M_i) < 0 for some i makes the split a strict saddle."],
        tables=[Table(columns=["k", "spurious minima", "min_i lambda_min(M_i) (lowest)",
                               "max_i lambda_min(M_i) (highest)", "every neuron < 0",
                               "sum_i |w_i|", "n - sum_i |w_i|"], rows=trows)],
        figures=[figs["technical"]]))

    prows = []
    for p in plus:
        sp = "; ".join(f"F = {m['loss']:.5f} ({m['kind']}, lambda_min {m['lambda_min']:.2g}) "
                       f"×{m['basin_count']}" for m in p["spurious_minima"]) or "—"
        gl = "; ".join(f"{g['kind']}, dimension {g['dimension']}, {g['n_members']} members"
                       for g in p["global_points"]) or "NONE"
        prows.append([p["n"], p["k"], p["n_starts"],
                      f"{p['spurious_fraction']:.1%} {_fmt_interval(p['spurious_interval'])}",
                      p["counts"]["global"], p["counts"]["spurious-minimum"],
                      p["counts"]["saddle"], p["counts"]["other"],
                      f"{p['n_certified_ends']}/{p['n_starts']}", f"{p['max_grad_norm']:.1e}",
                      gl, sp, f"{p['compute_seconds']:.1f}"])
    sections.append(Section(title="k = n + 1 from random starts", id="plus", text=[
        "landscape.scan with n + 1 students (step 5/(n + 1), N(0, 1/d) starts): every end "
        "polished to |grad F| <= 1e-12, classified from its Hessian (with the zero modes of "
        "the split manifold), and deduplicated by a merged-neuron key modulo symmetry, so the "
        "continuum of split global minima is one point (its dimension, and how many distinct "
        "members the starts reached).  'certified ends': ends at a classified minimum or "
        "saddle with |grad F| <= 1e-12.  Distinct spurious minima: F, kind, lambda_min, "
        "basin count."] + [
        f"n = {p['n']}: start {u['start']} ended {u['kind']} at F = {u['loss']:.9f}, "
        f"|grad F| = {u['grad_norm']:.1e} ({u['message']})."
        for p in plus for u in p["uncertified_ends"]],
        tables=[Table(columns=["n", "k", "starts", "spurious [95% CI]", "global",
                               "spurious", "saddle", "other", "certified ends",
                               "max |grad F|", "global point", "distinct spurious minima",
                               "seconds"], rows=prows)]))

    crows = []
    for c in r["convexity"]:
        a, b = c["k_equals_n"], c["k_equals_n_plus_1"]
        op = b["opsc_uniform"]
        crows.append([c["n"], f"{a['lambda_min']:.12f}", f"{a['lambda_min_error']:.1e}",
                      f"{min(a['min_lambda_min_per_radius']):.4f}",
                      f"{a['opsc_fraction']:.0%}, p = {a['opsc_exponent_median']:.3f}",
                      f"{b['index']}/{b['n_zero']}/{b['n_positive']}",
                      f"{min(b['negative_fraction_per_radius']):.1%} – "
                      f"{max(b['negative_fraction_per_radius']):.1%}",
                      _g(b["negative_eigenvalue_fit"]["exponent"]
                         if b["negative_eigenvalue_fit"] else None),
                      ", ".join(f"mu={o['threshold']:g}: {o['fraction']:.1%} "
                                f"{_fmt_interval(o['interval'])}" for o in op["x_star"]),
                      ", ".join(f"mu={o['threshold']:g}: {o['fraction']:.1%}"
                                for o in op["projection"]),
                      f"{b['opsc_rotation']['exponent_median']:.4f} "
                      f"[{b['opsc_rotation']['exponent_min']:.4f}, "
                      f"{b['opsc_rotation']['exponent_max']:.4f}]",
                      f"{b['pl_rotation']['exponent_median']:.4f}",
                      f"{b['rotation_curvature']['exponent_median']:.4f}"])
    sections.append(Section(title="Local geometry at the global minimum", id="convexity", text=[
        "k = n at W = I: lambda_min of the Hessian against 1/4 - 1/(2 pi) = "
        f"{LAMBDA_MIN_GLOBAL:.12f}, and the smallest lambda_min(H(y)) over y = W + r u for "
        "random unit u and all radii: locally strongly convex.",
        "k = n + 1 at x* = (v_1/2, v_1/2, v_2, ..., v_n): Hessian inertia (negative / zero / "
        "positive), the fraction of random directions u in which H(x* + r u) has a negative "
        "eigenvalue (its most negative value scales as r^p: negative curvature arbitrarily "
        "close to x*, so F is not locally convex), the fraction of random directions in which "
        "OPSC holds with constant mu at every radius (reference x*, or the nearest point of the "
        "curve of split minima), and the exponents of the OPSC, PL and curvature constants "
        "along split rotations (median [min, max] over rotations; p = 1: the constant "
        f"vanishes linearly).  Radii {r['convexity'][0]['radii'] if r['convexity'] else []}."],
        tables=[Table(columns=["n", "k = n: lambda_min", "|error|", "min lambda_min(H(y))",
                               "k = n: OPSC", "k = n + 1: inertia", "lambda_min(H(y)) < 0",
                               "its exponent", "OPSC holds (ref x*)", "OPSC holds (ref curve)",
                               "OPSC exponent (rotation)", "PL exponent (rotation)",
                               "u'H(y)u exponent (rotation)"], rows=crows)],
        figures=[figs["convexity"]]))

    tm = r["timings"]
    trows = [[k, f"{v:.1f}", f"{tm['this_run'].get(k, 0.0):.1f}"] for k, v in tm["stages"].items()]
    trows.append(["total", f"{tm['compute_seconds']:.1f}", f"{tm['wall_seconds']:.1f}"])
    ptab = []
    scan_by_k = {row["k"]: row for row in rows}
    for p in r["protocol"]:
        sr = scan_by_k[p["k"]]
        scan_s = sr["compute_seconds"] * p["n_starts"] / sr["n_starts"]
        ptab.append([p["k"], p["n_starts"], f"{p['seconds']:.1f}", f"{scan_s:.1f}",
                     f"{p['seconds'] / scan_s:.1f}x", f"{p['converged']}/{p['n_starts']}",
                     f"{p['agreement']:.1%}", f"{p['spurious_fraction']:.1%}"])
    ref = r["benchmark_reference"]
    ref_text = "benchmarks/results/scan.json not found."
    if ref:
        ref_text = (f"Reference: {ref['file']} ({ref['date']}, '{ref['command']}') measured the "
                    "scan and the protocol for k = " +
                    ", ".join(str(x["k"]) for x in ref["rows"]) + " with "
                    f"{ref['settings']['n_starts']} starts each: protocol "
                    f"{sum(x['protocol_seconds'] for x in ref['rows']):.0f} s, scan "
                    f"{sum(x['scan_seconds'] for x in ref['rows']):.0f} s in total.")
    m = r["machine"]
    sections.append(Section(title="Timings", id="timings", text=[
        f"Machine: {m['platform']}, {m['cpus']} CPUs, Python {m['python']}, numpy "
        f"{m['numpy']}, OPENBLAS_NUM_THREADS={m['openblas_threads']}, load average at the start "
        f"{m['load_average'][0]:.2f} (the machine is shared).  Compute time of the whole study "
        f"{tm['compute_seconds']:.0f} s; this run {tm['wall_seconds']:.0f} s.  'compute': the "
        "time each stage took when it was computed (scan stores and caches keep it, so it "
        "survives a resumed run); 'this run': wall time of this invocation." +
        (f"  Read from an earlier run's stores and caches: {len(r['cached_stages'])} parts "
         f"({', '.join(r['cached_stages'])})." if r["cached_stages"] else ""),
        "The published protocol (benchmarks/protocol.py: plain batched GD to |grad F| <= 1e-12, "
        f"at most {cfg['protocol_maxiter']} steps) is timed only for k in {cfg['protocol_ks']} "
        "from the scan's first starts; scan seconds are the scan's compute time scaled to the "
        "same number of starts.  'agreement': same final loss as the scan within 1e-9.",
        ref_text],
        tables=[Table(columns=["stage", "compute (s)", "this run (s)"], rows=trows),
                Table(columns=["k", "starts", "protocol (s)", "scan (s)", "protocol / scan",
                               "protocol converged", "agreement", "protocol spurious"],
                      rows=ptab)],
        figures=[figs["timings"]] if "timings" in figs else []))

    sections.append(Section(title="Deviations and notes", id="notes", text=[
        "Initialisation: entries N(0, 1/d) with d = n (the library's Xavier default); for k = n "
        "this is the paper's N(0, 1/k).",
        "k = n + 1 runs on landscape.scan like k = n (until issue 14 it had its own driver, "
        "which stopped a start at the global level F <= 1e-8 and certified a subsample).",
        "The split direction: the neuron with the most negative lambda_min(M_i) at every alpha; "
        "every neuron at alpha = 1/2."]))

    summary = [("mode", "quick" if r["quick"] else "full"), ("seed", cfg["seed"])]
    for row in rows:
        summary.append((f"spurious fraction, k = n = {row['k']}", f"{row['spurious_fraction']:.1%} "
                        f"{_fmt_interval(row['spurious_interval'])}"))
    for p in plus:
        summary.append((f"spurious fraction, n = {p['n']}, k = n + 1",
                        f"{p['spurious_fraction']:.1%} {_fmt_interval(p['spurious_interval'])}"))
    summary.append(("spurious minima split / all splits strict saddles",
                    f"{sm['n_spurious_minima_split']} / "
                    f"{'yes' if sm['all_splits_strict_saddles'] else 'no'}"))
    summary.append(("OPSC exponent along split rotations",
                    ", ".join(f"{p:.4f}" for p in sm["opsc_rotation_exponents"])))
    summary.append(("compute time (s)", f"{r['timings']['compute_seconds']:.0f}"))
    write_page(out_dir, title=TITLE, subtitle=PAPER, sections=sections, summary=summary)


def _loss(v):
    return f"{v:.6f}" if abs(v) > SPURIOUS_LOSS else f"{v:.1e}"


def _g(v):
    return "—" if v is None else f"{v:.3g}"


def _f4(v):
    return "—" if v is None else f"{v:.4f}"
