"""The model contract, checked for every model at generic random points.

Every model must return exact first and second derivatives of its loss, a
symmetric Hessian, Hessian-vector products equal to ``hess @ v`` and batched
methods equal to looped single-point calls.  To put a new model under the
contract, append a :class:`ModelCase` to ``MODEL_CASES`` below.
"""

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_allclose

import landscape as ls
from landscape.models.autodiff import AutogradModel, reference_model

# ---- tolerances ---------------------------------------------------------------------
AUTOGRAD_RTOL = 1e-10        # closed form vs autograd of the same formula
FD_RTOL = 1e-6               # vs central differences
FD_STEP = 1e-5               # central-difference step (error ~ h^2 + eps/h)
SYMMETRY_RTOL = 1e-14        # |H - H^T| relative to max |H|
HVP_RTOL = 1e-12             # hvp vs hess @ v
BATCH_RTOL = 1e-12           # batched vs looped (different BLAS paths may round differently)
LOSS_RTOL = 1e-12            # loss vs the autograd reference's loss
TANGENT_RTOL = 1e-12         # symmetry tangents are orthogonal to the gradient
TAYLOR_STEPS = np.geomspace(1e-3, 3e-2, 8)
TAYLOR_SLOPE_1 = (2.0, 0.1)  # remainder after the gradient term: O(t^2)
TAYLOR_SLOPE_2 = (3.0, 0.15)  # remainder after the Hessian term: O(t^3)


def scaled_atol(desired, rtol):
    """An absolute tolerance relative to the largest entry of `desired`."""
    return rtol * max(float(np.max(np.abs(desired))), np.finfo(float).tiny)


def assert_close(actual, desired, rtol):
    """assert_allclose with rtol per entry and the same rtol relative to max |desired|."""
    assert_allclose(actual, desired, rtol=rtol, atol=scaled_atol(desired, rtol))


# ---- the models under contract ------------------------------------------------------
@dataclass(frozen=True)
class ModelCase:
    """A model family for the contract suite.

    build(rng) -> Model
        A model with random data drawn from rng.
    reference(model) -> object with loss(x), grad(x), hess(x)
        Independent derivatives of the same loss (default: autograd of the closed form).
    point(model, rng) -> x
        A generic point (default: i.i.d. N(0, 1) entries).
    """

    name: str
    build: Callable
    reference: Callable = reference_model
    point: Callable = None

    def __post_init__(self):
        if self.point is None:
            object.__setattr__(self, "point", _generic_point)


def _generic_point(model, rng):
    return rng.standard_normal(model.n_params)


def _teacher_student_random(rng):
    return ls.ReluTeacherStudent(teacher=rng.standard_normal((3, 4)), n_students=5)


def _teacher_student_identity(rng):
    return ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)


def _two_layer_linear(rng):
    return ls.TwoLayerReLU(n_hidden=3, target=ls.LinearTarget(rng.standard_normal(4)))


def _two_layer_relu(rng):
    V = rng.standard_normal((3, 3))
    return ls.TwoLayerReLU(n_hidden=4, target=ls.ReluTarget(V, a_star=[1.5, -1.0, 0.7]))


# A smooth non-quadratic loss with hand-written derivatives:
# f(x) = 1/2 x.A x + sum cos(x) + (b.x)^4 / 4.
_SMOOTH_N = 6


def _smooth_data(rng):
    M = rng.standard_normal((_SMOOTH_N, _SMOOTH_N))
    return M @ M.T / _SMOOTH_N, rng.standard_normal(_SMOOTH_N) / np.sqrt(_SMOOTH_N)


def _autograd_smooth(rng):
    A, b = _smooth_data(rng)

    def smooth(x):
        return 0.5 * anp.dot(x, anp.dot(A, x)) + anp.sum(anp.cos(x)) + anp.dot(b, x) ** 4 / 4

    model = AutogradModel(smooth, _SMOOTH_N)
    model.test_data = (A, b)     # for the hand-written reference below
    return model


def _smooth_reference(model):
    A, b = model.test_data
    return SimpleNamespace(
        loss=lambda x: 0.5 * x @ A @ x + np.sum(np.cos(x)) + (b @ x) ** 4 / 4,
        grad=lambda x: A @ x - np.sin(x) + (b @ x) ** 3 * b,
        hess=lambda x: A - np.diag(np.cos(x)) + 3 * (b @ x) ** 2 * np.outer(b, b),
    )


