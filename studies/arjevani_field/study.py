"""Arjevani & Field (NeurIPS 2020, 2021): spurious families followed in k, exact Hessian spectra.

Scans of V = I_k at small k find the spurious minima; each with a diagonal isotropy group is
carried to large k by ``ls.continue_family`` (Newton in Fix(G), the full spectrum with
multiplicities from the isotypic blocks), beside the global minimum W = I.  Measured: loss and
λ_min against k (log–log fits), how the k² eigenvalues split into ones that converge and ones
that grow with k, the distance between spurious and global spectra, and where a family stops
being a minimum.  Run: ``landscape study arjevani_field [--quick]``.
"""

import dataclasses
import time
from pathlib import Path

import numpy as np

import landscape as ls
from landscape.report import (Section, Table, json_ready, new_figure, save_figure, write_json,
                              write_page)
from landscape.studies import cached, read_config

TITLE = ("Arjevani & Field 2020/2021: spurious families followed to large k by symmetry, "
         "exact Hessian spectra from isotypic blocks")
PAPER = ("Y. Arjevani, M. Field, \"Analytic characterization of the Hessian in shallow ReLU "
         "models: a tale of symmetry\", NeurIPS 2020; \"Analytic study of families of spurious "
         "minima in two-layer ReLU neural networks: a tale of symmetry II\", NeurIPS 2021")
CONFIG_FILE = Path(__file__).with_name("config.toml")
GROWS = 0.5          # a block eigenvalue whose log-log slope in k exceeds this grows with k

__all__ = ["TITLE", "PAPER", "Config", "teacher_student", "find_families", "trajectories",
           "spectral_distance", "run"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """``[common]`` + ``[full]`` or ``[quick]`` of ``config.toml`` (documented there)."""

    mode: str
    seed: int
    fit_from: int
    seed_ks: tuple
    starts: int
    ks: tuple

    def __post_init__(self):
        ks = tuple(int(k) for k in self.ks)
        if len(ks) < 3 or list(ks) != sorted(set(ks)) or min(ks) < max(self.seed_ks):
            raise ValueError(f"ks must be >= 3 increasing ints from max(seed_ks) on, got "
                             f"{self.ks!r}; fix [{self.mode}] in {CONFIG_FILE}")
        object.__setattr__(self, "ks", ks)


def teacher_student(k):
    return ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)


def _spurious(k, config):
    s = ls.scan(teacher_student(k), config.starts, rng=config.seed, progress=False)
    seeds = []
    for p in s.points:
        c = p.classification
        if p.kind != "strict-minimum" or c.is_global:
            continue
        try:
            ls.diagonal_type(teacher_student(k), p.x)
        except ValueError:
            continue
        seeds.append({"x": p.x, "isotropy": c.isotropy})
    return {"points": len(s.points), "spurious_fraction": s.spurious_fraction, "seeds": seeds}


def find_families(config, out_dir):
    """Spurious minima of the seed-k scans with a diagonal isotropy group, one per family:
    [(seed k, x, isotropy name)], and the scans' point counts (each scan cached in out_dir)."""
    found, counts = [], {}
    for k in config.seed_ks:
        r, _, seconds = cached(out_dir, f"scan-{k}", {"k": k, "starts": config.starts,
                                                        "seed": config.seed, "version": 1},
                               lambda k=k: _spurious(k, config))
        counts[k] = {"points": r["points"], "spurious_fraction": r["spurious_fraction"],
                     "seconds": seconds}
        found += [(k, np.array(s["x"]), s["isotropy"]) for s in r["seeds"]]
    return found, counts


def _follow(out_dir, name, x, ks):
    """ls.continue_family from x through ks, cached in out_dir under `name`."""
    r, _, _ = cached(out_dir, name, {"x": x, "ks": list(ks), "version": 1},
                     lambda: ls.continue_family(teacher_student, x, ks).to_dict())
    return ls.Family.from_dict(r)


