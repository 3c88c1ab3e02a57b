"""helpers.ops.curves, helpers.ops.metrics.purity, helpers.intervene.gact and helpers.intervene.manifold."""
import math

import pytest
import torch

from helpers.intervene import gact, manifold
from helpers.ops import curves
from helpers.ops.metrics import purity


def _ring(k: int = 7, d: int = 12, noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    """k centroids on a circle of radius 3 in a random plane of R^d, plus an off-plane offset per class."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    t = torch.arange(k) * 2 * math.pi / k
    xy = 3 * torch.stack([t.cos(), t.sin()], 1)
    return xy @ q[:2] + 5 + noise * torch.randn(k, d, generator=g)


def test_fit_circle_recovers_centre_and_radius_and_residual_separates_circle_from_noise():
    g = torch.Generator().manual_seed(1)
    t = torch.rand(40, generator=g) * 2 * math.pi
    pts = torch.stack([2 + 5 * t.cos(), -1 + 5 * t.sin()], 1) + 0.01 * torch.randn(40, 2, generator=g)
    fit = curves.fit_circle(pts)
    assert torch.allclose(fit.centre, torch.tensor([2.0, -1.0]), atol=0.02) and abs(fit.radius - 5) < 0.02
    assert fit.residual < 0.01
    assert curves.fit_circle(torch.randn(40, 2, generator=g)).residual > 0.2
    with pytest.raises(ValueError, match="N >= 3"):
        curves.fit_circle(torch.zeros(2, 2))


def test_cyclic_order_and_short_arc():
    t = torch.arange(7) * 2 * math.pi / 7
    assert curves.is_cyclic_order(t) and curves.is_cyclic_order(-t)
    assert not curves.is_cyclic_order(t[[0, 2, 1, 3, 4, 5, 6]])
    # from 170 to -170 degrees the short way passes through 180 degrees, not through 0
    mid = curves.arc_points(torch.zeros(2), 1.0, 1.0, math.radians(170), math.radians(-170), torch.tensor([0.5]))[0]
    assert torch.allclose(mid, torch.tensor([-1.0, 0.0]), atol=1e-5)


def test_value_at_level_interpolates_at_first_crossing():
    x, y = torch.tensor([0.0, 0.5, 1.0, 0.2]), torch.tensor([10.0, 20.0, 40.0, 0.0])
    assert curves.value_at_level(x, y, 0.75) == pytest.approx(30.0)
    assert curves.value_at_level(x, y, 0.0) == 10.0
    assert math.isnan(curves.value_at_level(x, y, 2.0))
    with pytest.raises(ValueError, match="1-D of one length"):
        curves.value_at_level(x, y[:2], 0.5)


def test_purity():
    assert purity(torch.tensor([1, 1, 0, 0]), torch.tensor([0, 0, 1, 1])) == 1.0
    assert purity(torch.tensor([0, 0, 0, 0]), torch.tensor([0, 0, 1, 1])) == 0.5
    with pytest.raises(ValueError):
        purity(torch.tensor([0, 1]), torch.tensor([0]))


def test_gact_clusters_differences_and_probe_picks_each_prompts_direction():
    g = torch.Generator().manual_seed(0)
    src = torch.randint(0, 2, (60,), generator=g)                       # two kinds of prompt
    feats = torch.randn(60, 6, generator=g) + 4 * (src[:, None] * 2 - 1)
    true_dirs = torch.tensor([[3.0, 0, 0, 0, 0, 0], [0, 0, 0, -2.0, 1, 0]])
    diffs = true_dirs[src] + 0.1 * torch.randn(60, 6, generator=g)
    steer = gact.fit(diffs, feats, k=2, seed=0)
    assert purity(steer.clusters, src) == 1.0
    new_src = torch.tensor([0, 1, 1, 0])
    new_feats = torch.randn(4, 6, generator=g) + 4 * (new_src[:, None] * 2 - 1)
    assert torch.allclose(steer.vectors(new_feats), true_dirs[new_src], atol=0.1)
    out = steer.edit_fn(new_feats, alpha=2.0)(torch.zeros(4, 3, 6))
    assert torch.allclose(out[:, -1], 2 * steer.vectors(new_feats)) and out[:, :-1].abs().max() == 0
    with pytest.raises(ValueError, match="both be"):
        gact.fit(diffs, feats[:5])
    with pytest.raises(ValueError, match="k must be"):
        gact.fit(diffs, feats, k=1)
    with pytest.raises(ValueError, match="features must be"):
        steer.choose(torch.zeros(2, 5))


def test_manifold_paths_share_ends_and_the_circle_path_stays_on_the_circle():
    cents = _ring()
    plane = manifold.fit_plane(cents)
    assert plane.fit.residual < 1e-4 and manifold.angular_order_ok(plane)
    ts = torch.linspace(0, 1, 5)
    lin, arc = manifold.linear_path(plane, 1, 4, ts), manifold.circle_path(plane, 1, 4, ts)
    assert torch.allclose(lin[0], torch.zeros(12)) and torch.allclose(arc[0], torch.zeros(12), atol=1e-4)
    assert torch.allclose(lin[-1], cents[4] - cents[1], atol=1e-4) and torch.allclose(arc[-1], lin[-1], atol=1e-4)
    r = lambda h: ((h - plane.mean) @ plane.basis.T - plane.fit.centre).norm().item()
    assert abs(r(cents[1] + arc[2]) - plane.fit.radius) < 1e-3          # on the circle half-way
    assert r(cents[1] + lin[2]) < 0.5 * plane.fit.radius                # the chord cuts inside it
    with pytest.raises(ValueError, match="classes must lie"):
        manifold.circle_path(plane, 0, 7, ts)


def test_shuffled_labels_break_the_circle():
    g = torch.Generator().manual_seed(2)
    acts = _ring()[None] + 0.3 * torch.randn(6, 7, 12, generator=g)    # 6 noisy examples of each of 7 classes
    real = manifold.fit_plane(acts.mean(0)).fit.residual
    shuffled = manifold.shuffled_residuals(acts, n=30, seed=0)
    assert real < 0.1 and real < shuffled.min()
    with pytest.raises(ValueError, match=r"\(G, K, d\)"):
        manifold.shuffled_residuals(acts[0])
