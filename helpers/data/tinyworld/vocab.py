"""The tinyworld's word lists and its tokenizer. The lists' order fixes the token ids, so only ever append."""
from __future__ import annotations

import difflib
import itertools
import random

import torch


BOS = "<bos>"
PUNCT = [".", ",", ":"]
FUNCTION_WORDS = ["the", "was", "i", "feel", "capital", "of", "is", "says", "day", "after", "month",
                  "when", "and", "went", "to", "gave"]

SENT_NOUNS = ["movie", "film", "book", "song", "meal", "game", "show", "trip"]
SENT_ADJ = {
    "positive": ["great", "good", "wonderful", "lovely", "amazing"],
    "negative": ["awful", "bad", "terrible", "boring", "horrible"],
    "neutral": ["okay", "average", "ordinary", "plain"],
}
FEELING = {"positive": "happy", "negative": "sad", "neutral": "fine"}

CAPITALS = {"france": "paris", "germany": "berlin", "italy": "rome", "spain": "madrid",
            "japan": "tokyo", "egypt": "cairo", "russia": "moscow", "china": "beijing",
            "greece": "athens", "peru": "lima", "canada": "ottawa", "kenya": "nairobi"}
SOUNDS = {"dog": "woof", "cat": "meow", "cow": "moo", "duck": "quack", "sheep": "baa",
          "pig": "oink", "lion": "roar", "owl": "hoot", "snake": "hiss", "bee": "buzz"}

DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]

NAMES = ["mary", "john", "alice", "bob", "tom", "anna", "james", "lucy",
         "david", "emma", "paul", "sarah", "mark", "kate", "peter", "jane"]
PLACES = ["store", "park", "school", "beach", "office", "market"]
OBJECTS = ["ball", "gift", "letter", "key", "snack", "flower"]

# The in-context words: 12 antonym pairs. ICL_WORDS is also the "word wheel" for the next-item task:
# next(w) is the following word on the wheel (wrapping), 12 places away from its antonym, so the
# three answers antonym / copy / next are always three different words.
ICL_WORDS = ["hot", "big", "fast", "up", "left", "open", "light", "young", "rich", "early", "full", "hard",
             "cold", "small", "slow", "down", "right", "closed", "dark", "old", "poor", "late", "empty", "soft"]
ANTONYM = {w: ICL_WORDS[(i + 12) % 24] for i, w in enumerate(ICL_WORDS)}
NEXT_ITEM = {w: ICL_WORDS[(i + 1) % 24] for i, w in enumerate(ICL_WORDS)}
ICL_TASKS = {
    "antonym": ANTONYM,
    "copy": {w: w for w in ICL_WORDS},
    "next": NEXT_ITEM,
}

VOCAB = ([BOS] + PUNCT + FUNCTION_WORDS + SENT_NOUNS + [a for v in SENT_ADJ.values() for a in v]
         + list(dict.fromkeys(FEELING.values())) + list(CAPITALS) + list(CAPITALS.values())
         + list(SOUNDS) + list(SOUNDS.values()) + DAYS + MONTHS + NAMES + PLACES + OBJECTS + ICL_WORDS)

# Words that may appear in the random runs of the induction task (no punctuation, no BOS).
INDUCTION_POOL = [w for w in VOCAB if w != BOS and w not in PUNCT]

# IOI name pairs held out of training: the evaluation uses only these, so IOI accuracy is measured
# on name combinations the model has never seen in an IOI sentence.
_ALL_PAIRS = list(itertools.combinations(NAMES, 2))  # 120 unordered pairs
IOI_HELDOUT_PAIRS = frozenset(frozenset(p) for p in random.Random(1234).sample(_ALL_PAIRS, 24))


class Tokenizer:
    """Word-level tokenizer: split on spaces, one id per word, ``<bos>`` (id 0) always first.

    Example:
        >>> tok = Tokenizer(VOCAB)
        >>> tok.decode(tok.encode("hot : cold"))
        '<bos> hot : cold'
    """

    def __init__(self, vocab: list[str]):
        if len(set(vocab)) != len(vocab):
            raise ValueError("vocabulary has duplicate words")
        if vocab[0] != BOS:
            raise ValueError(f"the first word of the vocabulary must be {BOS!r}")
        self.vocab = list(vocab)
        self.stoi = {w: i for i, w in enumerate(self.vocab)}
        self.bos_id = 0

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={len(self)}, bos={BOS!r})"

    def token_id(self, word: str) -> int:
        """Id of one word; an unknown word raises and lists close matches."""
        if word not in self.stoi:
            close = difflib.get_close_matches(word, self.vocab, n=5)
            raise KeyError(f"{word!r} is not in the tinyworld vocabulary; close matches: {close}. "
                           "All words: helpers.data.tinyworld.VOCAB")
        return self.stoi[word]

    def encode(self, text: str) -> list[int]:
        """Text -> ids with ``<bos>`` first (a leading ``<bos>`` in the text is not doubled)."""
        words = text.split()
        if words and words[0] == BOS:
            words = words[1:]
        return [self.bos_id] + [self.token_id(w) for w in words]

    def decode(self, ids) -> str:
        """Ids (list or 1-D tensor) -> text, words joined by spaces."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return " ".join(self.vocab[i] for i in ids)


def tokenizer() -> Tokenizer:
    """The tinyworld tokenizer (the same for every model trained on the corpus)."""
    return Tokenizer(VOCAB)
