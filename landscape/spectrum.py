"""Hessian spectra: dense eigendecomposition, Lanczos on Hessian-vector products, inertia by LDLᵀ.

:func:`hessian_spectrum` answers "how many eigenvalues of the Hessian are
negative, zero and positive, and how sure are we" for models of any size:

- up to :data:`DENSE_LIMIT` parameters, a dense ``eigh`` of ``model.hess(x)``
  gives every eigenvalue;
- beyond, Lanczos (ARPACK's ``eigsh``) on ``model.hvp`` gives the extreme
  eigenvalues without forming H, and the inertia counts come from two
  Bunch-Kaufman LDLᵀ factorisations of H ∓ τI (Sylvester's law of inertia),
  each 5-13x cheaper than a full ``eigvalsh`` at n = 10,000 on 2 cores.

:func:`inertia` exposes the factorisation-based counts for any symmetric matrix.

Three batched helpers answer the one question solvers and direction-wise tests ask
of many points at once, with Hessians built batched (see ``landscape._linalg``):
:func:`smallest_eigenvalues` (λ_min at every row), :func:`is_positive_definite`
(a Cholesky test at every row) and, at one point, :func:`min_curvature` (λ_min and
its eigenvector).
"""

import dataclasses
import numbers
import warnings

import numpy as np
import scipy.linalg
from scipy.linalg import lapack
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from threadpoolctl import threadpool_limits

from ._linalg import each_hessian, small_matrix_threads
from ._results import Result
from ._validation import as_choice, as_float_array, as_positive_float, as_positive_int, as_rng
from .models.base import check_model
from .errors import LandscapeWarning
from .isotropy import Isotropy, fixed_point_subspace, isotypic_basis

__all__ = ["hessian_spectrum", "HessianSpectrum", "inertia", "smallest_eigenvalues",
           "is_positive_definite", "min_curvature", "lowest_modes", "DENSE_LIMIT", "METHODS"]

#: ``method="auto"`` uses a dense ``eigh`` up to this many parameters and Lanczos
#: with LDLᵀ inertia beyond.  At n = 2,000 a dense ``eigh`` with eigenvectors takes
#: a second or two on 2 cores; its cost grows as n³ with a constant 5-13x that of
#: one LDLᵀ factorisation (``eigvalsh`` 44-108 s vs ``dsytrf`` 8 s at n = 10,000).
DENSE_LIMIT = 2000

#: Valid values of ``method``.
METHODS = ("auto", "dense", "lanczos")
# A point is fixed by an isotropy group when its distance to Fix(G) is at most this
# fraction of |x| (the default tolerance of ls.isotropy is 1e-8 per entry).
_FIXED_RTOL = 1e-7

# Eigenvalues at each end computed by Lanczos when k is not given: lambda_min and
# lambda_max, which is what classification needs (on the clustered spectrum of the
# k = n = d = 100 teacher-student minimum, k = 1 took ~300 Hessian-vector products,
# k = 2 ~550, k = 3 to 6 ~600-650).
_DEFAULT_K = 1
# ARPACK stopping tolerance for the extremes (residuals end up below 3e-9 |H|), and
# the smallest Krylov basis: a wider basis needs fewer Hessian-vector products on
# clustered spectra (same point, k = 1: ~300 hvps with 40 vectors, ~450 with 20;
# k = 6: ~650 with 60, ~610 with 80 or 120).  Then the tolerance of the
# shift-invert runs that locate the spectral gap (a diagnostic: the eigenvalue
# converges faster than the residual).
_LANCZOS_TOL = 1e-9
_LANCZOS_NCV = 40
_GAP_TOL = 1e-8
# Cap on the Krylov vectors the gap runs add for outliers (ARPACK's work grows as n ncv²).
_GAP_MAX_EXTRA_NCV = 80
# Relative asymmetry max|H - Hᵀ| / max|H| accepted by `inertia`.
_SYMMETRY_RTOL = 1e-8


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class HessianSpectrum(Result):
    """Eigenvalues and inertia of the Hessian at a point (see :func:`hessian_spectrum`).

    Attributes
    ----------
    eigenvalues : ndarray of shape (m,)
        Ascending.  ``method="dense"`` with ``k=None``: all n_params eigenvalues;
        otherwise the k smallest followed by the k largest (m = 2k).
    eigenvectors : ndarray of shape (n_params, m) or None
        Unit eigenvectors as columns (``vectors=True``), else None.
    n_params : int
    method : {"dense", "lanczos", "isotypic"}
        The method actually used (``"auto"`` resolved; ``"isotypic"`` with an
        isotropy group).
    tau : float
        Zero tolerance τ: |λ| <= τ counts as a zero eigenvalue.
    norm : float
        Spectral norm ‖H‖ = max |λ| (Lanczos: the largest-magnitude Ritz value).
    n_negative, n_zero, n_positive : int
        #{λ < -τ}, #{|λ| <= τ}, #{λ > τ}; they add up to n_params.  ``n_negative``
        is the Morse index and ``n_zero`` the nullity (before removing symmetry modes).
    lambda_min, lambda_max : float
        Smallest and largest eigenvalue.
    gap : float
        Spectral gap around zero: min{|λ| : |λ| > τ}, the distance from 0 to the
        nearest eigenvalue outside the zero band [-τ, τ] (always > τ; ``gap - tau``
        is how far that eigenvalue is from being counted as zero, ``gap / tau``
        how robust the counts are to the choice of τ).  ``inf`` when every
        eigenvalue is in the band; NaN when it could not be computed (Lanczos
        path only, with a :class:`~landscape.LandscapeWarning`).
    residuals : ndarray of shape (m,)
        ‖H v - λ v‖ of each returned eigenpair (Lanczos: with ``model.hvp``).
    inertia_method : {"eigenvalues", "ldl", "cholesky"}
        Whether the counts come from all eigenvalues, from LDLᵀ factorisations of
        H ∓ τI, or (a minimum: the smallest Ritz value above τ) from a Cholesky
        factorisation of H - τI, which exists only when every eigenvalue is > τ.
    block_eigenvalues : ndarray of shape (b,) or None
        ``method="isotypic"``: the eigenvalues of the isotypic blocks H_ρ,
        ascending, each standing for ``multiplicities`` equal eigenvalues of H
        (two blocks may share a value: they are listed once per block).  None
        for the other methods.
    multiplicities : ndarray of int, shape (b,) or None
        dim ρ of the block each eigenvalue comes from; they add up to n_params.
    irreps : tuple of str or None
        The irreducible representation ρ of each block eigenvalue (see
        :func:`~landscape.isotypic_basis`).
    isotropy : str or None
        The group the blocks come from (its name, e.g. ``"Δ(S_6 × S_1)"``).
    """

    eigenvalues: np.ndarray
    eigenvectors: object
    n_params: int
    method: str
    tau: float
    norm: float
    n_negative: int
    n_zero: int
    n_positive: int
    lambda_min: float
    lambda_max: float
    gap: float
    residuals: np.ndarray
    inertia_method: str
    block_eigenvalues: np.ndarray | None = None
    multiplicities: np.ndarray | None = None
    irreps: tuple | None = None
    isotropy: str | None = None

    def __post_init__(self):
        if self.irreps is not None:                 # a tuple also after from_dict
            object.__setattr__(self, "irreps", tuple(self.irreps))


