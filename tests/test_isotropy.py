"""Isotropy groups and fixed-point subspaces (issue 18), checked on prescribed block structures."""

import numpy as np
import pytest

import landscape as ls

# Rounding of the constructions below is ~1e-16 |W|; a Hessian-equivariance check on a
# closed form with a few hundred terms is exact to ~1e-14 |H|.
EXACT = 1e-13


def block_point(sizes, k=None, d=None, rng=0):
    """W with the diagonal block structure of `sizes` (Arjevani-Field types), generic values."""
    rng = np.random.default_rng(rng)
    k = sum(sizes) if k is None else k
    d = sum(sizes) if d is None else d
    blocks = np.repeat(np.arange(len(sizes)), sizes)
    nb = len(sizes)
    off = rng.uniform(-0.5, 0.5, (nb, nb))
    dia = rng.uniform(0.5, 1.5, nb)
    W = off[blocks][:, blocks]
    W[np.arange(len(blocks)), np.arange(len(blocks))] = dia[blocks]
    return W


def model(k, d=None):
    return ls.ReluTeacherStudent(teacher=np.eye(k if d is None else d), n_students=k)


def as_sets(G):
    return {(frozenset(zip(r, c)) if r and c else (frozenset(r), frozenset(c)))
            for r, c in G.factors}


@pytest.mark.parametrize("sizes, name, order, dim", [
    ([1, 6], "Δ(S_6 × S_1)", 720, 5),
    ([2, 5], "Δ(S_5 × S_2)", 2 * 120, 6),
    ([6, 1, 3], "Δ(S_6 × S_3 × S_1)", 720 * 6, 11),
    ([8], "Δ(S_8)", 40320, 2),            # d = 8: the coordinate stabiliser (not enumerated)
    ([3, 3], "Δ(S_3 × S_3)", 36, 6),
])
def test_isotropy_of_prescribed_block_structures(sizes, name, order, dim):
    m = model(sum(sizes))
    x = m.flatten(block_point(sizes))
    G = ls.isotropy(m, x)
    assert G.name == name and G.order == order
    assert as_sets(G) == as_sets(ls.Isotropy.diagonal(m, sizes))
    F = ls.fixed_point_subspace(m, G)
    # one orbit per pair of blocks, plus the diagonal of each block of size >= 2
    assert F.dim == dim == len(sizes) ** 2 + sum(s >= 2 for s in sizes)
    np.testing.assert_allclose(F.project(x), x, rtol=0, atol=EXACT)


def test_isotropy_follows_a_relabelling_of_neurons_and_coordinates():
    m = model(7)
    W = block_point([1, 6])
    rng = np.random.default_rng(3)
    pr, pc = rng.permutation(7), rng.permutation(7)
    G = ls.isotropy(m, m.flatten(W[pr][:, pc]))
    assert G.name == "Δ(S_6 × S_1)"          # one name whatever the rows' order
    assert G.order == 720
    (rows, cols), = G.factors
    # row a of the relabelled W is row pr[a] of W: the factor is the image of the block {1..6}
    assert set(pr[list(rows)]) == set(range(1, 7)) and set(pc[list(cols)]) == set(range(1, 7))
    assert all(pr[i] == pc[j] for i, j in zip(rows, cols))   # and the pairing is kept


def test_isotropy_is_robust_to_rounding_and_lost_under_a_real_perturbation():
    m = model(7)
    W = block_point([1, 6])
    rng = np.random.default_rng(1)
    noisy = W + 1e-12 * rng.standard_normal(W.shape)      # far below tol = 1e-8 |W|
    assert ls.isotropy(m, m.flatten(noisy)).order == 720
    broken = W.copy()
    broken[3, 4] += 1e-3                                   # breaks S_6 to a smaller group
    G = ls.isotropy(m, m.flatten(broken))
    assert 1 < G.order < 720
    x = m.flatten(broken)
    for pr, pc in G.generators():                          # what it returns does fix x
        np.testing.assert_array_equal(G.act(x, pr, pc), x)
    assert ls.isotropy(m, m.flatten(broken), tol=1e-2).order == 720


def test_generic_point_has_the_trivial_group():
    m = model(4)
    x = m.sample_init(1, rng=0)[0]
    G = ls.isotropy(m, x)
    assert G.factors == () and G.order == 1 and G.name == "1"
    assert ls.fixed_point_subspace(m, G).dim == m.n_params


def test_split_neuron_minimum_has_a_row_factor():
    """(v1/2, v1/2, v2, ..., vd) at k = d + 1: two equal rows and a diagonal S_{d-1}."""
    d = 5
    m = model(d + 1, d)
    W = np.vstack([np.eye(d)[:1] / 2, np.eye(d)[:1] / 2, np.eye(d)[1:]])
    G = ls.isotropy(m, m.flatten(W))
    assert as_sets(G) == {(frozenset({0, 1}), frozenset()),
                          frozenset(zip(range(2, 6), range(1, 5)))}
    assert G.name == "ΔS_4 × S_2(rows)" and G.order == 2 * 24


