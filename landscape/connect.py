"""Connect two minima through index-1 saddles: a double-ended path search.

:func:`connect` answers "over which saddles, and how high, does the loss have to
rise to go from minimum A to minimum B?":

1. B is replaced by the copy in its symmetry orbit closest to A
   (:func:`landscape.align`); if that copy *is* A (orbit distance ~ 0) there is
   nothing to connect.
2. A string of images from A to B is relaxed to a minimum-energy path by the
   simplified string method (E, Ren & Vanden-Eijnden 2007): a gradient step on every
   interior image, then the images redistributed at equal arc length.
3. Every interior local maximum of the loss along the string is refined to an
   index-1 saddle with :func:`landscape.find_saddle`.  When the string leaves an end
   downhill at once (a barrier narrower than one image spacing), that end's straight
   segment is sampled more finely, recursively, and its maximum refined too.
4. Both sides of every saddle are descended from (a step of ``saddle_step`` along
   +- its negative-curvature eigenvector, then :func:`landscape.descend_and_polish`)
   to the minima it joins, which are matched to A, B and the minima found so far
   modulo symmetry (:func:`landscape.orbit_distance`).
5. While A and B are not joined, the search recurses between the closest pair of
   minima of their two components.

The result's barrier is the minimax over the joins found, computed by
:func:`landscape.graph.barrier` on the small graph they form.

References
----------
W. E, W. Ren, E. Vanden-Eijnden, "Simplified and improved string method for computing the
minimum energy paths in barrier-crossing events", J. Chem. Phys. 126, 164103 (2007).
G. Henkelman, B. P. Uberuaga, H. Jónsson, "A climbing image nudged elastic band method",
J. Chem. Phys. 113, 9901 (2000).
D. J. Wales, *Energy Landscapes*, Cambridge University Press 2003, Sec. 6.3 (connect).
"""

import dataclasses

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence

from ._results import Result
from ._validation import as_positive_float, as_positive_int, as_rng
from .classify import classify
from .critical import descend_and_polish, find_saddle
from .graph import barrier as graph_barrier
from .models.base import check_model
from .models.symmetry import aligning_element, orbit_distance
from .models.symmetry import align as align_copy
from .spectrum import min_curvature

__all__ = ["connect", "Connection", "Path", "string_path", "PEAK_SAMPLES"]

