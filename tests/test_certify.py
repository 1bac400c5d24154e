"""ls.certify: computer-assisted proofs in ball arithmetic (issue 20).

Known answers (quadratics with a prescribed spectrum, a double well, the global minimum
W = V = I with lambda_min = 1/4 - 1/(2 pi)), spurious minima found by gradient descent for
k = n = 7...10 and their splits (strict saddles, Safran et al. 2021), points that must never be
certified (non-critical, a zero neuron, a split as a minimum), and soundness: the ball always
contains the Newton-polished point.
"""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import landscape as ls
from landscape.models.balls import BallDerivatives, flint_context

LAMBDA_GLOBAL = 0.25 - 1.0 / (2.0 * np.pi)   # lambda_min at W = V = I (DESIGN.md)
SPURIOUS_LOSS = 1e-9                          # F above this: not the global value 0


# ---- small models with known critical points -------------------------------------------------
class Quadratic(ls.Model):
    """L = 1/2 (x - c)^T A (x - c), A = Q diag(lam) Q^T: one critical point, c."""

    def __init__(self, lam, c, rng=0):
        rng = np.random.default_rng(rng)
        self.n_params = self.input_dim = len(lam)
        Q, _ = np.linalg.qr(rng.standard_normal((self.n_params, self.n_params)))
        self.A = (Q * np.asarray(lam, dtype=float)) @ Q.T
        self.A = 0.5 * (self.A + self.A.T)            # exactly symmetric floats
        self.c = np.asarray(c, dtype=float)

    def flatten(self, params):
        return self.check_x(params, "params")

    def unflatten(self, x):
        return self.check_x(x)

    def loss_kernel(self, X):
        Y = X - self.c
        return 0.5 * np.einsum("bi,ij,bj->b", Y, self.A, Y)

    def grad_kernel(self, X):
        return (X - self.c) @ self.A

    def hess_kernel(self, X):
        return np.broadcast_to(self.A, (X.shape[0],) + self.A.shape).copy()

    def enclose_derivatives(self, x, radius, *, prec=106):
        with flint_context(prec) as flint:
            A = flint.arb_mat(self.A.tolist())            # the Hessian, exactly, everywhere
            y = flint.arb_mat([[flint.arb(float(v)) - float(c)] for v, c in zip(x, self.c)])
            g = A * y
        return BallDerivatives(free=np.arange(self.n_params), grad=g, hess=A, radius=radius)


class DoubleWell(ls.Model):
    """L = x^4/4 - x^2/2 + y^2/2: minima (+-1, 0), a saddle of index 1 at (0, 0)."""

    n_params = input_dim = 2

    def flatten(self, params):
        return self.check_x(params, "params")

    def unflatten(self, x):
        return self.check_x(x)

    def loss_kernel(self, X):
        return X[:, 0] ** 4 / 4 - X[:, 0] ** 2 / 2 + X[:, 1] ** 2 / 2

    def grad_kernel(self, X):
        return np.stack([X[:, 0] ** 3 - X[:, 0], X[:, 1]], axis=1)

    def hess_kernel(self, X):
        H = np.zeros((X.shape[0], 2, 2))
        H[:, 0, 0], H[:, 1, 1] = 3 * X[:, 0] ** 2 - 1, 1.0
        return H

    def enclose_derivatives(self, x, radius, *, prec=106):
        with flint_context(prec) as flint:
            p = [flint.arb(float(v)) for v in x]
            box = flint.arb(float(x[0]), radius)
            g = flint.arb_mat([[p[0] ** 3 - p[0]], [p[1]]])
            H = flint.arb_mat([[3 * box ** 2 - 1, 0], [0, 1]])
        return BallDerivatives(free=np.arange(2), grad=g, hess=H, radius=radius)


def teacher_student(k, n=None):
    return ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k if n is None else n)


# Starts (rng = default_rng(k), 60 draws of sample_init) whose descent ends at a spurious
# minimum of k = n, found once by descend_and_polish; the test checks the loss again.
SPURIOUS_START = {7: 25, 8: 7, 9: 4, 10: 3}


def spurious_minimum(k):
    m = teacher_student(k)
    x0 = m.sample_init(60, rng=np.random.default_rng(k))[[SPURIOUS_START[k]]]
    r = ls.descend_and_polish(m, x0, lr=5.0 / k)
    assert r.success[0] and r.loss[0] > SPURIOUS_LOSS and r.lambda_min[0] > 0
    return m, r.x[0]


