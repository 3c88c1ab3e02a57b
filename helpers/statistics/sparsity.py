"""Activation sparsity of MLP layers: top-k masking, CETT thresholds and PPL-p% sparsity.

    a = acts["blocks.0.mlp.act"]                     # (B, T, d_mlp) hidden activations
    w = model.blocks[0].mlp.proj.weight              # (d_model, d_mlp): column i is neuron i's output
    eps = cett_threshold(a, w, target=0.2)           # drop neurons below eps: 20 % of the output norm
    result = ppl_p_sparsity(model, {"blocks.0.mlp.act": w}, loss_fn, calib=acts_by_layer, p=1.0)

PPL-p% sparsity (Sparsing Law, Luo et al. 2024): a neuron i at a token contributes ``a_i * W_out[:, i]``
to the MLP output ``y = W_out a``. Its score is ``n_i = |a_i| * ||W_out[:, i]||``. For a threshold eps
the *cumulative error of tail truncation* is

    CETT(eps) = mean over tokens of || sum_{i: n_i < eps} a_i W_out[:, i] || / || y ||.

Every layer gets the threshold eps_l that gives the same CETT value c; c is then raised by bisection
until perplexity is (1 + p/100) times the dense one. The sparsity at that point is PPL-p% sparsity.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch

from helpers.core.editing import edit, mask_below


def neuron_scores(a: torch.Tensor, w_out: torch.Tensor) -> torch.Tensor:
    """``|a_i| * ||W_out[:, i]||``: how much neuron i adds to the output at each token; shape of ``a``.

    ``w_out`` is the (d_model, d_mlp) weight of the layer that reads the activations (nn.Linear.weight).
    """
    if w_out.shape[-1] != a.shape[-1]:
        raise ValueError(f"w_out must be (d_model, {a.shape[-1]}) (nn.Linear.weight of the output map), "
                         f"got {tuple(w_out.shape)}")
    return a.abs() * w_out.norm(dim=0).to(a)  # (..., d_mlp) * (d_mlp,)


class _Tail:
    """One layer's calibration activations with what every CETT evaluation reuses."""

    def __init__(self, a: torch.Tensor, w_out: torch.Tensor):
        self.a = a.detach().reshape(-1, a.shape[-1]).float()  # (N, d_mlp) tokens as rows
        self.w = w_out.detach().float().to(self.a.device)     # (d_model, d_mlp)
        self.scores = neuron_scores(self.a, self.w)            # (N, d_mlp)
        self.y_norm = (self.a @ self.w.T).norm(dim=-1).clamp_min(1e-12)  # (N,) ||W a|| per token
        self.top = self.scores.max().item() * (1 + 1e-6)       # an eps that drops everything

    def cett(self, eps: float) -> float:
        dropped = self.a * (self.scores < eps)  # (N, d_mlp): only the truncated tail
        return ((dropped @ self.w.T).norm(dim=-1) / self.y_norm).mean().item()

    def threshold(self, target: float, lo: float = 0.0, hi: float | None = None, tol: float = 1e-4) -> float:
        # CETT rises with eps (more of the tail is dropped); keep lo at CETT <= target and stop when
        # the bracket is below tol of the largest score.
        hi = self.top if hi is None else hi
        while hi - lo > tol * self.top:
            mid = (lo + hi) / 2
            if self.cett(mid) <= target:
                lo = mid
            else:
                hi = mid
        return lo


def cett(a: torch.Tensor, w_out: torch.Tensor, eps: float) -> float:
    """Cumulative error of tail truncation: mean ``||sum of dropped a_i W[:, i]|| / ||W a||`` over tokens.

    Example:
        >>> a, w = torch.rand(10, 8), torch.randn(4, 8)
        >>> cett(a, w, eps=0.0), round(cett(a, w, eps=1e9), 6)
        (0.0, 1.0)
    """
    return _Tail(a, w_out).cett(eps)


