"""Tests of the rectangular initialisation helpers (kexue_helpers.init)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from kexue_helpers import init as ri

SHAPES = [(16, 256), (256, 16), (7, 7), (1, 300), (300, 1), (8, 3, 5, 5), (4, 6, 3),
          (2, 3, 1, 4, 2)]


# ---------------------------------------------------------------- fans
@pytest.mark.parametrize("shape", SHAPES)
def test_fans_follow_torchs_rule(shape):
    w = torch.empty(shape)
    assert ri.fan_in_and_fan_out(w) == torch.nn.init._calculate_fan_in_and_fan_out(w)


def test_fan_average_values_and_closed_forms():
    assert ri.fan_average(256, 16) == 136.0
    assert ri.fan_average(256, 16, "geometric") == 64.0
    assert ri.fan_average(256, 16, "quadratic") == (256**2 + 16**2) / 272
    for m, n in [(1, 1), (3, 3), (100, 100)]:
        assert {ri.fan_average(m, n, mean) for mean in ri.MEANS} == {float(m)}


def test_fan_average_is_symmetric_and_ordered():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        m, n = (int(v) for v in rng.integers(1, 10**6, size=2))
        g, a, q = (ri.fan_average(m, n, mean)
                   for mean in ("geometric", "arithmetic", "quadratic"))
        assert g <= a * (1 + 1e-15) and a <= q * (1 + 1e-15)
        for mean in ri.MEANS:
            assert ri.fan_average(m, n, mean) == pytest.approx(ri.fan_average(n, m, mean), rel=1e-15)
        assert min(m, n) <= g and q <= max(m, n)


def test_quadratic_mean_minimises_the_least_squares_mismatch():
    from scipy.optimize import minimize_scalar

    for m, n in [(256, 16), (10, 1000), (64, 64), (3, 5)]:
        res = minimize_scalar(lambda s: (m * s - 1) ** 2 + (n * s - 1) ** 2,
                              bounds=(0, 1), method="bounded", options={"xatol": 1e-14})
        assert res.x == pytest.approx(1 / ri.fan_average(m, n, "quadratic"), rel=1e-6)


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(fan_in=0, fan_out=4), ValueError, r"fan_in must be an integer >= 1; got 0"),
    (dict(fan_in=4, fan_out=-2), ValueError, r"fan_out must be an integer >= 1; got -2"),
    (dict(fan_in=4.0, fan_out=2), TypeError, r"fan_in must be an integer"),
    (dict(fan_in=4, fan_out=2, mean="harmonic"), ValueError,
     r"mean must be one of 'geometric', 'arithmetic', 'quadratic', 'fan_in', 'fan_out'; "
     r"got 'harmonic'"),
])
def test_fan_average_rejects_bad_input(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        ri.fan_average(**kwargs)


def test_one_sided_rules_are_the_fans():
    assert ri.RULES[:3] == ri.MEANS and set(ri.RULES[3:]) == {"fan_in", "fan_out"}
    for m, n in [(256, 16), (16, 256), (7, 7), (1, 300)]:
        assert ri.fan_average(m, n, "fan_in") == float(m)
        assert ri.fan_average(m, n, "fan_out") == float(n)
        assert ri.rectangular_std(m, n, "fan_in", 2.0) == pytest.approx(2 / math.sqrt(m))
        # every average lies between the two one-sided fans
        for mean in ri.MEANS:
            assert min(m, n) <= ri.fan_average(m, n, mean) <= max(m, n)


@pytest.mark.parametrize("shape", [(16, 256), (256, 16), (8, 3, 5, 5)])
@pytest.mark.parametrize("rule, torch_mode", [("fan_in", "fan_in"), ("fan_out", "fan_out")])
def test_one_sided_rules_agree_with_torchs_kaiming_normal(shape, rule, torch_mode):
    # kaiming_normal_ with nonlinearity="linear" draws N(0, 1 / fan) with torch's fan rule
    ours = ri.rectangular_normal_(torch.empty(shape), rule,
                                  generator=torch.Generator().manual_seed(3))
    theirs = torch.nn.init.kaiming_normal_(torch.empty(shape), mode=torch_mode,
                                           nonlinearity="linear",
                                           generator=torch.Generator().manual_seed(3))
    assert torch.allclose(ours, theirs, rtol=1e-6, atol=0)


# ---------------------------------------------------------------- agreement with torch
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gain", [1.0, math.sqrt(2.0), 5 / 3, 0.3])
def test_arithmetic_std_is_torchs_float_exactly(shape, gain):
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert ri.rectangular_std(fan_in, fan_out, "arithmetic", gain) == \
        gain * math.sqrt(2.0 / float(fan_in + fan_out))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gain", [1.0, math.sqrt(2.0), 5 / 3])
def test_arithmetic_normal_is_xavier_normal_bit_for_bit(shape, gain):
    ours = ri.rectangular_normal_(torch.empty(shape), "arithmetic", gain,
                                  generator=torch.Generator().manual_seed(7))
    theirs = torch.nn.init.xavier_normal_(torch.empty(shape), gain,
                                          generator=torch.Generator().manual_seed(7))
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gain", [1.0, math.sqrt(2.0), 5 / 3])
def test_arithmetic_uniform_is_xavier_uniform_bit_for_bit(shape, gain):
    ours = ri.rectangular_uniform_(torch.empty(shape), "arithmetic", gain,
                                   generator=torch.Generator().manual_seed(7))
    theirs = torch.nn.init.xavier_uniform_(torch.empty(shape), gain,
                                           generator=torch.Generator().manual_seed(7))
    assert torch.equal(ours, theirs)


def test_global_generator_is_used_when_none_is_given():
    torch.manual_seed(3)
    ours = ri.rectangular_normal_(torch.empty(30, 40))
    torch.manual_seed(3)
    theirs = torch.nn.init.xavier_normal_(torch.empty(30, 40))
    assert torch.equal(ours, theirs)


def test_arithmetic_normal_has_xaviers_distribution():
    """Independent draws (different seeds) pass a two-sample KS test against torch's."""
    ours = ri.rectangular_normal_(torch.empty(200, 50),
                                  generator=torch.Generator().manual_seed(1))
    theirs = torch.nn.init.xavier_normal_(torch.empty(200, 50),
                                          generator=torch.Generator().manual_seed(2))
    assert stats.ks_2samp(ours.ravel().numpy(), theirs.ravel().numpy()).pvalue > 1e-3
    std = math.sqrt(2 / 250)
    assert stats.kstest(ours.ravel().numpy() / std, "norm").pvalue > 1e-3


