"""Direction-wise convexity tests: local convexity, OPSC and PL (landscape.convexity).

The teacher is V = I_n throughout.  With k = n students the loss is strongly convex at
W = V (DESIGN.md: lambda_min = 1/4 - 1/(2 pi)); with k = n + 1 it is not locally convex,
OPSC or PL at its global minima, yet OPSC in most directions (Safran, Yehudai & Shamir,
COLT 2021).
"""

import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import landscape as ls
from landscape.convexity import (DirectionalTest, local_convexity, one_point_strong_convexity,
                                 pl_condition, random_directions)
from landscape.stats import wilson_interval

LAMBDA_REF = 0.25 - 1.0 / (2.0 * np.pi)   # lambda_min of the Hessian at W = V, k = n

# ---- tolerances ---------------------------------------------------------------------
UNIT_RTOL = 1e-14            # |u| = 1
TINY_R = 1e-5                # "r -> 0"
LIMIT_RTOL = 1e-3            # OPSC ratio at r = TINY_R vs u^T H(x*) u
LAMBDA_ATOL = 1e-4           # lambda_min(H(x* + TINY_R u)) vs LAMBDA_REF (H Lipschitz)
BOUNDED_FRACTION = 0.9       # constants stay >= this fraction of LAMBDA_REF
FLAT_EXPONENT = 0.05         # |p| for "bounded away from 0"
SLOPE_TOL = 0.15             # fitted exponents 1 (OPSC, PL) and 3 (F)
SPLIT_SMALL = 1e-3           # split-rotation constants at r = 1e-4 are below this
NEGATIVE_CURVATURE = -1.0    # lambda_min(H(W_eps)) stays below this as eps -> 0
LAMBDA_DRIFT = 1e-2          # ... and moves by less than this from eps = 1e-2 to 1e-6
DISTANCE_RTOL = 1e-9         # 1 - 10 eps rounds by ~1e-16, relative to eps = 1e-6
OPSC_MU = 0.05               # "bounded away from 0" for the uniform-direction fraction
FRACTION_LOWER = 0.9         # Wilson lower bound of the fraction passing OPSC_MU
WILSON_ATOL = 5e-5           # vs four-decimal published values
WILSON_RTOL = 1e-14          # vs the formula evaluated here
REFLECTION_RTOL = 1e-13      # interval(s, n) = 1 - interval(n - s, n) reversed
EIG_RTOL = 1e-10             # lambda_min by the test vs by eigvalsh here
EXACT_ATOL = 1e-14           # loss 0 at the split minimum
CONTRAST = 1e-2              # split rotation vs uniform directions at r = 1e-4

Z95 = 1.959963984540054      # the 0.975 standard normal quantile


def teacher_student(n, k):
    return ls.ReluTeacherStudent(teacher=np.eye(n), n_students=k)


def split_minimum(n):
    """k = n + 1 students (v1/2, v1/2, v2, ..., vn): a global minimum with loss 0."""
    V = np.eye(n)
    return teacher_student(n, n + 1), np.vstack([V[0] / 2, V[0] / 2, V[1:]]).ravel()


def loglog_slope(r, f):
    return np.polyfit(np.log(r), np.log(f), 1)[0]


# ---- k = n: strongly convex at the global minimum -----------------------------------

def test_k_equals_n_opsc_pl_and_convexity_hold_in_every_direction():
    rng = np.random.default_rng(20210)
    n = 4
    m = teacher_student(n, n)
    x_star = m.flatten(np.eye(n))
    U = random_directions(m, 40, rng)
    radii = np.array([TINY_R, 1e-4, 1e-3, 1e-2])

    opsc = one_point_strong_convexity(m, x_star, U, radii)
    pl = pl_condition(m, x_star, U, radii)
    convex = local_convexity(m, x_star, U, radii, lambda_min=True)

    for t in (opsc, pl, convex):
        assert t.fraction == 1.0 and t.passes.all() and t.n_undefined == 0
        assert np.all(t.constants >= BOUNDED_FRACTION * LAMBDA_REF)
        assert np.all(np.abs(t.exponents) < FLAT_EXPONENT)
        assert t.fraction_interval[1] == 1.0 and t.fraction_interval[0] > FRACTION_LOWER
    # as r -> 0 the OPSC ratio and the curvature tend to u^T H(x*) u >= lambda_min
    quad = np.einsum("in,nm,im->i", U, m.hess(x_star), U)
    assert_allclose(opsc.constants[:, 0], quad, rtol=LIMIT_RTOL)
    assert_allclose(convex.constants[:, 0], quad, rtol=LIMIT_RTOL)
    assert_allclose(convex.lambda_min[:, 0], LAMBDA_REF, atol=LAMBDA_ATOL)
    assert np.all(convex.lambda_min > BOUNDED_FRACTION * LAMBDA_REF)
    # the worst direction is the one with the smallest constant
    assert opsc.worst_constants.min() == opsc.constants.min()
    assert_array_equal(opsc.worst_constants, opsc.constants[opsc.worst_direction])


