"""What a scan returns: :class:`Scan`, its distinct :class:`Point` s, per-start :class:`Outcomes`.

All three are frozen dataclasses in the library's result vocabulary (``x``,
``loss``, ``grad_norm``, ``lambda_min``, ``success``, ``status``, ``message``)
with ``to_dict()`` / ``from_dict()``; a :class:`Scan` is rebuilt from its store
by :meth:`Scan.from_store`.
"""

import dataclasses
import functools
from collections import Counter

import numpy as np

from .._results import Result
from ..certify import Certificate
from ..classify import Classification
from ..stats import wilson_interval
from ..critical import Status
from ..errors import StoreError
from ..graph import MINIMUM_KINDS, SADDLE_KINDS, basin_graph, write_graph

__all__ = ["Scan", "Point", "Outcomes", "CRITICAL_KINDS"]

#: Kinds of critical points (a scan's distinct points are of these kinds).
CRITICAL_KINDS = MINIMUM_KINDS + SADDLE_KINDS + ("degenerate", "maximum")


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
        Of `x`.
    kind : str
        ``classification.kind``.
    loss, grad_norm : float
        L(x) and |grad L(x)| (certified: at most the scan's gtol).
    lambda_min : float or None
        Smallest Hessian eigenvalue at `x` (``classification.lambda_min``).
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
        ``"descent"`` (a start ended here), ``"visit"`` (a descent passed by),
        ``"saddle-descent"`` (reached by descending off a saddle) or
        ``"connect"`` (a saddle or minimum met by :func:`landscape.connect`
        in a scan with ``connect=True``).
    dimension : int
        Dimension of the manifold of critical points the point stands for
        (the largest ``manifold_nullity`` among its members; 0: isolated).
    n_members : int
        Distinct points of that manifold (modulo symmetry) the scan reached.
    certificate : Certificate or None
        The computer-assisted proof of :func:`~landscape.certify` at `x`, when the scan ran
        with ``certify=True`` (strict minima and strict saddles); None otherwise.
    """

    id: int
    x: np.ndarray
    classification: Classification
    kind: str
    loss: float
    grad_norm: float
    lambda_min: float | None
    basin_count: int
    basin_fraction: float
    basin_interval: np.ndarray
    first_start: int
    found_by: str
    dimension: int = 0
    n_members: int = 1
    certificate: Certificate | None = None

    @property
    def is_minimum(self):
        """A strict or certified degenerate minimum."""
        return self.kind in MINIMUM_KINDS

    @property
    def is_saddle(self):
        """A strict or non-strict saddle."""
        return self.kind in SADDLE_KINDS


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
    loss, grad_norm, lambda_min : ndarray of shape (n_starts,)
        At the end points (``lambda_min`` NaN where it was not computed).
    status : ndarray of shape (n_starts,)
        :class:`~landscape.Status` values of the descent.
    success : ndarray of bool, shape (n_starts,)
        ``status == Status.CONVERGED``: |grad L| <= gtol at the end.
    kind : list of str
        Classification of each end point.
    message : list of str
    """

    start: np.ndarray
    point: np.ndarray
    x: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    lambda_min: np.ndarray
    status: np.ndarray
    success: np.ndarray
    kind: list
    message: list


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Scan(Result):
    """The result of :func:`~landscape.scan`: distinct critical points, basins and the basin graph.

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
    loops : dict
        ``{minimum id: (saddle id, GroupElement)}``: for each minimum that a saddle
        joins to a symmetric copy of itself (a self-loop of the graph), the lowest
        such saddle and the group element g mapping the minimum its ``-v`` side
        descends to onto the one its ``+v`` side descends to
        (:func:`landscape.aligning_element`).

    Notes
    -----
    Every start ends in one of three categories: at a global minimum, at a
    spurious minimum (:attr:`spurious_fraction`), or at no certified minimum
    (:attr:`unresolved_fraction`; :attr:`unresolved_ends` says where: saddles,
    undetermined ``degenerate`` points, starts that did not converge or
    diverged).  A spurious fraction of 0 means little when many ends are
    unresolved.

    ``to_dict()`` gives JSON data and ``Scan.from_dict`` rebuilds the scan
    from it exactly (float64 arrays included); the store stays the way to keep
    and resume a scan (:meth:`load`).
    """

    points: tuple
    outcomes: Outcomes
    edges: tuple
    settings: dict
    path: str | None = None
    wall_seconds: float = 0.0
    traces: dict = dataclasses.field(default_factory=dict)
    annotations: dict = dataclasses.field(default_factory=dict)
    loops: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        put = functools.partial(object.__setattr__, self)
        put("points", tuple(self.points))
        put("edges", tuple(tuple(int(v) for v in e) for e in self.edges))
        put("wall_seconds", float(self.wall_seconds))
        # start indices are the keys (JSON turns them into strings)
        put("traces", {int(k): v for k, v in (self.traces or {}).items()})
        put("annotations", dict(self.annotations or {}))
        # minimum ids are the keys (JSON turns them into strings, the pairs into lists)
        put("loops", {int(q): (int(v[0]), v[1]) for q, v in (self.loops or {}).items()})

    # ---- accessors -------------------------------------------------------------------
    @property
    def n_starts(self):
        """Number of starts."""
        return len(self.outcomes.start)

    @functools.cached_property
    def graph(self):
        """The basin graph (a networkx.DiGraph; see :func:`landscape.graph.basin_graph`)."""
        return basin_graph(self.points, self.edges, n_starts=self.n_starts, loops=self.loops)

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
                                   if c not in MINIMUM_KINDS).items()))

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

    # ---- stores -----------------------------------------------------------------------
    @classmethod
    def load(cls, path, model=None, *, verify=False, **options):
        """Reload a finished scan from its store, or resume an unfinished one.

        Every stored array is checked against its checksum as it is read.
        Reading a finished scan takes no lock: it works while another process
        writes to the store.

        Parameters
        ----------
        path : str or os.PathLike
            A store written by :func:`~landscape.scan`.
        model : Model, optional
            Needed to resume an unfinished scan (with the stored settings, see
            :func:`~landscape.scan.resume_scan`) and to verify.
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
        from .resume import load_scan

        return load_scan(path, model, verify=verify, **options)

    @classmethod
    def from_store(cls, store):
        """The scan a finished store holds (an open :class:`~landscape.Store`).

        The same for a scan just run and one reloaded: :func:`~landscape.scan`
        returns this too.

        Raises
        ------
        StoreError
            The stored start -> point assignment does not match the stored starts.
        """
        settings = store.settings
        n = int(settings["n_starts"])
        rec = store.read_outcomes(settings["model"]["n_params"])
        starts, assigned = store.read_assignment()
        if not np.array_equal(starts, rec.start):
            raise StoreError(f"store {store.path}: the start -> point assignment does not match "
                             "the stored starts; the file is corrupt", store.path)
        from .certificates import read_certificates      # it imports this module

        certificates = read_certificates(store.annotations())
        points = []
        for row in store.read_points():
            c = row["classification"]
            count = int(row["basin_count"])
            points.append(Point(id=int(row["id"]), x=row["x"], classification=c, kind=c.kind,
                                loss=float(c.loss), grad_norm=float(c.grad_norm),
                                lambda_min=c.lambda_min, basin_count=count,
                                basin_fraction=count / n, basin_interval=wilson_interval(count, n),
                                first_start=int(row["first_start"]), found_by=row["found_by"],
                                dimension=int(row["dimension"]),
                                n_members=int(row["n_members"]),
                                certificate=certificates.get(int(row["id"]))))
        outcomes = Outcomes(start=rec.start, point=assigned, x=rec.x, loss=rec.loss,
                            grad_norm=rec.grad_norm, lambda_min=rec.lambda_min,
                            status=rec.status, success=rec.status == int(Status.CONVERGED),
                            kind=[c.kind for c in rec.classification], message=rec.message)
        path = None if store.path == ":memory:" else store.path
        return cls(points=points, outcomes=outcomes, edges=store.read_edges(),
                   settings=settings, path=path, wall_seconds=store.wall_seconds,
                   traces=store.read_traces(), annotations=store.annotations(),
                   loops=store.read_loops())

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
