"""HSIC: the Hilbert-Schmidt independence criterion, its estimators, and tests of independence.

Defined in the chapter "HSIC: measuring dependence with kernels" (``book/hsic.md``).

Conventions
-----------
Kernels are Gaussian, ``k(a, b) = exp(-||a - b||^2 / (2 sigma^2))`` (the convention of
Gretton et al., scikit-learn's ``rbf`` with ``gamma = 1 / (2 sigma^2)``, and hyppo). Su's
article writes ``exp(-||a - b||^2 / sigma^2)``: its ``sigma = s`` is our ``sigma = s / sqrt(2)``.
Each bandwidth defaults to the *median heuristic*: the median of the nonzero pairwise
distances of that variable's own sample (see :func:`median_heuristic`).

Estimators (eqs. ``hsic-eq-biased`` and ``hsic-eq-unbiased`` of the chapter), with
``K``, ``L`` the two kernel matrices, ``H = I - 11^T / n`` and ``Kt``, ``Lt`` the kernel
matrices with their diagonals set to zero:

* ``"biased"``: ``Tr(K H L H) / n^2`` (Gretton et al. 2005);
* ``"unbiased"``: ``[Tr(Kt Lt) + (1^T Kt 1)(1^T Lt 1) / ((n-1)(n-2))
  - 2 / (n-2) 1^T Kt Lt 1] / (n (n-3))`` (Song et al. 2012).

Speed and memory
----------------
No product of two n x n matrices is ever formed. Both estimators are functions of
``sum_ij K_ij L_ij``, the row sums ``K 1``, ``L 1`` and their totals (eq. ``hsic-eq-trace``),

    Tr(K H L H) = sum_ij K_ij L_ij - (2 / n) sum_i (K 1)_i (L 1)_i + (1^T K 1)(1^T L 1) / n^2,

which one pass over the kernel matrices accumulates in O(n^2) time. The pass visits the upper
triangle of square blocks of ``tile x tile`` entries (the matrices are symmetric), so the
memory in use is O(tile^2 + n d), whatever n. Permutation tests evaluate a whole batch of
permuted statistics per block, one batched kernel evaluation for all of them. On the CPU
the helpers run on :data:`CPU_THREADS` torch threads (default 1, restored afterwards) and
use NumPy's exp, which is about twice as fast as torch's for float64.

Simulation studies
------------------
:func:`hsic_batch` and :func:`hsic_test_batch` take R samples of the same small size at
once, shape (R, n) or (R, n, d), and form the kernel matrices of a chunk of samples densely
(the chapter's bias, size, power and bandwidth studies run thousands of samples of
n <= 1000). They agree with :func:`hsic` and :func:`hsic_test` sample by sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch
from scipy import stats

from .core import (as_tensor, check_choice, check_int, check_real, cpu_threads, get_device,
                   make_generator)

__all__ = [
    "CPU_THREADS",
    "gaussian_kernel",
    "median_heuristic",
    "hsic",
    "hsic_test",
    "HSICTestResult",
    "hsic_batch",
    "hsic_test_batch",
    "HSICBatchTestResult",
]

_ESTIMATORS = ("biased", "unbiased")
_METHODS = ("gamma", "permutation")
_DEFAULT_TILE = 512
#: kernel blocks of both variables are kept between the two passes of the gamma test when
#: n^2 is at most this many entries (about 64 MB in float64); above, they are recomputed
_CACHE_ENTRIES = 2**23
#: entries of one batch of permuted kernel blocks (b x t x t), about 32 MB in float64
_PERM_ENTRIES = 2**22
#: Number of torch threads the helpers use on the CPU (restored afterwards); ``None`` keeps
#: torch's own setting. The default, 1, is usually the fastest: the block loops are
#: memory-bound, NumPy's exp (used on the CPU) is single-threaded anyway, and on a machine
#: whose cores are shared, torch's thread synchronisation can cost ten times the work.
CPU_THREADS: int | None = 1


# --------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------
def _samples(x: Any, name: str, device: str | torch.device | None) -> torch.Tensor:
    """(n,) or (n, d) data -> centred float64 tensor of shape (n, d) on ``device``."""
    t = as_tensor(x, name, ndim=(1, 2), dtype=torch.float64, device=device)
    if t.ndim == 1:
        t = t[:, None]
    # distances do not change; centring limits cancellation in ||a||^2 + ||b||^2 - 2 a.b
    return t - t.mean(dim=0)


def _pair(x: Any, y: Any, device: str | torch.device | None,
          min_n: int) -> tuple[torch.Tensor, torch.Tensor]:
    xt = _samples(x, "x", device)
    yt = _samples(y, "y", xt.device)
    n = xt.shape[0]
    if yt.shape[0] != n:
        raise ValueError(f"x and y must hold the same number of samples; got {n} for x and "
                         f"{yt.shape[0]} for y")
    if n < min_n:
        raise ValueError(f"x and y must hold at least {min_n} samples here; got {n}")
    return xt, yt


def _bandwidth(value: Any, name: str, data: torch.Tensor) -> float:
    if value is None:
        return _median_of(data, nonzero=True, max_points=1000, seed=0, name=name[-1])
    return check_real(value, name, low=0.0)


def _cpu_threads(device: torch.device):
    """Run on :data:`CPU_THREADS` torch threads on the CPU (see ``core.cpu_threads``)."""
    if CPU_THREADS is not None:
        check_int(CPU_THREADS, "kexue_helpers.hsic.CPU_THREADS", minimum=1)
    return cpu_threads(CPU_THREADS, device=device)


def _tile(tile: int | None) -> int:
    return _DEFAULT_TILE if tile is None else check_int(tile, "tile", minimum=1)


# --------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------
def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances between the rows of a and the rows of b (a new tensor)."""
    if a.shape[1] == 1:
        d = a[:, 0, None] - b[None, :, 0]
        return d.square_()
    d = torch.addmm((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :], a, b.T,
                    beta=1.0, alpha=-2.0)
    return d.clamp_min_(0.0)


