"""Real or generated? Real/generated image sets with ground truth for notebook 07.

The generated images come from the zoo's ``wild-generator`` (:mod:`helpers.models.generator`, a conv
autoencoder whose transposed-conv upsampler leaves a checkerboard and whose narrow code blurs fine texture:
the "artefacts" a detector can learn).

A :class:`FakeSet` holds real images and generated ones of two kinds: *full* fakes (the generator's whole output,
as in CIFAKE) and *window* fakes (the generator rewrote one random square of a real image, as inpainting or
splicing does). Every image carries its object mask and the mask of the generated region, so "does the detector
look at the artefacts or at the object?" becomes a measurement.

Example:
    >>> from helpers import zoo
    >>> from helpers.data import fakes, wild
    >>> gen, info = zoo.load("wild-generator", device="cpu")
    >>> ds = fakes.make_fakes(wild(200, "test", seed=0), gen, seed=0)
    >>> ds.images.shape, ds.is_fake.float().mean().item()
    (torch.Size([200, 3, 64, 64]), 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from helpers.ops.batching import predict

if TYPE_CHECKING:
    from helpers.data.wildset import WildSet

KINDS = ("real", "full", "window")  # FakeSet.kinds indexes this tuple


# --------------------------------------------------------------------------------------------------------------
# the generator


# --------------------------------------------------------------------------------------------------------------
# real and generated images with ground truth


@dataclass
class FakeSet:
    """Real and generated images with everything needed to check where a detector looks; tensors share dim N.

    Fields:
        images: (N, 3, 64, 64) float in [0, 1], what the detector sees.
        is_fake: (N,) int64, 1 for generated (full or window), 0 for real; the detector's target.
        kinds: (N,) int64 index into ``KINDS`` ("real", "full", "window").
        regions: (N, 64, 64) bool, the pixels the generator produced: all for "full", a square for "window",
            none for "real". The ground-truth location of the artefacts.
        masks: (N, 64, 64) bool, the object (the Fashion-MNIST item) in the image.
        sources: (N, 3, 64, 64) the real image each one was made from (equal to ``images`` for real ones).
        targets: (N,) int64 the object's class in the ``wild`` training classes (for the shape classifier).
    """

    images: torch.Tensor
    is_fake: torch.Tensor
    kinds: torch.Tensor
    regions: torch.Tensor
    masks: torch.Tensor
    sources: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.is_fake[i]

    def subset(self, index: torch.Tensor) -> "FakeSet":
        """The images at ``index`` (a LongTensor or bool mask), as a new FakeSet."""
        return FakeSet(**{k: v[index] for k, v in vars(self).items()})

    def kind(self, name: str) -> "FakeSet":
        """Only the images of one kind: "real", "full" or "window"."""
        if name not in KINDS:
            raise ValueError(f"unknown kind {name!r}; valid: {list(KINDS)}")
        return self.subset(self.kinds == KINDS.index(name))

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={int((self.kinds == i).sum())}" for i, k in enumerate(KINDS))
        return f"FakeSet(n={len(self)}: {counts}; images {tuple(self.images.shape)})"


def random_windows(n: int, size: int = 64, side: tuple[int, int] = (24, 40),
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, size, size) bool masks, each one square of a random side in ``side`` (inclusive) at a random place.

    Example:
        >>> w = random_windows(3, side=(10, 10))
        >>> w.sum((1, 2)).tolist()
        [100, 100, 100]
    """
    lo, hi = side
    if not 1 <= lo <= hi <= size:
        raise ValueError(f"side must satisfy 1 <= low <= high <= {size}, got {side}")
    sides = torch.randint(lo, hi + 1, (n,), generator=generator)
    x0 = (torch.rand(n, generator=generator) * (size - sides + 1)).long()  # top-left corner, inside the image
    y0 = (torch.rand(n, generator=generator) * (size - sides + 1)).long()
    pos = torch.arange(size)
    cols = (pos >= x0[:, None]) & (pos < (x0 + sides)[:, None])  # (n, size)
    rows = (pos >= y0[:, None]) & (pos < (y0 + sides)[:, None])
    return rows[:, :, None] & cols[:, None, :]


