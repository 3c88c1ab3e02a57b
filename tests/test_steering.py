"""helpers.intervene.steering: fitting, applying, refusing mismatches without leaving hooks, save/load."""
import pytest
import torch

from helpers.intervene import steering
from helpers.models.gpt import GPT, GPTConfig


def _model(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=12, n_ctx=8, d_model=16, d_mlp=32, n_layer=2, n_head=2)).eval()


def _hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_mean_diff_equals_difference_of_means_and_steering_changes_logits():
    m = _model()
    pos, neg = torch.tensor([[1, 2, 3], [1, 4, 3]]), torch.tensor([[1, 2, 5], [1, 4, 6]])
    v = steering.fit(m, "blocks.0", pos, neg)
    h = {}
    with torch.no_grad():
        for key, x in (("p", pos), ("n", neg)):
            out = m.embed(x) + m.pos_embed(torch.arange(3))
            h[key] = m.blocks[0](out)[:, -1]
    assert torch.allclose(v.vector, h["p"].mean(0) - h["n"].mean(0), atol=1e-5)
    with torch.no_grad():
        plain = m(neg)
        with v.apply(m, alpha=2.0):
            steered = m(neg)
        with v.apply(m, alpha=0.0):
            zero = m(neg)
    assert not torch.allclose(plain, steered) and torch.allclose(plain, zero)
    assert _hooks(m) == 0


def test_pca_direction_is_the_shared_axis_with_the_right_sign():
    g = torch.Generator().manual_seed(0)
    axis = torch.tensor([3.0, -4.0]) / 5
    scale = torch.rand(40, 1, generator=g) + 1.0
    neg = torch.randn(40, 2, generator=g)
    pos = neg + scale * axis + 0.01 * torch.randn(40, 2, generator=g)
    v = steering.direction_from_pairs(pos, neg, "pca", g)
    assert torch.nn.functional.cosine_similarity(v, axis, dim=0) > 0.999
    assert abs(v.norm().item() - scale.mean().item()) < 0.05
    with pytest.raises(ValueError):
        steering.direction_from_pairs(pos, neg, "median")


def test_wrong_model_layer_or_width_raises_and_leaves_no_hook():
    m, other = _model(0), _model(1)
    v = steering.fit(m, "blocks.0", torch.tensor([[1, 2]]), torch.tensor([[1, 3]]))
    x = torch.tensor([[1, 2, 3]])
    with pytest.raises(ValueError, match="fitted on model"):
        with v.apply(other, 1.0):
            other(x)
    with pytest.raises(ValueError, match="fitted at layer"):
        with v.apply(m, 1.0, layer="blocks.1"):
            m(x)
    wide = steering.SteeringVector(torch.ones(17), "blocks.0", v.model_id)
    with pytest.raises(ValueError, match="width 17"):
        with wide.apply(m, 1.0):
            m(x)
    assert _hooks(m) == 0 and _hooks(other) == 0


def test_save_load_round_trip_and_random_control(tmp_path):
    m = _model()
    v = steering.fit(m, "blocks.1", torch.tensor([[1, 2], [2, 2]]), torch.tensor([[1, 3], [2, 3]]), method="pca")
    v.save(tmp_path / "v.pt")
    w = steering.SteeringVector.load(tmp_path / "v.pt")
    assert torch.equal(w.vector, v.vector) and (w.layer, w.model_id, w.method) == (v.layer, v.model_id, "pca")
    r = v.random_like(3)
    assert abs(r.vector.norm() - v.vector.norm()) < 1e-4 and r.layer == v.layer
    assert abs(torch.nn.functional.cosine_similarity(r.vector, v.vector, dim=0)) < 0.9


def test_prompts_of_wrong_rank_are_refused():
    m = _model()
    with pytest.raises(ValueError, match="1-D"):
        steering.fit(m, "blocks.0", [torch.tensor([[1, 2]])], [torch.tensor([[1, 3]])])
    assert _hooks(m) == 0
