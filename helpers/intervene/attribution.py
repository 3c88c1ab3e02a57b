"""Gradient estimates of activation patching: attribution patching (AtP), relevance patching (RelP),
integrated gradients on activations.

**Attribution patching** (Nanda, 2023): the first-order Taylor estimate of patching every cell at once,
``m(patched) - m(target) ~= sum over the cell of (a_source - a_target) * dm/da |target``, from two forwards
(one per input) and one backward. Denoising: target = corrupted run; noising: target = clean run.
**RelP** (Jafari et al., 2025) is the same product with the gradient replaced by the relevance of an
LRP-style backward pass; here by three switches applied as forward hooks that leave the forward values
unchanged: LayerNorm divides by a detached scale, the attention pattern is detached, and each
nonlinearity phi passes ``phi(x)/x`` (detached) times the incoming relevance (identity rule).

Example:
    >>> import torch
    >>> from helpers.models.gpt import GPT, GPTConfig
    >>> from helpers.intervene import patching
    >>> _ = torch.manual_seed(0)
    >>> model = GPT(GPTConfig(vocab_size=20, n_ctx=8, n_layer=2, d_model=16, n_head=2, d_mlp=32)).eval()
    >>> clean, corrupt = torch.tensor([[1, 2, 3, 4]]), torch.tensor([[1, 5, 3, 4]])
    >>> atp = attribution_sweep(model, clean, corrupt, patching.logit_diff([7], [8]))
    >>> atp.recovery.shape, atp.recovery[:, 0].abs().max().item()   # untouched position 0: no effect
    (torch.Size([2, 4]), 0.0)
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

import torch
from torch import nn

from helpers.core.capturing import capture
from helpers.core.hooks import replace_first_tensor
from helpers.intervene.patching import Metric, PatchResult, check_pair, logits_of, resid_pre_names
from helpers.ops.integrated import integrated_gradients


@contextmanager
def relp_rules(model: nn.Module) -> Iterator[None]:
    """Inside the block, backward passes of a helpers GPT follow RelP's LayerNorm, attention-pattern and
    identity rules; forward values are unchanged (up to float rounding). Hooks are removed on exit."""
    handles = []

    def ln_rule(m: nn.LayerNorm, args, out):
        x = args[0]
        mu = x.mean(-1, keepdim=True)
        scale = (x.var(-1, unbiased=False, keepdim=True) + m.eps).sqrt()
        return (x - mu) / scale.detach() * m.weight + m.bias

    def identity_rule(m, args, out):
        x = args[0]
        ratio = torch.where(x.abs() > 1e-6, out / torch.where(x.abs() > 1e-6, x, torch.ones_like(x)),
                            torch.full_like(x, 0.5))  # GELU(x)/x -> 1/2 at 0
        return x * ratio.detach()

    try:
        for name, m in model.named_modules():
            if isinstance(m, nn.LayerNorm):
                handles.append(m.register_forward_hook(ln_rule))
            elif name.endswith("attn.pattern"):
                handles.append(m.register_forward_hook(lambda m, a, out: out.detach()))
            elif name.endswith("mlp.act") and isinstance(m, nn.GELU):  # ReLU is left as is, as in the paper
                handles.append(m.register_forward_hook(identity_rule))
        yield
    finally:
        for h in handles:
            h.remove()


def attribute_cells(model: nn.Module, clean: torch.Tensor, corrupt: torch.Tensor, cells: Sequence[tuple],
                    metric: Metric, *, mode: str = "denoise", inputs: bool = False, relp: bool = False) -> PatchResult:
    """AtP (or RelP with ``relp=True``) estimate of :func:`helpers.intervene.patching.patch_cells`, same cells."""
    if mode not in ("denoise", "noise"):
        raise ValueError(f"mode must be 'denoise' or 'noise', got {mode!r}")
    clean, corrupt = check_pair(clean, corrupt)
    device = next(model.parameters()).device
    target, source = (corrupt, clean) if mode == "denoise" else (clean, corrupt)
    names = list(dict.fromkeys(c[0] for c in cells))
    with torch.no_grad(), capture(model, names, inputs=inputs, outputs=not inputs) as acts:
        base_s = float(metric(logits_of(model(source.to(device)))[None])[0])
    src = {n: (acts.inputs[n] if inputs else acts[n]) for n in names}
    rules = relp_rules(model) if relp else _nothing()
    with rules, capture(model, names, inputs=inputs, outputs=not inputs, detach=False) as live:
        m = metric(logits_of(model(target.to(device)))[None])[0]
        tgt = [live.inputs[n] if inputs else live[n] for n in names]
        grads = dict(zip(names, torch.autograd.grad(m, tgt)))
    tgt = {n: t.detach() for n, t in zip(names, tgt)}
    est = torch.stack([((src[n] - tgt[n]) * grads[n])[(slice(None),) + tuple(idx)].sum() for n, idx in cells])
    base_t = float(m.detach())
    values = base_t + est.detach().float().cpu()
    clean_m, corrupt_m = (base_s, base_t) if mode == "denoise" else (base_t, base_s)
    return PatchResult(values, clean_m, corrupt_m, mode, names)


def position_estimate(source: torch.Tensor, target: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """AtP estimate of patching each position of a (N, T, d) stream in all N prompts: (T,).

    Example:
        >>> position_estimate(torch.ones(2, 3, 4), torch.zeros(2, 3, 4), torch.ones(2, 3, 4))
        tensor([8., 8., 8.])
    """
    if not source.shape == target.shape == grad.shape:
        raise ValueError(f"source {tuple(source.shape)}, target {tuple(target.shape)} and grad {tuple(grad.shape)} "
                         f"must have one shape.")
    return ((source - target) * grad).sum((0, 2))


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def attribution_sweep(model: nn.Module, clean: torch.Tensor, corrupt: torch.Tensor, metric: Metric, *,
                      layers: Optional[Sequence[str]] = None, mode: str = "denoise", relp: bool = False) -> PatchResult:
    """AtP/RelP estimate of :func:`helpers.intervene.patching.residual_sweep`: (layers, T)."""
    layers = list(layers) if layers is not None else resid_pre_names(model.cfg.n_layer)
    t = torch.as_tensor(clean).shape[-1]
    res = attribute_cells(model, clean, corrupt, [(n, (p,)) for n in layers for p in range(t)], metric,
                          mode=mode, relp=relp)
    res.values = res.values.view(len(layers), t)
    return res


def layer_integrated_gradients(model: nn.Module, tokens: torch.Tensor, layer: str, start: torch.Tensor,
                               end: torch.Tensor, metric: Metric, steps: int = 64,
                               batch_size: int = 16) -> torch.Tensor:
    """IG of ``metric`` w.r.t. ``layer``'s output along the straight path from ``start`` to ``end``
    (e.g. the corrupted and the clean activation), running ``tokens`` with the layer's output replaced.

    Returns (N, T, ...) like ``end``; it sums to about m(end) - m(start) (completeness).
    Equals Captum's ``LayerIntegratedGradients`` with ``method="riemann_right"``.
    """
    tokens = torch.as_tensor(tokens)
    tokens = tokens[None] if tokens.dim() == 1 else tokens
    module = dict(model.named_modules())[layer]
    if start.shape != end.shape:
        raise ValueError(f"start {tuple(start.shape)} and end {tuple(end.shape)} must have the same shape.")

    def f(points: torch.Tensor) -> torch.Tensor:  # (K, N, T, ...) -> (K,)
        k = points.shape[0]
        flat = points.reshape(k * points.shape[1], *points.shape[2:])
        h = module.register_forward_hook(lambda m, a, out: replace_first_tensor(out, flat))
        try:
            logits = logits_of(model(tokens.repeat(k, 1)))
        finally:
            h.remove()
        return metric(logits.view(k, tokens.shape[0], *logits.shape[1:]))

    return integrated_gradients(f, end, start, steps=steps, batch_size=batch_size)
