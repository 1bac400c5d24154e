"""Study ``tinaz2026``: both layers of a ReLU network learn a planted linear target.

Tinaz, Xie & Soltanolkotabi (COLT 2026) train f(x) = sum_i a_i sigma(w_i.x) on y = beta.x,
x ~ N(0, I_d), both layers together: ``TwoLayerReLU(k, LinearTarget(beta))``,
L(a, W) = 1/2 [a^T K(W) a - sum_i a_i beta.w_i + |beta|^2].  Since sigma(z) - sigma(-z) = z
the global minima need output weights of both signs.  The parts (each writes its numbers into
``results.json``): (1) stationary points built exactly and classified, the cubic and quartic
order of the loss along their null directions, equal-sign fits with ever smaller second
neuron; (2) the conserved a_i^2 - |w_i|^2 along gradient flow; (3) the three phases of GD from
a small start and the local rate against the Hessian; (4) repeated output signs: a plateau
~ eps^3; (5) equal signs: stuck at |beta|^2/4; (6) success probability 1 - 2^(1-k) against
width; (7) the empirical loss (``EmpiricalReLU(train_output=True)``): recovery against n.
Run it with ``landscape study tinaz2026``.
"""

import time
from pathlib import Path

import autograd.numpy as anp
import numpy as np
from scipy.stats import binomtest, linregress
from tqdm import tqdm

import landscape as ls
from landscape.report import Section, Table, new_figure, save_figure, write_json, write_page
from landscape.studies import read_config

TITLE = ("Both layers learn a linear target: strict and non-strict saddles, a conserved "
         "quantity, three phases, width and sample size (Tinaz, Xie & Soltanolkotabi 2026)")
PAPER = ('B. Tinaz, C. Xie, M. Soltanolkotabi, "When both layers learn: training dynamics of '
         'representing linear models via ReLU networks", COLT 2026, PMLR 336:6310-6371')

# Success means a final loss at most this (population loss after gradient descent).
SUCCESS_LOSS = 1e-10
# A run is "stuck at the one-sided fit" when |L - |beta|^2/4| is at most this.
STUCK_ATOL = 1e-8
# A constructed stationary point must have |grad L| at most this (else it is polished).
CRITICAL_GTOL = 1e-12
# Radius of the second, sign-preserving higher-order search (classify's default is 0.1).
SMALL_RADIUS = 0.01
# rho_2 / |beta| of the equal-sign one-sided fit with a small second neuron (a_2 = 0.012).
SMALL_RHO = 1e-4

CONFIG_FILE = Path(__file__).with_name("config.toml")     # the settings of both modes


# ---- small helpers ---------------------------------------------------------------------------

def _net(beta, k):
    return ls.TwoLayerReLU(n_hidden=k, target=ls.LinearTarget(beta))


def _aw(X, k):
    """Output weights (B, k) and hidden weights (B, k, d) of a batch of (a, W) points."""
    X = np.atleast_2d(X)
    return X[:, :k], X[:, k:].reshape(len(X), k, -1)


def _aligned(rho, sides, bhat):
    """Balanced aligned neurons: a_i = sign(rho_i) sqrt|rho_i|, w_i = side_i sqrt|rho_i| bhat,
    so a_i |w_i| = rho_i and a_i^2 = |w_i|^2."""
    rho = np.asarray(rho, dtype=float)
    r = np.sqrt(np.abs(rho))
    return np.sign(rho) * r, (r * np.asarray(sides, float))[:, None] * bhat


def _unit_perp(rng, bhat):
    """A random unit vector orthogonal to bhat."""
    p = rng.standard_normal(bhat.size)
    p -= (p @ bhat) * bhat
    return p / np.linalg.norm(p)


def _growth_signs(X0, k, bhat):
    """Sign of the growth mode a_i + bhat.w_i of every neuron of every start.

    Near zero the dynamics are linear: d a_i/dt = |beta| bhat.w_i / 2 and
    d (bhat.w_i)/dt = |beta| a_i / 2, so a_i + bhat.w_i grows like exp(|beta| t/2)
    and fixes the output sign neuron i ends with."""
    a, W = _aw(X0, k)
    return np.sign(a + W @ bhat)


_FIELDS = ("kind", "index", "nullity", "symmetry_nullity", "manifold_nullity", "witness_floor",
           "lambda_min", "lambda_max", "tau", "loss", "grad_norm", "is_global", "margin",
           "radius", "message")


def _classification_row(c, model, x, fields=_FIELDS):
    """The classification's `fields`, and where its witness lies: the decrease it achieves,
    its distance, output weights and whether a nonzero a_i changed sign there."""
    row = {f: getattr(c, f) for f in fields} | dict(
        witness=c.witness is not None, witness_decrease=None, witness_distance=None,
        witness_a=None, witness_flips_sign=None)
    if c.witness is not None:
        a, aw = model.unflatten(x)[0], model.unflatten(c.witness)[0]
        row.update(witness_decrease=c.loss - c.witness_loss, witness_a=aw,
                   witness_distance=float(np.linalg.norm(c.witness - x)),
                   witness_flips_sign=bool(np.any((a != 0) & (np.sign(aw) != np.sign(a)))))
    return row


def _scan_row(model, x, c, radius):
    """One row of a radius scan: classify's verdict at `radius` and its witness."""
    return _classification_row(c, model, x, ("kind", "margin", "grad_norm", "index", "nullity")
                               ) | dict(radius=float(radius))


def _classify_twice(model, x):
    """classify with its default radius (0.1); a non-strict-saddle verdict is checked again
    with radius min(SMALL_RADIUS, min|a_i|/2), inside which no nonzero output weight can
    change sign.  Other verdicts are not re-checked (small_radius is None)."""
    c = ls.classify(model, x)
    row = _classification_row(c, model, x)
    a = np.abs(model.unflatten(x)[0])
    row["min_abs_a"] = float(a[a > 0].min()) if np.any(a > 0) else None
    keys = ("kind", "witness_decrease", "witness_distance", "witness_flips_sign")
    row.update({f"small_radius_{key}": None for key in keys}, small_radius=None)
    if c.kind == "non-strict-saddle":
        r = float(min(SMALL_RADIUS, 0.5 * (row["min_abs_a"] or np.inf)))
        s = _scan_row(model, x, ls.classify(model, x, radius=r), r)
        row.update({f"small_radius_{key}": s[key] for key in keys}, small_radius=r)
    return c, row


