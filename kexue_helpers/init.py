"""Initialising non-square weight matrices: which average of fan-in and fan-out.

Defined in the chapter "Initialising non-square matrices: which average of fan-in and
fan-out?" (``book/rectangular_init.md``). A layer with ``fan_in`` inputs and ``fan_out``
outputs keeps the forward second moment with variance ``1/fan_in`` and the backward one with
``1/fan_out`` (eqs. ``ri-eq-forward`` and ``ri-eq-backward``); a single variance
``1/fan_avg`` must average the two fans, and this module offers three averages
(eqs. ``ri-eq-arith``, ``ri-eq-geo`` and ``ri-eq-quad``):

``"arithmetic"``
    (fan_in + fan_out) / 2, Glorot and Bengio's choice (``torch.nn.init.xavier_*``);
``"geometric"``
    sqrt(fan_in * fan_out), which keeps the end-to-end second moment of a stack that
    returns to its input width (corollary ``ri-cor-alt``);
``"quadratic"``
    (fan_in**2 + fan_out**2) / (fan_in + fan_out), the least-squares compromise.

Two one-sided controls complete :data:`RULES`: ``"fan_in"`` (LeCun's rule, He's with the
ReLU gain) and ``"fan_out"`` (its mirror image, the rule of Su's 2020 article in the
``y = x W`` convention used here).

Weights follow torch's layout ``[out, in, *kernel]`` and its fan rule, so
``rectangular_normal_(w, mean="arithmetic")`` draws exactly what
``torch.nn.init.xavier_normal_(w)`` draws, bit for bit with the same generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .core import check_choice, check_int, check_real, get_device, make_generator

__all__ = [
    "MEANS",
    "RULES",
    "ACTIVATIONS",
    "fan_in_and_fan_out",
    "fan_average",
    "rectangular_std",
    "rectangular_normal_",
    "rectangular_uniform_",
    "predicted_second_moments",
    "Propagation",
    "signal_propagation",
]

#: The three averages of fan-in and fan-out, in increasing order of the averaged fan.
MEANS: tuple[str, ...] = ("geometric", "arithmetic", "quadratic")
#: Every rule :func:`fan_average` knows: the three averages and the one-sided fans
#: (``"fan_in"``: LeCun / He; ``"fan_out"``: its mirror image).
RULES: tuple[str, ...] = MEANS + ("fan_in", "fan_out")
#: Activations understood by :func:`signal_propagation`.
ACTIVATIONS: tuple[str, ...] = ("linear", "tanh", "relu")
_DIRECTIONS = ("forward", "backward")


def _check_weight(tensor: object) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor; got {type(tensor).__name__}")
    if tensor.dim() < 2:
        raise ValueError("tensor must have at least 2 dimensions ([out, in, *kernel]) to "
                         f"define fan-in and fan-out; got shape {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise TypeError(f"tensor must have a floating dtype; got {tensor.dtype}")
    return tensor


def fan_in_and_fan_out(tensor: torch.Tensor) -> tuple[int, int]:
    """Fan-in and fan-out of a weight tensor, with torch's rule.

    For a weight of shape ``[out, in, k1, k2, ...]`` the receptive field is
    ``k1 * k2 * ...`` (1 for a matrix), ``fan_in = in * receptive`` and
    ``fan_out = out * receptive``: the same numbers as
    ``torch.nn.init._calculate_fan_in_and_fan_out``. In the chapter's notation
    (``y = x W`` with ``W`` of size m x n) these are m and n.

    Parameters
    ----------
    tensor : torch.Tensor
        A floating tensor with at least 2 dimensions.

    Returns
    -------
    (int, int)
        ``(fan_in, fan_out)``.

    Raises
    ------
    TypeError
        If ``tensor`` is not a floating torch tensor.
    ValueError
        If ``tensor`` has fewer than 2 dimensions.

    Examples
    --------
    >>> fan_in_and_fan_out(torch.empty(16, 256))
    (256, 16)
    >>> fan_in_and_fan_out(torch.empty(8, 3, 5, 5))
    (75, 200)
    """
    tensor = _check_weight(tensor)
    receptive = math.prod(tensor.shape[2:]) if tensor.dim() > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def fan_average(fan_in: int, fan_out: int, mean: str = "arithmetic") -> float:
    """Average of fan-in m and fan-out n that sets the variance 1/average.

    Parameters
    ----------
    fan_in : int
        Number of inputs m (times the receptive field for convolutions), at least 1.
    fan_out : int
        Number of outputs n, at least 1.
    mean : {"arithmetic", "geometric", "quadratic", "fan_in", "fan_out"}, default "arithmetic"
        ``"arithmetic"``: (m + n) / 2 (Xavier, eq. ``ri-eq-arith``);
        ``"geometric"``: sqrt(m n) (eq. ``ri-eq-geo``);
        ``"quadratic"``: (m^2 + n^2) / (m + n) (eq. ``ri-eq-quad``), the variance that
        minimises (m s^2 - 1)^2 + (n s^2 - 1)^2. The three satisfy
        quadratic >= arithmetic >= geometric, with equality when m = n
        (theorem ``ri-thm-order``). ``"fan_in"``: m (LeCun, He); ``"fan_out"``: n.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If a fan is not an integer.
    ValueError
        If a fan is smaller than 1 or ``mean`` is unknown.

    Examples
    --------
    >>> fan_average(256, 16), fan_average(256, 16, "geometric"), fan_average(256, 16, "quadratic")
    (136.0, 64.0, 241.88235294117646)
    >>> fan_average(256, 16, "fan_in"), fan_average(256, 16, "fan_out")
    (256.0, 16.0)
    """
    fan_in = check_int(fan_in, "fan_in", minimum=1)
    fan_out = check_int(fan_out, "fan_out", minimum=1)
    check_choice(mean, "mean", RULES)
    if mean == "fan_in":
        return float(fan_in)
    if mean == "fan_out":
        return float(fan_out)
    if mean == "arithmetic":
        return (fan_in + fan_out) / 2
    if mean == "geometric":
        return math.sqrt(fan_in * fan_out)
    return (fan_in * fan_in + fan_out * fan_out) / (fan_in + fan_out)


def rectangular_std(fan_in: int, fan_out: int, mean: str = "arithmetic",
                    gain: float = 1.0) -> float:
    """Standard deviation gain / sqrt(fan_average(fan_in, fan_out, mean)).

    With ``mean="arithmetic"`` this is the float that ``torch.nn.init.xavier_normal_``
    computes, gain * sqrt(2 / (fan_in + fan_out)), to the last bit.

    Parameters
    ----------
    fan_in, fan_out : int
        The fans, at least 1.
    mean : str, default "arithmetic"
        One of :data:`RULES`; see :func:`fan_average`.
    gain : float, default 1.0
        Positive factor: 1 for linear layers, sqrt(2) for ReLU (He et al.), 5/3 for tanh
        (``torch.nn.init.calculate_gain``).

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If a fan is not an integer or ``gain`` not a real number.
    ValueError
        If a fan is smaller than 1, ``mean`` is unknown or ``gain <= 0``.

    Examples
    --------
    >>> rectangular_std(300, 100, "geometric", gain=2.0) ** 2 * math.sqrt(300 * 100)
    4.0
    """
    gain = check_real(gain, "gain", low=0.0)
    return gain * math.sqrt(1.0 / fan_average(fan_in, fan_out, mean))


def _check_generator(generator: object) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None; got "
                        f"{type(generator).__name__}")
    return generator


def rectangular_normal_(tensor: torch.Tensor, mean: str = "arithmetic", gain: float = 1.0,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill ``tensor`` in place with N(0, std^2), std = gain / sqrt(fan_average).

    The fans follow torch's layout ``[out, in, *kernel]`` (:func:`fan_in_and_fan_out`);
    with ``mean="arithmetic"`` the draw is exactly ``torch.nn.init.xavier_normal_``'s
    (same numbers for the same generator state).

    Parameters
    ----------
    tensor : torch.Tensor
        Floating tensor with at least 2 dimensions; overwritten.
    mean : str, default "arithmetic"
        One of :data:`RULES`: which average of the fans sets the variance (eqs. ``ri-eq-arith``, ``ri-eq-geo``,
        ``ri-eq-quad``).
    gain : float, default 1.0
        Positive factor on the standard deviation.
    generator : torch.Generator, optional
        Source of randomness (on the tensor's device); default torch's global generator.

    Returns
    -------
    torch.Tensor
        ``tensor`` itself.

    Raises
    ------
    TypeError
        If ``tensor`` is not a floating tensor or ``generator`` not a generator.
    ValueError
        If ``tensor`` has fewer than 2 dimensions or a zero fan, ``mean`` is unknown or
        ``gain <= 0``.

    Examples
    --------
    >>> w = rectangular_normal_(torch.empty(64, 1024), mean="geometric",
    ...                         generator=torch.Generator().manual_seed(0))
    >>> round(float(w.var() * math.sqrt(64 * 1024)), 2)
    1.0
    """
    tensor = _check_weight(tensor)
    generator = _check_generator(generator)
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = rectangular_std(fan_in, fan_out, mean, gain)
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def rectangular_uniform_(tensor: torch.Tensor, mean: str = "arithmetic", gain: float = 1.0,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill ``tensor`` in place with U(-a, a), a = sqrt(3) * gain / sqrt(fan_average).

    The bound makes the variance a^2 / 3 = gain^2 / fan_average, the same as
    :func:`rectangular_normal_`; with ``mean="arithmetic"`` the draw is exactly
    ``torch.nn.init.xavier_uniform_``'s.

    Parameters
    ----------
    tensor : torch.Tensor
        Floating tensor with at least 2 dimensions; overwritten.
    mean : str, default "arithmetic"
        One of :data:`RULES`; see :func:`fan_average`.
    gain : float, default 1.0
        Positive factor on the standard deviation.
    generator : torch.Generator, optional
        Source of randomness; default torch's global generator.

    Returns
    -------
    torch.Tensor
        ``tensor`` itself.

    Raises
    ------
    TypeError
        If ``tensor`` is not a floating tensor or ``generator`` not a generator.
    ValueError
        If ``tensor`` has fewer than 2 dimensions or a zero fan, ``mean`` is unknown or
        ``gain <= 0``.

    Examples
    --------
    >>> w = rectangular_uniform_(torch.empty(10, 40), mean="quadratic",
    ...                          generator=torch.Generator().manual_seed(0))
    >>> bool(w.abs().max() <= math.sqrt(3 * 50 / (100 + 1600)))
    True
    """
    tensor = _check_weight(tensor)
    generator = _check_generator(generator)
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = rectangular_std(fan_in, fan_out, mean, gain)
    a = math.sqrt(3.0) * std
    with torch.no_grad():
        return tensor.uniform_(-a, a, generator=generator)


def _check_widths(widths: Sequence[int]) -> list[int]:
    try:
        items = list(widths)
    except TypeError as exc:
        raise TypeError(f"widths must be a sequence of integers; got "
                        f"{type(widths).__name__}") from exc
    if len(items) < 2:
        raise ValueError(f"widths must list at least 2 widths (input and output); got {items!r}")
    return [check_int(w, f"widths[{i}]", minimum=1) for i, w in enumerate(items)]


def predicted_second_moments(widths: Sequence[int], mean: str = "arithmetic",
                             direction: str = "forward") -> np.ndarray:
    """Second moments through a stack, predicted layer by layer (theorem ``ri-thm-stack``).

    Layer l maps width d_l to d_{l+1} with variance gain^2 / avg(d_l, d_{l+1}), where the
    gain compensates the activation (1 linear, 2 for ReLU in the second moment). In
    expectation each layer multiplies the per-unit forward second moment by
    d_l / avg and the per-unit backward one by d_{l+1} / avg
    (eq. ``ri-eq-stack``); in expectation the result is exact for linear and ReLU stacks,
    forward and backward (for ReLU backward by Hanin's path-sum computation).

    Parameters
    ----------
    widths : sequence of int
        d_0, d_1, ..., d_L, at least two widths, each at least 1.
    mean : str, default "arithmetic"
        One of :data:`RULES`: the average that sets each layer's variance.
    direction : {"forward", "backward"}, default "forward"
        ``"forward"``: E[z_l^2] / E[z_0^2] for l = 0..L (starts at 1);
        ``"backward"``: E[g_l^2] / E[g_L^2], the gradient with respect to the layer inputs
        (ends at 1).

    Returns
    -------
    numpy.ndarray, shape (L + 1,)

    Raises
    ------
    TypeError
        If a width is not an integer.
    ValueError
        If fewer than two widths are given, one is smaller than 1, or ``mean`` or
        ``direction`` is unknown.

    Examples
    --------
    >>> predicted_second_moments([256, 16, 256], "arithmetic")
    array([1.        , 1.88235294, 0.22145329])
    >>> predicted_second_moments([256, 16, 256], "geometric")
    array([1., 4., 1.])
    """
    d = _check_widths(widths)
    check_choice(mean, "mean", RULES)
    check_choice(direction, "direction", _DIRECTIONS)
    factors = [(d[i] if direction == "forward" else d[i + 1]) / fan_average(d[i], d[i + 1], mean)
               for i in range(len(d) - 1)]
    if direction == "forward":
        return np.concatenate([[1.0], np.cumprod(factors)])
    return np.concatenate([np.cumprod(factors[::-1])[::-1], [1.0]])


@dataclass(frozen=True)
class Propagation:
    """Per-unit second moments measured through a stack, one row per seed.

    Attributes
    ----------
    forward : numpy.ndarray
        Shape (n_seeds, L + 1): E[z_l^2] / E[z_0^2] for the pre-activations
        z_l = phi(z_{l-1}) W_{l-1}^T, averaged over units and batch, relative to the input's.
    backward : numpy.ndarray
        Shape (n_seeds, L + 1): E[g_l^2] / E[g_L^2] for g_l = dLoss/dz_l and the loss
        <z_L, u> with u standard normal.
    widths : tuple of int
        The widths d_0..d_L.
    """

    forward: np.ndarray
    backward: np.ndarray
    widths: tuple[int, ...]


def signal_propagation(widths: Sequence[int], mean: str = "arithmetic",
                       activation: str = "linear", *, gain: float | None = None,
                       batch: int = 256, n_seeds: int = 8, seed: int = 0,
                       device: str | torch.device | None = None) -> Propagation:
    """Measure forward and backward second moments through a random stack, layer by layer.

    The stack is z_0 = x, z_{l+1} = phi(z_l) W_l^T with W_l of shape [d_{l+1}, d_l] drawn by
    :func:`rectangular_normal_` and x of i.i.d. N(0, 1) entries. Applying phi before each
    layer (also to the input) makes E[z_{l+1}^2] = d_l s_l^2 E[phi(z_l)^2] hold at every
    layer, so the measurement compares directly with :func:`predicted_second_moments`.
    Seed ``seed + k`` draws the k-th network and its data on the CPU, so a seed gives the
    same numbers on every device; the networks run together on ``device``.

    Parameters
    ----------
    widths : sequence of int
        d_0, ..., d_L.
    mean : str, default "arithmetic"
        One of :data:`RULES`: the average of the fans (see :func:`fan_average`).
    activation : {"linear", "tanh", "relu"}, default "linear"
        phi.
    gain : float, optional
        Default ``torch.nn.init.calculate_gain(activation)``: 1, 5/3, sqrt(2).
    batch : int, default 256
        Inputs per network.
    n_seeds : int, default 8
        Independent networks.
    seed : int, default 0
        Seed of the first network.
    device : str or torch.device, optional
        Default :func:`kexue_helpers.core.get_device`.

    Returns
    -------
    Propagation

    Raises
    ------
    TypeError
        If a width, ``batch``, ``n_seeds`` or ``seed`` is not an integer.
    ValueError
        If the widths are invalid, ``mean`` or ``activation`` is unknown, ``gain <= 0``,
        ``batch`` or ``n_seeds`` is smaller than 1 or ``seed`` is negative.

    Examples
    --------
    >>> p = signal_propagation([64, 16, 64], "geometric", batch=32, n_seeds=2, device="cpu")
    >>> p.forward.shape, p.backward.shape
    ((2, 3), (2, 3))
    """
    d = _check_widths(widths)
    check_choice(mean, "mean", RULES)
    check_choice(activation, "activation", ACTIVATIONS)
    gain = (torch.nn.init.calculate_gain(activation) if gain is None
            else check_real(gain, "gain", low=0.0))
    batch = check_int(batch, "batch", minimum=1)
    n_seeds = check_int(n_seeds, "n_seeds", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    dev = get_device(device)
    phi = {"linear": lambda t: t, "tanh": torch.tanh, "relu": torch.relu}[activation]

    xs, ws = [], [[] for _ in range(len(d) - 1)]
    for k in range(n_seeds):
        gen = make_generator(seed + k)
        xs.append(torch.randn(batch, d[0], generator=gen))
        for i in range(len(d) - 1):
            ws[i].append(rectangular_normal_(torch.empty(d[i + 1], d[i]), mean, gain, gen))
    z = torch.stack(xs).to(dev).requires_grad_(True)
    weights = [torch.stack(w).to(dev) for w in ws]
    zs = [z]
    for w in weights:
        z = torch.bmm(phi(z), w.transpose(1, 2))
        z.retain_grad()
        zs.append(z)
    gen = make_generator(seed + n_seeds)
    u = torch.randn(n_seeds, batch, d[-1], generator=gen).to(dev)
    (z * u).sum().backward()
    fwd = torch.stack([t.detach().square().mean(dim=(1, 2)) for t in zs], dim=1)
    bwd = torch.stack([t.grad.square().mean(dim=(1, 2)) for t in zs], dim=1)
    fwd = (fwd / fwd[:, :1]).double().cpu().numpy()
    bwd = (bwd / bwd[:, -1:]).double().cpu().numpy()
    return Propagation(forward=fwd, backward=bwd, widths=tuple(d))
