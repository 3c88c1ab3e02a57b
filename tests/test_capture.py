"""capture(): parity with manual forwards and the field's libraries, gradients, cleanup, leaks."""
from __future__ import annotations

import gc
import resource

import pytest
import torch
from torch import nn

from helpers import CaptureTooLargeError
from helpers import LayerNotFoundError
from helpers import ModifiedInPlaceError
from helpers import capture
from helpers import layers
from helpers.core.capturing import Activations
from tests.conftest import hook_count


def resnet_manual(model, x):
    """ResNet-18's forward written out, returning every stage's output."""
    out = {}
    h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    for name in ("layer1", "layer2", "layer3", "layer4"):
        h = getattr(model, name)(h)
        out[name] = h
    h = model.avgpool(h)
    out["avgpool"] = h
    out["fc"] = model.fc(torch.flatten(h, 1))
    return out


def test_resnet_parity_with_manual_forward(resnet):
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = resnet_manual(resnet, x)
        with capture(resnet, ["layer*", "avgpool", "fc"]) as acts:
            logits = resnet(x)
    assert list(acts) == ["layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]
    for name, tensor in expected.items():
        torch.testing.assert_close(acts[name], tensor, rtol=0, atol=0)
    torch.testing.assert_close(acts["fc"], logits, rtol=0, atol=0)
    assert hook_count(resnet) == 0


def test_gpt2_parity_with_hidden_states(gpt2):
    base = hook_count(gpt2)  # transformers 5 keeps hooks of its own
    tokens = torch.randint(0, 101, (2, 12))
    with torch.no_grad(), capture(gpt2, ["transformer.h.*", "transformer.ln_f"]) as acts:
        out = gpt2(tokens, output_hidden_states=True)
    hidden = out.hidden_states  # embeddings, blocks 0..n-2, then ln_f(block n-1)
    for i in range(len(gpt2.transformer.h) - 1):
        torch.testing.assert_close(acts[f"transformer.h.{i}"], hidden[i + 1], rtol=0, atol=0)
    torch.testing.assert_close(acts["transformer.ln_f"], hidden[-1], rtol=0, atol=0)
    assert acts["transformer.h.0"].shape == (2, 12, 64)  # the hidden state, not the block's tuple
    assert hook_count(gpt2) == base


def test_transformer_lens_run_with_cache_parity():
    tl = pytest.importorskip("transformer_lens")
    cfg = tl.HookedTransformerConfig(n_layers=2, d_model=32, n_ctx=16, d_head=8, d_vocab=50, act_fn="gelu")
    model = tl.HookedTransformer(cfg).eval()
    tokens = torch.randint(0, 50, (3, 10))
    names = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post", "blocks.1.mlp.hook_post"]
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    with torch.no_grad(), capture(model, ["blocks.*.hook_resid_post", "blocks.1.mlp.hook_post"]) as acts:
        model(tokens)
    for name in names:
        torch.testing.assert_close(acts[name], cache[name], rtol=0, atol=0)


def test_gradients_equal_autograd_grad(resnet):
    x = torch.randn(2, 3, 64, 64)
    with capture(resnet, "layer3", detach=False) as live:
        score = resnet(x)[:, 3].sum()
    (expected,) = torch.autograd.grad(score, live["layer3"])
    with capture(resnet, ["layer3", "layer4"], grads=True) as acts:
        resnet(x)[:, 3].sum().backward()
    torch.testing.assert_close(acts.grads["layer3"], expected)
    assert acts.grads["layer4"].shape == acts["layer4"].shape
    resnet.zero_grad(set_to_none=True)
    assert hook_count(resnet) == 0


def test_grads_need_a_graph(mlp):
    with pytest.raises(RuntimeError, match="does not require grad"):
        with torch.no_grad(), capture(mlp, "0", grads=True):
            mlp(torch.randn(2, 6))
    assert hook_count(mlp) == 0


def test_inputs_positions_device_and_dtype(gpt2):
    tokens = torch.randint(0, 101, (2, 9))
    with torch.no_grad(), capture(gpt2, "transformer.h.1", inputs=True, positions=-1,
                                  to="cpu", dtype=torch.float16) as acts:
        gpt2(tokens)
    with torch.no_grad(), capture(gpt2, ["transformer.h.0", "transformer.h.1"]) as full:
        gpt2(tokens)
    assert acts["transformer.h.1"].shape == (2, 64) and acts["transformer.h.1"].dtype == torch.float16
    torch.testing.assert_close(acts["transformer.h.1"], full["transformer.h.1"][:, -1].half())
    # the input of block 1 is the output of block 0
    torch.testing.assert_close(acts.inputs["transformer.h.1"], full["transformer.h.0"][:, -1].half())


def test_stop_skips_the_rest_and_nesting_keeps_outer_hooks(resnet):
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad(), capture(resnet, "fc") as outer:
        with capture(resnet, "layer2", stop=True) as inner:
            resnet(x)
            pytest.fail("the block continues after the forward with stop=True")  # never reached
        assert "fc" not in outer.outputs  # the forward ended before fc
        assert hook_count(resnet) == 1  # the outer capture's hook is still there
        resnet(x)
    assert inner["layer2"].shape == (1, 128, 8, 8)
    assert outer["fc"].shape == (1, 10)
    assert hook_count(resnet) == 0


def test_bad_name_raises_before_any_hook_with_close_matches(resnet):
    with pytest.raises(LayerNotFoundError) as err:
        with capture(resnet, ["layer1", "layer2.0.conv1", "layr3"]):
            pytest.fail("the block must not run")
    message = str(err.value)
    assert "'layr3'" in message and "'layer3'" in message and "helpers.layers(model)" in message
    assert hook_count(resnet) == 0


def test_exception_in_block_propagates_and_hooks_are_removed(resnet):
    with pytest.raises(ZeroDivisionError):
        with capture(resnet, "layer*"):
            1 / 0
    assert hook_count(resnet) == 0


def test_in_place_modification_is_detected_not_silent(resnet):
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad(), capture(resnet, "bn1") as acts:
        resnet(x)
    with pytest.raises(ModifiedInPlaceError, match="clone=True"):
        acts["bn1"]
    with torch.no_grad(), capture(resnet, "bn1", clone=True) as cloned:
        resnet(x)
    assert (cloned["bn1"] < 0).any()  # the pre-ReLU values, not the ReLU's in-place result


def test_tuple_output_module():
    class Pair(nn.Module):
        def forward(self, x):
            return (x * 2, {"aux": x})

    model = nn.Sequential(Pair())
    with capture(model, "0") as acts:
        model(torch.ones(2, 3))
    torch.testing.assert_close(acts["0"], torch.full((2, 3), 2.0))


def test_memory_limit_refuses_before_storing(resnet):
    with pytest.raises(CaptureTooLargeError, match="needs about .* the limit is"):
        with torch.no_grad(), capture(resnet, "layer1", max_bytes=1000):
            resnet(torch.randn(1, 3, 64, 64))
    assert hook_count(resnet) == 0


def test_repr_and_missing_keys(mlp):
    with capture(mlp, ["0", "2"], stop=True) as acts:
        mlp(torch.randn(4, 6))
    text = repr(acts)
    assert "0" in text and "(4, 16)" in text and "float32" in text
    with pytest.raises(KeyError, match="was not captured"):
        acts["4"]
    empty = Activations(["x"])
    with pytest.raises(KeyError, match="has not run yet"):
        empty["x"]


def test_layers_lists_names_types_and_shapes(resnet):
    table = layers(resnet, torch.zeros(1, 3, 64, 64), pattern="layer4.*")
    assert table.names() == ["layer4.0", "layer4.1"]
    assert table[0].type == "BasicBlock" and table[0].shape == (1, 512, 2, 2)
    assert "BasicBlock" in repr(table)
    assert hook_count(resnet) == 0


def test_no_leak_over_many_captures(resnet):
    x = torch.randn(2, 3, 32, 32)

    def live_tensors() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if torch.is_tensor(o))

    def loop(n):
        for _ in range(n):
            with capture(resnet, ["layer*"], grads=True) as acts:
                resnet(x).sum().backward()
            del acts
        resnet.zero_grad(set_to_none=True)

    loop(3)  # warm up allocator and caches
    before_tensors = live_tensors()
    before_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    loop(40)
    assert live_tensors() <= before_tensors
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_rss) / 1024
    assert grown_mib < 64, f"peak memory grew by {grown_mib:.0f} MiB over 40 captures"
    assert hook_count(resnet) == 0
