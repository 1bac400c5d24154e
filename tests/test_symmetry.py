"""Canonical forms and orbit distances modulo each model's symmetry group."""

import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_allclose

import landscape as ls
from landscape.models import symmetry
from landscape.models.symmetry import canonicalize, orbit_distance

# Two points of one orbit: distance and canonical forms agree to this (absolute, |x| ~ 1-10).
ORBIT_ATOL = 1e-12
# The loss is invariant along the group: relative agreement of F(g x) and F(x).
LOSS_RTOL = 1e-12
# ... and absolutely near F = 0, where the closed form cancels terms of size ~k^2.
LOSS_ATOL = 1e-13
# Points of different orbits in these tests are at least this far apart.
FAR = 0.1
# Polished critical points of one orbit agree only to the solver's accuracy.
POLISHED_ATOL = 1e-9
# Slack of the triangle inequality for floating-point distances.
TRIANGLE_ATOL = 1e-12


# ---- helpers ----------------------------------------------------------------------------

def random_orthogonal(m, rng):
    Q, R = np.linalg.qr(rng.standard_normal((m, m)))
    return Q * np.sign(np.diag(R))


def complement_rotation(V, rng):
    """A random orthogonal Q of R^d fixing span(V) pointwise and rotating its complement."""
    d = V.shape[1]
    _, sv, Vt = np.linalg.svd(V)
    r = int(np.count_nonzero(sv > 1e-12))
    B, Bp = Vt[:r].T, Vt[r:].T
    return B @ B.T + Bp @ random_orthogonal(d - r, rng) @ Bp.T


def assert_same_orbit(model, x, y, atol=ORBIT_ATOL):
    assert orbit_distance(model, x, y) <= atol
    assert orbit_distance(model, y, x) <= atol
    assert_allclose(canonicalize(model, x), canonicalize(model, y), rtol=0, atol=atol)


def assert_loss_invariant(model, x):
    assert_allclose(model.loss(canonicalize(model, x)), model.loss(x), rtol=LOSS_RTOL,
                    atol=LOSS_ATOL)


def triangle_teacher(d):
    """Three unit vectors at 120 degrees in the first two coordinates of R^d (group S_3)."""
    V = np.zeros((3, d))
    angles = np.array([0.0, 2.0, 4.0]) * np.pi / 3.0
    V[:, 0], V[:, 1] = np.cos(angles), np.sin(angles)
    return V


def rotation_120(d):
    Q = np.eye(d)
    c, s = np.cos(2 * np.pi / 3), np.sin(2 * np.pi / 3)
    Q[:2, :2] = [[c, -s], [s, c]]
    return Q


# ---- teacher-student, V = I: joint neuron and coordinate permutations ------------------

@pytest.mark.parametrize("d", [3, 8, 20])
def test_identity_teacher_joint_permutations_are_one_orbit(d):
    rng = np.random.default_rng(d)
    m = ls.ReluTeacherStudent(teacher=np.eye(d), n_students=d)
    for x in m.sample_init(3, rng=rng):
        W = m.unflatten(x)
        y = m.flatten(W[rng.permutation(d)][:, rng.permutation(d)])
        assert m.loss(y) == pytest.approx(m.loss(x), rel=LOSS_RTOL)   # it is a symmetry
        assert orbit_distance(m, x, y) == 0.0          # pure permutations: exactly 0
        assert np.array_equal(canonicalize(m, x), canonicalize(m, y))
        assert orbit_distance(m, x, canonicalize(m, x)) == 0.0
        assert_loss_invariant(m, x)


@pytest.mark.parametrize("d", [3, 8, 20])
def test_identity_and_permutation_matrices_share_a_canonical_form(d):
    rng = np.random.default_rng(10 + d)
    m = ls.ReluTeacherStudent(teacher=np.eye(d), n_students=d)
    eye = m.flatten(np.eye(d))
    for _ in range(3):
        P = m.flatten(np.eye(d)[rng.permutation(d)])
        assert_same_orbit(m, eye, P)


