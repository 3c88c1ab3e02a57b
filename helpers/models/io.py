"""The one weight format of the project: ``<name>.safetensors`` (tensors only) + ``<name>.json`` (the sidecar).

The sidecar holds the model's ``config`` (enough to rebuild it), whatever the caller records (metrics,
provenance, training step) and the ``sha256`` of the weight file, which :func:`load_weights` checks.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "lin.safetensors"
    >>> info = save_weights(torch.nn.Linear(2, 3), path, config={"in": 2, "out": 3}, info={"note": "demo"})
    >>> state, sidecar = load_weights(path)
    >>> sorted(state), sidecar["config"], sidecar["params"], sidecar["note"]
    (['bias', 'weight'], {'in': 2, 'out': 3}, 9, 'demo')
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch
from torch import nn

from helpers.core.checksum import sha256_of, verify_sha256

StateLike = Union[nn.Module, Mapping[str, torch.Tensor]]


def sidecar_path(path: Union[str, Path]) -> Path:
    """The JSON sidecar beside a weight file: ``x.safetensors`` -> ``x.json``."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"weight files end in .safetensors, got {path.name!r}")
    return path.with_suffix(".json")


def save_weights(state: StateLike, path: Union[str, Path], config: Mapping[str, Any],
                 info: Optional[Mapping[str, Any]] = None, dtype: Optional[torch.dtype] = None) -> dict:
    """Write the tensors of ``state`` (a module or a state dict) to ``path`` and the sidecar beside it.

    ``dtype`` casts floating-point tensors (for example float16 checkpoints). Returns the sidecar as written:
    ``info`` plus ``config``, ``params``, ``weights`` (the file name) and ``sha256``.
    """
    from safetensors.torch import save_file

    path = Path(path)
    sidecar = sidecar_path(path)
    tensors = state.state_dict() if isinstance(state, nn.Module) else dict(state)
    out = {}
    for k, v in tensors.items():
        v = v.detach()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v.cpu().contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(out, str(path))
    params = (sum(p.numel() for p in state.parameters()) if isinstance(state, nn.Module)
              else sum(v.numel() for v in out.values()))
    record = {**(info or {}), "config": dict(config), "params": params, "weights": path.name,
              "sha256": sha256_of(path)}
    sidecar.write_text(json.dumps(record, indent=2) + "\n")
    return record


def read_sidecar(path: Union[str, Path]) -> dict:
    """The sidecar of a weight file, with a clear error when it is missing."""
    sidecar = sidecar_path(path)
    if not Path(path).exists():
        raise FileNotFoundError(f"no weights at {path}")
    if not sidecar.exists():
        raise FileNotFoundError(f"{path} has no sidecar {sidecar.name}; weight files are written by "
                                "helpers.models.io.save_weights")
    return json.loads(sidecar.read_text())


def load_weights(path: Union[str, Path], check: bool = True, fix: str = "Rewrite it with save_weights."
                 ) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state dict, sidecar)`` of a weight file; with ``check`` its SHA-256 must equal the sidecar's."""
    from safetensors.torch import load_file

    record = read_sidecar(path)
    if check:
        verify_sha256(path, record["sha256"], Path(path).name, fix)
    return load_file(str(path)), record
