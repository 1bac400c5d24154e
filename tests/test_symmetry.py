"""Symmetry as data (Model.symmetry()), canonical forms and orbit distances modulo it."""

import inspect

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
    # ... and the invariant lower bound (what a cutoff below it returns) certifies it is far
    bound = orbit_distance(m, eye, y, cutoff=0.0)
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
    for x in glob[:3]:
        for y in spurious[:3]:
            dist = orbit_distance(m, x, y)
            bound = orbit_distance(m, x, y, cutoff=0.0)      # the invariant lower bound
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
    stab = m.symmetry().stabilizer
    assert stab.kind == "trivial" and stab.order == 1 and stab.rank == d   # no complement
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
        stab = ls.ReluTeacherStudent(teacher=np.eye(d), n_students=d).symmetry().stabilizer
        assert stab.kind == kind and stab.complete
        assert stab.order == np.prod(np.arange(1, d + 1))
        assert stab.maps is None if kind == "coordinate" else stab.maps.shape == (stab.order, d, d)
    # rows of different norms are not exchangeable: the group shrinks to S_2
    V = np.diag([1.0, 1.0, 2.0])
    assert ls.Stabilizer.of_teacher(V).order == 2
    # duplicated (parallel) rows are merged: the teacher function is that of diag(2, 1, 1)
    V = np.vstack([np.eye(3), [[1.0, 0.0, 0.0]]])
    assert ls.ReluTeacherStudent(teacher=V, n_students=3).symmetry().stabilizer.order == 2


@pytest.mark.parametrize("d", [2, 4])
def test_triangle_teacher_group_is_dihedral(d):
    rng = np.random.default_rng(40 + d)
    V = triangle_teacher(d)
    m = ls.ReluTeacherStudent(teacher=V, n_students=4)
    stab = m.symmetry().stabilizer
    assert stab.kind == "finite" and stab.order == 6 and stab.rank == 2
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
    assert m.symmetry().stabilizer.rank == n                 # O(d - n) on the complement
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
    stab = m.symmetry().stabilizer
    assert not stab.complete and stab.order == 720
    with pytest.warns(ls.LandscapeWarning, match="upper bound"):
        canonicalize(m, m.sample_init(1, rng=0)[0])


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


# ---- canonical forms are those of the isinstance-dispatch code (before Model.symmetry()) ----

# Canonical forms computed by main at 21201e7 (landscape/models/symmetry.py dispatching with
# isinstance, before symmetry became data), with OPENBLAS_NUM_THREADS=1:
# `ls.canonicalize(model, x)` for each (model, x) of `reference_cases()`, printed with repr.
# The inputs came from np.random.default_rng(2024) and are stored too.
GENERIC_TEACHER = np.array([
    -0.43950590401335643, -0.3876358717280692, -1.3886836827516753, -2.0981967905109227,
    0.6343009414440183, -1.1652663772886236, 0.7782729899588319, 1.8481672953210666]).reshape(2, 4)

