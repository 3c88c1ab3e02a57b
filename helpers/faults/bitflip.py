"""Bit flips in stored numbers: float32 and int8 tensors, random faults at a bit-error rate, weight faults.

A number in memory is a row of bits. Flipping one bit of a float32 (1 sign, 8 exponent, 23 mantissa bits) changes
it by a tiny amount (low mantissa bit), flips its sign, or multiplies it by up to 2**128 (high exponent bit). One flip
moves an int8 number (two's complement) by at most 128 steps of its scale, and any number of flips keeps it within
[-128, 127] steps. ``flip_bits`` flips chosen bits, addressed by a
flat bit index ``element * bits + bit`` (bit 0 = least significant). ``random_bit_positions`` draws the faults of a
memory in which every bit flips independently with probability ``rate`` (the bit-error rate).

``weight_faults`` puts such faults into a model's weights for the duration of a ``with`` block and always restores
the exact original values afterwards, also when the block raises. ``activation_faults`` is an edit function for
:func:`helpers.edit` that flips bits of a layer's output on every forward pass.

Example:
    >>> x = torch.tensor([1.0, 0.5])
    >>> flip_bits(x, torch.tensor([31, 32 + 30]))  # sign of x[0]; top exponent bit of x[1]
    tensor([-1.0000e+00,  1.7014e+38])
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import torch
from torch import nn

REPRESENTATIONS = {"float32": 32, "int8": 8}  # how a number is stored -> bits per number


def check_rate(rate: float, what: str = "fault rate") -> float:
    """Return ``rate`` as a float if it is a probability in [0, 1]; else raise ``ValueError`` naming the range.

    Example:
        >>> check_rate(1e-5)
        1e-05
    """
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number in [0, 1] (a probability per bit), got {rate!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise ValueError(f"{what} must be in [0, 1] (a probability per bit), got {rate!r}")
    return value


def check_representation(representation: str) -> int:
    """Bits per number of ``representation`` ("float32" or "int8"); ``ValueError`` naming the valid ones."""
    if representation not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {representation!r}; valid: {list(REPRESENTATIONS)}")
    return REPRESENTATIONS[representation]


def flip_bits(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """A copy of the float32 or int8 tensor ``x`` with the bits at flat ``positions`` flipped.

    ``positions`` (1-D, distinct) index the bits of ``x`` laid out element by element in row-major order:
    bit ``b`` of element ``i`` is ``i * bits + b``, with ``bits`` = 32 or 8 and bit 0 the least significant.

    Example:
        >>> flip_bits(torch.tensor([3, -1], dtype=torch.int8), torch.tensor([0, 8 + 7]))
        tensor([  2, 127], dtype=torch.int8)
    """
    if x.dtype == torch.float32:
        bits, as_int = 32, torch.int32
    elif x.dtype == torch.int8:
        bits, as_int = 8, torch.uint8
    else:
        raise TypeError(f"flip_bits works on float32 or int8 tensors, got {x.dtype}")
    positions = torch.as_tensor(positions, dtype=torch.long, device=x.device).flatten()
    n_bits = x.numel() * bits
    if len(positions) and (positions.min() < 0 or positions.max() >= n_bits):
        raise ValueError(f"bit positions must be in [0, {n_bits}) for a tensor of {x.numel()} numbers of "
                         f"{bits} bits, got {positions.min().item()}..{positions.max().item()}")
    if len(positions) != len(positions.unique()):
        raise ValueError("bit positions must be distinct (flipping a bit twice undoes it)")
    # one mask per element: the bits to flip in it are distinct powers of two, so their sum is their OR
    masks = torch.zeros(x.numel(), dtype=torch.int64, device=x.device)
    masks.index_add_(0, positions // bits, torch.ones_like(positions).bitwise_left_shift(positions % bits))
    if bits == 32:
        masks = torch.where(masks >= 2 ** 31, masks - 2 ** 32, masks)  # the same 32 bits as a signed int32
    raw = x.detach().contiguous().clone().view(as_int).flatten()
    raw = raw.bitwise_xor(masks.to(as_int))
    return raw.view(x.dtype).view(x.shape)


def random_bit_positions(n_bits: int, rate: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Flat positions of the bits that flip when each of ``n_bits`` bits flips independently with ``rate``.

    The count is drawn from Binomial(n_bits, rate) and the positions uniformly without repetition, which is the
    same distribution as one coin per bit, without drawing millions of coins at small rates.

    Example:
        >>> len(random_bit_positions(1000, 0.0)), len(random_bit_positions(1000, 1.0))
        (0, 1000)
    """
    rate = check_rate(rate)
    if n_bits < 0:
        raise ValueError(f"n_bits must be >= 0, got {n_bits}")
    if rate > 0.01:  # dense: one coin per bit is cheap enough and exact
        return torch.nonzero(torch.rand(n_bits, generator=generator) < rate).flatten()
    k = int(torch.binomial(torch.tensor(float(n_bits)), torch.tensor(rate), generator=generator))
    chosen = torch.empty(0, dtype=torch.long)
    while len(chosen) < k:  # sparse: draw, drop repeats, top up
        more = torch.randint(n_bits, (k - len(chosen),), generator=generator)
        chosen = torch.cat([chosen, more]).unique()
    return chosen[torch.randperm(len(chosen), generator=generator)][:k].sort().values


