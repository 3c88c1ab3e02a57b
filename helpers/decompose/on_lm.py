"""Lesson 11's tinyworld measurements on any decoder LM (a :class:`helpers.zoo.TextModel`), whatever its tokenizer.

tinyworld's factors are labels of tinyworld *words*. For a model with another tokenizer every word is encoded on
its own (with the space before it) and each of its tokens carries the word's labels; prompts of one task are
grouped by their token length and answers are read as the first token of the answer word (``lm.word_id``).
For a tinyworld model everything here equals the tinyworld-only functions (:func:`helpers.decompose.factors.labelled_tokens`,
:func:`helpers.zoo.evals.accuracy`).

Example:
    >>> from helpers.zoo import open_model
    >>> lm = open_model("random:gpt2", ("text",), device="cpu")
    >>> tokens, labels = labelled_tokens(lm, 2, n_ctx=16, seed=0)
    >>> tokens.shape, labels["class:day"].shape
    (torch.Size([2, 17]), torch.Size([2, 16]))
"""
from __future__ import annotations

from typing import Sequence

import torch

from helpers.core.capturing import capture
from helpers.data import tinyworld
from helpers.decompose.factors import labelled_tokens as tinyworld_labelled_tokens
from helpers.zoo.text_adapter import TextModel


def labelled_tokens(lm: TextModel, n_seqs: int, n_ctx: int = 64,
                    seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``n_seqs`` tinyworld sequences in ``lm``'s tokens, (S, n_ctx + 1), and their factors, ``name -> (S, n_ctx)``.

    The tinyworld sequences are those of :func:`~helpers.decompose.factors.labelled_tokens` (same seed); the
    model's BOS (if its tokenizer uses one) takes the place of ``<bos>`` and belongs to no factor.
    """
    if lm.is_tinyworld:
        return tinyworld_labelled_tokens(n_seqs, n_ctx, seed)
    words, word_labels = tinyworld_labelled_tokens(n_seqs, n_ctx + 1, seed)  # every word is at least one token
    vocab = tinyworld.tokenizer()
    prefix = lm.encode("")[:1]
    skip = len(lm.encode(""))
    cache: dict[int, list[int]] = {}
    rows, labels = [], {name: [] for name in word_labels}
    for s in range(n_seqs):
        ids, source = list(prefix), [-1] * len(prefix)  # source: the word position each token comes from
        for j, w in enumerate(words[s, 1:].tolist(), start=1):
            if w not in cache:
                cache[w] = lm.encode(" " + vocab.decode([w]))[skip:]
            ids += cache[w]
            source += [j] * len(cache[w])
        rows.append(ids[:n_ctx + 1])
        for name, lab in word_labels.items():
            labels[name].append([bool(lab[s, j]) if j >= 0 else False for j in source[:n_ctx]])
    return torch.tensor(rows), {name: torch.tensor(v) for name, v in labels.items()}


def accuracy(lm: TextModel, prompts: Sequence[tinyworld.Prompt]) -> float:
    """Fraction of tinyworld prompts whose argmax next token is (the first token of) the answer word."""
    pred = lm.next_token_logits([p.text for p in prompts]).argmax(-1)
    target = torch.tensor([lm.word_id(p.answer) for p in prompts])
    return (pred == target).float().mean().item()


def task_accuracies(lm: TextModel, tasks: dict[str, Sequence[tinyworld.Prompt]]) -> torch.Tensor:
    """:func:`accuracy` of every task, (n_tasks,), from one pass over all prompts (fewer, fuller batches)."""
    prompts = [p for ps in tasks.values() for p in ps]
    hit = (lm.next_token_logits([p.text for p in prompts]).argmax(-1)
           == torch.tensor([lm.word_id(p.answer) for p in prompts])).float()
    return torch.stack([part.mean() for part in hit.split([len(ps) for ps in tasks.values()])])


@torch.no_grad()
def layer_inputs(lm: TextModel, name: str, batches: Sequence[torch.Tensor]) -> torch.Tensor:
    """The input of module ``name`` (e.g. ``lm.mlp_down[0]``: the MLP's hidden activations) on every token of
    ``batches`` of ids, as one float (N, width) CPU tensor."""
    rows = []
    for ids in batches:
        with capture(lm.model, name, outputs=False, inputs=True) as acts:
            lm.logits(ids)
        rows.append(acts.inputs[name].float().cpu().flatten(0, -2))
    return torch.cat(rows)
