"""Held-out prompt sets. A prompt is text ending where the model must answer, plus the answer.

Example:
    >>> p = ioi_prompts(4)[0]
    >>> p.answer == p.meta["io"]
    True
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from .corpus import SEGMENTS, ioi_words, sentiment
from .vocab import (CAPITALS, DAYS, FEELING, ICL_TASKS, ICL_WORDS, INDUCTION_POOL, IOI_HELDOUT_PAIRS, MONTHS, NAMES, OBJECTS,
                    PLACES, SENT_ADJ, SOUNDS)


@dataclass
class Prompt:
    text: str  # without <bos>; the tokenizer adds it
    answer: str
    meta: dict = field(default_factory=dict)


def _context(rng: random.Random, p: float = 0.5) -> str:
    """A random preceding sentence with probability p (else none), so a prompt is not always right
    after <bos>."""
    if rng.random() >= p:
        return ""
    kind = rng.choice(["sentiment", "fact", "cyclic"])
    return " ".join(SEGMENTS[kind](rng)[0]) + " "


def fact_prompts(seed: int = 1000) -> list[Prompt]:
    """Every country and animal twice: after <bos> and after a random sentence."""
    rng, out = random.Random(seed), []
    for p_ctx in (0.0, 1.0):
        for c, cap in CAPITALS.items():
            out.append(Prompt(f"{_context(rng, p_ctx)}the capital of {c} is", cap, {"relation": "capital"}))
        for a, snd in SOUNDS.items():
            out.append(Prompt(f"{_context(rng, p_ctx)}the {a} says", snd, {"relation": "sound"}))
    return out


def cyclic_prompts(seed: int = 1001) -> list[Prompt]:
    """``the day after X is`` / ``the month after X is`` for every X, and recited runs to continue."""
    rng, out = random.Random(seed), []
    for seq, unit in ((DAYS, "day"), (MONTHS, "month")):
        for i, x in enumerate(seq):
            out.append(Prompt(f"{_context(rng)}the {unit} after {x} is", seq[(i + 1) % len(seq)],
                              {"task": f"{unit}-after"}))
        for i in range(len(seq)):
            n = rng.randint(2, 5)
            run = [seq[(i + j) % len(seq)] for j in range(n)]
            out.append(Prompt(_context(rng) + " ".join(run), seq[(i + n) % len(seq)], {"task": f"{unit}-run"}))
    return out


def sentiment_prompts(n: int = 60, seed: int = 1002) -> list[Prompt]:
    """``the N was ADJ . i feel`` -> happy / sad / fine, balanced over the three labels."""
    rng, out = random.Random(seed), []
    for i in range(n):
        label = list(SENT_ADJ)[i % 3]
        words, _ = sentiment(rng, label)
        out.append(Prompt(_context(rng) + " ".join(words[:-2]), FEELING[label], {"label": label}))
    return out


def ioi_prompts(n: int = 200, seed: int = 1003) -> list[Prompt]:
    """IOI prompts on held-out name pairs, half ABBA and half BABA.

    ``meta`` has ``io``, ``s``, ``order`` and ``abc``: the same prompt with the second S mention
    replaced by a third name C (the corruption that breaks the "name not repeated" cue).
    """
    rng, out, pairs = random.Random(seed), [], sorted(tuple(sorted(p)) for p in IOI_HELDOUT_PAIRS)
    for i in range(n):
        io, s = rng.sample(rng.choice(pairs), 2)
        order = "ABBA" if i % 2 == 0 else "BABA"
        a, b = (io, s) if order == "ABBA" else (s, io)
        c = rng.choice([x for x in NAMES if x not in (io, s)])
        place, obj = rng.choice(PLACES), rng.choice(OBJECTS)
        clean = " ".join(ioi_words(a, b, s, io, place, obj)[:-2])
        abc = " ".join(ioi_words(a, b, c, io, place, obj)[:-2])
        out.append(Prompt(clean, io, {"io": io, "s": s, "c": c, "order": order, "abc": abc}))
    return out


def icl_prompts(task: str, k: int, n: int = 100, seed: int = 1004) -> list[Prompt]:
    """k demonstrations of ``task`` then a query word; neither it nor its answers occur in the demonstrations.

    ``meta["answers"]`` holds the answer of every task for the query, so zero-shot (k=0) prompts
    can be scored against each reading.
    """
    if task not in ICL_TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {sorted(ICL_TASKS)}")
    rng, out = random.Random(seed * 7919 + k * 31 + sorted(ICL_TASKS).index(task)), []
    for _ in range(n):
        q = rng.choice(ICL_WORDS)
        # Demonstrations never show the query or any of its three answers, so nothing can be copied.
        banned = {q} | {m[q] for m in ICL_TASKS.values()}
        xs = rng.sample([x for x in ICL_WORDS if x not in banned and ICL_TASKS[task][x] not in banned], k)
        demos = "".join(f"{x} : {ICL_TASKS[task][x]} , " for x in xs)
        out.append(Prompt(f"{demos}{q} :", ICL_TASKS[task][q],
                          {"task": task, "k": k, "query": q, "answers": {t: m[q] for t, m in ICL_TASKS.items()}}))
    return out


def induction_prompts(n: int = 100, seed: int = 1005) -> list[Prompt]:
    """A random run of 8 words repeated; the prompt stops at a random point of the repeat."""
    rng, out = random.Random(seed), []
    for _ in range(n):
        run = rng.choices(INDUCTION_POOL, k=8)
        j = rng.randint(1, 7)  # already j words of the repeat shown
        out.append(Prompt(" ".join(run + run[:j]), run[j], {"shown": j}))
    return out
