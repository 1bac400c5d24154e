r"""Canonical forms and orbit distances modulo a model's symmetry group.

Two parameter vectors related by a symmetry of the loss (a relabelling of the
hidden neurons, a rotation of input space that permutes the teacher, a
rescaling of a neuron's two layers) are the same critical point.
:func:`orbit_distance` measures how far apart two points are *after* the best
alignment by the group, and :func:`canonicalize` picks one representative per
orbit.

The groups
----------
Neurons always carry a permutation group.  On top of it:

* :class:`~landscape.ReluTeacherStudent` — every orthogonal map Q of input space
  with ``V Q^T = P V`` for a permutation P of the teacher rows (``F(W Q^T) =
  F(W)``).  Q preserves span(V) and its orthogonal complement, so the group is
  ``G_span x O(d - r)`` (r = rank V): a finite group ``G_span`` acting on the
  span, found from the teacher's Gram matrix (``P V V^T P^T = V V^T`` is
  necessary and sufficient for such a Q to exist), and *every* rotation of the
  complement — a continuous symmetry when n < d.  For ``V = I_d``, ``G_span`` is
  the group of coordinate permutations: the symmetry permutes neurons (rows of
  W) and input coordinates (columns of W) simultaneously.  Positively parallel
  teacher rows are merged first (``sigma(v.x) + sigma(c v.x) = (1 + c)
  sigma(v.x)``) and zero rows dropped: the group is that of the teacher
  *function* — except that a target with several antipodal pairs
  (``sigma(u.x) - sigma(-u.x) = u.x`` is linear) can have further symmetries,
  which are not quotiented out.
* :class:`~landscape.TwoLayerReLU` — the rescalings (a_i, w_i) -> (a_i / c, c w_i),
  c > 0, and the orthogonal maps that preserve the target: for a
  :class:`~landscape.ReluTarget` those permuting the teacher neurons together
  with their output weights a*_j, for a :class:`~landscape.LinearTarget` beta
  those fixing beta (``O(d - 1)`` on the complement of beta: the full continuous
  group is matched, not only invariants) and the sign flip (a, W) -> (-a, -W)
  (f(x) -> -f(-x): the target is odd and x ~ N(0, I) symmetric).
* :class:`~landscape.EmpiricalReLU` — permutations among neurons with the same
  frozen output sign a_r (the data are not assumed to have symmetries).
* Any other model (e.g. :class:`~landscape.AutogradModel`) declares no
  symmetry: the orbit of x is {x}.

Implementation
--------------
Points are mapped to a *feature matrix* Z with one row per neuron, in an
orthonormal basis ``[B | B_perp]`` adapted to span(V): columns
``[fixed | span | complement]``.  A group element acts as
``Z -> P [F | S M^T | C R^T]`` (P a neuron permutation, M in ``G_span``, R in
``O(d - r)``); the action is an isometry of the flat parameters, so
``min_g |x - g y|`` is a pseudo-metric on orbits.  For :class:`TwoLayerReLU`
each neuron is first put in balanced form (see :func:`canonicalize`), so the
non-compact rescalings are quotiented out exactly and the remaining group is
again isometric.

The teacher group ``G_span`` is cached on the model (a private attribute) the
first time it is needed.  It is stored as an explicit list of orthogonal maps
when it has at most 720 elements; larger groups are supported when the merged
teacher directions are mutually orthogonal (e.g. ``V = I_d`` with d >= 7), where
``G_span`` permutes them within classes of equal weight.  A larger group of
non-orthogonal teacher directions is truncated to its first 720 elements with a
:class:`~landscape.LandscapeWarning`.
"""

import dataclasses
import itertools
import math
import numbers
import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ..errors import LandscapeWarning
from ._kernels import row_norms
from .base import check_model
from .empirical import EmpiricalReLU
from .teacher_student import ReluTeacherStudent
from .two_layer import LinearTarget, TwoLayerReLU

__all__ = ["canonicalize", "orbit_distance", "orbit_norms"]

# Sort keys and refinement signatures compare values quantised to this fraction
# of |Z| (rounding noise of a group action is ~1e-16 |Z|).
_KEY_RTOL = 1e-10
# Teacher directions / weights / Gram entries equal to this (relative) tolerance
# are treated as equal when the teacher group is computed.
_TEACHER_RTOL = 1e-10
# A complement row is linearly independent of the previous ones when its
# residual exceeds this fraction of |Z| (canonical Gram-Schmidt).
_RANK_RTOL = 1e-10
# Finite span groups up to this order are enumerated (alignment exact).
_MAX_ENUMERATED = 720
# Alternating assignment stops after this many rounds or when the distance
# decreases by less than _STALL_RTOL |Z|.
_MAX_ALTERNATIONS = 50
_STALL_RTOL = 1e-9
# A distance below this fraction of |Z| is a zero: stop searching.
_EXACT_RTOL = 1e-14
# Integer encodings used by colour refinement: colour * 2**40 + quantised value.
_SHIFT = 2**40
_CLIP = 2**39 - 1
_ATTRIBUTE = "_symmetry_structure"


