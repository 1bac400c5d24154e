"""Newton in fixed-point subspaces and Hessian spectra from isotypic blocks (issue 18)."""

import re
from html import escape as html_escape

import numpy as np
import pytest

import landscape as ls
from landscape.spectrum import HessianSpectrum

# A spurious minimum of V = I_8, k = 8 (found by ls.scan(m, 60, rng=0)), isotropy
# Δ(S_7 × S_1), as its 5 orbit values in the order of ls.Isotropy.diagonal(m, [7, 1]):
# W_ii (i < 7), W_ij (i != j < 7), W_i7 (i < 7), W_7j (j < 7), W_77.
K8_VALUES = np.array([1.001434253468577, -0.02588362803793465, 0.2280890164094866,
                      0.15981604291652637, -0.6582562620095174])
# Rounding of a gradient with k^2 = 400 terms of order 1, summed: a few 1e-14.
GTOL = 1e-12
# Newton iterates from the same start in Fix(G) and in the full space agree up to the
# rounding of the directions they solve for (condition number ~1e3 here).
SAME_POINT = 1e-9
# Isotypic vs dense eigenvalues: both backward stable, so |dλ| <= ~n eps |H| (issue 18: 1e-9).
SPECTRUM_RTOL = 1e-9


def teacher_student(k, d=None):
    return ls.ReluTeacherStudent(teacher=np.eye(k if d is None else d), n_students=k)


def start(k, values=K8_VALUES, sizes=lambda k: [k - 1, 1]):
    """A point of type `sizes(k)` with the given orbit values, at any k."""
    m = teacher_student(k)
    G = ls.Isotropy.diagonal(m, sizes(k))
    F = ls.fixed_point_subspace(m, G)
    return m, G, F, F.point(values * np.sqrt(F.sizes))


@pytest.mark.parametrize("k", [8, 12, 20])
def test_newton_in_fix_agrees_with_full_newton(k):
    """Continued from k = 8, the Δ(S_{k-1} × S_1) family: Newton in the 5-dimensional
    Fix(G) and dense Newton in all k^2 parameters reach the same critical point."""
    values = K8_VALUES
    for kk in range(8, k + 1, 4):
        m, G, F, x0 = start(kk, values)
        r = ls.find_critical_point(m, x0, isotropy=G, gtol=GTOL)
        values = F.coordinates(r.x) / np.sqrt(F.sizes)
    full = ls.find_critical_point(m, x0, gtol=GTOL)
    assert r.success and full.success, (r.message, full.message)
    np.testing.assert_allclose(r.x, full.x, rtol=0, atol=SAME_POINT)
    # the closed-form loss sums ~k^2 = 400 O(1) kernel terms: its rounding is a few 1e-14, and two
    # points within SAME_POINT of each other at a critical point differ by less than that
    assert abs(r.loss - full.loss) <= 1e-13
    assert r.grad_norm == pytest.approx(np.linalg.norm(m.grad(r.x)), rel=0, abs=0)
    assert r.grad_norm <= GTOL
    assert ls.isotropy(m, r.x).order == G.order         # the result keeps the symmetry


def test_newton_in_fix_projects_its_start():
    m, G, F, x0 = start(8)
    noisy = x0 + 1e-3 * np.random.default_rng(0).standard_normal(m.n_params)
    r = ls.find_critical_point(m, noisy, isotropy=G)
    assert r.success and r.grad_norm <= GTOL
    np.testing.assert_allclose(F.project(r.x), r.x, rtol=0, atol=1e-15)
    np.testing.assert_allclose(r.x, ls.find_critical_point(m, x0, isotropy=G).x,
                               rtol=0, atol=SAME_POINT)


@pytest.mark.parametrize("method", ["newton", "newton-mr", "trust-region"])
def test_every_method_solves_in_fix(method):
    m, G, F, x0 = start(10, sizes=lambda k: [k - 1, 1])
    r = ls.find_critical_point(m, x0, isotropy=G, method=method, gtol=1e-11, maxiter=200)
    assert r.success, r.message
    assert r.method == method


def test_find_critical_point_validates_isotropy():
    m, G, F, x0 = start(8)
    with pytest.raises(TypeError, match="landscape.Isotropy"):
        ls.find_critical_point(m, x0, isotropy="Δ(S_7 × S_1)")
    with pytest.raises(ValueError, match="build it for this model"):
        ls.find_critical_point(teacher_student(9), np.ones(81), isotropy=G)


