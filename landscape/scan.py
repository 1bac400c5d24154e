"""Scans: many gradient-descent starts -> certified, classified, deduplicated critical points.

The pipeline of :func:`scan`, chunk by chunk of starts:

1. each start's initial point is drawn from its own seed, the child of one
   ``SeedSequence`` spawned by start index, so no result depends on chunking,
   workers or interruptions;
2. batched gradient descent with a record of near-critical plateaus down to
   ``visit_gtol``; then :func:`~landscape.descend_and_polish` to ``gtol``
   (gradient descent until Newton can take over, ending where plain GD would);
3. every end point is classified (a descent that ends at a saddle is a saddle);
4. plateaus (and stops beside a saddle) are polished by Newton and classified:
   the saddles each start visited.

Each chunk's results are committed to the store in one transaction.  When every
start is done, the end points and visited saddles are deduplicated modulo the
model's symmetry group and its critical manifolds (a loss window, then
:func:`~landscape.orbit_distance` of the merged-neuron keys, see :func:`deduplicate`:
a continuum of split neurons is one point),
each saddle is descended from along +- its most negative curvature direction
(or from its witness, for a non-strict saddle), and the distinct points,
basins and saddle -> minimum edges are stored and returned as a :class:`Scan`.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import numbers
import os
import time
import warnings
from collections import Counter

import numpy as np
import scipy.sparse.linalg
from tqdm import tqdm

from ._results import Result
from ._validation import as_batch, as_positive_float, as_positive_int
from .classify import Classification, classify
from .convexity import wilson_interval
from .critical import Status, descend, descend_and_polish, newton_batch
from .models.base import check_model
from .errors import DivergenceError, LandscapeWarning, StoreError
from .graph import basin_graph, write_graph
from .models.symmetry import orbit_distance, orbit_norms
from .spectrum import is_positive_definite, min_curvature
from .store import Chunk, Store

__all__ = ["scan", "Scan", "Point", "Outcomes", "deduplicate", "Distinct"]

_MINIMA = ("strict-minimum", "degenerate-minimum")
_SADDLES = ("strict-saddle", "non-strict-saddle")
_CRITICAL = _MINIMA + _SADDLES + ("degenerate", "maximum")
_PROBE_SEED = 20210901
_DEFAULT_CHUNK = 128
_TRACED_STARTS = 32          # starts whose descent curves are stored (for reports), besides
                             # every start that visited a saddle
_LR_PROBES = 8               # starts at which lambda_max is estimated (default lr, stable step)
# A scan raises DivergenceError as soon as more than this fraction of its n_starts have
# diverged (a step too large for the curvature); up to it, diverged starts are ends with
# status DIVERGED (no point), with a LandscapeWarning.
_DIVERGED_TOLERANCE = 0.01
# Scan.load(..., verify=True) accepts |grad L| <= _VERIFY_FACTOR * gtol.  Every stored critical
# point passed |grad L| <= gtol when it was written; evaluated again elsewhere (another BLAS
# kernel, thread count or CPU) only the rounding of the gradient changes, by about n_params * eps
# * |x|^2: measured, 1e-15 at W = I for k = 8 and 1e-14 for k = 50 (x moved by up to 4 ulps),
# and the points of the V = I_8 scan (|grad L| up to 0.36 gtol) move by under 3e-15 with 1 or 2
# BLAS threads.  So 10 gtol leaves a decade above the certified bound for rounding, while a stored
# x that is not the point the scan certified is off by orders of magnitude (|grad L| 0.175
# against gtol 1e-12 in issue 15).
_VERIFY_FACTOR = 10.0


# ---- results ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Point(Result):
    """A distinct critical point of a scan: one per symmetry orbit and critical manifold.

    Over-parameterised networks have continua of critical points (a neuron split
    into collinear parts, in any proportion): a scan lists each continuum once.

    Attributes
    ----------
    id : int
        Node of the basin graph; points are numbered by increasing loss.
    x : ndarray of shape (n_params,)
        A representative: of the members the scan reached, the one farthest from
        the non-smooth set (e.g. not the end of a continuum where a split-off
        neuron has shrunk to nothing).
    classification : Classification
    kind : str
    loss : float
    basin_count : int
        Starts whose descent ended at this point.
    basin_fraction : float
        ``basin_count / n_starts``.
    basin_interval : ndarray of shape (2,)
        95% Wilson interval of the basin fraction.
    first_start : int
        The first start that ended here, -1 if none (a visited saddle, or a
        point only reached by descending off a saddle).
    found_by : str
        ``"descent"`` (a start ended here), ``"visit"`` (a descent passed by)
        or ``"saddle-descent"`` (reached by descending off a saddle).
    dimension : int
        Dimension of the manifold of critical points the point stands for
        (the largest ``manifold_nullity`` among its members; 0: isolated).
    n_members : int
        Distinct points of that manifold (modulo symmetry) the scan reached.
    """

    id: int
    x: np.ndarray
    classification: Classification
    kind: str
    loss: float
    basin_count: int
    basin_fraction: float
    basin_interval: np.ndarray
    first_start: int
    found_by: str
    dimension: int = 0
    n_members: int = 1

    @property
    def is_minimum(self):
        return self.kind in _MINIMA

    @property
    def is_saddle(self):
        return self.kind in _SADDLES


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Outcomes(Result):
    """Where every start of a scan ended.

    Attributes
    ----------
    start : ndarray of shape (n_starts,)
    point : ndarray of shape (n_starts,)
        Id of the distinct point each start ended at; -1 where it ended at no
        critical point (not converged, diverged, or at a zero neuron).
    x : ndarray of shape (n_starts, n_params)
        The end points.
    loss, grad_norm : ndarray of shape (n_starts,)
    status : ndarray of shape (n_starts,)
        :class:`~landscape.Status` values of the descent.
    kind : list of str
        Classification of each end point.
    message : list of str
    """

    start: np.ndarray
    point: np.ndarray
    x: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    status: np.ndarray
    kind: list
    message: list


class Scan:
    """The result of :func:`scan`: distinct critical points, basins and the basin graph.

    Attributes
    ----------
    points : tuple of Point
        Distinct critical points by increasing loss (``points[i].id == i``).
    outcomes : Outcomes
        Per start: the point it ended at, its loss and status.
    edges : tuple of (source, target, visits, descents)
        Saddle -> minimum edges of the basin graph.
    settings : dict
        The scan's settings as stored (model fingerprint, seed, lr, tolerances).
    n_starts : int
    path : str or None
        The store file, None for an in-memory scan.
    wall_seconds : float
        Computing time of the scan, summed over the sessions that ran it.
    traces : dict
        ``{start: {"at", "loss", "grad_norm", "plateau_at", "plateau_loss",
        "plateau_grad_norm"}}``: the recorded descent curves of the first
        starts and of every start that visited a saddle (arrays), for reports.
    annotations : dict
        JSON data attached to the store (see :meth:`Store.set_annotation`).

    Notes
    -----
    Every start ends in one of three categories: at a global minimum, at a
    spurious minimum (:attr:`spurious_fraction`), or at no certified minimum
    (:attr:`unresolved_fraction`; :attr:`unresolved_ends` says where: saddles,
    undetermined ``degenerate`` points, starts that did not converge or
    diverged).  A spurious fraction of 0 means little when many ends are
    unresolved.
    """

    def __init__(self, *, points, outcomes, edges, settings, path=None, wall_seconds=0.0,
                 traces=None, annotations=None):
        self.points = tuple(points)
        self.outcomes = outcomes
        self.edges = tuple(tuple(e) for e in edges)
        self.settings = settings
        self.n_starts = len(outcomes.start)
        self.path = path
        self.wall_seconds = float(wall_seconds)
        self.traces = dict(traces or {})
        self.annotations = dict(annotations or {})
        self._graph = None

    # ---- accessors -------------------------------------------------------------------
    @property
    def graph(self):
        """The basin graph (a networkx.DiGraph; see :func:`landscape.graph.basin_graph`)."""
        if self._graph is None:
            self._graph = basin_graph(self.points, self.edges, n_starts=self.n_starts)
        return self._graph

    @property
    def minima(self):
        """The distinct minima (strict or certified degenerate), by increasing loss."""
        return [p for p in self.points if p.is_minimum]

    @property
    def saddles(self):
        """The distinct strict and non-strict saddles, by increasing loss."""
        return [p for p in self.points if p.is_saddle]

    def point(self, i):
        """The distinct point with id `i`."""
        return self.points[i]

    def basin(self, i):
        """Indices of the starts that ended at point `i` (int ndarray)."""
        return self.outcomes.start[self.outcomes.point == i]

    def _spurious(self):
        minima = self.minima
        if not minima:
            return []
        known = [p.classification.is_global for p in minima]
        if all(k is not None for k in known):
            return [p for p in minima if not p.classification.is_global]
        lowest = minima[0].loss
        return [p for p in minima if p.loss > lowest + 1e-9 * max(1.0, abs(lowest))]

    @property
    def spurious_minima(self):
        """Minima that are not global (by the model's known optimal loss; else above the
        lowest minimum found)."""
        return self._spurious()

    @property
    def spurious_count(self):
        """Starts that ended at a spurious minimum."""
        return int(sum(p.basin_count for p in self._spurious()))

    @property
    def spurious_fraction(self):
        """Fraction of starts that ended at a spurious minimum."""
        return self.spurious_count / self.n_starts

    @property
    def spurious_interval(self):
        """95% Wilson interval of :attr:`spurious_fraction` (ndarray of shape (2,))."""
        return wilson_interval(self.spurious_count, self.n_starts)

    def _end_categories(self):
        """What each start ended at: its point's kind, or why it ended at none."""
        kinds = [p.kind for p in self.points]
        out = []
        for q, kind, status in zip(self.outcomes.point, self.outcomes.kind,
                                   self.outcomes.status):
            if q >= 0:
                out.append(kinds[q])
            elif status == int(Status.DIVERGED):
                out.append("diverged")
            elif kind == "not-critical":
                out.append("not-converged")
            else:
                out.append(kind)
        return out

    @property
    def unresolved_ends(self):
        """Starts that ended at no certified minimum, by what they ended at (a dict).

        Keys are the kinds of the points they ended at (``strict-saddle``,
        ``non-strict-saddle``, ``degenerate``: undetermined, ``maximum``), or
        why they ended at no point: ``not-converged`` (out of steps before
        |grad L| <= gtol), ``diverged`` (status DIVERGED), ``non-differentiable``
        (a zero neuron).  With the ends at global and at spurious minima they
        make up every start.
        """
        return dict(sorted(Counter(c for c in self._end_categories()
                                   if c not in _MINIMA).items()))

    @property
    def unresolved_count(self):
        """Starts that ended at no certified minimum (see :attr:`unresolved_ends`)."""
        return int(sum(self.unresolved_ends.values()))

    @property
    def unresolved_fraction(self):
        """Fraction of starts that ended at no certified minimum: beside
        :attr:`spurious_fraction`, the ends a scan could not call minima (saddles,
        undetermined points, starts that did not converge or diverged)."""
        return self.unresolved_count / self.n_starts

    @property
    def unresolved_interval(self):
        """95% Wilson interval of :attr:`unresolved_fraction` (ndarray of shape (2,))."""
        return wilson_interval(self.unresolved_count, self.n_starts)

    def export_graph(self, path):
        """Write the basin graph as GraphML (``.graphml``) or node-link JSON (``.json``)."""
        write_graph(self.graph, path)

    # ---- loading ----------------------------------------------------------------------
    @classmethod
    def load(cls, path, model=None, *, verify=False, **options):
        """Reload a finished scan from its store, or resume an unfinished one.

        Every stored array is checked against its checksum as it is read.
        Reading a finished scan takes no lock: it works while another process
        writes to the store.

        Parameters
        ----------
        path : str or os.PathLike
            A store written by :func:`scan`.
        model : Model, optional
            Needed to resume an unfinished scan (with the stored settings) and
            to verify.
        verify : bool
            Re-evaluate with `model` the gradient of every stored distinct point
            and of every end point stored as critical, and refuse the store if
            one has |grad L| above ``10 * gtol`` (the scan's gtol): its x is not
            the point the scan certified.  An unfinished store is verified
            before it is resumed, and the result after.
        **options
            ``executor``, ``chunk_size``, ``progress`` for resuming.

        Returns
        -------
        Scan

        Raises
        ------
        StoreError
            The store is unreadable or damaged, unfinished and no model was
            given, or (`verify`) a stored point is not critical.
        StoreInUseError
            Resuming an unfinished scan that another process is writing.
        TypeError
            `verify` is True and no `model` was given.
        ValueError
            `verify` is True and `model` is not the model the scan was run with.
        """
        if not isinstance(verify, bool):
            raise TypeError(f"verify must be True or False, got {verify!r}")
        if verify and model is None:
            raise TypeError("verify=True re-evaluates gradients with the model, so it needs one: "
                            "pass Scan.load(path, model, verify=True)")
        if verify:
            check_model(model)
        with Store.open(path) as store:
            settings = store.settings
            n = settings.get("n_starts") if isinstance(settings, dict) else None
            if _is_final(store, n):
                result = _scan_from_store(store)
                if verify:
                    _verify(model, result)
                return result
            done = store.n_finished()
            if verify:
                _verify_stored_ends(model, store)
        if model is None:
            raise StoreError(f"store {path} holds an unfinished scan ({done} of {n} starts); "
                             "resume it with Scan.load(path, model) or ls.scan(model, n_starts, "
                             "rng=None, store=path, ...) with its original settings", str(path))
        if settings["init"]["kind"] == "array":
            raise StoreError(f"store {path} was scanned from explicit initial points, which are "
                             "not stored; resume with ls.scan(model, n_starts, init=X0, "
                             "store=path, ...)", str(path))
        result = scan(model, n, rng=None, init=settings["init"]["scale"], lr=settings["lr"],
                      gtol=settings["gtol"], store=path, coarse_gtol=settings["coarse_gtol"],
                      visit_gtol=settings["visit_gtol"], maxiter=settings["maxiter"],
                      loss_rtol=settings["loss_rtol"], xtol=settings["xtol"],
                      saddle_step=settings["saddle_step"], **options)
        if verify:
            _verify(model, result)
        return result

    def __repr__(self):
        interval = self.spurious_interval
        where = f", path={self.path!r}" if self.path else ""
        unresolved = ""
        if self.unresolved_count:
            lo, hi = self.unresolved_interval
            unresolved = (f", unresolved_fraction={self.unresolved_fraction:.4g} "
                          f"[{lo:.4g}, {hi:.4g}]")
        return (f"Scan(n_starts={self.n_starts}, points={len(self.points)} "
                f"({len(self.minima)} minima, {len(self.saddles)} saddles), "
                f"spurious_fraction={self.spurious_fraction:.4g} "
                f"[{interval[0]:.4g}, {interval[1]:.4g}]{unresolved}{where})")