def hessian_spectrum(model, x, *, k=None, method="auto", tau=None, rtol=1e-9, atol=1e-10,
                     vectors=False, rng=0, isotropy=None):
    """Eigenvalues, inertia counts and spectral gap of the Hessian of `model` at `x`.

    Parameters
    ----------
    model : Model
    x : array_like of shape (n_params,)
        A point where the loss is twice differentiable.
    k : int, optional
        Number of eigenvalues wanted at each end of the spectrum.  Default: all
        of them for ``"dense"``, 1 (λ_min and λ_max) for ``"lanczos"``.  Needs
        2k <= n_params (dense) or 2k < n_params (Lanczos).
    method : {"auto", "dense", "lanczos"}
        ``"dense"``: ``scipy.linalg.eigh`` of ``model.hess(x)``.
        ``"lanczos"``: ``scipy.sparse.linalg.eigsh`` on a ``LinearOperator``
        built on ``model.hvp`` for the k smallest and k largest eigenvalues, and
        the counts from LDLᵀ factorisations of the dense Hessian (see
        :func:`inertia`).  ``"auto"``: dense up to :data:`DENSE_LIMIT`
        parameters, Lanczos beyond.
    tau : float, optional
        Zero tolerance; default ``max(atol, rtol * ‖H‖)``.
    rtol, atol : float
        Relative and absolute parts of the default tolerance.
    vectors : bool
        Also return the eigenvectors of the returned eigenvalues.
    rng : int, Generator, SeedSequence or None
        Seed of the Lanczos start vectors (results are reproducible for a fixed seed).
    isotropy : Isotropy, optional
        A group fixing x (:func:`~landscape.isotropy`): the exact full spectrum
        from the isotypic blocks of the G-equivariant Hessian
        (``method="isotypic"``, see Notes), with every eigenvalue's
        multiplicity.  ``method`` must then be ``"auto"``, `k` None and
        `vectors` False.  x is replaced by its projection onto Fix(G); a point
        farther than 1e-7 |x| from Fix(G) is a ValueError.

    Returns
    -------
    HessianSpectrum

    Raises
    ------
    NonDifferentiableError
        If x lies on the model's non-smooth set.
    scipy.sparse.linalg.ArpackNoConvergence
        If Lanczos does not find the extreme eigenvalues (not observed in practice:
        the iteration budget is 10 n_params restarts).

    See Also
    --------
    inertia : the counts from LDLᵀ factorisations alone.

    Notes
    -----
    With τ = max(atol, rtol ‖H‖), ‖H‖ = max |λ|, the counts are
    ``n_negative`` = #{λ < -τ}, ``n_zero`` = #{|λ| <= τ}, ``n_positive`` = #{λ > τ}.

    On the Lanczos path they come from Sylvester's law of inertia: for an
    invertible P, A and P A Pᵀ have the same numbers of negative, zero and
    positive eigenvalues.  The Bunch-Kaufman factorisation
    P (H - sI) Pᵀ = L D Lᵀ (D block diagonal with 1×1 and 2×2 blocks) therefore
    gives #{λ > s} = #{positive eigenvalues of D}; with s = τ this is
    ``n_positive``, with s = -τ the negative eigenvalues of D give
    ``n_negative``, and ``n_zero`` is the rest.  The factorisation is backward
    stable, so an eigenvalue is counted on the wrong side of ±τ only if it lies
    within about n ε ‖H‖ (times the modest growth factor) of ±τ.

    Lanczos runs on H + cI with c = 2‖H‖ (from a rough first run): the Krylov
    spaces are those of H, but ARPACK's test ‖r‖ <= tol |θ| then bounds every
    residual by a multiple of ‖H‖, even for eigenvalues at or near zero, which
    it could otherwise never accept.  Eigenvalues inside a tight cluster take
    many Hessian-vector products to resolve; a larger k costs more of them.

    The gap on the Lanczos path is read off the Ritz values when the exact
    counts show that Lanczos has found every eigenvalue between that end of the
    spectrum and the band (e.g. λ_min > τ at a strict minimum).  Otherwise it
    reuses the two factorisations: shift-invert Lanczos on (H - τI)⁻¹ finds the
    smallest eigenvalue above τ (the largest 1/(λ - τ)), and on (H + τI)⁻¹ the
    largest eigenvalue below -τ, to a relative accuracy of about 1e-8.

    With an isotropy group G, Schur's lemma: H commutes with G, so in the basis of
    :func:`~landscape.isotypic_basis` it is block diagonal, one block
    H_ρ = Q_ρᵀ H Q_ρ (μ_ρ × μ_ρ, μ_ρ the number of copies of the irreducible
    representation ρ) per ρ, and each eigenvalue of H_ρ is an eigenvalue of H of
    multiplicity dim ρ.  The blocks cost Σ μ_ρ Hessian-vector products (12 for
    ``Δ(S_{k-1} x S_1)`` at any k) and never form H.  ``residuals`` are
    ‖H v - λ v‖ of the block eigenvectors v (one per block eigenvalue): zero up to
    rounding exactly when H maps each isotypic component into itself.

    Examples
    --------
    At the global minimum W = V = I of the teacher-student loss the Hessian is
    positive definite with λ_min = 1/4 - 1/(2π):

    >>> import numpy as np, landscape as ls
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=4)
    >>> s = ls.hessian_spectrum(m, m.flatten(np.eye(4)))
    >>> s.method, s.n_negative, s.n_zero, s.n_positive
    ('dense', 0, 0, 16)
    >>> round(s.lambda_min, 6), round(s.gap, 6)
    (0.090845, 0.090845)
    >>> t = ls.hessian_spectrum(m, m.flatten(np.eye(4)), method="lanczos", k=2)
    >>> t.inertia_method, (t.n_negative, t.n_zero, t.n_positive), round(t.lambda_min, 6)
    ('cholesky', (0, 0, 16), 0.090845)
    >>> bool(np.all(t.residuals <= 1e-8 * t.norm))
    True

    The same spectrum from the 7 isotypic block eigenvalues of G = Δ(S_4) (the
    first two coincide: 1/4 - 1/(2π) from two representations):

    >>> G = ls.isotropy(m, m.flatten(np.eye(4)))
    >>> u = ls.hessian_spectrum(m, m.flatten(np.eye(4)), isotropy=G)
    >>> u.method, u.multiplicities.tolist()
    ('isotypic', [3, 3, 3, 2, 1, 3, 1])
    >>> sorted(u.irreps[:3])          # (the order of the tied first two is rounding's)
    ['(m-2,1,1)(0)', 'std(0)', 'std(0)']
    >>> bool(np.allclose(u.eigenvalues, s.eigenvalues, rtol=0, atol=1e-12))
    True
    """
    check_model(model)
    x = model.check_x(x)
    n = model.n_params
    if isotropy is not None:
        if method != "auto" or k is not None or vectors:
            raise ValueError("with isotropy the spectrum is computed from the isotypic "
                             "blocks: leave method='auto', k=None and vectors=False")
        if tau is not None:
            tau = as_positive_float(tau, "tau", allow_zero=True)
        rtol = as_positive_float(rtol, "rtol", allow_zero=True)
        atol = as_positive_float(atol, "atol", allow_zero=True)
        return _isotypic_spectrum(model, x, isotropy, tau, rtol, atol)
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    as_choice(method, "method", METHODS)
    if method == "auto":
        method = "dense" if n <= DENSE_LIMIT else "lanczos"
    k = _check_k(k, n, method)
    if tau is not None:
        tau = as_positive_float(tau, "tau", allow_zero=True)
    rtol = as_positive_float(rtol, "rtol", allow_zero=True)
    atol = as_positive_float(atol, "atol", allow_zero=True)
    model.require_differentiable(x[None])
    rng = as_rng(rng)
    with small_matrix_threads(n):
        if method == "dense":
            return _dense_spectrum(model, x, k, tau, rtol, atol, bool(vectors))
        return _lanczos_spectrum(model, x, k, tau, rtol, atol, bool(vectors), rng)


