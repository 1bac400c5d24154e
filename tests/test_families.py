"""Families of symmetric critical points followed in k (issue 18: Arjevani & Field 2021)."""

import numpy as np
import pytest

import landscape as ls

from test_isotropy_reduced import K8_VALUES, start

# Newton in Fix(G) reaches |grad L| ~ 1e-14 at k <= 30 (gradient rounding ~ k^2 eps).
GTOL = 1e-12


def teacher_student(k):
    return ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)


@pytest.fixture(scope="module")
def family():
    _, _, _, x8 = start(8)
    return ls.continue_family(teacher_student, x8, [8, 10, 14, 20, 30], gtol=GTOL)


def test_the_spurious_family_continues_to_k30_as_minima(family):
    f = family
    assert f.success_all and f.success.all() and f.message == "every k reached"
    assert f.k.tolist() == [8, 10, 14, 20, 30]
    assert f.isotropy == tuple(f"Δ(S_{k - 1} × S_1)" for k in f.k)
    assert (f.n_negative == 0).all() and (f.lambda_min > 0).all()
    # the loss falls with k (Safran & Shamir 2018, Table 1: spurious values decrease in k)
    assert np.all(np.diff(f.loss) < 0)
    for i, k in enumerate(f.k):
        m = teacher_student(int(k))
        x = f.point(i, m)
        assert np.linalg.norm(m.grad(x)) <= GTOL
        assert m.loss(x) == pytest.approx(f.loss[i], rel=1e-12)
        assert int(f.multiplicities[i].sum()) == k * k
        assert f.block_eigenvalues[i].size == 12


def test_the_family_matches_a_direct_solve(family):
    """k = 20 reached by continuation is the point Newton in Fix(G) finds from the k = 8
    values carried over by hand (tests/test_isotropy_reduced.py)."""
    values = K8_VALUES
    for k in (8, 12, 16, 20):
        m, G, F, x0 = start(k, values)
        r = ls.find_critical_point(m, x0, isotropy=G, gtol=GTOL)
        values = F.coordinates(r.x) / np.sqrt(F.sizes)
    i = family.k.tolist().index(20)
    np.testing.assert_allclose(family.values[i], values, rtol=0, atol=1e-10)
    spec = ls.hessian_spectrum(m, r.x, isotropy=G)
    np.testing.assert_allclose(family.block_eigenvalues[i], spec.block_eigenvalues, rtol=0,
                               atol=1e-9)


def test_diagonal_type_relabels_a_point_into_consecutive_blocks():
    m, G, F, x = start(8)
    rng = np.random.default_rng(0)
    pr, pc = rng.permutation(8), rng.permutation(8)
    W = m.unflatten(x)[pr][:, pc]
    sizes, y = ls.diagonal_type(m, m.flatten(W))
    assert sizes == [7, 1] or sizes == [1, 7]
    H = ls.Isotropy.diagonal(m, sizes)
    assert ls.isotropy(m, y).order == H.order == 5040
    np.testing.assert_allclose(ls.fixed_point_subspace(m, H).project(y), y, rtol=0, atol=1e-15)
    assert m.loss(y) == pytest.approx(m.loss(x), rel=1e-14)


def test_continue_family_validates():
    _, _, _, x8 = start(8)
    with pytest.raises(ValueError, match="increasing"):
        ls.continue_family(teacher_student, x8, [8, 8])
    with pytest.raises(TypeError, match="callable"):
        ls.continue_family(teacher_student(8), x8, [8, 9])
    with pytest.raises(ValueError, match="grow must index a block of size >= 2"):
        ls.continue_family(teacher_student, x8, [8, 9], grow=1)
    d = 5
    m = ls.ReluTeacherStudent(teacher=np.eye(d), n_students=d + 1)
    split = m.flatten(np.vstack([np.eye(d)[:1] / 2, np.eye(d)[:1] / 2, np.eye(d)[1:]]))
    with pytest.raises(ValueError, match="neurons or coordinates alone"):
        ls.diagonal_type(m, split)


def test_family_round_trips(family):
    g = ls.Family.from_dict(family.to_dict())
    assert g.sizes == family.sizes and g.isotropy == family.isotropy
    np.testing.assert_array_equal(g.values, family.values)
    np.testing.assert_array_equal(g.multiplicities[-1], family.multiplicities[-1])
