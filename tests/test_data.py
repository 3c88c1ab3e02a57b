"""helpers.data: Fashion-MNIST checksums, bundled photos, and the generated wild set."""

import gzip

import numpy as np
import pytest
import torch

from helpers.data import (
    CUE_COLOURS, FASHION_CLASSES, HELD_OUT, PHOTO_NAMES, TINT_FAMILIES, fashion_mnist, photos, wild,
)
from helpers.data import fashion
from helpers import ChecksumError


# ---- Fashion-MNIST ---------------------------------------------------------------------------------------------

def test_fashion_mnist_shapes_and_classes():
    x, y, classes = fashion_mnist("test")
    assert x.shape == (10000, 28, 28) and x.dtype == torch.uint8
    assert y.shape == (10000,) and y.dtype == torch.int64
    assert classes == FASHION_CLASSES and len(classes) == 10
    assert torch.bincount(y).tolist() == [1000] * 10  # the test split is balanced


def test_fashion_mnist_returns_copies():
    x, _, _ = fashion_mnist("test")
    x.zero_()
    assert fashion_mnist("test").images.max() > 0


def test_bad_checksum_raises(tmp_path):
    # right names, wrong content: a valid-looking idx header followed by zeros
    for name in fashion.FILES["test"]:
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + bytes(100)))
    with pytest.raises(match="SHA-256"):
        fashion_mnist("test", root=tmp_path)


def test_missing_files_name_the_apt_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist("test", root=tmp_path)


def test_unknown_split_lists_valid_ones():
    with pytest.raises(ValueError, match="train"):
        fashion_mnist("validation")


# ---- photos ----------------------------------------------------------------------------------------------------

def test_photos_are_rgb_uint8():
    p = photos()
    assert list(p) == list(PHOTO_NAMES) and len(p) >= 10
    for name, img in p.items():
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8, name
        assert min(img.shape[:2]) >= 150, name  # large enough for 64 px crops
        assert img.std() > 5, name  # a real picture, not a blank


def test_photos_equal_the_library_loaders():
    import skimage.data

    assert np.array_equal(photos(["coffee"])["coffee"], skimage.data.coffee())
    assert np.array_equal(photos(["camera"])["camera"][:, :, 1], skimage.data.camera())


def test_unknown_photo_raises():
    with pytest.raises(ValueError, match="astronaut"):
        photos(["eagle"])  # in skimage.data, but fetched over the network: not ours


# ---- wild ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def train_set():
    return wild(600, "train", seed=3)


def test_wild_is_deterministic(train_set):
    again = wild(600, "train", seed=3)
    for key in ("images", "masks", "boxes", "labels", "tints", "backgrounds", "sources"):
        assert torch.equal(getattr(train_set, key), getattr(again, key)), key
    other = wild(600, "train", seed=4)
    assert not torch.equal(train_set.images, other.images)


def test_wild_fields(train_set):
    ds, n = train_set, 600
    assert ds.images.shape == (n, 3, 64, 64) and ds.images.dtype == torch.float32
    assert 0 <= ds.images.min() and ds.images.max() <= 1
    assert ds.masks.shape == (n, 64, 64) and ds.masks.dtype == torch.bool
    assert ds.boxes.shape == (n, 4)
    assert len(ds.classes) == 10 - len(HELD_OUT)
    assert (ds.targets >= 0).all() and (ds.targets < len(ds.classes)).all()
    assert all(ds.classes[t] == FASHION_CLASSES[c] for t, c in zip(ds.targets.tolist(), ds.labels.tolist()))
    assert set(ds.tints.tolist()) == set(range(len(TINT_FAMILIES)))
    assert set(ds.backgrounds.tolist()) == set(range(len(PHOTO_NAMES)))
    assert (ds.cues == -1).all()
    assert len(ds) == n and ds[0][0].shape == (3, 64, 64)
    assert "masks" in repr(ds) and ds.caption(0).split(" on ")[1] in PHOTO_NAMES