# ---- known answers ---------------------------------------------------------------------------
def test_quadratic_minimum_1e3_away_is_certified_with_a_radius_covering_the_distance():
    m = Quadratic([0.5, 1.0, 2.0, 4.0], c=[0.3, -1.0, 2.0, 0.0])
    u = np.random.default_rng(1).standard_normal(4)
    x = m.c + 1e-3 * u / np.linalg.norm(u)
    c = ls.certify(m, x)
    assert c.certified and c.kind == "strict-minimum" and c.index == 0 and c.unique
    dist = np.linalg.norm(x - m.c)
    assert c.radius >= c.distance_bound >= dist          # the ball holds the true point
    assert c.distance_bound <= 1.01 * dist               # and says so tightly (H constant)
    # lambda_min of the Hessian is 0.5; the bounds hold it and the float error is tiny
    assert c.lambda_min_lower <= 0.5 <= c.lambda_min_upper
    assert_allclose(c.lambda_min_lower, 0.5, rtol=1e-12)


def test_quadratic_saddle_is_certified_with_its_index():
    m = Quadratic([-2.0, -0.5, 1.0, 3.0, 5.0], c=np.arange(5.0))
    c = ls.certify(m, m.c + 1e-6)
    assert c.certified and c.kind == "strict-saddle" and c.index == 2 and c.index_exact
    assert c.distance_bound >= np.linalg.norm(1e-6 * np.ones(5))
    assert c.lambda_min_lower <= -2.0 <= c.lambda_min_upper < 0


def test_singular_quadratic_is_not_certified():
    m = Quadratic([0.0, 1.0, 2.0], c=[1.0, 2.0, 3.0])
    c = ls.certify(m, m.c)
    assert not c.certified and c.kind is None and "not proved nonsingular" in c.message


@pytest.mark.parametrize("x, kind, index", [([1.0, 0.0], "strict-minimum", 0),
                                            ([-1.0, 0.0], "strict-minimum", 0),
                                            ([0.0, 0.0], "strict-saddle", 1)])
def test_double_well_critical_points(x, kind, index):
    m = DoubleWell()
    x = np.asarray(x) + [3e-4, -2e-4]
    c = ls.certify(m, x)
    assert c.certified and c.kind == kind and c.index == index
    true = np.round(x)
    assert np.linalg.norm(x - true) <= c.distance_bound <= c.radius
    # a given radius smaller than the distance to the true point cannot be certified
    assert not ls.certify(m, x, radius=1e-4).certified


def test_global_minimum_w_equals_v():
    m = teacher_student(3)
    c = ls.certify(m, m.flatten(np.eye(3)))
    assert c.certified and c.kind == "strict-minimum" and c.index == 0 and c.unique
    # a rigorous lower bound of lambda_min over the ball: below the exact value at the centre
    # and, with the ball of radius ~1e-13, within 1e-8 of it
    assert c.lambda_min_lower <= LAMBDA_GLOBAL
    assert LAMBDA_GLOBAL - c.lambda_min_lower < 1e-8
    assert c.distance_bound < 1e-20          # grad F(I) = 0 up to the 106-bit enclosure


# ---- spurious minima and their splits (Safran et al. 2021) -----------------------------------
@pytest.mark.parametrize("k", [7, 8, 9, 10])
def test_spurious_minima_are_certified(k):
    m, x = spurious_minimum(k)
    c = ls.certify(m, x)
    assert c.certified and c.kind == "strict-minimum" and c.index == 0, c.message
    assert 0 < c.lambda_min_lower <= np.linalg.eigvalsh(m.hess(x))[0] + 1e-12
    assert c.radius < 1e-9                   # Newton-polished: the ball is tiny


def test_split_of_a_spurious_minimum_is_a_strict_saddle_never_a_minimum():
    m, x = spurious_minimum(7)
    W = m.unflatten(x)
    i = int(np.argmax(np.linalg.norm(W, axis=1)))
    split = np.vstack([W, 0.5 * W[i]])
    split[i] = 0.5 * W[i]
    big = teacher_student(7, 8)
    c = ls.certify(big, big.flatten(split))
    assert c.certified and c.kind == "strict-saddle" and c.index >= 1, c.message
    assert not c.unique and c.lambda_min_upper < 0
    # the float Hessian agrees: negative curvature, one null direction along the split
    lam = np.linalg.eigvalsh(big.hess(big.flatten(split)))
    assert lam[0] < 0 and c.lambda_min_lower <= lam[0] <= c.lambda_min_upper
    if c.index_exact:
        assert c.index == int(np.sum(lam < -1e-9))


