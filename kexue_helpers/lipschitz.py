"""Lipschitz constraints: spectral norms, penalties, gradient normalisation, batch W1.

Defined in the chapter "Lipschitz constraints in deep learning" (``book/lipschitz.md``).

Conventions
-----------
* A weight matrix ``W`` has shape ``(out, in)`` and acts as ``x -> W x``, as in
  :class:`torch.nn.Linear`. In :func:`power_iteration` the vector ``u`` lives in the output
  space (length ``out``) and ``v`` in the input space (length ``in``). From a start ``u0``,
  ``v = W^T u0 / ||W^T u0||``; then each step is ``u <- W v / ||W v||``,
  ``v <- W^T u / ||W^T u||``, and the estimate is ``u^T W v``. Started from the ``_u`` that
  :func:`torch.nn.utils.parametrizations.spectral_norm` stores, ``k`` steps reproduce its
  ``_u``, ``_v`` and weight after ``k`` training-mode forward passes (the stored ``_v`` is
  always ``W^T _u`` normalised).
* Tensors of more than two dimensions (convolution kernels ``(c_out, c_in, k_h, k_w)``) are
  reshaped to ``(c_out, c_in k_h k_w)`` by :func:`spectral_normalize`, as torch does with
  ``dim=0``. That matrix's norm is *not* the operator norm of the convolution;
  :func:`conv2d_operator_norm` computes the latter (Sedghi, Gupta and Long, 2019).
* A critic maps a batch ``(B, ...)`` to ``(B,)`` or ``(B, 1)`` values. Gradient norms are
  per sample, over all input dimensions.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from .core import check_choice, check_int, check_real

__all__ = [
    "power_iteration",
    "spectral_normalize",
    "conv2d_operator_norm",
    "gradient_penalty",
    "gradient_normalized_critic",
    "empirical_lipschitz",
    "batch_w1",
]

_VARIANTS = ("iccv", "wacv", "inner")


def _tensor(x: Any, name: str) -> torch.Tensor:
    """A floating tensor view of ``x`` (tensors keep device and dtype; arrays become float64)."""
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a numeric array or tensor; got "
                            f"{type(x).__name__}") from exc
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if t.numel() and not bool(torch.isfinite(t.detach()).all()):
        raise ValueError(f"{name} must contain only finite values")
    return t


def _normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    return x / x.norm().clamp_min(eps)


def power_iteration(W: Any, n_iter: int = 20, u0: Any = None,
                    generator: torch.Generator | None = None
                    ) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Estimate the largest singular value of a matrix by power iteration.

    Parameters
    ----------
    W : array_like or torch.Tensor, shape (out, in)
        The matrix (detached; no gradient flows).
    n_iter : int, default 20
        Number of steps ``u <- W v / ||W v||``, ``v <- W^T u / ||W^T u||`` after the start
        ``v = W^T u0 / ||W^T u0||``; at least 1.
    u0 : array_like or torch.Tensor, shape (out,), optional
        Starting vector (normalised before use). Default: a standard normal vector drawn
        with ``generator``, as torch's spectral normalisation does. The article's Keras
        code starts from the all-ones vector.
    generator : torch.Generator, optional
        Source of the random start (CPU generator; the vector is moved to ``W``'s device).

    Returns
    -------
    sigma : float
        The estimate ``u^T W v``. For unit ``u``, ``v`` it never exceeds the true
        ``||W||_2``: power iteration gives a lower bound.
    u : torch.Tensor, shape (out,)
        The last left vector (unit norm).
    v : torch.Tensor, shape (in,)
        The last right vector (unit norm).

    Raises
    ------
    ValueError
        If ``W`` is not 2-D, ``n_iter < 1``, or ``u0`` does not have length ``out``.

    Examples
    --------
    >>> s, u, v = power_iteration(torch.diag(torch.tensor([3.0, 1.0])), n_iter=50)
    >>> round(s, 6)
    3.0
    """
    W = _tensor(W, "W").detach()
    if W.ndim != 2:
        raise ValueError(f"W must be a 2-D matrix (out, in); got shape {tuple(W.shape)}")
    n_iter = check_int(n_iter, "n_iter", minimum=1)
    if u0 is None:
        u = torch.randn(W.shape[0], generator=generator, dtype=W.dtype)
    else:
        u = _tensor(u0, "u0").detach().to(W.dtype)
        if u.ndim != 1 or u.shape[0] != W.shape[0]:
            raise ValueError(f"u0 must be a vector of length {W.shape[0]} (W's number of "
                             f"rows); got shape {tuple(u.shape)}")
    u = _normalize(u.to(W.device))
    v = _normalize(W.T @ u)
    for _ in range(n_iter):
        u = _normalize(W @ v)
        v = _normalize(W.T @ u)
    sigma = float(u @ W @ v)
    return sigma, u, v