def _exp_(t: torch.Tensor) -> torch.Tensor:
    """In-place exponential. On the CPU, NumPy's vectorised exp (on the same memory) is about
    twice as fast as torch's for float64 and needs no thread synchronisation."""
    if t.device.type == "cpu" and t.is_contiguous():
        arr = t.numpy()
        np.exp(arr, out=arr)
        return t
    return t.exp_()


def _kernel_block(a: torch.Tensor, b: torch.Tensor, gamma: float, diag: bool) -> torch.Tensor:
    """exp(-gamma ||a_i - b_j||^2); on a diagonal block the diagonal is exactly 1."""
    d = _sq_dists(a, b)
    if diag:
        d.fill_diagonal_(0.0)
    return _exp_(d.mul_(-gamma))


def _blocks(n: int, tile: int) -> Iterator[tuple[int, int, int, int]]:
    """Upper-triangular square blocks (i0, i1, j0, j1), j0 >= i0, covering an n x n matrix."""
    for i0 in range(0, n, tile):
        for j0 in range(i0, n, tile):
            yield i0, min(i0 + tile, n), j0, min(j0 + tile, n)


def gaussian_kernel(a: Any, b: Any | None = None, *, sigma: float,
                    device: str | torch.device | None = None) -> torch.Tensor:
    """Dense Gaussian kernel matrix ``K_ij = exp(-||a_i - b_j||^2 / (2 sigma^2))``.

    The kernel of eq. ``hsic-eq-kernel`` of the HSIC chapter, for small samples (the matrix
    is formed in memory). :func:`hsic` never forms it; use this for checks and figures.

    Parameters
    ----------
    a : array_like or torch.Tensor, shape (n,) or (n, d)
        First sample, finite.
    b : array_like or torch.Tensor, shape (m,) or (m, d), optional
        Second sample, same d; default ``a``.
    sigma : float
        Bandwidth, > 0. (Su's article's ``sigma`` corresponds to ``sigma * sqrt(2)``.)
    device : str or torch.device, optional
        Default :func:`kexue_helpers.core.get_device`.

    Returns
    -------
    torch.Tensor, shape (n, m), float64

    Raises
    ------
    ValueError
        If ``sigma <= 0``, the data hold NaN/inf, or the dimensions of a and b differ.

    Examples
    --------
    >>> K = gaussian_kernel([0.0, 1.0], sigma=1.0, device="cpu")
    >>> round(float(K[0, 1]), 6)
    0.606531
    """
    sigma = check_real(sigma, "sigma", low=0.0)
    at = as_tensor(a, "a", ndim=(1, 2), dtype=torch.float64, device=device)
    at = at[:, None] if at.ndim == 1 else at
    if b is None:
        bt = at
    else:
        bt = as_tensor(b, "b", ndim=(1, 2), dtype=torch.float64, device=at.device)
        bt = bt[:, None] if bt.ndim == 1 else bt
        if bt.shape[1] != at.shape[1]:
            raise ValueError(f"b must have the same number of columns as a ({at.shape[1]}); "
                             f"got shape {tuple(bt.shape)}")
    d = ((at[:, None, :] - bt[None, :, :]) ** 2).sum(-1)
    return torch.exp(-d / (2.0 * sigma**2))


# --------------------------------------------------------------------------------------
# median heuristic
# --------------------------------------------------------------------------------------
def _median_of(t: torch.Tensor, *, nonzero: bool, max_points: int | None, seed: int,
               name: str) -> float:
    n = t.shape[0]
    if n < 2:
        raise ValueError(f"{name} must hold at least 2 samples for the median heuristic; got {n}")
    if max_points is not None and n > max_points:
        idx = torch.randperm(n, generator=make_generator(seed))[:max_points]
        t = t[idx.to(t.device)]
    dist = torch.pdist(t).cpu().numpy()
    if nonzero:
        dist = dist[dist > 0]
        if dist.size == 0:
            raise ValueError(f"{name} has no two distinct samples, so the median heuristic is "
                             f"undefined; pass sigma_{name}=... explicitly")
    return float(np.median(dist))


