"""Closed-form derivatives versus autograd, and batched versus looped gradients.

What it measures (DESIGN.md, "Performance"), side by side in one run, as ratios
measured on the same machine in the same process:

1. At k = n = d = 50 (``ReluTeacherStudent(teacher=V, n_students=50)``, V a
   random 50 x 50 teacher or I_50, x a generic Xavier point): the closed-form
   ``model.grad`` / ``model.hess`` / ``model.hvp`` against autograd applied to the
   same closed form written the lean way a researcher writes it in
   ``autograd.numpy`` (``lean_autograd_loss``: a few lines, not the package's own
   wrapper).  Targets: gradient >= 10x, Hessian >= 100x faster; the HVP ratio is
   for information.
2. A 10,000-parameter Hessian (k = n = d = 100) with ``model.hess``: wall time
   after one warm-up call.  Target: < 2 s.
3. ``model.grad_batch(X)`` over 1,000 starts against a Python loop of
   ``model.grad`` over the same rows, at k = n = d = 8, 20 and 50, for information
   (the former 20x target at k = 20 is superseded by the end-to-end targets of
   ``benchmarks/protocol.py``, issue 17); a last row repeats k = 20
   near the global minimum, where every student is nearly parallel to a
   teacher and its angle takes the exact near-parallel path.

Before anything is timed the two sides of every comparison are checked to agree
numerically (the maximum relative error is printed).  Every function gets one
warm-up call (whose result is the one checked); the time reported is the best
per-call time over N repeats, N chosen so that each measurement takes about
``--min-time`` seconds (0.5 s; calls far below a millisecond are looped inside
each repeat).  The autograd Hessian at k = 50 takes many seconds per call and
is timed 1-2 times.  No absolute timing is asserted: a missed target is printed
as MISSED and the exit code stays 0.  The exit code is 1 only when a numerical
check fails (closed form and reference disagree), since timings of wrong
results mean nothing.

Batched kernels allocate large temporaries, so their timings depend on the
state of the C allocator (with glibc, temporaries above the dynamic mmap
threshold are fresh pages on every call).  The batched-gradient section
therefore runs first, in the state of a fresh process, and the minor page
faults per call of every measurement are recorded in the JSON.

Run from the repository root::

    python benchmarks/derivatives.py                 # full run (about a minute on 2 cores)
    python benchmarks/derivatives.py --quick         # smaller sizes, smoke run (seconds)
    python benchmarks/derivatives.py --output out.json --teacher identity

Results are printed as a table and written as JSON by the shared writer
(benchmarks/record.py: CPU model and vector extensions, BLAS kernel and threads,
load average at start and end, versions, date, command) to
``benchmarks/results/derivatives.json``, or to
``benchmarks/results/derivatives-quick.json`` with ``--quick`` so that a smoke
run does not overwrite the full results, or to ``--output PATH``.
"""

import argparse
import math
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

try:
    import resource
except ImportError:      # absent on Windows: page-fault counts are then omitted
    resource = None

_REPO = Path(__file__).resolve().parents[1]
# Benchmark the working tree this script lives in, whether or not it is installed.
sys.path.insert(0, str(_REPO))

import landscape  # noqa: E402
from landscape import ReluTeacherStudent  # noqa: E402
from record import begin, write_results  # noqa: E402  (benchmarks/record.py: the shared writer)

_RESULTS = _REPO / "benchmarks" / "results"

FULL = dict(deriv_k=50, big_k=100, batch_sizes=(8, 20, 50), batch_headline=20,
            n_starts=1000, min_time=0.5)
QUICK = dict(deriv_k=12, big_k=30, batch_sizes=(8, 20), batch_headline=20,
             n_starts=200, min_time=0.1)

TARGETS = dict(grad=10.0, hess=100.0, big_hess_seconds=2.0, grad_call=1 / 1.2)


# ---- the references a researcher writes ---------------------------------------------

