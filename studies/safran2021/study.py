"""Safran, Yehudai & Shamir (COLT 2021): mild over-parameterization of a shallow ReLU network.

Teacher V = I_n (d = n), k unit-output ReLU students, the population loss F.  On
``landscape.scan`` the study measures (1) for k = n the fraction of starts ending at a spurious
minimum, and every distinct minimum; (2) every spurious minimum split into a critical point of
the k + 1 student (a strict saddle: ``neuron_block_minima``), and where descent goes from it;
(3) k = n + 1 from random starts; (4) the local geometry at the global minimum (strongly convex
for k = n; for k = n + 1 negative curvature arbitrarily close, OPSC and PL constants vanishing
linearly along split rotations); (5) timings, and the published protocol (``ls.descend``).

Run ``landscape study safran2021 [--quick]``; every stage resumes from ``out_dir`` (scan stores
``k<k>-<starts>.db``, ``n<n>-k<n+1>-<starts>.db``; other stages ``cache/*.json``).
"""

import json
import os
import time
import types
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

import landscape as ls
from landscape.machine import machine_record
from landscape.scan import initial_points
from landscape.report import (Section, Table, json_ready, new_figure, save_figure, write_json,
                              write_page)
from landscape.studies import cached, read_config

TITLE = ("Safran et al. 2021: spurious minima of k = n are common, one neuron more turns them "
         "into saddles, and k > n is not locally convex at the global minimum")
PAPER = ("I. Safran, G. Yehudai, O. Shamir, \"The effects of mild over-parameterization on the "
         "optimization landscape of shallow ReLU neural networks\", COLT 2021 (PMLR 134)")

CONFIG_FILE = Path(__file__).with_name("config.toml")

LAMBDA_MIN_GLOBAL = 0.25 - 1.0 / (2.0 * np.pi)   # lambda_min(hess F) at W = V = I (k = n)
SPURIOUS_LOSS = 1e-9        # a minimum with F above this is spurious (F* = 0)
NEGATIVE_EIGENVALUE = 1e-9  # lambda_min(H(y)) below -this: a negative curvature direction
PROTOCOL_GTOL = 1e-12       # the published protocol descends until |grad F| <= this
AGREEMENT = 1e-9            # protocol and scan agree on a start: same final F within this
DRIVER = "landscape.scan"   # descends k = n + 1 and off the splits; part of every cache key
PROTOCOL_DRIVER = "ls.descend"   # runs the published protocol; part of its cache key
RECORDS = 3                 # format of the split and k = n + 1 records (in their cache keys)

_CRITICAL = ("strict-minimum", "degenerate-minimum", "strict-saddle", "non-strict-saddle")

__all__ = ["TITLE", "PAPER", "load_config", "split_neuron", "neuron_block_minima",
           "split_projection", "run"]


def load_config(quick, path=CONFIG_FILE):
    """The settings of one mode (config.toml: [common] and [full] or [quick]) as attributes."""
    cfg = types.SimpleNamespace(**read_config(path, quick))
    if not set(cfg.protocol_ks) <= set(cfg.ks) or cfg.protocol_starts > cfg.starts:
        raise ValueError(f"{path}: protocol_ks {cfg.protocol_ks} must be among ks {cfg.ks} and "
                         f"protocol_starts {cfg.protocol_starts} <= starts {cfg.starts}")
    return cfg


def _model(n, k):
    return ls.ReluTeacherStudent(teacher=np.eye(n), n_students=k)


def split_neuron(W, i, alpha):
    """W (k, d) -> (k + 1, d): neuron i becomes alpha w_i (row i) and (1 - alpha) w_i (last row).

    Both halves point along w_i, so F and grad F are unchanged (a neuron's gradient depends on
    its direction only): a critical point stays one."""
    W = np.asarray(W, dtype=float)
    out = np.vstack([W, (1.0 - alpha) * W[i]])
    out[i] = alpha * W[i]
    return out


def neuron_block_minima(model, x):
    """lambda_min(M_i), M_i = H_ii - I/2 (neuron i's diagonal Hessian block without its 1/2 I
    term), for every neuron i: an ndarray of shape (k,).  After a split w_i -> (alpha w_i,
    (1 - alpha) w_i) the unit direction (u, -u)/sqrt(2) on the halves has curvature
    u^T M_i u / (2 alpha (1 - alpha)): lambda_min(M_i) < 0 makes the split a strict saddle."""
    k, d = model.unflatten(x).shape
    H = model.hess(x)
    return np.array([np.linalg.eigvalsh(H[i * d:(i + 1) * d, i * d:(i + 1) * d]
                                        - 0.5 * np.eye(d))[0] for i in range(k)])


def split_projection(model, x_star, a, b):
    """``project(Y)``, the OPSC reference for a batch Y (B, n_params): the nearest points of
    the curve {(alpha v, (1 - alpha) v) on students a and b, v = w*_a + w*_b, the other students
    at `x_star`}, alpha = (v.(y_a - y_b) + |v|^2) / (2 |v|^2) clipped to [0, 1]."""
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


def _finite(a, fn=np.median):
    """fn (default: the median) over the finite entries of a; None if there are none."""
    a = np.asarray(a, dtype=float)
    a = a[np.isfinite(a)]
    return float(fn(a)) if a.size else None


def _intervals(passed):
    """Per column of the boolean array `passed`: the 95% Wilson interval of its fraction."""
    return [ls.wilson_interval(int(c), passed.shape[0]).tolist() for c in passed.sum(axis=0)]


def _fit(x, y):
    """y ~ prefactor x^exponent, least squares in log-log coordinates, with R^2 (None with
    fewer than two points of positive, finite y)."""
    if np.count_nonzero(np.isfinite(y) & (np.asarray(y) > 0)) < 2:
        return None
    f = ls.power_law_fit(x, y)
    return dict(exponent=f.exponent, prefactor=f.prefactor, r2=f.r2)


