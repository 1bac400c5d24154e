"""The COLT'21 protocol: this package against the program a researcher writes, side by side.

Safran, Yehudai & Shamir (COLT 2021) run plain gradient descent on the teacher-student loss with
V = I_k, k = n = d, from N(0, 1/k) entries with step 5/k until |grad F| <= 1e-12.  From the SAME
starts, in one process (one BLAS thread: run with OPENBLAS_NUM_THREADS=1), each k times:

* ``straightforward``: the ~15-line batched numpy program a competent researcher writes (W of
  shape (B, k, d), cosines by two batched matmuls, ``arccos``, the gradient as
  ``(a W + (pi - Theta_WW) @ W - (pi - Theta_WV) @ V) / 2 pi``, finished starts dropped each
  step) -- the baseline of every ratio;
* ``jax``: the same closed form under ``jax.jit`` (float64, one thread; the unfinished starts are
  padded to the next power of two so that XLA compiles a few shapes, not one per batch size),
  where jax installs (it is not a dependency: ``pip install "jax[cpu]"``);
* ``plain``: ``ls.descend`` to 1e-12 (the same protocol on this package's fused kernel);
* ``polish``: ``ls.descend_and_polish`` (descent until Newton can take over, Newton to 1e-12,
  ending where plain GD ends);
* ``scan``: ``ls.scan`` -- everything a scan does (descent, polish, classification of every end,
  the saddles passed, deduplication modulo symmetry, descents off the saddles, the basin graph),
  in this process; ``scan2``: the same with two worker processes (``--workers 2``).

With ``--profile`` each k also runs the scan once more under cProfile (after the timed rows, so
the timings are not affected) and records where its time goes: descent, Newton polish,
lambda_min of the polished ends, classification, the saddles passed, deduplication and the
basin graph (with the descents off the saddles), the store.

``--repeat N`` runs the straightforward program and the package's rows N times, interleaved
(baseline, rows, baseline, rows, ...); each speed-up is then the median over the rounds of the
ratio to that round's baseline (the jax row runs once).  On a shared virtual machine whose speed
drifts by 10-30% over minutes, one round can put a ratio on either side of a target.

Agreement: the fraction of starts whose final loss equals the straightforward program's within
1e-9 (the same critical value: the same basin up to symmetry).

Run:  OPENBLAS_NUM_THREADS=1 python benchmarks/protocol.py     (k = 12, 16, 20; 500 starts)
      OPENBLAS_NUM_THREADS=1 python benchmarks/protocol.py --repeat 3 --profile   (the README's)
      OPENBLAS_NUM_THREADS=1 python benchmarks/protocol.py --quick      (k = 6, 8; 60 starts)
Writes benchmarks/results/protocol.json (or protocol-quick.json).
"""

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)       # record.py, also when run from another folder
import landscape as ls  # noqa: E402
from record import begin, write_results  # noqa: E402  (benchmarks/record.py: the shared writer)

GTOL = 1e-12
AGREE = 1e-9


# ---- the straightforward program (the baseline) -----------------------------------------

def straightforward_grad(W, V, nV):
    """grad F for a batch W (B, k, d), teacher V (n, d) with row norms nV."""
    nW = np.linalg.norm(W, axis=2)
    cWW = np.clip(W @ W.transpose(0, 2, 1) / (nW[:, :, None] * nW[:, None, :]), -1, 1)
    cWV = np.clip(W @ V.T / (nW[:, :, None] * nV), -1, 1)
    tWW, tWV = np.arccos(cWW), np.arccos(cWV)
    a = ((np.sin(tWW) * nW[:, None, :]).sum(2) - (np.sin(tWV) * nV).sum(2)) / nW
    return (a[:, :, None] * W + (np.pi - tWW) @ W - (np.pi - tWV) @ V) / (2 * np.pi)


