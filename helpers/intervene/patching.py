"""Activation patching: run a model on one input while some activations come from another run.

A *cell* is one place to patch: a layer name and an index into that layer's activation without the
batch dimension (``(pos,)`` = one token of a ``(B, T, d)`` stream; ``(slice(None), slice(0, 32))`` =
the first 32 channels at every position, e.g. one attention head's output before ``attn.proj``).
:func:`patch_cells` runs *all* cells in batched forwards (``batch_size`` patched variants per forward,
each row patched at its own cell by one hook per layer), never one forward per cell.

- **denoising**: run the corrupted input, patch in the clean activation (does this cell *restore* it?);
- **noising**: run the clean input, patch in the corrupted activation (does this cell *break* it?).

Both report ``recovery = (m_patched - m_corrupt) / (m_clean - m_corrupt)``: 1 means the patched run
behaves like the clean run, 0 like the corrupted one (so in noising, a low value marks a necessary cell).

Example:
    >>> import torch
    >>> from helpers.models.gpt import GPT, GPTConfig
    >>> _ = torch.manual_seed(0)
    >>> model = GPT(GPTConfig(vocab_size=20, n_ctx=8, n_layer=2, d_model=16, n_head=2, d_mlp=32)).eval()
    >>> clean, corrupt = torch.tensor([[1, 2, 3, 4]]), torch.tensor([[1, 5, 3, 4]])
    >>> res = residual_sweep(model, clean, corrupt, logit_diff([7], [8]))
    >>> res.recovery.shape, round(res.recovery[0, 1].item(), 4), res.recovery[0, 0].item() == 0  # (layer, position)
    (torch.Size([2, 4]), 1.0, True)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

import torch
from torch import nn

from helpers.core.capturing import capture
from helpers.core.hooks import first_tensor, replace_first_tensor

Metric = Callable[[torch.Tensor], torch.Tensor]  # logits (K, N, T, V) -> (K,): one value per patched variant
Cell = tuple  # (layer name, index tuple into the activation without its batch dimension)


@dataclass
class PatchResult:
    """Metric of every patched variant, ``values`` (shaped like the sweep), and the two unpatched runs."""
    values: torch.Tensor
    clean: float
    corrupt: float
    mode: str
    layers: list

    @property
    def recovery(self) -> torch.Tensor:
        """(values - corrupt) / (clean - corrupt): 1 = behaves like the clean run, 0 = like the corrupted one."""
        return (self.values - self.corrupt) / (self.clean - self.corrupt)


def logit_diff(answer: Sequence[int] | torch.Tensor, wrong: Sequence[int] | torch.Tensor,
               position: int = -1) -> Metric:
    """Metric: mean over the N prompts of logit[answer_n] - logit[wrong_n] at ``position``.

    Example:
        >>> logits = torch.zeros(1, 2, 3, 5); logits[0, :, -1, 4] = 2.0
        >>> logit_diff([4, 4], [0, 1])(logits)
        tensor([2.])
    """
    a, w = torch.as_tensor(answer).long(), torch.as_tensor(wrong).long()

    def metric(logits: torch.Tensor) -> torch.Tensor:  # (K, N, T, V) -> (K,)
        last = logits[:, :, position]  # (K, N, V)
        idx = torch.arange(last.shape[1], device=last.device)
        return (last[:, idx, a.to(last.device)] - last[:, idx, w.to(last.device)]).mean(1)
    return metric


def _tokens(x: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x)
    return x[None] if x.dim() == 1 else x


def check_pair(clean: torch.Tensor, corrupt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both as (N, T) tensors; a pair of different token lengths (or prompt counts) is refused.

    Patching copies position p of one run into position p of the other, so the two runs must line
    up token by token; pad or choose corruptions of equal length (the IOI ABC corruption is).

    Example:
        >>> check_pair(torch.zeros(5, dtype=torch.long), torch.zeros(6, dtype=torch.long))
        Traceback (most recent call last):
        ...
        ValueError: clean and corrupted inputs must have the same token length: clean has 5 tokens, corrupted has 6 ...
    """
    clean, corrupt = _tokens(clean), _tokens(corrupt)
    if clean.shape[-1] != corrupt.shape[-1]:
        raise ValueError(f"clean and corrupted inputs must have the same token length: clean has {clean.shape[-1]} "
                         f"tokens, corrupted has {corrupt.shape[-1]} (patching copies position p into position p; "
                         f"choose a corruption of the same length).")
    if clean.shape != corrupt.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and corrupted {tuple(corrupt.shape)} inputs differ in shape.")
    return clean, corrupt


