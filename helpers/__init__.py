"""activation-lab helpers: capture, edit and stream activations; the zoo; the lessons' code; the course.

    import helpers
    device = helpers.setup(device="auto", seed=0)
    with helpers.capture(model, "blocks.*") as acts:
        model(x)
    model, info = helpers.zoo.load("wild-cnn")

The package is in layers; each imports only from the layers below it (``tests/test_layers.py`` checks):

| layer | packages |
|---|---|
| engine | ``core`` (names, hooks, capture, edit, extract/store, layers, budgets, setup, paths, checksums) |
| generic maths | ``ops`` (metrics, linalg, image, batching, covariance, randmat, similarity, logistic, whitening, quantization, information) |
| data and models | ``data`` (Fashion-MNIST, photos, wild, tinyworld, fakes, ImageNet), ``models`` (CNN, GPT, generator, io) |
| zoo | ``zoo`` (load, registry, pretrained, checkpoints, evals, ``open_model``: the adapter to any text or image model, ``random:<arch>``) |
| lessons | ``activation_functions`` (01-02), ``statistics`` (03), ``explain`` (04-07), ``geometry`` (08), ``readouts`` (09), ``concepts`` (10), ``decompose`` (11), ``intervene`` (12-13), ``sparsify`` (15), ``quantize`` (16), ``compress`` and ``merge`` (17), ``faults`` (18), ``routing`` (19) |
| course | ``plot``, ``course`` (runner, notebook conventions, student build, exercise checks) |

The engine's functions are here at the top (``helpers.capture`` etc.); every subpackage is importable as
``helpers.<name>`` and loads on first use, so ``import helpers`` stays fast.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from helpers.core.budget import CaptureTooLargeError
from helpers.core.capturing import Activations, ModifiedInPlaceError, capture
from helpers.core.checksum import ChecksumError
from helpers.core.editing import ablate, add_vector, edit, mask_below, patch_from, replace_with, set_entries, topk
from helpers.core.extraction import extract
from helpers.core.listing import LayerInfo, layers
from helpers.core.names import LayerNotFoundError, resolve_layers
from helpers.core.paths import build_dir
from helpers.core.runtime import pick_device, setup
from helpers.core.store import ActivationStore

# every folder with an __init__.py (a lesson's topic package added later appears here by itself), and plot
SUBPACKAGES = tuple(sorted(p.name for p in Path(__file__).parent.iterdir() if (p / "__init__.py").exists())) + ("plot",)

__all__ = [
    "Activations", "ActivationStore", "CaptureTooLargeError", "ChecksumError", "LayerInfo", "LayerNotFoundError",
    "ModifiedInPlaceError", "ablate", "add_vector", "build_dir", "capture", "edit", "extract", "layers", "mask_below",
    "patch_from", "pick_device", "replace_with", "resolve_layers", "set_entries", "setup", "topk", *SUBPACKAGES,
]


def __getattr__(name: str) -> Any:
    """``helpers.zoo``, ``helpers.explain``, ...: import a subpackage the first time it is used."""
    if name in SUBPACKAGES:
        return importlib.import_module(f"helpers.{name}")
    raise AttributeError(f"module 'helpers' has no attribute {name!r}; the subpackages are {', '.join(SUBPACKAGES)}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(SUBPACKAGES))
