"""The xu_du2023 study (Xu & Du, COLT 2023) in its quick mode: the headline findings.

One run of ``run_study("xu_du2023", quick=True)`` (module-scoped) feeds every test:
n = 1 converges linearly, n = 2, 3, 5 converge as T^-3 with angles ~ 1/T, the symmetric pair
has the constants pi and pi^2/6 of the 1/2-loss, the key numbers equal those of the study
before it ran on ``ls.descend`` (a stored baseline), and the report and results are complete.
Plus a few unit checks of the study's own pieces against the library.
"""

import json
import math

import numpy as np
import pytest

import landscape as ls
from landscape.report import json_ready
from landscape.studies import load_study, run_study

from _baseline import assert_matches_baseline, load_baseline

pytestmark = pytest.mark.slow      # one quick-mode run of the study: 1-3 minutes on 2 cores

FIGURES = ("loss.png", "single_neuron.png", "local_slope.png", "max_angle.png", "norms.png",
           "symmetric.png")
# Tolerances against the baseline, first matching path pattern wins: (pattern, rtol, atol).
TOLERANCES = [
    # Bounds, not values: maxima of rounding noise (checked in test_rounding_noise_is_small; the
    # largest deviation of a local loss ratio from the fitted one, < 1e-2, in the single-neuron test).
    (r"library_loss_rel_diff$|asymmetry$|^single\.ratio_max_local_deviation$", None, None),
    # The closed-form loss at F ~ 1e-11 is a sum of O(1) terms: its absolute floor is ~1e-16,
    # so iterates equal to 1e-16 give library losses equal to ~1e-16 absolute, not relative.
    (r"final_library_loss", 0.0, 1e-15),
    # Gradient flow: one RK45 run (rtol 1e-10) through the records instead of the baseline's runs
    # restarted at each record -- another step sequence, each within the integrator's tolerance
    # (observed 2.3e-10 on lim phi t).
    (r"^symmetric\.flow\.", 1e-8, 0.0),
    # The n = 1 rate is fitted to library losses down to 1e-13, whose rounding (absolute ~1e-16,
    # summed in another order by the compiled kernel than by the numpy kernel the baseline ran
    # on) is ~1e-3 of the smallest of them: the fitted ratio moves by ~3e-7 (observed).
    (r"^single\.ratio_per_step\.", 1e-5, 0.0),
    # Small differences of iterate-derived numbers (a ~1e-7 drift, ~1e-5 deviations): compared
    # absolutely, at the size of the rounding of the numbers they are differences of.
    (r"norm_ratio_drift_on_tail$|max_rel_dev$", 0.0, 1e-12),
    # Everything else comes from the GD iterates: ls.descend's gradient (the library kernel) vs
    # the baseline's fused single-teacher gradient, the same closed form summed in another order
    # (~1 ulp per step); after 5e4 contracting steps the iterates and every number fitted to
    # them agreed to 3e-14 relative.
    (r"", 1e-10, 0.0),
]
ROUNDING_NOISE_BOUND = {"library_loss_rel_diff": 1e-5, "asymmetry": 1e-10}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("xu_du2023")
    return out, run_study("xu_du2023", out, quick=True, progress=False)


@pytest.fixture(scope="module")
def module():
    return load_study("xu_du2023")


def test_quick_mode_settings(study):
    _, r = study
    assert r["mode"] == "quick"
    assert r["config"]["lr"] == 0.1 and r["config"]["init_scale"] == 1e-3
    assert r["config"]["dim"] == 10
    assert sorted(r["over"]) == ["2", "3", "5"]


def test_single_student_converges_linearly(study):
    _, r = study
    s = r["single"]
    # the library loss is at or below 1e-14 within a few hundred steps, for every start
    assert s["steps_to_target"]["max"] <= 400
    assert s["final_library_loss"]["max"] <= 1e-14
    # a constant geometric ratio, equal to (1 - eta/2)^2 (Hessian I/2 at w = v)
    assert s["ratio_predicted"] == pytest.approx((1 - 0.1 / 2) ** 2)
    assert s["ratio_per_step"]["min"] == pytest.approx(s["ratio_predicted"], rel=1e-4)
    assert s["ratio_per_step"]["max"] == pytest.approx(s["ratio_predicted"], rel=1e-4)
    assert s["ratio_max_local_deviation"] < 1e-2


@pytest.mark.parametrize("n", ["2", "3", "5"])
def test_overparameterised_loss_slope_is_minus_three(study, n):
    _, r = study
    slope = r["over"][n]["loss_slope"]
    assert len(slope["per_start"]) == r["config"]["seeds"]
    assert all(-3.3 <= s <= -2.7 for s in slope["per_start"]), slope
    lo, hi = slope["window_steps"]
    assert hi == r["config"]["steps"] and lo == pytest.approx(hi / math.sqrt(10))


@pytest.mark.parametrize("n", ["2", "3", "5"])
def test_max_angle_decays_as_one_over_t(study, n):
    _, r = study
    o = r["over"][n]
    assert all(-1.1 <= s <= -0.9 for s in o["angle_slope"]["per_start"]), o["angle_slope"]
    assert 1.0 < o["angle_constant"]["min"] and o["angle_constant"]["max"] < 4.0


