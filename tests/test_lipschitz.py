"""Tests of kexue_helpers.lipschitz against torch's spectral norm, dense operator matrices,
closed forms and scipy's linear program.

The exact W1 of :func:`batch_w1` is checked against POT's ``ot.emd2`` (the reference the
brief names; POT is on PyPI as ``pot`` but not in the book's requirements, so that test is
skipped where it is not installed) and always against an independent solver: the transport
linear program solved by ``scipy.optimize.linprog`` (HiGHS), and the sorted matching that is
optimal in 1-D.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linprog

from kexue_helpers import lipschitz as L


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------
# power iteration and spectral normalisation
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(30, 20), (7, 40), (16, 16)])
def test_power_iteration_converges_to_matrix_norm(shape):
    W = torch.randn(*shape, dtype=torch.float64, generator=gen(1))
    s, u, v = L.power_iteration(W, n_iter=500, generator=gen(2))
    ref = float(torch.linalg.matrix_norm(W, ord=2))
    assert s == pytest.approx(ref, rel=1e-10)
    assert float(torch.linalg.svdvals(W)[0]) == pytest.approx(ref, rel=1e-12)
    assert float(u.norm()) == pytest.approx(1.0) and float(v.norm()) == pytest.approx(1.0)
    assert torch.allclose(W @ v, s * u, atol=1e-8)


def test_power_iteration_is_a_lower_bound_at_every_step():
    W = torch.randn(50, 50, dtype=torch.float64, generator=gen(3))
    ref = float(torch.linalg.matrix_norm(W, ord=2))
    for k in (1, 2, 5, 10):
        s, _, _ = L.power_iteration(W, n_iter=k, generator=gen(k))
        assert s <= ref * (1 + 1e-12)


def test_power_iteration_all_ones_start_misses_the_top_singular_vector():
    W = torch.tensor([[1.5, -0.5], [-0.5, 1.5]], dtype=torch.float64)
    for k in (1, 10, 1000):
        s, _, _ = L.power_iteration(W, n_iter=k, u0=torch.ones(2, dtype=torch.float64))
        assert s == pytest.approx(1.0, abs=1e-12)
    s, _, _ = L.power_iteration(W, n_iter=100, generator=gen(0))
    assert s == pytest.approx(2.0, rel=1e-10)


def test_power_iteration_reproduces_torch_parametrization():
    torch.manual_seed(0)
    lin = torch.nn.Linear(20, 30).double()
    torch.nn.utils.parametrizations.spectral_norm(lin)
    par = lin.parametrizations.weight
    u0, W = par[0]._u.clone(), par.original.detach().clone()
    s, u, v = L.power_iteration(W, n_iter=4, u0=u0)
    lin.train()
    for _ in range(4):
        w = lin.weight
    assert torch.allclose(par[0]._u, u, atol=1e-12)
    assert torch.allclose(par[0]._v, v, atol=1e-12)
    assert torch.allclose(w, W / s, atol=1e-12)


def test_spectral_normalize_matches_matrix_norm_and_is_differentiable():
    W = torch.randn(12, 9, dtype=torch.float64, generator=gen(4), requires_grad=True)
    Wn = L.spectral_normalize(W, n_iter=300, generator=gen(5))
    assert float(torch.linalg.matrix_norm(Wn.detach(), ord=2)) == pytest.approx(1.0, rel=1e-9)
    Wn.sum().backward()
    assert W.grad is not None and torch.isfinite(W.grad).all()
    # few iterations: sigma_hat <= sigma, so the normalised matrix has norm >= 1
    W2 = torch.randn(40, 40, dtype=torch.float64, generator=gen(6))
    assert float(torch.linalg.matrix_norm(L.spectral_normalize(W2, 1, gen(7)), ord=2)) >= 1.0


def test_spectral_normalize_reshapes_kernels_like_torch():
    k = torch.randn(8, 4, 3, 3, dtype=torch.float64, generator=gen(8))
    kn = L.spectral_normalize(k, n_iter=500, generator=gen(9))
    assert kn.shape == k.shape
    assert float(torch.linalg.matrix_norm(kn.reshape(8, -1), ord=2)) == pytest.approx(1.0)


def test_power_iteration_validation():
    with pytest.raises(ValueError, match="W must be a 2-D matrix"):
        L.power_iteration(torch.ones(3))
    with pytest.raises(ValueError, match="n_iter must be an integer >= 1; got 0"):
        L.power_iteration(torch.eye(3), n_iter=0)
    with pytest.raises(ValueError, match="u0 must be a vector of length 3"):
        L.power_iteration(torch.eye(3), u0=torch.ones(2))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        L.spectral_normalize(torch.ones(3))


# --------------------------------------------------------------------------------------
# convolutions
# --------------------------------------------------------------------------------------
def dense_circular_conv(kernel, n, m):
    """The (c_out n m) x (c_in n m) matrix of torch's circular conv2d, column by column."""
    c_out, c_in, kh, kw = kernel.shape
    eye = torch.eye(c_in * n * m, dtype=kernel.dtype).reshape(-1, c_in, n, m)
    ph, pw = kh // 2, kw // 2
    y = F.conv2d(F.pad(eye, (pw, kw - 1 - pw, ph, kh - 1 - ph), mode="circular"), kernel)
    return y.reshape(c_in * n * m, -1).T


