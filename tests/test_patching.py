"""helpers.intervene.patching against a plain loop of hooked forwards and TransformerLens; refusals leave no hook."""
import pytest
import torch

import helpers
from helpers.intervene import patching
from helpers.intervene.transformerlens import hooked_transformer
from helpers.models.gpt import GPT, GPTConfig


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, n_ctx=12, n_layer=3, d_model=32, n_head=4, d_mlp=64)).eval()
    clean = torch.randint(0, 30, (2, 7))
    corrupt = clean.clone()
    corrupt[:, 2] = (clean[:, 2] + 1) % 30
    corrupt[:, 4] = (clean[:, 4] + 3) % 30
    metric = patching.logit_diff([5, 6], [7, 8])
    return model, clean, corrupt, metric


def _loop(model, clean, corrupt, metric, cells, mode, inputs=False):
    """One hooked forward per cell: the reference."""
    target, source = (corrupt, clean) if mode == "denoise" else (clean, corrupt)
    names = list(dict.fromkeys(c[0] for c in cells))
    with torch.no_grad(), helpers.capture(model, names, inputs=inputs, outputs=not inputs) as acts:
        model(source)
    out = []
    mods = dict(model.named_modules())
    for name, idx in cells:
        full = (slice(None),) + idx
        src = (acts.inputs[name] if inputs else acts[name])[full]

        def pre(m, args):
            x = args[0].clone()
            x[full] = src
            return (x,)
        if inputs:
            h = mods[name].register_forward_pre_hook(pre)
            try:
                with torch.no_grad():
                    out.append(metric(model(target)[None])[0])
            finally:
                h.remove()
        else:
            with torch.no_grad(), helpers.edit(model, {name: lambda o, full=full, src=src: _put(o, full, src)}):
                out.append(metric(model(target)[None])[0])
    return torch.stack(out)


def _put(o, full, src):
    o = o.clone()
    o[full] = src
    return o


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


@pytest.mark.parametrize("mode", ["denoise", "noise"])
def test_residual_sweep_equals_loop(setup, mode):
    model, clean, corrupt, metric = setup
    res = patching.residual_sweep(model, clean, corrupt, metric, mode=mode, batch_size=5)
    names = patching.resid_pre_names(3)
    ref = _loop(model, clean, corrupt, metric, [(n, (p,)) for n in names for p in range(7)], mode)
    assert torch.allclose(res.values.flatten(), ref, atol=1e-5)
    # recovery is normalised between the two unpatched runs; position 0 (equal tokens) changes nothing
    assert res.recovery[:, 0].abs().max() < 1e-6 if mode == "denoise" else (res.recovery[:, 0] - 1).abs().max() < 1e-6
    assert _hooks(model) == 0


def test_heads_and_mlps_equal_loop(setup):
    model, clean, corrupt, metric = setup
    heads = patching.head_sweep(model, clean, corrupt, metric)
    hs = 32 // 4
    cells = [(f"blocks.{i}.attn.proj", (slice(None), slice(h * hs, (h + 1) * hs))) for i in range(3) for h in range(4)]
    assert torch.allclose(heads.values.flatten(), _loop(model, clean, corrupt, metric, cells, "denoise", inputs=True),
                          atol=1e-5)
    mlps = patching.mlp_sweep(model, clean, corrupt, metric, mode="noise")
    cells = [(f"blocks.{i}.mlp", (p,)) for i in range(3) for p in range(7)]
    assert torch.allclose(mlps.values.flatten(), _loop(model, clean, corrupt, metric, cells, "noise"), atol=1e-5)


def test_residual_sweep_equals_transformerlens(setup):
    from transformer_lens import patching as tl_patching
    model, clean, corrupt, metric = setup
    ht = hooked_transformer(model)
    _, cache = ht.run_with_cache(clean)
    tl = tl_patching.get_act_patch_resid_pre(ht, corrupt, cache, lambda logits: metric(logits[None])[0])
    ours = patching.residual_sweep(model, clean, corrupt, metric)
    assert tl.shape == ours.values.shape
    assert torch.allclose(ours.values, tl.float(), atol=1e-4), (ours.values - tl).abs().max()


