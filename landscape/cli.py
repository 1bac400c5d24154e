"""The ``landscape`` command.

Subcommands::

    landscape scan       many gradient-descent starts -> certified critical points, basin graph
    landscape classify   classify a point (.npy) or list the classified points of a store
    landscape convexity  direction-wise local convexity / OPSC / PL tests at a point
    landscape report     (re)build the HTML report of a store
    landscape study      run a reproducible study (``landscape study --list``)

Every option can also be set in a TOML file given with ``--config FILE``: its
keys are the Python keyword names (``n_starts``, ``rng``, ``lr``, ``store``,
``teacher``, ``n_students``, ...), at the top level or in a table named after
the subcommand (``[scan]``); flags on the command line override the file.

Exit codes: 0 success, 1 failure (a diverging step, a store another scan is
writing, an unfinished store to read, an internal error), 2 bad usage (the message
names the flag and says what to fix), 130 interrupted (a scan's store stays
resumable: run the same command again).
"""

import argparse
import json
import math
import numbers
import os
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np

__all__ = ["main"]


class UsageError(Exception):
    """Bad command-line usage: exit code 2 with the message."""


class Failure(Exception):
    """The command was right but could not be done: exit code 1 with the message."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, so main() returns the code."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message}")


# ---- models from flags ----------------------------------------------------------------------
def _matrix_spec(spec, what):
    """A matrix from ``identity:N``, ``random:N,D,SEED`` or a ``.npy`` file."""
    spec = str(spec)
    if spec.startswith("identity:"):
        n = _int_field(spec[len("identity:"):], what, spec)
        return np.eye(n)
    if spec.startswith("random:"):
        parts = spec[len("random:"):].split(",")
        if len(parts) != 3:
            raise UsageError(f"{what} {spec!r}: write random:N,D,SEED (e.g. random:8,10,0)")
        n, d, seed = (_int_field(p, what, spec) for p in parts)
        M = np.random.default_rng(seed).standard_normal((n, d))
        return M / np.linalg.norm(M, axis=1, keepdims=True)
    if spec.endswith(".npy"):
        return _load_npy(spec, what)
    raise UsageError(f"{what} {spec!r} is not understood; use identity:N, random:N,D,SEED "
                     "(unit-norm rows from numpy's default_rng(SEED)) or a .npy file")


def _vector_spec(spec, what):
    """A vector from ``e1:D`` (first unit vector), ``ones:D``, ``random:D,SEED`` or ``.npy``."""
    spec = str(spec)
    if spec.startswith("e1:"):
        v = np.zeros(_int_field(spec[3:], what, spec))
        v[0] = 1.0
        return v
    if spec.startswith("ones:"):
        return np.ones(_int_field(spec[5:], what, spec))
    if spec.startswith("random:"):
        parts = spec[len("random:"):].split(",")
        if len(parts) != 2:
            raise UsageError(f"{what} {spec!r}: write random:D,SEED (e.g. random:10,0)")
        d, seed = (_int_field(p, what, spec) for p in parts)
        v = np.random.default_rng(seed).standard_normal(d)
        return v / np.linalg.norm(v)
    if spec.endswith(".npy"):
        return _load_npy(spec, what).ravel()
    raise UsageError(f"{what} {spec!r} is not understood; use e1:D, ones:D, random:D,SEED "
                     "or a .npy file")


def _int_field(text, what, spec):
    try:
        v = int(text)
    except ValueError:
        raise UsageError(f"{what} {spec!r}: {text!r} is not an integer") from None
    if v <= 0 and what != "seed":
        if not (spec.startswith("random:") and text == spec.split(",")[-1]):
            raise UsageError(f"{what} {spec!r}: sizes must be positive integers")
    return v


def _load_npy(path, what):
    if not os.path.isfile(path):
        raise UsageError(f"{what}: no such file {path!r}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UsageError(f"{what}: {path!r} is not a readable .npy array ({exc}); save it with "
                         "numpy.save") from None


def _model_spec(args):
    """The model description from the flags (JSON data, stored with a scan)."""
    if args.model not in ("teacher-student", "two-layer"):
        raise UsageError(f"--model {args.model!r}: choose teacher-student or two-layer")
    if args.n_students is None:
        raise UsageError("--students is required: the number of student (hidden) neurons")
    spec = {"model": args.model, "n_students": args.n_students}
    if args.model == "teacher-student":
        if args.teacher is None:
            raise UsageError("--teacher is required for the teacher-student model (e.g. "
                             "--teacher identity:8)")
        if args.beta is not None:
            raise UsageError("--beta is a two-layer model option; add --model two-layer")
        spec["teacher"] = _spec_value(args.teacher)
    else:
        if (args.teacher is None) == (args.beta is None):
            raise UsageError("the two-layer model needs exactly one target: --beta SPEC (a "
                             "linear target) or --teacher SPEC (a ReLU teacher)")
        if args.beta is not None:
            spec["beta"] = _spec_value(args.beta)
        else:
            spec["teacher"] = _spec_value(args.teacher)
    return spec


def _spec_value(spec):
    """Specs are kept as text, except files, whose contents are kept (files change)."""
    spec = str(spec)
    if spec.endswith(".npy"):
        return {"array": _load_npy(spec, spec).tolist()}
    return spec


def _resolve(value, kind, what):
    if isinstance(value, dict):
        return np.asarray(value["array"], dtype=float)
    return _matrix_spec(value, what) if kind == "matrix" else _vector_spec(value, what)


def _build_model(spec):
    """The model of a spec; a teacher or target the model refuses is bad usage naming its flag."""
    import landscape as ls

    k = spec["n_students"]
    target = "--beta" if "beta" in spec else "--teacher"
    try:
        if spec["model"] == "teacher-student":
            V = _resolve(spec["teacher"], "matrix", "--teacher")
            return ls.ReluTeacherStudent(teacher=V, n_students=k)
        if "beta" in spec:
            return ls.TwoLayerReLU(n_hidden=k, target=ls.LinearTarget(
                _resolve(spec["beta"], "vector", "--beta")))
        V = _resolve(spec["teacher"], "matrix", "--teacher")
        return ls.TwoLayerReLU(n_hidden=k, target=ls.ReluTarget(V))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{target} {_brief_spec(spec.get('beta', spec.get('teacher')))}: "
                         f"{exc}") from None


def _brief_spec(value):
    return "(array from file)" if isinstance(value, dict) else str(value)


def _describe(spec):
    def text(v):
        return "array from file" if isinstance(v, dict) else v
    if spec["model"] == "teacher-student":
        return (f"ReluTeacherStudent(teacher={text(spec['teacher'])}, "
                f"n_students={spec['n_students']})")
    target = (f"LinearTarget({text(spec['beta'])})" if "beta" in spec
              else f"ReluTarget({text(spec['teacher'])})")
    return f"TwoLayerReLU(n_hidden={spec['n_students']}, target={target})"


def _has_model_flags(args):
    return any(getattr(args, k, None) is not None for k in ("teacher", "n_students", "beta"))


# ---- the parser ------------------------------------------------------------------------------
def _model_options(p):
    g = p.add_argument_group("model")
    g.add_argument("--model", default="teacher-student",
                   help="teacher-student (unit output weights, default) or two-layer "
                        "(output weights trained)")
    g.add_argument("--teacher", metavar="SPEC",
                   help="teacher neurons: identity:N, random:N,D,SEED or a .npy file (n x d)")
    g.add_argument("--students", dest="n_students", type=int, metavar="K",
                   help="number of student (hidden) neurons")
    g.add_argument("--beta", metavar="SPEC",
                   help="two-layer linear target: e1:D, ones:D, random:D,SEED or a .npy file")


def _common(p):
    p.add_argument("--config", metavar="FILE", help="TOML file of option values "
                   "(keys = Python keyword names; flags override it)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _parser():
    from . import __version__

    parser = _Parser(prog="landscape", description="Optimization landscapes of shallow ReLU "
                     "networks: critical points, their classification, convexity tests, basin "
                     "graphs and reports.", epilog="Run 'landscape COMMAND --help' for the "
                     "options of a command.")
    parser.add_argument("--version", action="version", version=f"landscape {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("scan", help="gradient descent from many starts to certified, "
                       "classified critical points and their basin graph",
                       description="Gradient descent from many starts, each end point polished "
                       "by Newton to |grad L| <= gtol, classified, deduplicated modulo symmetry; "
                       "the basin graph.  Results go to an SQLite store; an existing store is "
                       "resumed (the model flags may then be omitted).")
    _model_options(p)
    p.add_argument("--starts", dest="n_starts", type=int, metavar="N", help="number of starts "
                   "(default 100)")
    p.add_argument("--seed", dest="rng", type=int, metavar="S", help="random seed (default 0)")
    p.add_argument("--init", type=float, metavar="SCALE",
                   help="standard deviation of the initial entries (default 1/sqrt(d))")
    p.add_argument("--lr", type=float, help="step size (default 1/lambda_max at the starts)")
    p.add_argument("--gtol", type=float, help="certified gradient tolerance (default 1e-12)")
    p.add_argument("--maxiter", type=int, help="gradient steps per start (default 100000)")
    p.add_argument("--chunk-size", dest="chunk_size", type=int, metavar="N",
                   help="starts per task and per store transaction (default 128)")
    p.add_argument("--store", metavar="PATH", help="SQLite store (default scan.db); an "
                   "existing store is resumed")
    p.add_argument("--connect", action="store_true", default=None,
                   help="connect every distinct minimum to the lowest one through index-1 "
                   "saddles (string method, saddle refinement, descents off both sides): "
                   "transition states and barriers in the graph")
    p.add_argument("--report", metavar="DIR", help="write the HTML report to DIR")
    p.add_argument("--self-contained", dest="self_contained", action="store_true",
                   default=None, help="embed the figures in index.html")
    p.add_argument("--certify", action="store_true", default=None,
                   help="prove every distinct strict minimum and strict saddle in ball "
                   "arithmetic (ls.certify): radius and lambda_min lower bound per point")
    ex = p.add_mutually_exclusive_group()
    ex.add_argument("--workers", type=int, metavar="N", help="run on N local processes")
    ex.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask cluster "
                    "(needs landscape[distributed])")
    _common(p)

    p = sub.add_parser("classify", help="classify a point (.npy) or list a store's points",
                       description="Classify a point from its gradient and Hessian spectrum "
                       "(beyond it where the spectrum is degenerate), or list the classified "
                       "critical points of a scan's store.")
    p.add_argument("point", nargs="?", metavar="POINT.npy",
                   help="the point: flat (n_params,) or, for teacher-student models, (k, d)")
    p.add_argument("--store", metavar="PATH", help="list the critical points of this store")
    _model_options(p)
    p.add_argument("--gtol", type=float, help="critical tolerance (default 1e-8)")
    p.add_argument("--certify", action="store_true", default=None,
                   help="also prove the point's kind in ball arithmetic (ls.certify)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _common(p)

    p = sub.add_parser("convexity", help="direction-wise local convexity, OPSC and PL tests",
                       description="Test local convexity (u^T H u), one-point strong convexity "
                       "and the PL condition at y = x + r u over random unit directions u.")
    p.add_argument("point", nargs="?", metavar="POINT.npy")
    p.add_argument("--store", metavar="PATH", help="take the point from this store "
                   "(see --point-id) and save the results into it")
    p.add_argument("--point-id", dest="point_id", type=int, metavar="ID",
                   help="critical point of the store (default 0, the lowest loss)")
    _model_options(p)
    p.add_argument("--tests", nargs="+", metavar="TEST",
                   help="local-convexity, opsc, pl (default all three)")
    p.add_argument("--directions", dest="n_directions", type=int, metavar="N",
                   help="number of random directions (default 64)")
    p.add_argument("--kind", help="direction kind: uniform (default), neuron, split-rotation")
    p.add_argument("--pair", nargs=2, type=int, metavar=("I", "J"),
                   help="split-rotation: the two aligned neurons to rotate apart (default: the "
                   "most nearly aligned pair)")
    p.add_argument("--radii", nargs=2, type=float, metavar=("RMIN", "RMAX"),
                   help="radius range (default 1e-4 1e-1)")
    p.add_argument("--n-radii", dest="n_radii", type=int, metavar="N",
                   help="log-spaced radii (default 7)")
    p.add_argument("--seed", dest="rng", type=int, help="seed of the directions (default 0)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-o", "--output", metavar="FILE", help="also save the results as JSON")
    _common(p)

    p = sub.add_parser("report", help="(re)build the HTML report of a store",
                       description="Write index.html, figures, report.json and graph.graphml "
                       "of a finished scan.")
    p.add_argument("store", metavar="STORE")
    p.add_argument("-o", "--output", dest="out_dir", metavar="DIR",
                   help="output folder (default report)")
    p.add_argument("--self-contained", dest="self_contained", action="store_true",
                   default=None, help="embed the figures in index.html")
    p.add_argument("--title")
    _common(p)

    p = sub.add_parser("study", help="run a reproducible study (--list to see them)",
                       description="Run a study from studies/: its report and results.json.")
    p.add_argument("name", nargs="?")
    p.add_argument("--list", action="store_true", help="list the studies")
    p.add_argument("--quick", action="store_true", default=None,
                   help="the reduced mode (minutes at most)")
    p.add_argument("-o", "--output", dest="out_dir", metavar="DIR",
                   help="output folder (default study-NAME)")
    _common(p)
    return parser, sub


# ---- configuration files --------------------------------------------------------------------
def _load_config(path, command, subparser):
    try:
        import tomllib
    except ModuleNotFoundError:          # Python < 3.11
        import tomli as tomllib
    if not os.path.isfile(path):
        raise UsageError(f"--config: no such file {path!r}")
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config {path}: not valid TOML ({exc})") from None
    values = {k: v for k, v in data.items() if not isinstance(v, dict)}
    section = data.get(command, {})
    if not isinstance(section, dict):
        raise UsageError(f"--config {path}: [{command}] must be a table")
    values.update(section)
    actions = {a.dest: a for a in subparser._actions
               if a.dest not in ("help", "config") and a.dest != argparse.SUPPRESS}
    unknown = sorted(set(values) - set(actions))
    if unknown:
        raise UsageError(f"--config {path}: unknown key(s) {', '.join(unknown)} for "
                         f"'landscape {command}'; known keys: {', '.join(sorted(actions))}")
    out = {}
    for key, value in values.items():
        a = actions[key]
        if a.type is not None and not isinstance(value, (list, bool)):
            try:
                value = a.type(value)
            except (TypeError, ValueError):
                raise UsageError(f"--config {path}: {key} = {value!r} is not a valid "
                                 f"{a.type.__name__}") from None
        if a.nargs in ("+", 2) and not isinstance(value, list):
            raise UsageError(f"--config {path}: {key} must be a list")
        if a.nargs == 0 and not isinstance(value, bool):           # a switch
            raise UsageError(f"--config {path}: {key} = {value!r} must be true or false")
        if a.type is None and a.nargs is None and not isinstance(value, str):
            raise UsageError(f"--config {path}: {key} = {value!r} must be a string")
        out[key] = value
    return out


def _parse(parser, sub, argv):
    args = parser.parse_args(argv)
    args.config_values = {}
    if args.command is None:
        return args
    config = getattr(args, "config", None)
    if config:
        subparser = sub.choices[args.command]
        defaults = _load_config(config, args.command, subparser)
        subparser.set_defaults(**defaults)
        args = parser.parse_args(argv)
        args.config_values = defaults
    _check_options(args, argv)
    return args


# Every numeric option, checked on every path of every command (flags and --config values
# alike) before anything runs: dest -> (flag, rule, what it is).
_OPTIONS = {
    "n_students": ("--students", "count", "the number of student (hidden) neurons"),
    "n_starts": ("--starts", "count", "the number of starts"),
    "rng": ("--seed", "seed", "the random seed"),
    "init": ("--init", "positive", "the standard deviation of the initial entries"),
    "lr": ("--lr", "positive", "the gradient-descent step size"),
    "gtol": ("--gtol", "positive", "the gradient tolerance"),
    "maxiter": ("--maxiter", "count", "the gradient steps per start"),
    "chunk_size": ("--chunk-size", "count", "the starts per task"),
    "workers": ("--workers", "count", "the number of processes"),
    "point_id": ("--point-id", "seed", "the id of a critical point of the store"),
    "n_directions": ("--directions", "count", "the number of random directions"),
    "n_radii": ("--n-radii", "count", "the number of radii"),
}
_RULES = {"count": "a whole number >= 1", "seed": "a whole number >= 0",
          "positive": "a finite number > 0"}


def _check_options(args, argv):
    for dest, (flag, rule, what) in _OPTIONS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if rule == "positive":
            ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
                  and math.isfinite(value) and value > 0)
        else:
            ok = (isinstance(value, numbers.Integral) and not isinstance(value, bool)
                  and value >= (1 if rule == "count" else 0))
        if not ok:
            given = any(a == flag or a.startswith(flag + "=") for a in argv)
            where = "" if given or dest not in args.config_values else \
                f" (key {dest} of --config {args.config})"
            shown = f"{value:g}" if isinstance(value, float) else repr(value)
            raise UsageError(f"{flag} {shown}{where}: {what} must be {_RULES[rule]}")


# ---- commands -------------------------------------------------------------------------------
def _default(value, default):
    return default if value is None else value


_COLT21 = "5/k, the COLT'21 protocol"


def _cmd_scan(args, out, err):
    import landscape as ls
    from .errors import DivergenceError, LandscapeWarning
    from .scan import resume_plan, resume_scan

    store = _default(args.store, "scan.db")
    plan = resume_plan(store, **{dest: getattr(args, dest) for dest in _RESUME_FLAGS}) \
        if os.path.exists(store) else None
    if plan is not None:          # a store another scan is writing: say so before anything else
        from ._lock import WriteLock

        WriteLock.acquire(store).release()
    stored_spec = None if plan is None else plan.annotations.get("model", {}).get("spec")
    if plan is not None and stored_spec is None and not _has_model_flags(args):
        raise UsageError(f"store {store} does not record which model it scanned (it was not "
                         "written by 'landscape scan'); pass the model flags (--teacher ..., "
                         "--students ..., ...) to resume it")
    spec = _model_spec(args) if plan is None or _has_model_flags(args) else stored_spec
    if stored_spec is not None and spec != stored_spec:
        raise UsageError(f"store {store} holds a scan of {_describe(stored_spec)}, not of "
                         f"{_describe(spec)}; omit the model flags to resume it, or pass "
                         "another --store")
    model = _build_model(spec)
    if plan is None:
        n_starts, kwargs, source = _new_scan_options(args, spec)
    else:
        n_starts = _resume_starts(args, store, plan)
        kwargs, source = {"lr": plan.options["lr"]}, f"stored with the scan in {store}"
    common = dict(progress=not args.quiet, annotations=_annotations(spec, args),
                  certify=bool(args.certify))
    if args.chunk_size is not None:
        common["chunk_size"] = args.chunk_size
    if not args.quiet:
        verb = "resuming" if plan is not None else "scanning"
        step = f"lr = {kwargs['lr']:.4g}" if kwargs.get("lr") is not None else "lr"
        print(f"{verb} {_describe(spec)}: {n_starts} starts -> {store}; {step} ({source})",
              file=err)
    executor, close = _executor(args)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LandscapeWarning)
            # the CLI says this itself, naming --lr (below)
            warnings.filterwarnings("ignore", r"\d+ of \d+ starts diverged", LandscapeWarning)
            if plan is None:
                s = ls.scan(model, n_starts, executor=executor, store=store, **kwargs, **common)
            else:
                s = resume_scan(model, store, n_starts=n_starts, executor=executor, **common)
    except DivergenceError as exc:
        raise Failure(_divergence_text(exc, spec, store)) from None
    finally:
        close()
    for w in caught:
        print(f"landscape: warning: {w.message}", file=err)
    _print_scan(s, out, source)
    n_div = int(np.count_nonzero(s.outcomes.status == int(ls.Status.DIVERGED)))
    if n_div:
        print(f"landscape: warning: {n_div} of {s.n_starts} starts diverged with --lr "
              f"{s.settings['lr']:.4g}; they are counted as unresolved ends, not points; a "
              "smaller --lr avoids them", file=err)
    if args.report:
        path = ls.write_report(s, args.report, self_contained=bool(args.self_contained))
        print(f"report: {path}", file=out)
    return 0


def _new_scan_options(args, spec):
    """(n_starts, scan keyword arguments, where lr comes from) of a new scan."""
    n_starts = _default(args.n_starts, 100)
    kwargs = {"rng": _default(args.rng, 0)}
    for key in ("init", "gtol", "maxiter"):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    if getattr(args, "connect", None):
        kwargs["connect"] = True
    if args.lr is not None:
        kwargs["lr"] = args.lr
        source = ("--lr" if "lr" not in args.config_values or args.lr != args.config_values["lr"]
                  else f"lr in --config {args.config}")
    elif spec["model"] == "teacher-student":
        kwargs["lr"] = 5.0 / spec["n_students"]        # Safran, Yehudai & Shamir (COLT 2021)
        source = _COLT21
    else:
        kwargs["lr"] = None                            # ls.scan's default: 1 / lambda_max
        source = f"1/lambda_max at the first {min(n_starts, 8)} starts"
    return n_starts, kwargs, source


# flags a resumed scan must agree with its store on: scan keyword -> flag
_RESUME_FLAGS = {"lr": "--lr", "gtol": "--gtol", "maxiter": "--maxiter", "init": "--init",
                 "rng": "--seed"}


def _resume_starts(args, store, plan):
    """The number of starts of the resumed scan of `store`; flags that contradict it refused.

    What the store holds and which flags disagree with it is the library's
    (:func:`landscape.scan.resume_plan`, given the flags); this only words it.
    """
    if plan.explicit_init:
        raise UsageError(f"store {store} was scanned from explicit initial points, which are "
                         "not stored; resume it from Python with ls.scan(model, n_starts, "
                         "init=X0, store=...)")
    for dest, flag in _RESUME_FLAGS.items():
        if dest not in plan.conflicts:
            continue
        given, was = getattr(args, dest), plan.conflicts[dest]
        if dest == "rng":
            raise UsageError(f"--seed {given}: store {store} was scanned with another seed; "
                             "omit --seed to resume it, or pass another --store")
        raise UsageError(f"{flag} {given:g}: store {store} was scanned with {flag} {was:g}; "
                         f"omit {flag} to resume it, or pass another --store")
    n_starts = _default(args.n_starts, plan.n_starts)
    if n_starts < plan.min_starts:
        raise UsageError(f"--starts {n_starts}: store {store} holds starts "
                         f"0..{plan.min_starts - 1}; pass --starts {plan.min_starts} or more, or "
                         f"omit --starts to resume the stored scan of {plan.n_starts} starts")
    return n_starts


def _annotations(spec, args):
    """What a scan's store keeps besides its settings: the model, and the config file."""
    notes = {"model": {"spec": spec, "description": _describe(spec)}}
    if args.config:
        notes["config"] = {"file": str(args.config), **args.config_values}
    return notes


