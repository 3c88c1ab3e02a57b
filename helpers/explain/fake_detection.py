"""The real-vs-generated detector of notebook 07: the ``wild-cnn`` design, narrower, trained briefly.

Example:
    >>> x, y = torch.rand(8, 3, 64, 64), torch.tensor([0, 1] * 4)
    >>> net, losses = train_detector(x, y, DetectorTrainConfig(steps=2, batch=4))
    >>> net(x).shape, len(losses)
    (torch.Size([8, 2]), 2)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from helpers.models.cnn import WildCNN, WildCNNConfig



def detector_config() -> WildCNNConfig:
    """The detector: the zoo's ``wild-cnn`` design, narrower (16-32-32 channels, one conv per block), 2 classes.

    ``blocks.2`` is its 16x16 layer for class activation maps, as in ``wild-cnn``.
    """
    return WildCNNConfig(channels=(16, 32, 32), convs=(1, 1, 1), strides=(2, 2, 1), n_classes=2)


@dataclass
class DetectorTrainConfig:
    """How :func:`train_detector` trains: ``steps`` Adam steps on random batches of ``batch`` images, with a
    one-cycle schedule peaking at ``lr``."""

    steps: int = 200
    batch: int = 32
    lr: float = 3e-3
    seed: int = 0


def train_detector(images: torch.Tensor, labels: torch.Tensor, config: DetectorTrainConfig | None = None,
                   model: nn.Module | None = None) -> tuple[nn.Module, list[float]]:
    """Train a real-vs-generated classifier (label 1 = generated); returns ``(model in eval mode, losses)``.

    Example:
        >>> x, y = torch.rand(8, 3, 64, 64), torch.tensor([0, 1] * 4)
        >>> net, losses = train_detector(x, y, DetectorTrainConfig(steps=2, batch=4))
        >>> len(losses)
        2
    """
    cfg = config or DetectorTrainConfig()
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images (and some), got {len(images)} and {len(labels)}")
    if cfg.steps < 1 or cfg.batch < 1:
        raise ValueError(f"steps and batch must be positive, got {cfg.steps} and {cfg.batch}")
    g = torch.Generator().manual_seed(int(cfg.seed))
    if model is None:
        torch.manual_seed(cfg.seed)  # the initial weights
        model = WildCNN(detector_config())
    model = model.to(images.device).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    # warm up, then anneal to ~0: the last steps barely move the weights, so the BatchNorm running statistics
    # (what eval mode uses) describe the final network, and the result depends much less on the last batches
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.15)
    losses = []
    for _ in range(cfg.steps):
        idx = torch.randint(len(images), (cfg.batch,), generator=g).to(images.device)
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return model.eval(), losses
