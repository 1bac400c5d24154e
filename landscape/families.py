r"""Families of symmetric critical points followed in the number of neurons k (Arjevani & Field).

A critical point of the k = d teacher-student loss with V = I whose isotropy group
is diagonal — ``Δ(S_{m_1} x ... x S_{m_b})``: blocks of neurons permuted together
with the same blocks of coordinates — is described by a few block values (the
orbit values of its fixed-point subspace, 5 for ``Δ(S_{k-1} x S_1)``).  The
same block values make sense at every k when one block grows with k, so the point
can be carried from k to k' and re-solved there by Newton in Fix(G)
(:func:`~landscape.find_critical_point` with ``isotropy=``): that is how Arjevani
and Field follow the spurious minima Safran and Shamir found at k <= 20 to large
k.  :func:`continue_family` does it, recording loss, gradient norm and the exact
Hessian spectrum (isotypic blocks, with multiplicities) at each k.

References
----------
Y. Arjevani, M. Field, "Analytic study of families of spurious minima in two-layer
ReLU neural networks: a tale of symmetry II", NeurIPS 2021.
I. Safran, O. Shamir, "Spurious local minima are common in two-layer ReLU neural
networks", ICML 2018.
"""

import dataclasses
import numbers
import time

import numpy as np

from ._results import Result
from ._validation import as_choice, as_positive_float
from .critical import METHODS, find_critical_point
from .isotropy import Isotropy, fixed_point_subspace, isotropy
from .models.base import check_model
from .spectrum import hessian_spectrum

__all__ = ["Family", "continue_family", "diagonal_type"]


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Family(Result):
    """A family of critical points followed in k (see :func:`continue_family`).

    Attributes
    ----------
    k : ndarray of int, shape (m,)
        The numbers of neurons reached (the first m of the requested ones).
    sizes : tuple of tuple of int
        The block sizes at each k (``Isotropy.diagonal`` of the point).
    isotropy : tuple of str
        The isotropy group's name at each k.
    values : ndarray of shape (m, p)
        The p block (orbit) values of the point at each k, in the orbit order of
        :func:`~landscape.fixed_point_subspace` of ``Isotropy.diagonal(model, sizes)``.
    loss, grad_norm : ndarray of shape (m,)
    success : ndarray of bool, shape (m,)
        Newton reached |grad L| <= gtol at that k.
    nit : ndarray of int, shape (m,)
        Newton iterations at each k.
    lambda_min : ndarray of shape (m,)
        Smallest Hessian eigenvalue (NaN where the spectrum was not computed).
    n_negative : ndarray of int, shape (m,)
        Morse index (-1 where the spectrum was not computed).
    block_eigenvalues, multiplicities : tuple of ndarray
        The exact spectrum at each k: the isotypic block eigenvalues and the
        multiplicity of each (empty where not computed).
    irreps : tuple of tuple of str
        The irreducible representation of each block eigenvalue at each k (so
        an eigenvalue can be followed in k: same representation, same rank
        within it).
    seconds_newton, seconds_spectrum : ndarray of shape (m,)
        Wall time of the solve and of the spectrum at each k.
    success_all : bool
        Every requested k was reached.
    message : str
    """

    k: np.ndarray
    sizes: tuple
    isotropy: tuple
    values: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    success: np.ndarray
    nit: np.ndarray
    lambda_min: np.ndarray
    n_negative: np.ndarray
    block_eigenvalues: tuple
    multiplicities: tuple
    irreps: tuple
    seconds_newton: np.ndarray
    seconds_spectrum: np.ndarray
    success_all: bool
    message: str

    def __post_init__(self):                     # tuples also after from_dict
        object.__setattr__(self, "sizes", tuple(tuple(int(v) for v in s) for s in self.sizes))
        for name in ("isotropy", "block_eigenvalues", "multiplicities"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "irreps", tuple(tuple(r) for r in self.irreps))

    def point(self, i, model):
        """The critical point at the i-th k as a flat x of `model` (built for that k)."""
        G = Isotropy.diagonal(model, self.sizes[i])
        F = fixed_point_subspace(model, G)
        return F.point(np.asarray(self.values[i]) * np.sqrt(F.sizes))