def test_non_critical_and_zero_neuron_points_are_never_certified():
    m = teacher_student(4)
    rng = np.random.default_rng(0)
    for x in m.sample_init(5, rng=rng):
        c = ls.certify(m, x)
        assert not c.certified and c.kind is None and np.isnan(c.radius)
        assert "not look close to a critical point" in c.message
    W = np.eye(4)
    W[2] = 0.0
    c = ls.certify(m, m.flatten(W))
    assert not c.certified and "non-differentiable" in c.message
    # a ball that reaches a zero neuron: the global minimum with a radius larger than |w_i|
    c = ls.certify(m, m.flatten(np.eye(4)), radius=2.0)
    assert not c.certified and "non-differentiable" in c.message


# ---- soundness -------------------------------------------------------------------------------
def test_the_ball_contains_the_newton_polished_point():
    m, x = spurious_minimum(8)
    rng = np.random.default_rng(3)
    # (further out the box enclosure of the Hessian, which is sqrt(n) times wider than the
    # ball, becomes too loose for lambda_min ~ 0.02 and nothing is certified)
    for scale in (1e-10, 1e-8, 1e-6):
        y = x + scale * rng.standard_normal(x.size)
        c = ls.certify(m, y)
        assert c.certified, c.message
        # x is polished to |grad| ~ 1e-14: the true point is within ~1e-13 of it
        assert np.linalg.norm(y - x) <= c.distance_bound + 1e-12 <= c.radius + 1e-12


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 6), st.floats(1e-12, 1e-3))
def test_soundness_on_random_quadratics(seed, n, offset):
    """Whatever the spectrum (a sign mix, magnitudes 1e-2...1e2) and the offset, a certificate
    proves a ball that holds the true critical point, and its index is the true one."""
    rng = np.random.default_rng(seed)
    lam = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-2, 2, n)
    m = Quadratic(lam, c=rng.standard_normal(n), rng=seed)
    u = rng.standard_normal(n)
    x = m.c + offset * u / np.linalg.norm(u)
    c = ls.certify(m, x)
    assert c.certified, c.message            # a constant, nonsingular Hessian: always provable
    assert np.linalg.norm(x - m.c) <= c.distance_bound <= c.radius
    assert c.index == int(np.sum(lam < 0))
    # the Hessian is the float matrix m.A, whose lambda_min eigvalsh gives to ~1e-15 |A|
    lam_min, slack = np.linalg.eigvalsh(m.A)[0], 1e-12 * np.abs(lam).max()
    assert c.lambda_min_lower - slack <= lam_min <= c.lambda_min_upper + slack


def test_perturbing_beyond_the_radius_fails_or_recentres():
    m, x = spurious_minimum(8)
    c = ls.certify(m, x)
    u = np.random.default_rng(4).standard_normal(x.size)
    y = x + 100 * c.radius * u / np.linalg.norm(u)
    assert not ls.certify(m, y, radius=c.radius).certified
    moved = ls.certify(m, y)                             # a new, larger ball around y
    assert moved.certified and moved.radius >= np.linalg.norm(y - x) - c.distance_bound


def test_hessian_enclosure_holds_the_float_hessian_on_the_box():
    """Every sampled point of the box, including exactly parallel pairs (W = V, a split)."""
    m = teacher_student(3, 4)
    rng = np.random.default_rng(5)
    W = np.vstack([np.eye(3), 0.0 * np.eye(3)[0]])
    W[0], W[3] = 0.3 * W[0], [0.7, 0.0, 0.0]                 # split of v_1: parallel pairs
    for x in (m.flatten(W), m.sample_init(1, rng=rng)[0]):
        r = 1e-3
        D = m.enclose_derivatives(x, r)
        n = m.n_params
        for _ in range(20):
            y = x + rng.uniform(-r, r, n)
            Hy = m.hess(y)
            # the float Hessian is within ~1e-15 of the exact one; the box radius is >= 1e-4
            assert all(D.hess[i, j].contains(Hy[i, j]) for i in range(n) for j in range(n))
        mid = np.array([float(D.grad[i, 0].mid()) for i in range(n)])
        assert_allclose(mid, m.grad(x), atol=1e-14)      # float gradient: ~1e-16 error


# ---- two-layer networks and models that cannot be certified ----------------------------------
def test_two_layer_global_minimum_is_certified_in_the_slice_of_fixed_output_weights():
    V = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    m = ls.TwoLayerReLU(n_hidden=2, target=ls.ReluTarget(V, [1.0, -0.5]))
    x = m.flatten(([2.0, -1.0], 0.5 * V))                 # a rescaling of the teacher
    assert m.loss(x) < 1e-15
    c = ls.certify(m, x)
    assert c.certified and c.kind == "strict-minimum" and c.n_free == 6, c.message
    a_zero = m.flatten(([0.0, -1.0], 0.5 * V))
    c = ls.certify(m, a_zero)
    assert not c.certified and "a[[0]]" in c.message