# ---- k = n + 1: not locally OPSC / PL / convex, yet OPSC in most directions ---------

def test_split_rotation_constants_vanish_linearly_and_loss_grows_cubically():
    rng = np.random.default_rng(2021)
    n = 7
    m, x_split = split_minimum(n)
    assert m.loss(x_split) == pytest.approx(0.0, abs=EXACT_ATOL)
    U = random_directions(m, 10, rng, kind="split-rotation", x=x_split, pair=(0, 1))
    radii = np.geomspace(1e-4, 1e-2, 5)

    opsc = one_point_strong_convexity(m, x_split, U, radii)
    pl = pl_condition(m, x_split, U, radii)
    for t in (opsc, pl):
        assert_allclose(t.exponents, 1.0, atol=SLOPE_TOL)
        assert np.all(t.constants[:, 0] < SPLIT_SMALL)
        # every sampled ratio is positive: the default threshold passes, the exponent tells
        assert t.fraction == 1.0
        # asking for a constant mu fails at the smallest radius
        strict = (one_point_strong_convexity(m, x_split, U, radii, threshold=SPLIT_SMALL)
                  if t.kind == "opsc" else
                  pl_condition(m, x_split, U, radii, threshold=SPLIT_SMALL))
        assert strict.fraction == 0.0 and strict.fraction_interval[0] == 0.0

    for u in U:                                   # F along the rotation grows as r^3
        F = m.loss_batch(x_split + radii[:, None] * u)
        assert abs(loglog_slope(radii, F) - 3.0) < SLOPE_TOL
    # the curvature along the rotation is positive but vanishes linearly too
    convex = local_convexity(m, x_split, U, radii)
    assert_allclose(convex.exponents, 1.0, atol=SLOPE_TOL)


def test_split_rotation_directions_keep_the_pair_sum():
    rng = np.random.default_rng(7)
    n = 5
    m, x_split = split_minimum(n)
    U = random_directions(m, 6, rng, kind="split-rotation", x=x_split, pair=(0, 1))
    D = U.reshape(6, n + 1, n)
    assert_allclose(np.linalg.norm(U, axis=1), 1.0, rtol=UNIT_RTOL)
    assert_allclose(D[:, 0] + D[:, 1], 0.0, atol=UNIT_RTOL)        # w_0 + w_1 fixed
    assert_allclose(D[:, 0] @ np.eye(n)[0], 0.0, atol=UNIT_RTOL)   # e perpendicular to v1
    assert_array_equal(D[:, 2:], 0.0)
    # pair=None finds the aligned pair (0, 1) and draws the same directions
    auto = random_directions(m, 6, np.random.default_rng(7), kind="split-rotation", x=x_split)
    assert_array_equal(auto, U)


def test_vanishing_neuron_points_approach_the_minimum_with_negative_curvature():
    rng = np.random.default_rng(31)
    n = 7
    m = teacher_student(n, n + 1)
    V = np.eye(n)
    x_min = m.flatten(np.vstack([V, np.zeros(n)]))        # (V, 0): global minimum
    u = rng.standard_normal(n)
    u /= np.linalg.norm(u)
    # W_eps = ((1 - 10 eps) v1, v2, ..., vn, eps u) = (V, 0) + eps * d
    d = np.vstack([-10.0 * V[0], np.zeros((n - 1, n)), u]).ravel()
    eps = np.array([1e-2, 1e-3, 1e-4, 1e-5, 1e-6])
    t = local_convexity(m, x_min, d, eps * np.linalg.norm(d), lambda_min=True)

    W_eps = [m.flatten(np.vstack([(1 - 10 * e) * V[0], V[1:], e * u])) for e in eps]
    assert_allclose([np.linalg.norm(w - x_min) for w in W_eps], np.sqrt(101.0) * eps,
                    rtol=DISTANCE_RTOL)
    assert_allclose(t.lambda_min[0], [np.linalg.eigvalsh(m.hess(w))[0] for w in W_eps],
                    rtol=EIG_RTOL)
    lam = t.lambda_min[0]
    assert np.all(lam < NEGATIVE_CURVATURE)                 # about -2.64 for this u
    assert np.ptp(lam) < LAMBDA_DRIFT
    # along the approach direction itself the curvature is positive: directional
    # convexity holds where full local convexity fails
    assert t.passes.all() and np.all(t.constants > 0)