@pytest.mark.parametrize("shape, size", [((8, 4, 3, 3), (8, 8)), ((3, 5, 3, 2), (5, 7)),
                                         ((1, 1, 5, 5), (6, 6))])
def test_conv_operator_norm_matches_dense_operator(shape, size):
    k = torch.randn(*shape, dtype=torch.float64, generator=gen(10))
    dense = dense_circular_conv(k, *size)
    ref = float(torch.linalg.matrix_norm(dense, ord=2))
    assert L.conv2d_operator_norm(k, size) == pytest.approx(ref, rel=1e-10)


def test_conv_operator_norm_all_ones_kernel():
    k = torch.ones(1, 1, 3, 3)
    assert L.conv2d_operator_norm(k, 8) == pytest.approx(9.0)
    assert float(torch.linalg.matrix_norm(k.reshape(1, -1), ord=2)) == pytest.approx(3.0)
    assert L.conv2d_operator_norm(np.ones((1, 1, 3, 3)), (3, 3)) == pytest.approx(9.0)


def test_conv_operator_norm_validation():
    with pytest.raises(ValueError, match="kernel must be 4-D"):
        L.conv2d_operator_norm(torch.ones(3, 3), 8)
    with pytest.raises(ValueError, match=r"at least the kernel size \(3, 3\).*got \(2, 8\)"):
        L.conv2d_operator_norm(torch.ones(1, 1, 3, 3), (2, 8))
    with pytest.raises(ValueError, match="input_size must be an int or a pair"):
        L.conv2d_operator_norm(torch.ones(1, 1, 3, 3), (8, 8, 8))


# --------------------------------------------------------------------------------------
# gradient penalty and gradient normalisation
# --------------------------------------------------------------------------------------
def linear_critic(w):
    lin = torch.nn.Linear(len(w), 1).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([w], dtype=torch.float64))
    return lin


@pytest.mark.parametrize("center, one_sided, expected", [
    (1.0, False, 16.0), (1.0, True, 16.0), (0.0, False, 25.0), (6.0, False, 1.0),
    (6.0, True, 0.0)])
def test_gradient_penalty_closed_form_on_a_linear_critic(center, one_sided, expected):
    D = linear_critic([3.0, 4.0])                    # ||grad|| = 5 everywhere
    real = torch.randn(16, 2, dtype=torch.float64, generator=gen(11))
    fake = torch.randn(16, 2, dtype=torch.float64, generator=gen(12))
    gp = L.gradient_penalty(D, real, fake, center=center, one_sided=one_sided, generator=gen(0))
    assert float(gp) == pytest.approx(expected)


def test_gradient_penalty_matches_a_hand_written_reference():
    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    real, fake = torch.randn(32, 3), torch.randn(32, 3)
    gp = L.gradient_penalty(D, real, fake, generator=gen(13))
    eps = torch.rand(32, 1, generator=gen(13))
    xh = (eps * real + (1 - eps) * fake).requires_grad_(True)
    g = torch.autograd.grad(D(xh).sum(), xh, create_graph=True)[0]
    ref = ((g.norm(dim=1) - 1) ** 2).mean()
    assert float(gp) == pytest.approx(float(ref), rel=1e-6)
    gp.backward()                                     # differentiable in the parameters
    assert D[0].weight.grad is not None


def test_gradient_penalty_validation():
    D = linear_critic([1.0, 1.0])
    with pytest.raises(ValueError, match="same shape"):
        L.gradient_penalty(D, torch.zeros(4, 2), torch.zeros(5, 2))
    with pytest.raises(ValueError, match=r"center must lie in \[0.0, inf\); got -1.0"):
        L.gradient_penalty(D, torch.zeros(4, 2), torch.zeros(4, 2), center=-1.0)


def test_gradient_normalized_critic_relu_example_and_bounds():
    D = lambda t: torch.relu(t[:, 0]) + 0.5          # noqa: E731
    x = torch.tensor([[-1e-4], [1e-4]], dtype=torch.float64)
    d = L.gradient_normalized_critic(D, x, "iccv")
    assert float(d[0]) == pytest.approx(1.0) and float(d[1]) == pytest.approx(1 / 3, rel=1e-3)
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    X = torch.randn(200, 2)
    dh = L.gradient_normalized_critic(net, X, "iccv")
    assert float(dh.abs().max()) <= 1.0
    # inside a linear region: ||grad D_hat|| = g^2 / (g + |D|)^2 (ICCV), g^2/(g^2+eps) (WACV)
    Xr = X.clone().requires_grad_(True)
    g = torch.autograd.grad(net(Xr).sum(), Xr)[0].norm(dim=1)
    dv = net(X)[:, 0].detach()
    for variant, formula in (("iccv", g**2 / (g + dv.abs()) ** 2),
                             ("wacv", g**2 / (g**2 + 1e-4))):
        Xr = X.clone().requires_grad_(True)
        dh = L.gradient_normalized_critic(net, Xr, variant)
        gh = torch.autograd.grad(dh.sum(), Xr)[0].norm(dim=1)
        assert torch.allclose(gh, formula, rtol=1e-4, atol=1e-6)
        assert float(gh.max()) <= 1.0