def _divergence_text(exc, spec, store):
    text = (f"gradient descent diverged from {exc.n_diverged} of the {exc.n_run} starts run "
            f"(of {exc.n_starts}) with --lr {exc.lr:.4g}: the step is too large for the "
            "curvature of the loss (a scan tolerates at most 1% of its starts diverging).  ")
    if exc.lr_stable is not None:
        text += (f"The largest stable step at the first starts is about 2/lambda_max = "
                 f"{exc.lr_stable:.4g}: pass a smaller --lr, e.g. --lr {exc.lr_stable / 2:.3g} "
                 "(1/lambda_max)")
    else:
        text += "Pass a smaller --lr"
    if spec["model"] == "teacher-student" and not math.isclose(exc.lr, 5 / spec["n_students"]):
        text += f", or omit --lr for {5 / spec['n_students']:.4g} ({_COLT21})"
    text += "."
    if exc.store_removed:
        text += f"  Store {store} held no start and was removed."
    else:
        text += (f"  Store {store} keeps the starts finished with --lr {exc.lr:.4g}: use "
                 "another --store for another --lr.")
    return text


def _executor(args):
    if args.workers is not None:
        from ._workers import process_pool

        pool = process_pool(args.workers)          # workers that die with this process
        return pool, lambda: pool.shutdown(wait=True, cancel_futures=True)
    if args.scheduler is not None:
        try:
            import distributed
        except ImportError:
            raise UsageError("--scheduler needs Dask: pip install 'landscape[distributed]'") \
                from None
        client = distributed.Client(args.scheduler)
        return client, client.close
    return None, lambda: None


