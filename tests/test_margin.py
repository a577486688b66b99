"""Unit tests of kexue_helpers.margin: values, input validation, and cross-checks against
scipy.spatial.distance, scikit-learn's NearestNeighbors and pytorch-metric-learning 2.9
(CosFaceLoss, ArcFaceLoss, AccuracyCalculator)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial import distance as spd

from kexue_helpers import margin as mg

RNG = np.random.default_rng(0)


# ----------------------------------------------------------------------------- distances
def test_distances_on_the_article_example():
    e1, e2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    mid = (e1 + e2) / math.sqrt(2)
    assert mg.cosine_distance(e1, e2) == pytest.approx(1.0, abs=1e-15)
    assert mg.cosine_distance(e1, mid) == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-15)
    gap = mg.triangle_gap("cosine", e1, e2, mid)
    assert gap == pytest.approx((2 - math.sqrt(2)) - 1, abs=1e-14) and gap < 0
    for name in ("chordal", "sqrt_cosine", "angular"):
        assert mg.triangle_gap(name, e1, e2, mid) >= -1e-15
    assert mg.chordal_distance(e1, e2) == pytest.approx(math.sqrt(2), abs=1e-15)
    assert mg.sqrt_cosine_distance(e1, e2) == pytest.approx(1.0, abs=1e-15)
    assert mg.angular_distance(e1, e2) == pytest.approx(math.pi / 2, abs=1e-15)


def test_distances_match_scipy_and_closed_forms():
    x, y = RNG.normal(size=(200, 7)), RNG.normal(size=(200, 7)) * 3.0
    ref_cos = np.array([spd.cosine(a, b) for a, b in zip(x, y)])
    unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
    ref_chord = np.array([spd.euclidean(unit(a), unit(b)) for a, b in zip(x, y)])
    np.testing.assert_allclose(mg.cosine_distance(x, y), ref_cos, atol=1e-13)
    np.testing.assert_allclose(mg.chordal_distance(x, y), ref_chord, atol=1e-13)
    np.testing.assert_allclose(mg.chordal_distance(x, y), np.sqrt(2 * ref_cos), atol=1e-12)
    np.testing.assert_allclose(mg.sqrt_cosine_distance(x, y), np.sqrt(ref_cos), atol=1e-12)
    np.testing.assert_allclose(mg.angular_distance(x, y), np.arccos(1 - ref_cos), atol=1e-7)
    # broadcasting a single vector, scale invariance, and a float for two vectors
    np.testing.assert_allclose(mg.cosine_distance(x, y[0]), mg.cosine_distance(x, 5 * y[0]))
    assert isinstance(mg.angular_distance(x[0], y[0]), float)


def test_angle_is_accurate_for_nearly_parallel_vectors():
    t = 1e-9
    v = np.array([math.cos(t), math.sin(t)])
    assert mg.angular_distance([1.0, 0.0], v) == pytest.approx(t, rel=1e-6)
    assert mg.angular_distance([1.0, 0.0], -v) == pytest.approx(math.pi - t, rel=1e-12)


def test_metrics_never_violate_the_triangle_inequality_and_cosine_does():
    x, y, z = (RNG.normal(size=(20_000, 3)) for _ in range(3))
    for name in ("chordal", "sqrt_cosine", "angular"):
        assert mg.triangle_gap(name, x, y, z).min() > -1e-12
    gap = mg.triangle_gap("cosine", x, y, z)
    assert (gap < 0).mean() > 0.01
    # the relaxed inequality d(x,y) <= 2 (d(x,z) + d(z,y)) always holds for 1 - cos
    dxy = mg.cosine_distance(x, y)
    assert (dxy <= 2 * (dxy + gap) + 1e-12).all()


def test_triangle_gap_accepts_a_callable():
    neg_inner = lambda a, b: -np.sum(np.asarray(a) * np.asarray(b), axis=-1)  # noqa: E731
    assert mg.triangle_gap(neg_inner, [1.0, 0], [1.0, 0], [0, 1.0]) == pytest.approx(1.0)


@pytest.mark.parametrize("fn", [mg.cosine_distance, mg.chordal_distance,
                                mg.angular_distance, mg.sqrt_cosine_distance])
def test_distances_validate(fn):
    with pytest.raises(ValueError, match="x must hold nonzero vectors"):
        fn([0.0, 0.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="y must hold nonzero vectors"):
        fn([1.0, 0.0], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="same dimension"):
        fn([1.0, 0.0], [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="same number of vectors"):
        fn(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="finite"):
        fn([np.nan, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match=r"shape \(d,\) or \(n, d\)"):
        fn(np.ones((2, 2, 2)), [1.0, 0.0])


def test_triangle_gap_validates():
    with pytest.raises(ValueError, match="d must be one of"):
        mg.triangle_gap("euclid", [1.0], [1.0], [1.0])
    with pytest.raises(TypeError, match="d must be a distance name"):
        mg.triangle_gap(3, [1.0], [1.0], [1.0])


# ----------------------------------------------------------------------------- margins
def test_margin_sufficient_values_and_validation():
    assert mg.margin_sufficient(0.1, 0.2, 0.2, 0.6) is True
    assert mg.margin_sufficient(0.1, 0.3, 0.2, 0.6) is False
    assert mg.margin_sufficient(0.2, 0.2, 0.2, 0.6) is False          # strict
    out = mg.margin_sufficient(np.array([0.1, 0.5]), 0.1, 0.1, 0.5)
    assert out.tolist() == [True, False]
    with pytest.raises(ValueError, match="d_z2c2 must hold finite non-negative"):
        mg.margin_sufficient(0.1, 0.1, -0.1, 0.5)
    with pytest.raises(ValueError, match="d_z1c2"):
        mg.margin_sufficient(0.1, 0.1, 0.1, np.inf)


def test_margin_sufficient_implies_retrieval_in_a_metric():
    # random points on the circle: whenever the condition holds (angle metric), z1 is
    # closer to z3 than to z2
    ang = RNG.uniform(-math.pi, math.pi, size=(50_000, 5))
    unit = np.stack([np.cos(ang), np.sin(ang)], -1)
    z1, z3, z2, c1, c2 = (unit[:, k] for k in range(5))
    d = mg.angular_distance
    ok = mg.margin_sufficient(d(z1, c1), d(z3, c1), d(z2, c2), d(z1, c2))
    assert ok.sum() > 100
    assert (d(z1, z3)[ok] < d(z1, z2)[ok]).all()


def test_sqrt_margin_to_cosine_margin():
    assert mg.sqrt_margin_to_cosine_margin(0.1) == pytest.approx(0.2 * math.sqrt(2))
    assert mg.sqrt_margin_to_cosine_margin(0.0) == 0.0
    assert mg.sqrt_margin_to_cosine_margin(0.1, tight=True) == pytest.approx(
        0.2 * math.sqrt(2) - 0.01)
    assert mg.sqrt_margin_to_cosine_margin(math.sqrt(2), tight=True) == pytest.approx(2.0)
    # sufficiency on random configurations, and tightness at a2 = sqrt(2)
    m = 0.3
    mc = mg.sqrt_margin_to_cosine_margin(m, tight=True)
    c1, c2 = RNG.uniform(-1, 1, size=(2, 200_000))
    hold = c1 - c2 > mc
    assert hold.sum() > 1000
    assert (np.sqrt(1 - c2[hold]) - np.sqrt(1 - c1[hold]) > m - 1e-12).all()
    c1_edge = 1 - (math.sqrt(2) - m) ** 2
    assert c1_edge - (-1.0) == pytest.approx(mc)
    with pytest.raises(ValueError, match=r"m must lie in \[0.0, inf\)"):
        mg.sqrt_margin_to_cosine_margin(-0.1)
    with pytest.raises(ValueError, match="m must lie in"):
        mg.sqrt_margin_to_cosine_margin(1.5, tight=True)
    with pytest.raises(ValueError, match="finite"):
        mg.sqrt_margin_to_cosine_margin(float("nan"))


# ----------------------------------------------------------------------------- losses
def _cos_batch(n=64, k=7, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, d, generator=g, dtype=torch.float64)
    # pytorch-metric-learning stores its W in float32: draw W representable there
    W = torch.randn(d, k, generator=g, dtype=torch.float64).float().double()
    target = torch.randint(0, k, (n,), generator=g)
    cos = F.normalize(emb, dim=1) @ F.normalize(W, dim=0)
    return emb, W, target, cos


def test_am_softmax_is_the_log_sum_exp_form():
    _, _, target, cos = _cos_batch()
    s, m = 12.0, 0.3
    rows = torch.arange(len(target))
    diff = s * (cos + m - cos[rows, target][:, None])
    diff[rows, target] = -math.inf
    direct = torch.log1p(torch.exp(diff).sum(1))
    ours = mg.am_softmax_loss(cos, target, s=s, m=m, reduction="none")
    assert torch.allclose(ours, direct, atol=1e-12, rtol=0)
    assert float(mg.am_softmax_loss(cos, target, s=s, m=m)) == pytest.approx(
        float(direct.mean()), abs=1e-12)
    assert float(mg.am_softmax_loss(cos, target, s=s, m=m, reduction="sum")) == \
        pytest.approx(float(direct.sum()), abs=1e-10)
    # m = 0 is the normalised softmax
    ce = F.cross_entropy(s * cos, target)
    assert float(mg.am_softmax_loss(cos, target, s=s, m=0.0)) == pytest.approx(float(ce))


def test_am_softmax_matches_pytorch_metric_learning_cosface():
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    emb, W, target, cos = _cos_batch(seed=3)
    loss_fn = pml.CosFaceLoss(num_classes=W.shape[1], embedding_size=W.shape[0],
                              margin=0.35, scale=64)
    with torch.no_grad():
        loss_fn.W.copy_(W)
    ref = float(loss_fn(emb, target).detach())
    assert float(mg.am_softmax_loss(cos, target, s=64.0, m=0.35)) == pytest.approx(
        ref, rel=1e-10)


def test_arcface_matches_pytorch_metric_learning():
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    emb, W, target, cos = _cos_batch(n=256, seed=4)
    for m_deg in (28.6, 60.0):   # 60 degrees: some targets beyond pi - m
        loss_fn = pml.ArcFaceLoss(num_classes=W.shape[1], embedding_size=W.shape[0],
                                  margin=m_deg, scale=30)
        with torch.no_grad():
            loss_fn.W.copy_(W)
        ref = float(loss_fn(emb, target).detach())
        ours = float(mg.arcface_loss(cos, target, s=30.0, m=math.radians(m_deg)))
        assert ours == pytest.approx(ref, rel=1e-9)


def test_losses_are_differentiable():
    _, _, target, cos = _cos_batch()
    cos = cos.clone().requires_grad_(True)
    (mg.am_softmax_loss(cos, target) + mg.arcface_loss(cos, target)).backward()
    assert torch.isfinite(cos.grad).all() and cos.grad.abs().sum() > 0


@pytest.mark.parametrize("fn", [mg.am_softmax_loss, mg.arcface_loss])
def test_losses_validate(fn):
    _, _, target, cos = _cos_batch(n=4, k=3)
    with pytest.raises(ValueError, match=r"s must lie in \(0.0, inf\); got 0.0"):
        fn(cos, target, s=0.0)
    with pytest.raises(ValueError, match="m must lie in"):
        fn(cos, target, m=-0.1)
    with pytest.raises(ValueError, match=r"cos must hold cosines in \[-1, 1\]"):
        fn(cos * 1.1 + 0.5, target)
    with pytest.raises(ValueError, match=r"target must hold class indices in \[0, 2\]"):
        fn(cos, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="target must have shape"):
        fn(cos, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="integer class indices"):
        fn(cos, torch.zeros(4))
    with pytest.raises(ValueError, match="reduction must be one of"):
        fn(cos, target, reduction="avg")
    with pytest.raises(ValueError, match=r"cos must have shape \(n, k\)"):
        fn(cos[:, 0], target)
    # a cosine a rounding error above 1 is accepted
    fn(torch.clamp(cos, -1, 1) + 1e-7 * (cos > 0.999), target)


# ----------------------------------------------------------------------------- retrieval
def _reference_map_at_r(emb, labels):
    """Independent brute-force MAP@R and P@1: loops over queries, sorting by cosine."""
    u = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    p1, aps = [], []
    for q in range(len(u)):
        others = [j for j in range(len(u)) if j != q]
        order = sorted(others, key=lambda j: -float(u[q] @ u[j]))
        R = sum(labels[j] == labels[q] for j in others)
        if R == 0:
            continue
        p1.append(labels[order[0]] == labels[q])
        hits, total = 0, 0.0
        for i, j in enumerate(order[:R], start=1):
            if labels[j] == labels[q]:
                hits += 1
                total += hits / i
        aps.append(total / R)
    return float(np.mean(p1)), float(np.mean(aps))


def test_retrieval_metrics_match_a_brute_force_reference():
    emb = RNG.normal(size=(60, 4))
    labels = RNG.integers(0, 5, size=60)
    labels[0] = 9          # a lone query: skipped
    p1, mapr = _reference_map_at_r(emb, labels)
    assert mg.retrieval_precision_at_1(emb, labels) == pytest.approx(p1, abs=1e-15)
    assert mg.map_at_r(emb, labels) == pytest.approx(mapr, abs=1e-14)
    assert np.isnan(mg.average_precision_at_r(emb, labels)[0])


def test_retrieval_metrics_match_pytorch_metric_learning():
    acc = pytest.importorskip("pytorch_metric_learning.utils.accuracy_calculator")
    from pytorch_metric_learning.distances import CosineSimilarity
    from pytorch_metric_learning.utils.inference import CustomKNN

    # 120 points: no two cosines of a query tie in float32, in which PML ranks
    centres = RNG.normal(size=(6, 8))
    labels = RNG.integers(0, 6, size=120)
    emb = centres[labels] + 0.9 * RNG.normal(size=(120, 8))
    emb = emb.astype(np.float32).astype(np.float64)
    labels[:3] = [7, 8, 9]  # three lone classes: both skip these queries
    assert np.isnan(mg.average_precision_at_r(emb, labels)[:3]).all()
    calc = acc.AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r"),
                                  k="max_bin_count", device=torch.device("cpu"),
                                  knn_func=CustomKNN(CosineSimilarity()))
    ref = calc.get_accuracy(torch.tensor(emb, dtype=torch.float32), torch.tensor(labels))
    assert mg.retrieval_precision_at_1(emb, labels) == pytest.approx(
        ref["precision_at_1"], abs=1e-12)
    assert mg.map_at_r(emb, labels) == pytest.approx(ref["mean_average_precision_at_r"],
                                                     abs=1e-12)


def test_precision_at_1_matches_sklearn_nearest_neighbors():
    from sklearn.neighbors import NearestNeighbors

    emb = RNG.normal(size=(150, 6))
    labels = RNG.integers(0, 4, size=150)
    nn = NearestNeighbors(n_neighbors=2, metric="cosine").fit(emb)
    idx = nn.kneighbors(emb, return_distance=False)
    nearest = np.where(idx[:, 0] == np.arange(150), idx[:, 1], idx[:, 0])
    assert mg.retrieval_precision_at_1(emb, labels) == pytest.approx(
        float(np.mean(labels[nearest] == labels)))


def test_perfect_and_imperfect_rankings():
    emb = [[1, 0], [1, 0.1], [0, 1], [0.1, 1]]
    assert mg.map_at_r(emb, [0, 0, 1, 1]) == 1.0
    # query 0 ranks [same, other, same]: R = 2, AP@R = (1/1) / 2 = 0.5
    ang = np.radians([0.0, 5.0, 10.0, 20.0])
    emb2 = np.stack([np.cos(ang), np.sin(ang)], 1)
    ap = mg.average_precision_at_r(emb2, np.array([0, 0, 1, 0]))
    assert ap[0] == pytest.approx(0.5)


@pytest.mark.parametrize("fn", [mg.retrieval_precision_at_1, mg.map_at_r])
def test_retrieval_metrics_validate(fn):
    with pytest.raises(ValueError, match="labels must have shape"):
        fn(np.ones((4, 2)), [0, 1])
    with pytest.raises(ValueError, match="labels must hold integers"):
        fn(np.ones((2, 2)), [0.0, 1.0])
    with pytest.raises(ValueError, match="emb must hold nonzero"):
        fn([[0.0, 0.0], [1.0, 0.0]], [0, 0])
    with pytest.raises(ValueError, match="at least one class two members"):
        fn([[1.0, 0.0], [0.0, 1.0]], [0, 1])
    with pytest.raises(ValueError, match=r"emb must have shape \(n, d\) with n >= 2"):
        fn([[1.0, 0.0]], [0])


# ----------------------------------------------------------------------------- certificate
def test_certified_queries_retrieve_perfectly():
    k, d = 8, 16
    centres = RNG.normal(size=(k, d))
    lab_r = np.repeat(np.arange(k), 30)
    lab_q = np.repeat(np.arange(k), 10)
    ref = centres[lab_r] + 0.25 * RNG.normal(size=(len(lab_r), d))
    qry = centres[lab_q] + 0.25 * RNG.normal(size=(len(lab_q), d))
    cert = mg.certified_queries(qry, lab_q, ref, lab_r, centres, distance="angular")
    assert 0 < cert.mean() <= 1
    cq = qry / np.linalg.norm(qry, axis=1, keepdims=True)
    cr = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    sim = cq @ cr.T
    for q in np.flatnonzero(cert):
        same = lab_r == lab_q[q]
        assert sim[q, same].min() > sim[q, ~same].max()
    # the chord and the angle order pairs identically, so they certify alike up to radii
    assert mg.certified_queries(qry, lab_q, ref, lab_r, centres, "chordal").dtype == bool


def test_certified_queries_validate():
    c = np.eye(2)
    with pytest.raises(ValueError, match="distance must be one of"):
        mg.certified_queries(c, [0, 1], c, [0, 1], c, distance="cosine")
    with pytest.raises(ValueError, match="query_labels must hold 2 integers"):
        mg.certified_queries(c, [0, 2], c, [0, 1], c)
    with pytest.raises(ValueError, match="reference must have shape"):
        mg.certified_queries(c, [0, 1], np.ones((2, 3)), [0, 1], c)
