"""Tests of landscape.spectrum: dense and Lanczos Hessian spectra, LDLᵀ inertia."""

import dataclasses

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse
from numpy.testing import assert_allclose, assert_array_equal
from scipy.sparse.linalg import aslinearoperator
from threadpoolctl import threadpool_limits

import landscape as ls
import landscape.spectrum as spectrum
from landscape.models.base import Model
from landscape.spectrum import (HessianSpectrum, hessian_spectrum, inertia, is_positive_definite,
                                min_curvature, smallest_eigenvalues)

# Named tolerances.
EXTREMES_ATOL = 1e-8        # Lanczos vs dense extreme eigenvalues
RESIDUAL_RTOL = 1e-8        # ‖Hv - λv‖ <= RESIDUAL_RTOL * ‖H‖
EIGEN_RTOL = 1e-12          # dense eigenvalues vs the prescribed ones, relative to ‖H‖
GAP_RTOL = 1e-6             # Lanczos (shift-invert) gap vs dense gap
TAU_RTOL = 1e-12            # tolerance τ computed by the two methods
TS_ATOL = 1e-10             # teacher-student reference value
BATCH_RTOL = 1e-12          # batched helpers vs numpy's eigvalsh, relative to ‖H‖

TS_LAMBDA_MIN = 0.25 - 1.0 / (2.0 * np.pi)   # λ_min at W = V = I (DESIGN.md)


def one_blas_thread():
    """Single-threaded BLAS for the big test matrices: two OpenBLAS threads on a busy
    2-core machine made the n = 3,000 case 10x slower."""
    return threadpool_limits(limits=1, user_api="blas")


class QuadraticModel(Model):
    """L(x) = ½ xᵀAx for a fixed symmetric A, with exact vectorised derivatives.

    Counts Hessian-vector products and dense Hessians, so tests can check which
    path formed H.
    """

    def __init__(self, A):
        self.A = np.asarray(A, dtype=float)
        self.n_params = self.input_dim = self.A.shape[0]
        self.hess_calls = 0
        self.hvp_rows = 0

    def flatten(self, params):
        return self.check_x(params, "params")

    def unflatten(self, x):
        return self.check_x(x)

    def loss_kernel(self, X):
        return 0.5 * np.einsum("bi,bi->b", X @ self.A, X)

    def grad_kernel(self, X):
        return X @ self.A

    def hvp_kernel(self, X, U):
        self.hvp_rows += len(U)
        return U @ self.A

    def hess_kernel(self, X):
        self.hess_calls += len(X)
        return np.repeat(self.A[None], len(X), axis=0)


def prescribed(lam, rng):
    """Q diag(lam) Qᵀ with a Haar-random orthogonal Q (exactly symmetric)."""
    n = len(lam)
    with one_blas_thread():
        Q, R = np.linalg.qr(rng.standard_normal((n, n)))
        Q *= np.sign(np.diag(R))
        H = (Q * lam) @ Q.T
    return 0.5 * (H + H.T)


def counts(lam, tau):
    lam = np.asarray(lam)
    return (int(np.sum(lam < -tau)), int(np.sum(np.abs(lam) <= tau)), int(np.sum(lam > tau)))


