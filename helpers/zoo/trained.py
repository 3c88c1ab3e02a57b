"""Our own small models, trained by ``make zoo`` and committed under ``data/zoo/``.

Every weight file has a JSON sidecar (:mod:`helpers.models.io`) with its config and SHA-256, checked on load.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from torch import nn

from helpers.core.paths import ZOO_DIR
from helpers.data import tinyworld
from helpers.models.captioner import load_captioner
from helpers.models.cnn import load_wild_cnn
from helpers.models.generator import load_generator
from helpers.models.gpt import load_gpt
from helpers.zoo.info import ModelInfo

RETRAIN = "Retrain with `make zoo`, or restore the file with `git checkout data/zoo`."


def _missing(path: Path, name: str) -> FileNotFoundError:
    return FileNotFoundError(f"The weights of {name!r} are not at {path}. {RETRAIN}")


def _wild_cnn(name: str) -> Callable[[], tuple[nn.Module, ModelInfo]]:
    def load() -> tuple[nn.Module, ModelInfo]:
        path = ZOO_DIR / f"{name}.safetensors"
        if not path.exists():
            raise _missing(path, name)
        model, meta = load_wild_cnn(path)  # checks the SHA-256 recorded in the sidecar
        layers = [n for n, _ in model.named_children() if n != "blocks"]
        layers = [f"blocks.{i}" for i in range(len(model.blocks))] + layers
        return model, ModelInfo(name, layers, None, list(meta.get("classes", [])) or None,
                                provenance={k: v for k, v in meta.items() if k != "config"})
    return load


def _tinyworld(name: str) -> Callable[[], tuple[nn.Module, ModelInfo]]:
    def load() -> tuple[nn.Module, ModelInfo]:
        folder = ZOO_DIR / name
        path = folder / "model.safetensors"
        if not path.exists():
            raise _missing(path, name)
        meta = json.loads((folder / "metrics.json").read_text())  # the training record and held-out metrics
        model = load_gpt(path)  # checks the SHA-256 recorded in model.json
        layers = ["embed"] + [f"blocks.{i}" for i in range(len(model.blocks))] + ["ln_f", "unembed"]
        checkpoints = sorted(str(p.relative_to(folder)) for p in (folder / "checkpoints").glob("*.safetensors"))
        return model, ModelInfo(name, [n for n in layers if n in dict(model.named_modules())], None,
                                tokenizer=tinyworld.tokenizer(),
                                provenance={**meta, "folder": str(folder), "checkpoints": checkpoints})
    return load


def _wild_generator() -> tuple[nn.Module, ModelInfo]:
    path = ZOO_DIR / "wild-generator" / "model.safetensors"
    if not path.exists():
        raise _missing(path, "wild-generator")
    model, meta = load_generator(path)
    return model, ModelInfo("wild-generator", ["encoder", "decoder"], None,
                            provenance={k: v for k, v in meta.items() if k != "config"})


def _wild_captioner() -> tuple[nn.Module, ModelInfo]:
    path = ZOO_DIR / "wild-captioner.safetensors"
    if not path.exists():
        raise _missing(path, "wild-captioner")
    model, meta = load_captioner(path)  # checks the SHA-256 recorded in the sidecar
    layers = ["cnn.blocks", "visual_proj"] + [f"blocks.{i}" for i in range(len(model.blocks))] + ["ln_f", "unembed"]
    return model, ModelInfo("wild-captioner", layers, None, list(model.cfg.vocab),
                            provenance={k: v for k, v in meta.items() if k != "config"})


ENTRIES: dict[str, tuple[str, Callable[[], tuple[nn.Module, ModelInfo]]]] = {
    "wild-cnn": ("CNN on `wild` (Fashion-MNIST items on real photos, 64 px), 16x16 last-block maps",
                 _wild_cnn("wild-cnn")),
    "wild-cnn-spurious": ("the same CNN trained where a corner cue agrees with the label (shortcut)",
                          _wild_cnn("wild-cnn-spurious")),
    "tinyworld-gpt": ("4-layer GELU GPT on the tinyworld corpus (facts, IOI, ICL, sentiment), checkpoints",
                      _tinyworld("tinyworld-gpt")),
    "tinyworld-gpt-relu": ("its ReLU twin, same corpus and seed", _tinyworld("tinyworld-gpt-relu")),
    "wild-generator": ("small conv encoder-decoder that regenerates `wild` images with an upsampler's "
                       "artefacts (notebook 07's fakes)", _wild_generator),
    "wild-captioner": ("wild-cnn's last block as 8x8 visual tokens + a 2-layer causal decoder that captions `wild` "
                       "images with one or two objects (notebook 14)", _wild_captioner),
}
