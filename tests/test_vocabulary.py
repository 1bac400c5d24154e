"""One result vocabulary: every public result class names the same thing the same way.

The table (also in the README's "Architecture" section):

============  ==========================================================
``x``         the point(s), flat float64 parameters
``loss``      L at x
``grad_norm`` |grad L(x)|, Euclidean
``nit``       iterations (``nit_<phase>`` for a phase's share)
``nfev``      loss/gradient evaluations
``success``   bool (per start for batches)
``status``    a :class:`landscape.Status` (its int values for batches)
``message``   str (list of str for batches): how it ended
``lambda_min`` the smallest Hessian eigenvalue
============  ==========================================================
"""

import dataclasses
import importlib

import numpy as np
import pytest

import landscape as ls
from landscape._results import Result

VOCABULARY = {"x", "loss", "grad_norm", "nit", "nfev", "njev", "success", "status", "message",
              "lambda_min"}
# names that mean one of the above and must not be used for it
SYNONYMS = {"min_eigenvalue", "smallest_eigenvalue", "lam_min", "eig_min", "lmin", "min_eig",
            "niter", "n_iter", "n_iterations", "iterations", "iters", "n_steps",
            "gnorm", "grad_norms", "gradnorm", "gradient_norm", "fun", "fval", "f", "value",
            "converged", "ok", "msg", "reason", "point_x", "params"}
SYNONYMS |= {s + suffix for s in ("descent_iterations", "polish_iterations") for suffix in ("",)}

MODULES = ("landscape", "landscape.critical", "landscape.scan", "landscape.graph",
           "landscape.stats", "landscape.store", "landscape.spectrum", "landscape.convexity",
           "landscape.classify")


def public_result_classes():
    for name in MODULES:
        importlib.import_module(name)
    return sorted(Result._registry.values(), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", public_result_classes(), ids=lambda c: c.__name__)
def test_field_names_follow_the_vocabulary(cls):
    names = {f.name for f in dataclasses.fields(cls)}
    assert not names & SYNONYMS, (cls.__name__, sorted(names & SYNONYMS))
    if "status" in names:                 # how it ended comes with whether it succeeded
        assert "success" in names or isinstance(getattr(cls, "success", None), property), \
            cls.__name__
    for f in names:
        if f.startswith("nit_"):
            assert "nit" in names or isinstance(getattr(cls, "nit", None), property), \
                (cls.__name__, f)


def test_every_result_class_is_frozen_and_round_trips():
    for cls in public_result_classes():
        assert cls.__dataclass_params__.frozen, cls.__name__
        assert callable(getattr(cls, "to_dict", None)) and callable(getattr(cls, "from_dict", None))


@pytest.fixture(scope="module")
def results():
    m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    x0 = m.flatten(np.eye(3) + 0.05 * np.random.default_rng(0).standard_normal((3, 3)))
    X0 = m.sample_init(6, rng=1)
    return m, dict(
        critical=ls.find_critical_point(m, x0),
        descent=ls.descend(m, X0, lr=5 / 3, maxiter=50),
        polished=ls.descend_and_polish(m, X0, lr=5 / 3),
        scan=ls.scan(m, 6, rng=0, progress=False))


def test_values_have_the_vocabulary_types(results):
    m, r = results
    c = r["critical"]
    assert isinstance(c.status, ls.Status) and isinstance(c.success, bool)
    assert isinstance(c.message, str) and isinstance(c.nit, int) and c.x.shape == (m.n_params,)
    for batch in (r["descent"], r["polished"]):
        assert batch.x.shape == (6, m.n_params) and batch.success.dtype == bool
        assert set(np.unique(batch.status)) <= {int(s) for s in ls.Status}
        np.testing.assert_array_equal(batch.success, batch.status == int(ls.Status.CONVERGED))
    p = r["polished"]
    np.testing.assert_array_equal(p.nit, p.nit_descent + p.nit_polish)
    assert len(p.message) == 6 and all(isinstance(s, str) for s in p.message)
    out = r["scan"].outcomes
    assert out.success.dtype == bool and len(out.message) == 6
    for q in r["scan"].points:                     # the point's smallest eigenvalue, one name
        assert q.lambda_min == q.classification.lambda_min


def test_the_three_directional_tests_share_one_argument_order():
    """(model, x, directions, radii) for local_convexity, one_point_strong_convexity and
    pl_condition; rng is a keyword wherever randomness enters."""
    import inspect

    for fn in (ls.local_convexity, ls.one_point_strong_convexity, ls.pl_condition):
        params = list(inspect.signature(fn).parameters)
        assert params[2:4] == ["directions", "radii"], (fn.__name__, params)
        assert params[1] in ("x", "x_star"), (fn.__name__, params)
    for fn in (ls.scan, ls.classify, ls.random_directions):
        p = inspect.signature(fn).parameters["rng"]
        assert p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD), fn.__name__