# ---- the symmetry structure of a model ------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class _Structure:
    """How a model's symmetry group acts on its feature matrix Z (one row per neuron).

    Columns of Z are ``[fixed (n_fixed) | span (n_span) | complement (n_comp)]``;
    ``span_kind`` says how the finite group acts on the span block:
    ``"trivial"`` (no span block), ``"finite"`` (S -> S @ span_maps[h].T) or
    ``"coordinate"`` (S -> S[:, sigma] for sigma permuting within span_classes).
    """

    family: str                 # "teacher-student" | "two-layer" | "empirical" | "none"
    basis: object               # (d, d) orthogonal [B | B_perp], or None for the identity
    n_fixed: int
    n_span: int
    n_comp: int
    span_kind: str
    span_maps: object           # (g, n_span, n_span) for "finite", identity first
    span_classes: object        # (n_span,) class labels for "coordinate"
    row_labels: np.ndarray      # (k,) neurons may only be permuted within a label
    order: int                  # order of G_span (exact integer)
    complete: bool              # False when G_span was truncated
    odd: bool = False           # Z -> -Z is a symmetry too (an odd target: f(x) -> -f(-x))

    @property
    def row_groups(self):
        return tuple(np.flatnonzero(self.row_labels == g) for g in np.unique(self.row_labels))


def _structure(model):
    """The model's cached :class:`_Structure` (computed on first use)."""
    cached = getattr(model, "__dict__", {}).get(_ATTRIBUTE)
    if cached is not None:
        return cached
    st = _build_structure(model)
    try:
        setattr(model, _ATTRIBUTE, st)
    except AttributeError:  # a model that forbids new attributes: recompute each time
        pass
    return st


def _build_structure(model):
    if isinstance(model, ReluTeacherStudent):
        V = model.teacher
        return _teacher_structure("teacher-student", V, np.ones(V.shape[0]),
                                  model.n_students, n_lead=0)
    if isinstance(model, TwoLayerReLU):
        target = model.target
        if isinstance(target, LinearTarget):
            beta = target.beta
            # Q must fix beta: a single labelled direction has a trivial span group.  The
            # target is odd and x ~ N(0, I) symmetric, so f(x) -> -f(-x), i.e.
            # (a, W) -> (-a, -W), leaves the loss unchanged too.
            return dataclasses.replace(
                _teacher_structure("two-layer", beta[None], np.ones(1), model.n_hidden,
                                   n_lead=1), odd=True)
        return _teacher_structure("two-layer", target.V, target.a_star, model.n_hidden,
                                  n_lead=1)
    if isinstance(model, EmpiricalReLU):
        labels = (model.a > 0).astype(np.intp)
        return _Structure(family="empirical", basis=None, n_fixed=model.input_dim, n_span=0,
                          n_comp=0, span_kind="trivial", span_maps=None, span_classes=None,
                          row_labels=labels, order=1, complete=True)
    return _Structure(family="none", basis=None, n_fixed=model.n_params, n_span=0, n_comp=0,
                      span_kind="trivial", span_maps=None, span_classes=None,
                      row_labels=np.zeros(1, dtype=np.intp), order=1, complete=True)


def _teacher_structure(family, V, weights, k, *, n_lead):
    """Structure for a target sum_j weights[j] sigma(v_j . x) (or a linear target)."""
    d = V.shape[1]
    U, omega = _merge_directions(V, weights)
    basis, r, kind, maps, classes, order, complete = _span_group(U, omega, d)
    if kind == "trivial":
        n_fixed, n_span = n_lead + r, 0
    else:
        n_fixed, n_span = n_lead, r
    return _Structure(family=family, basis=basis, n_fixed=n_fixed, n_span=n_span,
                      n_comp=d - r, span_kind=kind, span_maps=maps, span_classes=classes,
                      row_labels=np.zeros(k, dtype=np.intp), order=order, complete=complete)


def _merge_directions(V, weights):
    """Unit directions u_j and weights omega_j of the target sum_j omega_j sigma(u_j . x).

    Zero rows and zero weights are dropped; positively parallel rows are merged.
    """
    norms = row_norms(V)
    w = weights * norms
    wmax = float(np.max(np.abs(w), initial=0.0))
    dirs, omega = [], []
    for v, nv, c in zip(V, norms, w):
        if nv == 0 or c == 0:
            continue
        u = v / nv
        for j, e in enumerate(dirs):
            if np.max(np.abs(u - e)) <= _TEACHER_RTOL:
                omega[j] += c
                break
        else:
            dirs.append(u)
            omega.append(c)
    keep = [j for j, c in enumerate(omega) if abs(c) > _TEACHER_RTOL * wmax]
    U = np.array([dirs[j] for j in keep]).reshape(len(keep), V.shape[1])
    return U, np.array([omega[j] for j in keep])


