"""Symmetry reduction (issue 18): a spurious family to k = 200, spectra from isotypic blocks.

1. A k = 8 scan (V = I_8, 60 starts) finds the spurious minimum of isotropy
   Δ(S_7 × S_1); ``ls.continue_family`` carries it to k = 200 (Newton in the
   5-dimensional Fix(G), the exact spectrum from 12 isotypic blocks at every k).
   Target: under two minutes to k = 200.
2. The full spectrum at the k = 200 point (40,000 parameters) from the isotypic
   blocks, timed alone.  Target: under 20 s.  (The dense path would need a
   40,000 x 40,000 Hessian, 12.8 GB.)  Then ``classify(..., symmetry="auto")`` there.
3. At k = 30 the isotypic spectrum against ``eigvalsh`` of the dense Hessian:
   largest difference relative to |H|, multiplicities included, and both times.

Run:  python benchmarks/isotropy.py            (to k = 200)
      python benchmarks/isotropy.py --quick    (to k = 60)
Writes benchmarks/results/isotropy.json (or isotropy-quick.json).
"""

import argparse
import os
import sys
import time

import numpy as np
import scipy.linalg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import landscape as ls  # noqa: E402
from landscape.report import json_ready  # noqa: E402
from record import begin, write_results  # noqa: E402  (benchmarks/record.py: the shared writer)

KS = [8, 9, 10, 12, 14, 17, 20, 25, 30, 40, 50, 60, 70, 85, 100, 120, 140, 160, 180, 200]


def teacher_student(k):
    return ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)


def main(argv=None):
    started = begin()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    ks = [k for k in KS if k <= (60 if args.quick else 200)]

    m8 = teacher_student(8)
    scan = ls.scan(m8, 60, rng=0, progress=False)
    spurious = [p for p in scan.points
                if p.kind == "strict-minimum" and not p.classification.is_global]
    x8 = spurious[0].x
    print(f"k = 8 scan: spurious minimum at loss {spurious[0].loss:.8f}, "
          f"isotropy {spurious[0].classification.isotropy}")

    t = time.perf_counter()
    fam = ls.continue_family(teacher_student, x8, ks)
    t_family = time.perf_counter() - t
    print(f"family to k = {fam.k[-1]}: {t_family:.1f} s ({fam.seconds_newton.sum():.1f} s Newton, "
          f"{fam.seconds_spectrum.sum():.1f} s spectra); {fam.message}; target < 120 s: "
          f"{'PASS' if t_family < 120 and fam.success_all else 'MISSED'}")
    for k, loss, lam, neg in zip(fam.k, fam.loss, fam.lambda_min, fam.n_negative):
        print(f"  k = {k:3d}: loss {loss:.8e}, lambda_min {lam:.6e}, index {neg}")

    kmax = int(fam.k[-1])
    m = teacher_student(kmax)
    x = fam.point(len(fam.k) - 1, m)
    G = ls.isotropy(m, x)
    t = time.perf_counter()
    spec = ls.hessian_spectrum(m, x, isotropy=G)
    t_spec = time.perf_counter() - t
    print(f"spectrum at k = {kmax} ({m.n_params} parameters, {G}): {t_spec:.1f} s from "
          f"{spec.block_eigenvalues.size} block eigenvalues; target < 20 s: "
          f"{'PASS' if t_spec < 20 else 'MISSED'}")

    t = time.perf_counter()
    c = ls.classify(m, x, symmetry="auto")
    t_classify = time.perf_counter() - t
    print(f"classify(symmetry='auto') at k = {kmax}: {c.kind}, index {c.index}, lambda_min "
          f"{c.lambda_min:.6e} in {t_classify:.1f} s")

    k = 30
    m30 = teacher_student(k)
    x30 = fam.point(fam.k.tolist().index(k), m30)
    t = time.perf_counter()
    s30 = ls.hessian_spectrum(m30, x30, isotropy=ls.isotropy(m30, x30))
    t_iso30 = time.perf_counter() - t
    t = time.perf_counter()
    dense = scipy.linalg.eigvalsh(m30.hess(x30), check_finite=False)
    t_dense30 = time.perf_counter() - t
    rel = float(np.max(np.abs(s30.eigenvalues - dense)) / np.max(np.abs(dense)))
    print(f"k = 30: isotypic {t_iso30:.2f} s vs dense eigvalsh {t_dense30:.2f} s; largest "
          f"difference {rel:.2e} |H| (target 1e-9)")

    rows = {
        "ks": fam.k, "loss": fam.loss, "lambda_min": fam.lambda_min, "index": fam.n_negative,
        "grad_norm": fam.grad_norm, "newton_iterations": fam.nit,
        "seconds_newton": fam.seconds_newton, "seconds_spectrum": fam.seconds_spectrum,
        "family_seconds": t_family, "family_target_seconds": 120.0,
        "spectrum_k": kmax, "spectrum_seconds": t_spec, "spectrum_target_seconds": 20.0,
        "spectrum_blocks": int(spec.block_eigenvalues.size),
        "spectrum_block_eigenvalues": spec.block_eigenvalues,
        "spectrum_multiplicities": spec.multiplicities,
        "classify_kind": c.kind, "classify_seconds": t_classify,
        "k30_isotypic_seconds": t_iso30, "k30_dense_seconds": t_dense30,
        "k30_relative_difference": rel,
    }
    ok = fam.success_all and rel <= 1e-9
    here = os.path.dirname(os.path.abspath(__file__))
    out = args.output or os.path.join(here, "results",
                                      "isotropy-quick.json" if args.quick else "isotropy.json")
    write_results(out, "isotropy", "python benchmarks/isotropy.py"
                  + (" --quick" if args.quick else ""),
                  {"result": json_ready(rows), "agree": bool(ok)},
                  started=started)
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
