r"""Isotropy groups, fixed-point subspaces and isotypic decompositions (symmetry reduction).

For a model whose symmetry group permutes neurons and input coordinates — the
teacher-student loss with ``V = I_d`` is invariant under ``S_k x S_d`` acting by
``W -> P_pi W P_rho^T`` — the critical points gradient descent finds are highly
symmetric: the spurious minima of Safran & Shamir (2018) have a block structure
whose isotropy group is a product of symmetric groups, some acting *diagonally*
(the same permutation on a block of neurons and on a block of coordinates).
Arjevani & Field (2020, 2021) use this structure in three ways, all here:

* :func:`isotropy` finds the group of a point from its block structure;
* :func:`fixed_point_subspace` is Fix(G), the points the group fixes: a few
  block values parametrise it (5 for the type ``Δ(S_{k-1} x S_1)`` family at
  any k), and by the principle of symmetric criticality the critical points of
  L restricted to Fix(G) are critical points of L
  (:func:`~landscape.find_critical_point` with ``isotropy=G`` solves there);
* :func:`isotypic_basis`: the Hessian at a G-fixed point commutes with G, so by
  Schur's lemma it is block diagonal in a basis adapted to the isotypic
  decomposition of the parameter space; each irreducible representation ρ
  contributes a small matrix whose eigenvalues are eigenvalues of the Hessian
  with multiplicity dim ρ (:func:`~landscape.hessian_spectrum` with
  ``isotropy=G``).

The groups
----------
An :class:`Isotropy` is a direct product of *factors*, each a symmetric group
S_m acting on m neurons (rows of W), on m coordinates (columns of W), or on
both at once through a fixed pairing (the t-th row with the t-th column:
diagonal action).  Factors act on disjoint rows and columns; rows and columns
in no factor are fixed.  This is the form of the isotropy groups of the
Arjevani–Field families (``Δ(S_p x S_{k-p})``, ``Δ(S_{k-1}) x S_1`` ...) and of
split-neuron points (equal rows: S_m on rows alone).  :func:`isotropy` returns the
largest such group it finds (verified generator by generator); a point whose
full isotropy group is not of this form (e.g. a wreath product exchanging two
identical blocks) gets a subgroup of it, which is still exact for everything
below.

The isotypic decomposition
--------------------------
Parameters are matrices W in R^{k x d} = R^k ⊗ R^d.  For a factor S_m the
permutation representation R^m is 1 ⊕ Std (Std: the (m - 1)-dimensional standard
representation); a block R x C of W where R and C belong to different factors
(or are fixed indices) is the outer tensor product of such pieces.  A diagonal
block (rows and columns of the same factor) is R^m ⊗ R^m restricted to the
diagonal, which for m >= 4 is

.. math:: 2\cdot\mathbf 1 \oplus 3\,\mathrm{Std} \oplus S^{(m-2,2)} \oplus S^{(m-2,1,1)}

(copies of Std: rows, columns and the diagonal; S^(m-2,2) the symmetric
zero-diagonal matrices with zero row sums, S^(m-2,1,1) the antisymmetric ones;
for m = 3 the last is the sign and S^(1,2) is absent, for m = 2 only 2·1 ⊕ 2 Std
remain).  For every irreducible ρ of the product group the copies are equivariant
images of one reference vector of ρ, so the matrix of the Hessian between them is
the block H_ρ of Schur's lemma.

References
----------
Y. Arjevani, M. Field, "Analytic characterization of the Hessian in shallow ReLU
models: a tale of symmetry", NeurIPS 2020.
Y. Arjevani, M. Field, "Analytic study of families of spurious minima in two-layer
ReLU neural networks: a tale of symmetry II", NeurIPS 2021.
W. Fulton, J. Harris, *Representation Theory*, Springer 1991, §4 (representations of S_m)
and §2.3 (isotypic decomposition).
"""

import dataclasses
import math

import numpy as np

from ._results import Result
from ._validation import as_positive_float
from .models.base import check_model

__all__ = ["Isotropy", "FixedPointSubspace", "IsotypicBasis", "isotropy",
           "fixed_point_subspace", "isotypic_basis", "has_permutation_symmetry"]

