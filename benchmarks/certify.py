"""Certifying a spurious minimum of k = n = 20 (400 parameters) in ball arithmetic, on one core.

Issue 20's target: ``ls.certify`` proves a k = 20 spurious minimum of the teacher-student loss
(V = I, Safran et al. 2021) in under 60 s on one core.  The minimum is found by
``descend_and_polish`` from Xavier starts (the first start that ends at a strict minimum with
F > 1e-9); the certificate is timed with BLAS limited to one thread (the arb matrix products of
python-flint are single-threaded).  Also timed: the split of its neuron 0 in halves (k + 1
students), proved a strict saddle through its parent.

Run:  python benchmarks/certify.py            (k = 20: 400 parameters)
      python benchmarks/certify.py --quick    (k = 10: 100 parameters)
Writes benchmarks/results/certify.json (or certify-quick.json).
"""

import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import landscape as ls  # noqa: E402
from record import begin, write_results  # noqa: E402  (benchmarks/record.py: the shared writer)

SPURIOUS_LOSS = 1e-9
TARGET_SECONDS = 60.0


def spurious_minimum(k, n_starts=40, seed=0):
    m = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    r = ls.descend_and_polish(m, m.sample_init(n_starts, rng=seed), lr=5.0 / k)
    found = np.flatnonzero(r.success & (r.loss > SPURIOUS_LOSS) & (r.lambda_min > 0))
    if not found.size:
        raise RuntimeError(f"no spurious minimum among {n_starts} starts at k = {k}")
    i = int(found[0])
    return m, r.x[i], dict(start=i, loss=float(r.loss[i]), grad_norm=float(r.grad_norm[i]),
                           lambda_min_float=float(r.lambda_min[i]))


def main(argv=None):
    started = begin()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--k", type=int)
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    k = args.k or (10 if args.quick else 20)
    m, x, found = spurious_minimum(k)
    with threadpool_limits(limits=1):
        t = time.perf_counter()
        c = ls.certify(m, x)
        seconds = time.perf_counter() - t
    W = m.unflatten(x)
    split = np.vstack([W, 0.5 * W[0]])
    split[0] = 0.5 * W[0]
    big = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k + 1)
    with threadpool_limits(limits=1):
        t = time.perf_counter()
        cs = ls.certify(big, big.flatten(split))
        split_seconds = time.perf_counter() - t
    rows = dict(k=k, n_params=m.n_params, **found, certify_seconds=seconds,
                split_seconds=split_seconds, split_certified=cs.certified, split_kind=cs.kind,
                split_index=cs.index, split_index_exact=cs.index_exact,
                certified=c.certified, kind=c.kind, radius=c.radius,
                distance_bound=c.distance_bound, lambda_min_lower=c.lambda_min_lower,
                lambda_min_upper=c.lambda_min_upper, grad_norm_upper=c.grad_norm_upper,
                contraction=c.contraction, hessian_spread=c.hessian_spread,
                target_seconds=TARGET_SECONDS)
    ok = (c.certified and c.kind == "strict-minimum" and seconds < TARGET_SECONDS
          and cs.certified and cs.kind == "strict-saddle")
    print(f"k = {k} ({m.n_params} parameters), F = {found['loss']:.6g}: certify {seconds:.1f} s "
          f"on one core -> {c.kind}, radius {c.radius:.3g}, lambda_min in "
          f"[{c.lambda_min_lower:.6g}, {c.lambda_min_upper:.6g}]; target < 60 s: "
          f"{'PASS' if ok else 'MISSED'}")
    print(f"its split (k + 1 = {k + 1}): certify {split_seconds:.1f} s -> {cs.kind}, index "
          f"{cs.index}{'' if cs.index_exact else ' (lower bound)'}")
    here = os.path.dirname(os.path.abspath(__file__))
    out = args.output or os.path.join(here, "results",
                                      "certify-quick.json" if args.quick else "certify.json")
    write_results(out, "certify", "python benchmarks/certify.py"
                  + (" --quick" if args.quick else ""), {"result": rows, "pass": bool(ok)},
                  started=started)
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
