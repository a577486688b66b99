"""The Johnson-Lindenstrauss lemma: target dimensions, random projections, distortion.

Defined in the chapters "The Johnson-Lindenstrauss lemma: theory" (``book/jl_theory.md``)
and "... applications" (``book/jl_applications.md``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from .core import as_tensor, check_choice, check_int, check_real, get_device, make_generator

__all__ = [
    "jl_min_dim",
    "gaussian_matrix",
    "gaussian_projection",
    "pairwise_distortion",
    "DistortionStats",
]

_METHODS = ("su", "su-existence", "sklearn")


def jl_min_dim(n_points: int, eps: float, *, method: str = "su") -> int:
    """Smallest target dimension the Johnson-Lindenstrauss bound allows.

    Parameters
    ----------
    n_points : int
        Number of points N, at least 2.
    eps : float
        Allowed distortion, in the open interval (0, 1).
    method : {"su", "su-existence", "sklearn"}, default "su"
        ``"su"``: the smallest integer n with n > 24 ln N / eps**2 (success probability at
        least (N-1)/N, eq. ``jl-eq-lemma-n`` of the theory chapter).
        ``"su-existence"``: the smallest integer n > 16 ln N / eps**2 (success probability
        only >= 1/N, which still proves that a good projection exists).
        ``"sklearn"``: exactly ``sklearn.random_projection.johnson_lindenstrauss_min_dim``,
        i.e. 4 ln N / (eps**2/2 - eps**3/3) truncated to an integer.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``n_points < 2``, ``eps`` is outside (0, 1) or ``method`` is unknown.

    Examples
    --------
    >>> jl_min_dim(10_000, 0.1)
    22105
    >>> jl_min_dim(10_000, 0.1, method="sklearn")
    7894
    """
    n_points = check_int(n_points, "n_points", minimum=2)
    eps = check_real(eps, "eps", low=0.0, high=1.0)
    check_choice(method, "method", _METHODS)
    if method == "sklearn":
        # the same float64 operations, in the same order, as scikit-learn
        eps_arr = np.asarray(eps)
        denominator = (eps_arr**2 / 2) - (eps_arr**3 / 3)
        return int((4 * np.log(np.asarray(n_points)) / denominator).astype(np.int64))
    constant = 24.0 if method == "su" else 16.0
    return math.floor(constant * math.log(n_points) / eps**2) + 1


def gaussian_matrix(n_components: int, n_features: int, *, seed: int | None = None,
                    dtype: torch.dtype = torch.float64,
                    device: str | torch.device | None = None) -> torch.Tensor:
    """Random matrix A with i.i.d. N(0, 1/n_components) entries, shape (n_components, n_features).

    The entries are drawn on the CPU from a generator seeded with ``seed`` and then moved to
    ``device``, so a seed gives the same matrix on every device. This is the distribution
    ``sklearn.random_projection.GaussianRandomProjection`` uses for its ``components_``.

    Parameters
    ----------
    n_components : int
        Target dimension n (rows), at least 1.
    n_features : int
        Source dimension m (columns), at least 1.
    seed : int, optional
        Seed for the generator.
    dtype : torch.dtype, default torch.float64
    device : str or torch.device, optional
        Default :func:`kexue_helpers.core.get_device`.

    Returns
    -------
    torch.Tensor

    Raises
    ------
    ValueError
        If a dimension is smaller than 1.

    Examples
    --------
    >>> gaussian_matrix(3, 5, seed=0, device="cpu").shape
    torch.Size([3, 5])
    """
    n_components = check_int(n_components, "n_components", minimum=1)
    n_features = check_int(n_features, "n_features", minimum=1)
    gen = make_generator(seed)
    a = torch.randn(n_components, n_features, generator=gen, dtype=torch.float64)
    a /= math.sqrt(n_components)
    return a.to(device=get_device(device), dtype=dtype)


def gaussian_projection(x: Any, n_components: int, *, seed: int | None = None,
                        device: str | torch.device | None = None) -> Any:
    """Project the rows of ``x`` with a Gaussian random matrix: v -> A v.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (n_points, n_features)
        The points, one per row, finite.
    n_components : int
        Target dimension n.
    seed : int, optional
        Seed of the random matrix (see :func:`gaussian_matrix`).
    device : str or torch.device, optional
        Where to compute; default :func:`kexue_helpers.core.get_device`.

    Returns
    -------
    numpy.ndarray or torch.Tensor, shape (n_points, n_components)
        ``x @ A.T``: a NumPy array if ``x`` was not a tensor, otherwise a tensor on
        ``device``. Floating inputs keep their dtype; others become float64.

    Raises
    ------
    ValueError
        If ``x`` is not 2-D, is empty or holds NaN/inf, or ``n_components < 1``.

    Examples
    --------
    >>> import numpy as np
    >>> gaussian_projection(np.eye(4), 2, seed=0).shape
    (4, 2)
    """
    n_components = check_int(n_components, "n_components", minimum=1)
    xt = as_tensor(x, "x", ndim=2, device=device)
    a = gaussian_matrix(n_components, xt.shape[1], seed=seed, dtype=xt.dtype,
                        device=xt.device)
    y = xt @ a.T
    return y if isinstance(x, torch.Tensor) else y.cpu().numpy()


@dataclass(frozen=True)
class DistortionStats:
    """Summary of the ratios r_ij = ||y_i - y_j||^2 / ||x_i - x_j||^2 over pairs i < j.

    Attributes
    ----------
    n_pairs : int
        Number of pairs with nonzero distance in ``x`` (the pairs the ratios cover).
    n_zero : int
        Pairs skipped because x_i = x_j (up to rounding, see :func:`pairwise_distortion`).
    min, max, mean, std : float
        Statistics of the ratios.
    ratios : numpy.ndarray or None
        All ratios (in block order), kept when there are few enough of them.
    """

    n_pairs: int
    n_zero: int
    min: float
    max: float
    mean: float
    std: float
    ratios: np.ndarray | None = field(default=None, repr=False)
    _outside: dict[float, int] = field(default_factory=dict, repr=False)

    @property
    def worst(self) -> float:
        """The largest ``|r_ij - 1|``: the smallest eps for which every pair is within 1 +- eps."""
        return max(1.0 - self.min, self.max - 1.0)

    def fraction_outside(self, eps: float) -> float:
        """Fraction of pairs whose ratio lies outside [1 - eps, 1 + eps].

        Exact when ``eps`` was passed to :func:`pairwise_distortion` or the ratios were
        kept (``ratios`` is not None).

        Parameters
        ----------
        eps : float
            Positive tolerance.

        Returns
        -------
        float

        Raises
        ------
        ValueError
            If ``eps <= 0`` or it can't be answered exactly from what was computed.
        """
        eps = check_real(eps, "eps", low=0.0)
        if eps in self._outside:
            return self._outside[eps] / self.n_pairs
        if self.ratios is not None:
            r = self.ratios
            return float(np.count_nonzero((r < 1 - eps) | (r > 1 + eps))) / self.n_pairs
        raise ValueError(f"eps={eps!r} was not requested and the {self.n_pairs} ratios were not "
                         "kept; pass eps=... (or keep_ratios=True) to pairwise_distortion")


def _block_sq_dists(a: torch.Tensor, b: torch.Tensor, na: torch.Tensor,
                    nb: torch.Tensor) -> torch.Tensor:
    """Squared distances between rows of a and rows of b from the Gram trick."""
    return (na[:, None] + nb[None, :] - 2.0 * (a @ b.T)).clamp_min_(0.0)


def pairwise_distortion(x: Any, y: Any, *, eps: float | Sequence[float] | None = None,
                        block_size: int | None = None, keep_ratios: bool | None = None,
                        device: str | torch.device | None = None) -> DistortionStats:
    """Distortion of all pairwise squared distances under a map x_i -> y_i.

    Computes r_ij = ||y_i - y_j||^2 / ||x_i - x_j||^2 for all i < j in square blocks of
    ``block_size`` rows, in float64 on the helpers' device, so memory stays
    O(block_size^2 + n_points * dims) whatever the number of pairs. Both point sets are
    centred first (distances do not change) to limit cancellation in
    ||a||^2 + ||b||^2 - 2 a.b; a pair counts as coincident, and is skipped, when its
    squared distance is below 1e-12 times ||x_i||^2 + ||x_j||^2.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (n_points, m)
        Original points, n_points >= 2, finite.
    y : array_like or torch.Tensor, shape (n_points, n)
        Their images, same number of rows, finite.
    eps : float or sequence of float, optional
        Tolerances for which to count, exactly, the pairs outside [1 - eps, 1 + eps]
        (see :meth:`DistortionStats.fraction_outside`).
    block_size : int, optional
        Rows per block; default 1024 (about 200 MB of temporaries in float64).
    keep_ratios : bool, optional
        Keep every ratio in the result. Default: keep them when there are at most
        5,000,000 pairs.
    device : str or torch.device, optional
        Default :func:`kexue_helpers.core.get_device`.

    Returns
    -------
    DistortionStats

    Raises
    ------
    ValueError
        If the shapes do not match, there are fewer than 2 points, the data hold NaN/inf,
        ``eps`` is not positive, ``block_size < 1`` or every pair coincides.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(50, 100))
    >>> stats = pairwise_distortion(x, 2 * x, eps=0.5)
    >>> round(stats.min, 6), round(stats.max, 6), stats.fraction_outside(0.5)
    (4.0, 4.0, 1.0)
    """
    xt = as_tensor(x, "x", ndim=2, dtype=torch.float64, device=device)
    yt = as_tensor(y, "y", ndim=2, dtype=torch.float64, device=xt.device)
    n = xt.shape[0]
    if n < 2:
        raise ValueError(f"x must hold at least 2 points (rows); got shape {tuple(xt.shape)}")
    if yt.shape[0] != n:
        raise ValueError(f"y must have one row per row of x ({n}); got shape "
                         f"{tuple(yt.shape)}")
    if eps is None:
        eps_list: list[float] = []
    elif isinstance(eps, (int, float, np.floating, np.integer)) and not isinstance(eps, bool):
        eps_list = [check_real(eps, "eps", low=0.0)]
    else:
        eps_list = [check_real(e, "eps", low=0.0) for e in eps]
    bs = 1024 if block_size is None else check_int(block_size, "block_size", minimum=1)
    n_total = n * (n - 1) // 2
    keep = (n_total <= 5_000_000) if keep_ratios is None else bool(keep_ratios)

    xt = xt - xt.mean(dim=0)
    yt = yt - yt.mean(dim=0)
    nx, ny = (xt * xt).sum(1), (yt * yt).sum(1)

    n_pairs = n_zero = 0
    r_min, r_max = math.inf, -math.inf
    r_sum = torch.zeros((), dtype=torch.float64, device=xt.device)
    r_sq = torch.zeros((), dtype=torch.float64, device=xt.device)
    outside = {e: torch.zeros((), dtype=torch.int64, device=xt.device) for e in eps_list}
    kept: list[torch.Tensor] = []
    for i0 in range(0, n, bs):
        i1 = min(i0 + bs, n)
        for j0 in range(i0, n, bs):
            j1 = min(j0 + bs, n)
            dx = _block_sq_dists(xt[i0:i1], xt[j0:j1], nx[i0:i1], nx[j0:j1])
            dy = _block_sq_dists(yt[i0:i1], yt[j0:j1], ny[i0:i1], ny[j0:j1])
            scale = nx[i0:i1, None] + nx[None, j0:j1]
            valid = dx > 1e-12 * scale
            if i0 == j0:  # diagonal block: strict upper triangle only
                upper = torch.ones(i1 - i0, j1 - j0, dtype=torch.bool, device=xt.device)
                upper = torch.triu(upper, diagonal=1)
                n_zero += int((upper & ~valid).sum())
                valid &= upper
            else:
                n_zero += int((~valid).sum())
            r = dy[valid] / dx[valid]
            if r.numel() == 0:
                continue
            n_pairs += r.numel()
            r_min = min(r_min, float(r.min()))
            r_max = max(r_max, float(r.max()))
            r_sum += r.sum()
            r_sq += (r * r).sum()
            for e in eps_list:
                outside[e] += ((r < 1 - e) | (r > 1 + e)).sum()
            if keep:
                kept.append(r.cpu())
    if n_pairs == 0:
        raise ValueError("x must contain at least two distinct points; all pairs coincide")
    mean = float(r_sum) / n_pairs
    var = max(float(r_sq) / n_pairs - mean * mean, 0.0)
    return DistortionStats(
        n_pairs=n_pairs, n_zero=n_zero, min=r_min, max=r_max, mean=mean, std=math.sqrt(var),
        ratios=torch.cat(kept).numpy() if keep else None,
        _outside={e: int(c) for e, c in outside.items()},
    )


# --------------------------------------------------------------------------------------
# applications (book/jl_applications.md): sparse projections, SimHash, randomized SVD
# --------------------------------------------------------------------------------------
__all__ += [
    "sparse_matrix",
    "sparse_projection",
    "simhash",
    "hamming_distances",
    "randomized_svd",
]


def _check_density(density: float | None, n_features: int) -> float:
    """Li et al.'s default 1/sqrt(n_features) for ``None``, else a float in (0, 1]."""
    if density is None:
        return 1.0 / math.sqrt(n_features)
    return check_real(density, "density", low=0.0, high=1.0, high_open=False)