@pytest.mark.parametrize("d", [3, 8, 20])
def test_identity_vs_noisy_permutation_is_far(d):
    rng = np.random.default_rng(20 + d)
    m = ls.ReluTeacherStudent(teacher=np.eye(d), n_students=d)
    noise = 0.1 * rng.standard_normal((d, d))
    eye = m.flatten(np.eye(d))
    y = m.flatten(np.eye(d)[rng.permutation(d)] + noise)
    dist = orbit_distance(m, eye, y)
    # the aligning permutation is known: the distance is at most |noise| ...
    assert dist <= np.linalg.norm(noise) + ORBIT_ATOL
    # ... and the invariant lower bound certifies it is far from 0
    st = symmetry._structure(m)
    bound = symmetry._lower_bound(st, symmetry._to_features(m, st, eye),
                                  symmetry._to_features(m, st, y))
    assert FAR < bound <= dist + ORBIT_ATOL
    assert orbit_distance(m, eye, y, cutoff=0.5 * bound) == pytest.approx(bound)


@pytest.fixture(scope="module")
def identity8_minima():
    """Global and spurious minima of V = I_8, k = 8 from 200 Xavier starts."""
    m = ls.ReluTeacherStudent(teacher=np.eye(8), n_students=8)
    p = ls.descend_and_polish(m, m.sample_init(200, rng=0), lr=5 / 8)
    assert np.all(p.grad_norm <= 1e-12)
    spurious = p.x[p.loss > 1e-3]
    glob = p.x[p.loss <= 1e-20]
    assert len(spurious) >= 2 and len(glob) >= 2
    assert_allclose(p.loss[p.loss > 1e-3], 0.0215, atol=1e-4)
    return m, glob, spurious


def test_global_and_spurious_minima_are_far_apart(identity8_minima):
    m, glob, spurious = identity8_minima
    st = symmetry._structure(m)
    for x in glob[:3]:
        for y in spurious[:3]:
            dist = orbit_distance(m, x, y)
            bound = symmetry._lower_bound(st, symmetry._to_features(m, st, x),
                                          symmetry._to_features(m, st, y))
            assert FAR < bound <= dist + ORBIT_ATOL


def test_minima_of_one_kind_are_one_orbit(identity8_minima):
    m, glob, spurious = identity8_minima
    for points in (glob[:10], spurious[:10]):
        canon = np.array([canonicalize(m, x) for x in points])
        assert_allclose(canon, canon[:1].repeat(len(points), axis=0), rtol=0,
                        atol=POLISHED_ATOL)
        for y in points[1:]:
            assert orbit_distance(m, points[0], y) <= POLISHED_ATOL
        for x in points[:3]:
            assert_loss_invariant(m, x)
    # every global minimum is a relabelling of W = I
    assert orbit_distance(m, glob[0], m.flatten(np.eye(8))) <= POLISHED_ATOL


# ---- teacher-student, general teachers ---------------------------------------------

@pytest.mark.parametrize("d", [3, 8, 20])
def test_generic_teacher_has_trivial_group(d):
    rng = np.random.default_rng(30 + d)
    m = ls.ReluTeacherStudent(teacher=rng.standard_normal((d, d)), n_students=d)
    st = symmetry._structure(m)
    assert st.span_kind == "trivial" and st.order == 1 and st.n_comp == 0
    assert symmetry._structure(m) is st                      # cached on the model
    x = m.sample_init(1, rng=rng)[0]
    W = m.unflatten(x)
    assert_same_orbit(m, x, m.flatten(W[rng.permutation(d)]))
    assert_loss_invariant(m, x)
    # a coordinate permutation is not a symmetry of a generic teacher
    swapped = m.flatten(W[:, np.roll(np.arange(d), 1)])
    assert abs(m.loss(swapped) - m.loss(x)) > 1e-6
    assert orbit_distance(m, x, swapped) > FAR


def test_identity_teacher_group_orders():
    for d, kind in ((3, "finite"), (6, "finite"), (7, "coordinate")):
        st = symmetry._structure(ls.ReluTeacherStudent(teacher=np.eye(d), n_students=d))
        assert st.span_kind == kind
        assert st.order == np.prod(np.arange(1, d + 1))
    # rows of different norms are not exchangeable: the group shrinks to S_2
    V = np.diag([1.0, 1.0, 2.0])
    st = symmetry._structure(ls.ReluTeacherStudent(teacher=V, n_students=3))
    assert st.order == 2
    # duplicated (parallel) rows are merged: the teacher function is that of diag(2, 1, 1)
    V = np.vstack([np.eye(3), [[1.0, 0.0, 0.0]]])
    st = symmetry._structure(ls.ReluTeacherStudent(teacher=V, n_students=3))
    assert st.order == 2