# Two entries of W are equal when they differ by at most this fraction of max |W|.
DEFAULT_TOL = 1e-8
# Names of the irreducible representations of S_m that occur (partitions of m).
_STD, _TWO, _WEDGE = "std", "(m-2,2)", "(m-2,1,1)"


def _irrep_dim(name, m):
    return {_STD: m - 1, _TWO: m * (m - 3) // 2, _WEDGE: (m - 1) * (m - 2) // 2}[name]


# ---- the model's symmetry, as permutations of rows and columns ----------------------------

def _permutation_layout(model):
    """(layout (k, d), neuron classes (k,), coordinate classes (d,)) of a permutation symmetry."""
    sym = model.symmetry()
    fix = ("isotropy groups need a model whose symmetry permutes neurons and input coordinates "
           "(e.g. ReluTeacherStudent with teacher V = I_d, or orthonormal teacher rows)")
    if sym.input_weights is None:
        raise ValueError(f"{model!r} declares no neurons; {fix}")
    if sym.output_weights is not None or sym.rescaling or sym.odd:
        raise ValueError(f"{model!r} has trained output weights, rescalings or an odd "
                         f"symmetry; {fix}")
    stab = sym.stabilizer
    d = stab.input_dim
    if stab.rank != d or stab.basis is not None:
        raise ValueError(f"the stabiliser of {model!r} rotates input space (rank "
                         f"{stab.rank} of {d}, or a basis other than the coordinates); {fix}")
    if stab.kind == "trivial":
        cols = np.arange(d)
    elif stab.kind == "coordinate":
        cols = np.asarray(stab.coordinate_classes)
    else:
        maps = np.asarray(stab.maps)
        if not np.all((maps == 0) | (maps == 1)):
            raise ValueError(f"the stabiliser of {model!r} is not a group of coordinate "
                             f"permutations; {fix}")
        # orbits of the coordinates; the group must be the full product of their S_m
        image = np.argmax(maps, axis=1)                   # (order, d): map g sends j -> image
        cols = np.min(image, axis=0)
        sizes = np.unique(cols, return_counts=True)[1]
        if math.prod(math.factorial(int(s)) for s in sizes) != stab.order:
            raise ValueError(f"the coordinate permutations of {model!r} are not a product of "
                             f"symmetric groups; {fix}")
    return np.asarray(sym.input_weights), np.asarray(sym.classes), np.asarray(cols)


def has_permutation_symmetry(model):
    """Whether the model's symmetry group permutes neurons and input coordinates only.

    The models :func:`isotropy` accepts: e.g. :class:`~landscape.ReluTeacherStudent`
    with orthonormal teacher rows spanning input space (V = I_d).
    """
    try:
        _permutation_layout(check_model(model))
    except ValueError:
        return False
    return True


# ---- the group ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Isotropy(Result):
    r"""A product of symmetric groups acting on the rows (neurons) and columns (coordinates) of W.

    Build one with :func:`isotropy` (the group of a point), :meth:`diagonal` (a block
    type such as ``Δ(S_{k-1} x S_1)``) or directly from its factors.

    Parameters
    ----------
    layout : ndarray of int, shape (k, d)
        ``x[layout[i, j]] = W[i, j]`` (the model's neuron layout).
    factors : tuple of (rows, cols)
        Each factor is a symmetric group S_m: ``rows`` and ``cols`` are tuples of
        distinct indices, one of them possibly empty; when both are given they
        have the same length m and the group acts diagonally, the t-th row
        moving with the t-th column.  m >= 2.  Factors use disjoint indices.

    Attributes
    ----------
    order : int
        The number of group elements, the product of m! over factors.
    name : str
        The group in Arjevani and Field's notation, e.g. ``"Δ(S_6 × S_1)"``: the
        diagonal factors with the fixed indices as S_1's when every row is paired
        with a column, otherwise factors listed as ``ΔS_m``, ``S_m(rows)``,
        ``S_m(cols)``; ``"1"`` for the trivial group.  Factors largest first, so
        conjugate groups (every copy of a point) share a name.

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=4)
    >>> G = ls.Isotropy.diagonal(m, [1, 3])
    >>> G, G.order
    (Isotropy(Δ(S_3 × S_1), order=6), 6)
    >>> G.factors
    (((1, 2, 3), (1, 2, 3)),)
    """

    layout: np.ndarray
    factors: tuple

    def __post_init__(self):
        layout = np.asarray(self.layout)
        if layout.ndim != 2 or not np.issubdtype(layout.dtype, np.integer):
            raise ValueError(f"layout must be an integer array of shape (k, d), got "
                             f"{layout.dtype} of shape {layout.shape}")
        layout = layout.astype(np.int64, copy=True)
        layout.setflags(write=False)
        object.__setattr__(self, "layout", layout)
        k, d = layout.shape
        factors, used_r, used_c = [], set(), set()
        for f in self.factors:
            if len(f) != 2:
                raise ValueError(f"each factor must be a pair (rows, cols), got {f!r}")
            rows, cols = (tuple(int(i) for i in f[0]), tuple(int(j) for j in f[1]))
            m = max(len(rows), len(cols))
            if m < 2 or (rows and cols and len(rows) != len(cols)):
                raise ValueError(f"factor {f!r}: rows and cols must list m >= 2 indices each "
                                 f"(one of them may be empty), with equal lengths when both "
                                 f"are given")
            for idx, n, used, what in ((rows, k, used_r, "row"), (cols, d, used_c, "column")):
                if any(not 0 <= i < n for i in idx) or len(set(idx)) != len(idx) or used & set(idx):
                    raise ValueError(f"factor {f!r}: {what} indices must be distinct, in "
                                     f"[0, {n}) and not used by another factor")
                used |= set(idx)
            factors.append((rows, cols))
        object.__setattr__(self, "factors", tuple(factors))

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def diagonal(cls, model, sizes):
        """The diagonal group ``Δ(S_{m_1} x S_{m_2} x ...)`` of consecutive row and column blocks.

        Rows and columns ``m_1 + ... + m_{b-1}`` to ``m_1 + ... + m_b - 1`` form block b;
        blocks of size >= 2 are permuted diagonally, blocks of size 1 are fixed.
        Needs ``sum(sizes) <= min(k, d)``; the remaining rows and columns are fixed.

        Parameters
        ----------
        model : Model
            A model whose symmetry permutes neurons and coordinates.
        sizes : sequence of int
            Block sizes, e.g. ``[1, k - 1]`` for the type-A family of Arjevani & Field.
        """
        check_model(model)
        layout, rc, cc = _permutation_layout(model)
        k, d = layout.shape
        sizes = [int(s) for s in sizes]
        if any(s < 1 for s in sizes) or sum(sizes) > min(k, d):
            raise ValueError(f"sizes must be positive with sum <= min(k, d) = {min(k, d)}, "
                             f"got {sizes}")
        factors, start = [], 0
        for s in sizes:
            idx = tuple(range(start, start + s))
            start += s
            if s >= 2:
                if len(set(rc[list(idx)])) > 1 or len(set(cc[list(idx)])) > 1:
                    raise ValueError(f"block {idx} mixes neurons or coordinates the model's "
                                     f"symmetry does not exchange")
                factors.append((idx, idx))
        return cls(layout=layout, factors=tuple(factors))

    # ---- description --------------------------------------------------------------------
    @property
    def n_params(self):
        return int(self.layout.size)

    @property
    def order(self):
        return math.prod(math.factorial(max(len(r), len(c))) for r, c in self.factors)

    @property
    def name(self):
        k, d = self.layout.shape
        if not self.factors:
            return "1"
        diag = all(r and c for r, c in self.factors)
        in_r = sum(len(r) for r, _ in self.factors)
        in_c = sum(len(c) for _, c in self.factors)
        if diag and k - in_r == d - in_c:
            # every row paired with a column: the fixed ones are S_1's; the blocks largest
            # first, so that conjugate groups (the isotropy of every copy of a point, whatever
            # its rows' order) have one name
            fixed = set(range(k)) - {i for r, _ in self.factors for i in r}
            sizes = sorted([len(r) for r, _ in self.factors] + [1] * len(fixed), reverse=True)
            return "Δ(" + " × ".join(f"S_{s}" for s in sizes) + ")"
        terms = []
        for r, c in sorted(self.factors, key=lambda f: (-max(len(f[0]), len(f[1])),
                                                          not f[0], not f[1])):
            m = max(len(r), len(c))
            terms.append(f"ΔS_{m}" if r and c else f"S_{m}(rows)" if r else f"S_{m}(cols)")
        return " × ".join(terms)

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"Isotropy({self.name}, order={self.order})"

    def act(self, x, rows, cols):
        """x with W's rows permuted by ``rows`` and columns by ``cols``: ``W[rows][:, cols]``."""
        x = np.asarray(x, dtype=np.float64)
        W = x[self.layout]
        out = np.empty_like(x)
        out[self.layout] = W[np.asarray(rows)][:, np.asarray(cols)]
        return out

    def generators(self):
        """Group elements generating G, as (row permutation, column permutation) pairs.

        For each factor the transpositions of its first index with each other one
        (applied to the rows, the columns or both): they generate S_m.
        """
        k, d = self.layout.shape
        out = []
        for rows, cols in self.factors:
            for t in range(1, max(len(rows), len(cols))):
                pr, pc = np.arange(k), np.arange(d)
                if rows:
                    pr[[rows[0], rows[t]]] = rows[t], rows[0]
                if cols:
                    pc[[cols[0], cols[t]]] = cols[t], cols[0]
                out.append((pr, pc))
        return out


def _check_tol(tol):
    return as_positive_float(tol, "tol")


def isotropy(model, x, *, tol=DEFAULT_TOL):
    r"""The isotropy group of x: the neuron and coordinate permutations that fix W.

    Parameters
    ----------
    model : Model
        A model whose symmetry group permutes neurons and input coordinates
        (:meth:`Model.symmetry() <landscape.Model.symmetry>` with a coordinate
        stabiliser: e.g. :class:`~landscape.ReluTeacherStudent` with V = I_d).
    x : array_like of shape (n_params,)
    tol : float
        Entries of W equal to ``tol * max|W|`` count as equal (rounding of a
        Newton-polished point is ~1e-15 |W|; a point perturbed by more than tol
        loses the symmetry it breaks).

    Returns
    -------
    Isotropy
        The largest group of product form found (module docstring): S_m on a
        block of equal rows, on a block of equal columns, or diagonally on m
        rows and m columns, each verified on its generators.

    Notes
    -----
    For each row i0 not yet placed: the rows equal to it form a row factor;
    otherwise every row i that differs from it in exactly two columns j, j' with
    ``W[(i0 i)][:, (j j')] = W`` is a diagonal partner, and the column common to
    all partners is i0's.  Then equal unpaired columns form column factors.
    Rows (columns) are only grouped within the model's neuron (coordinate)
    classes.  Cost O(k^2 d).

    Examples
    --------
    The type-A structure of Arjevani & Field: one distinguished neuron and
    coordinate, the other k - 1 exchanged diagonally:

    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(5), n_students=5)
    >>> W = np.full((5, 5), 0.1); W[0, 0] = -0.8; W[0, 1:] = 0.3; W[1:, 0] = 0.2
    >>> W[np.arange(1, 5), np.arange(1, 5)] = 0.9
    >>> G = ls.isotropy(m, m.flatten(W))
    >>> G, ls.fixed_point_subspace(m, G).dim
    (Isotropy(Δ(S_4 × S_1), order=24), 5)
    """
    check_model(model)
    x = model.check_x(x)
    tol = _check_tol(tol)
    layout, rc, cc = _permutation_layout(model)
    W = x[layout]
    k, d = W.shape
    atol = tol * max(float(np.max(np.abs(W))), np.finfo(float).tiny)

    def fixes(pr, pc):
        return float(np.max(np.abs(W[pr][:, pc] - W))) <= atol

    left_r, used_c, factors = np.ones(k, bool), np.zeros(d, bool), []
    for i0 in range(k):
        if not left_r[i0]:
            continue
        left_r[i0] = False
        same = left_r & (rc == rc[i0])
        differ = np.abs(W - W[i0]) > atol                      # (k, d)
        count = differ.sum(axis=1)
        equal = np.flatnonzero(same & (count == 0))
        if equal.size:
            left_r[equal] = False
            factors.append(((i0, *equal.tolist()), ()))
            continue
        pairs = []
        for i in np.flatnonzero(same & (count == 2)):
            j, jj = np.flatnonzero(differ[i])
            if cc[j] != cc[jj] or used_c[j] or used_c[jj]:
                continue
            pr, pc = np.arange(k), np.arange(d)
            pr[[i0, i]] = i, i0
            pc[[j, jj]] = jj, j
            if fixes(pr, pc):
                pairs.append((int(i), int(j), int(jj)))
        if not pairs:
            continue
        votes = np.bincount([c for _, j, jj in pairs for c in (j, jj)], minlength=d)
        c0 = int(np.argmax(votes))          # i0's column: common to every partner's pair
        rows, cols = [i0], [c0]
        for i, j, jj in pairs:
            other = jj if j == c0 else j if jj == c0 else None
            if other is not None and other not in cols:
                rows.append(i)
                cols.append(other)
        if len(rows) >= 2:
            left_r[rows] = False
            used_c[cols] = True
            factors.append((tuple(rows), tuple(cols)))
    left_c = ~used_c
    for j0 in range(d):
        if not left_c[j0]:
            continue
        left_c[j0] = False
        equal = np.flatnonzero(left_c & (cc == cc[j0])
                               & (np.max(np.abs(W - W[:, [j0]]), axis=0) <= atol))
        if equal.size:
            left_c[equal] = False
            factors.append(((), (j0, *equal.tolist())))
    G = Isotropy(layout=layout, factors=tuple(factors))
    assert all(fixes(pr, pc) for pr, pc in G.generators())
    return G


# ---- Fix(G) ---------------------------------------------------------------------------------

def _block_labels(G):
    """Per row and per column: block id (a factor or a fixed index) and position in the factor."""
    k, d = G.layout.shape
    rb, cb = np.arange(k) + len(G.factors), np.arange(d) + len(G.factors) + k
    rpos, cpos = np.full(k, -1), np.full(d, -2)
    for f, (rows, cols) in enumerate(G.factors):
        rb[list(rows)] = f
        cb[list(cols)] = f
        rpos[list(rows)] = np.arange(len(rows))
        cpos[list(cols)] = np.arange(len(cols))
    return rb, cb, rpos, cpos


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class FixedPointSubspace(Result):
    r"""Fix(G) = {x : g x = x for all g in G}, parametrised by one value per orbit of entries.

    G permutes the entries of W; a fixed point is constant on each orbit, so
    Fix(G) has the orthonormal basis of normalised orbit indicators, and
    ``point(z) = sum_o z_o 1_o / sqrt(|o|)``.  For a diagonal factor on rows R and
    columns C the block R x C has two orbits (its paired diagonal and the rest);
    any other block is one orbit.

    Attributes
    ----------
    orbits : ndarray of int, shape (n_params,)
        The orbit of each entry of x, labelled 0 .. dim - 1.
    dim : int
        Number of orbits, the dimension of Fix(G).
    sizes : ndarray of int, shape (dim,)

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(200), n_students=200)
    >>> F = ls.fixed_point_subspace(m, ls.Isotropy.diagonal(m, [1, 199]))
    >>> F.dim, F.sizes.tolist()
    (5, [1, 199, 199, 199, 39402])
    """

    orbits: np.ndarray
    dim: int
    sizes: np.ndarray

    def coordinates(self, x):
        """z with ``point(z)`` the orthogonal projection of x onto Fix(G) (orbit means, scaled)."""
        x = np.asarray(x, dtype=np.float64)
        return np.bincount(self.orbits, weights=x, minlength=self.dim) / np.sqrt(self.sizes)

    def point(self, z):
        """x = B z, B the orthonormal orbit basis."""
        z = np.asarray(z, dtype=np.float64)
        return (z / np.sqrt(self.sizes))[..., self.orbits]

    def project(self, x):
        """The orthogonal projection of x onto Fix(G): each orbit replaced by its mean."""
        return self.point(self.coordinates(x))

    def basis(self):
        """The orthonormal basis B as a dense (n_params, dim) array."""
        B = np.zeros((self.orbits.size, self.dim))
        B[np.arange(self.orbits.size), self.orbits] = 1.0 / np.sqrt(self.sizes[self.orbits])
        return B


def _check_isotropy(model, G):
    if not isinstance(G, Isotropy):
        raise TypeError(f"isotropy must be a landscape.Isotropy (from ls.isotropy(model, x) or "
                        f"ls.Isotropy.diagonal), got {type(G).__name__}")
    if model is None:
        return G
    if G.n_params != model.n_params:
        raise ValueError(f"isotropy acts on {G.n_params} parameters but the model has "
                         f"{model.n_params}; build it for this model")
    layout, rc, cc = _permutation_layout(model)
    bad = not np.array_equal(layout, G.layout) or any(
        len(set(rc[list(r)])) > 1 or len(set(cc[list(c)])) > 1 for r, c in G.factors)
    if bad:
        raise ValueError(f"isotropy {G} is not a group of symmetries of {model!r} (another "
                         f"neuron layout, or it exchanges neurons or coordinates the model's "
                         f"symmetry does not); build it for this model with ls.isotropy or "
                         f"ls.Isotropy.diagonal")
    return G


def fixed_point_subspace(model, G):
    """Fix(G): the points of the model's parameter space that the isotropy group G fixes.

    Parameters
    ----------
    model : Model
    G : Isotropy

    Returns
    -------
    FixedPointSubspace
        Orbits of G on the entries of W; ``point``/``coordinates`` map between the
        orbit values z (length ``dim``) and x.
    """
    check_model(model)
    G = _check_isotropy(model, G)
    rb, cb, rpos, cpos = _block_labels(G)
    k, d = G.layout.shape
    diag = (rb[:, None] == cb[None, :]) & (rpos[:, None] == cpos[None, :])
    key = (rb[:, None] * (len(G.factors) + k + d) + cb[None, :]) * 2 + diag
    _, labels = np.unique(key.ravel(), return_inverse=True)
    orbits = np.empty(G.n_params, dtype=np.int64)
    orbits[G.layout.ravel()] = labels
    # relabel in order of first appearance along x (stable across k)
    _, first, inv = np.unique(orbits, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    orbits = rank[inv]
    return FixedPointSubspace(orbits=orbits, dim=int(orbits.max()) + 1,
                              sizes=np.bincount(orbits))


# ---- the isotypic decomposition -------------------------------------------------------------

@dataclasses.dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class IsotypicBasis(Result):
    r"""Orthonormal vectors per irreducible representation of G (see :func:`isotypic_basis`).

    Attributes
    ----------
    irreps : tuple of str
        The irreducible representations ρ of G that occur, e.g. ``"trivial"``,
        ``"std(0)"`` (the standard representation of factor 0), ``"std(0)⊗std(1)"``.
    dims : ndarray of int, shape (n_irreps,)
        dim ρ.
    vectors : tuple of ndarray of shape (mu_ρ, n_params)
        Orthonormal rows: the equivariant images of one reference vector of ρ in
        each of its mu_ρ copies.  ``sum(mu_ρ * dim ρ) = n_params``.
    """

    irreps: tuple
    dims: np.ndarray
    vectors: tuple

    @property
    def multiplicities(self):
        """mu_ρ, the number of copies of each irreducible representation."""
        return np.array([v.shape[0] for v in self.vectors], dtype=np.int64)


def isotypic_basis(G):
    r"""Orthonormal reference vectors of each isotypic component of the parameter space under G.

    Parameters
    ----------
    G : Isotropy

    Returns
    -------
    IsotypicBasis

    Notes
    -----
    A G-equivariant symmetric matrix H (the Hessian at a point of Fix(G)) maps the
    ρ-isotypic component to itself and acts there as H_ρ ⊗ I_{dim ρ} (Schur's lemma;
    every irreducible representation of a product of symmetric groups is
    absolutely irreducible).  With Q_ρ the (n_params, mu_ρ) matrix of this
    basis's vectors for ρ, ``H_ρ = Q_ρ^T H Q_ρ`` and the spectrum of H is the union
    over ρ of the eigenvalues of H_ρ, each with multiplicity dim ρ.  The vectors
    are built block by block of W (module docstring) and orthonormalised per ρ
    (dropping linearly dependent copies: for m = 2 the three Std copies of a
    diagonal block span two).

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(7), n_students=7)
    >>> b = ls.isotypic_basis(ls.Isotropy.diagonal(m, [1, 6]))
    >>> b.irreps, b.dims.tolist(), b.multiplicities.tolist()
    (('trivial', 'std(0)', '(m-2,2)(0)', '(m-2,1,1)(0)'), [1, 5, 9, 10], [5, 5, 1, 1])
    """
    G = _check_isotropy(None, G)
    k, d = G.layout.shape
    rb, cb, _, _ = _block_labels(G)
    sizes = [max(len(r), len(c)) for r, c in G.factors]
    # one side's pieces per block: a list of (irrep part or None, unit vector on that side)
    def pieces(b, n, side):
        if b < len(G.factors):
            idx = G.factors[b][side]
            m = len(idx)
            u, s = np.zeros(n), np.zeros(n)
            u[list(idx)] = 1.0 / np.sqrt(m)
            s[idx[0]], s[idx[1]] = 1 / np.sqrt(2), -1 / np.sqrt(2)
            return [((), u), (((b, _STD),), s)]
        e = np.zeros(n)
        e[b - len(G.factors) - (0 if side == 0 else k)] = 1.0
        return [((), e)]

    copies = {}                                          # irrep key -> list of (k, d) arrays
    for br in np.unique(rb):
        for bc in np.unique(cb):
            if br == bc:                                 # a diagonal block of factor br
                rows, cols = G.factors[br]
                m = len(rows)
                R, C = np.array(rows), np.array(cols)

                def on_diag(M, R=R, C=C):
                    out = np.zeros((k, d))
                    out[np.ix_(R, C)] = M
                    return out
                one = np.ones((m, m))
                s = np.zeros(m)
                s[0], s[1] = 1.0, -1.0
                copies.setdefault((), []).extend([on_diag(one), on_diag(np.eye(m))])
                copies.setdefault(((br, _STD),), []).extend(
                    [on_diag(np.outer(s, np.ones(m))), on_diag(np.outer(np.ones(m), s)),
                     on_diag(np.diag(s))])
                if m >= 3:
                    A = np.zeros((m, m))
                    A[0, 1] = A[1, 2] = A[2, 0] = 1.0      # a 3-cycle, minus its transpose:
                    copies.setdefault(((br, _WEDGE),), []).append(on_diag(A - A.T))
                if m >= 4:
                    S = np.zeros((m, m))
                    S[0, 1] = S[2, 3] = 1.0
                    S[0, 2] = S[1, 3] = -1.0              # zero diagonal, zero row sums
                    copies.setdefault(((br, _TWO),), []).append(on_diag(S + S.T))
                continue
            for pr, vr in pieces(br, k, 0):
                for pc, vc in pieces(bc, d, 1):
                    key = tuple(sorted(pr + pc))
                    copies.setdefault(key, []).append(np.outer(vr, vc))

    def label(key):
        return "⊗".join(f"{name}({f})" for f, name in key) or "trivial"

    rank = {_STD: 0, _TWO: 1, _WEDGE: 2}
    order = sorted(copies, key=lambda key: (len(key), [(rank[name], f) for f, name in key]))
    irreps, dims, vectors = [], [], []
    flat = G.layout.ravel()
    for key in order:
        M = np.stack(copies[key])                        # (copies, k, d)
        X = np.zeros((len(M), G.n_params))
        X[:, flat] = M.reshape(len(M), -1)
        # orthonormalise the copies (copies on different blocks are already orthogonal)
        U, sv, Vt = np.linalg.svd(X, full_matrices=False)
        keep = sv > 1e-10 * sv[0]
        irreps.append(label(key))
        dims.append(math.prod(_irrep_dim(name, sizes[f]) for f, name in key))
        vectors.append(Vt[keep])
    basis = IsotypicBasis(irreps=tuple(irreps), dims=np.array(dims, dtype=np.int64),
                          vectors=tuple(vectors))
    total = int(np.sum(basis.dims * basis.multiplicities))
    assert total == G.n_params, (total, G.n_params)
    return basis