def isotypic_vs_dense(m, x, G):
    s = ls.hessian_spectrum(m, x, isotropy=G)
    dense = np.linalg.eigvalsh(m.hess(x))
    assert isinstance(s, HessianSpectrum) and s.method == "isotypic"
    assert int(s.multiplicities.sum()) == m.n_params == s.eigenvalues.size
    # every eigenvalue with its multiplicity: the expanded, sorted lists agree entry by entry
    np.testing.assert_allclose(s.eigenvalues, dense, rtol=0,
                               atol=SPECTRUM_RTOL * np.abs(dense).max())
    # the block eigenvectors are eigenvectors of H (an exactly invariant decomposition)
    assert s.residuals.max() <= 1e-12 * np.abs(dense).max()
    assert (s.n_negative, s.n_zero, s.n_positive) == (
        np.sum(dense < -s.tau), np.sum(np.abs(dense) <= s.tau), np.sum(dense > s.tau))
    return s


@pytest.mark.parametrize("sizes", [[29, 1], [2, 10], [6, 1, 3], [3, 3], [1, 1, 4], [2]])
def test_isotypic_spectrum_equals_the_dense_one(sizes):
    """At G-fixed points (critical or not: the Hessian is G-equivariant on all of Fix(G))."""
    k = sum(sizes)
    m = teacher_student(k)
    G = ls.Isotropy.diagonal(m, sizes)
    F = ls.fixed_point_subspace(m, G)
    rng = np.random.default_rng(k)
    x = F.point(rng.uniform(0.2, 1.0, F.dim) * np.sqrt(F.sizes))
    s = isotypic_vs_dense(m, x, G)
    # each block is small: at most 5 copies of an irreducible representation per factor
    assert s.block_eigenvalues.size <= 5 * len(sizes) ** 2 + 6 * len(sizes) ** 2


