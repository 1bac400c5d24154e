""":func:`scan`: many gradient-descent starts -> certified, classified, deduplicated critical
points, their basins and the basin graph, chunk by chunk into a store."""

import json
import os
import time
import warnings

import numpy as np
from tqdm import tqdm

from .._validation import as_positive_float, as_positive_int
from ..critical import Status
from ..errors import LandscapeWarning, StoreError
from ..models.base import Model, check_model
from ..store import Store
from .basins import finalize
from .certificates import certify_points
from .executors import check_executor, run_chunks
from .result import Scan
from .seeding import init_settings, seed_settings
from .steps import DIVERGED_TOLERANCE, divergence_error, estimate_lambda_max, probe_starts
from .verify import fingerprint

__all__ = ["scan", "plan_chunks", "DEFAULT_CHUNK"]

#: Starts per task and per store transaction, by default.
DEFAULT_CHUNK = 128


def scan(model, n_starts, *, rng, init=None, lr=None, gtol=1e-12, store=None, executor=None,
         chunk_size=DEFAULT_CHUNK, progress=True, coarse_gtol=1e-3, visit_gtol=1e-4,
         maxiter=100_000, loss_rtol=1e-9, xtol=1e-6, saddle_step=1e-3, connect=False,
         annotations=None, certify=False):
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
        against its checksum first); one with other settings is refused
        (:func:`~landscape.scan.resume_scan` resumes one with its stored
        settings).  The scan holds the store's write lock while it runs: a
        store another writer holds raises
        :class:`~landscape.errors.StoreInUseError` before anything is computed.
        None: an in-memory store.
    executor : None, concurrent.futures.Executor or distributed.Client
        None runs in-process.  Otherwise each chunk is a task; workers return
        results and only this process writes the store.
    chunk_size : int
        Starts per task and per store transaction (with an executor: at most, the
        tasks of equal size and the last ones smaller, see :func:`plan_chunks`).
        Results do not depend on it.
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
        <= ``xtol * max(1, |key|)`` (see :func:`~landscape.deduplicate`).
    saddle_step : float
        Length of the step off a saddle along +- its most negative curvature
        direction, from which descent finds the minima the saddle connects.
    connect : bool
        Also connect every distinct minimum to the lowest one through index-1
        saddles (:func:`landscape.connect`: string, saddle refinement, descents
        off both sides): the transition states join the graph as saddle nodes
        (``found_by="connect"``) with edges to the minima they join, and a
        saddle joining a minimum to a symmetric copy of itself adds a self-loop
        on that minimum.
    annotations : dict, optional
        JSON data to keep with the store (:meth:`Store.set_annotation`), written
        when the scan opens it, before any start runs, so that a scan killed at
        any moment still carries them; keys the store already has are kept.
        ``landscape scan`` keeps its model description there, from which
        ``landscape scan --store PATH`` resumes without the model flags.
    certify : bool
        Certify every distinct strict minimum and strict saddle with
        :func:`~landscape.certify` (a computer-assisted proof in ball arithmetic; the model
        must provide :meth:`Model.enclose_derivatives`): ``Point.certificate``.  The
        certificates are stored with the scan (resuming a finished store with
        ``certify=True`` adds them) and do not change its other results.

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
    The pipeline, chunk by chunk of starts (:func:`~landscape.scan.run_starts`):
    each start's initial point is drawn from its own seed
    (:func:`~landscape.scan.initial_points`); batched gradient descent records
    near-critical plateaus down to `visit_gtol`, then
    :func:`~landscape.descend_and_polish` certifies the end to `gtol`; every
    end point is classified (a descent that ends at a saddle is a saddle);
    plateaus (and stops beside a saddle) are polished by Newton and classified:
    the saddles each start visited.  Each chunk is committed to the store in
    one transaction.  When every start is done, the end points and visited
    saddles are deduplicated modulo the model's symmetry group and its
    critical manifolds (:func:`~landscape.deduplicate`), each saddle is
    descended from along +- its most negative curvature direction (or from
    its witness, for a non-strict saddle), and the distinct points, basins and
    saddle -> minimum edges are stored and returned as a :class:`Scan`.

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
    if not isinstance(certify, bool):
        raise TypeError(f"certify must be True or False, got {certify!r}")
    if certify and type(model).enclose_derivatives is Model.enclose_derivatives:
        model.enclose_derivatives(np.zeros(model.n_params), 0.0)   # its TypeError says why
    if not isinstance(connect, bool):
        raise TypeError(f"connect must be True or False, got {connect!r}")
    annotations = _check_annotations(annotations)
    check_executor(executor)
    owned = not isinstance(store, Store)
    path = store.path if isinstance(store, Store) else (
        None if store is None else _store_path(store))

    seed = _stored_seed(path if owned else store) if rng is None else None
    seed = seed if seed is not None else seed_settings(rng)
    init_spec, X0_all = init_settings(model, init, n_starts)
    if lr is None:
        lr = 1.0 / estimate_lambda_max(model, probe_starts(
            model, dict(seed=seed, init=init_spec), X0_all, n_starts))
    lr = as_positive_float(lr, "lr")
    settings = dict(model=fingerprint(model), n_starts=n_starts, seed=seed, init=init_spec,
                    lr=lr, gtol=gtol, coarse_gtol=coarse_gtol, visit_gtol=visit_gtol,
                    maxiter=maxiter, loss_rtol=loss_rtol, xtol=xtol, saddle_step=saddle_step)
    if connect:                 # absent when False: stores written before it stay resumable
        settings["connect"] = True

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
        if pending.size == 0 and st.is_complete:
            if certify:
                certify_points(model, st, Scan.from_store(st).points)
            return Scan.from_store(st)
        chunks = plan_chunks(pending, chunk_size, parallel=executor is not None)
        allowed = int(DIVERGED_TOLERANCE * n_starts)
        diverged = _n_diverged(model, st) if len(finished) else 0
        n_run = len(finished)
        clock = time.perf_counter()
        with tqdm(total=n_starts, initial=n_starts - len(pending), disable=not progress,
                  desc="scan", unit="start", leave=False) as bar:
            for chunk in run_chunks(model, settings, chunks, X0_all, executor):
                diverged += int(np.count_nonzero(chunk.status == int(Status.DIVERGED)))
                n_run += len(chunk)
                if diverged > allowed:
                    removed = created and st.n_finished() == 0
                    n_kept = st.n_finished()
                    if removed:             # it holds nothing: the next try starts afresh
                        owned = False
                        st.remove()
                    raise divergence_error(
                        model, settings, X0_all, n_diverged=diverged, n_run=n_run,
                        path=None if st.path == ":memory:" else st.path, n_kept=n_kept,
                        removed=removed)
                now = time.perf_counter()
                st.write_chunk(chunk, elapsed=now - clock)
                clock = now
                bar.update(len(chunk))
        finalize(model, st, settings)
        if certify:
            certify_points(model, st, Scan.from_store(st).points)
        st.add_wall_seconds(time.perf_counter() - clock)
        result = Scan.from_store(st)
        n_div = int(np.count_nonzero(result.outcomes.status == int(Status.DIVERGED)))
        if n_div:
            warnings.warn(f"{n_div} of {n_starts} starts diverged with lr = {lr:.4g}; they are "
                          "ends with status DIVERGED (Scan.unresolved_ends), not points.  A "
                          "smaller lr avoids them", LandscapeWarning, stacklevel=2)
        return result
    finally:
        if owned:
            st.close()


