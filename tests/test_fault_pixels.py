"""PixelModel, activation_layers, first_map_layer (helpers.faults.pixels) and profile_bounds over repeated calls."""
import pytest
import torch
from torch import nn

from helpers.core.names import LayerNotFoundError
from helpers.faults import bitflip, clipping, pixels
from helpers.zoo import open_model


class Twice(nn.Module):
    """One ReLU module used twice in a forward pass (as torchvision's ResNet blocks do)."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.relu = nn.Linear(2, 3), nn.Linear(3, 3), nn.ReLU()

    def forward(self, x):
        return self.relu(self.b(self.relu(self.a(x))))


def test_profile_bounds_take_the_maximum_over_every_call_of_a_module():
    torch.manual_seed(0)
    net, x = Twice(), torch.randn(40, 2)
    with torch.no_grad():
        net.b.weight.mul_(0.01)                       # the second call's outputs are much smaller than the first's
        first = net.relu(net.a(x))
        second = net.relu(net.b(first))
    assert first.max() > second.max()
    assert clipping.profile_bounds(net, ["relu"], x, batch=9)["relu"] == pytest.approx(first.max().item())
    with clipping.clipped(net, clipping.profile_bounds(net, ["relu"], x)):
        assert torch.equal(net(x), Twice.forward(net, x))     # clean inputs are inside the bound at both calls
    with pytest.raises(LayerNotFoundError):                    # a wrong name raises before any hook exists
        clipping.profile_bounds(net, ["relu", "nope"], x)
    assert not net.relu._forward_hooks


@pytest.fixture(scope="module")
def resnet():
    return open_model("random:resnet50", kinds=("image",), device="cpu")


def test_pixel_model_shares_names_and_weights_and_prepares_the_input(resnet):
    model = pixels.PixelModel(resnet)
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in resnet.model.named_parameters()]
    assert model.get_submodule(resnet.head) is resnet.module(resnet.head)
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(images), resnet.logits(images))
    before = {k: v.clone() for k, v in resnet.model.state_dict().items()}
    with bitflip.weight_faults(model, 1e-3, seed=0) as report:    # faults reach the model's own weights ...
        assert report.n_flipped > 0
        assert any(not torch.equal(before[k], v) for k, v in resnet.model.state_dict().items())
    assert all(torch.equal(before[k], v) for k, v in resnet.model.state_dict().items())   # ... and are undone
    model.train()
    assert resnet.model.training and resnet.module(resnet.head).training
    model.eval()
    assert not resnet.model.training
    with pytest.raises(TypeError, match="ImageModel"):
        pixels.PixelModel(nn.Linear(2, 2))


def test_activation_layers_in_forward_order_and_first_map_layer(resnet):
    model = pixels.PixelModel(resnet)
    names = pixels.activation_layers(model, torch.rand(1, 3, 64, 64))
    assert names[0] == "relu" and names[1].startswith("layer1.") and names[-1].startswith("layer4.")
    assert len(names) == len(set(names))                       # a reused ReLU is listed once
    assert pixels.first_map_layer(model, torch.rand(1, 3, 64, 64)) == "relu"   # the stem's activations
    assert not any(m._forward_hooks for m in resnet.model.modules())
    with pytest.raises(ValueError, match="no activation"):
        pixels.activation_layers(nn.Sequential(nn.Linear(2, 2)), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="no \\(B, C, H, W\\) map"):
        pixels.first_map_layer(nn.Sequential(nn.Linear(2, 2)), torch.zeros(1, 2))
