"""wild-cnn: the architecture, the training script (a few steps), and the committed weights' recorded accuracy."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from helpers.data import wild
from helpers.models.cnn import WildCNN, WildCNNConfig, load_wild_cnn

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "data" / "zoo"


def _train_script():
    """The training script as a module (it is a script, not part of the package)."""
    if "train_wild_cnn" not in sys.modules:
        spec = importlib.util.spec_from_file_location("train_wild_cnn", ROOT / "zoo" / "train_wild_cnn.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["train_wild_cnn"] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
    return sys.modules["train_wild_cnn"]


def test_architecture_names_and_shapes():
    net = WildCNN(WildCNNConfig()).eval()
    names = dict(net.named_modules())
    for name in ("blocks.0", "blocks.1", "blocks.2", "blocks.2.conv1", "blocks.2.bn2", "blocks.2.relu2", "pool", "head"):
        assert name in names, name
    x = torch.rand(2, 3, 64, 64)
    maps = net.blocks(x)
    assert maps.shape == (2, 128, 16, 16)  # 16x16 last-block maps at 64 px
    feats = net.pool(maps)
    assert feats.shape == (2, 128)
    assert torch.allclose(net.head(feats), net(x))
    assert not any(isinstance(m, torch.nn.ReLU) and m.inplace for m in net.modules())


def test_config_validation():
    with pytest.raises(ValueError, match="equally long"):
        WildCNNConfig(channels=(8, 16), convs=(1,), strides=(2, 2))


def test_train_script_runs_a_few_steps(tmp_path):
    script = _train_script()
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    try:
        script.main(["--steps", "3", "--out", str(tmp_path), "--eval-n", "64"])
    finally:
        torch.set_num_threads(threads)
    for name in ("wild-cnn", "wild-cnn-spurious"):
        model, info = load_wild_cnn(tmp_path / f"{name}.safetensors")  # checks the SHA-256 too
        assert info["images_seen"] == 3 * info["train_config"]["batch"]
        assert 0 <= info["accuracy"]["test"] <= 1 and info["params"] == sum(p.numel() for p in model.parameters())
    assert {"cue_consistent", "cue_free", "cue_random"} <= set(info["accuracy"])


def test_tampered_weights_are_refused(tmp_path):
    script = _train_script()
    threads = torch.get_num_threads()
    try:
        script.main(["--steps", "1", "--out", str(tmp_path), "--eval-n", "16", "--only", "wild-cnn"])
    finally:
        torch.set_num_threads(threads)
    info_path = tmp_path / "wild-cnn.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "sha256": "0" * 64}))
    with pytest.raises(RuntimeError, match="SHA-256"):
        load_wild_cnn(tmp_path / "wild-cnn.safetensors")


@pytest.fixture(scope="module")
def committed():
    models = {name: load_wild_cnn(ZOO / f"{name}.safetensors") for name in ("wild-cnn", "wild-cnn-spurious")}
    info = models["wild-cnn"][1]
    clean = wild(info["eval"]["n"], "test", info["eval"]["seed"])
    return models, clean


def test_committed_weights_reproduce_recorded_accuracy(committed):
    script = _train_script()
    models, clean = committed
    for name, (model, info) in models.items():
        assert (ZOO / info["weights"]).stat().st_size < 5e6
        acc = script.accuracy(model, clean.images, clean.targets)
        assert abs(acc - info["accuracy"]["test"]) <= 0.01, (name, acc, info["accuracy"])
    assert models["wild-cnn"][1]["accuracy"]["test"] > 0.6  # 8 classes: chance is 0.125


def test_spurious_model_relies_on_the_cue(committed):
    script = _train_script()
    models, clean = committed
    model, info = models["wild-cnn-spurious"]
    n, seed = info["eval"]["n"], info["eval"]["seed"]
    cued = wild(n, "test", seed, spurious=True, cue_agreement=1.0)
    acc = script.accuracy(model, cued.images, cued.targets)
    assert abs(acc - info["accuracy"]["cue_consistent"]) <= 0.01
    assert info["accuracy"]["cue_free"] < info["accuracy"]["cue_consistent"] - 0.1  # measurably worse without the cue