@pytest.mark.parametrize("d", [2, 4])
def test_triangle_teacher_group_is_dihedral(d):
    rng = np.random.default_rng(40 + d)
    V = triangle_teacher(d)
    m = ls.ReluTeacherStudent(teacher=V, n_students=4)
    st = symmetry._structure(m)
    assert st.span_kind == "finite" and st.order == 6 and st.n_comp == d - 2
    Q = rotation_120(d)
    assert_allclose(V @ Q.T, V[[1, 2, 0]], atol=1e-15)      # V Q^T = P V
    reflect = np.eye(d)
    reflect[1, 1] = -1.0                                      # v1 fixed, v2 <-> v3
    for x in m.sample_init(3, rng=rng):
        W = m.unflatten(x)
        for G in (Q, reflect):
            Wg = W[rng.permutation(4)] @ G.T
            if d > 2:
                Wg = Wg @ complement_rotation(V, rng).T
            y = m.flatten(Wg)
            assert m.loss(y) == pytest.approx(m.loss(x), rel=LOSS_RTOL)
            assert_same_orbit(m, x, y)
        assert_loss_invariant(m, x)


@pytest.mark.parametrize("n, d, k", [(1, 4, 3), (2, 5, 3), (3, 6, 4)])
def test_complement_rotations_are_one_orbit(n, d, k):
    """n < d: every rotation of span(V)^perp is a (continuous) symmetry."""
    rng = np.random.default_rng(50 + 10 * n + d)
    V = rng.standard_normal((n, d))
    m = ls.ReluTeacherStudent(teacher=V, n_students=k)
    st = symmetry._structure(m)
    assert st.n_comp == d - n
    for x in m.sample_init(3, rng=rng):
        W = m.unflatten(x)
        y = m.flatten(W[rng.permutation(k)] @ complement_rotation(V, rng).T)
        assert m.loss(y) == pytest.approx(m.loss(x), rel=LOSS_RTOL)
        assert_same_orbit(m, x, y)
        assert_loss_invariant(m, x)
    # rotating the span part is not a symmetry
    x = m.sample_init(1, rng=rng)[0]
    y = m.flatten(m.unflatten(x) @ random_orthogonal(d, rng).T)
    assert orbit_distance(m, x, y) > FAR


def test_identity_teacher_in_a_larger_space():
    """V = I_n embedded in R^d: coordinate permutations of the span and rotations of the rest."""
    rng = np.random.default_rng(60)
    for n in (3, 8):
        d = n + 3
        V = np.eye(n, d)
        m = ls.ReluTeacherStudent(teacher=V, n_students=n + 1)
        for x in m.sample_init(2, rng=rng):
            W = m.unflatten(x)
            sigma = np.concatenate([rng.permutation(n), np.arange(n, d)])
            Wg = W[rng.permutation(n + 1)][:, sigma] @ complement_rotation(V, rng).T
            assert_same_orbit(m, x, m.flatten(Wg))
            assert_loss_invariant(m, x)


# ---- two layers: rescalings -----------------------------------------------------------

def rescale(a, W, rng, low=0.1, high=10.0):
    c = np.exp(rng.uniform(np.log(low), np.log(high), size=a.shape))
    return a / c, W * c[:, None]


@pytest.mark.parametrize("target", ["linear", "relu-identity", "relu-generic", "relu-signed"])
def test_two_layer_rescalings_and_symmetries(target):
    rng = np.random.default_rng(70)
    d, k = 4, 5
    if target == "linear":
        beta = rng.standard_normal(d)
        tgt = ls.LinearTarget(beta)
        V = beta[None]
    elif target == "relu-identity":
        V = np.eye(d)
        tgt = ls.ReluTarget(V)
    elif target == "relu-generic":
        V = rng.standard_normal((d, d))
        tgt = ls.ReluTarget(V, rng.standard_normal(d))
    else:
        V = np.eye(d)
        tgt = ls.ReluTarget(V, [1.0, 1.0, -1.0, -1.0])
    m = ls.TwoLayerReLU(n_hidden=k, target=tgt)
    for x in m.sample_init(3, rng=rng):
        a, W = m.unflatten(x)
        perm = rng.permutation(k)
        a2, W2 = rescale(a[perm], W[perm], rng)
        if target == "linear":
            W2 = W2 @ complement_rotation(V, rng).T
        elif target == "relu-identity":
            W2 = W2[:, rng.permutation(d)]
        elif target == "relu-signed":
            W2 = W2[:, [1, 0, 3, 2]]                           # swaps within equal a*
        y = m.flatten((a2, W2))
        assert m.loss(y) == pytest.approx(m.loss(x), rel=LOSS_RTOL)
        assert_same_orbit(m, x, y)
        assert_loss_invariant(m, x)
        # the canonical form is balanced: |a_i| = |w_i|
        ac, Wc = m.unflatten(canonicalize(m, x))
        assert_allclose(np.abs(ac), np.linalg.norm(Wc, axis=1), rtol=1e-14)
    if target == "relu-signed":
        # swapping teacher directions with different output weights is not a symmetry
        x = m.sample_init(1, rng=rng)[0]
        a, W = m.unflatten(x)
        y = m.flatten((a, W[:, [2, 1, 0, 3]]))
        assert orbit_distance(m, x, y) > FAR


