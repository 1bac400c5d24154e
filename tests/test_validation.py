"""Bad input at the public boundary: ValueError / TypeError naming the argument and the fix."""

import re

import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import landscape as ls
from landscape.models.autodiff import AutogradModel

INIT_STD_RTOL = 0.03          # sample std of 20,000+ draws vs the requested scale


def teacher_student():
    return ls.ReluTeacherStudent(teacher=np.eye(3)[:2], n_students=4)   # d = 3, n_params = 12


def two_layer_linear():
    return ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget([1.0, -2.0, 0.5]))


def two_layer_relu():
    return ls.TwoLayerReLU(n_hidden=2, target=ls.ReluTarget(np.eye(3), a_star=[1.0, -1.0, 2.0]))


def autograd_model():
    return AutogradModel(lambda x: anp.sum(x**4) + anp.sum(x), 5)


MODELS = [teacher_student, two_layer_linear, two_layer_relu, autograd_model]


@pytest.fixture(params=MODELS, ids=[f.__name__ for f in MODELS])
def model(request):
    return request.param()


# ---- flat parameter vectors --------------------------------------------------------------
def bad_point(kind, n):
    """(x, error, match) for a kind of bad flat vector of intended length n."""
    x = np.ones(n)
    if kind == "nan":
        x[1] = np.nan
        return x, ValueError, r"x must be finite; entry \(1,\) is nan"
    if kind == "inf":
        x[-1] = -np.inf
        return x, ValueError, r"x must be finite; entry .* is -inf"
    return {
        "too-short": (x[:-1], ValueError, rf"x must have shape \({n},\)"),
        "too-long": (np.ones(n + 1), ValueError, rf"x must have shape \({n},\)"),
        "scalar": (1.0, ValueError, r"x must have shape"),
        "empty": (np.ones(0), ValueError, r"x must not be empty"),
        "complex": (x.astype(complex), TypeError, r"x must be real"),
        "string": ("1, 2, 3", TypeError, r"x must be an array of real numbers"),
        "object": (np.array([object()] * n), TypeError, r"x must be an array of real numbers"),
        "none": (None, TypeError, r"x must be an array of real numbers"),
        "ragged": ([[1.0], [1.0, 2.0]], TypeError, r"x must be an array of real numbers"),
    }[kind]


BAD_POINTS = ["nan", "inf", "too-short", "too-long", "scalar", "empty", "complex", "string",
              "object", "none", "ragged"]


@pytest.mark.parametrize("kind", BAD_POINTS)
def test_bad_x_is_rejected_by_every_method(model, kind):
    x, error, match = bad_point(kind, model.n_params)
    methods = [model.loss, model.grad, model.hess, model.is_differentiable, model.unflatten,
               model.symmetry_tangents, lambda y: model.hvp(y, np.ones(model.n_params))]
    for method in methods:
        with pytest.raises(error, match=match):
            method(x)


# ---- overflow is an error, never a silent NaN (issue 15, item 3) ---------------------------
HUGE = 1e300


def test_a_point_where_the_loss_overflows_is_an_error_naming_it(model):
    x = model.sample_init(1, rng=0)[0]
    X = np.vstack([x, x * HUGE])
    # the kernels themselves return NaN or inf there: that is what the public methods refuse
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.all(np.isfinite(model.loss_kernel(X[1:])))
    single = [("loss", model.loss), ("gradient", model.grad), ("Hessian", model.hess),
              ("Hessian-vector product", lambda y: model.hvp(y, np.ones(model.n_params)))]
    for what, method in single:
        with pytest.raises(ValueError, match=rf"^x: the {what} overflows float64 here "
                                             r"\(entries up to " +
                                             re.escape(f"{np.abs(x).max() * HUGE:.3g} ")):
            method(x * HUGE)
    batched = [("loss", model.loss_batch), ("gradient", model.grad_batch),
               ("Hessian", model.hess_batch),
               ("Hessian-vector product", lambda Y: model.hvp_batch(Y, np.ones_like(Y)))]
    for what, method in batched:
        with pytest.raises(ValueError, match=rf"^X row 1: the {what} overflows float64"):
            method(X)
        assert np.all(np.isfinite(method(X[:1])))       # a sensible point is untouched