def test_wild_boxes_bound_the_masks(train_set):
    ds = train_set
    area = ds.masks.float().mean((1, 2))
    assert (area > 0.02).all() and (area < 0.6).all()
    for i in range(0, len(ds), 25):
        ys, xs = ds.masks[i].nonzero(as_tuple=True)
        expected = [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
        assert ds.boxes[i].tolist() == expected


def test_wild_masks_are_where_the_object_is(monkeypatch):
    # on black backgrounds every lit pixel belongs to the item, so the mask must cover the lit pixels
    import helpers.data.wildset as wild_module

    monkeypatch.setattr(wild_module, "_photo_tensor", lambda name: torch.zeros(3, 160, 240))
    ds = wild(300, "test", seed=5)
    lit = ds.images.amax(1)  # (N, 64, 64)
    assert (lit[ds.masks] > 0.1).all()  # masked pixels show the tinted item (value >= 0.65, shade >= 0.35, alpha >= .5)
    near = torch.nn.functional.max_pool2d(ds.masks[:, None].float(), 5, 1, 2)[:, 0] > 0  # mask grown by 2 px
    assert lit[~near].max() < 0.3  # away from the mask only faint anti-aliased edge pixels remain
    iou = ((lit > 0.2) & ds.masks).sum() / ((lit > 0.2) | ds.masks).sum()
    assert iou > 0.9


def test_cue_changes_only_the_corner():
    plain = wild(64, "test", seed=0)
    cued = wild(64, "test", seed=0, spurious=True)
    diff = (plain.images != cued.images).any(1)  # (N, 64, 64)
    assert diff[:, 10:, :].sum() == 0 and diff[:, :, 10:].sum() == 0 and diff.any()
    assert not cued.masks[:, 1:7, 1:7].any()
    assert torch.equal(plain.masks[:, 10:], cued.masks[:, 10:])


def test_held_out_classes():
    train = wild(1000, "train", seed=0)
    test = wild(1000, "test", seed=0)
    novel = wild(300, "novel", seed=0)
    for ds in (train, test):
        assert not torch.isin(ds.labels, torch.tensor(HELD_OUT)).any()
    assert set(novel.labels.tolist()) == set(HELD_OUT)
    assert (novel.targets == -1).all()
    with pytest.raises(ValueError, match="novel"):
        wild(10, "validation")


def test_wild_uses_the_matching_fashion_split():
    x_test = fashion_mnist("test").images
    ds = wild(50, "test", seed=0)
    assert torch.equal(fashion_mnist("test").labels[ds.sources], ds.labels)
    assert ds.sources.max() < len(x_test)
    # no repeats until the pool (2 classes x 1000 test items) is used up, then a fresh permutation
    sources = wild(2100, "novel", seed=0).sources
    assert len(set(sources[:2000].tolist())) == 2000 and len(set(sources.tolist())) == 2000


def test_spurious_cue_agreement():
    n = 2000
    agree = wild(n, "train", seed=0, spurious=True, cue_agreement=1.0)
    assert torch.equal(agree.cues, agree.labels)
    # the square shows the cue colour
    assert torch.allclose(agree.images[:, :, 3, 3], CUE_COLOURS[agree.labels])
    mostly = wild(n, "train", seed=0, spurious=True, cue_agreement=0.8)
    rate = (mostly.cues == mostly.labels).float().mean().item()
    assert abs(rate - 0.8) < 0.03
    assert ((mostly.cues >= 0) & (mostly.cues < 10)).all()
    rand = wild(n, "test", seed=0, spurious=True, cue_agreement=0.1)
    assert abs((rand.cues == rand.labels).float().mean().item() - 0.1) < 0.03


def test_wild_speed():
    import time

    wild(10, "train", seed=0)  # warm caches (file reads, photo resizing)
    t = time.perf_counter()
    wild(2000, "train", seed=1)
    assert time.perf_counter() - t < 5.0  # about 0.5 s on a free core