def _bernoulli_positions(total: int, density: float, gen: torch.Generator) -> np.ndarray:
    """Sorted positions in ``range(total)`` kept independently with probability ``density``.

    Draws the gaps between kept positions, which are geometric on {1, 2, ...}, so the work
    is proportional to the number of kept positions, not to ``total``. The uniforms come from
    the seeded torch generator; the arithmetic on them is done in NumPy (one thread, cheap
    for these sizes).
    """
    if density >= 1.0:
        return np.arange(total, dtype=np.int64)
    log_q = math.log1p(-density)
    chunks: list[np.ndarray] = []
    last = -1.0
    while True:
        expected = (total - 1 - last) * density
        size = int(expected + 6.0 * math.sqrt(expected) + 16)
        u = torch.rand(size, generator=gen, dtype=torch.float64).numpy()
        gaps = np.floor(np.log1p(-u) / log_q) + 1.0
        pos = last + np.cumsum(gaps)
        keep = pos < total
        chunks.append(pos[keep].astype(np.int64))
        if not keep.all():
            break
        last = float(pos[-1])
    return np.concatenate(chunks)


def sparse_matrix(n_components: int, n_features: int, *, density: float | None = None,
                  seed: int | None = None, dtype: torch.dtype = torch.float64,
                  device: str | torch.device | None = None) -> torch.Tensor:
    """Sparse random projection matrix of Achlioptas and of Li, Hastie and Church.

    Each entry is, independently, +sqrt(1/(density n)) or -sqrt(1/(density n)) with
    probability density/2 each and 0 otherwise (n = ``n_components``), so that
    E[A^T A] = I as for the Gaussian matrix (eq. ``jla-eq-sparse-entries`` of the chapter
    "The Johnson-Lindenstrauss lemma: applications"). ``density=1/3`` is Achlioptas's
    matrix; the default ``density=None`` is Li et al.'s 1/sqrt(n_features). This is the
    law, the scaling and the default of ``sklearn.random_projection.SparseRandomProjection``
    (``density="auto"``). The nonzero positions are drawn from their geometric gaps, so the
    cost is proportional to the number of nonzeros.

    Parameters
    ----------
    n_components : int
        Target dimension n (rows), at least 1.
    n_features : int
        Source dimension m (columns), at least 1.
    density : float, optional
        Probability that an entry is nonzero, in (0, 1]; default 1/sqrt(n_features).
    seed : int, optional
        Seed of the generator (entries are drawn on the CPU, then moved to ``device``).
    dtype : torch.dtype, default torch.float64
    device : str or torch.device, optional
        Default :func:`kexue_helpers.core.get_device`.

    Returns
    -------
    torch.Tensor
        A sparse CSR tensor of shape (n_components, n_features).

    Raises
    ------
    ValueError
        If a dimension is smaller than 1 or ``density`` is outside (0, 1].
    TypeError
        If a dimension is not an integer or ``density`` is not a real number.

    Examples
    --------
    >>> a = sparse_matrix(4, 100, seed=0, device="cpu")
    >>> a.shape, a.layout
    (torch.Size([4, 100]), torch.sparse_csr)
    >>> sorted({round(abs(v), 6) for v in a.values().tolist()})  # sqrt(1/(0.1 * 4))
    [1.581139]
    """
    n_components = check_int(n_components, "n_components", minimum=1)
    n_features = check_int(n_features, "n_features", minimum=1)
    density = _check_density(density, n_features)
    gen = make_generator(seed)
    pos = _bernoulli_positions(n_components * n_features, density, gen)
    signs = torch.randint(0, 2, (pos.size,), generator=gen, dtype=torch.int64).numpy() * 2 - 1
    # the same float64 scale as scikit-learn: sqrt(1 / density) / sqrt(n_components)
    scale = np.sqrt(1 / density) / np.sqrt(n_components)
    values = signs.astype(np.float64) * scale
    rows, cols = np.divmod(pos, n_features)
    crow = np.zeros(n_components + 1, dtype=np.int64)
    crow[1:] = np.cumsum(np.bincount(rows, minlength=n_components))
    with warnings.catch_warnings():  # "sparse CSR support is in beta": nothing we can act on
        warnings.simplefilter("ignore", UserWarning)
        a = torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(cols),
                                    torch.from_numpy(values).to(dtype),
                                    size=(n_components, n_features))
        return a.to(get_device(device))


