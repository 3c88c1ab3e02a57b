"""helpers.statistics (distributions, sparsity, massive), the edit functions they use, zoo checkpoints: parity with manual computations, error cases."""
import numpy as np
import pytest
import torch
from torch import nn

from helpers import capture
from helpers import edit
from helpers.statistics import massive
from helpers.statistics import sparsity
from helpers.statistics import distributions as stats
from helpers.models.gpt import GPT, GPTConfig
from helpers.core import editing
from helpers.zoo import checkpoints


# ---------------------------------------------------------------------------------------------
# stats

def test_fraction_nonzero_and_threshold():
    x = torch.tensor([[-2.0, 0.0, 0.01, 3.0]])
    assert stats.fraction_nonzero(x) == 0.75
    assert stats.fraction_nonzero(x, threshold=0.05) == 0.5
    assert stats.fraction_nonzero(torch.relu(x)) == 0.5
    with pytest.raises(ValueError, match=">= 0"):
        stats.fraction_nonzero(x, threshold=-1)


def test_describe_matches_numpy():
    x = torch.randn(3000) ** 3  # heavy tails
    s = stats.describe(x)
    v = x.numpy().astype(np.float64)
    z = (v - v.mean()) / v.std()
    assert s.mean == pytest.approx(v.mean(), abs=1e-5)
    assert s.std == pytest.approx(v.std(), rel=1e-4)
    assert s.kurtosis == pytest.approx((z ** 4).mean() - 3, rel=1e-3)
    assert s.q50 == pytest.approx(np.quantile(v, 0.5), abs=1e-5)
    assert s.min == v.min() and s.max == pytest.approx(v.max())
    assert s.kurtosis > 5 and set(s.row()) >= {"mean", "kurtosis", "frac_nonzero"}
    with pytest.raises(ValueError, match="empty"):
        stats.describe(torch.zeros(0))


def test_checkpoints_of_the_zoo_gpt():
    paths = checkpoints.checkpoint_paths("tinyworld-gpt-relu")
    steps = list(paths)
    assert steps[0] == 0 and steps == sorted(steps) and len(steps) >= 5
    model = checkpoints.load_checkpoint("tinyworld-gpt-relu", steps[1])
    assert isinstance(model, GPT) and not model.training
    with pytest.raises(ValueError, match="steps"):
        checkpoints.load_checkpoint("tinyworld-gpt-relu", 12345)
    with pytest.raises(ValueError, match="valid"):
        checkpoints.checkpoint_paths("tinyworld-gtp")
    with pytest.raises(ValueError, match="no training checkpoints"):
        checkpoints.checkpoint_paths("wild-cnn")


# ---------------------------------------------------------------------------------------------
# sparsity

def test_topk_mask_keeps_the_k_largest():
    x = torch.randn(4, 7, 20)
    out = editing.topk_mask(x, 5)
    assert ((out != 0).sum(-1) == 5).all()
    kth = x.topk(5, dim=-1).values[..., -1:]  # the 5th largest per row
    assert torch.equal(out, torch.where(x >= kth, x, torch.zeros_like(x)))
    with pytest.raises(ValueError, match="between 1"):
        editing.topk_mask(x, 0)
    with pytest.raises(ValueError, match="between 1"):
        editing.topk_mask(x, 21)


def test_cett_against_a_loop_over_tokens():
    a, w = torch.rand(12, 9), torch.randn(5, 9)
    eps = 0.4
    col = w.norm(dim=0)
    manual = []
    for tok in a:  # one token at a time, neuron by neuron
        dropped = sum((tok[i] * w[:, i] for i in range(9) if tok[i].abs() * col[i] < eps), torch.zeros(5))
        manual.append(dropped.norm() / (w @ tok).norm())
    assert sparsity.cett(a, w, eps) == pytest.approx(torch.stack(manual).mean().item(), rel=1e-5)
    assert sparsity.cett(a, w, 0.0) == 0.0
    assert sparsity.cett(a, w, 1e9) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="d_model"):
        sparsity.neuron_scores(a, torch.randn(9, 5))


