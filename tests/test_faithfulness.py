"""helpers.explain.faithfulness: parity with manual computations and scipy, and the error cases."""
import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from helpers.explain import faithfulness as fa
from helpers.ops import image, metrics


class RegionModel(nn.Module):
    """Two logits: the mean of the top-left quadrant's red channel (class 0) and minus it (class 1)."""

    def forward(self, x):
        s = x[:, 0, : x.shape[2] // 2, : x.shape[3] // 2].mean((1, 2)) * 10
        return torch.stack([s, -s], 1)


def test_perturbation_curve_matches_a_manual_loop():
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3)).eval()
    images, maps = torch.rand(3, 3, 8, 8, generator=gen), torch.rand(3, 8, 8, generator=gen)
    targets = torch.tensor([0, 2, 1])
    for mode in fa.MODES:
        got = fa.perturbation_curve(model, images, maps, targets, mode, steps=4, baseline="mean", batch_size=7)
        base = images.mean((2, 3), keepdim=True).expand_as(images)
        for b in range(3):
            order = maps[b].flatten().argsort(descending=True, stable=True)
            for i, k in enumerate([0, 16, 32, 48, 64]):
                top = torch.zeros(64, dtype=torch.bool)
                top[order[:k]] = True
                top = top.view(1, 8, 8)
                x = torch.where(top, base[b], images[b]) if mode == "deletion" else torch.where(top, images[b], base[b])
                p = model(x[None]).softmax(1)[0, targets[b]]
                assert abs(got[b, i].item() - p.item()) < 1e-5


def test_deletion_and_insertion_end_points_and_order():
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.5
    model = RegionModel()
    good = torch.zeros(2, 4, 4)
    good[:, :2, :2] = 1  # the region the model reads, at a coarser resolution (resized inside)
    bad = 1 - good
    full = model(images).softmax(1)[:, 0]
    zero = model(torch.zeros_like(images)).softmax(1)[:, 0]
    dele = fa.perturbation_curve(model, images, good, [0, 0], "deletion", steps=8, baseline="zero")
    ins = fa.perturbation_curve(model, images, good, [0, 0], "insertion", steps=8, baseline="zero")
    torch.testing.assert_close(dele[:, 0], full)
    torch.testing.assert_close(dele[:, -1], zero)
    torch.testing.assert_close(ins[:, 0], zero)
    torch.testing.assert_close(ins[:, -1], full)
    bad_del = fa.perturbation_curve(model, images, bad, [0, 0], "deletion", steps=8, baseline="zero")
    assert (fa.auc(dele) < fa.auc(bad_del) - 0.1).all()  # the right order deletes the evidence first


def test_auc_and_blur():
    assert torch.allclose(fa.auc(torch.tensor([[1.0, 0.5, 0.0]])), torch.tensor([0.5]))
    flat = torch.full((1, 3, 12, 12), 0.3)
    assert torch.allclose(image.gaussian_blur(flat, 2.0), flat)  # a blur keeps constants (kernel sums to 1)
    noisy = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    assert image.gaussian_blur(noisy, 2.0).std() < noisy.std() / 2
    tiny = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    assert fa.baseline_images(tiny, "blur", sigma=5.0).shape == tiny.shape  # radius capped below the side
    with pytest.raises(ValueError, match="sigma > 0"):
        fa.baseline_images(tiny, "blur", sigma=0.0)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        image.gaussian_blur(tiny, -1.0)


def test_pointing_energy_and_chance_by_hand():
    maps = torch.zeros(2, 4, 4)
    maps[0, 0, 0], maps[1, 3, 3] = 1.0, 2.0
    maps[1, 0, 0] = 1.0
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[:, 0:2, 0:2] = True
    assert fa.pointing_game(maps, masks).tolist() == [True, False]
    assert fa.pointing_game(maps, masks, tolerance=2).tolist() == [True, True]
    assert torch.allclose(fa.energy_in_zone(maps, masks), torch.tensor([1.0, 1 / 3]))
    assert torch.allclose(fa.pointing_chance(masks), torch.tensor([0.25, 0.25]))
    assert torch.allclose(fa.pointing_chance(masks, tolerance=1), torch.tensor([9 / 16, 9 / 16]))
    # one (H, W) zone is shared by every image; coarse maps are resized to the mask's size
    zone = torch.zeros(8, 8, dtype=torch.bool)
    zone[:4, :4] = True
    assert torch.allclose(fa.energy_in_zone(torch.ones(2, 2, 2), zone), torch.tensor([0.25, 0.25]))


def test_spearman_matches_scipy_with_ties():
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 4, (5, 30), generator=gen).float()  # many ties
    b = torch.rand(5, 30, generator=gen)
    got = metrics.spearman(a, b)
    expected = [spearmanr(a[i].numpy(), b[i].numpy()).statistic for i in range(5)]
    assert np.allclose(got.numpy(), expected, atol=1e-6)
    assert torch.isnan(metrics.spearman(torch.zeros(1, 5), torch.rand(1, 5))).all()  # constant map: undefined


