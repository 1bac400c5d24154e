"""Resuming a scan from its store: the one place that turns stored settings into a scan.

A store keeps every setting of its scan (model fingerprint, seed, starts,
step size, tolerances).  :func:`resume_plan` reads them back as the keyword
arguments of :func:`~landscape.scan` and says which requested settings
disagree with them; :func:`resume_scan` runs the scan with them (the finished
starts are skipped); ``Scan.load(path, model)`` and ``landscape scan --store``
both go through it.
"""

import dataclasses
import os

from .._results import Result
from .._validation import as_positive_int
from ..errors import StoreError
from ..models.base import check_model
from ..store import Store
from .driver import DEFAULT_CHUNK, scan
from .result import Scan
from .seeding import seed_settings
from .verify import verify_scan, verify_stored_ends

__all__ = ["ResumePlan", "resume_plan", "resume_scan", "load_scan", "RESUMED_SETTINGS"]

#: The settings a resumed scan takes from its store (keyword arguments of :func:`scan`).
RESUMED_SETTINGS = ("init", "lr", "gtol", "coarse_gtol", "visit_gtol", "maxiter", "loss_rtol",
                    "xtol", "saddle_step")


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class ResumePlan(Result):
    """How a stored scan resumes (see :func:`resume_plan`).

    Attributes
    ----------
    path : str
        The store.
    n_starts : int
        The scan's number of starts, as stored.
    n_finished : int
        Starts the store holds.
    min_starts : int
        The fewest starts a resumed scan may have: one more than the highest
        finished start (0 for none).
    is_complete : bool
        The store holds a finished scan of `n_starts` starts.
    explicit_init : bool
        The scan ran from explicit initial points, which are not stored: only
        ``ls.scan(model, n_starts, init=X0, store=path, ...)`` with the same
        points resumes it (:func:`resume_scan` cannot).
    options : dict
        Keyword arguments of :func:`~landscape.scan` that repeat the stored
        scan: ``rng=None`` (the stored seed) and :data:`RESUMED_SETTINGS`
        (without ``init`` when `explicit_init`).
    conflicts : dict
        ``{name: stored value}`` for every setting passed to
        :func:`resume_plan` that differs from the stored one (``rng``: the
        stored seed, as :func:`~landscape.scan.seed_settings` gives it).
    annotations : dict
        JSON data kept with the store (``landscape scan`` keeps its model there).
    """

    path: str
    n_starts: int
    n_finished: int
    min_starts: int
    is_complete: bool
    explicit_init: bool
    options: dict
    conflicts: dict
    annotations: dict


def resume_plan(store, **settings):
    """Read how the scan in `store` resumes, and which of `settings` disagree with it.

    Reads without taking the store's lock.

    Parameters
    ----------
    store : str, os.PathLike or Store
        A store written by :func:`~landscape.scan`.
    **settings
        Settings a caller asks for (keywords of :func:`~landscape.scan`:
        ``rng`` and :data:`RESUMED_SETTINGS`; ``init`` as a float scale);
        None means "as stored".  Each one that differs from the stored value
        is listed in :attr:`ResumePlan.conflicts`.

    Returns
    -------
    ResumePlan

    Raises
    ------
    StoreError
        The store is missing, unreadable or damaged.
    TypeError
        An unknown setting.

    Examples
    --------
    >>> import os, tempfile, numpy as np, landscape as ls
    >>> from landscape.scan import resume_plan
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=4)
    >>> path = os.path.join(tempfile.mkdtemp(), "run.db")
    >>> _ = ls.scan(m, 5, rng=0, lr=1.25, store=path, progress=False)
    >>> plan = resume_plan(path, lr=0.25, gtol=1e-12)
    >>> plan.n_starts, plan.min_starts, plan.is_complete, plan.conflicts
    (5, 5, True, {'lr': 1.25})
    """
    unknown = sorted(set(settings) - set(RESUMED_SETTINGS) - {"rng"})
    if unknown:
        raise TypeError(f"resume_plan got unknown settings {unknown}; known: rng, "
                        f"{', '.join(RESUMED_SETTINGS)}")
    with Store.open(store) as st:
        stored, finished = st.settings, st.finished_starts()
        complete, annotations = st.is_complete, st.annotations()
    path = store.path if isinstance(store, Store) else os.fspath(store)
    if not isinstance(stored, dict) or "seed" not in stored:
        raise StoreError(f"store {path} holds no scan settings; it was not written by ls.scan",
                         path)
    explicit = stored["init"]["kind"] != "normal"
    options = {"rng": None, **({} if explicit else {"init": stored["init"]["scale"]})}
    options.update({key: stored[key] for key in RESUMED_SETTINGS if key != "init"})
    conflicts = {}
    for key, value in settings.items():
        if value is None:
            continue
        if key == "rng":
            if seed_settings(value) != stored["seed"]:
                conflicts[key] = stored["seed"]
        elif key not in options or float(value) != float(options[key]):
            conflicts[key] = options.get(key)
    return ResumePlan(path=path, n_starts=int(stored["n_starts"]), n_finished=len(finished),
                      min_starts=int(finished[-1]) + 1 if len(finished) else 0,
                      is_complete=bool(complete), explicit_init=explicit, options=options,
                      conflicts=conflicts, annotations=annotations)