# ---- the scan ---------------------------------------------------------------------------
def scan(model, n_starts, *, rng, init=None, lr=None, gtol=1e-12, store=None, executor=None,
         chunk_size=_DEFAULT_CHUNK, progress=True, coarse_gtol=1e-3, visit_gtol=1e-4,
         maxiter=100_000, loss_rtol=1e-9, xtol=1e-6, saddle_step=1e-3, annotations=None):
    """Gradient descent from many starts to certified, classified critical points and their basins.

    Parameters
    ----------
    model : Model
    n_starts : int
        Number of starts.  A store may be resumed with a larger `n_starts` (the
        first starts are the same).
    rng : int, SeedSequence, Generator or None
        The seed.  Start i draws its initial point from the child
        ``SeedSequence(seed).spawn(n_starts)[i]``.  None: a fresh seed, or the
        stored one when resuming a store.  Pass an int to make a scan
        reproducible.
    init : None, float or array_like of shape (n_starts, n_params)
        None: ``model.sample_init(1, rng=child)`` (entries N(0, 1/d), Xavier);
        a float: the standard deviation of the entries; an array: the starts.
    lr : float, optional
        Gradient-descent step size; default ``1 / lambda_max`` of the Hessian
        over the first 8 starts.  (The COLT'21 protocol of Safran et al. uses
        ``5 / k`` for the teacher-student model; ``landscape scan`` does too.)
    gtol : float
        Certified tolerance |grad L| <= gtol of every critical point.
    store : str, os.PathLike, Store or None
        SQLite file of the run.  An existing store with the same settings is
        resumed (finished starts are skipped, and every stored array is checked
        against its checksum first); one with other settings is refused.  The
        scan holds the store's write lock while it runs: a store another writer
        holds raises :class:`~landscape.errors.StoreInUseError` before anything
        is computed.  None: an in-memory store.
    executor : None, concurrent.futures.Executor or distributed.Client
        None runs in-process.  Otherwise each chunk is a task; workers return
        results and only this process writes the store.
    chunk_size : int
        Starts per task and per store transaction.  Results do not depend on it.
    progress : bool
        Show a progress bar (tqdm, on stderr).
    coarse_gtol : float
        Gradient norm below which descent may hand a start to Newton.
    visit_gtol : float
        Plateaus are recorded until |grad L| <= visit_gtol.
    maxiter : int
        Budget of gradient steps per start in each descent phase.
    loss_rtol, xtol : float
        Deduplication: two critical points are one when their losses agree
        within ``loss_rtol * max(1, |L|)`` and the orbit distance of their
        merged-neuron keys (:meth:`Model.merge_collinear`) is
        <= ``xtol * max(1, |key|)`` (see :func:`deduplicate`).
    saddle_step : float
        Length of the step off a saddle along +- its most negative curvature
        direction, from which descent finds the minima the saddle connects.
    annotations : dict, optional
        JSON data to keep with the store (:meth:`Store.set_annotation`), written
        when the scan opens it, before any start runs, so that a scan killed at
        any moment still carries them; keys the store already has are kept.
        ``landscape scan`` keeps its model description there, from which
        ``landscape scan --store PATH`` resumes without the model flags.

    Returns
    -------
    Scan

    Raises
    ------
    DivergenceError
        Gradient descent diverged from more than 1% of the starts: `lr` is too
        large.  The error estimates the largest stable step, 2 / lambda_max at
        the first starts.  A store this call created and that holds no start is
        removed, so the same command with a smaller `lr` can run.

    Notes
    -----
    Results are identical (bit for bit) for any chunk size, executor, worker
    count and interruption: every start depends on its own seed only, and
    everything after the starts runs in start order in this process.

    A start whose descent diverges (:func:`~landscape.descend`'s rule: a
    non-finite value, or a loss that keeps rising far above its start) ends
    with status ``DIVERGED`` and at no point.  A few such starts, at most 1% of
    `n_starts`, are reported (``Scan.outcomes.status``,
    :attr:`Scan.unresolved_ends`) with a :class:`~landscape.LandscapeWarning`;
    more stop the scan with :class:`~landscape.DivergenceError` as soon as the
    count passes 1%.

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=4)
    >>> s = ls.scan(m, 20, rng=0, lr=5 / 4, progress=False)
    >>> [(p.kind, p.basin_count, p.is_minimum) for p in s.points]
    [('strict-minimum', 20, True)]
    >>> s.graph.nodes[0]["basin_fraction"]
    1.0
    """
    check_model(model)
    n_starts = as_positive_int(n_starts, "n_starts")
    chunk_size = as_positive_int(chunk_size, "chunk_size")
    gtol = as_positive_float(gtol, "gtol")
    coarse_gtol = as_positive_float(coarse_gtol, "coarse_gtol")
    visit_gtol = as_positive_float(visit_gtol, "visit_gtol")
    maxiter = as_positive_int(maxiter, "maxiter")
    loss_rtol = as_positive_float(loss_rtol, "loss_rtol")
    xtol = as_positive_float(xtol, "xtol")
    saddle_step = as_positive_float(saddle_step, "saddle_step")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    annotations = _check_annotations(annotations)
    _check_executor(executor)
    owned = not isinstance(store, Store)
    path = store.path if isinstance(store, Store) else (
        None if store is None else _store_path(store))

    seed = _seed(rng, path if owned else store)
    init_spec, X0_all = _init(model, init, n_starts)
    config = dict(seed=seed, init=init_spec)
    if lr is None:
        lr = 1.0 / _lambda_max(model, _probe_starts(model, config, X0_all, n_starts))
    lr = as_positive_float(lr, "lr")
    settings = dict(model=_fingerprint(model), n_starts=n_starts, seed=seed, init=init_spec,
                    lr=lr, gtol=gtol, coarse_gtol=coarse_gtol, visit_gtol=visit_gtol,
                    maxiter=maxiter, loss_rtol=loss_rtol, xtol=xtol, saddle_step=saddle_step)
    config.update(settings)

    created = owned and path is not None and not os.path.exists(path)
    st = _open_store(store, path, settings)
    try:
        if annotations:
            present = st.annotations()
            for key, value in annotations.items():
                if key not in present:
                    st.set_annotation(key, value)
        finished = st.finished_starts()
        if len(finished) and finished[-1] >= n_starts:
            raise StoreError(f"store {st.path} holds starts up to {finished[-1]}, more than "
                             f"n_starts = {n_starts}; pass n_starts >= {finished[-1] + 1}",
                             st.path)
        if st.settings["n_starts"] != n_starts:
            st.update_settings(settings)
        pending = np.setdiff1d(np.arange(n_starts), finished)
        if pending.size == 0 and _is_final(st, n_starts):
            return _scan_from_store(st)
        chunks = [pending[i:i + chunk_size] for i in range(0, len(pending), chunk_size)]
        allowed = int(_DIVERGED_TOLERANCE * n_starts)
        diverged = _n_diverged(model, st) if len(finished) else 0
        n_run = len(finished)
        clock = time.perf_counter()
        with tqdm(total=n_starts, initial=n_starts - len(pending), disable=not progress,
                  desc="scan", unit="start", leave=False) as bar:
            for chunk in _run(model, config, chunks, X0_all, executor):
                diverged += int(np.count_nonzero(chunk.status == int(Status.DIVERGED)))
                n_run += len(chunk)
                if diverged > allowed:
                    removed = created and st.n_finished() == 0
                    if removed:             # it holds nothing: the next try starts afresh
                        owned = False
                        _remove_store(st)
                    raise _divergence_error(model, config, X0_all, diverged, n_run, st,
                                            removed)
                now = time.perf_counter()
                st.write_chunk(chunk, elapsed=now - clock)
                clock = now
                bar.update(len(chunk))
        _finalize(model, st, config)
        st.add_wall_seconds(time.perf_counter() - clock)
        result = _scan_from_store(st)
        n_div = int(np.count_nonzero(result.outcomes.status == int(Status.DIVERGED)))
        if n_div:
            warnings.warn(f"{n_div} of {n_starts} starts diverged with lr = {lr:.4g}; they are "
                          "ends with status DIVERGED (Scan.unresolved_ends), not points.  A "
                          "smaller lr avoids them", LandscapeWarning, stacklevel=2)
        return result
    finally:
        if owned:
            st.close()


