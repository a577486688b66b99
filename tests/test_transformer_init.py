"""Tests of kexue_helpers.transformer_init against scipy, torch and Hugging Face transformers.

TensorFlow is not installed here; its truncated-normal convention (bounds at +-2 stddev) is
reproduced with ``torch.nn.init.trunc_normal_(w, std=s, a=-2s, b=2s)`` and with
``scipy.stats.truncnorm(-2, 2)``, and the JAX/timm constant 0.87962566103423978 is checked
as a literal.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from kexue_helpers import transformer_init as T


# --------------------------------------------------------------------------------------
# truncated normal
# --------------------------------------------------------------------------------------
def test_gamma_value_and_closed_form():
    g = T.truncnorm_variance_factor()
    assert g == pytest.approx(0.7737413035499232, abs=1e-13)
    phi2 = stats.norm.pdf(2.0)
    assert g == pytest.approx(1 - 4 * phi2 / (special.ndtr(2) - special.ndtr(-2)), abs=1e-15)
    # the ratio of integrals as written in the article
    num = integrate.quad(lambda x: x * x * math.exp(-x * x / 2), -2, 2)[0]
    den = integrate.quad(lambda x: math.exp(-x * x / 2), -2, 2)[0]
    assert g == pytest.approx(num / den, abs=1e-13)


@pytest.mark.parametrize("a,b", [(-2, 2), (-1, 3), (0.5, 1.5), (-np.inf, 0.0), (-3, np.inf),
                                 (-np.inf, np.inf)])
def test_variance_factor_matches_scipy_truncnorm(a, b):
    assert T.truncnorm_variance_factor(a, b) == pytest.approx(stats.truncnorm(a, b).var(),
                                                              rel=1e-9, abs=1e-12)


def test_jax_timm_constant_is_sqrt_gamma():
    # jax.nn.initializers.variance_scaling and timm divide by this literal
    assert math.sqrt(T.truncnorm_variance_factor()) == pytest.approx(.87962566103423978,
                                                                     abs=1e-15)


def test_effective_std_and_inverse():
    s = T.tf_truncated_normal_effective_std(0.02)
    assert s == pytest.approx(0.02 / 1.1368472343385565, rel=1e-12)
    assert T.stddev_for_effective_std(s) == pytest.approx(0.02, rel=1e-12)
    assert T.stddev_for_effective_std(1.0) == pytest.approx(1.1368472343385565, rel=1e-12)
    for bound in (0.5, 1.0, 3.0):
        t = T.tf_truncated_normal_effective_std(0.3, bound)
        assert T.stddev_for_effective_std(t, bound) == pytest.approx(0.3, rel=1e-12)


def test_effective_std_matches_torch_sampler_with_tf_bounds():
    gen = torch.Generator().manual_seed(0)
    w = torch.empty(2_000_000, dtype=torch.float64)
    torch.nn.init.trunc_normal_(w, std=0.02, a=-0.04, b=0.04, generator=gen)
    expected = T.tf_truncated_normal_effective_std(0.02)
    # s.e. of a sample std: about s / sqrt(2n)
    assert abs(w.std().item() - expected) < 5 * expected / math.sqrt(2 * w.numel())
    # torch's default bounds are absolute: nothing is truncated at std 0.02
    torch.nn.init.trunc_normal_(w, std=0.02, generator=gen)
    assert abs(w.std().item() - 0.02) < 5 * 0.02 / math.sqrt(2 * w.numel())
    assert abs(w.std().item() - expected) > 20 * expected / math.sqrt(2 * w.numel())


@pytest.mark.parametrize("call", [
    lambda: T.truncnorm_variance_factor(2.0, -2.0),
    lambda: T.truncnorm_variance_factor(1.0, 1.0),
    lambda: T.truncnorm_variance_factor(float("nan"), 2.0),
    lambda: T.tf_truncated_normal_effective_std(0.0),
    lambda: T.tf_truncated_normal_effective_std(-0.02),
    lambda: T.tf_truncated_normal_effective_std(0.02, bound=0.0),
    lambda: T.stddev_for_effective_std(-1.0),
    lambda: T.stddev_for_effective_std(1.0, bound=-2.0),
])
def test_truncnorm_validation(call):
    with pytest.raises(ValueError):
        call()


def test_error_messages_name_argument_and_value():
    with pytest.raises(ValueError, match=r"stddev.*-0\.5"):
        T.tf_truncated_normal_effective_std(-0.5)
    with pytest.raises(ValueError, match=r"a must be smaller than b.*a=3\.0"):
        T.truncnorm_variance_factor(3.0, 1.0)


# --------------------------------------------------------------------------------------
# activations and SELU
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,torch_fn,value", [
    ("sigmoid", torch.sigmoid, 0.2933790),
    ("tanh", torch.tanh, 0.3942945),
    ("gelu", torch.nn.functional.gelu, 0.4252215),
    ("relu", torch.relu, 0.5),
    ("selu", torch.nn.functional.selu, 1.0),
])
def test_activation_second_moments(name, torch_fn, value):
    m = T.activation_second_moment(name)
    assert m == pytest.approx(value, abs=6e-8)
    # Monte Carlo with torch's own activation
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(2_000_000, generator=gen, dtype=torch.float64)
    y2 = torch_fn(z) ** 2
    se = y2.std().item() / math.sqrt(z.numel())
    assert abs(y2.mean().item() - m) < 5 * se


def test_activation_second_moment_mean_std_and_callable():
    # E[(mu + s z)^2] = mu^2 + s^2 for the identity
    assert T.activation_second_moment(lambda x: x, 0.7, 1.3) == pytest.approx(0.49 + 1.69,
                                                                              rel=1e-10)
    # ReLU with scale s: s^2 / 2
    assert T.activation_second_moment("relu", 0.0, 3.0) == pytest.approx(4.5, rel=1e-10)


@pytest.mark.parametrize("kwargs", [dict(fn="swish"), dict(fn="gelu", std=0.0),
                                    dict(fn="tanh", std=-1.0), dict(fn=3.0)])
def test_activation_validation(kwargs):
    with pytest.raises(ValueError):
        T.activation_second_moment(**kwargs)


def test_selu_constants_against_closed_form_and_torch():
    alpha, lam = T.selu_constants()
    closed = -math.sqrt(2 / math.pi) / (math.erfc(1 / math.sqrt(2)) * math.exp(0.5) - 1)
    assert alpha == pytest.approx(closed, abs=1e-12)
    # torch.nn.functional.selu: selu(1) = lambda, selu(-inf) = -lambda * alpha
    x = torch.tensor([1.0, -60.0], dtype=torch.float64)
    y = torch.nn.functional.selu(x)
    assert lam == pytest.approx(y[0].item(), abs=1e-7)
    assert alpha * lam == pytest.approx(-y[1].item(), abs=1e-7)
    # calculate_gain('selu') is a different convention (3/4), not lambda
    assert torch.nn.init.calculate_gain("selu") == 0.75
    # defining equations hold
    z = np.linspace(-12, 12, 200_001)
    w = stats.norm.pdf(z)
    s = lam * np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))
    assert np.trapezoid(s * w, z) == pytest.approx(0.0, abs=1e-8)
    assert np.trapezoid(s * s * w, z) == pytest.approx(1.0, abs=1e-8)


# --------------------------------------------------------------------------------------
# FFN branch, Post-Norm path weights
# --------------------------------------------------------------------------------------
def test_ffn_branch_brief_values():
    s_tf = T.tf_truncated_normal_effective_std(0.02)
    assert T.ffn_branch_second_moment(768, 3072, s_tf) == pytest.approx(0.0748, abs=1e-4)
    assert T.ffn_branch_second_moment(768, 3072, 0.02) == pytest.approx(0.1308, abs=1e-4)
    xav = math.sqrt(2 / (768 + 3072))
    assert T.ffn_branch_second_moment(768, 3072, xav) == pytest.approx(0.2329, abs=1e-4)


def test_ffn_branch_relu_he_closed_form():
    # He std^2 = 2/m on both layers, d_ff = d_model = m: pre-activation variance 2,
    # after ReLU 1, and the second (linear) layer with He's std doubles it: 2.
    # LeCun's 1/m: variance 1, after ReLU 1/2, kept by the linear layer: 1/2
    m = 256
    assert T.ffn_branch_second_moment(m, m, math.sqrt(2 / m), "relu") == pytest.approx(2.0)
    assert T.ffn_branch_second_moment(m, m, math.sqrt(1 / m), "relu") == pytest.approx(0.5)


def test_ffn_branch_monte_carlo():
    gen = torch.Generator().manual_seed(3)
    d, f, std, reps = 128, 512, 0.05, 400
    x = torch.randn(reps, d, generator=gen, dtype=torch.float64)
    x = x / x.pow(2).mean(-1, keepdim=True).sqrt()        # LayerNorm-like: |x|^2 = d
    w1 = std * torch.randn(reps, d, f, generator=gen, dtype=torch.float64)
    w2 = std * torch.randn(reps, f, d, generator=gen, dtype=torch.float64)
    h = torch.nn.functional.gelu(torch.einsum("rd,rdf->rf", x, w1))
    y2 = torch.einsum("rf,rfd->rd", h, w2).pow(2).mean(-1)
    pred = T.ffn_branch_second_moment(d, f, std)
    assert abs(y2.mean().item() - pred) < 5 * y2.std().item() / math.sqrt(reps)
    # and input_second_moment rescales the pre-activation
    pred2 = T.ffn_branch_second_moment(d, f, std, input_second_moment=4.0)
    assert pred2 == pytest.approx(T.ffn_branch_second_moment(d, f, 2 * std) / 4, rel=1e-9)


@pytest.mark.parametrize("kwargs", [dict(d_model=0, d_ff=4, std=0.1),
                                    dict(d_model=4, d_ff=-1, std=0.1),
                                    dict(d_model=4, d_ff=4, std=0.0),
                                    dict(d_model=4, d_ff=4, std=0.1, input_second_moment=0.0),
                                    dict(d_model=4, d_ff=4, std=0.1, activation="swish")])
def test_ffn_validation(kwargs):
    with pytest.raises(ValueError):
        T.ffn_branch_second_moment(**kwargs)


def test_postnorm_path_weights_article_case_and_recursion():
    L = 24
    c = T.postnorm_path_weights(np.ones(L))
    expected = np.array([2.0 ** (-L / 2)] + [2.0 ** (-(L - k) / 2) for k in range(L)])
    np.testing.assert_allclose(c, expected, rtol=1e-13)
    # unroll the recursion with random scalars standing for x_0 and F_l
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 2, 7)
    coef = np.zeros(8)
    coef[0] = 1.0
    for l in range(7):
        coef[l + 1] += 1.0
        coef /= math.sqrt(1 + s[l])
    np.testing.assert_allclose(T.postnorm_path_weights(s), coef, rtol=1e-13)


@pytest.mark.parametrize("bad", [[], [0.1, -0.2], [np.nan], [np.inf]])
def test_postnorm_validation(bad):
    with pytest.raises(ValueError, match="branch_second_moments"):
        T.postnorm_path_weights(bad)


# --------------------------------------------------------------------------------------
# NTK parameterisation under Adam
# --------------------------------------------------------------------------------------
def test_ntk_equivalent_adam_values_and_validation():
    assert T.ntk_equivalent_adam(1e-2, 1e-8, 64) == (1e-2 / 8, 1e-8 * 8)
    for kwargs in (dict(lr=1e-3, eps=1e-8, fan_in=0), dict(lr=0.0, eps=1e-8, fan_in=4),
                   dict(lr=1e-3, eps=-1.0, fan_in=4)):
        with pytest.raises(ValueError):
            T.ntk_equivalent_adam(**kwargs)


def test_ntk_adam_trajectories_coincide_exactly():
    m, n = 64, 16
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, m, generator=gen, dtype=torch.float64)
    target = torch.randn(32, n, generator=gen, dtype=torch.float64)
    V = torch.randn(m, n, generator=gen, dtype=torch.float64).requires_grad_()
    W = (V.detach() / math.sqrt(m)).clone().requires_grad_()
    lr, eps = 1e-2, 1e-3            # an eps large enough to matter
    lr2, eps2 = T.ntk_equivalent_adam(lr, eps, m)
    opt_v = torch.optim.Adam([V], lr=lr, eps=eps)
    opt_w = torch.optim.Adam([W], lr=lr2, eps=eps2)
    opt_bad = None
    for _ in range(100):
        for P, opt, scale in ((V, opt_v, 1 / math.sqrt(m)), (W, opt_w, 1.0)):
            opt.zero_grad()
            loss = (torch.tanh(x @ P * scale) - target).pow(2).mean()
            loss.backward()
            opt.step()
    assert torch.equal(V.detach() / math.sqrt(m), W.detach())
    # the naive pairing (same eps) does not coincide: the test can fail
    V2 = torch.randn(m, n, generator=gen, dtype=torch.float64).requires_grad_()
    W2 = (V2.detach() / math.sqrt(m)).clone().requires_grad_()
    opt_v, opt_bad = torch.optim.Adam([V2], lr=lr, eps=eps), torch.optim.Adam([W2], lr=lr2,
                                                                              eps=eps)
    for _ in range(100):
        for P, opt, scale in ((V2, opt_v, 1 / math.sqrt(m)), (W2, opt_bad, 1.0)):
            opt.zero_grad()
            (torch.tanh(x @ P * scale) - target).pow(2).mean().backward()
            opt.step()
    assert (V2.detach() / math.sqrt(m) - W2.detach()).abs().max() > 1e-6


# --------------------------------------------------------------------------------------
# Hugging Face conventions the chapter relies on
# --------------------------------------------------------------------------------------
def test_hugging_face_bert_init_is_a_plain_normal():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(hidden_size=256, num_hidden_layers=1, num_attention_heads=4,
                                  intermediate_size=1024, vocab_size=1000)
    assert cfg.initializer_range == 0.02 and cfg.layer_norm_eps == 1e-12
    model = transformers.BertModel(cfg)
    w = torch.cat([model.encoder.layer[0].intermediate.dense.weight.flatten(),
                   model.encoder.layer[0].output.dense.weight.flatten()]).double()
    se = 0.02 / math.sqrt(2 * w.numel())
    assert abs(w.std().item() - 0.02) < 5 * se
    assert w.abs().max().item() > 0.04   # not truncated at 2 std
    assert abs(w.std().item() - T.tf_truncated_normal_effective_std(0.02)) > 20 * se


def test_hugging_face_t5_qkv_stds():
    """T5 puts the whole 1/sqrt(d_kv) on W_q: std (d_model d_kv)^-1/2; W_k, W_v d_model^-1/2."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.T5Config(vocab_size=100, d_model=256, d_kv=32, num_heads=8, d_ff=512,
                                num_layers=1, num_decoder_layers=1)
    sa = transformers.T5Model(cfg).encoder.block[0].layer[0].SelfAttention
    pred = {"q": (256 * 32) ** -0.5, "k": 256 ** -0.5, "v": 256 ** -0.5}
    for name, want in pred.items():
        w = getattr(sa, name).weight.double()
        se = want / math.sqrt(2 * w.numel())
        assert abs(w.std().item() - want) < 5 * se, name
    # q and k differ by a factor sqrt(d_kv): the test would fail for the symmetric version
    assert abs(sa.k.weight.std().item() / sa.q.weight.std().item() - math.sqrt(32)) < 0.3