REFERENCE_FORMS = {
    "identity-3": (
        [1.0288568739519013, 1.6419200406711503, 1.1467195295966137, -0.9731795154745656,
         -1.3928000963768683, 0.06719635507109722, 0.8613509179404263, 0.509186798845688,
         1.8102855742952833],
        [-1.3928000963768683, -0.9731795154745656, 0.06719635507109722, 0.509186798845688,
         0.8613509179404263, 1.8102855742952833, 1.6419200406711503, 1.0288568739519013,
         1.1467195295966137]),
    "identity-7-k3": (
        [0.7508434731539183, 0.6397595539314624, -0.7313225212292476, -1.1077170351272676,
         1.4844055856837017, 0.048912403069534136, 0.8115201169815576, -1.3764228399745688,
         -0.43637073584081926, -1.2910916333479945, -0.7756786842437912, 0.9030630777436289,
         -1.4805813250203528, -0.5340928297145819, 0.16378857220098098, -0.6684703049155165,
         -0.25228975964635664, -0.22186154087661292, 0.4181385697197018, -0.43125454836060817,
         0.27226068000682285],
        [-1.4805813250203528, -1.3764228399745688, -1.2910916333479945, -0.7756786842437912,
         -0.43637073584081926, -0.5340928297145819, 0.9030630777436289, 0.048912403069534136,
         0.7508434731539183, -0.7313225212292476, -1.1077170351272676, 0.6397595539314624,
         0.8115201169815576, 1.4844055856837017, -0.43125454836060817, 0.16378857220098098,
         -0.25228975964635664, -0.22186154087661292, -0.6684703049155165, 0.27226068000682285,
         0.4181385697197018]),
    "identity-4-structured": (
        [0.1, 0.1, 0.1, 0.9, 0.1, 0.1, 0.5, 0.1, 0.1, 0.9, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1],
        [0.1, 0.1, 0.1, 0.5, 0.1, 0.1, 0.9, 0.1, 0.1, 0.9, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1]),
    "triangle-3": (
        [0.05681919548353432, 0.42456925614196805, 0.224943388070294, 1.6576840551979304,
         -0.6636760694670103, 1.1991871656162354, -0.4026124264424147, -0.9579261729918135,
         1.21119446936847],
        [1.6576840551979306, 0.6636760694670092, 1.1991871656162354, -0.4026124264424142,
         0.9579261729918135, 1.21119446936847, 0.056819195483534125, -0.42456925614196794,
         0.224943388070294]),
    "generic-2x4": (
        [-0.11479794585014706, -1.1266151030496365, 0.3941991740101531, 0.761728470454166,
         -0.26179037875573763, 0.01746449083513856, 1.335270728748762, 1.2654519785916296],
        [0.0874935498227918, -1.146945582987139, 0.5754237631321, 0.6031679795134012,
         -0.21298968520665287, 0.012559976595252284, 1.378989252890763, 1.2272009295218111]),
    "two-layer-linear": (
        [0.7099782281560677, -0.8664008771744728, -0.053675571091266104, 0.6029173174380699,
         -0.21186586854573583, -0.6100179289879054, -0.7653887202041866, -0.6320088192840502],
        [-0.6747707593957389, 1.004695729588453, 0.49127668156681453, -0.43023362249803043,
         0.1698876980726483, -0.7197312364436077, 0.07513058672354582, 0.696961872184703]),
    "two-layer-relu-signed": (
        [-0.6716047883569987, -0.4511113866062102, 1.1456772338915662, -0.8006419813196771,
         0.886902071116937, 0.4175846609939748, 0.13974968489353012, -0.8274018550207518,
         -0.45669421292582424, 1.9735553403293085, 0.09906791154843822, 0.5382077472406755],
        [-0.9219821380071076, -0.6564824541508308, 1.5317880353097206, -0.5832162752916419,
         0.6460512120694494, 0.30418361300815727, 0.09603101153959688, -0.5685611180298282,
         -0.313824015166544, 1.476090275625658, 0.07409631636617392, 0.4025441829443668]),
    "empirical": (
        [2.248808075105902, 0.4622860020006555, -0.058919583651991944, -0.8452112239256144,
         0.4318338284071015, -1.3274366057127434, -0.6949340684151928, 0.4230625681693494],
        [0.4318338284071015, -1.3274366057127434, -0.6949340684151928, 0.4230625681693494,
         2.248808075105902, 0.4622860020006555, -0.058919583651991944, -0.8452112239256144]),
    "autograd": (
        [0.3916259358397935, -2.5014067590171156, -0.049529303003866015],
        [0.3916259358397935, -2.5014067590171156, -0.049529303003866015]),
}

# Cases whose canonical form only permutes (and negates) entries of x: reproduced exactly.
EXACT_CASES = ("identity-3", "identity-7-k3", "identity-4-structured", "empirical", "autograd")
# The other cases rotate (the stabiliser's basis, span maps and Gram-Schmidt of the complement
# come from LAPACK's SVD and least squares) or balance (a_i, w_i) by row norms whose summation
# order depends on the SIMD width, so other LAPACK/BLAS builds may round differently: agreement
# to this multiple of |x|, ~1e4 roundings of a few operations each.
REFERENCE_RTOL = 1e-12


