"""Tests of kexue_helpers.hsic against dense O(n^3) references, Gretton's gamma test and hyppo."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.metrics.pairwise import rbf_kernel

from kexue_helpers import hsic as H
from kexue_helpers.core import make_generator


# --------------------------------------------------------------------------------------
# dense references, written straight from the papers
# --------------------------------------------------------------------------------------
def _col(a):
    a = np.asarray(a, dtype=float)
    return a[:, None] if a.ndim == 1 else a


def dense_kernel(a, sigma):
    a = _col(a)
    d2 = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * sigma**2))


def ref_biased(K, L):
    """Gretton et al. (2005): Tr(K H L H) / n^2 with explicit matrix products."""
    n = K.shape[0]
    Hc = np.eye(n) - np.ones((n, n)) / n
    return np.trace(K @ Hc @ L @ Hc) / n**2


def ref_unbiased(K, L):
    """Song et al. (2012), eq. (5), with explicit matrix products."""
    n = K.shape[0]
    Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(n)
    return (np.trace(Kt @ Lt) + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ Kt @ Lt @ one) / (n * (n - 3))


def ref_gamma_test(K, L):
    """Gretton et al. (2007)'s gamma test, a line-by-line port of hsicTestGamma.m."""
    n = K.shape[0]
    Hc = np.eye(n) - np.ones((n, n)) / n
    Kc, Lc = Hc @ K @ Hc, Hc @ L @ Hc
    test_stat = 1 / n * np.sum(Kc.T * Lc)                     # n * HSIC_b
    var_hsic = (1 / 6 * Kc * Lc) ** 2
    var_hsic = 1 / n / (n - 1) * (var_hsic.sum() - np.trace(var_hsic))
    var_hsic = 72 * (n - 4) * (n - 5) / n / (n - 1) / (n - 2) / (n - 3) * var_hsic
    K0, L0 = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(n)
    mu_x = 1 / n / (n - 1) * one @ K0 @ one
    mu_y = 1 / n / (n - 1) * one @ L0 @ one
    m_hsic = 1 / n * (1 + mu_x * mu_y - mu_x - mu_y)
    alpha = m_hsic**2 / var_hsic
    beta = var_hsic * n / m_hsic
    return test_stat, stats.gamma.sf(test_stat, alpha, scale=beta), m_hsic, var_hsic


def sample(kind, n, seed, noise=0.3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    if kind == "independent":
        return x, rng.normal(size=n)
    if kind == "square":
        return x, x**2 + noise * rng.normal(size=n)
    if kind == "sine":
        return x, np.sin(2 * x) + noise * rng.normal(size=n)
    if kind == "multi":
        xx = rng.normal(size=(n, 3))
        return xx, np.c_[np.cos(xx[:, 0]), xx[:, 1] * xx[:, 2]] + noise * rng.normal(size=(n, 2))
    raise AssertionError(kind)


# --------------------------------------------------------------------------------------
# kernels and bandwidths
# --------------------------------------------------------------------------------------
def test_gaussian_kernel_matches_sklearn_rbf():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 3)), rng.normal(size=(25, 3))
    sigma = 1.7
    ours = H.gaussian_kernel(a, b, sigma=sigma, device="cpu").numpy()
    ref = rbf_kernel(a, b, gamma=1 / (2 * sigma**2))
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(H.gaussian_kernel(a, sigma=sigma).cpu().numpy(),
                               rbf_kernel(a, gamma=1 / (2 * sigma**2)), rtol=1e-12, atol=1e-14)


def test_gaussian_kernel_article_convention():
    # Su's exp(-d^2 / s^2) is ours with sigma = s / sqrt(2)
    K = H.gaussian_kernel([0.0, 0.7], sigma=1 / math.sqrt(2), device="cpu")
    assert float(K[0, 1]) == pytest.approx(math.exp(-0.49), rel=1e-14)


def test_median_heuristic_exact_and_nonzero():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(301, 2))
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))[np.triu_indices(301, 1)]
    assert H.median_heuristic(x) == pytest.approx(np.median(d), rel=1e-12)
    xd = np.r_[x, x[:150]]                 # 150 duplicated points: zero distances
    dd = np.sqrt(((xd[:, None] - xd[None]) ** 2).sum(-1))[np.triu_indices(451, 1)]
    assert H.median_heuristic(xd, nonzero=False) == pytest.approx(np.median(dd), rel=1e-12)
    assert H.median_heuristic(xd) == pytest.approx(np.median(dd[dd > 0]), rel=1e-12)
    assert H.median_heuristic(xd) > H.median_heuristic(xd, nonzero=False)


