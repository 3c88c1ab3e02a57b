"""Fourier-type learnable activations: a DARUAN-style data re-uploading activation and a Fourier series.

**DARUAN** (DatA Re-Uploading ActivatioN; "quantum variational activation functions", 2025) is a one-qubit
circuit that reads the input ``x`` several times. We simulate it exactly with 2-vectors of complex numbers:

    |psi(x)> = W_L S(w_L x) ... W_1 S(w_1 x) W_0 |0>,    f(x) = a * <psi(x)| Z |psi(x)> + b

with ``S(t) = diag(exp(-i t / 2), exp(+i t / 2))`` (a Z rotation that *encodes* the input), trainable
rotations ``W_l = Rz(alpha) Ry(beta) Rz(gamma)``, trainable pre-processing weights ``w_l`` and an output
scale/shift ``a, b``. Because each encoding contributes eigenvalue differences in {-1, 0, +1} (times
``w_l``), ``f`` is a trigonometric polynomial whose frequencies are all the sums ``sum_l c_l w_l`` with
``c_l in {-1, 0, 1}`` (:func:`daruan_spectrum`). With every ``w_l = 1`` that is only ``0..L``; with
``w_l = 3**(l-1)`` it is every integer up to ``(3**L - 1) / 2``: the spectrum grows exponentially with the
repetitions ``L`` while the parameters grow linearly (``4 L + 5`` per unit).

**Fourier series** activation (the classical comparison, as in SineKAN / Fourier-KAN style layers):
``f(x) = b + w x + sum_{k=1..K} (a_k sin(k x) + c_k cos(k x))``, ``2 K + 2`` parameters for ``K`` frequencies.

Both act element-wise with their own parameters per feature: input (..., n_features) -> same shape.

Example:
    >>> import torch
    >>> act = DARUAN(n_features=3, repetitions=2, weights="ternary")
    >>> act(torch.zeros(5, 3)).shape
    torch.Size([5, 3])
    >>> daruan_spectrum([1.0, 3.0])
    [0.0, 1.0, 2.0, 3.0, 4.0]
"""
from __future__ import annotations

import itertools
import math
from typing import Sequence

import torch
from torch import nn

__all__ = ["DARUAN", "FourierActivation", "WEIGHT_SCHEMES", "daruan_spectrum", "encoding_weights",
           "measured_spectrum"]

WEIGHT_SCHEMES = ("ones", "powers_of_2", "ternary")


def encoding_weights(repetitions: int, scheme: str = "ternary") -> torch.Tensor:
    """Pre-processing weights ``w_1..w_L``: ``ones`` (1, 1, ...), ``powers_of_2`` (1, 2, 4, ...), ``ternary`` (1, 3, 9, ...).

    Example:
        >>> encoding_weights(3, "powers_of_2").tolist()
        [1.0, 2.0, 4.0]
    """
    if repetitions < 1:
        raise ValueError(f"repetitions must be >= 1, got {repetitions}")
    base = {"ones": 1.0, "powers_of_2": 2.0, "ternary": 3.0}.get(scheme)
    if base is None:
        raise ValueError(f"unknown weight scheme {scheme!r}; valid: {', '.join(WEIGHT_SCHEMES)}")
    return base ** torch.arange(repetitions, dtype=torch.float32)


def daruan_spectrum(weights: Sequence[float], decimals: int = 6) -> list[float]:
    """The non-negative frequencies a DARUAN with pre-processing ``weights`` can contain: |sum_l c_l w_l|, c_l in {-1,0,1}.

    Example:
        >>> daruan_spectrum([1.0, 1.0])
        [0.0, 1.0, 2.0]
    """
    w = [float(v) for v in weights]
    sums = {round(abs(sum(c * v for c, v in zip(cs, w))), decimals) for cs in itertools.product((-1, 0, 1), repeat=len(w))}
    return sorted(sums)


def measured_spectrum(values: torch.Tensor, rel_tol: float = 1e-5) -> list[int]:
    """Integer frequencies present in a function sampled on one period [0, 2 pi): (..., P) samples -> frequencies.

    A frequency counts as present when its largest amplitude (over the leading dimensions) exceeds
    ``rel_tol`` times the largest amplitude overall. ``P`` must exceed twice the highest frequency.

    Example:
        >>> x = torch.arange(64) * 2 * math.pi / 64
        >>> measured_spectrum(torch.cos(3 * x) + 0.5)
        [0, 3]
    """
    amplitude = torch.fft.rfft(values.double(), dim=-1).abs()           # (..., P // 2 + 1)
    amplitude = amplitude.reshape(-1, amplitude.shape[-1]).amax(0)
    return torch.nonzero(amplitude > rel_tol * amplitude.max()).flatten().tolist()