def _check_stored(stored: Mapping[str, torch.Tensor], names: Sequence[str], n: int, t: int) -> None:
    for name, value in stored.items():
        if name not in names:
            raise ValueError(f"stored activation for {name!r}, which is not among the patched layers {list(names)}.")
        if value.dim() < 2 or tuple(value.shape[:2]) != (n, t):
            raise ValueError(f"stored activation for {name!r} has shape {tuple(value.shape)}, but the inputs need "
                             f"({n}, {t}, ...): (prompts, tokens, ...).")


def logits_of(out) -> torch.Tensor:
    """The logits of a model's output: the tensor itself, or ``.logits`` of a Hugging Face output."""
    return out.logits if hasattr(out, "logits") else out


def _run(model: nn.Module, tokens: torch.Tensor, names: list[str], inputs: bool) -> tuple[torch.Tensor, dict]:
    with capture(model, names, outputs=not inputs, inputs=inputs) as acts:
        logits = logits_of(model(tokens))
    got = {n: (acts.inputs[n] if inputs else acts[n]) for n in names}
    return logits, got


@torch.no_grad()
def patch_cells(model: nn.Module, clean: torch.Tensor, corrupt: torch.Tensor, cells: Sequence[Cell],
                metric: Metric, *, mode: str = "denoise", stored: Optional[Mapping[str, torch.Tensor]] = None,
                inputs: bool = False, batch_size: int = 64) -> PatchResult:
    """The metric with each cell patched (denoising: clean -> corrupted run; noising: corrupted -> clean run).

    Args:
        clean, corrupt: token ids, (T,) or (N, T); the same length (else ``ValueError`` with both lengths).
        cells: ``(layer name, index)`` pairs, see the module docstring.
        metric: logits (K, N, T, V) -> (K,), e.g. :func:`logit_diff`.
        stored: layer name -> activation (N, T, ...) to patch in instead of the source run's (e.g. from
            ``helpers.capture`` or an ``ActivationStore``); its prompts and tokens are checked before any
            forward, its full shape against the layer's right after the one unpatched run of the target input
            (before the source run and any patched forward).
        inputs: patch the layers' first *input* (e.g. the head outputs entering ``attn.proj``) instead of output.
        batch_size: patched variants per forward (each has N rows).
    Cells whose source activation equals the target run's exactly are not run: patching them changes
    nothing, so their value is the target run's metric.
    """
    if mode not in ("denoise", "noise"):
        raise ValueError(f"mode must be 'denoise' or 'noise', got {mode!r}")
    clean, corrupt = check_pair(clean, corrupt)
    n, t = clean.shape
    names = list(dict.fromkeys(c[0] for c in cells))
    stored = dict(stored or {})
    _check_stored(stored, names, n, t)
    device = next(model.parameters()).device
    clean, corrupt = clean.to(device), corrupt.to(device)
    target, source = (corrupt, clean) if mode == "denoise" else (clean, corrupt)
    logits_t, acts_t = _run(model, target, names, inputs)
    base_t = float(metric(logits_t[None])[0])
    for nm, value in stored.items():  # full shapes, known after the one unpatched run of the target
        if tuple(value.shape) != tuple(acts_t[nm].shape):
            raise ValueError(f"stored activation for {nm!r} has shape {tuple(value.shape)}, but the layer's "
                             f"{'input' if inputs else 'output'} has shape {tuple(acts_t[nm].shape)}.")
    need = [nm for nm in names if nm not in stored]
    logits_s, acts_s = _run(model, source, need or names, inputs)
    base_s = float(metric(logits_s[None])[0])
    src = {nm: (stored[nm].to(device=device, dtype=acts_t[nm].dtype) if nm in stored else acts_s[nm]) for nm in names}
    values = torch.full((len(cells),), base_t)
    todo = [i for i, (nm, idx) in enumerate(cells)
            if not torch.equal(src[nm][(slice(None),) + tuple(idx)], acts_t[nm][(slice(None),) + tuple(idx)])]
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        values[chunk] = _patched_forward(model, target, [cells[i] for i in chunk], src, metric, inputs).float().cpu()
    clean_m, corrupt_m = (base_s, base_t) if mode == "denoise" else (base_t, base_s)
    return PatchResult(values, clean_m, corrupt_m, mode, names)


