"""The COLT'21 protocol vs descend-then-polish, side by side in one process.

Safran, Yehudai & Shamir (COLT 2021) run plain gradient descent on the
teacher-student loss with V = I_k, k = n = d, from N(0, 1/k) entries with step
5/k until |grad F| <= 1e-12.  Three runs from the same starts:

* ``protocol``: that protocol as a straightforward batched numpy program (one
  (B, k, k + n, d) pair tensor per step, angles by atan2 of the explicit
  perpendicular norm -- arccos of a clipped cosine cannot reach 1e-12 at aligned
  neurons); finished starts drop out of the batch;
* ``plain``: the same protocol on this package's kernels (``landscape.descend``
  to 1e-12): the gain of the kernels alone;
* ``ours``: ``landscape.descend_and_polish``: descent until the Hessian is
  positive definite near a coarse tolerance, then batched Newton to 1e-12,
  with saddle push-off.

Agreement: the fraction of starts whose final loss matches the protocol's
within 1e-9 (same basin level).

Run:  python benchmarks/protocol.py            (k = 8, 12, 16, 20; 500 starts each)
      python benchmarks/protocol.py --quick    (k = 6, 8; 100 starts)
Writes benchmarks/results/protocol.json (or protocol-quick.json).
"""

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)       # record.py, also when run from another folder
import landscape as ls  # noqa: E402
from record import begin, write_results  # noqa: E402  (benchmarks/record.py: the shared writer)

GTOL = 1e-12
AGREE = 1e-9


def protocol_grad(W, V):
    """grad F for a batch W (B, k, d), teacher V (n, d): the textbook closed form.

    grad_i = sum_j [(pi - t_ij) u_j + |u_j| sin t_ij wbar_i] c_j / (2 pi) with
    U = [W; V], c = [1, -1], t_ij = atan2(|u_j - (u_j . wbar_i) wbar_i|, u_j . wbar_i).
    """
    B, k, d = W.shape
    U = np.concatenate([W, np.broadcast_to(V, (B,) + V.shape)], axis=1)
    c = np.concatenate([np.ones(k), -np.ones(V.shape[0])])
    nW = np.linalg.norm(W, axis=2)
    nU = np.linalg.norm(U, axis=2)
    Wbar = W / nW[..., None]
    dot = np.einsum("bid,bjd->bij", Wbar, U)
    perp = U[:, None, :, :] - dot[..., None] * Wbar[:, :, None, :]
    theta = np.arctan2(np.linalg.norm(perp, axis=3), dot)
    sin = np.sin(theta)
    G = np.einsum("bij,bjd->bid", (np.pi - theta) * c, U)
    G += np.einsum("bij,bj->bi", sin, nU * c)[..., None] * Wbar
    return G / (2 * np.pi)


def protocol_loss(W, V):
    """F for a batch W (B, k, d): the arc-cosine kernel sum, angles as in protocol_grad."""
    B, k, d = W.shape
    U = np.concatenate([W, np.broadcast_to(V, (B,) + V.shape)], axis=1)
    c = np.concatenate([np.ones(k), -np.ones(V.shape[0])])
    nU = np.linalg.norm(U, axis=2)
    Ubar = U / nU[..., None]
    dot = np.clip(np.einsum("bid,bjd->bij", Ubar, Ubar), -1, 1)
    perp = Ubar[:, None, :, :] - dot[..., None] * Ubar[:, :, None, :]
    theta = np.arctan2(np.linalg.norm(perp, axis=3), dot)
    K = nU[:, :, None] * nU[:, None, :] * (np.sin(theta) + (np.pi - theta) * dot) / (2 * np.pi)
    return 0.5 * np.einsum("bi,bij,bj->b", np.broadcast_to(c, (B, len(c))), K,
                           np.broadcast_to(c, (B, len(c))))


def protocol(X0, k, lr, maxiter):
    """Plain batched GD until |grad F| <= 1e-12; finished starts drop out."""
    V = np.eye(k)
    W = X0.reshape(len(X0), k, k).copy()
    nit = np.full(len(X0), maxiter)
    active = np.arange(len(X0))
    Wa = W.copy()
    for it in range(maxiter + 1):
        G = protocol_grad(Wa, V)
        done = np.linalg.norm(G.reshape(len(Wa), -1), axis=1) <= GTOL
        if it == maxiter:
            done[:] = True
        if done.any():
            W[active[done]] = Wa[done]
            nit[active[done]] = it
            active, Wa, G = active[~done], Wa[~done], G[~done]
            if not active.size:
                break
        Wa -= lr * G
    return protocol_loss(W, V), nit


