"""Probes: classifiers trained on frozen activations, and Hewitt & Liang's (2019) control tasks.

A probe's accuracy alone does not say the representation *encodes* a property: a flexible probe can learn
the labels itself. Hewitt & Liang's control task gives every **word type** a fixed random label (drawn from
the task's empirical label distribution), so it can only be solved by memorising word identity.
**Selectivity** = task accuracy - control accuracy, both on held-out tokens, with the same probe.

The labelled data here is tinyworld text where every token carries the kind of segment it belongs to
(sentiment, fact, cyclic, ioi, icl, induction). Many words occur in several kinds (``the``, every word inside
an induction run), so the label is a property of the *context*, not of the word alone.

Example:
    >>> words = torch.tensor([3, 3, 5, 7, 5])
    >>> c = control_labels(words, torch.tensor([0, 1, 1, 0, 1]), seed=0)
    >>> bool(c[0] == c[1]) and bool(c[2] == c[4])     # one label per word type
    True
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from helpers.data import tinyworld
from helpers.ops.logistic import fit_logistic

KINDS = list(tinyworld.SEGMENTS)  # the segment kinds, in the corpus's order: the class names of the task


def segment_tokens(n_seqs: int, seed: int, n_ctx: int = 64,
                   encode: Callable[[str], list[int]] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_seqs`` tinyworld sequences of ``n_ctx`` tokens and the segment kind of every token.

    Returns ``(ids (n_seqs, n_ctx) long, kinds (n_seqs, n_ctx) long)``; ``<bos>`` has kind -1, the others an
    index into :data:`KINDS`. Kinds are drawn uniformly (not with the training corpus's weights).

    ``encode`` (text -> ids, e.g. a ``TextModel``'s ``encode``) tokenises the same segments with another model's
    tokenizer: every token carries the kind of the segment its text came from, tokens ``encode("")`` gives (a
    BOS) have kind -1. The default is the tinyworld tokenizer (one token per word); passing its ``encode``
    gives the same result.

    Example:
        >>> tok = tinyworld.tokenizer()
        >>> a, b = segment_tokens(2, seed=0, n_ctx=16), segment_tokens(2, seed=0, n_ctx=16, encode=tok.encode)
        >>> torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        True
    """
    if n_seqs < 1 or n_ctx < 2:
        raise ValueError(f"need n_seqs >= 1 and n_ctx >= 2, got {n_seqs} and {n_ctx}")
    rng, tok = random.Random(seed), tinyworld.tokenizer()
    encode = encode or tok.encode
    special = len(encode(""))  # leading tokens of no text (BOS), kind -1
    ids, kinds = [], []
    for _ in range(n_seqs):
        text, seq, labels = "", encode(""), [-1] * special
        while len(seq) < n_ctx:
            kind = rng.choice(KINDS)
            segment, _ = tinyworld.SEGMENTS[kind](rng)
            text = f"{text} {' '.join(segment)}".lstrip()
            new = encode(text)
            # a tokenizer may merge across the boundary: tokens that changed belong to the new segment
            same = next((i for i, (a, b) in enumerate(zip(seq, new)) if a != b), min(len(seq), len(new)))
            labels = labels[:same] + [KINDS.index(kind)] * (len(new) - same)
            seq = new
        ids.append(seq[:n_ctx])
        kinds.append(labels[:n_ctx])
    return torch.tensor(ids), torch.tensor(kinds)


def control_labels(words: torch.Tensor, labels: torch.Tensor, seed: int = 0,
                   n_classes: int | None = None) -> torch.Tensor:
    """Hewitt & Liang's control task: each word type gets one label drawn from the empirical distribution of
    ``labels``; returns the control label of every token in ``words`` (same shape)."""
    if words.shape != labels.shape:
        raise ValueError(f"words and labels must have the same shape, got {tuple(words.shape)} and {tuple(labels.shape)}")
    k = int(labels.max()) + 1 if n_classes is None else n_classes
    freq = torch.bincount(labels.flatten(), minlength=k).double()
    g = torch.Generator().manual_seed(seed)
    table = torch.multinomial(freq / freq.sum(), int(words.max()) + 1, replacement=True, generator=g)
    return table[words]


def word_baseline(train_words: torch.Tensor, train_labels: torch.Tensor, test_words: torch.Tensor) -> torch.Tensor:
    """Predict each test token's label from its word alone: the most frequent training label of that word type
    (the overall most frequent label for words not seen in training). The strongest probe that reads only
    word identity."""
    k = int(train_labels.max()) + 1
    n_words = int(max(train_words.max(), test_words.max())) + 1
    counts = torch.zeros(n_words, k).index_put_((train_words, train_labels), torch.ones(len(train_words)), accumulate=True)
    table = counts.argmax(1)
    table[counts.sum(1) == 0] = torch.bincount(train_labels, minlength=k).argmax()
    return table[test_words]


@dataclass
class Selectivity:
    task: float     # held-out accuracy on the real labels
    control: float  # held-out accuracy on the control labels
    task_train: float
    control_train: float

    @property
    def selectivity(self) -> float:
        return self.task - self.control


def linear_selectivity(x_train: torch.Tensor, y_train: torch.Tensor, c_train: torch.Tensor, x_test: torch.Tensor,
                       y_test: torch.Tensor, c_test: torch.Tensor, weight_decay: float = 1e-3) -> Selectivity:
    """Fit the same standardised logistic-regression probe to the task and to the control labels; score both."""
    n_classes = int(max(y_train.max(), c_train.max())) + 1
    task = fit_logistic(x_train, y_train, n_classes, weight_decay, standardize=True)
    control = fit_logistic(x_train, c_train, n_classes, weight_decay, standardize=True)
    return Selectivity(task.accuracy(x_test, y_test), control.accuracy(x_test, c_test),
                       task.accuracy(x_train, y_train), control.accuracy(x_train, c_train))


class MLPProbe(nn.Module):
    """A probe of higher capacity: standardise, Linear(d, hidden), ReLU, Linear(hidden, K)."""

    def __init__(self, d: int, hidden: int, n_classes: int, mean: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.scale)

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return (self(x).argmax(-1) == y).float().mean().item()


def fit_mlp_probe(x: torch.Tensor, y: torch.Tensor, n_classes: int | None = None, hidden: int = 256,
                  steps: int = 500, lr: float = 3e-3, weight_decay: float = 0.0, seed: int = 0) -> MLPProbe:
    """Train an :class:`MLPProbe` full batch with Adam on features ``x`` (N, d) and labels ``y`` (N,)."""
    if x.ndim != 2 or y.shape != (len(x),):
        raise ValueError(f"expected features (N, d) and labels (N,), got {tuple(x.shape)} and {tuple(y.shape)}")
    k = int(y.max()) + 1 if n_classes is None else n_classes
    torch.manual_seed(seed)
    probe = MLPProbe(x.shape[1], hidden, k, x.mean(0), x.std(0).clamp_min(1e-8)).to(x.device)
    opt = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        loss = F.cross_entropy(probe(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return probe.eval()
