"""Captioned ``wild`` images for the ``wild-captioner``: one or two objects on a photo, a generated caption, and the
mask of every named object.

Captions are built from a fixed word list (``VOCAB``):

* one object:  ``"a red shirt on a coffee photo"``;
* two objects: ``"a red shirt and a blue sneaker on a coffee photo"``, the objects named left to right (by the
  centre of their masks), so that the order can be read from the image.

A two-object image is a ``wild`` image with the object of a second ``wild`` image pasted over it (its pixels where
its mask is set). Pairs whose masks overlap by more than ``MAX_OVERLAP`` of the smaller mask are not used, so each
named object stays visible and its mask is the ground truth for a map of its word.

Example:
    >>> ds = captioned_wild(8, "test", seed=0)
    >>> ds.images.shape, ds.masks.shape, ds.tokens.shape
    (torch.Size([8, 3, 64, 64]), torch.Size([8, 2, 64, 64]), torch.Size([8, 14]))
    >>> decode(ds.tokens[0]) == ds.captions[0], ds.captions[0].startswith("a ")
    (True, True)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .fashion import FASHION_CLASSES
from .real_photos import PHOTO_NAMES
from .wildset import HELD_OUT, TINT_FAMILIES, wild

# one word per Fashion-MNIST class (the held-out classes never appear in captions)
CLASS_WORDS = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
PHOTO_WORDS = tuple(n.replace("_", "") for n in PHOTO_NAMES)  # hubble_deep_field -> hubbledeepfield
SPECIALS = ("<pad>", "<bos>", "<eos>")
FUNCTION_WORDS = ("a", "and", "on", "photo")
USED_CLASS_WORDS = tuple(w for c, w in enumerate(CLASS_WORDS) if c not in HELD_OUT)
VOCAB = SPECIALS + FUNCTION_WORDS + TINT_FAMILIES + USED_CLASS_WORDS + PHOTO_WORDS
WORD_ID = {w: i for i, w in enumerate(VOCAB)}
PAD, BOS, EOS = (WORD_ID[s] for s in SPECIALS)
MAX_LEN = 14  # <bos> a t c and a t c on a photo-word photo <eos> = 13 tokens, one spare
MAX_OVERLAP = 0.05
assert len(FASHION_CLASSES) == len(CLASS_WORDS)


def encode(caption: str) -> torch.Tensor:
    """``"a red shirt on a coffee photo"`` -> (MAX_LEN,) long ids: ``<bos>``, the words, ``<eos>``, then padding."""
    words = caption.split()
    unknown = [w for w in words if w not in WORD_ID]
    if unknown:
        raise ValueError(f"words {unknown} are not in the captioner's vocabulary")
    ids = [BOS] + [WORD_ID[w] for w in words] + [EOS]
    if len(ids) > MAX_LEN:
        raise ValueError(f"caption of {len(words)} words is longer than {MAX_LEN - 2}")
    return torch.tensor(ids + [PAD] * (MAX_LEN - len(ids)))


def decode(ids: torch.Tensor) -> str:
    """The words of a token row, without ``<bos>``, stopping at ``<eos>`` or padding."""
    words = []
    for i in ids.tolist():
        if i in (EOS, PAD):
            break
        if i != BOS:
            words.append(VOCAB[i])
    return " ".join(words)


@dataclass
class CaptionSet:
    """Captioned images. ``masks[:, k]`` is the mask of the k-th named object (all False when there is none);
    ``word_pos[:, k]`` is the index in ``tokens`` of the k-th object's class word (-1 when there is none)."""

    images: torch.Tensor  # (N, 3, 64, 64) float in [0, 1]
    masks: torch.Tensor  # (N, 2, 64, 64) bool
    tokens: torch.Tensor  # (N, MAX_LEN) long
    word_pos: torch.Tensor  # (N, 2) long
    n_objects: torch.Tensor  # (N,) long, 1 or 2
    captions: list[str]

    def __len__(self) -> int:
        return len(self.images)


def _phrase(label: int, tint: int) -> str:
    return f"a {TINT_FAMILIES[tint]} {CLASS_WORDS[label]}"


def captioned_wild(n: int, split: str = "train", seed: int = 0, two_fraction: float = 0.5) -> CaptionSet:
    """``n`` captioned images (a fraction ``two_fraction`` with two objects), deterministic in ``(split, seed)``."""
    if not 0.0 <= two_fraction <= 1.0:
        raise ValueError(f"two_fraction must be in [0, 1], got {two_fraction}")
    n_two = int(round(n * two_fraction))
    n_one = n - n_two
    one = wild(max(n_one, 1), split, seed)  # single-object images, used as they are
    rows: list[list[tuple]] = [[(one, i)] for i in range(n_one)]
    for k in range(20 + n // 100):  # two-object images: greedy pairs of a fresh draw whose masks hardly overlap
        if len(rows) == n:
            break
        pool = wild(min(1024, max(256, 6 * (n - len(rows)))), split, 10_000 + 100 * seed + k)  # seeds apart from ``one``
        m = pool.masks.flatten(1).float()  # (P, S*S)
        area = m.sum(1)
        ok = (m @ m.T) / torch.minimum(area[:, None], area[None]).clamp_min(1) <= MAX_OVERLAP  # (P, P)
        used = torch.zeros(len(m), dtype=torch.bool)
        for i in range(len(m)):
            if used[i] or len(rows) == n:
                continue
            free = (ok[i] & ~used).nonzero().flatten()
            free = free[free > i]
            if len(free):
                used[i] = used[free[0]] = True
                rows.append([(pool, i), (pool, int(free[0]))])
    if len(rows) < n:
        raise RuntimeError("could not find enough non-overlapping object pairs")
    side = one.images.shape[-1]
    images, masks = torch.empty(n, 3, side, side), torch.zeros(n, 2, side, side, dtype=torch.bool)
    captions, word_pos = [], torch.full((n, 2), -1)
    xs = torch.arange(side).float()
    for r, objs in enumerate(rows):
        (s0, i0) = objs[0]
        images[r], masks[r, 0] = s0.images[i0], s0.masks[i0]
        if len(objs) == 2:
            s1, i1 = objs[1]
            m2 = s1.masks[i1]
            images[r] = torch.where(m2, s1.images[i1], images[r])  # paste the second object over the first
            masks[r, 0] &= ~m2
            masks[r, 1] = m2
            cx = [(masks[r, k].float().sum(0) * xs).sum() / masks[r, k].sum().clamp_min(1) for k in range(2)]
            if cx[1] < cx[0]:  # name left to right; the masks follow the naming order
                objs = objs[::-1]
                masks[r] = masks[r].flip(0)
            word_pos[r, 1] = 7  # <bos> a tint CLASS and a tint CLASS
        word_pos[r, 0] = 3
        phrases = [_phrase(int(s.labels[i]), int(s.tints[i])) for s, i in objs]
        captions.append(" and ".join(phrases) + f" on a {PHOTO_WORDS[int(s0.backgrounds[i0])]} photo")
    tokens = torch.stack([encode(c) for c in captions])
    n_objects = torch.tensor([len(o) for o in rows])
    return CaptionSet(images.contiguous(), masks, tokens, word_pos, n_objects, captions)


def shuffled(ds: CaptionSet, seed: int) -> CaptionSet:
    """The same set in a random order (one- and two-object images mixed)."""
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(ds)))
    return CaptionSet(ds.images[perm], ds.masks[perm], ds.tokens[perm], ds.word_pos[perm], ds.n_objects[perm],
                      [ds.captions[i] for i in perm.tolist()])