def test_two_layer_pure_rescaling_distance_is_zero():
    rng = np.random.default_rng(80)
    m = ls.TwoLayerReLU(n_hidden=3, target=ls.LinearTarget([1.0, -2.0, 0.5]))
    x = m.sample_init(1, rng=rng)[0]
    a, W = m.unflatten(x)
    for c in (1e-3, 0.5, 7.0, 1e3):
        y = m.flatten((a / c, W * c))
        assert orbit_distance(m, x, y) <= ORBIT_ATOL
        assert_allclose(canonicalize(m, y), canonicalize(m, x), rtol=0, atol=ORBIT_ATOL)


def test_two_layer_zero_neurons_collapse_to_zero():
    m = ls.TwoLayerReLU(n_hidden=3, target=ls.LinearTarget([1.0, 0.0]))
    x = m.flatten(([0.0, 2.0, 1.5], [[3.0, 1.0], [0.5, 0.5], [0.0, 0.0]]))
    a, W = m.unflatten(canonicalize(m, x))
    dead = np.flatnonzero(a == 0)
    assert dead.size == 2 and np.all(W[dead] == 0)        # a = 0 or w = 0: the zero neuron
    assert_loss_invariant(m, x)
    # (0, w) and (0, 0) compute the same function and are at distance 0 on orbit closures
    y = m.flatten(([0.0, 2.0, 0.0], [[0.0, 0.0], [0.5, 0.5], [0.0, 0.0]]))
    assert orbit_distance(m, x, y) == 0.0


# ---- empirical loss: permutations within output signs -----------------------------------

def test_empirical_permutations_within_signs():
    rng = np.random.default_rng(90)
    X, y = rng.standard_normal((12, 3)), rng.standard_normal(12)
    a = np.array([1.0, -1.0, 1.0, 1.0, -1.0, -1.0])
    m = ls.EmpiricalReLU(X, y, width=6, a=a)
    plus, minus = np.flatnonzero(a > 0), np.flatnonzero(a < 0)
    for x in m.sample_init(3, rng=rng, scale=1.0):
        W = m.unflatten(x)
        perm = np.arange(6)
        perm[plus] = rng.permutation(plus)
        perm[minus] = rng.permutation(minus)
        xp = m.flatten(W[perm])
        assert m.loss(xp) == pytest.approx(m.loss(x), rel=LOSS_RTOL)
        assert_same_orbit(m, x, xp)
        assert_loss_invariant(m, x)
        cross = W.copy()
        cross[[0, 1]] = W[[1, 0]]                              # exchanges signs: not a symmetry
        assert orbit_distance(m, x, m.flatten(cross)) > FAR


def test_model_without_symmetry_is_plain_euclidean():
    m = ls.AutogradModel(lambda x: anp.sum(x ** 4), 3)
    x, y = np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])
    assert_allclose(canonicalize(m, x), x, rtol=0, atol=0)
    assert orbit_distance(m, x, y) == pytest.approx(np.sqrt(8.0), rel=1e-15)


# ---- metric properties ------------------------------------------------------------------

def exact_models():
    """Models for which orbit_distance is the exact quotient distance (documented)."""
    rng = np.random.default_rng(100)
    X = rng.standard_normal((8, 3))
    return [ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3),
            ls.ReluTeacherStudent(teacher=np.eye(4), n_students=5),
            ls.ReluTeacherStudent(teacher=rng.standard_normal((4, 4)), n_students=4),
            ls.ReluTeacherStudent(teacher=triangle_teacher(2), n_students=3),
            ls.TwoLayerReLU(n_hidden=3, target=ls.ReluTarget(np.eye(3))),
            ls.EmpiricalReLU(X, rng.standard_normal(8), width=4)]


