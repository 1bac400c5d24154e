"""The du2019 study (Du, Zhai, Poczos & Singh, ICLR 2019) in quick mode: its headline findings.

The study runs once per module (``run_study(..., quick=True)``, n = d = 100,
widths 100 ... 10^4); every test reads its results, its ``data.npz`` or its report
and checks one claim, recomputing what it can independently of the study's code; the
key numbers equal those of the study before it ran on ``ls.descend`` (a stored baseline).
"""

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import landscape as ls
from landscape.studies import load_study, run_study

from _baseline import assert_matches_baseline, load_baseline

pytestmark = pytest.mark.slow      # one quick-mode run of the study: ~1.5 minutes on 2 cores

EXPONENT = -0.5              # patterns changed and max movement ~ m^-1/2
EXPONENT_TOL = 0.15
MAX_EXPONENT_STDERR = 0.05
LAMBDA0_RTOL = 1e-9          # lambda_0 against an independent H-infinity
RATE_TO_HINF_TOL = 0.10      # widest width: measured rate / H-infinity linearised rate - 1
RATE_TO_LAMBDA0 = (0.9, 1.15)    # widest width: measured rate / (-2 log(1 - eta lambda_0))
MIN_R2 = 0.999               # log residual is linear in t over the fit window
MAX_FINAL_RESIDUAL = 1e-8    # |y - u(T)|^2 / |y - u(0)|^2
GD_ATOL = 1e-12              # the study's train() against GD written out with model.grad
FIGURES = ("hinf_spectrum.png", "loss.png", "rates.png", "scaling.png", "movement.png")
# Tolerances against the baseline, first matching path pattern wins: (pattern, rtol, atol).
TOLERANCES = [
    # |y - u(T)|^2 ~ 1e-13 |y - u(0)|^2 is the square of a difference of O(1) outputs: their
    # ~1e-16 rounding is ~1e-9 of it (observed 1.7e-9).
    (r"final_relative_residual", 1e-7, 0.0),
    # The sample standard deviation of three rates that agree to ~1e-2 cancels ~2 digits of
    # their ~1e-12 differences (observed 1e-10).
    (r"rate_std$", 1e-8, 0.0),
    # Everything else: ls.descend on EmpiricalReLU vs the baseline's lean loop, the same
    # formulas in another summation order (~1 ulp per step over 60 contracting steps), and
    # scipy.stats.linregress vs the former hand-written least squares (observed <= 1e-11;
    # H-infinity, lambda_0 and eta are computed exactly as before).
    (r"", 1e-9, 0.0),
]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("du2019")
    results = run_study("du2019", out, quick=True, progress=False)
    return out, results


@pytest.fixture(scope="module")
def data(study):
    out, _ = study
    with np.load(out / "data.npz", allow_pickle=False) as f:
        return f["X"], f["y"]


def independent_hinf(X):
    """H-infinity_ij = x_i.x_j (pi - arccos(x_i.x_j)) / (2 pi) for unit rows; exact diagonal 1/2."""
    G = X @ X.T
    H = G * (np.pi - np.arccos(np.clip(G, -1.0, 1.0))) / (2 * np.pi)
    np.fill_diagonal(H, 0.5)
    return H


def test_quick_setting(study, data):
    _, r = study
    X, y = data
    cfg = r["config"]
    assert r["quick"] is True
    assert X.shape == (cfg["n_samples"], cfg["dim"]) and y.shape == (cfg["n_samples"],)
    assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-14)
    widths = [w["width"] for w in r["widths"]]
    assert widths == cfg["widths"] and widths == sorted(widths)
    assert widths[-1] / widths[0] >= 100, "widths must span at least two decades"
    assert all(len(w["rates"]) == cfg["seeds"] >= 2 for w in r["widths"])


def test_lambda0_positive_and_equal_to_independent_hinf(study, data):
    _, r = study
    X, _ = data
    eig = np.linalg.eigvalsh(independent_hinf(X))
    assert eig[0] > 0
    assert r["lambda0"] > 0
    assert_allclose(r["lambda0"], eig[0], rtol=LAMBDA0_RTOL)
    assert_allclose(r["hinf_eigenvalues"], eig, rtol=0, atol=1e-12)
    assert_allclose(r["lambda_max"], eig[-1], rtol=LAMBDA0_RTOL)
    assert_allclose(r["eta"], r["config"]["step_factor"] / eig[-1], rtol=LAMBDA0_RTOL)


