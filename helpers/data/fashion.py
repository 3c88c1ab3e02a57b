"""Fashion-MNIST from local files, checked by SHA-256; no download at run time when apt installed it.

Where the files are looked for, in order:

1. ``root`` if given (and nowhere else);
2. ``/usr/share/datasets/fashion-mnist/`` -- Debian/Ubuntu package, ``sudo apt-get install dataset-fashion-mnist``;
3. the user cache ``~/.cache/activation-lab/fashion-mnist/FashionMNIST/raw/`` (``$ACTIVATION_LAB_CACHE`` overrides
   ``~/.cache/activation-lab``), where torchvision's downloader puts them if nothing else was found.

Each file may be gzipped or not. The checksums are of the *decompressed* idx bytes, because the Debian package and
the upstream/torchvision mirrors gzip the same data differently (the .gz hashes differ, the contents do not).

Example:
    >>> from helpers.data import fashion_mnist
    >>> images, labels, classes = fashion_mnist("test")
    >>> images.shape, images.dtype, labels[:3].tolist(), classes[labels[0]]
    (torch.Size([10000, 28, 28]), torch.uint8, [9, 2, 1], 'Ankle boot')
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from helpers.core.checksum import verify_sha256
from helpers.core.paths import cache_dir

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
APT_DIR = Path("/usr/share/datasets/fashion-mnist")
APT_COMMAND = "sudo apt-get install dataset-fashion-mnist"

# split -> (images file, labels file), names without ".gz"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# SHA-256 of the decompressed files (computed from the dataset-fashion-mnist 0.0~git20200523 package).
SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


class FashionSplit(NamedTuple):
    """One Fashion-MNIST split; unpacks as ``images, labels, classes``."""

    images: torch.Tensor  # (N, 28, 28) uint8, object bright on a 0 background
    labels: torch.Tensor  # (N,) int64 in 0..9
    classes: tuple[str, ...]  # the 10 class names, indexed by label


def _torchvision_raw_dir() -> Path:
    return cache_dir() / "fashion-mnist" / "FashionMNIST" / "raw"


def _find(name: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        for candidate in (d / name, d / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def read_checked(path: Path, name: str) -> bytes:
    """Return the decompressed bytes of ``path``; raise ``ChecksumError`` unless they hash to ``SHA256[name]``."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic
        raw = gzip.decompress(raw)
    verify_sha256(raw, SHA256[name], f"Fashion-MNIST {name} (decompressed)",
                  f"It is not the standard Fashion-MNIST; delete it and reinstall ({APT_COMMAND}) "
                  "or let torchvision download it again.", where=path)
    return raw


def _parse_idx(raw: bytes, ndim: int) -> np.ndarray:
    # idx format: 4-byte magic (0x0000 08 ndim), then ndim big-endian int32 sizes, then uint8 data
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x0800 + ndim:
        raise ValueError(f"not an idx{ndim} uint8 file (magic {magic:#x})")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _download(split: str) -> Path:
    """Fetch the split with torchvision into the user cache; return the folder holding the raw files."""
    root = cache_dir() / "fashion-mnist"
    try:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(root), train=(split == "train"), download=True)
    except Exception as err:  # network errors come in many types; re-raise one clear message
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {APT_DIR} or {_torchvision_raw_dir()}, and the download failed "
            f"({type(err).__name__}: {err}). Install it offline with: {APT_COMMAND}"
        ) from err
    return _torchvision_raw_dir()


@functools.lru_cache(maxsize=4)
def _load(split: str, root: str | None, download: bool) -> tuple[np.ndarray, np.ndarray]:
    dirs = [Path(root)] if root is not None else [APT_DIR, _torchvision_raw_dir()]
    names = FILES[split]
    paths = [_find(n, dirs) for n in names]
    if any(p is None for p in paths):
        if root is not None or not download:
            missing = [n for n, p in zip(names, paths) if p is None]
            raise FileNotFoundError(
                f"Fashion-MNIST files {missing} not found in {[str(d) for d in dirs]}. "
                f"Install them with: {APT_COMMAND}"
            )
        paths = [_find(n, [_download(split)]) for n in names]
    images = _parse_idx(read_checked(paths[0], names[0]), 3)  # (N, 28, 28)
    labels = _parse_idx(read_checked(paths[1], names[1]), 1)  # (N,)
    return images, labels


def fashion_mnist(split: str = "train", *, root: str | Path | None = None, download: bool = True) -> FashionSplit:
    """Load a Fashion-MNIST split as uint8 tensors, verifying every file's SHA-256.

    Args:
        split: "train" (60,000 images) or "test" (10,000 images).
        root: look only in this folder (files named as upstream, gzipped or not); default: apt folder, then cache.
        download: if the files are nowhere, fetch them with torchvision into the user cache.

    Example:
        >>> x, y, names = fashion_mnist("train")
        >>> x.shape, y.shape, names[y[0]]
        (torch.Size([60000, 28, 28]), torch.Size([60000]), 'Ankle boot')
    """
    if split not in FILES:
        raise ValueError(f"unknown split {split!r}; valid: {sorted(FILES)}")
    images, labels = _load(split, None if root is None else str(root), download)
    # copies: the cached arrays stay pristine whatever the caller does with the tensors
    return FashionSplit(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)), FASHION_CLASSES)