def _print_scan(s, out, lr_source):
    print(f"lr = {s.settings['lr']:.4g} ({lr_source})", file=out)
    print(f"{s.n_starts} starts, {len(s.points)} distinct critical points "
          f"({len(s.minima)} minima, {len(s.saddles)} saddles), spurious fraction "
          f"{s.spurious_fraction:.4g} [{s.spurious_interval[0]:.3g}, "
          f"{s.spurious_interval[1]:.3g}], {s.wall_seconds:.1f} s", file=out)
    where = ", ".join(f"{n} {kind}" for kind, n in s.unresolved_ends.items())
    lo, hi = s.unresolved_interval
    print(f"unresolved ends (at no certified minimum) {s.unresolved_fraction:.4g} "
          f"[{_zero(lo):.3g}, {hi:.3g}]" + (f": {where}" if where else ""), file=out)
    rows = [[p.id, p.kind, f"{p.loss:.10g}", _opt(p.classification.index),
             _opt(p.classification.nullity), _num(p.classification.lambda_min),
             p.dimension, p.n_members, p.basin_count, f"{p.basin_fraction:.3f}"]
            for p in s.points]
    columns = ["id", "kind", "loss", "index", "nullity", "lambda_min", "dimension", "members",
               "basin", "fraction"]
    if any(p.certificate is not None for p in s.points):
        columns += _CERT_COLUMNS
        rows = [r + _certificate_row(p.certificate) for r, p in zip(rows, s.points)]
    _table(columns, rows, out)
    if s.settings.get("connect"):
        _print_barriers(s, out)
    if s.loops:
        _print_loops(s, out)