def near_zero_spectrum(tau, rng, n):
    """Well-separated extremes, a bulk, and eigenvalues at 0, ±τ/2 (zero) and ±2τ (nonzero)."""
    special = [0.0, 0.0, 0.0, tau / 2, -tau / 2, 2 * tau, -2 * tau]
    ends = [-10.0, -9.0, -8.0, 7.0, 8.0, 9.5]
    bulk = np.concatenate([-rng.uniform(1.0, 5.0, (n - 13) // 2),
                           rng.uniform(1.0, 5.0, n - 13 - (n - 13) // 2)])
    return np.sort(np.concatenate([special, ends, bulk]))


def check_residuals(s):
    assert s.residuals.shape == s.eigenvalues.shape
    assert np.all(s.residuals <= RESIDUAL_RTOL * s.norm)


# ---- prescribed spectra --------------------------------------------------------------

@pytest.mark.parametrize("method", ["dense", "lanczos"])
def test_prescribed_spectrum_autograd_quadratic(method):
    rng = np.random.default_rng(0)
    n = 40
    tau = 1e-9 * 10.0            # default rtol times ‖H‖ = 10
    lam = near_zero_spectrum(tau, rng, n)
    A = prescribed(lam, rng)
    m = ls.AutogradModel(lambda x: 0.5 * x @ A @ x, n)
    s = hessian_spectrum(m, rng.standard_normal(n), method=method, k=3)
    assert s.method == method
    assert s.inertia_method == ("eigenvalues" if method == "dense" else "ldl")
    assert_allclose(s.norm, 10.0, rtol=EIGEN_RTOL)
    assert_allclose(s.tau, tau, rtol=TAU_RTOL)
    # ±τ/2 and 0 count as zero, ±2τ as nonzero.
    assert (s.n_negative, s.n_zero, s.n_positive) == counts(lam, tau) == (17, 5, 18)
    assert_allclose(s.eigenvalues, np.r_[lam[:3], lam[-3:]], rtol=0,
                    atol=EIGEN_RTOL * 10 if method == "dense" else EXTREMES_ATOL)
    assert_allclose(s.gap, 2 * tau, rtol=GAP_RTOL)
    assert s.lambda_min == s.eigenvalues[0] and s.lambda_max == s.eigenvalues[-1]
    check_residuals(s)


def test_dense_returns_every_eigenvalue_and_vectors():
    rng = np.random.default_rng(1)
    lam = near_zero_spectrum(1e-8, rng, 60)
    m = QuadraticModel(prescribed(lam, rng))
    s = hessian_spectrum(m, np.zeros(60), vectors=True)
    assert s.method == "dense" and s.eigenvalues.shape == (60,)
    assert_allclose(s.eigenvalues, lam, rtol=0, atol=EIGEN_RTOL * 10)
    assert s.eigenvectors.shape == (60, 60)
    assert_allclose(s.eigenvectors.T @ s.eigenvectors, np.eye(60), atol=1e-12)
    assert_allclose(np.linalg.norm(m.A @ s.eigenvectors - s.eigenvectors * s.eigenvalues,
                                   axis=0), s.residuals, atol=1e-14)
    assert hessian_spectrum(m, np.zeros(60)).eigenvectors is None


@pytest.mark.parametrize("tau", [None, 1e-6])
def test_dense_and_lanczos_agree(tau):
    rng = np.random.default_rng(2)
    n, k = 600, 3
    lam = near_zero_spectrum(1e-8 if tau is None else tau, rng, n)
    m = QuadraticModel(prescribed(lam, rng))
    x = rng.standard_normal(n)
    d = hessian_spectrum(m, x, method="dense", k=k, tau=tau)
    m.hess_calls = 0
    z = hessian_spectrum(m, x, method="lanczos", k=k, tau=tau, vectors=True)
    assert m.hess_calls == 1 and m.hvp_rows > 0    # eigsh used hvp; H only for the LDLᵀ counts
    assert_allclose(z.eigenvalues, d.eigenvalues, rtol=0, atol=EXTREMES_ATOL)
    assert_allclose(z.eigenvalues, np.r_[lam[:k], lam[-k:]], rtol=0, atol=EXTREMES_ATOL)
    assert (z.n_negative, z.n_zero, z.n_positive) == (d.n_negative, d.n_zero, d.n_positive)
    assert (d.n_negative, d.n_zero, d.n_positive) == counts(lam, d.tau)
    assert_allclose(z.tau, d.tau, rtol=TAU_RTOL)
    assert_allclose(z.norm, d.norm, rtol=0, atol=EXTREMES_ATOL)
    assert_allclose(z.gap, d.gap, rtol=GAP_RTOL)
    check_residuals(d)
    check_residuals(z)
    assert z.eigenvectors.shape == (n, 2 * k)
    assert_allclose(np.linalg.norm(m.A @ z.eigenvectors - z.eigenvectors * z.eigenvalues,
                                   axis=0), z.residuals, atol=1e-12)


def test_lanczos_gap_negative_side_and_indefinite_counts():
    # The nearest nonzero eigenvalue is negative: the gap comes from H + τI.
    rng = np.random.default_rng(3)
    tau = 1e-6
    lam = np.sort(np.concatenate([[0.0, 0.0, -3 * tau, 5 * tau], -rng.uniform(0.5, 4, 30),
                                  rng.uniform(0.5, 4, 30)]))
    m = QuadraticModel(prescribed(lam, rng))
    z = hessian_spectrum(m, np.zeros(lam.size), method="lanczos", k=2, tau=tau)
    assert (z.n_negative, z.n_zero, z.n_positive) == counts(lam, tau) == (31, 2, 31)
    assert_allclose(z.gap, 3 * tau, rtol=GAP_RTOL)


@pytest.mark.parametrize("k, shift_invert_sides", [(1, ["LA"]), (2, [])])
def test_lanczos_gap_from_ritz_values_when_counts_allow(monkeypatch, k, shift_invert_sides):
    # Index-1 saddle: the largest negative eigenvalue is λ_min itself (a Ritz value);
    # the smallest positive one is the second Ritz value when k >= 2, else it needs
    # shift-invert Lanczos on (H - τI)⁻¹.
    rng = np.random.default_rng(7)
    lam = np.sort(np.concatenate([[-3.0, 0.25], rng.uniform(0.5, 4.0, 40)]))
    m = QuadraticModel(prescribed(lam, rng))
    runs = []
    original = spectrum._nearest_beyond

    def spy(factor, sigma, which, n_outliers, rng):
        runs.append(which)
        return original(factor, sigma, which, n_outliers, rng)

    monkeypatch.setattr(spectrum, "_nearest_beyond", spy)
    z = hessian_spectrum(m, np.zeros(lam.size), method="lanczos", k=k)
    assert runs == shift_invert_sides
    assert (z.n_negative, z.n_zero, z.n_positive) == (1, 0, 41)
    assert_allclose(z.gap, 0.25, rtol=GAP_RTOL)


def test_lanczos_default_k_gives_the_extremes():
    rng = np.random.default_rng(8)
    lam = np.sort(rng.uniform(-2.0, 5.0, 50))
    m = QuadraticModel(prescribed(lam, rng))
    z = hessian_spectrum(m, np.zeros(50), method="lanczos")
    assert_allclose(z.eigenvalues, [lam[0], lam[-1]], rtol=0, atol=EXTREMES_ATOL)
    assert_allclose(z.norm, max(-lam[0], lam[-1]), rtol=0, atol=EXTREMES_ATOL)
    assert z.eigenvectors is None


def test_lanczos_on_a_zero_hessian():
    m = QuadraticModel(np.zeros((6, 6)))
    z = hessian_spectrum(m, np.zeros(6), method="lanczos", k=2)
    assert_array_equal(z.eigenvalues, np.zeros(4))
    assert (z.n_negative, z.n_zero, z.n_positive, z.gap) == (0, 6, 0, np.inf)


def test_gap_is_infinite_when_every_eigenvalue_is_zero():
    m = QuadraticModel(1e-12 * np.eye(5))
    s = hessian_spectrum(m, np.zeros(5))
    assert (s.n_negative, s.n_zero, s.n_positive) == (0, 5, 0)
    assert_allclose(s.tau, 1e-10)       # atol wins over rtol * ‖H‖
    assert s.gap == np.inf


def test_auto_switches_to_lanczos_above_dense_limit(monkeypatch):
    monkeypatch.setattr(spectrum, "DENSE_LIMIT", 30)
    rng = np.random.default_rng(4)
    for n, expected in [(30, "dense"), (31, "lanczos")]:
        m = QuadraticModel(prescribed(rng.uniform(-1, 1, n), rng))
        assert hessian_spectrum(m, np.zeros(n)).method == expected


def test_lanczos_singular_shift_reports_nan_gap_with_warning():
    # An eigenvalue exactly at τ makes H - τI exactly singular: counts stay exact.
    m = QuadraticModel(np.diag([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0]))
    with pytest.warns(ls.LandscapeWarning, match="singular"):
        z = hessian_spectrum(m, np.zeros(7), method="lanczos", k=2, tau=0.5)
    assert (z.n_negative, z.n_zero, z.n_positive) == (1, 2, 4)
    assert np.isnan(z.gap)


# ---- inertia -----------------------------------------------------------------------

@pytest.mark.parametrize("n", [50, 500, pytest.param(3000, marks=pytest.mark.slow)])
def test_inertia_matches_dense_counts(n):
    # n = 3,000 takes 4-9 s (QR and eigvalsh for the reference dominate), more on a busy machine.
    rng = np.random.default_rng(n)
    tau = 1e-6
    per = max(2, n // 50)
    clusters = np.concatenate([np.zeros(per), np.full(per, tau / 10), np.full(per, -tau / 10),
                               np.full(per, 10 * tau), np.full(per, -10 * tau)])
    clusters += rng.uniform(-1e-3, 1e-3, clusters.size) * tau     # small spread in each
    bulk = rng.uniform(-3.0, 3.0, n - clusters.size)
    lam = np.concatenate([clusters, bulk])
    H = prescribed(lam, rng)
    with one_blas_thread():
        dense = counts(scipy.linalg.eigvalsh(H), tau)
    assert dense == counts(lam, tau)
    assert inertia(H, tau) == dense
    assert dense[1] == 3 * per


def test_inertia_accepts_operators_and_sparse_matrices():
    rng = np.random.default_rng(5)
    lam = np.r_[-2.0, -1.0, 0.0, 1e-9, 3.0, 4.0, 5.0]
    H = prescribed(lam, rng)
    expected = (2, 2, 3)
    assert inertia(H, 1e-6) == expected
    assert inertia(aslinearoperator(H), 1e-6) == expected
    assert inertia(scipy.sparse.csr_array(np.diag(lam)), 1e-6) == expected
    assert inertia(H.tolist(), 1e-6) == expected


def test_inertia_with_tau_zero_and_exact_zero_pivot():
    assert inertia(np.diag([-1.0, 0.0, 2.0]), 0.0) == (1, 1, 1)
    assert inertia(np.zeros((3, 3)), 0.0) == (0, 3, 0)
    assert inertia(np.array([[5.0]]), 1.0) == (0, 0, 1)


def test_block_decoding_matches_scipy_ldl():
    # A zero diagonal forces Bunch-Kaufman to take 2×2 pivots.
    rng = np.random.default_rng(6)
    n = 200
    A = rng.standard_normal((n, n))
    A = A + A.T
    A[np.diag_indices(n)] = 0.0
    ldu, ipiv, _ = spectrum._sytrf(np.array(A, order="F"))
    assert np.any(ipiv < 0) and np.any(ipiv > 0)
    ours = np.sort(spectrum._block_eigenvalues(ldu, ipiv))
    _, D, _ = scipy.linalg.ldl(A, lower=True)
    assert_allclose(ours, np.sort(scipy.linalg.eigvalsh(D)), rtol=1e-12, atol=1e-12)
    lam = scipy.linalg.eigvalsh(A)
    assert inertia(A, 0.0) == counts(lam, 0.0)
    assert inertia(A, 0.5) == counts(lam, 0.5)


# ---- many points at once: smallest_eigenvalues, is_positive_definite, min_curvature ----

def random_points(m, B, rng):
    """B generic points of a teacher-student model (no zero neuron)."""
    return m.sample_init(B, rng=rng)


def test_smallest_eigenvalues_match_eigvalsh_row_by_row(monkeypatch):
    m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=5)
    X = random_points(m, 7, 0)
    expected = [np.linalg.eigvalsh(m.hess(x))[0] for x in X]
    norm = max(np.abs(np.linalg.eigvalsh(m.hess(x))).max() for x in X)
    assert_allclose(smallest_eigenvalues(m, X), expected, rtol=0, atol=BATCH_RTOL * norm)
    # Hessians built in chunks of one row give the same numbers
    monkeypatch.setattr("landscape._linalg._CHUNK_ENTRIES", 1)
    assert_allclose(smallest_eigenvalues(m, X), expected, rtol=0, atol=BATCH_RTOL * norm)
    assert smallest_eigenvalues(m, X[:0]).shape == (0,)


def test_smallest_eigenvalues_and_min_curvature_by_lanczos_above_the_dense_limit(monkeypatch):
    rng = np.random.default_rng(7)
    lam = np.sort(rng.uniform(-3.0, 5.0, 40))
    m = QuadraticModel(prescribed(lam, rng))
    dense_lam, dense_v = min_curvature(m, np.zeros(40))
    monkeypatch.setattr(spectrum, "DENSE_LIMIT", 30)
    calls = m.hvp_rows
    lanczos_lam, lanczos_v = min_curvature(m, np.zeros(40))
    assert m.hvp_rows > calls                          # the Lanczos path ran on hvp
    for value, v in ((dense_lam, dense_v), (lanczos_lam, lanczos_v)):
        assert_allclose(value, lam[0], rtol=0, atol=EXTREMES_ATOL)
        assert_allclose(np.linalg.norm(v), 1.0, rtol=1e-12)
        assert np.linalg.norm(m.A @ v - value * v) <= RESIDUAL_RTOL * np.abs(lam).max()
    assert_allclose(smallest_eigenvalues(m, np.zeros((2, 40))), [lam[0]] * 2, rtol=0,
                    atol=EXTREMES_ATOL)


@pytest.mark.parametrize("lam_min, expected", [(1e-3, True), (-1e-3, False), (-2.0, False)])
def test_is_positive_definite_on_prescribed_spectra(lam_min, expected):
    rng = np.random.default_rng(11)
    lam = np.concatenate([[lam_min], rng.uniform(0.5, 4.0, 19)])
    m = QuadraticModel(prescribed(lam, rng))
    assert_array_equal(is_positive_definite(m, np.zeros((3, 20))), [expected] * 3)
    assert is_positive_definite(m, np.zeros((0, 20))).shape == (0,)


@pytest.mark.parametrize("lam_min, shift, expected", [(-1e-3, 2e-3, True), (-1e-3, 5e-4, False),
                                                      (1e-3, 0.0, True), (-2.0, 1.0, False)])
def test_is_positive_definite_with_a_shift_tests_lambda_min_above_minus_shift(lam_min, shift,
                                                                              expected):
    rng = np.random.default_rng(12)
    lam = np.concatenate([[lam_min], rng.uniform(0.5, 4.0, 19)])
    m = QuadraticModel(prescribed(lam, rng))
    assert_array_equal(is_positive_definite(m, np.zeros((2, 20)), shift=shift), [expected] * 2)


def test_is_positive_definite_agrees_with_the_smallest_eigenvalue():
    m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=4)
    near = m.flatten(np.eye(4)) + 0.01 * np.random.default_rng(3).standard_normal((3, 16))
    X = np.vstack([random_points(m, 4, 3), near])     # indefinite at random, PD near W = I
    lam = smallest_eigenvalues(m, X)
    assert np.all(np.abs(lam) > 1e-6)                  # no verdict within rounding of 0
    assert_array_equal(is_positive_definite(m, X), lam > 0)
    assert_array_equal(is_positive_definite(m, X), [False] * 4 + [True] * 3)


# ---- points from the papers --------------------------------------------------------

@pytest.mark.parametrize("method", ["dense", "lanczos"])
def test_teacher_student_global_minimum(method):
    m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=4)
    s = hessian_spectrum(m, m.flatten(np.eye(4)), method=method, k=3)
    assert (s.n_negative, s.n_zero, s.n_positive) == (0, 0, 16)
    assert_allclose(s.lambda_min, TS_LAMBDA_MIN, rtol=0, atol=TS_ATOL)
    assert_allclose(s.gap, TS_LAMBDA_MIN, rtol=GAP_RTOL)
    check_residuals(s)


@pytest.mark.parametrize("method", ["dense", "lanczos"])
def test_teacher_student_split_neuron_is_psd_and_singular(method):
    n = 3
    V = np.eye(n)
    m = ls.ReluTeacherStudent(teacher=V, n_students=n + 1)
    x = m.flatten(np.vstack([V[0] / 2, V[0] / 2, V[1:]]))
    assert_allclose(m.loss(x), 0.0, atol=1e-15)
    s = hessian_spectrum(m, x, method=method, k=2)
    assert s.n_negative == 0
    assert s.n_zero >= 1
    assert s.n_negative + s.n_zero + s.n_positive == m.n_params
    assert s.lambda_min >= -s.tau
    check_residuals(s)


# ---- results -----------------------------------------------------------------------

def test_result_is_frozen_and_round_trips():
    m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    s = hessian_spectrum(m, m.flatten(np.eye(3)), vectors=True)
    assert isinstance(s, HessianSpectrum)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.tau = 1.0
    t = HessianSpectrum.from_dict(s.to_dict())
    for f in dataclasses.fields(s):
        a, b = getattr(s, f.name), getattr(t, f.name)
        if isinstance(a, np.ndarray):
            assert_array_equal(a, b)
        else:
            assert a == b
    assert repr(s).startswith("HessianSpectrum(") and "n_negative=0" in repr(s)


# ---- bad input ---------------------------------------------------------------------

@pytest.fixture
def ts_point():
    m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=4)
    return m, m.flatten(np.eye(4))


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"method": "qr"}, ValueError, "method"),
    ({"method": 3}, TypeError, "method"),
    ({"k": 9, "method": "dense"}, ValueError, "k must satisfy 2k <= n_params"),
    ({"k": 8, "method": "lanczos"}, ValueError, "k must satisfy 2k < n_params"),
    ({"k": 0}, ValueError, "k must be >= 1"),
    ({"k": 2.5}, TypeError, "k must be an integer"),
    ({"tau": -1e-3}, ValueError, "tau"),
    ({"rtol": -1.0}, ValueError, "rtol"),
    ({"atol": float("nan")}, ValueError, "atol"),
])
def test_bad_arguments(ts_point, kwargs, exc, match):
    m, x = ts_point
    with pytest.raises(exc, match=match):
        hessian_spectrum(m, x, **kwargs)


