"""Tests of the Johnson-Lindenstrauss helpers (kexue_helpers.jl), theory part."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from sklearn.random_projection import GaussianRandomProjection, johnson_lindenstrauss_min_dim

from kexue_helpers import jl


# ---------------------------------------------------------------- jl_min_dim
@pytest.mark.parametrize("n_points", [2, 3, 10, 1797, 10**4, 10**6, 10**12])
@pytest.mark.parametrize("eps", [1e-3, 0.01, 0.1, 0.25, 1 / 3, 0.5, 0.9, 0.999])
def test_jl_min_dim_sklearn_matches_sklearn_exactly(n_points, eps):
    assert jl.jl_min_dim(n_points, eps, method="sklearn") == int(
        johnson_lindenstrauss_min_dim(n_points, eps=eps))


def test_jl_min_dim_sklearn_matches_on_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(2, 10**9))
        e = float(rng.uniform(1e-4, 1 - 1e-9))
        assert jl.jl_min_dim(n, e, method="sklearn") == int(johnson_lindenstrauss_min_dim(n, eps=e))


@pytest.mark.parametrize("method, constant", [("su", 24.0), ("su-existence", 16.0)])
def test_jl_min_dim_su_is_smallest_integer_above_bound(method, constant):
    for n_points in (2, 10, 500, 10**5):
        for eps in (0.05, 0.1, 0.3, 0.7):
            bound = constant * math.log(n_points) / eps**2
            d = jl.jl_min_dim(n_points, eps, method=method)
            assert d > bound and d - 1 <= bound


def test_jl_min_dim_default_and_known_value():
    # 24 ln(10^4) / 0.01 = 22104.9...: the smallest integer above it
    assert jl.jl_min_dim(10_000, 0.1) == 22105


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(n_points=1, eps=0.1), ValueError, r"n_points must be an integer >= 2; got 1"),
    (dict(n_points=10.0, eps=0.1), TypeError, r"n_points must be an integer"),
    (dict(n_points=10, eps=0.0), ValueError, r"eps must lie in \(0\.0, 1\.0\); got 0\.0"),
    (dict(n_points=10, eps=1.0), ValueError, r"eps must lie in \(0\.0, 1\.0\); got 1\.0"),
    (dict(n_points=10, eps=float("nan")), ValueError, r"eps must be a finite number"),
    (dict(n_points=10, eps=0.1, method="jl"), ValueError, r"method must be one of 'su'"),
])
def test_jl_min_dim_rejects_bad_input(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        jl.jl_min_dim(**kwargs)


# ---------------------------------------------------------------- random matrices
def test_gaussian_matrix_is_seeded_scaled_and_device_independent():
    a = jl.gaussian_matrix(64, 500, seed=3, device="cpu")
    b = jl.gaussian_matrix(64, 500, seed=3, device="cpu")
    assert a.shape == (64, 500) and a.dtype == torch.float64 and torch.equal(a, b)
    assert not torch.equal(a, jl.gaussian_matrix(64, 500, seed=4, device="cpu"))
    # entries N(0, 1/64): the sample variance of 32,000 entries is within 3% of 1/64
    assert abs(float(a.var()) * 64 - 1) < 0.03
    assert abs(float(a.mean())) < 4 / math.sqrt(64 * a.numel())
    f32 = jl.gaussian_matrix(64, 500, seed=3, dtype=torch.float32, device="cpu")
    assert torch.equal(f32, a.float())


def test_gaussian_matrix_matches_sklearn_distribution():
    """sklearn's GaussianRandomProjection has the same entry law N(0, 1/n_components)."""
    from scipy import stats

    n = 50
    ours = jl.gaussian_matrix(n, 4000, seed=0, device="cpu").numpy().ravel()
    sk = GaussianRandomProjection(n_components=n, random_state=0).fit(np.zeros((1, 4000)))
    theirs = sk.components_.ravel()
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3
    assert abs(ours.var() / theirs.var() - 1) < 0.02


def test_gaussian_matrix_rejects_bad_dimensions():
    with pytest.raises(ValueError, match="n_components must be an integer >= 1; got 0"):
        jl.gaussian_matrix(0, 5)
    with pytest.raises(ValueError, match="n_features must be an integer >= 1; got -2"):
        jl.gaussian_matrix(3, -2)


def test_gaussian_projection_types_and_values():
    x = np.random.default_rng(0).normal(size=(20, 30))
    y = jl.gaussian_projection(x, 7, seed=5)
    assert isinstance(y, np.ndarray) and y.shape == (20, 7) and y.dtype == np.float64
    a = jl.gaussian_matrix(7, 30, seed=5, device="cpu").numpy()
    np.testing.assert_allclose(y, x @ a.T, rtol=1e-12, atol=1e-12)
    yt = jl.gaussian_projection(torch.from_numpy(x).float(), 7, seed=5, device="cpu")
    assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float32
    np.testing.assert_allclose(yt.numpy(), y, rtol=1e-5, atol=1e-5)
    yi = jl.gaussian_projection(np.ones((3, 30), dtype=np.int64), 4, seed=1)
    assert yi.dtype == np.float64