@pytest.mark.parametrize("minimum", ["split", "vanishing-neuron"])
def test_uniform_directions_are_mostly_opsc_at_the_global_minima(minimum):
    rng = np.random.default_rng(2022)
    n = 7
    m, x_split = split_minimum(n)
    x_star = (x_split if minimum == "split"
              else m.flatten(np.vstack([np.eye(n), np.zeros(n)])))      # (V, 0)
    U = random_directions(m, 200, rng)
    radii = np.geomspace(1e-4, 1e-1, 4)
    t = one_point_strong_convexity(m, x_star, U, radii, threshold=OPSC_MU)
    assert t.fraction >= FRACTION_LOWER
    assert t.fraction_interval[0] > FRACTION_LOWER
    lo, hi = wilson_interval(int(t.passes.sum()), 200)
    assert_array_equal(t.fraction_interval, [lo, hi])
    # bounded away from 0 as r -> 0 in the passing directions
    assert np.all(np.abs(t.exponents[t.passes]) < FLAT_EXPONENT)
    # contrast: a split rotation at the smallest radius is far below every uniform direction
    rot = random_directions(m, 1, rng, kind="split-rotation", x=x_split)
    split = one_point_strong_convexity(m, x_split, rot, radii)
    assert split.constants[0, 0] < CONTRAST * t.constants[:, 0].min()


# ---- undefined points ---------------------------------------------------------------

def test_pl_is_undefined_on_the_set_of_minimizers():
    n = 4
    m, x_split = split_minimum(n)
    along = np.zeros((n + 1, n))
    along[0, 0], along[1, 0] = 1.0, -1.0                   # (v1, -v1): stays a minimizer
    uniform = random_directions(m, 1, np.random.default_rng(5))
    U = np.vstack([along.ravel(), uniform])
    radii = np.array([1e-3, 1e-2, 1e-1])
    with pytest.warns(ls.LandscapeWarning, match="optimal to rounding"):
        t = pl_condition(m, x_split, U, radii)
    assert t.n_undefined == radii.size
    assert np.all(np.isnan(t.constants[0])) and np.all(np.isfinite(t.constants[1]))
    assert_array_equal(t.passes, [False, True])              # nothing tested along it
    assert np.isnan(t.exponents[0])
    assert t.worst_direction == 1

    with pytest.warns(ls.LandscapeWarning, match="is optimal_loss"):
        pl_condition(m, x_split, U[1:], radii, optimal_loss=1.0)


def test_non_differentiable_points_are_undefined():
    n = 3
    m = teacher_student(n, n + 1)
    x_min = m.flatten(np.vstack([np.eye(n), np.zeros(n)]))
    U = np.zeros((1, m.n_params))
    U[0, 0] = 1.0                                             # leaves the zero neuron at 0
    for test in (local_convexity, one_point_strong_convexity):
        with pytest.warns(ls.LandscapeWarning, match="not differentiable"):
            t = test(m, x_min, U, [1e-3, 1e-2])
        assert t.n_undefined == 2 and np.all(np.isnan(t.constants)) and not t.passes[0]


def test_opsc_reference_projection():
    n = 3
    m = teacher_student(n, n)
    x_star = m.flatten(np.eye(n))
    U = random_directions(m, 5, np.random.default_rng(11))
    radii = [1e-3, 1e-2]
    base = one_point_strong_convexity(m, x_star, U, radii)
    same = one_point_strong_convexity(m, x_star, U, radii,
                                      reference=lambda Y: np.tile(x_star, (len(Y), 1)))
    assert_array_equal(same.constants, base.constants)
    with pytest.warns(ls.LandscapeWarning, match="own reference point"):
        t = one_point_strong_convexity(m, x_star, U, radii, reference=lambda Y: Y)
    assert t.n_undefined == 10 and t.fraction == 0.0


# ---- batching -----------------------------------------------------------------------

