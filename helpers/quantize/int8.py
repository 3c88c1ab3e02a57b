"""Real int8 matmul on the CPU, int8 Linear layers, whole-model fake quantization, and model sizes.

    qw, w_scale = int8_weight(linear.weight)              # int8 (out, in), one float scale per output row
    y = int8_matmul(x, qw, w_scale)                       # x quantized per row on the fly, int32 accumulation
    fast = quantize_linears(model)                        # a COPY with every nn.Linear replaced by Int8Linear
    sim = fake_quantize_model(model, calib, weight_bits=8, act_bits=8)   # a COPY that simulates integer inference
    model_bytes(model)                                    # bytes of parameters and buffers

``torch._int_mm`` multiplies two int8 matrices into int32 on the CPU (torch >= 2.1; any shapes here). Because the
weight scale is per output row and the activation scale per input row (token), both factor out of the integer
product: ``y[i, j] = s_x[i] * s_w[j] * sum_k q_x[i, k] q_w[j, k]``. A scale per *input channel* (the reduction
dimension) would not factor out, which is why integer kernels quantize activations per tensor or per token.
Nothing here changes the model it is given: every transform returns a copy.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from helpers.core.linear_maps import is_linear, linear_weight
from helpers.ops.quantization import check_bits, fake_quant, qparams
from helpers.quantize.calibration import calibrate


def int8_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-row int8 codes of a (out, in) weight and the row scales.

    Example:
        >>> qw, s = int8_weight(torch.tensor([[1.0, -0.5], [0.0, 2.0]]))
        >>> qw.tolist(), qw.dtype, [round(v, 5) for v in (s * 127).tolist()]
        ([[127, -64], [0, 127]], torch.int8, [1.0, 2.0])
    """
    lo, hi = w.detach().float().min(1).values, w.detach().float().max(1).values
    qp = qparams(lo, hi, 8, symmetric=True, axis=0)
    return torch.round(w.detach().float() / qp.scale[:, None]).clamp(-127, 127).to(torch.int8), qp.scale


def int8_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8 codes of a (M, K) float matrix (dynamic quantization) and the row scales."""
    amax = x.detach().abs().amax(1).clamp(min=torch.finfo(torch.float32).eps)
    scale = amax / 127
    return torch.round(x / scale[:, None]).clamp(-127, 127).to(torch.int8), scale


def int8_matmul(x: torch.Tensor, qw: torch.Tensor, w_scale: torch.Tensor) -> torch.Tensor:
    """``x @ W.T`` with x (..., in) quantized per row to int8 and ``W`` given as int8 codes and row scales.

    Example:
        >>> w, x = torch.randn(16, 32), torch.randn(4, 32)
        >>> qw, s = int8_weight(w)
        >>> ((int8_matmul(x, qw, s) - x @ w.T).norm() / (x @ w.T).norm() < 0.02).item()
        True
    """
    rows = x.reshape(-1, x.shape[-1]).float()
    qx, x_scale = int8_rows(rows)
    acc = torch._int_mm(qx, qw.t())                                   # (M, out) int32, exact integer sums
    return (acc.float() * x_scale[:, None] * w_scale[None, :]).reshape(*x.shape[:-1], qw.shape[0])


class Int8Linear(nn.Module):
    """A Linear layer that stores int8 weights and runs its product with ``torch._int_mm`` (bias kept in float)."""

    def __init__(self, qweight: torch.Tensor, w_scale: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.register_buffer("qweight", qweight)
        self.register_buffer("w_scale", w_scale)
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        self.in_features, self.out_features = qweight.shape[1], qweight.shape[0]

    @classmethod
    def from_linear(cls, linear: nn.Module) -> "Int8Linear":
        """From an ``nn.Linear`` or a Hugging Face ``Conv1D`` (GPT-2)."""
        qw, s = int8_weight(weight_matrix(linear))
        return cls(qw, s, linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = int8_matmul(x, self.qweight, self.w_scale)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights, int32 accumulation"


def quantize_linears(model: nn.Module, skip: Sequence[str] = ()) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` and Hugging Face ``Conv1D`` (except the names in ``skip``)
    replaced by ``Int8Linear``.

    Example:
        >>> net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> q = quantize_linears(net, skip=["2"])
        >>> type(q[0]).__name__, type(q[2]).__name__, type(net[0]).__name__
        ('Int8Linear', 'Linear', 'Linear')
    """
    names = {n for n, m in model.named_modules() if is_linear(m)}
    unknown = sorted(set(skip) - names)
    if unknown:
        raise ValueError(f"skip names {unknown} are not Linear layers of the model; its Linear layers: {sorted(names)}")
    out = copy.deepcopy(model)
    for name, module in list(out.named_modules()):
        if name in names and name not in skip:
            parent, _, child = name.rpartition(".")
            setattr(out.get_submodule(parent) if parent else out, child, Int8Linear.from_linear(module))
    return out


