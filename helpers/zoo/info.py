"""What :func:`helpers.zoo.load` returns beside the model."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional


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
