"""Decomposing activations into features (notebook 11): sparse autoencoders (ReLU + L1, top-k with AuxK) and
their SAELens on-disk format, semi-NMF, tinyworld's known factors and feature recovery, reconstruction quality.

| module | what |
|---|---|
| ``sae`` | :class:`SparseAutoencoder`, :func:`train` (fast top-k trainer), :func:`train_from_store` |
| ``saelens_format`` | ``save`` / ``load`` in SAELens's folder format (``cfg.json`` + ``sae_weights.safetensors``) |
| ``snmf`` | :func:`semi_nmf` (Shafran et al.'s SNMF of MLP activations), ``encode`` new tokens |
| ``factors`` | :func:`labelled_tokens` (tinyworld tokens + factor labels), :func:`best_auroc` |
| ``quality`` | ``fvu``, ``l0``, ``dead_fraction``, ``spliced_loss``, ``layer_activations`` (store checks) |
| ``propositions`` | latents grouped into propositions (ActivationReasoning's idea), precision / recall |
| ``skills`` | skill directions: SVD of mean-pooled residuals, steering effects per task |
| ``lib`` | Local Interaction Basis for small MLPs (``lib_layer``, ``output_basis``, ``pca_size``) |
"""
from __future__ import annotations

from helpers.decompose import factors, lib, propositions, quality, saelens_format, sae, skills, snmf
from helpers.decompose.sae import SparseAutoencoder, train, train_from_store

__all__ = ["SparseAutoencoder", "factors", "lib", "propositions", "quality", "sae", "saelens_format", "skills", "snmf", "train",
           "train_from_store"]