def test_a_loss_that_is_not_finite_at_a_moderate_point_says_so():
    m = AutogradModel(lambda z: (z[0] - 1.0) ** 2 / z[1], 2)
    with pytest.raises(ValueError, match=r"^x: the loss is not finite here.*loss_fn returned"):
        m.loss([1.0, 0.0])


@pytest.mark.parametrize("make, match", [
    (lambda: ls.ReluTeacherStudent(teacher=np.eye(3) * HUGE, n_students=3),
     r"teacher is too large: the loss overflows float64 \(its norms reach 1e\+300\); rescale"),
    (lambda: ls.LinearTarget(np.ones(3) * 1e200), r"beta is too large"),
    (lambda: ls.ReluTarget(np.eye(2) * HUGE), r"V is too large"),
    (lambda: ls.ReluTarget(np.eye(2), a_star=[HUGE, 1.0]),
     r"the teacher \(V, a_star\) is too large"),
    (lambda: ls.EmpiricalReLU(np.ones((3, 2)) * HUGE, np.ones(3), width=4), r"X is too large"),
    (lambda: ls.EmpiricalReLU(np.ones((3, 2)), np.ones(3) * 1e200, width=4), r"y is too large"),
])
def test_a_target_whose_loss_overflows_is_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()
    # the largest teacher that is accepted gives finite losses
    m = ls.ReluTeacherStudent(teacher=np.eye(3) * 1e150, n_students=3)
    assert np.isfinite(m.loss(m.sample_init(1, rng=0)[0]))


def test_structured_params_passed_as_x_mention_flatten():
    model = teacher_student()
    W = np.ones((4, 3))
    for method in (model.loss, model.grad, model.hess):
        with pytest.raises(ValueError, match=r"x must have shape \(12,\), got \(4, 3\).*flatten"):
            method(W)
    assert_allclose(model.loss(model.flatten(W)), model.loss(W.ravel()))


def test_hvp_checks_its_direction(model):
    x = np.full(model.n_params, 0.5)
    with pytest.raises(ValueError, match=rf"v must have shape \({model.n_params},\)"):
        model.hvp(x, np.ones(model.n_params + 1))
    with pytest.raises(ValueError, match=r"v must be finite"):
        model.hvp(x, np.full(model.n_params, np.nan))
    with pytest.raises(TypeError, match=r"v must be real"):
        model.hvp(x, np.ones(model.n_params, dtype=complex))


# ---- batches -------------------------------------------------------------------------------
def test_batch_of_wrong_width(model):
    n = model.n_params
    for X in (np.ones((3, n + 1)), np.ones((3, n - 1)), np.ones((2, 3, n)), np.ones(n + 1)):
        for method in (model.loss_batch, model.grad_batch, model.is_differentiable_batch):
            with pytest.raises(ValueError, match=rf"X must have shape \(B, {n}\)"):
                method(X)


def test_batch_with_nan_complex_or_string(model):
    X = np.ones((3, model.n_params))
    X[2, 0] = np.nan
    with pytest.raises(ValueError, match=r"X must be finite; entry \(2, 0\)"):
        model.loss_batch(X)
    with pytest.raises(TypeError, match=r"X must be real"):
        model.grad_batch(np.ones((3, model.n_params), dtype=complex))
    with pytest.raises(TypeError, match=r"X must be an array of real numbers"):
        model.loss_batch("X")


def test_hvp_batch_directions_must_match(model):
    n = model.n_params
    X = np.full((3, n), 0.5)
    with pytest.raises(ValueError, match=r"U must have the shape of X"):
        model.hvp_batch(X, np.ones((2, n)))
    with pytest.raises(ValueError, match=rf"U must have shape \(B, {n}\)"):
        model.hvp_batch(X, np.ones((3, n + 1)))
    with pytest.raises(ValueError, match=r"U must be finite"):
        model.hvp_batch(X, np.full((3, n), np.inf))


