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

The chapter's extrapolation experiment is built from :func:`kv_copy_batch` (a task with a
local and a long-range channel), :class:`SeedBatchedLM` (several seeds trained as one
batched network, :func:`train_lm`), :func:`scheme_attention` (every scheme as an attention
function on the same weights), :func:`extrapolation_scores` and :func:`paired_interval`.
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
    "SCHEME_KINDS",
    "YARN_REFERENCE_LENGTH",
    "kv_copy_batch",
    "kv_copy_vocab",
    "kv_copy_features",
    "SeedBatchedLM",
    "scheme_attention",
    "leaky_rerope_min_leak",
    "train_lm",
    "paired_interval",
    "extrapolation_scores",
    "stack_batches",
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


def logn_scale(positions: Any, train_length: int, *, clamp: bool = True) -> torch.Tensor:
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
    clamp : bool, default True
        True: ``max(1, ln(n + 1) / ln L)``, Su's log n dagger for a model trained without
        the scale. False: ``ln(n + 1) / ln L`` at every position, the scale of a model
        trained with it (article 8823's ``log_512 n``).

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
    if not isinstance(clamp, bool):
        raise TypeError(f"clamp must be a bool; got {clamp!r}")
    out = torch.log(pos + 1) / math.log(train_length)
    return (out.clamp(min=1.0) if clamp else out).to(torch.float32)


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
                      attention_factor: float, logn_clamp: bool = True) -> torch.Tensor:
    logits = logits * (attention_factor**2 / math.sqrt(dim))
    if logn_length is not None:
        scale = logn_scale(pos.cpu(), logn_length, clamp=logn_clamp)
        logits = logits * scale.to(logits)[:, None]
    if causal:
        future = pos[None, :] > pos[:, None]
        logits = logits.masked_fill(future, float("-inf"))
    return torch.softmax(logits, dim=-1) @ v


def rope_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, inv_freq: Any, *,
                   positions: Any = None, causal: bool = True, logn_length: int | None = None,
                   attention_factor: float = 1.0, logn_clamp: bool = True) -> torch.Tensor:
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
    logn_clamp : bool, default True
        Passed to :func:`logn_scale` as ``clamp``.

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
    return _finish_attention(logits, v, pos, causal, logn_length, dim, attention_factor,
                             logn_clamp)


def rerope_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, inv_freq: Any, *,
                     window: int, leak: float | None = None, positions: Any = None,
                     causal: bool = True, logn_length: int | None = None,
                     logn_clamp: bool = True) -> torch.Tensor:
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
    logn_clamp : bool, default True
        Passed to :func:`logn_scale` as ``clamp``.

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
    return _finish_attention(logits, v, pos, causal, logn_length, dim, 1.0, logn_clamp)


# --------------------------------------------------------------------------------------
# The extrapolation experiment of the chapter: a two-channel task, a small RoPE transformer
# trained for several seeds at once, and every context-extension scheme as an attention
# function on the same trained weights.
# --------------------------------------------------------------------------------------
#: The inference-time schemes :func:`scheme_attention` knows, with their parameters.
SCHEME_KINDS: tuple[str, ...] = ("none", "pi", "ntk-old", "ntk", "ntk-fixed", "ntk-mixed",
                                 "yarn", "rerope", "leaky-rerope")
#: YaRN's training length in the paper's Llama 2 setting; betas are rescaled by L / this.
YARN_REFERENCE_LENGTH = 4096


