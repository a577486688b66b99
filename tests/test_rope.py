"""Tests of the RoPE helpers (kexue_helpers.rope), against transformers where it has the scheme."""

from __future__ import annotations

import math

import pytest
import torch

from kexue_helpers import rope

transformers = pytest.importorskip("transformers")
from transformers import LlamaConfig  # noqa: E402
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS  # noqa: E402


def _hf_config(dim: int, max_position: int, **rope_parameters) -> LlamaConfig:
    return LlamaConfig(hidden_size=dim, num_attention_heads=1, head_dim=dim,
                       max_position_embeddings=max_position,
                       rope_parameters=dict(rope_theta=rope_parameters.pop("base", 10000.0),
                                            **rope_parameters))


def _close(ours: torch.Tensor, theirs: torch.Tensor, rtol: float = 1e-6) -> None:
    assert ours.dtype == torch.float32 and ours.shape == theirs.shape
    assert float(((ours.double() - theirs.double()) / theirs.double()).abs().max()) < rtol


# ---------------------------------------------------------------- base_digit
def test_base_digit_rebuilds_integers():
    for beta in (2, 3, 10, 16):
        for n in (0, 1, 5, 99, 2023, 65535, 10**6 + 7):
            digits = [rope.base_digit(n, beta, m) for m in range(1, 25)]
            assert all(0 <= c < beta for c in digits)
            assert sum(c * beta ** (m - 1) for m, c in enumerate(digits, start=1)) == n


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(n=-1, beta=10, m=1), ValueError, r"n must be an integer >= 0; got -1"),
    (dict(n=5, beta=1, m=1), ValueError, r"beta must be an integer >= 2; got 1"),
    (dict(n=5, beta=10, m=0), ValueError, r"m must be an integer >= 1; got 0"),
    (dict(n=5.0, beta=10, m=1), TypeError, r"n must be an integer"),
])
def test_base_digit_rejects_bad_input(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        rope.base_digit(**kwargs)


# ---------------------------------------------------------------- rope_inv_freq vs transformers
@pytest.mark.parametrize("dim", [8, 64, 128])
@pytest.mark.parametrize("base", [10000.0, 500000.0])
def test_default_matches_llama(dim, base):
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    cfg = _hf_config(dim, 2048, base=base, rope_type="default")
    theirs, factor = LlamaRotaryEmbedding.compute_default_rope_parameters(cfg)
    _close(rope.rope_inv_freq(dim, base), theirs)
    assert factor == 1.0


@pytest.mark.parametrize("dim", [16, 64, 128])
@pytest.mark.parametrize("factor", [1.0, 2.0, 8.0, 32.0])
def test_linear_matches_transformers(dim, factor):
    cfg = _hf_config(dim, 2048, rope_type="linear", factor=factor)
    theirs, _ = ROPE_INIT_FUNCTIONS["linear"](cfg, None)
    _close(rope.rope_inv_freq(dim, scaling="linear", factor=factor), theirs)


@pytest.mark.parametrize("dim", [16, 64, 128])
@pytest.mark.parametrize("factor", [1.0, 2.0, 4.0])
@pytest.mark.parametrize("seq_len", [100, 512, 513, 3000, 20000])
def test_dynamic_ntk_matches_transformers(dim, factor, seq_len):
    cfg = _hf_config(dim, 512, rope_type="dynamic", factor=factor)
    theirs, _ = ROPE_INIT_FUNCTIONS["dynamic"](cfg, None, seq_len=seq_len)
    ours = rope.rope_inv_freq(dim, scaling="dynamic-ntk", factor=factor, seq_len=seq_len,
                              max_position=512)
    _close(ours, theirs)


@pytest.mark.parametrize("dim", [16, 32, 64, 128])
@pytest.mark.parametrize("factor", [2.0, 4.0, 16.0])
@pytest.mark.parametrize("original", [32, 512, 4096])
@pytest.mark.parametrize("betas", [None, (16.0, 2.0)])
def test_yarn_matches_transformers(dim, factor, original, betas):
    extra = {} if betas is None else dict(beta_fast=betas[0], beta_slow=betas[1])
    cfg = _hf_config(dim, int(original * factor), rope_type="yarn", factor=factor,
                     original_max_position_embeddings=original, **extra)
    theirs, attention = ROPE_INIT_FUNCTIONS["yarn"](cfg, None)
    ours = rope.rope_inv_freq(dim, scaling="yarn", factor=factor, original_max_position=original,
                              **extra)
    _close(ours, theirs)
    assert abs(rope.yarn_attention_factor(factor) - attention) < 1e-12


def test_yarn_attention_factor_values():
    assert rope.yarn_attention_factor(1.0) == 1.0
    assert rope.yarn_attention_factor(0.5) == 1.0
    assert abs(rope.yarn_attention_factor(math.e) - 1.1) < 1e-12
    with pytest.raises(ValueError, match=r"factor must lie in \(0\.0, inf\); got 0\.0"):
        rope.yarn_attention_factor(0.0)


# ---------------------------------------------------------------- the schemes' own formulas
@pytest.mark.parametrize("dim", [8, 32, 128])
@pytest.mark.parametrize("k", [2.0, 4.0, 16.0])
def test_ntk_is_base_conversion(dim, k):
    th = rope.rope_inv_freq(dim).double()
    ntk = rope.rope_inv_freq(dim, scaling="ntk", factor=k).double()
    as_base = rope.rope_inv_freq(dim, 10000.0 * k ** (dim / (dim - 2))).double()
    assert torch.allclose(ntk, as_base, rtol=1e-6)
    assert float(ntk[0]) == float(th[0]) == 1.0
    assert abs(float(th[-1] / ntk[-1]) - k) < 1e-5 * k


@pytest.mark.parametrize("dim", [8, 32, 128])
def test_fixed_and_mixed_limits(dim):
    k = 4.0
    th = rope.rope_inv_freq(dim).double()
    fixed = rope.rope_inv_freq(dim, scaling="ntk-fixed", factor=k).double()
    i = torch.arange(dim // 2, dtype=torch.float64)
    assert torch.allclose(fixed, th * k ** (-2 * (i + 1) / dim), rtol=1e-6)
    for b in (0.0, 0.3, 0.625, 1.0):
        mixed = rope.rope_inv_freq(dim, scaling="ntk-mixed", factor=k, b=b).double()
        assert abs(float(th[-1] / mixed[-1]) - k) < 1e-5 * k       # slowest: exactly /k
    assert torch.allclose(rope.rope_inv_freq(dim, scaling="ntk-mixed", factor=k, b=1.0),
                          rope.rope_inv_freq(dim, scaling="ntk-fixed", factor=k))
    assert torch.allclose(rope.rope_inv_freq(dim, scaling="ntk-mixed", factor=k, b=0.0),
                          rope.rope_inv_freq(dim, scaling="linear", factor=k))


@pytest.mark.parametrize("scaling, params", [
    ("linear", {}), ("ntk", {}), ("ntk-fixed", {}), ("ntk-mixed", {"b": 0.5}),
    ("dynamic-ntk", {"seq_len": 10, "max_position": 64}),
    ("yarn", {"original_max_position": 64}),
])
def test_factor_one_is_identity(scaling, params):
    ours = rope.rope_inv_freq(32, scaling=scaling, factor=1.0, **params)
    assert torch.allclose(ours, rope.rope_inv_freq(32), rtol=1e-6)
    assert ours.shape == (16,) and ours.dtype == torch.float32


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(dim=7), r"dim must be an even integer .*; got 7"),
    (dict(dim=0), r"dim must be an integer >= 2; got 0"),
    (dict(dim=8, base=0.0), r"base must lie in \(0\.0, inf\); got 0\.0"),
    (dict(dim=8, base=-5.0), r"base must lie in \(0\.0, inf\); got -5\.0"),
    (dict(dim=8, base=1.0), r"base must be a real number > 1; got 1\.0"),
    (dict(dim=8, scaling="ntk", factor=0.5), r"factor must lie in \[1\.0, inf\); got 0\.5"),
    (dict(dim=8, scaling="bogus"), r"scaling must be one of None, 'linear'.*; got 'bogus'"),
    (dict(dim=8, scaling="ntk-mixed", factor=2.0), r"scaling='ntk-mixed' needs the parameter\(s\) b"),
    (dict(dim=8, scaling="dynamic-ntk", factor=2.0, seq_len=10),
     r"scaling='dynamic-ntk' needs the parameter\(s\) max_position"),
    (dict(dim=8, scaling="yarn", factor=2.0),
     r"scaling='yarn' needs the parameter\(s\) original_max_position"),
    (dict(dim=8, scaling="ntk", factor=2.0, b=0.5), r"scaling='ntk' does not take the parameter\(s\) b"),
    (dict(dim=8, scaling="ntk-mixed", factor=2.0, b=-1.0), r"b must lie in \[0\.0, inf\); got -1\.0"),
    (dict(dim=8, scaling="yarn", factor=2.0, original_max_position=64, beta_fast=1.0, beta_slow=2.0),
     r"beta_slow must be smaller than beta_fast"),
    (dict(dim=8, scaling="dynamic-ntk", factor=2.0, seq_len=0, max_position=4),
     r"seq_len must be an integer >= 1; got 0"),
])
def test_rope_inv_freq_rejects_bad_input(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        rope.rope_inv_freq(**kwargs)


def test_rope_inv_freq_rejects_non_integer_dim():
    with pytest.raises(TypeError, match=r"dim must be an integer"):
        rope.rope_inv_freq(8.0)


# ---------------------------------------------------------------- apply_rope
def test_half_layout_matches_transformers_apply_rotary_pos_emb():
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    dim, length = 64, 50
    cfg = _hf_config(dim, 2048, rope_type="default")
    emb = LlamaRotaryEmbedding(cfg)
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, length, dim, generator=gen)
    k = torch.randn(2, 3, length, dim, generator=gen)
    position_ids = torch.arange(length)[None].expand(2, length)
    cos, sin = emb(q, position_ids)
    q_hf, k_hf = apply_rotary_pos_emb(q, k, cos, sin)
    pos = torch.arange(length)
    assert torch.allclose(rope.apply_rope(q, pos, emb.inv_freq), q_hf, atol=1e-5)
    assert torch.allclose(rope.apply_rope(k, pos, rope.rope_inv_freq(dim)), k_hf, atol=1e-5)