def test_cascading_randomization_is_cumulative_and_leaves_the_model_alone():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    net[1].running_mean.fill_(3.0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng_before = torch.random.get_rng_state()
    stages = []
    for name, model in fa.cascading_randomization(net, ["2", "1", "0"], seed=5):
        stages.append((name, {k: v.clone() for k, v in model.state_dict().items()}))
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the global RNG is not consumed
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    (_, s0), (_, s1), (_, s2) = stages
    assert not torch.equal(s0["2.weight"], before["2.weight"]) and torch.equal(s0["0.weight"], before["0.weight"])
    assert torch.equal(s1["2.weight"], s0["2.weight"]) and torch.equal(s1["1.running_mean"], torch.zeros(4))
    assert not torch.equal(s2["0.weight"], before["0.weight"]) and torch.equal(s2["2.weight"], s0["2.weight"])
    with pytest.raises(ValueError, match="unknown layer"):
        next(fa.cascading_randomization(net, ["3"]))


def test_threshold_iou_and_seeds_by_hand():
    maps = torch.tensor([[[0.0, 0.2, 0.6, 1.0]]])  # minmax keeps it
    masks = torch.tensor([[[False, False, True, True]]])
    iou = fa.threshold_iou(maps, masks, [0.1, 0.5, 0.8])
    assert torch.allclose(iou, torch.tensor([[2 / 3, 1.0, 0.5]]))
    s = fa.seed_precision(maps, masks, fg=0.5, bg=0.1)
    assert s["fg_precision"].item() == 1.0 and s["bg_precision"].item() == 1.0
    assert s["fg_recall"].item() == 1.0 and abs(s["ignored"].item() - 0.25) < 1e-6
    s = fa.seed_precision(maps, masks, fg=0.1, bg=0.1)
    assert abs(s["fg_precision"].item() - 2 / 3) < 1e-6


def test_errors_name_the_valid_choices():
    model, images, maps = RegionModel(), torch.rand(2, 3, 8, 8), torch.rand(2, 8, 8)
    with pytest.raises(ValueError, match="deletion"):
        fa.perturbation_curve(model, images, maps, [0, 1], "erase")
    with pytest.raises(ValueError, match="blur"):
        fa.perturbation_curve(model, images, maps, [0, 1], baseline="noise")
    with pytest.raises(ValueError, match="one integer class id per image"):
        fa.perturbation_curve(model, images, maps, [0])
    with pytest.raises(ValueError, match="masks must be"):
        fa.energy_in_zone(maps, torch.ones(3, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B, h, w\)"):
        fa.pointing_game(torch.rand(8, 8), torch.ones(1, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="bg <= fg"):
        fa.seed_precision(maps, maps > 0.5, fg=0.2, bg=0.5)


def test_overlay_grid_one_panel_per_image():
    import matplotlib.pyplot as plt

    from helpers import plot

    fig = plot.overlay_grid(torch.rand(5, 3, 16, 16), torch.rand(5, 4, 4), titles=list("abcde"), cols=3)
    assert len(fig.axes) == 6 and [ax.get_title() for ax in fig.axes[:5]] == list("abcde")
    plt.close(fig)
    with pytest.raises(ValueError, match="one heatmap per image"):
        plot.overlay_grid(torch.rand(2, 3, 8, 8), torch.rand(3, 4, 4))


def test_deletion_steps_match_pytorch_grad_cam_perturbation_metric():
    # pytorch-grad-cam removes the pixels at or above a percentile of the map and imputes them; with a mean-colour
    # imputer and a percentile halfway between two map values it removes exactly our top-k pixels
    from pytorch_grad_cam.metrics.perturbation_confidence import PerturbationConfidenceMetric, RemoveMostRelevantFirst
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    gen = torch.Generator().manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(16, 3)).eval()
    images, maps = torch.rand(2, 3, 10, 10, generator=gen), torch.rand(2, 10, 10, generator=gen)  # no ties
    targets = [2, 0]
    steps, side = 5, 100
    ours = fa.perturbation_curve(model, images, maps, targets, "deletion", steps=steps, baseline="mean")

    def mean_imputer(image, keep):  # keep: (H, W) 1 where the pixel stays
        return torch.where(keep.bool()[None], image, image.mean((1, 2), keepdim=True))

    for i in range(1, steps):
        k = side - round(i * side / steps)  # pixels kept
        metric = PerturbationConfidenceMetric(RemoveMostRelevantFirst(100 * (k - 0.5) / (side - 1), mean_imputer))
        theirs = metric(images, maps.numpy(), [ClassifierOutputSoftmaxTarget(t) for t in targets], model,
                        return_diff=False)
        assert np.allclose(theirs, ours[:, i].numpy(), atol=1e-6), (i, theirs, ours[:, i])
