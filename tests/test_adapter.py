"""helpers.zoo.open_model: the parts it finds are the right ones (checked by recomputing the model's own outputs from
them), bad models and wrong kinds are refused with a clear message, and nothing is left on the model."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import helpers
from helpers.zoo import adapter
from helpers.zoo.adapter import UnsupportedModelError, WrongKindError, open_model, open_models
from helpers.zoo.image_adapter import ImageModel
from helpers.zoo.info import ModelInfo
from helpers.zoo.text_adapter import TextModel, read_prompts

TEXT = ["tinyworld-gpt", "random:gpt2", "random:llama", "random:gpt_neox", "random:mistral"]
IMAGE = ["wild-cnn", "random:resnet50", "random:vit_b_16", "random:convnext_tiny", "random:efficientnet_b0"]


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.fixture(scope="module", params=TEXT)
def lm(request) -> TextModel:
    torch.manual_seed(0)
    return open_model(request.param, ("text",), default="tinyworld-gpt", device="cpu")


@pytest.fixture(scope="module", params=IMAGE)
def net(request) -> ImageModel:
    torch.manual_seed(0)
    return open_model(request.param, ("image",), default="wild-cnn", device="cpu")


def test_text_parts_recompute_the_logits(lm):
    ids = lm.sequences(2, 12, seed=1)
    assert ids.shape == (2, 12)
    names = [lm.blocks[-1], lm.final_norm, *lm.blocks, *lm.attn, *lm.mlp]
    with torch.no_grad(), helpers.capture(lm.model, names) as acts:
        logits = lm.logits(ids)
    assert logits.shape == (2, 12, lm.vocab_size)
    # the lens: unembed(final_norm(last residual)) is the model's own output
    lens = lm.module(lm.unembed)(lm.module(lm.final_norm)(acts[lm.blocks[-1]]))
    torch.testing.assert_close(lens, logits, atol=1e-4, rtol=1e-4)
    # a block adds its attention and MLP outputs to the residual stream (sequential blocks)
    if lm.spec != "random:gpt_neox":  # GPT-NeoX runs attention and MLP in parallel from one input; the sum holds too
        for i in range(1, lm.n_layers):
            torch.testing.assert_close(acts[lm.blocks[i]], acts[lm.blocks[i - 1]] + acts[lm.attn[i]] + acts[lm.mlp[i]],
                                       atol=1e-4, rtol=1e-4)
    assert acts[lm.blocks[0]].shape == (2, 12, lm.d_model)
    assert _no_hooks(lm.model)


def test_mlp_down_takes_the_hidden_activations(lm):
    down = lm.module(lm.mlp_down[0])
    width = down.weight.shape[1] if isinstance(down, nn.Linear) else down.weight.shape[0]  # Conv1D stores (in, out)
    assert width > lm.d_model  # the MLP's hidden layer is wider than the stream
    assert lm.module(lm.embed).weight.shape == (lm.vocab_size, lm.d_model)


def test_text_tokens(lm):
    assert lm.decode(lm.encode("the capital of france is")).strip().endswith("france is")
    assert isinstance(lm.word_id("paris"), int) and 0 <= lm.word_id("paris") < lm.vocab_size
    ids, kept = lm.batch(["the dog says woof", "the cat says meow", "the dog says woof"])
    assert ids.shape[0] == len(kept) >= 2 and 0 in kept


def test_tinyworld_sequences_are_the_lessons_held_out_text():
    from helpers.data import tinyworld
    lm = open_model("tinyworld-gpt", ("text",), default="tinyworld-gpt", device="cpu")
    corpus = tinyworld.Corpus(tinyworld.CorpusConfig(n_ctx=64), seed=10_003)
    assert torch.equal(lm.sequences(4, 64, seed=3), corpus.batch(4)[:, :-1])
    assert lm.is_default


def test_image_parts(net):
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), helpers.capture(net.model, [net.feature_layer, net.head]) as acts:
        logits = net.logits(images)
    assert logits.shape == (3, net.n_classes) and logits.abs().sum() > 0  # (torchvision's ViT head starts at zero)
    torch.testing.assert_close(acts[net.head], logits)  # the head's output is the logits
    grid = net.grid(acts[net.feature_layer])
    assert grid.dim() == 4 and grid.shape[0] == 3 and grid.shape[-1] == grid.shape[-2] > 1
    if not net.is_vit and "convnext" not in net.spec:  # the head reads the spatial mean of the feature map
        # (ConvNeXt normalises the pooled features first, a ViT reads its class token)
        pooled = grid.mean((2, 3))
        torch.testing.assert_close(net.module(net.head)(pooled), logits, atol=1e-4, rtol=1e-4)
    assert len(net.blocks) >= 3 and all(b in dict(net.model.named_modules()) for b in net.blocks)
    assert _no_hooks(net.model)


def test_prepare_resizes_and_normalises():
    net = open_model("random:vit_b_16", ("image",), device="cpu")
    x = net.prepare(torch.full((2, 3, 64, 64), 0.5))
    assert x.shape == (2, 3, 96, 96) and net.is_vit
    assert abs(float(x[0, 0, 0, 0]) - (0.5 - 0.485) / 0.229) < 1e-4
    wild = open_model("wild-cnn", ("image",), device="cpu")
    assert torch.equal(wild.prepare(torch.full((1, 3, 64, 64), 0.5)), torch.full((1, 3, 64, 64), 0.5))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net.prepare(torch.zeros(3, 64, 64))


def test_wrong_kind_is_refused_before_loading(monkeypatch):
    def no_load(*a, **k):
        raise AssertionError("loaded a model whose name already says it is of the wrong kind")
    monkeypatch.setattr("helpers.zoo.load", no_load)
    for spec, kinds, found in [("random:resnet50", ("text",), "image"), ("tinyworld-gpt", ("image",), "text"),
                               ("wild-captioner", ("text",), "image-captioning"), ("minilm", ("text",), "sentence-encoder")]:
        with pytest.raises(WrongKindError, match="This lesson studies") as err:
            open_model(spec, kinds)
        assert found in str(err.value) and adapter.KINDS[kinds[0]].split(" (")[0] in str(err.value)


def test_bad_arguments():
    with pytest.raises(ValueError, match="kinds must be taken from"):
        open_model("wild-cnn", ("audio",))
    with pytest.raises(TypeError, match="model must be a string"):
        open_model(3, ("image",))
    with pytest.raises(ValueError, match="Unknown random architecture"):
        open_model("random:bert", ("text",))
    with pytest.raises(ValueError, match="Unknown zoo model"):
        open_model("wild-cmn", ("image",))


def test_unmappable_models_name_what_was_found():
    info = ModelInfo("mine", [])
    with pytest.raises(UnsupportedModelError, match="no list of repeated blocks"):
        TextModel.wrap(nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10)), info, "mine", False)
    with pytest.raises(UnsupportedModelError, match="does not give \\(batch, classes\\) logits"):
        ImageModel.wrap(nn.Sequential(nn.Conv2d(3, 4, 3)), info, "mine", False)
    assert adapter.kind_of_model(nn.Linear(2, 2), info) == "unknown"
    from transformers import ViTConfig, ViTForImageClassification
    hf_vit = ViTForImageClassification(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                 intermediate_size=64, image_size=32, patch_size=16))
    assert adapter.kind_of_model(hf_vit, info) == "Hugging Face image"
    assert "torchvision:<name>" in str(adapter._refuse("hf:vit", "Hugging Face image", ("image",)))


def test_open_models_replaces_the_default_of_its_kind():
    models = open_models("random:gpt2", {"text": "tinyworld-gpt", "image": "wild-cnn"}, device="cpu")
    assert models["text"].spec == "random:gpt2" and not models["text"].is_default
    assert models["image"].spec == "wild-cnn" and models["image"].is_default
    defaults = open_models("", {"text": "tinyworld-gpt", "image": "wild-cnn"}, device="cpu")
    assert defaults["text"].is_default and defaults["image"].is_default
    with pytest.raises(WrongKindError):
        open_models("wild-generator", {"text": "tinyworld-gpt", "image": "wild-cnn"})


def test_read_prompts(tmp_path):
    with pytest.raises(FileNotFoundError, match="one prompt per line"):
        read_prompts(str(tmp_path / "none.txt"))
    (tmp_path / "p.txt").write_text("a b\n\n")
    with pytest.raises(ValueError, match="needs at least 3"):
        read_prompts(str(tmp_path / "p.txt"), at_least=3)


def test_random_models_are_reproducible():
    torch.manual_seed(5)
    a = open_model("random:llama", ("text",), device="cpu").model.state_dict()
    torch.manual_seed(5)
    b = open_model("random:llama", ("text",), device="cpu").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
