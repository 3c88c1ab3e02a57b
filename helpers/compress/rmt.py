"""RMT-KD's projection step: keep the eigendirections of a layer's activations above the Marchenko-Pastur edge.

RMT-KD (Ettori et al. 2025) reads the eigenvalues of a hidden layer's activation covariance that rise above the
Marchenko-Pastur edge lambda+ = sigma2 (1 + sqrt(d / n))^2 as the task-carrying directions, projects the layer
onto them (width d -> r) and then distils the smaller network from the original. Here the noise level sigma2
is estimated from the bulk by ``helpers.ops.randmat.fit_mp`` (median matching: this project's choice).

The projection of the activations h onto the kept directions V (d, r), around their mean mu, is
``h -> mu + V V^T (h - mu)``. A linear layer that reads h then needs only ``W V`` (out, r) and ``V^T`` (r, d),
and a bias that absorbs the mean: ``b + W (mu - V V^T mu)``.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> h = torch.randn(4000, 64, generator=g) + torch.randn(4000, 2, generator=g) @ torch.randn(2, 64, generator=g) * 3
    >>> outlier_directions(h).basis.shape[1]
    2
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from helpers.compress.lowrank import Factorization
from helpers.ops.covariance import covariance
from helpers.ops.randmat import MPFit, fit_mp


@dataclass
class OutlierDirections:
    """The mean (d,), the kept eigenvectors (d, r), largest first, and the Marchenko-Pastur fit they came from."""
    mean: torch.Tensor
    basis: torch.Tensor
    fit: MPFit


def outlier_directions(acts: torch.Tensor, margin: int = 0, sigma2: float | None = None) -> OutlierDirections:
    """Eigenvectors of the covariance of ``acts`` (n, d) above the MP edge, plus ``margin`` more (float64).

    ``sigma2=None`` estimates the noise level from the bulk of the spectrum.
    """
    if acts.ndim != 2:
        raise ValueError(f"acts must be (n, d), got shape {tuple(acts.shape)}")
    acc = covariance(acts, warn=False)
    vals, vecs = torch.linalg.eigh(acc.covariance())
    vals, vecs = vals.flip(0), vecs.flip(1)                      # largest first
    fit = fit_mp(vals, n=acc.n, sigma2=sigma2)
    r = min(max(fit.n_outliers + margin, 1), acts.shape[1])
    return OutlierDirections(acc.mean.clone(), vecs[:, :r].contiguous(), fit)


def projected_linear(layer: nn.Linear, directions: OutlierDirections) -> Factorization:
    """``layer`` reading its input projected on ``directions``: left (out, r), right (r, in) and a new bias (out,).

    Use it with ``helpers.compress.lowrank.replace_linears``. The factorisation's ``spectrum`` holds the
    standard deviations along all eigendirections (the square roots of the covariance eigenvalues).

    Example:
        >>> lin = nn.Linear(3, 2)
        >>> d = OutlierDirections(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64), None)
        >>> f = projected_linear(lin, d)
        >>> bool(torch.allclose(f.weight().float(), lin.weight))
        True
    """
    w = layer.weight.detach().double().cpu()
    v, mu = directions.basis.double(), directions.mean.double()
    if v.shape[0] != w.shape[1]:
        raise ValueError(f"the directions live in {v.shape[0]} dimensions but the layer has {w.shape[1]} inputs")
    b = layer.bias.detach().double().cpu() if layer.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
    spectrum = torch.as_tensor(directions.fit.eigenvalues.copy()).clamp_min(0).sqrt() if directions.fit else torch.zeros(0)
    return Factorization(w @ v, v.T.contiguous(), spectrum, "rmt", b + w @ (mu - v @ (v.T @ mu)))