def sparse_projection(x: Any, n_components: int, *, density: float | None = None,
                      seed: int | None = None,
                      device: str | torch.device | None = None) -> Any:
    """Project the rows of ``x`` with a sparse random matrix: v -> A v.

    The sparse counterpart of :func:`gaussian_projection`, with A from
    :func:`sparse_matrix`: about ``density * n_features * n_components`` multiplications
    per point instead of ``n_features * n_components``.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (n_points, n_features)
        The points, one per row, finite.
    n_components : int
        Target dimension n, at least 1.
    density : float, optional
        Fraction of nonzero entries of A, in (0, 1]; default 1/sqrt(n_features) (Li et
        al.; scikit-learn's ``density="auto"``). Use 1/3 for Achlioptas's matrix.
    seed : int, optional
        Seed of the random matrix.
    device : str or torch.device, optional
        Where to compute; default :func:`kexue_helpers.core.get_device`.

    Returns
    -------
    numpy.ndarray or torch.Tensor, shape (n_points, n_components)
        ``x @ A.T``: a NumPy array if ``x`` was not a tensor, otherwise a tensor on
        ``device``. Floating inputs keep their dtype; others become float64.

    Raises
    ------
    ValueError
        If ``x`` is not 2-D, is empty or holds NaN/inf, ``n_components < 1`` or
        ``density`` is outside (0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> sparse_projection(np.eye(9), 3, seed=0).shape
    (9, 3)
    """
    n_components = check_int(n_components, "n_components", minimum=1)
    xt = as_tensor(x, "x", ndim=2, device=device)
    a = sparse_matrix(n_components, xt.shape[1], density=density, seed=seed, dtype=xt.dtype,
                      device=xt.device)
    y = torch.sparse.mm(a, xt.T).T.contiguous()
    return y if isinstance(x, torch.Tensor) else y.cpu().numpy()


