"""Multinomial logistic regression fitted in torch (full batch, L-BFGS), the project's one linear classifier.

Probes (notebook 09), concept vectors (10) and detectors on activation features all need "fit a linear
classifier with an L2 penalty on (N, D) features". The objective is

    mean_n CE(W x_n + b, y_n) + weight_decay / 2 * ||W||^2        (the bias is not penalised)

which is scikit-learn's ``LogisticRegression(C=1 / (N * weight_decay))`` up to a constant factor for K >= 3
classes, so the two reach the same minimum. For K = 2 scikit-learn fits one vector w = W[1] - W[0], whose
penalty is half of ours at the optimum: there ``C=2 / (N * weight_decay)`` matches (``tests/test_readouts.py``).

Example:
    >>> x = torch.cat([torch.randn(50, 3) - 2, torch.randn(50, 3) + 2])
    >>> y = torch.cat([torch.zeros(50), torch.ones(50)]).long()
    >>> clf = fit_logistic(x, y, weight_decay=1e-3)
    >>> clf.accuracy(x, y) > 0.95, clf.weight.shape
    (True, torch.Size([2, 3]))
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LogisticModel:
    """A fitted classifier: ``logits = ((x - mean) / scale) @ weight.T + bias``.

    ``mean`` and ``scale`` are the training features' statistics when fitted with ``standardize=True``
    (else 0 and 1), so the model takes raw features.
    """

    weight: torch.Tensor  # (K, D)
    bias: torch.Tensor    # (K,)
    mean: torch.Tensor    # (D,)
    scale: torch.Tensor   # (D,)
    loss: float           # the objective at the end of fitting

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N, K) class scores."""
        if x.ndim != 2 or x.shape[1] != self.weight.shape[1]:
            raise ValueError(f"expected features (N, {self.weight.shape[1]}), got {tuple(x.shape)}")
        z = (x.to(self.weight) - self.mean) / self.scale
        return z @ self.weight.T + self.bias

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N,) predicted class."""
        return self.logits(x).argmax(-1)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Share of rows of ``x`` whose predicted class is ``y``."""
        return (self.predict(x) == y.to(self.weight.device)).float().mean().item()


def _check(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"expected features (N, D) and labels (N,) with N > 0, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    if y.dtype not in (torch.int64, torch.int32, torch.uint8, torch.bool):
        raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}")


def fit_logistic(x: torch.Tensor, y: torch.Tensor, n_classes: int | None = None, weight_decay: float = 1e-3,
                 standardize: bool = False, max_iter: int = 200, tol: float = 1e-7) -> LogisticModel:
    """Fit a multinomial logistic regression to features ``x`` (N, D) and labels ``y`` (N,) in float64.

    Args:
        n_classes: number of classes K (default ``y.max() + 1``; give it when a class may be absent).
        weight_decay: L2 penalty on the weights (not the bias); must be > 0 so the minimum is unique.
        standardize: z-score each feature with the training mean and std first (recommended for residual
            streams, whose few huge dimensions otherwise dominate the penalty).
        max_iter, tol: L-BFGS iterations and gradient tolerance.

    Returns a :class:`LogisticModel` in float32 on ``x``'s device.
    """
    _check(x, y)
    if weight_decay <= 0:
        raise ValueError(f"weight_decay must be > 0 (a unique minimum), got {weight_decay}")
    y = y.long().to(x.device)
    k = int(y.max()) + 1 if n_classes is None else n_classes
    if k < 2 or int(y.max()) >= k or int(y.min()) < 0:
        raise ValueError(f"labels must lie in 0..{k - 1} with K >= 2 classes, got range {int(y.min())}..{int(y.max())}")
    xd = x.double()
    mean = xd.mean(0) if standardize else torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    scale = xd.std(0).clamp_min(1e-8) if standardize else torch.ones_like(mean)
    z = (xd - mean) / scale
    w = torch.zeros(k, x.shape[1], dtype=torch.float64, device=x.device, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, tolerance_grad=tol, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z @ w.T + b, y) + weight_decay / 2 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(objective)
    with torch.no_grad():
        loss = F.cross_entropy(z @ w.T + b, y) + weight_decay / 2 * w.pow(2).sum()
    return LogisticModel(w.detach().float(), b.detach().float(), mean.float(), scale.float(), float(loss))
