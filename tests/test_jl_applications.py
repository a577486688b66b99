"""Tests of the Johnson-Lindenstrauss helpers, applications part (kexue_helpers.jl).

Covers sparse_matrix, sparse_projection, simhash, hamming_distances and randomized_svd:
their laws and scalings against scikit-learn and scipy, exact properties, and their
argument checks.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial.distance import cdist
from sklearn.random_projection import SparseRandomProjection
from sklearn.utils.extmath import randomized_svd as sk_randomized_svd

from kexue_helpers import jl

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


# ---------------------------------------------------------------- sparse_matrix
@pytest.mark.parametrize("density", [None, 1 / 3, 0.05])
def test_sparse_matrix_matches_sklearn_law_and_scaling(density):
    n, m = 40, 2500
    ours = jl.sparse_matrix(n, m, density=density, seed=0, device="cpu")
    sk = SparseRandomProjection(n_components=n, density="auto" if density is None else density,
                                random_state=0).fit(np.zeros((1, m)))
    theirs = sk.components_
    rho = 1 / math.sqrt(m) if density is None else density
    assert sk.density_ == pytest.approx(rho, rel=1e-15)
    # the same two nonzero values, bit for bit
    assert np.array_equal(np.unique(ours.values().numpy()), np.unique(theirs.data))
    assert np.allclose(np.unique(theirs.data), [-math.sqrt(1 / (rho * n)), math.sqrt(1 / (rho * n))],
                       rtol=1e-15)
    # nonzero counts per row: Binomial(m, rho) for both (two-sample test on the counts)
    ours_counts = np.diff(ours.crow_indices().numpy())
    sk_counts = np.diff(theirs.indptr)
    assert stats.ks_2samp(ours_counts, sk_counts).pvalue > 1e-3
    total = n * m
    nnz = ours.values().numel()
    assert abs(nnz - rho * total) < 5 * math.sqrt(total * rho * (1 - rho))
    # signs balanced
    pos = int((ours.values() > 0).sum())
    assert abs(pos - nnz / 2) < 5 * math.sqrt(nnz / 4)


def test_sparse_matrix_entries_are_independent_with_identity_second_moment():
    a = jl.sparse_matrix(400, 30, density=0.2, seed=1, device="cpu").to_dense()
    # E[A^T A] = I: the diagonal is 1 on average, off-diagonal entries small
    gram = (a.T @ a).numpy()
    assert abs(np.diag(gram).mean() - 1) < 0.05
    off = gram[~np.eye(30, dtype=bool)]
    assert np.abs(off).max() < 6 * math.sqrt(1 / 400) * 2
    # positions kept independently: column counts of nonzeros are Binomial(400, 0.2)
    counts = (a != 0).sum(0).numpy()
    assert abs(counts.mean() - 80) < 5 * math.sqrt(400 * 0.2 * 0.8 / 30)


def test_sparse_matrix_is_seeded_dtype_and_density_one():
    a = jl.sparse_matrix(8, 50, seed=3, device="cpu")
    b = jl.sparse_matrix(8, 50, seed=3, device="cpu")
    assert a.layout == torch.sparse_csr and a.dtype == torch.float64
    assert torch.equal(a.to_dense(), b.to_dense())
    assert not torch.equal(a.to_dense(), jl.sparse_matrix(8, 50, seed=4, device="cpu").to_dense())
    f32 = jl.sparse_matrix(8, 50, seed=3, dtype=torch.float32, device="cpu")
    assert torch.equal(f32.to_dense(), a.to_dense().float())
    full = jl.sparse_matrix(5, 7, density=1.0, seed=0, device="cpu").to_dense()
    assert torch.all(full.abs() == 1 / math.sqrt(5))        # dense sign matrix


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(n_components=0, n_features=5), ValueError, r"n_components must be an integer >= 1; got 0"),
    (dict(n_components=3, n_features=0), ValueError, r"n_features must be an integer >= 1; got 0"),
    (dict(n_components=3.0, n_features=5), TypeError, r"n_components must be an integer"),
    (dict(n_components=3, n_features=5, density=0.0), ValueError,
     r"density must lie in \(0\.0, 1\.0\]; got 0\.0"),
    (dict(n_components=3, n_features=5, density=1.5), ValueError,
     r"density must lie in \(0\.0, 1\.0\]; got 1\.5"),
    (dict(n_components=3, n_features=5, density="auto"), TypeError, r"density must be a real number"),
])
def test_sparse_matrix_rejects_bad_input(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        jl.sparse_matrix(**kwargs, device="cpu")


# ---------------------------------------------------------------- sparse_projection
def test_sparse_projection_equals_x_times_matrix_and_keeps_types():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 200))
    y = jl.sparse_projection(x, 12, seed=5)
    a = jl.sparse_matrix(12, 200, seed=5, device="cpu").to_dense().numpy()
    assert isinstance(y, np.ndarray) and y.shape == (30, 12)
    assert np.allclose(y, x @ a.T, atol=1e-12)
    yt = jl.sparse_projection(torch.from_numpy(x).float(), 12, seed=5, device="cpu")
    assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float32
    assert np.allclose(yt.numpy(), y, atol=1e-4)
    yi = jl.sparse_projection(np.ones((2, 9), dtype=np.int64), 3, seed=0)
    assert yi.dtype == np.float64


def test_sparse_projection_distortion_matches_sklearn_transform():
    """Same law as sklearn's SparseRandomProjection: the squared-norm ratios agree in law."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 1000))
    ours = jl.sparse_projection(x, 50, seed=2)
    sk = SparseRandomProjection(n_components=50, random_state=2).fit_transform(x)
    sk = sk.toarray() if hasattr(sk, "toarray") else np.asarray(sk)
    r_ours = (ours**2).sum(1) / (x**2).sum(1)
    r_sk = (sk**2).sum(1) / (x**2).sum(1)
    assert stats.ks_2samp(r_ours, r_sk).pvalue > 1e-3
    assert abs(r_ours.mean() - 1) < 0.05 and abs(r_sk.mean() - 1) < 0.05


