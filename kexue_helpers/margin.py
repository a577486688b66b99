"""Distances on directions, the margin condition for retrieval, and margin softmax losses.

Defined in the chapter "From the triangle inequality to margin softmax"
(``book/margin_softmax.md``), after Su Jianlin, https://kexue.fm/archives/8656.

Conventions
-----------
For nonzero vectors ``x``, ``y`` with ``cos = x.y / (|x| |y|)``:

* :func:`cosine_distance` is ``1 - cos``; not a metric (it breaks the triangle inequality);
* :func:`chordal_distance` is ``|x/|x| - y/|y||| = sqrt(2 - 2 cos)``, a metric on
  directions; Su's ``sqrt(1 - cos)`` is this divided by ``sqrt(2)``;
* :func:`angular_distance` is the angle ``arccos(cos)`` in ``[0, pi]``, the geodesic
  metric on the sphere.

Distances take vectors of shape ``(d,)`` (and return a ``float``) or batches of shape
``(n, d)`` (broadcast against ``(d,)`` or ``(n, d)``; they return an array of shape
``(n,)``). They are computed in float64 from the normalised vectors, the chord as the norm
of their difference and the angle as ``2 atan2(|u - v|, |u + v|)``, which keeps full
relative precision for nearly parallel vectors (``arccos`` of a cosine near 1 does not).

Retrieval metrics use the cosine similarity, exclude each query from its own candidates
and follow the conventions of pytorch-metric-learning's ``AccuracyCalculator``
(Musgrave, Belongie & Lim 2020): a query whose class has no other member is skipped, and
MAP@R averages, over queries, ``(1/R) sum_{i<=R} P@i [item i relevant]`` with ``R`` the
number of other members of the query's class.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .core import check_choice, check_real

__all__ = [
    "cosine_distance",
    "chordal_distance",
    "angular_distance",
    "sqrt_cosine_distance",
    "DISTANCES",
    "triangle_gap",
    "margin_sufficient",
    "sqrt_margin_to_cosine_margin",
    "am_softmax_loss",
    "arcface_loss",
    "retrieval_precision_at_1",
    "map_at_r",
    "average_precision_at_r",
    "certified_queries",
]

_REDUCTIONS = ("mean", "sum", "none")
#: cosines may exceed [-1, 1] by this much (rounding) before am_softmax_loss rejects them
COS_TOLERANCE = 1e-5


# --------------------------------------------------------------------------------------
# distances on directions
# --------------------------------------------------------------------------------------
def _vectors(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array of shape (d,) or (n, d); got "
                        f"{type(x).__name__}") from exc
    if arr.ndim not in (1, 2) or arr.shape[-1] == 0:
        raise ValueError(f"{name} must have shape (d,) or (n, d) with d >= 1; got shape "
                         f"{arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must contain only finite values; found "
                         f"{int((~np.isfinite(arr)).sum())} NaN or infinite entries")
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name} must hold nonzero vectors (a direction is undefined for "
                         f"0); found {int((norms == 0).sum())} zero vector(s)")
    return arr / norms


def _unit_pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    u, v = _vectors(x, "x"), _vectors(y, "y")
    if u.shape[-1] != v.shape[-1]:
        raise ValueError(f"x and y must have the same dimension; got shapes "
                         f"{u.shape} and {v.shape}")
    if u.ndim == 2 and v.ndim == 2 and u.shape[0] != v.shape[0]:
        raise ValueError(f"x and y must hold the same number of vectors; got shapes "
                         f"{u.shape} and {v.shape}")
    return u, v, u.ndim == 1 and v.ndim == 1


def _out(values: np.ndarray, scalar: bool) -> float | np.ndarray:
    return float(values) if scalar else values


def cosine_distance(x: Any, y: Any) -> float | np.ndarray:
    """Cosine distance ``1 - cos(x, y)`` (not a metric).

    Parameters
    ----------
    x, y : array_like
        Nonzero vectors of shape ``(d,)``, or batches of shape ``(n, d)`` (one of them may
        be a single vector, broadcast against the other).

    Returns
    -------
    float or numpy.ndarray
        A float for two vectors, else an array of shape ``(n,)``; values in ``[0, 2]``.

    Raises
    ------
    ValueError
        If a vector is zero, the shapes do not match, or an entry is not finite.

    Examples
    --------
    >>> round(cosine_distance([1, 0], [0, 1]), 12)
    1.0
    """
    u, v, scalar = _unit_pair(x, y)
    # 1 - cos = |u - v|^2 / 2 exactly for unit vectors; accurate near 0
    return _out(0.5 * np.sum((u - v) ** 2, axis=-1), scalar)


def chordal_distance(x: Any, y: Any) -> float | np.ndarray:
    """Chordal distance ``|x/|x| - y/|y||| = sqrt(2 - 2 cos(x, y))``, a metric on directions.

    Parameters
    ----------
    x, y : array_like
        Nonzero vectors of shape ``(d,)`` or ``(n, d)`` (see :func:`cosine_distance`).

    Returns
    -------
    float or numpy.ndarray
        Values in ``[0, 2]``.

    Raises
    ------
    ValueError
        If a vector is zero, the shapes do not match, or an entry is not finite.

    Examples
    --------
    >>> round(chordal_distance([1, 0], [-1, 0]), 12)
    2.0
    """
    u, v, scalar = _unit_pair(x, y)
    return _out(np.linalg.norm(u - v, axis=-1), scalar)


def sqrt_cosine_distance(x: Any, y: Any) -> float | np.ndarray:
    """Su's metric ``sqrt(1 - cos(x, y))``: the chordal distance divided by ``sqrt(2)``.

    Parameters
    ----------
    x, y : array_like
        Nonzero vectors of shape ``(d,)`` or ``(n, d)`` (see :func:`cosine_distance`).

    Returns
    -------
    float or numpy.ndarray
        Values in ``[0, sqrt(2)]``.

    Raises
    ------
    ValueError
        If a vector is zero, the shapes do not match, or an entry is not finite.

    Examples
    --------
    >>> round(sqrt_cosine_distance([1, 0], [0, 1]), 12)
    1.0
    """
    u, v, scalar = _unit_pair(x, y)
    return _out(np.linalg.norm(u - v, axis=-1) / math.sqrt(2.0), scalar)


def angular_distance(x: Any, y: Any) -> float | np.ndarray:
    """Angle ``arccos(cos(x, y))`` in radians, the geodesic metric on the sphere.

    Computed as ``2 atan2(|u - v|, |u + v|)`` for the unit vectors ``u``, ``v``, which is
    accurate for nearly parallel and nearly opposite vectors.

    Parameters
    ----------
    x, y : array_like
        Nonzero vectors of shape ``(d,)`` or ``(n, d)`` (see :func:`cosine_distance`).

    Returns
    -------
    float or numpy.ndarray
        Values in ``[0, pi]``.

    Raises
    ------
    ValueError
        If a vector is zero, the shapes do not match, or an entry is not finite.

    Examples
    --------
    >>> round(angular_distance([1, 0], [0, 1]), 12) == round(math.pi / 2, 12)
    True
    """
    u, v, scalar = _unit_pair(x, y)
    chord = np.linalg.norm(u - v, axis=-1)
    anti = np.linalg.norm(u + v, axis=-1)
    return _out(2.0 * np.arctan2(chord, anti), scalar)


#: The distances by name, for :func:`triangle_gap`.
DISTANCES: dict[str, Callable[[Any, Any], float | np.ndarray]] = {
    "cosine": cosine_distance,
    "chordal": chordal_distance,
    "sqrt_cosine": sqrt_cosine_distance,
    "angular": angular_distance,
}


def triangle_gap(d: str | Callable[[Any, Any], Any], x: Any, y: Any,
                 z: Any) -> float | np.ndarray:
    """Slack of the triangle inequality through ``z``: ``d(x, z) + d(z, y) - d(x, y)``.

    A negative value is a violation of the triangle inequality.

    Parameters
    ----------
    d : str or callable
        A distance ``d(a, b)``, or the name of one of :data:`DISTANCES` (``"cosine"``,
        ``"chordal"``, ``"sqrt_cosine"``, ``"angular"``).
    x, y, z : array_like
        Points of shape ``(d,)``, or batches of shape ``(n, d)`` of triples.

    Returns
    -------
    float or numpy.ndarray
        A float for single points, else one gap per triple.

    Raises
    ------
    TypeError
        If ``d`` is neither a name nor callable.
    ValueError
        If ``d`` is an unknown name, or the distance rejects the points.

    Examples
    --------
    >>> e1, e2 = [1.0, 0.0], [0.0, 1.0]
    >>> mid = [2 ** -0.5, 2 ** -0.5]
    >>> triangle_gap("cosine", e1, e2, mid) < 0
    True
    """
    if isinstance(d, str):
        dist = DISTANCES[check_choice(d, "d", tuple(DISTANCES))]
    elif callable(d):
        dist = d
    else:
        raise TypeError(f"d must be a distance name ({', '.join(DISTANCES)}) or a callable "
                        f"d(a, b); got {d!r} of type {type(d).__name__}")
    gap = np.asarray(dist(x, z), dtype=np.float64) + np.asarray(dist(z, y), dtype=np.float64) \
        - np.asarray(dist(x, y), dtype=np.float64)
    return float(gap) if gap.ndim == 0 else gap


# --------------------------------------------------------------------------------------
# the margin condition
# --------------------------------------------------------------------------------------
def margin_sufficient(d_z1c1: Any, d_z3c1: Any, d_z2c2: Any,
                      d_z1c2: Any) -> bool | np.ndarray:
    """Su's sufficient condition for retrieval, ``d(z1,c1) + d(z3,c1) + d(z2,c2) < d(z1,c2)``.

    With ``z1``, ``z3`` in class ``c1``, ``z2`` in class ``c2`` and ``d`` a metric, the
    condition implies ``d(z1, z3) < d(z1, z2)``: ``z1`` retrieves ``z3`` before ``z2``.

    Parameters
    ----------
    d_z1c1, d_z3c1, d_z2c2, d_z1c2 : float or array_like
        Non-negative distances (broadcast against each other).

    Returns
    -------
    bool or numpy.ndarray
        A bool for scalars, else a boolean array.

    Raises
    ------
    ValueError
        If a distance is negative or not finite.

    Examples
    --------
    >>> margin_sufficient(0.1, 0.2, 0.2, 0.6)
    True
    >>> margin_sufficient(0.1, 0.3, 0.3, 0.6)
    False
    """
    vals = []
    for name, v in (("d_z1c1", d_z1c1), ("d_z3c1", d_z3c1), ("d_z2c2", d_z2c2),
                    ("d_z1c2", d_z1c2)):
        arr = np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v,
                         dtype=np.float64)
        if not np.isfinite(arr).all() or (arr < 0).any():
            raise ValueError(f"{name} must hold finite non-negative distances; got {v!r}")
        vals.append(arr)
    out = vals[0] + vals[1] + vals[2] < vals[3]
    return bool(out) if out.ndim == 0 else out


def sqrt_margin_to_cosine_margin(m: float, *, tight: bool = False) -> float:
    """A cosine margin that guarantees the margin ``m`` in Su's metric ``sqrt(1 - cos)``.

    With ``a_i = sqrt(1 - cos(z, c_i))``, ``cos(z,c1) - cos(z,c2) = (a2 - a1)(a2 + a1)``
    and ``a1 + a2 <= 2 sqrt(2)``, so ``cos(z,c1) - cos(z,c2) > 2 sqrt(2) m`` implies
    ``a2 - a1 > m`` (the default). The smallest cosine margin with this guarantee for all
    configurations is ``2 sqrt(2) m - m^2`` (``tight=True``), attained at ``a2 = sqrt(2)``.

    Two limits. No configuration has a cosine gap above 2, so a returned value above 2 is
    a margin no example can meet: with the default (loose) conversion this happens for
    ``m > 1/sqrt(2)``, with ``tight=True`` only at ``m = sqrt(2)`` (value 2); nothing warns.
    Conversely, a cosine margin ``m' <= 2`` guarantees a margin of at least
    ``sqrt(2) - sqrt(2 - m')`` in ``sqrt(1 - cos)``.

    Parameters
    ----------
    m : float
        The margin in ``sqrt(1 - cos)``, ``m >= 0`` (and ``m <= sqrt(2)`` when ``tight``:
        no larger margin is possible).
    tight : bool, default False
        Return the smallest sufficient cosine margin instead of ``2 sqrt(2) m``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``m`` is negative or not finite, or ``tight`` and ``m > sqrt(2)``.

    Examples
    --------
    >>> round(sqrt_margin_to_cosine_margin(0.1), 6)
    0.282843
    >>> round(sqrt_margin_to_cosine_margin(0.1, tight=True), 6)
    0.272843
    """
    m = check_real(m, "m", low=0.0, low_open=False,
                   high=math.sqrt(2.0) if tight else None, high_open=not tight)
    if tight:
        return 2.0 * math.sqrt(2.0) * m - m * m
    return 2.0 * math.sqrt(2.0) * m


# --------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------
def _loss_inputs(cos: Any, target: Any, s: float, m: float,
                 reduction: str) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    s = check_real(s, "s", low=0.0)
    m = check_real(m, "m", low=0.0, low_open=False)
    check_choice(reduction, "reduction", _REDUCTIONS)
    if not isinstance(cos, torch.Tensor):
        cos = torch.as_tensor(np.asarray(cos, dtype=np.float64))
    if cos.ndim != 2 or cos.shape[0] == 0 or cos.shape[1] < 2:
        raise ValueError(f"cos must have shape (n, k) with n >= 1 and k >= 2 classes; got "
                         f"shape {tuple(cos.shape)}")
    if not cos.is_floating_point():
        cos = cos.double()
    with torch.no_grad():
        if not bool(torch.isfinite(cos).all()):
            raise ValueError("cos must contain only finite values")
        worst = float(cos.abs().max())
    if worst > 1.0 + COS_TOLERANCE:
        raise ValueError(f"cos must hold cosines in [-1, 1] (tolerance {COS_TOLERANCE}); "
                         f"got an entry of absolute value {worst!r}")
    if not isinstance(target, torch.Tensor):
        target = torch.as_tensor(np.asarray(target))
    if target.ndim != 1 or target.shape[0] != cos.shape[0]:
        raise ValueError(f"target must have shape ({cos.shape[0]},), one class per row of "
                         f"cos; got shape {tuple(target.shape)}")
    if target.is_floating_point() or target.dtype == torch.bool:
        raise ValueError(f"target must hold integer class indices; got dtype {target.dtype}")
    target = target.to(device=cos.device, dtype=torch.long)
    lo, hi = int(target.min()), int(target.max())
    if lo < 0 or hi >= cos.shape[1]:
        raise ValueError(f"target must hold class indices in [0, {cos.shape[1] - 1}]; got "
                         f"values from {lo} to {hi}")
    return cos, target, s, m


def am_softmax_loss(cos: Any, target: Any, s: float = 30.0, m: float = 0.35,
                    reduction: str = "mean") -> torch.Tensor:
    """Additive-margin softmax (AM-Softmax, CosFace) loss.

    ``log(1 + sum_{i != y} exp(s [cos_i + m - cos_y]))``, computed as the cross-entropy of
    the logits ``s (cos - m onehot(y))``, which is the same number.

    Parameters
    ----------
    cos : torch.Tensor or array_like
        Cosines between each embedding and each class centre, shape ``(n, k)``, in
        ``[-1, 1]``; gradients flow through a tensor.
    target : torch.Tensor or array_like
        Integer classes, shape ``(n,)``, in ``[0, k)``.
    s : float, default 30.0
        Scale (inverse temperature), ``s > 0``.
    m : float, default 0.35
        Additive cosine margin, ``m >= 0`` (``m = 0``: normalised softmax).
    reduction : {"mean", "sum", "none"}, default "mean"
        As in :func:`torch.nn.functional.cross_entropy`.

    Returns
    -------
    torch.Tensor
        A scalar, or shape ``(n,)`` with ``reduction="none"``.

    Raises
    ------
    ValueError
        If ``s <= 0``, ``m < 0``, a cosine lies outside ``[-1, 1]`` beyond
        ``COS_TOLERANCE`` (the module constant), a target is out of range or the shapes do not match, or
        ``reduction`` is unknown.

    Examples
    --------
    >>> cos = torch.tensor([[0.9, 0.1], [0.2, 0.7]])
    >>> round(float(am_softmax_loss(cos, torch.tensor([0, 1]), s=10, m=0.2)), 6)
    0.025531
    """
    cos, target, s, m = _loss_inputs(cos, target, s, m, reduction)
    onehot = F.one_hot(target, cos.shape[1]).to(cos.dtype)
    return F.cross_entropy(s * (cos - m * onehot), target, reduction=reduction)


def arcface_loss(cos: Any, target: Any, s: float = 64.0, m: float = 0.5,
                 reduction: str = "mean") -> torch.Tensor:
    """Additive angular margin (ArcFace) loss: the target logit is ``s cos(theta_y + m)``.

    Beyond ``theta_y > pi - m``, where ``cos(theta + m)`` would turn back up, the target
    logit is ``s (cos theta_y - m sin m)`` (the convention of pytorch-metric-learning's
    ``ArcFaceLoss``, which takes ``m`` in degrees).

    Parameters
    ----------
    cos : torch.Tensor or array_like
        Cosines, shape ``(n, k)``, in ``[-1, 1]``.
    target : torch.Tensor or array_like
        Integer classes, shape ``(n,)``, in ``[0, k)``.
    s : float, default 64.0
        Scale, ``s > 0``.
    m : float, default 0.5
        Angular margin in radians, ``0 <= m``.
    reduction : {"mean", "sum", "none"}, default "mean"

    Returns
    -------
    torch.Tensor

    Raises
    ------
    ValueError
        As :func:`am_softmax_loss`.

    Examples
    --------
    >>> cos = torch.tensor([[1.0, 0.0]])
    >>> float(arcface_loss(cos, torch.tensor([0]), s=1.0, m=0.0)) < 0.32
    True
    """
    cos, target, s, m = _loss_inputs(cos, target, s, m, reduction)
    rows = torch.arange(cos.shape[0], device=cos.device)
    c_y = cos[rows, target].clamp(-1.0, 1.0)
    theta = torch.acos(c_y.clamp(-1.0 + 1e-7, 1.0 - 1e-7)) if c_y.requires_grad \
        else torch.acos(c_y)
    modified = torch.where(theta <= math.pi - m, torch.cos(theta + m),
                           c_y - m * math.sin(m))
    logits = cos.clone()
    logits[rows, target] = modified.to(cos.dtype)
    return F.cross_entropy(s * logits, target, reduction=reduction)


# --------------------------------------------------------------------------------------
# retrieval
# --------------------------------------------------------------------------------------
def _retrieval_inputs(emb: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    u = _vectors(emb, "emb")
    if u.ndim != 2 or u.shape[0] < 2:
        raise ValueError(f"emb must have shape (n, d) with n >= 2; got shape {u.shape}")
    lab = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) \
        else np.asarray(labels)
    if lab.shape != (u.shape[0],):
        raise ValueError(f"labels must have shape ({u.shape[0]},), one per row of emb; got "
                         f"shape {lab.shape}")
    if lab.dtype.kind not in "iu":
        raise ValueError(f"labels must hold integers; got dtype {lab.dtype}")
    return u, lab


def _ranked_relevance(u: np.ndarray, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per query: relevance of the candidates ranked by cosine (self excluded), R."""
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :-1]     # drop self (last)
    rel = lab[order] == lab[:, None]
    counts = (lab[:, None] == lab[None, :]).sum(1) - 1
    return rel, counts


