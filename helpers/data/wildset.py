"""``wild``: Fashion-MNIST items composited onto crops of real photographs, with ground truth for every image.

Each image is a 64x64 RGB picture: a random square crop of one of the bundled photos (``photos()``), possibly mirrored,
with one Fashion-MNIST item pasted at a random position and scale (26-48 px at 64 px), coloured with a random tint from
one of eight tint families and shaded by the item's own grey levels. Every image comes with its object mask, bounding
box, tint family, background photo and label, so saliency maps, concepts and probes have something true to compare to.

Splits (the same ``seed`` gives different draws in each split):

* ``"train"``: Fashion-MNIST *train* items of the training classes (all classes except ``held_out``);
* ``"test"``:  Fashion-MNIST *test* items of the training classes;
* ``"novel"``: Fashion-MNIST *test* items of the held-out classes only (default Trouser and Bag), for the
  novel-class lesson.

Spurious variant: with ``spurious=True`` a small coloured square is drawn in the top-left corner. Its colour is the
label's colour (``CUE_COLOURS``) for a fraction ``cue_agreement`` of the images and another class's colour otherwise.
All random draws are made whether or not the cue is drawn, so ``wild(..., spurious=True)`` and
``wild(..., spurious=False)`` with the same seed give the same images apart from the corner square: the "cue-free"
twin of a set.

Example:
    >>> from helpers.data import wild
    >>> ds = wild(1000, "train", seed=0)
    >>> ds.images.shape, ds.masks.shape, ds.classes[ds.targets[0]], ds.caption(0)
    (torch.Size([1000, 3, 64, 64]), torch.Size([1000, 64, 64]), 'Shirt', 'white shirt on gravel')
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .fashion import FASHION_CLASSES, fashion_mnist
from .real_photos import PHOTO_NAMES, photos

HELD_OUT = (1, 8)  # Trouser, Bag: shapes unlike the other classes, so a novel-class detector has a fair chance
SPLITS = {"train": 0, "test": 1, "novel": 2}  # split -> code mixed into the seed
PHOTO_SIDE = 160  # photos are resized once so that their short side is this many pixels

# tint family -> (hue centre in degrees, hue half-width, saturation range, value range)
TINTS = {
    "red": (0, 10, (0.7, 1.0), (0.75, 1.0)),
    "orange": (30, 8, (0.8, 1.0), (0.85, 1.0)),
    "yellow": (56, 6, (0.7, 1.0), (0.9, 1.0)),
    "green": (120, 20, (0.6, 1.0), (0.65, 1.0)),
    "cyan": (182, 10, (0.6, 1.0), (0.8, 1.0)),
    "blue": (228, 12, (0.7, 1.0), (0.75, 1.0)),
    "purple": (285, 15, (0.5, 0.9), (0.7, 1.0)),
    "white": (0, 180, (0.0, 0.08), (0.88, 1.0)),
}
TINT_FAMILIES = tuple(TINTS)

# one colour per Fashion-MNIST class, for the spurious corner cue (10 colours far apart in RGB)
CUE_COLOURS = torch.tensor([
    [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 1.0],
    [0.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.5, 0.0], [0.5, 0.0, 1.0],
])


@dataclass
class WildSet:
    """A generated ``wild`` image set; all tensors share the first dimension N.

    ``ds[i]`` is ``(image, target)``, so the set works with ``DataLoader`` as it is.

    Fields:
        images: (N, 3, S, S) float32 RGB in [0, 1]; no normalisation.
        masks: (N, S, S) bool, True where the object is visible (the cue square is not part of it).
        boxes: (N, 4) int64 ``x0, y0, x1, y1`` of the mask, end-exclusive pixels.
        labels: (N,) int64 Fashion-MNIST class 0..9 (``FASHION_CLASSES``).
        targets: (N,) int64 index into ``classes`` (the model head's order); -1 for held-out classes.
        tints: (N,) int64 index into ``TINT_FAMILIES``.
        backgrounds: (N,) int64 index into ``PHOTO_NAMES``.
        cues: (N,) int64 Fashion-MNIST class whose ``CUE_COLOURS`` entry the corner square has; -1 if no square.
        sources: (N,) int64 index of the item in its Fashion-MNIST split.
        classes: names of the training classes, in target order.
        split, seed, spurious: how the set was made.
    """

    images: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    targets: torch.Tensor
    tints: torch.Tensor
    backgrounds: torch.Tensor
    cues: torch.Tensor
    sources: torch.Tensor
    classes: tuple[str, ...]
    split: str
    seed: int
    spurious: bool

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.targets[i]

    def caption(self, i: int) -> str:
        """A short description of image ``i``, e.g. ``'red sneaker on coffee'``."""
        name = FASHION_CLASSES[int(self.labels[i])].lower()
        return f"{TINT_FAMILIES[int(self.tints[i])]} {name} on {PHOTO_NAMES[int(self.backgrounds[i])]}"

    def __repr__(self) -> str:
        head = f"WildSet(split={self.split!r}, n={len(self)}, seed={self.seed}, spurious={self.spurious})"
        rows = [
            f"  {k:<12}{tuple(v.shape)} {str(v.dtype).replace('torch.', '')}"
            for k, v in vars(self).items() if isinstance(v, torch.Tensor)
        ]
        return "\n".join([head, *rows, f"  classes     {list(self.classes)}"])


def _generator(seed: int, split: str) -> torch.Generator:
    # SeedSequence mixes (seed, split) well, so nearby seeds and the three splits give unrelated streams
    state = np.random.SeedSequence([int(seed), SPLITS[split]]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


@functools.lru_cache(maxsize=None)
def _photo_tensor(name: str) -> torch.Tensor:
    """(3, H, W) float photo with short side ``PHOTO_SIDE`` (antialiased once, then reused)."""
    img = torch.from_numpy(photos([name])[name]).permute(2, 0, 1).float().div(255)  # (3, H, W)
    h, w = img.shape[1:]
    k = PHOTO_SIDE / min(h, w)
    size = (round(h * k), round(w * k))
    return F.interpolate(img[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Vectorised HSV -> RGB; h in [0, 1), s and v in [0, 1]; returns (N, 3)."""
    k = (torch.tensor([5.0, 3.0, 1.0]) + h[:, None] * 6) % 6  # (N, 3)
    return v[:, None] - v[:, None] * s[:, None] * (torch.minimum(k, 4 - k).clamp(0, 1))


def _tints(fam: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """(N, 3) RGB colours drawn inside each image's tint family."""
    table = torch.tensor([[c, hw, s[0], s[1], v[0], v[1]] for c, hw, s, v in TINTS.values()])  # (F, 6)
    c, hw, s0, s1, v0, v1 = table[fam].unbind(1)
    u = torch.rand(len(fam), 3, generator=g)
    hue = ((c + hw * (2 * u[:, 0] - 1)) % 360) / 360
    return _hsv_to_rgb(hue, s0 + (s1 - s0) * u[:, 1], v0 + (v1 - v0) * u[:, 2])


def _draw_indices(pool: int, n: int, g: torch.Generator) -> torch.Tensor:
    """n indices into range(pool): a random permutation, repeated (re-shuffled) if n > pool."""
    chunks = [torch.randperm(pool, generator=g) for _ in range(-(-n // pool))]
    return torch.cat(chunks)[:n]


def _axis_grid(start: torch.Tensor, extent: torch.Tensor, size: int, full: torch.Tensor | float) -> torch.Tensor:
    """Normalised sampling coordinates (N, size) of output pixel centres for a window [start, start+extent) of an
    axis of length ``full`` (grid_sample convention, align_corners=False: -1 and 1 are the outer pixel edges)."""
    centres = (torch.arange(size) + 0.5) / size  # (size,) in (0, 1)
    pos = start[:, None] + extent[:, None] * centres  # (N, size) in source pixels
    return pos / full * 2 - 1


def _boxes(masks: torch.Tensor) -> torch.Tensor:
    """(N, 4) end-exclusive ``x0, y0, x1, y1`` of each mask; all -1 for an empty mask."""
    n, s, _ = masks.shape
    rows, cols = masks.any(2), masks.any(1)  # (N, S) each
    first = lambda a: a.int().argmax(1)  # noqa: E731 - first True along dim 1
    boxes = torch.stack([first(cols), first(rows), s - first(cols.flip(1)), s - first(rows.flip(1))], 1)
    boxes[~rows.any(1)] = -1
    return boxes


def wild(
    n: int = 1000,
    split: str = "train",
    seed: int = 0,
    *,
    spurious: bool = False,
    cue_agreement: float = 1.0,
    held_out: tuple[int, ...] = HELD_OUT,
    size: int = 64,
) -> WildSet:
    """Generate ``n`` wild images, deterministically from ``(seed, split)``.

    Args:
        n: number of images (items are drawn without repetition until the split's pool is used up).
        split: "train", "test" or "novel" (see the module docstring).
        seed: the same seed, split and arguments give identical tensors on every machine.
        spurious: draw the coloured corner square (the spurious cue).
        cue_agreement: fraction of images whose square has their own label's colour; the rest get another class's
            colour. 1.0 = the cue always agrees; 0.1 = the cue is random (1 in 10 agree by chance).
        held_out: Fashion-MNIST classes left out of "train"/"test" and used alone in "novel".
        size: image side in pixels.

    Example:
        >>> clean = wild(500, "test", seed=1)
        >>> cued = wild(500, "test", seed=1, spurious=True)
        >>> bool((clean.images[:, :, 10:] == cued.images[:, :, 10:]).all())  # same pictures below the corner
        True
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {list(SPLITS)}")
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    if not 0.0 <= cue_agreement <= 1.0:
        raise ValueError(f"cue_agreement must be in [0, 1], got {cue_agreement}")
    held_out = tuple(sorted({int(c) for c in held_out}))
    if any(c not in range(10) for c in held_out) or len(held_out) >= 9:
        raise ValueError(f"held_out must be a few class ids in 0..9 (at least two classes left), got {held_out}")
    g = _generator(seed, split)

    fm = fashion_mnist("train" if split == "train" else "test")
    is_held = torch.isin(fm.labels, torch.tensor(held_out, dtype=torch.int64))
    pool = (is_held if split == "novel" else ~is_held).nonzero().flatten()
    sources = pool[_draw_indices(len(pool), n, g)]  # (N,)
    labels = fm.labels[sources]
    train_classes = [c for c in range(10) if c not in held_out]
    to_target = torch.full((10,), -1, dtype=torch.int64)
    to_target[train_classes] = torch.arange(len(train_classes))

    # all random draws, in a fixed order that does not depend on the flags
    obj = _uniform(n, 0.40, 0.75, g) * size  # object side in pixels, 26-48 at 64 px
    ox, oy = _uniform(n, 0, 1, g) * (size - obj), _uniform(n, 0, 1, g) * (size - obj)  # top-left corner
    tints = torch.randint(len(TINT_FAMILIES), (n,), generator=g)
    colours = _tints(tints, g)  # (N, 3)
    backgrounds = torch.randint(len(PHOTO_NAMES), (n,), generator=g)
    crop_frac, crop_u, crop_v = _uniform(n, 0.3, 0.8, g), torch.rand(n, generator=g), torch.rand(n, generator=g)
    mirror = torch.rand(n, generator=g) < 0.5
    cue_agree = torch.rand(n, generator=g) < cue_agreement
    cue_other = (labels + torch.randint(1, 10, (n,), generator=g)) % 10  # a different class's colour

    # the item, resampled into place: (N, 1, 28, 28) -> (N, 1, S, S)
    gx = _axis_grid(-ox * 28 / obj, size * 28 / obj, size, 28.0)  # output pixel -> item pixel coordinates
    gy = _axis_grid(-oy * 28 / obj, size * 28 / obj, size, 28.0)
    grid = torch.stack([gx[:, None, :].expand(n, size, size), gy[:, :, None].expand(n, size, size)], -1)
    items = fm.images[sources].float().div(255)[:, None]
    v = F.grid_sample(items, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (N, 1, S, S)
    alpha = ((v - 0.02) / 0.1).clamp(0, 1)  # soft edge; the item background is 0
    shade = 0.35 + 0.65 * v / v.amax((2, 3), keepdim=True).clamp_min(1e-6)  # keep the item's own texture
    masks = alpha[:, 0] >= 0.5

    # backgrounds: one grid_sample per photo, all of its crops stacked as one tall output image
    images = torch.empty(n, 3, size, size)
    for b, name in enumerate(PHOTO_NAMES):
        idx = (backgrounds == b).nonzero().flatten()
        if len(idx) == 0:
            continue
        photo = _photo_tensor(name)  # (3, H, W)
        h, w = photo.shape[1:]
        side = crop_frac[idx] * min(h, w)
        x0, y0 = crop_u[idx] * (w - side), crop_v[idx] * (h - side)
        bx = _axis_grid(x0, side, size, float(w))
        bx = torch.where(mirror[idx, None], bx.flip(1), bx)
        by = _axis_grid(y0, side, size, float(h))
        k = len(idx)
        bgrid = torch.stack([bx[:, None, :].expand(k, size, size), by[:, :, None].expand(k, size, size)], -1)
        crops = F.grid_sample(photo[None], bgrid.reshape(1, k * size, size, 2), mode="bilinear",
                              padding_mode="border", align_corners=False)  # (1, 3, k*S, S)
        images[idx] = crops.view(3, k, size, size).transpose(0, 1)

    # in place: images is N*3*S*S floats (0.5 GB for 10k images), so avoid full-size temporaries
    images.mul_(1 - alpha).addcmul_(colours[:, :, None, None], shade.mul_(alpha))  # (N, 3, S, S)

    cues = torch.full((n,), -1, dtype=torch.int64)
    if spurious:
        c, m = max(3, size // 10), 1  # 6 px square, 1 px from the corner at 64 px
        cues = torch.where(cue_agree, labels, cue_other)
        images[:, :, m:m + c, m:m + c] = CUE_COLOURS[cues][:, :, None, None]
        masks[:, m:m + c, m:m + c] = False

    return WildSet(
        images=images.clamp_(0, 1).contiguous(),
        masks=masks,
        boxes=_boxes(masks),
        labels=labels,
        targets=to_target[labels],
        tints=tints,
        backgrounds=backgrounds,
        cues=cues,
        sources=sources,
        classes=tuple(FASHION_CLASSES[c] for c in train_classes),
        split=split,
        seed=int(seed),
        spurious=bool(spurious),
    )