def test_sparse_projection_variance_formula():
    """Var ||Ax||^2 = (2||x||^4 + (s-3) sum x^4) / n (lemma jla-lem-sparse-var)."""
    x = torch.zeros(64, dtype=torch.float64)
    x[:4] = torch.tensor([3.0, 1.0, 1.0, 0.5])                 # a spiky vector
    n, mats, density = 8, 4000, 1 / 16
    tall = jl.sparse_matrix(mats * n, 64, density=density, seed=9, device="cpu")
    z = (tall @ x[:, None]).reshape(mats, n) * math.sqrt(mats)
    sq = (z.square().sum(1) / x.square().sum()).numpy()
    kurt = float((x**4).sum() / (x**2).sum() ** 2)
    predicted = (2 + (1 / density - 3) * kurt) / n
    se = math.sqrt(np.mean((sq - sq.mean()) ** 4) / mats)
    assert abs(sq.var(ddof=1) - predicted) < 4 * se
    assert predicted > 2 * (2 / n)                               # much worse than Gaussian


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(x=np.ones(5), n_components=2), ValueError, r"x must have 2 dimension"),
    (dict(x=np.full((2, 3), np.nan), n_components=2), ValueError, r"x must contain only finite"),
    (dict(x=np.ones((2, 3)), n_components=0), ValueError, r"n_components must be an integer >= 1"),
    (dict(x=np.ones((2, 3)), n_components=2, density=2.0), ValueError, r"density must lie in"),
    (dict(x=[["a"]], n_components=2), TypeError, r"x must be a numeric array"),
])
def test_sparse_projection_rejects_bad_input(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        jl.sparse_projection(**kwargs)


# ---------------------------------------------------------------- simhash / hamming
def test_simhash_bits_are_signs_of_gaussian_projection_and_pack_like_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 30))
    bits = jl.simhash(x, 19, seed=4, packed=False)
    ref = (x @ jl.gaussian_matrix(19, 30, seed=4, device="cpu").numpy().T) > 0
    assert bits.dtype == np.bool_ and np.array_equal(bits, ref)
    packed = jl.simhash(x, 19, seed=4)
    assert packed.dtype == np.uint8 and packed.shape == (20, 3)
    assert np.array_equal(packed, np.packbits(ref, axis=1))
    assert np.array_equal(np.unpackbits(packed, axis=1, count=19).astype(bool), ref)
    t = jl.simhash(torch.from_numpy(x), 19, seed=4, device="cpu")
    assert isinstance(t, torch.Tensor) and t.dtype == torch.uint8
    assert np.array_equal(t.numpy(), packed)


