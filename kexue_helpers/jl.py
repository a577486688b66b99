"""The Johnson-Lindenstrauss lemma: target dimensions, random projections, distortion.

Defined in the chapters "The Johnson-Lindenstrauss lemma: theory" (``book/jl_theory.md``)
and "... applications" (``book/jl_applications.md``).
"""

from __future__ import annotations

import math
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
