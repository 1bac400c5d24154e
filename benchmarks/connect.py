"""connect and find_saddle on the V = I_8, k = 8 pair, on one core (issue 19: < 30 s).

The spurious minimum of Safran, Yehudai & Shamir (COLT 2021) for V = I_8, k = 8 (F =
0.0215080372, polished from its pattern) is connected to a permuted copy of the global
minimum W = I with ``landscape.connect`` (alignment, string, saddle refinement, descents
off both sides), with BLAS limited to one thread.  Each timing is the median of
``--repeats`` runs; the first (cold: numba compilation, caches) is reported apart.  Also
timed: ``find_saddle`` from a perturbed copy of the saddle, dense and Lanczos.

Run:  python benchmarks/connect.py [--repeats 5]
Writes benchmarks/results/connect.json.
"""

import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import landscape as ls  # noqa: E402
from record import begin, write_results  # noqa: E402


def k8_pair():
    m = ls.ReluTeacherStudent(teacher=np.eye(8), n_students=8)
    W = np.full((8, 8), -0.0259)
    W[np.arange(8), np.arange(8)] = 1.0014
    W[:, 4] = 0.2281
    W[4] = 0.1598
    W[4, 4] = -0.6583
    xs = ls.find_critical_point(m, m.flatten(W)).x
    perm = np.random.default_rng(4).permutation(8)
    return m, xs, m.flatten(np.eye(8)[perm][:, perm])


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    started = begin()
    rows = []
    with threadpool_limits(1):
        m, xs, xg = k8_pair()
        cold, [cold_s] = timed(lambda: ls.connect(m, xs, xg), 1)
        c, times = timed(lambda: ls.connect(m, xs, xg), args.repeats)
        s = c.saddles[0]
        rows.append(dict(job="connect k=8 spurious -> global", cold_seconds=cold_s,
                         median_seconds=float(np.median(times)), seconds=times,
                         success=c.success, saddle_loss=s.loss, barrier=c.barrier,
                         lambda_min=s.classification.lambda_min, grad_norm=s.grad_norm,
                         string_nit=c.path.nit))
        rng = np.random.default_rng(5)
        x0 = s.x + 1e-3 * rng.standard_normal(m.n_params)
        for method in ("dense", "lanczos"):
            p, times = timed(lambda: ls.find_saddle(m, x0, method=method), args.repeats)
            rows.append(dict(job=f"find_saddle k=8 ({method})",
                             median_seconds=float(np.median(times)), seconds=times,
                             success=p.success, nit=p.nit, grad_norm=p.grad_norm,
                             loss=p.loss))
    for r in rows:
        print(f"{r['job']:34s} median {r['median_seconds']:.3f} s  "
              + (f"(cold {r['cold_seconds']:.2f} s)" if "cold_seconds" in r else ""))
    out = os.path.join(HERE, "results", "connect.json")
    write_results(out, "connect", "python benchmarks/connect.py", {"rows": rows},
                  started=started)
    print("wrote", out)


if __name__ == "__main__":
    main()
