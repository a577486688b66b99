"""Rotary position embeddings (RoPE) as a base-beta number system, and context extension.

Defined in the chapter "RoPE is a base-beta number system: extending the context window"
(``book/rope_beta_base.md``). Equation labels below (``rope-eq-...``) refer to that chapter.

Every scheme is a rescaling of the ``dim/2`` inverse frequencies
``theta_i = base**(-2 i / dim)``, ``i = 0, ..., dim/2 - 1`` (:func:`rope_inv_freq`), except
ReRoPE, which changes the relative positions inside attention (:func:`rerope_attention`).
Conventions follow Hugging Face transformers (``modeling_rope_utils``) exactly where both
define the same scheme: ``"linear"``, ``"dynamic-ntk"`` and ``"yarn"`` reproduce
``ROPE_INIT_FUNCTIONS["linear" | "dynamic" | "yarn"]`` and the ``"half"`` layout of
:func:`apply_rope` reproduces Llama's ``apply_rotary_pos_emb``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .core import as_tensor, check_choice, check_int, check_real

__all__ = [
    "SCALINGS",
    "base_digit",
    "rope_inv_freq",
    "yarn_attention_factor",
    "logn_scale",
    "apply_rope",
    "interleave_permutation",
    "rope_attention",
    "rerope_attention",
]

#: The values ``rope_inv_freq`` accepts for ``scaling``.
SCALINGS: tuple[Any, ...] = (None, "linear", "ntk", "ntk-fixed", "ntk-mixed", "dynamic-ntk",
                             "yarn")
_LAYOUTS = ("half", "interleaved")
_CHUNK = 16  # query rows per block in _relative_logits (fastest on a CPU)
_PARAMS: dict[Any, tuple[set[str], set[str]]] = {
    # scaling: (required parameters, optional parameters)
    None: (set(), set()),
    "linear": (set(), set()),
    "ntk": (set(), set()),
    "ntk-fixed": (set(), set()),
    "ntk-mixed": ({"b"}, set()),
    "dynamic-ntk": ({"seq_len", "max_position"}, set()),
    "yarn": ({"original_max_position"}, {"beta_fast", "beta_slow", "truncate"}),
}


def base_digit(n: int, beta: int, m: int) -> int:
    """The m-th digit of the integer n written in base beta, ``floor(n / beta**(m-1)) mod beta``.

    Eq. ``rope-eq-digit`` of the chapter; ``m = 1`` is the lowest (units) digit.

    Parameters
    ----------
    n : int
        A non-negative integer.
    beta : int
        The base, at least 2.
    m : int
        The digit's position, at least 1.

    Returns
    -------
    int
        A digit in ``0, ..., beta - 1``.

    Raises
    ------
    TypeError
        If an argument is not an integer.
    ValueError
        If ``n < 0``, ``beta < 2`` or ``m < 1``.

    Examples
    --------
    >>> [base_digit(2023, 10, m) for m in (1, 2, 3, 4)]
    [3, 2, 0, 2]
    """
    n = check_int(n, "n", minimum=0)
    beta = check_int(beta, "beta", minimum=2)
    m = check_int(m, "m", minimum=1)
    return (n // beta ** (m - 1)) % beta


def _check_dim_base(dim: Any, base: Any) -> tuple[int, float]:
    dim = check_int(dim, "dim", minimum=2)
    if dim % 2:
        raise ValueError(f"dim must be an even integer (RoPE rotates pairs of dimensions); "
                         f"got {dim!r}")
    base = check_real(base, "base", low=0.0)
    if base <= 1.0:
        raise ValueError(f"base must be a real number > 1; got {base!r}")
    return dim, base


def yarn_attention_factor(factor: float) -> float:
    """YaRN's attention factor ``0.1 ln(factor) + 1`` (1 when ``factor <= 1``).

    transformers multiplies both cos and sin by it, that is both q and k, so the attention
    logits are multiplied by its square; :func:`rope_attention` does the same with its
    ``attention_factor`` argument (eq. ``rope-eq-yarn`` of the chapter).

    Parameters
    ----------
    factor : float
        The context extension factor k, positive.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``factor`` is not positive.

    Examples
    --------
    >>> round(yarn_attention_factor(4.0), 6)
    1.138629
    """
    factor = check_real(factor, "factor", low=0.0)
    return 1.0 if factor <= 1 else 0.1 * math.log(factor) + 1.0


def rope_inv_freq(dim: int, base: float = 10000.0, *, scaling: str | None = None,
                  factor: float = 1.0, **params: Any) -> torch.Tensor:
    """The ``dim/2`` inverse frequencies of RoPE, optionally rescaled to extend the context.

    With ``theta_i = base**(-2 i / dim)`` (eq. ``rope-eq-theta``, ``i = 0, ..., dim/2 - 1``)
    and ``k = factor``:

    ``None``
        ``theta_i`` (extrapolation: change nothing).
    ``"linear"``
        ``theta_i / k``: positional interpolation, n -> n / k (eq. ``rope-eq-pi``).
    ``"ntk"``
        base -> ``base * k**(dim / (dim - 2))``, i.e. beta -> beta * lambda with
        ``lambda = k**(2 / (dim - 2))`` (eq. ``rope-eq-ntk``): the highest frequency is
        unchanged, the lowest is divided by exactly k.
    ``"ntk-fixed"``
        ``theta_i * lambda**-(i + 1)`` with ``lambda = k**(2 / dim)`` (eq. ``rope-eq-fixed``).
    ``"ntk-mixed"``
        ``theta_i * exp(-a (i + 1)**b)`` with ``a (dim/2)**b = ln k`` (eq. ``rope-eq-mixed``);
        needs ``b`` (b = 1 gives ``"ntk-fixed"``, b = 0 gives ``"linear"``).
    ``"dynamic-ntk"``
        transformers' dynamic NTK: base -> ``base * (k s / L - (k - 1))**(dim / (dim - 2))``
        with ``s = max(seq_len, L)`` and ``L = max_position``; needs ``seq_len`` and
        ``max_position``.
    ``"yarn"``
        YaRN's ramp between extrapolation (fast dimensions) and interpolation (slow ones), as
        in transformers; needs ``original_max_position``, optional ``beta_fast`` (32),
        ``beta_slow`` (1) and ``truncate`` (True). The attention factor is
        :func:`yarn_attention_factor`.

    Parameters
    ----------
    dim : int
        The rotary dimension d (even, at least 2).
    base : float, default 10000.0
        The RoPE base (> 1); ``beta = base**(2/dim)``.
    scaling : {None, "linear", "ntk", "ntk-fixed", "ntk-mixed", "dynamic-ntk", "yarn"}
        The scheme.
    factor : float, default 1.0
        The extension factor k >= 1 (ignored when ``scaling`` is None).
    **params
        The scheme's own parameters listed above.

    Returns
    -------
    torch.Tensor
        float32 tensor of shape ``(dim // 2,)`` on the CPU, computed in float64 and rounded.

    Raises
    ------
    ValueError
        If ``dim`` is odd or < 2, ``base <= 1``, ``factor < 1``, ``scaling`` is unknown, a
        required parameter is missing, an unknown parameter is given, or a parameter is out
        of range.

    Examples
    --------
    >>> rope_inv_freq(8)
    tensor([1.0000, 0.1000, 0.0100, 0.0010])
    >>> rope_inv_freq(8, scaling="ntk", factor=4.0)[-1] * 4 / rope_inv_freq(8)[-1]
    tensor(1.)
    """
    dim, base = _check_dim_base(dim, base)
    check_choice(scaling, "scaling", SCALINGS)
    factor = check_real(factor, "factor", low=1.0, low_open=False)
    required, optional = _PARAMS[scaling]
    missing = sorted(required - params.keys())
    if missing:
        raise ValueError(f"scaling={scaling!r} needs the parameter(s) {', '.join(missing)}; "
                         f"got {sorted(params)}")
    unknown = sorted(params.keys() - required - optional)
    if unknown:
        raise ValueError(f"scaling={scaling!r} does not take the parameter(s) "
                         f"{', '.join(unknown)}; it takes {sorted(required | optional)}")
    half = dim // 2
    i = torch.arange(half, dtype=torch.float64)
    theta = base ** (-2.0 * i / dim)
    k = factor
    if scaling is None:
        out = theta
    elif scaling == "linear":
        out = theta / k
    elif scaling == "ntk":
        out = (base * k ** (dim / (dim - 2))) ** (-2.0 * i / dim)
    elif scaling == "ntk-fixed":
        lam = k ** (2.0 / dim)
        out = theta * lam ** (-(i + 1))
    elif scaling == "ntk-mixed":
        b = check_real(params["b"], "b", low=0.0, low_open=False)
        a = math.log(k) / half**b
        out = theta * torch.exp(-a * (i + 1) ** b)
    elif scaling == "dynamic-ntk":
        seq_len = check_int(params["seq_len"], "seq_len", minimum=1)
        max_position = check_int(params["max_position"], "max_position", minimum=1)
        s = max(seq_len, max_position)
        new_base = base * ((k * s / max_position) - (k - 1)) ** (dim / (dim - 2))
        out = new_base ** (-2.0 * i / dim)
    else:  # yarn
        out = _yarn_inv_freq(dim, base, k, theta, **params)
    return out.to(torch.float32)


def _yarn_inv_freq(dim: int, base: float, k: float, theta: torch.Tensor, *,
                   original_max_position: Any, beta_fast: Any = 32.0, beta_slow: Any = 1.0,
                   truncate: Any = True) -> torch.Tensor:
    """YaRN's per-frequency ramp (eq. ``rope-eq-yarn``), transformers' conventions."""
    length = check_int(original_max_position, "original_max_position", minimum=1)
    beta_fast = check_real(beta_fast, "beta_fast", low=0.0)
    beta_slow = check_real(beta_slow, "beta_slow", low=0.0)
    if beta_slow >= beta_fast:
        raise ValueError(f"beta_slow must be smaller than beta_fast; got beta_slow={beta_slow!r}"
                         f", beta_fast={beta_fast!r}")
    if not isinstance(truncate, bool):
        raise TypeError(f"truncate must be a bool; got {truncate!r}")

    def correction_dim(rotations: float) -> float:
        # the index i (in units of dimensions, 0..dim) whose wavelength fits `rotations`
        # times into the training length: L theta_i = 2 pi rotations
        return dim * math.log(length / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(dim // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
    return theta / k * ramp + theta * (1 - ramp)


def logn_scale(positions: Any, train_length: int) -> torch.Tensor:
    """The log n attention scale ``max(1, ln(n + 1) / ln L)`` for 0-based positions n.

    Multiplying the query at position n (which sees n + 1 keys) by it keeps the entropy of
    attention from growing with the length (eq. ``rope-eq-logn``); it is 1 up to the
    training length L, as in Su's code.

    Parameters
    ----------
    positions : array_like
        Non-negative positions (any shape).
    train_length : int
        The training length L, at least 2.

    Returns
    -------
    torch.Tensor
        float32 tensor, the shape of ``positions``, on the CPU.

    Raises
    ------
    ValueError
        If ``train_length < 2`` or a position is negative.

    Examples
    --------
    >>> logn_scale([0, 15, 63], 16)
    tensor([1.0000, 1.0000, 1.5000])
    """
    train_length = check_int(train_length, "train_length", minimum=2)
    pos = as_tensor(positions, "positions", dtype=torch.float64, device="cpu")
    if bool((pos < 0).any()):
        raise ValueError(f"positions must be non-negative; got minimum {float(pos.min())!r}")
    return (torch.log(pos + 1) / math.log(train_length)).clamp(min=1.0).to(torch.float32)


def interleave_permutation(dim: int) -> torch.Tensor:
    """The permutation that maps the "half" layout to the "interleaved" one.

    The half layout pairs dimension i with i + dim/2 (GPT-NeoX, Llama in transformers); the
    interleaved layout pairs 2i with 2i + 1 (RoFormer, Meta's Llama). With
    ``p = interleave_permutation(dim)``, ``x[..., p]`` written in the interleaved layout is
    the same vector as ``x`` in the half layout, and
    ``apply_rope(x[..., p], ..., layout="interleaved") == apply_rope(x, ...)[..., p]``.

    Parameters
    ----------
    dim : int
        Even rotary dimension.

    Returns
    -------
    torch.Tensor
        int64 tensor ``[0, dim/2, 1, dim/2 + 1, ...]``.

    Raises
    ------
    ValueError
        If ``dim`` is odd or < 2.

    Examples
    --------
    >>> interleave_permutation(6)
    tensor([0, 3, 1, 4, 2, 5])
    """
    dim, _ = _check_dim_base(dim, 10000.0)
    half = dim // 2
    return torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).reshape(-1)


def _check_inv_freq(inv_freq: Any, dim: int, device: torch.device,
                    dtype: torch.dtype) -> torch.Tensor:
    freq = as_tensor(inv_freq, "inv_freq", ndim=(1, 2), dtype=dtype, device=device)
    if freq.shape[-1] * 2 != dim:
        raise ValueError(f"inv_freq must have last dimension dim/2 = {dim // 2} for inputs "
                         f"whose last dimension is {dim}; got shape {tuple(freq.shape)}")
    return freq


def _as_positions(positions: Any, length: int, device: torch.device) -> torch.Tensor:
    if positions is None:
        return torch.arange(length, device=device, dtype=torch.float64)
    pos = as_tensor(positions, "positions", ndim=1, dtype=torch.float64, device=device)
    if pos.shape[0] != length:
        raise ValueError(f"positions must have one entry per row of x ({length}); got "
                         f"{pos.shape[0]}")
    return pos


def apply_rope(x: Any, positions: Any, inv_freq: Any, *, layout: str = "half") -> torch.Tensor:
    """Rotate the last dimension of ``x`` by the angles ``positions * inv_freq`` (eq. ``rope-eq-rope``).

    Each pair of dimensions i (``(i, i + d/2)`` in the ``"half"`` layout, ``(2i, 2i + 1)``
    in the ``"interleaved"`` one) is rotated by the angle ``n theta_i`` where n is the
    row's position. The ``"half"`` layout is exactly transformers' ``apply_rotary_pos_emb``.

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(..., T, d)`` with d even; floating point.
    positions : array_like
        Shape ``(T,)``: the (possibly fractional) position of each row.
    inv_freq : array_like
        Shape ``(d/2,)``: the inverse frequencies, e.g. from :func:`rope_inv_freq`.
    layout : {"half", "interleaved"}, default "half"

    Returns
    -------
    torch.Tensor
        The rotated tensor, same shape, dtype and device as ``x``.

    Raises
    ------
    ValueError
        If the last dimension is odd, shapes disagree, or ``layout`` is unknown.

    Examples
    --------
    >>> x = torch.ones(3, 4)
    >>> apply_rope(x, [0, 1, 2], rope_inv_freq(4)).shape
    torch.Size([3, 4])
    """
    check_choice(layout, "layout", _LAYOUTS)
    if not (isinstance(x, torch.Tensor) and x.is_floating_point()):
        x = as_tensor(x, "x", dtype=torch.float32, device="cpu")
    if x.ndim < 2:
        raise ValueError(f"x must have shape (..., T, d); got shape {tuple(x.shape)}")
    dim = x.shape[-1]
    if dim % 2:
        raise ValueError(f"x must have an even last dimension (RoPE rotates pairs); got {dim}")
    freq = _check_inv_freq(inv_freq, dim, x.device, torch.float64)
    if freq.ndim != 1:
        raise ValueError(f"inv_freq must have shape (d/2,) = ({dim // 2},); got "
                         f"{tuple(freq.shape)}")
    pos = _as_positions(positions, x.shape[-2], x.device)
    angles = pos[:, None] * freq[None, :]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    if layout == "half":
        a, b = x[..., : dim // 2], x[..., dim // 2:]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1).flatten(-2)


def _relative_logits(q: torch.Tensor, k: torch.Tensor, rel: torch.Tensor,
                     freq: torch.Tensor) -> torch.Tensor:
    """q_n . R((n - j) theta) k_j computed from relative positions (half layout).

    ``rel`` has shape (Tq, Tk), ``freq`` (d/2,) or (Tq, d/2) (one set per query).
    """
    half = q.shape[-1] // 2
    ka, kb = k[..., None, :, :half], k[..., None, :, half:]
    f = freq if freq.ndim == 2 else freq.expand(rel.shape[0], half)
    out = []
    for start in range(0, rel.shape[0], _CHUNK):  # chunks of queries bound the memory
        stop = start + _CHUNK
        qa, qb = q[..., start:stop, None, :half], q[..., start:stop, None, half:]
        ang = (rel[start:stop, :, None] * f[start:stop, None, :]).to(q.dtype)  # (c, Tk, d/2)
        cos_part = qa * ka + qb * kb
        sin_part = qa * kb - qb * ka
        out.append((cos_part * ang.cos() + sin_part * ang.sin()).sum(-1))
    return torch.cat(out, dim=-2)


def _check_qkv(q: Any, k: Any, v: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    out = []
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor; got "
                            f"{type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"{name} must have shape (..., T, d); got {tuple(t.shape)}")
        out.append(t)
    q, k, v = out
    if q.shape[-1] != k.shape[-1] or q.shape[-1] % 2:
        raise ValueError(f"q and k must share an even last dimension; got {q.shape[-1]} and "
                         f"{k.shape[-1]}")
    if k.shape[-2] != v.shape[-2] or q.shape[-2] != k.shape[-2]:
        raise ValueError(f"q, k and v must have the same length T (self-attention); got "
                         f"{q.shape[-2]}, {k.shape[-2]}, {v.shape[-2]}")
    return q, k, v


def _finish_attention(logits: torch.Tensor, v: torch.Tensor, pos: torch.Tensor, causal: bool,
                      logn_length: int | None, dim: int,
                      attention_factor: float) -> torch.Tensor:
    logits = logits * (attention_factor**2 / math.sqrt(dim))
    if logn_length is not None:
        logits = logits * logn_scale(pos.cpu(), logn_length).to(logits)[:, None]
    if causal:
        future = pos[None, :] > pos[:, None]
        logits = logits.masked_fill(future, float("-inf"))
    return torch.softmax(logits, dim=-1) @ v


def rope_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, inv_freq: Any, *,
                   positions: Any = None, causal: bool = True, logn_length: int | None = None,
                   attention_factor: float = 1.0) -> torch.Tensor:
    """Scaled dot-product self-attention with RoPE on q and k (half layout).

    ``softmax(s_n * a**2 * (R_n q_n) . (R_j k_j) / sqrt(d)) v`` where R_n rotates by
    ``n * inv_freq`` (eq. ``rope-eq-relative``), ``a = attention_factor`` and
    ``s_n = logn_scale(n, logn_length)`` (1 when ``logn_length`` is None).

    ``inv_freq`` of shape ``(d/2,)`` rotates q and k once. Shape ``(T, d/2)`` gives each query
    position its own frequencies, as dynamic NTK scaling does when the sequence is generated
    one token at a time (each token sees the base for its own current length): the logits are
    then computed from relative positions, ``q_n . R((n - j) theta(n)) k_j``.

    Parameters
    ----------
    q, k, v : torch.Tensor
        Shape ``(..., T, d)`` (v may have another last dimension); floating point.
    inv_freq : array_like
        Shape ``(d/2,)`` or ``(T, d/2)``.
    positions : array_like, optional
        Shape ``(T,)``; default ``0, ..., T - 1``.
    causal : bool, default True
        Mask keys after the query.
    logn_length : int, optional
        Training length L for the log n scale; None disables it.
    attention_factor : float, default 1.0
        Multiplies q and k (logits by its square), as YaRN's factor in transformers.

    Returns
    -------
    torch.Tensor
        Shape ``(..., T, d_v)``.

    Raises
    ------
    TypeError
        If q, k or v is not a floating tensor.
    ValueError
        If shapes disagree or a scalar argument is out of range.

    Examples
    --------
    >>> q = k = v = torch.randn(5, 8)
    >>> rope_attention(q, k, v, rope_inv_freq(8)).shape
    torch.Size([5, 8])
    """
    q, k, v = _check_qkv(q, k, v)
    dim, length = q.shape[-1], q.shape[-2]
    attention_factor = check_real(attention_factor, "attention_factor", low=0.0)
    if logn_length is not None:
        logn_length = check_int(logn_length, "logn_length", minimum=2)
    freq = _check_inv_freq(inv_freq, dim, q.device, torch.float64)
    if freq.ndim == 2 and freq.shape[0] != length:
        raise ValueError(f"inv_freq of shape (T, d/2) must have T = {length} rows; got "
                         f"{tuple(freq.shape)}")
    pos = _as_positions(positions, length, q.device)
    if freq.ndim == 1:
        logits = apply_rope(q, pos, freq) @ apply_rope(k, pos, freq).transpose(-1, -2)
    else:
        logits = _relative_logits(q, k, pos[:, None] - pos[None, :], freq)
    return _finish_attention(logits, v, pos, causal, logn_length, dim, attention_factor)


def rerope_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, inv_freq: Any, *,
                     window: int, leak: float | None = None, positions: Any = None,
                     causal: bool = True, logn_length: int | None = None) -> torch.Tensor:
    """ReRoPE / leaky ReRoPE self-attention, by two attention-logit matrices (eq. ``rope-eq-rerope``).

    The relative position n - j is replaced by ``n - j`` inside the window (``|n - j| < w``) and
    by ``w`` outside it (ReRoPE), or by ``w + (n - j - w) / leak`` (leaky ReRoPE). It is
    computed as Su does, without forming relative positions: matrix 1 is ordinary RoPE
    ``(R_n q_n) . (R_j k_j)``; matrix 2 rotates the query to position ``w`` and leaves the
    key alone, ``(R_w q_n) . k_j`` (leaky: query at ``n / leak + w (1 - 1/leak)``, key at
    ``j / leak``); the logits take matrix 1 inside the window and matrix 2 outside.

    Parameters
    ----------
    q, k, v : torch.Tensor
        Shape ``(..., T, d)``; floating point.
    inv_freq : array_like
        Shape ``(d/2,)``.
    window : int
        The window w >= 1.
    leak : float, optional
        The leaky slope's inverse k > 1; None gives ReRoPE (k = infinity).
    positions : array_like, optional
        Shape ``(T,)``; default ``0, ..., T - 1``.
    causal : bool, default True
    logn_length : int, optional
        Training length L for the log n scale; None disables it.

    Returns
    -------
    torch.Tensor
        Shape ``(..., T, d_v)``.

    Raises
    ------
    TypeError
        If q, k or v is not a floating tensor.
    ValueError
        If ``window < 1``, ``leak <= 1``, or shapes disagree.

    Examples
    --------
    >>> q = k = v = torch.randn(6, 8)
    >>> rerope_attention(q, k, v, rope_inv_freq(8), window=2).shape
    torch.Size([6, 8])
    """
    q, k, v = _check_qkv(q, k, v)
    window = check_int(window, "window", minimum=1)
    if leak is not None:
        leak = check_real(leak, "leak", low=1.0)
    if logn_length is not None:
        logn_length = check_int(logn_length, "logn_length", minimum=2)
    dim, length = q.shape[-1], q.shape[-2]
    freq = _check_inv_freq(inv_freq, dim, q.device, torch.float64)
    if freq.ndim != 1:
        raise ValueError(f"inv_freq must have shape (d/2,) for ReRoPE; got {tuple(freq.shape)}")
    pos = _as_positions(positions, length, q.device)
    logits1 = apply_rope(q, pos, freq) @ apply_rope(k, pos, freq).transpose(-1, -2)
    if leak is None:
        q2 = apply_rope(q, torch.full_like(pos, float(window)), freq)
        k2 = k
    else:
        q2 = apply_rope(q, pos / leak + window * (1 - 1 / leak), freq)
        k2 = apply_rope(k, pos / leak, freq)
    logits2 = q2 @ k2.transpose(-1, -2)
    inside = (pos[:, None] - pos[None, :]).abs() < window
    logits = torch.where(inside, logits1, logits2)
    return _finish_attention(logits, v, pos, causal, logn_length, dim, 1.0)
