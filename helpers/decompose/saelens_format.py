"""Save and load :class:`~helpers.decompose.sae.SparseAutoencoder` in SAELens's on-disk format.

A folder with ``cfg.json`` and ``sae_weights.safetensors`` (``W_enc`` (d_in, d_sae), ``W_dec`` (d_sae, d_in),
``b_enc``, ``b_dec``), architecture ``"topk"`` or ``"standard"`` (ReLU). SAELens loads it with
``sae_lens.SAE.load_from_disk(folder)``; this module needs no SAELens to write or read it.

Example:
    >>> import tempfile
    >>> from helpers.decompose.sae import SparseAutoencoder
    >>> folder = save(SparseAutoencoder(4, 8, k=2), tempfile.mkdtemp(), hook_name="blocks.0")
    >>> load(folder).k, sorted(os.listdir(folder))
    (2, ['cfg.json', 'sae_weights.safetensors'])
"""
from __future__ import annotations

import json
import os
from typing import Optional

import torch
from safetensors.torch import load_file, save_file

from helpers.decompose.sae import SparseAutoencoder

CFG, WEIGHTS = "cfg.json", "sae_weights.safetensors"
# the config layout of SAELens 6.x; SAELens reads a folder without this version as its older (pre-6) layout
FORMAT_VERSION = "6.0.0"


def save(sae: SparseAutoencoder, folder: str, hook_name: Optional[str] = None, model_name: Optional[str] = None,
         **metadata: object) -> str:
    """Write ``sae`` to ``folder`` (created) as SAELens does; ``hook_name`` / ``model_name`` / extra keyword
    arguments go into the config's ``metadata``. Returns the folder."""
    os.makedirs(folder, exist_ok=True)
    state = {name: p.detach().float().cpu().contiguous() for name, p in sae.named_parameters()}
    save_file(state, os.path.join(folder, WEIGHTS))
    cfg = {"d_in": sae.d_in, "d_sae": sae.d_sae, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"sae_lens_version": FORMAT_VERSION, "hook_name": hook_name, "model_name": model_name,
                        **metadata},
           "architecture": "standard" if sae.k is None else "topk"}
    if sae.k is not None:
        cfg.update(k=sae.k, rescale_acts_by_decoder_norm=False)
    with open(os.path.join(folder, CFG), "w") as f:
        json.dump(cfg, f, indent=1)
    return folder


def load(folder: str) -> SparseAutoencoder:
    """Read a folder written by :func:`save` (or an SAELens ``topk`` / ``standard`` SAE saved without
    activation normalisation)."""
    path = os.path.join(folder, CFG)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no {CFG} in {folder!r}: not an SAELens SAE folder")
    with open(path) as f:
        cfg = json.load(f)
    arch = cfg.get("architecture")
    if arch not in ("topk", "standard"):
        raise ValueError(f"{folder!r} holds a {arch!r} SAE; only 'topk' and 'standard' (ReLU) can be loaded here")
    if cfg.get("normalize_activations", "none") != "none" or not cfg.get("apply_b_dec_to_input", True) \
            or cfg.get("rescale_acts_by_decoder_norm", False):
        raise ValueError(f"{folder!r} uses options this SAE does not implement: normalize_activations="
                         f"{cfg.get('normalize_activations')!r}, apply_b_dec_to_input={cfg.get('apply_b_dec_to_input')}, "
                         f"rescale_acts_by_decoder_norm={cfg.get('rescale_acts_by_decoder_norm')}")
    sae = SparseAutoencoder(cfg["d_in"], cfg["d_sae"], k=cfg.get("k") if arch == "topk" else None)
    state = load_file(os.path.join(folder, WEIGHTS))
    sae.load_state_dict({name: t.float() for name, t in state.items()})
    return sae