def inertia(H, tau):
    """Numbers of eigenvalues below -τ, within [-τ, τ] and above τ, without eigenvalues.

    Parameters
    ----------
    H : array_like of shape (n, n), sparse matrix or LinearOperator
        A symmetric matrix.  Sparse matrices and operators are made dense
        (an operator by applying it to the identity), since the LDLᵀ
        factorisation needs every entry.
    tau : float
        Zero tolerance τ >= 0.

    Returns
    -------
    n_negative, n_zero, n_positive : int
        #{λ < -τ}, #{|λ| <= τ}, #{λ > τ}; they add up to n.

    Notes
    -----
    Sylvester's law of inertia: congruent symmetric matrices A and P A Pᵀ
    (P invertible) have equally many negative, zero and positive eigenvalues.
    LAPACK's ``dsytrf`` (Bunch-Kaufman diagonal pivoting) computes
    P (H - sI) Pᵀ = L D Lᵀ with D block diagonal (1×1 and 2×2 blocks), so the
    signs of the eigenvalues of D's blocks count the eigenvalues of H above and
    below s.  Two factorisations, s = τ and s = -τ, give
    #{λ > τ} = #{positive eigenvalues of D(H - τI)},
    #{λ < -τ} = #{negative eigenvalues of D(H + τI)},
    and the zeros are the rest.  Each costs n³/3 flops, against about 3n³
    for ``eigvalsh``.  The factorisation is backward stable: only eigenvalues
    within about n ε ‖H‖ of ±τ can be counted on the wrong side.

    References
    ----------
    J. R. Bunch, L. Kaufman, "Some stable methods for calculating inertia and
    solving symmetric linear systems", Math. Comp. 31 (1977) 163-179.
    G. H. Golub, C. F. Van Loan, *Matrix Computations*, 4th ed., §4.4 and
    Theorem 8.1.17 (Sylvester's law of inertia).

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> H = np.diag([-2.0, -1e-12, 0.0, 3e-12, 1.0, 5.0])
    >>> ls.inertia(H, 1e-10)
    (1, 3, 2)
    >>> ls.inertia(np.array([[0.0, 1.0], [1.0, 0.0]]), 0.5)   # eigenvalues -1 and 1
    (1, 0, 1)
    """
    H = _as_symmetric_matrix(H)
    tau = as_positive_float(tau, "tau", allow_zero=True)
    with small_matrix_threads(H.shape[0]):
        n_negative, n_zero, n_positive, _ = _ldl_inertia(H, tau, gap=False)
    return n_negative, n_zero, n_positive