def trajectories(fam):
    """Each block eigenvalue followed in k (same representation, same rank within it):
    {(irrep, rank): (values over k, multiplicities over k)}."""
    out = {}
    for lam, mult, irreps in zip(fam.block_eigenvalues, fam.multiplicities, fam.irreps):
        seen = {}
        for v, m, r in zip(lam, mult, irreps):          # ascending, so ranks are stable
            key = (r, seen.setdefault(r, 0))
            seen[r] += 1
            out.setdefault(key, ([], []))
            out[key][0].append(v)
            out[key][1].append(m)
    return {k: (np.array(v), np.array(m)) for k, (v, m) in out.items()}


def spectral_distance(a, b):
    """Mean |λ_i(a) - λ_i(b)| over the sorted spectra (the 1-Wasserstein distance of the two
    eigenvalue distributions), from (block eigenvalues, multiplicities) pairs."""
    return float(np.mean(np.abs(np.repeat(*a) - np.repeat(*b))))


def _fit(k, y, k0):
    sel = np.asarray(k) >= k0
    y = np.asarray(y, dtype=float)
    if np.count_nonzero(sel) < 2 or np.any(y[sel] <= 0):     # e.g. lambda_min of saddles
        return {"exponent": np.nan, "stderr": np.nan, "prefactor": np.nan, "r2": np.nan}
    f = ls.power_law_fit(np.asarray(k)[sel], np.asarray(y)[sel])
    return {"exponent": f.exponent, "stderr": f.stderr, "prefactor": f.prefactor, "r2": f.r2}


def _summarise(fam, glob, config):
    k = fam.k
    traj = trajectories(fam)
    rows = []
    for (irrep, rank), (vals, mults) in sorted(traj.items()):
        f = _fit(k, np.abs(vals), config.fit_from)
        rows.append({"irrep": irrep, "rank": rank, "value_at_kmax": vals[-1],
                     "multiplicity_at_kmax": int(mults[-1]), "exponent": f["exponent"],
                     "grows": bool(f["exponent"] > GROWS)})
    growing = sum(r["multiplicity_at_kmax"] for r in rows if r["grows"])
    dist = [spectral_distance((fam.block_eigenvalues[i], fam.multiplicities[i]),
                              (glob.block_eigenvalues[i], glob.multiplicities[i]))
            for i in range(len(k))]
    stops = [int(kk) for kk, n in zip(k, fam.n_negative) if n > 0]
    return {
        "isotropy": fam.isotropy[-1], "k": k, "loss": fam.loss, "lambda_min": fam.lambda_min,
        "index": fam.n_negative, "grad_norm": fam.grad_norm, "message": fam.message,
        "loss_fit": _fit(k, fam.loss, config.fit_from),
        "lambda_min_fit": _fit(k, fam.lambda_min, config.fit_from),
        "blocks": rows, "n_block_eigenvalues": len(rows),
        "growing_eigenvalues_at_kmax": growing, "converging_eigenvalues_at_kmax":
            int(k[-1]) ** 2 - growing,
        "distance_to_global": dist, "distance_fit": _fit(k, dist, config.fit_from),
        "first_k_not_minimum": stops[0] if stops else None,
        "seconds_newton": float(fam.seconds_newton.sum()),
        "seconds_spectrum": float(fam.seconds_spectrum.sum()),
    }


