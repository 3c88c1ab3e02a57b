"""A stylometry-like task made by the project: which of two "authors" wrote a sentence?

Both authors draw every word from the same lists with the same probabilities; they differ only in **word
order habits**, so every sentence of one author is a permutation of a possible sentence of the other. Author 0
usually puts the time phrase first ("in the morning the cat found the small red box") and the size before the
colour; author 1 usually puts the time phrase last and the colour first ("the cat found the red small box in
the morning"). A bag of words carries no signal by construction; the habits are probabilistic, so the best
possible accuracy is ``habit`` itself (two habits that disagree leave a coin flip: p^2 + p(1 - p) = p).

Example:
    >>> texts, authors = two_authors(6, seed=0)
    >>> len(texts), sorted(set(authors.tolist()))
    (6, [0, 1])
    >>> bag_of_words(["a b a", "b c"], n=1)[0].tolist()
    [[2.0, 1.0, 0.0], [0.0, 1.0, 1.0]]
"""
from __future__ import annotations

import random
from collections import Counter

import torch

SUBJECTS = ["the cat", "the old man", "my sister", "the teacher", "a small dog", "the farmer", "our neighbour",
            "the child", "a tall woman", "the doctor"]
VERBS = ["found", "painted", "carried", "lost", "bought", "cleaned", "opened", "dropped", "hid", "sold"]
NOUNS = ["box", "ball", "chair", "book", "door", "cup", "bag", "lamp", "coat", "boat"]
SIZES = ["big", "small", "tiny", "huge", "little", "large"]
COLOURS = ["red", "green", "blue", "black", "white", "yellow"]
TIMES = ["in the morning", "after lunch", "on sunday", "at night", "before dinner", "last week",
         "in the evening", "at noon"]


def sentence(rng: random.Random, author: int, habit: float = 0.8) -> str:
    """One sentence by ``author`` (0 or 1); each of the two order habits is followed with probability ``habit``."""
    if author not in (0, 1) or not 0.5 <= habit <= 1:
        raise ValueError(f"author must be 0 or 1 and habit in [0.5, 1], got {author} and {habit}")
    subj, verb, noun, size, colour, when = (rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(NOUNS),
                                            rng.choice(SIZES), rng.choice(COLOURS), rng.choice(TIMES))
    p = habit if author == 0 else 1 - habit  # probability of author 0's way
    adjectives = f"{size} {colour}" if rng.random() < p else f"{colour} {size}"
    clause = f"{subj} {verb} the {adjectives} {noun}"
    return f"{when} {clause} ." if rng.random() < p else f"{clause} {when} ."


def two_authors(n: int, seed: int = 0, habit: float = 0.8) -> tuple[list[str], torch.Tensor]:
    """``n`` sentences, authors alternating 0, 1, 0, ... (balanced); returns ``(texts, authors (n,) long)``."""
    if n < 2:
        raise ValueError(f"need at least 2 sentences, got {n}")
    rng = random.Random(seed)
    authors = [i % 2 for i in range(n)]
    return [sentence(rng, a, habit) for a in authors], torch.tensor(authors)


def bag_of_words(texts: list[str], n: int = 1, vocab: list[str] | None = None) -> tuple[torch.Tensor, list[str]]:
    """Counts of word n-grams (n = 1: words, n = 2: pairs of neighbours) per text, (len(texts), len(vocab)).

    ``vocab`` defaults to the n-grams of ``texts`` in order of first appearance; pass the training vocabulary
    when featurising test texts (unknown n-grams are dropped).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = [[" ".join(w[i:i + n]) for i in range(len(w) - n + 1)] for w in (t.split() for t in texts)]
    if vocab is None:
        vocab = list(dict.fromkeys(g for gs in grams for g in gs))
    index = {g: i for i, g in enumerate(vocab)}
    out = torch.zeros(len(texts), len(vocab))
    for row, gs in enumerate(grams):
        for g, c in Counter(gs).items():
            if g in index:
                out[row, index[g]] = c
    return out, vocab


@torch.no_grad()
def sentence_embeddings(model: torch.nn.Module, preprocess, texts: list[str], layers: tuple[int, ...] = (-1,),
                        batch: int = 100) -> dict[int, torch.Tensor]:
    """Mean-pooled (over the attention mask), L2-normalised sentence embeddings of a Hugging Face encoder: the
    all-MiniLM-L6-v2 recipe, for each hidden state in ``layers`` (0 = the embedding layer, -1 = the last).

    Returns ``{layer: (len(texts), d)}`` from one forward pass per batch. ``preprocess`` turns a list of strings
    into the model's keyword inputs (``info.preprocess`` of ``zoo.load("minilm")``).
    """
    if not texts:
        raise ValueError("no texts given")
    device = next(model.parameters()).device
    out: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    for i in range(0, len(texts), batch):
        inputs = {k: v.to(device) for k, v in preprocess(texts[i:i + batch]).items()}
        hidden = model(**inputs, output_hidden_states=True).hidden_states       # n_layers + 1 of (B, T, d)
        mask = inputs["attention_mask"].unsqueeze(-1).float()                   # (B, T, 1)
        for layer in layers:
            pooled = (hidden[layer] * mask).sum(1) / mask.sum(1).clamp_min(1)
            out[layer].append(torch.nn.functional.normalize(pooled, dim=-1).cpu())
    return {layer: torch.cat(v) for layer, v in out.items()}