# ---- many points at once -----------------------------------------------------------

def smallest_eigenvalues(model, X):
    """λ_min(∇²L(x)) at every row x of X.

    Up to :data:`DENSE_LIMIT` parameters the Hessians are built batched and each
    gets one LAPACK ``eigvalsh`` restricted to its smallest eigenvalue (one BLAS
    thread for small matrices); beyond, :func:`min_curvature` (Lanczos on
    Hessian-vector products) row by row.  No validation: the rows must lie where
    the loss is twice differentiable.

    Parameters
    ----------
    model : Model
    X : ndarray of shape (B, n_params)

    Returns
    -------
    ndarray of shape (B,)

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> from landscape.spectrum import smallest_eigenvalues
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(4), n_students=4)
    >>> lam = smallest_eigenvalues(m, np.vstack([m.flatten(np.eye(4)), m.flatten(2 * np.eye(4))]))
    >>> bool(np.isclose(lam[0], 1 / 4 - 1 / (2 * np.pi)))    # the global minimum (DESIGN.md)
    True
    """
    n = model.n_params
    if len(X) == 0:
        return np.zeros(0)
    if n > DENSE_LIMIT:
        return np.array([min_curvature(model, x)[0] for x in X])
    out = np.empty(len(X))
    for i, H in each_hessian(model, X):
        out[i] = scipy.linalg.eigvalsh(H, subset_by_index=(0, 0), check_finite=False)[0]
    return out


def is_positive_definite(model, X, shift=0.0):
    """Whether ∇²L(x) + shift·I is positive definite, at every row x of X.

    A Cholesky factorisation (LAPACK ``dpotrf``) of each Hessian, built batched,
    with one BLAS thread for small matrices: about a third of the cost of the
    smallest eigenvalue.  Beyond :data:`DENSE_LIMIT` parameters, the sign of the
    smallest eigenvalue by Lanczos (:func:`min_curvature`), without a dense Hessian.  A Hessian is positive definite here when ``dpotrf``
    succeeds, so an eigenvalue within rounding of zero may go either way.  No
    validation: the rows must lie where the loss is twice differentiable.

    Parameters
    ----------
    model : Model
    X : ndarray of shape (B, n_params)
    shift : float
        Added to the diagonal: with shift = t > 0, "λ_min > -t" (a Cholesky test where
        the smallest eigenvalue's value is not needed).

    Returns
    -------
    ndarray of shape (B,), bool

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> from landscape.spectrum import is_positive_definite
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    >>> W_saddle = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -0.2, 0.0]])
    >>> is_positive_definite(m, np.vstack([m.flatten(np.eye(3)), m.flatten(W_saddle)]))
    array([ True, False])
    """
    if model.n_params > DENSE_LIMIT:
        # no dense Hessian at this size: the smallest eigenvalue by Lanczos
        return np.array([min_curvature(model, x)[0] > -shift for x in X], dtype=bool)
    out = np.zeros(len(X), dtype=bool)
    for i, H in each_hessian(model, X):
        out[i] = _is_positive_definite_shifted(H, -shift)
    return out