def _stationary_points(cfg, beta, bhat, rng):
    d, B = cfg["d"], float(np.linalg.norm(beta))
    perp = rng.standard_normal((2, d))
    perp -= np.outer(perp @ bhat, bhat)                   # rows orthogonal to beta

    def fit(rho, sides):
        return _aligned(B * np.array(rho), sides, bhat)

    sr = SMALL_RHO
    specs = [  # (name, k, (a, W), what the paper or the issue says)
        ("origin a = 0, W = 0", 2, (np.zeros(2), np.zeros((2, d))),
         "the small-init limit; not differentiable (zero neurons)"),
        ("a = 0, w_i perp beta", 2, (np.zeros(2), perp), "strict saddle"),
        ("one-sided fit, wrong sign: rho = |beta|(1.5, -0.5)", 2, fit([1.5, -0.5], [1, 1]),
         "non-strict saddle"),
        ("one-sided fit, zero output weight: a_2 = 0, w_2 || beta", 2,
         (np.array([np.sqrt(B), 0.0]), np.vstack([np.sqrt(B) * bhat, 0.7 * bhat])),
         "non-strict saddle (a_2 = 0 is the boundary of the wrong-sign family)"),
        ("one-sided fit, equal signs: rho = |beta|(0.5, 0.5)", 2, fit([0.5, 0.5], [1, 1]),
         "GD with equal signs stops here (no landscape claim; the issue asks what the "
         "classifier says)"),
        ("one-sided fit, equal signs, negative side: rho = -|beta|(0.5, 0.5), w || -beta", 2,
         fit([-0.5, -0.5], [-1, -1]), "as above, mirrored"),
        ("one-sided fit, equal signs, small neuron: rho = |beta|(1 - 1e-4, 1e-4)", 2,
         fit([1 - sr, sr], [1, 1]), "a local minimum (all a_i > 0) on the ball of radius "
         "min a_i = 0.012, which is smaller than classify's default radius 0.1"),
        ("k = 1 one-sided fit: rho = |beta|", 1, fit([1.0], [1]),
         "the best one neuron can do (|beta|^2/4 is the global value for k = 1)"),
        ("global minimum k = 2: rho = |beta|(1, -1)", 2, fit([1.0, -1.0], [1, -1]),
         "global minimum"),
        ("global minimum k = 3: rho = |beta|(0.5, 0.5, -1)", 3, fit([0.5, 0.5, -1.0], [1, 1, -1]),
         "global minimum (two positive neurons share sigma(beta.x))")]
    rows = []
    for name, k, params, paper in specs:
        m = _net(beta, k)
        x = m.flatten(params)
        polished, g = False, None
        if m.is_differentiable(x):
            g = float(np.linalg.norm(m.grad(x)))
            if g > CRITICAL_GTOL:
                r = ls.find_critical_point(m, x, method="newton-mr", gtol=CRITICAL_GTOL)
                x, g, polished = r.x, r.grad_norm, True
        c, row = _classify_twice(m, x)
        rows.append(row | dict(name=name, k=k, paper=paper, grad_norm=g, polished=polished,
                               loss_over_beta2=c.loss / B ** 2))
    return rows


def _paths(beta, bhat, rng_cubic, rng_quartic, w2_norm=0.7):
    """L along two explicit paths out of one-sided fits, against the kernel's cubic term.

    cubic: two aligned neurons rho rotated towards a unit p perp beta, neuron 2 by theta and
    neuron 1 by -rho_2 theta / rho_1 (f unchanged to first order): L - L* = rho_1 rho_2
    |t_1 - t_2|^3/(6 pi) + O(theta^4), negative exactly when the output signs differ.
    quartic: from the boundary point a_2 = 0, w_2 = w2_norm bhat, at distance ~ r: a_2 = -r/2
    (neuron 1 takes over rho_2 = -w2_norm r/2, L unchanged), then the null rotation of the
    wrong-sign fit by theta = (sqrt(3)/2) r / w2_norm: L - L* ~ C r^4 < 0, a saddle at every
    scale but a faint one (the split r/2 : (sqrt 3/2) r maximises s theta^3 at fixed r)."""
    nb, m = float(np.linalg.norm(beta)), _net(beta, 2)

    def rotated(a, norms, t, p):
        return m.flatten((a, np.array([norms[i] * (np.cos(t[i]) * bhat + np.sin(t[i]) * p)
                                       for i in range(2)])))

    p, thetas, out = _unit_perp(rng_cubic, bhat), np.geomspace(1e-3, 1e-1, 9), {}
    for label, rho in (("wrong_sign", nb * np.array([1.5, -0.5])),
                       ("equal_signs", nb * np.array([0.5, 0.5]))):
        a, W = _aligned(rho, [1, 1], bhat)
        norms = [np.linalg.norm(w) for w in W]
        L = [m.loss(rotated(a, norms, [-rho[1] * t / rho[0], t], p))
             for t in np.concatenate([[0.0], thetas])]
        dL = np.array(L[1:]) - L[0]
        gap = abs(1 + rho[1] / rho[0])                 # |t_1 - t_2| / theta
        out[label] = dict(rho=rho, theta=thetas, delta_loss=dL,
                          exponent=ls.power_law_fit(thetas, np.abs(dL)).exponent,
                          constant_measured=float(dL[0] / thetas[0] ** 3),
                          constant_predicted=float(rho[0] * rho[1] * gap ** 3 / (6 * np.pi)))
    p, radii = _unit_perp(rng_quartic, bhat), np.geomspace(1e-3, 1e-1, 9)
    x0 = m.flatten((np.array([np.sqrt(nb), 0.0]), np.vstack([np.sqrt(nb) * bhat, w2_norm * bhat])))
    xs = []
    for r in radii:
        s, theta = r / 2, np.sqrt(3) / 2 * r / w2_norm
        rho1, rho2 = nb + w2_norm * s, -w2_norm * s
        xs.append(rotated(np.array([np.sqrt(rho1), -s]), [np.sqrt(rho1), w2_norm],
                          [-rho2 * theta / rho1, theta], p))
    dL = np.array([m.loss(x) for x in xs]) - m.loss(x0)
    dist = np.linalg.norm(np.array(xs) - x0, axis=1)
    quartic = dict(radius=radii, distance=dist, delta_loss=dL,
                   exponent=ls.power_law_fit(dist, np.abs(dL)).exponent,
                   constant_measured=float(dL[0] / radii[0] ** 4),
                   constant_predicted=float(-nb * w2_norm * 0.5 * (np.sqrt(3) / 2 / w2_norm) ** 3
                                            / (6 * np.pi)))
    return out, quartic


