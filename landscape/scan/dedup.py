"""Deduplication: critical points that are one point modulo symmetry and critical manifolds.

Two points are one when their losses agree within a loss window and the orbit
distance of their function-space keys (:meth:`Model.merge_collinear`: collinear
neurons merged) is within tolerance, so every point of a continuum of split
neurons is one point, and so are its images under the model's symmetry group.
:class:`Orbits` is the index a scan fills as it goes; :func:`deduplicate` is
the same on a batch of points.
"""

import dataclasses

import numpy as np

from .._results import Result
from .._validation import as_batch, as_positive_float
from ..models.base import check_model
from ..models.symmetry import orbit_distance, orbit_norms

__all__ = ["Orbits", "Distinct", "deduplicate"]


class Orbits:
    """Distinct critical points modulo symmetry and critical manifolds, in order of discovery.

    Two points are one when their losses agree within ``loss_rtol * max(1, |L|)``
    and their function-space keys (:meth:`Model.merge_collinear`) are within
    ``xtol * max(1, |key|)`` in orbit distance.  Each point keeps its distinct
    members (orbit distance of the points themselves), the largest manifold
    dimension seen among them, and as its representative the member farthest
    from the non-smooth set (largest :meth:`Model.smooth_radius`; e.g. an
    interior split rather than the end of the continuum where a neuron has
    shrunk to nothing).

    Parameters
    ----------
    model : Model
    loss_rtol, xtol : float

    Attributes
    ----------
    x : list of ndarray
        The representative of each point, by id (order of discovery).
    classification : list of Classification or None
        The representative's.
    loss : list of float
        The loss of the first member (the window is centred there).
    key : list of ndarray
        Function-space keys.
    first_start : list of int
        The first start that ended at each point (-1: none yet).
    found_by : list of str
        How each point was first found (see :class:`~landscape.scan.Point`).
    members : list of list of ndarray
        The distinct members of each point.
    dimension : list of int
        Largest ``manifold_nullity`` among the members' classifications.

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> from landscape.scan import Orbits
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(2), n_students=2)
    >>> orbits = Orbits(m, loss_rtol=1e-9, xtol=1e-6)
    >>> X = [m.flatten(W) for W in (np.eye(2), np.eye(2)[::-1], 2 * np.eye(2))]
    >>> [orbits.add(x, None, "descent", loss=m.loss(x)) for x in X]   # I, its permutation, 2I
    [0, 0, 1]
    """

    def __init__(self, model, loss_rtol, xtol):
        self.model, self.loss_rtol, self.xtol = model, loss_rtol, xtol
        self.x, self.key, self.classification, self.loss = [], [], [], []
        self.own_key = []             # whether a point's key is its first member itself
        self.first_start, self.found_by = [], []
        self.members, self.member_norms, self.dimension, self.regularity = [], [], [], []

    def __len__(self):
        return len(self.x)

    def add(self, x, classification, found_by, start=-1, loss=None):
        """The id of x's point, a new one if none matches.

        Parameters
        ----------
        x : ndarray of shape (n_params,)
        classification : Classification or None
            Of x: gives its loss (unless `loss` is given) and manifold dimension.
        found_by : str
        start : int
            The start that ended at x (-1: none).
        loss : float, optional
            L(x), when there is no classification.
        """
        c = classification
        L = c.loss if loss is None else loss
        window = self.loss_rtol * max(1.0, abs(L))
        key = self.model.merge_collinear(x)
        own_key = key.shape == x.shape and np.array_equal(key, x)     # nothing merged
        tol = self.xtol * max(1.0, float(np.linalg.norm(key)))
        smooth = self.model.smooth_radius(x)
        dim = int(getattr(c, "manifold_nullity", None) or 0)
        for pid, Lp in enumerate(self.loss):
            if abs(Lp - L) <= window and orbit_distance(
                    self.model, self.key[pid], key, cutoff=tol) <= tol:
                if self.first_start[pid] < 0 and start >= 0:
                    self.first_start[pid] = int(start)
                    self.found_by[pid] = found_by
                if not (own_key and self.own_key[pid]):
                    self._add_member(pid, x)
                # else: the point's key is its first member and x its own key, so the
                # distance just measured says x is a copy of that member (as _add_member
                # would find, one orbit distance later)
                self.dimension[pid] = max(self.dimension[pid], dim)
                if smooth > self.regularity[pid]:
                    self.x[pid], self.classification[pid] = x, c
                    self.regularity[pid] = smooth
                return pid
        self.x.append(x)
        self.key.append(key)
        self.own_key.append(own_key)
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
        """The kind of point `pid` (its representative's classification)."""
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
    symmetry group.  This is how :func:`~landscape.scan` counts distinct points.

    Parameters
    ----------
    model : Model
    X : array_like of shape (B, n_params)
    classifications : sequence of Classification, optional
        One per row; gives the manifold dimension.
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
    orbits = Orbits(model, loss_rtol, xtol)
    labels = np.empty(len(X), dtype=np.int64)
    rep = {}
    for i, x in enumerate(X):
        q = labels[i] = orbits.add(x, None if classifications is None else classifications[i],
                                   "", loss=float(losses[i]))
        if orbits.x[q] is x:          # x became (or stays) the representative
            rep[q] = i
    rep = np.array([rep[q] for q in range(len(orbits))], dtype=np.int64)
    return Distinct(labels=labels, representative=rep,
                    n_members=np.array([len(m) for m in orbits.members], dtype=np.int64),
                    dimension=np.array(orbits.dimension, dtype=np.int64))