def min_curvature(model, x):
    """The smallest Hessian eigenvalue at x and a unit eigenvector of it.

    A dense ``eigh`` (smallest pair only) up to :data:`DENSE_LIMIT` parameters;
    Lanczos (``eigsh`` on Hessian-vector products, tolerance 1e-10) beyond.  No
    validation: x must lie where the loss is twice differentiable.

    Parameters
    ----------
    model : Model
    x : ndarray of shape (n_params,)

    Returns
    -------
    lambda_min : float
    v : ndarray of shape (n_params,)
        Unit eigenvector (its sign is arbitrary).

    Examples
    --------
    >>> import numpy as np, landscape as ls
    >>> from landscape.spectrum import min_curvature
    >>> m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    >>> lam, v = min_curvature(m, m.flatten(np.eye(3)))
    >>> bool(np.isclose(lam, 1 / 4 - 1 / (2 * np.pi))), bool(np.isclose(np.linalg.norm(v), 1))
    (True, True)
    """
    n = model.n_params
    if n <= DENSE_LIMIT:
        lam, Q = scipy.linalg.eigh(model.hess_kernel(x[None])[0], subset_by_index=(0, 0),
                                   check_finite=False)
        return float(lam[0]), Q[:, 0]
    op = LinearOperator((n, n), matvec=lambda v: model.hvp_kernel(x[None], v[None])[0],
                        dtype=np.float64)
    lam, Q = eigsh(op, k=1, which="SA", tol=1e-10)
    return float(lam[0]), Q[:, 0]


def lowest_modes(model, x, k, v0=None):
    """The k smallest Hessian eigenvalues at x (ascending) and unit eigenvectors (n, k), by
    Lanczos on Hessian-vector products (tolerance 1e-10), without a dense Hessian.

    A multiple eigenvalue may be returned with fewer copies than its multiplicity (Krylov
    spaces see one direction per eigenspace; copies appear through rounding): use it for
    directions, not for counts.  `v0` (n,) starts the Krylov space, e.g. a mode at a
    nearby point (an iterative solver's previous iterate): far fewer products then.
    """
    n = model.n_params
    op = LinearOperator((n, n), matvec=lambda v: model.hvp_kernel(x[None], v[None])[0],
                        dtype=np.float64)
    lam, Q = eigsh(op, k=k, which="SA", tol=1e-10, v0=v0)
    order = np.argsort(lam)
    return lam[order], Q[:, order]


# ---- dense and Lanczos paths -------------------------------------------------------

def _dense_spectrum(model, x, k, tau, rtol, atol, vectors):
    H = model.hess_kernel(x[None])[0]
    lam, Q = scipy.linalg.eigh(H, check_finite=False)
    n = lam.size
    norm = float(max(abs(lam[0]), abs(lam[-1])))
    tau = max(atol, rtol * norm) if tau is None else tau
    outside = np.abs(lam[np.abs(lam) > tau])
    keep = np.arange(n) if k is None else np.r_[0:k, n - k:n]
    lam_k, Q_k = lam[keep], Q[:, keep]
    residuals = np.linalg.norm(H @ Q_k - Q_k * lam_k, axis=0)
    return HessianSpectrum(
        eigenvalues=lam_k, eigenvectors=Q_k if vectors else None, n_params=n,
        method="dense", tau=float(tau), norm=norm,
        n_negative=int(np.count_nonzero(lam < -tau)),
        n_zero=int(np.count_nonzero(np.abs(lam) <= tau)),
        n_positive=int(np.count_nonzero(lam > tau)),
        lambda_min=float(lam[0]), lambda_max=float(lam[-1]),
        gap=float(outside.min()) if outside.size else np.inf,
        residuals=residuals, inertia_method="eigenvalues")


