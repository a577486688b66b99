"""Tests of kexue_helpers.imbalance against scikit-learn, torch, scipy and literal loops.

The converged CAN (alternating normalisation to convergence) is checked against the
entropic optimal transport plan computed by an independent solver: scipy's L-BFGS on the
convex dual of entropic OT. POT's ``ot.sinkhorn`` is used as well when POT is installed
(it is not a requirement of the book).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import optimize, stats
from scipy.special import logsumexp
from sklearn.metrics import f1_score

from kexue_helpers import imbalance as I


def _probs(n, K, seed, conc=0.5):
    return np.random.default_rng(seed).dirichlet(np.full(K, conc), size=n)


def entropic_ot_dual(Y, a, b):
    """The plan minimising <-log Y, T> - H(T) with marginals a, b, from the dual."""
    n, K = Y.shape
    logY = np.log(Y)

    def neg_dual(v):
        f, g = v[:n], v[n:]
        lse = logsumexp(f[:, None] + g[None, :] + logY)
        T = np.exp(f[:, None] + g[None, :] + logY)
        val = -(f @ a + g @ b) + T.sum()
        grad = np.concatenate([T.sum(1) - a, T.sum(0) - b])
        del lse
        return val, grad

    res = optimize.minimize(neg_dual, np.zeros(n + K), jac=True, method="L-BFGS-B",
                            options=dict(maxiter=5000, gtol=1e-13, ftol=1e-15))
    f, g = res.x[:n], res.x[n:]
    return np.exp(f[:, None] + g[None, :] + logY)


# --------------------------------------------------------------------------------------
# smooth F1
# --------------------------------------------------------------------------------------
def test_smooth_f1_equals_sklearn_f1_on_hard_predictions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = rng.integers(0, 2, 200).astype(float)
    assert I.smooth_f1(y, p) == pytest.approx(f1_score(y, p), abs=1e-12)


def test_smooth_f1_gradient_matches_autograd():
    # eq. imb-eq-f1-grad: dF1/dp_i = (2 / sum(y + p)) (y_i - F1 / 2)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 50).astype(float)
    p = torch.tensor(rng.uniform(0.05, 0.95, 50), requires_grad=True)
    yt = torch.tensor(y)
    f1 = 2 * (yt * p).sum() / (yt + p).sum()
    f1.backward()
    f = I.smooth_f1(y, p.detach().numpy())
    closed = 2 / (y + p.detach().numpy()).sum() * (y - f / 2)
    assert np.allclose(p.grad.numpy(), closed, atol=1e-14)
    assert float(f1.detach()) == pytest.approx(f)


def test_f1_weights_and_ratio():
    wp, wn = I.f1_adaptive_weights([1, 1, 0, 0], [1.0, 0.0, 1.0, 0.0])  # F1 = 0.5
    assert (wp, wn) == (0.75, 0.25)
    assert wp / wn == pytest.approx(3.0)


def test_f1_weighted_ce_matches_torch_pos_weight():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 40).astype(float)
    z = rng.normal(size=40)
    wp, wn = I.f1_adaptive_weights(y, 1 / (1 + np.exp(-z)))
    ours = -(wp * y * np.log(1 / (1 + np.exp(-z)))
             + wn * (1 - y) * np.log(1 - 1 / (1 + np.exp(-z)))).mean()
    ref = wn * F.binary_cross_entropy_with_logits(
        torch.tensor(z), torch.tensor(y), pos_weight=torch.tensor(wp / wn)).item()
    assert ours == pytest.approx(ref, rel=1e-8)


@pytest.mark.parametrize("y, p, match", [
    ([0, 1], [0.5], "same shape"),
    ([0, 2], [0.5, 0.5], "only 0 and 1"),
    ([0, 1], [0.5, 1.5], r"p must lie in \[0, 1\]"),
    ([0, 0], [0.0, 0.0], "undefined"),
    ([[0, 1]], [[0.5, 0.5]], "1 dimension"),
])
def test_smooth_f1_validation(y, p, match):
    with pytest.raises(ValueError, match=match):
        I.smooth_f1(y, p)
    with pytest.raises(ValueError, match=match):
        I.f1_adaptive_weights(y, p)


# --------------------------------------------------------------------------------------
# logit adjustment
# --------------------------------------------------------------------------------------
def test_logit_adjusted_loss_matches_cross_entropy_of_shifted_logits():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(30, 5, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 5, (30,), generator=g)
    prior = np.array([0.4, 0.3, 0.15, 0.1, 0.05])
    loss = I.logit_adjusted_loss(z, t, prior, tau=0.7)
    ref = F.cross_entropy(z + 0.7 * torch.log(torch.tensor(prior)), t)
    assert float(loss) == pytest.approx(float(ref), rel=1e-12)
    loss.backward()  # gradients flow: softmax(z + tau log prior) - onehot, over n
    p_adj = torch.softmax(z.detach() + 0.7 * torch.log(torch.tensor(prior)), 1)
    expected = (p_adj - F.one_hot(t, 5)) / 30
    assert torch.allclose(z.grad, expected, atol=1e-14)


def test_logit_adjusted_loss_tau_zero_is_cross_entropy():
    z = torch.randn(8, 3, dtype=torch.float64)
    t = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    assert float(I.logit_adjusted_loss(z, t, [0.2, 0.3, 0.5], tau=0.0)) == pytest.approx(
        float(F.cross_entropy(z, t)))


def test_posthoc_logit_adjust():
    z = torch.zeros(1, 3, dtype=torch.float64)
    out = I.posthoc_logit_adjust(z, [0.7, 0.2, 0.1])
    assert torch.allclose(out, -torch.log(torch.tensor([[0.7, 0.2, 0.1]], dtype=out.dtype)))
    out2 = I.posthoc_logit_adjust(z, [0.7, 0.2, 0.1], [0.1, 0.2, 0.7], tau=2.0)
    assert out2.argmax(1).item() == 2
    # Bayes prior shift: softmax(log p + log q - log pi) is the posterior under prior q
    post = torch.softmax(torch.log(torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)), 1)
    shifted = torch.softmax(I.posthoc_logit_adjust(torch.log(post), [0.5, 0.3, 0.2],
                                                   [1 / 3, 1 / 3, 1 / 3]), 1)
    assert torch.allclose(shifted, torch.full((1, 3), 1 / 3, dtype=torch.float64))


@pytest.mark.parametrize("prior, match", [
    ([0.5, 0.5, 0.0], "positive"),
    ([0.5, 0.6, 0.1], "sum to 1"),
    ([0.5, 0.5], "one entry per class"),
])
def test_prior_validation(prior, match):
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=match):
        I.logit_adjusted_loss(z, [0, 1], prior)
    with pytest.raises(ValueError, match=match):
        I.posthoc_logit_adjust(z, prior)
    with pytest.raises(ValueError, match=match):
        I.posthoc_logit_adjust(z, [0.2, 0.3, 0.5], prior)


def test_logit_adjusted_loss_validation():
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="target must have shape"):
        I.logit_adjusted_loss(z, [0, 1, 2], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="class indices in 0..2"):
        I.logit_adjusted_loss(z, [0, 3], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="tau"):
        I.logit_adjusted_loss(z, [0, 1], [0.2, 0.3, 0.5], tau=-1.0)
    with pytest.raises(ValueError, match="logits"):
        I.posthoc_logit_adjust(torch.zeros(3), [0.2, 0.3, 0.5])


# --------------------------------------------------------------------------------------
# top-k uncertainty
# --------------------------------------------------------------------------------------
def test_topk_uncertainty_article_example():
    P = np.array([[0.5, 0.25, 0.25], [0.5, 0.5, 0.0]])
    h = stats.entropy(P, axis=1)
    assert h[0] > h[1]  # plain entropy ranks the first as more uncertain
    u3 = I.topk_uncertainty(P, k=3)
    u2 = I.topk_uncertainty(P, k=2)
    assert np.allclose(u3, h / np.log(3))  # k = K: the normalised entropy
    assert u3[0] > u3[1]  # k = 3 does not reorder
    assert u2[0] < u2[1] and u2[1] == pytest.approx(1.0)
    assert np.allclose(I.topk_uncertainty(P, k=3, renormalize=False), h / np.log(3))


def test_topk_uncertainty_matches_scipy_entropy():
    P = _probs(50, 8, 3)
    for k in (2, 3, 5):
        top = -np.sort(-P, axis=1)[:, :k]
        ref = stats.entropy(top, axis=1) / np.log(k)  # scipy renormalises
        assert np.allclose(I.topk_uncertainty(P, k=k), ref, atol=1e-12)
        ref_paper = -(top * np.log(top)).sum(1) / np.log(8)
        assert np.allclose(I.topk_uncertainty(P, k=k, renormalize=False), ref_paper)


def test_topk_uncertainty_zero_probability_is_finite():
    u = I.topk_uncertainty([[1.0, 0.0, 0.0, 0.0]], k=3)
    assert np.isfinite(u).all() and u[0] == 0.0


@pytest.mark.parametrize("P, k, match", [
    ([[0.5, 0.5]], 1, "k must be an integer"),
    ([[0.5, 0.5]], 3, "k must be an integer"),
    ([[0.5, 0.6]], 2, "summing to 1"),
    ([[1.5, -0.5]], 2, "non-negative"),
    ([0.5, 0.5], 2, "2 dimension"),
])
def test_topk_uncertainty_validation(P, k, match):
    with pytest.raises(ValueError, match=match):
        I.topk_uncertainty(P, k=k)


# --------------------------------------------------------------------------------------
# alternating normalisation and CAN
# --------------------------------------------------------------------------------------
def test_alternating_normalize_toy():
    Y = I.alternating_normalize([[0.05, 0.95], [0.5, 0.5]], [0.5, 0.5])
    assert np.allclose(Y[1], [0.725, 0.275])
    assert np.allclose(Y.sum(1), 1)


def _literal_can(P, prior, k, tau, iters, alpha):
    """Su's reference code (article 8728), line by line, one sample at a time."""
    u = I.topk_uncertainty(P, k=k)
    conf, out = P[u < tau], P.copy()
    for j in np.where(u >= tau)[0]:
        Y = np.concatenate([conf, P[j][None]], axis=0)
        for _ in range(iters):
            Y = Y**alpha
            Y /= Y.mean(axis=0, keepdims=True)
            Y *= prior[None]
            Y /= Y.sum(axis=1, keepdims=True)
        out[j] = Y[-1]
    return out


