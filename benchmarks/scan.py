"""The COLT'21 sweep as certified scans, timed against the published protocol in one run.

Safran, Yehudai & Shamir (COLT 2021) count spurious minima of the teacher-student
loss with V = I_k, k = n = d, by plain gradient descent with step 5/k from
N(0, 1/k) entries until |grad F| <= 1e-12.  For every k of the sweep this
script runs, in one process and from the SAME initial points:

* ``scan``: ``landscape.scan(model, n_starts, rng=seed, lr=5/k)``, timed end to
  end: descent, Newton polish of every end point to |grad F| <= 1e-12,
  classification, the saddles each descent visited, deduplication modulo
  symmetry, descents off every saddle and the basin graph (in-memory store,
  in-process, no progress bar);
* ``protocol``: the published protocol as the straightforward batched numpy program
  (``straightforward`` from benchmarks/protocol.py), started from the scan's own
  initial points, reproduced with the scan's per-start seeding helper
  (start i draws from child i of ``SeedSequence(seed).spawn(n_starts)``).

Per k it reports the spurious fraction (starts ending at a non-global minimum)
with its 95% Wilson interval, the number of distinct minima and saddles modulo
symmetry, how many end points are certified critical points, both times and
their ratio (protocol / scan: > 1 means the scan is faster although it also
certifies, classifies and builds the graph), and the agreement: the fraction
of starts whose scan end loss equals the protocol's end loss within 1e-9.

Run:  python benchmarks/scan.py            (k = 6, 7, ..., 20; 500 starts each; tens of minutes)
      python benchmarks/scan.py --quick    (k = 6, 8; 100 starts)
      python benchmarks/scan.py --ks 8 12 --starts 200
      python benchmarks/scan.py --ks 17 18 --append   (add rows to scan.json, summary recomputed)
Writes benchmarks/results/scan.json (or scan-quick.json).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import landscape as ls  # noqa: E402
from landscape.stats import wilson_interval  # noqa: E402
from landscape.scan import initial_points  # noqa: E402  (the scan's own per-start seeding)
from protocol import straightforward  # noqa: E402  (benchmarks/protocol.py)
from record import begin, write_results  # noqa: E402  (benchmarks/record.py: the shared writer)

GTOL = 1e-12
AGREE = 1e-9
_CRITICAL = ("strict-minimum", "degenerate-minimum", "strict-saddle", "non-strict-saddle",
             "degenerate", "maximum")


def scan_initial_points(model, s):
    """The initial points of every start of the finished scan `s`, in start order."""
    settings = s.settings
    assert settings["init"]["kind"] == "normal", settings["init"]
    return initial_points(model, settings, np.arange(s.n_starts))


def run(k, n_starts, seed, maxiter):
    model = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    lr = 5.0 / k
    t = time.perf_counter()
    s = ls.scan(model, n_starts, rng=seed, lr=lr, progress=False)
    t_scan = time.perf_counter() - t

    X0 = scan_initial_points(model, s)                  # N(0, 1/k) entries, as the scan drew them
    assert X0.shape == (n_starts, model.n_params)
    assert np.array_equal(s.outcomes.start, np.arange(n_starts))
    t = time.perf_counter()
    proto_W, proto_nit = straightforward(X0, k, lr, maxiter)
    proto_loss = model.loss_batch(proto_W)
    t_proto = time.perf_counter() - t

    out = s.outcomes
    kinds = np.array(out.kind)
    certified = np.isin(kinds, _CRITICAL) & (out.grad_norm <= GTOL) & (out.point >= 0)
    agree = np.abs(out.loss - proto_loss) <= AGREE      # NaN (no critical point) never agrees
    proto_done = proto_nit < maxiter
    lo, hi = (float(v) for v in s.spurious_interval)
    return {
        "k": k, "n_starts": n_starts, "lr": lr, "seed": seed,
        "scan_seconds": t_scan, "protocol_seconds": t_proto, "ratio": t_proto / t_scan,
        "spurious_fraction": float(s.spurious_fraction), "spurious_count": s.spurious_count,
        "spurious_interval": [lo, hi],
        "minima": len(s.minima), "saddles": len(s.saddles), "points": len(s.points),
        "spurious_minima": len(s.spurious_minima),
        "minima_detail": [{"id": p.id, "kind": p.kind, "loss": p.loss,
                           "basin_count": p.basin_count, "is_global": p.classification.is_global}
                          for p in s.minima],
        "saddle_losses": [p.loss for p in s.saddles],
        "edges": len(s.edges),
        "certified": int(certified.sum()),
        "end_kinds": {str(kd): int(n) for kd, n in zip(*np.unique(kinds, return_counts=True))},
        "max_grad_norm_scan": float(np.nanmax(out.grad_norm)),
        "agreement": float(agree.mean()),
        "disagreeing_starts": np.flatnonzero(~agree).tolist(),
        "protocol_converged": int(proto_done.sum()),
        "protocol_iterations_total": int(proto_nit.sum()),
        "protocol_iterations_max": int(proto_nit.max()),
        "spurious_fraction_protocol": float(np.mean(proto_loss[proto_done] > AGREE))
        if proto_done.any() else float("nan"),
    }


def _row(r, label=None):
    lo, hi = r["spurious_interval"]
    return (f"{label or r['k']:>5} {r['n_starts']:>6} {r['spurious_fraction']:>8.1%} "
            f"[{lo:>5.1%}, {hi:>5.1%}] {r['minima']:>6} {r['saddles']:>7} "
            f"{r['certified']:>9} {r['scan_seconds']:>9.2f} {r['protocol_seconds']:>10.2f} "
            f"{r['ratio']:>6.2f}x {r['agreement']:>7.1%}")


def main(argv=None):
    started = begin()
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="k = 6, 8 with 100 starts")
    parser.add_argument("--ks", type=int, nargs="+", help="values of k (default 6..20)")
    parser.add_argument("--starts", type=int, help="starts per k (default 500; 100 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--maxiter", type=int, default=500_000,
                        help="gradient-step budget of the protocol")
    parser.add_argument("--output")
    parser.add_argument("--append", action="store_true",
                        help="keep the rows of the output file for other k and add these")
    args = parser.parse_args(argv)
    ks = args.ks or ([6, 8] if args.quick else list(range(6, 21)))
    starts = args.starts or (100 if args.quick else 500)
    out = args.output or os.path.join(HERE, "results",
                                      "scan-quick.json" if args.quick else "scan.json")
    rows = []
    header = (f"{'k':>5} {'starts':>6} {'spurious':>8} {'95% interval':>16} {'minima':>6} "
              f"{'saddles':>7} {'certified':>9} {'scan (s)':>9} {'proto (s)':>10} "
              f"{'ratio':>7} {'agree':>7}")
    print(header)
    print("-" * len(header))
    for k in ks:
        r = run(k, starts, args.seed, args.maxiter)
        rows.append(r)
        print(_row(r), flush=True)
    commands = [" ".join(["python", "benchmarks/" + os.path.basename(__file__)] + argv)]
    earlier = []
    if args.append and os.path.exists(out):
        with open(out) as fh:
            old = json.load(fh)
        if old["settings"]["n_starts"] != starts or old["settings"]["seed"] != args.seed:
            parser.error(f"--append: {out} has n_starts={old['settings']['n_starts']}, "
                         f"seed={old['settings']['seed']}; run with the same --starts and --seed")
        rows = sorted([r for r in old["rows"] if r["k"] not in ks] + rows, key=lambda r: r["k"])
        ks = [r["k"] for r in rows]
        commands = old.get("commands", [old["command"]]) + commands
        # the kept rows were measured then, on that machine under that load
        earlier = old.get("earlier_runs", []) + [
            {"command": old["command"], "date": old["date"], "machine": old["machine"]}]
    n_total = sum(r["n_starts"] for r in rows)
    spurious = sum(r["spurious_count"] for r in rows)
    t_scan = sum(r["scan_seconds"] for r in rows)
    t_proto = sum(r["protocol_seconds"] for r in rows)
    agreeing = sum(round(r["agreement"] * r["n_starts"]) for r in rows)
    lo, hi = (float(v) for v in wilson_interval(spurious, n_total))
    summary = {
        "n_starts": n_total, "scan_seconds": t_scan, "protocol_seconds": t_proto,
        "ratio": t_proto / t_scan, "spurious_fraction": spurious / n_total,
        "spurious_interval": [lo, hi],
        "certified": sum(r["certified"] for r in rows),
        "agreement": agreeing / n_total,
        "min_agreement": float(min(r["agreement"] for r in rows)),
        "minima": sum(r["minima"] for r in rows), "saddles": sum(r["saddles"] for r in rows),
        "protocol_converged": sum(r["protocol_converged"] for r in rows),
    }
    print("-" * len(header))
    print(_row({**summary, "k": "all", "n_starts": n_total, "spurious_count": spurious}))
    print(f"ratio = protocol time / scan time; agreement = |scan loss - protocol loss| <= {AGREE:g}"
          f"; certified = end points with |grad F| <= {GTOL:g}, classified and deduplicated")
    write_results(out, "scan", " && ".join(commands),
                  {"commands": commands, "settings": {"ks": ks, "n_starts": starts, "seed": args.seed,
                                "lr": "5/k", "gtol": GTOL, "agreement_tol": AGREE,
                                "protocol_maxiter": args.maxiter},
                   "rows": rows, "summary": summary,
                   **({"earlier_runs": earlier} if earlier else {})},
                  started=started)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