def _scan(model, n_starts, lr, store, cfg, progress, certify=False):
    """``landscape.scan`` resumable from `store`, and the fields every scan row shares."""
    t = time.perf_counter()
    s = ls.scan(model, n_starts, rng=cfg.seed, lr=lr, gtol=cfg.gtol, store=store,
                progress=progress, certify=certify)
    seconds, compute_seconds = time.perf_counter() - t, s.wall_seconds   # the store's time
    kinds, counts = np.unique(s.outcomes.kind, return_counts=True)
    return s, dict(
        n_starts=s.n_starts, lr=lr, store=store.name, spurious_fraction=s.spurious_fraction,
        spurious_count=s.spurious_count, spurious_interval=s.spurious_interval.tolist(),
        n_certified_ends=int(_certified(s, cfg.gtol).sum()),
        end_kinds={str(kd): int(c) for kd, c in zip(kinds, counts)},
        max_grad_norm=float(np.nanmax(s.outcomes.grad_norm)), seconds=seconds,
        compute_seconds=compute_seconds)


def _certified(s, gtol):
    """Per start of scan `s`: its end is a critical point (|grad F| <= gtol) the scan
    classified as a minimum or a saddle."""
    out = s.outcomes
    return (np.array([kd in _CRITICAL for kd in out.kind], dtype=bool)
            & (out.grad_norm <= gtol) & (out.point >= 0))


def _end_outcomes(s):
    """Per start of scan `s`: "global", "spurious-minimum", "saddle" or "other" (no
    certified critical point, or one the scan could not classify as either)."""
    spurious = {p.id for p in s.spurious_minima}
    return ["other" if p is None or not (p.is_minimum or p.is_saddle) else "saddle"
            if p.is_saddle else "spurious-minimum" if p.id in spurious else "global"
            for p in (s.points[i] if i >= 0 else None for i in s.outcomes.point)]


def _point(p, spurious, **extra):
    """A Point of a scan as a record."""
    c = p.classification
    return dict(id=p.id, kind=p.kind, loss=p.loss, lambda_min=c.lambda_min, index=c.index,
                nullity=c.nullity, grad_norm=c.grad_norm, is_global=c.is_global,
                spurious=spurious, basin_count=p.basin_count, found_by=p.found_by, **extra)


def _proof(c):
    """What a record keeps of a computer-assisted proof (ls.certify; None: not attempted)."""
    return dict(proved=c is not None and c.certified, proof_kind=c and c.kind, radius=c and
                c.radius, lambda_min_lower=c and c.lambda_min_lower, proof=c and c.message)


def _points(s, ids):
    """The Points of scan `s` with the given ids, as records."""
    spurious = {p.id for p in s.spurious_minima}
    return [_point(p, p.id in spurious, manifold_nullity=p.classification.manifold_nullity,
                   dimension=p.dimension, n_members=p.n_members)
            for p in (s.points[i] for i in sorted(i for i in ids if i >= 0))]


def scan_k_equals_n(k, cfg, out_dir, progress):
    """landscape.scan of V = I_k, k students (store out_dir/k<k>-<starts>.db): (row, scan)."""
    model = _model(k, k)
    s, row = _scan(model, cfg.starts, 5.0 / k, Path(out_dir) / f"k{k}-{cfg.starts}.db", cfg,
                   progress, certify=True)     # every minimum proved (Safran & Shamir 2018)
    minima = [_point(p, p.loss > SPURIOUS_LOSS, basin_fraction=p.basin_fraction,
                     basin_interval=[float(v) for v in p.basin_interval],
                     sum_norms=float(np.linalg.norm(model.unflatten(p.x), axis=1).sum()),
                     certified=bool(p.classification.grad_norm <= cfg.gtol
                                    and p.kind == "strict-minimum"), **_proof(p.certificate))
              for p in s.minima]
    return dict(k=k, n=k, **row, n_minima=len(s.minima),
                n_spurious_minima=len(s.spurious_minima), n_saddles=len(s.saddles),
                all_minima_certified=all(m["certified"] for m in minima), minima=minima), s


def split_study(k, s, cfg, rng):
    """Split every distinct spurious minimum of the k = n scan `s`; classify; descend off."""
    model, big = _model(k, k), _model(k, k + 1)
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
                     all_neuron_splits=[                      # w_i -> (w_i/2, w_i/2), every i
                         _split_record(big, p, W, i, 0.5, lam_M, cfg, vector=False)[0]
                         for i in range(k)], splits=[], descents=[])
        # the neuron with the most negative lambda_min(M_i), at every ratio, and descents
        for alpha in cfg.split_alphas:
            rec, x1, v_min = _split_record(big, p, W, chosen, alpha, lam_M, cfg)
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


def _connected(k, s):
    """ls.connect from every spurious minimum of the k = n scan `s` to its global minimum."""
    cs = [(p, ls.connect(_model(k, k), p.x, s.minima[0].x)) for p in s.spurious_minima]
    return [dict(k=k, id=p.id, success=c.success, barrier=c.barrier, message=c.message,
                 saddle=(t := c.highest_saddle) and [t.loss, t.classification.index])
            for p, c in cs]


def _split_record(big, p, W, i, alpha, lam_M, cfg, vector=True):
    """Neuron i of the minimum p (rows W) split at alpha: (record, split point, v_min)."""
    x1 = big.flatten(split_neuron(W, i, alpha))
    gnorm, polished = float(np.linalg.norm(big.grad(x1))), False
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
               bound=float(lam_M[i] / (2 * alpha * (1 - alpha))),
               **_proof(ls.certify(big, x1) if vector else None))
    return rec, x1, v_min


def scan_k_equals_n_plus_1(n, cfg, out_dir, progress):
    """landscape.scan of V = I_n, n + 1 students, step 5/(n + 1) (store
    out_dir/n<n>-k<n+1>-<starts>.db); the continuum of split global minima is one point."""
    store = Path(out_dir) / f"n{n}-k{n + 1}-{cfg.plus_starts}.db"
    s, row = _scan(_model(n, n + 1), cfg.plus_starts, 5.0 / (n + 1), store, cfg, progress)
    out, outcome, certified = s.outcomes, _end_outcomes(s), _certified(s, cfg.gtol)
    return dict(
        n=n, k=n + 1, **row,
        counts={o: outcome.count(o) for o in ("global", "spurious-minimum", "saddle", "other")},
        uncertified_ends=[dict(start=int(out.start[i]), kind=out.kind[i],
                               loss=float(out.loss[i]), grad_norm=float(out.grad_norm[i]),
                               status=int(out.status[i]), message=out.message[i])
                          for i in np.flatnonzero(~certified)],
        global_points=_points(s, [p.id for p in s.minima if p.classification.is_global]),
        spurious_minima=_points(s, [p.id for p in s.spurious_minima]),
        n_spurious_minima=len(s.spurious_minima),
        saddles=_points(s, [p.id for p in s.saddles]), n_points=len(s.points))


