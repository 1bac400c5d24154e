"""The tinaz2026 study in quick mode asserts its headline findings.

Tinaz, Xie & Soltanolkotabi (COLT 2026): both layers of f = sum_i a_i sigma(w_i.x)
trained on y = beta.x.  One quick run (module fixture) is checked for the saddle
kinds, the stuck equal-sign run, the conserved quantity, the phases, the success
rate against width and the report files.
"""

import json
import re

import numpy as np
import pytest

import landscape as ls
from landscape.report import json_ready
from landscape.studies import run_study

GRAD_TOL = 1e-12            # constructed stationary points are exact to this
STUCK_TOL = 1e-8            # |L - |beta|^2/4| of the stuck run
FLOW_DRIFT_TOL = 1e-9       # drift of a_i^2 - |w_i|^2 along gradient flow (RK45, rtol 1e-10)
RATE_RTOL = 0.03            # measured local rate vs the Hessian's prediction
CUBIC_ATOL = 0.05           # exponent of the loss change along the null rotation
CUBIC_RTOL = 0.02           # its constant vs rho_1 rho_2 |t_1 - t_2|^3 / (6 pi)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("tinaz2026")
    results = run_study("tinaz2026", out, quick=True, progress=False)
    return out, results


@pytest.fixture(scope="module")
def points(study):
    return {p["name"].split(":")[0]: p for p in study[1]["stationary_points"]["points"]}


def test_constructed_points_are_critical(points):
    for name, p in points.items():
        if p["kind"] != "non-differentiable":
            assert p["grad_norm"] <= GRAD_TOL, name
            assert not p["polished"], name


def test_strict_saddle_at_zero_output_weights(points):
    p = points["a = 0, w_i perp beta"]
    assert p["kind"] == "strict-saddle"
    assert p["index"] == p["k"] == 2                 # one negative eigenvalue per neuron
    assert p["lambda_min"] < -1e-3
    assert p["loss_over_beta2"] == pytest.approx(0.5, abs=1e-14)


def test_wrong_sign_one_sided_fits_are_non_strict_saddles(points):
    for name in ("one-sided fit, wrong sign", "one-sided fit, zero output weight"):
        p = points[name]
        assert p["kind"] == "non-strict-saddle", name
        assert p["index"] == 0 and p["nullity"] > 0, name
        assert p["symmetry_nullity"] == 2, name     # one rescaling mode per neuron
        assert p["witness"] and p["witness_decrease"] > p["margin"], name
        assert p["witness_distance"] <= p["radius"] * (1 + 1e-12), name   # rounding of |y - x|
        assert not p["witness_flips_sign"], name
        assert p["loss_over_beta2"] == pytest.approx(0.25, abs=1e-14), name
        # the descent persists inside the ball where no output weight changes sign
        assert p["small_radius"] <= p["min_abs_a"] / 2, name
        assert p["small_radius_kind"] == "non-strict-saddle", name
        assert p["small_radius_witness_distance"] <= p["small_radius"] * (1 + 1e-12), name
        assert not p["small_radius_witness_flips_sign"], name


def test_zero_output_weight_descends_at_fourth_order(study, points):
    """a_2 = 0 is a saddle at every scale (an explicit path with L - L* = C r^4 < 0), and
    classify verifies it at the default radius and at radius 0.01: the witness turns a_2
    negative, and its decrease is the size the quartic law gives at its distance."""
    q = study[1]["stationary_points"]["quartic"]
    assert np.all(np.asarray(q["delta_loss"]) < 0)
    assert q["exponent"] == pytest.approx(4.0, abs=CUBIC_ATOL)
    assert q["constant_measured"] == pytest.approx(q["constant_predicted"], rel=CUBIC_RTOL)
    p = points["one-sided fit, zero output weight"]
    assert p["kind"] == "non-strict-saddle"
    assert p["small_radius"] == pytest.approx(0.01) and p["small_radius_kind"] == p["kind"]
    assert p["witness_a"][1] < 0                     # a_2 = 0 turns negative
    law = abs(q["constant_predicted"]) * p["witness_distance"] ** 4
    assert 0.5 <= p["witness_decrease"] / law <= 2.0


