"""The per-start pipeline of a scan: descend, polish, classify, and find the saddles passed.

:func:`run_starts` is what a scan does to each batch of starts, usable on its
own: batched gradient descent recording near-critical plateaus down to
``visit_gtol``, :func:`~landscape.descend_and_polish` to ``gtol`` (ending
where plain gradient descent would), a classification of every end point, and
the saddles each descent passed (plateaus, and stops beside a saddle),
polished by Newton and classified.  Every start depends on its own row only.
:func:`run_chunk` is the task an executor runs: the same, with the initial
points drawn from the scan's seed.
"""

import dataclasses

import numpy as np

from .._validation import as_batch, as_positive_float, as_positive_int
from ..classify import Classification, classify
from ..critical import Status, descend, descend_and_polish
from ..critical import newton_batch
from ..spectrum import is_positive_definite
from ..graph import SADDLE_KINDS
from ..models.base import check_model
from ..models.symmetry import same_point
from ..store import Chunk
from .seeding import initial_points

__all__ = ["run_starts", "run_chunk", "classify_ends", "descent_traces", "TRACED_STARTS"]

#: Starts whose descent curves are kept (for reports) besides every start that visited a saddle:
#: those with index below this.
TRACED_STARTS = 32


def run_starts(model, X0, *, lr, starts=None, gtol=1e-12, coarse_gtol=1e-3, visit_gtol=1e-4,
               maxiter=100_000):
    """Descend from each row of X0, polish, classify, and find the saddles each descent passed.

    Parameters
    ----------
    model : Model
    X0 : array_like of shape (B, n_params)
        The starts.
    lr : float
        Gradient-descent step size.
    starts : array_like of int, shape (B,), optional
        Start indices (default 0 .. B-1): the labels of the results, and which
        descent curves are kept (index below :data:`TRACED_STARTS`, or a visit).
    gtol, coarse_gtol, visit_gtol, maxiter
        As in :func:`~landscape.scan`.

    Returns
    -------
    Chunk
        Per start: end point, loss, gradient norm, ``lambda_min``, status,
        message, iterations and classification (a diverged start is not
        classified: kind ``not-critical``, status ``DIVERGED``); the visited
        saddles (``visit_start``, ``visit_x``, ``visit_classification``); the
        kept descent curves (``traces``).

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> from landscape.scan import run_starts
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=4)
    >>> c = run_starts(m, m.sample_init(4, rng=0), lr=5 / 4)
    >>> [k.kind for k in c.classification], bool(np.all(c.grad_norm <= 1e-12))
    (['strict-minimum', 'strict-minimum', 'strict-minimum', 'strict-minimum'], True)
    """
    check_model(model)
    X0 = as_batch(X0, model.n_params, "X0")
    starts = np.arange(len(X0)) if starts is None else np.asarray(starts)
    if starts.shape != (len(X0),) or not np.issubdtype(starts.dtype, np.integer):
        raise ValueError(f"starts must hold one integer index per row of X0 ({len(X0)}), got "
                         f"shape {starts.shape} and dtype {starts.dtype}")
    settings = dict(lr=as_positive_float(lr, "lr"), gtol=as_positive_float(gtol, "gtol"),
                    coarse_gtol=as_positive_float(coarse_gtol, "coarse_gtol"),
                    visit_gtol=as_positive_float(visit_gtol, "visit_gtol"),
                    maxiter=as_positive_int(maxiter, "maxiter"))
    with np.errstate(over="ignore", invalid="ignore"):        # divergence is data
        return _descend(model, settings, starts.astype(np.int64), X0)


# Points this process has classified in full during the current scan (one per point modulo
# symmetry: the member farthest from the non-smooth set seen so far), so that a later chunk's
# copy of one of them is not classified again; see classify_ends.  Reset when a task of
# another scan arrives.
_SEEN = {"scan": None, "points": []}


def run_chunk(model, settings, starts, X0=None, scan_id=None):
    """The task of one chunk of a scan (what an executor runs): :func:`run_starts` with the
    scan's settings, the initial points drawn from its seed unless given.

    Parameters
    ----------
    model : Model
    settings : dict
        The scan's settings: ``lr``, ``gtol``, ``coarse_gtol``, ``visit_gtol``,
        ``maxiter``, and ``seed`` and ``init`` when X0 is None.
    starts : array_like of int
    X0 : ndarray of shape (len(starts), n_params), optional
    scan_id : str, optional
        Identifies the scan the chunk belongs to: chunks of one scan run by this process
        share the points classified in full so far (see :func:`classify_ends`).
    """
    starts = np.asarray(starts, dtype=np.int64)
    seen = None
    if scan_id is not None:
        if _SEEN["scan"] != scan_id:
            _SEEN["scan"], _SEEN["points"] = scan_id, []
        seen = _SEEN["points"]
    if X0 is None:
        X0 = initial_points(model, settings, starts)
    with np.errstate(over="ignore", invalid="ignore"):        # divergence is data
        return _descend(model, settings, starts, X0, seen)