def median_heuristic(x: Any, *, nonzero: bool = True, max_points: int | None = 1000,
                     seed: int = 0, device: str | torch.device | None = None) -> float:
    """Median of the pairwise Euclidean distances of a sample: the default bandwidth.

    The bandwidth rule of the HSIC chapter (sections "From covariances to a kernel" and "The
    value depends on the kernel"). For ``n <= max_points`` it is exact: the median of all
    n (n - 1) / 2 distances (numpy's convention, the mean of the two middle values for an
    even count). Above ``max_points`` samples it is the exact median over a random subsample
    of ``max_points`` points, drawn with ``seed``, so that time and memory stay
    O(max_points^2) and the result is reproducible. With 1,000 points the subsampled median
    of a Gaussian sample is typically within 2% of the exact one; HSIC tests remain valid for
    any bandwidth fixed before looking at the dependence, and this one is.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (n,) or (n, d)
        The sample, finite, n >= 2.
    nonzero : bool, default True
        Ignore zero distances (repeated values), as :func:`hsic` does. ``False`` keeps them,
        as hyppo does.
    max_points : int or None, default 1000
        Subsample above this many points; ``None`` always uses every pair (O(n^2) memory).
    seed : int, default 0
        Seed of the subsample.
    device : str or torch.device, optional
        Default :func:`kexue_helpers.core.get_device`.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If x has NaN/inf or fewer than 2 samples, ``max_points < 2``, or (with
        ``nonzero=True``) all samples are equal.

    Examples
    --------
    >>> median_heuristic([0.0, 1.0, 3.0])
    2.0
    """
    if max_points is not None:
        max_points = check_int(max_points, "max_points", minimum=2)
    seed = check_int(seed, "seed", minimum=0)
    t = as_tensor(x, "x", ndim=(1, 2), dtype=torch.float64, device=device)
    t = t[:, None] if t.ndim == 1 else t
    with _cpu_threads(t.device):
        return _median_of(t, nonzero=bool(nonzero), max_points=max_points, seed=seed, name="x")


# --------------------------------------------------------------------------------------
# the statistic
# --------------------------------------------------------------------------------------
@dataclass
class _Sums:
    """What one pass over the two kernel matrices accumulates (eq. hsic-eq-trace)."""

    n: int
    s_kl: float          # sum_ij K_ij L_ij
    rk: torch.Tensor     # K 1
    rl: torch.Tensor     # L 1
    s_kk: float = math.nan
    s_ll: float = math.nan
    blocks: list[tuple[torch.Tensor, torch.Tensor]] | None = None


def _first_pass(xt: torch.Tensor, yt: torch.Tensor, gx: float, gy: float, tile: int, *,
                self_terms: bool = False, keep: bool = False) -> _Sums:
    n = xt.shape[0]
    rk = torch.zeros(n, dtype=torch.float64, device=xt.device)
    rl = torch.zeros_like(rk)
    s_kl = torch.zeros((), dtype=torch.float64, device=xt.device)
    s_kk, s_ll = torch.zeros_like(s_kl), torch.zeros_like(s_kl)
    kept: list[tuple[torch.Tensor, torch.Tensor]] | None = [] if keep else None
    for i0, i1, j0, j1 in _blocks(n, tile):
        diag = i0 == j0
        kb = _kernel_block(xt[i0:i1], xt[j0:j1], gx, diag)
        lb = _kernel_block(yt[i0:i1], yt[j0:j1], gy, diag)
        w = 1.0 if diag else 2.0   # an off-diagonal block stands for itself and its mirror
        rk[i0:i1] += kb.sum(1)
        rl[i0:i1] += lb.sum(1)
        if not diag:
            rk[j0:j1] += kb.sum(0)
            rl[j0:j1] += lb.sum(0)
        kf, lf = kb.reshape(-1), lb.reshape(-1)
        s_kl += w * torch.dot(kf, lf)
        if self_terms:
            s_kk += w * torch.dot(kf, kf)
            s_ll += w * torch.dot(lf, lf)
        if kept is not None:
            kept.append((kb, lb))
    return _Sums(n=n, s_kl=float(s_kl), rk=rk, rl=rl, s_kk=float(s_kk), s_ll=float(s_ll),
                 blocks=kept)


def _biased(n: int, s_kl: float, rk: torch.Tensor, rl: torch.Tensor) -> float:
    """Tr(KHLH) / n^2 from the sums (eq. hsic-eq-trace)."""
    tr = s_kl - 2.0 / n * float(torch.dot(rk, rl)) + float(rk.sum()) * float(rl.sum()) / n**2
    return tr / n**2


def _unbiased(n: int, s_kl: float, rk: torch.Tensor, rl: torch.Tensor) -> float:
    """Song et al.'s U-statistic from the sums; the kernels have unit diagonals."""
    rkt, rlt = rk - 1.0, rl - 1.0                      # row sums of K and L without diagonal
    tr = s_kl - n                                       # Tr(Kt Lt) = sum K_ij L_ij - sum K_ii L_ii
    total = (tr + float(rkt.sum()) * float(rlt.sum()) / ((n - 1) * (n - 2))
             - 2.0 / (n - 2) * float(torch.dot(rkt, rlt)))
    return total / (n * (n - 3))