def _check_annotations(annotations):
    if annotations is None:
        return {}
    if not isinstance(annotations, dict):
        raise TypeError(f"annotations must be a dict of JSON data, got "
                        f"{type(annotations).__name__}")
    for key, value in annotations.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"annotations keys must be non-empty strings, got {key!r}")
        try:
            json.dumps(value, default=_json_scalar)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"annotations[{key!r}] must be JSON data: {exc}") from None
    return dict(annotations)


def _json_scalar(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _store_path(store):
    if not isinstance(store, (str, os.PathLike)):
        raise TypeError(f"store must be a file path, a Store or None, got {type(store).__name__}")
    path = os.fspath(store)
    if path == ":memory:":
        return None
    return path


def _open_store(store, path, settings):
    """The store to write, holding its write lock; an existing one's arrays are checked."""
    if isinstance(store, Store):
        store._lock_for_writing()
        store.check_settings(settings, ignore=("n_starts",))
        return store
    if path is None:
        return Store.create(":memory:", settings)
    if not os.path.exists(path):
        return Store.create(path, settings)
    st = Store.open(path, settings, ignore=("n_starts",), write=True)
    try:
        st.check_arrays()           # a damaged store stops the scan before anything is written
    except BaseException:
        st.close()
        raise
    return st


def _is_final(store, n_starts):
    return store.finalized == {"n_starts": n_starts} and store.n_finished() == n_starts


def _seed(rng, store):
    """The scan's SeedSequence as JSON data: {"entropy": ..., "spawn_key": [...]}."""
    if rng is None and store is not None:
        try:
            if isinstance(store, Store):
                return store.settings["seed"]
            if os.path.exists(store):
                with Store.open(store) as s:
                    return s.settings["seed"]
        except (KeyError, TypeError):
            raise StoreError(f"store {store} holds no scan seed; pass rng=...",
                             str(store)) from None
    if isinstance(rng, np.random.Generator):
        rng = np.random.SeedSequence(rng.integers(0, 2**32, size=4, dtype=np.uint64).tolist())
    if rng is None:
        rng = np.random.SeedSequence()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng must be a non-negative seed, got {rng}")
        rng = np.random.SeedSequence(int(rng))
    if not isinstance(rng, np.random.SeedSequence):
        raise TypeError(f"rng must be an int seed, a SeedSequence, a numpy Generator or None, "
                        f"got {type(rng).__name__}")
    entropy = rng.entropy
    entropy = [int(e) for e in entropy] if isinstance(entropy, (list, tuple, np.ndarray)) \
        else int(entropy)
    return {"entropy": entropy, "spawn_key": [int(k) for k in rng.spawn_key]}


def _child(seed, i):
    """Child i of ``SeedSequence(seed).spawn(n)``, built directly from its spawn key."""
    return np.random.SeedSequence(seed["entropy"], spawn_key=tuple(seed["spawn_key"]) + (int(i),))


def _init(model, init, n_starts):
    """(settings entry, explicit starts or None)."""
    if init is None:
        return {"kind": "normal", "scale": float(1.0 / np.sqrt(model.input_dim))}, None
    if isinstance(init, numbers.Real) and not isinstance(init, bool):
        return {"kind": "normal", "scale": as_positive_float(init, "init")}, None
    X0 = as_batch(init, model.n_params, "init")
    if X0.shape[0] != n_starts:
        raise ValueError(f"init must hold one start per row, shape ({n_starts}, "
                         f"{model.n_params}), got {X0.shape}; or pass a float (the scale)")
    digest = hashlib.sha256(np.ascontiguousarray(X0, dtype="<f8").tobytes()).hexdigest()
    return {"kind": "array", "sha256": digest}, X0


def _initial_points(model, config, starts):
    scale = config["init"]["scale"]
    return np.vstack([model.sample_init(1, rng=_child(config["seed"], i), scale=scale)
                      for i in starts]).reshape(len(starts), model.n_params)


def _probe_starts(model, config, X0_all, n_starts):
    """The first starts (at most _LR_PROBES), where lambda_max is estimated."""
    first = np.arange(min(n_starts, _LR_PROBES))
    return X0_all[first] if X0_all is not None else _initial_points(model, config, first)


def _lambda_max(model, X0):
    """The largest Hessian eigenvalue over the rows of X0 (the default lr is its inverse)."""
    X = X0[~model.nondifferentiable_units(X0).any(axis=1)]
    if len(X) == 0:
        raise ValueError("cannot estimate lr: every initial point has a zero neuron; pass lr=...")
    lam = 0.0
    for x in X:
        if model.n_params <= 2000:
            top = np.linalg.eigvalsh(model.hess_kernel(x[None])[0])[-1]
        else:
            op = scipy.sparse.linalg.LinearOperator(
                (model.n_params,) * 2, dtype=np.float64,
                matvec=lambda v, x=x: model.hvp_kernel(x[None], v[None])[0])
            top = scipy.sparse.linalg.eigsh(op, k=1, which="LA", tol=1e-6,
                                            v0=np.ones(model.n_params))[0][0]
        lam = max(lam, float(top))
    return lam


def _n_diverged(model, store):
    """Starts stored with status DIVERGED."""
    return int(np.count_nonzero(store.read_outcomes(model.n_params).status ==
                                int(Status.DIVERGED)))


def _remove_store(st):
    """Delete the file of a store that holds no start (while holding its lock), and close it."""
    st._conn.close()
    try:
        os.remove(st.path)
    finally:
        st.close()


def _divergence_error(model, config, X0_all, n_diverged, n_run, st, removed):
    """The DivergenceError of a scan, with the largest stable step estimated at its first starts."""
    lr, n_starts = config["lr"], config["n_starts"]
    try:
        X = _probe_starts(model, config, X0_all, n_starts)
        with np.errstate(over="ignore", invalid="ignore"):
            lam = _lambda_max(model, X)
        stable = 2.0 / lam if np.isfinite(lam) and lam > 0 else None
    except ValueError:                  # every probe start has a zero neuron
        stable = None
    text = (f"gradient descent diverged from {n_diverged} of the {n_run} starts run (of "
            f"{n_starts}) with lr = {lr:.4g}: the step is too large for the curvature of the "
            "loss, and a diverged start ends at no critical point (a scan tolerates at most "
            f"{_DIVERGED_TOLERANCE:.0%} of its starts diverging).  ")
    if stable is not None:
        text += (f"The largest stable step at the first {len(X)} starts is about "
                 f"2/lambda_max = {stable:.4g} (lambda_max = {2.0 / stable:.4g}, the largest "
                 f"Hessian eigenvalue there): pass a smaller lr, e.g. lr = {stable / 2:.4g} "
                 "(1/lambda_max, the default).")
    else:
        text += "Pass a smaller lr."
    path = None if st.path == ":memory:" else st.path
    if removed:
        text += f"  The store {path} held no start and was removed."
    elif path is not None:
        text += (f"  Store {path} keeps the {st.n_finished()} starts finished with lr = "
                 f"{lr:.4g}; scan with another lr into a new store.")
    return DivergenceError(text, lr=lr, lr_stable=stable, n_diverged=n_diverged, n_run=n_run,
                           n_starts=n_starts, path=path, store_removed=removed)


def _fingerprint(model):
    """What identifies a model across processes: class, size, repr and losses at probe points."""
    P = np.random.default_rng(_PROBE_SEED).standard_normal((3, model.n_params)) / np.sqrt(
        max(1, model.input_dim))
    probe = [float(f"{v:.12e}") for v in model.loss_kernel(P)]
    return {"class": type(model).__name__, "n_params": int(model.n_params),
            "repr": repr(model), "probe": probe}


# ---- executors ----------------------------------------------------------------------------
def _is_dask_client(executor):
    return type(executor).__module__.split(".")[0] == "distributed" and hasattr(
        executor, "submit")


def _check_executor(executor):
    if executor is None or isinstance(executor, concurrent.futures.Executor) or \
            _is_dask_client(executor):
        return
    raise TypeError("executor must be None (in-process), a concurrent.futures.Executor "
                    "(e.g. ProcessPoolExecutor) or a dask distributed.Client, got "
                    f"{type(executor).__name__}")


def _run(model, config, chunks, X0_all, executor):
    """Yield the Chunk results of every chunk of start indices, in any order."""
    def task(starts):
        return (model, config, starts, None if X0_all is None else X0_all[starts])

    if executor is None:
        for starts in chunks:
            yield _run_chunk(*task(starts))
        return
    if isinstance(executor, concurrent.futures.Executor):
        futures = [executor.submit(_run_chunk, *task(s)) for s in chunks]
        try:
            for f in concurrent.futures.as_completed(futures):
                yield f.result()
        finally:
            for f in futures:
                f.cancel()
        return
    import distributed        # the optional extra landscape[distributed]
    futures = [executor.submit(_run_chunk, *task(s), pure=False) for s in chunks]
    try:
        for f in distributed.as_completed(futures):
            yield f.result()
    finally:
        executor.cancel(futures)


# ---- one chunk (runs in a worker) ------------------------------------------------------
def _not_critical(message):
    return Classification(kind="not-critical", loss=float("nan"), grad_norm=float("nan"),
                          message=message)


def _run_chunk(model, config, starts, X0=None):
    """Descend, polish and classify the starts of one chunk; find the saddles they visited."""
    starts = np.asarray(starts, dtype=np.int64)
    if X0 is None:
        X0 = _initial_points(model, config, starts)
    with np.errstate(over="ignore", invalid="ignore"):        # divergence is data
        return _descend_chunk(model, config, starts, X0)


def _descend_chunk(model, config, starts, X0):
    B, n = X0.shape
    lr, gtol, maxiter = config["lr"], config["gtol"], config["maxiter"]
    d = descend(model, X0, lr=lr, gtol=config["visit_gtol"], maxiter=maxiter, record=True)
    go = np.isin(d.status, [int(Status.CONVERGED), int(Status.MAXITER)])
    x, loss, gnorm = d.x.copy(), d.loss.copy(), d.grad_norm.copy()
    lam = np.full(B, np.nan)
    status = d.status.copy()
    message = ["descent: " + Status(s).message for s in d.status]
    it_descent, it_polish, pushes = d.nit.copy(), np.zeros(B, dtype=int), np.zeros(B, dtype=int)
    if go.any():
        p = descend_and_polish(model, d.x[go], lr=lr, gtol=gtol,
                               coarse_gtol=config["coarse_gtol"], maxiter=maxiter)
        x[go], loss[go], gnorm[go], lam[go] = p.x, p.loss, p.grad_norm, p.min_eigenvalue
        status[go] = p.status
        for j, i in enumerate(np.flatnonzero(go)):
            message[i] = p.message[j]
        it_descent[go] += p.descent_iterations
        it_polish[go], pushes[go] = p.polish_iterations, p.pushes
    # a diverged start is not classified: its end is a far-away point, not a candidate
    ended = ((status != int(Status.DIVERGED)) & np.isfinite(loss)
             & np.all(np.isfinite(x), axis=1))
    classes = [classify(model, x[i], gtol=gtol) if ended[i]
               else _not_critical(Status.DIVERGED.message) for i in range(B)]
    status[~ended] = int(Status.DIVERGED)
    v_start, v_x, v_class = _visits(model, d, go, gtol)
    return Chunk(start=starts, x=x, loss=loss, grad_norm=gnorm, min_eigenvalue=lam,
                 status=status, message=message, descent_iterations=it_descent,
                 polish_iterations=it_polish, pushes=pushes, classification=classes,
                 visit_start=starts[v_start], visit_x=v_x, visit_classification=v_class,
                 traces=_traces(d, starts, it_descent, loss, gnorm, v_start))


def _traces(d, starts, nit, loss, gnorm, visited):
    """The recorded curves of the chunk's starts below _TRACED_STARTS and of the starts that
    visited a saddle (rows `visited`), each ending with its final (polished) point.

    A visit is a plateau of the descent or its stop beside a saddle; a visiting start without
    a plateau gets its stop as the mark.
    """
    out = []
    traced = (starts < _TRACED_STARTS) | np.isin(np.arange(len(starts)), visited)
    for r in np.flatnonzero(traced):
        seen = np.isfinite(d.record_loss[r])
        at, L, g = d.record_at[seen], d.record_loss[r, seen], d.record_grad_norm[r, seen]
        if len(at) and at[-1] >= nit[r]:      # Newton's polish steps are not gradient steps
            at, L, g = at[:-1], L[:-1], g[:-1]
        mine = d.plateau_start == r
        marks = d.plateau_at[mine], d.plateau_loss[mine], d.plateau_grad_norm[mine]
        if not mine.any() and r in visited:       # stopped beside the saddle it visited
            marks = [np.array([v], dtype=float) for v in (d.nit[r], d.loss[r], d.grad_norm[r])]
        out.append(dict(
            start=int(starts[r]),
            at=np.append(at, nit[r]), loss=np.append(L, loss[r]),
            grad_norm=np.append(g, gnorm[r]),
            plateau_at=marks[0], plateau_loss=marks[1], plateau_grad_norm=marks[2]))
    return out


def _visits(model, d, go, gtol):
    """Saddles the descents passed: plateaus, and stops beside a saddle, polished by Newton."""
    n = model.n_params
    rows = [d.plateau_start]
    X = [d.plateau_x]
    # a descent that reached visit_gtol where the Hessian is indefinite is passing a saddle
    stop = np.flatnonzero(go & (d.status == int(Status.CONVERGED)))
    if stop.size:
        indefinite = ~is_positive_definite(model, d.x[stop])
        rows.append(stop[indefinite])
        X.append(d.x[stop[indefinite]])
    rows = np.concatenate(rows).astype(np.int64)
    X = np.concatenate(X).reshape(len(rows), n)
    if len(rows) == 0:
        return rows, X, []
    order = np.argsort(rows, kind="stable")
    rows, X = rows[order], X[order]
    smooth = ~model.nondifferentiable_units(X).any(axis=1)
    rows, X = rows[smooth], X[smooth]
    Xp, _, ok, _ = newton_batch(model, X, gtol=gtol) if len(rows) else (X, None, [], None)
    keep_rows, keep_x, keep_c = [], [], []
    for r, xp, good in zip(rows, Xp, ok):
        if not good:
            continue
        c = classify(model, xp, gtol=gtol)
        if c.kind in _SADDLES:
            keep_rows.append(r)
            keep_x.append(xp)
            keep_c.append(c)
    return (np.array(keep_rows, dtype=np.int64), np.array(keep_x).reshape(len(keep_rows), n),
            keep_c)


# ---- deduplication, saddle descents and the stored result ----------------------------
class _Orbits:
    """Distinct critical points modulo symmetry and critical manifolds, in order of discovery.

    Two points are one when their losses agree within the loss window and their
    function-space keys (:meth:`Model.merge_collinear`: collinear neurons merged)
    are within the orbit-distance tolerance: every point of a split continuum is
    one point.  Each keeps its distinct members (orbit distance of the points
    themselves), the largest manifold dimension seen among them, and as its
    representative the member farthest from the non-smooth set (largest
    :meth:`Model.smooth_radius`; e.g. an interior split rather than the end of
    the continuum where a neuron has shrunk to nothing).
    """

    def __init__(self, model, loss_rtol, xtol):
        self.model, self.loss_rtol, self.xtol = model, loss_rtol, xtol
        self.x, self.key, self.classification, self.loss = [], [], [], []
        self.first_start, self.found_by = [], []
        self.members, self.member_norms, self.dimension, self.regularity = [], [], [], []

    def add(self, x, c, found_by, start=-1, loss=None):
        """The id of x's point (a new one if none matches); c its Classification or None."""
        L = c.loss if loss is None else loss
        window = self.loss_rtol * max(1.0, abs(L))
        key = self.model.merge_collinear(x)
        tol = self.xtol * max(1.0, float(np.linalg.norm(key)))
        smooth = self.model.smooth_radius(x)
        dim = int(getattr(c, "manifold_nullity", None) or 0)
        for pid, Lp in enumerate(self.loss):
            if abs(Lp - L) <= window and orbit_distance(
                    self.model, self.key[pid], key, cutoff=tol) <= tol:
                if self.first_start[pid] < 0 and start >= 0:
                    self.first_start[pid] = int(start)
                    self.found_by[pid] = found_by
                self._add_member(pid, x)
                self.dimension[pid] = max(self.dimension[pid], dim)
                if smooth > self.regularity[pid]:
                    self.x[pid], self.classification[pid] = x, c
                    self.regularity[pid] = smooth
                return pid
        self.x.append(x)
        self.key.append(key)
        self.classification.append(c)
        self.loss.append(L)
        self.first_start.append(int(start))
        self.found_by.append(found_by)
        self.members.append([x])
        self.member_norms.append([orbit_norms(self.model, x)])
        self.dimension.append(dim)
        self.regularity.append(smooth)
        return len(self.x) - 1

    def _add_member(self, pid, x):
        tol = self.xtol * max(1.0, float(np.linalg.norm(x)))
        inv = orbit_norms(self.model, x)
        for y, iy in zip(self.members[pid], self.member_norms[pid]):
            # the sorted neuron norms bound the orbit distance from below
            if np.linalg.norm(iy - inv) <= tol and \
                    orbit_distance(self.model, y, x, cutoff=tol) <= tol:
                return
        self.members[pid].append(x)
        self.member_norms[pid].append(inv)

    def kind(self, pid):
        return self.classification[pid].kind


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Distinct(Result):
    """Distinct points among the rows of a batch (see :func:`deduplicate`).

    Attributes
    ----------
    labels : ndarray of shape (B,)
        The distinct point each row belongs to (0, 1, ... in order of first appearance).
    representative : ndarray of shape (G,)
        For each distinct point, the row standing for it: of its members, the
        one farthest from the non-smooth set (:meth:`Model.smooth_radius`).
    n_members : ndarray of shape (G,)
        Distinct members of each point (rows that differ modulo symmetry, e.g.
        different splits of one continuum).
    dimension : ndarray of shape (G,)
        Largest ``manifold_nullity`` among the members' classifications (0
        without classifications).
    """

    labels: np.ndarray
    representative: np.ndarray
    n_members: np.ndarray
    dimension: np.ndarray


def deduplicate(model, X, *, classifications=None, loss_rtol=1e-9, xtol=1e-6):
    """Group critical points that are one point modulo symmetry and critical manifolds.

    Rows are the same point when their losses agree within ``loss_rtol * max(1,
    |L|)`` and the orbit distance of their function-space keys
    (:meth:`Model.merge_collinear`: each group of collinear neurons merged into
    one) is at most ``xtol * max(1, |key|)``.  So every point of a continuum of
    split neurons is one point, and so are its images under the model's
    symmetry group.  This is how :func:`scan` counts distinct points.

    Parameters
    ----------
    model : Model
    X : array_like of shape (B, n_params)
    classifications : sequence of Classification, optional
        One per row; gives the loss and the manifold dimension.
    loss_rtol, xtol : float

    Returns
    -------
    Distinct

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=4)
    >>> splits = [np.vstack([c * np.eye(3)[0], np.eye(3)[1:], (1 - c) * np.eye(3)[0]])
    ...           for c in (0.5, 0.3, 0.1)]                  # one continuum of global minima
    >>> d = ls.deduplicate(m, [m.flatten(W) for W in splits])
    >>> d.labels.tolist(), d.n_members.tolist()
    ([0, 0, 0], [3])
    """
    check_model(model)
    X = as_batch(X, model.n_params, "X")
    loss_rtol = as_positive_float(loss_rtol, "loss_rtol")
    xtol = as_positive_float(xtol, "xtol")
    if classifications is not None and len(classifications) != len(X):
        raise ValueError(f"classifications must hold one Classification per row of X "
                         f"({len(X)}), got {len(classifications)}")
    losses = model.loss_batch(X)
    orbits = _Orbits(model, loss_rtol, xtol)
    labels = np.empty(len(X), dtype=np.int64)
    rep = {}
    for i, x in enumerate(X):
        q = labels[i] = orbits.add(x, None if classifications is None else classifications[i],
                                   "", loss=float(losses[i]))
        if orbits.x[q] is x:          # x became (or stays) the representative
            rep[q] = i
    rep = np.array([rep[q] for q in range(len(orbits.x))], dtype=np.int64)
    return Distinct(labels=labels, representative=rep,
                    n_members=np.array([len(m) for m in orbits.members], dtype=np.int64),
                    dimension=np.array(orbits.dimension, dtype=np.int64))


def _finalize(model, store, config):
    """Deduplicate, descend off every saddle, and store points, assignment and edges."""
    rec = store.read_outcomes(model.n_params)
    orbits = _Orbits(model, config["loss_rtol"], config["xtol"])
    ended = np.full(len(rec.start), -1)
    for i, (x, c) in enumerate(zip(rec.x, rec.classification)):
        if c.kind in _CRITICAL:
            ended[i] = orbits.add(x, c, "descent", rec.start[i])
    visited = set()
    for s, x, c in zip(rec.visit_start, rec.visit_x, rec.visit_classification):
        visited.add((int(s), orbits.add(x, c, "visit")))
    descents = Counter()
    done = set()
    for _ in range(5):           # saddles found off saddles are descended from in turn
        todo = [q for q in range(len(orbits.x)) if orbits.kind(q) in _SADDLES and q not in done]
        if not todo:
            break
        done.update(todo)
        X, owner = [], []
        for q in todo:
            x, c = orbits.x[q], orbits.classification[q]
            if c.kind == "strict-saddle":
                _, v = min_curvature(model, x)
                X += [x + config["saddle_step"] * v, x - config["saddle_step"] * v]
                owner += [q, q]
            elif c.witness is not None:
                X.append(c.witness)
                owner.append(q)
        if not X:
            continue
        with np.errstate(over="ignore", invalid="ignore"):    # divergence is data
            p = descend_and_polish(model, np.array(X), lr=config["lr"], gtol=config["gtol"],
                                   coarse_gtol=config["coarse_gtol"], maxiter=config["maxiter"])
        for q, x, good in zip(owner, p.x, p.success):
            if not good:
                continue
            c = classify(model, x, gtol=config["gtol"])
            if c.kind in _CRITICAL:
                target = orbits.add(x, c, "saddle-descent")
                if target != q:
                    descents[(q, target)] += 1
    visits = Counter()
    for s, q in visited:
        target = ended[int(np.searchsorted(rec.start, s))]
        if target >= 0 and target != q:
            visits[(q, target)] += 1
    # number the points by increasing loss (ties: order of discovery)
    order = sorted(range(len(orbits.x)), key=lambda q: (orbits.loss[q], q))
    new = {q: i for i, q in enumerate(order)}
    counts = Counter(int(e) for e in ended if e >= 0)
    points = [dict(id=new[q], x=orbits.x[q], classification=orbits.classification[q],
                   basin_count=counts.get(q, 0), first_start=orbits.first_start[q],
                   found_by=orbits.found_by[q], dimension=orbits.dimension[q],
                   n_members=len(orbits.members[q])) for q in order]
    assignment = [(int(s), new[int(e)] if e >= 0 else -1) for s, e in zip(rec.start, ended)]
    edges = sorted((new[a], new[b], visits.get((a, b), 0), descents.get((a, b), 0))
                   for a, b in set(visits) | set(descents)
                   if orbits.kind(a) in _SADDLES and orbits.kind(b) in _MINIMA)
    store.write_points(points, assignment, edges,
                       finalized={"n_starts": int(config["n_starts"])})


def _scan_from_store(store):
    """Build the Scan from what the store holds (the same for a fresh and a reloaded scan)."""
    settings = store.settings
    n = int(settings["n_starts"])
    rec = store.read_outcomes(settings["model"]["n_params"])
    starts, assigned = store.read_assignment()
    if not np.array_equal(starts, rec.start):
        raise StoreError(f"store {store.path}: the start -> point assignment does not match the "
                         "stored starts; the file is corrupt", store.path)
    points = []
    for row in store.read_points():
        c = row["classification"]
        count = int(row["basin_count"])
        points.append(Point(id=int(row["id"]), x=row["x"], classification=c, kind=c.kind,
                            loss=float(c.loss), basin_count=count, basin_fraction=count / n,
                            basin_interval=wilson_interval(count, n),
                            first_start=int(row["first_start"]), found_by=row["found_by"],
                            dimension=int(row["dimension"]),
                            n_members=int(row["n_members"])))
    outcomes = Outcomes(start=rec.start, point=assigned, x=rec.x, loss=rec.loss,
                        grad_norm=rec.grad_norm, status=rec.status,
                        kind=[c.kind for c in rec.classification], message=rec.message)
    path = None if store.path == ":memory:" else store.path
    return Scan(points=points, outcomes=outcomes, edges=store.read_edges(), settings=settings,
                path=path, wall_seconds=store.wall_seconds, traces=store.read_traces(),
                annotations=store.annotations())


# ---- verification -----------------------------------------------------------------------
def _verify(model, s):
    """Raise StoreError unless every point and critical end of Scan `s` is critical for `model`."""
    _check_same_model(model, s.settings, s.path)
    critical = np.flatnonzero([k in _CRITICAL for k in s.outcomes.kind])
    labels = [f"point {p.id} (table points, row id {p.id})" for p in s.points] + [
        f"the end point of start {s.outcomes.start[i]} (table starts, row start "
        f"{s.outcomes.start[i]})" for i in critical]
    X = [p.x for p in s.points] + list(s.outcomes.x[critical])
    _check_gradients(model, X, labels, s.settings["gtol"], s.path)


def _verify_stored_ends(model, store):
    """Before resuming: every stored end point classified as critical is critical for `model`."""
    settings = store.settings
    _check_same_model(model, settings, store.path)
    rec = store.read_outcomes(model.n_params)
    critical = np.flatnonzero([c.kind in _CRITICAL for c in rec.classification])
    labels = [f"the end point of start {rec.start[i]} (table starts, row start "
              f"{rec.start[i]})" for i in critical]
    _check_gradients(model, rec.x[critical], labels, settings["gtol"], store.path)


def _check_same_model(model, settings, path):
    stored = settings["model"]
    if _fingerprint(model) != stored:
        raise ValueError(f"model {model!r} is not the model scanned into store {path} "
                         f"({stored['repr']}: its losses at probe points differ); pass the "
                         "model the scan was run with")


def _check_gradients(model, X, labels, gtol, path):
    """Raise StoreError naming the first row of X whose |grad L| exceeds _VERIFY_FACTOR * gtol."""
    limit = _VERIFY_FACTOR * gtol
    X = np.asarray(X, dtype=np.float64).reshape(len(labels), model.n_params)
    gnorm = np.full(len(X), np.nan)          # NaN: no gradient (non-finite or a zero neuron)
    smooth = np.all(np.isfinite(X), axis=1)
    smooth[smooth] = ~model.nondifferentiable_units(X[smooth]).any(axis=1)
    if smooth.any():       # the kernel, not grad_batch: an overflowing x is a bad row, not an error
        with np.errstate(over="ignore", invalid="ignore"):
            G = model.in_chunks(model.grad_kernel, X[smooth], out_shape=(model.n_params,))
            gnorm[smooth] = np.linalg.norm(G, axis=1)
    bad = np.flatnonzero(~(gnorm <= limit))
    if bad.size == 0:
        return
    i = bad[0]
    found = ("has no gradient (a non-finite entry or a zero neuron)" if np.isnan(gnorm[i])
             else f"has |grad L| = {gnorm[i]:.3g}")
    raise StoreError(f"store {path}: {labels[i]} {found} when re-evaluated with the model, "
                     f"above {_VERIFY_FACTOR:g} x gtol = {limit:.3g}: its stored x is not the "
                     f"critical point the scan certified ({bad.size} of {len(X)} stored points "
                     "fail).  The file was altered; move it away and re-run the scan into a new "
                     "store", path)