def _euler_rotation(angles: torch.Tensor) -> torch.Tensor:
    """Rz(a) Ry(b) Rz(c) from angles (..., 3): complex (..., 2, 2)."""
    a, b, c = angles.unbind(-1)
    cos, sin = torch.cos(b / 2), torch.sin(b / 2)
    e = lambda t: torch.polar(torch.ones_like(t), t)  # exp(i t)
    # Rz(t) = diag(e(-t/2), e(t/2)); Ry(b) = [[cos, -sin], [sin, cos]]
    row0 = torch.stack([e(-(a + c) / 2) * cos, -e(-(a - c) / 2) * sin], -1)
    row1 = torch.stack([e((a - c) / 2) * sin, e((a + c) / 2) * cos], -1)
    return torch.stack([row0, row1], -2)


class DARUAN(nn.Module):
    """One-qubit data re-uploading activation with ``repetitions`` encodings, per feature.

    Parameters: ``angles`` (F, L + 1, 3), ``weights`` (F, L) (trainable unless ``train_weights=False``),
    ``scale`` and ``shift`` (F,). ``weights`` starts at :func:`encoding_weights` ``(L, scheme)``.
    """

    def __init__(self, n_features: int = 1, repetitions: int = 2, weights: str = "ternary",
                 train_weights: bool = True, generator: torch.Generator | None = None):
        super().__init__()
        if n_features < 1:
            raise ValueError(f"n_features must be positive, got {n_features}")
        self.n_features, self.repetitions = n_features, repetitions
        w = encoding_weights(repetitions, weights).expand(n_features, repetitions).clone()
        self.weights = nn.Parameter(w, requires_grad=train_weights)
        self.angles = nn.Parameter(torch.rand(n_features, repetitions + 1, 3, generator=generator) * 2 * math.pi)
        self.scale = nn.Parameter(torch.ones(n_features))
        self.shift = nn.Parameter(torch.zeros(n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.n_features:
            raise ValueError(f"DARUAN expects (..., {self.n_features}), got {tuple(x.shape)}")
        rotations = _euler_rotation(self.angles)                          # (F, L + 1, 2, 2) complex
        psi = rotations[:, 0, :, 0].expand(*x.shape, 2)                   # W_0 |0>: (..., F, 2)
        for layer in range(self.repetitions):
            phase = torch.polar(torch.ones_like(x), -self.weights[:, layer] * x / 2)   # (..., F)
            psi = torch.stack([psi[..., 0] * phase, psi[..., 1] * phase.conj()], -1)  # S(w x) is diagonal
            psi = torch.einsum("fij,...fj->...fi", rotations[:, layer + 1], psi)
        z = psi[..., 0].abs() ** 2 - psi[..., 1].abs() ** 2                 # <Z>, in [-1, 1]
        return self.scale * z + self.shift

    def spectrum(self) -> list[list[float]]:
        """The frequencies each feature's function can contain, from its current weights."""
        return [daruan_spectrum(w.tolist()) for w in self.weights.detach()]


class FourierActivation(nn.Module):
    """``b + w x + sum_k (a_k sin(k x) + c_k cos(k x))`` per feature, ``k = 1..n_frequencies``."""

    def __init__(self, n_features: int = 1, n_frequencies: int = 4, init_scale: float = 0.1,
                 generator: torch.Generator | None = None):
        super().__init__()
        if n_features < 1 or n_frequencies < 1:
            raise ValueError(f"n_features and n_frequencies must be positive, got {n_features}, {n_frequencies}")
        self.register_buffer("k", torch.arange(1, n_frequencies + 1, dtype=torch.float32))
        self.sin_coef = nn.Parameter(torch.randn(n_features, n_frequencies, generator=generator) * init_scale)
        self.cos_coef = nn.Parameter(torch.randn(n_features, n_frequencies, generator=generator) * init_scale)
        self.linear = nn.Parameter(torch.ones(n_features))
        self.bias = nn.Parameter(torch.zeros(n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kx = x.unsqueeze(-1) * self.k                                     # (..., F, K)
        series = (torch.sin(kx) * self.sin_coef).sum(-1) + (torch.cos(kx) * self.cos_coef).sum(-1)
        return self.bias + self.linear * x + series
