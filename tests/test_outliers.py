"""helpers.quantize.outliers and the any-model parts of helpers.quantize.int8 on real architectures."""
import pytest
import torch
from torch import nn

from helpers import zoo
from helpers.quantize import int8, outliers


@pytest.mark.parametrize("spec", ["wild-cnn", "random:resnet50", "random:vit_b_16"])
def test_outlier_keeps_the_function_and_the_original(spec):
    net = zoo.open_model(spec, kinds=("image",), default="wild-cnn", device="cpu")
    torch.manual_seed(0)
    x = net.prepare(torch.rand(4, 3, 64, 64))
    before = {k: v.clone() for k, v in net.model.state_dict().items()}
    bigger, (norm, nxt) = outliers.inject_outlier(net.model, x, channel=5, factor=50.0)
    with torch.no_grad():
        ref = net.model(x)
        assert (bigger(x) - ref).abs().max() <= 1e-3 * max(1.0, ref.abs().max().item())
        # the activation the next layer reads really has one channel 50x larger
        seen = {}
        h = bigger.get_submodule(norm).register_forward_hook(lambda m, a, o: seen.__setitem__("o", o))
        bigger(x)
        h.remove()
    assert bigger.get_submodule(norm).weight[5] == 50 * net.model.get_submodule(norm).weight[5]
    assert all(torch.equal(v, before[k]) for k, v in net.model.state_dict().items())
    if spec == "wild-cnn":
        assert (norm, nxt) == ("blocks.1.bn2", "blocks.2.conv1")
    # fake quantization runs on every architecture (a ViT's attention out_proj is never called as a module)
    with torch.no_grad():
        assert int8.fake_quantize_model(net.model, x, 8, 8)(x).shape == ref.shape


def test_outlier_refusals():
    x = torch.rand(2, 4)
    with pytest.raises(ValueError, match="no exact place"):
        outliers.inject_outlier(nn.Sequential(nn.Linear(4, 4), nn.GELU(), nn.Linear(4, 2)), x)
    with pytest.raises(ValueError, match="positive"):
        outliers.inject_outlier(nn.Sequential(nn.LayerNorm(4), nn.Linear(4, 2)), x, factor=-1.0)
    with pytest.raises(ValueError, match="channel 9"):
        outliers.inject_outlier(nn.Sequential(nn.LayerNorm(4), nn.Linear(4, 2)), x, channel=9)
    # a GELU between the norm and the next layer does not commute with a scale: refused when asked for
    net = nn.Sequential(nn.LayerNorm(4), nn.GELU(), nn.Linear(4, 2)).eval()
    with pytest.raises(ValueError, match="changed the logits"):
        outliers.inject_outlier(net, torch.randn(8, 4) * 3, channel=1, site=("0", "2"))


def test_int8_conv1d_of_gpt2():
    lm = zoo.open_model("random:gpt2", kinds=("text",), default="tinyworld-gpt", device="cpu")
    conv = lm.module(lm.mlp_down[0])
    assert type(conv).__name__ == "Conv1D"
    w = int8.weight_matrix(conv)
    x = torch.randn(5, w.shape[1])
    assert torch.allclose(x @ w.t() + conv.bias, conv(x), atol=1e-5)
    q = int8.quantize_linears(lm.model)
    assert type(q.get_submodule(lm.mlp_down[0])).__name__ == "Int8Linear"
    assert type(lm.module(lm.mlp_down[0])).__name__ == "Conv1D"
    ids = torch.randint(0, 1000, (2, 8))
    with torch.no_grad():
        a, b = lm.logits(ids), q(ids).logits
    assert ((a - b).norm() / a.norm()).item() < 0.05
    with pytest.raises(TypeError):
        int8.weight_matrix(nn.Conv2d(2, 2, 1))