def test_layouts_agree_after_the_permutation():
    gen = torch.Generator().manual_seed(1)
    for dim in (2, 8, 64):
        x = torch.randn(4, 9, dim, generator=gen, dtype=torch.float64)
        pos = torch.linspace(0, 300, 9, dtype=torch.float64)
        f = rope.rope_inv_freq(dim)
        p = rope.interleave_permutation(dim)
        assert sorted(p.tolist()) == list(range(dim))
        half = rope.apply_rope(x, pos, f, layout="half")
        inter = rope.apply_rope(x[..., p], pos, f, layout="interleaved")
        assert torch.allclose(half[..., p], inter, atol=1e-12)
        # and the two layouts are genuinely different maps on the same vector
        if dim > 2:
            assert not torch.allclose(half, rope.apply_rope(x, pos, f, layout="interleaved"))


def test_scores_depend_only_on_relative_position():
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(32, generator=gen, dtype=torch.float64)
    k = torch.randn(32, generator=gen, dtype=torch.float64)
    f = rope.rope_inv_freq(32)

    def score(n, j, layout):
        return float(rope.apply_rope(q[None], [n], f, layout=layout)[0]
                     @ rope.apply_rope(k[None], [j], f, layout=layout)[0])

    for layout in ("half", "interleaved"):
        for n, j in [(0, 0), (7, 3), (3, 7), (1000, 10)]:
            for shift in (1, 55, 12345):
                assert abs(score(n, j, layout) - score(n + shift, j + shift, layout)) < 1e-9
        assert abs(score(7, 3, layout) - score(7, 4, layout)) > 1e-3