def _isotypic_spectrum(model, x, G, tau, rtol, atol):
    if not isinstance(G, Isotropy):
        raise TypeError(f"isotropy must be a landscape.Isotropy (ls.isotropy(model, x)) or "
                        f"None, got {type(G).__name__}")
    y = fixed_point_subspace(model, G).project(x)
    off = float(np.linalg.norm(y - x))
    if off > _FIXED_RTOL * max(float(np.linalg.norm(x)), np.finfo(float).tiny):
        raise ValueError(f"x is not fixed by the isotropy group {G}: it is {off:.3g} from "
                         f"Fix(G); pass the group of x, ls.isotropy(model, x)")
    model.require_differentiable(y[None])
    basis = isotypic_basis(G)
    Q = np.vstack(basis.vectors)                                   # (sum mu, n), one row a copy
    HQ = model.in_chunks(model.hvp_kernel, np.broadcast_to(y, Q.shape), Q,
                         out_shape=(model.n_params,))
    values, mults, names, residuals, start = [], [], [], [], 0
    for name, dim, V in zip(basis.irreps, basis.dims, basis.vectors):
        HV = HQ[start:start + len(V)]
        start += len(V)
        block = V @ HV.T
        lam, C = scipy.linalg.eigh(0.5 * (block + block.T), check_finite=False)
        vec, hvec = C.T @ V, C.T @ HV                                # block eigenvectors
        residuals.append(np.linalg.norm(hvec - lam[:, None] * vec, axis=1))
        values.append(lam)
        mults.append(np.full(lam.size, dim))
        names.extend([name] * lam.size)
    values, mults = np.concatenate(values), np.concatenate(mults)
    order = np.argsort(values, kind="stable")
    values, mults, residuals = values[order], mults[order], np.concatenate(residuals)[order]
    names = tuple(names[i] for i in order)
    lam = np.repeat(values, mults)
    norm = float(max(abs(lam[0]), abs(lam[-1])))
    tau = max(atol, rtol * norm) if tau is None else tau
    outside = np.abs(values[np.abs(values) > tau])
    return HessianSpectrum(
        eigenvalues=lam, eigenvectors=None, n_params=int(lam.size), method="isotypic",
        tau=float(tau), norm=norm,
        n_negative=int(mults[values < -tau].sum()),
        n_zero=int(mults[np.abs(values) <= tau].sum()),
        n_positive=int(mults[values > tau].sum()),
        lambda_min=float(lam[0]), lambda_max=float(lam[-1]),
        gap=float(outside.min()) if outside.size else np.inf,
        residuals=np.repeat(residuals, mults), inertia_method="eigenvalues",
        block_eigenvalues=values, multiplicities=mults, irreps=names, isotropy=G.name)


def _lanczos_spectrum(model, x, k, tau, rtol, atol, vectors, rng):
    n = model.n_params
    hvp = lambda v: model.hvp_kernel(x[None], np.ravel(v)[None])[0]  # noqa: E731
    op = LinearOperator((n, n), matvec=hvp, dtype=np.float64)
    # ARPACK accepts a Ritz pair when |r| <= tol * |theta|, a test that Ritz values
    # near zero (degenerate points) can never pass.  Lanczos on H + cI, c = 2|H| from
    # a rough first run, has the same Krylov spaces but Ritz values in about
    # [|H|, 3|H|], so the test becomes |r| <= (1 to 3) tol |H| for every pair.
    v0 = rng.standard_normal(n)
    if np.any(hvp(v0)):
        rough = eigsh(op, k=1, which="LM", tol=1e-2, ncv=min(n, 20), v0=v0,
                      return_eigenvectors=False)
        shift = 2.0 * abs(float(rough[0]))
    else:  # H v0 = 0 for a random v0: H = 0, where ARPACK's LM run would stop
        shift = 1.0
    shifted = LinearOperator((n, n), dtype=np.float64,
                             matvec=lambda v: hvp(v) + shift * np.ravel(v))
    # which="BE" with 2k eigenvalues: k from each end of the spectrum in one run.
    lam, Q = eigsh(shifted, k=2 * k, which="BE", tol=_LANCZOS_TOL,
                   ncv=min(n, max(10 * k, _LANCZOS_NCV)), v0=rng.standard_normal(n))
    order = np.argsort(lam)
    lam, Q = lam[order] - shift, Q[:, order]
    HQ = model.in_chunks(model.hvp_kernel, np.broadcast_to(x, (2 * k, n)), Q.T,
                        out_shape=(n,))
    residuals = np.linalg.norm(HQ - (Q * lam).T, axis=1)
    norm = float(max(abs(lam[0]), abs(lam[-1])))
    tau = max(atol, rtol * norm) if tau is None else tau
    if lam[0] > tau and _is_positive_definite_shifted(model.hess_kernel(x[None])[0], tau):
        # Every eigenvalue > tau (H - tau I has a Cholesky factor): one dpotrf, a third of one
        # dsytrf, settles the inertia of a minimum; the gap is the smallest eigenvalue.
        n_negative, n_zero, n_positive, gap = 0, 0, n, float(lam[0])
        inertia_method = "cholesky"
    else:
        # Inertia (and the gap) by LDLᵀ factorisations of the dense Hessian.
        n_negative, n_zero, n_positive, gap = _ldl_inertia(model.hess_kernel(x[None])[0], tau,
                                                           gap=True, rng=rng, ritz=lam)
        inertia_method = "ldl"
    return HessianSpectrum(
        eigenvalues=lam, eigenvectors=Q if vectors else None, n_params=n,
        method="lanczos", tau=float(tau), norm=norm, n_negative=n_negative, n_zero=n_zero,
        n_positive=n_positive, lambda_min=float(lam[0]), lambda_max=float(lam[-1]),
        gap=gap, residuals=residuals, inertia_method=inertia_method)