_BIT_WEIGHTS = (128, 64, 32, 16, 8, 4, 2, 1)


def simhash(x: Any, n_bits: int, *, seed: int | None = None, packed: bool = True,
            device: str | torch.device | None = None) -> Any:
    """Sign random projections (Charikar's SimHash): the bits [r_b . v > 0], b = 1..n_bits.

    The hyperplane normals r_b are the rows of :func:`gaussian_matrix` (its scale does not
    change a sign). Two vectors at angle theta get equal bits with probability
    1 - theta/pi each (theorem ``jla-thm-simhash`` of the chapter "The Johnson-Lindenstrauss
    lemma: applications"). A projection that is exactly zero gives the bit 0.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (n_points, n_features)
        The points, one per row, finite.
    n_bits : int
        Number of hyperplanes (bits per code), at least 1.
    seed : int, optional
        Seed of the hyperplanes; use the same seed to hash queries and database.
    packed : bool, default True
        Return the bits packed eight to a byte, as ``numpy.packbits(bits, axis=1)`` does
        (first bit in the most significant position, last byte padded with zeros);
        otherwise a boolean array.
    device : str or torch.device, optional
        Where to compute; default :func:`kexue_helpers.core.get_device`.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Shape (n_points, ceil(n_bits / 8)) of dtype uint8 if ``packed``, else
        (n_points, n_bits) of dtype bool; a NumPy array unless ``x`` was a tensor.

    Raises
    ------
    ValueError
        If ``x`` is not 2-D, is empty or holds NaN/inf, or ``n_bits < 1``.
    TypeError
        If ``packed`` is not a bool.

    Examples
    --------
    >>> import numpy as np
    >>> simhash(np.eye(3), 10, seed=0).shape, simhash(np.eye(3), 10, seed=0).dtype
    ((3, 2), dtype('uint8'))
    >>> simhash(np.eye(3), 10, seed=0, packed=False).shape
    (3, 10)
    """
    n_bits = check_int(n_bits, "n_bits", minimum=1)
    if not isinstance(packed, (bool, np.bool_)):
        raise TypeError(f"packed must be a bool; got {packed!r} of type {type(packed).__name__}")
    xt = as_tensor(x, "x", ndim=2, device=device)
    r = gaussian_matrix(n_bits, xt.shape[1], seed=seed, dtype=xt.dtype, device=xt.device)
    bits = (xt @ r.T) > 0
    out = _pack_bits(bits) if packed else bits
    return out if isinstance(x, torch.Tensor) else out.cpu().numpy()