def test_bad_point_and_model(ts_point):
    m, x = ts_point
    with pytest.raises(ValueError, match=r"x must have shape \(16,\)"):
        hessian_spectrum(m, x[:-1])
    with pytest.raises(ValueError, match="x must be finite"):
        hessian_spectrum(m, np.full(16, np.nan))
    with pytest.raises(TypeError, match="model"):
        hessian_spectrum(np.eye(3), x)
    with pytest.raises(ls.NonDifferentiableError, match="neuron 0"):
        hessian_spectrum(m, m.flatten(np.diag([0.0, 1.0, 1.0, 1.0])))
    with pytest.raises(ValueError, match="n_params >= 3"):
        hessian_spectrum(QuadraticModel(np.eye(2)), np.zeros(2), method="lanczos")


def test_inertia_bad_input():
    with pytest.raises(ValueError, match="tau"):
        inertia(np.eye(3), -1.0)
    with pytest.raises(ValueError, match="H must be a square matrix"):
        inertia(np.ones((2, 3)), 0.1)
    with pytest.raises(ValueError, match="H must be symmetric"):
        inertia(np.array([[1.0, 2.0], [0.0, 1.0]]), 0.1)
    with pytest.raises(ValueError, match="H must be 2-dimensional"):
        inertia(np.ones(3), 0.1)
    with pytest.raises(ValueError, match="H must be finite"):
        inertia(np.array([[np.inf]]), 0.1)


