"""helpers.explain.targets.check_targets: the one check of class targets, used by the CAMs and by the
perturbation curves; bad targets are refused with a clear message before the model runs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from helpers.explain import cam, faithfulness
from helpers.explain.targets import check_targets


class CountingNet(nn.Module):
    """A tiny classifier (3 classes) that counts its forward passes."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.head(self.features(x).mean((2, 3)))


def test_accepts_integer_ids_in_any_integer_form():
    for given in ([2, 0], (2, 0), np.array([2, 0]), torch.tensor([2, 0], dtype=torch.int32), torch.tensor([2, 0])):
        got = check_targets(given, batch=2, n_classes=3)
        assert got.dtype == torch.int64 and got.tolist() == [2, 0]


@pytest.mark.parametrize("bad, message", [
    ([0, 1, 2], "got 3 ids for a batch of 2"),          # too long
    ([1], "got 1 ids for a batch of 2"),                 # too short: pytorch-grad-cam would zip it silently
    (1, "got shape ()"),                                 # one number for the whole batch
    ([[0, 1]], r"got shape \(1, 2\)"),
    ([0.0, 1.0], "dtype torch.float32"),
    (torch.tensor([True, False]), "dtype torch.bool"),
    (["cat", "dog"], "one integer class id per image"),
    ([0, -1], ">= 0"),
    ([0, 3], r"in \[0, 3\)"),                             # out of range for 3 classes
])
def test_refuses_with_a_message_that_names_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        check_targets(bad, batch=2, n_classes=3)


@pytest.mark.parametrize("bad", [[0, 1, 2], [0.5, 1.0], [0, -1]])
def test_cam_and_perturbation_refuse_before_the_model_runs(bad):
    torch.manual_seed(0)
    net, x, maps = CountingNet().eval(), torch.rand(2, 3, 8, 8), torch.rand(2, 4, 4)
    errors = []
    for run in (lambda: cam.GradCAM(net, "features")(x, bad),
                lambda: cam.ScoreCAM(net, "features")(x, bad),
                lambda: faithfulness.perturbation_curve(net, x, maps, bad, steps=2)):
        with pytest.raises(ValueError) as err:
            run()
        errors.append(str(err.value))
    assert net.calls == 0                                   # refused before any forward pass
    assert len(set(errors)) == 1                            # one routine, one message for both packages


def test_out_of_range_is_refused_before_any_gradient_or_extra_forward():
    torch.manual_seed(0)
    net, x, maps = CountingNet().eval(), torch.rand(2, 3, 8, 8), torch.rand(2, 4, 4)
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        cam.ScoreCAM(net, "features")(x, [0, 7])            # one forward for the logits, no masked forwards
    assert net.calls == 1
    net.calls = 0
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        faithfulness.perturbation_curve(net, x, maps, [0, 7], steps=2)
    assert net.calls == 1                                   # one image to learn the class count, no curve