def test_median_heuristic_subsample():
    x = np.random.default_rng(2).normal(size=3000)
    exact = H.median_heuristic(x, max_points=None)
    sub = H.median_heuristic(x, max_points=500, seed=3)
    assert sub == H.median_heuristic(x, max_points=500, seed=3)       # reproducible
    assert sub != exact and abs(sub / exact - 1) < 0.05


# --------------------------------------------------------------------------------------
# the statistic
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["independent", "square", "sine", "multi"])
@pytest.mark.parametrize("tile", [None, 17, 64])
def test_estimators_match_dense_references(kind, tile):
    x, y = sample(kind, 150, seed=4)
    sx, sy = H.median_heuristic(x), H.median_heuristic(y)
    K, L = dense_kernel(x, sx), dense_kernel(y, sy)
    b = H.hsic(x, y, tile=tile)
    u = H.hsic(x, y, estimator="unbiased", tile=tile)
    assert b == pytest.approx(ref_biased(K, L), rel=1e-10, abs=1e-15)
    assert u == pytest.approx(ref_unbiased(K, L), rel=1e-9, abs=1e-14)


def test_torch_and_numpy_inputs_agree_and_sigma_is_used():
    x, y = sample("sine", 120, seed=5)
    a = H.hsic(x, y, sigma_x=0.8, sigma_y=0.4)
    assert H.hsic(torch.tensor(x), torch.tensor(y[:, None]), sigma_x=0.8, sigma_y=0.4) == \
        pytest.approx(a, rel=1e-12)
    assert a == pytest.approx(ref_biased(dense_kernel(x, 0.8), dense_kernel(y, 0.4)), rel=1e-10)
    assert abs(H.hsic(x, y, sigma_x=2.0, sigma_y=0.4) - a) > 1e-4


def test_tiling_does_not_change_the_value_at_larger_n():
    x, y = sample("multi", 700, seed=6)
    ref = H.hsic(x, y, tile=700)
    for tile in (1, 100, 333):
        if tile == 1:
            x1, y1 = x[:40], y[:40]
            assert H.hsic(x1, y1, tile=1) == pytest.approx(H.hsic(x1, y1, tile=40), rel=1e-12)
        else:
            assert H.hsic(x, y, tile=tile) == pytest.approx(ref, rel=1e-11)


@pytest.fixture
def hyppo_uncompiled(monkeypatch):
    """hyppo's own centring code, run as plain Python (its numba compilation takes ~30 s cold)."""
    import hyppo.independence.dcorr as dcorr

    for name in ("_dcorr", "_center_distmat", "_dcov"):
        monkeypatch.setattr(dcorr, name, getattr(dcorr, name).py_func)


@pytest.mark.parametrize("kind", ["independent", "square", "multi"])
def test_normalized_unbiased_reproduces_hyppo(kind, hyppo_uncompiled):
    from hyppo.independence import Hsic

    x, y = sample(kind, 130, seed=7)
    x2, y2 = x.reshape(130, -1), y.reshape(130, -1)
    s = H.median_heuristic(x2, nonzero=False, max_points=None)
    ours = H.hsic(x2, y2, sigma_x=s, sigma_y=s, estimator="unbiased", normalized=True)
    assert ours == pytest.approx(Hsic().statistic(x2, y2), rel=1e-9, abs=1e-12)


def test_normalized_biased_is_square_of_hyppo_biased(hyppo_uncompiled):
    from hyppo.independence import Hsic

    x, y = sample("sine", 110, seed=8)
    x2, y2 = x[:, None], y[:, None]
    s = H.median_heuristic(x2, nonzero=False, max_points=None)
    ours = H.hsic(x2, y2, sigma_x=s, sigma_y=s, normalized=True)
    assert math.sqrt(ours) == pytest.approx(Hsic(bias=True).statistic(x2, y2), rel=1e-9)


def test_article_demo_orders_of_magnitude():
    rng = np.random.default_rng(9)
    x = rng.normal(size=1000)
    s = 1 / math.sqrt(2)                  # the article's sigma = 1
    indep = H.hsic(x, rng.normal(size=1000), sigma_x=s, sigma_y=s)
    dep = H.hsic(x, x + 0.1 * rng.normal(size=1000), sigma_x=s, sigma_y=s)
    assert dep > 100 * indep > 0