def diagonal_type(model, x, *, tol=None):
    """(sizes, permuted x): x relabelled so that its isotropy group is ``Isotropy.diagonal(sizes)``.

    The point's neurons and coordinates are reordered (a symmetry of the loss, so
    the result is the same critical point) into consecutive blocks, in the order
    of each block's first neuron; the fixed neurons and coordinates become blocks
    of size 1, paired in order.

    Raises
    ------
    ValueError
        When the isotropy group of x is not diagonal (a factor acting on neurons or
        on coordinates alone, or unequal numbers of fixed neurons and coordinates).
    """
    G = isotropy(model, x) if tol is None else isotropy(model, x, tol=tol)
    k, d = G.layout.shape
    if not all(r and c for r, c in G.factors):
        raise ValueError(f"the isotropy group of x, {G}, has a factor acting on neurons or "
                         f"coordinates alone; families are followed for diagonal groups "
                         f"Δ(S_m1 × ...) only")
    fixed_r = [i for i in range(k) if all(i not in r for r, _ in G.factors)]
    fixed_c = [j for j in range(d) if all(j not in c for _, c in G.factors)]
    if len(fixed_r) != len(fixed_c):
        raise ValueError(f"x has {len(fixed_r)} fixed neurons but {len(fixed_c)} fixed "
                         f"coordinates; families are followed for k = d")
    blocks = [(min(r), list(r), list(c)) for r, c in G.factors]
    blocks += [(i, [i], [j]) for i, j in zip(fixed_r, fixed_c)]
    blocks.sort()
    rows = [i for _, r, _ in blocks for i in r]
    cols = [j for _, _, c in blocks for j in c]
    sizes = [len(r) for _, r, _ in blocks]
    W = x[G.layout]
    out = np.empty_like(x)
    out[G.layout] = W[rows][:, cols]
    return sizes, out