def _local_minima(cfg, beta, bhat, rng):
    """The equal-sign one-sided fits are local minima: with every a_i > 0, f >= 0 and
    E[(beta.x - f)^2] >= E[sigma(-beta.x)^2] = |beta|^2/2, so L >= |beta|^2/4 = L(x) on the ball
    of radius min a_i.  Checked by random perturbations (|dx| <= 0.1) of rho = |beta|(0.5, 0.5),
    and classify must not call them saddles: rho = |beta|(1 - s, s) for ever smaller s."""
    nb, m = float(np.linalg.norm(beta)), _net(beta, 2)
    x = m.flatten(_aligned(nb * np.array([0.5, 0.5]), [1, 1], bhat))
    U = rng.standard_normal((cfg["n_perturb"], m.n_params))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    dL = m.loss_batch(x + 0.1 * rng.random(cfg["n_perturb"])[:, None] * U) - m.loss(x)
    scan = []
    for s in cfg["small_rhos"]:
        y = m.flatten(_aligned(nb * np.array([1 - s, s]), [1, 1], bhat))
        scan += [dict(rho2_over_beta=float(s), a2=float(np.sqrt(nb * s)),
                      **_scan_row(m, y, ls.classify(m, y, radius=rad), rad))
                 for rad in cfg["small_rho_radii"]]
    return dict(n=cfg["n_perturb"], radius=0.1, min_delta=float(dL.min()),
                ball_radius_all_a_positive=float(np.min(m.unflatten(x)[0]))), scan


def _conservation(cfg, beta):
    """c_i = a_i^2 - |w_i|^2 along gradient flow (conserved) and gradient descent (drifts)."""
    k, lr = cfg["flow_k"], cfg["phase_lr"]
    m = _net(beta, k)
    x0 = m.sample_init(1, rng=cfg["seed"] + 1, scale=cfg["flow_scale"])[0]
    times = np.linspace(0.0, cfg["flow_t"], cfg["flow_snapshots"] + 1)
    flow = ls.descend(m, x0, method="flow", t_eval=times, gtol=0.0, maxiter=10 ** 7,
                      record_x=True).trace
    n_gd = int(round(cfg["flow_t"] / lr))             # GD over the same time span
    gd = ls.descend(m, x0, lr=lr, maxiter=n_gd, gtol=0.0, record_at=np.arange(n_gd + 1),
                    record_x=True).trace

    def conserved(X):
        a, W = _aw(X, k)
        return a ** 2 - np.einsum("bkd,bkd->bk", W, W)

    xs = flow.x[:, 0]
    C, Cg, A2 = conserved(xs), conserved(gd.x[:, 0]), xs[:, :k] ** 2
    drift = np.max(np.abs(C - C[0]))
    return dict(
        k=k, init_scale=cfg["flow_scale"], t=times, c0=C[0], c=C, a2=A2, w2=A2 - C,
        loss=flow.loss[:, 0], flow_drift=float(drift),
        flow_relative_drift=float(drift / np.max(A2)), gd_lr=lr, gd_t=gd.t,
        gd_drift_curve=np.max(np.abs(Cg - Cg[0]), axis=1),
        gd_drift=float(np.max(np.abs(Cg - Cg[0]))), a2_range=float(np.max(A2) - np.min(A2)))


def _pick_starts(model, cfg, bhat, want_both, n, scale=None, seed_offset=0):
    X = model.sample_init(200, rng=cfg["seed"] + 17 + seed_offset,
                          scale=cfg["init_scale"] if scale is None else scale)
    s = _growth_signs(X, model.n_hidden, bhat)
    mask = np.any(s != s[:, :1], axis=1) == want_both      # both signs / one sign
    return X[mask][:n]


def _phases(cfg, beta, bhat):
    m, lr, n = _net(beta, 2), cfg["phase_lr"], cfg["phase_iters"]
    x0 = _pick_starts(m, cfg, bhat, True, 1)[0]
    trace = ls.descend(m, x0, lr=lr, maxiter=n, gtol=0.0, record_at=np.arange(n + 1),
                       record_x=True).trace
    xs, loss = trace.x[:, 0], trace.loss[:, 0]
    a, W = _aw(xs, 2)
    wn = np.linalg.norm(W, axis=2)
    cos = (W @ bhat) / wn * np.sign(a[-1])
    rho = np.abs(a) * wn / np.linalg.norm(beta)
    it = np.arange(len(xs))
    t_align = int(np.argmax(np.all(cos >= 0.99, axis=1)))
    t_growth = int(np.argmax(np.all(rho >= 0.9, axis=1)))
    window = (loss >= 1e-13) & (loss <= 1e-5) & (it >= t_growth)
    fit = linregress(it[window], np.log(loss[window]))
    # The limit and its Hessian.  Near it GD contracts the error along an eigenvector of
    # eigenvalue lambda by |1 - lr lambda| per step, so the loss by (1 - lr lambda)^2: the
    # rate is set by the eigenvalue that carries the error in the fitted window.
    r = ls.find_critical_point(m, xs[-1], method="newton-mr", gtol=CRITICAL_GTOL)
    c = ls.classify(m, r.x)
    lam, V = np.linalg.eigh(m.hess(r.x))
    levels = np.unique(np.round(lam[lam > c.tau], 6))
    e = V.T @ (xs[int(it[window].min())] - r.x)
    share = np.array([0.5 * np.sum((lam * e ** 2)[np.isclose(lam, v, atol=1e-5)])
                      for v in levels])
    share = share / share.sum()
    lam_dom, lam_slow = float(levels[np.argmax(share)]), float(levels.min())
    return dict(
        lr=lr, init_scale=cfg["init_scale"], x0=x0, loss=loss, cos=cos, rho=rho, a=a,
        w_norm=wn, t_align=t_align, t_growth=t_growth,
        loss_at_align_over_L0=float(loss[t_align] / loss[0]),
        max_w_norm_at_align=float(wn[t_align].max()), initial_loss=float(loss[0]),
        rate_measured=float(fit.slope), rate_r2=float(fit.rvalue ** 2),
        rate_predicted=float(2 * np.log(abs(1 - lr * lam_dom))),
        rate_window=[int(it[window].min()), int(it[window].max())],
        lambda_dominant=lam_dom, lambda_slow=lam_slow,
        rate_slowest_mode=float(2 * np.log(abs(1 - lr * lam_slow))),
        eigenvalue_levels=levels, loss_share_at_window_start=share,
        final_loss=float(loss[-1]), limit=_classification_row(c, m, r.x),
        sign_flips_of_a=int(np.sum(np.abs(np.diff(np.sign(a), axis=0)) > 0)),
        # the recorded losses are those of the recorded iterates
        record_matches_snapshots=bool(np.allclose(loss, m.loss_batch(xs), rtol=1e-12,
                                                  atol=1e-14)))


