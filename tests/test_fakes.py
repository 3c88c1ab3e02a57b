"""helpers.data.fakes and helpers.models.generator: the committed generator, real/generated sets with ground truth, artefact maps, the detector."""
from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
import torch

from helpers.data import fakes
from helpers.data import wild
from helpers.core.paths import ROOT
from helpers import ChecksumError, layers
from helpers.explain import fake_detection
from helpers.core.paths import ZOO_DIR
from helpers.models.generator import load_generator
from helpers.ops import batching, image, metrics


GENERATOR = ZOO_DIR / "wild-generator" / "model.safetensors"


@pytest.fixture(scope="module")
def generator():
    gen, info = load_generator(GENERATOR)
    return gen


@pytest.fixture(scope="module")
def small_set(generator):
    return fakes.make_fakes(wild(40, "test", seed=3), generator, seed=3)


def test_generator_loads_with_provenance_and_keeps_shape(generator):
    _, info = load_generator(GENERATOR)
    assert len(info["sha256"]) == 64 and info["psnr_test_db"] > 18
    x = wild(8, "test", seed=0).images
    y = batching.predict(generator, x, batch=3)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    # a reconstruction, not a copy and not noise
    assert 0 < (y - x).pow(2).mean() < 0.02
    # the same weights through the zoo's one entry point
    from helpers import zoo
    via_zoo, zoo_info = zoo.load("wild-generator", device="cpu")
    assert zoo_info.name == "wild-generator" and not via_zoo.training
    assert torch.allclose(batching.predict(via_zoo, x[:2], batch=3), y[:2], atol=1e-5)


def test_generator_checksum_is_verified(tmp_path):
    shutil.copytree(GENERATOR.parent, tmp_path / "g")
    meta = json.loads((tmp_path / "g" / "model.json").read_text())
    meta["sha256"] = "0" * 64
    (tmp_path / "g" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ChecksumError, match="train_fake_generator"):
        load_generator(tmp_path / "g" / "model.safetensors")
    with pytest.raises(FileNotFoundError, match="no weights"):
        load_generator(tmp_path / "missing" / "model.safetensors")


def test_make_fakes_layout_and_ground_truth(small_set, generator):
    ds = small_set
    assert repr(ds) == "FakeSet(n=40: real=20, full=10, window=10; images (40, 3, 64, 64))"
    assert torch.equal(ds.is_fake, (ds.kinds > 0).long())
    real, full, win = ds.kind("real"), ds.kind("full"), ds.kind("window")
    assert torch.equal(real.images, real.sources) and not real.regions.any()
    assert full.regions.all()
    assert torch.allclose(full.images, batching.predict(generator, full.sources))
    # window fakes: the source outside the square, the generator's output inside it
    out = batching.predict(generator, win.sources)
    inside = win.regions[:, None].expand_as(win.images)
    assert torch.equal(win.images[~inside], win.sources[~inside])
    assert torch.allclose(win.images[inside], out[inside])
    sides = win.regions.any(1).sum(1)
    assert torch.equal(sides, win.regions.any(2).sum(1)) and sides.min() >= 24 and sides.max() <= 40
    with pytest.raises(ValueError, match="window_fraction"):
        fakes.make_fakes(wild(4, "test"), generator, window_fraction=2)
    only_windows = fakes.make_fakes(wild(6, "test"), generator, real_fraction=0.0, window_fraction=1.0)
    assert only_windows.kinds.tolist() == [2] * 6
    with pytest.raises(ValueError, match="valid"):
        ds.kind("fake")


def test_split_is_stratified_and_disjoint(small_set):
    train, held = fakes.split(small_set, 0.75, seed=0)
    assert len(train) + len(held) == len(small_set)
    for k in range(len(fakes.KINDS)):
        assert (train.kinds == k).sum() > 0 and (held.kinds == k).sum() > 0
    key = lambda s: {tuple(x.flatten()[:16].tolist()) for x in s.images}  # noqa: E731
    assert not key(train) & key(held)


def test_random_windows_are_squares_inside_the_image():
    g = torch.Generator().manual_seed(0)
    w = fakes.random_windows(50, 64, (5, 20), g)
    rows, cols = w.any(2).sum(1), w.any(1).sum(1)
    assert torch.equal(w.sum((1, 2)), rows * cols) and torch.equal(rows, cols)
    assert rows.min() >= 5 and rows.max() <= 20
    with pytest.raises(ValueError):
        fakes.random_windows(2, 64, (30, 70))


def test_artefact_map_is_high_pass_residual_energy():
    x = torch.rand(2, 3, 16, 16)
    flat_shift = x + 0.1  # a uniform colour change is not an artefact
    assert fakes.artefact_map(flat_shift, x).max() < 1e-10
    checker = x.clone()
    checker[:, :, ::2, ::2] += 0.2  # a checkerboard is
    manual_r = checker - x
    manual = (manual_r - torch.nn.functional.avg_pool2d(manual_r, 3, 1, 1, count_include_pad=False)).pow(2).sum(1)
    assert torch.allclose(fakes.artefact_map(checker, x), manual)
    assert fakes.artefact_map(checker, x).mean() > 0.01
    with pytest.raises(ValueError):
        fakes.artefact_map(x, x[:, :2])


def test_log_spectrum_finds_a_checkerboard_at_nyquist():
    img = torch.zeros(1, 3, 32, 32)
    img[:, :, ::2, ::2] = 1.0
    spec = image.log_spectrum(img)[0]
    assert spec.argmax().item() in {16 * 32 + 16, 16, 16 * 32}  # the Nyquist frequencies
    assert torch.allclose(spec, torch.fft.fft2(img.mean(1)[0] - img.mean()).abs().clamp_min(1e-8).log())


def test_detector_learns_a_planted_difference_quickly():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 3, 32, 32, generator=g) * 0.5  # small images: the net pools globally, any size works
    y = torch.arange(32) % 2
    x[y == 1, :, ::2, ::2] += 0.5  # "generated" images carry a checkerboard
    net, losses = fake_detection.train_detector(x, y, fake_detection.DetectorTrainConfig(steps=25, batch=16, lr=3e-3))
    assert metrics.accuracy(batching.predict(net, x), y) > 0.9 and losses[-1] < losses[0]
    assert not net.training
    # blocks.2 is the layer the lessons explain with CAMs: 32 channels at a quarter of the input side
    assert layers(net, x[:1], pattern="blocks.2")[0].shape == (1, 32, 8, 8)
    with pytest.raises(ValueError):
        fake_detection.train_detector(x, y[:3])


def test_training_script_smoke_run(tmp_path):
    out = tmp_path / "gen"
    spec = importlib.util.spec_from_file_location("train_fake_generator", ROOT / "zoo" / "train_fake_generator.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)  # in-process: a subprocess would pay the torch import again
    script.main(["--steps", "2", "--n-train", "64", "--eval-n", "16", "--out", str(out)])
    gen, info = load_generator(out / "model.safetensors")
    assert info["train_config"]["steps"] == 2 and "command" in info