def lean_autograd_loss(V):
    """The population loss F(x), x = W.ravel(), in a few lines of ``autograd.numpy``.

    F = 1/2 sum_ij g(w_i, w_j) - sum_ij g(w_i, v_j) + 1/2 sum_ij g(v_i, v_j) with
    g(u, v) = |u||v| (sin t + (pi - t) cos t) / 2 pi, t the angle; the diagonal g(w, w) =
    |w|^2 / 2 is written apart (arccos has no derivative at 1).
    """
    import autograd.numpy as anp

    k, d = V.shape
    off = 1.0 - np.eye(k)
    nV = np.linalg.norm(V, axis=1)

    def g(nu, nv, c):
        t = anp.arccos(anp.clip(c, -1.0, 1.0))
        return nu[:, None] * nv[None, :] * (anp.sin(t) + (np.pi - t) * c) / (2 * np.pi)

    cVV = np.clip(V @ V.T / np.outer(nV, nV), -1, 1)
    const = 0.5 * np.sum(off * g(nV, nV, off * cVV)) + 0.25 * np.sum(nV ** 2)

    def loss(x):
        W = anp.reshape(x, (-1, d))
        nW = anp.sqrt(anp.sum(W * W, axis=1))
        cWW = off * anp.dot(W, W.T) / (nW[:, None] * nW[None, :])
        cWV = anp.dot(W, V.T) / (nW[:, None] * nV[None, :])
        return (0.5 * anp.sum(off * g(nW, nW, cWW)) + 0.25 * anp.sum(nW ** 2)
                - anp.sum(g(nW, nV, cWV)) + const)

    return loss


class LeanAutograd:
    """grad / hess / hvp of :func:`lean_autograd_loss` by autograd."""

    def __init__(self, V):
        import autograd

        f = lean_autograd_loss(V)
        self.grad = autograd.grad(f)
        self.hess = autograd.hessian(f)
        self.hvp = lambda x, v: autograd.grad(lambda y: np.dot(self.grad(y), v))(x)


def ten_line_grad(W, V, nV):
    """grad F at one W (k, d): the ten lines of numpy a researcher writes."""
    nW = np.linalg.norm(W, axis=1)
    cWW = np.clip(W @ W.T / np.outer(nW, nW), -1, 1)
    cWV = np.clip(W @ V.T / np.outer(nW, nV), -1, 1)
    tWW, tWV = np.arccos(cWW), np.arccos(cWV)
    a = (np.sin(tWW) @ nW - np.sin(tWV) @ nV) / nW
    return (a[:, None] * W + (np.pi - tWW) @ W - (np.pi - tWV) @ V) / (2 * np.pi)

# Closed form and reference must agree to this relative error (max-norm).
CHECK_RTOL = 1e-8


# ---- timing -------------------------------------------------------------------------

def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def warm_up(fn):
    """One untimed-for-the-record call; returns (result, seconds)."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def best_of(fn, estimate, *, min_time, min_repeats=3, max_repeats=200, sample_time=0.02):
    """Best per-call time of fn over adaptive repeats (fn already warmed up).

    Calls are looped ``number`` times inside a repeat so that a repeat lasts
    about ``sample_time`` s; the number of repeats is chosen so that the whole
    measurement lasts about ``min_time`` s, clipped to [min_repeats, max_repeats].
    """
    if estimate < 0.05:       # warm-up times of fast calls are noisy: re-estimate
        t0 = time.perf_counter()
        fn()
        estimate = time.perf_counter() - t0
    estimate = max(estimate, 1e-7)
    number = max(1, math.ceil(sample_time / estimate)) if estimate < sample_time else 1
    repeats = math.ceil(min_time / (number * estimate))
    repeats = int(min(max(repeats, min_repeats), max_repeats))
    samples = []
    faults0 = _minor_faults()
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    faults = _minor_faults()
    return dict(best=min(samples), median=statistics.median(samples), repeats=repeats,
                number=number, samples=samples,
                minor_page_faults_per_call=(None if faults is None
                                            else (faults - faults0) / (repeats * number)))


def _minor_faults():
    """Minor page faults of this process so far (fresh memory pages touched), or None."""
    return None if resource is None else resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def rel_error(ours, ref):
    """max |ours - ref| / max |ref|."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    scale = float(np.max(np.abs(ref)))
    return float(np.max(np.abs(ours - ref))) / (scale if scale > 0 else 1.0)


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


# ---- the benchmark ------------------------------------------------------------------