_CERT_COLUMNS = ["certified", "radius", "lambda_min>="]


def _certificate_row(c):
    """Certificate columns: certified kind (index), radius, rigorous lambda_min lower bound."""
    if c is None:
        return ["-", "-", "-"]
    if not c.certified:
        return ["no", "-", "-"]
    what = "min" if c.kind == "strict-minimum" else f"saddle({c.index})"
    return [what, f"{c.radius:.2g}", _num(c.lambda_min_lower)]


def _print_barriers(s, out):
    """Each minimum's lowest barrier to a lower one (a scan with --connect)."""
    import networkx as nx

    from .graph import escape_barrier, minima

    G = s.graph
    rows = []
    for m in minima(G)[1:]:
        try:
            b = escape_barrier(G, m)
        except nx.NetworkXNoPath:
            rows.append([m, "-", "-", "-", "not joined"])
            continue
        rows.append([m, b.target, b.saddle, f"{b.loss:.10g}", f"{b.height:.6g}"])
    if rows:
        print("barriers (minimum -> lower minimum over the lowest saddle):", file=out)
        _table(["minimum", "to", "saddle", "saddle loss", "barrier"], rows, out)


def _print_loops(s, out):
    """Self-loops: each minimum's lowest saddle joining it to a copy of itself, and the
    group element relating the two copies."""
    rows = [[q, sid, f"{s.points[sid].loss:.10g}", f"{s.points[sid].loss - s.points[q].loss:.6g}",
             g.label] for q, (sid, g) in sorted(s.loops.items())]
    print("self-loops (minimum joined to a symmetric copy of itself):", file=out)
    _table(["minimum", "saddle", "saddle loss", "barrier", "group element"], rows, out)


