"""Attribution patching, RelP switches and integrated gradients against exact patching, autograd and Captum."""
import pytest
import torch

import helpers
from helpers.intervene import attribution, patching
from helpers.models.gpt import GPT, GPTConfig
from helpers.ops.integrated import completeness_gap, integrated_gradients


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=30, n_ctx=12, n_layer=3, d_model=32, n_head=4, d_mlp=64)).eval()
    clean = torch.randint(0, 30, (1, 8))
    corrupt = clean.clone()
    corrupt[:, 3] = (clean[:, 3] + 1) % 30
    return model, clean, corrupt, patching.logit_diff([5], [7])


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_atp_is_the_first_order_term_and_tracks_exact_patching(setup):
    model, clean, corrupt, metric = setup
    atp = attribution.attribution_sweep(model, clean, corrupt, metric)
    # by hand for one cell: gradient at the corrupted run times the activation difference
    with torch.no_grad(), helpers.capture(model, "blocks.0") as a:
        model(clean)
    with helpers.capture(model, "blocks.0", detach=False) as live:
        m = metric(model(corrupt)[None])[0]
        (g,) = torch.autograd.grad(m, live["blocks.0"])
    by_hand = ((a["blocks.0"] - live["blocks.0"].detach()) * g)[0, 5].sum() + m.item()
    assert torch.allclose(atp.values[1, 5], by_hand.detach(), atol=1e-5)
    exact = patching.residual_sweep(model, clean, corrupt, metric)
    r = torch.corrcoef(torch.stack([atp.recovery.flatten(), exact.recovery.flatten()]))[0, 1]
    assert r > 0.8
    assert _hooks(model) == 0


def test_relp_keeps_forward_changes_backward_and_removes_hooks(setup):
    model, clean, corrupt, metric = setup
    with torch.no_grad():
        plain = model(clean)
        with attribution.relp_rules(model):
            switched = model(clean)
    assert torch.allclose(plain, switched, atol=1e-5)
    relp = attribution.attribution_sweep(model, clean, corrupt, metric, relp=True)
    atp = attribution.attribution_sweep(model, clean, corrupt, metric)
    assert not torch.allclose(relp.values, atp.values, atol=1e-4)  # the backward differs
    assert _hooks(model) == 0


def test_integrated_gradients_equals_captum_on_inputs_and_layers(setup):
    from captum.attr import IntegratedGradients, LayerIntegratedGradients
    model, clean, corrupt, metric = setup
    layer = "blocks.1"

    with torch.no_grad(), helpers.capture(model, ["embed", layer]) as acts_c:
        model(clean)
    with torch.no_grad(), helpers.capture(model, ["embed", layer]) as acts_r:
        model(corrupt)
    ours = attribution.layer_integrated_gradients(model, clean, layer, acts_r[layer], acts_c[layer], metric, steps=32)
    lig = LayerIntegratedGradients(lambda x: metric(model(x)[:, None]), model.blocks[1])
    theirs = lig.attribute(clean, baselines=corrupt, n_steps=32, method="riemann_right")
    assert ours.abs().sum() > 0.01 and torch.allclose(ours, theirs, atol=1e-6)
    gap = completeness_gap(ours, metric(model(clean)[None]).item(), metric(model(corrupt)[None]).item())
    assert gap < 0.05

    def from_embeddings(e):  # (K, 1, T, d) -> (K,)
        h = model.embed.register_forward_hook(lambda m, a, out: e.reshape(-1, *e.shape[2:]))
        try:
            return metric(model(clean.repeat(e.shape[0], 1))[:, None])
        finally:
            h.remove()

    ig_ours = integrated_gradients(from_embeddings, acts_c["embed"], acts_r["embed"], steps=32)
    ig_captum = IntegratedGradients(lambda e: from_embeddings(e[:, None])).attribute(
        acts_c["embed"], baselines=acts_r["embed"], n_steps=32, method="riemann_right")
    assert ig_ours.abs().sum() > 0.01 and torch.allclose(ig_ours, ig_captum, atol=1e-6)
    assert _hooks(model) == 0


def test_ig_refuses_mismatched_shapes_and_zero_difference():
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        integrated_gradients(lambda z: z.sum(-1), torch.ones(3), torch.zeros(4))
    with pytest.raises(ValueError, match="zero"):
        completeness_gap(torch.ones(2), 1.0, 1.0)