def spectral_normalize(W: torch.Tensor, n_iter: int = 20,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Divide a weight by the power-iteration estimate of its spectral norm.

    Parameters
    ----------
    W : torch.Tensor, shape (out, in) or (out, ...)
        The weight. More than two dimensions are flattened to ``(out, -1)`` for the
        estimate (torch's convention for convolution kernels, which is *not* the
        convolution's operator norm).
    n_iter : int, default 20
        Power-iteration steps, from a random start drawn with ``generator``.
    generator : torch.Generator, optional
        Source of the random start.

    Returns
    -------
    torch.Tensor
        ``W / sigma_hat`` with ``sigma_hat = u^T W v`` and ``u``, ``v`` detached, so the
        result is differentiable in ``W`` exactly like torch's parametrisation. Because
        ``sigma_hat <= ||W||_2``, the result has spectral norm at least 1.

    Raises
    ------
    ValueError
        If ``W`` has fewer than 2 dimensions or ``n_iter < 1``.

    Examples
    --------
    >>> Wn = spectral_normalize(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
    >>> float(torch.linalg.matrix_norm(Wn, ord=2))
    1.0
    """
    W = _tensor(W, "W")
    if W.ndim < 2:
        raise ValueError(f"W must have at least 2 dimensions; got shape {tuple(W.shape)}")
    M = W.reshape(W.shape[0], -1)
    _, u, v = power_iteration(M, n_iter=n_iter, generator=generator)
    sigma = u @ M @ v
    return W / sigma


def conv2d_operator_norm(kernel: Any, input_size: int | tuple[int, int]) -> float:
    """The exact spectral norm of a stride-1 2-D convolution with circular padding.

    Parameters
    ----------
    kernel : array_like or torch.Tensor, shape (c_out, c_in, k_h, k_w)
        The kernel, in :func:`torch.nn.functional.conv2d`'s layout.
    input_size : int or (int, int)
        The spatial size ``(n, m)`` of the inputs (an int means square); each at least the
        kernel's size in that direction.

    Returns
    -------
    float
        ``max_{p, q} ||K_hat(p, q)||_2`` where ``K_hat(p, q)`` is the ``c_out x c_in`` matrix of
        the kernels' 2-D DFTs at frequency ``(p, q)`` on the ``n x m`` grid (Sedghi, Gupta
        and Long). The convolution is block-diagonalised by the 2-D DFT, so this is the
        largest singular value of the ``(c_out n m) x (c_in n m)`` operator matrix.
        Cross-correlation (torch) and convolution have the same singular values.

    Raises
    ------
    ValueError
        If ``kernel`` is not 4-D or ``input_size`` is smaller than the kernel.

    Examples
    --------
    >>> conv2d_operator_norm(torch.ones(1, 1, 3, 3), 8)
    9.0
    """
    k = _tensor(kernel, "kernel").detach()
    if k.ndim != 4:
        raise ValueError(f"kernel must be 4-D (c_out, c_in, k_h, k_w); got shape "
                         f"{tuple(k.shape)}")
    if isinstance(input_size, (tuple, list)):
        if len(input_size) != 2:
            raise ValueError(f"input_size must be an int or a pair (n, m); got {input_size!r}")
        n, m = (check_int(s, "input_size") for s in input_size)
    else:
        n = m = check_int(input_size, "input_size")
    kh, kw = k.shape[-2:]
    if n < kh or m < kw:
        raise ValueError(f"input_size must be at least the kernel size ({kh}, {kw}) in each "
                         f"direction; got ({n}, {m})")
    k_hat = torch.fft.fft2(k, s=(n, m))                 # (c_out, c_in, n, m)
    blocks = k_hat.permute(2, 3, 0, 1).reshape(n * m, *k.shape[:2])
    return float(torch.linalg.svdvals(blocks).max())


def _values(critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    d = critic(x)
    if d.ndim == 2 and d.shape[1] == 1:
        d = d[:, 0]
    if d.ndim != 1 or d.shape[0] != x.shape[0]:
        raise ValueError(f"critic must map a batch of {x.shape[0]} inputs to shape "
                         f"({x.shape[0]},) or ({x.shape[0]}, 1); got {tuple(d.shape)}")
    return d


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, center: float = 1.0, one_sided: bool = False,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """The gradient penalty at random interpolates of real and fake samples (without lambda).

    Parameters
    ----------
    critic : callable
        Maps a batch ``(B, ...)`` to ``(B,)`` or ``(B, 1)``.
    real, fake : torch.Tensor, shape (B, ...)
        Samples of equal shape; ``fake`` is detached (the penalty trains the critic).
    center : float, default 1.0
        The target gradient norm, >= 0: 1 for WGAN-GP (Gulrajani et al.), 0 for the
        zero-centred penalty (WGAN-div, Wu et al.; R1 of Mescheder et al. takes it at
        real points, i.e. interpolation weight 1).
    one_sided : bool, default False
        Penalise only norms above ``center``: ``max(||grad|| - center, 0)^2`` (Petzka et
        al.; the variant Su proposes in the article).
    generator : torch.Generator, optional
        Source of the interpolation weights ``eps ~ U[0, 1]``, one per sample.

    Returns
    -------
    torch.Tensor
        A scalar: the batch mean of ``(||grad D(x_hat)|| - center)^2`` (or its one-sided
        version) with ``x_hat = eps real + (1 - eps) fake``; differentiable in the critic's
        parameters (``create_graph=True``). For ``center = 0`` the square is computed as
        the sum of squared partial derivatives, which is differentiable at a zero gradient.

    Raises
    ------
    ValueError
        If the shapes differ or ``center < 0``.

    Examples
    --------
    >>> lin = torch.nn.Linear(2, 1)
    >>> with torch.no_grad():
    ...     _ = lin.weight.copy_(torch.tensor([[3.0, 4.0]]))
    >>> float(gradient_penalty(lin, torch.zeros(4, 2), torch.ones(4, 2)))
    16.0
    """
    if not isinstance(real, torch.Tensor) or not isinstance(fake, torch.Tensor):
        raise TypeError("real and fake must be torch tensors; got "
                        f"{type(real).__name__} and {type(fake).__name__}")
    if real.shape != fake.shape or real.ndim < 1:
        raise ValueError(f"real and fake must have the same shape (B, ...); got "
                         f"{tuple(real.shape)} and {tuple(fake.shape)}")
    center = check_real(center, "center", low=0.0, low_open=False)
    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    eps = torch.rand(shape, generator=generator, dtype=real.dtype).to(real.device)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    d = _values(critic, x_hat)
    (g,) = torch.autograd.grad(d.sum(), x_hat, create_graph=True)
    g = g.reshape(g.shape[0], -1)
    if center == 0.0:
        return (g**2).sum(dim=1).mean()
    gap = g.norm(dim=1) - center
    if one_sided:
        gap = gap.clamp_min(0.0)
    return (gap**2).mean()


def gradient_normalized_critic(critic: Callable[[torch.Tensor], torch.Tensor],
                               x: torch.Tensor, variant: str = "iccv",
                               eps: float = 1e-4) -> torch.Tensor:
    """The gradient-normalised critic ``D_hat(x)``, per sample, differentiable for training.

    Parameters
    ----------
    critic : callable
        Maps a batch ``(B, ...)`` to ``(B,)`` or ``(B, 1)``.
    x : torch.Tensor, shape (B, ...)
        Inputs. If they do not require gradients a copy that does is used; if they do
        (generator samples), gradients flow back to whatever produced them.
    variant : {"iccv", "wacv", "inner"}, default "iccv"
        * ``"iccv"``: ``D / (||grad D|| + |D|)`` (Wu et al., ICCV 2021; in [-1, 1]);
        * ``"wacv"``: ``D ||grad D|| / (||grad D||^2 + eps)`` (Bhaskara et al., WACV 2022);
        * ``"inner"``: ``<grad D / ||grad D||, x>``, the variant Su tried in the article,
          equal to the others' leading behaviour on a piecewise-linear critic up to an
          offset per linear region.
    eps : float, default 1e-4
        The WACV constant; must be > 0 for ``"wacv"`` (ignored otherwise).

    Returns
    -------
    torch.Tensor, shape (B,)
        ``D_hat`` at each sample (``create_graph=True``, so losses built on it
        backpropagate through the input gradient: a double backward).

    Raises
    ------
    ValueError
        On an unknown ``variant``, or ``eps <= 0`` with ``"wacv"``.

    Examples
    --------
    >>> relu_plus = lambda t: torch.relu(t[:, 0]) + 0.5
    >>> x = torch.tensor([[-1e-6], [1e-6]], dtype=torch.float64)
    >>> d_hat = gradient_normalized_critic(relu_plus, x).detach()
    >>> [round(float(a), 4) for a in d_hat]
    [1.0, 0.3333]
    """
    variant = check_choice(variant, "variant", _VARIANTS)
    if variant == "wacv":
        eps = check_real(eps, "eps", low=0.0)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch tensor; got {type(x).__name__}")
    if x.ndim < 1:
        raise ValueError(f"x must be a batch (B, ...); got shape {tuple(x.shape)}")
    if not x.requires_grad:
        x = x.detach().clone().requires_grad_(True)
    d = _values(critic, x)
    (g,) = torch.autograd.grad(d.sum(), x, create_graph=True)
    g = g.reshape(g.shape[0], -1)
    gn = g.norm(dim=1)
    if variant == "iccv":
        return d / (gn + d.abs())
    if variant == "wacv":
        return d * gn / (gn**2 + eps)
    return (g / gn[:, None] * x.reshape(x.shape[0], -1)).sum(dim=1)


def empirical_lipschitz(f: Callable[[Any], Any], X: Any) -> float:
    """The largest slope ``|f(x_i) - f(x_j)| / ||x_i - x_j||`` over pairs of rows of ``X``.

    Parameters
    ----------
    f : callable
        Maps ``X`` (all rows at once) to ``n`` scalars (shape ``(n,)`` or ``(n, 1)``).
        Called under :func:`torch.no_grad`.
    X : array_like or torch.Tensor, shape (n, d)
        The points; tensors are passed to ``f`` unchanged, arrays as float64 tensors.

    Returns
    -------
    float
        ``max_{i<j} |f(x_i) - f(x_j)| / ||x_i - x_j||`` over pairs of distinct rows: a lower
        bound on the Lipschitz constant of ``f`` (on these points).

    Raises
    ------
    ValueError
        If ``X`` has fewer than 2 rows, is not 2-D, or has no two distinct rows.

    Examples
    --------
    >>> X = torch.tensor([[0.0], [1.0], [3.0]])
    >>> empirical_lipschitz(lambda t: 2 * t[:, 0], X)
    2.0
    """
    X = _tensor(X, "X")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n, d); got shape {tuple(X.shape)}")
    if X.shape[0] < 2:
        raise ValueError(f"X must have at least 2 rows; got {X.shape[0]}")
    with torch.no_grad():
        y = torch.as_tensor(f(X)).reshape(-1).to(torch.float64).cpu()
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"f must return one value per row ({X.shape[0]}); got "
                         f"{y.shape[0]}")
    Xd = X.detach().to(torch.float64).cpu()
    dist = torch.cdist(Xd, Xd)
    diff = (y[:, None] - y[None, :]).abs()
    iu = torch.triu_indices(len(y), len(y), offset=1)
    dist, diff = dist[iu[0], iu[1]], diff[iu[0], iu[1]]
    keep = dist > 0
    if not bool(keep.any()):
        raise ValueError("X must have at least two distinct rows")
    return float((diff[keep] / dist[keep]).max())


def batch_w1(A: Any, B: Any) -> float:
    """Exact Wasserstein-1 distance between two equal-size uniform batches (Euclidean cost).

    Parameters
    ----------
    A, B : array_like or torch.Tensor, shape (n, d)
        The two batches, each point with mass ``1/n``.

    Returns
    -------
    float
        ``min_pi (1/n) sum_i ||a_i - b_{pi(i)}||``. For uniform marginals of equal size an
        optimal transport plan can be taken to be a permutation (Birkhoff-von Neumann), so
        this is an assignment problem, solved exactly by
        :func:`scipy.optimize.linear_sum_assignment`.

    Raises
    ------
    ValueError
        If the batches differ in size or dimension, or are not 2-D.

    Examples
    --------
    >>> batch_w1([[0.0], [1.0]], [[1.0], [3.0]])
    1.5
    """
    a = _tensor(A, "A").detach().to(torch.float64).cpu().numpy()
    b = _tensor(B, "B").detach().to(torch.float64).cpu().numpy()
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"A and B must be 2-D (n, d); got shapes {a.shape} and {b.shape}")
    if a.shape != b.shape:
        raise ValueError(f"A and B must have the same shape (equal sizes, same dimension); "
                         f"got {a.shape} and {b.shape}")
    if a.shape[0] == 0:
        raise ValueError("A and B must not be empty")
    cost = cdist(a, b)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())

