"""Held-out evaluation of the tinyworld GPTs: next-token accuracy per task, IOI logit differences, the gate.

Example:
    >>> from helpers import zoo
    >>> model, info = zoo.load("tinyworld-gpt", device="cpu")
    >>> m = evaluate(model, n=40)
    >>> m["fact"]["capital"] > 0.9
    True
"""
from __future__ import annotations

import torch

from helpers.data.tinyworld import (ICL_TASKS, ICL_WORDS, SENT_ADJ, Prompt, Tokenizer, cyclic_prompts, fact_prompts,
                                    icl_prompts, induction_prompts, ioi_prompts, sentiment_prompts, tokenizer)


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