def convexity_study(n, cfg):
    """k = n at W = I and k = n + 1 at the split global minimum: direction-wise tests."""
    radii = np.array(cfg.convexity_radii)
    # k = n: strongly convex
    m, x = _model(n, n), np.eye(n).ravel()
    c = ls.classify(m, x, gtol=cfg.gtol)
    U = ls.random_directions(m, cfg.n_directions, rng=cfg.seed)
    lc = ls.local_convexity(m, x, U, radii, lambda_min=True)
    op = ls.one_point_strong_convexity(m, x, U, radii)
    pl = ls.pl_condition(m, x, U, radii)
    small = dict(
        kind=c.kind, lambda_min=c.lambda_min, reference=LAMBDA_MIN_GLOBAL,
        lambda_min_error=abs(c.lambda_min - LAMBDA_MIN_GLOBAL),
        min_lambda_min_per_radius=np.nanmin(lc.lambda_min, axis=0).tolist(),
        opsc_fraction=op.fraction, opsc_min=_finite(op.constants, np.min),
        opsc_exponent_median=_finite(op.exponents),
        pl_fraction=pl.fraction, pl_min=_finite(pl.constants, np.min),
        pl_exponent_median=_finite(pl.exponents))
    # k = n + 1: the split global minimum (v_1/2, v_1/2, v_2, ..., v_n)
    big, V = _model(n, n + 1), np.eye(n)
    x_star = big.flatten(np.vstack([V[0] / 2, V[0] / 2, V[1:]]))
    spec = ls.hessian_spectrum(big, x_star)
    U = ls.random_directions(big, cfg.n_directions, rng=cfg.seed)
    R = ls.random_directions(big, cfg.n_rotations, rng=cfg.seed + 1, kind="split-rotation",
                             x=x_star)
    project = split_projection(big, x_star, 0, 1)
    lcU, lcR = (ls.local_convexity(big, x_star, D, radii, lambda_min=True) for D in (U, R))
    neg = lcU.lambda_min < -NEGATIVE_EIGENVALUE
    min_lam = np.nanmin(lcU.lambda_min, axis=0)
    opsc = {label: [] for label in ("x_star", "projection")}
    for label, ref in (("x_star", None), ("projection", project)):
        for mu in cfg.opsc_thresholds:
            t = ls.one_point_strong_convexity(big, x_star, U, radii, reference=ref, threshold=mu)
            passed = t.constants >= mu
            opsc[label].append(dict(
                threshold=mu, fraction=t.fraction, interval=t.fraction_interval.tolist(),
                per_radius=passed.mean(axis=0).tolist(), per_radius_interval=_intervals(passed),
                exponent_median=_finite(t.exponents), min_constant=_finite(t.constants, np.min)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ls.LandscapeWarning)
        plU, plR = (ls.pl_condition(big, x_star, D, radii) for D in (U, R))

    def rotation_summary(t):
        medians = [_finite(c) for c in t.constants.T]
        return dict(exponents=t.exponents.tolist(), exponent_median=_finite(t.exponents),
                    exponent_min=_finite(t.exponents, np.min),
                    exponent_max=_finite(t.exponents, np.max), median_constants=medians,
                    worst_constants=t.worst_constants.tolist(),
                    fit=_fit(radii, np.array(medians, dtype=float)))

    return dict(n=n, radii=radii.tolist(), k_equals_n=small, k_equals_n_plus_1=dict(
        loss=float(big.loss(x_star)), grad_norm=float(np.linalg.norm(big.grad(x_star))),
        index=spec.n_negative, n_zero=spec.n_zero, n_positive=spec.n_positive,
        lambda_min=spec.lambda_min, tau=spec.tau,
        negative_fraction_per_radius=neg.mean(axis=0).tolist(),
        negative_interval_per_radius=_intervals(neg), min_lambda_min_per_radius=min_lam.tolist(),
        negative_eigenvalue_fit=_fit(radii, -min_lam) if np.all(min_lam < 0) else None,
        curvature_along_direction_min=_finite(lcU.constants, np.min),
        rotation_curvature=rotation_summary(lcR),
        rotation_lambda_min_min=float(np.nanmin(lcR.lambda_min)), opsc_uniform=opsc,
        opsc_rotation=rotation_summary(ls.one_point_strong_convexity(big, x_star, R, radii)),
        opsc_rotation_projection=rotation_summary(
            ls.one_point_strong_convexity(big, x_star, R, radii, reference=project)),
        pl_uniform=dict(fraction=plU.fraction, interval=plU.fraction_interval.tolist(),
                        exponent_median=_finite(plU.exponents),
                        min_constant=_finite(plU.constants, np.min)),
        pl_rotation=rotation_summary(plR), pl_undefined=plU.n_undefined + plR.n_undefined,
        pl_warnings=[str(w.message) for w in caught]))


def time_protocol(k, s, cfg):
    """The published protocol, plain gradient descent with step 5/k until |grad F| <= 1e-12
    (``landscape.descend``), from the scan's first `protocol_starts` starts; its agreement with
    the scan `s`: the same final loss within 1e-9."""
    model, N = _model(k, k), cfg.protocol_starts
    X0, t = initial_points(model, s.settings, range(N)), time.perf_counter()   # the scan's starts
    d = ls.descend(model, X0, lr=5.0 / k, gtol=PROTOCOL_GTOL, maxiter=cfg.protocol_maxiter)
    seconds, done = time.perf_counter() - t, d.success
    return dict(k=k, n_starts=N, seconds=seconds, converged=int(done.sum()),
                iterations_total=int(d.nit.sum()), iterations_max=int(d.nit.max()),
                agreement=float(np.mean(np.abs(d.loss - s.outcomes.loss[:N]) <= AGREEMENT)),
                spurious_fraction=(float(np.mean(d.loss[done] > SPURIOUS_LOSS)) if done.any()
                                   else None))


def run(out_dir, *, quick=False, progress=True):
    """Run the study: write and return results.json; write index.html, figures, minima.npz."""
    t_start = time.perf_counter()
    machine = machine_record()                      # its load average: at the start
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = load_config(quick)
    compute, this_run, cached_stages = {}, {}, []
    common = dict(seed=cfg.seed, gtol=cfg.gtol, driver=DRIVER, version=ls.__version__)

    def stage(name, items, key, label, make, seconds=None):
        """One cached part per item, timed (``seconds(res)``: a part's own compute time)."""
        t, out, total = time.perf_counter(), [], 0.0
        for item in tqdm(items, desc=name, disable=not progress):
            settings, fn = make(item)
            res, hit, sec = cached(out_dir, key.format(item), settings, fn)
            out.append(res)
            total += sec if seconds is None else seconds(res)
            if hit:
                cached_stages.append(f"{name}: {label} = {item}")
        compute[name] = total
        this_run[name] = time.perf_counter() - t
        return out

    # 1. k = n: landscape.scan, resumable from its stores
    t, rows, scans = time.perf_counter(), [], {}
    for k in tqdm(cfg.ks, desc="k = n scans", disable=not progress):
        row, scans[k] = scan_k_equals_n(k, cfg, out_dir, progress)
        rows.append(row)
    compute["k = n scans"] = sum(row["compute_seconds"] for row in rows)
    this_run["k = n scans"] = time.perf_counter() - t
    np.savez(out_dir / "minima.tmp.npz", **{      # every distinct minimum of k = n as W (k, k)
        f"k{k}_p{p.id}": p.x.reshape(k, k) for k, s in scans.items() for p in s.minima})
    os.replace(out_dir / "minima.tmp.npz", out_dir / "minima.npz")

    # 2. splits of every spurious minimum
    splits = stage("splits", cfg.ks, f"split-k{{}}-{cfg.starts}", "k", lambda k: (
        dict(common, k=k, starts=cfg.starts, alphas=cfg.split_alphas, records=RECORDS,
             perturbation=cfg.perturbation,
             minima=[[p.id, p.loss] for p in scans[k].spurious_minima]),
        lambda: split_study(k, scans[k], cfg, np.random.default_rng([cfg.seed, k]))))
    splits = [e for part in splits for e in part]

    # 3. k = n + 1 from random starts (a JSON cache over a scan store: the cache skips a
    # finished n, the store resumes an interrupted one; the compute time is the store's)
    plus = stage("k = n + 1 scans", cfg.plus_ns, f"plus-n{{}}-{cfg.plus_starts}", "n",
                 lambda n: (dict(common, n=n, starts=cfg.plus_starts, records=RECORDS),
                            lambda: scan_k_equals_n_plus_1(n, cfg, out_dir, progress)),
                 seconds=lambda res: res["compute_seconds"])

    # 4. local geometry at the global minimum
    convexity = stage("convexity", cfg.convexity_ns, "convexity-n{}", "n", lambda n: (
        dict(common, n=n, radii=cfg.convexity_radii, mu=cfg.opsc_thresholds,
             n_directions=cfg.n_directions, n_rotations=cfg.n_rotations),
        lambda: convexity_study(n, cfg)))

    # 5. every spurious minimum of k = n connected to the global one
    barriers = stage("barriers", cfg.barrier_ks, f"barriers-k{{}}-{cfg.starts}", "k", lambda k: (
        dict(common, k=k, starts=cfg.starts), lambda: _connected(k, scans[k])))

    # 6. the published protocol, on a subset of k
    key = f"protocol-k{{}}-{cfg.protocol_starts}"
    protocol = stage("published protocol", cfg.protocol_ks, key, "k", lambda k: (
        dict(common, k=k, starts=cfg.protocol_starts, maxiter=cfg.protocol_maxiter,
             driver=PROTOCOL_DRIVER), lambda: time_protocol(k, scans[k], cfg)))
    for p in protocol:          # the scan's compute time, scaled to the protocol's starts
        row = rows[cfg.ks.index(p["k"])]
        p["scan_seconds"] = row["compute_seconds"] * p["n_starts"] / row["n_starts"]

    r = dict(study="safran2021", title=TITLE, paper=PAPER, quick=bool(quick), config=vars(cfg),
             machine=machine, k_equals_n=rows, splits=splits, k_equals_n_plus_1=plus,
             convexity=convexity, protocol=protocol, cached_stages=cached_stages,
             barriers=[b for part in barriers for b in part])
    r["technical"], r["summary"] = _summary(r)
    t = time.perf_counter()
    figures = _figures(out_dir, r)
    r["figures"] = sorted(f.path for f in figures.values())
    this_run["figures"] = compute["figures"] = time.perf_counter() - t
    r["wall_seconds"] = time.perf_counter() - t_start
    r["timings"] = dict(stages=compute, this_run=this_run, wall_seconds=r["wall_seconds"],
                        compute_seconds=sum(compute.values()))
    r = json.loads(json.dumps(json_ready(r)))
    _page(out_dir, r, figures)
    write_json(out_dir / "results.json", r)
    return r


def _summary(r):
    """(technical, summary): per k the technical quantities of its spurious minima, and where
    the descents off their splits went (one scan per k: a k's point ids name one point)."""
    splits, technical, by_k = r["splits"], [], []
    for k in sorted({e["k"] for e in splits}):
        es = [e for e in splits if e["k"] == k]
        norms, ds = [e["sum_norms"] for e in es], [d for e in es for d in e["descents"]]
        technical.append(dict(
            k=k, n_spurious_minima=len(es),
            lambda_min_M_min=min(e["lambda_min_M_min"] for e in es),
            lambda_min_M_max=max(e["lambda_min_M_max"] for e in es),
            all_neurons_negative=all(e["n_negative_M"] == k for e in es),
            sum_norms_min=min(norms), sum_norms_max=max(norms), deficit_min=k - max(norms),
            deficit_max=k - min(norms)))
        by_k.append(dict(
            k=k, descents=len(ds), outcomes=dict(Counter(d["outcome"] for d in ds)),
            all_below=all(d["below_split"] for d in ds),
            all_certified=all(d["certified"] for d in ds),
            max_grad_norm=max([0.0] + [d["grad_norm"] for d in ds]),
            distinct_spurious_minima=len({d["point"] for d in ds
                                          if d["outcome"] == "spurious-minimum"})))
    rows = {row["k"]: row for row in r["k_equals_n"]}
    all_splits = [s for e in splits for s in e["splits"] + e["all_neuron_splits"]]
    descents = [d for e in splits for d in e["descents"]]
    return technical, dict(
        spurious_fraction={k: row["spurious_fraction"] for k, row in rows.items()},
        spurious_fraction_plus={p["n"]: p["spurious_fraction"] for p in r["k_equals_n_plus_1"]},
        distinct_minima={k: row["n_minima"] for k, row in rows.items()},
        all_minima_certified=all(row["all_minima_certified"] for row in rows.values()),
        all_minima_proved=all(m["proof_kind"] == "strict-minimum" for row in rows.values()
                              for m in row["minima"]),
        all_splits_proved_saddles=all(s["proof_kind"] == "strict-saddle" for e in splits
                                      for s in e["splits"]),
        n_spurious_minima_split=len(splits), n_splits=len(all_splits),
        all_splits_strict_saddles=bool(all_splits) and all(
            s["kind"] == "strict-saddle" for s in all_splits),
        max_split_grad_norm=max((s["grad_norm"] for s in all_splits), default=None),
        max_split_loss_change=max((abs(s["loss_change"]) for s in all_splits), default=None),
        split_descents=len(descents),
        split_descent_outcomes={o: sum(d["outcome"] == o for d in descents)
                                for o in sorted({d["outcome"] for d in descents})},
        split_descents_by_k=by_k,
        opsc_rotation_exponents=[c["k_equals_n_plus_1"]["opsc_rotation"]["exponent_median"]
                                 for c in r["convexity"]],
        lambda_min_k_equals_n=[c["k_equals_n"]["lambda_min"] for c in r["convexity"]])


def _save(out_dir, name, caption, axes, xlabels, ylabels, **grid):
    """Label, grid and legend every Axes of one figure; save it as out_dir/name."""
    axes = np.atleast_1d(axes)
    for ax, xlabel, ylabel in zip(axes, xlabels, ylabels):
        ax.set(xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3, **grid)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7 if len(axes) > 1 else None)
    return save_figure(axes[0], out_dir, name, caption=caption)