def straightforward(X0, k, lr, maxiter):
    """Plain batched GD until |grad F| <= 1e-12; finished starts drop out.  Returns (W, nit)."""
    V = np.eye(k)
    nV = np.linalg.norm(V, axis=1)
    out = X0.reshape(len(X0), k, k).copy()
    nit = np.full(len(X0), maxiter)
    act = np.arange(len(X0))
    W = out.copy()
    for it in range(maxiter + 1):
        G = straightforward_grad(W, V, nV)
        done = np.linalg.norm(G.reshape(len(W), -1), axis=1) <= GTOL
        if it == maxiter:
            done[:] = True
        if done.any():
            out[act[done]], nit[act[done]] = W[done], it
            act, W, G = act[~done], W[~done], G[~done]
            if not act.size:
                break
        W -= lr * G
    return out.reshape(len(X0), -1), nit


# ---- the same program under jax.jit ------------------------------------------------------

def jax_runner():
    """A jitted GD step of the straightforward program, or None where jax does not import."""
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                       "intra_op_parallelism_threads=1")
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    @jax.jit
    def step(W, V, lr):
        nV = jnp.linalg.norm(V, axis=1)
        nW = jnp.linalg.norm(W, axis=2)
        cWW = jnp.clip(W @ W.transpose(0, 2, 1) / (nW[:, :, None] * nW[:, None, :]), -1, 1)
        cWV = jnp.clip(W @ V.T / (nW[:, :, None] * nV), -1, 1)
        tWW, tWV = jnp.arccos(cWW), jnp.arccos(cWV)
        a = ((jnp.sin(tWW) * nW[:, None, :]).sum(2) - (jnp.sin(tWV) * nV).sum(2)) / nW
        G = (a[:, :, None] * W + (jnp.pi - tWW) @ W - (jnp.pi - tWV) @ V) / (2 * jnp.pi)
        return W - lr * G, jnp.linalg.norm(G.reshape(W.shape[0], -1), axis=1)

    def run(X0, k, lr, maxiter):
        V = jnp.eye(k)
        out = X0.reshape(len(X0), k, k).copy()
        nit = np.full(len(X0), maxiter)
        act = np.arange(len(X0))
        W = out.copy()
        for it in range(maxiter + 1):
            size = 1 << int(np.ceil(np.log2(len(act))))          # a few compiled shapes
            Wp = np.concatenate([W, np.repeat(W[:1], size - len(W), axis=0)])
            Wn, gn = step(Wp, V, lr)
            done = (np.asarray(gn)[:len(W)] <= GTOL) | (it == maxiter)
            Wn = np.asarray(Wn)[:len(W)]
            if done.any():
                out[act[done]], nit[act[done]] = W[done], it
                act, Wn = act[~done], Wn[~done]
                if not act.size:
                    break
            W = Wn
        return out.reshape(len(X0), -1), nit

    return run


# ---- the rows ------------------------------------------------------------------------------

def _warm(model, X, lr):
    """A worker's first task: load every compiled kernel a scan uses (descent, Newton,
    Hessians; numba's disk cache) with a small scan of its own, as the in-process rows are
    warm from the rows before them, then hold the worker for a moment so that the next
    warm-up task goes to another worker."""
    ls.scan(model, len(X), rng=0, init=X, lr=lr, progress=False)
    time.sleep(0.5)


# where a scan's time goes: (file, function) of each phase, cumulative seconds under cProfile
PHASES = {
    "descent": [("advance.py", "advance")],
    "newton polish (with lambda_min)": [("polish.py", "_polish_handed")],
    "  of which lambda_min of the ends": [("spectrum.py", "smallest_eigenvalues")],
    "classification": [("pipeline.py", "classify_ends")],
    "saddles passed": [("pipeline.py", "_visits")],
    "dedup + graph (+ descents off saddles)": [("basins.py", "finalize")],
    "store": [("store.py", "write_chunk")],
}