def continue_family(make_model, x0, ks, *, grow=None, gtol=1e-11, method="newton",
                    maxiter=50, spectrum=True, stop_on_failure=True):
    r"""Follow a symmetric critical point of ``make_model(ks[0])`` through ``make_model(k)``.

    Parameters
    ----------
    make_model : callable
        ``make_model(k)`` returns the model with k neurons, e.g.
        ``lambda k: ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)``.
    x0 : array_like of shape (n_params,)
        A critical point (or a point Newton converges from) of ``make_model(ks[0])``
        whose isotropy group is diagonal (see :func:`diagonal_type`).
    ks : sequence of int
        Increasing numbers of neurons; big jumps are fine when the block values
        vary slowly (a secant predictor extrapolates them in k).
    grow : int, optional
        Which block (in the order of :func:`diagonal_type`) grows with k; default
        the largest.  It must have size >= 2 (so Fix(G) keeps its dimension).
    gtol : float
        Newton's tolerance on |grad L|.  The default 1e-11 is above the rounding
        floor of the gradient at k = 200 (about 2e-12: k^2 terms per entry).
    method : {"newton", "newton-mr", "trust-region"}
    maxiter : int
        Newton iterations per k.
    spectrum : bool
        Compute the exact spectrum (isotypic blocks) at every k.
    stop_on_failure : bool
        Stop at the first k where Newton does not converge (the family is lost or
        turns); otherwise continue from the last converged values.

    Returns
    -------
    Family

    Notes
    -----
    At each k the block sizes are those of ks[0] with block `grow` enlarged by
    k - ks[0]; the start is the previous block values, or their linear
    extrapolation in k from the previous two, lifted to Fix(G) of the new model,
    and Newton runs in Fix(G) (no full Hessian).  Each step costs a few gradients
    and dim Fix(G) Hessian-vector products of the full model, O(k^3) each; the
    spectrum costs one Hessian-vector product per isotypic block (12 for
    ``Δ(S_{k-1} × S_1)``).

    Examples
    --------
    The global minimum W = I is the family Δ(S_k); its λ_min is 1/4 - 1/(2π) at every k:

    >>> import numpy as np, landscape as ls
    >>> f = ls.continue_family(lambda k: ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k),
    ...                        np.eye(4).ravel(), [4, 10, 40])
    >>> f.k.tolist(), f.isotropy, np.round(f.lambda_min, 6).tolist()
    ([4, 10, 40], ('Δ(S_4)', 'Δ(S_10)', 'Δ(S_40)'), [0.090845, 0.090845, 0.090845])
    """
    if not callable(make_model):
        raise TypeError(f"make_model must be a callable k -> model, got "
                        f"{type(make_model).__name__}")
    ks = list(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1
                     for k in ks) or any(b <= a for a, b in zip(ks, ks[1:])):
        raise ValueError(f"ks must be a non-empty increasing sequence of positive ints, got {ks}")
    gtol = as_positive_float(gtol, "gtol", allow_zero=True)
    as_choice(method, "method", tuple(METHODS))
    model = check_model(make_model(ks[0]))
    x0 = model.check_x(x0, "x0")
    sizes0, x0 = diagonal_type(model, x0)
    if grow is None:
        grow = int(np.argmax(sizes0))
    if not isinstance(grow, numbers.Integral) or not 0 <= grow < len(sizes0) \
            or sizes0[grow] < 2:
        raise ValueError(f"grow must index a block of size >= 2 of {sizes0}, got {grow!r}")
    rec = {key: [] for key in ("k", "sizes", "isotropy", "values", "loss", "grad_norm",
                               "success", "nit", "lambda_min", "n_negative", "blocks",
                               "mults", "irreps", "t_newton", "t_spectrum")}
    message = "every k reached"
    start = None
    for i, k in enumerate(ks):
        sizes = list(sizes0)
        sizes[grow] += k - ks[0]
        model = model if i == 0 else check_model(make_model(k))
        G = Isotropy.diagonal(model, sizes)
        F = fixed_point_subspace(model, G)
        if i == 0:
            start = F.coordinates(x0) / np.sqrt(F.sizes)
        elif len(rec["values"]) >= 2:
            (k1, v1), (k2, v2) = zip(rec["k"][-2:], rec["values"][-2:])
            start = v2 + (v2 - v1) * (k - k2) / (k2 - k1)
        else:
            start = rec["values"][-1]
        t = time.perf_counter()
        r = find_critical_point(model, F.point(start * np.sqrt(F.sizes)), method=method,
                                gtol=gtol, maxiter=maxiter, isotropy=G)
        t_newton = time.perf_counter() - t
        if not r.success and stop_on_failure:
            message = (f"Newton in Fix({G}) did not converge at k = {k} ({r.message}); "
                       f"the family was followed up to k = {rec['k'][-1] if rec['k'] else '-'}")
            break
        t = time.perf_counter()
        spec = hessian_spectrum(model, r.x, isotropy=G) if spectrum and r.success else None
        rec["t_spectrum"].append(time.perf_counter() - t)
        rec["t_newton"].append(t_newton)
        rec["k"].append(int(k))
        rec["sizes"].append(tuple(sizes))
        rec["isotropy"].append(G.name)
        rec["values"].append(F.coordinates(r.x) / np.sqrt(F.sizes) if r.success else
                             rec["values"][-1] if rec["values"] else start)
        rec["loss"].append(r.loss)
        rec["grad_norm"].append(r.grad_norm)
        rec["success"].append(r.success)
        rec["nit"].append(r.nit)
        rec["lambda_min"].append(np.nan if spec is None else spec.lambda_min)
        rec["n_negative"].append(-1 if spec is None else spec.n_negative)
        rec["blocks"].append(np.zeros(0) if spec is None else spec.block_eigenvalues)
        rec["mults"].append(np.zeros(0, np.int64) if spec is None else spec.multiplicities)
        rec["irreps"].append(() if spec is None else spec.irreps)
    n = len(rec["k"])
    return Family(
        k=np.array(rec["k"], dtype=np.int64), sizes=tuple(rec["sizes"]),
        isotropy=tuple(rec["isotropy"]),
        values=np.array(rec["values"]).reshape(n, -1), loss=np.array(rec["loss"]),
        grad_norm=np.array(rec["grad_norm"]), success=np.array(rec["success"], dtype=bool),
        nit=np.array(rec["nit"], dtype=np.int64), lambda_min=np.array(rec["lambda_min"]),
        n_negative=np.array(rec["n_negative"], dtype=np.int64),
        block_eigenvalues=tuple(rec["blocks"]), multiplicities=tuple(rec["mults"]),
        irreps=tuple(rec["irreps"]),
        seconds_newton=np.array(rec["t_newton"]), seconds_spectrum=np.array(rec["t_spectrum"]),
        success_all=bool(n == len(ks) and all(rec["success"])), message=message)