def _zero(v):
    return 0.0 if abs(v) < 1e-12 else v          # Wilson's 0 comes out as ~1e-19


def _opt(v):
    return "-" if v is None else str(v)


def _num(v):
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4g}"


def _table(columns, rows, out):
    cells = [[str(c) for c in columns]] + [[str(v) for v in r] for r in rows]
    widths = [max(len(r[j]) for r in cells) for j in range(len(columns))]
    for i, r in enumerate(cells):
        print("  ".join(v.rjust(w) if j else v.ljust(w)
                        for j, (v, w) in enumerate(zip(r, widths))), file=out)
        if i == 0:
            print("  ".join("-" * w for w in widths), file=out)


def _point_and_model(args):
    """(model, x, spec) from POINT.npy + model flags, or from --store (+ --point-id)."""
    if args.store is not None:
        s = _finished_scan(args.store, "--store")
        spec = s.annotations.get("model", {}).get("spec")
        if _has_model_flags(args):
            spec = _model_spec(args)
        if spec is None:
            raise UsageError(f"store {args.store} does not say which model it scanned; pass "
                             "the model flags (--teacher, --students, ...)")
        pid = _default(getattr(args, "point_id", None), 0)
        if not 0 <= pid < len(s.points):
            raise UsageError(f"--point-id {pid}: the store has points 0..{len(s.points) - 1}")
        return _build_model(spec), s.points[pid].x, spec
    if args.point is None:
        raise UsageError("give a point (POINT.npy) or --store PATH")
    spec = _model_spec(args)
    model = _build_model(spec)
    x = _load_npy(args.point, "POINT")
    if x.size != model.n_params:
        raise UsageError(f"POINT {args.point}: has {x.size} entries (shape {x.shape}); "
                         f"{_describe(spec)} has {model.n_params} parameters")
    x = np.asarray(x).ravel()
    try:
        model.loss(x)                  # finite, real, and where the loss does not overflow
    except (ValueError, TypeError) as exc:
        raise UsageError(f"POINT {args.point}: {exc}") from None
    return model, x.astype(float), spec