def test_gradient_normalized_critic_inner_variant_and_training_gradients():
    D = linear_critic([3.0, 4.0])
    x = torch.tensor([[1.0, 1.0], [2.0, 0.0]], dtype=torch.float64)
    dh = L.gradient_normalized_critic(D, x, "inner")
    assert torch.allclose(dh, torch.tensor([1.4, 1.2], dtype=torch.float64))
    dh = L.gradient_normalized_critic(D, x, "iccv")
    dh.sum().backward()
    assert D.weight.grad is not None and torch.isfinite(D.weight.grad).all()


def test_gradient_normalized_critic_validation():
    D = linear_critic([1.0, 1.0])
    x = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="variant must be one of 'iccv', 'wacv', 'inner'"):
        L.gradient_normalized_critic(D, x, "su")
    with pytest.raises(ValueError, match=r"eps must lie in \(0.0, inf\); got 0.0"):
        L.gradient_normalized_critic(D, x, "wacv", eps=0.0)
    with pytest.raises(ValueError, match="critic must map a batch of 3"):
        L.gradient_normalized_critic(lambda t: t, x)


# --------------------------------------------------------------------------------------
# empirical Lipschitz constant and batch W1
# --------------------------------------------------------------------------------------
def test_empirical_lipschitz_values():
    X = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    assert L.empirical_lipschitz(lambda t: 2 * t[:, 0] + 0 * t[:, 1], X) == pytest.approx(2**0.5)
    assert L.empirical_lipschitz(lambda t: t.norm(dim=1), X) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    A = rng.normal(size=(30, 4))
    w = rng.normal(size=4)
    assert L.empirical_lipschitz(lambda t: t @ torch.from_numpy(w), A) <= np.linalg.norm(w)


def test_empirical_lipschitz_validation():
    with pytest.raises(ValueError, match="at least 2 rows; got 1"):
        L.empirical_lipschitz(lambda t: t[:, 0], torch.zeros(1, 3))
    with pytest.raises(ValueError, match="two distinct rows"):
        L.empirical_lipschitz(lambda t: t[:, 0], torch.zeros(3, 3))
    with pytest.raises(ValueError, match="one value per row"):
        L.empirical_lipschitz(lambda t: t, torch.eye(3))


def w1_linprog(a, b):
    """Exact W1 of two uniform discrete measures from the transport linear program."""
    n, m = len(a), len(b)
    cost = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    A_eq = np.zeros((n + m, n * m))
    for i in range(n):
        A_eq[i, i * m:(i + 1) * m] = 1
    for j in range(m):
        A_eq[n + j, j::m] = 1
    b_eq = np.r_[np.full(n, 1 / n), np.full(m, 1 / m)]
    res = linprog(cost.ravel(), A_eq=A_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    return res.fun


@pytest.mark.parametrize("n, d, seed", [(5, 2, 0), (12, 8, 1), (20, 64, 2)])
def test_batch_w1_matches_the_transport_linear_program(n, d, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d)) + 0.5
    assert L.batch_w1(a, b) == pytest.approx(w1_linprog(a, b), rel=1e-8)
    assert L.batch_w1(torch.from_numpy(a), b) == pytest.approx(L.batch_w1(a, b))


@pytest.mark.parametrize("n, d, seed", [(4, 2, 0), (64, 8, 1), (200, 64, 2)])
def test_batch_w1_matches_pot_emd2(n, d, seed):
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d)) + 0.5
    w = np.full(n, 1 / n)
    ref = ot.emd2(w, w, ot.dist(a, b, metric="euclidean"))
    assert L.batch_w1(a, b) == pytest.approx(ref, rel=1e-10)


def test_batch_w1_one_dimensional_closed_form_and_mean_image():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(40, 1)), rng.exponential(size=(40, 1))
    assert L.batch_w1(a, b) == pytest.approx(np.abs(np.sort(a[:, 0]) - np.sort(b[:, 0])).mean())
    # to a batch of copies of one point, W1 is the mean distance to that point
    c = np.repeat(a.mean(0, keepdims=True), 40, axis=0)
    assert L.batch_w1(a, c) == pytest.approx(np.abs(a - a.mean()).mean())


def test_batch_w1_validation():
    with pytest.raises(ValueError, match=r"same shape.*\(3, 2\) and \(4, 2\)"):
        L.batch_w1(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="must be 2-D"):
        L.batch_w1(np.zeros(3), np.zeros(3))
