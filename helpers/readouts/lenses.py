"""Lenses: read the next-token distribution out of an intermediate residual stream.

* **logit lens** (nostalgebraist, 2020): apply the model's own final norm and unembedding to the residual
  stream ``h_l`` of layer ``l``: ``logits_l = W_U norm_f(h_l)``.
* **tuned lens** (Belrose et al., 2023): first an affine *translator* per layer, ``h -> h + A_l h + b_l``
  (``A_l``, ``b_l`` start at zero, so an untrained tuned lens is the logit lens), trained to minimise
  ``KL(p_final || softmax(W_U norm_f(h + A_l h + b_l)))`` with the model frozen. The paper trains on a
  stream of text with SGD; :func:`fit_tuned_lens` trains on residuals cached once (our choice, cheaper).

``final_readout(model)`` finds ``(norm_f, unembedding)`` for the zoo's GPTs and Hugging Face causal LMs.

Example:
    >>> from helpers.models.gpt import GPT, GPTConfig
    >>> gpt = GPT(GPTConfig(vocab_size=20, n_ctx=8, n_layer=1, d_model=16, n_head=2, d_mlp=32))
    >>> norm, unembed = final_readout(gpt)
    >>> h = torch.randn(5, 16)
    >>> lens = TunedLens(["blocks.0"], 16)
    >>> torch.allclose(lens.logits(h, "blocks.0", norm, unembed), logit_lens(h, norm, unembed))
    True
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def final_readout(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """``(final norm, unembedding)`` of a zoo GPT (``ln_f``, ``unembed``) or a Hugging Face causal LM."""
    if hasattr(model, "ln_f") and hasattr(model, "unembed"):
        return model.ln_f, model.unembed
    base = getattr(model, "base_model", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    norm = next((getattr(base, a) for a in ("norm", "ln_f", "final_layer_norm") if getattr(base, a, None) is not None), None)
    if head is None or norm is None:
        raise ValueError(f"cannot find the final norm and unembedding of a {type(model).__name__}; expected a zoo "
                         "GPT (ln_f, unembed) or a Hugging Face causal LM (base_model.norm, get_output_embeddings())")
    return norm, head


def logit_lens(h: torch.Tensor, norm: nn.Module, unembed: nn.Module) -> torch.Tensor:
    """``unembed(norm(h))``: residual stream (..., d) -> logits (..., V)."""
    return unembed(norm(h))


class TunedLens(nn.Module):
    """One affine translator per layer name, initialised to zero (so it starts as the logit lens).

    ``lens.translate(h, name) = h + translators[name](h)``; ``lens.logits(h, name, norm, unembed)``.
    """

    def __init__(self, layers: list[str], d_model: int):
        super().__init__()
        if not layers:
            raise ValueError("a tuned lens needs at least one layer name")
        self.layers = list(layers)
        self.translators = nn.ModuleList([nn.Linear(d_model, d_model) for _ in self.layers])
        for t in self.translators:
            nn.init.zeros_(t.weight)
            nn.init.zeros_(t.bias)

    def _index(self, name: str) -> int:
        if name not in self.layers:
            raise KeyError(f"the tuned lens has no translator for {name!r}; it has {self.layers}")
        return self.layers.index(name)

    def translate(self, h: torch.Tensor, name: str) -> torch.Tensor:
        """``h + A h + b`` for the layer ``name``; h (..., d)."""
        return h + self.translators[self._index(name)](h)

    def logits(self, h: torch.Tensor, name: str, norm: nn.Module, unembed: nn.Module) -> torch.Tensor:
        return logit_lens(self.translate(h, name), norm, unembed)


def kl_to_final(lens_logits: torch.Tensor, final_logits: torch.Tensor) -> torch.Tensor:
    """Mean ``KL(p_final || p_lens)`` in nats over the rows of (N, V) logits."""
    if lens_logits.shape != final_logits.shape:
        raise ValueError(f"logits must have the same shape, got {tuple(lens_logits.shape)} and {tuple(final_logits.shape)}")
    return F.kl_div(lens_logits.log_softmax(-1), final_logits.log_softmax(-1), log_target=True, reduction="batchmean")


def fit_tuned_lens(residuals: dict[str, torch.Tensor], final_logits: torch.Tensor, norm: nn.Module,
                   unembed: nn.Module, steps: int = 300, lr: float = 1e-3, batch: int = 512,
                   seed: int = 0) -> TunedLens:
    """Train one translator per layer on cached residuals ``{name: (N, d)}`` against ``final_logits`` (N, V).

    Adam on random mini-batches of ``batch`` rows, the model's norm and unembedding frozen (their gradients are
    not kept). Returns the lens on the residuals' device.
    """
    if not residuals:
        raise ValueError("no residuals given")
    n, d = next(iter(residuals.values())).shape
    for name, h in residuals.items():
        if h.shape != (n, d):
            raise ValueError(f"every residual must be (N, d) = {(n, d)}; {name!r} is {tuple(h.shape)}")
    if final_logits.ndim != 2 or len(final_logits) != n:
        raise ValueError(f"final_logits must be (N, V) with N = {n}, got {tuple(final_logits.shape)}")
    device = final_logits.device
    lens = TunedLens(list(residuals), d).to(device)
    frozen = [p for m in (norm, unembed) for p in m.parameters()]
    was = [p.requires_grad for p in frozen]
    for p in frozen:
        p.requires_grad_(False)
    target = final_logits.detach().log_softmax(-1)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(lens.parameters(), lr=lr)
    try:
        for _ in range(steps):
            rows = torch.randint(n, (min(batch, n),), generator=g).to(device)
            loss = sum(F.kl_div(lens.logits(h[rows].detach(), name, norm, unembed).log_softmax(-1), target[rows],
                                log_target=True, reduction="batchmean") for name, h in residuals.items())
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        for p, w in zip(frozen, was):
            p.requires_grad_(w)
    return lens.eval()


@dataclass
class LensScores:
    """Per-layer read-out quality: top-1 accuracy against the true next token, top-1 agreement with the
    model's own prediction, and KL from the model's final distribution (nats)."""

    accuracy: dict[str, float]
    agreement: dict[str, float]
    kl: dict[str, float]


@torch.no_grad()
def score_lens(layer_logits: dict[str, torch.Tensor], final_logits: torch.Tensor, targets: torch.Tensor) -> LensScores:
    """Scores of ``{layer: (N, V) lens logits}`` against the next tokens ``targets`` (N,) and the model's logits."""
    if targets.ndim != 1 or final_logits.shape[0] != len(targets):
        raise ValueError(f"targets (N,) must match final_logits (N, V), got {tuple(targets.shape)} and "
                         f"{tuple(final_logits.shape)}")
    top_final = final_logits.argmax(-1)
    acc, agree, kl = {}, {}, {}
    for name, logits in layer_logits.items():
        top = logits.argmax(-1)
        acc[name] = (top == targets).float().mean().item()
        agree[name] = (top == top_final).float().mean().item()
        kl[name] = kl_to_final(logits, final_logits).item()
    return LensScores(acc, agree, kl)
