"""Tests of kexue_helpers.attention_cost: values, input validation, and cross-checks against
torch's FLOP counter, F.scaled_dot_product_attention, scipy, Monte Carlo and performer-pytorch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch.utils.flop_counter import FlopCounterMode

from kexue_helpers import attention_cost as A


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------
# cost counts
# --------------------------------------------------------------------------------------
def test_macs_match_the_article_formulas():
    for n, h, d in ((512, 12, 64), (1, 1, 1), (1000, 3, 7)):
        m = A.transformer_layer_macs(n, h, d)
        assert m["attention"] == 4 * n * h**2 * d**2 + 2 * n**2 * h * d
        assert m["ffn"] == 8 * n * h**2 * d**2
        assert m["total"] == 12 * n * h**2 * d**2 + 2 * n**2 * h * d
        assert m["scores"] == m["values"] == h * n * n * d
    assert A.transformer_layer_macs(10, 2, 3, ffn_mult=2)["ffn"] == 2 * 10 * 6 * 12
    f = A.transformer_layer_flops(128, 12, 64)
    assert all(v == 2 * A.transformer_layer_macs(128, 12, 64)[k] for k, v in f.items())


def _layer_flops(n, h, d, ffn_mult=4):
    """Torch's FLOP count of an explicit-matmul Transformer layer (meta tensors)."""
    D = h * d
    with torch.device("meta"):
        wqkv, wo = torch.randn(D, 3 * D), torch.randn(D, D)
        w1, w2 = torch.randn(D, ffn_mult * D), torch.randn(ffn_mult * D, D)
        x = torch.randn(2, n, D)
        with FlopCounterMode(display=False) as counter:
            q, k, v = (x @ wqkv).view(2, n, 3, h, d).permute(2, 0, 3, 1, 4)
            a = torch.softmax(q @ k.transpose(-1, -2), -1) @ v
            y = x + a.transpose(1, 2).reshape(2, n, D) @ wo
            y = y + F.gelu(y @ w1) @ w2
    return counter.get_total_flops() // 2          # per sequence


@pytest.mark.parametrize("n,h,d,f", [(128, 12, 64, 4), (37, 3, 5, 4), (64, 2, 8, 3)])
def test_flops_match_torch_flop_counter(n, h, d, f):
    assert _layer_flops(n, h, d, f) == A.transformer_layer_flops(n, h, d, ffn_mult=f)["total"]


def test_crossovers():
    c = A.attention_crossovers(12, 64)
    assert c == {"sa_over_ffn": 1536.0, "quadratic_dominates": 4608.0,
                 "linear_beats_softmax": 1024.0}
    # the crossovers are where the counts trade places
    for h, d, f in ((12, 64, 4), (4, 16, 6), (2, 8, 3)):
        c = A.attention_crossovers(h, d, ffn_mult=f)
        n0 = int(c["sa_over_ffn"])
        below = A.transformer_layer_macs(n0, h, d, f)
        above = A.transformer_layer_macs(n0 + 1, h, d, f)
        assert below["attention"] == below["ffn"] and above["attention"] > above["ffn"]
        nq = int(c["quadratic_dominates"])
        for n, sign in ((nq, 0), (nq + 1, 1)):
            m = A.transformer_layer_macs(n, h, d, f)
            quad = m["scores"] + m["values"]
            assert np.sign(quad - (m["total"] - quad)) == sign
    assert A.attention_crossovers(4, 8, ffn_mult=2)["sa_over_ffn"] == 0.0
    assert A.attention_crossovers(4, 8, linear_head_mult=2)["linear_beats_softmax"] == 32.0


@pytest.mark.parametrize("kwargs,name", [
    (dict(n=0, heads=1, head_dim=1), "n"),
    (dict(n=2.5, heads=1, head_dim=1), "n"),
    (dict(n=4, heads=-1, head_dim=1), "heads"),
    (dict(n=4, heads=1, head_dim=True), "head_dim"),
    (dict(n=4, heads=1, head_dim=2, ffn_mult=0), "ffn_mult"),
])
def test_macs_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        A.transformer_layer_macs(**kwargs)


def test_crossover_validation():
    with pytest.raises(ValueError, match="ffn_mult"):
        A.attention_crossovers(1, 1, ffn_mult=-1)
    with pytest.raises(ValueError, match="linear_head_mult"):
        A.attention_crossovers(1, 1, linear_head_mult=float("nan"))
    with pytest.raises(ValueError, match="heads"):
        A.attention_crossovers(0, 1)


