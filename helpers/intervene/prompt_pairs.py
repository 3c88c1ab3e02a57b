"""Clean/corrupted prompt pairs in any language model's tokens, for patching: :func:`token_pairs`.

Patching copies position p of one run into position p of the other, so every pair must have one token length
and all pairs must line up. With a word-level tokenizer (tinyworld) the IOI template gives that for free; a BPE
tokenizer may split a name into two tokens, or split two names differently. :func:`token_pairs` keeps the pairs
whose clean and corrupted prompts have the same length and differ at the same positions as most pairs do, and
whose answer and wrong word start with different tokens (else the logit difference is 0 by construction).

    pairs = ioi_pairs(ioi_prompts(96, seed=5_000))       # (clean text, corrupted text, answer, wrong word)
    pairs = read_pairs("my_pairs.txt")                   # lines "clean | corrupted | answer | wrong"
    batch = token_pairs(lm, pairs, n=48)                 # lm: a helpers.zoo TextModel (encode, word_id)
    batch.clean, batch.corrupt, batch.answer, batch.wrong, batch.changed

Example:
    >>> class Words:                                     # a word-level stand-in for a TextModel
    ...     vocab = "<bos> when ann and bob met , bob waved to cat".split()
    ...     def encode(self, text): return [0] + [self.vocab.index(w) for w in text.split()]
    ...     def word_id(self, word): return self.vocab.index(word)
    >>> b = token_pairs(Words(), [("when ann and bob met , bob waved to", "when ann and bob met , cat waved to",
    ...                            "ann", "bob")])
    >>> b.clean.shape, b.changed, b.answer.tolist(), b.wrong.tolist()
    (torch.Size([1, 10]), [7], [2], [4])
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import nn

Pair = tuple  # (clean text, corrupted text, answer word, wrong word)


@dataclass
class PromptPairs:
    """Token ids of N kept pairs, (N, T) each, their answer and wrong token ids (N,), and where they differ."""
    clean: torch.Tensor
    corrupt: torch.Tensor
    answer: torch.Tensor
    wrong: torch.Tensor
    changed: list[int]          # the positions where clean and corrupted prompts differ (the same in every pair)
    kept: list[int] = field(default_factory=list)   # indices of the kept pairs in the input
    offered: int = 0


def ioi_pairs(prompts: Sequence[Any]) -> list[Pair]:
    """IOI prompts of ``helpers.data.tinyworld.ioi_prompts`` as (clean, ABC-corrupted, indirect object, subject)."""
    return [(p.text, p.meta["abc"], p.meta["io"], p.meta["s"]) for p in prompts]


def read_pairs(path: str) -> list[Pair]:
    """Pairs from a text file, one a line: ``clean prompt | corrupted prompt | answer word | wrong word``.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "pairs.txt"
        >>> _ = p.write_text("The capital of France is | The capital of Italy is | Paris | Rome\\n\\n")
        >>> read_pairs(str(p))
        [('The capital of France is', 'The capital of Italy is', 'Paris', 'Rome')]
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"prompt_file {path!r} is not a file; give a text file with one pair a line: "
                                f"clean prompt | corrupted prompt | answer word | wrong word.")
    pairs = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 4 or not all(parts):
            raise ValueError(f"{path}, line {number}: expected 'clean prompt | corrupted prompt | answer word | "
                             f"wrong word' (four non-empty fields), got {line.strip()!r}.")
        pairs.append(tuple(parts))
    if not pairs:
        raise ValueError(f"prompt_file {path!r} has no pairs.")
    return pairs


def token_pairs(lm: Any, pairs: Sequence[Pair], n: Optional[int] = None, at_least: int = 1) -> PromptPairs:
    """Encode ``pairs`` with ``lm`` (``encode``, ``word_id``) and keep the first ``n`` that line up (module docstring).

    Raises ``ValueError`` when fewer than ``at_least`` pairs remain, saying how many were dropped and why.
    """
    enc = [(lm.encode(c), lm.encode(r), lm.word_id(a), lm.word_id(w)) for c, r, a, w in pairs]

    def shape(c: list, r: list) -> Optional[tuple]:
        if len(c) != len(r):
            return None
        diff = tuple(i for i, (x, y) in enumerate(zip(c, r)) if x != y)
        return (len(c), diff) if diff else None

    shapes = [shape(c, r) if a != w else None for c, r, a, w in enc]
    counts = Counter(s for s in shapes if s is not None)
    if not counts:
        raise ValueError(f"None of the {len(pairs)} pairs can be patched with this tokenizer: each needs a clean and "
                         f"a corrupted prompt of one token length that differ somewhere, and answer and wrong words "
                         f"that start with different tokens.")
    common = counts.most_common(1)[0][0]
    kept = [i for i, s in enumerate(shapes) if s == common][:n]
    if len(kept) < at_least:
        raise ValueError(f"Only {len(kept)} of {len(pairs)} pairs line up ({common[0]} tokens, differing at "
                         f"positions {list(common[1])}); at least {at_least} are needed. Use prompts whose corruption "
                         f"keeps the token length and changes the same positions.")
    pick = lambda j: torch.tensor([enc[i][j] for i in kept], dtype=torch.long)  # noqa: E731
    return PromptPairs(pick(0), pick(1), pick(2), pick(3), list(common[1]), kept, len(pairs))


def head_outputs(lm: Any) -> tuple[list[str], int]:
    """The attention output projection of every block (its *input* is the heads' outputs side by side) and the
    width of one head: ``(names, head width)``; patch ``[..., h * width:(h + 1) * width]`` of the input for head h.

    The projection is the last leaf with a 2-D weight inside ``lm.attn[i]`` (``attn.proj``, GPT-2's ``c_proj``,
    Llama's ``o_proj``, GPT-NeoX's ``dense``); its input width is n_heads x head width.
    """
    names = []
    for attn in lm.attn:
        leaves = [n for n, m in lm.module(attn).named_modules()
                  if not list(m.children()) and isinstance(getattr(m, "weight", None), torch.Tensor)
                  and m.weight.dim() == 2]
        if not leaves:
            raise ValueError(f"{attn} has no linear output projection; its children: "
                             f"{[n for n, _ in lm.module(attn).named_children()]}.")
        names.append(f"{attn}.{leaves[-1]}")
    proj = lm.module(names[0])
    width = proj.in_features if isinstance(proj, nn.Linear) else int(proj.weight.shape[0])  # Conv1D: (in, out)
    if width % lm.n_heads:
        raise ValueError(f"{names[0]} takes {width} inputs, not a multiple of {lm.n_heads} heads.")
    return names, width // lm.n_heads