def _finished_scan(path, what):
    """The finished scan of the store at `path`; an unfinished one says how to finish it."""
    import shlex

    from .scan import Scan
    from .store import Store

    with Store.open(_existing(path, what)) as st:
        settings = st.settings
        n = settings.get("n_starts") if isinstance(settings, dict) else None
        final, done = st.is_complete, st.n_finished()
        spec = st.annotations().get("model", {}).get("spec")
    if not final:
        how = f"landscape scan --store {shlex.quote(os.fspath(path))}"
        if spec is None:
            how += " --teacher ... --students ... (its model flags)"
        raise Failure(f"store {path} holds an unfinished scan ({done} of {n} starts done): "
                      f"finish it with '{how}' (it resumes where the scan stopped), then run "
                      "this command again")
    return Scan.load(path)


def _classification_row(c):
    return [c.kind, f"{c.loss:.10g}", _num(c.grad_norm), _opt(c.index), _opt(c.nullity),
            _opt(c.symmetry_nullity), _num(c.lambda_min), _num(c.lambda_max),
            "yes" if c.witness is not None else "-"]


_CLASS_COLUMNS = ["kind", "loss", "|grad|", "index", "nullity", "sym.null", "lambda_min",
                  "lambda_max", "witness"]


def _cmd_classify(args, out, err):
    import landscape as ls

    if args.store is not None and args.point is None and not _has_model_flags(args):
        if args.gtol is not None:
            raise UsageError(f"--gtol {args.gtol:g}: the points of a store were certified and "
                             "classified by its scan (with the scan's --gtol); --gtol applies "
                             "to classifying a POINT.npy")
        s = _finished_scan(args.store, "--store")
        if args.certify:
            raise UsageError("--certify: certify the points of a store with 'landscape scan "
                             "--store PATH --certify' (the certificates are stored with it)")
        certified = any(p.certificate is not None for p in s.points)
        if args.json:
            print(dumps([{"id": p.id, "basin_count": p.basin_count,
                          "classification": p.classification.to_dict(),
                          "certificate": None if p.certificate is None
                          else p.certificate.to_dict()} for p in s.points]), file=out)
        else:
            _table(["id"] + _CLASS_COLUMNS + ["basin"] + (_CERT_COLUMNS if certified else []),
                   [[p.id] + _classification_row(p.classification) + [p.basin_count]
                    + (_certificate_row(p.certificate) if certified else [])
                    for p in s.points], out)
        return 0
    if args.store is not None and args.point is not None:
        raise UsageError("give either POINT.npy or --store, not both")
    model, x, spec = _point_and_model(args)
    kwargs = {} if args.gtol is None else {"gtol": args.gtol}
    c = ls.classify(model, x, **kwargs)
    cert = ls.certify(model, x) if args.certify else None
    if args.json:
        data = c.to_dict()
        print(dumps(data if cert is None else {"classification": data,
                                               "certificate": cert.to_dict()}), file=out)
    else:
        print(_describe(spec), file=out)
        _table(_CLASS_COLUMNS, [_classification_row(c)], out)
        if c.message:
            print(c.message, file=out)
        if cert is not None:
            print(("certified: " if cert.certified else "not certified: ") + cert.message,
                  file=out)
    return 0


