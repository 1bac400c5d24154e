"""The arjevani_field study (Arjevani & Field, NeurIPS 2020/2021) in quick mode: its findings.

One quick run (module-scoped): a k = 8 scan's spurious minimum, isotropy Δ(S_7 × S_1), is
followed to k = 60 by Newton in Fix(G); every spectrum comes from 12 isotypic blocks.
"""

import json

import numpy as np
import pytest

from landscape.studies import run_study

pytestmark = pytest.mark.slow      # one quick-mode run: ~25 s on 2 cores

# The family's loss at k = 20, from Newton in Fix(G) continued from k = 8 in
# tests/test_families.py (rounding of a k^2-term loss: ~1e-16).
LOSS_K20 = 0.0112755819475
FIGURES = ("loss.png", "blocks.png", "distance.png")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("arjevani_field")
    return out, run_study("arjevani_field", out, quick=True, progress=False)


@pytest.fixture(scope="module")
def family(study):
    _, r = study
    fams = [f for f in r["families"] if f["seed_isotropy"] == "Δ(S_7 × S_1)"]
    assert len(fams) == 1
    return r, fams[0]


def test_the_family_is_followed_as_minima(family):
    r, f = family
    ks = r["config"]["ks"]
    assert f["k"] == list(ks) and f["isotropy"] == f"Δ(S_{ks[-1] - 1} × S_1)"
    assert f["first_k_not_minimum"] is None and all(i == 0 for i in f["index"])
    assert all(g <= 1e-11 for g in f["grad_norm"])
    assert np.all(np.diff(f["loss"]) < 0) and f["loss_fit"]["exponent"] < 0
    assert f["loss"][0] == pytest.approx(LOSS_K20, abs=1e-12)


def test_theta_k_eigenvalues_grow_and_the_rest_converge(family):
    """Arjevani & Field 2020: all but Θ(k) of the k² eigenvalues stay bounded; Θ(k) grow
    linearly.  Here: the k - 2 copies of one standard-representation eigenvalue and 3
    invariant ones grow with slope ~1, the other k² - k - 1 do not."""
    r, f = family
    k = f["k"][-1]
    growing = [b for b in f["blocks"] if b["grows"]]
    assert f["n_block_eigenvalues"] == 12
    assert sum(b["multiplicity_at_kmax"] for b in f["blocks"]) == k * k
    assert f["growing_eigenvalues_at_kmax"] == (k - 2) + 3
    assert all(0.85 <= b["exponent"] <= 1.15 for b in growing)      # linear in k
    assert all(abs(b["exponent"]) < 0.3 for b in f["blocks"] if not b["grows"])


def test_spurious_and_global_spectra_approach(family):
    """Arjevani & Field 2020: the spectra of the global and spurious minima agree up to
    O(k^-1/2); the mean distance of the sorted spectra falls at least that fast here."""
    r, f = family
    assert np.all(np.diff(f["distance_to_global"]) < 0)
    assert f["distance_fit"]["exponent"] < -0.5
    lam = np.array(r["global"]["lambda_min"])
    np.testing.assert_allclose(lam, 0.25 - 1 / (2 * np.pi), rtol=1e-10)   # DESIGN.md


def test_the_report_is_complete(study):
    out, r = study
    assert json.loads((out / "results.json").read_text())["study"] == "arjevani_field"
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "Δ(S_59 × S_1)" in html
    for name in FIGURES:
        assert (out / name).stat().st_size > 1000