# the string is converged when no image moved more than this (relative to |x|) in a step
_STRING_XTOL = 1e-7
#: Interior points per segment at which a path's peak_loss samples the loss.
PEAK_SAMPLES = 16
# an end segment whose first image is downhill is refined at most this many times (each
# round divides its length by images - 1: 15^4 ~ 5e4 with 16 images)
_END_ROUNDS = 4


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Path(Result):
    """A discretised path between two points (the relaxed string of :func:`connect`).

    Attributes
    ----------
    x : ndarray of shape (n_images, n_params)
        The images, first and last the two end points.
    loss : ndarray of shape (n_images,)
    distance : ndarray of shape (n_images,)
        Arc length from the first image (cumulative Euclidean distance).
    nit : int
        String iterations.
    peak_loss : float
        The highest loss along the piecewise-linear path, each segment sampled at
        :data:`PEAK_SAMPLES` interior points: the path is continuous, so
        ``peak_loss - L(x[0])`` bounds the barrier between its ends from above
        (up to the sampling).
    """

    x: np.ndarray
    loss: np.ndarray
    distance: np.ndarray
    nit: int
    peak_loss: float = float("nan")


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Connection(Result):
    """Minima joined through index-1 saddles (see :func:`connect`).

    Attributes
    ----------
    x_a : ndarray of shape (n_params,)
        The first minimum.
    x_b : ndarray of shape (n_params,)
        The copy of the second minimum in its symmetry orbit closest to `x_a`
        (the second minimum as given with ``align=False``).
    distance : float
        ``|x_a - x_b|``: the orbit distance between the two (0 for copies; with
        ``align=False`` the distance to the copy given).
    minima : ndarray of shape (n_minima, n_params)
        Every minimum the search met, one per symmetry orbit: ``minima[0]`` is
        `x_a`, ``minima[1]`` is `x_b` (absent when they are copies), then those
        found by descending off saddles.
    minima_loss : ndarray of shape (n_minima,)
    saddles : tuple of CriticalPoint
        Every saddle refined from a maximum of a path (classified; ``success``
        when it is index 1 to ``gtol``).
    joins : ndarray of shape (n_saddles, 2), int
        For each saddle, the minima (rows of `minima`) its two sides descend to,
        in increasing order, -1 where a side reached no minimum.  ``(i, i)``: the saddle joins
        minimum i to a symmetric copy of itself.
    loop_elements : tuple of (GroupElement or None)
        For each saddle whose row of `joins` is ``(i, i)``: the group element g
        mapping the minimum its ``-v`` side descends to onto the one its ``+v``
        side descends to (v its negative-curvature eigenvector), so
        ``g.apply(model, x_minus)`` equals ``x_plus`` to rounding; None for the
        other saddles.  The minimum's own isotropy group makes g unique only up
        to it (see :func:`landscape.aligning_element`).
    chain : tuple of int
        Minima and saddles alternating from `x_a` to `x_b` along the joins,
        minima as ``("minimum", i)`` and saddles as ``("saddle", j)``, over the
        lowest barrier (empty unless ``success``).
    path : Path
        The first relaxed string from `x_a` to `x_b`; ``path.peak_loss - L(x_a)``
        bounds the barrier from above (also when no saddle is found).
    barrier : float
        Highest saddle loss along `chain` minus L(x_a) (NaN unless ``success``;
        0 for copies).
    success : bool
        `x_a` and `x_b` are joined by confirmed minimum-saddle-minimum steps.
    message : str
    """

    x_a: np.ndarray
    x_b: np.ndarray
    distance: float
    minima: np.ndarray
    minima_loss: np.ndarray
    saddles: tuple
    joins: np.ndarray
    loop_elements: tuple
    chain: tuple
    path: Path
    barrier: float
    success: bool
    message: str

    def __post_init__(self):
        object.__setattr__(self, "saddles", tuple(self.saddles))
        object.__setattr__(self, "loop_elements", tuple(self.loop_elements))
        object.__setattr__(self, "chain", tuple(tuple(c) for c in self.chain))

    @property
    def highest_saddle(self):
        """The highest saddle of `chain` (a CriticalPoint; None unless ``success`` with a
        saddle): the one whose loss sets `barrier`."""
        on = [self.saddles[j] for kind, j in self.chain if kind == "saddle"]
        return max(on, key=lambda p: p.loss) if on else None


def string_path(model, x_a, x_b, *, images=16, lr, maxiter=2000, xtol=_STRING_XTOL):
    """Relax the straight line from x_a to x_b to a minimum-energy path (simplified string).

    Each iteration moves every interior image by ``-lr grad L`` (all images in one
    batched gradient call) and redistributes the images at equal arc length along
    the piecewise-linear string (E, Ren & Vanden-Eijnden 2007, Sec. II).  The end
    points stay fixed (they are minima).

    Parameters
    ----------
    model : Model
    x_a, x_b : ndarray of shape (n_params,)
    images : int
        Number of images, end points included (>= 3).
    lr : float
        Gradient step on the images.
    maxiter : int
    xtol : float
        Stop when no image moved more than ``xtol * max(1, |x|)`` in one iteration.

    Returns
    -------
    Path
    """
    t = np.linspace(0.0, 1.0, images)
    X = (1 - t)[:, None] * x_a + t[:, None] * x_b
    scale = max(1.0, float(np.linalg.norm(x_a)), float(np.linalg.norm(x_b)))
    nit = 0
    for nit in range(1, maxiter + 1):
        G = model.grad_kernel(X[1:-1])
        Y = X.copy()
        Y[1:-1] -= lr * G
        Y = _equal_arc_length(Y)
        moved = float(np.max(np.linalg.norm(Y - X, axis=1)))
        X = Y
        if not np.isfinite(moved) or moved <= xtol * scale:
            break
    seg = np.linalg.norm(np.diff(X, axis=0), axis=1)
    loss = model.loss_kernel(X).astype(float)
    return Path(x=X, loss=loss, distance=np.concatenate([[0.0], np.cumsum(seg)]), nit=int(nit),
                peak_loss=max(float(np.max(loss)), _segment_peak(model, X)))


