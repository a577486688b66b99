"""Initialisation, parameterisation and normalisation of Transformers: the closed forms.

Defined in the chapter "Why BERT initialises with standard deviation 0.02"
(``book/transformer_init.md``), after Su Jianlin's articles https://kexue.fm/archives/8747
and https://kexue.fm/archives/8620.

Conventions
-----------
*Truncated normal.* TensorFlow's ``tf.random.truncated_normal(shape, mean, stddev)`` (and
``tf.truncated_normal_initializer``, used by the original BERT) draws from ``N(mean,
stddev^2)`` and redraws every value farther than ``2 * stddev`` from the mean: the bounds
are in *units of stddev*. Its standard deviation is therefore ``stddev * sqrt(gamma)``
with ``gamma = truncnorm_variance_factor(-2, 2) = 0.7737413...``. PyTorch's
``torch.nn.init.trunc_normal_(w, mean, std, a, b)`` takes *absolute* bounds ``a, b``
(default -2, 2), so ``trunc_normal_(w, std=0.02)`` truncates nothing. TensorFlow is not a
dependency of this book: the chapter reproduces its convention with
``trunc_normal_(w, std=s, a=-2 * s, b=2 * s)`` and with ``scipy.stats.truncnorm``.

*Second moments.* All propagation formulas are for second (raw) moments ``E[x^2]``, as in
the articles; no assumption is made on the mean of the inputs.

*GELU* is the exact form ``x * Phi(x)`` (PyTorch's default, Hugging Face's ``"gelu"``).
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Sequence, Union

import numpy as np
from scipy import integrate, optimize, special, stats

from .core import check_choice, check_int, check_real

__all__ = [
    "ACTIVATIONS",
    "truncnorm_variance_factor",
    "tf_truncated_normal_effective_std",
    "stddev_for_effective_std",
    "activation_second_moment",
    "selu_constants",
    "ffn_branch_second_moment",
    "postnorm_path_weights",
    "ntk_equivalent_adam",
]

ActivationLike = Union[str, Callable[[np.ndarray], np.ndarray]]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return special.expit(x)


def _gelu(x: np.ndarray) -> np.ndarray:
    return x * special.ndtr(x)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


# SELU with PyTorch's constants (the same as Klambauer et al.'s, to float64 precision);
# :func:`selu_constants` recomputes them from their defining equations.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _selu(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0.0)))


#: The activations known by name to :func:`activation_second_moment` and
#: :func:`ffn_branch_second_moment`.
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "gelu": _gelu,
    "relu": _relu,
    "selu": _selu,
}


def _check_nan(value: float, name: str) -> float:
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be a real number or +-inf, not NaN; got {value!r}")
    return value


def truncnorm_variance_factor(a: float = -2.0, b: float = 2.0) -> float:
    """Variance of the standard normal truncated to ``[a, b]``.

    With ``phi`` and ``Phi`` the standard normal density and distribution function and
    ``Z = Phi(b) - Phi(a)``, the variance is

        1 + (a phi(a) - b phi(b)) / Z - ((phi(a) - phi(b)) / Z)^2,

    which for ``a = -b = -2`` is ``gamma = 1 - 4 phi(2) / (Phi(2) - Phi(-2)) = 0.7737413...``,
    the factor by which TensorFlow's truncated normal shrinks the variance.

    Parameters
    ----------
    a, b : float, default -2.0, 2.0
        Truncation bounds in units of the standard deviation; ``-inf`` / ``inf`` allowed.

    Returns
    -------
    float
        The variance, in ``(0, 1]``.

    Raises
    ------
    ValueError
        If ``a`` or ``b`` is NaN or ``a >= b``.

    Examples
    --------
    >>> round(truncnorm_variance_factor(), 7)
    0.7737413
    """
    a, b = _check_nan(a, "a"), _check_nan(b, "b")
    if not a < b:
        raise ValueError(f"a must be smaller than b; got a={a!r}, b={b!r}")
    if a > 0:  # reflect into the left tail, where ndtr(b) - ndtr(a) does not cancel
        a, b = -b, -a
    z = special.ndtr(b) - special.ndtr(a)
    if z <= 0:  # both bounds far in one tail: use the tail formula via scipy
        return float(stats.truncnorm(a, b).var())
    pa, pb = stats.norm.pdf(a), stats.norm.pdf(b)
    apa = 0.0 if math.isinf(a) else a * pa
    bpb = 0.0 if math.isinf(b) else b * pb
    mean = (pa - pb) / z
    return float(1.0 + (apa - bpb) / z - mean * mean)


def tf_truncated_normal_effective_std(stddev: float, bound: float = 2.0) -> float:
    """Standard deviation of TensorFlow's truncated normal with parameter ``stddev``.

    TensorFlow redraws values outside ``mean +- bound * stddev`` (``bound = 2``, fixed in
    ``tf.random.truncated_normal``), so the result has standard deviation
    ``stddev * sqrt(truncnorm_variance_factor(-bound, bound))``.

    Parameters
    ----------
    stddev : float
        The ``stddev`` argument passed to TensorFlow; > 0.
    bound : float, default 2.0
        Truncation half-width in units of ``stddev``; > 0.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``stddev <= 0`` or ``bound <= 0`` (or either is not finite).

    Examples
    --------
    >>> round(tf_truncated_normal_effective_std(0.02), 6)   # BERT's initialiser
    0.017593
    """
    stddev = check_real(stddev, "stddev", low=0.0)
    bound = check_real(bound, "bound", low=0.0)
    return stddev * math.sqrt(truncnorm_variance_factor(-bound, bound))


def stddev_for_effective_std(target: float, bound: float = 2.0) -> float:
    """The ``stddev`` to pass to TensorFlow's truncated normal to get standard deviation
    ``target``: ``target / sqrt(gamma)`` (``1.1368472... * target`` for ``bound = 2``).

    The inverse of :func:`tf_truncated_normal_effective_std`.

    Parameters
    ----------
    target : float
        The wanted standard deviation; > 0.
    bound : float, default 2.0
        Truncation half-width in units of ``stddev``; > 0.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``target <= 0`` or ``bound <= 0``.

    Examples
    --------
    >>> round(stddev_for_effective_std(1.0), 7)
    1.1368472
    """
    target = check_real(target, "target", low=0.0)
    bound = check_real(bound, "bound", low=0.0)
    return target / math.sqrt(truncnorm_variance_factor(-bound, bound))


def _resolve(fn: ActivationLike, name: str = "fn") -> Callable[[np.ndarray], np.ndarray]:
    if isinstance(fn, str):
        check_choice(fn, name, tuple(ACTIVATIONS))
        return ACTIVATIONS[fn]
    if not callable(fn):
        raise ValueError(f"{name} must be one of {tuple(ACTIVATIONS)} or a callable on "
                         f"NumPy arrays; got {fn!r}")
    return fn


_U_MAX = 40.0  # half-width of the standardised integration range


def activation_second_moment(fn: ActivationLike, mean: float = 0.0, std: float = 1.0) -> float:
    """``E[fn(z)^2]`` for ``z ~ N(mean, std^2)``, by adaptive quadrature.

    The integral is taken in the standardised variable ``u = (z - mean) / std``, so the
    Gaussian weight is centred at ``u = 0`` however narrow or far from 0 it is, over the
    finite range ``|u| <= 40`` (the Gaussian weight beyond it is below ``1e-300``, so
    the truncation is negligible for any ``fn`` growing slower than ``exp(u^2 / 4)``),
    split at ``u = 0`` and at ``u = -mean / std`` clipped into the range (the point
    ``z = 0``, where ReLU, SELU and user functions often have a kink); each piece goes
    to ``scipy.integrate.quad``.

    Parameters
    ----------
    fn : str or callable
        ``"sigmoid"``, ``"tanh"``, ``"gelu"`` (exact ``x Phi(x)``), ``"relu"``, ``"selu"``
        (Klambauer et al.'s constants), or a function applied to NumPy float arrays.
    mean : float, default 0.0
        Mean of the Gaussian input.
    std : float, default 1.0
        Standard deviation of the Gaussian input; > 0.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``std <= 0`` or ``fn`` is an unknown name.

    Examples
    --------
    >>> round(activation_second_moment("sigmoid"), 7)
    0.293379
    >>> round(activation_second_moment("relu"), 12)   # half of E[z^2] = 1
    0.5
    """
    f = _resolve(fn)
    mean = check_real(mean, "mean")
    std = check_real(std, "std", low=0.0)

    def integrand(u: float) -> float:
        x = mean + std * u
        v = float(np.asarray(f(np.asarray([x], dtype=float)), dtype=float).reshape(-1)[0])
        return v * v * math.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)

    # standardised variable u = (z - mean) / std: the Gaussian weight is always centred
    # at u = 0, whatever mean and std; the kink z = 0 sits at u = -mean / std. The range
    # is the finite [-U, U] (weight outside it < 1e-300), with the kink clipped into it:
    # an infinite or huge piece whose mass sits at one end is what quad can miss
    kink = -mean / std
    kink = min(max(kink, -_U_MAX), _U_MAX) if math.isfinite(kink) else 0.0
    edges = sorted({-_U_MAX, 0.0, kink, _U_MAX})
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        val, _ = integrate.quad(integrand, lo, hi, epsabs=0.0, epsrel=1e-11, limit=200)
        total += val
    return float(total)


def selu_constants() -> tuple[float, float]:
    """Solve for SELU's ``(alpha, lambda)``: the mean 0 and second moment 1 of
    ``selu(z) = lambda * (z if z > 0 else alpha * (exp(z) - 1))`` for ``z ~ N(0, 1)``.

    ``alpha`` is the root of ``E[elu_alpha(z)] = 0`` (found by Brent's method on a
    quadrature of the mean), and ``lambda = E[elu_alpha(z)^2]^{-1/2}``. Neither uses the
    closed form ``alpha = -sqrt(2/pi) / (erfc(1/sqrt 2) e^{1/2} - 1)``, against which the
    tests check them.

    Returns
    -------
    tuple of float
        ``(alpha, lambda)`` = ``(1.6732632..., 1.0507009...)``.

    Examples
    --------
    >>> a, l = selu_constants()
    >>> round(a, 6), round(l, 6)
    (1.673263, 1.050701)
    """
    pdf = stats.norm.pdf

    def neg_part(alpha: float, power: int) -> float:
        val, _ = integrate.quad(lambda z: (alpha * math.expm1(z)) ** power * pdf(z),
                                -np.inf, 0.0, epsabs=1e-14, epsrel=1e-13)
        return val

    pos1, _ = integrate.quad(lambda z: z * pdf(z), 0.0, np.inf, epsabs=1e-14, epsrel=1e-13)
    pos2, _ = integrate.quad(lambda z: z * z * pdf(z), 0.0, np.inf, epsabs=1e-14,
                             epsrel=1e-13)
    alpha = optimize.brentq(lambda a: pos1 + neg_part(a, 1), 0.5, 5.0, xtol=1e-15,
                            rtol=4 * np.finfo(float).eps)
    lam = 1.0 / math.sqrt(pos2 + neg_part(alpha, 2))
    return float(alpha), float(lam)


def ffn_branch_second_moment(d_model: int, d_ff: int, std: float,
                             activation: ActivationLike = "gelu",
                             input_second_moment: float = 1.0) -> float:
    """Second moment of an FFN branch ``W2 act(W1 x)`` at initialisation, in closed form.

    With i.i.d. ``N(0, std^2)`` weights, no biases, and an input ``x`` of ``d_model``
    entries with ``|x|^2 / d_model = q`` (a LayerNorm output has ``q = 1``), each hidden
    pre-activation is ``N(0, d_model * std^2 * q)`` and each output entry has second moment

        d_ff * std^2 * E[act(h)^2],   h ~ N(0, d_model * std^2 * q).

    Parameters
    ----------
    d_model, d_ff : int
        Width of the model and of the hidden layer; >= 1.
    std : float
        Standard deviation of the weights of both matrices; > 0.
    activation : str or callable, default "gelu"
        As in :func:`activation_second_moment`.
    input_second_moment : float, default 1.0
        ``q``, the mean square of the input's entries; > 0.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        For non-positive sizes, ``std`` or ``input_second_moment``, or an unknown
        activation name.

    Examples
    --------
    >>> round(ffn_branch_second_moment(768, 3072, 0.02), 4)   # BERT-base, plain N(0, 0.02^2)
    0.1308
    """
    d_model = check_int(d_model, "d_model", minimum=1)
    d_ff = check_int(d_ff, "d_ff", minimum=1)
    std = check_real(std, "std", low=0.0)
    q = check_real(input_second_moment, "input_second_moment", low=0.0)
    f = _resolve(activation, "activation")
    pre_std = std * math.sqrt(d_model * q)
    return d_ff * std**2 * activation_second_moment(f, 0.0, pre_std)


def postnorm_path_weights(branch_second_moments: Sequence[float]) -> np.ndarray:
    """Coefficients of the unrolled Post-Norm recursion at initialisation.

    With ``x_{l+1} = (x_l + F_l) / sqrt(1 + s_l)`` for ``l = 0, ..., L-1`` (Norm acting as a
    division by the root mean square when ``x_l`` has unit second moment and the branch
    ``F_l`` has second moment ``s_l``),

        x_L = c_0 x_0 + sum_l c_{l+1} F_l,
        c_0 = prod_{k=0}^{L-1} (1 + s_k)^{-1/2},   c_{l+1} = prod_{k=l}^{L-1} (1 + s_k)^{-1/2}.

    With every ``s_l = 1`` this is the articles' ``x_0 / 2^{L/2} + F_0 / 2^{L/2} + ...
    + F_{L-1} / 2^{1/2}``.

    Parameters
    ----------
    branch_second_moments : sequence of float
        ``s_0, ..., s_{L-1}``, one per sub-layer; each >= 0 and finite; at least one.

    Returns
    -------
    numpy.ndarray
        ``[c_0, c_1, ..., c_L]``, shape ``(L + 1,)``.

    Raises
    ------
    ValueError
        If the sequence is empty or an entry is negative or not finite.

    Examples
    --------
    >>> postnorm_path_weights([1.0, 1.0])
    array([0.5       , 0.5       , 0.70710678])
    """
    s = np.asarray(branch_second_moments, dtype=float).reshape(-1)
    if s.size == 0:
        raise ValueError("branch_second_moments must hold at least one value; got an empty "
                         "sequence")
    bad = ~np.isfinite(s) | (s < 0)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"branch_second_moments must be finite and >= 0; entry {k} is "
                         f"{float(s[k])!r}")
    factors = 1.0 / np.sqrt(1.0 + s)
    tail = np.cumprod(factors[::-1])[::-1]          # prod_{k=l}^{L-1}
    return np.concatenate([[tail[0]], tail])


def ntk_equivalent_adam(lr: float, eps: float, fan_in: int) -> tuple[float, float]:
    """Adam settings under which a standard layer tracks an NTK-parameterised one exactly.

    A layer ``y = x V / sqrt(m)`` with ``V`` trained by Adam(lr, eps) and the layer
    ``y = x W`` with ``W = V / sqrt(m)`` at the start, trained by Adam(lr / sqrt(m),
    eps * sqrt(m)) (same betas, no weight decay), keep ``W = V / sqrt(m)`` at every step.

    Parameters
    ----------
    lr : float
        Learning rate of the NTK-parameterised layer; > 0.
    eps : float
        Adam's epsilon of the NTK-parameterised layer; >= 0.
    fan_in : int
        ``m``, the number of inputs of the layer; >= 1.

    Returns
    -------
    tuple of float
        ``(lr / sqrt(fan_in), eps * sqrt(fan_in))``.

    Raises
    ------
    ValueError
        If ``fan_in`` is not an integer or ``< 1``, ``lr <= 0`` or ``eps < 0``.

    Examples
    --------
    >>> ntk_equivalent_adam(1e-2, 1e-8, 64)
    (0.00125, 8e-08)
    """
    lr = check_real(lr, "lr", low=0.0)
    eps = check_real(eps, "eps", low=0.0, low_open=False)
    if isinstance(fan_in, bool) or not isinstance(fan_in, numbers.Integral):
        raise ValueError(f"fan_in must be an integer >= 1; got {fan_in!r} of type "
                         f"{type(fan_in).__name__}")
    fan_in = check_int(fan_in, "fan_in", minimum=1)
    root = math.sqrt(fan_in)
    return lr / root, eps * root