class Bench:
    def __init__(self, cfg, rng_seed, teacher_kind):
        self.cfg = cfg
        self.seed = rng_seed
        self.teacher_kind = teacher_kind
        self.checks = []
        self.rows = []
        self.section = 0        # number of the section being run (checks are sorted by it)

    def model(self, k):
        if self.teacher_kind == "identity":
            V = np.eye(k)
        else:
            V = np.random.default_rng([self.seed, k]).standard_normal((k, k)) / np.sqrt(k)
        return ReluTeacherStudent(teacher=V, n_students=k)

    def check(self, name, err, tol=CHECK_RTOL):
        ok = bool(np.isfinite(err) and err <= tol)
        self.checks.append(dict(order=self.section, name=name, max_rel_error=err,
                                tolerance=tol, ok=ok))
        _log(f"  check {name}: max rel error {err:.2e} ({'ok' if ok else 'FAILED'})")
        return ok

    def row(self, order, section, name, ours, ref=None, *, target=None, kind="ratio"):
        ratio = ref["best"] / ours["best"] if ref is not None else None
        if kind == "ratio" and target is not None:
            passed = ratio >= target
            target_text = f">= {target:.3g}x"
        elif kind == "seconds":
            passed = ours["best"] < target
            target_text = f"< {target:g} s"
        else:
            passed = None
            target_text = "info"
        self.rows.append(dict(order=order, section=section, name=name, ours=ours,
                              reference=ref, ratio=ratio, target=target, target_kind=kind,
                              target_text=target_text, passed=passed))

    # 1. closed form vs autograd of the same closed form
    def derivatives_vs_autograd(self):
        self.section = 1
        k = self.cfg["deriv_k"]
        m = self.model(k)
        ref = LeanAutograd(m.teacher)
        rng = np.random.default_rng([self.seed, 1])
        x = m.sample_init(1, rng=rng)[0]
        v = rng.standard_normal(m.n_params)
        section = f"closed form vs autograd, k=n=d={k} ({m.n_params} params)"
        _log(f"[1] {section}")
        self.check(f"loss k={k}: lean autograd closed form vs model.loss",
                   rel_error(lean_autograd_loss(m.teacher)(x), m.loss(x)))
        mt = self.cfg["min_time"]
        for what, ours_fn, ref_fn, target in [
                ("grad", lambda: m.grad(x), lambda: ref.grad(x), TARGETS["grad"]),
                ("hess", lambda: m.hess(x), lambda: ref.hess(x), TARGETS["hess"]),
                ("hvp", lambda: m.hvp(x, v), lambda: ref.hvp(x, v), None)]:
            _log(f"  {what}: warm-up (autograd {what} may take a while) ...")
            r_ours, t_ours = warm_up(ours_fn)
            r_ref, t_ref = warm_up(ref_fn)
            ok = self.check(f"{what} k={k}: closed form vs autograd", rel_error(r_ours, r_ref))
            if what == "hvp":
                self.check(f"hvp k={k}: closed-form hvp vs closed-form hess @ v",
                           rel_error(r_ours, m.hess(x) @ v))
            if not ok:
                continue
            slow = t_ref > 2.0
            o = best_of(ours_fn, t_ours, min_time=mt)
            r = best_of(ref_fn, t_ref, min_time=mt, min_repeats=1 if slow else 3,
                        max_repeats=2 if slow else 200)
            _log(f"  {what}: ours {fmt_time(o['best'])}, autograd {fmt_time(r['best'])}")
            self.row(1, section, f"{what}  k=n=d={k}", o, r, target=target,
                     kind="ratio" if target else "info")

    # 2. a 10,000-parameter Hessian
    def big_hessian(self):
        self.section = 2
        k = self.cfg["big_k"]
        m = self.model(k)
        rng = np.random.default_rng([self.seed, 2])
        x = m.sample_init(1, rng=rng)[0]
        section = f"dense Hessian, k=n=d={k} ({m.n_params} params)"
        _log(f"[2] {section}")
        H, t_warm = warm_up(lambda: m.hess(x))
        sym = float(np.max(np.abs(H - H.T))) / float(np.max(np.abs(H)))
        ok = self.check(f"hess k={k}: symmetry |H - H^T| / |H|", sym, tol=1e-12)
        for j in range(2):
            u = rng.standard_normal(m.n_params)
            ok &= self.check(f"hess k={k}: H @ u vs closed-form hvp (u #{j})",
                             rel_error(H @ u, m.hvp(x, u)))
        del H
        if not ok:
            return
        o = best_of(lambda: m.hess(x), t_warm, min_time=self.cfg["min_time"],
                    min_repeats=3, max_repeats=10)
        _log(f"  hess: {fmt_time(o['best'])} (warm-up {fmt_time(t_warm)})")
        o["warm_up"] = t_warm
        self.row(2, section, f"hess  k=n=d={k} ({m.n_params} params)", o,
                 target=TARGETS["big_hess_seconds"], kind="seconds")

    # 3. batched gradients vs a Python loop
    def batched_gradients(self):
        self.section = 3
        B = self.cfg["n_starts"]
        section = f"grad_batch vs loop of grad, {B} starts"
        _log(f"[3] {section}")
        for k in self.cfg["batch_sizes"]:
            m = self.model(k)
            X = m.sample_init(B, rng=np.random.default_rng([self.seed, 3, k]))
            r = self.batch_vs_loop(m, X, f"k={k}")
            if r is None:
                continue
            loop, o = r
            self.row(3, section, f"grad_batch  k=n=d={k} ({B} x {m.n_params})", o, loop,
                     kind="info")
        # Near convergence every student is nearly parallel to a teacher: the
        # near-parallel pairs take the slower exact-angle path.
        k = self.cfg["batch_headline"]
        m = self.model(k)
        rng = np.random.default_rng([self.seed, 4, k])
        V = m.teacher
        X = np.stack([m.flatten(V[rng.permutation(k)]) for _ in range(B)])
        X += 1e-4 * rng.standard_normal(X.shape)
        r = self.batch_vs_loop(m, X, f"k={k} near the global minimum")
        if r is not None:
            loop, o = r
            self.row(3, section, f"grad_batch  k=n=d={k}, near the global minimum", o, loop,
                     kind="info")

    # 4. per-call overhead of one gradient
    def grad_call(self):
        self.section = 4
        k = self.cfg["batch_headline"]
        m = self.model(k)
        x = m.sample_init(1, rng=np.random.default_rng([self.seed, 5, k]))[0]
        V = m.teacher
        nV = np.linalg.norm(V, axis=1)
        W = x.reshape(k, -1)
        section = f"one gradient call, k=n=d={k} ({m.n_params} params)"
        _log(f"[4] {section}")
        r_ours, t_ours = warm_up(lambda: m.grad(x))
        r_ref, t_ref = warm_up(lambda: ten_line_grad(W, V, nV))
        if not self.check(f"grad k={k}: model.grad vs the ten-line numpy gradient",
                          rel_error(r_ours, r_ref.ravel())):
            return
        mt = self.cfg["min_time"]
        o = best_of(lambda: m.grad(x), t_ours, min_time=mt)
        r = best_of(lambda: ten_line_grad(W, V, nV), t_ref, min_time=mt)
        _log(f"  grad: ours {fmt_time(o['best'])}, ten-line numpy {fmt_time(r['best'])}")
        self.row(4, section, f"grad  k=n=d={k}, one call", o, r, target=TARGETS["grad_call"])

    def batch_vs_loop(self, m, X, label):
        """Check grad_batch against the loop, then time both: (loop, batch)."""
        out = np.empty_like(X)

        def loop():
            for b, x in enumerate(X):
                out[b] = m.grad(x)
            return out

        r_batch, t_batch = warm_up(lambda: m.grad_batch(X))
        r_loop, t_loop = warm_up(loop)
        name = f"grad_batch vs loop {label}"
        try:
            np.testing.assert_allclose(r_batch, r_loop, rtol=1e-12,
                                       atol=1e-14 * float(np.max(np.abs(r_loop))))
            ok = True
        except AssertionError as exc:
            _log(str(exc))
            ok = False
        err = rel_error(r_batch, r_loop)
        self.checks.append(dict(order=self.section, name=name + " (assert_allclose rtol=1e-12)",
                                max_rel_error=err, tolerance=1e-12, ok=ok))
        _log(f"  check {name}: max rel error {err:.2e} ({'ok' if ok else 'FAILED'})")
        if not ok:
            return None
        mt = self.cfg["min_time"]
        o = best_of(lambda: m.grad_batch(X), t_batch, min_time=mt)
        r = best_of(loop, t_loop, min_time=mt)
        _log(f"  {label}: batch {fmt_time(o['best'])}, loop {fmt_time(r['best'])}")
        return r, o