# --------------------------------------------------------------------------------------
# random features
# --------------------------------------------------------------------------------------
def test_feature_values_and_shapes():
    x = torch.tensor([[0.3, -0.4], [0.0, 0.0]], dtype=torch.float64)
    w = torch.tensor([[1.0, 2.0], [-0.5, 0.5], [0.0, 1.0]], dtype=torch.float64)
    pos = A.positive_random_features(x, w)
    assert pos.shape == (2, 3)
    expect = torch.exp(x @ w.T - 0.5 * (x**2).sum(1, keepdim=True)) / math.sqrt(3)
    assert torch.allclose(pos, expect)
    trig = A.trig_random_features(x, w)
    assert trig.shape == (2, 6)
    ip = trig[0] @ trig[1]
    assert torch.isclose(ip, math.exp(0.125) * torch.cos(w @ x[0]).mean())
    # leading batch dimensions pass through
    assert A.positive_random_features(torch.zeros(4, 5, 2), w).shape == (4, 5, 3)


@pytest.mark.parametrize("fn", [A.positive_random_features, A.trig_random_features])
def test_features_are_unbiased(fn):
    q = torch.tensor([0.4, -0.2, 0.1], dtype=torch.float64)
    k = torch.tensor([0.1, 0.3, -0.5], dtype=torch.float64)
    w = torch.randn(400_000, 3, generator=_gen(0), dtype=torch.float64)
    est = fn(q, w) @ fn(k, w)
    assert abs(float(est) - math.exp(float(q @ k))) < 0.01


@pytest.mark.parametrize("kind", ["positive", "trig"])
def test_variance_closed_form_against_monte_carlo(kind):
    q = torch.tensor([0.5, 0.2, 0.0, -0.1], dtype=torch.float64)
    k = torch.tensor([-0.3, 0.4, 0.2, 0.1], dtype=torch.float64)
    m = 400_000
    w = torch.randn(m, 4, generator=_gen(1), dtype=torch.float64)
    fn = A.positive_random_features if kind == "positive" else A.trig_random_features
    fq, fk = fn(q, w), fn(k, w)
    if kind == "positive":
        single = m * fq * fk
    else:
        single = m * (fq[:m] * fk[:m] + fq[m:] * fk[m:])
    var = float(single.var())
    assert var == pytest.approx(A.random_feature_variance(q, k, kind), rel=0.03)


def test_variance_special_values():
    assert A.random_feature_variance([1.0, 0.0], [1.0, 0.0], "trig") == 0.0
    assert A.random_feature_variance([0.5, 0.0], [-0.5, 0.0], "positive") == 0.0
    v = A.random_feature_variance([0.5], [0.5])
    assert v == pytest.approx(math.exp(0.5) * (math.e - 1))


