"""tinyworld: a generated English-like corpus with known structure, its tokenizer and held-out evaluations.

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
    >>> tok = tokenizer()
    >>> ids = tok.encode("the capital of france is")
    >>> ids[0] == tok.bos_id, tok.decode(ids)
    (True, '<bos> the capital of france is')
"""
from __future__ import annotations

import difflib
import itertools
import random
from dataclasses import dataclass, field

import torch

# ---------------------------------------------------------------------------------------------
# The world: word lists. Order matters (it fixes the token ids), so only ever append.

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


# ---------------------------------------------------------------------------------------------
# Tokenizer

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
                           "All words: helpers.tinyworld.VOCAB")
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


# ---------------------------------------------------------------------------------------------
# Segment generators. Each takes a random.Random and returns (words, info).

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


# ---------------------------------------------------------------------------------------------
# Held-out prompt sets. A prompt is text ending where the model must answer, plus the answer.

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


# ---------------------------------------------------------------------------------------------
# Evaluation

@torch.no_grad()
def next_token_logits(model: torch.nn.Module, texts: list[str], tok: Tokenizer | None = None) -> torch.Tensor:
    """Logits of the next token after each text, (N, V); texts of equal length are batched together."""
    tok = tok or tokenizer()
    ids = [tok.encode(t) for t in texts]
    out = torch.empty(len(ids), len(tok))
    by_len: dict[int, list[int]] = {}
    for i, x in enumerate(ids):
        by_len.setdefault(len(x), []).append(i)
    device = next(model.parameters()).device
    for idx in by_len.values():
        x = torch.tensor([ids[i] for i in idx], device=device)  # (n, T)
        out[idx] = model(x)[:, -1].float().cpu()  # (n, V)
    return out


def accuracy(model: torch.nn.Module, prompts: list[Prompt], tok: Tokenizer | None = None) -> float:
    """Fraction of prompts whose argmax next token is the answer."""
    tok = tok or tokenizer()
    pred = next_token_logits(model, [p.text for p in prompts], tok).argmax(-1)
    target = torch.tensor([tok.stoi[p.answer] for p in prompts])
    return (pred == target).float().mean().item()


def ioi_logit_diff(model: torch.nn.Module, prompts: list[Prompt], corrupt: bool = False,
                   tok: Tokenizer | None = None) -> torch.Tensor:
    """logit(IO) - logit(S) per prompt, on the clean or the ABC-corrupted text, (N,)."""
    tok = tok or tokenizer()
    logits = next_token_logits(model, [p.meta["abc"] if corrupt else p.text for p in prompts], tok)
    io = torch.tensor([tok.stoi[p.meta["io"]] for p in prompts])
    s = torch.tensor([tok.stoi[p.meta["s"]] for p in prompts])
    r = torch.arange(len(prompts))
    return logits[r, io] - logits[r, s]


def zero_shot_split(model: torch.nn.Module, tok: Tokenizer | None = None) -> dict:
    """``<bos> w :`` for every ICL word: which reading wins (argmax share) and the mean probability
    share of each reading among the three candidates (chance = 1/3 each)."""
    tok = tok or tokenizer()
    probs = next_token_logits(model, [f"{w} :" for w in ICL_WORDS], tok).softmax(-1)  # (24, V)
    cand = torch.stack([probs[torch.arange(24), [tok.stoi[ICL_TASKS[t][w]] for w in ICL_WORDS]]
                        for t in ICL_TASKS], 1)  # (24, 3) in ICL_TASKS order
    share = cand / cand.sum(1, keepdim=True)
    win = probs.argmax(-1)
    names = list(ICL_TASKS)
    argmax_share = {t: sum(int(win[i]) == tok.stoi[ICL_TASKS[t][w]] for i, w in enumerate(ICL_WORDS)) / 24
                    for t in names}
    return {"argmax_share": argmax_share,
            "prob_share": {t: round(share[:, j].mean().item(), 4) for j, t in enumerate(names)},
            "candidate_mass": round(cand.sum(1).mean().item(), 4)}