# ---- reporting ----------------------------------------------------------------------

def machine_extras():
    """What this benchmark depends on besides the shared machine record: autograd (the
    reference) and the landscape tree measured."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        autograd_version = version("autograd")
    except PackageNotFoundError:
        autograd_version = None
    return dict(autograd=autograd_version,
                landscape_path=str(Path(landscape.__file__).resolve().parent))


def print_table(bench, quick):
    headers = ["name", "ours", "reference", "ratio", "target", "status"]
    lines = []
    for r in bench.rows:
        ref = r["reference"]
        status = ("PASS" if r["passed"] else "MISSED") if r["passed"] is not None else "info"
        lines.append([r["name"], fmt_time(r["ours"]["best"]),
                      fmt_time(ref["best"]) if ref else "-",
                      f"{r['ratio']:.1f}x" if r["ratio"] is not None else "-",
                      r["target_text"], status])
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
              for i, h in enumerate(headers)]

    def fmt(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    print()
    print("Numerical checks (before timing)")
    for c in bench.checks:
        print(f"  {'ok    ' if c['ok'] else 'FAILED'}  {c['max_rel_error']:.2e}  "
              f"(tol {c['tolerance']:.0e})  {c['name']}")
    print()
    print("Timings: best per call; 'reference' is autograd on the lean closed form "
          "(section 1), a Python loop of model.grad (section 3) or the ten-line numpy "
          "gradient (section 4)")
    if quick:
        print("  --quick: reduced sizes; the targets are meant for the full run")
    section = None
    print(fmt(headers))
    print(fmt(["-" * w for w in widths]))
    for r, line in zip(bench.rows, lines):
        if r["section"] != section:
            section = r["section"]
            print(f"# {section}")
        print(fmt(line))
    missed = [r["name"] for r in bench.rows if r["passed"] is False]
    failed = [c["name"] for c in bench.checks if not c["ok"]]
    print()
    if failed:
        print(f"CHECK FAILED ({len(failed)}): " + "; ".join(failed))
    if missed:
        print(f"MISSED {len(missed)} target(s): " + "; ".join(missed))
    elif not failed:
        print("All targets met.")
    return missed, failed


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Closed-form derivatives vs autograd, batched vs looped gradients.")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes and shorter measurements (smoke run)")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON output path (default benchmarks/results/derivatives.json, "
                             "or derivatives-quick.json with --quick)")
    parser.add_argument("--teacher", choices=("random", "identity"), default="random",
                        help="teacher V: random Gaussian n x d (default) or the identity")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds per measurement (default 0.5, 0.1 with --quick)")
    args = parser.parse_args(argv)

    cfg = dict(QUICK if args.quick else FULL)
    if args.min_time is not None:
        cfg["min_time"] = args.min_time
    output = args.output or _RESULTS / ("derivatives-quick.json" if args.quick
                                        else "derivatives.json")
    command = shlex.join(["python"] + [sys.argv[0]] + (sys.argv[1:] if argv is None
                                                       else list(argv)))
    started = begin()

    bench = Bench(cfg, args.seed, args.teacher)
    # Execution order 3, 1, 2 (printed as 1, 2, 3): the batched gradients are sensitive to
    # the allocator's state (see the module docstring), so they run first, as in a fresh
    # process, before the large Hessians free tens of megabytes and change glibc's
    # mmap threshold.
    bench.batched_gradients()
    bench.derivatives_vs_autograd()
    bench.big_hessian()
    bench.grad_call()
    bench.rows.sort(key=lambda r: r["order"])
    bench.checks.sort(key=lambda c: c["order"])
    missed, failed = print_table(bench, args.quick)

    payload = dict(
        description=__doc__.strip().splitlines()[0],
        quick=args.quick,
        config=dict(cfg, teacher=args.teacher, seed=args.seed, batch_sizes=list(
            cfg["batch_sizes"])),
        targets=TARGETS,
        measured=machine_extras(),
        checks=bench.checks,
        results=[dict(section=r["section"], name=r["name"],
                      ours_seconds=r["ours"]["best"],
                      reference_seconds=r["reference"]["best"] if r["reference"] else None,
                      ratio=r["ratio"], target=r["target_text"],
                      status=("info" if r["passed"] is None
                              else "PASS" if r["passed"] else "MISSED"),
                      ours=r["ours"], reference=r["reference"])
                 for r in bench.rows],
        missed=missed,
        failed_checks=failed,
    )
    write_results(output, "derivatives", command, payload, started=started)
    print(f"Wrote {output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