def test_cett_threshold_hits_the_target_and_is_monotone():
    a, w = torch.relu(torch.randn(200, 32)), torch.randn(8, 32)
    e1, e2 = sparsity.cett_threshold(a, w, 0.1), sparsity.cett_threshold(a, w, 0.3)
    assert e1 < e2
    assert sparsity.cett(a, w, e1) <= 0.1 and sparsity.cett(a, w, e1 * 1.05) > 0.1 - 0.02
    with pytest.raises(ValueError, match="target"):
        sparsity.cett_threshold(a, w, 1.5)


def test_ppl_p_sparsity_on_a_tiny_relu_gpt():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, n_ctx=16, n_layer=2, n_head=2, d_model=16, d_mlp=32, act="relu")).eval()
    x = torch.randint(0, 20, (4, 16))
    y = torch.randint(0, 20, (4, 16))
    names = [f"blocks.{i}.mlp.act" for i in range(2)]
    with torch.no_grad(), capture(model, names) as acts:
        model(x)

    def loss():
        with torch.no_grad():
            return nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()

    weights = {n: model.blocks[i].mlp.proj.weight.detach() for i, n in enumerate(names)}
    r = sparsity.ppl_p_sparsity(model, weights, loss, calib=dict(acts), p=5.0)
    assert 0 < r.cett < 1 and r.loss_ratio <= 1.05 + 1e-6
    assert set(r.thresholds) == set(names) and 0 < r.sparsity < 1
    # the reported thresholds give the reported loss ratio when applied by hand
    with torch.no_grad(), edit(model, {n: editing.mask_below(weights[n], e) for n, e in r.thresholds.items()}):
        sparse = loss()
    assert np.exp(sparse - loss()) == pytest.approx(r.loss_ratio, rel=1e-5)
    with pytest.raises(ValueError, match="positive"):
        sparsity.ppl_p_sparsity(model, weights, loss, calib=dict(acts), p=0)
    with pytest.raises(ValueError, match="calib"):
        sparsity.ppl_p_sparsity(model, weights, loss, calib={}, p=1)


# ---------------------------------------------------------------------------------------------
# massive

def test_find_massive_locates_a_planted_activation():
    h = torch.randn(3, 10, 16)
    h[2, 0, 7] = 5000.0
    h[1, 0, 7] = -4000.0
    r = massive.find_massive(h, top=2)
    assert r.dims == [7, 7] and r.positions == [0, 0] and r.sequences == [2, 1]
    assert r.top1 == 5000.0 and r.meets_criterion
    assert r.ratio == pytest.approx(5000.0 / np.median(h.abs().numpy()), rel=1e-5)
    small = massive.find_massive(torch.randn(10, 16))
    assert not small.meets_criterion and small.sequences[0] == 0
    assert "does not meet" in str(small)
    with pytest.raises(ValueError, match=r"\(T, d\)"):
        massive.find_massive(torch.randn(5))


def test_set_entries_zero_and_mean_at_positions():
    out = torch.arange(24.0).view(1, 4, 6)
    new = editing.set_entries([2], 0.0, positions=[0, 3])(out)
    assert new[0, 0, 2] == 0 and new[0, 3, 2] == 0 and new[0, 1, 2] == out[0, 1, 2]
    assert torch.equal(new[..., [0, 1, 3, 4, 5]], out[..., [0, 1, 3, 4, 5]])
    per_dim = editing.set_entries([1, 4], torch.tensor([-1.0, -2.0]))(out)
    assert (per_dim[..., 1] == -1).all() and (per_dim[..., 4] == -2).all()
    assert out[0, 0, 2] == 2  # the input is not modified


def test_fit_emergence_recovers_parameters():
    t = np.array([0, 50, 100, 200, 400, 800, 1600, 3200, 6400], dtype=float)
    y = massive.emergence_curve(t, 20.0, 2e-4, 0.01, 1.0, 3.0)
    fit = massive.fit_emergence(t, y)
    assert fit.r2 > 0.9999
    assert np.allclose(fit(t), y, rtol=1e-4, atol=1e-3)
    assert 0 < fit.step_reaching(0.5) < t.max()
    with pytest.raises(ValueError, match="at least 5"):
        massive.fit_emergence([0, 1, 2], [1, 2, 3])