def _patched_forward(model: nn.Module, target: torch.Tensor, cells: Sequence[Cell], src: dict,
                     metric: Metric, inputs: bool) -> torch.Tensor:
    """One forward of len(cells) variants of ``target`` (N rows each); variant k patched at cells[k]."""
    n, k = target.shape[0], len(cells)
    by_layer: dict[str, list] = {}
    for j, (nm, idx) in enumerate(cells):
        by_layer.setdefault(nm, []).append((j, tuple(idx)))

    def patch(nm: str, x: torch.Tensor) -> torch.Tensor:
        x = first_tensor(x).clone()
        for j, idx in by_layer[nm]:
            full = (slice(None),) + idx
            x[j * n:(j + 1) * n][full] = src[nm][full]
        return x

    modules = dict(model.named_modules())
    handles = []
    try:
        for nm in by_layer:
            if inputs:
                handles.append(modules[nm].register_forward_pre_hook(
                    lambda m, args, nm=nm: (patch(nm, args[0]),) + tuple(args[1:])))
            else:
                handles.append(modules[nm].register_forward_hook(
                    lambda m, a, out, nm=nm: replace_first_tensor(out, patch(nm, out))))
        logits = logits_of(model(target.repeat(k, 1)))  # (k * N, T, V), variant-major
    finally:
        for h in handles:
            h.remove()
    return metric(logits.view(k, n, *logits.shape[1:]))


def resid_pre_names(n_layer: int) -> list[str]:
    """Module names whose output is the residual stream *entering* each block of a helpers GPT
    (TransformerLens's ``resid_pre``): ``resid_embed``, ``blocks.0``, ..., ``blocks.{n_layer-2}``."""
    return ["resid_embed"] + [f"blocks.{i}" for i in range(n_layer - 1)]


def residual_sweep(model: nn.Module, clean: torch.Tensor, corrupt: torch.Tensor, metric: Metric, *,
                   layers: Optional[Sequence[str]] = None, mode: str = "denoise",
                   stored: Optional[Mapping[str, torch.Tensor]] = None, batch_size: int = 64) -> PatchResult:
    """Patch the residual stream at every (layer, position); ``values``/``recovery`` are (layers, T).

    ``layers`` defaults to :func:`resid_pre_names` of a helpers GPT (so the sweep matches
    TransformerLens's ``patching.get_act_patch_resid_pre``); any (B, T, d) layers work.
    """
    layers = list(layers) if layers is not None else resid_pre_names(model.cfg.n_layer)
    t = _tokens(clean).shape[-1]
    cells = [(nm, (p,)) for nm in layers for p in range(t)]
    res = patch_cells(model, clean, corrupt, cells, metric, mode=mode, stored=stored, batch_size=batch_size)
    res.values = res.values.view(len(layers), t)
    return res


def mlp_sweep(model: nn.Module, clean: torch.Tensor, corrupt: torch.Tensor, metric: Metric, *,
              mode: str = "denoise", batch_size: int = 64) -> PatchResult:
    """Patch each block's MLP output at every position of a helpers GPT; (n_layer, T)."""
    return residual_sweep(model, clean, corrupt, metric, layers=[f"blocks.{i}.mlp" for i in range(model.cfg.n_layer)],
                          mode=mode, batch_size=batch_size)


def head_sweep(model: nn.Module, clean: torch.Tensor, corrupt: torch.Tensor, metric: Metric, *,
               mode: str = "denoise", batch_size: int = 64) -> PatchResult:
    """Patch each attention head's output (its slice of ``attn.proj``'s input, all positions); (n_layer, n_head)."""
    cfg = model.cfg
    hs = cfg.d_model // cfg.n_head
    cells = [(f"blocks.{i}.attn.proj", (slice(None), slice(h * hs, (h + 1) * hs)))
             for i in range(cfg.n_layer) for h in range(cfg.n_head)]
    res = patch_cells(model, clean, corrupt, cells, metric, mode=mode, inputs=True, batch_size=batch_size)
    res.values = res.values.view(cfg.n_layer, cfg.n_head)
    return res