def test_stored_activation_equals_source_run(setup):
    model, clean, corrupt, metric = setup
    names = patching.resid_pre_names(3)
    with torch.no_grad(), helpers.capture(model, names) as acts:
        model(clean)
    stored = patching.residual_sweep(model, clean, corrupt, metric, stored={n: acts[n] for n in names})
    plain = patching.residual_sweep(model, clean, corrupt, metric)
    assert torch.allclose(stored.values, plain.values, atol=1e-6)
    # a different stored activation changes the result: the option is used
    other = patching.residual_sweep(model, clean, corrupt, metric, stored={names[1]: torch.randn_like(acts[names[1]])})
    assert not torch.allclose(other.values[1], plain.values[1], atol=1e-3)


class _Counter:
    def __init__(self, model):
        self.n = 0
        self.h = model.register_forward_pre_hook(lambda m, a: setattr(self, "n", self.n + 1))


def test_refusals_name_both_sizes_and_leave_no_hook(setup):
    model, clean, corrupt, metric = setup
    count = _Counter(model)
    try:
        with pytest.raises(ValueError, match="clean has 7 tokens, corrupted has 6"):
            patching.residual_sweep(model, clean, corrupt[:, :6], metric)
        with pytest.raises(ValueError, match=r"\(2, 5, 32\).*\(2, 7, \.\.\.\)"):
            patching.residual_sweep(model, clean, corrupt, metric, stored={"blocks.0": torch.zeros(2, 5, 32)})
        assert count.n == 0  # refused before any forward
        with pytest.raises(ValueError, match=r"\(2, 7, 16\).*\(2, 7, 32\)"):
            patching.residual_sweep(model, clean, corrupt, metric, stored={"blocks.0": torch.zeros(2, 7, 16)})
        assert count.n == 1  # only the unpatched run of the target input, no patched forward
        with pytest.raises(ValueError, match="mode"):
            patching.residual_sweep(model, clean, corrupt, metric, mode="both")
    finally:
        count.h.remove()
    assert _hooks(model) == 0


class _TupleBlock(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.lin = torch.nn.Linear(d, d)

    def forward(self, x):
        return (x + torch.tanh(self.lin(x)).cumsum(1), None)  # mixes positions causally, tuple like Hugging Face


class _TupleLM(torch.nn.Module):
    def __init__(self, v=12, d=8):
        super().__init__()
        self.emb = torch.nn.Embedding(v, d)
        self.layers = torch.nn.ModuleList([_TupleBlock(d) for _ in range(2)])
        self.head = torch.nn.Linear(d, v)

    def forward(self, tokens):
        x = self.emb(tokens)
        for layer in self.layers:
            x = layer(x)[0]
        return type("Out", (), {"logits": self.head(x)})()


def test_tuple_outputs_and_logits_attribute():
    torch.manual_seed(0)
    model = _TupleLM().eval()
    clean, corrupt = torch.tensor([[1, 2, 3, 4]]), torch.tensor([[1, 7, 3, 4]])
    metric = patching.logit_diff([5], [6])
    res = patching.residual_sweep(model, clean, corrupt, metric, layers=["emb", "layers.0"])
    ref = []
    for name in ["emb", "layers.0"]:
        with torch.no_grad(), helpers.capture(model, name) as acts:
            model(clean)
        for p in range(4):
            with torch.no_grad(), helpers.edit(model, {name: helpers.patch_from(acts[name], positions=[p])}):
                ref.append(metric(model(corrupt).logits[None])[0])
    assert torch.allclose(res.values.flatten(), torch.stack(ref), atol=1e-6)
    assert res.recovery[0, 1] == pytest.approx(1.0, abs=1e-5) and _hooks(model) == 0