@pytest.mark.parametrize("n", ["2", "3", "5"])
def test_three_phases_in_order_and_norms_balance(study, n):
    _, r = study
    o = r["over"][n]
    align = np.array(o["phases"]["alignment_end_steps"]["per_start"])
    local = np.array(o["phases"]["local_start_steps"]["per_start"])
    assert np.all(np.isfinite(align)) and np.all(np.isfinite(local))
    assert np.all(0 < align) and np.all(align < local) and np.all(local < 1000)
    # the students' norms sum to |v| = 1, nearly equal (max/min < 1.5), frozen on the tail
    assert o["norm_sum_end"]["max"] == pytest.approx(1.0, abs=1e-4)
    assert o["norm_ratio_end"]["max"] < 1.5
    assert o["norm_ratio_drift_on_tail"] < 1e-4


def test_two_students_follow_the_reduced_pair_dynamics(study):
    _, r = study
    p = r["over"]["2"]["pair_prediction"]
    assert p["angle_max_rel_dev"] < 1e-3
    assert p["loss_max_rel_dev"] < 1e-3


def test_balance_improves_with_smaller_steps(study):
    _, r = study
    runs = {b["lr"]: b for b in r["balance"]["runs"] if b["init_scale"] == 1e-3}
    assert runs[0.01]["norm_ratio"]["median"] < runs[0.1]["norm_ratio"]["median"]
    assert (runs[0.01]["norm_sum_at_alignment_end"]["median"]
            < runs[0.1]["norm_sum_at_alignment_end"]["median"])


def test_symmetric_pair_constants(study):
    _, r = study
    sym = r["symmetric"]
    assert sym["predicted_angle_constant"] == pytest.approx(math.pi)
    assert sym["predicted_loss_constant"] == pytest.approx(math.pi ** 2 / 6)
    for run in ("flow", "gd"):
        assert sym[run]["angle_constant"] == pytest.approx(math.pi, rel=1e-3), run
        assert sym[run]["loss_constant"] == pytest.approx(math.pi ** 2 / 6, rel=1e-3), run
        assert sym[run]["asymmetry"] < 1e-10, run
    assert sym["flow"]["norm_at_end"] == pytest.approx(0.5, abs=1e-4)


def test_quick_results_equal_the_baseline(study):
    _, r = study
    baseline = load_baseline("xu_du2023-quick")
    assert baseline["mode"] == "quick" and "21201e7" in baseline["source"]
    assert assert_matches_baseline(r, baseline, TOLERANCES) >= 80      # values compared


def test_rounding_noise_is_small(study):
    _, r = study
    for n, o in r["over"].items():
        assert 0 < o["library_loss_rel_diff"] < ROUNDING_NOISE_BOUND["library_loss_rel_diff"], n
    for run in ("flow", "gd"):
        assert r["symmetric"][run]["asymmetry"] < ROUNDING_NOISE_BOUND["asymmetry"], run
    assert r["cost"]["seconds"] > 0 and r["cost"]["us_per_step"] > 0


def test_results_json_round_trips(study):
    out, r = study
    on_disk = json.loads((out / "results.json").read_text(encoding="utf-8"))
    returned = {k: v for k, v in r.items() if k != "wall_seconds"}
    assert on_disk == json_ready(returned)
    assert on_disk["title"] and on_disk["paper"].startswith("W. Xu, S. S. Du")


def test_report_and_figures_exist(study):
    out, _ = study
    html = (out / "index.html").read_text(encoding="utf-8")
    for f in FIGURES:
        assert (out / f).is_file() and (out / f).stat().st_size > 1000, f
        assert f'src="{f}"' in html, f
    for anchor in ("setup", "single", "over", "angle", "norms", "symmetric", "timing"):
        assert f'id="{anchor}"' in html, anchor


# ---- the study's pieces -----------------------------------------------------------------

def test_precise_loss_matches_the_model(module):
    rng = np.random.default_rng(0)
    v = module.teacher(6)
    for n in (1, 2, 4):
        m = ls.ReluTeacherStudent(teacher=v, n_students=n)
        X = m.sample_init(3, rng=rng)
        geo = module.geometry(X.reshape(3, n, 6), v[0])
        np.testing.assert_allclose(geo["loss"], m.loss_batch(X), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(geo["loss"], geo["radial"] + geo["angular"], rtol=0)


def test_tail_fit_and_asymptotic_constant_recover_a_power_law(module):
    t = np.geomspace(10.0, 1e4, 50)
    fit = module.tail_fit(t, 2.5 * t ** -3.0, 100.0, 1e4)
    assert fit.exponent == pytest.approx(-3.0, rel=1e-12)     # exact data: rounding only
    assert fit.prefactor == pytest.approx(2.5, rel=1e-10)
    assert fit.n_points == np.count_nonzero(t >= 100.0)
    # y = C / (t + c)^3: the shift-free constant is C whatever c is
    assert module.asymptotic_constant(t, 1.7 / (t + 40.0) ** 3, 3, 100.0, 1e4) == \
        pytest.approx(1.7, rel=1e-10)
    with pytest.raises(ValueError, match="at least two distinct"):
        module.tail_fit(t, t, 1e5, 1e6)


def test_h_cubic_is_accurate_for_small_angles(module):
    theta = np.array([1e-8, 1e-4, 0.05, 0.0999, 0.1, 0.5, 2.0])
    small = theta[:2]          # where sin - theta cos loses every digit
    exact = small ** 3 / 3 - small ** 5 / 30 + small ** 7 / 840
    np.testing.assert_allclose(module.h_cubic(small), exact, rtol=1e-14)
    big = theta[2:]
    np.testing.assert_allclose(module.h_cubic(big), np.sin(big) - big * np.cos(big),
                               rtol=1e-12)


def test_mirror_is_exact(module):
    v = module.teacher(4)[0]
    w = np.array([0.3, -0.2, 0.7, 1e-3])
    assert np.array_equal(module.mirror(w, v), np.array([0.3, 0.2, -0.7, -1e-3]))