def dumps(data):
    """JSON text of results (arrays as lists, NaN as null)."""
    from .report import json_ready

    return json.dumps(json_ready(data), indent=2, allow_nan=False)


def _existing(path, what):
    if not os.path.isfile(path):
        raise UsageError(f"{what}: no such file {path!r}")
    return path


_TESTS = ("local-convexity", "opsc", "pl")
_DIRECTION_KINDS = ("uniform", "neuron", "split-rotation")


def _cmd_convexity(args, out, err):
    import landscape as ls
    from .store import Store

    tests = args.tests or list(_TESTS)
    bad = [t for t in tests if t not in _TESTS]
    if bad:
        raise UsageError(f"--tests {' '.join(bad)}: choose from {', '.join(_TESTS)}")
    if args.store is not None and args.point is not None:
        raise UsageError("give either POINT.npy or --store, not both")
    model, x, spec = _point_and_model(args)
    lo, hi = args.radii or (1e-4, 1e-1)
    if not (0 < lo < hi and math.isfinite(hi)):
        raise UsageError(f"--radii {lo} {hi}: need 0 < RMIN < RMAX, both finite")
    radii = np.logspace(np.log10(lo), np.log10(hi), _default(args.n_radii, 7))
    kind = _default(args.kind, "uniform")
    if kind not in _DIRECTION_KINDS:
        raise UsageError(f"--kind {kind}: choose from {', '.join(_DIRECTION_KINDS)}")
    if args.pair is not None and kind != "split-rotation":
        raise UsageError(f"--pair applies to --kind split-rotation only, not --kind {kind}")
    split = {"x": x, "pair": None if args.pair is None else tuple(args.pair)}
    try:
        U = ls.random_directions(model, _default(args.n_directions, 64), _default(args.rng, 0),
                                 kind=kind, **(split if kind == "split-rotation" else {}))
    except ValueError as exc:          # no aligned pair of neurons to split, or a bad --pair
        if kind != "split-rotation":
            raise
        if args.pair is not None:
            why = str(exc).split("; pass pair=")[0]
            raise UsageError(f"--pair {args.pair[0]} {args.pair[1]}: {why}; give two aligned "
                             "neurons of the point (0-based)") from None
        why = str(exc).split("; pass pair=")[0].replace("pair=None: ", "")
        raise UsageError(f"--kind split-rotation: {why}; this point has no split neuron to "
                         "rotate apart: choose a point with two aligned neurons (e.g. a global "
                         "minimum of one student more than teachers), --pair I J, or another "
                         "--kind") from None
    results = []
    for t in tests:
        if t == "local-convexity":
            results.append(ls.local_convexity(model, x, U, radii))
        elif t == "opsc":
            results.append(ls.one_point_strong_convexity(model, x, U, radii))
        else:
            results.append(ls.pl_condition(model, x, U, radii,
                                           optimal_loss=float(model.loss(x))))
    if args.json:
        print(dumps([r.to_dict() for r in results]), file=out)
    else:
        print(f"{_describe(spec)}; {len(U)} {kind} directions, radii {lo:g} .. {hi:g}", file=out)
        rows = []
        for r in results:
            fit = r.exponents[np.isfinite(r.exponents)]
            rows.append([r.kind, f"{r.fraction:.3f}", f"[{r.fraction_interval[0]:.3f}, "
                         f"{r.fraction_interval[1]:.3f}]", _num(float(np.min(r.worst_constants))),
                         _num(float(np.median(fit))) if fit.size else "-"])
        _table(["test", "pass fraction", "95% interval", "worst constant", "median exponent"],
               rows, out)
    if args.output:
        Path(args.output).write_text(dumps([r.to_dict() for r in results]))
    if args.store is not None:
        with Store.open(args.store, write=True) as st:
            st.set_annotation("convexity", [r.to_dict() for r in results])
        if not args.json:
            print(f"saved into {args.store}; 'landscape report {args.store}' shows them",
                  file=out)
    return 0