def reference_model(name):
    if name.startswith("identity"):
        d, k = {"identity-3": (3, 3), "identity-7-k3": (7, 3),
                "identity-4-structured": (4, 4)}[name]
        return ls.ReluTeacherStudent(teacher=np.eye(d), n_students=k)
    if name == "triangle-3":
        return ls.ReluTeacherStudent(teacher=triangle_teacher(3), n_students=3)
    if name == "generic-2x4":
        return ls.ReluTeacherStudent(teacher=GENERIC_TEACHER, n_students=2)
    if name == "two-layer-linear":
        return ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget([1.0, -2.0, 0.5]))
    if name == "two-layer-relu-signed":
        return ls.TwoLayerReLU(n_hidden=3, target=ls.ReluTarget(np.eye(3), [1.0, 1.0, -1.0]))
    if name == "empirical":            # the data do not enter the group: any X, y
        X = np.arange(12.0).reshape(6, 2) / 12.0 - 0.4
        return ls.EmpiricalReLU(X, np.ones(6), width=4, a=[1, -1, 1, -1])
    return ls.AutogradModel(lambda x: anp.sum(x ** 4), 3)


@pytest.mark.parametrize("name", list(REFERENCE_FORMS))
def test_canonical_forms_are_unchanged(name):
    x, want = (np.array(v) for v in REFERENCE_FORMS[name])
    got = canonicalize(reference_model(name), x)
    if name in EXACT_CASES:
        assert np.array_equal(got, want)
    else:
        assert_allclose(got, want, rtol=REFERENCE_RTOL,
                        atol=REFERENCE_RTOL * np.linalg.norm(want))


# ---- symmetry as data: models of one's own ------------------------------------------------

class NeuronSum(ls.Model):
    """L(W) = sum_i |w_i|^4 / 4 - t . sum_i w_i + |sum_i w_i|^2 / 2: any relabelling of its
    k neurons leaves it unchanged.  Written with the public kernels only; declares one
    permutation class when `declare` is True, nothing otherwise."""

    def __init__(self, k, d, declare=True):
        self.k, self.input_dim, self.n_params = k, d, k * d
        self.t = np.linspace(1.0, 2.0, d)
        self.declare = declare

    def flatten(self, W):
        return self.check_x(np.ravel(W), "W")

    def unflatten(self, x):
        return self.check_x(x).reshape(self.k, self.input_dim)

    def loss_kernel(self, X):
        W = X.reshape(len(X), self.k, self.input_dim)
        s = W.sum(axis=1)
        return (0.25 * np.sum(np.sum(W * W, axis=2) ** 2, axis=1) - s @ self.t
                + 0.5 * np.sum(s * s, axis=1))

    def grad_kernel(self, X):
        W = X.reshape(len(X), self.k, self.input_dim)
        s = W.sum(axis=1)
        G = np.sum(W * W, axis=2)[:, :, None] * W - self.t + s[:, None, :]
        return G.reshape(len(X), -1)

    def symmetry(self):
        if not self.declare:
            return super().symmetry()
        return ls.Symmetry(input_weights=np.arange(self.n_params).reshape(self.k, self.input_dim))


class ScaledNeurons(ls.Model):
    """L(a, W) = |sum_i a_i w_i - t|^2 / 2 + sum_i a_i^2 |w_i|^2 / 2, parameters stored neuron by
    neuron, x = (a_1, w_1, a_2, w_2, ...): unchanged by relabellings and by the rescalings
    (a_i, w_i) -> (a_i / c, c w_i).  Declares a trained output layer with rescalings."""

    def __init__(self, k, d):
        self.k, self.input_dim, self.n_params = k, d, k * (d + 1)
        self.t = np.linspace(-1.0, 1.0, d)

    def flatten(self, params):
        return self.check_x(np.ravel(params), "params")

    def unflatten(self, x):
        return self.check_x(x).reshape(self.k, self.input_dim + 1)

    def _split(self, X):
        N = X.reshape(len(X), self.k, self.input_dim + 1)
        return N[:, :, 0], N[:, :, 1:]

    def loss_kernel(self, X):
        a, W = self._split(X)
        r = np.einsum("bi,bid->bd", a, W) - self.t
        return 0.5 * np.sum(r * r, axis=1) + 0.5 * np.sum(a * a * np.sum(W * W, axis=2), axis=1)

    def grad_kernel(self, X):
        a, W = self._split(X)
        r = np.einsum("bi,bid->bd", a, W) - self.t
        n2 = np.sum(W * W, axis=2)
        ga = np.einsum("bid,bd->bi", W, r) + a * n2
        gW = a[:, :, None] * r[:, None, :] + (a * a)[:, :, None] * W
        return np.concatenate([ga[:, :, None], gW], axis=2).reshape(len(X), -1)

    def symmetry(self):
        stride = np.arange(self.k)[:, None] * (self.input_dim + 1)
        return ls.Symmetry(input_weights=stride + 1 + np.arange(self.input_dim),
                           output_weights=stride[:, 0], rescaling=True)


