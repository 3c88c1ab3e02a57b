"""What to maximise: a unit's mean activation as a differentiable objective, and the dataset images
that excite it most."""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import torch
from torch import nn

from helpers.core.capturing import capture

Objective = Callable[[torch.Tensor], torch.Tensor]  # images (B, 3, H, W) in [0, 1] -> scores (B,)



# ----------------------------------------------------------------------------------------------------------
# objectives and dataset examples


def unit_objective(model: nn.Module, layer: str, unit: Union[int, Sequence[int]],
                   transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                   view: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> Objective:
    """A differentiable score per image: ``layer``'s unit ``unit``.

    For a (B, K) output (logits, pooled features) the score is column ``unit``; for a (B, C, H, W) feature map
    it is channel ``unit`` averaged over all positions. A list of B units scores image i by unit ``unit[i]``
    (to optimise several units in one batch). ``transform`` is applied to the [0, 1] images first
    (e.g. ImageNet normalisation for a pretrained model). ``view`` reshapes the layer's output before the unit
    is read (e.g. ``net.grid``, which turns a ViT's (B, T, D) tokens into a (B, D, h, w) map).

    Example:
        >>> net = nn.Sequential(nn.Linear(3, 2))
        >>> unit_objective(net, "0", 1)(torch.ones(4, 3)).shape
        torch.Size([4])
    """
    units = torch.as_tensor(unit, dtype=torch.long)  # () for one unit, (B,) for one unit per image
    if units.dim() > 1:
        raise ValueError(f"unit must be an int or a flat list of ints, got shape {tuple(units.shape)}")

    def score(x: torch.Tensor) -> torch.Tensor:
        x = transform(x) if transform is not None else x
        # detach=False keeps the live tensor so that gradients reach the input; stop=True skips later layers
        with capture(model, layer, detach=False, stop=True) as acts:
            model(x)
        a = acts[layer] if view is None else view(acts[layer])
        if a.dim() not in (2, 4):
            raise ValueError(f"layer {layer!r} gives shape {tuple(a.shape)}; expected (B, K) or (B, C, H, W)")
        n = a.shape[1]
        if not all(0 <= u < n for u in units.flatten().tolist()):
            raise ValueError(f"unit {unit} is out of range for layer {layer!r}, which has {n} units (0..{n - 1})")
        if units.dim() == 0:
            picked = a[:, int(units)]  # (B,) or (B, H, W)
        elif len(units) == len(a):
            picked = a[torch.arange(len(a), device=a.device), units.to(a.device)]
        else:
            raise ValueError(f"{len(units)} units for a batch of {len(a)} images: give one unit, or one per image")
        return picked if picked.dim() == 1 else picked.mean(dim=(1, 2))  # (B,)
    return score


@torch.no_grad()
def scores(objective: Objective, images: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
    """``objective`` on a dataset in batches, without gradients: (N,) scores on the images' device."""
    return torch.cat([objective(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def top_examples(objective: Objective, images: torch.Tensor, k: int = 8,
                 batch_size: int = 250) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` dataset images that excite the unit most: ``(values (k,), indices (k,))``, highest first.

    Example:
        >>> score = lambda x: x.mean(dim=(1, 2, 3))
        >>> top_examples(score, torch.rand(10, 3, 4, 4), k=3)[1].shape
        torch.Size([3])
    """
    values = scores(objective, images, batch_size)
    if not 1 <= k <= len(values):
        raise ValueError(f"k must be between 1 and the number of images ({len(values)}), got {k}")
    return values.topk(k)