def _pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """numpy.packbits(bits, axis=1) for a 2-D boolean tensor."""
    n, b = bits.shape
    pad = (-b) % 8
    if pad:
        bits = torch.cat([bits, bits.new_zeros(n, pad)], dim=1)
    weights = torch.tensor(_BIT_WEIGHTS, dtype=torch.int64, device=bits.device)
    return (bits.view(n, -1, 8).to(torch.int64) * weights).sum(-1).to(torch.uint8)


def _as_codes(codes: Any, name: str, device: torch.device) -> torch.Tensor:
    """Check that ``codes`` is a 2-D bool or uint8 array and return it as ±1 floats."""
    t = codes.detach() if isinstance(codes, torch.Tensor) else torch.from_numpy(
        np.ascontiguousarray(np.asarray(codes)))
    if t.dtype not in (torch.bool, torch.uint8):
        raise TypeError(f"{name} must hold boolean codes or packed uint8 codes (see simhash); "
                        f"got dtype {t.dtype}")
    if t.ndim != 2 or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array of codes; got shape "
                         f"{tuple(t.shape)}")
    t = t.to(device)
    if t.dtype == torch.uint8:
        shifts = torch.arange(7, -1, -1, device=device, dtype=torch.uint8)
        t = ((t[..., None] >> shifts) & 1).reshape(t.shape[0], -1).bool()
    return t.to(torch.float32) * 2 - 1


