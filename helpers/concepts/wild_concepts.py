"""Concept example sets with ground truth, drawn from ``helpers.data.wild``: the spurious corner cue, tint families,
backgrounds, and random images.

``wild`` records every image's tint family and background photo, and draws the spurious cue as a small square of
``CUE_COLOURS[class]`` in the top-left corner. :func:`paste_cue` draws that same square on any images, so a "cue"
concept set is a set of ordinary images with one class's cue added.

Example:
    >>> pool = ConceptPool(wild(400, "test", seed=0), seed=0)
    >>> sets = pool.take("tint:red", runs=2, n=10)
    >>> len(sets), tuple(sets[0].shape)
    (2, (10, 3, 64, 64))
"""
from __future__ import annotations

import torch

from helpers.data.fashion import FASHION_CLASSES
from helpers.data.real_photos import PHOTO_NAMES
from helpers.data.wildset import CUE_COLOURS, TINT_FAMILIES, WildSet, wild

__all__ = ["FASHION_CLASSES", "ConceptPool", "paste_cue", "wild"]


def paste_cue(images: torch.Tensor, fashion_class: int) -> torch.Tensor:
    """A copy of ``images`` (N, 3, S, S) with the spurious cue of Fashion-MNIST class ``fashion_class`` drawn as
    ``wild(..., spurious=True)`` draws it (a max(3, S // 10)-pixel square, 1 pixel from the top-left corner).

    Example:
        >>> clean, cued = wild(4, "test", seed=3), wild(4, "test", seed=3, spurious=True)
        >>> same = [torch.equal(paste_cue(clean.images[i:i + 1], int(cued.cues[i])), cued.images[i:i + 1])
        ...         for i in range(4)]
        >>> all(same)
        True
    """
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise ValueError(f"images must be (N, 3, S, S) RGB squares, got shape {tuple(images.shape)}")
    if not 0 <= fashion_class < len(CUE_COLOURS):
        raise ValueError(f"fashion_class must be a Fashion-MNIST class 0..{len(CUE_COLOURS) - 1}, got {fashion_class}")
    c, m = max(3, images.shape[-1] // 10), 1
    out = images.clone()
    out[:, :, m:m + c, m:m + c] = CUE_COLOURS[fashion_class].to(images)[:, None, None]
    return out


class ConceptPool:
    """Draws disjoint concept example sets from one ``WildSet`` (cue-free images).

    Concept names: ``"random"``; ``"cue:<fashion class id>"`` (random images with that class's corner cue);
    ``"tint:<family>"`` (items of one tint family, e.g. ``"tint:red"``); ``"background:<photo>[+<photo>...]"``
    (images on those photos). Every image is used at most once across all :meth:`take` calls.
    """

    def __init__(self, images: WildSet, seed: int = 0):
        if images.spurious:
            raise ValueError("the pool must be cue-free (wild(..., spurious=False)); cue concepts paste the cue")
        self.data = images
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
        self.free = torch.zeros(len(images), dtype=torch.bool)
        self.free[order] = True
        self.order = order  # images are taken in this random order

    def _members(self, name: str) -> tuple[torch.Tensor, int | None]:
        kind, _, arg = name.partition(":")
        if kind == "random":
            return torch.ones(len(self.data), dtype=torch.bool), None
        if kind == "cue":
            return torch.ones(len(self.data), dtype=torch.bool), int(arg)
        if kind == "tint" and arg in TINT_FAMILIES:
            return self.data.tints == TINT_FAMILIES.index(arg), None
        if kind == "background" and arg and all(p in PHOTO_NAMES for p in arg.split("+")):
            ids = torch.tensor([PHOTO_NAMES.index(p) for p in arg.split("+")])
            return torch.isin(self.data.backgrounds, ids), None
        raise ValueError(f"unknown concept {name!r}; use 'random', 'cue:<class 0-9>', 'tint:<{'|'.join(TINT_FAMILIES)}>'"
                         f" or 'background:<photo>[+<photo>]' with photos from {list(PHOTO_NAMES)}")

    def available(self, name: str) -> int:
        """How many unused images could still serve concept ``name``."""
        members, _ = self._members(name)
        return int((members & self.free).sum())

    def take(self, name: str, runs: int, n: int) -> list[torch.Tensor]:
        """``runs`` disjoint sets of ``n`` images (n, 3, S, S) for concept ``name``, never used before."""
        if runs < 1 or n < 2:
            raise ValueError(f"need runs >= 1 and n >= 2 examples per set, got runs={runs}, n={n}")
        members, cue = self._members(name)
        ok = (members & self.free)[self.order]
        picked = self.order[ok][: runs * n]
        if len(picked) < runs * n:
            raise ValueError(f"concept {name!r} needs {runs} x {n} = {runs * n} unused images but the pool has "
                             f"{len(picked)} left; draw a larger pool (wild(n, ...)) or use fewer/smaller sets")
        self.free[picked] = False
        images = self.data.images[picked]
        if cue is not None:
            images = paste_cue(images, cue)
        return list(images.split(n))