def kv_copy_batch(n: int, length: int, *, n_ordinary: int, n_keys: int, n_values: int,
                  n_pairs: int, offset: int, queries_per_pair: int = 1,
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """A batch of the chapter's two-channel task: local copying plus key-value retrieval.

    Token ids: ``0 .. n_ordinary - 1`` are ordinary tokens (the values are the first
    ``n_values`` of them); ``n_ordinary + a * n_values + v`` is the pair token "key a has
    value v"; ``n_ordinary + n_keys * n_values + a`` is the query "value of key a?".
    Each sequence holds ``n_pairs`` pair tokens with distinct keys and random values; each
    is queried ``queries_per_pair`` times later (the pair and its queries take a random
    set of free positions, the pair first); every other position holds a random ordinary
    token.

    Targets (in ``0 .. n_ordinary - 1``, ``-100`` where there is none):

    * at a query, the value of its key, wherever the key is (the *retrieval* channel, the
      analogue of the articles' "repeat" test); ``distance`` is query position minus key
      position;
    * elsewhere, the token ``offset`` positions back when that token is ordinary (the
      *local* channel, like the articles' "no-repeat" test, which depends mostly on nearby
      tokens).

    Parameters
    ----------
    n : int
        Number of sequences.
    length : int
        Sequence length; more than ``(1 + queries_per_pair) * n_pairs + offset``.
    n_ordinary, n_keys, n_values, n_pairs, offset, queries_per_pair : int
        Vocabulary sizes (``2 <= n_values <= n_ordinary``), pairs per sequence
        (``n_pairs <= n_keys``), the copying offset (>= 1) and queries per pair (>= 1).
    generator : torch.Generator, optional

    Returns
    -------
    dict
        ``tokens`` (n, length) int64; ``target`` (n, length) int64; ``retrieval`` (n, length)
        bool (query positions); ``distance`` (n, length) int64 (-1 off the queries).

    Raises
    ------
    ValueError
        If a size is out of range.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> b = kv_copy_batch(2, 16, n_ordinary=8, n_keys=4, n_values=4, n_pairs=3,
    ...                   offset=2, generator=g)
    >>> int(b["retrieval"].sum())
    6
    """
    n = check_int(n, "n", minimum=1)
    n_ordinary = check_int(n_ordinary, "n_ordinary", minimum=2)
    n_keys = check_int(n_keys, "n_keys", minimum=1)
    n_values = check_int(n_values, "n_values", minimum=2, maximum=n_ordinary)
    n_pairs = check_int(n_pairs, "n_pairs", minimum=0, maximum=n_keys)
    offset = check_int(offset, "offset", minimum=1)
    qpp = check_int(queries_per_pair, "queries_per_pair", minimum=1)
    group = 1 + qpp
    length = check_int(length, "length", minimum=group * n_pairs + offset + 1)
    pair0 = n_ordinary
    query0 = n_ordinary + n_keys * n_values
    tokens = torch.randint(0, n_ordinary, (n, length), generator=generator)
    retrieval = torch.zeros(n, length, dtype=torch.bool)
    distance = torch.full((n, length), -1, dtype=torch.int64)
    target = torch.full((n, length), -100, dtype=torch.int64)
    if n_pairs:
        slots = torch.rand(n, length, generator=generator).argsort(dim=1)[:, : group * n_pairs]
        slots = slots.view(n, n_pairs, group).sort(dim=2).values       # the pair comes first
        keys = torch.rand(n, n_keys, generator=generator).argsort(dim=1)[:, :n_pairs]
        values = torch.randint(0, n_values, (n, n_pairs), generator=generator)
        rows = torch.arange(n)[:, None].expand(n, n_pairs)
        kpos = slots[..., 0]
        tokens[rows, kpos] = pair0 + keys * n_values + values
        for j in range(1, group):
            qpos = slots[..., j]
            tokens[rows, qpos] = query0 + keys
            retrieval[rows, qpos] = True
            distance[rows, qpos] = qpos - kpos
            target[rows, qpos] = values
    back = tokens[:, :-offset]
    local = (back < n_ordinary) & ~retrieval[:, offset:]
    target[:, offset:] = torch.where(local, back, target[:, offset:])
    return {"tokens": tokens, "target": target, "retrieval": retrieval, "distance": distance}


def kv_copy_vocab(n_ordinary: int, n_keys: int, n_values: int) -> int:
    """The number of token ids of :func:`kv_copy_batch`: ordinary, pair and query tokens.

    Examples
    --------
    >>> kv_copy_vocab(16, 8, 8)
    88
    """
    n_ordinary = check_int(n_ordinary, "n_ordinary", minimum=2)
    n_keys = check_int(n_keys, "n_keys", minimum=1)
    n_values = check_int(n_values, "n_values", minimum=2)
    return n_ordinary + n_keys * n_values + n_keys


def kv_copy_features(n_ordinary: int, n_keys: int, n_values: int) -> torch.Tensor:
    """Factorised embedding rows for the tokens of :func:`kv_copy_batch`.

    Returns an int64 tensor ``(vocab, 3)``: an ordinary token t uses rows (t, null, null);
    the pair token "key a has value v" uses (v, pair marker, key a): its value *is* the
    ordinary token v; the query for key a uses (null, query marker, key a). Rows:
    ``0 .. n_ordinary - 1`` ordinary, then the null row, the two markers and the
    ``n_keys`` keys. For :class:`SeedBatchedLM`'s ``features``.

    Examples
    --------
    >>> kv_copy_features(4, 2, 2).tolist()[4]
    [0, 5, 7]
    """
    n_ordinary = check_int(n_ordinary, "n_ordinary", minimum=2)
    n_keys = check_int(n_keys, "n_keys", minimum=1)
    n_values = check_int(n_values, "n_values", minimum=2, maximum=n_ordinary)
    null, pair, query, key0 = n_ordinary, n_ordinary + 1, n_ordinary + 2, n_ordinary + 3
    rows = [[t, null, null] for t in range(n_ordinary)]
    rows += [[v, pair, key0 + a] for a in range(n_keys) for v in range(n_values)]
    rows += [[null, query, key0 + a] for a in range(n_keys)]
    return torch.tensor(rows, dtype=torch.int64)


class SeedBatchedLM(torch.nn.Module):
    """``n_models`` independent pre-LN RoPE transformers evaluated as one batched network.

    Every weight carries a leading axis of size ``n_models`` (one slice per seed), so one
    forward pass runs all seeds; slice ``s`` is initialised from ``seeds[s]`` alone, hence
    a model does not depend on which other seeds are trained beside it. The attention is
    passed to :meth:`forward` as a function ``attention(q, k, v)`` of tensors of shape
    ``(n_models, batch, heads, T, head_dim)``, so the same weights can be read with any
    context-extension scheme (:func:`scheme_attention`).

    Parameters
    ----------
    seeds : sequence of int
        One seed per model.
    vocab, n_out : int
        Input vocabulary and number of output classes.
    head_dim, heads, layers : int
        Head dimension (even), heads per layer, layers.
    d_model : int, optional
        Width of the residual stream; default ``heads * head_dim``. The attention projects
        it to ``heads * head_dim`` and back.
    mlp : bool, default False
        Add a GELU MLP (width 4 d_model) after each attention.
    features : torch.Tensor, optional
        Integer ``(vocab, F)``: token t is embedded as the sum of ``F`` rows
        ``features[t]`` of one table (a factorised embedding, e.g.
        :func:`kv_copy_features`); default: one row per token.

    Raises
    ------
    ValueError
        If a size is out of range or ``head_dim`` is odd.
    """

    def __init__(self, seeds: Any, vocab: int, n_out: int, head_dim: int, heads: int = 1,
                 layers: int = 1, mlp: bool = False, features: Any = None,
                 d_model: int | None = None) -> None:
        super().__init__()
        seeds = [check_int(s, "seeds[i]", minimum=0) for s in seeds]
        if not seeds:
            raise ValueError("seeds must name at least one seed; got an empty sequence")
        vocab = check_int(vocab, "vocab", minimum=2)
        n_out = check_int(n_out, "n_out", minimum=2)
        head_dim = check_int(head_dim, "head_dim", minimum=2)
        if head_dim % 2:
            raise ValueError(f"head_dim must be even (RoPE rotates pairs); got {head_dim!r}")
        self.heads = check_int(heads, "heads", minimum=1)
        self.layers = check_int(layers, "layers", minimum=1)
        self.head_dim, self.mlp = head_dim, bool(mlp)
        inner = self.heads * head_dim
        d = inner if d_model is None else check_int(d_model, "d_model", minimum=2)
        s = len(seeds)

        def init(shape: tuple[int, ...], fan_in: int) -> torch.nn.Parameter:
            out = torch.empty(s, *shape)
            for i, seed in enumerate(seeds):
                g = torch.Generator().manual_seed(seed * 1000 + init.count)
                out[i] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
            init.count += 1
            return torch.nn.Parameter(out)

        init.count = 0  # type: ignore[attr-defined]
        if features is None:
            features = torch.arange(vocab)[:, None]
        features = as_tensor(features, "features", ndim=2, dtype=torch.int64, device="cpu")
        if features.shape[0] != vocab or bool((features < 0).any()):
            raise ValueError(f"features must have shape (vocab, F) = ({vocab}, F) with "
                             f"non-negative entries; got shape {tuple(features.shape)}")
        self.register_buffer("features", features)
        self.emb = init((int(features.max()) + 1, d), 1)
        self.qkv = torch.nn.ParameterList(init((d, 3 * inner), d) for _ in range(layers))
        self.out = torch.nn.ParameterList(init((inner, d), inner) for _ in range(layers))
        if self.mlp:
            self.up = torch.nn.ParameterList(init((d, 4 * d), d) for _ in range(layers))
            self.down = torch.nn.ParameterList(init((4 * d, d), 4 * d) for _ in range(layers))
        self.unemb = init((d, n_out), d)

    def forward(self, tokens: torch.Tensor, attention: Any) -> torch.Tensor:
        """Logits of shape ``(n_models, batch, T, n_out)`` for tokens ``(n_models, batch, T)``."""
        s, b, t = tokens.shape
        idx = torch.arange(s, device=tokens.device)[:, None, None, None]
        h = self.emb[idx, self.features[tokens]].sum(-2)             # (s, b, t, d)
        norm = torch.nn.functional.layer_norm
        for layer in range(self.layers):
            x = norm(h, h.shape[-1:])
            qkv = torch.einsum("sbtd,sde->sbte", x, self.qkv[layer])
            qkv = qkv.view(s, b, t, 3, self.heads, self.head_dim).permute(3, 0, 1, 4, 2, 5)
            a = attention(qkv[0], qkv[1], qkv[2])                     # (s, b, h, t, hd)
            a = a.transpose(2, 3).reshape(s, b, t, -1)
            h = h + torch.einsum("sbtd,sde->sbte", a, self.out[layer])
            if self.mlp:
                x = norm(h, h.shape[-1:])
                up = torch.nn.functional.gelu(torch.einsum("sbtd,sde->sbte", x, self.up[layer]))
                h = h + torch.einsum("sbte,sed->sbtd", up, self.down[layer])
        return torch.einsum("sbtd,sdo->sbto", norm(h, h.shape[-1:]), self.unemb)


def scheme_attention(kind: str, head_dim: int, train_length: int, test_length: int, *,
                     logn: str | None = None, base: float = 10000.0, b: float = 0.625,
                     window: int | None = None, leak: float | None = None,
                     device: Any = "cpu") -> Any:
    """The attention function ``(q, k, v) -> out`` of one context-extension scheme.

    The factor is ``k = test_length / train_length``. Kinds: ``"none"`` (extrapolation),
    ``"pi"`` (interpolation), ``"ntk-old"`` (base * k, Su's base conversion
    lambda = k**(2/d)), ``"ntk"`` (bloc97, base * k**(d/(d-2))), ``"ntk-fixed"``,
    ``"ntk-mixed"`` (with ``b``), ``"yarn"`` (ramp set for ``train_length``, with beta_fast
    and beta_slow rescaled by ``train_length / YARN_REFERENCE_LENGTH`` so that the ramp
    covers the same digits as in YaRN's Llama 2 setting, and YaRN's attention factor),
    ``"rerope"`` (needs ``window``) and ``"leaky-rerope"`` (needs ``window`` and ``leak``).

    Parameters
    ----------
    kind : str
        One of :data:`SCHEME_KINDS`.
    head_dim : int
        The rotary dimension d.
    train_length, test_length : int
        L and the length read, ``test_length >= train_length``.
    logn : {None, "inference", "trained"}
        None: no log n scale. ``"inference"``: Su's log n dagger,
        ``max(1, log_L(n + 1))`` for a model trained without it. ``"trained"``:
        ``log_L(n + 1)`` at every position, the scale a model trained with log n uses.
    base : float, default 10000.0
    b : float, default 0.625
        The mixed base's exponent, ``0 <= b <= 1``.
    window : int, optional
        ReRoPE's window w, ``1 <= w <= test_length``.
    leak : float, optional
        Leaky ReRoPE's k > 1.
    device : str or torch.device, default "cpu"

    Returns
    -------
    callable
        ``attention(q, k, v)`` for tensors ``(..., T, head_dim)``, causal.

    Raises
    ------
    ValueError
        If ``kind`` or ``logn`` is unknown, or a parameter is missing or out of range.

    Examples
    --------
    >>> att = scheme_attention("ntk", 8, 16, 64)
    >>> att(torch.ones(64, 8), torch.ones(64, 8), torch.ones(64, 8)).shape
    torch.Size([64, 8])
    """
    check_choice(kind, "kind", SCHEME_KINDS)
    check_choice(logn, "logn", (None, "inference", "trained"))
    head_dim, base = _check_dim_base(head_dim, base)
    train_length = check_int(train_length, "train_length", minimum=2)
    test_length = check_int(test_length, "test_length", minimum=train_length)
    b = check_real(b, "b", low=0.0, high=1.0, low_open=False, high_open=False)
    k = test_length / train_length
    logn_length = None if logn is None else train_length
    clamp = logn != "trained"
    if kind in ("rerope", "leaky-rerope"):
        if window is None:
            raise ValueError(f"kind={kind!r} needs window; got None")
        window = check_int(window, "window", minimum=1, maximum=test_length)
        if kind == "leaky-rerope":
            if leak is None:
                raise ValueError("kind='leaky-rerope' needs leak; got None")
            leak = check_real(leak, "leak", low=1.0)
        else:
            leak = None
        freq = rope_inv_freq(head_dim, base).to(device)
        return lambda q, kk, v: rerope_attention(q, kk, v, freq, window=window, leak=leak,
                                                 logn_length=logn_length, logn_clamp=clamp)
    factor = 1.0
    if kind == "none" or k == 1.0:
        freq = rope_inv_freq(head_dim, base)
    elif kind == "pi":
        freq = rope_inv_freq(head_dim, base, scaling="linear", factor=k)
    elif kind == "ntk-old":
        freq = rope_inv_freq(head_dim, base * k)
    elif kind == "yarn":
        r = train_length / YARN_REFERENCE_LENGTH
        freq = rope_inv_freq(head_dim, base, scaling="yarn", factor=k,
                             original_max_position=train_length, beta_fast=32.0 * r,
                             beta_slow=1.0 * r)
        factor = yarn_attention_factor(k)
    else:
        extra = {"b": b} if kind == "ntk-mixed" else {}
        freq = rope_inv_freq(head_dim, base, scaling=kind, factor=k, **extra)
    freq = freq.to(device)
    return lambda q, kk, v: rope_attention(q, kk, v, freq, logn_length=logn_length,
                                           attention_factor=factor, logn_clamp=clamp)


def leaky_rerope_min_leak(window: int, train_length: int, test_length: int) -> float:
    """The smallest k for which leaky ReRoPE keeps every relative position below L.

    The largest relative position at length T is ``w + (T - 1 - w) / k``; it stays at most
    ``L - 1``, the largest distance seen in training, iff ``k >= (T - 1 - w) / (L - 1 - w)``
    (the article's condition "所有位置编码不超过训练长度").

    Parameters
    ----------
    window, train_length, test_length : int
        w < L - 1, L and T >= L.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``window >= train_length - 1`` or ``test_length < train_length``.

    Examples
    --------
    >>> round(leaky_rerope_min_leak(128, 512, 4096), 2)
    10.36
    """
    train_length = check_int(train_length, "train_length", minimum=3)
    window = check_int(window, "window", minimum=1, maximum=train_length - 2)
    test_length = check_int(test_length, "test_length", minimum=train_length)
    return (test_length - 1 - window) / (train_length - 1 - window)


def train_lm(model: SeedBatchedLM, batch_fn: Any, *, steps: int, lr: float,
             train_length: int, logn: bool = False, device: Any = "cpu") -> list[float]:
    """Train every seed of ``model`` with Adam on batches from ``batch_fn(step)``.

    ``batch_fn(step)`` returns ``(tokens, target)`` of shape ``(n_models, batch, T)``. The
    loss is the sum over models of each model's mean cross-entropy, so the models do not
    interact (Adam is per coordinate). Attention is plain RoPE (base 10000), with the
    trained-in log n scale ``log_L(n + 1)`` when ``logn`` is true.

    Parameters
    ----------
    model : SeedBatchedLM
    batch_fn : callable
    steps : int
    lr : float
        Peak learning rate; linear warm-up over the first 10% of steps, then cosine decay.
    train_length : int
        L (for the log n scale).
    logn : bool, default False
    device : str or torch.device, default "cpu"

    Returns
    -------
    list of float
        The summed loss at each step, divided by the number of models.

    Raises
    ------
    ValueError
        If ``steps < 1`` or ``lr <= 0``.
    """
    steps = check_int(steps, "steps", minimum=1)
    lr = check_real(lr, "lr", low=0.0)
    train_length = check_int(train_length, "train_length", minimum=2)
    attention = scheme_attention("none", model.head_dim, train_length, train_length,
                                 logn="trained" if logn else None, device=device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min((i + 1) / warm, 0.5 * (1 + math.cos(math.pi * i / steps))))
    losses = []
    n_models = model.emb.shape[0]
    model.train()
    for step in range(steps):
        tokens, target = batch_fn(step)
        logits = model(tokens.to(device), attention)
        loss = torch.nn.functional.cross_entropy(
            logits.flatten(1, 2).transpose(1, 2), target.to(device).flatten(1), ignore_index=-100,
            reduction="none")
        per_model = loss.sum(1) / (target != -100).flatten(1).sum(1).clamp(min=1).to(loss)
        opt.zero_grad()
        per_model.sum().backward()
        opt.step()
        sched.step()
        losses.append(float(per_model.detach().sum()) / n_models)
    return losses


def paired_interval(a: Any, b: Any, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and t-interval of the paired differences ``a - b`` (one pair per seed).

    Parameters
    ----------
    a, b : array_like
        Same shape ``(n,)``, n >= 2: the two schemes' scores on the same seeds.
    level : float, default 0.95

    Returns
    -------
    (mean, low, high) : tuple of float

    Raises
    ------
    ValueError
        If shapes differ, n < 2 or ``level`` is not in (0, 1).

    Examples
    --------
    >>> m, lo, hi = paired_interval([0.9, 0.8, 0.85], [0.5, 0.55, 0.45])
    >>> round(m, 3), lo > 0
    (0.35, True)
    """
    from scipy import stats

    level = check_real(level, "level", low=0.0, high=1.0)
    x = as_tensor(a, "a", ndim=1, dtype=torch.float64, device="cpu")
    y = as_tensor(b, "b", ndim=1, dtype=torch.float64, device="cpu")
    if x.shape != y.shape or x.shape[0] < 2:
        raise ValueError(f"a and b must have the same shape (n,) with n >= 2; got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    d = (x - y).numpy()
    n = d.shape[0]
    mean = float(d.mean())
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * d.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


@torch.no_grad()
def extrapolation_scores(model: SeedBatchedLM, batch: dict[str, torch.Tensor],
                         attention: Any, *, bins: Any, chunk: int = 8,
                         device: Any = "cpu") -> dict[str, Any]:
    """Per-model accuracies of ``model`` read with ``attention`` on a batch of the task.

    Parameters
    ----------
    model : SeedBatchedLM
    batch : dict
        :func:`kv_copy_batch` outputs stacked to shape ``(n_models, n, T)``.
    attention : callable
        From :func:`scheme_attention`.
    bins : sequence of (int, int)
        Distance bins ``[low, high)`` for the retrieval accuracy.
    chunk : int, default 8
        Sequences per forward pass (bounds the memory of the T x T logits).
    device : str or torch.device, default "cpu"

    Returns
    -------
    dict
        ``local`` (n_models,): accuracy on the local channel over all positions;
        ``retrieval`` (n_models,): over all queries; ``bins`` (n_models, len(bins)): per
        distance bin (NaN where a bin is empty). NumPy arrays.

    Raises
    ------
    ValueError
        If the batch's shapes do not match the model or ``chunk < 1``.
    """
    chunk = check_int(chunk, "chunk", minimum=1)
    tokens, target = batch["tokens"], batch["target"]
    n_models = model.emb.shape[0]
    if tokens.ndim != 3 or tokens.shape[0] != n_models:
        raise ValueError(f"batch['tokens'] must have shape (n_models={n_models}, n, T); got "
                         f"{tuple(tokens.shape)}")
    model.eval()
    preds = []
    for start in range(0, tokens.shape[1], chunk):
        logits = model(tokens[:, start:start + chunk].to(device), attention)
        preds.append(logits.argmax(-1).cpu())
    ok = torch.cat(preds, dim=1) == target
    ret = batch["retrieval"]
    loc = (target != -100) & ~ret

    def rate(mask: torch.Tensor) -> Any:
        hits = (ok & mask).sum((1, 2)).double()
        total = mask.sum((1, 2)).double()
        return (hits / total).numpy()

    per_bin = [rate(ret & (batch["distance"] >= lo) & (batch["distance"] < hi))
               for lo, hi in bins]
    import numpy as np
    return {"local": rate(loc), "retrieval": rate(ret), "bins": np.stack(per_bin, axis=1)}


def stack_batches(batches: Any) -> dict[str, torch.Tensor]:
    """Stack a list of :func:`kv_copy_batch` outputs (one per model) along a new axis 0.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> bs = [kv_copy_batch(2, 16, n_ordinary=8, n_keys=4, n_values=4, n_pairs=2,
    ...                     offset=2, generator=g) for _ in range(3)]
    >>> stack_batches(bs)["tokens"].shape
    torch.Size([3, 2, 16])
    """
    batches = list(batches)
    if not batches:
        raise ValueError("batches must hold at least one batch; got none")
    return {key: torch.stack([b[key] for b in batches]) for key in batches[0]}