def _figures(out_dir, r):
    figs = {}
    rows, plus, splits = r["k_equals_n"], r["k_equals_n_plus_1"], r["splits"]
    fig, ax = new_figure(6.4, 4.0)
    for data, key, label, fmt in ((rows, "k", "k = n", "o-"), (plus, "n", "k = n + 1", "s--")):
        if data:
            f = np.array([row["spurious_fraction"] for row in data])
            lo, hi = np.array([row["spurious_interval"] for row in data]).T
            ax.errorbar([row[key] for row in data], f, fmt=fmt, capsize=3,
                        yerr=[np.maximum(f - lo, 0), np.maximum(hi - f, 0)],
                        label=f"{label} ({data[0]['n_starts']} starts per n)")
    ax.set_ylim(-0.02, 1.0)
    figs["fraction"] = _save(out_dir, "fraction.png", (
        "Fraction of gradient-descent starts that end at a certified spurious minimum, with "
        "95% Wilson intervals: k = n students (landscape.scan) and k = n + 1 students."), ax,
        ["teacher neurons n (= input dimension d)"], ["fraction of starts at a spurious minimum"])
    fig, ax = new_figure(6.4, 4.0)
    for row in rows:
        for m in row["minima"]:
            ax.scatter(row["k"], m["loss"], s=12 + 150 * m["basin_fraction"],
                       c="C3" if m["spurious"] else "C0", alpha=0.7, edgecolors="none")
    ax.set_title("distinct minima modulo symmetry (blue: global; area ~ basin)", fontsize=9)
    figs["minima"] = _save(out_dir, "minima.png", (
        "Every distinct minimum of each k = n scan (modulo joint permutations of neurons and "
        "coordinates): its loss, marker area growing with its basin fraction."), ax,
        ["k = n"], ["F at the minimum"])
    fig, ax = new_figure(6.4, 4.0)
    pts = [(s["bound"], s["lambda_min"], s["alpha"]) for e in splits for s in e["splits"]
           if s["lambda_min"] is not None]         # None: the split was not certified critical
    if pts:
        b, lam, alpha = (np.array(v) for v in zip(*pts))
        for a, mk in zip(sorted(set(alpha), reverse=True), "osd^v"):
            ax.scatter(b[alpha == a], lam[alpha == a], marker=mk, label=f"alpha = {a:g}",
                       alpha=0.8)
        lim = [min(b.min(), lam.min()) * 1.1, 0]
        ax.plot(lim, lim, "k:", lw=1, label="lambda_min = bound")
    figs["split"] = _save(out_dir, "split.png", (
        "Each spurious minimum of k = n split along its neuron with the most negative "
        "lambda_min(M_i): the split's smallest Hessian eigenvalue against the bound "
        "lambda_min(M_i) / (2 alpha (1 - alpha)) (equality on the dotted line)."), ax,
        ["lambda_min(M_i) / (2 alpha (1 - alpha))"], ["lambda_min of the split point (k + 1)"])
    fig, axes = new_figure(9.0, 3.6, ncols=2)
    for e in splits:
        axes[0].plot([e["k"], e["k"]], [e["lambda_min_M_min"], e["lambda_min_M_max"]], "C3-",
                     alpha=0.6)
        axes[0].scatter([e["k"]], [e["lambda_min_M_min"]], c="C3", s=12)
        axes[1].scatter([e["k"]], [e["k"] - e["sum_norms"]], c="C3", s=14)
    axes[0].axhline(0, color="k", lw=0.8)
    figs["technical"] = _save(out_dir, "technical.png", (
        "Technical quantities at every distinct spurious minimum: left, the range over neurons "
        "of lambda_min of the diagonal Hessian block without its 1/2 I term (all < 0: every "
        "neuron's split is a saddle); right, the deficit of the sum of neuron norms from the "
        "teacher's sum n (0 at the global minimum)."), axes, ["k = n"] * 2,
        ["lambda_min(H_ii - I/2), range over neurons i", "n - sum_i |w_i|"])
    fig, axes = new_figure(10.0, 3.8, ncols=2)
    for c, col in zip(r["convexity"], ("C0", "C1", "C2", "C3")):
        radii, big = np.array(c["radii"]), c["k_equals_n_plus_1"]
        for o, style in zip(big["opsc_uniform"]["x_star"], ("-", "--")):
            axes[0].semilogx(radii, o["per_radius"], style, color=col,
                             label=f"n = {c['n']}: OPSC, mu = {o['threshold']:g}")
        axes[0].semilogx(radii, big["negative_fraction_per_radius"], ":", color=col,
                         label=f"n = {c['n']}: lambda_min(H(y)) < 0")
        for key, name, style in (("opsc_rotation", "OPSC", "o-"), ("pl_rotation", "PL", "s--"),
                                 ("rotation_curvature", "u'H(y)u", "^:")):
            axes[1].loglog(radii, big[key]["median_constants"], style, color=col,
                           label=f"n = {c['n']}: {name}, p = {big[key]['exponent_median']:.3f}")
    axes[0].set_ylim(-0.03, 1.05)
    figs["convexity"] = _save(out_dir, "convexity.png", (
        "k = n + 1 at the split global minimum x* = (v_1/2, v_1/2, v_2, ..., v_n), at "
        "y = x* + r u.  Left: fraction of uniformly random directions u in which the OPSC ratio "
        "<grad F(y), y - x*>/|y - x*|^2 is >= mu, and in which H(y) has a negative eigenvalue. "
        "Right: the constants along split rotations on log-log axes with the fitted exponent p "
        "(p = 1: they vanish linearly, the condition fails locally).  The OPSC lines of the "
        "left panel lie on top of each other at 1.0, and the constants along rotations do not "
        "depend on n, so the right panel's curves for different n coincide."), axes,
        ["radius r"] * 2, ["fraction of random directions",
                           "constant along a split rotation (median)"], which="both")
    if r["protocol"]:
        fig, ax = new_figure(6.4, 4.0)
        ks = [p["k"] for p in r["protocol"]]
        ax.semilogy(ks, [p["seconds"] for p in r["protocol"]], "o-",
                    label="published protocol (GD to 1e-12)")
        ax.semilogy(ks, [p["scan_seconds"] for p in r["protocol"]], "s-",
                    label="landscape.scan (certified, classified, deduplicated)")
        figs["timings"] = _save(out_dir, "timings.png", (
            "Wall time on this machine for the same starts: the published protocol (plain "
            "gradient descent to |grad F| <= 1e-12, landscape.descend) and landscape.scan."), ax,
            ["k = n"], [f"seconds for {r['protocol'][0]['n_starts']} starts"], which="both")
    return figs