def plan_chunks(pending, chunk_size, *, parallel):
    """The tasks of a scan: the pending start indices cut into chunks of at most `chunk_size`.

    In-process (``parallel=False``) every chunk but the last holds `chunk_size` starts.
    For an executor the chunks have equal sizes, and the starts of the last two are cut
    into chunks of a quarter of that size, so that the workers run out of work at about
    the same time (a start's cost is not known in advance: a hard one can take ten times
    the median).  Results do not depend on the chunks.

    Examples
    --------
    >>> from landscape.scan.driver import plan_chunks
    >>> [len(c) for c in plan_chunks(np.arange(500), 62, parallel=False)]
    [62, 62, 62, 62, 62, 62, 62, 62, 4]
    >>> [len(c) for c in plan_chunks(np.arange(500), 62, parallel=True)]
    [56, 56, 56, 56, 56, 55, 55, 14, 14, 14, 14, 14, 14, 13, 13]
    """
    n = len(pending)
    if not parallel:
        return [pending[i:i + chunk_size] for i in range(0, n, chunk_size)]
    m = -(-n // chunk_size)
    chunks = np.array_split(pending, m)
    if m < 2:
        return chunks
    tail = np.concatenate(chunks[-2:])
    return chunks[:-2] + np.array_split(tail, min(len(tail), 8))


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


def _stored_seed(store):
    """The seed of an existing store (a path or a Store), None when there is no store."""
    if store is None:
        return None
    try:
        if isinstance(store, Store):
            return store.settings["seed"]
        if os.path.exists(store):
            with Store.open(store) as s:
                return s.settings["seed"]
    except (KeyError, TypeError):
        raise StoreError(f"store {store} holds no scan seed; pass rng=...",
                         str(store)) from None
    return None


def _open_store(store, path, settings):
    """The store to write, holding its write lock; an existing one's arrays are checked."""
    if isinstance(store, Store):
        store.lock_for_writing()
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


def _n_diverged(model, store):
    """Starts stored with status DIVERGED."""
    return int(np.count_nonzero(store.read_outcomes(model.n_params).status ==
                                int(Status.DIVERGED)))
