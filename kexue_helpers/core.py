"""Device, scale, seeding and argument validation shared by every chapter.

Two environment variables steer all chapters at once:

``KEXUE_DEVICE``
    ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ... Overrides the automatic choice
    (CUDA, then Apple MPS, then CPU).
``KEXUE_SCALE``
    ``"small"`` or ``"full"``. Overrides the default, which is ``"full"`` on a GPU and
    ``"small"`` on a CPU. Chapters size their experiments with :func:`scaled`.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import random
from typing import Any, Iterator, TypeVar

import numpy as np
import torch

__all__ = [
    "DEVICE_ENV",
    "SCALE_ENV",
    "get_device",
    "get_scale",
    "scaled",
    "seed_everything",
    "make_generator",
    "cpu_threads",
    "as_tensor",
    "to_numpy",
    "check_int",
    "check_real",
    "check_choice",
]

DEVICE_ENV = "KEXUE_DEVICE"
SCALE_ENV = "KEXUE_SCALE"
_SCALES = ("small", "full")

T = TypeVar("T")


# --------------------------------------------------------------------------------------
# argument validation: every public helper fails early, naming argument, value, expectation
# --------------------------------------------------------------------------------------
def check_int(value: Any, name: str, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` after checking it is an integer in range.

    Parameters
    ----------
    value : Any
        The value to check. Python and NumPy integers are accepted; ``bool`` and floats
        are not, even when integral, so that ``n=2.5`` or ``n=True`` fail loudly.
    name : str
        The argument's name, used in the error message.
    minimum, maximum : int, optional
        Inclusive bounds.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        If ``value`` is not an integer.
    ValueError
        If ``value`` is out of range.

    Examples
    --------
    >>> check_int(5, "n_points", minimum=2)
    5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {value!r} of type "
                        f"{type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}; got {value!r}")
    return value


def check_real(value: Any, name: str, *, low: float | None = None, high: float | None = None,
               low_open: bool = True, high_open: bool = True) -> float:
    """Return ``value`` as a finite ``float`` after checking it lies in an interval.

    Parameters
    ----------
    value : Any
        A real number (Python, NumPy, or a 0-d tensor).
    name : str
        The argument's name, used in the error message.
    low, high : float, optional
        Interval ends; ``None`` means unbounded on that side.
    low_open, high_open : bool, default True
        Whether each end is excluded.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If ``value`` is not a real number.
    ValueError
        If ``value`` is NaN, infinite, or outside the interval.

    Examples
    --------
    >>> check_real(0.1, "eps", low=0, high=1)
    0.1
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r} of type "
                        f"{type(value).__name__}")
    value = float(value)
    lo_br, hi_br = ("(" if low_open else "["), (")" if high_open else "]")
    interval = f"{lo_br}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi_br}"
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number in {interval}; got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must lie in {interval}; got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must lie in {interval}; got {value!r}")
    return value


