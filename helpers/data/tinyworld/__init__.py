"""tinyworld: a generated English-like corpus with known structure, its tokenizer and its held-out prompts
(the evaluation of a model on them is :mod:`helpers.zoo.evals`).

The corpus is made of short *segments*, each one of a task whose answer we know:

| kind        | example                                                                 |
|-------------|-------------------------------------------------------------------------|
| sentiment   | ``the movie was great . i feel happy .`` (positive, negative, neutral)  |
| fact        | ``the capital of france is paris .`` / ``the dog says woof .``          |
| cyclic      | ``the day after monday is tuesday .`` / ``march april may june .``      |
| ioi         | ``when mary and john went to the park , john gave the ball to mary .``  |
| icl         | ``hot : cold , big : small , fast : slow .`` (antonym, copy or next)    |
| induction   | ``owl left march bee owl left march bee .`` (a random run, repeated)    |

Two traps found by the pilots are closed by construction:

* IOI sentences come in both name orders (ABBA and BABA), so "answer the first name" scores 50 %.
* The three in-context tasks (``antonym``, ``copy``, ``next``) use the SAME 24 words and are equally
  frequent, so ``hot :`` alone is ambiguous; only the demonstrations of a segment tell the task.

Sequences are ``<bos>`` followed by segments until the context is full. Everything is deterministic
from a seed. Evaluation prompts come from a separate seed; the IOI ones use name pairs that never
occur together in training.

Example:
    >>> from helpers.data.tinyworld import tokenizer
    >>> tok = tokenizer()
    >>> ids = tok.encode("the capital of france is")
    >>> ids[0] == tok.bos_id, tok.decode(ids)
    (True, '<bos> the capital of france is')
"""
from __future__ import annotations

from .corpus import SEGMENTS, Corpus, CorpusConfig, cyclic, fact, icl, induction, ioi, ioi_words, sentiment
from .prompts import (Prompt, cyclic_prompts, fact_prompts, icl_prompts, induction_prompts, ioi_prompts,
                      sentiment_prompts)

from .vocab import (ANTONYM, Tokenizer, tokenizer, BOS, CAPITALS, DAYS, FEELING, FUNCTION_WORDS, ICL_TASKS, ICL_WORDS, INDUCTION_POOL,
                    IOI_HELDOUT_PAIRS, MONTHS, NAMES, NEXT_ITEM, OBJECTS, PLACES, PUNCT, SENT_ADJ, SENT_NOUNS,
                    SOUNDS, VOCAB)

__all__ = [
    "ANTONYM", "BOS", "CAPITALS", "Corpus", "CorpusConfig", "DAYS", "FEELING", "FUNCTION_WORDS", "ICL_TASKS",
    "ICL_WORDS", "INDUCTION_POOL", "IOI_HELDOUT_PAIRS", "MONTHS", "NAMES", "NEXT_ITEM", "OBJECTS", "PLACES",
    "PUNCT", "Prompt", "SEGMENTS", "SENT_ADJ", "SENT_NOUNS", "SOUNDS", "Tokenizer", "VOCAB", "cyclic",
    "cyclic_prompts", "fact", "fact_prompts", "icl", "icl_prompts", "induction", "induction_prompts", "ioi",
    "ioi_prompts", "ioi_words", "sentiment", "sentiment_prompts", "tokenizer",
]