def test_gaussian_projection_preserves_norms_on_average():
    x = np.random.default_rng(1).normal(size=(400, 200))
    y = jl.gaussian_projection(x, 100, seed=2)
    ratio = (y**2).sum(1) / (x**2).sum(1)
    # each ratio is chi2_100 / 100: mean 1, sd sqrt(0.02); the mean of 400 within 5 sd
    assert abs(ratio.mean() - 1) < 5 * math.sqrt(0.02 / 400)


@pytest.mark.parametrize("x, k, exc, pattern", [
    (np.ones(5), 2, ValueError, r"x must have 2 dimension\(s\)"),
    (np.full((3, 3), np.nan), 2, ValueError, r"x must contain only finite values"),
    (np.ones((3, 3)), 0, ValueError, r"n_components must be an integer >= 1"),
])
def test_gaussian_projection_rejects_bad_input(x, k, exc, pattern):
    with pytest.raises(exc, match=pattern):
        jl.gaussian_projection(x, k)


# ---------------------------------------------------------------- pairwise_distortion
def _brute_ratios(x, y):
    dx, dy = pdist(x, "sqeuclidean"), pdist(y, "sqeuclidean")
    keep = dx > 0
    return dy[keep] / dx[keep]


@pytest.mark.parametrize("block_size", [1, 7, 64, None])
def test_pairwise_distortion_matches_brute_force(block_size):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 40)) + 5.0  # off-centre, to exercise the centring
    y = jl.gaussian_projection(x, 10, seed=1)
    s = jl.pairwise_distortion(x, y, eps=[0.2, 0.5], block_size=block_size)
    r = _brute_ratios(x, y)
    assert s.n_pairs == r.size == 150 * 149 // 2 and s.n_zero == 0
    assert s.min == pytest.approx(r.min(), rel=1e-9)
    assert s.max == pytest.approx(r.max(), rel=1e-9)
    assert s.mean == pytest.approx(r.mean(), rel=1e-9)
    assert s.std == pytest.approx(r.std(), rel=1e-6)
    assert s.worst == pytest.approx(max(1 - r.min(), r.max() - 1), rel=1e-9)
    for e in (0.2, 0.5):
        assert s.fraction_outside(e) == np.mean((r < 1 - e) | (r > 1 + e))
    assert s.ratios is not None
    np.testing.assert_allclose(np.sort(s.ratios), np.sort(r), rtol=1e-9)
    # an eps not requested is answered from the kept ratios
    assert s.fraction_outside(0.3) == np.mean((r < 0.7) | (r > 1.3))


def test_pairwise_distortion_skips_coincident_points():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 2.0]]) * 1e3
    y = 3 * x
    s = jl.pairwise_distortion(x, y)
    assert s.n_zero == 1 and s.n_pairs == 5
    assert s.min == pytest.approx(9.0) and s.max == pytest.approx(9.0)


def test_pairwise_distortion_without_kept_ratios_needs_requested_eps():
    x = np.random.default_rng(2).normal(size=(30, 5))
    s = jl.pairwise_distortion(x, x * 1.1, eps=0.1, keep_ratios=False)
    assert s.ratios is None
    assert s.fraction_outside(0.1) == 1.0  # 1.21 > 1.1 for every pair
    with pytest.raises(ValueError, match=r"eps=0\.3 was not requested"):
        s.fraction_outside(0.3)


def test_pairwise_distortion_accepts_torch_and_float32():
    x = torch.randn(40, 8, generator=torch.Generator().manual_seed(0))
    s = jl.pairwise_distortion(x.float(), (2 * x).float())
    assert s.min == pytest.approx(4.0, rel=1e-5) and s.max == pytest.approx(4.0, rel=1e-5)


@pytest.mark.parametrize("x, y, kwargs, pattern", [
    (np.ones((1, 3)), np.ones((1, 2)), {}, r"x must hold at least 2 points"),
    (np.ones((4, 3)), np.ones((3, 2)), {}, r"y must have one row per row of x \(4\)"),
    (np.ones((4, 3)), np.full((4, 2), np.nan), {}, r"y must contain only finite values"),
    (np.eye(4), np.eye(4), dict(eps=0.0), r"eps must lie in \(0\.0, inf\); got 0\.0"),
    (np.eye(4), np.eye(4), dict(eps=[0.1, -1.0]), r"eps must lie in"),
    (np.eye(4), np.eye(4), dict(block_size=0), r"block_size must be an integer >= 1"),
    (np.ones((4, 3)), np.ones((4, 2)), {}, r"at least two distinct points"),
])
def test_pairwise_distortion_rejects_bad_input(x, y, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        jl.pairwise_distortion(x, y, **kwargs)