def _span_group(U, omega, d):
    """Basis [B | B_perp] and the finite group G_span of the labelled directions U.

    Returns (basis, r, kind, maps, classes, order, complete).
    """
    n = U.shape[0]
    if n == 0:
        return None, 0, "trivial", None, None, 1, True
    labels = _quantize(omega, _TEACHER_RTOL * np.max(np.abs(omega)))
    gram = U @ U.T
    _, sv, Vt = np.linalg.svd(U)
    if np.max(np.abs(gram - np.eye(n))) <= _TEACHER_RTOL:
        # Mutually orthogonal directions: they are an orthonormal basis of the span,
        # and G_span permutes them within classes of equal weight.
        r = n
        basis = np.hstack([U.T, Vt[r:].T])
        classes = _dense(labels)
        order = math.prod(math.factorial(int(c)) for c in np.bincount(classes))
        if order == 1:
            kind, maps, classes = "trivial", None, None
        elif order <= _MAX_ENUMERATED:
            kind, maps, classes = "finite", _class_permutation_maps(classes), None
        else:
            kind, maps = "coordinate", None
        if np.array_equal(basis, np.eye(d)):
            basis = None
        return basis, r, kind, maps, classes, order, True

    r = int(np.count_nonzero(sv > _TEACHER_RTOL * sv[0] * max(n, d)))
    basis = None if r == d else Vt.T
    coords = U if basis is None else U @ Vt[:r].T           # (n, r), full column rank
    gram_q = _quantize(gram, _TEACHER_RTOL)
    perms, complete = _automorphisms(labels, gram_q, _MAX_ENUMERATED)
    maps = []
    for perm in perms:
        # Q u_j = u_perm[j]  <=>  coords @ M.T = coords[perm]
        if np.array_equal(perm, np.arange(perm.size)):
            maps.append(np.eye(r))                          # exactly, so d(x, x) = 0
            continue
        Mt = np.linalg.lstsq(coords, coords[perm], rcond=None)[0]
        M = Mt.T
        if (np.max(np.abs(M.T @ M - np.eye(r))) <= 1e-8
                and np.max(np.abs(coords @ Mt - coords[perm])) <= 1e-8):
            maps.append(M)
    if not complete:
        warnings.warn(f"the teacher's symmetry group has more than {_MAX_ENUMERATED} elements "
                      "and its directions are not mutually orthogonal; only the first "
                      f"{_MAX_ENUMERATED} are used, so orbit_distance is an upper bound and "
                      "canonicalize is not orbit-invariant for this model",
                      LandscapeWarning, stacklevel=6)
    if len(maps) <= 1:
        return basis, r, "trivial", None, None, 1, complete
    return basis, r, "finite", np.array(maps), None, len(maps), complete


def _class_permutation_maps(classes):
    """Permutation matrices M (S -> S @ M.T = S[:, sigma]) permuting within classes."""
    s = classes.size
    cells = [np.flatnonzero(classes == c) for c in np.unique(classes)]
    maps = []
    for choice in itertools.product(*(itertools.permutations(cell) for cell in cells)):
        sigma = np.arange(s)
        for cell, image in zip(cells, choice):
            sigma[cell] = image
        M = np.zeros((s, s))
        M[np.arange(s), sigma] = 1.0
        maps.append(M)
    return np.array(maps)


def _automorphisms(labels, gram_q, limit):
    """Permutations preserving the labels and the (quantised) Gram matrix.

    Backtracking with colour-refinement pruning; identity first.  Returns
    (list of index arrays, complete) where complete is False when more than
    `limit` were found (the first `limit` are returned).
    """
    n = labels.size
    colors, _ = _refine(_dense(labels), np.zeros(0, dtype=np.int64), None, gram_q)
    if np.unique(colors).size == n:
        return [np.arange(n)], True
    found = []
    perm = np.full(n, -1)
    used = np.zeros(n, dtype=bool)

    def extend(pos):
        if len(found) > limit:
            return
        if pos == n:
            found.append(perm.copy())
            return
        for t in range(n):
            if used[t] or colors[t] != colors[pos]:
                continue
            if not np.array_equal(gram_q[pos, :pos], gram_q[t, perm[:pos]]):
                continue
            perm[pos], used[t] = t, True
            extend(pos + 1)
            perm[pos], used[t] = -1, False

    extend(0)
    return found[:limit], len(found) <= limit


# ---- features: flat parameters <-> one row per neuron ---------------------------------

def _norms(A):
    """Row norms, also for matrices without columns."""
    return row_norms(A) if A.shape[-1] else np.zeros(A.shape[:-1])


def _balance(a, W):
    """Balanced form (a_i / c_i, c_i w_i) with |a_i / c_i| = |c_i w_i|; 0 when a_i w_i = 0."""
    norms = row_norms(W)
    live = (a != 0) & (norms > 0)
    c = np.zeros_like(a)
    c[live] = np.sqrt(np.abs(a[live]) / norms[live])
    ab = np.zeros_like(a)
    ab[live] = a[live] / c[live]
    return ab, W * c[:, None]


