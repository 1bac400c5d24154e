"""Scans at large k: the per-start cost of ``ls.scan`` at k = 30, 50, 100 and the projected cost
of the COLT'21 experiment at every k = 6...100.

For each k: ``ls.scan`` of the teacher V = I_k with k students (k^2 parameters; beyond 2,000 the
scan uses no dense factorisation per start but one Cholesky or LDL^T per classified point:
Newton-MR polish on Hessian-vector products, positive-definiteness checks by Lanczos), from
Xavier starts with step 5/k, every end certified to |grad F| <= 1e-12 and classified.  It
reports seconds per start, the split of the time (descent, Newton polish, lambda_min,
classification, saddles passed, deduplication and graph, store: from a profile of the run,
the phases of ``benchmarks/protocol.py --profile``), the distinct points and how many ends are certified; then the projection
of 500 starts at every k = 6...100 from a power law fitted (``ls.power_law_fit``) to the
measured per-start costs.

Run:  OPENBLAS_NUM_THREADS=1 python benchmarks/large.py                   (k = 30, 50: 50 starts;
                                                                         k = 100: 10 starts)
      OPENBLAS_NUM_THREADS=1 python benchmarks/large.py --ks 30 --starts 5      (a smoke run)
Writes benchmarks/results/large.json (or --output).
"""

import argparse
import cProfile
import os
import pstats
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import landscape as ls  # noqa: E402
from record import begin, write_results  # noqa: E402

from protocol import PHASES  # noqa: E402  (the scan phases, as the protocol benchmark profiles them)


def phase_seconds(stats):
    """Cumulative seconds of each scan phase (PHASES), read off a cProfile run."""
    return {name: sum(ct for (f, _, fn), (_, _, _, ct, _) in stats.stats.items()
                      if (os.path.basename(f), fn) in where)
            for name, where in PHASES.items()}


def run(k, n_starts, seed):
    model = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    ls.descend(model, model.sample_init(1, rng=0), lr=5 / k, maxiter=2)      # compile
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    s = ls.scan(model, n_starts, rng=seed, lr=5 / k, progress=False)
    prof.disable()
    seconds = time.perf_counter() - t
    phases = phase_seconds(pstats.Stats(prof))
    out = s.outcomes
    certified = int(np.sum(out.grad_norm <= 1e-12))
    return {"k": k, "n_params": model.n_params, "n_starts": n_starts, "seconds": seconds,
            "seconds_per_start": seconds / n_starts,
            "phases_seconds_profiled": phases, "certified": certified,
            "distinct": len(s.points),
            "kinds": sorted({p.kind for p in s.points}),
            "spurious_fraction": float(s.spurious_fraction)}


def main(argv=None):
    started = begin()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="*", default=[30, 50, 100])
    parser.add_argument("--starts", type=int, nargs="*",
                        help="starts per k (one value for all, or one per k)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=os.path.join(HERE, "results", "large.json"))
    args = parser.parse_args(argv)
    starts = args.starts or [10 if k >= 100 else 50 for k in args.ks]
    if len(starts) == 1:
        starts = starts * len(args.ks)
    rows = []
    print(f"{'k':>4} {'params':>7} {'starts':>6} {'s/start':>9} {'certified':>9} {'distinct':>8}")
    for k, n in zip(args.ks, starts):
        r = run(k, n, args.seed)
        rows.append(r)
        print(f"{k:>4} {r['n_params']:>7} {n:>6} {r['seconds_per_start']:>9.2f} "
              f"{r['certified']:>9} {r['distinct']:>8}", flush=True)
        print("     seconds per start by phase: " + ", ".join(
            f"{name.strip()} {sec / n:.2f}" for name, sec in
            r["phases_seconds_profiled"].items()), flush=True)
    payload = {"rows": rows}
    if len(rows) >= 2:
        fit = ls.power_law_fit([r["k"] for r in rows], [r["seconds_per_start"] for r in rows])
        ks = np.arange(6, 101)
        projected = float(500 * np.sum(fit.prefactor * ks.astype(float) ** fit.exponent))
        payload["projection"] = {"fit": fit.to_dict(), "ks": "6..100", "starts_per_k": 500,
                                 "seconds": projected, "hours": projected / 3600}
        print(f"per-start cost ~ k^{fit.exponent:.2f}; 500 starts at every k = 6..100: "
              f"{projected / 3600:.1f} hours on one core (projected)")
    write_results(args.output, "large", "OPENBLAS_NUM_THREADS=1 python benchmarks/large.py",
                  payload, started=started)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
