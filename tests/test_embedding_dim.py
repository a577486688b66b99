"""Tests of the embedding-dimension helpers (kexue_helpers.embedding_dim)."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from kexue_helpers import embedding_dim as ed


# ------------------------------------------------------------- independent references
def _h_mpmath_quad(n: int, dps: int = 30) -> float:
    """h_n by mpmath's adaptive quadrature of the log-shifted integrand (eq. ed-eq-hn)."""
    with mpmath.workdps(dps):
        a = mpmath.mpf(n - 2)
        cos_peak = (-a + mpmath.sqrt(a * a + 4 * n * n)) / (2 * n)
        peak = mpmath.acos(cos_peak)
        def exponent(t):  # (n-2) log sin t + n cos t, with 0 * log 0 = 0 when n = 2
            return (a * mpmath.log(mpmath.sin(t)) if n > 2 else 0) + n * mpmath.cos(t)

        top = exponent(peak)

        def g(t):
            return mpmath.exp(exponent(t) - top)

        pts = [0, peak, mpmath.pi]
        i0 = mpmath.quad(g, pts)
        i1 = mpmath.quad(lambda t: mpmath.cos(t) * g(t), pts)
        log_norm = (mpmath.loggamma(mpmath.mpf(n) / 2) - mpmath.loggamma(mpmath.mpf(n - 1) / 2)
                    - mpmath.log(mpmath.pi) / 2)
        return float(log_norm + top + mpmath.log(i0) - n * i1 / i0)


def _h_mpmath_bessel(n: int, dps: int = 40) -> float:
    """h_n from the Bessel closed form evaluated by mpmath at high precision."""
    with mpmath.workdps(dps):
        nu = mpmath.mpf(n) / 2 - 1
        i_nu, i_next = mpmath.besseli(nu, n), mpmath.besseli(nu + 1, n)
        return float(mpmath.loggamma(mpmath.mpf(n) / 2) + nu * mpmath.log(mpmath.mpf(2) / n)
                     + mpmath.log(i_nu) - n * i_next / i_nu)


