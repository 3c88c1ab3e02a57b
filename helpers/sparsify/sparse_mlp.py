"""Run a Llama-style MLP (SmolLM2's) through the sparse kernel at batch 1, and put the model back on exit.

A Llama MLP computes ``down(act(gate(x)) * up(x))``. Inside :func:`sparse_mlps` each MLP's input ``x`` is
sparsified by the rule calibrated for ``gate_proj`` (the same kept entries feed ``up_proj``, which reads the same
input), and the hidden vector ``act(gate) * up`` by the rule of ``down_proj``. For one token (a decoding step)
the two products read only the kept rows of ``[W_gate; W_up].T`` and ``W_down.T`` with
:func:`helpers.sparsify.kernels.gather_matvec`; for several tokens (the prompt) the same masks are applied
with torch's dense products. So both paths compute the same function.

    rules = {**calibrate(lm, gates, ids, 0.5, "teal"), **calibrate(lm, downs, ids, 0.5, "teal")}
    with sparse_mlps(lm, rules):
        out = lm.generate(ids, max_new_tokens=32)

The weights are never modified: the transposed copies live only inside the block (about 2.4 x the MLP weights'
bytes while it runs) and each MLP's own ``forward`` is restored on exit, also after an error.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping

import numpy as np
import torch
from torch import nn

from helpers.sparsify.kernels import gather_matvec, kept_rows
from helpers.sparsify.thresholds import Rule


def llama_mlps(model: nn.Module) -> dict[str, nn.Module]:
    """Every module with ``gate_proj``, ``up_proj`` and ``down_proj`` linear children, by name."""
    return {n: m for n, m in model.named_modules()
            if all(isinstance(getattr(m, p, None), nn.Linear) for p in ("gate_proj", "up_proj", "down_proj"))}


def _numpy(norm: torch.Tensor | None) -> np.ndarray | None:
    return None if norm is None else norm.detach().float().numpy()


class SparseMLP:
    """The batch-1 sparse forward of one Llama MLP (see the module docstring)."""

    def __init__(self, mlp: nn.Module, rule_in: Rule, rule_mid: Rule):
        for r in (rule_in, rule_mid):
            if r.threshold is None:
                raise ValueError("sparse_mlps needs calibrated thresholds (from calibrate), not top-k rules")
        self.mlp, self.rule_in, self.rule_mid = mlp, rule_in, rule_mid
        w = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).detach().float()
        self.gate_up = np.ascontiguousarray(w.numpy().T)                                   # (d, 2h)
        self.down = np.ascontiguousarray(mlp.down_proj.weight.detach().float().numpy().T)  # (h, d)
        self.hidden = mlp.gate_proj.out_features
        self.norm_in, self.norm_mid = _numpy(rule_in.col_norm), _numpy(rule_mid.col_norm)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() != x.shape[-1] or x.dtype != torch.float32 or x.device.type != "cpu" or torch.is_grad_enabled():
            return self.masked_dense(x)
        v = x.detach().reshape(-1).contiguous().numpy()                   # (d,), no copy
        gu = torch.from_numpy(gather_matvec(self.gate_up, v, kept_rows(v, self.rule_in.threshold, self.norm_in)))
        a = (self.mlp.act_fn(gu[: self.hidden]) * gu[self.hidden:]).numpy()  # (h,)
        y = gather_matvec(self.down, a, kept_rows(a, self.rule_mid.threshold, self.norm_mid))
        return torch.from_numpy(y).view(*x.shape[:-1], -1)

    def masked_dense(self, x: torch.Tensor) -> torch.Tensor:
        """The same function with dense products (several tokens, autograd or another device)."""
        m = self.mlp
        x = x * self.rule_in.mask(x)
        a = m.act_fn(m.gate_proj(x)) * m.up_proj(x)
        return m.down_proj(a * self.rule_mid.mask(a))


@contextmanager
def sparse_mlps(model: nn.Module, rules: Mapping[str, Rule]) -> Iterator[dict[str, SparseMLP]]:
    """Inside the block every Llama MLP of ``model`` runs sparsely by ``rules`` (keys ``<mlp>.gate_proj`` and
    ``<mlp>.down_proj`` for every MLP, as :func:`helpers.sparsify.thresholds.calibrate` returns them).

    Every rule is checked before anything changes; each MLP's ``forward`` is restored on exit.
    """
    mlps = llama_mlps(model)
    if not mlps:
        raise ValueError("the model has no Llama-style MLP (modules with gate_proj, up_proj and down_proj)")
    missing = [f"{n}.{p}" for n in mlps for p in ("gate_proj", "down_proj") if f"{n}.{p}" not in rules]
    if missing:
        raise ValueError(f"no rule for {len(missing)} layer(s), e.g. {missing[:3]}; calibrate every gate_proj and "
                         f"down_proj")
    fast = {n: SparseMLP(m, rules[f"{n}.gate_proj"], rules[f"{n}.down_proj"]) for n, m in mlps.items()}
    try:
        for n, m in mlps.items():
            m.forward = fast[n]  # an instance attribute shadows the class's forward
        yield fast
    finally:
        for m in mlps.values():
            m.__dict__.pop("forward", None)