def test_batched_equals_one_direction_at_a_time(rows_per_chunk):
    rng = np.random.default_rng(99)
    n = 4
    m, x_split = split_minimum(n)
    U = np.vstack([random_directions(m, 6, rng),
                   random_directions(m, 3, rng, kind="neuron"),
                   random_directions(m, 3, rng, kind="split-rotation", x=x_split)])
    radii = np.geomspace(1e-3, 1e-1, 3)
    runs = {
        "opsc": lambda D: one_point_strong_convexity(m, x_split, D, radii),
        "pl": lambda D: pl_condition(m, x_split, D, radii),
        "local-convexity": lambda D: local_convexity(m, x_split, D, radii, lambda_min=True),
    }
    for kind, run in runs.items():
        batched = run(U)
        assert batched.kind == kind
        looped = [run(u[None]) for u in U]
        assert_array_equal(batched.constants, np.vstack([t.constants for t in looped]))
        assert_array_equal(batched.passes, np.concatenate([t.passes for t in looped]))
        # the exponents are least-squares slopes: BLAS blocks a batch of rows differently
        # from one row, so they agree to rounding (1 ulp seen with OpenBLAS's Haswell kernel)
        assert_allclose(batched.exponents, np.concatenate([t.exponents for t in looped]),
                        rtol=1e-12, atol=1e-14)
        if kind == "local-convexity":
            assert_array_equal(batched.lambda_min, np.vstack([t.lambda_min for t in looped]))
        rows_per_chunk(m, 2)                                  # the model cuts batches of 2
        assert_array_equal(run(U).constants, batched.constants)
        rows_per_chunk(m, 10**6)


def test_result_round_trips_through_dict():
    n = 3
    m = teacher_student(n, n)
    x_star = m.flatten(np.eye(n))
    U = random_directions(m, 4, np.random.default_rng(1))
    for t in (local_convexity(m, x_star, U, [1e-2, 1e-1], lambda_min=True),
              pl_condition(m, x_star, U, [1e-2, 1e-1])):
        back = DirectionalTest.from_dict(t.to_dict())
        assert_array_equal(back.constants, t.constants)
        assert back.threshold == t.threshold and back.worst_direction == t.worst_direction
        assert (back.lambda_min is None) == (t.lambda_min is None)
        assert "DirectionalTest(kind=" in repr(back)


# ---- directions ---------------------------------------------------------------------

def test_random_directions_kinds():
    rng = np.random.default_rng(4)
    m = ls.TwoLayerReLU(n_hidden=3, target=ls.LinearTarget([1.0, -2.0, 0.5]))
    U = random_directions(m, 50, rng)
    assert U.shape == (50, m.n_params)
    assert_allclose(np.linalg.norm(U, axis=1), 1.0, rtol=UNIT_RTOL)
    assert_array_equal(random_directions(m, 5, 8), random_directions(m, 5, 8))

    N = random_directions(m, 50, rng, kind="neuron")
    assert_allclose(np.linalg.norm(N, axis=1), 1.0, rtol=UNIT_RTOL)
    k = m.n_hidden
    for row in N:
        a, W = m.unflatten(row)
        moved = np.flatnonzero((a != 0) | np.any(W != 0, axis=1))
        assert moved.size == 1 and a[moved[0]] != 0 and np.all(W[moved[0]] != 0)
    assert len({int(np.flatnonzero(m.unflatten(r)[0])[0]) for r in N}) == k

    # split rotation with output weights: a_i w_i + a_j w_j is unchanged
    x = m.flatten(([2.0, 0.5, 1.0], [[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]]))
    S = random_directions(m, 4, rng, kind="split-rotation", x=x)
    for row in S:
        da, dW = m.unflatten(row)
        assert_array_equal(da, 0.0)
        assert_allclose(2.0 * dW[0] + 0.5 * dW[1], 0.0, atol=UNIT_RTOL)
        assert_allclose(dW[:, 0], 0.0, atol=UNIT_RTOL)               # e perpendicular to w


# ---- Wilson interval ----------------------------------------------------------------

def wilson_by_hand(s, n, z):
    p = s / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


def test_wilson_interval_known_values():
    # published values (e.g. statsmodels proportion_confint(..., method="wilson"))
    assert_allclose(wilson_interval(8, 10), [0.4902, 0.9433], atol=WILSON_ATOL)
    assert_allclose(wilson_interval(0, 10), [0.0, 0.2775], atol=WILSON_ATOL)
    assert_allclose(wilson_interval(50, 100), [0.4038, 0.5962], atol=WILSON_ATOL)
    for s, n in [(0, 1), (3, 7), (81, 263), (200, 200)]:
        assert_allclose(wilson_interval(s, n), wilson_by_hand(s, n, Z95), rtol=WILSON_RTOL)
    z99 = 2.5758293035489004
    assert_allclose(wilson_interval(3, 7, confidence=0.99), wilson_by_hand(3, 7, z99),
                    rtol=WILSON_RTOL)
    # closed forms at the ends, and the reflection s -> n - s
    assert_allclose(wilson_interval(0, 20)[1], Z95**2 / (20 + Z95**2), rtol=WILSON_RTOL)
    assert_allclose(wilson_interval(20, 20)[0], 20 / (20 + Z95**2), rtol=WILSON_RTOL)
    assert_allclose(wilson_interval(3, 11), 1 - wilson_interval(8, 11)[::-1], rtol=REFLECTION_RTOL)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0