# ---- constructors ----------------------------------------------------------------------------
@pytest.mark.parametrize("teacher, error, match", [
    (np.array([[1.0, np.nan]]), ValueError, r"teacher must be finite"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), ValueError, r"teacher must be finite"),
    (np.zeros((0, 3)), ValueError, r"teacher must have at least one row and one column.*\(0, 3\)"),
    (np.zeros((2, 0)), ValueError, r"teacher must have at least one row and one column.*\(2, 0\)"),
    (np.ones(3), ValueError, r"teacher must be a 2-D array"),
    (np.ones((2, 2, 2)), ValueError, r"teacher must be a 2-D array"),
    (np.eye(2, dtype=complex), TypeError, r"teacher must be real"),
    ("eye", TypeError, r"teacher must be an array of real numbers"),
    (None, TypeError, r"teacher must be an array of real numbers"),
])
def test_bad_teacher(teacher, error, match):
    with pytest.raises(error, match=match):
        ls.ReluTeacherStudent(teacher=teacher, n_students=2)


@pytest.mark.parametrize("k, error, match", [
    (0, ValueError, r"n_students must be >= 1, got 0"),
    (-3, ValueError, r"n_students must be >= 1, got -3"),
    (2.0, TypeError, r"n_students must be an integer"),
    (2.5, TypeError, r"n_students must be an integer"),
    ("3", TypeError, r"n_students must be an integer"),
    (True, TypeError, r"n_students must be an integer"),
    (None, TypeError, r"n_students must be an integer"),
])
def test_bad_n_students(k, error, match):
    with pytest.raises(error, match=match):
        ls.ReluTeacherStudent(teacher=np.eye(2), n_students=k)


def test_numpy_integers_are_accepted():
    model = ls.ReluTeacherStudent(teacher=np.eye(2), n_students=np.int64(3))
    assert model.n_students == 3 and isinstance(model.n_students, int)
    assert ls.TwoLayerReLU(n_hidden=np.int32(2), target=ls.LinearTarget([1.0])).n_hidden == 2


@pytest.mark.parametrize("k, error, match", [
    (0, ValueError, r"n_hidden must be >= 1"),
    (1.5, TypeError, r"n_hidden must be an integer"),
])
def test_bad_n_hidden(k, error, match):
    with pytest.raises(error, match=match):
        ls.TwoLayerReLU(n_hidden=k, target=ls.LinearTarget([1.0, 2.0]))


@pytest.mark.parametrize("target", [np.array([1.0, 2.0]), "linear", None, ls.ReluTeacherStudent])
def test_two_layer_target_must_be_a_target(target):
    with pytest.raises(TypeError, match=r"target must be a LinearTarget\(beta\) or a ReluTarget"):
        ls.TwoLayerReLU(n_hidden=2, target=target)


@pytest.mark.parametrize("beta, error, match", [
    ([1.0, np.nan], ValueError, r"beta must be finite"),
    ([[1.0, 2.0]], ValueError, r"beta must be 1-dimensional"),
    ([], ValueError, r"beta must not be empty"),
    ([1j, 2.0], TypeError, r"beta must be real"),
    ("beta", TypeError, r"beta must be an array of real numbers"),
])
def test_bad_linear_target(beta, error, match):
    with pytest.raises(error, match=match):
        ls.LinearTarget(beta)


@pytest.mark.parametrize("V, a_star, error, match", [
    (np.zeros((0, 2)), None, ValueError, r"V must have at least one row"),
    (np.zeros((2, 0)), None, ValueError, r"V must have at least one row and one column"),
    ([[np.inf, 1.0]], None, ValueError, r"V must be finite"),
    (np.eye(2), [1.0, 2.0, 3.0], ValueError, r"a_star must have shape \(2,\)"),
    (np.eye(2), [1.0, np.nan], ValueError, r"a_star must be finite"),
])
def test_bad_relu_target(V, a_star, error, match):
    with pytest.raises(error, match=match):
        ls.ReluTarget(V, a_star)


@pytest.mark.parametrize("loss_fn, n, error, match", [
    ("x**2", 2, TypeError, r"loss_fn must be callable"),
    (anp.sum, 0, ValueError, r"n_params must be >= 1"),
    (anp.sum, 2.0, TypeError, r"n_params must be an integer"),
])
def test_bad_autograd_model(loss_fn, n, error, match):
    with pytest.raises(error, match=match):
        AutogradModel(loss_fn, n)