class Quartic(ls.Model):
    """The README's model of one's own ("A model of your own"), L(x) = |x|^4 / 4: only the
    public kernels of the model contract, no underscore method."""

    n_params = input_dim = 2
    optimal_loss = 0.0

    def flatten(self, params): return self.check_x(params, "params")
    def unflatten(self, x): return self.check_x(x)
    def loss_kernel(self, X): return 0.25 * np.sum(X * X, axis=1) ** 2
    def grad_kernel(self, X): return np.sum(X * X, axis=1)[:, None] * X

    def hvp_kernel(self, X, U):
        return np.sum(X * X, axis=1)[:, None] * U + 2 * np.sum(X * U, axis=1)[:, None] * X


def _quartic_reference(model):
    return AutogradModel(lambda x: 0.25 * anp.sum(x * x) ** 2, model.n_params)


def _empirical_trained_du(rng):
    """Both layers trained, Du et al.'s scaling (1/sqrt(m), 1/2 sum)."""
    X = rng.standard_normal((7, 3))
    return ls.EmpiricalReLU(X, rng.standard_normal(7), 4, train_output=True)


def _empirical_trained_mean(rng):
    """Both layers trained, unscaled network, 1/(2N) sum (the tinaz2026 empirical loss)."""
    X = rng.standard_normal((9, 3))
    return ls.EmpiricalReLU(X, X @ rng.standard_normal(3), 3, train_output=True,
                            output_scale=1.0, reduction="mean")


# Off the ReLU kinks the trained empirical loss is a quartic polynomial; the Taylor test
# steps up to 3e-2 along a unit direction, so points keep every |w_r . x_i| / |x_i| above
# this margin (no activation changes within the steps or the difference stencils).
_KINK_MARGIN = 0.05


def _empirical_point(model, rng):
    norms = np.linalg.norm(model.X, axis=1)
    for _ in range(1000):
        x = rng.standard_normal(model.n_params)
        W = model.unflatten(x)[1]
        if np.min(np.abs(model.X @ W.T) / norms[:, None]) >= _KINK_MARGIN:
            return x
    raise AssertionError("no point away from the kinks")  # pragma: no cover


MODEL_CASES = [
    ModelCase("user-quartic", lambda rng: Quartic(), reference=_quartic_reference),
    ModelCase("teacher-student-random-V", _teacher_student_random),
    ModelCase("teacher-student-identity", _teacher_student_identity),
    ModelCase("two-layer-linear-target", _two_layer_linear),
    ModelCase("two-layer-relu-target", _two_layer_relu),
    ModelCase("autograd-smooth", _autograd_smooth, reference=_smooth_reference),
    ModelCase("empirical-trained-output", _empirical_trained_du, point=_empirical_point),
    ModelCase("empirical-trained-output-mean", _empirical_trained_mean, point=_empirical_point),
]
SEEDS = [0, 1]


@pytest.fixture(params=MODEL_CASES, ids=[c.name for c in MODEL_CASES])
def case(request):
    return request.param


def model_and_point(case, seed):
    rng = np.random.default_rng(seed)
    model = case.build(rng)
    return model, case.point(model, rng), rng