def _not_critical(message):
    return Classification(kind="not-critical", loss=float("nan"), grad_norm=float("nan"),
                          message=message)


def _descend(model, settings, starts, X0, seen=None):
    B, n = X0.shape
    lr, gtol, maxiter = settings["lr"], settings["gtol"], settings["maxiter"]
    d = descend(model, X0, lr=lr, gtol=settings["visit_gtol"], maxiter=maxiter, record=True)
    go = np.isin(d.status, [int(Status.CONVERGED), int(Status.MAXITER)])
    x, loss, gnorm = d.x.copy(), d.loss.copy(), d.grad_norm.copy()
    lam = np.full(B, np.nan)
    status = d.status.copy()
    message = ["descent: " + Status(s).message for s in d.status]
    it_descent, it_polish, pushes = d.nit.copy(), np.zeros(B, dtype=int), np.zeros(B, dtype=int)
    if go.any():
        # lambda_min of the ends from their classification below (a copy of a point
        # classified once shares its verdict), not one eigvalsh per end here
        p = descend_and_polish(model, d.x[go], lr=lr, gtol=gtol,
                               coarse_gtol=settings["coarse_gtol"], maxiter=maxiter,
                               lambda_min=False)
        x[go], loss[go], gnorm[go], lam[go] = p.x, p.loss, p.grad_norm, p.lambda_min
        status[go] = p.status
        for j, i in enumerate(np.flatnonzero(go)):
            message[i] = p.message[j]
        it_descent[go] += p.nit_descent
        it_polish[go], pushes[go] = p.nit_polish, p.pushes
    # a diverged start is not classified: its end is a far-away point, not a candidate
    ended = ((status != int(Status.DIVERGED)) & np.isfinite(loss)
             & np.all(np.isfinite(x), axis=1))
    tolerances = dict(loss_rtol=settings.get("loss_rtol", 1e-9), xtol=settings.get("xtol", 1e-6))
    classes = classify_ends(model, x, ended, gtol=gtol, seen=seen, **tolerances)
    for i in np.flatnonzero(np.isnan(lam) & (status == int(Status.CONVERGED))):
        if classes[i].lambda_min is not None:
            lam[i] = classes[i].lambda_min
    status[~ended] = int(Status.DIVERGED)
    v_start, v_x, v_class = _visits(model, d, go, gtol, tolerances, seen)
    return Chunk(start=starts, x=x, loss=loss, grad_norm=gnorm, lambda_min=lam,
                 status=status, message=message, nit_descent=it_descent,
                 nit_polish=it_polish, pushes=pushes, classification=classes,
                 visit_start=starts[v_start], visit_x=v_x, visit_classification=v_class,
                 traces=descent_traces(d, starts, it_descent, loss, gnorm, v_start))


#: Verdicts that are properties of an isolated critical point (its Hessian's inertia), shared
#: by every image of it under the symmetry group, which acts by isometries preserving L.
_POINT_VERDICTS = ("strict-minimum", "strict-saddle", "maximum")


def classify_ends(model, X, ended, *, gtol, loss_rtol=1e-9, xtol=1e-6, seen=None):
    """Classifications of the end points X (B, n_params) of a batch of starts.

    Ends that are one critical point up to symmetry are classified once: an end whose loss
    agrees with an already classified end's within ``loss_rtol * max(1, |L|)``, whose own
    gradient norm is <= gtol, and whose orbit distance to it is <= ``xtol * max(1, |x|)``
    (the scan's deduplication rule) gets that end's verdict where the verdict is a property
    of an isolated critical point -- strict minimum, strict saddle, maximum: the group acts
    by isometries that preserve L, so the Hessian spectra agree -- with its own loss and
    gradient norm.  Other ends (degenerate points, where nearby points of one manifold can
    differ) are classified each.  An end that did not end (``ended`` False: diverged) gets
    kind ``not-critical``.

    In a COLT'21 scan most of 500 ends are copies of two or three points; one dense
    eigendecomposition each instead of one per end is most of a scan's classification cost.

    ``seen`` (a list this function updates) carries the points classified in full by earlier
    batches of the same scan, each with its smooth radius: a batch's member that matches one
    of them and lies strictly nearer the non-smooth set gets its point verdict without a
    classification of its own -- it cannot be the member the scan's deduplication keeps (the
    farthest one, the first of ties), which is always classified in full where it is met.
    In a k = 20 scan of 500 starts in chunks of 128 that saves most of the four full
    classifications of each of its dozen points.
    """
    B = len(X)
    classes = [None] * B
    loss = np.full(B, np.nan)
    if np.any(ended):
        loss[ended] = model.in_chunks(model.loss_kernel, X[ended], out_shape=())
    groups = []                                 # rows that are one point modulo symmetry
    for i in range(B):
        if not ended[i]:
            classes[i] = _not_critical(Status.DIVERGED.message)
            continue
        for g in groups:
            if same_point(model, X[i], loss[i], X[g[0]], loss[g[0]], loss_rtol=loss_rtol,
                          xtol=xtol):
                g.append(i)
                break
        else:
            groups.append([i])
    for g in groups:
        # classify in full the member the deduplication keeps (the one farthest from the
        # non-smooth set, the first of ties), so the stored point's verdict is its own and
        # a scan's result does not depend on how its starts were chunked
        smooth = [model.smooth_radius(X[i]) for i in g]
        r = g[int(np.argmax(smooth))]
        c = classes[r] = _classify_or_reuse(model, X[r], float(loss[r]), max(smooth), gtol,
                                            loss_rtol, xtol, seen)
        for i in g:
            if i == r:
                continue
            classes[i] = (_shared_verdict(model, c, X[i], float(loss[i]), gtol)
                          or classify(model, X[i], gtol=gtol))
    return classes