def hamming_distances(codes_a: Any, codes_b: Any = None, *,
                      device: str | torch.device | None = None) -> Any:
    """Pairwise Hamming distances between binary codes (rows).

    With b bits per code and s = 2 * bits - 1 in {-1, +1}, the number of differing bits is
    (b - s_i . s_j) / 2, computed as one matrix product. Packed codes are unpacked first;
    their zero padding agrees in both codes and does not count.

    Parameters
    ----------
    codes_a : array_like or torch.Tensor, shape (n_a, n_bits) bool or (n_a, n_bytes) uint8
        Codes from :func:`simhash`, one per row.
    codes_b : array_like or torch.Tensor, optional
        Codes of the same kind and width; default ``codes_a``.
    device : str or torch.device, optional
        Where to compute; default :func:`kexue_helpers.core.get_device`.

    Returns
    -------
    numpy.ndarray or torch.Tensor, shape (n_a, n_b), dtype int64
        A NumPy array unless ``codes_a`` was a tensor.

    Raises
    ------
    TypeError
        If the codes are neither boolean nor uint8, or the two arguments differ in dtype.
    ValueError
        If the codes are not 2-D and non-empty, or their widths differ.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[True, False, True], [False, False, True]])
    >>> hamming_distances(a)
    array([[0, 1],
           [1, 0]])
    """
    dev = get_device(device)
    sa = _as_codes(codes_a, "codes_a", dev)
    if codes_b is None:
        sb = sa
    else:
        dtype_a = codes_a.dtype if isinstance(codes_a, torch.Tensor) else np.asarray(codes_a).dtype
        dtype_b = codes_b.dtype if isinstance(codes_b, torch.Tensor) else np.asarray(codes_b).dtype
        if str(dtype_a).replace("torch.", "") != str(dtype_b).replace("torch.", ""):
            raise TypeError(f"codes_b must have the dtype of codes_a ({dtype_a}); got {dtype_b}")
        sb = _as_codes(codes_b, "codes_b", dev)
        if sb.shape[1] != sa.shape[1]:
            raise ValueError(f"codes_b must have as many columns as codes_a ({sa.shape[1]} bits); "
                             f"got {sb.shape[1]}")
    d = torch.round((sa.shape[1] - sa @ sb.T) / 2).to(torch.int64)
    return d if isinstance(codes_a, torch.Tensor) else d.cpu().numpy()