def test_own_model_declaring_a_permutation_class_gets_it(fd_grad):
    k, d = 5, 3
    m = ls.check_model(NeuronSum(k, d))
    plain = NeuronSum(k, d, declare=False)
    rng = np.random.default_rng(140)
    x = m.sample_init(1, rng=rng)[0]
    assert_allclose(m.grad(x), fd_grad(m.loss, x, 1e-6), rtol=1e-6)   # a genuine model
    assert repr(m.symmetry()).startswith("Symmetry(n_neurons=5, input_dim=3, classes=(5,)")
    assert repr(plain.symmetry()) == "Symmetry()" and plain.symmetry().is_trivial
    for _ in range(3):
        perm = rng.permutation(k)
        y = m.flatten(m.unflatten(x)[perm])
        assert m.loss(y) == pytest.approx(m.loss(x), rel=LOSS_RTOL)   # it is a symmetry
        assert orbit_distance(m, x, y) == 0.0                # pure permutation: exactly 0
        assert np.array_equal(canonicalize(m, y), canonicalize(m, x))
        assert np.array_equal(symmetry.orbit_norms(m, y), symmetry.orbit_norms(m, x))
        # declaring nothing: the trivial group, plain Euclidean distance, x its own form
        if not np.array_equal(perm, np.arange(k)):
            assert orbit_distance(plain, x, y) == pytest.approx(np.linalg.norm(x - y),
                                                                rel=1e-15)
            assert orbit_distance(plain, x, y) > FAR
        assert np.array_equal(canonicalize(plain, y), y)
        assert np.array_equal(symmetry.orbit_norms(plain, y), y)
    assert_loss_invariant(m, x)
    # a far point stays far: the group is only the permutations
    z = x + 0.5 * rng.standard_normal(x.size)
    assert orbit_distance(m, x, z) > FAR


def test_own_model_with_trained_output_weights_and_rescalings():
    k, d = 4, 3
    m = ls.check_model(ScaledNeurons(k, d))
    rng = np.random.default_rng(150)
    for x in m.sample_init(3, rng=rng):
        N = m.unflatten(x)
        a, W = rescale(N[:, 0], N[:, 1:], rng)
        perm = rng.permutation(k)
        y = m.flatten(np.hstack([a[:, None], W])[perm])
        assert m.loss(y) == pytest.approx(m.loss(x), rel=LOSS_RTOL)
        assert_same_orbit(m, x, y)
        assert_loss_invariant(m, x)
        Nc = m.unflatten(canonicalize(m, x))                 # balanced: |a_i| = |w_i|
        assert_allclose(np.abs(Nc[:, 0]), np.linalg.norm(Nc[:, 1:], axis=1), rtol=1e-14)
        # the rescaling tangents are zero modes of the loss: orthogonal to the gradient
        T = m.symmetry().tangents(x)
        assert T.shape == (k, m.n_params)
        g = m.grad(x)
        assert np.all(np.abs(T @ g) <= TANGENT_ATOL * np.linalg.norm(g) * np.linalg.norm(T, axis=1))


# Tangents of a symmetry are orthogonal to the gradient up to rounding of the gradient.
TANGENT_ATOL = 1e-13


@pytest.mark.parametrize("model", [
    ls.TwoLayerReLU(n_hidden=3, target=ls.LinearTarget([1.0, -2.0, 0.5, 0.0])),
    ls.TwoLayerReLU(n_hidden=3, target=ls.ReluTarget(np.eye(3))),
    ls.ReluTeacherStudent(teacher=triangle_teacher(4), n_students=3),
    ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)], ids=repr)
