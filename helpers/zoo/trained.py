"""Our own small models, trained by ``make zoo`` and committed under ``data/zoo/`` with checksums."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from torch import nn

from helpers.paths import ZOO_DIR
from helpers.zoo.info import ModelInfo, verify_sha256

RETRAIN = "Retrain with `make zoo`, or restore the file with `git checkout data/zoo`."


def _missing(path: Path, name: str) -> FileNotFoundError:
    return FileNotFoundError(f"The weights of {name!r} are not at {path}. {RETRAIN}")


def _wild_cnn(name: str) -> Callable[[], tuple[nn.Module, ModelInfo]]:
    def load() -> tuple[nn.Module, ModelInfo]:
        from helpers.models.cnn import load_wild_cnn

        path = ZOO_DIR / f"{name}.safetensors"
        if not path.exists():
            raise _missing(path, name)
        meta = json.loads(path.with_suffix(".json").read_text())
        verify_sha256(path, meta["sha256"], name, RETRAIN)
        model, meta = load_wild_cnn(path, check=False)
        layers = [n for n, _ in model.named_children() if n != "blocks"]
        layers = [f"blocks.{i}" for i in range(len(model.blocks))] + layers
        return model, ModelInfo(name, layers, None, list(meta.get("classes", [])) or None,
                                provenance={k: v for k, v in meta.items() if k != "config"})
    return load


def _tinyworld(name: str) -> Callable[[], tuple[nn.Module, ModelInfo]]:
    def load() -> tuple[nn.Module, ModelInfo]:
        from helpers import tinyworld
        from helpers.models.gpt import load_gpt

        folder = ZOO_DIR / name
        path = folder / "model.safetensors"
        if not path.exists():
            raise _missing(path, name)
        meta = json.loads((folder / "metrics.json").read_text())
        sums = meta.get("sha256", {})
        for rel, digest in sums.items():  # the final weights and every checkpoint
            verify_sha256(folder / rel, digest, f"{name}/{rel}", RETRAIN)
        model = load_gpt(path)
        layers = ["embed"] + [f"blocks.{i}" for i in range(len(model.blocks))] + ["ln_f", "unembed"]
        checkpoints = sorted(str(p.relative_to(folder)) for p in (folder / "checkpoints").glob("*.safetensors"))
        return model, ModelInfo(name, [n for n in layers if n in dict(model.named_modules())], None,
                                tokenizer=tinyworld.tokenizer(),
                                provenance={**{k: v for k, v in meta.items() if k != "sha256"},
                                            "folder": str(folder), "checkpoints": checkpoints})
    return load


def _wild_generator() -> tuple[nn.Module, ModelInfo]:
    from helpers.fakes import load_generator

    return load_generator()


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
}
