"""What attention costs, and linear attention: cost counts, random features, feature maps.

Defined in the chapter "What attention costs, and linear attention"
(``book/attention_cost.md``), after Su Jianlin's articles 8610, 8601 and 7921 on kexue.fm.

Conventions
-----------
*Cost unit.* :func:`transformer_layer_macs` counts multiply-accumulates (MACs), the unit of
Su's article 8610: an ``a x b`` by ``b x c`` matrix product costs ``a b c``. One MAC is two
floating-point operations, the unit of ``torch.utils.flop_counter.FlopCounterMode``, so
:func:`transformer_layer_flops` returns twice the MACs. Only the matrix products are counted
(no softmax, LayerNorm, activation, bias, dropout, embedding or output head).

*Attention.* ``sim(q, k) = exp(q . k)``: the ``1 / sqrt(d)`` temperature is absorbed into
``q`` and ``k`` (scale both by ``d ** -0.25``), as in the articles. A *feature map* ``phi``
turns it into a linear attention, ``sim(q, k) ~ phi(q) . phi(k)``.

*Random features.* ``omega`` is an ``(m, d)`` matrix of projection directions whose rows are
(marginally) standard Gaussian. :func:`positive_random_features` and
:func:`trig_random_features` return features whose inner product is an unbiased estimate of
``exp(q . k)`` for i.i.d. Gaussian rows, with no stabilising shift and no epsilon (those are
an attention implementation's business, e.g. performer-pytorch's ``softmax_kernel``).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Callable

import numpy as np
import torch
from scipy import stats

from .core import as_tensor, check_choice

__all__ = [
    "transformer_layer_macs",
    "transformer_layer_flops",
    "attention_crossovers",
    "positive_random_features",
    "trig_random_features",
    "orthogonal_gaussian_matrix",
    "random_feature_variance",
    "linear_attention",
    "softmax_attention",
    "taylor_features",
    "expdef_features",
]

_NORMS = ("chi", "sqrt_d", "quantile")
_KINDS = ("positive", "trig")
#: default guard on the output dimension of the deterministic feature maps
MAX_FEATURE_DIM = 10**6


# --------------------------------------------------------------------------------------
# cost counts
# --------------------------------------------------------------------------------------
def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _positive_real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")
    return float(value)


def transformer_layer_macs(n: int, heads: int, head_dim: int,
                           ffn_mult: int = 4) -> dict[str, int]:
    """Multiply-accumulates of one Transformer layer's matrix products (Su's 8610 count).

    With ``D = heads * head_dim`` (the hidden size) and ``F = ffn_mult * D``:

    * ``qkv = 3 n D^2`` (the three projections), ``scores = heads n^2 head_dim``
      (``Q K^T`` per head), ``values = heads n^2 head_dim`` (attention times ``V``),
      ``out_proj = n D^2``;
    * ``ffn = 2 n D F`` (two dense layers);
    * ``attention`` is the sum of the first four, ``total = attention + ffn``, which for
      ``ffn_mult = 4`` is ``12 n h^2 d^2 + 2 n^2 h d``.

    Parameters
    ----------
    n : int
        Sequence length, >= 1.
    heads : int
        Number of attention heads ``h``, >= 1.
    head_dim : int
        Head size ``d``, >= 1.
    ffn_mult : int, default 4
        Width of the FFN's hidden layer in units of ``D``, >= 1.

    Returns
    -------
    dict of str to int
        Keys ``qkv``, ``scores``, ``values``, ``out_proj``, ``ffn``, ``attention``,
        ``total``; values in MACs.

    Raises
    ------
    ValueError
        If a size is not a positive integer.

    Examples
    --------
    >>> macs = transformer_layer_macs(512, 12, 64)
    >>> macs["scores"] == 12 * 512**2 * 64, macs["total"] == 12*512*768**2 + 2*512**2*768
    (True, True)
    """
    n = _positive_int(n, "n")
    h = _positive_int(heads, "heads")
    d = _positive_int(head_dim, "head_dim")
    f = _positive_int(ffn_mult, "ffn_mult")
    hidden = h * d
    out = {
        "qkv": 3 * n * hidden * hidden,
        "scores": h * n * n * d,
        "values": h * n * n * d,
        "out_proj": n * hidden * hidden,
        "ffn": 2 * n * hidden * f * hidden,
    }
    out["attention"] = out["qkv"] + out["scores"] + out["values"] + out["out_proj"]
    out["total"] = out["attention"] + out["ffn"]
    return out


def transformer_layer_flops(n: int, heads: int, head_dim: int,
                            ffn_mult: int = 4) -> dict[str, int]:
    """Floating-point operations of one layer's matrix products: twice the MACs.

    The unit of ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add is two
    operations). See :func:`transformer_layer_macs` for the keys and what is counted.

    Parameters
    ----------
    n, heads, head_dim : int
        Sequence length, number of heads, head size; each >= 1.
    ffn_mult : int, default 4
        FFN width in units of the hidden size, >= 1.

    Returns
    -------
    dict of str to int

    Raises
    ------
    ValueError
        If a size is not a positive integer.

    Examples
    --------
    >>> transformer_layer_flops(128, 12, 64)["total"] == 2 * (
    ...     12 * 128 * 768**2 + 2 * 128**2 * 768)
    True
    """
    return {k: 2 * v for k, v in transformer_layer_macs(n, heads, head_dim,
                                                       ffn_mult).items()}


def attention_crossovers(heads: int, head_dim: int, ffn_mult: float = 4,
                         linear_head_mult: float = 4) -> dict[str, float]:
    """Sequence lengths at which the terms of a layer's MAC count trade places.

    With ``D = heads * head_dim``, ``f = ffn_mult`` and ``c = linear_head_mult``:

    * ``sa_over_ffn``: self-attention (``4 n D^2 + 2 n^2 D``) exceeds the FFN
      (``2 f n D^2``) for ``n > (f - 2) D`` (``2 h d`` for ``f = 4``; 0 if ``f <= 2``);
    * ``quadratic_dominates``: ``2 n^2 D`` exceeds all the rest (``(4 + 2 f) n D^2``)
      for ``n > (2 + f) D`` (``6 h d`` for ``f = 4``);
    * ``linear_beats_softmax``: per head, linear attention with head size ``c d``
      (``2 n (c d)^2``) is cheaper than softmax attention (``2 n^2 d``) for
      ``n > c^2 d``.

    Parameters
    ----------
    heads, head_dim : int
        Number of heads and head size, each >= 1.
    ffn_mult : float, default 4
        FFN width in units of the hidden size, > 0.
    linear_head_mult : float, default 4
        Head size of the linear attention in units of ``head_dim`` (Su's rule of thumb:
        about 4), > 0.

    Returns
    -------
    dict of str to float

    Raises
    ------
    ValueError
        If a size is not positive.

    Examples
    --------
    >>> attention_crossovers(12, 64)
    {'sa_over_ffn': 1536.0, 'quadratic_dominates': 4608.0, 'linear_beats_softmax': 1024.0}
    """
    h = _positive_int(heads, "heads")
    d = _positive_int(head_dim, "head_dim")
    f = _positive_real(ffn_mult, "ffn_mult")
    c = _positive_real(linear_head_mult, "linear_head_mult")
    hidden = h * d
    return {
        "sa_over_ffn": float(max(0.0, (f - 2.0) * hidden)),
        "quadratic_dominates": float((2.0 + f) * hidden),
        "linear_beats_softmax": float(c * c * d),
    }


# --------------------------------------------------------------------------------------
# random features
# --------------------------------------------------------------------------------------
def _x_omega(x: Any, omega: Any) -> tuple[torch.Tensor, torch.Tensor]:
    xt = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=float))
    wt = omega if isinstance(omega, torch.Tensor) else torch.as_tensor(
        np.asarray(omega, dtype=float))
    if xt.ndim < 1 or xt.numel() == 0:
        raise ValueError(f"x must be a non-empty array of shape (..., d); got shape "
                         f"{tuple(xt.shape)}")
    if wt.ndim != 2 or wt.numel() == 0:
        raise ValueError(f"omega must be a non-empty (m, d) matrix; got shape "
                         f"{tuple(wt.shape)}")
    if wt.shape[1] != xt.shape[-1]:
        raise ValueError(f"omega must have x's last dimension d = {xt.shape[-1]} columns; "
                         f"got shape {tuple(wt.shape)}")
    if not xt.is_floating_point():
        xt = xt.double()
    return xt, wt.to(device=xt.device, dtype=xt.dtype)


def positive_random_features(x: Any, omega: Any) -> torch.Tensor:
    """Performer's positive random features: ``exp(omega_i . x - ||x||^2 / 2) / sqrt(m)``.

    For rows ``omega_i ~ N(0, I_d)``, ``phi(q) . phi(k)`` is an unbiased estimate of
    ``exp(q . k)`` (complete the square in the Gaussian integral), and every feature is
    positive.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (..., d)
        Queries or keys, already scaled (e.g. by ``d ** -0.25``).
    omega : array_like or torch.Tensor, shape (m, d)
        Projection directions.

    Returns
    -------
    torch.Tensor, shape (..., m)
        Same dtype and device as ``x`` (float64 if ``x`` is not a float tensor).

    Raises
    ------
    ValueError
        If the shapes do not match.

    Examples
    --------
    >>> phi = positive_random_features(torch.zeros(3, 2), torch.ones(4, 2))
    >>> phi.shape, float(phi[0, 0])
    (torch.Size([3, 4]), 0.5)
    """
    xt, wt = _x_omega(x, omega)
    m = wt.shape[0]
    proj = xt @ wt.T - 0.5 * (xt * xt).sum(-1, keepdim=True)
    return torch.exp(proj) / math.sqrt(m)


def trig_random_features(x: Any, omega: Any) -> torch.Tensor:
    """Trigonometric random features of ``exp(q . k)``.

    ``phi(x) = exp(||x||^2 / 2) [cos(omega x), sin(omega x)] / sqrt(m)``, so that
    ``phi(q) . phi(k) = exp((||q||^2 + ||k||^2) / 2) mean_i cos(omega_i . (q - k))``,
    unbiased for ``exp(q . k)`` when ``omega_i ~ N(0, I_d)`` (Rahimi and Recht's features
    of the Gaussian kernel, times the norms' factor). It can be negative.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (..., d)
        Queries or keys.
    omega : array_like or torch.Tensor, shape (m, d)
        Projection directions.

    Returns
    -------
    torch.Tensor, shape (..., 2 m)
        The ``m`` cosines, then the ``m`` sines.

    Raises
    ------
    ValueError
        If the shapes do not match.

    Examples
    --------
    >>> phi = trig_random_features(torch.zeros(1, 2), torch.ones(3, 2))
    >>> phi.shape, round(float((phi * phi).sum()), 6)
    (torch.Size([1, 6]), 1.0)
    """
    xt, wt = _x_omega(x, omega)
    m = wt.shape[0]
    proj = xt @ wt.T
    scale = torch.exp(0.5 * (xt * xt).sum(-1, keepdim=True)) / math.sqrt(m)
    return torch.cat([scale * torch.cos(proj), scale * torch.sin(proj)], dim=-1)


def orthogonal_gaussian_matrix(m: int, d: int, norms: str = "chi",
                               generator: torch.Generator | None = None) -> torch.Tensor:
    """An (m, d) matrix of projection directions, orthogonal in blocks of d rows.

    Rows ``0..d-1``, ``d..2d-1``, ... are mutually orthogonal unit vectors (each block the
    rows of a Haar-random orthogonal matrix: the Q factor of a Gaussian matrix with the
    signs of R's diagonal fixed; the last block may be partial), then scaled to a norm:

    * ``"chi"``: independent draws from the chi distribution with d degrees of freedom, so
      that each row is marginally ``N(0, I_d)`` (Performer's default, performer-pytorch's
      ``scaling=0``);
    * ``"sqrt_d"``: all equal to ``sqrt(d)`` (performer-pytorch's ``scaling=1``);
    * ``"quantile"``: Su's deterministic norms, the chi_d quantiles at ``i / (m + 1)``,
      ``i = 1..m``, in increasing order down the rows. These make the estimate biased.

    Parameters
    ----------
    m : int
        Number of rows (features), >= 1.
    d : int
        Dimension, >= 1.
    norms : {"chi", "sqrt_d", "quantile"}, default "chi"
        How the row norms are chosen.
    generator : torch.Generator, optional
        Source of randomness (CPU); default torch's global generator.

    Returns
    -------
    torch.Tensor, shape (m, d), float64, on the CPU

    Raises
    ------
    ValueError
        If ``m < 1``, ``d < 1`` or ``norms`` is unknown.

    Examples
    --------
    >>> w = orthogonal_gaussian_matrix(4, 4, norms="sqrt_d",
    ...                                generator=torch.Generator().manual_seed(0))
    >>> bool(torch.allclose(w @ w.T, 4 * torch.eye(4, dtype=w.dtype)))
    True
    """
    m = _positive_int(m, "m")
    d = _positive_int(d, "d")
    check_choice(norms, "norms", _NORMS)
    n_blocks = -(-m // d)
    g = torch.randn(n_blocks, d, d, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)                      # one batched QR for all blocks
    signs = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    signs[signs == 0] = 1.0
    # columns of q * sign(diag r) form a Haar-random orthogonal matrix; take rows
    directions = (q * signs[:, None, :]).transpose(-1, -2).reshape(n_blocks * d, d)[:m]
    if norms == "chi":
        lengths = torch.randn(m, d, generator=generator, dtype=torch.float64).norm(dim=1)
    elif norms == "sqrt_d":
        lengths = torch.full((m,), math.sqrt(d), dtype=torch.float64)
    else:
        lengths = torch.tensor(_chi_quantiles(m, d), dtype=torch.float64)
    return directions * lengths[:, None]


@functools.lru_cache(maxsize=256)
def _chi_quantiles(m: int, d: int) -> np.ndarray:
    """The chi_d quantiles at i / (m + 1), i = 1..m (cached: scipy's ppf is slow)."""
    out = stats.chi(d).ppf(np.arange(1, m + 1) / (m + 1))
    out.setflags(write=False)
    return out


def random_feature_variance(q: Any, k: Any, kind: str = "positive") -> float:
    """Variance of one random feature's estimate of ``exp(q . k)``, ``omega ~ N(0, I)``.

    * ``"positive"``: ``exp(omega.q - |q|^2/2) exp(omega.k - |k|^2/2)`` has variance
      ``exp(2 q.k) (exp(|q + k|^2) - 1)``;
    * ``"trig"``: ``exp((|q|^2 + |k|^2)/2) cos(omega.(q - k))`` has variance
      ``exp(|q|^2 + |k|^2) (1 - exp(-|q - k|^2))^2 / 2``.

    With m i.i.d. features the variance is divided by m.

    Parameters
    ----------
    q, k : array_like, shape (d,)
        A query and a key (finite, same length).
    kind : {"positive", "trig"}, default "positive"

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If q and k are not finite vectors of the same length, or ``kind`` is unknown.

    Examples
    --------
    >>> random_feature_variance([0.0], [0.0], "trig")
    0.0
    >>> v = random_feature_variance([0.5], [0.5], "positive")
    >>> abs(v - math.exp(0.5) * (math.e - 1)) < 1e-12
    True
    """
    check_choice(kind, "kind", _KINDS)
    qt = as_tensor(q, "q", ndim=1, dtype=torch.float64, device="cpu")
    kt = as_tensor(k, "k", ndim=1, dtype=torch.float64, device="cpu")
    if qt.shape != kt.shape:
        raise ValueError(f"q and k must have the same length; got {qt.shape[0]} and "
                         f"{kt.shape[0]}")
    if kind == "positive":
        qk = float(qt @ kt)
        s2 = float(((qt + kt) ** 2).sum())
        return math.exp(2 * qk) * math.expm1(s2)
    n2 = float((qt * qt).sum() + (kt * kt).sum())
    diff2 = float(((qt - kt) ** 2).sum())
    return math.exp(n2) * (-math.expm1(-diff2)) ** 2 / 2


# --------------------------------------------------------------------------------------
# attention
# --------------------------------------------------------------------------------------
def _qkv(q: Any, k: Any, v: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ts = []
    for name, a in (("q", q), ("k", k), ("v", v)):
        t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a, dtype=float))
        if t.ndim < 2 or t.numel() == 0:
            raise ValueError(f"{name} must be a non-empty array of shape (..., n, d); got "
                             f"shape {tuple(t.shape)}")
        ts.append(t if t.is_floating_point() else t.double())
    qt, kt, vt = ts
    if qt.shape[-1] != kt.shape[-1]:
        raise ValueError(f"q and k must have the same last dimension; got {qt.shape[-1]} "
                         f"and {kt.shape[-1]}")
    if kt.shape[-2] != vt.shape[-2]:
        raise ValueError(f"k and v must have the same number of positions; got "
                         f"{kt.shape[-2]} and {vt.shape[-2]}")
    return qt, kt, vt


def softmax_attention(q: Any, k: Any, v: Any, causal: bool = False) -> torch.Tensor:
    """Standard attention ``softmax(Q K^T) V`` with ``sim(q, k) = exp(q . k)``, no scaling.

    The reference for :func:`linear_attention`; equal to
    ``torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=1.0)``.

    Parameters
    ----------
    q : array_like or torch.Tensor, shape (..., n, d)
    k : array_like or torch.Tensor, shape (..., n_k, d)
    v : array_like or torch.Tensor, shape (..., n_k, e)
    causal : bool, default False
        Whether position i attends only to positions j <= i (needs n == n_k).

    Returns
    -------
    torch.Tensor, shape (..., n, e)

    Raises
    ------
    ValueError
        If the shapes do not match.

    Examples
    --------
    >>> out = softmax_attention(torch.zeros(2, 3), torch.zeros(2, 3),
    ...                         torch.tensor([[1.0], [3.0]]))
    >>> out.flatten().tolist()
    [2.0, 2.0]
    """
    qt, kt, vt = _qkv(q, k, v)
    scores = qt @ kt.transpose(-1, -2)
    if causal:
        n, nk = scores.shape[-2:]
        if n != nk:
            raise ValueError(f"causal attention needs as many queries as keys; got {n} "
                             f"and {nk}")
        mask = torch.ones(n, n, dtype=torch.bool, device=scores.device).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ vt


def linear_attention(q: Any, k: Any, v: Any,
                     feature_map: Callable[[torch.Tensor], torch.Tensor],
                     causal: bool = False) -> torch.Tensor:
    """Linear attention ``phi(Q) (phi(K)^T V)``, normalised row by row.

    ``out_i = phi(q_i) . sum_j phi(k_j) v_j^T / (phi(q_i) . sum_j phi(k_j))``, computed in
    the order that costs ``O(n m e)`` instead of ``O(n^2)``: first ``phi(K)^T V`` (an
    ``m x e`` matrix), then its product with ``phi(Q)``. With ``causal=True`` the sums run
    over ``j <= i`` (prefix sums).

    Parameters
    ----------
    q : array_like or torch.Tensor, shape (..., n, d)
    k : array_like or torch.Tensor, shape (..., n_k, d)
    v : array_like or torch.Tensor, shape (..., n_k, e)
    feature_map : callable
        Maps a (..., n, d) tensor to its (..., n, m) features, applied to q and to k.
    causal : bool, default False

    Returns
    -------
    torch.Tensor, shape (..., n, e)

    Raises
    ------
    ValueError
        If the shapes do not match, ``feature_map`` is not callable or returns features of
        different sizes for q and k.

    Examples
    --------
    >>> q = k = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    >>> v = torch.randn(5, 2, generator=torch.Generator().manual_seed(1))
    >>> ones = lambda x: torch.ones(*x.shape[:-1], 1)
    >>> bool(torch.allclose(linear_attention(q, k, v, ones), v.mean(0).expand(5, 2)))
    True
    """
    if not callable(feature_map):
        raise ValueError(f"feature_map must be callable; got {feature_map!r}")
    qt, kt, vt = _qkv(q, k, v)
    fq, fk = feature_map(qt), feature_map(kt)
    if fq.shape[-1] != fk.shape[-1]:
        raise ValueError(f"feature_map must give q and k the same number of features; got "
                         f"{fq.shape[-1]} and {fk.shape[-1]}")
    if causal:
        if fq.shape[-2] != fk.shape[-2]:
            raise ValueError(f"causal attention needs as many queries as keys; got "
                             f"{fq.shape[-2]} and {fk.shape[-2]}")
        kv = torch.cumsum(fk[..., :, :, None] * vt[..., :, None, :], dim=-3)
        num = (fq[..., :, :, None] * kv).sum(-2)
        den = (fq * torch.cumsum(fk, dim=-2)).sum(-1, keepdim=True)
        return num / den
    kv = fk.transpose(-1, -2) @ vt
    num = fq @ kv
    den = fq @ fk.sum(-2)[..., :, None]
    return num / den


# --------------------------------------------------------------------------------------
# deterministic feature maps of 8601
# --------------------------------------------------------------------------------------
def _tensor_power(x: torch.Tensor, order: int) -> torch.Tensor:
    """x^{(x) order}, flattened along the last axis: shape (..., d**order)."""
    out = torch.ones(*x.shape[:-1], 1, dtype=x.dtype, device=x.device)
    for _ in range(order):
        out = (out[..., :, None] * x[..., None, :]).flatten(-2)
    return out


def _features_input(x: Any) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=float))
    if t.ndim < 1 or t.numel() == 0:
        raise ValueError(f"x must be a non-empty array of shape (..., d); got shape "
                         f"{tuple(t.shape)}")
    return t if t.is_floating_point() else t.double()


def taylor_features(x: Any, order: int, max_dim: int = MAX_FEATURE_DIM) -> torch.Tensor:
    """Su's Taylor feature map: ``[1, x, x(x)x / sqrt(2!), ..., x^{(x)order} / sqrt(order!)]``.

    ``phi(x) . phi(y) = sum_{j <= order} (x . y)^j / j!``, the Taylor polynomial of
    ``exp(x . y)``. The output has ``sum_{j <= order} d^j`` features (full tensor powers,
    not the symmetric ones).

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (..., d)
    order : int
        Degree of the Taylor polynomial, >= 0.
    max_dim : int, default 10**6
        Refuse to build more features than this.

    Returns
    -------
    torch.Tensor, shape (..., sum_j d**j)

    Raises
    ------
    ValueError
        If ``order < 0`` or the feature dimension exceeds ``max_dim``.

    Examples
    --------
    >>> x, y = torch.tensor([0.3, -0.2]), torch.tensor([0.5, 0.4])
    >>> s = float(x @ y)
    >>> abs(float(taylor_features(x, 2) @ taylor_features(y, 2))
    ...     - (1 + s + s * s / 2)) < 1e-7
    True
    """
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) or order < 0:
        raise ValueError(f"order must be an integer >= 0; got {order!r}")
    order = int(order)
    max_dim = _positive_int(max_dim, "max_dim")
    xt = _features_input(x)
    d = xt.shape[-1]
    dim = sum(d**j for j in range(order + 1))
    if dim > max_dim:
        raise ValueError(f"order={order} with d={d} gives {dim} features, more than "
                         f"max_dim={max_dim}")
    parts = [_tensor_power(xt, j) / math.sqrt(math.factorial(j)) for j in range(order + 1)]
    return torch.cat(parts, dim=-1)


