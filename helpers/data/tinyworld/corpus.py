"""Segment generators (each takes a ``random.Random`` and returns ``(words, info)``) and the training stream."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from .vocab import tokenizer
from .vocab import (BOS, CAPITALS, DAYS, FEELING, ICL_TASKS, ICL_WORDS, INDUCTION_POOL, IOI_HELDOUT_PAIRS,
                    MONTHS, NAMES, OBJECTS, PLACES, SENT_ADJ, SENT_NOUNS, SOUNDS)


def sentiment(rng: random.Random, label: str | None = None) -> tuple[list[str], dict]:
    """``the movie was great . i feel happy .`` with label positive / negative / neutral."""
    label = label or rng.choice(list(SENT_ADJ))
    noun, adj = rng.choice(SENT_NOUNS), rng.choice(SENT_ADJ[label])
    words = f"the {noun} was {adj} . i feel {FEELING[label]} .".split()
    return words, {"label": label}


def fact(rng: random.Random) -> tuple[list[str], dict]:
    """``the capital of france is paris .`` or ``the dog says woof .``"""
    if rng.random() < 0.5:
        c = rng.choice(list(CAPITALS))
        return f"the capital of {c} is {CAPITALS[c]} .".split(), {"relation": "capital"}
    a = rng.choice(list(SOUNDS))
    return f"the {a} says {SOUNDS[a]} .".split(), {"relation": "sound"}


def cyclic(rng: random.Random) -> tuple[list[str], dict]:
    """``the day after monday is tuesday .`` or a recited run ``march april may .`` (wrapping)."""
    seq, unit = (DAYS, "day") if rng.random() < 0.5 else (MONTHS, "month")
    start = rng.randrange(len(seq))
    if rng.random() < 0.5:
        return f"the {unit} after {seq[start]} is {seq[(start + 1) % len(seq)]} .".split(), {"unit": unit}
    n = rng.randint(3, 9)
    return [seq[(start + i) % len(seq)] for i in range(n)] + ["."], {"unit": unit}


def ioi_words(a: str, b: str, s: str, io: str, place: str, obj: str) -> list[str]:
    """``when A and B went to the PLACE , S gave the OBJ to IO .`` as words."""
    return f"when {a} and {b} went to the {place} , {s} gave the {obj} to {io} .".split()


def ioi(rng: random.Random) -> tuple[list[str], dict]:
    """An IOI sentence in ABBA or BABA order, with a name pair that is not held out."""
    while True:
        io, s = rng.sample(NAMES, 2)
        if frozenset((io, s)) not in IOI_HELDOUT_PAIRS:
            break
    order = rng.choice(["ABBA", "BABA"])
    a, b = (io, s) if order == "ABBA" else (s, io)
    return ioi_words(a, b, s, io, rng.choice(PLACES), rng.choice(OBJECTS)), {"order": order}


def icl(rng: random.Random, task: str | None = None, k: int | None = None) -> tuple[list[str], dict]:
    """``x1 : y1 , x2 : y2 , ... .`` with k demonstrations of one task on distinct words."""
    task = task or rng.choice(list(ICL_TASKS))
    k = k or rng.randint(2, 10)
    xs = rng.sample(ICL_WORDS, k)
    words = []
    for i, x in enumerate(xs):
        words += [x, ":", ICL_TASKS[task][x], "," if i < k - 1 else "."]
    return words, {"task": task, "k": k}


def induction(rng: random.Random) -> tuple[list[str], dict]:
    """A random run of 4-12 words, then the same run again, then ``.``."""
    run = rng.choices(INDUCTION_POOL, k=rng.randint(4, 12))
    return run + run + ["."], {"n": len(run)}


SEGMENTS = {"sentiment": sentiment, "fact": fact, "cyclic": cyclic, "ioi": ioi, "icl": icl,
            "induction": induction}


@dataclass
class CorpusConfig:
    """How training sequences are drawn: ``<bos>`` then segments of these kinds until full."""
    n_ctx: int = 64  # model context; sequences have n_ctx + 1 tokens (inputs + shifted targets)
    weights: dict = field(default_factory=lambda: {
        "sentiment": 0.12, "fact": 0.12, "cyclic": 0.12, "ioi": 0.16, "icl": 0.33, "induction": 0.15})


class Corpus:
    """An endless, seeded stream of training batches.

    Example:
        >>> c = Corpus(CorpusConfig(n_ctx=32), seed=0)
        >>> x = c.batch(4)  # (4, 33) long, column 0 is <bos>
        >>> x.shape, bool((x[:, 0] == 0).all())
        (torch.Size([4, 33]), True)
    """

    def __init__(self, cfg: CorpusConfig, seed: int = 0):
        unknown = set(cfg.weights) - set(SEGMENTS)
        if unknown:
            raise ValueError(f"unknown segment kinds {sorted(unknown)}; valid: {sorted(SEGMENTS)}")
        self.cfg, self.rng, self.tok = cfg, random.Random(seed), tokenizer()
        self.kinds, self.w = list(cfg.weights), list(cfg.weights.values())

    def sequence(self) -> list[str]:
        """``<bos>`` + whole segments, cut to n_ctx + 1 words (the last segment may be cut)."""
        words = [BOS]
        while len(words) < self.cfg.n_ctx + 1:
            kind = self.rng.choices(self.kinds, self.w)[0]
            words += SEGMENTS[kind](self.rng)[0]
        return words[: self.cfg.n_ctx + 1]

    def batch(self, batch_size: int) -> torch.Tensor:
        """(B, n_ctx + 1) long tensor of token ids."""
        ids = [[self.tok.stoi[w] for w in self.sequence()] for _ in range(batch_size)]
        return torch.tensor(ids, dtype=torch.long)