# ---- LDLᵀ inertia ------------------------------------------------------------------
#
# Timings (n = 10,000, random symmetric, this 2-core machine): scipy.linalg.ldl
# 9.9 s, lapack.dsytrf 8.7 s, eigvalsh 83 s, eigh 219 s (load average ~2.7 from other
# jobs).  At n = 1,000: ldl 0.21 s, dsytrf 0.02 s.  scipy.linalg.ldl calls the same
# dsytrf but then builds L and D as dense n x n arrays (1.6 GB more at n = 10,000)
# and applies the permutation; we call dsytrf directly, decode D from its pivots,
# and keep the factor for the dsytrs solves of the shift-invert gap runs.
#
# dsytrf runs with one BLAS thread: its Bunch-Kaufman panels are level-2 work with a
# thread synchronisation per column, and on a busy machine OpenBLAS's second thread
# turns that into a 15-30x slowdown (n = 4,000 at load average 4-5: 27-54 s with
# 2 threads, 1.8 s with 1; n = 10,000 with 1 thread at load 4: 8.5 s, no slower
# than 2 threads on the quieter machine).

def _is_positive_definite_shifted(H, tau):
    """Whether H - tau I has a Cholesky factor (LAPACK dpotrf), overwriting H.

    H is symmetric, so its C-ordered array read as H.T is the Fortran-ordered matrix dpotrf
    wants: no copy (at 10^4 parameters a copy is 800 MB and several seconds of page faults).
    dpotrf is blocked level-3 work and uses the BLAS threads available (unlike dsytrf, see
    below).
    """
    n = H.shape[0]
    A = H.T if H.flags.c_contiguous else np.array(H, dtype=np.float64, order="F")
    idx = np.arange(n)
    A[idx, idx] -= tau
    _, info = lapack.dpotrf(A, lower=1, overwrite_a=1, clean=0)
    return info == 0


def _ldl_inertia(H, tau, *, gap, rng=None, ritz=None):
    """(n_negative, n_zero, n_positive, gap or None) from LDLᵀ of H - τI and H + τI.

    ``ritz``: the k smallest and k largest Ritz values (ascending), which give a
    side of the gap directly when the counts show that no eigenvalue was missed.
    """
    n = H.shape[0]
    # One Fortran-ordered work array (dsytrf factorises it in place) serves both shifts.
    A = np.array(H, dtype=np.float64, order="F")
    A.flat[::n + 1] -= tau
    factor = _sytrf(A)
    d = _block_eigenvalues(*factor[:2])
    n_positive = int(np.count_nonzero(d > 0))
    gap_above = gap_below = np.inf
    if gap and n_positive:
        gap_above = _gap_from_ritz(ritz, tau, n, n_positive, "above")
        if gap_above is None:
            # Outliers of this run: the zero band and negative eigenvalues near it.
            gap_above = _nearest_beyond(factor, tau, "LA", n - n_positive, rng)
    if tau > 0:
        A[...] = H
        A.flat[::n + 1] += tau
        factor = _sytrf(A)
        d = _block_eigenvalues(*factor[:2])
    n_negative = int(np.count_nonzero(d < 0))
    n_zero = n - n_negative - n_positive
    if gap and n_negative:
        gap_below = _gap_from_ritz(ritz, tau, n, n_negative, "below")
        if gap_below is None:
            gap_below = _nearest_beyond(factor, -tau, "SA", n_zero, rng)
    return n_negative, n_zero, n_positive, (min(gap_above, gap_below) if gap else None)


def _gap_from_ritz(ritz, tau, n, n_beyond, side):
    """|λ| of the eigenvalue nearest the band on one side, read off the Ritz values.

    ``ritz`` holds the k smallest and the k largest Ritz values (ascending) and
    ``n_beyond`` the exact number of eigenvalues on that side of the band:
    #{λ > τ} for ``side="above"``, #{λ < -τ} for ``"below"``.  The wanted
    eigenvalue is the (n - n_beyond + 1)-th from the far end and the n_beyond-th
    from its own end.  If the Ritz values at either end show exactly as many
    values before it as the counts say, Lanczos has found every eigenvalue up
    to it and that Ritz value is the answer; otherwise None.
    """
    if ritz is None:
        return None
    k = ritz.size // 2
    # Solve "smallest value above tau" for H (side "above") or for -H ("below"),
    # with `far` the Ritz values from the bottom up and `own` from the top down.
    if side == "above":
        far, own = ritz[:k], ritz[k:][::-1]
    else:
        far, own = -ritz[k:][::-1], -ritz[:k]
    n_before = n - n_beyond
    if n_before < k and np.count_nonzero(far <= tau) == n_before:
        return float(far[n_before])
    if 0 < n_beyond <= k and np.count_nonzero(own > tau) == n_beyond:
        return float(own[n_beyond - 1])
    return None


def _sytrf(A):
    """Bunch-Kaufman factorisation of the Fortran-ordered symmetric A, in place.

    Returns (ldu, ipiv, info): LAPACK's packed factor (lower triangle), its pivot
    vector (1-based) and info > 0 when D has an exactly zero 1×1 block.
    """
    n = A.shape[0]
    lwork, info = lapack.dsytrf_lwork(n, lower=1)
    with threadpool_limits(limits=1, user_api="blas"):
        ldu, ipiv, info = lapack.dsytrf(A, lower=1, lwork=max(1, int(lwork)), overwrite_a=1)
    if info < 0:  # an illegal argument: a bug here, not a property of H
        raise RuntimeError(f"LAPACK dsytrf rejected argument {-info}")
    return ldu, ipiv, info


