"""Offline datasets: Fashion-MNIST (SHA-256 checked), bundled real photos, and the generated ``wild`` image set.

Example:
    >>> from helpers.data import fashion_mnist, photos, wild
    >>> x, y, classes = fashion_mnist("test")
    >>> ds = wild(256, "train", seed=0)
"""

from .fashion import FASHION_CLASSES, ChecksumError, FashionSplit, cache_dir, fashion_mnist
from .photos import PHOTO_NAMES, photos
from .wildset import CUE_COLOURS, HELD_OUT, TINT_FAMILIES, WildSet, wild

__all__ = [
    "FASHION_CLASSES", "ChecksumError", "FashionSplit", "cache_dir", "fashion_mnist",
    "PHOTO_NAMES", "photos",
    "CUE_COLOURS", "HELD_OUT", "TINT_FAMILIES", "WildSet", "wild",
]