def _to_features(model, st, x):
    if st.family == "none":
        return x[None, :].copy()
    if st.family == "two-layer":
        a, W = model.unflatten(x)
        a, W = _balance(a, W)
    else:
        a, W = None, model.unflatten(x)
    Y = W if st.basis is None else W @ st.basis
    return Y if a is None else np.hstack([a[:, None], Y])


def _from_features(model, st, Z):
    if st.family == "none":
        return Z[0].copy()
    if st.family == "two-layer":
        a, Y = Z[:, 0], Z[:, 1:]
    else:
        a, Y = None, Z
    W = Y if st.basis is None else Y @ st.basis.T
    x = W.ravel()
    return x.copy() if a is None else np.concatenate([a, x])


def _split(st, Z):
    f, s = st.n_fixed, st.n_span
    return Z[:, :f], Z[:, f:f + s], Z[:, f + s:]


def _act(st, Z, h, R):
    """The group element (span element h, complement rotation R) applied to Z."""
    F, S, C = _split(st, Z)
    if h is not None:
        S = S @ st.span_maps[h].T if st.span_kind == "finite" else S[:, h]
    if R is not None:
        C = C @ R.T
    return np.hstack([F, S, C])


def _sort_within(S, classes):
    """Each row of S sorted within every class of columns (invariant under the class group)."""
    out = np.empty_like(S)
    for c in np.unique(classes):
        cols = np.flatnonzero(classes == c)
        out[:, cols] = np.sort(S[:, cols], axis=1)
    return out


def _row_invariants(st, Z, exact_span):
    """Per-neuron features invariant under the input-space group (span kept if exact_span)."""
    F, S, C = _split(st, Z)
    parts = [F]
    if st.n_span:
        if exact_span:
            parts.append(S)
        elif st.span_kind == "coordinate":
            parts.append(_sort_within(S, st.span_classes))
        else:
            parts.append(_norms(S)[:, None])
    if st.n_comp:
        parts.append(_norms(C)[:, None])
    return np.hstack(parts)


# ---- alignment (orbit distance) -------------------------------------------------------

def _assign(st, A, B):
    """Neuron permutation perm minimising |A - B[perm]| (Hungarian, within row groups)."""
    perm = np.empty(A.shape[0], dtype=np.intp)
    for idx in st.row_groups:
        rows, cols = linear_sum_assignment(cdist(A[idx], B[idx], "sqeuclidean"))
        perm[idx[rows]] = idx[cols]
    return perm


def _best_span(st, S, Sp):
    """The span element best aligning Sp (rows already matched) to S."""
    if st.span_kind == "finite":
        scores = np.einsum("ba,gba->g", S.T @ Sp, st.span_maps)
        return int(np.argmax(scores))
    return _coordinate_assignment(st.span_classes, S, Sp)


def _coordinate_assignment(classes, S, Sp):
    """sigma (within classes) minimising |S - Sp[:, sigma]| (Hungarian on columns)."""
    sigma = np.arange(S.shape[1])
    for c in np.unique(classes):
        cols = np.flatnonzero(classes == c)
        rows, match = linear_sum_assignment(cdist(S[:, cols].T, Sp[:, cols].T, "sqeuclidean"))
        sigma[cols[rows]] = cols[match]
    return sigma


def _procrustes(C, Cp):
    """The rotation R maximising <C, Cp R^T> (orthogonal Procrustes, by SVD)."""
    U, _, Vt = np.linalg.svd(C.T @ Cp)
    return U @ Vt


def _starts(st, Z, Zp):
    """Initial group elements: ("h", span element) or ("perm", neuron permutation)."""
    if st.span_kind == "trivial":
        return [("h", None)]
    if st.span_kind == "finite":
        return [("h", g) for g in range(st.span_maps.shape[0])]
    perm = _assign(st, _row_invariants(st, Z, False), _row_invariants(st, Zp, False))
    _, S, _ = _split(st, Z)
    _, Sp, _ = _split(st, Zp)
    by_columns = _coordinate_assignment(st.span_classes, np.sort(S, axis=0), np.sort(Sp, axis=0))
    return [("perm", perm), ("h", by_columns), ("h", np.arange(st.n_span))]


def _align(st, Z, Zp, stop=0.0):
    """min over the group of |Z - g Zp| from several starts (an attained upper bound).

    Stops early once an alignment within `stop` is found (enough to answer
    "is the distance at most `stop`?").
    """
    scale = max(np.linalg.norm(Z), np.linalg.norm(Zp))
    if scale == 0:
        return 0.0
    alternate = st.n_comp > 0 or st.span_kind == "coordinate"
    best = np.inf
    for kind, start in _starts(st, Z, Zp):
        if kind == "h":
            h, R = start, None
            Y = _act(st, Zp, h, None)
            perm = _assign(st, _row_invariants(st, Z, True), _row_invariants(st, Y, True))
        else:
            perm = start
            _, S, C = _split(st, Z)
            _, Sp, Cp = _split(st, Zp[perm])
            h = _best_span(st, S, Sp)
            R = _procrustes(C, Cp) if st.n_comp else None
            Y = _act(st, Zp, h, R)
        val = float(np.linalg.norm(Z - Y[perm]))
        if alternate:
            val = _alternate(st, Z, Zp, perm, val, scale)
        best = min(best, val)
        if best <= max(_EXACT_RTOL * scale, stop):
            break
    return best