# --------------------------------------------------------------------------------------
# regressions: far tails and narrow or distant Gaussians (referee round 1, M5)
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b", [(8.0, 9.0), (6.0, 7.0), (-9.0, -8.0), (3.0, np.inf),
                                  (-np.inf, -5.0)])
def test_variance_factor_far_tails_match_scipy(a, b):
    got, want = T.truncnorm_variance_factor(a, b), stats.truncnorm(a, b).var()
    assert 0 < got <= 1
    assert abs(got / want - 1) < 1e-8


@pytest.mark.parametrize("fn, mean, std, want", [
    (lambda x: x, 5.0, 0.01, 25.0001),               # narrow and far from 0
    (lambda x: x, 0.0, 1e5, 1e10),                   # very wide
    (lambda x: x, -3.0, 2.0, 13.0),
    ("relu", 4.0, 0.5, None),                        # kink far in the tail
])
def test_activation_second_moment_narrow_or_distant(fn, mean, std, want):
    got = T.activation_second_moment(fn, mean, std)
    if want is None:   # relu with mean >> std: E[z^2; z > 0] = mean^2 + std^2 up to 1e-15
        want = mean**2 + std**2
    assert abs(got / want - 1) < 1e-9


def test_activation_second_moment_tanh_far_from_zero_monte_carlo():
    rng = np.random.default_rng(0)
    z = 20 + 0.2 * rng.standard_normal(200_000)
    mc = np.mean(np.tanh(z) ** 2)
    assert abs(T.activation_second_moment("tanh", 20.0, 0.2) - mc) < 1e-9
    z = 1.5 + 0.3 * rng.standard_normal(1_000_000)
    y2 = np.tanh(z) ** 2
    assert abs(T.activation_second_moment("tanh", 1.5, 0.3) - y2.mean()) < 5 * y2.std() / 1000


def test_ntk_equivalent_adam_rejects_non_integer_fan_in_with_value_error():
    with pytest.raises(ValueError, match="fan_in.*2.5"):
        T.ntk_equivalent_adam(1e-3, 1e-8, 2.5)


def test_postnorm_error_message_prints_plain_float():
    with pytest.raises(ValueError, match=r"entry 1 is -1\.0$"):
        T.postnorm_path_weights([1.0, -1.0])


@pytest.mark.parametrize("mean, std", [(3e4, 1.0), (1e5, 1.0), (1e6, 1.0), (-4.0, 1.0),
                                       (2.0, 0.5), (-1e6, 3.0), (1e3, 1e-3)])
def test_activation_second_moment_relu_closed_form_any_distance(mean, std):
    # E[relu(z)^2] = (m^2 + s^2) Phi(m/s) + m s phi(m/s); the round-2 regression: with
    # an infinite range quad missed the mass at |mean|/std >~ 2e4 and returned half
    r = mean / std
    want = (mean**2 + std**2) * stats.norm.cdf(r) + mean * std * stats.norm.pdf(r)
    got = T.activation_second_moment("relu", mean, std)
    if want < 1e-250:
        assert got < 1e-250
    else:
        assert abs(got / want - 1) < 1e-9
