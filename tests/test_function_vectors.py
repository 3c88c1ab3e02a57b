"""helpers.intervene.function_vectors: head means, head patching, CIE and the function vector."""
import pytest
import torch

from helpers.intervene import function_vectors as fv
from helpers.models.gpt import GPT, GPTConfig


def _model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=12, n_ctx=8, d_model=16, d_mlp=32, n_layer=2, n_head=4)).eval()


def _hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_patching_every_head_with_its_own_single_prompt_mean_changes_nothing():
    m = _model()
    x = torch.randint(0, 12, (1, 6))
    means = fv.head_means(m, x)
    with torch.no_grad():
        plain = m(x)
        with fv.patch_heads(m, means, [(l, j) for l in range(2) for j in range(4)]):
            same = m(x)
        other = fv.head_means(m, torch.randint(0, 12, (1, 6)))
        with fv.patch_heads(m, other, [(1, 2)]):
            changed = m(x)
    assert torch.allclose(plain, same, atol=1e-5)
    assert not torch.allclose(plain[:, -1], changed[:, -1]) and torch.allclose(plain[:, :-1], changed[:, :-1])
    assert _hooks(m) == 0


def test_function_vector_is_the_heads_contribution_to_the_residual():
    m = _model()
    x = torch.randint(0, 12, (3, 5))
    means = fv.head_means(m, x)
    zero = torch.zeros_like(means)
    with torch.no_grad():
        with fv.patch_heads(m, zero, [(1, j) for j in range(4)]):  # layer 1 attention writes only its bias
            h0 = {}
            hook = m.blocks[1].attn.register_forward_hook(lambda mod, a, out: h0.__setitem__("o", out[:, -1]))
            m(x[:1]); hook.remove()
        with fv.patch_heads(m, means, [(1, 0), (1, 3)]), fv.patch_heads(m, zero, [(1, 1), (1, 2)]):
            h1 = {}
            hook = m.blocks[1].attn.register_forward_hook(lambda mod, a, out: h1.__setitem__("o", out[:, -1]))
            m(x[:1]); hook.remove()
    assert torch.allclose(h1["o"] - h0["o"], fv.function_vector(m, means, [(1, 0), (1, 3)])[None], atol=1e-5)


def test_cie_shape_bad_heads_and_no_hook_left():
    m = _model()
    x = torch.randint(0, 12, (4, 5))
    means = fv.head_means(m, x)
    cie = fv.causal_indirect_effects(m, means, x, torch.zeros(4, dtype=torch.long))
    assert cie.shape == (2, 4)
    with pytest.raises(ValueError, match="does not exist"):
        with fv.patch_heads(m, means, [(2, 0)]):
            pass
    with pytest.raises(ValueError, match="means must be"):
        with fv.patch_heads(m, means[:1], [(0, 0)]):
            pass
    assert _hooks(m) == 0
    assert fv.top_heads(torch.tensor([[0.0, 2.0], [1.0, 3.0]]), 3) == [(1, 1), (0, 1), (1, 0)]


def test_head_sites_of_a_gpt2_read_its_conv1d_projection():
    # GPT-2 (Conv1D out-projection, weight stored (in, out)): the function vector is the projection of the slices
    from types import SimpleNamespace

    import transformers as tf

    torch.manual_seed(0)
    m = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=20, n_positions=16, n_embd=16, n_layer=2, n_head=4)).eval()
    lm = SimpleNamespace(attn=["transformer.h.0.attn", "transformer.h.1.attn"], n_heads=4, module=m.get_submodule)
    sites = fv.HeadSites.of(lm)
    assert sites.proj == ("transformer.h.0.attn.c_proj", "transformer.h.1.attn.c_proj") and sites.n_head == 4
    x = torch.randint(0, 20, (3, 6))
    means = fv.head_means(m, x, sites)
    proj = m.transformer.h[1].attn.c_proj
    z = torch.zeros(16)
    z[4:8] = means[1, 4:8]
    assert torch.allclose(fv.function_vector(m, means, [(1, 1)], sites), z @ proj.weight, atol=1e-6)
    with torch.no_grad():
        plain = m(x[:1]).logits
        with fv.patch_heads(m, fv.head_means(m, x[:1], sites), [(0, 2), (1, 3)], sites):
            same = m(x[:1]).logits
    assert torch.allclose(plain, same, atol=1e-5) and _hooks(m) == 0
    cie = fv.causal_indirect_effects(m, means, x, torch.zeros(3, dtype=torch.long), sites, lambda ids: m(ids).logits[:, -1])
    assert cie.shape == (2, 4)