@pytest.mark.parametrize("mean", ri.MEANS)
@pytest.mark.parametrize("fill", ["normal", "uniform"])
def test_each_mean_gives_the_stated_variance_and_law(mean, fill):
    shape = (48, 300)
    gain = 1.7
    gen = torch.Generator().manual_seed(11)
    fn = ri.rectangular_normal_ if fill == "normal" else ri.rectangular_uniform_
    w = fn(torch.empty(shape, dtype=torch.float64), mean, gain, gen).ravel().numpy()
    var = gain**2 / ri.fan_average(300, 48, mean)
    # sample variance within 4 standard errors (fourth moment 3 var^2 or 9/5 var^2)
    kurt = 3.0 if fill == "normal" else 1.8
    se = var * math.sqrt((kurt - 1) / w.size)
    assert abs(w.var() - var) < 4 * se
    if fill == "normal":
        assert stats.kstest(w / math.sqrt(var), "norm").pvalue > 1e-3
    else:
        a = math.sqrt(3 * var)
        assert np.abs(w).max() <= a
        assert stats.kstest(w, stats.uniform(-a, 2 * a).cdf).pvalue > 1e-3


def test_initialisers_work_in_place_on_views_and_other_dtypes():
    big = torch.zeros(3, 20, 10)
    out = ri.rectangular_normal_(big[1], "geometric", generator=torch.Generator().manual_seed(0))
    assert out.data_ptr() == big[1].data_ptr()
    assert bool((big[0] == 0).all()) and bool((big[2] == 0).all()) and bool((big[1] != 0).all())
    w = torch.empty(5, 6, dtype=torch.float64)
    assert ri.rectangular_uniform_(w, "quadratic") is w and w.dtype == torch.float64


