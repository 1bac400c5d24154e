"""Critical manifolds of neuron models: positively collinear neurons act as one neuron.

``sigma(c u.x) = c sigma(u.x)`` for c > 0, so hidden neurons that point the same way
compute, together, one neuron along their common direction.  Over-parameterisation
turns this into *manifolds of critical points*: with unit (or frozen) output
weights, splitting a neuron along its direction, w -> (c_1 w, ..., c_m w) with
sum c = 1, changes neither the network function nor the gradient (a neuron's
gradient depends on its direction only), so a critical point stays one along the
whole simplex of splits.  With trained output weights a_i the contributions
a_i |w_i| of a group may be redistributed at fixed sum.

The functions here find groups of positively collinear rows, build the split
tangents of a group, merge each group into one neuron (the function-space key
that deduplicates a continuum into one point) and make nearly collinear groups
exactly collinear (the projection onto the manifold used by the polish).  The
models call them with their own layout; nothing here knows about solvers.
"""

import numpy as np
from ._kernels import row_norms

__all__ = ["COLLINEAR_ANGLE", "collinear_groups", "split_tangents", "merge_rows", "align_rows",
           "nearly_collinear", "aligned_basis", "trained_split_tangents", "merge_trained",
           "align_trained", "trained_aligned_basis"]

#: Two neurons whose directions differ by at most this angle (radians) are one
#: direction: their split is a tangent of a critical manifold, and they are merged
#: in the function-space key.  A polished critical point on a split manifold is made
#: exactly collinear (:func:`align_rows`), so its groups differ by rounding only
#: (~1e-16); genuinely distinct neurons of a critical point are orders of magnitude
#: further apart.
COLLINEAR_ANGLE = 1e-6


def _units(W):
    n = row_norms(W)
    U = np.zeros_like(W)
    live = n > 0
    U[live] = W[live] / n[live, None]
    return U, n


