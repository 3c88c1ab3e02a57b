"""Uniform integer quantization: ranges -> (scale, zero point) -> integers -> floats again.

    qp = qparams(lo, hi, bits=8, symmetric=False)       # lo, hi: scalars (per tensor) or (C,) (per channel)
    q = quantize(x, qp)                                 # integers in [qp.qmin, qp.qmax] (an int32 tensor)
    x_hat = dequantize(q, qp)                           # = fake_quant(x, qp)
    sqnr_db(x, x_hat)                                   # signal-to-quantization-noise ratio in dB

Conventions (Krishnamoorthi 2018, and ``torch.ao.quantization``'s observers):

- asymmetric (affine) b-bit: integers 0 .. 2^b - 1; the range is first widened to contain 0 (so that 0 is exact),
  ``scale = (hi - lo) / (2^b - 1)``, ``zero_point = round(-lo / scale)``;
- symmetric b-bit: integers -(2^(b-1) - 1) .. 2^(b-1) - 1 (the restricted range: -128 is never used at 8 bits),
  ``scale = max(|lo|, |hi|) / (2^(b-1) - 1)``, ``zero_point = 0``;
- ``x_hat = scale * (clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point)``; ``round`` is round half to
  even, as in torch.

Per channel means one (scale, zero point) per index of ``axis``. Bit widths outside 2..16 raise before any work.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

MIN_BITS, MAX_BITS = 2, 16
EPS = torch.finfo(torch.float32).eps  # the smallest scale, as torch's observers use


def check_bits(bits: int) -> int:
    """Return ``bits`` if it is an integer in 2..16, else raise ``ValueError`` naming the valid range.

    Example:
        >>> check_bits(4)
        4
        >>> check_bits(1)
        Traceback (most recent call last):
        ...
        ValueError: bits must be an integer from 2 to 16, got 1
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"bits must be an integer from {MIN_BITS} to {MAX_BITS}, got {bits!r}")
    return bits


def int_range(bits: int, symmetric: bool) -> tuple[int, int]:
    """The integers a b-bit code may take: ``(qmin, qmax)``.

    Example:
        >>> int_range(8, symmetric=True), int_range(8, symmetric=False), int_range(4, symmetric=True)
        ((-127, 127), (0, 255), (-7, 7))
    """
    check_bits(bits)
    if symmetric:
        return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1


@dataclass
class QParams:
    """Scale and zero point (scalars, or one per index of ``axis``) and the integer range."""
    scale: torch.Tensor
    zero_point: torch.Tensor
    qmin: int
    qmax: int
    axis: int | None = None
    bits: int = 8

    def _shaped(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.axis is None or v.dim() == 0:
            return v
        shape = [1] * x.dim()
        shape[self.axis] = -1
        return v.reshape(shape)

    @property
    def symmetric(self) -> bool:
        return self.qmin < 0


def channel_range(x: torch.Tensor, axis: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Min and max of ``x`` over everything (``axis=None``) or per index of ``axis``: shapes () or (C,).

    Example:
        >>> lo, hi = channel_range(torch.tensor([[1., -2.], [3., 4.]]), axis=1)
        >>> lo.tolist(), hi.tolist()
        ([1.0, -2.0], [3.0, 4.0])
    """
    x = x.detach().float()
    if axis is None:
        return x.min(), x.max()
    flat = x.movedim(axis, 0).reshape(x.shape[axis], -1)
    return flat.min(1).values, flat.max(1).values


def qparams(lo: torch.Tensor | float, hi: torch.Tensor | float, bits: int = 8, symmetric: bool = False,
            axis: int | None = None) -> QParams:
    """Scale and zero point that map the range [lo, hi] onto b-bit integers (see the module docstring).

    Example:
        >>> qp = qparams(-1.0, 3.0, bits=8)
        >>> round(qp.scale.item(), 6), qp.zero_point.item()
        (0.015686, 64)
        >>> abs(qparams(-1.0, 3.0, bits=8, symmetric=True).scale.item() - 3 / 127) < 1e-7
        True
    """
    qmin, qmax = int_range(bits, symmetric)
    lo = torch.as_tensor(lo, dtype=torch.float32).clamp(max=0)   # the range always contains 0
    hi = torch.as_tensor(hi, dtype=torch.float32).clamp(min=0)
    if symmetric:
        scale = (torch.maximum(-lo, hi) / qmax).clamp(min=EPS)
        zero_point = torch.zeros_like(scale, dtype=torch.int64)
    else:
        scale = ((hi - lo) / (qmax - qmin)).clamp(min=EPS)
        zero_point = (qmin - torch.round(lo / scale)).to(torch.int64).clamp(qmin, qmax)
    return QParams(scale, zero_point, qmin, qmax, axis, bits)


def quantize(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    """The integer codes of ``x`` (int32), clamped to ``[qp.qmin, qp.qmax]``.

    Example:
        >>> quantize(torch.tensor([-1.0, 0.0, 0.3, 9.0]), qparams(-1.0, 1.0, bits=4, symmetric=True)).tolist()
        [-7, 0, 2, 7]
    """
    s, z = qp._shaped(qp.scale, x), qp._shaped(qp.zero_point, x)
    return (torch.round(x / s) + z).clamp(qp.qmin, qp.qmax).to(torch.int32)


def dequantize(q: torch.Tensor, qp: QParams) -> torch.Tensor:
    """Floats from integer codes: ``scale * (q - zero_point)``."""
    s, z = qp._shaped(qp.scale, q), qp._shaped(qp.zero_point, q)
    return s * (q.float() - z)


def fake_quant(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    """Quantize and dequantize in float ("simulated" quantization); keeps dtype and shape.

    Example:
        >>> x = torch.linspace(-1, 1, 5)
        >>> fake_quant(x, qparams(-1.0, 1.0, bits=2, symmetric=True)).tolist()   # levels -1, 0, 1
        [-1.0, 0.0, 0.0, 0.0, 1.0]
    """
    s, z = qp._shaped(qp.scale, x), qp._shaped(qp.zero_point, x)
    return ((torch.round(x / s) + z).clamp(qp.qmin, qp.qmax) - z) * s


def sqnr_db(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio ``10 log10(||x||^2 / ||x - x_hat||^2)`` in dB (inf if exact).

    Example:
        >>> round(sqnr_db(torch.ones(4), torch.full((4,), 0.9)), 3)
        20.0
    """
    noise = (x.double() - x_hat.double()).pow(2).sum()
    return float("inf") if noise == 0 else (10 * torch.log10(x.double().pow(2).sum() / noise)).item()