def _shared_verdict(model, c, x, loss, gtol):
    """c with x's own loss and gradient norm, where x is a copy (modulo symmetry) of the point
    c classifies and c's verdict is a property of that isolated point (the group acts by
    isometries preserving L: the Hessian spectra agree); None where x must be classified."""
    if c.kind in _POINT_VERDICTS and model.is_differentiable(x):
        gn = float(np.linalg.norm(model.grad(x)))
        if gn <= gtol:
            return dataclasses.replace(c, loss=loss, grad_norm=gn)
    return None


def descent_traces(d, starts, nit, loss, grad_norm, visited):
    """The descent curves a scan keeps: of the starts below :data:`TRACED_STARTS` and of the
    starts that visited a saddle, each ending with its final (polished) point.

    A visit is a plateau of the descent or its stop beside a saddle; a visiting
    start without a plateau gets its stop as the mark.

    Parameters
    ----------
    d : Descent
        The recorded descent (``descend(..., record=True)``) of the rows.
    starts : ndarray of int, shape (B,)
        Start index of each row.
    nit : ndarray of shape (B,)
        Gradient steps of each row, descent and polish together.
    loss, grad_norm : ndarray of shape (B,)
        At each row's final point.
    visited : ndarray of int
        Rows that visited a saddle.

    Returns
    -------
    list of dict
        Keys ``start`` and the arrays ``at``, ``loss``, ``grad_norm``,
        ``plateau_at``, ``plateau_loss``, ``plateau_grad_norm``.
    """
    out = []
    traced = (starts < TRACED_STARTS) | np.isin(np.arange(len(starts)), visited)
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
            grad_norm=np.append(g, grad_norm[r]),
            plateau_at=marks[0], plateau_loss=marks[1], plateau_grad_norm=marks[2]))
    return out


def _classify_or_reuse(model, x, loss, smooth, gtol, loss_rtol, xtol, seen):
    """classify(x), or the verdict of a point in `seen` that x is a copy of, where x lies
    strictly nearer the non-smooth set than that point's member (see classify_ends)."""
    if seen is None:
        return classify(model, x, gtol=gtol)
    match = None
    for entry in seen:
        y, c, _ = entry
        if same_point(model, x, loss, y, c.loss, loss_rtol=loss_rtol, xtol=xtol):
            match = entry
            break
    if match is not None and smooth < match[2]:
        shared = _shared_verdict(model, match[1], x, loss, gtol)
        if shared is not None:
            return shared
    c = classify(model, x, gtol=gtol)
    if match is None:
        seen.append([x, c, smooth])
    elif smooth >= match[2]:
        match[:] = [x, c, smooth]
    return c


def _visits(model, d, go, gtol, tolerances, seen=None):
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
    if len(rows):
        r = newton_batch(model, X, gtol=gtol)
        Xp, ok = r.x, r.success
    else:
        Xp, ok = X, []
    keep_rows, keep_x, keep_c = [], [], []
    good = np.asarray(ok, dtype=bool)
    classes = iter(classify_ends(model, Xp[good], np.ones(int(good.sum()), dtype=bool),
                                 gtol=gtol, seen=seen, **tolerances))
    for r, xp, g in zip(rows, Xp, good):
        if not g:
            continue
        c = next(classes)
        if c.kind in SADDLE_KINDS:
            keep_rows.append(r)
            keep_x.append(xp)
            keep_c.append(c)
    return (np.array(keep_rows, dtype=np.int64), np.array(keep_x).reshape(len(keep_rows), n),
            keep_c)