def make_fakes(real: "WildSet", generator: nn.Module, *, window_fraction: float = 0.5, real_fraction: float = 0.5,
               side: tuple[int, int] = (24, 40), seed: int = 0) -> FakeSet:
    """Turn a ``wild`` set into a real/generated set: the first ``real_fraction`` stays real, the rest is generated.

    Of the generated half, a fraction ``window_fraction`` are *window* fakes (the generator's output pasted into
    one random square of the source, a splice with a known location), the rest *full* fakes (the whole output).
    Fakes and real images come from different source pictures, so no real image has its own fake in the set.

    Example:
        >>> from helpers.data import wild
        >>> ds = make_fakes(wild(40, "test", seed=0), torch.nn.Conv2d(3, 3, 1), seed=0)
        >>> ds
        FakeSet(n=40: real=20, full=10, window=10; images (40, 3, 64, 64))
    """
    for name, value in (("window_fraction", window_fraction), ("real_fraction", real_fraction)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    n = len(real.images)
    n_real = round(real_fraction * n)
    n_fake = n - n_real
    n_window = round(window_fraction * n_fake)
    g = torch.Generator().manual_seed(int(seed))
    size = real.images.shape[-1]
    src = real.images[n_real:]  # (F, 3, S, S), the pictures the fakes are made from
    out = predict(generator, src)  # (F, 3, S, S) the generator's output
    # regions: full fakes first, then window fakes
    regions = torch.ones(n_fake, size, size, dtype=torch.bool)
    regions[n_fake - n_window:] = random_windows(n_window, size, side, g)
    fake = torch.where(regions[:, None], out, src)  # generated pixels inside the region, the source outside
    kinds = torch.tensor([0] * n_real + [1] * (n_fake - n_window) + [2] * n_window)
    return FakeSet(
        images=torch.cat([real.images[:n_real], fake]),
        is_fake=(kinds > 0).long(),
        kinds=kinds,
        regions=torch.cat([torch.zeros(n_real, size, size, dtype=torch.bool), regions]),
        masks=real.masks.clone(),
        sources=real.images.clone(),
        targets=real.targets.clone(),
    )


def split(ds: FakeSet, train_fraction: float = 0.75, seed: int = 0) -> tuple[FakeSet, FakeSet]:
    """A random ``(train, held_out)`` split of ``ds`` (stratified by kind, so both halves have every kind)."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    g = torch.Generator().manual_seed(int(seed))
    train, held = [], []
    for k in range(len(KINDS)):
        idx = (ds.kinds == k).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        cut = round(train_fraction * len(idx))
        train.append(idx[:cut])
        held.append(idx[cut:])
    return ds.subset(torch.cat(train)), ds.subset(torch.cat(held))


# --------------------------------------------------------------------------------------------------------------
# where are the artefacts, and where does a map look


def artefact_map(images: torch.Tensor, sources: torch.Tensor, kernel: int = 3) -> torch.Tensor:
    """Per-pixel artefact energy (B, H, W): the high-pass part of ``images - sources``, squared, summed over RGB.

    The high-pass (residual minus its ``kernel`` x ``kernel`` local mean) keeps checkerboards and lost texture and
    drops slow colour shifts. Zero where the image equals its source.

    Example:
        >>> x = torch.rand(2, 3, 8, 8)
        >>> artefact_map(x, x).abs().max().item()
        0.0
    """
    if images.shape != sources.shape or images.dim() != 4:
        raise ValueError(f"images and sources must both be (B, C, H, W), got {tuple(images.shape)} and "
                         f"{tuple(sources.shape)}")
    r = images - sources  # (B, C, H, W)
    high = r - F.avg_pool2d(r, kernel, stride=1, padding=kernel // 2, count_include_pad=False)
    return high.pow(2).sum(1)