def _frac(row, key="spurious_"):
    """'f% [lo%, hi%]': row[key + "fraction"] and its 95% interval row[key + "interval"]."""
    lo, hi = row[key + "interval"]
    return f"{row[key + 'fraction']:.1%} [{lo:.1%}, {hi:.1%}]"


def _g(v, fmt=".3g"):
    return "—" if v is None else format(v, fmt)


def _page(out_dir, r, figs):
    cfg, rows, plus, sm, tm, m = (r[key] for key in ("config", "k_equals_n", "k_equals_n_plus_1",
                                                     "summary", "timings", "machine"))
    plus_by_n, ks = {p["n"]: p for p in plus}, {row["k"] for row in rows}
    yes, sections = {True: "yes", False: "NO"}, []
    bar = {(b["k"], b["id"]): [_g(b["barrier"], ".4e"), b["saddle"] and f"{b['saddle'][0]:.10f} "
                               f"({b['saddle'][1]})" or "—"] for b in r["barriers"]}

    def section(id, title, text, *tables, figure=None):
        """A page section; `tables` are (columns, rows) or (columns, rows, caption)."""
        tables = [Table(**dict(zip(("columns", "rows", "caption"), t))) for t in tables]
        sections.append(Section(title=title, id=id, text=text, tables=tables,
                                figures=[figs[figure]] if figure in figs else []))
    section("setting", "Setting and protocol", [
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
        f"k = n + 1: {cfg['plus_starts']} starts per n, the same with step 5/(n + 1); its split "
        "global minima (a teacher neuron shared by two collinear students in any proportion) "
        "form a continuum, one point of the scan.",
        f"Mode: {'quick (CI)' if r['quick'] else 'full'}."])
    section("fraction", "Spurious minima are common (k = n)", [
        "Fraction of starts ending at a certified spurious minimum, 95% Wilson interval.  "
        "'certified ends': starts whose end point is a classified critical point with "
        "|grad F| <= 1e-12.  The last column is item 3 (k = n + 1 students, same n)."],
        (["k = n", "starts", "spurious [95% CI]", "distinct minima", "spurious minima",
          "saddles found", "certified ends", "max |grad F|", "k = n + 1: spurious [95% CI]"],
         [[row["k"], row["n_starts"], _frac(row), row["n_minima"], row["n_spurious_minima"],
           row["n_saddles"], f"{row['n_certified_ends']}/{row['n_starts']}",
           f"{row['max_grad_norm']:.1e}", _frac(plus_by_n[row["k"]]) if row["k"] in plus_by_n
           else "—"] for row in rows]
         + [[p["n"]] + ["—"] * 7 + [_frac(p)] for p in plus if p["n"] not in ks]),
        figure="fraction")
    section("minima", "Distinct minima per k", [
        "Every distinct minimum (modulo symmetry) of each k = n scan.  All are strict minima "
        f"with |grad F| <= 1e-12: {yes[sm['all_minima_certified']]}.  'found by "
        "saddle-descent': reached only by descending off a saddle the scan found (basin 0 "
        "among the starts).  Proved in ball arithmetic (ls.certify; Safran & Shamir 2018): "
        f"{yes[sm['all_minima_proved']]}: a unique minimum within 'radius', lambda_min >= bound.  "
        f"k in {cfg['barrier_ks']}: ls.connect joins each spurious minimum to the global one "
        "over saddles (|grad F| <= 1e-12); 'barrier': the highest minus F."],
        (["k", "id", "F", "lambda_min", "kind", "|grad F|", "global", "basin", "found by",
          "sum |w_i|", "proved", "radius", "lambda_min >=", "barrier", "saddle F (index)"],
         [[row["k"], m["id"], _g(m["loss"], ".6f" if m["spurious"] else ".1e"),
           f"{m['lambda_min']:.5f}", m["kind"], f"{m['grad_norm']:.1e}", not m["spurious"],
           f"{m['basin_count']} ({m['basin_fraction']:.1%})", m["found_by"],
           f"{m['sum_norms']:.5f}", yes[m["proved"]], _g(m["radius"], ".1e"),
           _g(m["lambda_min_lower"], ".5f"), *bar.get((row["k"], m["id"]), ["—", "—"])]
          for row in rows for m in row["minima"]]), figure="minima")
    srows = [[e["k"], e["id"], f"{e['loss']:.6f}", s["neuron"], s["alpha"],
              f"{s['loss_change']:.1e}", f"{s['grad_norm']:.1e}", s["kind"], s["index"],
              _g(s["lambda_min"], ".4f"), f"{s['bound']:.4f}", yes[s["proved"]], "; ".join(
                  f"{d['perturbation']}: {d['outcome']} (F = {d['loss']:.2e}" + (
                      "" if d["certified"] else f", {d['kind']}, |grad F| = {d['grad_norm']:.1e}")
                  + ")" for d in e["descents"] if d["alpha"] == s["alpha"])]
             for e in r["splits"] for s in e["splits"]]
    all_half = [s for e in r["splits"] for s in e["all_neuron_splits"]]
    section("splits", "One neuron more: every spurious minimum becomes a saddle", [
        f"{sm['n_spurious_minima_split']} distinct spurious minima of k = n split into the "
        f"k + 1 student ({sm['n_splits']} split points: every neuron at alpha = 1/2, and the "
        "neuron with the most negative lambda_min(M_i) at every alpha).  All strict saddles: "
        f"{yes[sm['all_splits_strict_saddles']]}; largest |grad F| after the split "
        f"{_g(sm['max_split_grad_norm'])}, largest |F change| {_g(sm['max_split_loss_change'])} "
        f"(no polishing needed); proved (ls.certify): {yes[sm['all_splits_proved_saddles']]}.",
        f"Every neuron split at alpha = 1/2: {len(all_half)} points, kinds "
        f"{sorted({s['kind'] for s in all_half})}.",
        f"Descents in the k + 1 model from the split points perturbed by "
        f"{cfg['perturbation']:g} (+- the most negative curvature direction, and a random "
        "direction): " + ", ".join(f"{v} {o}" for o, v in sm["split_descent_outcomes"].items())
        + "."],
        (["k", "descents", "to the global minimum", "to a spurious minimum of k + 1 (distinct)",
          "saddle or other", "all certified", "max |grad F|", "all end below the split's F"],
         [[d["k"], d["descents"], d["outcomes"].get("global", 0),
           f"{d['outcomes'].get('spurious-minimum', 0)} ({d['distinct_spurious_minima']})",
           d["outcomes"].get("other", 0) + d["outcomes"].get("saddle", 0),
           yes[d["all_certified"]], f"{d['max_grad_norm']:.1e}", yes[d["all_below"]]]
          for d in sm["split_descents_by_k"]],
         "Where gradient descent in the k + 1 model goes from the split saddles, perturbed "
         "(landscape.scan from those starts: every end certified and classified)."),
        (["k", "minimum", "F", "neuron", "alpha", "F change", "|grad F|", "kind (k + 1)",
          "index", "lambda_min", "bound", "proved", "perturbed descent went to"], srows),
        figure="split")
    section("technical", "Technical quantities", [
        "M_i = H_ii - I/2, the diagonal Hessian block of neuron i without its 1/2 I term "
        "(zero at the global minimum W = V).  On the pair of halves of a split neuron the "
        "direction (u, -u) has curvature u^T M_i u / (2 alpha (1 - alpha)) per unit length, so "
        "lambda_min(M_i) < 0 for some i makes the split a strict saddle."],
        (["k", "spurious minima", "min_i lambda_min(M_i) (lowest)",
          "max_i lambda_min(M_i) (highest)", "every neuron < 0", "sum_i |w_i|",
          "n - sum_i |w_i|"],
         [[t["k"], t["n_spurious_minima"], f"{t['lambda_min_M_min']:.4f}",
           f"{t['lambda_min_M_max']:.4f}", t["all_neurons_negative"],
           f"{t['sum_norms_min']:.5f} – {t['sum_norms_max']:.5f}",
           f"{t['deficit_min']:.2e} – {t['deficit_max']:.2e}"] for t in r["technical"]]),
        figure="technical")
    section("plus", "k = n + 1 from random starts", [
        "Every end polished to |grad F| <= 1e-12, classified from its Hessian (with the zero "
        "modes of the split manifold) and deduplicated by a merged-neuron key modulo symmetry: "
        "the continuum of split global minima is one point (its dimension, and how many "
        "distinct members the starts reached).  'certified ends' as for k = n.  Distinct "
        "spurious minima: F, kind, lambda_min, basin count."] + [
        f"n = {p['n']}: start {u['start']} ended {u['kind']} at F = {u['loss']:.9f}, "
        f"|grad F| = {u['grad_norm']:.1e} ({u['message']})."
        for p in plus for u in p["uncertified_ends"]],
        (["n", "k", "starts", "spurious [95% CI]", "global", "spurious", "saddle", "other",
          "certified ends", "max |grad F|", "global point", "distinct spurious minima",
          "seconds"],
         [[p["n"], p["k"], p["n_starts"], _frac(p),
           *(p["counts"][o] for o in ("global", "spurious-minimum", "saddle", "other")),
           f"{p['n_certified_ends']}/{p['n_starts']}", f"{p['max_grad_norm']:.1e}",
           "; ".join(f"{g['kind']}, dimension {g['dimension']}, {g['n_members']} members"
                     for g in p["global_points"]) or "NONE",
           "; ".join(f"F = {q['loss']:.5f} ({q['kind']}, lambda_min {q['lambda_min']:.2g}) "
                     f"×{q['basin_count']}" for q in p["spurious_minima"]) or "—",
           f"{p['compute_seconds']:.1f}"] for p in plus]))
    crows = []
    for c in r["convexity"]:
        a, b = c["k_equals_n"], c["k_equals_n_plus_1"]
        rot, neg = b["opsc_rotation"], b["negative_fraction_per_radius"]
        crows.append([
            c["n"], f"{a['lambda_min']:.12f}", f"{a['lambda_min_error']:.1e}",
            f"{min(a['min_lambda_min_per_radius']):.4f}",
            f"{a['opsc_fraction']:.0%}, p = {a['opsc_exponent_median']:.3f}",
            f"{b['index']}/{b['n_zero']}/{b['n_positive']}", f"{min(neg):.1%} – {max(neg):.1%}",
            _g((b["negative_eigenvalue_fit"] or {}).get("exponent")),
            ", ".join(f"mu={o['threshold']:g}: {_frac(o, '')}"
                      for o in b["opsc_uniform"]["x_star"]),
            ", ".join(f"mu={o['threshold']:g}: {o['fraction']:.1%}"
                      for o in b["opsc_uniform"]["projection"]),
            f"{rot['exponent_median']:.4f} [{rot['exponent_min']:.4f}, "
            f"{rot['exponent_max']:.4f}]", f"{b['pl_rotation']['exponent_median']:.4f}",
            f"{b['rotation_curvature']['exponent_median']:.4f}"])
    section("convexity", "Local geometry at the global minimum", [
        "k = n at W = I: lambda_min of the Hessian against 1/4 - 1/(2 pi) = "
        f"{LAMBDA_MIN_GLOBAL:.12f}, and the smallest lambda_min(H(y)) over y = W + r u for "
        "random unit u and all radii: locally strongly convex.",
        "k = n + 1 at x* = (v_1/2, v_1/2, v_2, ..., v_n): Hessian inertia (negative / zero / "
        "positive); the fraction of random directions u in which H(x* + r u) has a negative "
        "eigenvalue (the most negative ~ r^p: F is not locally convex); the fraction in which "
        "OPSC holds with constant mu at every radius (reference x*, or the nearest point of the "
        "curve of split minima); the exponents p of the OPSC, PL and curvature constants along "
        "split rotations (median [min, max]; p = 1: they vanish linearly).  Radii "
        f"{r['convexity'][0]['radii'] if r['convexity'] else []}."],
        (["n", "k = n: lambda_min", "|error|", "min lambda_min(H(y))", "k = n: OPSC",
          "k = n + 1: inertia", "lambda_min(H(y)) < 0", "its exponent", "OPSC holds (ref x*)",
          "OPSC holds (ref curve)", "OPSC exponent (rotation)", "PL exponent (rotation)",
          "u'H(y)u exponent (rotation)"], crows), figure="convexity")
    load = f"{m['load_average'][0]:.2f}" if m["load_average"] else "unknown"
    section("timings", "Timings", [
        f"Machine: {m['platform']}, {m['cpu_model']}, {m['cpus']} CPUs "
        f"({m['cpus_available']} available), Python {m['python']}, numpy {m['numpy']}, "
        f"{m['blas_threads']} BLAS thread(s), "
        f"load average at the start {load} (the machine is shared).  Compute time of the whole "
        f"study {tm['compute_seconds']:.0f} s; this run {tm['wall_seconds']:.0f} s.  'compute': "
        "the time each stage took when it was computed (scan stores and caches keep it, so it "
        "survives a resumed run); 'this run': wall time of this invocation." +
        (f"  Read from an earlier run's stores and caches: {len(r['cached_stages'])} parts "
         f"({', '.join(r['cached_stages'])})." if r["cached_stages"] else ""),
        "The published protocol (plain gradient descent with step 5/k until |grad F| <= 1e-12, "
        f"at most {cfg['protocol_maxiter']} steps: landscape.descend on the library's kernels) "
        f"is timed only for k in {cfg['protocol_ks']} from the scan's first starts; scan "
        "seconds are the scan's compute time scaled to the same number of starts.  "
        "'agreement': same final loss as the scan within 1e-9."],
        (["stage", "compute (s)", "this run (s)"],
         [[k, f"{v:.1f}", f"{tm['this_run'].get(k, 0.0):.1f}"] for k, v in tm["stages"].items()]
         + [["total", f"{tm['compute_seconds']:.1f}", f"{tm['wall_seconds']:.1f}"]]),
        (["k", "starts", "protocol (s)", "scan (s)", "protocol / scan", "protocol converged",
          "agreement", "protocol spurious"],
         [[p["k"], p["n_starts"], f"{p['seconds']:.1f}", f"{p['scan_seconds']:.1f}",
           f"{p['seconds'] / p['scan_seconds']:.1f}x", f"{p['converged']}/{p['n_starts']}",
           f"{p['agreement']:.1%}", _g(p["spurious_fraction"], ".1%")] for p in r["protocol"]]),
        figure="timings")
    section("notes", "Deviations and notes", [
        "Initialisation: entries N(0, 1/d) with d = n (the library's Xavier default); for k = n "
        "this is the paper's N(0, 1/k).",
        "k = n + 1 runs on landscape.scan like k = n (until issue 14 it had its own driver, "
        "which stopped a start at the global level F <= 1e-8 and certified a subsample)."])
    write_page(out_dir, title=TITLE, subtitle=PAPER, sections=sections, summary=[
        ("mode", "quick" if r["quick"] else "full"), ("seed", cfg["seed"]),
        *[(f"spurious fraction, k = n = {row['k']}", _frac(row)) for row in rows],
        *[(f"spurious fraction, n = {p['n']}, k = n + 1", _frac(p)) for p in plus],
        ("spurious minima split / all splits strict saddles",
         f"{sm['n_spurious_minima_split']} / "
         f"{'yes' if sm['all_splits_strict_saddles'] else 'no'}"),
        ("OPSC exponent along split rotations",
         ", ".join(f"{p:.4f}" for p in sm["opsc_rotation_exponents"])),
        ("compute time (s)", f"{tm['compute_seconds']:.0f}")])