def _segment_peak(model, X):
    """The highest loss at PEAK_SAMPLES interior points of every segment of the path X."""
    t = np.arange(1, PEAK_SAMPLES + 1)[:, None, None] / (PEAK_SAMPLES + 1)
    Y = ((1 - t) * X[None, :-1] + t * X[None, 1:]).reshape(-1, X.shape[1])
    return float(np.max(model.loss_kernel(Y)))


def _equal_arc_length(X):
    """The images redistributed at equal arc length along the piecewise-linear string."""
    seg = np.linalg.norm(np.diff(X, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] == 0:
        return X
    target = np.linspace(0.0, s[-1], len(X))
    out = np.empty_like(X)
    j = np.clip(np.searchsorted(s, target, side="right") - 1, 0, len(X) - 2)
    w = np.where(seg[j] > 0, (target - s[j]) / np.where(seg[j] > 0, seg[j], 1.0), 0.0)
    out[:] = (1 - w)[:, None] * X[j] + w[:, None] * X[j + 1]
    out[0], out[-1] = X[0], X[-1]
    return out


def _interior_maxima(loss):
    """Indices of interior images higher than both neighbours (plateaus: first image)."""
    return [i for i in range(1, len(loss) - 1) if loss[i] > loss[i - 1] and loss[i] >= loss[i + 1]]


class _Minima:
    """The minima met so far, one per symmetry orbit (loss window, then orbit distance)."""

    def __init__(self, model, loss_rtol, xtol):
        self.model, self.loss_rtol, self.xtol = model, loss_rtol, xtol
        self.x, self.loss = [], []

    def match(self, x, loss):
        for i, (y, ly) in enumerate(zip(self.x, self.loss)):
            if abs(loss - ly) > self.loss_rtol * max(1.0, abs(loss)):
                continue
            tol = self.xtol * max(1.0, float(np.linalg.norm(y)))
            if orbit_distance(self.model, y, x, cutoff=tol) <= tol:
                return i
        return None

    def add(self, x, loss):
        i = self.match(x, loss)
        if i is None:
            self.x.append(np.array(x, dtype=float))
            self.loss.append(float(loss))
            i = len(self.x) - 1
        return i


def _components(n, joins):
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in joins:
        if a >= 0 and b >= 0:
            parent[find(a)] = find(b)
    return [find(i) for i in range(n)]


def connect(model, x_a, x_b, *, rng=0, images=16, lr=None, gtol=1e-12, string_maxiter=2000,
            saddle_step=1e-3, max_depth=8, loss_rtol=1e-9, xtol=1e-6, align=True):
    """Connect two minima through index-1 saddles (double-ended path search).

    Aligns `x_b` to `x_a` modulo the model's symmetry, relaxes a string between
    them to a minimum-energy path, refines every interior maximum to an index-1
    saddle (:func:`find_saddle`), descends off both sides of each saddle to
    confirm the minima it joins, and recurses on gaps (see the module notes).

    Parameters
    ----------
    model : Model
    x_a, x_b : array_like of shape (n_params,)
        Two minima (polished: |grad L| small).
    rng : int, Generator or None
        Seeds the classifications (their higher-order tests).
    images : int
        Images of each string, end points included (>= 3).
    lr : float, optional
        Step of the string's gradient steps and of the descents off saddles;
        default ``1 / lambda_max`` of the Hessian at `x_a` (a stable GD step).
    gtol : float
        Tolerance of the saddles (:func:`find_saddle`) and of the minima
        descended to (:func:`descend_and_polish`).
    string_maxiter : int
        Iterations of each string.
    saddle_step : float
        Length of the step off a saddle along +- its negative-curvature
        eigenvector before descending.
    max_depth : int
        Rounds of recursion on gaps (new strings between unjoined minima).
    loss_rtol, xtol : float
        Two minima are one when their losses agree to ``loss_rtol * max(1, |L|)``
        and their orbit distance is <= ``xtol * max(1, |x|)``.
    align : bool
        Replace `x_b` by the copy in its orbit closest to `x_a` first (default).
        False keeps `x_b` as given: the closest copy is not always the one the
        lowest path leads to (e.g. when the straight line to it takes a neuron
        through 0, the non-smooth set, where the string stalls).  A symmetric copy
        of `x_a` is reported as such either way.

    Returns
    -------
    Connection
        Non-convergence and unjoined minima are data (``success=False`` and a
        message), never an exception.

    Notes
    -----
    Saddles whose two sides descend into symmetric copies of one minimum are kept
    (``joins`` row ``(i, i)``): in a network landscape the neuron permutations make
    them common, and pele's connect drops them.  The barrier is the minimax over the
    joins found, from :func:`landscape.graph.barrier`; a lower one may exist
    through saddles the strings did not pass.

    References
    ----------
    E, Ren & Vanden-Eijnden, J. Chem. Phys. 126, 164103 (2007); Wales, *Energy
    Landscapes* (2003), Sec. 6.3.

    Examples
    --------
    Two minima of L = (x^2 - 1)^2 + y^2 with the saddle at the origin:

    >>> import landscape as ls
    >>> m = ls.AutogradModel(lambda z: (z[0]**2 - 1)**2 + z[1]**2, 2)
    >>> c = ls.connect(m, [-1.0, 0.0], [1.0, 0.0])
    >>> c.success, len(c.saddles), round(c.barrier, 12), c.joins.tolist()
    (True, 1, 1.0, [[0, 1]])
    """
    check_model(model)
    x_a = model.check_x(x_a, "x_a")
    x_b = model.check_x(x_b, "x_b")
    images = as_positive_int(images, "images", minimum=3)
    gtol = as_positive_float(gtol, "gtol", allow_zero=True)
    string_maxiter = as_positive_int(string_maxiter, "string_maxiter")
    saddle_step = as_positive_float(saddle_step, "saddle_step")
    max_depth = as_positive_int(max_depth, "max_depth", minimum=0)
    loss_rtol = as_positive_float(loss_rtol, "loss_rtol")
    xtol = as_positive_float(xtol, "xtol")
    rng = as_rng(rng)
    if lr is None:
        lam = classify(model, x_a, rng=rng).lambda_max
        lr = 1.0 / lam if lam is not None and lam > 0 else 1e-2
    lr = as_positive_float(lr, "lr")

    if not isinstance(align, bool):
        raise TypeError(f"align must be True or False, got {align!r}")
    if align:
        x_b = align_copy(model, x_a, x_b)
    distance = float(np.linalg.norm(x_a - x_b))
    loss_a, loss_b = float(model.loss(x_a)), float(model.loss(x_b))
    found = _Minima(model, loss_rtol, xtol)
    found.add(x_a, loss_a)
    if found.match(x_b, loss_b) == 0:
        path = Path(x=np.vstack([x_a, x_b]), loss=np.array([loss_a, loss_b]),
                    distance=np.array([0.0, distance]), nit=0, peak_loss=max(loss_a, loss_b))
        return Connection(x_a=x_a, x_b=x_b, distance=distance, minima=x_a[None].copy(),
                          minima_loss=np.array([loss_a]), saddles=(),
                          joins=np.zeros((0, 2), dtype=int), loop_elements=(),
                          chain=(("minimum", 0),),
                          path=path, barrier=0.0, success=True,
                          message=f"x_b is a symmetric copy of x_a (orbit distance "
                                  f"{distance:.3g}): nothing to connect")
    found.add(x_b, loss_b)
    settings = dict(images=images, lr=lr, gtol=gtol, string_maxiter=string_maxiter,
                    saddle_step=saddle_step, rng=rng)
    saddles, joins, loops = [], [], []
    first_path = None
    pairs = [(0, 1)]
    tried = set()
    for rounds in range(max_depth + 1):
        for i, j in pairs:
            tried.add((min(i, j), max(i, j)))
            xi = found.x[i]
            given = not align and (i, j) == (0, 1)       # x_b as the caller gave it
            xj = found.x[j] if given else align_copy(model, xi, found.x[j])
            path, new = _one_string(model, xi, xj, found, settings)
            first_path = path if first_path is None else first_path
            for p, ends, g in new:
                saddles.append(p)
                joins.append(ends)
                loops.append(g)
        comp = _components(len(found.x), joins)
        if comp[0] == comp[1]:
            break
        pairs = _gap_pairs(model, found, comp, tried)
        if not pairs:
            break
    joins_arr = np.array(joins, dtype=int).reshape(-1, 2)
    comp = _components(len(found.x), joins)
    success = comp[0] == comp[1]
    chain, height = (), float("nan")
    if success:
        chain, level = _chain(found, saddles, joins)
        height = level - loss_a
        message = (f"joined through {sum(1 for k, _ in chain if k == 'saddle')} saddle(s); "
                   f"highest at L = {level:.10g}, barrier {height:.6g} above L(x_a)")
    elif not any(p.success for p in saddles):
        if not saddles:
            message = ("no index-1 saddle: no interior maximum along the relaxed string nor on "
                       "its end segments sampled finely, the loss is monotone from x_a to x_b "
                       "at this resolution")
        else:
            reached = "; ".join(_reached(p, loss_a) for p in saddles)
            message = (f"no index-1 saddle: find_saddle from the {len(saddles)} maxima of the "
                       f"string and its end segments reached {reached}")
        kind = classify(model, x_a, rng=rng).kind
        message += (f"; the string joins x_a ({kind}) to x_b rising at most "
                    f"{first_path.peak_loss - loss_a:.3g} above L(x_a) (Path.peak_loss: an "
                    "upper bound on the barrier)")
        if kind != "strict-minimum":
            message += ("; x_a is not a strict minimum, so the way out of it need not cross "
                        "an index-1 saddle (e.g. a manifold of critical points reaching the "
                        "non-differentiable set)")
    else:
        message = (f"not joined: {len(saddles)} saddle(s) refined, {len(found.x)} minima met, "
                   f"x_a and x_b in different components after {rounds} round(s) of "
                   "recursion; raise max_depth or images; the first string rises at most "
                   f"{first_path.peak_loss - loss_a:.3g} above L(x_a) (Path.peak_loss)")
    return Connection(x_a=x_a, x_b=x_b, distance=distance, minima=np.array(found.x),
                      minima_loss=np.array(found.loss), saddles=saddles, joins=joins_arr,
                      loop_elements=loops, chain=chain, path=first_path, barrier=height,
                      success=bool(success), message=message)


def _reached(p, loss_a):
    """What an unsuccessful find_saddle ended at, for messages."""
    c = p.classification
    if c is None:
        return f"no critical point (|grad L| = {p.grad_norm:.2g})"
    return f"{c.kind} of index {c.index} at L(x_a) {p.loss - loss_a:+.3g}"


def _one_string(model, x_a, x_b, found, settings):
    """Relax a string from x_a to x_b, refine its maxima and descend off them.

    An end whose neighbouring image is already downhill (the barrier out of that
    minimum is narrower than one image spacing) gets its end segment refined by
    :func:`_end_maxima`.

    Returns the path and a list of (CriticalPoint, (i, j), element) with i, j rows of
    `found` and element the GroupElement of a self-loop (i == j >= 0), else None.
    """
    path = string_path(model, x_a, x_b, images=settings["images"], lr=settings["lr"],
                       maxiter=settings["string_maxiter"])
    spacing = path.distance[-1] / (len(path.loss) - 1)
    starts = [(path.x[k], spacing) for k in _interior_maxima(path.loss)]
    for end, nxt in ((0, 1), (-1, -2)):
        if path.loss[nxt] < path.loss[end]:
            starts += _end_maxima(model, path.x[end], path.x[nxt], settings)
    out, seen = [], []
    for x0, step in starts:
        # steps of at most one image spacing keep the search near the path's maximum
        p = find_saddle(model, x0, index=1, gtol=settings["gtol"], rng=settings["rng"],
                        initial_radius=0.5 * step, max_radius=step)
        if not p.success:
            out.append((p, (-1, -1), None))
            continue
        if any(abs(p.loss - q.loss) <= 1e-9 * max(1.0, abs(p.loss))
               and np.linalg.norm(p.x - q.x) <= 1e-6 * max(1.0, np.linalg.norm(q.x))
               for q in seen):
            continue                        # two maxima of one string refined to one saddle
        seen.append(p)
        ends, element = _descend_sides(model, p, found, settings)
        out.append((p, tuple(sorted(ends)), element))
    return path, out


def _end_maxima(model, x_end, x_next, settings):
    """Maxima of the straight segment from a minimum to its string's first image when that
    image is already downhill: the barrier out of the minimum lies within one spacing.

    The segment is sampled at ``images`` points; an interior maximum is returned as a
    start for :func:`find_saddle` (with the sample spacing as its trust radius); while
    the first sample is still downhill of x_end (and there is no interior maximum) the
    first sub-segment is sampled in turn (each round divides the spacing by
    ``images - 1``), at most :data:`_END_ROUNDS` times.  The segment is not relaxed:
    with its far end not a minimum a relaxed string slides away downhill.
    """
    n = settings["images"]
    t = np.linspace(0.0, 1.0, n)[:, None]
    for _ in range(_END_ROUNDS):
        X = (1 - t) * x_end + t * x_next
        loss = model.loss_kernel(X)
        spacing = float(np.linalg.norm(x_next - x_end)) / (n - 1)
        found = [(X[k], spacing) for k in _interior_maxima(loss)]
        if found or not loss[1] < loss[0] or spacing == 0:
            return found
        x_next = X[1]
    return []


def _descend_sides(model, p, found, settings):
    """The rows of `found` that the two sides of saddle p descend to (-1: no minimum), and
    for a self-loop (both sides in one orbit) the element mapping the -v side's minimum
    onto the +v side's (else None)."""
    try:
        _, v = min_curvature(model, p.x)
    except ArpackNoConvergence:
        return (-1, -1), None
    h = settings["saddle_step"]
    with np.errstate(over="ignore", invalid="ignore"):
        d = descend_and_polish(model, np.vstack([p.x + h * v, p.x - h * v]),
                               lr=settings["lr"], gtol=settings["gtol"])
    ends = []
    for x, loss, ok in zip(d.x, d.loss, d.success):
        known = found.match(x, float(loss)) if ok else None
        if known is not None or not ok:        # x_a, x_b and earlier minima need no verdict
            ends.append(-1 if known is None else known)
            continue
        c = classify(model, x, rng=settings["rng"])
        ends.append(found.add(x, float(loss)) if c.is_minimum else -1)
    element = None
    if ends[0] == ends[1] >= 0:
        element = aligning_element(model, d.x[0], d.x[1])
    return tuple(ends), element


def _gap_pairs(model, found, comp, tried):
    """The closest pair of minima (orbit distance) between the components of x_a and x_b."""
    A = [i for i, c in enumerate(comp) if c == comp[0]]
    B = [i for i, c in enumerate(comp) if c == comp[1]]
    best = None
    for i in A:
        for j in B:
            if (min(i, j), max(i, j)) in tried:
                continue
            dist = orbit_distance(model, found.x[i], found.x[j])
            if best is None or dist < best[0]:
                best = (dist, i, j)
    return [] if best is None else [best[1:]]


def _chain(found, saddles, joins):
    """The minimax chain from minimum 0 to minimum 1 (graph.barrier on the joins)."""
    import networkx as nx

    G = nx.DiGraph()
    n = len(found.x)
    for i in range(n):
        G.add_node(i, kind="strict-minimum", loss=found.loss[i])
    for j, (p, (a, b)) in enumerate(zip(saddles, joins)):
        if a < 0 or b < 0:
            continue
        G.add_node(n + j, kind="strict-saddle", loss=p.loss)
        G.add_edge(n + j, a)
        G.add_edge(n + j, b)
    b = graph_barrier(G, 0, 1)
    chain = tuple(("minimum", v) if v < n else ("saddle", v - n) for v in b.path)
    return chain, b.loss