def collinear_groups(W, angle_tol=COLLINEAR_ANGLE, labels=None):
    """Groups of positively collinear nonzero rows of W.

    Parameters
    ----------
    W : ndarray of shape (k, d)
    angle_tol : float
        Rows whose unit vectors are within this chord (= angle, to third order)
        of each other are linked; groups are the connected components.
    labels : ndarray of shape (k,), optional
        Only rows with equal labels may share a group (e.g. the frozen output
        signs of an empirical network).

    Returns
    -------
    list of ndarray
        Each an ascending array of at least two row indices; groups ordered by
        their first index.
    """
    U, n = _units(W)
    live = np.flatnonzero(n > 0)
    if live.size < 2:
        return []
    Ul = U[live]
    # |u_i - u_j|^2 = 2 - 2 cos: candidates from the Gram matrix, confirmed by the
    # chord computed from the unit vectors (accurate for tiny angles).
    G = Ul @ Ul.T
    cand = np.argwhere(np.triu(G >= np.cos(min(4.0 * angle_tol, 1.0)), 1))
    if cand.size == 0:
        return []
    i, j = live[cand[:, 0]], live[cand[:, 1]]
    close = np.linalg.norm(U[i] - U[j], axis=1) <= angle_tol
    if labels is not None:
        close &= labels[i] == labels[j]
    i, j = i[close], j[close]
    if i.size == 0:
        return []
    # connected components by union-find (few links: rows near a split manifold)
    parent = list(range(W.shape[0]))

    def root(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(i.tolist(), j.tolist()):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members = {}
    for a in sorted(set(i.tolist()) | set(j.tolist())):
        members.setdefault(root(a), []).append(a)
    return [np.array(g) for _, g in sorted(members.items()) if len(g) >= 2]


def group_direction(W, group, weights=None):
    """Unit vector of sum_i weights_i w_i over the group (weights default 1)."""
    w = np.ones(group.size) if weights is None else np.abs(weights[group])
    if not np.any(w > 0):
        w = np.ones(group.size)
    s = w @ W[group]
    ns = np.linalg.norm(s)
    if ns == 0:      # cannot happen for positively collinear rows with positive weights
        s, ns = W[group[0]], np.linalg.norm(W[group[0]])
    return s / ns


def split_tangents(W, groups):
    """Tangents of the split manifolds: (k - 1) per group of k collinear rows.

    Moving length t from row ``g[0]`` to row ``g[j]`` along the group's common
    direction u: the row block ``e_{g[j]} u^T - e_{g[0]} u^T``.

    Returns
    -------
    ndarray of shape (m, k, d)
    """
    k, d = W.shape
    out = []
    for g in groups:
        u = group_direction(W, g)
        for j in g[1:]:
            t = np.zeros((k, d))
            t[j] = u
            t[g[0]] = -u
            out.append(t)
    return np.array(out).reshape(len(out), k, d)


def merge_rows(W, groups, contributions=None):
    """Each group replaced by one row, the others zeroed.

    Without `contributions` the merged row is the sum of the group (unit output
    weights: the same function).  With contributions c_i (e.g. a_i |w_i| of a
    network with trained output weights) the merged row is the unit direction
    and the summed contribution is returned alongside.

    Returns
    -------
    W_merged : ndarray of shape (k, d)
    c_merged : ndarray of shape (k,) or None
    """
    Wm = W.copy()
    cm = None if contributions is None else contributions.copy()
    for g in groups:
        lead, rest = g[0], g[1:]
        if contributions is None:
            Wm[lead] = W[g].sum(axis=0)
        else:
            Wm[lead] = group_direction(W, g, contributions)
            cm[lead] = contributions[g].sum()
            cm[rest] = 0.0
        Wm[rest] = 0.0
    return Wm, cm


def nearly_collinear(Wb, angle_tol):
    """Which rows of the batch Wb (B, k, d) hold two positively collinear neurons (B,) bool.

    A quick screen by batched Gram matrices (cosine above cos(angle_tol)), so that
    only the flagged rows need :func:`collinear_groups`.
    """
    B, k, _ = Wb.shape
    if k < 2:
        return np.zeros(B, dtype=bool)
    n = row_norms(Wb)
    U = Wb / np.where(n > 0, n, 1.0)[..., None]
    G = U @ np.swapaxes(U, -1, -2)
    G[:, np.arange(k), np.arange(k)] = -np.inf
    return np.any(G >= np.cos(min(angle_tol, 1.0)), axis=(1, 2))


def align_rows(W, groups, weights=None):
    """The rows of each group made exactly collinear, keeping the group's weighted sum.

    Row i of a group becomes ``(|w_i| / sum_j |w_j|) * s`` with s the group sum
    (weights: ``sum_j |weights_j| w_j`` for the direction, the norms kept), so
    for unit output weights the network function changes only by the O(angle^2)
    difference between ``sum |w_j|`` and ``|sum w_j|``.
    """
    Wa = W.copy()
    for g in groups:
        norms = row_norms(W[g])
        u = group_direction(W, g, weights)
        if weights is None:
            s = W[g].sum(axis=0)
            Wa[g] = (norms / norms.sum())[:, None] * s[None, :]
        else:
            Wa[g] = norms[:, None] * u[None, :]
    return Wa


def aligned_basis(W, groups):
    """Orthonormal basis of the directions that keep every group exactly collinear.

    At a W whose groups are exactly collinear, the configurations with the same
    groups collinear form a manifold; its tangent space is spanned by the free
    rows (every coordinate) and, per group along u, each member's norm (u in its
    row) and the common rotations (r_i e in every member's row i, for e in an
    orthonormal basis of u's complement, r_i the member's norm).

    Returns
    -------
    ndarray of shape (k * d, m)
        Columns orthonormal (the rotation columns of a group are scaled to unit
        norm; columns of different rows or of different e are orthogonal).
    """
    k, d = W.shape
    cols = []
    grouped = np.zeros(k, dtype=bool)
    for g in groups:
        grouped[g] = True
        u = group_direction(W, g)
        r = row_norms(W[g])
        # an orthonormal basis of the complement of u: the last d - 1 columns of a
        # Householder-completed basis
        Q, _ = np.linalg.qr(np.column_stack([u, np.eye(d)]))
        E = Q[:, 1:d]
        for i in g:
            c = np.zeros((k, d))
            c[i] = u
            cols.append(c.ravel())
        for e in E.T:
            c = np.zeros((k, d))
            c[g] = r[:, None] * e[None, :] / np.linalg.norm(r)
            cols.append(c.ravel())
    for i in np.flatnonzero(~grouped):
        for j in range(d):
            c = np.zeros((k, d))
            c[i, j] = 1.0
            cols.append(c.ravel())
    return np.array(cols).T


# ---- networks with trained output weights: parameters (a, W) ------------------------------
# A group of positively collinear neurons along u computes (sum_i a_i |w_i|) sigma(u . x), so
# the function depends on the group through the sum of the contributions a_i |w_i| only.
# TwoLayerReLU and EmpiricalReLU(train_output=True) share these (layout x = (a, W.ravel())).

def trained_split_tangents(a, W):
    """Redistributions of a_i |w_i| at fixed sum within each group, shape (m, k + k d).

    For a group g (lead g[0]) and each other member j: delta a_j = |w_{g[0]}|,
    delta a_{g[0]} = -|w_j|, W unchanged.  With the rescalings these span the
    group's 2m - 1 dimensional manifold of equal functions.
    """
    k = W.shape[0]
    r = row_norms(W)
    rows = []
    for g in collinear_groups(W):
        for j in g[1:]:
            t = np.zeros(k + W.size)
            t[j], t[g[0]] = r[g[0]], -r[j]
            rows.append(t)
    return np.array(rows).reshape(len(rows), k + W.size)


def merge_trained(a, W):
    """Each group as one neuron: a = sum a_i |w_i|, w = unit direction; others zero.

    Returns the flat key ``concatenate([a_merged, W_merged.ravel()])``.
    """
    groups = collinear_groups(W)
    if not groups:
        return np.concatenate([a, W.ravel()])
    Wm, rho = merge_rows(W, groups, a * row_norms(W))
    am = a.copy()
    for g in groups:
        am[g] = 0.0
        am[g[0]] = rho[g[0]]
    return np.concatenate([am, Wm.ravel()])


def align_trained(A, Wb, angle_tol):
    """Nearly collinear groups of each row made exactly collinear (direction weighted by a_i |w_i|).

    Parameters
    ----------
    A : ndarray of shape (B, k)
    Wb : ndarray of shape (B, k, d)

    Returns
    -------
    W_aligned : ndarray of shape (B, k, d)
        `Wb` itself when no row changed.
    changed : ndarray of bool, shape (B,)
    """
    changed = nearly_collinear(Wb, angle_tol)
    if not changed.any():
        return Wb, changed
    Wo = Wb.copy()
    for b in np.flatnonzero(changed):
        groups = collinear_groups(Wb[b], angle_tol)
        changed[b] = bool(groups)
        if groups:
            Wo[b] = align_rows(Wb[b], groups, A[b] * row_norms(Wb[b]))
    return Wo, changed


def trained_aligned_basis(W, angle_tol):
    """:func:`aligned_basis` in the (a, W) layout (output weights free): (k + k d, m) or None."""
    k = W.shape[0]
    groups = collinear_groups(W, angle_tol)
    if not groups:
        return None
    ZW = aligned_basis(W, groups)
    Z = np.zeros((k + W.size, k + ZW.shape[1]))
    Z[:k, :k] = np.eye(k)                 # output weights are free
    Z[k:, k:] = ZW
    return Z