def test_apply_rope_preserves_norm_dtype_and_position_zero():
    x = torch.randn(5, 16)
    out = rope.apply_rope(x, torch.arange(5), rope.rope_inv_freq(16))
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert torch.allclose(out.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert torch.equal(out[0], x[0])
    # a nested list is accepted too
    assert rope.apply_rope([[1.0, 0.0]], [0.5], [1.0]).shape == (1, 2)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(x=torch.zeros(3, 7), positions=[0, 1, 2], inv_freq=[1.0, 1.0, 1.0]),
     r"x must have an even last dimension"),
    (dict(x=torch.zeros(3, 8), positions=[0, 1, 2], inv_freq=[1.0, 1.0]),
     r"inv_freq must have last dimension dim/2 = 4"),
    (dict(x=torch.zeros(3, 8), positions=[0, 1], inv_freq=[1.0] * 4),
     r"positions must have one entry per row of x \(3\); got 2"),
    (dict(x=torch.zeros(3, 8), positions=[0, 1, 2], inv_freq=[1.0] * 4, layout="neox"),
     r"layout must be one of 'half', 'interleaved'; got 'neox'"),
    (dict(x=torch.zeros(8), positions=[0], inv_freq=[1.0] * 4), r"x must have shape \(\.\.\., T, d\)"),
])
def test_apply_rope_rejects_bad_input(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        rope.apply_rope(**kwargs)


def test_interleave_permutation_values_and_errors():
    assert rope.interleave_permutation(4).tolist() == [0, 2, 1, 3]
    with pytest.raises(ValueError, match=r"dim must be an even integer"):
        rope.interleave_permutation(5)


# ---------------------------------------------------------------- logn_scale
def test_logn_scale():
    s = rope.logn_scale(torch.arange(200), 64)
    assert torch.all(s[:64] == 1) and torch.all(s[64:] > 1)
    assert abs(float(s[127]) - math.log(128) / math.log(64)) < 1e-6
    with pytest.raises(ValueError, match=r"train_length must be an integer >= 2; got 1"):
        rope.logn_scale([1, 2], 1)
    with pytest.raises(ValueError, match=r"positions must be non-negative"):
        rope.logn_scale([-1, 2], 8)


# ---------------------------------------------------------------- attention
def _reference_attention(q, k, v, rel, freq, logn=None, factor=1.0):
    """Attention from explicit relative positions, built from apply_rope one pair at a time."""
    t, d = q.shape[-2], q.shape[-1]
    logits = torch.empty(q.shape[:-2] + (t, t), dtype=q.dtype)
    for n in range(t):
        for j in range(t):
            qn = rope.apply_rope(q[..., n:n + 1, :], [float(rel[n, j])], freq)
            logits[..., n, j] = (qn[..., 0, :] * k[..., j, :]).sum(-1)
    logits = logits * factor**2 / math.sqrt(d)
    if logn is not None:
        logits = logits * rope.logn_scale(torch.arange(t), logn).double()[:, None]
    logits = logits.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
    return torch.softmax(logits, -1) @ v


def _qkv(t=12, d=8, seed=3):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, t, d, generator=gen, dtype=torch.float64) for _ in range(3)]


