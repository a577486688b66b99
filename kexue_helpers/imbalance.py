"""Class imbalance and priors: smooth F1 weights, logit adjustment and CAN.

Defined in the chapter "Class imbalance and priors" (``book/imbalance_priors.md``), after
Su Jianlin's articles https://kexue.fm/archives/7708 and https://kexue.fm/archives/8728.

Conventions
-----------
* Binary labels ``y`` are 0/1 and ``p`` is the predicted probability of class 1.
* Priors are probability vectors with positive entries (checked to sum to 1 within
  ``1e-6``); logits and probability matrices have one row per sample, one column per class.
  Rows of a probability matrix are accepted when they sum to 1 within
  ``1e-6 + K * 1.2e-7`` (the rounding of a float32 softmax over ``K`` classes); every
  output row is normalised by the algorithm itself.
* Logarithms are natural; ``0 log 0 = 0`` wherever an entropy is taken.
* CAN (Jia et al. 2021, as described in Su's article 8728): a row is *low-confidence*
  when its top-k uncertainty is ``>= tau`` (the comparison of Su's reference code).
  The matrix is raised to the power ``alpha`` once, before the first round; each round
  divides every column by its mean and multiplies it by the prior, then normalises every
  row to sum 1. (Su's code and the CAN paper's released code apply the power in every
  round; the two conventions agree for one round or ``alpha = 1``. The power-once variant
  is the one whose limit is the entropic transport plan with regularisation ``1/alpha``.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .core import check_choice, check_int, check_real

__all__ = [
    "smooth_f1",
    "f1_adaptive_weights",
    "logit_adjusted_loss",
    "posthoc_logit_adjust",
    "topk_uncertainty",
    "alternating_normalize",
    "can",
]

_TOL = 1e-6


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------
def _array(x: Any, name: str, ndim: int) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array; got {type(x).__name__}") from exc
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s); got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must contain only finite values; found "
                         f"{int((~np.isfinite(arr)).sum())} NaN or infinite entries")
    return arr


def _binary(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    ya, pa = _array(y, "y", 1), _array(p, "p", 1)
    if ya.shape != pa.shape:
        raise ValueError(f"y and p must have the same shape; got {ya.shape} and {pa.shape}")
    if not np.isin(ya, (0.0, 1.0)).all():
        raise ValueError(f"y must hold only 0 and 1; got values {np.unique(ya)[:5]}")
    if pa.min() < 0 or pa.max() > 1:
        raise ValueError(f"p must lie in [0, 1]; got min {float(pa.min())!r}, max {float(pa.max())!r}")
    return ya, pa


def _prior(prior: Any, name: str, n_classes: int | None) -> np.ndarray:
    pr = _array(prior, name, 1)
    if n_classes is not None and pr.shape[0] != n_classes:
        raise ValueError(f"{name} must have one entry per class ({n_classes}); got length "
                         f"{pr.shape[0]}")
    if pr.min() <= 0:
        raise ValueError(f"{name} must have positive entries; got min {float(pr.min())!r}")
    if abs(pr.sum() - 1) > _TOL:
        raise ValueError(f"{name} must sum to 1; got sum {float(pr.sum())!r}")
    return pr


def _prob_rows(P: Any, name: str) -> np.ndarray:
    arr = _array(P, name, 2)
    if arr.min() < 0:
        raise ValueError(f"{name} must have non-negative entries (rows are probability "
                         f"vectors); got min {float(arr.min())!r}")
    sums = arr.sum(axis=1)
    dev = float(np.abs(sums - 1).max())
    tol = _TOL + arr.shape[1] * float(np.finfo(np.float32).eps)
    if dev > tol:
        raise ValueError(f"{name} must have rows summing to 1 (probability vectors); the "
                         f"largest deviation is {dev!r}, above the tolerance {tol!r}")
    return arr


def _logits(logits: Any, name: str = "logits") -> torch.Tensor:
    t = logits.detach() if isinstance(logits, torch.Tensor) and not logits.requires_grad \
        else logits
    if not isinstance(t, torch.Tensor):
        t = torch.as_tensor(np.asarray(t, dtype=float))
    if t.ndim != 2 or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty (n, K) array; got shape "
                         f"{tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.double()
    if not bool(torch.isfinite(t.detach()).all()):
        raise ValueError(f"{name} must contain only finite values")
    return t


# --------------------------------------------------------------------------------------
# smooth F1 and its adaptive weights
# --------------------------------------------------------------------------------------
def smooth_f1(y: Any, p: Any) -> float:
    """Smooth F1 of binary labels and predicted probabilities, ``2 sum(y p) / sum(y + p)``.

    Parameters
    ----------
    y : array_like, shape (n,)
        Labels in {0, 1}.
    p : array_like, shape (n,)
        Predicted probabilities of class 1, in [0, 1].

    Returns
    -------
    float
        The smooth F1 (eq. ``imb-eq-smooth-f1`` of the chapter); equal to the ordinary F1
        of the positive class when ``p`` is 0/1.

    Raises
    ------
    ValueError
        If the shapes differ, ``y`` is not 0/1, ``p`` leaves [0, 1], or ``sum(y + p) = 0``.

    Examples
    --------
    >>> smooth_f1([1, 0, 1, 0], [1, 0, 0, 1])
    0.5
    """
    ya, pa = _binary(y, p)
    den = float((ya + pa).sum())
    if den == 0:
        raise ValueError("smooth F1 is undefined when sum(y + p) = 0 (no positives and all "
                         "p = 0)")
    return float(2 * (ya * pa).sum() / den)


def f1_adaptive_weights(y: Any, p: Any) -> tuple[float, float]:
    """Su's F1-adaptive class weights ``(1 - F1/2, F1/2)`` at the smooth F1 of ``(y, p)``.

    The weighted cross-entropy ``-[w_pos y log p + w_neg (1 - y) log(1 - p)]`` with these
    weights held constant has the gradient that Su's "p -> log p" rule makes of the smooth
    F1's gradient (eq. ``imb-eq-f1-weighted`` of the chapter).

    Parameters
    ----------
    y : array_like, shape (n,)
        Labels in {0, 1}.
    p : array_like, shape (n,)
        Predicted probabilities of class 1, in [0, 1].

    Returns
    -------
    tuple of float
        ``(w_pos, w_neg)``; their ratio is ``(2 - F1) / F1``.

    Raises
    ------
    ValueError
        As :func:`smooth_f1`.

    Examples
    --------
    >>> f1_adaptive_weights([1, 0, 1, 0], [1, 0, 0, 1])
    (0.75, 0.25)
    """
    f1 = smooth_f1(y, p)
    return (1.0 - f1 / 2, f1 / 2)


# --------------------------------------------------------------------------------------
# logit adjustment
# --------------------------------------------------------------------------------------
def logit_adjusted_loss(logits: Any, target: Any, prior: Any, tau: float = 1.0
                        ) -> torch.Tensor:
    """Mean logit-adjusted cross-entropy ``-log softmax(f + tau log prior)_y``.

    Parameters
    ----------
    logits : torch.Tensor or array_like, shape (n, K)
        The model's logits ``f``; gradients flow through a tensor that requires them.
    target : torch.Tensor or array_like of int, shape (n,)
        Class indices in ``0..K-1``.
    prior : array_like, shape (K,)
        The training class prior (positive, summing to 1).
    tau : float, default 1.0
        Strength of the adjustment, ``>= 0``; ``tau = 0`` is plain cross-entropy.

    Returns
    -------
    torch.Tensor
        A scalar (0-d) tensor, the mean over the ``n`` samples.

    Raises
    ------
    ValueError
        On wrong shapes, targets out of range, an invalid prior or a negative ``tau``.

    Examples
    --------
    >>> import torch
    >>> z = torch.zeros(2, 2)
    >>> round(float(logit_adjusted_loss(z, [0, 1], [0.5, 0.5])), 4)
    0.6931
    """
    z = _logits(logits)
    n, K = z.shape
    tau = check_real(tau, "tau", low=0, low_open=False)
    pr = _prior(prior, "prior", K)
    t = torch.as_tensor(np.asarray(target.detach().cpu() if isinstance(target, torch.Tensor)
                                   else target))
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(f"target must have shape ({n},) to match logits; got "
                         f"{tuple(t.shape)}")
    if t.is_floating_point() and not bool((t == t.round()).all()):
        raise ValueError("target must hold integer class indices")
    t = t.long()
    if int(t.min()) < 0 or int(t.max()) >= K:
        raise ValueError(f"target must hold class indices in 0..{K - 1}; got range "
                         f"{int(t.min())}..{int(t.max())}")
    shift = tau * torch.log(torch.as_tensor(pr, dtype=z.dtype, device=z.device))
    return torch.nn.functional.cross_entropy(z + shift, t.to(z.device))


def posthoc_logit_adjust(logits: Any, prior_train: Any, prior_test: Any = None,
                         tau: float = 1.0) -> torch.Tensor:
    """Post-hoc logit adjustment ``f - tau log prior_train (+ tau log prior_test)``.

    With ``prior_test=None`` the arg-max of the result is the balanced-error rule
    ``argmax_y f_y - tau log pi_y`` of Menon et al.; with a test prior it is the Bayes
    prior-shift correction (for ``tau = 1`` and calibrated logits).

    Parameters
    ----------
    logits : torch.Tensor or array_like, shape (n, K)
        The model's logits ``f`` (any real values; a tensor keeps its dtype and device).
    prior_train : array_like, shape (K,)
        The prior the model was trained under.
    prior_test : array_like, shape (K,), optional
        The prior of the data to be classified; ``None`` means uniform (no term added).
    tau : float, default 1.0
        ``>= 0``.

    Returns
    -------
    torch.Tensor, shape (n, K)
        The adjusted logits; their arg-max over classes is the adjusted prediction, their
        softmax the adjusted posterior.

    Raises
    ------
    ValueError
        If a prior has non-positive entries, does not sum to 1 or has the wrong length, or
        ``tau < 0``.

    Examples
    --------
    >>> posthoc_logit_adjust([[0.0, 0.0]], [0.8, 0.2]).argmax(1).item()
    1
    """
    z = _logits(logits)
    K = z.shape[1]
    tau = check_real(tau, "tau", low=0, low_open=False)
    out = z - tau * torch.log(torch.as_tensor(_prior(prior_train, "prior_train", K),
                                              dtype=z.dtype, device=z.device))
    if prior_test is not None:
        out = out + tau * torch.log(torch.as_tensor(_prior(prior_test, "prior_test", K),
                                                    dtype=z.dtype, device=z.device))
    return out


# --------------------------------------------------------------------------------------
# CAN
# --------------------------------------------------------------------------------------
def topk_uncertainty(P: Any, k: int = 3, renormalize: bool = True) -> np.ndarray:
    """Top-k entropy uncertainty of each row of a probability matrix, in [0, 1].

    With ``renormalize=True`` (Su's version): the entropy of the ``k`` largest
    probabilities renormalised to sum 1, divided by ``log k``. With ``False`` (the CAN
    paper's): ``-sum_{top k} p log p / log K`` without renormalising, ``K`` the number of
    classes. ``0 log 0 = 0`` in both.

    Parameters
    ----------
    P : array_like, shape (n, K)
        Rows are probability vectors.
    k : int, default 3
        ``2 <= k <= K``.
    renormalize : bool, default True

    Returns
    -------
    numpy.ndarray, shape (n,)

    Raises
    ------
    ValueError
        If ``k < 2``, ``k > K`` or a row of ``P`` is not a probability vector.

    Examples
    --------
    >>> topk_uncertainty([[0.5, 0.5, 0.0]], k=2).round(4).tolist()
    [1.0]
    """
    arr = _prob_rows(P, "P")
    K = arr.shape[1]
    k = check_int(k, "k", minimum=2, maximum=K)
    if not isinstance(renormalize, (bool, np.bool_)):
        raise TypeError(f"renormalize must be a bool; got {renormalize!r}")
    if k < K:   # partial sort: only the k largest entries matter (large K)
        top = np.partition(arr, K - k, axis=1)[:, K - k:]
    else:
        top = arr
    if renormalize:
        top = top / top.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(top > 0, top * np.log(np.where(top > 0, top, 1.0)), 0.0)
    return -terms.sum(axis=1) / np.log(k if renormalize else K)


def alternating_normalize(Y: Any, prior: Any, iters: int = 1, alpha: float = 1.0
                          ) -> np.ndarray:
    """Alternate column scaling toward the prior and row normalisation, ``iters`` rounds.

    Round 1 raises ``Y`` to the power ``alpha``; every round divides each column by its
    mean, multiplies it by ``prior`` and normalises each row to sum 1. Iterated to
    convergence this is the Sinkhorn-Knopp scaling of ``Y ** alpha`` to row sums 1 and
    column sums ``n * prior`` (the chapter's theorem ``imb-thm-sinkhorn``).

    Parameters
    ----------
    Y : array_like, shape (n, K)
        Non-negative entries with no zero column.
    prior : array_like, shape (K,)
    iters : int, default 1
        ``>= 1``.
    alpha : float, default 1.0
        ``> 0``.

    Returns
    -------
    numpy.ndarray, shape (n, K)
        The whole matrix after the last row normalisation.

    Raises
    ------
    ValueError
        On negative entries, a zero column or row, an invalid prior, ``iters < 1`` or
        ``alpha <= 0``.

    Examples
    --------
    >>> alternating_normalize([[0.05, 0.95], [0.5, 0.5]], [0.5, 0.5])[1].round(3).tolist()
    [0.725, 0.275]
    """
    arr = _array(Y, "Y", 2)
    if arr.min() < 0:
        raise ValueError(f"Y must have non-negative entries; got min "
                         f"{float(arr.min())!r}")
    pr = _prior(prior, "prior", arr.shape[1])
    iters = check_int(iters, "iters", minimum=1)
    alpha = check_real(alpha, "alpha", low=0)
    Z = arr ** alpha
    if (Z.sum(axis=0) <= 0).any() or (Z.sum(axis=1) <= 0).any():
        raise ValueError("Y must have no all-zero column or row (the scaling divides by "
                         "column means and row sums)")
    for _ in range(iters):
        Z = Z / Z.mean(axis=0, keepdims=True) * pr[None, :]
        Z = Z / Z.sum(axis=1, keepdims=True)
    return Z


def _can_per_sample(conf: np.ndarray, unc: np.ndarray, pr: np.ndarray,
                    iters: int) -> np.ndarray:
    """Corrected rows of ``unc``, each scaled together with ``conf`` alone.

    After any number of rounds the stacked matrix is ``diag(r) A diag(c)`` with ``A`` the
    (powered) input, so it suffices to carry the column factors ``c``, one row per
    low-confidence sample; this is the same arithmetic as :func:`alternating_normalize` on
    each stacked matrix, vectorised over the low-confidence samples.

    A column whose stacked mean is 0 (all its entries are 0, possible when float32
    probabilities underflow) is left unscaled: its entries stay 0 whatever the factor, and
    scaling it would compute ``0 * inf``. This is the arithmetic of
    :func:`alternating_normalize` on the stacked matrix with that column removed.
    """
    n = conf.shape[0]
    if iters == 1:   # one round, in place (large J x K): unc * prior / column mean
        out = unc + conf.sum(axis=0)[None, :]
        np.divide(unc, out, out=out, where=out > 0)          # 0 where the column is 0
        out *= pr[None, :]
        out /= out.sum(axis=1, keepdims=True)
        return out
    c = np.ones_like(unc)                                     # (J, K)
    for it in range(iters):
        # the rows before this column step are r_k A_k c, with r_k = 1 in round 1 (the
        # powered input, not yet normalised) and r_k = 1 / (A_k . c) afterwards
        if it == 0:
            own = unc
            col = own + (conf.sum(axis=0)[None, :] if n else 0.0)
        else:
            own = unc * c / (unc * c).sum(axis=1, keepdims=True)
            col = c * ((1.0 / (conf @ c.T)).T @ conf) + own if n else own
        scale = np.divide(pr[None, :] * (n + 1), col, out=np.ones_like(col),
                          where=col > 0)
        c = c * scale
    out = unc * c
    return out / out.sum(axis=1, keepdims=True)


def can(P: Any, prior: Any, k: int = 3, tau: float = 0.9, iters: int = 1,
        alpha: float = 1.0, mode: str = "per_sample") -> tuple[np.ndarray, np.ndarray]:
    """CAN: correct low-confidence predictions by alternating normalisation with a prior.

    Rows whose :func:`topk_uncertainty` (Su's renormalised version, with ``k``) is
    ``>= tau`` are low-confidence. In ``"per_sample"`` mode (Su's) each of them is stacked
    with the *original* confident rows and put through :func:`alternating_normalize`; only
    its own new row is kept. In ``"batch"`` mode all low-confidence rows are stacked with
    the confident rows at once. Confident rows are returned unchanged. In per-sample mode
    a column that is 0 in every row of a stacked matrix is left at 0 (see
    ``_can_per_sample``); in batch mode ``P`` must have no all-zero column.

    Parameters
    ----------
    P : array_like, shape (n, K)
        Predicted probabilities, rows summing to 1.
    prior : array_like, shape (K,)
        The class prior to push toward (positive, summing to 1).
    k : int, default 3
        Top-k of the uncertainty, ``2 <= k <= K``.
    tau : float, default 0.9
        Threshold in (0, 1].
    iters : int, default 1
        Rounds of alternating normalisation, ``>= 1``.
    alpha : float, default 1.0
        Power applied in the first round, ``> 0``.
    mode : {"per_sample", "batch"}, default "per_sample"

    Returns
    -------
    corrected : numpy.ndarray, shape (n, K)
    low_confidence : numpy.ndarray of bool, shape (n,)

    Raises
    ------
    ValueError
        If ``tau`` is not in (0, 1], ``iters < 1``, ``alpha <= 0``, the prior is invalid,
        ``mode`` is unknown, ``P`` is not a matrix of probability vectors, or (batch mode)
        ``P`` has an all-zero column.

    Examples
    --------
    >>> Q, low = can([[0.05, 0.95], [0.5, 0.5]], [0.5, 0.5], k=2)
    >>> Q[1].round(3).tolist(), low.tolist()
    ([0.725, 0.275], [False, True])
    """
    arr = _prob_rows(P, "P")
    pr = _prior(prior, "prior", arr.shape[1])
    tau = check_real(tau, "tau", low=0, high=1, high_open=False)
    iters = check_int(iters, "iters", minimum=1)
    alpha = check_real(alpha, "alpha", low=0)
    mode = check_choice(mode, "mode", ("per_sample", "batch"))
    if mode == "batch" and (arr.sum(axis=0) <= 0).any():
        raise ValueError("P must have no all-zero column in batch mode (the scaling "
                         "divides by column means)")
    low = topk_uncertainty(arr, k=k) >= tau
    out = arr.copy()
    if not low.any():
        return out, low
    A = arr if alpha == 1.0 else arr ** alpha
    if mode == "batch":
        Z = np.concatenate([A[~low], A[low]], axis=0)
        out[low] = alternating_normalize(Z, pr, iters=iters)[(~low).sum():]
    else:
        out[low] = _can_per_sample(A[~low], A[low], pr, iters)
    return out, low