# ---- bad input ----------------------------------------------------------------------

def test_bad_input_is_rejected_with_the_argument_named():
    n = 3
    m, x_split = split_minimum(n)
    U = random_directions(m, 2, 0)
    r = [1e-2]
    bad = [
        (lambda: local_convexity(m, x_split, np.zeros((1, m.n_params)), r), "directions must"),
        (lambda: local_convexity(m, x_split, np.full((1, m.n_params), np.nan), r),
         "directions must"),
        (lambda: local_convexity(m, x_split, np.ones((1, m.n_params + 1)), r), "directions must"),
        (lambda: local_convexity(m, x_split, np.ones((0, m.n_params)), r), "directions must"),
        (lambda: local_convexity(m, x_split, U, [1e-2, 0.0]), "radii must"),
        (lambda: local_convexity(m, x_split, U, [-1e-2]), "radii must"),
        (lambda: local_convexity(m, x_split, U, [np.inf]), "radii must"),
        (lambda: local_convexity(m, x_split, U, [[1e-2]]), "radii must"),
        (lambda: local_convexity(m, x_split, U, []), "radii must"),
        (lambda: local_convexity(m, x_split[:-1], U, r), "x must"),
        (lambda: one_point_strong_convexity(m, x_split, U, r, threshold=np.nan), "threshold must"),
        (lambda: one_point_strong_convexity(m, x_split, U, r, reference=lambda Y: Y[:1]),
         "reference"),
        (lambda: pl_condition(m, x_split, U, r, optimal_loss=np.nan), "optimal_loss must"),
        (lambda: pl_condition(m, x_split, U, r, loss_atol=-1.0), "loss_atol must"),
        (lambda: random_directions(m, 2, 0, kind="spherical"), "kind must"),
        (lambda: random_directions(m, 0, 0), "n must"),
        (lambda: random_directions(m, 2, 0, kind="split-rotation"), "x is required"),
        (lambda: random_directions(m, 2, 0, kind="split-rotation", x=x_split, pair=(0, 0)),
         "pair must"),
        (lambda: random_directions(m, 2, 0, kind="split-rotation", x=x_split, pair=(0, 9)),
         "pair must"),
        (lambda: random_directions(m, 2, 0, kind="split-rotation", x=m.flatten(
            np.vstack([np.eye(n), [1.0, 1.0, 0.0]]))), "pass pair="),
        (lambda: random_directions(m, 2, 0, x=x_split), "x and pair"),
        (lambda: wilson_interval(11, 10), "successes must"),
        (lambda: wilson_interval(1, 0), "n must"),
        (lambda: wilson_interval(1, 10, confidence=1.0), "confidence must"),
    ]
    for call, name in bad:
        with pytest.raises(ValueError, match=name):
            call()
    no_optimum = ls.AutogradModel(lambda x: anp.sum(x**2), 4)
    with pytest.raises(ValueError, match="optimal_loss"):
        pl_condition(no_optimum, np.zeros(4), np.eye(4), [0.1])
    with pytest.raises(ValueError, match="neuron"):
        random_directions(no_optimum, 2, 0, kind="neuron")
    with pytest.raises(TypeError, match="reference"):
        one_point_strong_convexity(m, x_split, U, r, reference=np.zeros(m.n_params))
    with pytest.raises(TypeError, match="pair"):
        random_directions(m, 2, 0, kind="split-rotation", x=x_split, pair=(0, 1.5))
    with pytest.raises(TypeError, match="model"):
        local_convexity("not a model", x_split, U, r)


@pytest.mark.parametrize("n", [1, 7, 500, 10**6])
def test_wilson_interval_ends_are_exact_at_zero_and_all_successes(n):
    assert ls.wilson_interval(0, n)[0] == 0.0
    assert ls.wilson_interval(n, n)[1] == 1.0
    assert 0.0 < ls.wilson_interval(0, n)[1] < 1.0