def _stuck(cfg, beta, bhat):
    nb2, m = float(beta @ beta), _net(beta, 2)
    x0 = _pick_starts(m, cfg, bhat, False, 1)[0]
    D = ls.descend(m, x0, lr=cfg["lr"], maxiter=cfg["stuck_iters"], gtol=1e-13, record=True,
                   record_at=np.arange(cfg["stuck_iters"] + 1),
                   callback=lambda X, at: dict(signs=np.sign(X[:, :2])))
    r = ls.find_critical_point(m, x_end := D.x[0], method="newton-mr", gtol=CRITICAL_GTOL)
    c, crow = _classify_twice(m, r.x)
    # the verdict against the search radius (classify's default 0.1 is c itself)
    scan = [_scan_row(m, r.x, c, c.radius)] + [
        _scan_row(m, r.x, ls.classify(m, r.x, radius=rad), rad) for rad in cfg["stuck_radii"]]
    a_end, W_end = m.unflatten(x_end)
    s = np.sign(a_end)
    con = ls.connect(m, r.x, m.flatten(_aligned(np.sqrt(nb2) * np.array([1, -1]), [1, -1], bhat)))
    return dict(connect=dict(success=con.success, barrier=con.barrier, message=con.message,
        barrier_upper_bound=float(con.path.peak_loss - c.loss), **_merge_path(m, r.x, con.x_b)),
        init_scale=cfg["init_scale"], lr=cfg["lr"], iterations=int(D.nit[0]),
        growth_signs=_growth_signs(x0, 2, bhat)[0],
        final_loss=float(D.loss[0]), final_grad_norm=float(D.grad_norm[0]),
        target=nb2 / 4, gap=float(D.loss[0] - nb2 / 4),
        final_a=a_end, final_cos=(W_end @ bhat) / np.linalg.norm(W_end, axis=1) * s,
        a_signs_constant_after_escape=bool(np.all(D.trace.metrics["signs"][20:, 0] == s)),
        record_at=D.record_at, record_loss=D.record_loss[0],
        polished=dict(success=bool(r.success), grad_norm=float(r.grad_norm),
                      distance=float(np.linalg.norm(r.x - x_end))),
        rho=a_end * np.linalg.norm(W_end, axis=1), polished_loss_gap=float(c.loss - nb2 / 4),
        classification=crow, radius_scan=sorted(scan, key=lambda row: row["radius"]),
        polished_a=m.unflatten(r.x)[0])


def _merge_path(m, x, x_b, n=201):
    """The small neuron merged into the big collinear one (same function), then straight to x_b."""
    a, W = m.unflatten(x)
    rho, U = a * np.linalg.norm(W, axis=1), W / np.linalg.norm(W, axis=1)[:, None]
    small, t = int(np.argmin(np.abs(rho))), np.linspace(0, 1, n)[:, None]
    R = rho + t * rho[small] * np.where(np.arange(2) == small, -1, 1)
    X = [m.flatten((np.sign(r) * np.sqrt(np.abs(r)), np.sqrt(np.abs(r))[:, None] * U)) for r in R]
    loss = m.loss_batch(np.vstack([X, X[-1] + t[1:] * (x_b - X[-1])]))
    return dict(merge_path_peak_above_fit=float(loss.max() - m.loss(x)),
                merge_path_end_loss=float(loss[-1]), cos_neurons=float(U[0] @ U[1]))