def _alternate(st, Z, Zp, perm, val, scale):
    """Block-coordinate descent: span element and rotation given neurons, then neurons."""
    _, S, C = _split(st, Z)
    for _ in range(_MAX_ALTERNATIONS):
        _, Sp, Cp = _split(st, Zp[perm])
        h = _best_span(st, S, Sp) if st.n_span else None
        R = _procrustes(C, Cp) if st.n_comp else None
        Y = _act(st, Zp, h, R)
        new_perm = _assign(st, Z, Y)
        new_val = float(np.linalg.norm(Z - Y[new_perm]))
        if not new_val < val - _STALL_RTOL * scale:
            return min(val, new_val)
        perm, val = new_perm, new_val
    return val


def _lower_bound(st, Z, Zp):
    """A group-invariant lower bound on the orbit distance (Hungarian on invariants).

    For every group element, |Z - g Zp|^2 = sum_i |z_i - (g Zp)_i|^2 is at least
    the sum of squared differences of per-neuron invariants (|F| exact, norms of
    the span and complement blocks, or span rows sorted within classes by the
    rearrangement inequality), so the optimal assignment on invariants bounds it
    from below.
    """
    A, B = _row_invariants(st, Z, False), _row_invariants(st, Zp, False)
    return float(np.linalg.norm(A - B[_assign(st, A, B)]))


# ---- canonical forms ------------------------------------------------------------------

def _quantize(v, q):
    v = np.asarray(v, dtype=float)
    if q <= 0:
        return np.zeros(v.shape, dtype=np.int64)
    return np.clip(np.rint(v / q), -_CLIP, _CLIP).astype(np.int64)


