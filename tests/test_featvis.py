"""helpers.explain.featvis: regularisers, the frequency measure, parameterisations, the optimiser, dataset examples, facets."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from helpers.explain import featvis as fv
from helpers.ops import image, linalg


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny tensors: with 2 threads on a busy 2-core machine, OpenMP spin-waiting made these tests ~5x slower
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 4))
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


def test_total_variation_and_l2_match_a_manual_loop():
    x = torch.rand(2, 3, 5, 6, generator=torch.Generator().manual_seed(0))
    for b in range(2):
        img = x[b].numpy()
        dy = np.abs(np.diff(img, axis=1)).mean()
        dx = np.abs(np.diff(img, axis=2)).mean()
        assert fv.total_variation(x)[b].item() == pytest.approx(dy + dx, rel=1e-5)
        assert fv.l2_penalty(x)[b].item() == pytest.approx(((img - 0.5) ** 2).mean(), rel=1e-5)
    assert fv.total_variation(torch.full((1, 3, 4, 4), 0.7)).item() == 0.0


def test_gaussian_blur_equals_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    for sigma in (0.5, 1.0, 2.0):
        radius = max(1, int(3 * sigma))
        # scipy's "mirror" is torch's "reflect" (the edge pixel is not repeated); blur only the two image axes
        ref = ndimage.gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma), mode="mirror", truncate=radius / sigma)
        assert (image.gaussian_blur(x, sigma) - torch.from_numpy(ref)).abs().max() < 1e-5
    assert torch.equal(image.gaussian_blur(x, 0.0), x)


def test_high_frequency_energy_on_known_signals():
    n = 64
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    slow = torch.sin(2 * math.pi * xx / 32).expand(1, 3, n, n)  # 1/32 cycles/px = 1/16 of Nyquist
    fast = torch.sin(2 * math.pi * xx / 2.5).expand(1, 3, n, n)  # 0.4 cycles/px = 0.8 of Nyquist
    assert image.high_frequency_energy(slow).item() < 1e-6
    assert image.high_frequency_energy(fast).item() > 0.99
    assert image.high_frequency_energy(torch.full((1, 3, n, n), 0.3)).item() == 0.0
    noise = torch.rand(4, 3, n, n, generator=torch.Generator().manual_seed(0))
    white = image.high_frequency_energy(noise, cutoff=0.25).mean().item()
    assert white == pytest.approx(1 - math.pi / 4 * 0.25 ** 2, abs=0.01)  # area outside the cutoff circle
    assert (image.high_frequency_energy(image.gaussian_blur(noise, 2.0)) < 0.5 * white).all()
    with pytest.raises(ValueError, match="cutoff"):
        image.high_frequency_energy(noise, cutoff=0)


@pytest.mark.parametrize("param", fv.PARAMS)
def test_parameterisations_round_trip(param):
    x = torch.rand(2, 3, 12, 10, generator=torch.Generator().manual_seed(2)).clamp(0.01, 0.99)
    z = fv.param_of(x, param)
    back = fv.image_of(z, param, size=(12, 10))
    assert (back - x).abs().max() < 1e-4
    with pytest.raises(ValueError, match="valid: sigmoid, fourier"):
        fv.param_of(x, "pixels")


def test_unit_objective_reads_logits_and_channel_means():
    net = _net()
    x = torch.rand(3, 3, 8, 8)
    with torch.no_grad():
        logits = net(x)
        fmap = net[:4](x)  # output of layer "3" (ReLU), (3, 5, 8, 8)
    assert torch.allclose(fv.unit_objective(net, "6", 2)(x), logits[:, 2])
    assert torch.allclose(fv.unit_objective(net, "3", 4)(x), fmap[:, 4].mean(dim=(1, 2)))
    per_image = fv.unit_objective(net, "6", [0, 3, 1])(x)
    assert torch.allclose(per_image, logits[[0, 1, 2], [0, 3, 1]])
    with pytest.raises(ValueError, match="4 units"):
        fv.unit_objective(net, "6", 4)(x)
    with pytest.raises(ValueError, match="one per image"):
        fv.unit_objective(net, "6", [0, 1])(x)
    with pytest.raises(ValueError, match="expected"):
        fv.unit_objective(nn.Sequential(nn.Identity()), "0", 0)(torch.rand(2, 3, 4))


def test_unit_objective_reads_a_view_of_the_layer():
    # tokens (B, 1 + 4, D) -> a 2 x 2 grid of D channels without the first token, as a ViT adapter's grid() does
    net = nn.Sequential(nn.Identity(), nn.Flatten(1), nn.Unflatten(1, (5, 9)))  # (B, 5, 9) token features
    x = torch.rand(2, 5, 9)
    grid = lambda a: a[:, 1:].transpose(1, 2).reshape(len(a), 9, 2, 2)
    assert torch.allclose(fv.unit_objective(net, "2", 4, view=grid)(x), x[:, 1:, 4].mean(dim=1))
    with pytest.raises(ValueError, match="expected"):
        fv.unit_objective(net, "2", 4)(x)  # the raw (B, T, D) tokens are neither logits nor a map


def test_top_examples_match_a_manual_ranking():
    net = _net()
    images = torch.rand(40, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    obj = fv.unit_objective(net, "6", 1)
    values, idx = fv.top_examples(obj, images, k=5, batch_size=7)  # batches that do not divide 40
    with torch.no_grad():
        ref = net(images)[:, 1]
    assert torch.equal(idx, ref.argsort(descending=True)[:5])
    assert torch.allclose(values, ref[idx])
    with pytest.raises(ValueError, match="k must be"):
        fv.top_examples(obj, images, k=41)


def test_optimise_raises_the_objective_and_regularisers_smooth():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 5, padding=2), nn.ReLU())  # random 5x5 filters: white, high-frequency
    with torch.no_grad():
        net[0].weight.normal_(0, 1)
    obj = fv.unit_objective(net, "1", 0)
    init = fv.random_init(2, 16, seed=0)
    plain = fv.optimise(obj, init, fv.AMConfig.plain(steps=40, lr=0.1))
    config = fv.AMConfig(steps=40, lr=0.1, tv=1.0, blur_sigma=1.0, blur_every=2)
    smooth = fv.optimise(obj, init, config)
    start = obj(init)
    assert (plain.activations > 2 * start).all() and (smooth.activations > 2 * start).all()
    assert plain.history.shape == (40, 2)
    hf_plain = image.high_frequency_energy(plain.images).mean()
    hf_smooth = image.high_frequency_energy(smooth.images).mean()
    assert hf_smooth < 0.5 * hf_plain, (hf_smooth, hf_plain)
    assert plain.images.min() >= 0 and plain.images.max() <= 1
    again = fv.optimise(obj, init, config)
    assert torch.equal(again.images, smooth.images)  # deterministic for a given config.seed
    fourier = fv.optimise(obj, init, fv.AMConfig.plain(steps=40, lr=0.1, param="fourier"))
    assert (fourier.activations > start).all()


def test_optimise_matches_a_hand_written_loop():
    net = _net()
    obj = fv.unit_objective(net, "6", 3)
    init = fv.random_init(1, 12, seed=1)
    cfg = fv.AMConfig(steps=10, lr=0.05, jitter=2, blur_sigma=0.5, blur_every=3, tv=2.0, l2=1.0, seed=4)
    out = fv.optimise(obj, init, cfg)
    gen = torch.Generator().manual_seed(4)
    z = torch.logit(init.clamp(fv.EPS, 1 - fv.EPS)).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.05)
    for step in range(10):
        x = torch.sigmoid(z)
        dy, dx = torch.randint(-2, 3, (2,), generator=gen).tolist()
        act = obj(torch.roll(x, (dy, dx), (2, 3)))
        loss = -act.sum() + 2.0 * fv.total_variation(x).sum() + 1.0 * fv.l2_penalty(x).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 3 == 0:
            with torch.no_grad():
                z.copy_(torch.logit(image.gaussian_blur(torch.sigmoid(z), 0.5).clamp(fv.EPS, 1 - fv.EPS)))
    assert (torch.sigmoid(z).detach() - out.images).abs().max() < 1e-6


def test_config_and_input_validation():
    with pytest.raises(ValueError, match="valid"):
        fv.AMConfig(param="png")
    with pytest.raises(ValueError, match="steps"):
        fv.AMConfig(steps=0)
    with pytest.raises(ValueError, match="non-negative"):
        fv.AMConfig(tv=-1)
    assert fv.AMConfig().but(tv=0).tv == 0 and fv.AMConfig.plain().jitter == 0
    with pytest.raises(ValueError, match="B, 3, H, W"):
        fv.optimise(lambda x: x.sum(), torch.rand(3, 8, 8))


def test_kmeans_and_pca_agree_with_scikit_learn():
    sk_cluster = pytest.importorskip("sklearn.cluster")
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score

    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0, 0], [6, 0, 0], [0, 6, 0]])
    x = torch.cat([c + torch.randn(30, 3, generator=g) for c in centres])
    labels, found = linalg.kmeans(x, 3, seed=0)
    ref = sk_cluster.KMeans(3, n_init=8, random_state=0).fit(x.numpy())
    assert adjusted_rand_score(ref.labels_, labels.numpy()) == 1.0
    ours = (x - found[labels]).pow(2).sum().item()
    assert ours == pytest.approx(ref.inertia_, rel=1e-4)
    proj = linalg.pca(x, 2)
    sk = torch.from_numpy(PCA(2).fit_transform(x.numpy())).float()
    assert torch.allclose(proj.abs(), sk.abs(), atol=1e-4)  # equal up to the sign of each component
    with pytest.raises(ValueError, match="k must be"):
        linalg.kmeans(x, 0)


def test_find_facets_averages_the_central_members():
    g = torch.Generator().manual_seed(5)
    colours = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
    images = torch.cat([(c[:, None, None] + 0.05 * torch.randn(8, 3, 6, 6, generator=g)) for c in colours])
    facets = fv.find_facets(images, images.mean(dim=(2, 3)), k=3, n_nearest=4)
    assert len(facets.members) == 3 and all(len(m) == 4 for m in facets.members)
    for j, members in enumerate(facets.members):
        assert (facets.labels[members] == j).all()
        assert torch.allclose(facets.inits[j], images[members].mean(0))
    dominant = facets.inits.mean(dim=(2, 3)).argmax(1)
    assert sorted(dominant.tolist()) == [0, 1, 2]  # one facet per colour
    with pytest.raises(ValueError, match="feature rows"):
        fv.find_facets(images, images.mean(dim=(2, 3))[:5])


def test_mean_pairwise_distance():
    x = torch.tensor([[0.0, 0], [3, 4], [0, 0]])
    assert linalg.mean_pairwise_distance(x) == pytest.approx((5 + 0 + 5) / 3)
    with pytest.raises(ValueError):
        linalg.mean_pairwise_distance(x[:1])
