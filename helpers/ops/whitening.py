"""Input Gram matrices of linear layers and their square roots (whitening), for activation-aware maths.

For a linear map y = W x applied to calibration inputs X (n, in), the output error of any replacement W' is
``||(W - W') X^T||_F^2 = tr((W - W') G (W - W')^T)`` with the (uncentred) Gram matrix ``G = X^T X``. Any factor
``G = R R^T`` turns it into a plain Frobenius norm, ``||(W - W') R||_F^2``: the Cholesky factor (lower
triangular) and the symmetric square root (from ``eigh``) are two such roots. A small damping (``jitter``
times the mean diagonal) keeps a rank-deficient ``G`` invertible.

Example:
    >>> x = torch.randn(200, 4, dtype=torch.float64)
    >>> g = x.T @ x
    >>> r = cholesky_root(g, jitter=0.0)
    >>> bool(torch.allclose(r @ r.T, g)), bool(torch.allclose(psd_sqrt(g) @ psd_sqrt(g), g))
    (True, True)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn

from helpers.core.capturing import capture


def _check_square(g: torch.Tensor) -> None:
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise ValueError(f"a Gram matrix must be square (d, d), got shape {tuple(g.shape)}")


def damped(g: torch.Tensor, jitter: float) -> torch.Tensor:
    """``g + jitter * mean(diag g) * I`` in float64 (``jitter=0`` returns ``g`` as float64).

    Example:
        >>> damped(torch.eye(2) * 4, 0.5).tolist()
        [[6.0, 0.0], [0.0, 6.0]]
    """
    _check_square(g)
    if jitter < 0:
        raise ValueError(f"jitter must be >= 0, got {jitter}")
    g = g.double()
    return g + jitter * g.diagonal().mean() * torch.eye(len(g), dtype=g.dtype, device=g.device) if jitter else g


def cholesky_root(g: torch.Tensor, jitter: float = 1e-6, max_tries: int = 6) -> torch.Tensor:
    """Lower-triangular L with ``L L^T = g + damping`` (float64); the damping grows x10 until Cholesky succeeds.

    Example:
        >>> cholesky_root(torch.tensor([[4.0, 2.0], [2.0, 5.0]]), jitter=0.0).tolist()
        [[2.0, 0.0], [1.0, 2.0]]
    """
    for attempt in range(max_tries):
        eps = jitter * 10 ** attempt if jitter else (0.0 if attempt == 0 else 1e-12 * 10 ** attempt)
        chol, info = torch.linalg.cholesky_ex(damped(g, eps))
        if int(info) == 0:
            return chol
    raise ValueError(f"the Gram matrix is not positive definite even with a damping of {eps:g} x its mean "
                     f"diagonal; pass a larger jitter")


def psd_sqrt(g: torch.Tensor, jitter: float = 0.0) -> torch.Tensor:
    """Symmetric square root S = S^T with ``S S = g + damping`` (float64), by ``eigh``; negative eigenvalues -> 0.

    Example:
        >>> psd_sqrt(torch.diag(torch.tensor([4.0, 9.0]))).diagonal().tolist()
        [2.0, 3.0]
    """
    vals, vecs = torch.linalg.eigh(damped(g, jitter))
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


@dataclass
class Gram:
    """Sums over the calibration rows x (in,) of one layer's input: ``xx = sum x x^T``, ``x_sum``, ``abs_sum``, ``n``."""
    xx: torch.Tensor        # (in, in) float64
    x_sum: torch.Tensor     # (in,) float64
    abs_sum: torch.Tensor   # (in,) float64, sum of |x|
    n: int

    @property
    def abs_mean(self) -> torch.Tensor:
        """Mean |x_j| per input feature (ASVD's scaling statistic), (in,)."""
        return self.abs_sum / self.n

    def augmented(self) -> torch.Tensor:
        """Gram of ``[x, 1]``, (in + 1, in + 1): the input of a linear map with its bias as a last column."""
        top = torch.cat([self.xx, self.x_sum[:, None]], 1)
        bottom = torch.cat([self.x_sum, torch.tensor([float(self.n)], dtype=self.xx.dtype)])[None]
        return torch.cat([top, bottom])

    def update(self, x: torch.Tensor) -> "Gram":
        x = x.detach().reshape(-1, x.shape[-1]).double().cpu()
        self.xx += x.T @ x
        self.x_sum += x.sum(0)
        self.abs_sum += x.abs().sum(0)
        self.n += len(x)
        return self

    @classmethod
    def of(cls, x: torch.Tensor) -> "Gram":
        """The Gram of rows (..., in) given at once.

        Example:
            >>> Gram.of(torch.tensor([[1.0, 2.0], [3.0, 4.0]])).xx.tolist()
            [[10.0, 14.0], [14.0, 20.0]]
        """
        d = x.shape[-1]
        z = torch.zeros(d, dtype=torch.float64)
        return cls(torch.zeros(d, d, dtype=torch.float64), z.clone(), z.clone(), 0).update(x)


@torch.no_grad()
def input_grams(model: nn.Module, layers: list[str], batches: Iterable[torch.Tensor]) -> dict[str, Gram]:
    """Run ``model`` on each batch and accumulate the Gram matrix of each layer's input (float64).

    Example:
        >>> net = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> grams = input_grams(net, ["0", "2"], [torch.randn(5, 3), torch.randn(4, 3)])
        >>> grams["0"].n, tuple(grams["2"].xx.shape)
        (9, (2, 2))
    """
    grams: dict[str, Gram] = {}
    for batch in batches:
        with capture(model, list(layers), outputs=False, inputs=True, stop=True) as acts:  # skip the rest
            model(batch)
        for name in layers:
            x = acts.inputs[name]
            if name not in grams:
                grams[name] = Gram.of(x)
            else:
                grams[name].update(x)
    if not grams:
        raise ValueError("no batches: input_grams needs at least one batch of inputs")
    return grams
