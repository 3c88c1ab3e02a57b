"""Embeddings on a hypersphere (normalised softmax) for classes never seen in training.

``EmbeddingHead`` maps features to an embedding and classifies it either with a plain linear layer (logits
W z + b) or with the normalised softmax: logits = s * cos(z, w_c), both the embedding and the class weights scaled
to unit length (NormFace; the loss Pereira et al. build on). ``prototypes`` and ``prototype_predict`` classify
novel classes from a few labelled examples by cosine similarity to each class's mean unit embedding.

Example:
    >>> head = EmbeddingHead(16, 8, n_classes=3, normalised=True, scale=10.0)
    >>> logits = head(torch.rand(5, 16))
    >>> bool(logits.abs().max() <= 10.0), head.embed(torch.rand(5, 16)).shape
    (True, torch.Size([5, 8]))
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class EmbeddingHead(nn.Module):
    """features (N, d_in) -> embedding (N, d_emb) -> class logits (N, n_classes), plain or normalised."""

    def __init__(self, d_in: int, d_emb: int, n_classes: int, normalised: bool, scale: float = 16.0,
                 d_hidden: int = 128) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.normalised, self.scale = normalised, scale
        self.net = nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_emb))
        self.classes = nn.Linear(d_emb, n_classes, bias=not normalised)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.embed(x)
        if self.normalised:
            return self.scale * F.normalize(z, dim=-1) @ F.normalize(self.classes.weight, dim=-1).T
        return self.classes(z)


def prototypes(z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(classes present, sorted) and their prototypes: the unit-length mean of the unit embeddings, (C, d)."""
    classes = labels.unique()
    zn = F.normalize(z, dim=-1)
    return classes, F.normalize(torch.stack([zn[labels == c].mean(0) for c in classes]), dim=-1)


def prototype_predict(z: torch.Tensor, classes: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:
    """The class whose prototype has the highest cosine similarity with each embedding, (N,)."""
    return classes[(F.normalize(z, dim=-1) @ protos.T).argmax(-1)]