def _block_eigenvalues(ldu, ipiv):
    """Eigenvalues of the block-diagonal D of a lower dsytrf factorisation, shape (n,).

    From the LAPACK documentation of DSYTRF (UPLO = 'L'; IPIV is 1-based):
    "If IPIV(k) > 0, then rows and columns k and IPIV(k) were interchanged and
    D(k,k) is a 1-by-1 diagonal block.  If IPIV(k) = IPIV(k+1) < 0, then rows and
    columns k+1 and -IPIV(k) were interchanged and D(k:k+1,k:k+1) is a 2-by-2
    diagonal block."  D is stored in the diagonal and first subdiagonal of the
    factor.  Reading left to right, a run of negative pivots is a sequence of
    2×2 blocks, so a block starts at every even offset within the run.
    """
    n = ipiv.size
    neg = ipiv < 0
    idx = np.arange(n)
    run_start = np.maximum.accumulate(np.where(neg, 0, idx + 1))
    first = np.flatnonzero(neg & ((idx - run_start) % 2 == 0))
    diag = np.diagonal(ldu)
    d = np.empty(n)
    d[~neg] = diag[~neg]
    if first.size:
        blocks = np.empty((first.size, 2, 2))
        blocks[:, 0, 0] = diag[first]
        blocks[:, 1, 1] = diag[first + 1]
        blocks[:, 0, 1] = blocks[:, 1, 0] = ldu[first + 1, first]
        # Bunch-Kaufman 2×2 pivots are indefinite (det < 0) in exact arithmetic;
        # compute the signs rather than assume them.
        ev = np.linalg.eigvalsh(blocks)
        d[first], d[first + 1] = ev[:, 0], ev[:, 1]
    return d


def _nearest_beyond(factor, sigma, which, n_outliers, rng):
    """|λ| of the eigenvalue nearest sigma on one side, by shift-invert Lanczos.

    ``factor`` is the dsytrf factorisation of H - sigma I.  The eigenvalues of
    (H - sigma I)⁻¹ are 1/(λ - sigma): ``which="LA"`` gives the smallest λ above
    sigma, ``"SA"`` the largest below.  Eigenvalues very close to sigma on the
    other side (the zero band) become huge outliers that slow Lanczos down until
    the Krylov space holds them all, hence ``ncv`` grows with their number.
    """
    ldu, ipiv, info = factor
    n = ldu.shape[0]
    if info > 0:
        warnings.warn(f"H - ({sigma:.3g}) I is exactly singular; the spectral gap is "
                      "reported as NaN (the counts are exact)", LandscapeWarning, stacklevel=5)
        return np.nan

    def solve(b):
        return lapack.dsytrs(ldu, ipiv, np.reshape(b, (n, 1)), lower=1)[0][:, 0]

    op = LinearOperator((n, n), matvec=solve, dtype=np.float64)
    ncv = min(n, 20 + min(n_outliers, _GAP_MAX_EXTRA_NCV))
    try:
        lam = eigsh(op, k=1, sigma=sigma, which=which, OPinv=op, tol=_GAP_TOL, ncv=ncv,
                    v0=rng.standard_normal(n), return_eigenvectors=False)
    except ArpackNoConvergence:
        warnings.warn("shift-invert Lanczos did not converge; the spectral gap is "
                      "reported as NaN (the counts are exact)", LandscapeWarning,
                      stacklevel=5)
        return np.nan
    return float(abs(lam[0]))


# ---- validation --------------------------------------------------------------------

def _check_k(k, n, method):
    if k is None:
        if method == "dense":
            return None
        k = min(_DEFAULT_K, (n - 1) // 2)
        if k < 1:
            raise ValueError(f"method='lanczos' needs n_params >= 3, got {n}; "
                             "use method='dense'")
        return k
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an integer or None, got {type(k).__name__} {k!r}")
    k = as_positive_int(k, "k")
    limit = n // 2 if method == "dense" else (n - 1) // 2
    if k > limit:
        rule = "2k <= n_params" if method == "dense" else "2k < n_params"
        raise ValueError(f"k must satisfy {rule} = {n} for method={method!r} "
                         f"(k eigenvalues from each end), got k={k}; pass k <= {limit}"
                         + (" or k=None with method='dense' for all eigenvalues"
                            if method == "lanczos" else " or k=None for all eigenvalues"))
    return k


def _as_symmetric_matrix(H):
    if isinstance(H, LinearOperator):
        if len(H.shape) != 2 or H.shape[0] != H.shape[1]:
            raise ValueError(f"H must be square, got an operator of shape {H.shape}")
        H = H.matmat(np.eye(H.shape[0]))
    elif hasattr(H, "toarray"):  # scipy sparse matrices and arrays
        H = H.toarray()
    H = as_float_array(H, "H", ndim=2)
    if H.shape[0] != H.shape[1]:
        raise ValueError(f"H must be a square matrix, got shape {H.shape}")
    scale = np.abs(H).max()
    asym = np.abs(H - H.T).max()
    if asym > _SYMMETRY_RTOL * scale:
        raise ValueError(f"H must be symmetric; max|H - H.T| = {asym:.3g} exceeds "
                         f"{_SYMMETRY_RTOL:g} * max|H|; pass (H + H.T) / 2 if the asymmetry "
                         "is rounding")
    return H