# ------------------------------------------------------------- angle_density
@pytest.mark.parametrize("n", [2, 3, 5, 16, 300])
def test_angle_density_matches_scipy_beta_law(n):
    """(1 + cos theta)/2 ~ Beta((n-1)/2, (n-1)/2): change variables in scipy's pdf."""
    theta = np.linspace(0.01, math.pi - 0.01, 50)
    beta = stats.beta((n - 1) / 2, (n - 1) / 2)
    expected = beta.pdf((1 + np.cos(theta)) / 2) * np.sin(theta) / 2
    np.testing.assert_allclose(ed.angle_density(theta, n), expected, rtol=1e-10)
    np.testing.assert_allclose(ed.angle_density(theta, n, log=True),
                               beta.logpdf((1 + np.cos(theta)) / 2) + np.log(np.sin(theta) / 2),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n", [2, 3, 10, 1000])
def test_angle_density_integrates_to_one_and_vanishes_outside(n):
    total, _ = integrate.quad(lambda t: float(ed.angle_density(t, n)), 0, math.pi,
                              points=[math.pi / 2], limit=200)
    assert abs(total - 1) < 1e-8
    assert np.all(ed.angle_density([-0.1, math.pi + 0.1], n) == 0)
    assert np.all(np.isneginf(ed.angle_density([-0.1, 4.0], n, log=True)))


def test_angle_density_log_has_no_overflow_for_huge_n():
    logp = ed.angle_density(math.pi / 2, 10**6, log=True)
    assert np.isfinite(logp) and abs(float(logp) - 0.5 * math.log(10**6 / (2 * math.pi))) < 1e-5


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(theta=1.0, n=1), ValueError, r"n must be an integer >= 2; got 1"),
    (dict(theta=1.0, n=3.0), TypeError, r"n must be an integer"),
    (dict(theta=[1.0, float("nan")], n=3), ValueError, r"theta must contain only finite"),
    (dict(theta="a", n=3), TypeError, r"theta must be a numeric array"),
])
def test_angle_density_rejects_bad_input(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        ed.angle_density(**kwargs)


# ------------------------------------------------------------- entropy_gap
@pytest.mark.parametrize("n", [2, 3, 4, 7, 32, 64, 96, 128, 256, 512, 1000, 2048, 4096])
def test_entropy_gap_matches_high_precision_bessel(n):
    ref = _h_mpmath_bessel(n)
    assert abs(ed.entropy_gap(n) - ref) <= 1e-12 * abs(ref)


@pytest.mark.parametrize("n", [2, 3, 33, 512])
def test_entropy_gap_matches_high_precision_quadrature(n):
    ref = _h_mpmath_quad(n)
    assert abs(ed.entropy_gap(n) - ref) <= 1e-12 * abs(ref)


def test_entropy_gap_random_n_six_significant_digits_and_more():
    rng = np.random.default_rng(1)
    for n in rng.integers(2, 4097, size=12):
        ref = _h_mpmath_bessel(int(n), dps=30)
        assert abs(ed.entropy_gap(int(n)) - ref) <= 1e-6 * abs(ref)  # the promise
        assert abs(ed.entropy_gap(int(n)) - ref) <= 1e-12 * abs(ref)  # what it delivers


def test_entropy_gap_scipy_quad_on_log_shifted_integrand():
    """A third route: scipy.integrate.quad on the integrand divided by its peak value."""
    for n in (5, 200, 3000):
        a = n - 2
        c = (-a + math.sqrt(a * a + 4 * n * n)) / (2 * n)
        peak = math.acos(c)
        top = a * math.log(math.sin(peak)) + n * c

        def g(t, n=n, a=a, top=top):
            return math.exp(a * math.log(math.sin(t)) + n * math.cos(t) - top) if t > 0 else 0.0

        opts = dict(points=[peak], limit=500, epsabs=0, epsrel=1e-13)
        i0 = integrate.quad(g, 0, math.pi, **opts)[0]
        i1 = integrate.quad(lambda t: math.cos(t) * g(t), 0, math.pi, **opts)[0]
        log_norm = special.gammaln(n / 2) - special.gammaln((n - 1) / 2) - 0.5 * math.log(math.pi)
        ref = log_norm + top + math.log(i0) - n * i1 / i0
        assert abs(ed.entropy_gap(n) - ref) <= 1e-9 * abs(ref)


def test_entropy_gap_is_negative_and_decreasing():
    h = np.array([ed.entropy_gap(n) for n in range(2, 2001)])
    assert np.all(h < 0) and np.all(np.diff(h) < 0)
    assert isinstance(ed.entropy_gap(10), float)


def test_entropy_gap_bessel_agrees_with_quadrature():
    for n in (2, 3, 17, 100, 999, 4096):
        assert abs(ed.entropy_gap_bessel(n) - ed.entropy_gap(n)) <= 1e-11 * abs(ed.entropy_gap(n))


@pytest.mark.parametrize("func", [ed.entropy_gap, ed.entropy_gap_bessel, ed.entropy_gap_laplace])
@pytest.mark.parametrize("n, exc, pattern", [
    (1, ValueError, r"n must be an integer >= 2; got 1"),
    (-5, ValueError, r"n must be an integer >= 2; got -5"),
    (2.5, TypeError, r"n must be an integer; got 2.5"),
    (True, TypeError, r"n must be an integer"),
])
def test_entropy_gaps_reject_bad_n(func, n, exc, pattern):
    with pytest.raises(exc, match=pattern):
        func(n)


def test_entropy_gap_bessel_limits_n():
    with pytest.raises(ValueError, match=r"n must be an integer <= 4096; got 5000"):
        ed.entropy_gap_bessel(5000)


# ------------------------------------------------------------- Laplace constants
def test_golden_ratio_constants():
    phi = (1 + math.sqrt(5)) / 2
    assert abs(ed.GOLDEN_COS**2 + ed.GOLDEN_COS - 1) < 1e-15      # the quadratic
    assert abs(ed.KAPPA + math.log(math.sin(math.acos(1 / phi)))) < 1e-15
    assert abs(ed.DIM_CONSTANT - 4 / math.log(phi)) < 1e-12
    assert 8.31 < ed.DIM_CONSTANT < 8.32


def test_laplace_expansion_error_is_order_one_over_n():
    for n in (256, 1024, 4096):
        err0 = abs(ed.entropy_gap(n) - ed.entropy_gap_laplace(n, order=0))
        err1 = abs(ed.entropy_gap(n) - ed.entropy_gap_laplace(n, order=1))
        assert abs(err0 - abs(ed.LAPLACE_INTERCEPT)) < 1e-3   # order 0 misses the constant b
        assert err1 * n < 0.06                                 # order 1 misses O(1/n)


def test_laplace_rejects_bad_order():
    with pytest.raises(ValueError, match=r"order must be one of 0, 1; got 2"):
        ed.entropy_gap_laplace(10, order=2)


# ------------------------------------------------------------- min_embedding_dim
@pytest.mark.parametrize("n_words", [2, 3, 10, 512, 10**5, 5 * 10**6, 10**12])
def test_min_embedding_dim_exact_is_the_first_n_meeting_the_criterion(n_words):
    n = ed.min_embedding_dim(n_words)
    assert 2 * math.log(n_words) + ed.entropy_gap(n) < 0
    assert 2 * math.log(n_words) + ed.entropy_gap(n - 1) >= 0


def test_min_embedding_dim_known_values_and_methods():
    assert ed.min_embedding_dim(100_000) == 96
    assert ed.min_embedding_dim(5_000_000) == 128
    assert ed.min_embedding_dim(512) == 52
    for n_words in (2, 100, 10**5, 10**9):
        asym = ed.min_embedding_dim(n_words, method="asymptotic")
        assert asym > ed.DIM_CONSTANT * math.log(n_words) >= asym - 1
        art = ed.min_embedding_dim(n_words, method="article")
        assert art > 8.33 * math.log(n_words) >= art - 1
        # the exact threshold is (2 log N + b)/kappa up to O(1/n): within one of it
        exact = ed.min_embedding_dim(n_words)
        assert abs(exact - (2 * math.log(n_words) + ed.LAPLACE_INTERCEPT) / ed.KAPPA) < 1.01


def test_min_embedding_dim_brute_force_small_vocabularies():
    h = {n: ed.entropy_gap(n) for n in range(2, 120)}
    for n_words in (2, 5, 50, 999, 12345, 10**6):
        first = min(n for n in h if 2 * math.log(n_words) + h[n] < 0)
        assert ed.min_embedding_dim(n_words) == first


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(n_words=1), ValueError, r"n_words must be an integer >= 2; got 1"),
    (dict(n_words=0), ValueError, r"n_words must be an integer >= 2; got 0"),
    (dict(n_words=1e5), TypeError, r"n_words must be an integer; got 100000.0"),
    (dict(n_words=100, method="laplace"), ValueError, r"method must be one of 'exact'"),
])
def test_min_embedding_dim_rejects_bad_input(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        ed.min_embedding_dim(**kwargs)


# ------------------------------------------------------------- sample_tilted_cosine
def test_sample_tilted_cosine_matches_scipy_von_mises_fisher():
    dim, k = 12, 6.0
    ours = ed.sample_tilted_cosine(dim, k, 4000, seed=0)
    mu = np.zeros(dim)
    mu[0] = 1.0
    theirs = stats.vonmises_fisher(mu, k).rvs(4000, random_state=np.random.default_rng(1))[:, 0]
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3


@pytest.mark.parametrize("dim, k", [(3, 0.0), (8, 2.0), (64, 64.0), (512, 512.0)])
def test_sample_tilted_cosine_mean_is_bessel_ratio(dim, k):
    w = ed.sample_tilted_cosine(dim, k, 20_000, seed=dim)
    mean = special.ive(dim / 2, k) / special.ive(dim / 2 - 1, k) if k > 0 else 0.0
    assert abs(w.mean() - mean) < 5 * w.std() / math.sqrt(w.size)
    assert np.all(np.abs(w) <= 1)
    assert np.array_equal(w, ed.sample_tilted_cosine(dim, k, 20_000, seed=dim))


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(dim=1, concentration=1.0, n_samples=5), ValueError, r"dim must be an integer >= 2"),
    (dict(dim=3, concentration=-1.0, n_samples=5), ValueError, r"concentration must lie in"),
    (dict(dim=3, concentration=1.0, n_samples=0), ValueError, r"n_samples must be an integer >= 1"),
])
def test_sample_tilted_cosine_rejects_bad_input(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        ed.sample_tilted_cosine(**kwargs)


# ------------------------------------------------------------- sphere_model_entropy
def test_sphere_model_entropy_matches_a_direct_computation():
    n_words, dim, seed = 300, 6, 3
    h = ed.sphere_model_entropy(n_words, dim, seed=seed, device="cpu")
    gen = torch.Generator().manual_seed(seed)
    uv = torch.randn(2, n_words, dim, generator=gen, dtype=torch.float64)
    uv = uv / uv.norm(dim=-1, keepdim=True) * math.sqrt(dim)
    p = special.softmax((uv[0] @ uv[1].T).numpy().ravel())
    assert abs(h - stats.entropy(p)) < 1e-10


def test_sphere_model_entropy_follows_the_approximation_in_low_dimension():
    n_words = 1000
    for dim in (2, 4, 8):
        h = ed.sphere_model_entropy(n_words, dim, seed=0, device="cpu")
        assert abs(h - (2 * math.log(n_words) + ed.entropy_gap(dim))) < 0.02
    h_big = ed.sphere_model_entropy(n_words, 200, seed=0, device="cpu")
    assert 0 <= h_big < 2 * math.log(n_words) + ed.entropy_gap(8)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(n_words=1, dim=4), r"n_words must be an integer >= 2; got 1"),
    (dict(n_words=10, dim=1), r"dim must be an integer >= 2; got 1"),
])
def test_sphere_model_entropy_rejects_bad_input(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        ed.sphere_model_entropy(**kwargs)


# ------------------------------------------------------------- zipf_cooccurrence
def test_zipf_cooccurrence_is_a_symmetric_distribution_with_zipfian_marginals():
    p = ed.zipf_cooccurrence(200, partners=3, seed=5)
    assert p.shape == (200, 200) and np.all(p > 0)
    assert abs(p.sum() - 1) < 1e-12 and np.allclose(p, p.T)
    assert np.array_equal(p, ed.zipf_cooccurrence(200, partners=3, seed=5))
    assert not np.array_equal(p, ed.zipf_cooccurrence(200, partners=3, seed=6))
    marginal = p.sum(1)
    slope = np.polyfit(np.log(np.arange(200) + 2.7), np.log(marginal), 1)[0]
    assert -2.0 < slope < -1.0    # frequent words co-occur more: steeper than f_i alone
    # high rank in log space: far from the rank-2 log of a product distribution
    s = np.linalg.svd(np.log(p), compute_uv=False)
    assert s[10] / s[0] > 0.01


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(n_words=1), ValueError, r"n_words must be an integer >= 2; got 1"),
    (dict(n_words=10, partners=10), ValueError, r"partners must be an integer <= 9; got 10"),
    (dict(n_words=10, partners=0), ValueError, r"partners must be an integer >= 1; got 0"),
    (dict(n_words=10, exponent=0.0), ValueError, r"exponent must lie in \(0\.0, inf\)"),
    (dict(n_words=10, smooth=-1.0), ValueError, r"smooth must lie in \(0\.0, inf\)"),
])
def test_zipf_cooccurrence_rejects_bad_input(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        ed.zipf_cooccurrence(**kwargs)


# ------------------------------------------------------------- fit_lowrank_softmax
def test_fit_lowrank_softmax_kl_matches_scipy_and_improves_with_rank():
    target = ed.zipf_cooccurrence(40, seed=0)
    fit = ed.fit_lowrank_softmax(target, [1, 4, 16], seeds=(0, 1), steps=300, device="cpu")
    assert fit.kl.shape == (3, 2) and fit.probs.shape == (3, 2, 40, 40)
    assert fit.ranks == (1, 4, 16) and fit.seeds == (0, 1)
    assert abs(fit.target_entropy - stats.entropy(target.ravel())) < 1e-10
    for r in range(3):
        for s in range(2):
            q = fit.probs[r, s]
            assert abs(q.sum() - 1) < 1e-9
            assert abs(fit.kl[r, s] - stats.entropy(target.ravel(), q.ravel())) < 1e-8
    best = fit.best_kl()
    assert np.all(best >= 0) and best[0] > best[1] > best[2]


def test_fit_lowrank_softmax_recovers_an_exactly_low_rank_target():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(30, 3, generator=gen, dtype=torch.float64) @ torch.randn(
        3, 30, generator=gen, dtype=torch.float64)
    target = torch.softmax(logits.ravel(), 0).reshape(30, 30).numpy()
    fit = ed.fit_lowrank_softmax(target, [1, 3], seeds=(0,), steps=600, lr=0.05, device="cpu")
    assert fit.kl[1, 0] < 1e-3 < fit.kl[0, 0]


def test_fit_lowrank_softmax_is_deterministic():
    target = ed.zipf_cooccurrence(20, seed=1)
    a = ed.fit_lowrank_softmax(target, [2], seeds=(3,), steps=50, device="cpu")
    b = ed.fit_lowrank_softmax(target, [2], seeds=(3,), steps=50, device="cpu")
    assert np.array_equal(a.kl, b.kl)


@pytest.mark.parametrize("target, kwargs, exc, pattern", [
    (np.ones((3, 4)) / 12, {}, ValueError, r"target must be a square matrix"),
    (np.ones((3, 3)), {}, ValueError, r"target must be non-negative and sum to 1"),
    (np.eye(2) / 2, dict(ranks=[]), ValueError, r"ranks and seeds must be non-empty"),
    (np.eye(2) / 2, dict(ranks=[0]), ValueError, r"ranks\[i\] must be an integer >= 1"),
    (np.eye(2) / 2, dict(steps=0), ValueError, r"steps must be an integer >= 1"),
    (np.eye(2) / 2, dict(lr=-0.1), ValueError, r"lr must lie in"),
    (np.ones(4) / 4, {}, ValueError, r"target must have 2 dimension"),
    (np.eye(2) / 2, dict(norm="unit"), ValueError, r"norm must be one of"),
    (np.eye(2) / 2, dict(steps=10, checkpoints=[11]), ValueError,
     r"checkpoints\[i\] must be an integer"),
])
def test_fit_lowrank_softmax_rejects_bad_input(target, kwargs, exc, pattern):
    kwargs = {"ranks": [2], **kwargs}
    with pytest.raises(exc, match=pattern):
        ed.fit_lowrank_softmax(target, device="cpu", **kwargs)


def test_fit_lowrank_softmax_sphere_keeps_the_logits_in_range_and_matches_scipy():
    """norm="sphere": |<u_i, v_j>| <= n, so log-odds between pairs are at most 2n."""
    target = ed.zipf_cooccurrence(30, seed=2)
    fit = ed.fit_lowrank_softmax(target, [1, 2, 8], steps=300, norm="sphere", device="cpu")
    assert fit.norm == "sphere"
    for k, r in enumerate(fit.ranks):
        log_q = np.log(fit.probs[k, 0])
        assert log_q.max() - log_q.min() <= 2 * r + 1e-6
        assert abs(fit.kl[k, 0] - stats.entropy(target.ravel(), fit.probs[k, 0].ravel())) < 1e-8
    # rank 1 on the sphere: u_i, v_j = +-1, so the model has at most two probability levels
    assert len(np.unique(np.round(fit.probs[0, 0], 10))) <= 2
    assert fit.kl[2, 0] < fit.kl[0, 0]


def test_fit_lowrank_softmax_checkpoints_record_the_kl_along_the_way():
    target = ed.zipf_cooccurrence(25, seed=3)
    fit = ed.fit_lowrank_softmax(target, [2, 6], steps=120, checkpoints=(40, 120, 40),
                                 device="cpu")
    assert sorted(fit.kl_history) == [40, 120]
    np.testing.assert_allclose(fit.kl_history[120], fit.kl, rtol=0, atol=1e-12)
    # a shorter run reproduces the checkpoint (the fit is deterministic)
    short = ed.fit_lowrank_softmax(target, [2, 6], steps=40, device="cpu")
    np.testing.assert_allclose(fit.kl_history[40], short.kl, rtol=0, atol=1e-12)
    assert np.all(fit.kl <= fit.kl_history[40] + 1e-9)
    assert ed.fit_lowrank_softmax(target, [2], steps=5, device="cpu").kl_history == {}


def test_first_rank_below_reads_the_best_kl_over_seeds():
    kl = np.array([[0.5, 0.4], [0.05, 0.2], [0.01, 0.002]])
    fit = ed.LowRankFit(ranks=(2, 4, 8), seeds=(0, 1), kl=kl, target_entropy=1.0,
                        probs=np.zeros((3, 2, 1, 1)), kl_history={10: kl + 0.1})
    assert fit.first_rank_below(0.1) == 4
    assert fit.first_rank_below(0.005) == 8
    assert fit.first_rank_below(0.001) is None
    assert fit.first_rank_below(0.12, step=10) == 8
    with pytest.raises(ValueError, match=r"step must be one of the checkpoints \[10\]; got 3"):
        fit.first_rank_below(0.1, step=3)
    with pytest.raises(ValueError, match=r"threshold must lie in"):
        fit.first_rank_below(-1.0)


@pytest.mark.parametrize("n_words", [2, 3, 10, 512, 10**5, 5 * 10**6])
def test_min_embedding_dim_conditional_reading(n_words):
    """reading="conditional": the first n with log N + h_n < 0, about half the joint one."""
    n = ed.min_embedding_dim(n_words, reading="conditional")
    assert math.log(n_words) + ed.entropy_gap(n) < 0
    if n > 2:
        assert math.log(n_words) + ed.entropy_gap(n - 1) >= 0
    brute = next(m for m in range(2, 10_000) if math.log(n_words) + ed.entropy_gap(m) < 0)
    assert n == brute
    asym = ed.min_embedding_dim(n_words, method="asymptotic", reading="conditional")
    assert asym == math.floor(ed.DIM_CONSTANT / 2 * math.log(n_words)) + 1
    art = ed.min_embedding_dim(n_words, method="article", reading="conditional")
    assert art == math.floor(8.33 / 2 * math.log(n_words)) + 1


def test_min_embedding_dim_conditional_known_values_and_bad_reading():
    assert ed.min_embedding_dim(512, reading="conditional") == 26
    assert ed.min_embedding_dim(100_000, reading="conditional") == 48
    with pytest.raises(ValueError, match=r"reading must be one of"):
        ed.min_embedding_dim(100, reading="marginal")


def test_zipf_offset_constant_is_used():
    """Recompute the target from its formula with q = 2.7 and compare bit for bit."""
    assert ed.ZIPF_OFFSET == 2.7
    n, partners, smooth, seed = 40, 3, 1e-3, 5
    rng = np.random.default_rng(seed)
    f = (np.arange(n) + 2.7) ** -1.0
    f /= f.sum()
    adj = np.zeros((n, n))
    for i in range(n):
        prob = f.copy()
        prob[i] = 0.0
        adj[i, rng.choice(n, size=partners, replace=False, p=prob / prob.sum())] = 1.0
    adj = np.maximum(adj, adj.T)
    want = f[:, None] * f[None, :] * (adj + smooth)
    want /= want.sum()
    got = ed.zipf_cooccurrence(n, partners=partners, smooth=smooth, seed=seed)
    assert np.array_equal(got, want)
