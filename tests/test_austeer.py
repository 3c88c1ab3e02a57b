"""helpers.intervene.austeer: momentum, global ranking, multiplicative steering of chosen units."""
import pytest
import torch

import helpers
from helpers.intervene import austeer


def test_momentum_counts_sign_agreement_with_the_majority_sign():
    pos = torch.tensor([[1.0, -1.0, 0.0], [2.0, -2.0, 1.0], [-1.0, -3.0, -1.0], [3.0, 1.0, 0.0]])
    beta = austeer.momentum(pos, torch.zeros_like(pos))
    assert torch.allclose(beta, torch.tensor([0.75, -0.75, 0.25]))


def test_ranking_is_global_over_layers_and_ties_break_by_size():
    pos = {"a": torch.tensor([[1.0, 5.0]]), "b": torch.tensor([[-9.0, 0.0]])}
    neg = {"a": torch.zeros(1, 2), "b": torch.zeros(1, 2)}
    order = [(u.layer, u.index) for u in austeer.rank_units(pos, neg)]
    assert order[:3] == [("b", 0), ("a", 1), ("a", 0)]


def test_scale_units_is_multiplicative_only_on_chosen_units_and_leaves_no_hook():
    net = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Identity())
    units = [austeer.Unit("0", 1, -0.5, 1.0)]
    x = torch.tensor([[2.0, 4.0, 6.0]])
    with helpers.edit(net, austeer.scale_units(units, alpha=1.0)):
        y = net(x)
    assert torch.equal(y, torch.tensor([[2.0, 2.0, 6.0]]))
    bad = austeer.scale_units([austeer.Unit("0", 7, 1.0, 1.0)], alpha=1.0)
    with pytest.raises(ValueError, match="unit 7"):
        with helpers.edit(net, bad):
            net(x)
    assert sum(len(m._forward_hooks) for m in net.modules()) == 0


def test_scale_inputs_scales_a_layers_input_like_scale_units_its_source():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Identity(), torch.nn.Linear(4, 2))
    units = [austeer.Unit("2", 1, 1.0, 1.0), austeer.Unit("2", 3, -0.5, 1.0)]
    x = torch.randn(5, 3)
    with austeer.scale_inputs(net, units, alpha=2.0):
        y = net(x)
    with helpers.edit(net, austeer.scale_units([austeer.Unit("1", u.index, u.beta, u.mean_diff) for u in units], 2.0)):
        expected = net(x)
    assert torch.allclose(y, expected) and not torch.allclose(y, net(x))
    assert all(len(m._forward_pre_hooks) == 0 for m in net.modules())
    with pytest.raises(Exception, match="nope"):
        with austeer.scale_inputs(net, [austeer.Unit("nope", 0, 1.0, 1.0), units[0]], alpha=1.0):
            pass
    assert all(len(m._forward_pre_hooks) == 0 for m in net.modules())