def test_rope_attention_matches_reference_and_sdpa():
    q, k, v = _qkv()
    f = rope.rope_inv_freq(8).double()
    pos = torch.arange(12.0)
    rel = pos[:, None] - pos[None, :]
    ours = rope.rope_attention(q, k, v, f)
    assert torch.allclose(ours, _reference_attention(q, k, v, rel, f), atol=1e-12)
    sdpa = torch.nn.functional.scaled_dot_product_attention(
        rope.apply_rope(q, pos, f), rope.apply_rope(k, pos, f), v, is_causal=True)
    assert torch.allclose(ours, sdpa, atol=1e-12)
    with_logn = rope.rope_attention(q, k, v, f, logn_length=4, attention_factor=1.2)
    assert torch.allclose(with_logn, _reference_attention(q, k, v, rel, f, logn=4, factor=1.2),
                          atol=1e-12)
    # per-query frequencies: identical rows give the same result
    assert torch.allclose(rope.rope_attention(q, k, v, f.expand(12, 4)), ours, atol=1e-12)
    # non-causal attention sees the future
    assert not torch.allclose(rope.rope_attention(q, k, v, f, causal=False), ours)


def test_rope_attention_per_query_frequencies():
    q, k, v = _qkv(t=20)
    freqs = torch.stack([rope.rope_inv_freq(8, scaling="dynamic-ntk", factor=1.0, seq_len=n + 1,
                                            max_position=8) for n in range(20)]).double()
    ours = rope.rope_attention(q, k, v, freqs)
    # row n must equal ordinary RoPE attention with the frequencies of row n
    for n in (0, 7, 8, 19):
        row = rope.rope_attention(q, k, v, freqs[n])[..., n, :]
        assert torch.allclose(ours[..., n, :], row, atol=1e-12)


