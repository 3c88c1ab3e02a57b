"""Shared fixtures: small randomly initialised real architectures (no downloads)."""
from __future__ import annotations

import pytest
import torch
from torch import nn


def hook_count(model: nn.Module) -> int:
    """Every forward/backward hook on every module of ``model``."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def resnet():
    import torchvision
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    return model.eval()


@pytest.fixture(scope="session")
def gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel
    config = GPT2Config(n_layer=3, n_embd=64, n_head=4, vocab_size=101, n_positions=32,
                        bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # transformers installs its own output hooks on first use; let it, once
        model(torch.zeros(1, 2, dtype=torch.long), output_hidden_states=True)
    return model


@pytest.fixture
def mlp():
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))