def check_choice(value: Any, name: str, choices: tuple[Any, ...]) -> Any:
    """Return ``value`` after checking it is one of ``choices``.

    Parameters
    ----------
    value : Any
        The value to check.
    name : str
        The argument's name, used in the error message.
    choices : tuple
        The allowed values.

    Returns
    -------
    Any
        ``value`` unchanged.

    Raises
    ------
    ValueError
        If ``value`` is not one of ``choices``.

    Examples
    --------
    >>> check_choice("su", "method", ("su", "sklearn"))
    'su'
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; "
                         f"got {value!r}")
    return value


# --------------------------------------------------------------------------------------
# device and scale
# --------------------------------------------------------------------------------------
def get_device(device: str | torch.device | None = None) -> torch.device:
    """Pick the device experiments run on.

    Order of precedence: the ``device`` argument, then the ``KEXUE_DEVICE`` environment
    variable, then CUDA if available, then Apple MPS, then the CPU.

    Parameters
    ----------
    device : str or torch.device, optional
        An explicit choice, e.g. ``"cpu"`` or ``"cuda:0"``.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the requested device is not a valid device string or is not available here.

    Examples
    --------
    >>> get_device("cpu")
    device(type='cpu')
    """
    source = "device"
    if device is None:
        env = os.environ.get(DEVICE_ENV, "").strip()
        if env:
            device, source = env, f"environment variable {DEVICE_ENV}"
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{source} must name a torch device such as 'cpu', 'cuda' or 'mps'; "
                         f"got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{source} asks for {device!r} but CUDA is not available on this "
                         "machine; use 'cpu'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None)
                                  and torch.backends.mps.is_available()):
        raise ValueError(f"{source} asks for {device!r} but Apple MPS is not available on "
                         "this machine; use 'cpu'")
    return dev


def get_scale(device: str | torch.device | None = None) -> str:
    """Return ``"small"`` or ``"full"``, the size at which chapters run their experiments.

    ``KEXUE_SCALE`` wins if set; otherwise ``"full"`` on a GPU and ``"small"`` on a CPU.

    Parameters
    ----------
    device : str or torch.device, optional
        The device to decide for; defaults to :func:`get_device`.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If ``KEXUE_SCALE`` is set to something other than ``"small"`` or ``"full"``.

    Examples
    --------
    >>> get_scale() in ("small", "full")
    True
    """
    env = os.environ.get(SCALE_ENV, "").strip().lower()
    if env:
        return check_choice(env, f"environment variable {SCALE_ENV}", _SCALES)
    return "full" if get_device(device).type in ("cuda", "mps") else "small"


def scaled(small: T, full: T) -> T:
    """Return ``small`` or ``full`` according to :func:`get_scale`.

    Parameters
    ----------
    small : Any
        The value used at small scale (CPU, CI).
    full : Any
        The value used at full scale (GPU).

    Returns
    -------
    Any

    Examples
    --------
    >>> scaled(small=1_000, full=100_000) in (1_000, 100_000)
    True
    """
    return full if get_scale() == "full" else small


# --------------------------------------------------------------------------------------
# randomness
# --------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all devices).

    Chapters call this once at the top; helpers that take a ``seed`` argument use their
    own generator (:func:`make_generator`) so their output does not depend on call order.

    Parameters
    ----------
    seed : int
        A non-negative integer.

    Raises
    ------
    ValueError
        If ``seed`` is negative.

    Examples
    --------
    >>> seed_everything(0)
    """
    seed = check_int(seed, "seed", minimum=0, maximum=2**32 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def make_generator(seed: int | None = None) -> torch.Generator:
    """Return a CPU ``torch.Generator``, seeded if ``seed`` is given.

    Random matrices are drawn on the CPU with this generator and then moved to the
    device, so a given seed gives the same numbers on every device.

    Parameters
    ----------
    seed : int, optional
        Non-negative seed; ``None`` seeds from the global torch generator, so that
        :func:`seed_everything` still makes the result reproducible.

    Returns
    -------
    torch.Generator

    Examples
    --------
    >>> g = make_generator(0)
    >>> torch.randn(2, generator=g).shape
    torch.Size([2])
    """
    gen = torch.Generator(device="cpu")
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    else:
        seed = check_int(seed, "seed", minimum=0)
    gen.manual_seed(seed)
    return gen


@contextlib.contextmanager
def cpu_threads(n_threads: int | None = 1,
                device: str | torch.device | None = None) -> Iterator[None]:
    """Run the enclosed torch code on ``n_threads`` CPU threads, then restore the count.

    Many small operations (a tiny model's training steps, tiled kernel sums) run no faster
    on two CPU threads than on one, and much slower when other processes hold the other
    cores, because torch's threads wait for each other. Chapters and helpers wrap such
    loops in ``with cpu_threads(1):``. On a GPU, or with ``n_threads=None``, it does
    nothing.

    Parameters
    ----------
    n_threads : int or None, default 1
        Threads to use inside the block; ``None`` leaves torch's setting alone.
    device : str or torch.device, optional
        The device the block computes on; default :func:`get_device`. Only ``"cpu"`` is
        affected.

    Raises
    ------
    ValueError
        If ``n_threads`` is smaller than 1.

    Examples
    --------
    >>> with cpu_threads(1, device="cpu"):
    ...     torch.get_num_threads()
    1
    """
    if n_threads is not None:
        n_threads = check_int(n_threads, "n_threads", minimum=1)
    if n_threads is None or get_device(device).type != "cpu" \
            or torch.get_num_threads() == n_threads:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# --------------------------------------------------------------------------------------
# array conversion
# --------------------------------------------------------------------------------------
def as_tensor(x: Any, name: str, *, ndim: int | tuple[int, ...] | None = None,
              dtype: torch.dtype | None = None,
              device: str | torch.device | None = None) -> torch.Tensor:
    """Convert a NumPy array, tensor or nested sequence to a finite floating tensor.

    Parameters
    ----------
    x : array_like or torch.Tensor
        The data.
    name : str
        The argument's name, used in error messages.
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.
    dtype : torch.dtype, optional
        Target dtype. Default: keep a floating dtype, use float64 otherwise.
    device : str or torch.device, optional
        Target device; default :func:`get_device`.

    Returns
    -------
    torch.Tensor

    Raises
    ------
    TypeError
        If ``x`` cannot be read as a numeric array.
    ValueError
        If ``x`` has the wrong number of dimensions, is empty, or holds NaN or inf.

    Examples
    --------
    >>> as_tensor([[1, 2], [3, 4]], "x", ndim=2, device="cpu").dtype
    torch.float64
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - numpy raises many kinds
            raise TypeError(f"{name} must be a numeric array or tensor; got "
                            f"{type(x).__name__}") from exc
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                       or arr.dtype == np.bool_):
            raise TypeError(f"{name} must be a numeric array or tensor; got an array of "
                            f"dtype {arr.dtype}")
        # ascontiguousarray would turn a 0-d array into shape (1,): copy those as they are
        t = torch.from_numpy(np.ascontiguousarray(arr) if arr.ndim else arr.copy())
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if t.ndim not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name} must have {want} dimension(s); got shape "
                             f"{tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty; got shape {tuple(t.shape)}")
    if dtype is None:
        dtype = t.dtype if t.is_floating_point() else torch.float64
    t = t.to(device=get_device(device), dtype=dtype)
    if not bool(torch.isfinite(t).all()):
        n_bad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"{name} must contain only finite values; found {n_bad} NaN or "
                         "infinite entries")
    return t


def to_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Return ``x`` as a NumPy array on the CPU (a no-op for arrays).

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> to_numpy(torch.ones(2))
    array([1., 1.], dtype=float32)
    """
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)
