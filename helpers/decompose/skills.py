"""Skill directions (inspired by Kang et al.'s *model-native skills*): principal directions of mean-pooled residual
streams over prompts of several tasks, ranked by how much steering along each changes each task's accuracy.

The paper's exact recipe is not reproduced here; the steps (mean-pool, centre, SVD, steer ±α along each
direction, rank by the largest accuracy change) are this project's reading of its abstract.

Example:
    >>> pooled = torch.randn(30, 8) + torch.tensor([5.0] + [0] * 7) * torch.arange(30).remainder(2)[:, None]
    >>> dirs, s = skill_directions(pooled, 2)
    >>> dirs.shape, bool(dirs[0, 0].abs() > 0.9)
    (torch.Size([2, 8]), True)
"""
from __future__ import annotations

import torch
from torch import nn

from helpers.core.capturing import capture
from helpers.core.editing import add_vector, edit
from helpers.data.tinyworld import Prompt, Tokenizer, tokenizer
from helpers.zoo.text_adapter import TextModel


@torch.no_grad()
def pooled_residual(model: nn.Module | TextModel, layer: str, texts: list[str],
                    tok: Tokenizer | None = None) -> torch.Tensor:
    """Mean over positions of ``layer``'s output for each text (texts of one length batched together), (S, d).

    ``model`` is a tinyworld model (with ``tok``) or any decoder LM opened by :func:`helpers.zoo.open_model`."""
    encode = model.encode if isinstance(model, TextModel) else (tok or tokenizer()).encode
    forward = model.logits if isinstance(model, TextModel) else model
    model = model.model if isinstance(model, TextModel) else model
    device = next(model.parameters()).device
    ids = [encode(t) for t in texts]
    out: list[torch.Tensor | None] = [None] * len(ids)
    by_len: dict[int, list[int]] = {}
    for i, x in enumerate(ids):
        by_len.setdefault(len(x), []).append(i)
    for idx in by_len.values():
        with capture(model, layer) as acts:
            forward(torch.tensor([ids[i] for i in idx], device=device))
        for j, i in enumerate(idx):
            out[i] = acts[layer][j].float().mean(0).cpu()
    return torch.stack(out)


def skill_directions(pooled: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``n`` right singular vectors of the centred pooled activations (S, d): ``(directions (n, d), singular values (n,))``."""
    if pooled.ndim != 2 or not 1 <= n <= min(pooled.shape):
        raise ValueError(f"need pooled (S, d) and 1 <= n <= min(S, d), got {tuple(pooled.shape)} and n={n}")
    _, s, vh = torch.linalg.svd((pooled - pooled.mean(0)).double(), full_matrices=False)
    return vh[:n].float(), s[:n].float()


@torch.no_grad()
def steering_effects(model: nn.Module | TextModel, layer: str, directions: torch.Tensor, alpha: float,
                     tasks: dict[str, list[Prompt]], tok: Tokenizer | None = None) -> torch.Tensor:
    """Accuracy change of each task when ``±alpha · direction`` is added at every position of ``layer``:
    (n_directions, n_tasks), the larger |change| of the two signs, signed as it happened.

    ``model`` is a tinyworld model (with ``tok``) or any decoder LM opened by :func:`helpers.zoo.open_model`."""
    if isinstance(model, TextModel):
        from helpers.decompose.on_lm import task_accuracies
        lm, model = model, model.model

        def accuracies() -> torch.Tensor:
            return task_accuracies(lm, tasks)
    else:
        from helpers.zoo.evals import accuracy  # zoo sits below the topic packages
        tok = tok or tokenizer()

        def accuracies() -> torch.Tensor:
            return torch.tensor([accuracy(model, ps, tok) for ps in tasks.values()])
    base = accuracies()
    out = torch.zeros(len(directions), len(tasks))
    for i, u in enumerate(directions):
        for sign in (1.0, -1.0):
            with edit(model, {layer: add_vector(u, alpha=sign * alpha)}):
                acc = accuracies()
            delta = acc - base
            out[i] = torch.where(delta.abs() > out[i].abs(), delta, out[i])
    return out
