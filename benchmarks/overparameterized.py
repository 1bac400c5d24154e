"""Over-parameterised scans: their cost next to exact ones, and where their starts end.

Two measurements for the teacher-student loss with V = I_n (Safran, Yehudai & Shamir,
COLT 2021), step 5/k from the scan's own Xavier starts, one BLAS thread:

* ``cost``: ``landscape.scan`` with k = n and with k = n + 1 students (the same n,
  starts and seed), run alternately ``--repeats`` times in this process; the ratio of
  the median times.  At k = n + 1 the global minima form a continuum (a teacher
  neuron split between two students in any proportion) whose Hessian is singular and
  along whose split rotations the loss grows only as r^3: plain gradient descent
  crawls there (T^-3), the scan converges onto the continuum with Levenberg-Marquardt
  steps and lists it as one point.  Also reported: the number of distinct points, how
  many members of the global continuum the starts reached, and its dimension.
* ``agreement``: for every start of ``landscape.scan`` (k = n), the point plain gradient
  descent reaches from the same initial point with the same step (``landscape.descend``
  to |grad F| <= 1e-12, the COLT'21 protocol on this package's kernels).  A start agrees
  when both end at the same point: losses within 1e-9 and the orbit distance of the
  merged-neuron keys (``Model.merge_collinear``) within 1e-6 |key| (the scan's own
  deduplication rule).  Starts whose plain descent did not reach 1e-12 within
  ``--maxiter`` steps are counted apart.

Run:  python benchmarks/overparameterized.py cost             (n = 6, 8, 10; 500 starts, 3 repeats)
      python benchmarks/overparameterized.py agreement        (k = 6..20, 500 starts, seeds 0 and 2021)
      python benchmarks/overparameterized.py cost --quick     (n = 6, 100 starts, 1 repeat)
Writes benchmarks/results/overparameterized-<what>[-quick].json.
"""

import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import landscape as ls  # noqa: E402
from record import begin, write_results  # noqa: E402  (benchmarks/record.py)

GTOL = 1e-12
LOSS_RTOL, XTOL = 1e-9, 1e-6        # the scan's deduplication tolerances


def initial_points(model, n_starts, seed):
    """The scan's starts: start i draws N(0, 1/d) entries from child i of SeedSequence(seed)."""
    children = np.random.SeedSequence(seed).spawn(n_starts)
    return np.vstack([model.sample_init(1, rng=c) for c in children])


def cost(n, n_starts, seed, repeats):
    times = {n: [], n + 1: []}
    scans = {}
    for _ in range(repeats):
        for k in (n, n + 1):
            model = ls.ReluTeacherStudent(teacher=np.eye(n), n_students=k)
            t = time.perf_counter()
            scans[k] = ls.scan(model, n_starts, rng=seed, lr=5.0 / k, progress=False)
            times[k].append(time.perf_counter() - t)
    row = {"n": n, "n_starts": n_starts, "seed": seed, "repeats": repeats}
    for k, s in scans.items():
        tag = "k_n" if k == n else "k_n1"
        glob = [p for p in s.points if p.classification.is_global]
        kinds = np.array(s.outcomes.kind)
        row[tag] = {
            "k": k, "seconds": times[k], "median_seconds": float(np.median(times[k])),
            "points": len(s.points), "minima": len(s.minima), "saddles": len(s.saddles),
            "global_points": len(glob),
            "global_basin": int(sum(p.basin_count for p in glob)),
            "global_dimension": [p.dimension for p in glob],
            "global_members": [p.n_members for p in glob],
            "spurious_fraction": float(s.spurious_fraction),
            "ends_at_minima": int(np.isin(kinds, ["strict-minimum", "degenerate-minimum"]).sum()),
            "max_grad_norm": float(np.nanmax(s.outcomes.grad_norm)),
            "end_kinds": {str(a): int(b) for a, b in zip(*np.unique(kinds, return_counts=True))},
        }
    row["ratio"] = row["k_n1"]["median_seconds"] / row["k_n"]["median_seconds"]
    return row


def same_point(model, x, y, loss_x, loss_y):
    if not (np.isfinite(loss_x) and np.isfinite(loss_y)):
        return False
    if abs(loss_x - loss_y) > LOSS_RTOL * max(1.0, abs(loss_x)):
        return False
    kx, ky = model.merge_collinear(x), model.merge_collinear(y)
    tol = XTOL * max(1.0, float(np.linalg.norm(kx)))
    return ls.orbit_distance(model, kx, ky, cutoff=tol) <= tol


