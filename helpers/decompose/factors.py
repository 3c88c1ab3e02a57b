"""Tinyworld tokens with their known factors, and how well a decomposition recovers them.

A factor is a binary label per token: a *token class* (the word is a country, a day, a name, ...) or a
*task type* (the token is inside a sentiment / fact / cyclic / IOI / in-context / induction segment, or
inside an in-context segment of the antonym / copy / next task). Token classes are read off the word;
task types need the context.

Example:
    >>> tokens, labels = labelled_tokens(4, n_ctx=32, seed=0)
    >>> tokens.shape, labels["class:day"].shape
    (torch.Size([4, 33]), torch.Size([4, 32]))
"""
from __future__ import annotations

import random

import torch

from helpers.data.tinyworld import (CAPITALS, DAYS, FEELING, ICL_WORDS, MONTHS, NAMES, OBJECTS, PLACES, PUNCT,
                                    SEGMENTS, SENT_ADJ, SENT_NOUNS, SOUNDS, CorpusConfig, tokenizer)
from helpers.ops.metrics import roc_auc_columns

TOKEN_CLASSES = {
    "country": list(CAPITALS), "capital": list(CAPITALS.values()), "animal": list(SOUNDS),
    "sound": list(SOUNDS.values()), "day": DAYS, "month": MONTHS, "name": NAMES, "place": PLACES,
    "object": OBJECTS, "noun": SENT_NOUNS, "positive": SENT_ADJ["positive"], "negative": SENT_ADJ["negative"],
    "feeling": list(FEELING.values()), "punctuation": PUNCT,
}


def labelled_tokens(n_seqs: int, n_ctx: int = 64, seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``n_seqs`` corpus sequences (the training mixture, fresh seed) and their factors.

    Returns ``tokens`` (S, n_ctx + 1) long (``<bos>`` first; inputs are ``tokens[:, :-1]``) and a dict
    ``factor -> (S, n_ctx)`` bool for the input positions: ``class:<name>`` per :data:`TOKEN_CLASSES`,
    ``task:<segment kind>`` and ``icl:<task>``. The <bos> position belongs to no segment.
    """
    if n_seqs < 1 or n_ctx < 2:
        raise ValueError(f"need n_seqs >= 1 and n_ctx >= 2, got {n_seqs} and {n_ctx}")
    cfg, rng, tok = CorpusConfig(n_ctx=n_ctx), random.Random(seed), tokenizer()
    kinds, weights = list(cfg.weights), list(cfg.weights.values())
    rows, tags = [], []
    for _ in range(n_seqs):
        words, tag = ["<bos>"], [("", "")]
        while len(words) < n_ctx + 1:
            kind = rng.choices(kinds, weights)[0]
            seg, info = SEGMENTS[kind](rng)
            words += seg
            tag += [(kind, info.get("task", ""))] * len(seg)
        rows.append([tok.stoi[w] for w in words[:n_ctx + 1]])
        tags.append((words[:n_ctx], tag[:n_ctx]))
    labels: dict[str, torch.Tensor] = {}
    for name, members in TOKEN_CLASSES.items():
        labels[f"class:{name}"] = torch.tensor([[w in members for w in ws] for ws, _ in tags])
    labels["class:icl-word"] = torch.tensor([[w in ICL_WORDS for w in ws] for ws, _ in tags])
    for kind in kinds:
        labels[f"task:{kind}"] = torch.tensor([[t[0] == kind for t in ts] for _, ts in tags])
    for task in ("antonym", "copy", "next"):
        labels[f"icl:{task}"] = torch.tensor([[t == ("icl", task) for t in ts] for _, ts in tags])
    return torch.tensor(rows), labels


def best_auroc(features: torch.Tensor, labels: dict[str, torch.Tensor], signed: bool = False) -> dict[str, float]:
    """For each factor, the best AUROC of any single column of ``features`` (N, C) as its detector.

    ``labels`` maps factor -> (N,) bool (or any shape with N entries). With ``signed=False`` a column may
    detect a factor by being low as well as high (``max(AUROC, 1 - AUROC)``), as a PCA component's sign is
    arbitrary. Factors with one class only are skipped.

    Example:
        >>> feats = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
        >>> best_auroc(feats, {"a": torch.tensor([0, 1, 1, 0])})
        {'a': 1.0}
    """
    names = [n for n, lab in labels.items() if 0 < int(lab.sum()) < lab.numel()]
    lab = torch.stack([labels[n].flatten() for n in names], 1)
    if len(lab) != len(features):
        raise ValueError(f"labels have {len(lab)} tokens, features {tuple(features.shape)}")
    auc = roc_auc_columns(features.float(), lab)                    # (C, F)
    if not signed:
        auc = torch.maximum(auc, 1 - auc)
    return dict(zip(names, auc.max(0).values.tolist()))