def resume_scan(model, store, *, n_starts=None, executor=None, chunk_size=DEFAULT_CHUNK,
                progress=True, annotations=None, certify=False):
    """Resume (or extend, or reload) the scan in `store` with its stored settings.

    Parameters
    ----------
    model : Model
        The model the scan was run with (a different one is refused).
    store : str, os.PathLike or Store
    n_starts : int, optional
        Default: the stored number.  More starts extend the scan (the first
        ones are the same); fewer than :attr:`ResumePlan.min_starts` are refused.
    executor, chunk_size, progress, annotations, certify
        As in :func:`~landscape.scan`.

    Returns
    -------
    Scan
        The same as one uninterrupted scan with those settings.

    Raises
    ------
    StoreError
        As :func:`resume_plan`; the store was written for another model; its
        scan ran from explicit initial points (resume it with ``ls.scan(model,
        n_starts, init=X0, store=path, ...)``).
    ValueError
        `n_starts` is below the starts the store holds.
    StoreInUseError
        Another process is writing the store.

    Examples
    --------
    >>> import os, tempfile, numpy as np, landscape as ls
    >>> from landscape.scan import resume_scan
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=4)
    >>> path = os.path.join(tempfile.mkdtemp(), "run.db")
    >>> _ = ls.scan(m, 5, rng=0, lr=1.25, store=path, progress=False)
    >>> resume_scan(m, path, n_starts=8, progress=False).n_starts      # 3 more starts
    8
    """
    check_model(model)
    plan = resume_plan(store)
    if plan.explicit_init:
        raise StoreError(f"store {plan.path} was scanned from explicit initial points, which "
                         "are not stored; resume it with ls.scan(model, n_starts, init=X0, "
                         "store=path, ...)", plan.path)
    n = plan.n_starts if n_starts is None else as_positive_int(n_starts, "n_starts")
    if n < plan.min_starts:
        raise ValueError(f"n_starts = {n}: store {plan.path} holds starts 0..{plan.min_starts - 1}"
                         f"; pass n_starts >= {plan.min_starts}, or None to resume the stored "
                         f"scan of {plan.n_starts} starts")
    return scan(model, n, store=store, executor=executor, chunk_size=chunk_size,
                progress=progress, annotations=annotations, certify=certify, **plan.options)


def load_scan(path, model=None, *, verify=False, **options):
    """The body of :meth:`Scan.load`: reload a finished scan, or resume an unfinished one."""
    if not isinstance(verify, bool):
        raise TypeError(f"verify must be True or False, got {verify!r}")
    if verify and model is None:
        raise TypeError("verify=True re-evaluates gradients with the model, so it needs one: "
                        "pass Scan.load(path, model, verify=True)")
    if verify:
        check_model(model)
    with Store.open(path) as store:
        if store.is_complete:
            result = Scan.from_store(store)
            if verify:
                verify_scan(model, result)
            return result
        settings = store.settings
        n = settings.get("n_starts") if isinstance(settings, dict) else None
        done = store.n_finished()
        if verify:
            verify_stored_ends(model, store)
    if model is None:
        raise StoreError(f"store {path} holds an unfinished scan ({done} of {n} starts); "
                         "resume it with Scan.load(path, model) or "
                         "landscape.scan.resume_scan(model, path)", str(path))
    result = resume_scan(model, path, **options)
    if verify:
        verify_scan(model, result)
    return result
