"""helpers.routing: routers against brute force, bad input, the MoE and gated nets, statistics, hypersphere."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from helpers.ops.information import entropy, joint_counts, mutual_information
from helpers.routing import dynamic_k, gated, hypersphere, moe, routers, stats


def _probs(n: int = 50, e: int = 5, seed: int = 0) -> torch.Tensor:
    return (torch.randn(n, e, generator=torch.Generator().manual_seed(seed)) * 2).softmax(-1)


def test_topk_matches_brute_force():
    p = _probs()
    for k in range(1, 6):
        w = routers.topk_weights(p, k)
        for row, prow in zip(w, p):
            best = max(itertools.combinations(range(5), k), key=lambda s: sum(prow[list(s)]))
            kept = prow[list(best)]
            expected = torch.zeros(5)
            expected[list(best)] = kept / kept.sum()
            torch.testing.assert_close(row, expected)
    assert (routers.experts_per_token(routers.topk_weights(p, 3)) == 3).all()


def test_threshold_keeps_fewest_experts_reaching_the_mass():
    p = _probs(200)
    for t in (0.2, 0.5, 0.8, 0.95, 1.0):
        w = routers.threshold_weights(p, t)
        n = routers.experts_per_token(w)
        for row, prow, ni in zip(w, p, n):
            srt = prow.sort(descending=True).values
            # the fewest top experts whose mass reaches t (float tolerance at t = 1)
            need = int((srt.cumsum(0) < t - 1e-6).sum()) + 1
            assert ni == min(need, 5)
            torch.testing.assert_close(row.sum(), torch.tensor(1.0))
            assert set(row.nonzero().flatten().tolist()) == set(prow.topk(int(ni)).indices.tolist())
    # a larger threshold never uses fewer experts; k_max caps
    assert (routers.experts_per_token(routers.threshold_weights(p, 0.9))
            >= routers.experts_per_token(routers.threshold_weights(p, 0.5))).all()
    assert routers.experts_per_token(routers.threshold_weights(p, 1.0, k_max=2)).max() == 2


@pytest.mark.parametrize("k", [0, 6, -1, 2.0, True])
def test_bad_k_raises_with_range(k):
    with pytest.raises(ValueError, match=r"\[1, 5\]"):
        routers.topk_weights(_probs(), k)


@pytest.mark.parametrize("t", [0.0, -0.1, 1.01, float("nan")])
def test_bad_threshold_raises_with_range(t):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        routers.threshold_weights(_probs(), t)


def test_model_validates_routing_before_any_work():
    net = moe.PatchMoE(moe.MoEConfig(n_experts=4))
    calls = []
    net.embed.register_forward_hook(lambda *a: calls.append(1))
    x = torch.rand(2, 16, 49)
    for kwargs in ({"k": 5}, {"k": 0}, {"threshold": 0.0}, {"threshold": 2.0}, {"k": (1, 2, 2)},
                   {"threshold": 0.5, "k_max": 9}, {"k": 1, "threshold": 0.5}):
        with pytest.raises(ValueError):
            net(x, **kwargs)
    assert not calls
    with pytest.raises(ValueError, match=r"\[1, 4\]"):
        moe.MoEConfig(n_experts=4, k=5)


def test_load_balancing_loss_uniform_is_one_and_collapse_is_larger():
    u = torch.full((8, 4), 0.25)
    assert routers.load_balancing_loss(u, routers.topk_weights(u + torch.rand(8, 4) * 1e-3, 2)).item() == pytest.approx(1.0)
    collapsed = torch.tensor([[0.97, 0.01, 0.01, 0.01]]).repeat(8, 1)
    assert routers.load_balancing_loss(collapsed, routers.topk_weights(collapsed, 1)).item() == pytest.approx(4 * 0.97)
    p = _probs(20, 4).requires_grad_()
    routers.load_balancing_loss(p, routers.topk_weights(p.detach(), 2)).backward()
    assert p.grad is not None and p.grad.abs().sum() > 0


def test_random_k_mean_and_range():
    w = routers.random_k_weights(_probs(4000), 2.25, torch.Generator().manual_seed(1))
    n = routers.experts_per_token(w).float()
    assert set(n.unique().tolist()) == {2.0, 3.0} and abs(n.mean().item() - 2.25) < 0.03
    with pytest.raises(ValueError, match=r"\[1, 5\]"):
        routers.random_k_weights(_probs(), 0.5)


def test_moe_layer_equals_running_each_expert_on_its_tokens():
    torch.manual_seed(0)
    layer = moe.MoELayer(8, 16, 4)
    x = torch.randn(30, 8)
    out = layer(x, k=2)
    w = layer.last_weights
    loop = torch.zeros_like(out)
    for e in range(4):
        idx = (w[:, e] > 0).nonzero().flatten()
        h = torch.nn.functional.gelu(x[idx] @ layer.w1[e] + layer.b1[e]) @ layer.w2[e] + layer.b2[e]
        loop[idx] += w[idx, e, None] * h
    torch.testing.assert_close(out, loop, atol=1e-5, rtol=1e-5)


def test_training_lowers_the_loss_and_evaluate_counts_experts():
    torch.manual_seed(0)
    y = torch.randint(2, (128,))
    x = torch.rand(128, 16, 49) * 0.8 + 0.2 * y[:, None, None]          # class 1 is slightly brighter
    net = moe.PatchMoE(moe.MoEConfig(n_classes=2, d_model=16, d_hidden=16))
    losses = moe.train_classifier(net, x, y, 60, batch=32, lr=1e-2, aux_weight=0.01)
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10 - 0.1
    net.eval()
    r = dynamic_k.evaluate(net, x, y, k=(1, 3))
    assert r["experts"] == [1.0, 3.0] and r["mean_experts"] == 2.0
    t = dynamic_k.threshold_for_mean_k(net, x, 1.7)
    assert abs(dynamic_k.evaluate(net, x, y, threshold=t)["mean_experts"] - 1.7) < 0.02
    with pytest.raises(ValueError, match="mean_k"):
        dynamic_k.threshold_for_mean_k(net, x, 4.5)


def test_patch_tokens():
    img = torch.arange(28 * 28, dtype=torch.float32).reshape(1, 28, 28)
    tok = moe.patch_tokens(img)
    torch.testing.assert_close(tok[0, 5], img[0, 7:14, 7:14].flatten())
    with pytest.raises(ValueError, match="multiples"):
        moe.patch_tokens(torch.zeros(1, 27, 28))


def test_stats_and_information():
    w = torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(stats.expert_load(w), torch.tensor([0.2, 0.4, 0.4]))
    assert stats.load_entropy(w) == pytest.approx(entropy(torch.tensor([1.0, 2, 2])))
    assert stats.type_by_expert(w, torch.tensor([0, 0, 1, 1]), 2).tolist() == [[1, 1, 0], [0, 0, 2]]
    a = torch.tensor([0, 1, 2, 3] * 25)
    assert mutual_information(a, a) == pytest.approx(math.log(4))
    assert mutual_information(a, torch.zeros_like(a)) == pytest.approx(0.0)
    assert joint_counts(torch.tensor([1, 1]), torch.tensor([0, 2])).tolist() == [[0, 0, 0], [1, 0, 1]]
    with pytest.raises(ValueError):
        entropy(torch.tensor([-1.0, 2.0]))


def test_gated_net_skips_closed_tokens_exactly():
    torch.manual_seed(0)
    net = gated.GatedPatchNet(gated=True).eval()
    for blk in net.blocks:
        torch.nn.init.normal_(blk.gate.weight, std=3.0)
        torch.nn.init.zeros_(blk.gate.bias)
    x = torch.rand(8, 16, 49)
    with torch.no_grad():
        hard, soft = net(x, hard=True), net(x)
    share = torch.cat(net.last_active).float().mean().item()
    assert 0.1 < share < 0.9
    torch.testing.assert_close(hard, soft, atol=1e-5, rtol=1e-5)
    # a closed token's stream passes the block unchanged
    blk = net.blocks[0]
    h = torch.randn(20, 32)
    out = blk(h, hard=True)
    closed = ~blk.last_active
    torch.testing.assert_close(out[closed], h[closed])
    assert not torch.allclose(out[~closed], h[~closed])
    ratio = gated.flops_ratio(net.last_active, 32, 128)
    assert ratio == pytest.approx(share + 2 * 32 / gated.module_flops(32, 128))
    dense = gated.GatedPatchNet(gated=False)
    dense(x)
    assert gated.flops_ratio(dense.last_active, 32, 128, gated=False) == 1.0
    with pytest.raises(ValueError, match="one"):
        net(x, masks=[torch.ones(128, dtype=torch.bool)])


def test_hypersphere_head_and_prototypes():
    head = hypersphere.EmbeddingHead(6, 4, 3, normalised=True, scale=5.0)
    out = head(torch.randn(10, 6))
    assert out.abs().max() <= 5.0 + 1e-5
    z = torch.tensor([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [0.1, 3.0]])
    classes, protos = hypersphere.prototypes(z, torch.tensor([4, 4, 7, 7]))
    assert classes.tolist() == [4, 7] and torch.allclose(protos.norm(dim=1), torch.ones(2))
    assert hypersphere.prototype_predict(torch.tensor([[5.0, 0.2], [0.0, 0.3]]), classes, protos).tolist() == [4, 7]
    with pytest.raises(ValueError, match="scale"):
        hypersphere.EmbeddingHead(6, 4, 3, normalised=True, scale=0.0)


def test_load_balancing_loss_equals_transformers_mixtral_over_k():
    mixtral = pytest.importorskip("transformers.models.mixtral.modeling_mixtral")
    logits = torch.randn(40, 6, generator=torch.Generator().manual_seed(3))
    for k in (1, 2, 3):
        ours = routers.load_balancing_loss(logits.softmax(-1), routers.topk_weights(logits.softmax(-1), k))
        theirs = mixtral.load_balancing_loss_func((logits,), num_experts=6, top_k=k)
        torch.testing.assert_close(ours * k, theirs)