@pytest.mark.parametrize("key", ["pattern_change", "max_distance"])
def test_exponent_is_minus_one_half(study, key):
    _, r = study
    fit = r["exponents"][key]
    assert abs(fit["slope"] - EXPONENT) <= EXPONENT_TOL, fit
    assert 0 < fit["stderr"] <= MAX_EXPONENT_STDERR, fit
    assert all(abs(s - EXPONENT) <= EXPONENT_TOL for s in fit["per_seed_slopes"]), fit
    # the fit itself, recomputed from the per-width seed means
    m = np.log([w["width"] for w in r["widths"]])
    v = np.log([np.mean(w[key]) for w in r["widths"]])
    coef, cov = np.polyfit(m, v, 1, cov=True)
    assert_allclose(fit["slope"], coef[0], rtol=1e-10)
    assert_allclose(fit["stderr"], np.sqrt(cov[0, 0]), rtol=1e-8)
    # and the quantity decreases with m at every step
    assert np.all(np.diff(v) < 0)


def test_loss_decreases_linearly_at_the_lambda0_rate(study):
    _, r = study
    lam0, eta = r["lambda0"], r["eta"]
    assert_allclose(r["rate_paper"], -np.log(1 - eta * lam0 / 2), rtol=1e-12)
    assert_allclose(r["rate_linearized"], -2 * np.log(1 - eta * lam0), rtol=1e-12)
    for w in r["widths"]:
        assert w["monotone"], w["width"]
        assert max(w["final_relative_residual"]) <= MAX_FINAL_RESIDUAL, w["width"]
        assert min(w["rate_r2"]) >= MIN_R2, w["width"]
        assert min(w["rates"]) > r["rate_paper"], "Theorem 4.1's rate must be a lower bound"
    widest, narrowest = r["widths"][-1], r["widths"][0]
    assert abs(widest["rate_over_hinf_linearized"] - 1) <= RATE_TO_HINF_TOL
    assert RATE_TO_LAMBDA0[0] <= widest["rate_over_linearized"] <= RATE_TO_LAMBDA0[1]
    # the rate approaches the infinite-width prediction as m grows
    assert (abs(widest["rate_over_hinf_linearized"] - 1)
            < abs(narrowest["rate_over_hinf_linearized"] - 1))
    # the stored seed-mean curve has the reported rate over the fit window
    lo, hi = r["config"]["rate_window"]
    curve = np.asarray(widest["curve_relative_residual"])
    t = np.flatnonzero((curve >= lo) & (curve <= hi))
    assert t.size >= 5
    assert_allclose(-np.polyfit(t, np.log(curve[t]), 1)[0], widest["rate_mean"], rtol=0.03)


def test_movement_inside_the_papers_bound(study):
    _, r = study
    for w in r["widths"]:
        assert np.all(np.asarray(w["distance_over_bound"]) < 1), w["width"]
        assert_allclose(w["distance_over_bound"],
                        np.asarray(w["max_distance"]) / np.asarray(w["distance_bound"]))


def test_train_is_gradient_descent_with_its_movement(study, data):
    _, r = study
    X, y = data
    module = load_study("du2019")
    rng = np.random.default_rng(7)
    W0, a = rng.standard_normal((40, X.shape[1])), rng.choice([-1.0, 1.0], 40)
    model = ls.EmpiricalReLU(X, y, width=40, a=a)
    d = module.train(model, W0, eta=r["eta"], iterations=4)
    x, xs = W0.ravel(), [W0.ravel()]
    for _ in range(4):                           # GD written out with the model's gradient
        x = x - r["eta"] * model.grad(x)
        xs.append(x)
    assert_allclose(d.x[0], x, rtol=0, atol=GD_ATOL)
    tr = d.trace
    assert_array_equal(tr.nit, np.arange(5))
    assert_allclose(tr.loss[:, 0], [model.loss(z) for z in xs], rtol=1e-12)
    for k, z in enumerate(xs):
        changed = model.activation_patterns(z) != model.activation_patterns(W0.ravel())
        assert tr.metrics["pattern_change"][k, 0] == np.mean(changed)
        assert_allclose(tr.metrics["max_distance"][k, 0],
                        np.linalg.norm(model.unflatten(z) - W0, axis=1).max(), rtol=1e-12)


def test_quick_results_equal_the_baseline(study):
    _, r = study
    baseline = load_baseline("du2019-quick")
    assert baseline["mode"] == "quick" and "21201e7" in baseline["source"]
    assert assert_matches_baseline(r, baseline, TOLERANCES) > 100


def test_results_json_round_trips(study):
    out, r = study
    with open(out / "results.json", encoding="utf-8") as fh:
        loaded = json.load(fh)
    assert loaded == r
    assert loaded["study"] == "du2019" and loaded["wall_seconds"] > 0


def test_report_and_figures_exist(study):
    out, r = study
    html = (out / "index.html").read_text(encoding="utf-8")
    for name in FIGURES:
        f = out / name
        assert f.is_file() and f.stat().st_size > 1000, name
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f'src="{name}"' in html, name
    for section in ("setting", "gram", "rate", "lazy", "timing"):
        assert f'id="{section}"' in html, section
    assert f"{r['lambda0']:.6g}" in html
