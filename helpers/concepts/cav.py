"""Concept activation vectors: an L2-regularised logistic regression between two sets of activations.

A CAV (Kim et al., 2018) is the unit normal of a linear boundary that separates a layer's activations of concept
examples from those of random examples; it points towards the concept. With flattened conv activations the
dimension d (e.g. 32,768) is far above the number of examples n (~100), so the fit works in the n-dimensional span of
the examples: with ``K = X X^T = U diag(lam) U^T`` and features ``Z = U diag(sqrt(lam))``, the logistic regression
with penalty ``|w|^2 / 2`` on ``w`` is exactly the one with penalty ``|beta|^2 / 2`` on ``Z``'s coefficients ``beta``
(``w = X^T U diag(lam^-1/2) beta`` has ``|w| = |beta|``). The optimum is unique, so any solver reaches the same ``w``.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> concept = torch.randn(40, 500, generator=g) + 3 * torch.eye(500)[0]   # shifted along axis 0
    >>> random = torch.randn(40, 500, generator=g)
    >>> cav = fit_cav(concept, random)
    >>> cav.vector.shape, round(float(cav.vector.norm()), 4), int(cav.vector.abs().argmax())
    (torch.Size([500]), 1.0, 0)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class CAV:
    """A fitted concept activation vector.

    Fields:
        vector: (d,) unit normal of the boundary, pointing towards the concept (float32).
        weights: (d,) the classifier's weights before normalisation; ``bias`` its intercept.
        train_accuracy: share of the fitting examples on the right side of the boundary.
        C: the inverse regularisation strength that was used.
    """

    vector: torch.Tensor
    weights: torch.Tensor
    bias: float
    train_accuracy: float
    C: float

    def decision(self, acts: torch.Tensor) -> torch.Tensor:
        """Signed distance-like score ``acts @ weights + bias`` (> 0: concept side), (N,)."""
        return acts.flatten(1).to(self.weights) @ self.weights + self.bias

    def accuracy(self, concept: torch.Tensor, random: torch.Tensor) -> float:
        """Share of held-out examples classified correctly (concept > 0, random <= 0)."""
        right = torch.cat([self.decision(concept) > 0, self.decision(random) <= 0])
        return right.double().mean().item()


def _check_pair(concept: torch.Tensor, random: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if concept.ndim < 2 or random.ndim < 2:
        raise ValueError(f"concept and random activations must be (N, ...) with N examples, got shapes "
                         f"{tuple(concept.shape)} and {tuple(random.shape)}")
    a, b = concept.flatten(1), random.flatten(1)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"concept and random activations must have the same features per example, got "
                         f"{tuple(concept.shape)} and {tuple(random.shape)}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least 2 examples on each side, got {len(a)} concept and {len(b)} random")
    return a, b


def logistic_from_gram(gram: torch.Tensor, labels: torch.Tensor, C: float = 1.0, iters: int = 50,
                       tol: float = 1e-10) -> tuple[torch.Tensor, float]:
    """L2 logistic regression in kernel form: ``min |w|^2/2 + C sum log(1 + exp(-y (w.x + b)))`` with ``w = X^T a``.

    Args:
        gram: (n, n) ``X X^T`` of the n examples (any float dtype; computed in float64 here).
        labels: (n,) 1 for the concept, 0 for random (or booleans).
        C: inverse regularisation strength, as scikit-learn's ``LogisticRegression(C=...)``; the intercept is not
            penalised (as scikit-learn's lbfgs solver).

    Returns ``(alpha (n,), bias)`` so that ``w = X^T alpha``. Newton's method with step halving on the reduced problem.

    Example:
        >>> x = torch.tensor([[0.0, 1.0], [0.0, 2.0], [1.0, 0.0], [2.0, 0.0]])
        >>> alpha, b = logistic_from_gram(x @ x.T, torch.tensor([1, 1, 0, 0]))
        >>> w = x.T.double() @ alpha
        >>> bool(w[1] > 0 > w[0])
        True
    """
    n = len(gram)
    if gram.shape != (n, n) or labels.shape != (n,):
        raise ValueError(f"gram must be (n, n) and labels (n,), got {tuple(gram.shape)} and {tuple(labels.shape)}")
    if C <= 0:
        raise ValueError(f"C must be positive, got {C}")
    y = labels.double() * 2 - 1  # {-1, +1}
    if (y > 0).all() or (y < 0).all():
        raise ValueError("labels must contain both the concept (1) and random (0) examples")
    k = gram.double()
    lam, u = torch.linalg.eigh((k + k.T) / 2)
    keep = lam > lam.max().clamp_min(0) * 1e-10
    z = u[:, keep] * lam[keep].sqrt()  # (n, r): coordinates of the examples in an orthonormal basis of their span
    r = z.shape[1]
    zb = torch.cat([z, torch.ones(n, 1, dtype=z.dtype)], 1)  # last column: intercept
    reg = torch.ones(r + 1, dtype=z.dtype)
    reg[-1] = 0.0

    def objective(theta: torch.Tensor) -> torch.Tensor:
        return 0.5 * (reg * theta ** 2).sum() + C * torch.nn.functional.softplus(-y * (zb @ theta)).sum()

    theta = torch.zeros(r + 1, dtype=z.dtype)
    value = objective(theta)
    for _ in range(iters):
        m = y * (zb @ theta)
        p = torch.sigmoid(-m)  # = -d loss / d margin
        grad = reg * theta - C * zb.T @ (y * p)
        hess = zb.T @ (zb * (C * p * (1 - p))[:, None]) + torch.diag(reg) + 1e-12 * torch.eye(r + 1, dtype=z.dtype)
        step = torch.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-8:
            candidate = theta - t * step
            new = objective(candidate)
            if new <= value:
                break
            t /= 2
        theta, done = candidate, value - new <= tol * (1 + value.abs())
        value = new
        if done:
            break
    alpha = u[:, keep] @ (theta[:-1] / lam[keep].sqrt())  # w = X^T alpha
    return alpha, float(theta[-1])


def fit_cav(concept: torch.Tensor, random: torch.Tensor, C: float = 1.0,
            gram: Optional[torch.Tensor] = None) -> CAV:
    """Fit the CAV of ``concept`` against ``random`` activations (N, ...) of one layer, flattened per example.

    ``gram`` may pass a precomputed ``X X^T`` of ``torch.cat([concept, random])`` (flattened), e.g. a block of one
    Gram matrix shared by many concept/random pairs (:func:`gram_matrix`).

    Example:
        >>> g = torch.Generator().manual_seed(1)
        >>> cav = fit_cav(torch.randn(20, 8, generator=g) + 2, torch.randn(20, 8, generator=g))
        >>> cav.train_accuracy, bool((cav.vector > 0).all())
        (1.0, True)
    """
    a, b = _check_pair(concept, random)
    x = torch.cat([a, b]).double()  # (n, d)
    if gram is None:
        gram = x @ x.T
    elif gram.shape != (len(x), len(x)):
        raise ValueError(f"gram must be ({len(x)}, {len(x)}) for {len(a)} + {len(b)} examples, got {tuple(gram.shape)}")
    labels = torch.cat([torch.ones(len(a)), torch.zeros(len(b))])
    alpha, bias = logistic_from_gram(gram, labels, C)
    w = x.T @ alpha  # (d,)
    right = ((x @ w + bias > 0).double() == labels.double()).double().mean().item()
    return CAV(vector=(w / w.norm()).float(), weights=w.float(), bias=bias, train_accuracy=right, C=C)


def gram_matrix(x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """``X X^T`` (n, n) of flattened examples (n, ...), accumulated over feature chunks in float64.

    Example:
        >>> x = torch.randn(5, 3, 4, 4)
        >>> torch.allclose(gram_matrix(x), (x.flatten(1) @ x.flatten(1).T).double(), atol=1e-4)
        True
    """
    if x.ndim < 2:
        raise ValueError(f"x must be (n, ...) examples, got shape {tuple(x.shape)}")
    flat = x.flatten(1)
    out = torch.zeros(len(flat), len(flat), dtype=torch.float64, device=flat.device)
    for i in range(0, flat.shape[1], chunk):  # float32 products per chunk, float64 sum across chunks
        part = flat[:, i:i + chunk].float()
        out += (part @ part.T).double()
    return out
