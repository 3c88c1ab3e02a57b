import pytest
import torch
from torch import nn

import helpers
from helpers.core.editing import set_entries, topk
from helpers.core.input_editing import edit_inputs


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))


def test_input_edit_equals_output_edit_of_the_module_before():
    model, x = mlp(), torch.randn(5, 4)
    with torch.no_grad(), edit_inputs(model, {"2": topk(2)}):
        by_input = model(x)
    with torch.no_grad(), helpers.edit(model, {"1": topk(2)}):
        by_output = model(x)
    assert torch.equal(by_input, by_output)
    assert not torch.allclose(by_input, model(x))


def test_keyword_input_is_edited():
    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(3, 2)

        def forward(self, x):
            return self.inner(input=x)

    model, x = Wrap(), torch.ones(1, 3)
    with torch.no_grad(), edit_inputs(model, {"inner": set_entries([0, 1, 2], 0.0)}):
        y = model(x)
    assert torch.allclose(y, model.inner.bias[None])


def test_hooks_removed_after_exit_error_and_bad_name():
    model, x = mlp(), torch.randn(2, 4)
    with pytest.raises(RuntimeError):
        with edit_inputs(model, {"2": topk(2)}):
            raise RuntimeError("boom")
    with pytest.raises(helpers.LayerNotFoundError):
        with edit_inputs(model, {"2": topk(2), "nope": topk(1)}):
            pass
    with pytest.raises(ValueError, match="shape"):
        with edit_inputs(model, {"2": lambda a: a[:, :2]}):
            model(x)
    assert all(not m._forward_pre_hooks for m in model.modules())
