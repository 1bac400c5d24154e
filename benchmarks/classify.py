"""Classifying a 10,000-parameter critical point: inertia and Lanczos vs a dense eigendecomposition.

The point is the global minimum W = V = I of the teacher-student loss with
k = n = d = 100 (DESIGN.md: lambda_min = 1/4 - 1/(2 pi)).  ``landscape.classify``
takes its large-model path: Lanczos (eigsh on Hessian-vector products) for the
extreme eigenvalues, then the inertia counts (Sylvester's law) from one Cholesky
factorisation of H - tau I when the Ritz lambda_min clears tau (a minimum), LDL^T
factorisations of H -+ tau I otherwise.  It is timed with one BLAS thread and with
two (``--threads``).  The reference is scipy's dense ``eigvalsh`` of the same
Hessian (with every BLAS thread).  Both must give the same index, nullity and
lambda_min.  Target (issue 17): classification in <= 10 s.

Run:  python benchmarks/classify.py            (k = 100: 10,000 parameters)
      python benchmarks/classify.py --quick    (k = 40: 1,600 parameters, forced Lanczos)
Writes benchmarks/results/classify.json (or classify-quick.json).
"""

import argparse
import os
import sys
import time

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import landscape as ls  # noqa: E402
from landscape.classify import classify  # noqa: E402
from record import begin, write_results  # noqa: E402  (benchmarks/record.py: the shared writer)


TARGET = 10.0          # seconds to classify the 10,000-parameter point (issue 17)


def main(argv=None):
    started = begin()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--k", type=int)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="BLAS thread counts to time classify with (default 1 2)")
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    k = args.k or (40 if args.quick else 100)
    model = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    x = model.flatten(np.eye(k))
    method = "lanczos"

    timed = {}
    for threads in args.threads:
        with threadpool_limits(limits=threads, user_api="blas"):
            t = time.perf_counter()
            c = classify(model, x, method=method)
            timed[threads] = time.perf_counter() - t
        print(f"classify with {threads} BLAS thread(s): {timed[threads]:.1f} s", flush=True)
    t_classify = min(timed.values())
    t = time.perf_counter()
    H = model.hess(x)
    t_hess = time.perf_counter() - t
    t = time.perf_counter()
    lam = scipy.linalg.eigvalsh(H, check_finite=False, overwrite_a=True)
    t_dense = time.perf_counter() - t + t_hess
    tau = c.tau
    dense_counts = (int(np.sum(lam < -tau)), int(np.sum(np.abs(lam) <= tau)),
                    int(np.sum(lam > tau)))
    ours_counts = (c.index, c.nullity + c.symmetry_nullity, c.n_positive)
    reference = 0.25 - 1 / (2 * np.pi)
    rows = {
        "n_params": model.n_params,
        "kind": c.kind,
        "classify_seconds": t_classify,
        "classify_seconds_by_threads": {str(n): v for n, v in timed.items()},
        "dense_eigvalsh_seconds": t_dense,
        "hessian_seconds": t_hess,
        "speedup": t_dense / t_classify,
        "counts_lanczos_inertia": ours_counts,
        "counts_dense": dense_counts,
        "lambda_min_lanczos": c.lambda_min,
        "lambda_min_dense": float(lam[0]),
        "lambda_min_reference": reference,
        "target_seconds": TARGET,
    }
    agree = ours_counts == dense_counts and abs(c.lambda_min - lam[0]) <= 1e-8
    print(f"n_params = {model.n_params}: classify ({method}) {t_classify:.1f} s -> {c.kind}; "
          f"dense eigvalsh {t_dense:.1f} s (Hessian {t_hess:.1f} s); ratio "
          f"{t_dense / t_classify:.1f}x; target <= {TARGET:g} s: "
          f"{'PASS' if t_classify <= TARGET else 'MISSED'}")
    print(f"counts (neg, zero, pos): inertia {ours_counts}, dense {dense_counts}; lambda_min "
          f"{c.lambda_min:.12f} vs dense {lam[0]:.12f} (1/4 - 1/(2 pi) = {reference:.12f}); "
          f"{'agree' if agree else 'DISAGREE'}")
    here = os.path.dirname(os.path.abspath(__file__))
    out = args.output or os.path.join(here, "results",
                                      "classify-quick.json" if args.quick else "classify.json")
    write_results(out, "classify", " ".join(["python", "benchmarks/classify.py"] + (
                      sys.argv[1:] if argv is None else list(argv))),
                  {"result": rows, "agree": bool(agree)}, started=started)
    print(f"wrote {out}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