def run(out_dir, *, quick=False, progress=True):
    """Run the study; write ``results.json``, the figures and ``index.html``; return the results."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = Config(**read_config(CONFIG_FILE, quick))
    seeds, scans = find_families(config, out_dir)
    glob = _follow(out_dir, "global", np.eye(config.ks[0]).ravel(), config.ks)
    families, seen, lost = [], [], []
    for i, (k0, x, name) in enumerate(seeds):
        # to the first k of the grid, where seeds of one family (found at several k) meet
        near = _follow(out_dir, f"approach-{i}", x, list(range(k0, config.ks[0], 2))
                       + [config.ks[0]]) if k0 < config.ks[0] else None
        if near is not None and not near.success_all:
            lost.append({"seed_k": k0, "seed_isotropy": name, "message": near.message})
            continue
        x1 = x if near is None else near.point(len(near.k) - 1, teacher_student(config.ks[0]))
        loss = teacher_student(config.ks[0]).loss(x1)
        if any(abs(loss - s) <= 1e-9 * max(1.0, loss) for s in seen):
            continue                                    # a family already followed
        seen.append(loss)
        fam = _follow(out_dir, f"family-{i}", x1, config.ks)
        if not fam.success_all:
            lost.append({"seed_k": k0, "seed_isotropy": name, "message": fam.message})
        if len(fam.k) == len(config.ks):
            families.append({"seed_k": k0, "seed_isotropy": name, **_summarise(fam, glob, config)})
    results = json_ready({
        "study": "arjevani_field", "title": TITLE, "paper": PAPER, "quick": bool(quick),
        "config": dataclasses.asdict(config), "scans": {str(k): v for k, v in scans.items()},
        "global": {"k": glob.k, "lambda_min": glob.lambda_min, "loss": glob.loss,
                   "blocks": [{"irrep": r, "value_at_kmax": v, "multiplicity_at_kmax": m}
                              for v, m, r in zip(glob.block_eigenvalues[-1],
                                                 glob.multiplicities[-1], glob.irreps[-1])]},
        "families": families, "lost": lost, "wall_seconds": time.perf_counter() - t0})
    figs = _figures(out_dir, results)
    write_json(out_dir / "results.json", results)
    write_page(out_dir, title="Arjevani & Field: spurious families and their spectra by symmetry",
               subtitle=PAPER + (" — quick mode" if quick else ""), summary=_summary(results),
               sections=_sections(results, figs))
    return results


# ---- report --------------------------------------------------------------------------------

def _figures(out_dir, r):
    figs = {}
    fig, axes = new_figure(10.0, 4.0, ncols=2)
    for f in r["families"]:
        axes[0].loglog(f["k"], f["loss"], "o-", label=f"{f['isotropy']} family")
        axes[1].loglog(f["k"], f["lambda_min"], "o-", label=f"{f['isotropy']} family")
    axes[1].loglog(r["global"]["k"], r["global"]["lambda_min"], "k--", label="global W = I")
    axes[0].set(xlabel="k", ylabel="loss F(W)", title="Loss of the spurious minima")
    axes[1].set(xlabel="k", ylabel="λ_min", title="Smallest Hessian eigenvalue")
    for ax in axes:
        ax.legend(fontsize=8)
    figs["loss"] = save_figure(fig, out_dir, "loss.png", caption="Loss and λ_min against k, "
                               "log–log (fits in the tables).")
    fig, ax = new_figure(6.4, 4.2)
    for f in r["families"][:1]:
        for irrep in sorted({b["irrep"] for b in f["blocks"]}):
            bs = [b for b in f["blocks"] if b["irrep"] == irrep]
            ax.loglog([b["multiplicity_at_kmax"] for b in bs],
                      [abs(b["value_at_kmax"]) for b in bs], "o", label=irrep)
        ax.set(xlabel="multiplicity (dimension of the representation)",
               ylabel="|block eigenvalue| at k_max",
               title=f"{f['isotropy']}: the {f['n_block_eigenvalues']} block eigenvalues")
        ax.legend(fontsize=8)
    figs["blocks"] = save_figure(fig, out_dir, "blocks.png", caption="Block eigenvalues at the "
                                 "largest k (each stands for its multiplicity).")
    fig, ax = new_figure(6.4, 4.0)
    for f in r["families"]:
        ax.loglog(f["k"], f["distance_to_global"], "o-", label=f["isotropy"])
    kk = np.array(r["config"]["ks"], dtype=float)
    if r["families"]:
        d0 = r["families"][0]["distance_to_global"][0]
        ax.loglog(kk, d0 * (kk / kk[0]) ** -0.5, "k:", label="∝ k^-1/2")
    ax.set(xlabel="k", ylabel="mean |λ_i(spurious) − λ_i(global)|",
           title="Spurious vs global spectra")
    ax.legend(fontsize=8)
    figs["distance"] = save_figure(fig, out_dir, "distance.png", caption="Distance between the "
                                   "sorted spectra of the spurious and global minima.")
    return figs


def _pm(fit):
    if fit["exponent"] is None:                   # NaN after json_ready
        return "—"
    return f"{fit['exponent']:.3f} ± {fit['stderr']:.3f}"


def _summary(r):
    out = [("mode", "quick" if r["quick"] else "full"),
           ("k", f"{r['config']['ks'][0]} … {r['config']['ks'][-1]}"),
           ("families followed", len(r["families"]))]
    for f in r["families"]:
        out.append((f"{f['isotropy']}: loss ∝ k^", _pm(f["loss_fit"])))
    out.append(("wall time (s)", r["wall_seconds"]))
    return out


def _sections(r, figs):
    cfg = r["config"]
    setting = Section(title="Setting", id="setting", text=[
        f"V = I_k, k students. Scans (ls.scan, {cfg['starts']} starts, seed {cfg['seed']}) at "
        f"k = {', '.join(map(str, cfg['seed_ks']))} find the spurious minima; each one whose "
        "isotropy group is diagonal is followed by ls.continue_family to k = "
        f"{cfg['ks'][-1]}: Newton in the fixed-point subspace Fix(G) (5 block values for "
        "Δ(S_{k−1} × S_1)), never forming the k² × k² Hessian, and the exact spectrum with "
        "multiplicities from the isotypic blocks (ls.hessian_spectrum(..., isotropy=G)). "
        f"Power laws in k are fitted on k ≥ {cfg['fit_from']}."])
    tables = [Table(columns=["family", "seed k", "loss exponent", "λ_min exponent",
                             "distance-to-global exponent", "first k not a minimum",
                             "Newton s", "spectra s"],
                    rows=[[f["isotropy"], f["seed_k"], _pm(f["loss_fit"]),
                           _pm(f["lambda_min_fit"]), _pm(f["distance_fit"]),
                           f["first_k_not_minimum"] or "none", f["seconds_newton"],
                           f["seconds_spectrum"]] for f in r["families"]],
                    caption="Families followed in k")]
    if r["lost"]:
        tables.append(Table(columns=["seed k", "isotropy", "what happened"],
                            rows=[[f["seed_k"], f["seed_isotropy"], f["message"]]
                                  for f in r["lost"]],
                            caption="Spurious minima whose family was not followed to the end"))
    for f in r["families"]:
        tables.append(Table(
            columns=["representation", "rank", "eigenvalue at k_max", "multiplicity",
                     "exponent in k", "grows with k"],
            rows=[[b["irrep"], b["rank"], b["value_at_kmax"], b["multiplicity_at_kmax"],
                   b["exponent"], b["grows"]] for b in f["blocks"]],
            caption=f"{f['isotropy']} at k = {f['k'][-1]}: {f['growing_eigenvalues_at_kmax']} "
                    f"eigenvalues (with multiplicity) grow with k, "
                    f"{f['converging_eigenvalues_at_kmax']} do not"))
    families = Section(title="Families, their losses and spectra", id="families", text=[
        "Each block eigenvalue stands for as many eigenvalues as its representation's "
        "dimension; it is followed in k by representation and rank, and called growing when "
        f"its log–log slope exceeds {GROWS}."], tables=tables,
        figures=[figs["loss"], figs["blocks"], figs["distance"]])
    return [setting, families]
