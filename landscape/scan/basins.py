"""The last step of a scan: distinct points, basins and saddle -> minimum edges, stored.

When every start is done, the end points and visited saddles are deduplicated
(:class:`~landscape.scan.Orbits`), each saddle is descended from along +- its
most negative curvature direction (or from its witness, for a non-strict
saddle), with ``connect=True`` every distinct minimum is connected to the lowest
one through index-1 saddles (:func:`~landscape.connect`), and the distinct points
(numbered by increasing loss), the start -> point assignment and the edges are
written to the store in one transaction.
"""

from collections import Counter

import numpy as np

from ..classify import classify
from ..connect import connect
from ..critical import descend_and_polish
from ..models.symmetry import aligning_element
from ..spectrum import min_curvature
from ..graph import MINIMUM_KINDS, SADDLE_KINDS
from .dedup import Orbits
from .result import CRITICAL_KINDS

__all__ = ["finalize"]

# saddles found by descending off saddles are descended from in turn, this many rounds at most
_SADDLE_ROUNDS = 5


def finalize(model, store, settings):
    """Deduplicate the stored ends and visits, descend off every saddle, and store the
    points, the assignment and the edges (marking the store finished for its n_starts).

    Parameters
    ----------
    model : Model
    store : Store
        Holding every start of the scan, open for writing.
    settings : dict
        The scan's settings (``loss_rtol``, ``xtol``, ``saddle_step``, ``lr``,
        ``gtol``, ``coarse_gtol``, ``maxiter``, ``n_starts``).
    """
    rec = store.read_outcomes(model.n_params)
    orbits = Orbits(model, settings["loss_rtol"], settings["xtol"])
    ended = np.full(len(rec.start), -1)
    for i, (x, c) in enumerate(zip(rec.x, rec.classification)):
        if c.kind in CRITICAL_KINDS:
            ended[i] = orbits.add(x, c, "descent", rec.start[i])
    visited = set()
    for s, x, c in zip(rec.visit_start, rec.visit_x, rec.visit_classification):
        visited.add((int(s), orbits.add(x, c, "visit")))
    loops = {}
    descents = _descend_off_saddles(model, orbits, settings, loops)
    if settings.get("connect"):
        descents.update(_connect_minima(model, orbits, settings, loops))
    visits = Counter()
    for s, q in visited:
        target = ended[int(np.searchsorted(rec.start, s))]
        if target >= 0 and target != q:
            visits[(q, target)] += 1
    # number the points by increasing loss (ties: order of discovery)
    order = sorted(range(len(orbits)), key=lambda q: (orbits.loss[q], q))
    new = {q: i for i, q in enumerate(order)}
    counts = Counter(int(e) for e in ended if e >= 0)
    points = [dict(id=new[q], x=orbits.x[q], classification=orbits.classification[q],
                   basin_count=counts.get(q, 0), first_start=orbits.first_start[q],
                   found_by=orbits.found_by[q], dimension=orbits.dimension[q],
                   n_members=len(orbits.members[q])) for q in order]
    assignment = [(int(s), new[int(e)] if e >= 0 else -1) for s, e in zip(rec.start, ended)]
    edges = sorted((new[a], new[b], visits.get((a, b), 0), descents.get((a, b), 0))
                   for a, b in set(visits) | set(descents)
                   if (orbits.kind(a) in SADDLE_KINDS and orbits.kind(b) in MINIMUM_KINDS)
                   or (a == b and orbits.kind(a) in MINIMUM_KINDS))
    store.write_points(points, assignment, edges,
                       finalized={"n_starts": int(settings["n_starts"])},
                       loops={new[q]: (new[sid], g) for q, (sid, g) in loops.items()})


def _add_loop(loops, orbits, minimum, saddle, element):
    """Keep, for each minimum, its lowest self-loop saddle (ties: the first found)."""
    old = loops.get(minimum)
    if old is None or orbits.loss[saddle] < orbits.loss[old[0]]:
        loops[minimum] = (saddle, element)