def test_equal_sign_one_sided_fits_are_undetermined_local_minima(study, points):
    for name in ("one-sided fit, equal signs", "one-sided fit, equal signs, negative side"):
        p = points[name]
        assert p["kind"] == "degenerate", name      # the classifier refuses to guess
        assert p["index"] == 0 and p["nullity"] > 0 and not p["witness"], name
        assert p["loss_over_beta2"] == pytest.approx(0.25, abs=1e-14), name
    check = study[1]["stationary_points"]["local_min_check"]
    assert check["min_delta"] >= 0                 # no lower point among the perturbations


def test_equal_sign_fit_with_a_small_neuron_is_not_a_saddle(points):
    """All a_i > 0 gives L >= |beta|^2/4 on the ball of radius min a_i = 0.012: a local
    minimum.  classify used to call it non-strict-saddle (a witness flipping a_2); now it is
    undetermined, the correct answer without a known optimal value."""
    p = points["one-sided fit, equal signs, small neuron"]
    assert p["index"] == 0 and p["nullity"] > 0
    assert p["loss_over_beta2"] == pytest.approx(0.25, abs=1e-14)
    assert p["min_abs_a"] == pytest.approx(0.0122, abs=1e-4)
    assert p["kind"] == "degenerate" and not p["witness"]


def test_small_neuron_scan(study):
    """Equal-sign fits with a_2 down to 1.2e-4 are local minima (L >= |beta|^2/4 on the ball of
    radius min a_i), and classify never calls them saddles: descent must persist inside half
    that ball, and the only lower points (past the sign change of a_2) lie outside it.  (It
    used to call a_2 = 1.2e-4 a non-strict saddle, and a_2 = 3.9e-4 too on CPUs without
    AVX-512.)"""
    rows = study[1]["stationary_points"]["small_neuron_scan"]
    assert rows
    for r in rows:
        key = (r["a2"], r["radius"])
        assert r["grad_norm"] <= GRAD_TOL and r["index"] == 0 and r["nullity"] > 0, key
        assert r["kind"] == "degenerate" and r["witness_distance"] is None, key


def test_minima(points):
    assert points["origin a = 0, W = 0"]["kind"] == "non-differentiable"
    k1 = points["k = 1 one-sided fit"]
    assert k1["kind"] == "strict-minimum" and k1["is_global"]
    k2 = points["global minimum k = 2"]
    assert k2["kind"] == "strict-minimum" and k2["symmetry_nullity"] == 2 and k2["is_global"]
    k3 = points["global minimum k = 3"]
    assert k3["kind"] == "degenerate-minimum" and k3["nullity"] > 0


def test_cubic_order_along_the_null_rotation(study):
    cubic = study[1]["stationary_points"]["cubic"]
    for label, sign in (("wrong_sign", -1), ("equal_signs", 1)):
        c = cubic[label]
        assert np.all(np.sign(c["delta_loss"]) == sign), label
        assert c["exponent"] == pytest.approx(3.0, abs=CUBIC_ATOL), label
        assert c["constant_measured"] == pytest.approx(c["constant_predicted"],
                                                       rel=CUBIC_RTOL), label


