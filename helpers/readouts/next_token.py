"""Next-token logits and last-token states of any decoder LM opened with :func:`helpers.zoo.open_model`.

Prompts of different token lengths (a BPE tokenizer splits some words) run in groups of equal length, so no
padding is needed; only the last position is unembedded when the model can do that (Hugging Face's
``logits_to_keep``), which saves the (T, vocabulary) logits of long prompts on large vocabularies.

    logits = next_token_logits(lm, ["the movie was great . i feel", "i feel"])     # (2, V)
    h = last_states(lm, lm.blocks[1], ["the movie was great . i feel"])             # (1, d)

Example:
    >>> from helpers.zoo import open_model
    >>> lm = open_model("tinyworld-gpt", kinds=("text",), device="cpu")
    >>> next_token_logits(lm, ["i feel", "the movie was great . i feel"]).shape
    torch.Size([2, 160])
"""
from __future__ import annotations

from typing import Any, Sequence, Union

import torch

from helpers.core.capturing import capture

Prompts = Union[Sequence[str], Sequence[torch.Tensor], torch.Tensor]


def last_logits(lm: Any, ids: torch.Tensor) -> torch.Tensor:
    """Logits at the last position of ``ids`` (B, T): (B, V) (:meth:`helpers.zoo.TextModel.last_logits`)."""
    return lm.last_logits(ids)


def _groups(lm: Any, prompts: Prompts) -> tuple[list[torch.Tensor], dict[int, list[int]]]:
    if isinstance(prompts, torch.Tensor):
        seqs = list(prompts.unbind(0))
    else:
        seqs = [torch.tensor(lm.encode(p), dtype=torch.long) if isinstance(p, str) else p for p in prompts]
    if not seqs:
        raise ValueError("no prompts given")
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(seqs):
        if s.dim() != 1 or len(s) == 0:
            raise ValueError(f"prompt {i} is not a non-empty 1-D sequence of token ids (shape {tuple(s.shape)})")
        by_len.setdefault(len(s), []).append(i)
    return seqs, by_len


def next_token_logits(lm: Any, prompts: Prompts) -> torch.Tensor:
    """Logits of the token after each prompt (texts or 1-D token ids), (N, V) float32 on the CPU
    (:meth:`helpers.zoo.TextModel.next_token_logits`)."""
    return lm.next_token_logits(prompts)


@torch.no_grad()
def last_states(lm: Any, layer: str, prompts: Prompts) -> torch.Tensor:
    """The output of ``layer`` at the last token of each prompt, (N, d) float32 on the CPU."""
    seqs, by_len = _groups(lm, prompts)
    out: list[torch.Tensor] = [torch.empty(0)] * len(seqs)
    for idx in by_len.values():
        with capture(lm.model, layer, stop=True) as acts:  # the rest of the forward is skipped
            lm.model(torch.stack([seqs[i] for i in idx]).to(lm.device))
        h = acts[layer][:, -1].float().cpu()
        for j, i in enumerate(idx):
            out[i] = h[j]
    return torch.stack(out)