def _connect_minima(model, orbits, settings, loops):
    """Counter of (saddle, minimum) over the joins :func:`~landscape.connect` finds from
    every distinct minimum to the lowest one (adding the saddles and minima it meets), and
    of (minimum, minimum) for a saddle that joins a minimum to a symmetric copy of itself
    (a self-loop of the graph; the saddle's own edge to it counts both sides; its group
    element goes into `loops`)."""
    edges = Counter()
    found = [q for q in range(len(orbits)) if orbits.kind(q) in MINIMUM_KINDS]
    if len(found) < 2:
        return edges
    lowest = min(found, key=lambda q: (orbits.loss[q], q))
    for q in found:
        if q == lowest:
            continue
        c = connect(model, orbits.x[q], orbits.x[lowest], lr=settings["lr"],
                    gtol=settings["gtol"], saddle_step=settings["saddle_step"],
                    loss_rtol=settings["loss_rtol"], xtol=settings["xtol"])
        ids = {}
        for i, x in enumerate(c.minima):
            ci = classify(model, x, gtol=settings["gtol"])
            if ci.is_minimum:
                ids[i] = orbits.add(x, ci, "connect")
        for p, (a, b), g in zip(c.saddles, c.joins, c.loop_elements):
            if not p.success or a < 0 or b < 0 or a not in ids or b not in ids:
                continue
            sid = orbits.add(p.x, p.classification, "connect")
            edges[(sid, ids[a])] += 1
            edges[(sid, ids[b])] += 1
            if ids[a] == ids[b]:
                edges[(ids[a], ids[a])] += 1
                if g is not None:
                    _add_loop(loops, orbits, ids[a], sid, g)
    return edges


def _descend_off_saddles(model, orbits, settings, loops):
    """Counter of (saddle, point) over the descents off every saddle of `orbits` (adding the
    points they reach), and of (minimum, minimum) for a strict saddle whose two sides
    descend to symmetric copies of one minimum (a self-loop; its group element, mapping
    the -v side's minimum onto the +v side's, goes into `loops`)."""
    step = settings["saddle_step"]
    descents = Counter()
    done = set()
    for _ in range(_SADDLE_ROUNDS):
        todo = [q for q in range(len(orbits)) if orbits.kind(q) in SADDLE_KINDS and q not in done]
        if not todo:
            break
        done.update(todo)
        X, owner = [], []
        for q in todo:
            x, c = orbits.x[q], orbits.classification[q]
            if c.kind == "strict-saddle":
                _, v = min_curvature(model, x)
                X += [x + step * v, x - step * v]
                owner += [q, q]
            elif c.witness is not None:
                X.append(c.witness)
                owner.append(q)
        if not X:
            continue
        with np.errstate(over="ignore", invalid="ignore"):    # divergence is data
            p = descend_and_polish(model, np.array(X), lr=settings["lr"], gtol=settings["gtol"],
                                   coarse_gtol=settings["coarse_gtol"],
                                   maxiter=settings["maxiter"])
        sides = {}
        for i, (q, x, good) in enumerate(zip(owner, p.x, p.success)):
            if not good:
                continue
            c = classify(model, x, gtol=settings["gtol"])
            if c.kind in CRITICAL_KINDS:
                target = orbits.add(x, c, "saddle-descent")
                if target != q:
                    descents[(q, target)] += 1
                if c.kind in MINIMUM_KINDS and orbits.classification[q].kind == "strict-saddle":
                    sides.setdefault(q, []).append((i, target))
        for q, ends in sides.items():
            if len(ends) == 2 and ends[0][1] == ends[1][1]:     # rows i (+v) and i + 1 (-v)
                target = ends[0][1]
                descents[(target, target)] += 1
                g = aligning_element(model, p.x[ends[0][0]], p.x[ends[1][0]])
                _add_loop(loops, orbits, target, q, g)
    return descents