# --------------------------------------------------------------------------------------
# tests of independence
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,seed", [("independent", 10), ("independent", 11),
                                       ("sine", 12), ("multi", 13)])
def test_gamma_test_matches_grettons_reference(kind, seed):
    x, y = sample(kind, 120, seed=seed, noise=1.5)
    r = H.hsic_test(x, y, tile=50)
    K, L = dense_kernel(x, r.sigma_x), dense_kernel(y, r.sigma_y)
    stat, p, m, v = ref_gamma_test(K, L)
    assert r.statistic * r.n == pytest.approx(stat, rel=1e-10)
    assert r.null_mean == pytest.approx(m, rel=1e-10)
    assert r.null_var == pytest.approx(v, rel=1e-9)
    assert r.pvalue == pytest.approx(p, rel=1e-7, abs=1e-15)
    assert r.method == "gamma" and r.n_permutations == 0 and r.null_samples is None


def test_gamma_test_without_cache_matches(monkeypatch):
    x, y = sample("sine", 90, seed=14, noise=1.0)
    cached = H.hsic_test(x, y, tile=20)
    monkeypatch.setattr(H, "_CACHE_ENTRIES", 0)
    recomputed = H.hsic_test(x, y, tile=20)
    assert recomputed.pvalue == pytest.approx(cached.pvalue, rel=1e-12)
    assert recomputed.null_var == pytest.approx(cached.null_var, rel=1e-12)


def test_permutation_null_matches_dense_reference():
    x, y = sample("multi", 60, seed=15, noise=1.0)
    n_perm, seed = 50, 16
    r = H.hsic_test(x, y, method="permutation", n_permutations=n_perm, seed=seed, tile=16)
    # the same permutations, drawn as the helper draws them
    perms = torch.argsort(torch.rand(n_perm, 60, generator=make_generator(seed)), dim=1).numpy()
    K, L = dense_kernel(x, r.sigma_x), dense_kernel(y, r.sigma_y)
    null = np.array([ref_biased(K, L[np.ix_(p, p)]) for p in perms])
    np.testing.assert_allclose(r.null_samples, null, rtol=1e-10, atol=1e-15)
    assert r.statistic == pytest.approx(ref_biased(K, L), rel=1e-10)
    assert r.pvalue == (1 + np.sum(null >= r.statistic)) / (1 + n_perm)
    assert r.null_mean == pytest.approx(null.mean(), rel=1e-10)


@pytest.mark.parametrize("kind,noise,seed", [("independent", 0.3, 17), ("independent", 0.3, 18),
                                             ("sine", 2.5, 19), ("square", 3.0, 20),
                                             ("multi", 3.0, 21)])
def test_permutation_and_gamma_pvalues_agree(kind, noise, seed):
    x, y = sample(kind, 200, seed=seed, noise=noise)
    g = H.hsic_test(x, y)
    p = H.hsic_test(x, y, method="permutation", n_permutations=1000, seed=seed)
    assert g.statistic == pytest.approx(p.statistic, rel=1e-12)
    assert abs(g.pvalue - p.pvalue) < 0.05
    # the two null laws have similar moments
    assert p.null_mean == pytest.approx(g.null_mean, rel=0.05)
    assert p.null_var == pytest.approx(g.null_var, rel=0.25)


def test_strong_dependence_is_detected_and_result_is_frozen():
    x, y = sample("square", 200, seed=22, noise=0.1)
    assert abs(np.corrcoef(x, y)[0, 1]) < 0.2
    r = H.hsic_test(x, y)
    assert r.pvalue < 1e-6
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.pvalue = 0.5  # type: ignore[misc]


def test_cpu_threads_setting_is_applied_and_restored(monkeypatch):
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    seen = []
    real = H._first_pass

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(H, "_first_pass", spy)
    try:
        x, y = sample("sine", 600, seed=25)
        one = H.hsic(x, y, tile=64)
        assert seen == [1] and torch.get_num_threads() == 2     # CPU_THREADS = 1, restored
        with pytest.raises(ValueError):
            H.hsic(x, y, sigma_x=-1.0)
        assert torch.get_num_threads() == 2                      # restored after an error
        monkeypatch.setattr(H, "CPU_THREADS", None)              # torch's own setting
        assert H.hsic(x, y, tile=64) == pytest.approx(one, rel=1e-12)
        assert seen == [1, 2]
        monkeypatch.setattr(H, "CPU_THREADS", 0)
        with pytest.raises(ValueError, match="CPU_THREADS must be an integer >= 1"):
            H.hsic(x, y)
    finally:
        torch.set_num_threads(old)


