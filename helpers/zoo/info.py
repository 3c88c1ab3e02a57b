"""What :func:`helpers.zoo.load` returns beside the model, and the checksum helper."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional


class ChecksumMismatchError(RuntimeError):
    """A weight file's SHA-256 differs from the one the project recorded."""


@dataclass
class ModelInfo:
    """Everything a lesson needs to use a zoo model.

    Attributes:
        name: the zoo name (``"wild-cnn"``, ``"minilm"``, ``"torchvision:resnet18"``).
        layers: the layers worth hooking, in forward order (e.g. the blocks of a transformer).
        preprocess: turns raw input (an image array, a list of strings) into model input; ``None``
            when the model takes tensors as they are.
        classes: output class names for classifiers.
        tokenizer: for language models.
        provenance: where the weights come from, their licence, checksum and measured accuracy.
    """

    name: str
    layers: list[str]
    preprocess: Optional[Callable[..., Any]] = None
    classes: Optional[list[str]] = None
    tokenizer: Any = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        head = f"ModelInfo({self.name!r}, {len(self.layers)} layers: {self.layers[:3]}{' ...' if len(self.layers) > 3 else ''}"
        if self.classes:
            head += f", {len(self.classes)} classes"
        return head + f", provenance={ {k: v for k, v in self.provenance.items() if k != 'sha256'} })"


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str, what: str, fix: str) -> None:
    """Raise :class:`ChecksumMismatchError` naming the file and how to repair it."""
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumMismatchError(f"{what}: {path} has SHA-256 {actual[:16]}..., expected {expected[:16]}... "
                                    f"The file is damaged or a different release. {fix}")