def test_initialisers_do_not_record_autograd_history():
    w = torch.nn.Parameter(torch.empty(4, 9))
    ri.rectangular_normal_(w, "geometric")
    ri.rectangular_uniform_(w, "quadratic")
    assert w.grad_fn is None and w.requires_grad


@pytest.mark.parametrize("fn", [ri.rectangular_normal_, ri.rectangular_uniform_])
@pytest.mark.parametrize("args, kwargs, exc, pattern", [
    ((torch.empty(5),), {}, ValueError,
     r"tensor must have at least 2 dimensions .* got shape \(5,\)"),
    ((torch.empty(()),), {}, ValueError, r"tensor must have at least 2 dimensions"),
    ((torch.empty(0, 4),), {}, ValueError, r"fan_out must be an integer >= 1; got 0"),
    ((torch.empty(3, 4),), dict(mean="mean"), ValueError, r"mean must be one of"),
    ((torch.empty(3, 4),), dict(gain=0.0), ValueError, r"gain must lie in \(0\.0, inf\); got 0\.0"),
    ((torch.empty(3, 4),), dict(gain=-1.0), ValueError, r"gain must lie in"),
    ((np.zeros((3, 4)),), {}, TypeError, r"tensor must be a torch\.Tensor; got ndarray"),
    ((torch.zeros(3, 4, dtype=torch.int64),), {}, TypeError, r"tensor must have a floating dtype"),
    ((torch.empty(3, 4),), dict(generator=0), TypeError, r"generator must be a torch\.Generator"),
])
def test_initialisers_reject_bad_input(fn, args, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fn(*args, **kwargs)


def test_fans_and_std_reject_bad_input():
    with pytest.raises(ValueError, match=r"at least 2 dimensions"):
        ri.fan_in_and_fan_out(torch.empty(3))
    with pytest.raises(ValueError, match=r"gain must lie in \(0\.0, inf\); got -2\.0"):
        ri.rectangular_std(3, 4, gain=-2.0)


# ---------------------------------------------------------------- propagation
def test_predicted_second_moments_closed_forms():
    m, n, pairs = 256, 32, 5
    widths = [m, n] * pairs + [m]
    for mean in ri.MEANS:
        avg = ri.fan_average(m, n, mean)
        per_pair = m * n / avg**2
        fwd = ri.predicted_second_moments(widths, mean, "forward")
        bwd = ri.predicted_second_moments(widths, mean, "backward")
        assert fwd[0] == 1.0 and bwd[-1] == 1.0 and fwd.shape == bwd.shape == (2 * pairs + 1,)
        assert fwd[-1] == pytest.approx(per_pair**pairs, rel=1e-12)
        assert bwd[0] == pytest.approx(per_pair**pairs, rel=1e-12)
    # the geometric mean telescopes: sqrt(d_0 / d_L) forward for any widths
    d = [5, 70, 3, 12, 400, 9]
    assert ri.predicted_second_moments(d, "geometric")[-1] == pytest.approx(math.sqrt(5 / 9))
    assert ri.predicted_second_moments(d, "geometric", "backward")[0] == pytest.approx(math.sqrt(9 / 5))
    assert np.allclose(ri.predicted_second_moments([7] * 6, "quadratic"), 1.0)


def test_predicted_second_moments_of_the_one_sided_rules():
    d = [5, 70, 3, 12, 400, 9]
    fan_in_fwd = ri.predicted_second_moments(d, "fan_in")
    fan_in_bwd = ri.predicted_second_moments(d, "fan_in", "backward")
    assert np.allclose(fan_in_fwd, 1.0, rtol=1e-12)
    # backward factors d_{l+1} / d_l telescope: r_l / r_L = d_L / d_l
    assert np.allclose(fan_in_bwd, [d[-1] / w for w in d], rtol=1e-12)
    fan_out_fwd = ri.predicted_second_moments(d, "fan_out")
    # the fan-out rule keeps the length d_l q_l
    assert np.allclose(np.array(d) * fan_out_fwd, d[0], rtol=1e-12)
    assert np.allclose(ri.predicted_second_moments(d, "fan_out", "backward"), 1.0, rtol=1e-12)


@pytest.mark.parametrize("mean", ri.RULES)
def test_linear_propagation_matches_the_prediction(mean):
    widths = [64, 16, 64, 16, 64]
    p = ri.signal_propagation(widths, mean, "linear", batch=32, n_seeds=200, device="cpu")
    assert p.forward.shape == p.backward.shape == (200, 5) and p.widths == tuple(widths)
    for measured, direction in ((p.forward, "forward"), (p.backward, "backward")):
        pred = ri.predicted_second_moments(widths, mean, direction)
        ratio = measured / pred
        se = ratio.std(axis=0, ddof=1) / math.sqrt(ratio.shape[0])
        assert np.all(np.abs(ratio.mean(axis=0) - 1) <= 4 * se + 1e-12)


def test_relu_with_he_gain_follows_the_linear_prediction_forward():
    # exact in expectation, but the product is right-skewed: many seeds, not few wide ones
    widths = [64, 16, 64, 16, 64]
    p = ri.signal_propagation(widths, "arithmetic", "relu", batch=32, n_seeds=300, device="cpu")
    ratio = p.forward / ri.predicted_second_moments(widths, "arithmetic")
    se = ratio.std(axis=0, ddof=1) / math.sqrt(300)
    assert np.all(np.abs(ratio.mean(axis=0) - 1) <= 4 * se + 1e-12)


def test_signal_propagation_is_seeded_and_gain_matters():
    a = ri.signal_propagation([32, 8, 32], "geometric", "tanh", batch=16, n_seeds=2, device="cpu")
    b = ri.signal_propagation([32, 8, 32], "geometric", "tanh", batch=16, n_seeds=2, device="cpu")
    c = ri.signal_propagation([32, 8, 32], "geometric", "tanh", batch=16, n_seeds=2, seed=5,
                              device="cpu")
    assert np.array_equal(a.forward, b.forward) and np.array_equal(a.backward, b.backward)
    assert not np.array_equal(a.forward, c.forward)
    # seed k of a run with seed=0 is seed 0 of a run with seed=k
    d = ri.signal_propagation([32, 8, 32], "geometric", "tanh", batch=16, n_seeds=1, seed=1,
                              device="cpu")
    assert np.array_equal(a.forward[1], d.forward[0])
    lin1 = ri.signal_propagation([32, 32], "arithmetic", "linear", batch=16, n_seeds=1, device="cpu")
    lin2 = ri.signal_propagation([32, 32], "arithmetic", "linear", gain=2.0, batch=16, n_seeds=1,
                                 device="cpu")
    assert lin2.forward[0, 1] == pytest.approx(4 * lin1.forward[0, 1], rel=1e-5)


P, S = ri.predicted_second_moments, ri.signal_propagation


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda: P([5]), ValueError, r"widths must list at least 2 widths"),
    (lambda: P([5, 0]), ValueError, r"widths\[1\] must be an integer >= 1; got 0"),
    (lambda: P(5), TypeError, r"widths must be a sequence of integers"),
    (lambda: P([5, 4], direction="up"), ValueError, r"direction must be one of"),
    (lambda: P([5, 4], mean="median"), ValueError, r"mean must be one of"),
    (lambda: S([5, 4], activation="gelu"), ValueError, r"activation must be one of 'linear'"),
    (lambda: S([5, 4], gain=0), ValueError, r"gain must lie in"),
    (lambda: S([5, 4], batch=0), ValueError, r"batch must be an integer >= 1; got 0"),
    (lambda: S([5, 4], n_seeds=0), ValueError, r"n_seeds must be an integer >= 1"),
    (lambda: S([5, 4], seed=-1), ValueError, r"seed must be an integer >= 0"),
    (lambda: S([5, 4.5]), TypeError, r"widths\[1\] must be an integer"),
])
def test_propagation_helpers_reject_bad_input(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