def test_constant_kernel_gives_pvalue_one():
    x = np.random.default_rng(23).normal(size=30)
    r = H.hsic_test(x, np.zeros(30), sigma_y=1.0)
    assert r.pvalue == 1.0 and r.statistic == pytest.approx(0.0, abs=1e-15)


# --------------------------------------------------------------------------------------
# many samples at once
# --------------------------------------------------------------------------------------
def _stack(kind, r, n, seed, noise=0.3):
    pairs = [sample(kind, n, seed=seed + k, noise=noise) for k in range(r)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


@pytest.mark.parametrize("kind", ["independent", "sine", "multi"])
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_hsic_batch_matches_one_at_a_time(kind, estimator, monkeypatch):
    monkeypatch.setattr(H, "_BATCH_ENTRIES", 3 * 40 * 40)        # several chunks
    x, y = _stack(kind, 7, 40, seed=30)
    got = H.hsic_batch(x, y, estimator=estimator)
    want = [H.hsic(x[r], y[r], estimator=estimator) for r in range(7)]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-15)
    # bandwidths: one for all, or one per sample
    sig = np.linspace(0.3, 2.0, 7)
    got = H.hsic_batch(x, y, sigma_x=sig, sigma_y=0.7, estimator=estimator)
    want = [H.hsic(x[r], y[r], sigma_x=sig[r], sigma_y=0.7, estimator=estimator)
            for r in range(7)]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-15)