def test_simhash_is_scale_invariant_and_zero_gives_zero_bits():
    x = np.random.default_rng(1).standard_normal((5, 8))
    assert np.array_equal(jl.simhash(x, 64, seed=0), jl.simhash(3.5 * x, 64, seed=0))
    assert not jl.simhash(np.zeros((1, 8)), 16, seed=0, packed=False).any()


def test_simhash_collision_probability_is_one_minus_theta_over_pi():
    theta = 1.0
    pair = np.array([[1.0, 0.0, 0.0], [math.cos(theta), math.sin(theta), 0.0]])
    b = 40_000
    bits = jl.simhash(pair, b, seed=7, packed=False)
    agree = (bits[0] == bits[1]).mean()
    p = 1 - theta / math.pi
    assert abs(agree - p) < 4 * math.sqrt(p * (1 - p) / b)


def test_hamming_distances_match_scipy_for_bool_and_packed_codes():
    rng = np.random.default_rng(2)
    a = rng.random((15, 37)) < 0.5
    b = rng.random((11, 37)) < 0.5
    ref = np.rint(cdist(a, b, "hamming") * 37).astype(np.int64)
    assert np.array_equal(jl.hamming_distances(a, b), ref)
    assert np.array_equal(jl.hamming_distances(np.packbits(a, axis=1), np.packbits(b, axis=1)), ref)
    self_d = jl.hamming_distances(a)
    assert self_d.dtype == np.int64 and np.all(np.diag(self_d) == 0)
    assert np.array_equal(self_d, self_d.T)
    t = jl.hamming_distances(torch.from_numpy(a), torch.from_numpy(b), device="cpu")
    assert isinstance(t, torch.Tensor) and np.array_equal(t.numpy(), ref)


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(x=np.ones((2, 3)), n_bits=0), ValueError, r"n_bits must be an integer >= 1; got 0"),
    (dict(x=np.ones((2, 3)), n_bits=8, packed="yes"), TypeError, r"packed must be a bool"),
    (dict(x=np.ones(3), n_bits=8), ValueError, r"x must have 2 dimension"),
])
def test_simhash_rejects_bad_input(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        jl.simhash(**kwargs)


@pytest.mark.parametrize("a, b, exc, pattern", [
    (np.ones((2, 3)), None, TypeError, r"codes_a must hold boolean codes or packed uint8"),
    (np.ones(3, dtype=bool), None, ValueError, r"codes_a must be a non-empty 2-D array"),
    (np.ones((2, 3), dtype=bool), np.ones((2, 4), dtype=bool), ValueError,
     r"codes_b must have as many columns as codes_a \(3 bits\); got 4"),
    (np.ones((2, 3), dtype=bool), np.ones((2, 1), dtype=np.uint8), TypeError,
     r"codes_b must have the dtype of codes_a"),
])
def test_hamming_distances_rejects_bad_input(a, b, exc, pattern):
    with pytest.raises(exc, match=pattern):
        jl.hamming_distances(a, b)


# ---------------------------------------------------------------- randomized_svd
def _low_rank_plus_noise(rows=300, cols=200, rank=10, noise=1e-3, seed=0):
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(rng.standard_normal((rows, rank)))[0]
    v = np.linalg.qr(rng.standard_normal((cols, rank)))[0]
    s = 10.0 * 0.7 ** np.arange(rank)
    return (u * s) @ v.T + noise * rng.standard_normal((rows, cols))


@pytest.mark.parametrize("shape", [(300, 200), (200, 300)])
def test_randomized_svd_agrees_with_numpy_and_sklearn(shape):
    m = _low_rank_plus_noise(*shape)
    u, s, vh = jl.randomized_svd(m, 8, seed=0)
    s_exact = np.linalg.svd(m, compute_uv=False)[:8]
    u_sk, s_sk, vh_sk = sk_randomized_svd(m, 8, n_oversamples=10, n_iter=2,
                                          power_iteration_normalizer="QR", random_state=0)
    assert isinstance(u, np.ndarray) and u.shape == (shape[0], 8) and vh.shape == (8, shape[1])
    assert np.allclose(s, s_exact, rtol=1e-6)
    assert np.allclose(s, s_sk, rtol=1e-6)
    # same sign convention as sklearn's svd_flip: the singular vectors agree, signs included
    assert np.allclose(u, u_sk, atol=1e-4) and np.allclose(vh, vh_sk, atol=1e-4)
    assert np.allclose(u.T @ u, np.eye(8), atol=1e-10)
    assert np.allclose(vh @ vh.T, np.eye(8), atol=1e-10)
    assert np.all(np.diff(s) <= 0)


def test_randomized_svd_exact_on_low_rank_and_torch_in_torch_out():
    rng = np.random.default_rng(3)
    low = rng.standard_normal((60, 5)) @ rng.standard_normal((5, 40))
    u, s, vh = jl.randomized_svd(low, 5, oversample=0, n_iter=0, seed=1)
    assert np.linalg.norm((u * s) @ vh - low) < 1e-10 * np.linalg.norm(low)
    t = torch.from_numpy(low).float()
    ut, st, vht = jl.randomized_svd(t, 5, seed=1, device="cpu")
    assert isinstance(st, torch.Tensor) and st.dtype == torch.float32
    assert np.allclose(st.numpy(), s, rtol=1e-4)
    # seeded: the same call gives the same result
    u2, s2, vh2 = jl.randomized_svd(low, 5, oversample=0, n_iter=0, seed=1)
    assert np.array_equal(s, s2) and np.array_equal(u, u2)


def test_randomized_svd_power_iterations_reduce_error():
    rng = np.random.default_rng(4)
    m = (rng.standard_normal((200, 150)) * (0.9 ** np.arange(150))) @ np.linalg.qr(
        rng.standard_normal((150, 150)))[0]
    s_exact = np.linalg.svd(m, compute_uv=False)
    opt = math.sqrt((s_exact[10:] ** 2).sum())
    errs = []
    for q in (0, 1, 3):
        u, s, vh = jl.randomized_svd(m, 10, oversample=2, n_iter=q, seed=0)
        errs.append(np.linalg.norm(m - (u * s) @ vh) / opt)
    assert errs[0] > errs[1] > errs[2] >= 1 - 1e-9


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(m=np.ones((4, 3)), rank=0), ValueError, r"rank must be an integer >= 1; got 0"),
    (dict(m=np.ones((4, 3)), rank=4), ValueError, r"rank must be an integer <= 3; got 4"),
    (dict(m=np.ones((4, 3)), rank=2, oversample=-1), ValueError,
     r"oversample must be an integer >= 0; got -1"),
    (dict(m=np.ones((4, 3)), rank=2, n_iter=-2), ValueError, r"n_iter must be an integer >= 0"),
    (dict(m=np.ones((4, 3)), rank=2.0), TypeError, r"rank must be an integer"),
    (dict(m=np.ones(4), rank=1), ValueError, r"m must have 2 dimension"),
    (dict(m=np.array([[1.0, np.inf]]), rank=1), ValueError, r"m must contain only finite"),
])
def test_randomized_svd_rejects_bad_input(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        jl.randomized_svd(**kwargs)