def retrieval_precision_at_1(emb: Any, labels: Any) -> float:
    """Precision@1 of cosine retrieval: how often a point's nearest other point shares its class.

    Each point queries all the others (itself excluded) by cosine similarity; points whose
    class has no other member are skipped (pytorch-metric-learning's convention).

    Parameters
    ----------
    emb : array_like
        Nonzero embeddings, shape ``(n, d)``, ``n >= 2``.
    labels : array_like
        Integer classes, shape ``(n,)``.

    Returns
    -------
    float
        In ``[0, 1]``.

    Raises
    ------
    ValueError
        If the shapes do not match, an embedding is zero, labels are not integers, or no
        class has two members.

    Examples
    --------
    >>> retrieval_precision_at_1([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], [0, 0, 1, 1])
    1.0
    """
    u, lab = _retrieval_inputs(emb, labels)
    rel, counts = _ranked_relevance(u, lab)
    keep = counts > 0
    if not keep.any():
        raise ValueError("labels must give at least one class two members; every class "
                         "has one")
    return float(rel[keep, 0].mean())


def average_precision_at_r(emb: Any, labels: Any) -> np.ndarray:
    """AP@R of every query (NaN for a query whose class has no other member).

    Parameters
    ----------
    emb : array_like
        Nonzero embeddings, shape ``(n, d)``, ``n >= 2``.
    labels : array_like
        Integer classes, shape ``(n,)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``: ``(1/R) sum_{i<=R} P@i [i-th candidate relevant]``.

    Raises
    ------
    ValueError
        As :func:`retrieval_precision_at_1`.

    Examples
    --------
    >>> average_precision_at_r([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], [0, 0, 1, 1])
    array([1., 1., 1., 1.])
    """
    u, lab = _retrieval_inputs(emb, labels)
    rel, counts = _ranked_relevance(u, lab)
    n = len(lab)
    ranks = np.arange(1, n)
    within_r = ranks[None, :] <= counts[:, None]
    hits = rel & within_r
    prec = np.cumsum(hits, axis=1) / ranks[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (prec * hits).sum(1) / counts
    ap[counts == 0] = np.nan
    return ap


def map_at_r(emb: Any, labels: Any) -> float:
    """MAP@R of cosine retrieval (Musgrave, Belongie & Lim 2020).

    For a query of a class with ``R`` other members, AP@R is
    ``(1/R) sum_{i=1}^{R} P@i [the i-th nearest other point shares the class]``; MAP@R is
    its mean over queries (those with ``R = 0`` skipped). It is 1 exactly when every query
    ranks all of its class before any other point.

    Parameters
    ----------
    emb : array_like
        Nonzero embeddings, shape ``(n, d)``, ``n >= 2``.
    labels : array_like
        Integer classes, shape ``(n,)``.

    Returns
    -------
    float
        In ``[0, 1]``.

    Raises
    ------
    ValueError
        As :func:`retrieval_precision_at_1`.

    Examples
    --------
    >>> map_at_r([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], [0, 0, 1, 1])
    1.0
    """
    ap = average_precision_at_r(emb, labels)
    if np.isnan(ap).all():
        raise ValueError("labels must give at least one class two members; every class "
                         "has one")
    return float(np.nanmean(ap))


def certified_queries(query: Any, query_labels: Any, reference: Any, reference_labels: Any,
                      centers: Any, distance: str = "chordal") -> np.ndarray:
    """Queries for which the margin condition certifies perfect retrieval.

    With class radii ``R_c = max d(z, c)`` over the references ``z`` of class ``c``, a
    query ``q`` of class ``y`` is certified when ``d(q, c_y) + R_y + R_i < d(q, c_i)`` for
    every class ``i != y`` that has references. By two triangle inequalities every
    reference of class ``y`` is then strictly closer to ``q`` than every other reference,
    in the metric ``distance``.

    Parameters
    ----------
    query : array_like
        Shape ``(n, d)``.
    query_labels : array_like
        Integer classes, shape ``(n,)``, indices into ``centers``.
    reference : array_like
        Shape ``(N, d)``.
    reference_labels : array_like
        Integer classes, shape ``(N,)``.
    centers : array_like
        Class centres, shape ``(k, d)``.
    distance : {"chordal", "sqrt_cosine", "angular"}, default "chordal"
        A metric (the cosine distance is refused: the argument needs the triangle
        inequality).

    Returns
    -------
    numpy.ndarray
        Boolean, shape ``(n,)``.

    Raises
    ------
    ValueError
        If ``distance`` is not a metric name, shapes disagree, or a label is out of range.

    Examples
    --------
    >>> c = [[1, 0], [0, 1]]
    >>> certified_queries([[1, 0.05]], [0], [[1, 0.1], [0.1, 1]], [0, 1], c).tolist()
    [True]
    """
    check_choice(distance, "distance", ("chordal", "sqrt_cosine", "angular"))
    dist = DISTANCES[distance]
    cen = _vectors(centers, "centers")
    if cen.ndim != 2:
        raise ValueError(f"centers must have shape (k, d); got shape {cen.shape}")
    k = cen.shape[0]
    out = []
    for name, pts, labs in (("query", query, query_labels),
                            ("reference", reference, reference_labels)):
        u = _vectors(pts, name)
        if u.ndim != 2 or u.shape[1] != cen.shape[1]:
            raise ValueError(f"{name} must have shape (n, {cen.shape[1]}); got {u.shape}")
        lab = np.asarray(labs)
        if lab.shape != (u.shape[0],) or lab.dtype.kind not in "iu" \
                or lab.min() < 0 or lab.max() >= k:
            raise ValueError(f"{name}_labels must hold {u.shape[0]} integers in "
                             f"[0, {k - 1}]; got shape {lab.shape}, dtype {lab.dtype}")
        d_all = np.stack([dist(u, cen[c]) for c in range(k)], axis=1)
        out.append((d_all, lab))
    (dq, lq), (dr, lr) = out
    radius = np.full(k, np.nan)
    for c in np.unique(lr):
        radius[c] = dr[lr == c, c].max()
    n = len(lq)
    own = dq[np.arange(n), lq]
    need = own[:, None] + radius[lq][:, None] + radius[None, :]
    ok = (need < dq) | np.isnan(radius)[None, :]
    ok[np.arange(n), lq] = True
    return ok.all(1) & ~np.isnan(radius[lq])