def test_hsic_batch_median_drops_repeated_values():
    x, y = _stack("sine", 3, 30, seed=31)
    x[1, :10] = x[1, 10:20]                                     # zero distances in sample 1
    got = H.hsic_batch(x, y)
    want = [H.hsic(x[r], y[r]) for r in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("kind", ["independent", "sine", "multi"])
def test_gamma_test_batch_matches_grettons_reference(kind, monkeypatch):
    monkeypatch.setattr(H, "_BATCH_ENTRIES", 2 * 60 * 60)
    x, y = _stack(kind, 5, 60, seed=40, noise=1.5)
    res = H.hsic_test_batch(x, y)
    for r in range(5):
        one = H.hsic_test(x[r], y[r])
        K, L = dense_kernel(x[r], one.sigma_x), dense_kernel(y[r], one.sigma_y)
        stat, p, m, v = ref_gamma_test(K, L)
        assert res.sigma_x[r] == pytest.approx(one.sigma_x, rel=1e-12)
        assert res.sigma_y[r] == pytest.approx(one.sigma_y, rel=1e-12)
        assert res.statistic[r] * 60 == pytest.approx(stat, rel=1e-10)
        assert res.null_mean[r] == pytest.approx(m, rel=1e-10)
        assert res.null_var[r] == pytest.approx(v, rel=1e-9)
        assert res.pvalue[r] == pytest.approx(p, rel=1e-7, abs=1e-15)
    assert res.method == "gamma" and res.n == 60 and res.n_permutations == 0


def test_permutation_test_batch_null_matches_dense_reference():
    x, y = _stack("multi", 3, 30, seed=50, noise=1.0)
    n_perm, seed = 40, 51
    res = H.hsic_test_batch(x, y, method="permutation", n_permutations=n_perm, seed=seed)
    gen = make_generator(seed)
    for r in range(3):
        perms = torch.argsort(torch.rand(n_perm, 30, generator=gen), dim=1).numpy()
        K, L = dense_kernel(x[r], res.sigma_x[r]), dense_kernel(y[r], res.sigma_y[r])
        null = np.array([ref_biased(K, L[np.ix_(p, p)]) for p in perms])
        assert res.statistic[r] == pytest.approx(ref_biased(K, L), rel=1e-10)
        assert res.null_mean[r] == pytest.approx(null.mean(), rel=1e-10)
        assert res.pvalue[r] == (1 + np.sum(null >= res.statistic[r])) / (1 + n_perm)
    assert res.n_permutations == n_perm


def test_permutation_test_batch_is_valid_under_independence():
    # exact validity: P(p <= 0.1) <= 0.1; 300 tests, so a 3-sd margin is 0.052
    x, y = _stack("independent", 300, 20, seed=60)
    res = H.hsic_test_batch(x, y, method="permutation", n_permutations=19, seed=61)
    assert np.mean(res.pvalue <= 0.1) < 0.1 + 3 * math.sqrt(0.09 / 300)
    assert set(np.round(res.pvalue * 20).astype(int)) <= set(range(1, 21))


def test_batch_bad_inputs_raise_clear_errors():
    x = np.random.default_rng(70).normal(size=(4, 20))
    with pytest.raises(ValueError, match=r"same number of samples of the same size; got "
                                         r"\(R, n\) = \(4, 20\) for x and \(4, 19\)"):
        H.hsic_batch(x, x[:, :19])
    with pytest.raises(ValueError, match="x must have 2 or 3 dimension"):
        H.hsic_batch(x[0], x[0])
    with pytest.raises(ValueError, match="at least 6 points here; got n = 5"):
        H.hsic_test_batch(x[:, :5], x[:, :5])
    with pytest.raises(ValueError, match="sigma_x must be a number or an array of 4 numbers"):
        H.hsic_batch(x, x, sigma_x=[1.0, 2.0])
    with pytest.raises(ValueError, match="sigma_y must hold finite values > 0"):
        H.hsic_batch(x, x, sigma_y=[1.0, 2.0, -1.0, 1.0])
    with pytest.raises(ValueError, match=r"sigma_x must lie in \(0"):
        H.hsic_test_batch(x, x, sigma_x=0.0)
    y = x.copy()
    y[2] = 1.0
    with pytest.raises(ValueError, match=r"y\[2\] has no two distinct points"):
        H.hsic_test_batch(x, y)
    with pytest.raises(ValueError, match="method must be one of 'gamma', 'permutation'"):
        H.hsic_test_batch(x, x, method="chi2")
    with pytest.raises(ValueError, match="n_permutations must be an integer >= 1; got 0"):
        H.hsic_test_batch(x, x, method="permutation", n_permutations=0)
    with pytest.raises(ValueError, match="estimator must be one of"):
        H.hsic_batch(x, x, estimator="su")


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors():
    x = np.random.default_rng(24).normal(size=20)
    with pytest.raises(ValueError, match="same number of samples; got 20 for x and 19"):
        H.hsic(x, x[:19])
    with pytest.raises(ValueError, match="at least 6 samples"):
        H.hsic(x[:5], x[:5], estimator="unbiased")
    assert math.isfinite(H.hsic(x[:5], x[:5]))         # the biased estimator is fine
    with pytest.raises(ValueError, match="at least 6 samples"):
        H.hsic_test(x[:5], x[:5])
    bad = x.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="x must contain only finite values"):
        H.hsic(bad, x)
    with pytest.raises(ValueError, match="y must contain only finite values"):
        H.hsic_test(x, bad)
    with pytest.raises(ValueError, match=r"sigma_x must lie in \(0"):
        H.hsic(x, x, sigma_x=0.0)
    with pytest.raises(ValueError, match=r"sigma_y must lie in \(0"):
        H.hsic_test(x, x, sigma_y=-1.0)
    with pytest.raises(ValueError, match="estimator must be one of 'biased', 'unbiased'"):
        H.hsic(x, x, estimator="article")
    with pytest.raises(ValueError, match="method must be one of 'gamma', 'permutation'"):
        H.hsic_test(x, x, method="chi2")
    with pytest.raises(ValueError, match="n_permutations must be an integer >= 1; got 0"):
        H.hsic_test(x, x, method="permutation", n_permutations=0)
    with pytest.raises(ValueError, match="tile must be an integer >= 1"):
        H.hsic(x, x, tile=0)
    with pytest.raises(ValueError, match="x must have 1 or 2 dimension"):
        H.hsic(np.zeros((4, 5, 2)), x)
    with pytest.raises(ValueError, match="no two distinct samples"):
        H.hsic(x, np.ones(20))
    with pytest.raises(ValueError, match="max_points must be an integer >= 2"):
        H.median_heuristic(x, max_points=1)
    with pytest.raises(ValueError, match="at least 2 samples"):
        H.median_heuristic([1.0])
    with pytest.raises(ValueError, match=r"sigma must lie in \(0"):
        H.gaussian_kernel(x, sigma=0)
    with pytest.raises(ValueError, match="same number of columns"):
        H.gaussian_kernel(np.zeros((3, 2)), np.zeros((3, 3)), sigma=1.0)