def test_symmetry_tangents_are_zero_modes(model):
    """Symmetry.tangents: one rescaling per neuron (TwoLayerReLU's symmetry_tangents), then
    the rotations of the stabiliser's complement; the loss is constant along each."""
    sym = model.symmetry()
    x = model.sample_init(1, rng=160)[0]
    T = sym.tangents(x)
    m = sym.stabilizer.input_dim - sym.stabilizer.rank
    k = sym.n_neurons
    assert T.shape == (k * sym.rescaling + m * (m - 1) // 2, model.n_params)
    if sym.rescaling:
        assert_allclose(T[:k], model.symmetry_tangents(x), rtol=0, atol=0)
    g = model.grad(x)
    assert np.all(np.abs(T @ g) <= TANGENT_ATOL * np.linalg.norm(g) * np.linalg.norm(T, axis=1))
    # and along them the loss changes only at second order: a real symmetry, not a zero of g
    for t in T:
        f = [model.loss(x + h * t) for h in (-1e-4, 0.0, 1e-4)]
        assert abs(f[2] - f[0]) <= 1e-9 * max(1.0, abs(f[1]))


def test_symmetry_descriptions_of_the_built_in_models():
    rng = np.random.default_rng(170)
    ts = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=4).symmetry()
    assert ts.n_neurons == 4 and ts.input_dim == 3 and ts.output_weights is None
    assert ts.stabilizer.order == 6 and not ts.rescaling and not ts.odd
    lin = ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget([1.0, 2.0, 0.0])).symmetry()
    assert lin.rescaling and lin.odd and lin.output_weights.tolist() == [0, 1]
    assert lin.input_weights.tolist() == [[2, 3, 4], [5, 6, 7]]
    assert lin.stabilizer.rank == 1
    emp = ls.EmpiricalReLU(rng.standard_normal((5, 2)), np.ones(5), width=4,
                           a=[1, -1, -1, 1]).symmetry()
    assert emp.classes.tolist() == [1, 0, 0, 1] and emp.stabilizer.order == 1
    assert ls.AutogradModel(lambda x: anp.sum(x ** 2), 3).symmetry().is_trivial
    # the description is read-only data
    with pytest.raises(ValueError):
        ts.input_weights[0, 0] = 5
    with pytest.raises(AttributeError):
        ts.odd = True


def test_symmetry_py_knows_no_model_class():
    source = inspect.getsource(symmetry)
    for name in ("ReluTeacherStudent", "TwoLayerReLU", "EmpiricalReLU", "LinearTarget"):
        assert f"import {name}" not in source and f", {name}" not in source
    assert "isinstance(model" not in source


def test_symmetry_is_read_once_per_model():
    class Counting(NeuronSum):
        calls = 0

        def symmetry(self):
            Counting.calls += 1
            return super().symmetry()

    m = Counting(3, 2)
    x, y = m.sample_init(2, rng=0)
    canonicalize(m, x), orbit_distance(m, x, y), symmetry.orbit_norms(m, x)
    assert Counting.calls == 1


def test_bad_symmetry_declarations():
    iw = np.arange(6).reshape(3, 2)
    with pytest.raises(ValueError, match="rescaling=True needs output_weights"):
        ls.Symmetry(input_weights=iw, rescaling=True)
    with pytest.raises(ValueError, match="classes must have shape"):
        ls.Symmetry(input_weights=iw, classes=[0, 1])
    with pytest.raises(ValueError, match="needs a neuron layout"):
        ls.Symmetry(odd=True)
    with pytest.raises(TypeError, match="input_weights must be an array of integers"):
        ls.Symmetry(input_weights=iw * 1.0)
    with pytest.raises(ValueError, match="stabilizer acts on R"):
        ls.Symmetry(input_weights=iw, stabilizer=ls.Stabilizer.of_teacher(np.eye(3)))
    with pytest.raises(TypeError, match="stabilizer must be a landscape.Stabilizer"):
        ls.Symmetry(input_weights=iw, stabilizer=np.eye(2))
    with pytest.raises(ValueError, match="basis must be an orthogonal"):
        ls.Stabilizer(input_dim=2, rank=2, basis=np.ones((2, 2)))

    class Broken(NeuronSum):
        def __init__(self, layout):
            super().__init__(3, 2)
            self.layout = layout

        def symmetry(self):
            return self.layout

    x = np.zeros(6)
    for layout, match in ((ls.Symmetry(input_weights=iw[:2]), "position 4 is missing"),
                          (ls.Symmetry(input_weights=np.zeros((3, 2), dtype=int)),
                           "position 0 is listed twice"),
                          (ls.Symmetry(input_weights=iw + 1), "position 6 is beyond x")):
        with pytest.raises(ValueError, match=match):
            canonicalize(Broken(layout), x)
    with pytest.raises(TypeError, match=r"symmetry\(\) must return a landscape.Symmetry"):
        orbit_distance(Broken("S_3"), x, x)