ICL_K = [1, 2, 3, 4, 6]
ICL_GATE_K = 4


def evaluate(model: torch.nn.Module, n: int = 200, tok: Tokenizer | None = None) -> dict:
    """All held-out metrics of a tinyworld model (about a second on a CPU).

    Example:
        >>> m = evaluate(model)                            # doctest: +SKIP
        >>> m["fact"]["capital"], m["icl"]["antonym"]["4"]  # doctest: +SKIP
    """
    tok = tok or tokenizer()
    was_training = model.training
    model.eval()
    res: dict = {}
    fp = fact_prompts()
    res["fact"] = {r: accuracy(model, [p for p in fp if p.meta["relation"] == r], tok) for r in ("capital", "sound")}
    cp = cyclic_prompts()
    res["cyclic"] = {t: accuracy(model, [p for p in cp if p.meta["task"] == t], tok)
                     for t in ("day-after", "day-run", "month-after", "month-run")}
    sp = sentiment_prompts()
    res["sentiment"] = {lab: accuracy(model, [p for p in sp if p.meta["label"] == lab], tok) for lab in SENT_ADJ}
    ip = ioi_prompts(n)
    clean, abc = ioi_logit_diff(model, ip, False, tok), ioi_logit_diff(model, ip, True, tok)
    res["ioi"] = {
        "acc": accuracy(model, ip, tok),
        "acc_ABBA": accuracy(model, [p for p in ip if p.meta["order"] == "ABBA"], tok),
        "acc_BABA": accuracy(model, [p for p in ip if p.meta["order"] == "BABA"], tok),
        "logit_diff": round(clean.mean().item(), 4),
        "logit_diff_abc": round(abc.mean().item(), 4),
        # fraction of the clean logit difference that the ABC corruption removes (0 if there is none)
        "abc_drop": round(1 - abc.mean().item() / clean.mean().item(), 4) if clean.mean() > 0 else 0.0,
    }
    res["icl"] = {t: {str(k): accuracy(model, icl_prompts(t, k, n // 2), tok) for k in ICL_K} for t in ICL_TASKS}
    res["icl_zero_shot"] = zero_shot_split(model, tok)
    res["induction"] = accuracy(model, induction_prompts(), tok)
    model.train(was_training)
    return res


def gate(m: dict) -> list[str]:
    """The failures of a metrics dict from :func:`evaluate` (empty list = the model is good enough).

    Solved (>= 0.9): every fact, cyclic and sentiment task, IOI in both orders, each ICL task with
    4 demonstrations. IOI is not a shortcut: the ABC corruption drops the logit difference by >= 50 %.
    ICL is ambiguous zero-shot: no reading gets more than 0.6 of the probability (chance 1/3).
    """
    fails = []
    for group in ("fact", "cyclic", "sentiment"):
        fails += [f"{group}/{k} = {v:.3f} < 0.9" for k, v in m[group].items() if v < 0.9]
    fails += [f"ioi/{k} = {m['ioi'][k]:.3f} < 0.9" for k in ("acc_ABBA", "acc_BABA") if m["ioi"][k] < 0.9]
    if m["ioi"]["abc_drop"] < 0.5:
        fails.append(f"ioi abc_drop = {m['ioi']['abc_drop']:.3f} < 0.5 (shortcut)")
    for t, accs in m["icl"].items():
        if accs[str(ICL_GATE_K)] < 0.9:
            fails.append(f"icl/{t} with {ICL_GATE_K} demos = {accs[str(ICL_GATE_K)]:.3f} < 0.9")
    share = m["icl_zero_shot"]["prob_share"]
    if max(share.values()) > 0.6:
        fails.append(f"icl zero-shot not ambiguous: prob_share {share}")
    return fails
