"""The shape of the code that issue 16 asks for, checked on the source itself.

Each idea lives in one place: the library's modules use each other's public names only,
solvers use the model contract (no underscore method of a model), and a study is
configuration, analysis of library results and a report (no model of its own, no private
name, no benchmark code, and all four together within the line budget).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "landscape"
STUDIES = ROOT / "studies"
BENCHMARKS = ROOT / "benchmarks"

# issue 16: studies/*/study.py together (4,473 before it, -40%: 2,700, met at 2,697); then
# stages later issues asked the studies for: the proofs of every minimum and split (issue 20,
# safran2021), the barrier stage (issue 19, safran2021) and the connection of the stuck fit
# (issue 19, tinaz2026) -- 2,713 lines with them
STUDY_LINES = 2715
# issue 18 adds the arjevani_field study (within its own budget, on library functions only)
STUDY_LINES += 300
# Underscore attributes a module may touch on objects that are not its own: the standard
# library's documented escape hatches.
ALLOWED_PRIVATE_ATTRIBUTES = {"os._exit", "subparser._actions"}


def python_files(*roots):
    return sorted(p for r in roots for p in r.rglob("*.py") if "_studies" not in p.parts)


def tree(path):
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def is_private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@pytest.mark.parametrize("path", python_files(LIBRARY, STUDIES, BENCHMARKS),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_private_name(path):
    """``from m import _x`` (or ``from . import _m``) reaches into another module's
    internals; its public names are the interface."""
    bad = [f"line {n.lineno}: from {'.' * n.level}{n.module or ''} import {a.name}"
           for n in ast.walk(tree(path)) if isinstance(n, ast.ImportFrom)
           for a in n.names if is_private(a.name)]
    assert not bad, bad


@pytest.mark.parametrize("path", python_files(LIBRARY, STUDIES),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_attribute_of_another_object(path):
    """``obj._name`` on anything but ``self``/``cls``, for a ``_name`` this module does not
    define itself: e.g. a solver calling a model's underscore method instead of the model
    contract.  (A module may use the internals of its own classes.)"""
    t = tree(path)
    own = {n.name for n in ast.walk(t) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    own |= {target.attr for n in ast.walk(t) if isinstance(n, (ast.Assign, ast.AnnAssign))
            for target in (n.targets if isinstance(n, ast.Assign) else [n.target])
            if isinstance(target, ast.Attribute)}
    own |= {target.id for n in ast.walk(t) if isinstance(n, ast.Assign)
            for target in n.targets if isinstance(target, ast.Name)}
    bad = []
    for node in ast.walk(t):
        if isinstance(node, ast.Attribute) and is_private(node.attr) and node.attr not in own:
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else None
            if name in ("self", "cls"):
                continue
            text = f"{name}.{node.attr}" if name else f"<expr>.{node.attr}"
            if text not in ALLOWED_PRIVATE_ATTRIBUTES:
                bad.append(f"line {node.lineno}: {text}")
    assert not bad, bad


def study_files():
    return sorted(STUDIES.glob("*/study.py"))


def test_studies_are_within_the_line_budget():
    lines = {p.parent.name: len(p.read_text(encoding="utf-8").splitlines())
             for p in study_files()}
    assert len(lines) == 5, lines
    assert sum(lines.values()) <= STUDY_LINES, lines


@pytest.mark.parametrize("path", study_files(), ids=lambda p: p.parent.name)
def test_a_study_defines_no_model_and_imports_no_benchmark(path):
    t = tree(path)
    for node in ast.walk(t):
        if isinstance(node, ast.ClassDef):
            bases = {ast.unparse(b) for b in node.bases}
            assert not bases & {"Model", "ls.Model", "landscape.Model",
                                "landscape.models.base.Model"}, (node.name, bases)
    text = path.read_text(encoding="utf-8")
    assert "benchmarks" not in {n.module.split(".")[0] for n in ast.walk(t)
                                if isinstance(n, ast.ImportFrom) and n.module}
    assert "benchmarks/" not in text and '"benchmarks"' not in text


def test_symmetry_dispatches_on_no_model_class():
    """Symmetry is data each model declares (``Model.symmetry()``), not an ``isinstance``
    on the concrete classes."""
    t = tree(LIBRARY / "models" / "symmetry.py")
    classes = {"ReluTeacherStudent", "TwoLayerReLU", "EmpiricalReLU", "AutogradModel"}
    bad = [n.lineno for n in ast.walk(t) if isinstance(n, ast.Call)
           and getattr(n.func, "id", None) == "isinstance" and len(n.args) == 2
           and classes & {x.id for x in ast.walk(n.args[1]) if isinstance(x, ast.Name)}]
    assert not bad, bad