def quantize_int8(x: torch.Tensor, scale: Optional[float] = None) -> tuple[torch.Tensor, float]:
    """Symmetric int8 storage of ``x``: ``(q, scale)`` with ``x ~ q * scale``, q in [-127, 127].

    ``scale`` defaults to ``max |x| / 127`` (per tensor); values beyond ``127 * scale`` saturate.

    Example:
        >>> q, scale = quantize_int8(torch.tensor([0.5, -1.0]))
        >>> q, round(scale * 127, 6)
        (tensor([  64, -127], dtype=torch.int8), 1.0)
    """
    if scale is None:
        scale = x.detach().abs().max().item() / 127 if x.numel() else 1.0
    scale = float(scale) if scale > 0 else 1.0
    return (x.detach() / scale).round().clamp(-127, 127).to(torch.int8), scale


def inject(x: torch.Tensor, rate: float, representation: str = "float32", *,
           generator: Optional[torch.Generator] = None, scale: Optional[float] = None) -> tuple[torch.Tensor, int]:
    """``(faulty copy of x as float32, number of flipped bits)``: ``x`` stored as ``representation`` with random
    faults at bit-error ``rate``, read back. In int8, the copy is quantized even where no bit flipped.

    Example:
        >>> y, n = inject(torch.ones(4), 0.0, "int8")
        >>> y, n
        (tensor([1., 1., 1., 1.]), 0)
    """
    rate, bits = check_rate(rate), check_representation(representation)
    stored, scale = (x.detach().float(), 1.0) if bits == 32 else quantize_int8(x, scale)
    positions = random_bit_positions(stored.numel() * bits, rate, generator).to(x.device)
    faulty = flip_bits(stored, positions)
    return (faulty.float() * scale if bits == 8 else faulty), len(positions)


def weight_names(model: nn.Module) -> list[str]:
    """Names of the weight matrices and kernels of ``model`` (parameters ending in ``weight`` with >= 2 dims)."""
    return [n for n, p in model.named_parameters() if n.endswith("weight") and p.ndim >= 2]


@dataclass
class FaultReport:
    """What :func:`weight_faults` did: bits stored and bits flipped, per parameter."""

    representation: str
    rate: float
    bits: dict[str, int] = field(default_factory=dict)
    flipped: dict[str, int] = field(default_factory=dict)

    @property
    def n_flipped(self) -> int:
        return sum(self.flipped.values())

    def __repr__(self) -> str:
        return (f"FaultReport({self.representation}, rate={self.rate:g}: {self.n_flipped} of "
                f"{sum(self.bits.values())} bits flipped in {len(self.bits)} tensors)")


@contextmanager
def weight_faults(model: nn.Module, rate: float, representation: str = "float32", *, seed: int = 0,
                  names: Optional[list[str]] = None) -> Iterator[FaultReport]:
    """Inside the block, ``model``'s weights hold random bit faults; on exit (also on an exception) the original
    values are written back, bit for bit.

    ``names`` are the parameters to corrupt (default: :func:`weight_names`, every conv kernel and linear matrix);
    ``representation`` is how they are stored ("float32", or "int8" symmetric per tensor, which also quantizes
    them); ``seed`` fixes the fault map. The rate and names are checked before any weight is touched.

    Example:
        >>> net = nn.Linear(100, 10)
        >>> before = net.weight.clone()
        >>> with weight_faults(net, 1e-2, seed=0) as report:
        ...     changed = not torch.equal(net.weight, before)
        >>> changed, torch.equal(net.weight, before), report.n_flipped > 0
        (True, True, True)
    """
    rate, bits = check_rate(rate), check_representation(representation)
    params = dict(model.named_parameters())
    names = weight_names(model) if names is None else list(names)
    unknown = [n for n in names if n not in params]
    if unknown:
        raise KeyError(f"no parameters named {unknown}; weights of this model: {weight_names(model)}")
    generator = torch.Generator().manual_seed(seed)
    originals = {n: params[n].detach().clone() for n in names}
    report = FaultReport(representation, rate)
    try:
        with torch.no_grad():
            for n in names:
                faulty, flipped = inject(originals[n].cpu(), rate, representation, generator=generator)
                params[n].copy_(faulty.to(params[n]))
                report.bits[n], report.flipped[n] = originals[n].numel() * bits, flipped
        yield report
    finally:
        with torch.no_grad():
            for n, value in originals.items():
                params[n].copy_(value)


def activation_faults(rate: float, representation: str = "float32", *, scale: Optional[float] = None,
                      rows: Optional[torch.Tensor] = None,
                      generator: Optional[torch.Generator] = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """An edit function for :func:`helpers.edit`: the layer's output, stored as ``representation`` with bit
    faults at ``rate``, read back (transient faults: new ones on every forward pass).

    ``rows`` (bool, one per batch row) limits the faults to some inputs; ``scale`` is the int8 step (e.g. the
    layer's clean maximum / 127; default: the tensor's own maximum).

    Example:
        >>> f = activation_faults(1.0, rows=torch.tensor([False, True]))   # every bit of the second row flipped
        >>> f(torch.ones(2, 2))
        tensor([[ 1.0000,  1.0000],
                [-4.0000, -4.0000]])
    """
    check_rate(rate)
    check_representation(representation)

    def fn(out: torch.Tensor) -> torch.Tensor:
        if rows is None:
            faulty, _ = inject(out, rate, representation, generator=generator, scale=scale)
            return faulty.to(out.dtype)
        if rows.shape != out.shape[:1]:
            raise ValueError(f"rows must be one bool per batch row ({out.shape[0]}), got {tuple(rows.shape)}")
        new = out.clone()
        new[rows], _ = inject(out[rows], rate, representation, generator=generator, scale=scale)
        return new
    return fn
