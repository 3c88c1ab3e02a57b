"""Spectral descriptors of windows of hidden states, for an EigenTrack-style detector (Ettori et al., 2025).

A window is W consecutive hidden states (W, d) of one layer. Its covariance has at most W - 1 nonzero eigenvalues;
they are the eigenvalues of the small (W, W) Gram matrix of the centred states, so W < d costs nothing (but the
Marchenko-Pastur law does not apply to such a window: EigenTrack's "distance to MP" needs W >= d).

Per window and layer, ``window_features`` returns: the top-k eigenvalues as shares of the total variance, the
spectral entropy H = -sum p_i log p_i of those shares, and the log of the total variance. EigenTrack feeds such
features, window after window, to a small recurrent classifier; the lesson uses one window per sequence and a
logistic regression (the cheapest faithful variant).

Example:
    >>> h = torch.randn(3, 16, 32)                        # 3 windows of 16 states in 32 dimensions
    >>> window_features(h, k=4).shape
    torch.Size([3, 6])
"""
from __future__ import annotations

import torch


def window_spectrum(h: torch.Tensor) -> torch.Tensor:
    """Covariance eigenvalues of each window (S, W, d) -> (S, W), descending, float64 (divided by W)."""
    h = torch.as_tensor(h)
    if h.ndim != 3 or h.shape[1] < 2:
        raise ValueError(f"need windows of hidden states (S, W, d) with W >= 2, got shape {tuple(h.shape)}")
    hc = h.double() - h.double().mean(1, keepdim=True)
    gram = hc @ hc.transpose(1, 2) / h.shape[1]                 # (S, W, W): the covariance's nonzero eigenvalues
    return torch.linalg.eigvalsh(gram).flip(-1).clamp_min(0)


def window_features(h: torch.Tensor, k: int = 6) -> torch.Tensor:
    """(S, W, d) -> (S, k + 2): top-k variance shares, spectral entropy (nats), log total variance."""
    ev = window_spectrum(h)
    if not 1 <= k <= ev.shape[1]:
        raise ValueError(f"k must be between 1 and the window length {ev.shape[1]}, got {k}")
    total = ev.sum(-1, keepdim=True).clamp_min(1e-300)
    p = ev / total
    entropy = -(p * p.clamp_min(1e-300).log()).sum(-1, keepdim=True)
    return torch.cat([p[:, :k], entropy, total.log()], 1)