def _cmd_report(args, out, err):
    import landscape as ls

    path = ls.write_report(_finished_scan(args.store, "STORE"), _default(args.out_dir, "report"),
                           self_contained=bool(args.self_contained), title=args.title)
    print(f"report: {path}", file=out)
    return 0


def _cmd_study(args, out, err):
    from .studies import list_studies, run_study

    if args.list:
        studies = list_studies()
        if not studies:
            print("no studies found (run from a checkout of the repository or set "
                  "LANDSCAPE_STUDIES)", file=out)
        width = max((len(n) for n in studies), default=0)
        for name, title in studies.items():
            print(f"{name.ljust(width)}  {title}", file=out)
        return 0
    if not args.name:
        raise UsageError("landscape study: give a study NAME or --list")
    try:
        results = run_study(args.name, args.out_dir, quick=bool(args.quick),
                            progress=not args.quiet)
    except ValueError as exc:
        if "unknown study" in str(exc):
            raise UsageError(str(exc)) from None
        raise
    where = args.out_dir or (f"study-{args.name}-quick" if args.quick else f"study-{args.name}")
    print(f"study {args.name}: {results.get('wall_seconds', 0):.1f} s; report: "
          f"{Path(where) / 'index.html'}", file=out)
    return 0


_COMMANDS = {"scan": _cmd_scan, "classify": _cmd_classify, "convexity": _cmd_convexity,
             "report": _cmd_report, "study": _cmd_study}


def main(argv=None):
    """Entry point of the ``landscape`` console script; returns the exit code.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 on failure (including internal errors), 2 on bad usage (every
        usage error is found by the command itself and names its flag), 130 when
        interrupted.
    """
    from .errors import LandscapeError, StoreError, StoreInUseError

    argv = sys.argv[1:] if argv is None else list(argv)
    out, err = sys.stdout, sys.stderr
    parser, sub = _parser()
    if not argv:
        parser.print_help(out)
        return 0
    try:
        args = _parse(parser, sub, argv)
        if args.command is None:
            parser.print_help(out)
            return 0
        return _COMMANDS[args.command](args, out, err)
    except UsageError as exc:
        print(str(exc) if str(exc).startswith("landscape") else f"landscape: error: {exc}",
              file=err)
        return 2
    except (Failure, StoreInUseError) as exc:   # the same command works once the cause is gone
        print(f"landscape: failed: {exc}", file=err)
        return 1
    except StoreError as exc:          # not a store, damaged, of other settings: use another
        print(f"landscape: error: {exc}", file=err)
        return 2
    except BrokenPipeError:            # output piped into a command that stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("landscape: interrupted; finished work is kept in the store: run the same "
              "command again to resume", file=err)
        return 130
    except (LandscapeError, OSError, RuntimeError) as exc:
        print(f"landscape: failed: {exc}", file=err)
        return 1
    except Exception as exc:           # noqa: BLE001 -- usage errors were all checked above
        traceback.print_exc(file=err)
        print(f"landscape: failed (an internal error; please report it with the command "
              f"that caused it): {type(exc).__name__}: {exc}", file=err)
        return 1


if __name__ == "__main__":
    sys.exit(main())