@pytest.mark.parametrize("leak", [None, 2.0, 8.0])
@pytest.mark.parametrize("window", [1, 3, 5])
def test_rerope_two_matrices_match_capped_relative_positions(window, leak):
    q, k, v = _qkv()
    f = rope.rope_inv_freq(8).double()
    pos = torch.arange(12.0)
    rel = pos[:, None] - pos[None, :]
    far = torch.full_like(rel, float(window)) if leak is None else window + (rel - window) / leak
    capped = torch.where(rel < window, rel, far)
    ours = rope.rerope_attention(q, k, v, f, window=window, leak=leak)
    assert torch.allclose(ours, _reference_attention(q, k, v, capped, f), atol=1e-12)
    ours_logn = rope.rerope_attention(q, k, v, f, window=window, leak=leak, logn_length=4)
    assert torch.allclose(ours_logn, _reference_attention(q, k, v, capped, f, logn=4), atol=1e-12)


def test_rerope_with_a_long_window_is_rope():
    q, k, v = _qkv()
    f = rope.rope_inv_freq(8)
    assert torch.allclose(rope.rerope_attention(q, k, v, f, window=12),
                          rope.rope_attention(q, k, v, f), atol=1e-12)


@pytest.mark.parametrize("fn, kwargs, exc, pattern", [
    ("rope_attention", dict(q=torch.zeros(4, 8, dtype=torch.int64)), TypeError,
     r"q must be a floating-point torch.Tensor"),
    ("rope_attention", dict(k=torch.zeros(4, 6)), ValueError, r"q and k must share an even"),
    ("rope_attention", dict(v=torch.zeros(5, 8)), ValueError, r"must have the same length T"),
    ("rope_attention", dict(inv_freq=torch.ones(3, 4)), ValueError, r"must have T = 4 rows"),
    ("rope_attention", dict(logn_length=1), ValueError, r"logn_length must be an integer >= 2"),
    ("rope_attention", dict(attention_factor=0.0), ValueError, r"attention_factor must lie in"),
    ("rerope_attention", dict(window=0), ValueError, r"window must be an integer >= 1; got 0"),
    ("rerope_attention", dict(window=2, leak=1.0), ValueError, r"leak must lie in \(1\.0, inf\)"),
    ("rerope_attention", dict(window=2, inv_freq=torch.ones(4, 4)), ValueError,
     r"inv_freq must have shape \(d/2,\) for ReRoPE"),
])
def test_attention_rejects_bad_input(fn, kwargs, exc, pattern):
    args = dict(q=torch.zeros(4, 8), k=torch.zeros(4, 8), v=torch.zeros(4, 8),
                inv_freq=rope.rope_inv_freq(8))
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        getattr(rope, fn)(**args)


def test_attention_runs_in_a_model_and_backpropagates():
    q, k, v = (t.float().requires_grad_() for t in _qkv(t=16, d=16))
    f = rope.rope_inv_freq(16)
    out = rope.rope_attention(q, k, v, f) + rope.rerope_attention(q, k, v, f, window=4, leak=4.0)
    out.sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (q, k, v))


# ---------------------------------------------------------------- the extrapolation experiment
_TASK = dict(n_ordinary=8, n_keys=4, n_values=4, offset=2)


def test_kv_copy_batch_targets_follow_the_rules():
    g = torch.Generator().manual_seed(0)
    b = rope.kv_copy_batch(6, 40, n_pairs=3, queries_per_pair=2, generator=g, **_TASK)
    tok, tgt, ret, dist = b["tokens"], b["target"], b["retrieval"], b["distance"]
    assert tok.shape == tgt.shape == ret.shape == dist.shape == (6, 40)
    assert int(ret.sum()) == 6 * 3 * 2
    pair0, query0 = 8, 8 + 4 * 4
    for r in range(6):
        for t in range(40):
            if ret[r, t]:
                key = int(tok[r, t]) - query0
                k = t - int(dist[r, t])
                pair = int(tok[r, k]) - pair0
                assert 0 <= key < 4 and pair // 4 == key and int(tgt[r, t]) == pair % 4
            elif t >= 2 and int(tok[r, t - 2]) < 8:
                assert int(tgt[r, t]) == int(tok[r, t - 2])
            else:
                assert int(tgt[r, t]) == -100
    # each sequence's keys are distinct
    for r in range(6):
        keys = [int(x) - query0 for x in tok[r][ret[r]]]
        assert len(set(keys)) == 3