def _dense(values):
    """Dense ranks 0..m-1 of the entries of a 1-D integer array."""
    return np.unique(values, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _dense_rows(M):
    """Dense ranks of the rows of an integer matrix (lexicographic order)."""
    if M.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(M, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _refine(rc, cc, Bq, Gq):
    """Colour refinement of rows and columns until stable.

    rc, cc are dense colours of rows and columns; Bq (rows x cols) and Gq
    (rows x rows) are quantised edge weights (or None).  A row's new colour is
    the rank of (its colour, the sorted multiset of (column colour, weight) and
    (row colour, Gram weight) pairs); likewise for columns.  Ranks of sorted
    signatures make the colours canonical: they do not depend on the order of
    rows and columns.
    """
    while True:
        rparts, cparts = [rc[:, None]], [cc[:, None]]
        if Bq is not None and cc.size:
            rparts.append(np.sort(cc[None, :] * _SHIFT + Bq, axis=1))
            cparts.append(np.sort(rc[None, :] * _SHIFT + Bq.T, axis=1))
        if Gq is not None:
            rparts.append(np.sort(rc[None, :] * _SHIFT + Gq, axis=1))
        new_rc = _dense_rows(np.hstack(rparts))
        new_cc = _dense_rows(np.hstack(cparts)) if cc.size else cc
        if (new_rc.max(initial=-1) == rc.max(initial=-1)
                and new_cc.max(initial=-1) == cc.max(initial=-1)):
            return new_rc, new_cc
        rc, cc = new_rc, new_cc


def _canonical_order(rc, cc, Bq, Gq, row_tiebreak, col_tiebreak):
    """Refine, then individualise until every row and column has its own colour.

    A non-singleton cell is split by individualising its member with the
    smallest raw invariant (``*_tiebreak``, then the index).  Returns the row
    and column orders (indices sorted by final colour).
    """
    if Bq is None and Gq is None:
        # no edges: refinement cannot split cells, individualisation is a sort
        keys = [np.arange(rc.size)] + [row_tiebreak[:, j] for j in
                                       range(row_tiebreak.shape[1] - 1, -1, -1)] + [rc]
        return np.lexsort(keys), np.argsort(cc, kind="stable")
    rc, cc = _refine(rc, cc, Bq, Gq)
    while True:
        for colors, tiebreak, is_row in ((rc, row_tiebreak, True), (cc, col_tiebreak, False)):
            counts = np.bincount(colors) if colors.size else np.zeros(0, dtype=int)
            cells = np.flatnonzero(counts > 1)
            if cells.size:
                members = np.flatnonzero(colors == cells[0])
                pick = min(members, key=lambda i: (tuple(tiebreak[i]), i))
                split = 2 * colors + 1
                split[pick] -= 1
                if is_row:
                    rc, cc = _refine(_dense(split), cc, Bq, Gq)
                else:
                    rc, cc = _refine(rc, _dense(split), Bq, Gq)
                break
        else:
            return np.argsort(rc, kind="stable"), np.argsort(cc, kind="stable")


def _place_rows(st, Y, order):
    """Rows of Y in canonical order, each row group kept on its own positions."""
    out = np.empty_like(Y)
    for g, idx in zip(np.unique(st.row_labels), st.row_groups):
        out[idx] = Y[[i for i in order if st.row_labels[i] == g]]
    return out


def _canonical_complement(C, tol):
    """C R^T for the rotation R given by Gram-Schmidt on the rows of C in order.

    Row i contributes a new basis vector when its residual exceeds tol; the
    result depends only on the Gram matrix C C^T (rotation-invariant).
    """
    k, m = C.shape
    E = np.zeros((0, m))
    for i in range(k):
        if E.shape[0] == m:
            break
        v = C[i].copy()
        for _ in range(2):                      # classical Gram-Schmidt, twice
            v -= E.T @ (E @ v)
        nv = np.linalg.norm(v)
        if nv > tol:
            E = np.vstack([E, v / nv])
    out = np.zeros_like(C)
    out[:, :E.shape[0]] = C @ E.T
    return out


def _row_keys(st, Z, head, q):
    """Initial row colours: row group, quantised fixed features, quantised complement norm."""
    _, _, C = _split(st, Z)
    cols = [st.row_labels[:, None].astype(np.int64), _quantize(head, q)]
    if st.n_comp:
        cols.append(_quantize(_norms(C), q)[:, None])
    return _dense_rows(np.hstack(cols))


def _complement_gram(st, Z, scale):
    if not st.n_comp:
        return None
    _, _, C = _split(st, Z)
    return _quantize(C @ C.T, _KEY_RTOL * scale * scale)


def _finish(st, Y, order, scale):
    out = _place_rows(st, Y, order)
    if st.n_comp:
        f = st.n_fixed + st.n_span
        out[:, f:] = _canonical_complement(out[:, f:], _RANK_RTOL * scale)
    return out


def _canonical_rows(st, Y, scale):
    """Canonical form of Y under neuron permutations and complement rotations only."""
    q = _KEY_RTOL * scale
    head = Y[:, :st.n_fixed + st.n_span]
    _, _, C = _split(st, Y)
    rc = _row_keys(st, Y, head, q)
    tiebreak = np.hstack([head, _norms(C)[:, None]])
    order, _ = _canonical_order(rc, np.zeros(0, dtype=np.int64), None,
                                _complement_gram(st, Y, scale), tiebreak, None)
    return _finish(st, Y, order, scale)


def _canonical_coordinates(st, Z, scale):
    """Canonical form under joint neuron and coordinate permutations (+ rotations)."""
    q = _KEY_RTOL * scale
    F, S, C = _split(st, Z)
    classes = st.span_classes
    rc = _row_keys(st, Z, F, q)
    cc = _dense(classes)
    row_tiebreak = np.hstack([F, _sort_within(S, classes), _norms(C)[:, None]])
    col_tiebreak = np.sort(S, axis=0).T
    row_order, col_order = _canonical_order(rc, cc, _quantize(S, q),
                                            _complement_gram(st, Z, scale),
                                            row_tiebreak, col_tiebreak)
    sigma = np.empty(st.n_span, dtype=np.intp)
    for c in np.unique(classes):
        sigma[classes == c] = [a for a in col_order if classes[a] == c]
    return _finish(st, _act(st, Z, sigma, None), row_order, scale)


def _canonical(st, Z):
    if st.odd:
        # of the canonical forms of Z and -Z, the one that comes last (its leading entry,
        # an output weight, positive); + 0.0 turns -0.0 into 0.0
        forms = [_canonical_one(st, Z) + 0.0, _canonical_one(st, -Z) + 0.0]
        keys = [np.concatenate([_quantize(f, _KEY_RTOL * max(float(np.linalg.norm(f)), 1e-300))
                                .ravel().astype(float), f.ravel()]) for f in forms]
        return forms[1] if _lex_less(keys[0], keys[1]) else forms[0]
    return _canonical_one(st, Z)


def _canonical_one(st, Z):
    scale = float(np.linalg.norm(Z))
    if scale == 0:
        return Z.copy()
    if st.span_kind == "coordinate":
        return _canonical_coordinates(st, Z, scale)
    elements = [None] if st.span_kind == "trivial" else range(st.span_maps.shape[0])
    best, best_key = None, None
    for h in elements:
        cand = _canonical_rows(st, _act(st, Z, h, None), scale)
        key = np.concatenate([_quantize(cand, _KEY_RTOL * scale).ravel().astype(float),
                              cand.ravel()])
        if best is None or _lex_less(key, best_key):
            best, best_key = cand, key
    return best


def _lex_less(a, b):
    diff = np.flatnonzero(a != b)
    return bool(diff.size) and a[diff[0]] < b[diff[0]]


# ---- public API -----------------------------------------------------------------------

def canonicalize(model, x):
    r"""A canonical representative of the orbit of x under the model's symmetry group.

    Parameters
    ----------
    model : Model
        :class:`~landscape.ReluTeacherStudent`, :class:`~landscape.TwoLayerReLU` or
        :class:`~landscape.EmpiricalReLU` (any other model has no declared
        symmetry and x is returned unchanged).
    x : array_like of shape (n_params,)

    Returns
    -------
    ndarray of shape (n_params,)
        ``g x`` for an explicit group element g (up to rounding), so the loss is
        unchanged; for :class:`TwoLayerReLU` a point of the closure of the orbit
        (see Notes).

    Notes
    -----
    Construction.  (1) :class:`TwoLayerReLU`: each neuron is balanced,
    :math:`(a_i, w_i) \to (a_i / c, c\,w_i)` with :math:`c = \sqrt{|a_i| / \|w_i\|}`,
    so that :math:`|a_i| = \|w_i\| = \sqrt{|a_i|\,\|w_i\|}`; a neuron with
    :math:`a_i = 0` or :math:`w_i = 0` becomes exactly 0.  That neuron computes
    the zero function either way, and 0 is the limit of its orbit
    (:math:`c \to 0` or :math:`\infty`) but not a member: the representative then
    lies in the orbit's closure, with the same loss.  (2) The finite teacher
    group: for each span element h (identity only when the group is trivial)
    the neurons are ordered canonically and the lexicographically smallest
    result is kept; when the group is large (orthogonal teacher directions,
    e.g. ``V = I_d`` with d >= 7), rows and input coordinates are ordered
    jointly by colour refinement of the weighted bipartite graph
    neurons x coordinates.  (3) Neuron order: colour refinement on quantised
    per-neuron invariants (and the complement Gram matrix), remaining ties
    broken by individualising the tied neuron with the smallest raw invariant.
    (4) The complement of the teacher span (continuous O(d - r) symmetry when
    rank V = r < d) is rotated by Gram-Schmidt on the neurons in canonical
    order: the canonical complement block depends only on its Gram matrix.

    Guarantees.  Deterministic, and ``canonicalize(g x) == canonicalize(x)`` up
    to rounding (about 1e-15 |x|) for every group element g whenever:

    * the neurons' invariants are distinct after quantisation to 1e-10 |x|
      (generic points — e.g. any point drawn from a continuous distribution);
      or
    * ties that remain after colour refinement are between neurons (and
      coordinates) exchanged by a symmetry of x itself — e.g. ``W = I``, a
      permutation matrix, or the symmetric spurious minima of
      :class:`ReluTeacherStudent` with ``V = I``;

    and, when the complement block is non-empty, the first min(k, d - r) neurons
    in canonical order have linearly independent complement components or
    residuals well above 1e-10 |x|.  Points within ~1e-10 |x| of a quantisation
    boundary or of a rank decision may get representatives that differ by more.
    Two canonical forms that agree prove that the points share an orbit; forms
    that differ do not prove the converse: use :func:`orbit_distance` to decide.

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    >>> W = np.array([[0.9, 0.1, 0.0], [0.2, 1.1, 0.0], [0.0, 0.3, 0.8]])
    >>> Wg = W[[2, 0, 1]][:, [1, 2, 0]]    # relabel neurons and input coordinates
    >>> bool(np.array_equal(ls.canonicalize(m, m.flatten(W)),
    ...                     ls.canonicalize(m, m.flatten(Wg))))
    True
    >>> t = ls.TwoLayerReLU(n_hidden=1, target=ls.LinearTarget([1.0, 0.0]))
    >>> ls.canonicalize(t, t.flatten(([8.0], [[0.0, 0.5]]))).tolist()    # |a| = |w| = 2
    [2.0, 0.0, 2.0]
    """
    check_model(model)
    x = model.check_x(x)
    st = _structure(model)
    return _from_features(model, st, _canonical(st, _to_features(model, st, x)))


def orbit_distance(model, x, y, *, cutoff=None):
    r"""Distance between the orbits of x and y under the model's symmetry group.

    Parameters
    ----------
    model : Model
        As for :func:`canonicalize`.
    x, y : array_like of shape (n_params,)
    cutoff : float, optional
        For "is the distance at most `cutoff`?" decisions (deduplication): a
        group-invariant lower bound is computed first and returned at once when it
        exceeds `cutoff`, and the alignment stops at the first group element that
        brings y within `cutoff` of x.  Without it the full alignment always runs.

    Returns
    -------
    float
        :math:`\min_g \|x - g\,y\|` over the compact part of the group (for
        :class:`TwoLayerReLU`, between the balanced forms of x and y), attained
        by an explicit group element — or, only when ``cutoff`` is given, an attained
        distance <= cutoff (not necessarily the minimum), or when the
        lower bound exceeds it, that lower bound (a value > cutoff and <= the
        distance).

    Notes
    -----
    The group acts by isometries on the (balanced) parameters, so the exact
    value :math:`D(x, y) = \min_g \|x - g y\|` is a pseudo-metric on orbits
    (zero exactly on orbit closures).  The computation:

    1. Invariant lower bound: the optimal assignment (Hungarian algorithm) of
       per-neuron invariants (norms of the span and complement components; for
       orthogonal teacher directions the neuron's coordinates sorted within
       each class — the rearrangement inequality) bounds D from below.
    2. Alignment: for every element h of the finite teacher group (when it has
       at most 720 elements), the Hungarian assignment of neurons on
       :math:`\|w_i - h w'_j\|^2` (complement: norms only), then alternation
       of orthogonal Procrustes on the complement, the best span element and
       the Hungarian assignment until the distance stops decreasing.  For large
       coordinate groups (``V = I_d``, d >= 7) the starts are the neuron
       assignment on sorted rows, the coordinate assignment on sorted columns
       and the identity, each followed by alternating Hungarian assignments
       (coordinates given neurons, neurons given coordinates).  The result is
       the minimum over starts and over both orders (x, y) and (y, x), so it
       is exactly symmetric.

    Guarantees.  Always an upper bound on D attained by a group element, and
    symmetric.  Equal to D (hence a metric on orbits, with the triangle
    inequality) when the model has no continuous input symmetry (rank V = d for
    teacher targets, d = 1 for a linear target; :class:`EmpiricalReLU`) and its
    finite teacher group has at most 720 elements — e.g. a generic teacher,
    ``V = I_d`` with d <= 6.  For two points of one orbit it is 0 up to
    rounding (about 1e-15 |x|; exactly 0 when the group element relating them
    is a pure permutation of neurons and coordinates and the model has no
    continuous symmetry) whenever the per-neuron invariants of step 1 are
    pairwise distinct (generic points), for every group; and for structured
    points such as ``W = I`` or the symmetric spurious minima of ``V = I_8``
    (checked in the tests, not proved in general).  Deciding D = 0 exactly is
    in general as hard as graph isomorphism; the invariant lower bound of step
    1 (what `cutoff` returns) certifies that points are far apart.

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    >>> W = np.array([[0.9, 0.1, 0.0], [0.2, 1.1, 0.0], [0.0, 0.3, 0.8]])
    >>> Wg = W[[2, 0, 1]][:, [1, 2, 0]]
    >>> ls.orbit_distance(m, m.flatten(W), m.flatten(Wg))
    0.0
    >>> round(ls.orbit_distance(m, m.flatten(W), m.flatten(np.eye(3))), 6)
    0.447214
    >>> t = ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget([1.0, 0.0]))
    >>> x = t.flatten(([1.0, -1.0], [[1.0, 0.0], [-1.0, 0.0]]))
    >>> y = t.flatten(([-4.0, 0.5], [[-0.25, 0.0], [2.0, 0.0]]))   # rescaled, swapped
    >>> ls.orbit_distance(t, x, y)
    0.0
    """
    check_model(model)
    x = model.check_x(x, "x")
    y = model.check_x(y, "y")
    if cutoff is not None:
        if isinstance(cutoff, bool) or not isinstance(cutoff, numbers.Real) or not (
                np.isfinite(cutoff) and cutoff >= 0):
            raise ValueError(f"cutoff must be a finite number >= 0 or None, got {cutoff!r}")
    st = _structure(model)
    Zx, Zy = _to_features(model, st, x), _to_features(model, st, y)
    if not st.odd:
        return _distance(st, Zx, Zy, cutoff)
    near = _distance(st, Zx, Zy, cutoff)
    if cutoff is not None and near <= cutoff:
        return near
    return min(near, _distance(st, Zx, -Zy, cutoff))


def _distance(st, Zx, Zy, cutoff):
    """The orbit distance of feature matrices (see orbit_distance) without the odd symmetry."""
    if cutoff is not None:
        bound = _lower_bound(st, Zx, Zy)
        if bound > cutoff:
            return bound
    stop = 0.0 if cutoff is None else float(cutoff)
    first = _align(st, Zx, Zy, stop)
    if first <= stop:
        return float(first)
    return float(min(first, _align(st, Zy, Zx, stop)))


def orbit_norms(model, x):
    """A cheap invariant of the orbit of x: its neurons' norms, sorted (within neuron classes).

    The group permutes neurons (within classes) and acts on each neuron by an
    isometry, so for every pair of points
    ``|orbit_norms(model, x) - orbit_norms(model, y)| <= orbit_distance(model, x, y)``
    (reverse triangle inequality row by row, then the rearrangement inequality):
    a filter that rules out most pairs before :func:`orbit_distance` aligns them.
    For a model without declared symmetry it is x itself.

    Returns
    -------
    ndarray
    """
    check_model(model)
    x = model.check_x(x)
    st = _structure(model)
    if st.family == "none":
        return x.copy()
    n = row_norms(_to_features(model, st, x))
    return np.concatenate([np.sort(n[g]) for g in st.row_groups])