def expdef_features(x: Any, n: int, max_dim: int = MAX_FEATURE_DIM) -> torch.Tensor:
    """Su's feature map from the definition of e: ``(x)^n [1; x / sqrt(n)]``.

    ``phi(x) . phi(y) = (1 + x . y / n)^n``, which tends to ``exp(x . y)`` as n grows.
    The output has ``(d + 1)^n`` features.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (..., d)
    n : int
        The power, >= 1.
    max_dim : int, default 10**6
        Refuse to build more features than this.

    Returns
    -------
    torch.Tensor, shape (..., (d + 1)**n)

    Raises
    ------
    ValueError
        If ``n < 1`` or the feature dimension exceeds ``max_dim``.

    Examples
    --------
    >>> x, y = torch.tensor([0.3, -0.2]), torch.tensor([0.5, 0.4])
    >>> abs(float(expdef_features(x, 3) @ expdef_features(y, 3))
    ...     - (1 + float(x @ y) / 3) ** 3) < 1e-7
    True
    """
    n = _positive_int(n, "n")
    max_dim = _positive_int(max_dim, "max_dim")
    xt = _features_input(x)
    d = xt.shape[-1]
    dim = (d + 1) ** n
    if dim > max_dim:
        raise ValueError(f"n={n} with d={d} gives {dim} features, more than "
                         f"max_dim={max_dim}")
    ones = torch.ones(*xt.shape[:-1], 1, dtype=xt.dtype, device=xt.device)
    return _tensor_power(torch.cat([ones, xt / math.sqrt(n)], dim=-1), n)