def test_equal_sign_run_is_stuck_at_a_quarter(study):
    res = study[1]
    st = res["stuck"]
    nb2 = res["beta_norm2"]
    assert np.all(st["growth_signs"] == st["growth_signs"][0])
    assert abs(st["final_loss"] - nb2 / 4) <= STUCK_TOL
    assert np.all(np.asarray(st["final_cos"]) >= 1 - 1e-4)  # both aligned with the same +-beta
    assert st["a_signs_constant_after_escape"]
    assert st["polished"]["success"]
    c = st["classification"]
    assert c["index"] == 0 and c["loss"] == pytest.approx(nb2 / 4, abs=1e-12)
    # a local minimum (all a_i of one sign on the ball of radius |a_2| = 0.032): undetermined,
    # and no longer a saddle at any radius (earlier rules flipped a_2 at 0.1, then from 0.25 on)
    assert c["kind"] == "degenerate" and not c["witness"]
    scan = {r["radius"]: r for r in st["radius_scan"]}
    assert 0.1 in scan and max(scan) >= 0.5
    assert float(np.min(np.abs(st["polished_a"]))) < 0.1
    for r in st["radius_scan"]:
        assert r["kind"] == "degenerate" and r["witness_distance"] is None, r["radius"]


def test_conserved_quantity_under_flow(study):
    cons = study[1]["conservation"]
    assert cons["a2_range"] >= 0.1                  # the norms really move
    assert cons["flow_drift"] <= FLOW_DRIFT_TOL
    assert cons["gd_drift"] >= 1e3 * cons["flow_drift"]   # gradient descent breaks it at O(lr^2)


def test_three_phases_and_linear_refinement(study):
    ph = study[1]["phases"]
    assert 0 < ph["t_align"] < ph["t_growth"] < ph["rate_window"][0]
    assert ph["loss_at_align_over_L0"] >= 0.99      # alignment happens before any fitting
    assert ph["max_w_norm_at_align"] <= 0.05
    assert ph["rate_r2"] >= 0.999
    assert ph["rate_measured"] == pytest.approx(ph["rate_predicted"], rel=RATE_RTOL)
    assert ph["final_loss"] <= study[1]["success_loss"]
    assert ph["limit"]["kind"] == "strict-minimum"
    assert ph["record_matches_snapshots"]


def test_repeated_signs_plateau(study):
    pl = study[1]["plateau"]
    assert all(r["median_final_loss"] <= 1e-14 for r in pl["k2"])
    k4 = sorted(pl["k4"], key=lambda r: r["scale"])
    assert all(r["median_final_loss"] > 1e-14 for r in k4)
    assert k4[-1]["median_final_loss"] > 1e2 * k4[0]["median_final_loss"]
    assert pl["loss_exponents"][-1] == pytest.approx(3.0, abs=0.3)   # the cubic angle


def test_success_probability_against_width(study):
    res = study[1]
    for r in res["width_sweep"]:
        theory = 1 - 2.0 ** (1 - r["k"])
        lo, hi = ls.wilson_interval(r["successes"], r["n_starts"])
        assert lo <= theory <= hi, r["k"]
        assert r["successes"] + r["stuck"] == r["n_starts"], r["k"]
        assert r["prediction_agreement"] == 1.0, r["k"]
        if r["successes"]:
            assert r["max_loss_success"] <= res["success_loss"]
    assert res["width_sweep"][0]["k"] == 1 and res["width_sweep"][0]["successes"] == 0


def test_sample_sweep(study):
    samples = study[1]["sample_sweep"]
    assert samples["gradient_check"]["max_relative_error"] <= 1e-10
    by_ratio = {r["ratio"]: r for r in samples["rows"]}
    assert by_ratio[1.0]["rate"] == 0.0
    assert by_ratio[4.0]["rate"] == 1.0
    assert all(r["signs_kept"] for r in samples["rows"])


def test_results_json_round_trips(study):
    out, results = study
    on_disk = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert on_disk == json_ready(results)
    assert on_disk["mode"] == "quick"


def test_report_and_figures_exist(study):
    out, _ = study
    html = (out / "index.html").read_text(encoding="utf-8")
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) == 7
    for name in images:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for anchor in ("stationary-points", "conserved-quantity", "phases", "repeated-signs",
                   "stuck", "success", "samples"):
        assert f'id="{anchor}"' in html, anchor
