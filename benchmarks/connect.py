"""connect and find_saddle on the V = I_8, k = 8 pair, on one core (issue 19: < 30 s).

The spurious minimum of Safran, Yehudai & Shamir (COLT 2021) for V = I_8, k = 8 (F =
0.0215080372, polished from its pattern) is connected to a permuted copy of the global
minimum W = I with ``landscape.connect`` (alignment, string, saddle refinement, descents
off both sides), with BLAS limited to one thread.  Each timing is the median of
``--repeats`` runs; the first (cold: numba compilation, caches) is reported apart.  Also
timed: ``find_saddle`` from a perturbed copy of the saddle, dense and Lanczos.

At 10^3 - 10^4 parameters (``--large``, one run each): the index-1 saddle family of the
k = 8 saddle (isotropy Delta(S_6 x S_1 x S_1)) and the spurious-minimum family are followed
to k = 30, 50, 100 by ``ls.continue_family`` (setup, not timed); then ``find_saddle`` at
k = 100 (10,000 parameters, Lanczos) from the saddle perturbed by 1e-3, and ``connect`` at
k = 30 and 50 from the spurious minimum to (a) the copy of the global minimum closest to it
(the default alignment) and (b) the copy its saddle's other side descends to
(``align=False``).  The certificate of the k = 8 saddle (``ls.certify``) is recorded too.

``--search`` (issue 19: is pele's F = 0.022159 another saddle?): ``find_saddle`` from 300
perturbations (noise 1e-3 ... 0.2) of the k = 8 string's images around its maximum, the distinct
index-1 losses found and how many fall in [0.0221585, 0.0221595); ``connect`` from permuted copies
with 8 ... 32 images; and the loss of our saddle evaluated in ball arithmetic (python-flint) at
its float point.

Run:  OPENBLAS_NUM_THREADS=1 nice -n 19 python benchmarks/connect.py [--repeats 5] [--large]
          [--search]
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


def identity_model(k):
    return ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)


def follow(x8, ks):
    """The points of the family of x8 (a k = 8 critical point) at each k of ks (by k)."""
    from landscape.isotropy import Isotropy

    f = ls.continue_family(identity_model, x8, [8] + list(ks), spectrum=False)
    out = {}
    for k, sizes, values in zip(f.k, f.sizes, f.values):
        m = identity_model(int(k))
        F = ls.fixed_point_subspace(m, Isotropy.diagonal(m, list(sizes)))
        out[int(k)] = F.point(values * np.sqrt(F.sizes))
    return out


def large_rows(saddle8, spurious8):
    """find_saddle at k = 100 and connect at k = 30, 50 (one run each)."""
    from landscape.spectrum import min_curvature

    # the saddle family is followed in small steps (big jumps land on the minimum family)
    steps = [9, 10, 11, 12, 14, 16, 18, 20, 23, 26, 30, 35, 40, 45, 50, 60, 70, 80, 90, 100]
    saddles = follow(saddle8, steps)
    minima = follow(spurious8, [30, 50])
    rows = []
    m = identity_model(100)
    x0 = saddles[100] + 1e-3 * np.random.default_rng(5).standard_normal(m.n_params)
    t = time.perf_counter()
    p = ls.find_saddle(m, x0, index=1, method="lanczos")
    rows.append(dict(job="find_saddle k=100 (lanczos, 10,000 parameters)",
                     median_seconds=time.perf_counter() - t, success=p.success, nit=p.nit,
                     grad_norm=p.grad_norm, loss=p.loss))
    for k in (30, 50):
        m = identity_model(k)
        xs, sad = minima[k], saddles[k]
        _, v = min_curvature(m, sad)
        d = ls.descend_and_polish(m, np.vstack([sad + 1e-3 * v, sad - 1e-3 * v]), lr=5 / k)
        x_side = d.x[int(np.argmin(d.loss))]                # the saddle's global-minimum side
        perm = np.random.default_rng(4).permutation(k)
        for how, xb, kw in (("closest copy", m.flatten(np.eye(k)[perm][:, perm]), {}),
                            ("saddle's copy, align=False", x_side, dict(align=False))):
            t = time.perf_counter()
            c = ls.connect(m, xs, xb, **kw)
            seconds = time.perf_counter() - t
            s = c.highest_saddle
            rows.append(dict(job=f"connect k={k} spurious -> global ({how})",
                             median_seconds=seconds, n_params=m.n_params, success=c.success,
                             barrier=c.barrier, saddle_loss=None if s is None else s.loss,
                             family_saddle_loss=float(m.loss(sad)),
                             peak_above_x_a=float(c.path.peak_loss - m.loss(xs)),
                             string_nit=c.path.nit, message=c.message))
    return rows


def arb_loss(W, V):
    """The teacher-student loss at (W, V) in ball arithmetic (closed form, 200 bits)."""
    from flint import arb, ctx

    ctx.prec = 200

    def kappa(u, w):
        u, w = [arb(float(t)) for t in u], [arb(float(t)) for t in w]
        nu, nw = sum(t * t for t in u).sqrt(), sum(t * t for t in w).sqrt()
        dot = sum(p * q for p, q in zip(u, w))
        gap = nu * nu * nw * nw - dot * dot
        cross = gap.sqrt() if gap > 0 else arb(0)            # |u| |w| sin(theta)
        return (cross + (arb.pi() - arb.atan2(cross, dot)) * dot) / (2 * arb.pi())

    n = range(len(W))
    return sum((kappa(W[i], W[j]) / 2 + kappa(V[i], V[j]) / 2 - kappa(W[i], V[j])
                for i in n for j in n), arb(0))


def search_rows(m, xs, c):
    """Other index-1 saddles near the k = 8 path; our saddle's loss in ball arithmetic."""
    s = c.saddles[0]
    path, rng = c.path, np.random.default_rng(7)
    top = int(np.argmax(path.loss))
    losses, t = [], time.perf_counter()
    for trial in range(300):
        k = int(np.clip(top + rng.integers(-2, 3), 1, len(path.loss) - 2))
        x0 = path.x[k] + (1e-3, 1e-2, 3e-2, 1e-1, 2e-1)[trial % 5] * rng.standard_normal(m.n_params)
        p = ls.find_saddle(m, x0, index=1, maxiter=300)
        if p.success:
            losses.append(p.loss)
    rows = [dict(job="find_saddle from 300 perturbed k=8 string maxima",
                 median_seconds=time.perf_counter() - t, successes=len(losses),
                 distinct_losses=np.unique(np.round(losses, 10)).tolist(),
                 in_pele_window=int(np.sum((np.array(losses) >= 0.0221585)
                                           & (np.array(losses) < 0.0221595))))]
    found = set()
    for images in (8, 12, 16, 24, 32):
        for seed in range(3):
            g = np.random.default_rng(100 + seed)
            p, q = g.permutation(8), g.permutation(8)
            d = ls.connect(m, m.flatten(m.unflatten(xs)[p][:, p]),
                           m.flatten(np.eye(8)[q][:, q]), rng=seed, images=images)
            found |= {round(x.loss, 12) for x in d.saddles if x.success}
    rows.append(dict(job="connect k=8 from permuted copies, 8...32 images, 3 seeds",
                     saddle_losses=sorted(found)))
    L = arb_loss(m.unflatten(s.x), np.eye(8))
    rows.append(dict(job="k=8 saddle loss in ball arithmetic at its float point",
                     loss_mid=float(L.mid()), loss_radius=float(L.rad()), loss_float=s.loss,
                     hessian_norm=float(np.linalg.norm(m.hess(s.x), 2))))
    return rows


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
    parser.add_argument("--large", action="store_true",
                        help="also find_saddle at k = 100 and connect at k = 30, 50")
    parser.add_argument("--search", action="store_true",
                        help="also look for other k = 8 saddles near pele's F = 0.022159")
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
        cert, [cert_s] = timed(lambda: ls.certify(m, s.x), 1)
        rows.append(dict(job="certify the k=8 saddle", median_seconds=cert_s,
                         certified=cert.certified, kind=cert.kind, index=cert.index,
                         distance_bound=cert.distance_bound, radius=cert.radius,
                         lambda_min_lower=cert.lambda_min_lower,
                         lambda_min_upper=cert.lambda_min_upper, message=cert.message))
        if args.search:
            rows += search_rows(m, xs, c)
        if args.large:
            rows += large_rows(s.x, xs)
    for r in rows:
        print(f"{r['job']:34s} " + (f"median {r['median_seconds']:.3f} s  "
                                    if "median_seconds" in r else "")
              + (f"(cold {r['cold_seconds']:.2f} s)" if "cold_seconds" in r else ""))
    out = os.path.join(HERE, "results", "connect.json")
    command = "OPENBLAS_NUM_THREADS=1 nice -n 19 python benchmarks/connect.py" + (
        " --large" if args.large else "") + (" --search" if args.search else "")
    write_results(out, "connect", command, {"rows": rows}, started=started)
    print("wrote", out)


if __name__ == "__main__":
    main()