def _plateau(cfg, beta, bhat):
    """The same starts (directions Z with both growth-mode signs) scaled by eps: loss and the
    largest angle between same-sign neurons after a fixed number of GD iterations."""
    out = {}
    eps = np.array(cfg["plateau_scales"])
    for k in (2, cfg["plateau_k"]):
        m = _net(beta, k)
        # growth-mode signs do not depend on the scale, so one selection serves every eps
        Z = _pick_starts(m, cfg, bhat, True, cfg["plateau_starts"], scale=1.0, seed_offset=100)
        rows, losses = [], []
        for scale in eps:
            D = ls.descend(m, scale * Z, lr=cfg["lr"], maxiter=cfg["plateau_iters"], gtol=0.0,
                           record=True, n_records=60)
            a, W = _aw(D.x, k)
            U = W / np.linalg.norm(W, axis=2, keepdims=True)
            s = np.sign(a)
            same = (s[:, :, None] == s[:, None, :]) & ~np.eye(k, dtype=bool)
            ang = np.where(same, np.arccos(np.clip(U @ np.swapaxes(U, 1, 2), -1, 1)), 0.0)
            half = int(np.searchsorted(D.record_at, cfg["plateau_iters"] // 2))
            losses.append(D.loss)
            rows.append(dict(scale=scale, n_starts=len(Z),
                             median_final_loss=float(np.median(D.loss)),
                             median_half_loss=float(np.median(D.record_loss[:, half])),
                             median_angle=float(np.median(ang.max(axis=(1, 2)))),
                             record_at=D.record_at, median_trace=np.median(D.record_loss, 0)))
        out[f"k{k}"] = rows
    # per start: log(L(eps_j) / L(eps_j+1)) / log(eps_j / eps_j+1), median over starts
    L = np.array(losses)                            # k = plateau_k: (n_scales, n_starts) > 0
    ang = np.array([r["median_angle"] for r in rows])
    steps = np.log(eps[:-1] / eps[1:])
    out["loss_exponents"] = np.median(np.log(L[:-1] / L[1:]), axis=1) / steps
    out["angle_exponents"] = np.log(ang[:-1] / ang[1:]) / steps
    return out


def _success_sweep(cfg, beta, bhat, progress):
    nb2, n = float(beta @ beta), cfg["n_starts"]
    rows = []
    for k in tqdm(cfg["widths"], desc="width sweep", disable=not progress, leave=False):
        m = _net(beta, k)
        X0 = m.sample_init(n, rng=cfg["seed"] + 1000 + k, scale=cfg["init_scale"])
        t = time.perf_counter()
        D = ls.descend(m, X0, lr=cfg["lr"], maxiter=cfg["sweep_iters"], gtol=1e-12)
        seconds = time.perf_counter() - t
        success = D.loss <= SUCCESS_LOSS
        stuck = np.abs(D.loss - nb2 / 4) <= STUCK_ATOL
        s = _growth_signs(X0, k, bhat)
        predicted = (s.max(axis=1) > 0) & (s.min(axis=1) < 0)
        n_s = int(success.sum())
        iv, iv99 = ls.wilson_interval(n_s, n), ls.wilson_interval(n_s, n, confidence=0.99)
        theory = 1 - 2.0 ** (1 - k)
        rows.append(dict(k=k, n_starts=n, successes=n_s, rate=n_s / n, interval=list(iv),
                         interval99=list(iv99), theory=theory,
                         theory_in_interval=bool(iv[0] <= theory <= iv[1]),
                         theory_in_interval99=bool(iv99[0] <= theory <= iv99[1]),
                         binomial_p_value=float(binomtest(n_s, n, theory).pvalue),
                         stuck=int(stuck.sum()), other=int((~success & ~stuck).sum()),
                         predicted_success=int(predicted.sum()),
                         prediction_agreement=float(np.mean(predicted == success)),
                         max_loss_success=float(D.loss[success].max()) if n_s else None,
                         seconds=seconds))
    return rows


def _empirical(Xs, beta, k=2):
    """L_n = 1/(2n) sum_j (sum_i a_i sigma(w_i.x_j) - beta.x_j)^2, both layers trained."""
    return ls.EmpiricalReLU(Xs, Xs @ beta, k, train_output=True, output_scale=1.0,
                            reduction="mean")


def _sample_sweep(cfg, beta_norm, progress):
    rows = []
    jobs = [(d, ratio) for d in cfg["emp_dims"] for ratio in cfg["emp_ratios"]]
    for d, ratio in tqdm(jobs, desc="sample sweep", disable=not progress, leave=False):
        rng = np.random.default_rng([cfg["seed"], d, int(round(100 * ratio))])
        beta = rng.standard_normal(d)
        beta *= beta_norm / np.linalg.norm(beta)
        pop = _net(beta, 2)
        n = max(1, int(round(ratio * d)))
        pop_loss, emp_loss, kept = [], [], []
        for _ in range(cfg["emp_datasets"]):
            m = _empirical(rng.standard_normal((n, d)), beta)
            # sign-locked start: a = (eps, -eps), |w_i| ~ eps/3, so a_i^2 - |w_i|^2 > 0 is
            # conserved (under flow) and no output weight can cross zero
            eps, B = cfg["emp_scale"], cfg["emp_inits"]
            W0 = rng.standard_normal((B, 2, d)) * eps / (3 * np.sqrt(d))
            X0 = np.concatenate([np.tile([eps, -eps], (B, 1)), W0.reshape(B, -1)], axis=1)
            D = ls.descend(m, X0, lr=cfg["emp_lr"], maxiter=cfg["emp_maxiter"], gtol=1e-12)
            pop_loss.append(pop.loss_batch(D.x))
            emp_loss.append(D.loss)
            kept.append(np.all(np.sign(D.x[:, :2]) == [1, -1], axis=1))
        pop_loss, emp_loss = np.concatenate(pop_loss), np.concatenate(emp_loss)
        rec = pop_loss <= SUCCESS_LOSS
        rows.append(dict(d=d, n=n, ratio=ratio, runs=len(rec), recovered=int(rec.sum()),
                         rate=float(rec.mean()),
                         interval=list(ls.wilson_interval(int(rec.sum()), len(rec))),
                         fitted=int(np.sum(emp_loss <= SUCCESS_LOSS)),
                         median_population_loss=float(np.median(np.maximum(pop_loss, 0))),
                         median_empirical_loss=float(np.median(np.maximum(emp_loss, 0))),
                         signs_kept=bool(np.all(np.concatenate(kept)))))
    return rows


def _empirical_gradient_check(beta, rng):
    """The library's empirical loss and gradient against autograd of the study's formula."""
    d = beta.shape[0]
    Xs = rng.standard_normal((30, d))
    y, m = Xs @ beta, _empirical(Xs, beta, 3)

    def loss(x):
        a, W = x[:3], anp.reshape(x[3:], (3, d))
        r = anp.dot(anp.maximum(anp.dot(Xs, W.T), 0.0), a) - y
        return 0.5 * anp.mean(r * r)

    ref = ls.AutogradModel(loss, m.n_params)
    x = rng.standard_normal(m.n_params) / np.sqrt(d)
    g, gr = m.grad(x), ref.grad(x)
    return dict(max_relative_error=float(np.max(np.abs(g - gr)) / np.max(np.abs(gr))),
                loss_difference=float(abs(m.loss(x) - ref.loss(x))))


# ---- figures -------------------------------------------------------------------------------

def _save(fig, axes, out_dir, name, caption, **labels):
    """Legends on `axes`, axis labels as ax.set(**labels) on the first, then save."""
    for ax in axes:
        ax.legend(fontsize=8)
    axes[0].set(**labels)
    return save_figure(fig, out_dir, name, caption=caption)


def _fig_cubic(out_dir, cubic):
    fig, ax = new_figure(5.6, 3.8)
    for label, style in (("wrong_sign", "o-"), ("equal_signs", "s-")):
        th, c = cubic[label]["theta"], cubic[label]
        ax.loglog(th, np.abs(c["delta_loss"]), style, ms=4,
                  label=f"{label.replace('_', ' ')}, rho = {np.round(c['rho'], 3).tolist()}")
        ax.loglog(th, abs(c["constant_predicted"]) * th ** 3, "k:", lw=1)
    return _save(fig, [ax], out_dir, "cubic_order.png", (
        "Along the null rotation of a one-sided fit L decreases with a wrong-sign neuron (a "
        "non-strict saddle) and increases with equal signs; dotted: rho_1 rho_2 |t_1 - t_2|^3/"
        "(6 pi)."), xlabel="rotation angle theta of neuron 2", ylabel="|L - |beta|^2/4|")


def _fig_conserved(out_dir, cons):
    fig, (ax1, ax2) = new_figure(10.0, 3.8, ncols=2)
    t, C = cons["t"], cons["c"]
    for i in range(cons["k"]):
        line, = ax1.plot(t, cons["a2"][:, i], lw=1.2, label=f"a_{i + 1}^2")
        ax1.plot(t, cons["w2"][:, i], "--", t, C[:, i], ":", lw=1.5, color=line.get_color())
    ax2.semilogy(t[1:], np.maximum(np.max(np.abs(C - C[0]), axis=1)[1:], 1e-17),
                 label="gradient flow")
    ax2.semilogy(cons["gd_t"][1:], np.maximum(cons["gd_drift_curve"][1:], 1e-17),
                 label=f"gradient descent, lr = {cons['gd_lr']}")
    ax2.set(xlabel="time t (= lr x iteration for GD)", ylabel="max_i |c_i(t) - c_i(0)|")
    return _save(fig, [ax1, ax2], out_dir, "conserved.png", (
        "Left: a_i^2 (solid), |w_i|^2 (dashed) and c_i = a_i^2 - |w_i|^2 (dotted) along the flow. "
        "Right: the drift of c_i, O(lr^2) per step for gradient descent."),
        xlabel="time t (gradient flow)")


def _fig_phases(out_dir, ph):
    fig, axes = new_figure(7.0, 8.0, nrows=3, sharex=True)
    it, w = np.arange(len(ph["loss"])), np.arange(ph["rate_window"][0], ph["rate_window"][1] + 1)
    axes[0].semilogy(it, np.maximum(ph["loss"], 1e-17), "k", lw=1.4, label="L")
    axes[0].semilogy(w, ph["loss"][w[0]] * np.exp(ph["rate_predicted"] * (w - w[0])), "r--", lw=1,
                     label="rate (1 - lr lambda)^2 from the Hessian")
    for i in range(2):
        axes[1].plot(it, ph["cos"][:, i], label=f"neuron {i + 1}: s_i cos(w_i, beta)")
        axes[2].plot(it, ph["rho"][:, i], label=f"|a_{i + 1}| |w_{i + 1}| / |beta|")
        axes[2].plot(it, ph["a"][:, i], ":", label=f"a_{i + 1}")
    for ax in axes:
        for lo, hi, color in ((0, ph["t_align"], "#cfe3f7"), (ph["t_align"], ph["t_growth"],
                              "#f7e3c7"), (ph["t_growth"], it[-1], "#d8f0d2")):
            ax.axvspan(lo, hi, color=color, alpha=0.6, lw=0)
    axes[2].set_xlabel(f"iteration (GD, lr = {ph['lr']})")
    return _save(fig, axes, out_dir, "phases.png", "Alignment (blue), growth (orange), local "
                 "refinement (green): L decays linearly.", ylabel="loss")


def _fig_plateau(out_dir, pl, k):
    fig, ax = new_figure(6.4, 4.0)
    for key, style in (("k2", "--"), (f"k{k}", "-")):
        for r in pl[key]:
            ax.loglog(np.maximum(r["record_at"], 1), np.maximum(r["median_trace"], 1e-17), style,
                      label=f"k = {key[1:]}, eps = {r['scale']:.0e}")
    return _save(fig, [ax], out_dir, "plateau.png", (
        f"k = 2 (dashed) converges linearly to rounding; k = {k} (solid: neurons share a sign) "
        "stalls at a level that falls with eps roughly like eps^3."),
        xlabel="iteration", ylabel="median loss")


def _fig_stuck(out_dir, st, ph, nb2):
    fig, (ax1, ax2) = new_figure(10.0, 3.8, ncols=2)
    at, gap = np.maximum(st["record_at"], 1), st["record_loss"] - nb2 / 4
    ax1.semilogx(at, gap + nb2 / 4, label="k = 2, equal output signs")
    ax1.semilogx(np.arange(1, len(ph["loss"])) * ph["lr"] / st["lr"], ph["loss"][1:],
                 label="k = 2, opposite signs (phase run, same time axis)")
    ax1.axhline(nb2 / 4, color="k", ls=":", label="|beta|^2/4")
    ax2.loglog(at[gap > 0], gap[gap > 0], label="L - |beta|^2/4 (equal signs): sublinear")
    ax2.set_xlabel(f"iteration (lr = {st['lr']:.3g})")
    return _save(fig, [ax1, ax2], out_dir, "stuck.png", "Equal output signs: stuck at |beta|^2/4.",
                 xlabel=f"iteration (lr = {st['lr']:.3g})", ylabel="loss")


def _rate_bars(ax, x, rows, fmt, label):
    """Rates with their 95% Wilson intervals as error bars."""
    rate, (lo, hi) = np.array([r["rate"] for r in rows]), np.array([r["interval"] for r in rows]).T
    ax.errorbar(x, rate, yerr=[np.maximum(rate - lo, 0), np.maximum(hi - rate, 0)], fmt=fmt,
                capsize=3, label=label)


def _fig_success(out_dir, sweep):
    fig, ax = new_figure(6.0, 3.8)
    k = np.array([r["k"] for r in sweep])
    _rate_bars(ax, k, sweep, "o", f"GD, success = final loss <= {SUCCESS_LOSS:.0e} (95% Wilson)")
    ax.plot(kk := np.linspace(1, k.max(), 200), 1 - 2.0 ** (1 - kk), "k--", lw=1,
            label="1 - 2^(1-k)")
    return _save(fig, [ax], out_dir, "success.png", "Success probability of GD from a small "
                 "random init against width.", xlabel="width k", ylabel="success probability")


def _fig_samples(out_dir, rows):
    fig, (ax1, ax2) = new_figure(10.0, 3.8, ncols=2)
    for d in sorted({r["d"] for r in rows}):
        rr = [r for r in rows if r["d"] == d]
        _rate_bars(ax1, [r["ratio"] for r in rr], rr, "o-", f"d = {d}")
        ax2.semilogy([r["ratio"] for r in rr], [max(r["median_population_loss"], 1e-17)
                                                for r in rr], "o-", label=f"d = {d}")
    ax2.set(xlabel="n / d", ylabel="median population loss after GD")
    return _save(fig, [ax1, ax2], out_dir, "samples.png", (
        "GD on the empirical loss (k = 2, sign-locked small init), judged on the population "
        "loss: the curves for different d coincide against n/d, n = Theta(d)."),
        xlabel="n / d", ylabel=f"recovery rate (population loss <= {SUCCESS_LOSS:.0e})")


# ---- the study -------------------------------------------------------------------------------

def run(out_dir, *, quick=False, progress=True):
    """Run the study; write ``results.json``, ``index.html`` and figures to `out_dir`."""
    t_start, out_dir = time.perf_counter(), Path(out_dir)
    cfg = read_config(CONFIG_FILE, quick)
    mode = cfg["mode"]
    beta = np.random.default_rng(cfg["seed"]).standard_normal(cfg["d"])
    beta *= cfg["beta_norm"] / np.linalg.norm(beta)
    bhat = beta / np.linalg.norm(beta)
    timing, bar = {}, tqdm(total=8, desc="tinaz2026", disable=not progress)

    def step(name, fn):
        bar.set_postfix_str(name)
        t = time.perf_counter()
        out = fn()
        timing[name] = time.perf_counter() - t
        bar.update()
        return out

    def rng(i):
        return np.random.default_rng([cfg["seed"], i])

    results = dict(
        study="tinaz2026", mode=mode, settings=cfg, beta=beta, beta_norm2=float(beta @ beta),
        success_loss=SUCCESS_LOSS, stuck_atol=STUCK_ATOL,
        stationary_points=step("stationary points", lambda: dict(
            zip(("points", "cubic", "quartic", "local_min_check", "small_neuron_scan"),
                (_stationary_points(cfg, beta, bhat, rng(1)),
                 *_paths(beta, bhat, rng(2), rng(5)), *_local_minima(cfg, beta, bhat, rng(3)))))),
        conservation=step("conserved quantity", lambda: _conservation(cfg, beta)),
        phases=step("phases", lambda: _phases(cfg, beta, bhat)),
        stuck=step("stuck run", lambda: _stuck(cfg, beta, bhat)),
        plateau=step("plateau", lambda: _plateau(cfg, beta, bhat)),
        width_sweep=step("width sweep", lambda: _success_sweep(cfg, beta, bhat, progress)),
        sample_sweep=step("sample sweep", lambda: dict(
            rows=_sample_sweep(cfg, cfg["beta_norm"], progress),
            gradient_check=_empirical_gradient_check(beta, rng(4)))))
    step("report", lambda: _write_report(out_dir, results, cfg))
    bar.close()
    results.update(timing_seconds=timing, wall_seconds=time.perf_counter() - t_start)
    write_json(out_dir / "results.json", results)
    return results


# ---- the report: this run's numbers (the README explains the findings) ------------------------

def _cell(v):
    """A table cell: scalars as they are, short numeric vectors as lists, else ... (left out)."""
    if isinstance(v, (str, bool, int, float, np.generic)) or v is None:
        return v
    v = np.asarray(v)
    if v.ndim == 1 and 0 < v.size <= 4 and v.dtype.kind in "fiu":
        return str(np.round(v.astype(float), 8).tolist())
    return ...


def _numbers(caption="", **parts):
    """A two-column table of every scalar and short vector in the dicts `parts`."""
    rows = [[key if name == "_" else f"{name}: {key}", _cell(v)]
            for name, d in parts.items() for key, v in d.items() if key != "x0"]
    return Table(columns=["quantity", "value"], rows=[r for r in rows if r[1] is not ...],
                 caption=caption)


def _records(rows, keys, caption=""):
    """A table of `rows` (dicts) with the columns `keys` (a space-separated string)."""
    return Table(columns=keys.split(), rows=[[_cell(r[k]) for k in keys.split()] for r in rows],
                 caption=caption)


def _write_report(out_dir, res, cfg):
    out_dir, nb2 = Path(out_dir), res["beta_norm2"]
    st, cons, ph, pl = res["stationary_points"], res["conservation"], res["phases"], res["plateau"]
    stuck, sweep, samples = res["stuck"], res["width_sweep"], res["sample_sweep"]
    pts, kk = st["points"], cfg["plateau_k"]
    sections = [Section(
        title="Stationary points", id="stationary-points",
        text=("Points built in closed form (a one-sided fit: a_i = sign(rho_i) sqrt|rho_i|, w_i = "
              "sqrt|rho_i| beta/|beta|, sum rho_i = |beta|), classified with classify's defaults; "
              "a non-strict-saddle verdict is checked again at radius "
              f"min({SMALL_RADIUS}, min|a_i|/2), where no nonzero output weight can change sign. "
              "Equal-sign fits are local minima (L >= |beta|^2/4 on the ball of radius min a_i): "
              "only degenerate is a correct verdict for them. Along the null rotation of two "
              "aligned neurons L changes by rho_1 rho_2 |t_1 - t_2|^3/(6 pi) (cubic_order), along "
              "the descent path from the a_2 = 0 boundary by C r^4 (quartic)."),
        tables=[_records(pts, "name k loss_over_beta2 grad_norm kind index nullity "
                         "symmetry_nullity manifold_nullity lambda_min witness_decrease "
                         "witness_distance witness_flips_sign small_radius small_radius_kind "
                         "small_radius_witness_decrease small_radius_witness_distance paper",
                         f"d = {cfg['d']}, |beta| = {cfg['beta_norm']}; kinds verbatim; "
                         "small_radius: the sign-preserving re-check."),
                _records(st["small_neuron_scan"], "a2 radius kind witness_decrease "
                         "witness_distance witness_a witness_flips_sign", "classify on the "
                         "equal-sign fit rho = |beta|(1 - s, s), a local minimum (a2 = |a_2|)."),
                _numbers(cubic_order_wrong_sign=st["cubic"]["wrong_sign"],
                         cubic_order_equal_signs=st["cubic"]["equal_signs"],
                         quartic=st["quartic"], local_min_check=st["local_min_check"])],
        figures=[_fig_cubic(out_dir, st["cubic"])]), Section(
        title="Conserved quantity", id="conserved-quantity",
        text=("Along gradient flow d/dt (a_i^2 - |w_i|^2) = 0 (f is 1-homogeneous in (a_i, "
              f"w_i)): descend(method='flow'), k = {cons['k']}, up to t = {cfg['flow_t']}, and "
              f"gradient descent with lr = {cons['gd_lr']} over the same time."),
        tables=[_numbers(_=cons, at_T=dict(c=cons["c"][-1], a2=cons["a2"][-1]),
                         at_0=dict(a2=cons["a2"][0]))],
        figures=[_fig_conserved(out_dir, cons)]), Section(
        title="Three phases from a small random start", id="phases",
        text=(f"k = 2, entries N(0, {ph['init_scale']}^2), growth modes a_i + beta.w_i/|beta| of "
              f"opposite signs, GD lr = {ph['lr']}. Alignment ends when both s_i cos(w_i, beta) "
              ">= 0.99 (t_align), growth when both |a_i||w_i| >= 0.9|beta| (t_growth); the rate "
              "of log L is fitted where 1e-13 <= L <= 1e-5 and predicted from the Hessian at "
              "the limit, 2 log|1 - lr lambda| for the eigenvalue that holds the loss."),
        tables=[_numbers(_=ph, limit=ph["limit"])], figures=[_fig_phases(out_dir, ph)]), Section(
        title="Repeated output signs: no linear tail", id="repeated-signs",
        text=(f"The same start directions (both output signs) scaled by eps; with k = {kk} some "
              "neurons share a sign and the angle left between them (~ eps) sits on a degenerate "
              "direction of the global minimum where L is cubic in it."),
        tables=[_records([dict(k=int(key[1:]), **r) for key in ("k2", f"k{kk}") for r in pl[key]],
                         "k scale n_starts median_half_loss median_final_loss median_angle",
                         f"GD, lr = {cfg['lr']:.3g}, {cfg['plateau_iters']} iterations."),
                _numbers("Local exponents in eps between successive eps (the loss: median over "
                         "starts).", _=pl)],
        figures=[_fig_plateau(out_dir, pl, kk)]), Section(
        title="k = 2 with equal output signs: stuck at |beta|^2/4", id="stuck",
        text=("A start whose growth modes share a sign, GD to the one-sided fit, polished by "
              "newton-mr and classified at several radii. It is a local minimum: all a_i share a "
              "sign on the ball of radius |a_2|. 'connect': ls.connect to a global minimum."),
        tables=[_numbers(_=stuck, polished=stuck["polished"], classified=stuck["classification"],
                         connect=stuck["connect"]),
                _records(stuck["radius_scan"], "radius kind witness_decrease witness_distance "
                         "witness_a witness_flips_sign", "classify on the polished stuck point "
                         "at several radii; 0.1 is the default.")],
        figures=[_fig_stuck(out_dir, stuck, ph, nb2)]), Section(
        title="Success probability against width", id="success",
        text=(f"{cfg['n_starts']} starts per width, entries N(0, {cfg['init_scale']:g}^2), "
              f"batched GD (lr = {cfg['lr']:.3g}, {cfg['sweep_iters']} iterations). Success: "
              f"final loss <= {SUCCESS_LOSS:g}; stuck: |L - |beta|^2/4| <= {STUCK_ATOL:g}. "
              "'predicted': starts whose growth modes have both signs (GD should succeed exactly "
              "then: probability 1 - 2^(1-k)); 'agreement': the fraction of starts whose outcome "
              "matches."),
        tables=[_records(sweep, "k n_starts successes rate interval interval99 theory "
                         "theory_in_interval theory_in_interval99 binomial_p_value stuck other "
                         "predicted_success prediction_agreement max_loss_success seconds",
                         "interval, interval99: Wilson 95% and 99%; theory: 1 - 2^(1-k).")],
        figures=[_fig_success(out_dir, sweep)]), Section(
        title="Empirical loss: sample size", id="samples",
        text=("L_n = 1/(2n) sum_j (f(x_j) - beta.x_j)^2 is EmpiricalReLU(X, y, 2, "
              "train_output=True, output_scale=1.0, reduction='mean'); its gradient agrees with "
              "autograd of the formula to "
              f"{samples['gradient_check']['max_relative_error']:.1e}. Sign-locked start a = "
              f"(eps, -eps), |w_i| ~ eps/3, eps = {cfg['emp_scale']:g}; GD lr = {cfg['emp_lr']}, "
              f"up to {cfg['emp_maxiter']} iterations; {cfg['emp_datasets']} data sets x "
              f"{cfg['emp_inits']} starts per (d, n). Recovery: population loss <= "
              f"{SUCCESS_LOSS:g}."),
        tables=[_records(samples["rows"], "d n ratio runs recovered rate interval fitted "
                         "median_population_loss median_empirical_loss signs_kept",
                         "fitted: runs whose empirical loss is <= the recovery threshold.")],
        figures=[_fig_samples(out_dir, samples["rows"])])]
    summary = [("mode", res["mode"])] + [(p["name"].split(":")[0], p["kind"]) for p in pts] + [
        ("conserved quantity drift (flow)", cons["flow_drift"]),
        ("local rate measured / predicted",
         f"{ph['rate_measured']:.4f} / {ph['rate_predicted']:.4f} per iteration"),
        ("k = 2 equal signs: L - |beta|^2/4", stuck["gap"]),
        ("k = 2 equal signs, polished end point", stuck["classification"]["kind"]),
        ("success rate by k", ", ".join(f"{r['k']}: {r['rate']:.3f}" for r in sweep))]
    write_page(out_dir, title="tinaz2026: " + TITLE, subtitle=PAPER, sections=sections,
               summary=summary)