def hsic(x: Any, y: Any, *, sigma_x: float | None = None, sigma_y: float | None = None,
         estimator: str = "biased", normalized: bool = False, tile: int | None = None,
         device: str | torch.device | None = None) -> float:
    """Empirical HSIC between two samples with Gaussian kernels, in O(n^2) time, tiled.

    Implements the estimators of the HSIC chapter: ``"biased"`` is
    ``Tr(K H L H) / n^2`` (eq. ``hsic-eq-biased``), ``"unbiased"`` is Song et al.'s
    U-statistic (eq. ``hsic-eq-unbiased``). Both are computed from the elementwise sum
    ``sum K_ij L_ij`` and the row sums of K and L (eq. ``hsic-eq-trace``), block by block
    over the upper triangle, so time is O(n^2 d) and memory O(tile^2 + n d). Su's article's
    ``1/(n-1)^2`` variant is ``n^2 / (n-1)^2`` times the biased value.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (n,) or (n, d_x)
        First sample, finite.
    y : array_like or torch.Tensor, shape (n,) or (n, d_y)
        Second sample, same n, finite.
    sigma_x, sigma_y : float, optional
        Bandwidths of k(a, b) = exp(-||a - b||^2 / (2 sigma^2)), > 0. Each defaults to
        :func:`median_heuristic` of its own sample.
    estimator : {"biased", "unbiased"}, default "biased"
    normalized : bool, default False
        Return ``HSIC(x, y) / sqrt(HSIC(x, x) HSIC(y, y))`` (same estimator and kernels),
        or 0 when a self-term is not positive. With ``estimator="unbiased"`` and both
        bandwidths set to ``median_heuristic(x, nonzero=False, max_points=None)`` this is
        exactly the statistic of ``hyppo.independence.Hsic()``.
    tile : int, optional
        Block size (rows and columns), default 512.
    device : str or torch.device, optional
        Where to compute; default :func:`kexue_helpers.core.get_device`.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If x and y differ in length, hold NaN/inf, have fewer than 2 samples (6 for the
        unbiased estimator), a bandwidth is not positive, or ``estimator`` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=500)
    >>> hsic(x, x**2) > 10 * hsic(x, np.random.default_rng(1).normal(size=500))
    True
    """
    check_choice(estimator, "estimator", _ESTIMATORS)
    xt, yt = _pair(x, y, device, 6 if estimator == "unbiased" else 2)
    with _cpu_threads(xt.device):
        return _hsic(xt, yt, sigma_x, sigma_y, estimator, normalized, tile)


def _hsic(xt: torch.Tensor, yt: torch.Tensor, sigma_x: float | None, sigma_y: float | None,
          estimator: str, normalized: bool, tile: int | None) -> float:
    sx = _bandwidth(sigma_x, "sigma_x", xt)
    sy = _bandwidth(sigma_y, "sigma_y", yt)
    sums = _first_pass(xt, yt, 0.5 / sx**2, 0.5 / sy**2, _tile(tile),
                       self_terms=bool(normalized))
    est = _biased if estimator == "biased" else _unbiased
    value = est(sums.n, sums.s_kl, sums.rk, sums.rl)
    if not normalized:
        return value
    vx = est(sums.n, sums.s_kk, sums.rk, sums.rk)
    vy = est(sums.n, sums.s_ll, sums.rl, sums.rl)
    if vx <= 0 or vy <= 0:
        return 0.0
    return value / math.sqrt(vx * vy)


# --------------------------------------------------------------------------------------
# tests of independence
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HSICTestResult:
    """Outcome of :func:`hsic_test`.

    Attributes
    ----------
    statistic : float
        The biased estimate HSIC_b = Tr(KHLH) / n^2.
    pvalue : float
        Probability, under independence, of a statistic at least as large.
    method : str
        ``"gamma"`` or ``"permutation"``.
    n : int
        Sample size.
    sigma_x, sigma_y : float
        The bandwidths used.
    null_mean, null_var : float
        Mean and variance of HSIC_b under independence: Gretton et al.'s estimates
        (gamma), or those of the permuted statistics (permutation).
    gamma_shape, gamma_scale : float
        Parameters of the gamma law fitted to HSIC_b under independence (moment matching:
        shape = mean^2 / var, scale = var / mean); NaN for the permutation test.
    n_permutations : int
        Number of permutations (0 for the gamma test).
    null_samples : numpy.ndarray or None
        The permuted statistics (permutation test only).
    """

    statistic: float
    pvalue: float
    method: str
    n: int
    sigma_x: float
    sigma_y: float
    null_mean: float
    null_var: float
    gamma_shape: float = math.nan
    gamma_scale: float = math.nan
    n_permutations: int = 0
    null_samples: np.ndarray | None = field(default=None, repr=False)


def _gamma_moments(xt: torch.Tensor, yt: torch.Tensor, gx: float, gy: float,
                   tile: int) -> tuple[float, float, float]:
    """HSIC_b and Gretton et al.'s null mean and variance of HSIC_b, in two passes."""
    n = xt.shape[0]
    keep = n * n <= _CACHE_ENTRIES
    first = _first_pass(xt, yt, gx, gy, tile, keep=keep)
    mk, ml = first.rk / n, first.rl / n                     # row means
    mk_all, ml_all = float(mk.mean()), float(ml.mean())     # grand means
    s1 = torch.zeros((), dtype=torch.float64, device=xt.device)
    s2 = torch.zeros_like(s1)
    for b, (i0, i1, j0, j1) in enumerate(_blocks(n, tile)):
        diag = i0 == j0
        if first.blocks is not None:
            kb, lb = first.blocks[b]
        else:
            kb = _kernel_block(xt[i0:i1], xt[j0:j1], gx, diag)
            lb = _kernel_block(yt[i0:i1], yt[j0:j1], gy, diag)
        # centred blocks: (HKH)_ij = K_ij - mean_i - mean_j + grand mean
        kc = kb - mk[i0:i1, None] - mk[None, j0:j1] + mk_all
        kc.mul_(lb - ml[i0:i1, None] - ml[None, j0:j1] + ml_all)   # kc <- Kc * Lc
        w = 1.0 if diag else 2.0
        s1 += w * kc.sum()
        if diag:
            kc.fill_diagonal_(0.0)                         # the variance sums over i != j
        s2 += w * torch.dot(kc.reshape(-1), kc.reshape(-1))
    stat = float(s1) / n**2
    mu_x = (float(first.rk.sum()) - n) / (n * (n - 1))    # mean off-diagonal kernel value
    mu_y = (float(first.rl.sum()) - n) / (n * (n - 1))
    mean = (1.0 + mu_x * mu_y - mu_x - mu_y) / n
    var = (2.0 * (n - 4) * (n - 5) / (n * (n - 1) * (n - 2) * (n - 3))
           * float(s2) / (n * (n - 1)))
    return stat, mean, var