@pytest.mark.parametrize("model", exact_models(), ids=repr)
def test_triangle_inequality_and_symmetry(model):
    rng = np.random.default_rng(110)
    for _ in range(4):
        x, y, z = model.sample_init(3, rng=rng)
        dxy, dyz, dxz = (orbit_distance(model, x, y), orbit_distance(model, y, z),
                         orbit_distance(model, x, z))
        assert dxy == orbit_distance(model, y, x)
        assert dxz <= dxy + dyz + TRIANGLE_ATOL
        assert dxy <= dxz + dyz + TRIANGLE_ATOL
        assert orbit_distance(model, x, x) == 0.0


@pytest.mark.parametrize("model", [
    ls.ReluTeacherStudent(teacher=np.eye(8), n_students=8),
    ls.ReluTeacherStudent(teacher=np.ones((1, 4)), n_students=3),
    ls.TwoLayerReLU(n_hidden=3, target=ls.LinearTarget([1.0, 2.0, 0.0]))], ids=repr)
def test_symmetric_for_heuristic_alignments(model):
    rng = np.random.default_rng(120)
    for _ in range(4):
        x, y = model.sample_init(2, rng=rng)
        d = orbit_distance(model, x, y)
        assert d == orbit_distance(model, y, x)
        assert d > 0.0


def test_cutoff_returns_a_certified_lower_bound():
    rng = np.random.default_rng(130)
    m = ls.ReluTeacherStudent(teacher=np.eye(5), n_students=5)
    x, y = m.sample_init(2, rng=rng)
    full = orbit_distance(m, x, y)
    # below the cutoff: an attained distance, at least the exact one (d = 5: exact)
    within = orbit_distance(m, x, y, cutoff=10 * full)
    assert full - ORBIT_ATOL <= within <= 10 * full
    quick = orbit_distance(m, x, y, cutoff=0.0)
    assert 0.0 < quick <= full + ORBIT_ATOL


# ---- validation and warnings ---------------------------------------------------------

def test_bad_arguments():
    m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    x = m.flatten(np.eye(3))
    with pytest.raises(ValueError, match="y must have shape"):
        orbit_distance(m, x, x[:-1])
    with pytest.raises(ValueError, match="x must have shape"):
        canonicalize(m, x[:-1])
    with pytest.raises(TypeError, match="model must be a landscape model"):
        canonicalize(np.eye(3), x)
    with pytest.raises(ValueError, match="cutoff"):
        orbit_distance(m, x, x, cutoff=-1.0)
    with pytest.raises(ValueError, match="finite"):
        orbit_distance(m, x, np.full(9, np.nan))


def test_large_non_orthogonal_teacher_group_warns():
    # I_7 plus the diagonal direction: S_7 (5040 elements) fixing a non-orthogonal row
    V = np.vstack([np.eye(7), np.ones((1, 7)) / np.sqrt(7.0)])
    m = ls.ReluTeacherStudent(teacher=V, n_students=8)
    with pytest.warns(ls.LandscapeWarning, match="upper bound"):
        st = symmetry._structure(m)
    assert not st.complete and st.order == 720


def test_linear_target_sign_flip_is_a_symmetry_and_relu_targets_have_none():
    """f(x) -> -f(-x), i.e. (a, W) -> (-a, -W): the linear target is odd and x ~ N(0, I) is
    symmetric, so the loss is unchanged; a ReLU target is not odd."""
    rng = np.random.default_rng(90)
    lin = ls.TwoLayerReLU(n_hidden=3, target=ls.LinearTarget([1.0, -2.0, 0.5]))
    relu = ls.TwoLayerReLU(n_hidden=3, target=ls.ReluTarget(np.eye(3)))
    for x in lin.sample_init(3, rng=rng):
        a, W = lin.unflatten(x)
        y = lin.flatten((-a[::-1], -W[::-1]))                # flipped and relabelled
        assert lin.loss(y) == pytest.approx(lin.loss(x), rel=LOSS_RTOL)
        assert_same_orbit(lin, x, y)
        assert relu.loss(y) != pytest.approx(relu.loss(x), rel=1e-6)
        assert orbit_distance(relu, x, y) > FAR