def test_feature_validation():
    with pytest.raises(ValueError, match="omega"):
        A.positive_random_features(torch.zeros(3, 2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="omega"):
        A.trig_random_features(torch.zeros(3, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="kind"):
        A.random_feature_variance([1.0], [1.0], "cosine")
    with pytest.raises(ValueError, match="same length"):
        A.random_feature_variance([1.0], [1.0, 2.0])


@pytest.mark.parametrize("norms", ["chi", "sqrt_d", "quantile"])
def test_orthogonal_matrix_blocks_and_norms(norms):
    m, d = 11, 4
    w = A.orthogonal_gaussian_matrix(m, d, norms, generator=_gen(2))
    assert w.shape == (m, d)
    for start in range(0, m, d):
        blk = w[start:start + d]
        u = blk / blk.norm(dim=1, keepdim=True)
        assert torch.allclose(u @ u.T, torch.eye(len(blk), dtype=w.dtype), atol=1e-12)
    norms_ = w.norm(dim=1).numpy()
    if norms == "sqrt_d":
        assert np.allclose(norms_, 2.0)
    if norms == "quantile":
        assert np.allclose(norms_, stats.chi(d).ppf(np.arange(1, m + 1) / (m + 1)))


def test_orthogonal_rows_are_marginally_gaussian():
    w = A.orthogonal_gaussian_matrix(4000 * 3, 3, "chi", generator=_gen(3))
    # each coordinate N(0, 1): Kolmogorov-Smirnov on the first row of every block
    first = w[::3, 0].numpy()
    assert stats.kstest(first, "norm").pvalue > 1e-3
    sq = (w**2).sum(1).numpy()
    assert stats.kstest(sq, stats.chi2(3).cdf).pvalue > 1e-3


def test_orthogonal_matrix_validation():
    with pytest.raises(ValueError, match="m"):
        A.orthogonal_gaussian_matrix(0, 3)
    with pytest.raises(ValueError, match="d"):
        A.orthogonal_gaussian_matrix(3, 0)
    with pytest.raises(ValueError, match="norms"):
        A.orthogonal_gaussian_matrix(3, 3, norms="unit")


def test_against_performer_pytorch():
    """Cross-check with performer-pytorch 1.1.4's softmax_kernel (eps = 0)."""
    pp = pytest.importorskip("performer_pytorch.performer_pytorch")
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 1, 2, 50, 8, dtype=torch.float64)
    proj = pp.gaussian_orthogonal_random_matrix(24, 8).double()
    theirs = pp.linear_attention(
        pp.softmax_kernel(q, projection_matrix=proj, is_query=True, eps=0.0),
        pp.softmax_kernel(k, projection_matrix=proj, is_query=False, eps=0.0), v)
    ours = A.linear_attention(q * 8**-0.25, k * 8**-0.25, v,
                              lambda t: A.positive_random_features(t, proj))
    assert torch.allclose(ours, theirs, atol=1e-12)
    # features themselves: theirs = ours * exp(-row max) (query side, eps = 0)
    fq = pp.softmax_kernel(q, projection_matrix=proj, is_query=True, eps=0.0)
    shift = torch.amax(q * 8**-0.25 @ proj.T, dim=-1, keepdim=True)
    assert torch.allclose(fq, A.positive_random_features(q * 8**-0.25, proj)
                          * torch.exp(-shift), atol=1e-14)


# --------------------------------------------------------------------------------------
# attention
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("causal", [False, True])
def test_softmax_attention_matches_sdpa(causal):
    q, k, v = torch.randn(3, 2, 3, 17, 5, generator=_gen(4), dtype=torch.float64)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=1.0)
    assert torch.allclose(A.softmax_attention(q, k, v, causal=causal), ref, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_linear_attention_matches_quadratic_form(causal):
    q, k, v = torch.randn(3, 2, 13, 4, generator=_gen(5), dtype=torch.float64)
    phi = lambda t: F.elu(t) + 1
    w = phi(q) @ phi(k).transpose(-1, -2)
    if causal:
        w = w * torch.ones(13, 13, dtype=w.dtype).tril()
    ref = (w / w.sum(-1, keepdim=True)) @ v
    out = A.linear_attention(q, k, v, phi, causal=causal)
    assert torch.allclose(out, ref, atol=1e-12)


def test_exact_features_give_softmax_attention():
    """With the exact exp kernel written as a Taylor map of high order, linear attention
    is softmax attention to rounding."""
    q, k, v = 0.3 * torch.randn(3, 9, 2, generator=_gen(6), dtype=torch.float64)
    out = A.linear_attention(q, k, v, lambda t: A.taylor_features(t, 14))
    assert torch.allclose(out, A.softmax_attention(q, k, v), atol=1e-12)


def test_attention_validation():
    with pytest.raises(ValueError, match="q and k"):
        A.softmax_attention(torch.zeros(3, 2), torch.zeros(3, 4), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="k and v"):
        A.softmax_attention(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(4, 1))
    with pytest.raises(ValueError, match="feature_map"):
        A.linear_attention(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 1), None)
    with pytest.raises(ValueError, match="causal"):
        A.softmax_attention(torch.zeros(3, 2), torch.zeros(4, 2), torch.zeros(4, 1),
                            causal=True)


# --------------------------------------------------------------------------------------
# deterministic feature maps
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_taylor_features(order):
    x, y = torch.randn(2, 20, 3, generator=_gen(7), dtype=torch.float64)
    fx, fy = A.taylor_features(x, order), A.taylor_features(y, order)
    assert fx.shape[-1] == sum(3**j for j in range(order + 1))
    s = (x * y).sum(-1)
    ref = sum(s**j / math.factorial(j) for j in range(order + 1))
    assert torch.allclose((fx * fy).sum(-1), ref, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_expdef_features(n):
    x, y = torch.randn(2, 20, 3, generator=_gen(8), dtype=torch.float64)
    fx, fy = A.expdef_features(x, n), A.expdef_features(y, n)
    assert fx.shape[-1] == 4**n
    ref = (1 + (x * y).sum(-1) / n) ** n
    assert torch.allclose((fx * fy).sum(-1), ref, atol=1e-12)


def test_feature_map_validation():
    with pytest.raises(ValueError, match="order"):
        A.taylor_features(torch.zeros(3), -1)
    with pytest.raises(ValueError, match="order"):
        A.taylor_features(torch.zeros(3), 1.5)
    with pytest.raises(ValueError, match="max_dim"):
        A.taylor_features(torch.zeros(64), 4)
    with pytest.raises(ValueError, match="n"):
        A.expdef_features(torch.zeros(3), 0)
    with pytest.raises(ValueError, match="max_dim"):
        A.expdef_features(torch.zeros(64), 4, max_dim=1000)