def test_equal_columns_give_a_column_factor():
    m = model(3, 4)
    W = np.array([[1.0, 0.2, 0.2, 0.2], [0.5, 0.7, 0.7, 0.7], [0.1, -0.3, -0.3, -0.3]])
    G = ls.isotropy(m, m.flatten(W))
    assert G.factors == (((), (1, 2, 3)),) and G.name == "S_3(cols)"


def test_fixed_point_subspace_is_the_fixed_set_of_the_group():
    m = model(9)
    G = ls.Isotropy.diagonal(m, [2, 1, 6])
    F = ls.fixed_point_subspace(m, G)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(m.n_params)
    y = F.project(x)
    for pr, pc in G.generators():
        np.testing.assert_array_equal(G.act(y, pr, pc), y)
        assert np.max(np.abs(G.act(x, pr, pc) - x)) > 0.1    # a generic x is not fixed
    np.testing.assert_allclose(F.project(y), y, rtol=0, atol=EXACT)   # a projection
    B = F.basis()
    np.testing.assert_allclose(B.T @ B, np.eye(F.dim), rtol=0, atol=EXACT)
    np.testing.assert_allclose(B @ (B.T @ x), y, rtol=0, atol=EXACT)
    z = rng.standard_normal(F.dim)
    np.testing.assert_allclose(F.coordinates(F.point(z)), z, rtol=0, atol=EXACT)
    assert ls.isotropy(m, y).order >= G.order


def test_gradient_and_hessian_are_equivariant_under_the_isotropy_group():
    """Principle of symmetric criticality: grad L at a G-fixed point is G-fixed, and
    H(x) commutes with every g in G (H(gx) = g H(x) g^T at gx = x)."""
    m = model(6)
    x = m.flatten(block_point([2, 4], rng=5))
    G = ls.isotropy(m, x)
    F = ls.fixed_point_subspace(m, G)
    g = m.grad(x)
    np.testing.assert_allclose(F.project(g), g, rtol=0, atol=EXACT * np.abs(g).max())
    H = m.hess(x)
    for pr, pc in G.generators():
        P = np.stack([G.act(e, pr, pc) for e in np.eye(m.n_params)], axis=1)
        np.testing.assert_allclose(P @ H @ P.T, H, rtol=0, atol=EXACT * np.abs(H).max())


def test_isotropy_validates_its_input():
    m = model(3)
    with pytest.raises(ValueError, match="isotropy groups need a model"):
        ls.isotropy(ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget([1.0, 0.0])),
                    np.ones(6))
    with pytest.raises(ValueError, match="isotropy groups need a model"):
        ls.isotropy(ls.ReluTeacherStudent(teacher=[[1.0, 2.0, 0.0]], n_students=2), np.ones(6))
    with pytest.raises(ValueError, match="tol"):
        ls.isotropy(m, np.ones(9), tol=-1.0)
    with pytest.raises(ValueError, match="distinct"):
        ls.Isotropy(layout=np.arange(9).reshape(3, 3), factors=(((0, 0), ()),))
    with pytest.raises(ValueError, match="equal lengths"):
        ls.Isotropy(layout=np.arange(9).reshape(3, 3), factors=(((0, 1), (0, 1, 2)),))
    with pytest.raises(ValueError, match="sum <= min"):
        ls.Isotropy.diagonal(m, [2, 2])
    with pytest.raises(TypeError, match="landscape.Isotropy"):
        ls.fixed_point_subspace(m, "S_3")
    with pytest.raises(ValueError, match="build it for this model"):
        ls.fixed_point_subspace(model(4), ls.Isotropy.diagonal(m, [3]))


def test_isotropy_round_trips():
    m = model(5)
    G = ls.Isotropy.diagonal(m, [2, 3])
    H = ls.Isotropy.from_dict(G.to_dict())
    assert H.factors == G.factors and repr(H) == repr(G) == "Isotropy(Δ(S_3 × S_2), order=12)"


def test_a_group_the_model_does_not_have_is_refused():
    """Coordinates 0 and 1 of V = diag(1, 1, 2) may be exchanged, coordinate 2 may not."""
    m = ls.ReluTeacherStudent(teacher=np.diag([1.0, 1.0, 2.0]), n_students=3)
    ok = ls.Isotropy(layout=np.arange(9).reshape(3, 3), factors=(((0, 1), (0, 1)),))
    assert ls.fixed_point_subspace(m, ok).dim == 5
    bad = ls.Isotropy(layout=np.arange(9).reshape(3, 3), factors=(((1, 2), (1, 2)),))
    with pytest.raises(ValueError, match="not a group of symmetries"):
        ls.fixed_point_subspace(m, bad)
    W = np.array([[0.9, 0.1, 0.3], [0.1, 0.9, 0.3], [0.2, 0.2, 1.5]])
    G = ls.isotropy(m, m.flatten(W))
    assert G.factors == (((0, 1), (0, 1)),)
