"""Offline datasets: Fashion-MNIST (SHA-256 checked), bundled real photos, the generated ``wild`` image set,
the ``tinyworld`` corpus with its tokenizer and prompts, real/generated image sets (``fakes``), ImageNet conventions.

Example:
    >>> from helpers.data import fashion_mnist, photos, wild
    >>> x, y, classes = fashion_mnist("test")
    >>> ds = wild(256, "train", seed=0)
"""

from .fashion import FASHION_CLASSES, FashionSplit, cache_dir, fashion_mnist
from .real_photos import PHOTO_NAMES, photos
from .wildset import CUE_COLOURS, HELD_OUT, TINT_FAMILIES, WildSet, wild

__all__ = [
    "FASHION_CLASSES", "FashionSplit", "cache_dir", "fashion_mnist",
    "PHOTO_NAMES", "photos",
    "CUE_COLOURS", "HELD_OUT", "TINT_FAMILIES", "WildSet", "wild",
]