weight_matrix = linear_weight  # the (out, in) weight of nn.Linear or transformers' Conv1D (helpers.core.linear_maps)


def model_bytes(model: nn.Module) -> int:
    """Bytes of all parameters and buffers (shared tensors counted once).

    Example:
        >>> model_bytes(nn.Linear(10, 4)), model_bytes(quantize_linears(nn.Sequential(nn.Linear(10, 4))))
        (176, 72)
    """
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        key = (t.data_ptr(), t.numel(), t.dtype)
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
    return total


def fake_quantize_model(model: nn.Module, calib: torch.Tensor, weight_bits: int | None = 8, act_bits: int | None = 8,
                        act_method: str = "minmax", layer_types: tuple = (nn.Conv2d, nn.Linear)) -> nn.Module:
    """A copy of ``model`` that simulates integer inference: weights quantized per output channel (symmetric),
    the input of every ``layer_types`` layer quantized per tensor (asymmetric), ranges calibrated on ``calib``.
    A layer whose weight is used without calling the layer (``nn.MultiheadAttention``'s ``out_proj``) gets only its
    weights quantized.

    ``None`` keeps that side in float. Example:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
        >>> x = torch.randn(64, 4)
        >>> sim = fake_quantize_model(net, x, 8, 8)
        >>> bool((sim(x) - net(x)).abs().max() < 0.05), bool((sim(x) != net(x)).any())
        (True, True)
    """
    for b in (weight_bits, act_bits):
        if b is not None:
            check_bits(b)
    out = copy.deepcopy(model).eval()
    layers = [(n, m) for n, m in out.named_modules() if isinstance(m, layer_types)]
    if act_bits is not None:
        seen: dict[str, torch.Tensor] = {}
        handles = [m.register_forward_pre_hook(lambda mod, args, n=n: seen.__setitem__(n, args[0].detach()))
                   for n, m in layers]
        try:
            with torch.no_grad():
                out(calib)
        finally:
            for h in handles:
                h.remove()
        for n, m in layers:
            if n not in seen:  # never called as a module (e.g. nn.MultiheadAttention's out_proj): weights only
                continue
            qp = calibrate(seen[n], act_bits, act_method, symmetric=False)
            m.register_forward_pre_hook(lambda mod, args, qp=qp: (fake_quant(args[0], qp), *args[1:]))
    if weight_bits is not None:
        with torch.no_grad():
            for _, m in layers:
                w = m.weight
                lo = w.reshape(len(w), -1).min(1).values
                hi = w.reshape(len(w), -1).max(1).values
                w.copy_(fake_quant(w, qparams(lo, hi, weight_bits, symmetric=True, axis=0)))
    return out


def storage_bytes(n_values: int, bits: int, n_scales: int = 1) -> int:
    """Bytes to store ``n_values`` codes of ``bits`` bits (packed) plus one float32 scale and zero point each.

    Example:
        >>> storage_bytes(1000, 4, n_scales=10)
        580
    """
    check_bits(bits)
    return (n_values * bits + 7) // 8 + 8 * n_scales