def test_isotypic_spectrum_of_the_k30_spurious_minimum():
    """The issue's check: at k = 30 the family's minimum, every eigenvalue, to 1e-9."""
    values = K8_VALUES
    for k in (8, 12, 16, 20, 25, 30):
        m, G, F, x0 = start(k, values)
        r = ls.find_critical_point(m, x0, isotropy=G, gtol=GTOL)
        values = F.coordinates(r.x) / np.sqrt(F.sizes)
    assert r.success
    s = isotypic_vs_dense(m, r.x, ls.isotropy(m, r.x))
    assert s.n_negative == 0 and s.lambda_min > 0             # still a minimum at k = 30
    # Schur: 12 block eigenvalues (5 + 5 + 1 + 1 copies) for k^2 = 900 eigenvalues
    assert s.block_eigenvalues.size == 12
    # dims of the trivial, standard, S^(27,2) and S^(27,1,1) representations of S_29
    assert sorted(s.multiplicities.tolist()) == [1] * 5 + [28] * 5 + [29 * 26 // 2, 28 * 27 // 2]


def test_isotypic_spectrum_of_other_group_shapes():
    # split neurons at k = d + 1: equal rows (a row factor) and a diagonal factor
    d = 5
    m = teacher_student(d + 1, d)
    W = np.vstack([np.eye(d)[:1] / 2, np.eye(d)[:1] / 2, np.eye(d)[1:]])
    x = m.flatten(W)
    s = isotypic_vs_dense(m, x, ls.isotropy(m, x))
    # PSD with zero eigenvalues (DESIGN.md: the split-neuron global minimum)
    assert s.n_zero >= 1 and s.n_negative == 0
    # a column factor, and the trivial group (the dense spectrum by other means)
    m = teacher_student(3, 4)
    W = np.array([[1.0, 0.2, 0.2, 0.2], [0.5, 0.7, 0.7, 0.7], [0.1, -0.3, -0.3, -0.3]])
    isotypic_vs_dense(m, m.flatten(W), ls.isotropy(m, m.flatten(W)))
    m = teacher_student(3)
    x = m.sample_init(1, rng=4)[0]
    isotypic_vs_dense(m, x, ls.isotropy(m, x))


def test_isotypic_spectrum_validates():
    m, G, F, x0 = start(8)
    with pytest.raises(ValueError, match="not fixed by the isotropy group"):
        ls.hessian_spectrum(m, x0 + 1e-3, isotropy=ls.Isotropy.diagonal(m, [2, 6]))
    with pytest.raises(ValueError, match="isotypic blocks"):
        ls.hessian_spectrum(m, x0, isotropy=G, method="dense")
    with pytest.raises(TypeError, match="landscape.Isotropy"):
        ls.hessian_spectrum(m, x0, isotropy=(G,))
    s = ls.hessian_spectrum(m, x0, isotropy=G)
    t = HessianSpectrum.from_dict(s.to_dict())
    np.testing.assert_array_equal(t.block_eigenvalues, s.block_eigenvalues)
    assert t.irreps == s.irreps and t.isotropy == "Δ(S_7 × S_1)"


@pytest.mark.slow
def test_k200_spectrum_from_twelve_blocks():
    """40,000 parameters: the exact spectrum from 12 Hessian-vector products."""
    m, G, F, x = start(200)
    s = ls.hessian_spectrum(m, x, isotropy=G)
    assert s.n_params == 40000 and s.block_eigenvalues.size == 12
    assert sorted(s.multiplicities.tolist()) == sorted(
        [1] * 5 + [198] * 5 + [199 * 196 // 2, 198 * 197 // 2])
    assert s.residuals.max() <= 1e-11 * s.norm


@pytest.fixture(scope="module")
def scan8():
    m = teacher_student(8)
    return m, ls.scan(m, 60, rng=0, progress=False)


def test_classify_from_isotypic_blocks_agrees_with_the_dense_verdict(scan8):
    """The COLT'21 points a k = 8 scan finds (global minimum, the Δ(S_7 × S_1) spurious
    minimum, a saddle): same kind, index, loss and λ_min from the isotypic blocks."""
    m, s = scan8
    kinds = set()
    for p in s.points:
        full = p.classification
        reduced = ls.classify(m, p.x, symmetry="auto")
        kinds.add(reduced.kind)
        assert (reduced.kind, reduced.index, reduced.nullity) == (full.kind, full.index,
                                                                  full.nullity)
        assert reduced.loss == full.loss
        # the scan's point is G-fixed to ~1e-11; its projection moves λ_min by less than 1e-9
        assert reduced.lambda_min == pytest.approx(full.lambda_min, abs=1e-9)
        assert reduced.isotropy == full.isotropy and "isotypic" in reduced.message
        G = ls.isotropy(m, p.x)
        assert ls.classify(m, p.x, symmetry=G).kind == full.kind
    assert {"strict-minimum", "strict-saddle"} <= kinds
    # names list the blocks in row order, and which copy of a point the scan keeps is decided by
    # rounding: compare the block types
    assert {_block_type(p.classification.isotropy) for p in s.points} >= {(8,), (1, 7)}


def _block_type(name):
    """The sorted block sizes of a diagonal isotropy name such as 'Δ(S_7 × S_1)'."""
    return tuple(sorted(int(t) for t in re.findall(r"S_(\d+)", name or "")))


def test_classify_validates_symmetry(scan8):
    m, s = scan8
    with pytest.raises(ValueError, match="symmetry must be None, 'auto'"):
        ls.classify(m, s.points[0].x, symmetry="yes")
    with pytest.raises(ValueError, match="build it for this model"):
        ls.classify(m, s.points[0].x, symmetry=ls.Isotropy.diagonal(teacher_student(3), [3]))
    other = ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget([1.0, 0.0]))
    x = other.flatten(([1.0, -1.0], [[1.0, 0.0], [-1.0, 0.0]]))
    assert ls.classify(other, x, symmetry="auto").isotropy is None   # no permutation group


def test_the_report_names_each_points_isotropy(scan8, tmp_path):
    m, s = scan8
    ls.write_report(s, tmp_path / "report")
    html = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    spurious = [p for p in s.points if _block_type(p.classification.isotropy) == (1, 7)]
    assert spurious and "isotropy" in html
    assert all(html_escape(p.classification.isotropy) in html for p in spurious)


@pytest.mark.slow
def test_reduced_verdicts_at_k14():
    """The same agreement on a k = 14 scan (several spurious types, issue 18: k <= 20)."""
    m = teacher_student(14)
    s = ls.scan(m, 40, rng=1, progress=False)
    names = set()
    for p in s.points:
        reduced = ls.classify(m, p.x, symmetry="auto")
        full = p.classification
        names.add(full.isotropy)
        assert (reduced.kind, reduced.index) == (full.kind, full.index)
        assert reduced.lambda_min == pytest.approx(full.lambda_min, abs=1e-9)
    assert len(names) >= 3