@pytest.mark.parametrize("iters, alpha", [(1, 1.0), (1, 0.5), (3, 1.0)])
def test_can_per_sample_matches_literal_loop(iters, alpha):
    P = _probs(120, 6, 4)
    prior = np.array([0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
    Q, low = I.can(P, prior, k=3, tau=0.6, iters=iters, alpha=alpha)
    assert low.any() and (~low).any()
    if alpha == 1.0 or iters == 1:
        # Su's code re-applies the power every round, the helper only in the first:
        # they agree whenever that makes no difference
        assert np.allclose(Q, _literal_can(P, prior, 3, 0.6, iters, alpha), atol=1e-13)
    assert np.array_equal(Q[~low], P[~low])
    assert np.allclose(Q.sum(1), 1)


def test_can_batch_mode_and_thresholds():
    P = _probs(60, 4, 5)
    prior = np.full(4, 0.25)
    Q, low = I.can(P, prior, tau=0.7, mode="batch")
    stacked = np.concatenate([P[~low], P[low]])
    assert np.allclose(Q[low], I.alternating_normalize(stacked, prior)[(~low).sum():])
    # the two modes are different corrections (batch stacks all uncertain rows at once)
    Qp, lowp = I.can(P, prior, tau=0.7)
    assert np.array_equal(low, lowp) and not np.allclose(Qp[low], Q[low], atol=1e-6)
    assert np.array_equal(Q[~low], P[~low]) and np.allclose(Q.sum(1), 1)


@pytest.mark.parametrize("iters", [1, 3])
def test_can_per_sample_zero_column_is_finite(iters):
    # a column that is 0 in every stacked row (float32 underflow) used to give 0 * inf = nan
    P = np.array([[.97, .03, 0], [.96, .04, 0], [.4, .3, .3], [.5, .5, 0]])
    prior = np.full(3, 1 / 3)
    Q, low = I.can(P, prior, k=2, tau=0.9, iters=iters)
    assert low.tolist() == [False, False, True, True]
    assert np.isfinite(Q).all() and np.allclose(Q.sum(1), 1)
    assert Q[3, 2] == 0.0
    # equals alternating_normalize on the stacked matrix without the zero column (the
    # prior restricted to the others and renormalised: a constant factor per column step
    # cancels in the row normalisation)
    stacked = np.r_[P[:2], P[3:4]][:, :2]
    ref = I.alternating_normalize(stacked, prior[:2] / prior[:2].sum(), iters=iters)[-1]
    assert np.allclose(Q[3, :2], ref, atol=1e-14)
    # no confident row and a zero entry: the prior on the row's support
    Q0, low0 = I.can([[0.5, 0.5, 0.0]], prior, k=2, tau=0.9)
    assert low0.all() and np.allclose(Q0, [[0.5, 0.5, 0.0]])


def test_float32_softmax_rows_accepted_at_large_K():
    # a float32 softmax over many classes deviates from sum 1 by more than 1e-6
    g = torch.Generator().manual_seed(0)
    P32 = torch.softmax(torch.randn(50, 10_000, generator=g) * 3, dim=1).numpy()
    dev = np.abs(P32.astype(float).sum(1) - 1).max()
    assert dev > 1e-6                       # the case the old tolerance rejected
    u = I.topk_uncertainty(P32, k=3)
    assert np.isfinite(u).all()
    Q, low = I.can(P32, np.full(10_000, 1e-4), tau=0.5)
    assert np.allclose(Q.sum(1), 1, atol=1e-12)


def test_error_messages_print_plain_floats():
    with pytest.raises(ValueError) as info:
        I.can(_probs(5, 3, 1), [0.2, 0.2, 0.6000000000000001 + 0.1])
    assert "np.float64" not in str(info.value)
    with pytest.raises(ValueError) as info:
        I.smooth_f1([1, 0], [0.5, 1.5])
    assert "np.float64" not in str(info.value)


def test_converged_can_is_entropic_ot():
    # theorem imb-thm-sinkhorn: the limit is the entropic OT plan for cost -log Y, reg 1
    P = _probs(15, 4, 6, conc=1.0)
    prior = np.array([0.4, 0.3, 0.2, 0.1])
    n = P.shape[0]
    Z = I.alternating_normalize(P, prior, iters=2000)
    T = entropic_ot_dual(P, np.ones(n), n * prior)
    assert np.allclose(Z, T, atol=1e-7)
    assert np.allclose(Z.sum(1), 1) and np.allclose(Z.sum(0), n * prior, atol=1e-9)


def test_converged_can_matches_pot_if_installed():
    ot = pytest.importorskip("ot")
    P = _probs(15, 4, 7, conc=1.0)
    prior = np.array([0.4, 0.3, 0.2, 0.1])
    n = P.shape[0]
    Z = I.alternating_normalize(P, prior, iters=2000)
    T = ot.sinkhorn(np.ones(n), n * prior, -np.log(P), reg=1.0, numItermax=100000,
                    stopThr=1e-14)
    assert np.allclose(Z, T, atol=1e-9)


@pytest.mark.parametrize("kwargs, match", [
    (dict(tau=0.0), "tau must lie"),
    (dict(tau=1.5), "tau must lie"),
    (dict(iters=0), "iters"),
    (dict(alpha=0.0), "alpha"),
    (dict(mode="all"), "mode must be one of"),
    (dict(prior=[0.5, 0.5]), "one entry per class"),
    (dict(prior=[0.5, 0.6, -0.1]), "positive"),
    (dict(k=4), "k must be an integer"),
])
def test_can_validation(kwargs, match):
    P = _probs(10, 3, 8)
    args = dict(prior=np.full(3, 1 / 3))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        I.can(P, **args)


def test_alternating_normalize_validation():
    with pytest.raises(ValueError, match="non-negative"):
        I.alternating_normalize([[-0.1, 1.1]], [0.5, 0.5])
    with pytest.raises(ValueError, match="all-zero column"):
        I.alternating_normalize([[0.0, 1.0]], [0.5, 0.5])
    with pytest.raises(ValueError, match="iters"):
        I.alternating_normalize([[0.5, 0.5]], [0.5, 0.5], iters=0)
    with pytest.raises(ValueError, match="alpha"):
        I.alternating_normalize([[0.5, 0.5]], [0.5, 0.5], alpha=-1.0)