# ---- first order --------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_loss_matches_reference(case, seed):
    model, x, _ = model_and_point(case, seed)
    assert_allclose(model.loss(x), case.reference(model).loss(x), rtol=LOSS_RTOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_grad_matches_reference(case, seed):
    model, x, _ = model_and_point(case, seed)
    assert_close(model.grad(x), case.reference(model).grad(x), AUTOGRAD_RTOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_grad_matches_central_differences(case, seed, fd_grad):
    model, x, _ = model_and_point(case, seed)
    assert_close(model.grad(x), fd_grad(model.loss, x, FD_STEP), FD_RTOL)


# ---- second order -------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_hess_matches_reference(case, seed):
    model, x, _ = model_and_point(case, seed)
    assert_close(model.hess(x), case.reference(model).hess(x), AUTOGRAD_RTOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_hess_matches_differenced_gradient(case, seed, fd_jac):
    model, x, _ = model_and_point(case, seed)
    assert_close(model.hess(x), fd_jac(model.grad, x, FD_STEP), FD_RTOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_hess_is_symmetric(case, seed):
    model, x, _ = model_and_point(case, seed)
    H = model.hess(x)
    assert H.shape == (model.n_params, model.n_params)
    assert np.max(np.abs(H - H.T)) <= SYMMETRY_RTOL * np.max(np.abs(H))


@pytest.mark.parametrize("seed", SEEDS)
def test_hvp_equals_hess_times_v(case, seed):
    model, x, rng = model_and_point(case, seed)
    H = model.hess(x)
    for v in (rng.standard_normal(model.n_params), np.eye(model.n_params)[-1]):
        assert_close(model.hvp(x, v), H @ v, HVP_RTOL)


# ---- batches --------------------------------------------------------------------------
@pytest.mark.parametrize("chunk_rows", [None, 3], ids=["one-chunk", "chunks-of-3"])
def test_batches_equal_loops(case, chunk_rows, rows_per_chunk):
    rng = np.random.default_rng(7)
    model = case.build(rng)
    B = 11
    X = np.stack([case.point(model, rng) for _ in range(B)])
    U = rng.standard_normal(X.shape)
    if chunk_rows is not None:
        rows_per_chunk(model, chunk_rows)
    sizes = {}
    for name in ("loss_kernel", "grad_kernel", "hvp_kernel"):
        kernel = getattr(model, name)
        sizes[name] = []

        def spy(*arrays, _kernel=kernel, _sizes=sizes[name]):
            _sizes.append(len(arrays[0]))
            return _kernel(*arrays)
        setattr(model, name, spy)

    losses = model.loss_batch(X)
    grads = model.grad_batch(X)
    hvps = model.hvp_batch(X, U)
    expected = [B] if chunk_rows is None else [3, 3, 3, 2]
    assert sizes == {name: expected for name in sizes}

    assert losses.shape == (B,) and grads.shape == hvps.shape == X.shape
    assert_allclose(losses, [model.loss(x) for x in X], rtol=BATCH_RTOL)
    assert_close(grads, np.stack([model.grad(x) for x in X]), BATCH_RTOL)
    assert_close(hvps, np.stack([model.hvp(x, u) for x, u in zip(X, U)]), BATCH_RTOL)
    assert model.is_differentiable_batch(X).tolist() == [True] * B


@pytest.mark.parametrize("chunk_rows", [None, 1], ids=["one-chunk", "row-by-row"])
def test_hess_batch_equals_loop(case, chunk_rows, rows_per_chunk):
    rng = np.random.default_rng(8)
    model = case.build(rng)
    if not hasattr(model, "hess_batch"):
        pytest.skip("model has no hess_batch")
    X = np.stack([case.point(model, rng) for _ in range(5)])
    if chunk_rows is not None:
        rows_per_chunk(model, chunk_rows)
    H = model.hess_batch(X)
    assert H.shape == (len(X), model.n_params, model.n_params)
    for Hb, x in zip(H, X):
        assert_close(Hb, model.hess(x), BATCH_RTOL)


def test_batch_of_one_vector_and_empty_batch(case):
    model, x, _ = model_and_point(case, 3)
    assert_allclose(model.loss_batch(x), [model.loss(x)], rtol=BATCH_RTOL)
    assert model.loss_batch(np.empty((0, model.n_params))).shape == (0,)


# ---- Taylor remainders ----------------------------------------------------------------
def _slope(t, r):
    return np.polyfit(np.log(t), np.log(r), 1)[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_taylor_remainder_slopes(case, seed):
    model, x, rng = model_and_point(case, seed)
    v = rng.standard_normal(model.n_params)
    v /= np.linalg.norm(v)
    L0, gv, vHv = model.loss(x), model.grad(x) @ v, v @ model.hess(x) @ v
    t = TAYLOR_STEPS
    Lt = np.array([model.loss(x + s * v) for s in t])
    r1 = np.abs(Lt - L0 - t * gv)
    r2 = np.abs(Lt - L0 - t * gv - 0.5 * t**2 * vHv)
    slope1, slope2 = _slope(t, r1), _slope(t, r2)
    assert abs(slope1 - TAYLOR_SLOPE_1[0]) <= TAYLOR_SLOPE_1[1], slope1
    assert abs(slope2 - TAYLOR_SLOPE_2[0]) <= TAYLOR_SLOPE_2[1], slope2


# ---- structure shared by every model ----------------------------------------------------
def test_flatten_roundtrip(case):
    model, x, _ = model_and_point(case, 4)
    params = model.unflatten(x)
    y = model.flatten(params)
    assert y.dtype == np.float64 and y.shape == (model.n_params,)
    assert_allclose(y, x, rtol=0, atol=0)
    assert model.is_differentiable(x)


@pytest.mark.parametrize("seed", SEEDS)
def test_symmetry_tangents_orthogonal_to_gradient(case, seed):
    model, x, _ = model_and_point(case, seed)
    T = model.symmetry_tangents(x)
    g = model.grad(x)
    assert T.ndim == 2 and T.shape[1] == model.n_params
    assert np.all(np.abs(T @ g) <= TANGENT_RTOL * np.linalg.norm(g) * np.linalg.norm(T, axis=1))


def test_optimal_loss_is_a_lower_bound(case):
    model, _, rng = model_and_point(case, 5)
    if model.optimal_loss is None:
        pytest.skip("no known global value")
    X = np.stack([case.point(model, rng) for _ in range(50)])
    assert np.all(model.loss_batch(X) >= model.optimal_loss - 1e-12)