def test_kv_copy_batch_is_deterministic_and_validates():
    a = rope.kv_copy_batch(2, 16, n_pairs=2, generator=torch.Generator().manual_seed(5),
                           **_TASK)
    b = rope.kv_copy_batch(2, 16, n_pairs=2, generator=torch.Generator().manual_seed(5),
                           **_TASK)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match=r"n_pairs must be an integer <= 4; got 5"):
        rope.kv_copy_batch(2, 64, n_pairs=5, **_TASK)
    with pytest.raises(ValueError, match=r"length must be an integer >= 7; got 6"):
        rope.kv_copy_batch(2, 6, n_pairs=2, **_TASK)


def test_kv_copy_features_share_the_value_row():
    f = rope.kv_copy_features(8, 4, 4)
    assert f.shape == (rope.kv_copy_vocab(8, 4, 4), 3)
    pair = 8 + 2 * 4 + 3                      # key 2, value 3
    query = 8 + 16 + 2
    assert int(f[pair, 0]) == 3 and int(f[pair, 2]) == int(f[query, 2])
    assert int(f[pair, 1]) != int(f[query, 1])


def test_seed_batched_model_slices_do_not_depend_on_each_other():
    feats = rope.kv_copy_features(8, 4, 4)
    vocab = rope.kv_copy_vocab(8, 4, 4)
    solo = rope.SeedBatchedLM([3], vocab, 8, 8, heads=2, layers=2, mlp=True,
                              features=feats)
    pair = rope.SeedBatchedLM([1, 3], vocab, 8, 8, heads=2, layers=2, mlp=True,
                              features=feats)
    for p_solo, p_pair in zip(solo.parameters(), pair.parameters()):
        assert torch.equal(p_solo[0], p_pair[1])
    tok = torch.randint(0, vocab, (1, 3, 12))
    att = rope.scheme_attention("none", 8, 12, 12)
    out_solo = solo(tok, att)
    out_pair = pair(tok.expand(2, 3, 12), att)
    assert out_solo.shape == (1, 3, 12, 8)
    assert torch.allclose(out_solo[0], out_pair[1], atol=1e-5)
    with pytest.raises(ValueError, match=r"head_dim must be even"):
        rope.SeedBatchedLM([0], vocab, 8, 7)


@pytest.mark.parametrize("kind, scaling", [
    ("pi", dict(scaling="linear")), ("ntk", dict(scaling="ntk")),
    ("ntk-fixed", dict(scaling="ntk-fixed")), ("ntk-mixed", dict(scaling="ntk-mixed", b=0.625)),
])
def test_scheme_attention_matches_rope_attention(kind, scaling):
    g = torch.Generator().manual_seed(2)
    q, k, v = torch.randn(3, 2, 32, 16, generator=g)
    ours = rope.scheme_attention(kind, 16, 8, 32)(q, k, v)
    freq = rope.rope_inv_freq(16, factor=4.0, **scaling)
    assert torch.allclose(ours, rope.rope_attention(q, k, v, freq), atol=1e-6)


def test_scheme_attention_special_cases():
    g = torch.Generator().manual_seed(3)
    q, k, v = torch.randn(3, 32, 16, generator=g)
    old = rope.scheme_attention("ntk-old", 16, 8, 32)(q, k, v)
    assert torch.allclose(old, rope.rope_attention(q, k, v, rope.rope_inv_freq(16, 40000.0)),
                          atol=1e-6)
    # YaRN: betas scaled by L / 4096, attention factor applied
    yarn = rope.scheme_attention("yarn", 16, 8, 32)(q, k, v)
    r = 8 / rope.YARN_REFERENCE_LENGTH
    freq = rope.rope_inv_freq(16, scaling="yarn", factor=4.0, original_max_position=8,
                              beta_fast=32 * r, beta_slow=r)
    ref = rope.rope_attention(q, k, v, freq, attention_factor=rope.yarn_attention_factor(4.0))
    assert torch.allclose(yarn, ref, atol=1e-6)
    # log n modes: the trained scale is not clamped at 1 inside the training length
    dag = rope.scheme_attention("none", 16, 8, 32, logn="inference")(q, k, v)
    trained = rope.scheme_attention("none", 16, 8, 32, logn="trained")(q, k, v)
    plain = rope.scheme_attention("none", 16, 8, 32)(q, k, v)
    assert torch.allclose(dag[:8], plain[:8]) and not torch.allclose(trained[:8], plain[:8])
    assert torch.allclose(dag, rope.rope_attention(q, k, v, rope.rope_inv_freq(16),
                                                   logn_length=8), atol=1e-6)
    leaky = rope.scheme_attention("leaky-rerope", 16, 8, 32, window=2, leak=16.0)(q, k, v)
    ref = rope.rerope_attention(q, k, v, rope.rope_inv_freq(16), window=2, leak=16.0)
    assert torch.allclose(leaky, ref, atol=1e-6)
    with pytest.raises(ValueError, match=r"kind='leaky-rerope' needs leak"):
        rope.scheme_attention("leaky-rerope", 16, 8, 32, window=2)
    with pytest.raises(ValueError, match=r"kind"):
        rope.scheme_attention("ntk-aware", 16, 8, 32)
    with pytest.raises(ValueError, match=r"test_length must be an integer >= 8; got 4"):
        rope.scheme_attention("none", 16, 8, 4)