def scan_profile(model, n_starts, seed, X0, lr, maxiter):
    """Cumulative seconds of each scan phase (PHASES) and the total, from a cProfile run."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    ls.scan(model, n_starts, rng=seed, init=X0, lr=lr, maxiter=maxiter, progress=False)
    prof.disable()
    out = {"total": time.perf_counter() - t}
    stats = pstats.Stats(prof).stats
    for name, where in PHASES.items():
        out[name] = sum(ct for (f, _, fn), (_, _, _, ct, _) in stats.items()
                        if (os.path.basename(f), fn) in where)
    return out


def run(k, n_starts, seed, maxiter, workers, jax_run, profile=False, repeat=1):
    """One k: every row from the same starts; with ``repeat`` > 1 the straightforward program
    and the package's rows run again, interleaved (baseline, rows, baseline, rows, ...), and
    each row's speed-up is the median of the ratios of its rounds (each against the baseline
    of its own round), its seconds the median of its rounds: on a shared machine whose speed
    drifts over minutes that is steadier than one round.  The jax row runs once."""
    model = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    X0 = model.sample_init(n_starts, rng=seed)          # N(0, 1/k) entries
    lr = 5.0 / k
    probe = X0[:5].reshape(5, k, k)
    np.testing.assert_allclose(straightforward_grad(probe, np.eye(k), np.ones(k)).reshape(5, -1),
                               model.grad_batch(X0[:5]), rtol=1e-9, atol=1e-12)
    ls.descend(model, X0[:2], lr=lr, maxiter=5)          # compile (numba caches it on disk)
    row = {"k": k, "n_starts": n_starts, "lr": lr, "repeat": repeat}
    names = ("straightforward", "jax", "plain", "polish", "scan", f"scan{workers}")
    runs = {name: [] for name in names}
    ref = None

    def agree(loss):
        return float(np.mean(np.abs(np.asarray(loss) - ref) <= AGREE))

    def timed(name, fn):
        t = time.perf_counter()
        out = fn()
        runs[name].append(time.perf_counter() - t)
        return out

    pool = None
    if workers > 1:
        # spawned workers: a forked child of a process that imported jax can deadlock
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        # start both workers and load the compiled kernels in each (numba's disk cache)
        [w.result() for w in [pool.submit(_warm, model, X0[:8], lr) for _ in range(workers)]]
    try:
        for r in range(repeat):
            W, nit = timed("straightforward", lambda: straightforward(X0, k, lr, maxiter))
            if r == 0:
                ref = model.loss_batch(W)
                row["straightforward_converged"] = int(np.sum(nit < maxiter))
                row["iterations_median"] = float(np.median(nit))
                row["iterations_max"] = int(nit.max())
            if jax_run is not None and r == 0:
                size = 1
                while size < 2 * n_starts:                # compile every shape outside the clock
                    jax_run(np.resize(X0, (size, X0.shape[1])), k, lr, 1)
                    size *= 2
                Wj, _ = timed("jax", lambda: jax_run(X0, k, lr, maxiter))
                row["jax_agreement"] = agree(model.loss_batch(Wj))
            plain = timed("plain", lambda: ls.descend(model, X0, lr=lr, gtol=GTOL,
                                                      maxiter=maxiter))
            p = timed("polish", lambda: ls.descend_and_polish(model, X0, lr=lr, gtol=GTOL,
                                                              maxiter=maxiter))
            s = timed("scan", lambda: ls.scan(model, n_starts, rng=seed, init=X0, lr=lr,
                                              maxiter=maxiter, progress=False))
            if pool is not None:
                s2 = timed(f"scan{workers}", lambda: ls.scan(
                    model, n_starts, rng=seed, init=X0, lr=lr, maxiter=maxiter,
                    progress=False, executor=pool, chunk_size=max(5, n_starts // (4 * workers))))
            if r == 0:
                row["plain_agreement"] = agree(plain.loss)
                row["polish_agreement"] = agree(p.loss)
                row["polish_descent_steps"] = int(p.nit_descent.sum())
                row["polish_newton_steps"] = int(p.nit_polish.sum())
                row["plain_steps"] = int(plain.nit.sum())
                row["scan_agreement"] = agree(s.outcomes.loss)
                row["scan_distinct"] = len(s.points)
                if pool is not None:
                    row[f"scan{workers}_agreement"] = agree(s2.outcomes.loss)
    finally:
        if pool is not None:
            pool.shutdown()
    base = runs["straightforward"]
    for name in names:
        if not runs[name]:
            continue
        row[f"{name}_seconds"] = float(np.median(runs[name]))
        if repeat > 1:
            row[f"{name}_rounds_seconds"] = runs[name]
        if name == "straightforward":
            continue
        # each round against its own baseline (the jax row: against the first)
        row[f"{name}_speedup"] = float(np.median([b / t for b, t in zip(base, runs[name])]))
    row["spurious_fraction"] = float(np.mean(ref > 1e-9))
    if profile:
        row["scan_profile_seconds"] = scan_profile(model, n_starts, seed, X0, lr, maxiter)
    return row


def main(argv=None):
    started = begin()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ks", type=int, nargs="*")
    parser.add_argument("--starts", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--maxiter", type=int, default=500_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-jax", action="store_true", help="skip the jax row")
    parser.add_argument("--profile", action="store_true",
                        help="profile one more scan per k: where its time goes")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of the baseline and the package's rows, interleaved; "
                             "speed-ups are the medians of the rounds' ratios")
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    ks = args.ks or ([6, 8] if args.quick else [12, 16, 20])
    starts = args.starts or (60 if args.quick else 500)
    out = args.output or os.path.join(HERE, "results",
                                      "protocol-quick.json" if args.quick else "protocol.json")
    jax_run = None if args.no_jax else jax_runner()
    names = ["straightforward", "jax", "plain", "polish", "scan", f"scan{args.workers}"]
    print(f"{'k':>3} " + " ".join(f"{n + ' (s)':>20}" for n in names) + "   agreement")
    rows = []
    for k in ks:
        r = run(k, starts, args.seed, args.maxiter, args.workers, jax_run, args.profile,
                args.repeat)
        rows.append(r)
        cells = []
        for n in names:
            sec = r.get(f"{n}_seconds")
            cells.append(f"{'-':>20}" if sec is None else
                         f"{sec:>11.2f} ({r.get(f'{n}_speedup', 1.0):>5.2f}x)")
        agreements = [r[key] for key in r if key.endswith("_agreement")]
        print(f"{k:>3} " + " ".join(cells) + f"   >= {min(agreements):.1%}", flush=True)
        if "scan_profile_seconds" in r:
            print("    scan profile (s): " + ", ".join(
                f"{name} {sec:.2f}" for name, sec in r["scan_profile_seconds"].items()),
                flush=True)
    summary = {"targets": {"polish_speedup": ">= 4x", "scan_speedup": ">= 3x",
                           f"scan{args.workers}_speedup": ">= 5x", "agreement": ">= 99.8%"}}
    for n in names[1:]:
        vals = [r[f"{n}_speedup"] for r in rows if f"{n}_speedup" in r]
        if vals:
            summary[f"{n}_speedup_min"] = float(min(vals))
    summary["min_agreement"] = float(min(r[key] for r in rows for key in r
                                         if key.endswith("_agreement")))
    print("min speedups:", {k: round(v, 2) for k, v in summary.items() if k.endswith("_min")},
          f"min agreement {summary['min_agreement']:.1%}")
    write_results(out, "protocol", " ".join(
                      ["OPENBLAS_NUM_THREADS=1", "python", "benchmarks/protocol.py"]
                      + (sys.argv[1:] if argv is None else list(argv))),
                  {"rows": rows, "summary": summary},
                  started=started)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