def test_lanczos_inertia_of_a_minimum_by_one_cholesky_agrees_with_ldl():
    """Issue 17: a minimum's inertia beyond the dense limit costs one dpotrf, not two dsytrf."""
    rng = np.random.default_rng(4)
    n = 40
    lam = np.sort(rng.uniform(0.5, 10.0, n))
    lam[:3] = [1e-6, 2e-6, 0.01]                 # small but above tau = 1e-9 * 10
    A = prescribed(lam, rng)
    m = ls.AutogradModel(lambda x: 0.5 * x @ A @ x, n)
    s = hessian_spectrum(m, rng.standard_normal(n), method="lanczos", k=3)
    assert s.inertia_method == "cholesky"
    assert (s.n_negative, s.n_zero, s.n_positive) == (0, 0, n)
    assert_allclose(s.gap, 1e-6, rtol=1e-6)      # the smallest eigenvalue, from Lanczos
    # one eigenvalue inside the band: no Cholesky factor of H - tau I, so LDL decides
    lam[0] = 1e-12
    B = prescribed(lam, rng)
    m2 = ls.AutogradModel(lambda x: 0.5 * x @ B @ x, n)
    t = hessian_spectrum(m2, rng.standard_normal(n), method="lanczos", k=3)
    assert t.inertia_method == "ldl" and (t.n_negative, t.n_zero, t.n_positive) == (0, 1, n - 1)