def test_logn_scale_trained_form():
    pos = torch.arange(20)
    assert torch.allclose(rope.logn_scale(pos, 8, clamp=False),
                          (torch.log(pos + 1.0) / math.log(8)).float())
    assert float(rope.logn_scale([3], 8)[0]) == 1.0
    with pytest.raises(TypeError, match=r"clamp must be a bool"):
        rope.logn_scale(pos, 8, clamp=1)


def test_leaky_rerope_min_leak_is_the_boundary():
    w, L, T = 16, 64, 512
    k = rope.leaky_rerope_min_leak(w, L, T)
    assert math.isclose(w + (T - 1 - w) / k, L - 1)
    assert w + (T - 1 - w) / (0.99 * k) > L - 1
    with pytest.raises(ValueError, match=r"window must be an integer <= 62; got 63"):
        rope.leaky_rerope_min_leak(63, 64, 512)


def test_paired_interval_matches_scipy():
    from scipy import stats

    a = [0.91, 0.85, 0.88, 0.95, 0.80]
    b = [0.70, 0.75, 0.72, 0.79, 0.71]
    m, lo, hi = rope.paired_interval(a, b)
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert math.isclose(lo, ci.low, rel_tol=1e-9) and math.isclose(hi, ci.high, rel_tol=1e-9)
    assert math.isclose(m, sum(x - y for x, y in zip(a, b)) / 5)
    with pytest.raises(ValueError, match=r"n >= 2"):
        rope.paired_interval([1.0], [0.0])


def test_train_lm_learns_and_scores_agree_with_a_direct_count():
    torch.manual_seed(0)
    feats = rope.kv_copy_features(8, 4, 4)
    model = rope.SeedBatchedLM([0, 1], rope.kv_copy_vocab(8, 4, 4), 8, 16, heads=2,
                               features=feats, d_model=32)
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]

    def batch_fn(step):
        b = rope.stack_batches(rope.kv_copy_batch(8, 16, n_pairs=2, generator=g, **_TASK)
                               for g in gens)
        return b["tokens"], b["target"]

    losses = rope.train_lm(model, batch_fn, steps=60, lr=1e-2, train_length=16)
    assert losses[-1] < 0.6 * losses[0]
    g = torch.Generator().manual_seed(9)
    batch = rope.stack_batches(rope.kv_copy_batch(4, 32, n_pairs=3, generator=g, **_TASK)
                               for _ in range(2))
    att = rope.scheme_attention("ntk", 16, 16, 32)
    sc = rope.extrapolation_scores(model, batch, att, bins=[(1, 16), (16, 32)], chunk=3)
    with torch.no_grad():
        ok = model(batch["tokens"], att).argmax(-1) == batch["target"]
    loc = (batch["target"] != -100) & ~batch["retrieval"]
    direct = (ok & loc).sum((1, 2)).double() / loc.sum((1, 2))
    assert torch.allclose(torch.as_tensor(sc["local"]), direct)
    assert sc["bins"].shape == (2, 2)
    with pytest.raises(ValueError, match=r"n_models=2"):
        rope.extrapolation_scores(model, {k: v[:1] for k, v in batch.items()}, att,
                                  bins=[(1, 16)])