def agreement(k, n_starts, seed, maxiter):
    model = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    t = time.perf_counter()
    s = ls.scan(model, n_starts, rng=seed, lr=5.0 / k, progress=False)
    t_scan = time.perf_counter() - t
    X0 = initial_points(model, n_starts, seed)
    t = time.perf_counter()
    gd = ls.descend(model, X0, lr=5.0 / k, gtol=GTOL, maxiter=maxiter)
    t_gd = time.perf_counter() - t
    out = s.outcomes
    done = gd.success
    agree = np.array([done[i] and same_point(model, out.x[i], gd.x[i], out.loss[i], gd.loss[i])
                      for i in range(n_starts)])
    return {
        "k": k, "seed": seed, "n_starts": n_starts, "scan_seconds": t_scan, "gd_seconds": t_gd,
        "gd_converged": int(done.sum()), "gd_iterations_max": int(gd.nit.max()),
        "agree": int(agree.sum()), "compared": int(done.sum()),
        "agreement": float(agree.sum() / max(1, done.sum())),
        "disagreeing_starts": np.flatnonzero(done & ~agree).tolist(),
        "disagreeing": [{"start": int(i), "scan_loss": float(out.loss[i]),
                         "scan_kind": out.kind[i], "gd_loss": float(gd.loss[i])}
                        for i in np.flatnonzero(done & ~agree)],
        "gd_unfinished_starts": np.flatnonzero(~done).tolist(),
    }


def main(argv=None):
    started = begin()
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("cost", "agreement"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ns", type=int, nargs="+", help="cost: values of n (default 6 8 10)")
    parser.add_argument("--ks", type=int, nargs="+", help="agreement: values of k (default 6..20)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (cost: 0; agreement: 0 2021)")
    parser.add_argument("--starts", type=int, help="starts (default 500; 100 with --quick)")
    parser.add_argument("--repeats", type=int, help="cost: alternating repeats (default 3)")
    parser.add_argument("--maxiter", type=int, default=1_000_000,
                        help="agreement: gradient-step budget of plain descent")
    args = parser.parse_args(argv)
    starts = args.starts or (100 if args.quick else 500)
    rows = []
    with threadpool_limits(1):
        if args.what == "cost":
            ns = args.ns or ([6] if args.quick else [6, 8, 10])
            repeats = args.repeats or (1 if args.quick else 3)
            print(f"{'n':>3} {'k = n (s)':>10} {'k = n+1 (s)':>12} {'ratio':>6} "
                  f"{'points n/n+1':>13} {'global members':>15}")
            for seed in args.seeds or [0]:
                for n in ns:
                    r = cost(n, starts, seed, repeats)
                    rows.append(r)
                    print(f"{n:>3} {r['k_n']['median_seconds']:>10.2f} "
                          f"{r['k_n1']['median_seconds']:>12.2f} {r['ratio']:>5.2f}x "
                          f"{r['k_n']['points']:>6}/{r['k_n1']['points']:<6} "
                          f"{r['k_n1']['global_members']!s:>15}", flush=True)
            summary = {"max_ratio": max(r["ratio"] for r in rows)}
        else:
            ks = args.ks or ([6, 8] if args.quick else list(range(6, 21)))
            print(f"{'seed':>5} {'k':>3} {'agree':>10} {'GD unfinished':>14} "
                  f"{'scan (s)':>9} {'GD (s)':>8}")
            for seed in args.seeds or [0, 2021]:
                for k in ks:
                    r = agreement(k, starts, seed, args.maxiter)
                    rows.append(r)
                    print(f"{seed:>5} {k:>3} {r['agree']:>5}/{r['compared']:<4} "
                          f"{len(r['gd_unfinished_starts']):>14} {r['scan_seconds']:>9.1f} "
                          f"{r['gd_seconds']:>8.1f}", flush=True)
            agree, compared = sum(r["agree"] for r in rows), sum(r["compared"] for r in rows)
            summary = {"agree": agree, "compared": compared, "agreement": agree / compared,
                       "gd_unfinished": sum(len(r["gd_unfinished_starts"]) for r in rows)}
            print(f"all: {agree}/{compared} = {agree / compared:.4%}")
    name = f"overparameterized-{args.what}" + ("-quick" if args.quick else "")
    out = os.path.join(HERE, "results", name + ".json")
    command = " ".join(["python", "benchmarks/" + os.path.basename(__file__)] + argv)
    settings = dict(vars(args), blas_threads_used=1, lr="5/k")   # threadpool_limits(1) above
    write_results(out, name, command, {"settings": settings, "rows": rows, "summary": summary},
                  started=started)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
