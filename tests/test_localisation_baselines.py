"""Baselines of the localisation metrics (helpers.explain.faithfulness.localisation): the centre prior,
a centred Gaussian map, and the map against another image's zone."""
from __future__ import annotations

import math

import pytest
import torch

from helpers.explain import faithfulness as fa


def centred_boxes(n: int = 60, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Boxes of side 5-8 at random places: like the lessons' objects, they cover the centre more often."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for i in range(n):
        s = int(torch.randint(5, 9, (1,), generator=g))
        y, x = torch.randint(0, size - s + 1, (2,), generator=g).tolist()
        masks[i, y:y + s, x:x + s] = True
    return masks


def test_mask_prior_is_the_best_constant_point():
    masks = centred_boxes()
    prior = fa.mask_prior(masks)
    torch.testing.assert_close(prior, masks.float().mean(0))
    # the hit rate of a map that always points at pixel p is prior[p]; the prior's peak is the best p
    hit_rate_at_peak = fa.pointing_game(prior.expand(len(masks), -1, -1), masks).float().mean()
    assert math.isclose(hit_rate_at_peak.item(), prior.max().item(), rel_tol=1e-6)
    every_point = torch.stack([masks[:, y, x].float().mean() for y in range(16) for x in range(16)])
    assert hit_rate_at_peak.item() >= every_point.max().item() - 1e-6
    # the centred boxes make the centre far better than a uniform random point
    assert prior.max() > 2 * fa.pointing_chance(masks).mean()
    with pytest.raises(ValueError, match="masks must be"):
        fa.mask_prior(masks[0])


def test_centre_map_is_a_centred_gaussian():
    m = fa.centre_map((9, 13), sigma=0.2)
    assert m.shape == (9, 13) and m[4, 6] == 1.0 == m.max()
    torch.testing.assert_close(m, m.flip(0))
    torch.testing.assert_close(m, m.flip(1))
    # one standard deviation (0.2 x 13 = 2.6 px) to the right of the centre: exp(-1/2), here by interpolation
    assert math.isclose(m[4, 8].item(), math.exp(-0.5 * (2 / 2.6) ** 2), rel_tol=1e-5)
    with pytest.raises(ValueError):
        fa.centre_map((4, 4), sigma=0)


def test_pointing_baselines_match_their_definitions():
    masks = centred_boxes(seed=1)
    maps = torch.rand(len(masks), 4, 4)
    prior = fa.mask_prior(centred_boxes(200, seed=2))                      # from other ("training") masks
    for tol in (0, 1):
        b = fa.pointing_baselines(maps, masks, prior, tolerance=tol)
        torch.testing.assert_close(b["uniform"], fa.pointing_chance(masks, tol))
        peak = divmod(int(prior.argmax()), 16)
        torch.testing.assert_close(b["centre_prior"], fa.dilate(masks, tol)[:, peak[0], peak[1]].float())
        torch.testing.assert_close(b["other_image"], fa.pointing_game(maps, masks.roll(1, 0), tol).float())
    # a map that IS a constant centre map scores exactly the centre baseline: it cannot beat it
    constant = fa.centre_map((16, 16)).expand(len(masks), -1, -1)
    b = fa.pointing_baselines(constant, masks, fa.centre_map((16, 16)))
    assert torch.equal(fa.pointing_game(constant, masks).float(), b["centre_prior"])
    with pytest.raises(ValueError, match="one \\(H, W\\) map"):
        fa.pointing_baselines(maps, masks, prior[None])


def test_energy_baselines_match_their_definitions():
    masks = centred_boxes(seed=3)
    maps = torch.rand(len(masks), 8, 8)
    prior = fa.mask_prior(masks)
    b = fa.energy_baselines(maps, masks, prior)
    torch.testing.assert_close(b["uniform"], masks.flatten(1).float().mean(1))
    torch.testing.assert_close(b["centre_prior"], fa.energy_in_zone(prior.expand(len(masks), -1, -1), masks))
    torch.testing.assert_close(b["other_image"], fa.energy_in_zone(maps, masks.roll(1, 0)))
    assert "centre_prior" not in fa.energy_baselines(maps, masks)
    # a bright dot at the prior's peak scores, as energy, exactly its pointing hits: energy rewards concentration
    dot = (prior == prior.max()).float()
    dot = dot * (torch.arange(dot.numel()).view_as(dot) == int(prior.argmax()))
    torch.testing.assert_close(fa.energy_in_zone(dot.expand(len(masks), -1, -1), masks),
                               fa.pointing_game(prior.expand(len(masks), -1, -1), masks).float())