def cett_threshold(a: torch.Tensor, w_out: torch.Tensor, target: float, tol: float = 1e-4) -> float:
    """The threshold eps with ``cett(a, w_out, eps) ~= target`` (bisection; the largest eps not above it).

    Example:
        >>> a, w = torch.rand(50, 16), torch.randn(4, 16)
        >>> eps = cett_threshold(a, w, target=0.1)
        >>> abs(cett(a, w, eps) - 0.1) < 0.05
        True
    """
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target CETT must be in [0, 1], got {target}")
    return _Tail(a, w_out).threshold(target, tol=tol)


@dataclass
class PPLSparsity:
    """Result of :func:`ppl_p_sparsity`. ``sparsity`` is the fraction of (token, neuron) pairs dropped."""
    p: float
    cett: float
    thresholds: dict[str, float]
    sparsity: float
    sparsity_by_layer: dict[str, float]
    loss_ratio: float  # PPL(sparse) / PPL(dense) reached, <= 1 + p / 100
    history: list[tuple[float, float]] = field(default_factory=list)  # (c, PPL ratio) tried


def ppl_p_sparsity(model: torch.nn.Module, out_weights: Mapping[str, torch.Tensor],
                   loss_fn: Callable[[], float], calib: Mapping[str, torch.Tensor], p: float = 1.0,
                   iters: int = 8, tol: float = 1e-4) -> PPLSparsity:
    """PPL-p% sparsity: the largest common CETT whose thresholds keep PPL within (1 + p/100) of dense.

    Args:
        model: the model; ``out_weights`` maps each activation layer name (e.g. ``"blocks.0.mlp.act"``)
            to the (d_model, d_mlp) weight that reads it.
        loss_fn: runs the model and returns the mean cross-entropy (PPL = exp(loss)).
        calib: the same layers' activations on calibration text, ``(..., d_mlp)``.
        p: allowed perplexity increase in percent.
        iters: bisection steps on the common CETT value c (each costs one ``loss_fn`` call).
        tol: precision of each layer's threshold, relative to its largest neuron score.

    Example:
        >>> r = ppl_p_sparsity(model, {"blocks.0.mlp.act": w0}, loss, calib={"blocks.0.mlp.act": a0})  # doctest: +SKIP
    """
    if p <= 0:
        raise ValueError(f"p (allowed PPL increase in %) must be positive, got {p}")
    missing = set(out_weights) - set(calib)
    if missing:
        raise ValueError(f"calib has no activations for {sorted(missing)}")
    dense = loss_fn()
    limit = torch.log(torch.tensor(1 + p / 100)).item()  # PPL ratio <= 1 + p/100  <=>  loss gap <= log(...)

    tails = {name: _Tail(calib[name], w) for name, w in out_weights.items()}
    known: dict[str, dict[float, float]] = {name: {0.0: 0.0, 1.0: t.top} for name, t in tails.items()}

    def thresholds_at(c: float) -> dict[str, float]:
        eps = {}
        for name, tail in tails.items():  # thresholds grow with c: start from the tightest known bracket
            lo = max(e for cc, e in known[name].items() if cc <= c)
            hi = min(e for cc, e in known[name].items() if cc >= c)
            eps[name] = known[name][c] = tail.threshold(c, lo, hi, tol)
        return eps

    def loss_at(eps: dict[str, float]) -> float:
        with torch.no_grad(), edit(model, {n: mask_below(out_weights[n], e) for n, e in eps.items()}):
            return loss_fn()

    lo, hi, best, history = 0.0, 1.0, {n: 0.0 for n in out_weights}, []
    best_gap = 0.0
    for _ in range(iters):
        mid = (lo + hi) / 2
        eps = thresholds_at(mid)
        gap = loss_at(eps) - dense
        history.append((mid, float(torch.exp(torch.tensor(gap)))))
        if gap <= limit:
            lo, best, best_gap = mid, eps, gap
        else:
            hi = mid
    by_layer = {n: (tails[n].scores < e).float().mean().item() for n, e in best.items()}
    return PPLSparsity(p, lo, best, sum(by_layer.values()) / len(by_layer), by_layer,
                       float(torch.exp(torch.tensor(best_gap))), history)