def run(k, n_starts, seed, maxiter):
    model = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    X0 = model.sample_init(n_starts, rng=seed)          # N(0, 1/k) entries
    lr = 5.0 / k
    # the protocol's gradient is the package's gradient
    probe = X0[:5].reshape(5, k, k)
    np.testing.assert_allclose(protocol_grad(probe, np.eye(k)).reshape(5, -1),
                               model.grad_batch(X0[:5]), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(protocol_loss(probe, np.eye(k)), model.loss_batch(X0[:5]),
                               rtol=1e-10, atol=1e-13)
    t = time.perf_counter()
    proto_loss, proto_nit = protocol(X0, k, lr, maxiter)
    t_proto = time.perf_counter() - t
    t = time.perf_counter()
    plain = ls.descend(model, X0, lr=lr, gtol=GTOL, maxiter=maxiter)
    t_plain = time.perf_counter() - t
    t = time.perf_counter()
    ours = ls.descend_and_polish(model, X0, lr=lr, gtol=GTOL, maxiter=maxiter)
    t_ours = time.perf_counter() - t
    both = (proto_nit < maxiter) & ours.success
    agree = np.abs(proto_loss - ours.loss) <= AGREE
    return {
        "k": k, "n_starts": n_starts, "lr": lr,
        "protocol_seconds": t_proto, "plain_seconds": t_plain, "ours_seconds": t_ours,
        "speedup": t_proto / t_ours, "speedup_vs_plain": t_plain / t_ours,
        "protocol_converged": int(np.sum(proto_nit < maxiter)),
        "plain_agreement": float(np.mean(np.abs(plain.loss - proto_loss) <= AGREE)),
        "plain_converged": int(plain.success.sum()), "ours_converged": int(ours.success.sum()),
        "agreement": float(agree[both].mean()) if both.any() else float("nan"),
        "disagreeing_starts": np.flatnonzero(both & ~agree).tolist(),
        "plain_iterations_total": int(plain.nit.sum()), "plain_iterations_max": int(plain.nit.max()),
        "ours_descent_iterations_total": int(ours.nit_descent.sum()),
        "ours_newton_iterations_total": int(ours.nit_polish.sum()),
        "ours_pushes": int(ours.pushes.sum()),
        "max_grad_norm_ours": float(np.nanmax(ours.grad_norm)),
        "spurious_fraction_plain": float(np.mean(plain.loss[plain.success] > 1e-9)),
        "spurious_fraction_ours": float(np.mean(ours.loss[ours.success] > 1e-9)),
    }


def main(argv=None):
    started = begin()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ks", type=int, nargs="*")
    parser.add_argument("--starts", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--maxiter", type=int, default=500_000)
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    ks = args.ks or ([6, 8] if args.quick else [8, 12, 16, 20])
    starts = args.starts or (100 if args.quick else 500)
    here = os.path.dirname(os.path.abspath(__file__))
    out = args.output or os.path.join(here, "results",
                                      "protocol-quick.json" if args.quick else "protocol.json")
    rows = []
    print(f"{'k':>3} {'protocol (s)':>13} {'plain (s)':>10} {'ours (s)':>9} {'speedup':>8} "
          f"{'vs plain':>9} {'agree':>7} {'spurious':>9} {'pushes':>7}")
    for k in ks:
        r = run(k, starts, args.seed, args.maxiter)
        rows.append(r)
        print(f"{k:>3} {r['protocol_seconds']:>13.2f} {r['plain_seconds']:>10.2f} "
              f"{r['ours_seconds']:>9.2f} {r['speedup']:>7.1f}x {r['speedup_vs_plain']:>8.1f}x "
              f"{r['agreement']:>7.1%} {r['spurious_fraction_ours']:>9.1%} "
              f"{r['ours_pushes']:>7d}", flush=True)
    total = {key: sum(r[key + "_seconds"] for r in rows) for key in ("protocol", "plain", "ours")}
    summary = {**{key + "_seconds": v for key, v in total.items()},
               "speedup": total["protocol"] / total["ours"],
               "speedup_vs_plain": total["plain"] / total["ours"],
               "min_agreement": float(min(r["agreement"] for r in rows)),
               "targets": {"speedup": ">= 5x", "agreement": ">= 99%"}}
    print(f"all {total['protocol']:>13.2f} {total['plain']:>10.2f} {total['ours']:>9.2f} "
          f"{summary['speedup']:>7.1f}x {summary['speedup_vs_plain']:>8.1f}x  "
          f"(target >= 5x vs the protocol); agreement >= {summary['min_agreement']:.1%} "
          f"(target >= 99%)")
    write_results(out, "protocol", "python benchmarks/protocol.py" + (" --quick" if args.quick else ""),
                  {"rows": rows, "summary": summary}, started=started)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