def randomized_svd(m: Any, rank: int, *, oversample: int = 10, n_iter: int = 2,
                   seed: int | None = None,
                   device: str | torch.device | None = None) -> tuple[Any, Any, Any]:
    """Truncated SVD by random range finding (Halko, Martinsson and Tropp).

    With l = rank + oversample and a Gaussian test matrix Omega (n x l, entries N(0, 1/l),
    from :func:`gaussian_matrix`): Y = M Omega; Q = orth(Y), refined by ``n_iter`` power
    iterations Q <- orth(M orth(M^T Q)); B = Q^T M = U_B S V^T (a small SVD); return
    U = Q U_B, S, V^T truncated to ``rank`` (eqs. ``jla-eq-rsvd-range`` and
    ``jla-eq-rsvd-b`` of the chapter "The Johnson-Lindenstrauss lemma: applications").
    Every orthonormalisation is a QR factorisation. A wide matrix is handled through its
    transpose, and signs follow scikit-learn's ``svd_flip``: the entry of largest absolute
    value in each column of U is positive.

    Parameters
    ----------
    m : array_like or torch.Tensor, shape (n_rows, n_cols)
        The matrix, finite.
    rank : int
        Number of singular triplets, 1 <= rank <= min(n_rows, n_cols).
    oversample : int, default 10
        Extra random directions p >= 0 (l = rank + p, capped at min(n_rows, n_cols)).
    n_iter : int, default 2
        Power iterations q >= 0; each sharpens the spectral decay from sigma_j to
        sigma_j^(2q+1).
    seed : int, optional
        Seed of the test matrix.
    device : str or torch.device, optional
        Where to compute; default :func:`kexue_helpers.core.get_device`.

    Returns
    -------
    U : numpy.ndarray or torch.Tensor, shape (n_rows, rank)
    S : numpy.ndarray or torch.Tensor, shape (rank,)
        Approximate singular values, decreasing.
    Vh : numpy.ndarray or torch.Tensor, shape (rank, n_cols)
        NumPy arrays unless ``m`` was a tensor. Floating inputs keep their dtype.

    Raises
    ------
    ValueError
        If ``m`` is not 2-D, is empty or holds NaN/inf, or ``rank``, ``oversample`` or
        ``n_iter`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.outer([1.0, 2.0, 3.0], [1.0, 0.0, -1.0, 2.0])
    >>> u, s, vh = randomized_svd(m, 1, seed=0)
    >>> u.shape, s.shape, vh.shape, round(float(s[0]), 6)
    ((3, 1), (1,), (1, 4), 9.165151)
    """
    mt = as_tensor(m, "m", ndim=2, device=device)
    n_rows, n_cols = mt.shape
    rank = check_int(rank, "rank", minimum=1, maximum=min(n_rows, n_cols))
    oversample = check_int(oversample, "oversample", minimum=0)
    n_iter = check_int(n_iter, "n_iter", minimum=0)
    transpose = n_rows < n_cols
    a = mt.T if transpose else mt
    size = min(rank + oversample, min(n_rows, n_cols))
    omega = gaussian_matrix(size, a.shape[1], seed=seed, dtype=a.dtype, device=a.device).T
    q = torch.linalg.qr(a @ omega).Q
    for _ in range(n_iter):
        q = torch.linalg.qr(a.T @ q).Q
        q = torch.linalg.qr(a @ q).Q
    u_b, s, vh = torch.linalg.svd(q.T @ a, full_matrices=False)
    u, s, vh = (q @ u_b)[:, :rank], s[:rank], vh[:rank]
    if transpose:
        u, vh = vh.T, u.T
    cols = torch.arange(rank, device=u.device)
    signs = torch.sign(u[u.abs().argmax(dim=0), cols])
    signs[signs == 0] = 1
    u, vh = u * signs, vh * signs[:, None]
    if isinstance(m, torch.Tensor):
        return u.contiguous(), s, vh.contiguous()
    return u.cpu().numpy(), s.cpu().numpy(), vh.cpu().numpy()