# ---- flatten ----------------------------------------------------------------------------------
def test_teacher_student_flatten_checks_shape():
    model = teacher_student()   # k = 4, d = 3
    with pytest.raises(ValueError, match=r"W must have 3 columns \(the input dimension\), got 2"):
        model.flatten(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"W must have 4 rows \(one per student\), got 3"):
        model.flatten(np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"W must be a 2-D array"):
        model.flatten(np.ones(12))
    with pytest.raises(ValueError, match=r"W must be finite"):
        model.flatten(np.full((4, 3), np.nan))


def test_two_layer_flatten_checks_shape():
    model = two_layer_linear()   # k = 2, d = 3
    with pytest.raises(ValueError, match=r"W must have 3 columns \(the input dimension\)"):
        model.flatten(([1.0, 1.0], np.ones((2, 4))))
    with pytest.raises(ValueError, match=r"W must have 2 rows \(one per hidden neuron\)"):
        model.flatten(([1.0, 1.0], np.ones((3, 3))))
    with pytest.raises(ValueError, match=r"a must have shape \(2,\)"):
        model.flatten(([1.0, 1.0, 1.0], np.ones((2, 3))))
    with pytest.raises(ValueError, match=r"a must be finite"):
        model.flatten(([1.0, np.nan], np.ones((2, 3))))
    with pytest.raises(TypeError, match=r"params must be a pair \(a, W\)"):
        model.flatten(np.ones(8))
    with pytest.raises(TypeError, match=r"params must be a pair \(a, W\)"):
        model.flatten(None)


# ---- sample_init --------------------------------------------------------------------------------
@pytest.mark.parametrize("rng, error, match", [
    ("seed", TypeError, r"rng must be an int seed, a numpy Generator"),
    (1.5, TypeError, r"rng must be an int seed"),
    (-1, ValueError, r"rng must be a non-negative seed"),
    (np.random.RandomState(0), TypeError, r"rng must be an int seed"),
])
def test_sample_init_bad_rng(model, rng, error, match):
    with pytest.raises(error, match=match):
        model.sample_init(2, rng=rng)


@pytest.mark.parametrize("scale, error, match", [
    (0.0, ValueError, r"scale must be finite and > 0, got 0.0"),
    (-1.0, ValueError, r"scale must be finite and > 0"),
    (np.nan, ValueError, r"scale must be finite and > 0"),
    (np.inf, ValueError, r"scale must be finite and > 0"),
    ("big", TypeError, r"scale must be a real number"),
    (1j, TypeError, r"scale must be a real number"),
])
def test_sample_init_bad_scale(model, scale, error, match):
    with pytest.raises(error, match=match):
        model.sample_init(2, rng=0, scale=scale)


@pytest.mark.parametrize("n, error, match", [
    (0, ValueError, r"n must be >= 1"),
    (2.0, TypeError, r"n must be an integer"),
])
def test_sample_init_bad_n(model, n, error, match):
    with pytest.raises(error, match=match):
        model.sample_init(n)


def test_sample_init_shape_default_scale_and_determinism(model):
    n = 20_000 // model.n_params + 1
    X = model.sample_init(n, rng=123)
    assert X.shape == (n, model.n_params) and X.dtype == np.float64
    assert_allclose(X.std(), 1 / np.sqrt(model.input_dim), rtol=INIT_STD_RTOL)
    assert abs(X.mean()) <= 5 / np.sqrt(model.input_dim * X.size)
    assert_allclose(model.sample_init(n, rng=123, scale=2.5).std(), 2.5, rtol=INIT_STD_RTOL)
    # fixed seed -> identical draws; a Generator is used as given
    assert_array_equal(model.sample_init(n, rng=123), X)
    assert_array_equal(model.sample_init(3, rng=np.random.default_rng(7)),
                       model.sample_init(3, rng=np.random.SeedSequence(7)))
    assert not np.array_equal(model.sample_init(3, rng=1), model.sample_init(3, rng=2))
    gen = np.random.default_rng(5)
    assert not np.array_equal(model.sample_init(3, rng=gen), model.sample_init(3, rng=gen))
    assert np.all(model.is_differentiable_batch(X))
