"""helpers.concepts.on_images: the wrapped model equals model(prepare(x)), keeps the names, shares the weights,
leaves the model unchanged, and TCAV through it equals TCAV on prepared inputs."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import helpers
from helpers.concepts import tcav
from helpers.concepts.on_images import OnImages
from helpers.zoo import open_model


def test_on_images_equals_prepare_then_model_and_keeps_names():
    net = open_model("random:resnet50", kinds=("image",), device="cpu")
    before = {k: v.clone() for k, v in net.model.state_dict().items()}
    wrapped = OnImages(net)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(wrapped(x), net.model(net.prepare(x)))
    names = {n for n, _ in net.model.named_modules()}
    assert {n for n, _ in wrapped.named_modules()} == names
    assert all(a is b for a, b in zip(wrapped.parameters(), net.model.parameters()))
    with torch.no_grad(), helpers.capture(wrapped, net.feature_layer) as via, helpers.capture(net.model, net.feature_layer) as direct:
        wrapped(x)
    assert torch.equal(via[net.feature_layer], direct[net.feature_layer])
    after = net.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.model.modules())


def test_tcav_through_on_images_equals_tcav_on_prepared_inputs():
    net = open_model("random:vit_b_16", kinds=("image",), device="cpu")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 40, 40, generator=g)
    layer = net.blocks[-1]
    ours = tcav.class_gradients(OnImages(net), [layer], x, 3)[layer]
    ref = tcav.class_gradients(net.model, [layer], net.prepare(x), 3)[layer]
    assert torch.allclose(ours, ref)


def test_on_images_refuses_a_bare_module():
    with pytest.raises(TypeError, match="open_model"):
        OnImages(nn.Linear(2, 2))