def _permuted_cross_sums(xt: torch.Tensor, yt: torch.Tensor, gx: float, gy: float,
                         perms: torch.Tensor, tile: int) -> torch.Tensor:
    """sum_ij K_ij L_{p(i) p(j)} for every row p of ``perms``, batched block by block."""
    n_perm, n = perms.shape
    t = max(1, min(tile, 256, n))
    batch = max(1, _PERM_ENTRIES // (t * t))
    out = torch.zeros(n_perm, dtype=torch.float64, device=xt.device)
    for i0, i1, j0, j1 in _blocks(n, t):
        diag = i0 == j0
        kb = _kernel_block(xt[i0:i1], xt[j0:j1], gx, diag)
        w = 1.0 if diag else 2.0
        for b0 in range(0, n_perm, batch):
            p = perms[b0:b0 + batch]
            ya, yb = yt[p[:, i0:i1]], yt[p[:, j0:j1]]         # (b, ti, d), (b, tj, d)
            if yt.shape[1] == 1:
                d = (ya[:, :, None, 0] - yb[:, None, :, 0]).square_()
            else:
                d = torch.baddbmm((ya * ya).sum(-1)[:, :, None] + (yb * yb).sum(-1)[:, None, :],
                                  ya, yb.transpose(1, 2), beta=1.0, alpha=-2.0).clamp_min_(0.0)
            if diag:
                d.diagonal(dim1=1, dim2=2).zero_()
            _exp_(d.mul_(-gy)).mul_(kb)
            out[b0:b0 + batch] += w * d.sum(dim=(1, 2))
    return out


def hsic_test(x: Any, y: Any, *, method: str = "gamma", n_permutations: int = 1000,
              seed: int | None = None, sigma_x: float | None = None,
              sigma_y: float | None = None, tile: int | None = None,
              device: str | torch.device | None = None) -> HSICTestResult:
    """Test of independence of x and y with the biased HSIC statistic.

    The tests of the HSIC chapter (section "From a number to a test"). The statistic is
    HSIC_b = Tr(KHLH) / n^2 with Gaussian kernels (bandwidths as in :func:`hsic`).

    * ``"gamma"``: Gretton et al. (2007)'s approximation. Under independence n HSIC_b is
      approximately gamma-distributed; its mean ``(1 + mu_x mu_y - mu_x - mu_y) / n`` (mu the
      mean off-diagonal kernel value) and variance
      ``2 (n-4)(n-5) / (n (n-1)(n-2)(n-3)) * mean_{i != j} ((HKH)_ij (HLH)_ij)^2`` are
      estimated from the data in two O(n^2) passes, and the p-value is the fitted gamma's
      upper tail at the observed statistic.
    * ``"permutation"``: HSIC_b is recomputed with y permuted ``n_permutations`` times
      (a batch of permutations per kernel block); the p-value is
      ``(1 + #{permuted >= observed}) / (1 + n_permutations)``, which is exactly valid.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (n,) or (n, d_x)
        First sample, finite, n >= 6.
    y : array_like or torch.Tensor, shape (n,) or (n, d_y)
        Second sample, same n, finite.
    method : {"gamma", "permutation"}, default "gamma"
    n_permutations : int, default 1000
        Number of permutations (permutation test only), >= 1.
    seed : int, optional
        Seed of the permutations; ``None`` draws it from torch's global generator.
    sigma_x, sigma_y : float, optional
        Bandwidths, > 0; default :func:`median_heuristic` of each sample.
    tile : int, optional
        Block size, default 512 (permutations use blocks of at most 256).
    device : str or torch.device, optional
        Default :func:`kexue_helpers.core.get_device`.

    Returns
    -------
    HSICTestResult

    Raises
    ------
    ValueError
        If x and y differ in length, hold NaN/inf or fewer than 6 samples, a bandwidth is
        not positive, ``method`` is unknown or ``n_permutations < 1``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=300)
    >>> hsic_test(x, np.cos(3 * x) + 0.3 * rng.normal(size=300)).pvalue < 1e-3
    True
    """
    check_choice(method, "method", _METHODS)
    n_permutations = check_int(n_permutations, "n_permutations", minimum=1)
    xt, yt = _pair(x, y, device, 6)
    with _cpu_threads(xt.device):
        return _hsic_test(xt, yt, method, n_permutations, seed, sigma_x, sigma_y, tile)


def _hsic_test(xt: torch.Tensor, yt: torch.Tensor, method: str, n_permutations: int,
               seed: int | None, sigma_x: float | None, sigma_y: float | None,
               tile: int | None) -> HSICTestResult:
    sx = _bandwidth(sigma_x, "sigma_x", xt)
    sy = _bandwidth(sigma_y, "sigma_y", yt)
    gx, gy = 0.5 / sx**2, 0.5 / sy**2
    t = _tile(tile)
    n = xt.shape[0]
    if method == "gamma":
        stat, mean, var = _gamma_moments(xt, yt, gx, gy, t)
        if mean <= 0 or var <= 0:        # a constant kernel matrix: no evidence at all
            return HSICTestResult(stat, 1.0, method, n, sx, sy, mean, var)
        shape, scale = mean**2 / var, var / mean
        pvalue = float(stats.gamma.sf(stat, shape, scale=scale))
        return HSICTestResult(stat, pvalue, method, n, sx, sy, mean, var, shape, scale)
    first = _first_pass(xt, yt, gx, gy, t)
    stat = _biased(n, first.s_kl, first.rk, first.rl)
    gen = make_generator(seed)
    perms = torch.argsort(torch.rand(n_permutations, n, generator=gen), dim=1).to(xt.device)
    cross = _permuted_cross_sums(xt, yt, gx, gy, perms, t)
    # Tr(K H L_p H) n^-2 with L_p 1 = (L 1)[p] and the totals unchanged
    rk_rl = (first.rl[perms] * first.rk[None, :]).sum(1)
    null = (cross - 2.0 / n * rk_rl + float(first.rk.sum()) * float(first.rl.sum()) / n**2) / n**2
    null_np = null.cpu().numpy()
    # a permuted statistic equal to the observed one up to rounding counts as >=
    pvalue = (1.0 + float(np.sum(null_np >= stat - 1e-12 * abs(stat)))) / (1.0 + n_permutations)
    return HSICTestResult(stat, pvalue, method, n, sx, sy, float(null_np.mean()),
                          float(null_np.var()), n_permutations=n_permutations,
                          null_samples=null_np)


# --------------------------------------------------------------------------------------
# many small samples at once (simulation studies)
# --------------------------------------------------------------------------------------
#: entries of one chunk of batched distance matrices (c x n x n), about 4 MB in float64:
#: small enough for the cache, which matters more than the number of chunks
_BATCH_ENTRIES = 2**19


def _batch_samples(x: Any, name: str, device: str | torch.device | None) -> torch.Tensor:
    """(R, n) or (R, n, d) data -> float64 tensor of shape (R, n, d), centred per sample."""
    t = as_tensor(x, name, ndim=(2, 3), dtype=torch.float64, device=device)
    if t.ndim == 2:
        t = t[:, :, None]
    return (t - t.mean(dim=1, keepdim=True)).contiguous()


def _batch_pair(x: Any, y: Any, device: str | torch.device | None,
                min_n: int) -> tuple[torch.Tensor, torch.Tensor]:
    xt = _batch_samples(x, "x", device)
    yt = _batch_samples(y, "y", xt.device)
    if yt.shape[:2] != xt.shape[:2]:
        raise ValueError(f"x and y must hold the same number of samples of the same size; "
                         f"got (R, n) = {tuple(xt.shape[:2])} for x and "
                         f"{tuple(yt.shape[:2])} for y")
    if xt.shape[1] < min_n:
        raise ValueError(f"each sample must hold at least {min_n} points here; got "
                         f"n = {xt.shape[1]}")
    return xt, yt


def _batch_sq_dists(a: torch.Tensor) -> torch.Tensor:
    """Squared distances within each sample: (c, n, d) -> (c, n, n), zero diagonal."""
    if a.shape[2] == 1:
        v = a[:, :, 0].contiguous()
        return (v[:, :, None] - v[:, None, :]).square_()
    sq = (a * a).sum(-1)
    d = torch.baddbmm(sq[:, :, None] + sq[:, None, :], a, a.transpose(1, 2),
                      beta=1.0, alpha=-2.0).clamp_min_(0.0)
    d.diagonal(dim1=1, dim2=2).zero_()
    return d


def _check_batch_bandwidths(value: Any, name: str, r: int,
                            device: torch.device) -> torch.Tensor | None:
    """A number or an array of R numbers -> tensor (R,); None stays None (median)."""
    if value is None:
        return None
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(r, check_real(float(arr), name, low=0.0))
    elif arr.shape != (r,):
        raise ValueError(f"{name} must be a number or an array of {r} numbers (one per "
                         f"sample); got shape {arr.shape}")
    elif not (np.all(np.isfinite(arr)) and np.all(arr > 0)):
        raise ValueError(f"{name} must hold finite values > 0; got min {arr.min()!r}")
    return torch.as_tensor(arr, dtype=torch.float64, device=device)


def _batch_medians(d2: torch.Tensor, name: str, offset: int) -> torch.Tensor:
    """Median heuristic of each sample from its squared distances (numpy's even rule)."""
    n = d2.shape[1]
    iu = torch.triu_indices(n, n, 1, device=d2.device)
    d = d2[:, iu[0], iu[1]].sqrt_().cpu().numpy()
    med = np.median(d, axis=1)
    for k in np.flatnonzero((d == 0).any(axis=1)):      # repeated values: drop the zeros
        nz = d[k][d[k] > 0]
        if nz.size == 0:
            raise ValueError(f"{name[-1]}[{offset + k}] has no two distinct points, so the "
                             f"median heuristic is undefined; pass {name}=... explicitly")
        med[k] = np.median(nz)
    return torch.from_numpy(med).to(d2.device)


def _batch_kernels(a: torch.Tensor, sigma: torch.Tensor | None, name: str,
                   offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian kernel matrices of a chunk, (c, n, d) -> (c, n, n), and the bandwidths."""
    d = _batch_sq_dists(a)
    if sigma is None:
        sigma = _batch_medians(d, name, offset)
    d.mul_((-0.5 / sigma**2)[:, None, None])
    return _exp_(d), sigma


def _chunks(r: int, n: int) -> Iterator[tuple[int, int]]:
    step = max(1, _BATCH_ENTRIES // (n * n))
    for c0 in range(0, r, step):
        yield c0, min(c0 + step, r)


def hsic_batch(x: Any, y: Any, *, sigma_x: Any = None, sigma_y: Any = None,
               estimator: str = "biased",
               device: str | torch.device | None = None) -> np.ndarray:
    """HSIC of each of R independent samples at once (for simulation studies).

    Sample ``r`` is ``(x[r], y[r])``; its value equals ``hsic(x[r], y[r], ...)`` with the
    same bandwidths. The kernel matrices of a chunk of samples are formed densely
    (about 2^22 entries per chunk), which for the small n of a simulation study is much
    faster than R calls of :func:`hsic`.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (R, n) or (R, n, d_x)
        R samples of x, finite.
    y : array_like or torch.Tensor, shape (R, n) or (R, n, d_y)
        R samples of y, same R and n, finite.
    sigma_x, sigma_y : float, array of R floats, or None
        Bandwidths, > 0, one for all samples or one per sample. ``None`` (default) uses
        the exact median heuristic of each sample (nonzero distances, as :func:`hsic`
        does for n <= 1000).
    estimator : {"biased", "unbiased"}, default "biased"
    device : str or torch.device, optional
        Default :func:`kexue_helpers.core.get_device`.

    Returns
    -------
    numpy.ndarray, shape (R,)

    Raises
    ------
    ValueError
        If the shapes of x and y differ in R or n, the data hold NaN/inf, n < 2 (6 for
        the unbiased estimator), a bandwidth is not positive or has the wrong shape, or
        ``estimator`` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(3, 50))
    >>> v = hsic_batch(x, x**2, sigma_x=1.0, sigma_y=1.0)
    >>> bool(abs(v[1] - hsic(x[1], x[1]**2, sigma_x=1.0, sigma_y=1.0)) < 1e-12)
    True
    """
    check_choice(estimator, "estimator", _ESTIMATORS)
    xt, yt = _batch_pair(x, y, device, 6 if estimator == "unbiased" else 2)
    r, n = xt.shape[:2]
    sx = _check_batch_bandwidths(sigma_x, "sigma_x", r, xt.device)
    sy = _check_batch_bandwidths(sigma_y, "sigma_y", r, xt.device)
    with _cpu_threads(xt.device):
        out = torch.empty(r, dtype=torch.float64, device=xt.device)
        for c0, c1 in _chunks(r, n):
            K, _ = _batch_kernels(xt[c0:c1], None if sx is None else sx[c0:c1], "sigma_x", c0)
            L, _ = _batch_kernels(yt[c0:c1], None if sy is None else sy[c0:c1], "sigma_y", c0)
            s_kl = (K * L).sum((1, 2))
            rk, rl = K.sum(2), L.sum(2)
            if estimator == "biased":
                tr = s_kl - 2.0 / n * (rk * rl).sum(1) + rk.sum(1) * rl.sum(1) / n**2
                out[c0:c1] = tr / n**2
            else:
                rkt, rlt = rk - 1.0, rl - 1.0
                tot = (s_kl - n + rkt.sum(1) * rlt.sum(1) / ((n - 1) * (n - 2))
                       - 2.0 / (n - 2) * (rkt * rlt).sum(1))
                out[c0:c1] = tot / (n * (n - 3))
    return out.cpu().numpy()


@dataclass(frozen=True)
class HSICBatchTestResult:
    """Outcome of :func:`hsic_test_batch`: one entry per sample.

    Attributes
    ----------
    statistic, pvalue : numpy.ndarray, shape (R,)
        HSIC_b and the p-value of each sample.
    method : str
        ``"gamma"`` or ``"permutation"``.
    n : int
        Size of each sample.
    sigma_x, sigma_y : numpy.ndarray, shape (R,)
        The bandwidths used.
    null_mean, null_var : numpy.ndarray, shape (R,)
        Mean and variance of HSIC_b under independence (Gretton et al.'s estimates for
        the gamma test, those of the permuted statistics for the permutation test).
    n_permutations : int
        Number of permutations per sample (0 for the gamma test).
    """

    statistic: np.ndarray
    pvalue: np.ndarray
    method: str
    n: int
    sigma_x: np.ndarray
    sigma_y: np.ndarray
    null_mean: np.ndarray
    null_var: np.ndarray
    n_permutations: int = 0


def hsic_test_batch(x: Any, y: Any, *, method: str = "gamma", n_permutations: int = 200,
                    seed: int | None = None, sigma_x: Any = None, sigma_y: Any = None,
                    device: str | torch.device | None = None) -> HSICBatchTestResult:
    """The tests of :func:`hsic_test` on each of R independent samples at once.

    For the gamma test, entry ``r`` equals ``hsic_test(x[r], y[r])`` (same bandwidths) up
    to rounding. For the permutation test each sample gets its own ``n_permutations``
    uniformly random permutations (drawn from ``seed``; they differ from those
    :func:`hsic_test` would draw), and each p-value is exactly valid.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (R, n) or (R, n, d_x)
        R samples of x, finite, n >= 6.
    y : array_like or torch.Tensor, shape (R, n) or (R, n, d_y)
        R samples of y, same R and n.
    method : {"gamma", "permutation"}, default "gamma"
    n_permutations : int, default 200
        Permutations per sample (permutation test only), >= 1.
    seed : int, optional
        Seed of the permutations; ``None`` draws it from torch's global generator.
    sigma_x, sigma_y : float, array of R floats, or None
        As in :func:`hsic_batch`.
    device : str or torch.device, optional
        Default :func:`kexue_helpers.core.get_device`.

    Returns
    -------
    HSICBatchTestResult

    Raises
    ------
    ValueError
        As :func:`hsic_batch`, and if ``method`` is unknown or ``n_permutations < 1``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(4, 200))
    >>> res = hsic_test_batch(x, np.cos(3 * x) + 0.3 * rng.normal(size=(4, 200)))
    >>> bool((res.pvalue < 1e-3).all())
    True
    """
    check_choice(method, "method", _METHODS)
    n_permutations = check_int(n_permutations, "n_permutations", minimum=1)
    xt, yt = _batch_pair(x, y, device, 6)
    r, n = xt.shape[:2]
    dev = xt.device
    sx_in = _check_batch_bandwidths(sigma_x, "sigma_x", r, dev)
    sy_in = _check_batch_bandwidths(sigma_y, "sigma_y", r, dev)
    with _cpu_threads(dev):
        stat = torch.empty(r, dtype=torch.float64, device=dev)
        mean, var, pval = torch.empty_like(stat), torch.empty_like(stat), torch.empty_like(stat)
        sx, sy = torch.empty_like(stat), torch.empty_like(stat)
        gen = make_generator(seed) if method == "permutation" else None
        for c0, c1 in _chunks(r, n):
            K, sx[c0:c1] = _batch_kernels(xt[c0:c1], None if sx_in is None else sx_in[c0:c1],
                                          "sigma_x", c0)
            L, sy[c0:c1] = _batch_kernels(yt[c0:c1], None if sy_in is None else sy_in[c0:c1],
                                          "sigma_y", c0)
            rk, rl = K.sum(2), L.sum(2)
            if method == "gamma":
                mk, ml = rk / n, rl / n
                Kc = K - mk[:, :, None] - mk[:, None, :] + mk.mean(1)[:, None, None]
                Lc = L - ml[:, :, None] - ml[:, None, :] + ml.mean(1)[:, None, None]
                Kc.mul_(Lc)
                st = Kc.sum((1, 2)) / n**2
                Kc.diagonal(dim1=1, dim2=2).zero_()
                s2 = Kc.square_().sum((1, 2))
                mu_x = (rk.sum(1) - n) / (n * (n - 1))
                mu_y = (rl.sum(1) - n) / (n * (n - 1))
                m = (1.0 + mu_x * mu_y - mu_x - mu_y) / n
                v = (2.0 * (n - 4) * (n - 5) / (n * (n - 1) * (n - 2) * (n - 3))
                     * s2 / (n * (n - 1)))
                st_np, m_np, v_np = (t.cpu().numpy() for t in (st, m, v))
                ok = (m_np > 0) & (v_np > 0)
                p_np = np.ones_like(st_np)
                p_np[ok] = stats.gamma.sf(st_np[ok], m_np[ok] ** 2 / v_np[ok],
                                          scale=v_np[ok] / m_np[ok])
                stat[c0:c1], mean[c0:c1], var[c0:c1] = st, m, v
                pval[c0:c1] = torch.from_numpy(p_np).to(dev)
                continue
            s_kl = (K * L).sum((1, 2))
            tot = rk.sum(1) * rl.sum(1) / n**2
            st = (s_kl - 2.0 / n * (rk * rl).sum(1) + tot) / n**2
            stat[c0:c1] = st
            null = torch.empty(c1 - c0, n_permutations, dtype=torch.float64, device=dev)
            per_batch = max(1, _BATCH_ENTRIES // (n * n))
            for k in range(c1 - c0):
                perms = torch.argsort(torch.rand(n_permutations, n, generator=gen),
                                      dim=1).to(dev)
                lk = L[k].reshape(-1)
                for b0 in range(0, n_permutations, per_batch):
                    p = perms[b0:b0 + per_batch]
                    flat = (p[:, :, None] * n + p[:, None, :]).reshape(-1)
                    if dev.type == "cpu":     # numpy's take is ~3x faster than torch's
                        lp = torch.from_numpy(np.take(lk.numpy(), flat.numpy()))
                    else:
                        lp = lk[flat]
                    cross = (lp.view(-1, n, n) * K[k]).sum((1, 2))
                    rk_rl = (rl[k][p] * rk[k][None, :]).sum(1)
                    null[k, b0:b0 + per_batch] = (cross - 2.0 / n * rk_rl + tot[k]) / n**2
            thr = st - 1e-12 * st.abs()
            hits = (null >= thr[:, None]).sum(1).to(torch.float64)
            pval[c0:c1] = (1.0 + hits) / (1.0 + n_permutations)
            mean[c0:c1], var[c0:c1] = null.mean(1), null.var(1, unbiased=False)
    return HSICBatchTestResult(
        statistic=stat.cpu().numpy(), pvalue=pval.cpu().numpy(), method=method, n=n,
        sigma_x=sx.cpu().numpy(), sigma_y=sy.cpu().numpy(), null_mean=mean.cpu().numpy(),
        null_var=var.cpu().numpy(),
        n_permutations=n_permutations if method == "permutation" else 0)