def test_two_layer_scan_certifies_minima_and_a_saddle_of_the_model_s_index():
    """Teacher a* = (1, -1), V = I_2, two hidden neurons: this scan finds strict minima and an
    index-1 saddle (in the slice of fixed output weights: the full Hessian has one more zero
    per neuron, the rescalings, and the same negative count)."""
    m = ls.TwoLayerReLU(n_hidden=2, target=ls.ReluTarget(np.eye(2), [1.0, -1.0]))
    s = ls.scan(m, 20, rng=0, progress=False, certify=True)
    proved = [p for p in s.points if p.certificate is not None]
    assert {p.kind for p in proved} == {"strict-minimum", "strict-saddle"}
    for p in proved:
        c = p.certificate
        assert c.certified and c.kind == p.kind and c.index == p.classification.index
        assert c.n_free == 4 and "slice" in c.message


def test_autograd_model_cannot_be_certified():
    m = ls.AutogradModel(lambda x: (x ** 2).sum(), 3)
    with pytest.raises(TypeError, match="cannot be certified"):
        ls.certify(m, np.zeros(3))


def test_bad_arguments():
    m = teacher_student(2)
    with pytest.raises(ValueError, match="radius"):
        ls.certify(m, m.flatten(np.eye(2)), radius=-1.0)
    with pytest.raises(ValueError):
        ls.certify(m, np.ones(3))


def test_certificate_round_trips():
    m = teacher_student(2)
    c = ls.certify(m, m.flatten(np.eye(2)))
    back = ls.Certificate.from_dict(c.to_dict())
    assert back.certified == c.certified and back.radius == c.radius
    assert_allclose(back.x, c.x, rtol=0)
    assert "strict-minimum" in repr(c)


# ---- scans, the store, the command line and the report ---------------------------------------
def test_scan_certifies_its_points_and_the_store_keeps_the_certificates(tmp_path):
    m = teacher_student(7)
    path = tmp_path / "run.db"
    s = ls.scan(m, 30, rng=0, lr=5 / 7, store=path, progress=False, certify=True)
    kinds = {p.kind for p in s.points}
    assert {"strict-minimum", "strict-saddle"} <= kinds          # this scan finds both
    for p in s.points:
        if p.kind in ("strict-minimum", "strict-saddle"):
            c = p.certificate
            assert c.certified and c.kind == p.kind and c.index == p.classification.index
            assert c.lambda_min_lower <= p.lambda_min <= c.lambda_min_upper
        else:
            assert p.certificate is None
    again = ls.Scan.load(path)
    for a, b in zip(again.points, s.points):
        assert (a.certificate is None) == (b.certificate is None)
        if a.certificate is not None:
            assert a.certificate.radius == b.certificate.radius
            assert a.certificate.message == b.certificate.message
    out = tmp_path / "report"
    ls.write_report(again, out)
    assert "Computer-assisted proofs" in (out / "index.html").read_text(encoding="utf-8")


def test_certifying_a_finished_scan_adds_certificates_without_changing_it(tmp_path):
    m = teacher_student(7)
    path = tmp_path / "run.db"
    plain = ls.scan(m, 12, rng=1, lr=5 / 7, store=path, progress=False)
    assert all(p.certificate is None for p in plain.points)
    s = ls.scan(m, 12, rng=1, lr=5 / 7, store=path, progress=False, certify=True)
    assert [p.loss for p in s.points] == [p.loss for p in plain.points]
    assert all(p.certificate is not None and p.certificate.certified for p in s.points
               if p.kind == "strict-minimum")


def test_scan_of_a_model_that_cannot_be_certified_fails_before_running():
    m = ls.AutogradModel(lambda x: (x ** 2).sum(), 2)
    with pytest.raises(TypeError, match="cannot be certified"):
        ls.scan(m, 2, rng=0, lr=0.1, progress=False, certify=True)


def test_cli_scan_certify_and_classify_show_the_certificates(tmp_path, capsys):
    from landscape.cli import main

    db = str(tmp_path / "scan.db")
    assert main(["scan", "--teacher", "identity:7", "--students", "7", "--starts", "30",
                 "--store", db, "--certify", "-q"]) == 0
    text = capsys.readouterr().out
    assert "certified" in text and "saddle(1)" in text and "lambda_min>=" in text
    assert main(["classify", "--store", db, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(r["certificate"]["certified"] for r in rows
               if r["classification"]["kind"] in ("strict-minimum", "strict-saddle"))
    point = tmp_path / "I.npy"
    np.save(point, np.eye(7))
    assert main(["classify", str(point), "--teacher", "identity:7", "--students", "7",
                 "--certify"]) == 0
    assert "certified: a unique critical point" in capsys.readouterr().out
