"""Low-rank factorisations of a linear layer: weight SVD, ASVD, and whitened SVD (SVD-LLM's Cholesky, CARE's square root).

W (out, in) is replaced by ``left @ right`` with left (out, r) and right (r, in): r (out + in) numbers instead of
out * in. Which rank-r matrix is kept decides the error:

- ``"svd"``: the best rank-r approximation of W itself (Eckart-Young), blind to the inputs;
- ``"asvd"`` (Yuan et al. 2023): SVD of W S with S = diag(mean |x_j|)^alpha, then undo S (a heuristic scaling);
- ``"cholesky"`` (SVD-LLM, Wang et al. 2024) and ``"sqrt"`` (CARE, Zhou et al. 2026): SVD of W R with
  R R^T = G = X^T X, then undo R. Both minimise the output error ||(W - W') X^T||_F^2 exactly, and that error is
  the sum of the dropped squared singular values of W R.

Example:
    >>> _ = torch.manual_seed(0); x = torch.randn(300, 6) * torch.tensor([5.0, 1, 1, 1, 0.1, 0.1])
    >>> w = torch.randn(4, 6); g = Gram.of(x)
    >>> f = factorize(w, 2, "sqrt", g, jitter=0.0)
    >>> bool(abs(output_error(w, f.weight(), g) / f.dropped_energy() - 1) < 1e-6)
    True
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from helpers.core.linear_maps import is_linear, linear_weight
from helpers.core.names import resolve_layers
from helpers.ops.whitening import Gram, cholesky_root, psd_sqrt

METHODS = ("svd", "asvd", "cholesky", "sqrt")


def check_rank(shape: tuple[int, ...], rank: int, what: str = "the matrix") -> None:
    """Raise ``ValueError`` unless 1 <= rank <= min(out, in) of a 2-D ``shape``."""
    out_f, in_f = shape
    if not isinstance(rank, int) or not 1 <= rank <= min(out_f, in_f):
        raise ValueError(f"rank {rank} is not possible for {what} of shape {out_f} x {in_f}: "
                         f"the rank must be between 1 and min({out_f}, {in_f}) = {min(out_f, in_f)}")


@dataclass
class Factorization:
    """W ~ left @ right, with the singular values of the (scaled) matrix that was truncated."""
    left: torch.Tensor       # (out, r) = U_r diag(s_r), float64
    right: torch.Tensor      # (r, in) = V_r^T T^-1 (T = scaling or root; identity for plain SVD), float64
    spectrum: torch.Tensor   # all singular values of W T, largest first, float64
    method: str
    bias: torch.Tensor | None = None   # a new bias (out,) for the layer; None keeps the layer's own

    @property
    def rank(self) -> int:
        return self.left.shape[1]

    def weight(self) -> torch.Tensor:
        """The rank-r matrix (out, in), float64."""
        return self.left @ self.right

    def dropped_energy(self) -> float:
        """Sum of the squared singular values beyond the rank (= the output error for the whitened methods)."""
        return float(self.spectrum[self.rank:].pow(2).sum())

    def n_params(self) -> int:
        return self.left.numel() + self.right.numel()


def _truncate(m: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    u, s, vh = torch.linalg.svd(m, full_matrices=False)
    return u[:, :rank] * s[:rank], vh[:rank], s


def factorize(weight: torch.Tensor, rank: int, method: str = "svd", gram: Gram | None = None,
              alpha: float = 0.5, jitter: float = 1e-6) -> Factorization:
    """Rank-``rank`` factorisation of ``weight`` (out, in) by ``method`` (see the module docstring).

    ``gram`` (the layer's input statistics, ``helpers.ops.whitening.Gram``) is needed by every method but
    ``"svd"``; ``alpha`` is ASVD's exponent, ``jitter`` the relative damping of G for the whitened methods.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if weight.ndim != 2:
        raise ValueError(f"weight must be a matrix (out, in), got shape {tuple(weight.shape)}")
    check_rank(tuple(weight.shape), rank, "the weight")
    w = weight.detach().double().cpu()
    if method == "svd":
        left, right, s = _truncate(w, rank)
        return Factorization(left, right, s, method)
    if gram is None:
        raise ValueError(f"method {method!r} needs the layer's input statistics: pass gram=Gram.of(inputs)")
    if gram.xx.shape[0] != w.shape[1]:
        raise ValueError(f"the Gram matrix is {tuple(gram.xx.shape)} but the weight has {w.shape[1]} inputs")
    if method == "asvd":
        scale = gram.abs_mean.clamp_min(1e-12) ** alpha                      # (in,)
        left, right, s = _truncate(w * scale, rank)
        return Factorization(left, right / scale, s, method)
    if method == "cholesky":
        root = cholesky_root(gram.xx, jitter)                                  # lower triangular L, L L^T = G
        left, right, s = _truncate(w @ root, rank)
        right = torch.linalg.solve_triangular(root, right, upper=False, left=False)   # right @ L^-1
        return Factorization(left, right, s, method)
    root = psd_sqrt(gram.xx, jitter)                                           # symmetric S, S S = G
    left, right, s = _truncate(w @ root, rank)
    return Factorization(left, torch.linalg.solve(root, right.T).T, s, method)  # right @ S^-1 (S symmetric)


def output_error(weight: torch.Tensor, approx: torch.Tensor, gram: Gram) -> float:
    """``||(W - W') X^T||_F^2 = tr((W - W') G (W - W')^T)`` from the Gram matrix (float64)."""
    d = weight.detach().double().cpu() - approx.detach().double().cpu()
    return float(((d @ gram.xx) * d).sum())


class LowRankLinear(nn.Module):
    """``x -> left(right(x))``: a linear layer stored as two factors, ``right`` (in -> r) and ``left`` (r -> out, bias)."""

    def __init__(self, left: torch.Tensor, right: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        self.right = nn.Linear(right.shape[1], right.shape[0], bias=False)
        self.left = nn.Linear(left.shape[1], left.shape[0], bias=bias is not None)
        with torch.no_grad():
            self.right.weight.copy_(right)
            self.left.weight.copy_(left)
            if bias is not None:
                self.left.bias.copy_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.left(self.right(x))

    @property
    def rank(self) -> int:
        return self.right.out_features


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    parent_name, _, child = name.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), child


def replace_linears(model: nn.Module, factors: dict[str, Factorization]) -> nn.Module:
    """A deep copy of ``model`` with each named linear map replaced by a ``LowRankLinear`` (same bias).

    The maps are ``nn.Linear`` layers or transformers' ``Conv1D`` (GPT-2), whose weight is read as (out, in).

    The original model is never changed. Names are checked (and shapes compared) before anything is copied.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 3))
        >>> small = replace_linears(net, {"0": factorize(net[0].weight, 1)})
        >>> type(small[0]).__name__, type(net[0]).__name__
        ('LowRankLinear', 'Linear')
    """
    names = resolve_layers(model, list(factors))
    for name in names:
        layer = model.get_submodule(name)
        if not is_linear(layer):
            raise ValueError(f"{name} is a {type(layer).__name__}, not an nn.Linear (or a transformers Conv1D)")
        f = factors[name]
        if (f.left.shape[0], f.right.shape[1]) != tuple(linear_weight(layer).shape):
            raise ValueError(f"the factors of {name} make a {f.left.shape[0]} x {f.right.shape[1]} matrix, "
                             f"the layer's weight is {tuple(linear_weight(layer).shape)}")
    new = copy.deepcopy(model)
    for name in names:
        layer = new.get_submodule(name)
        f = factors[name]
        dtype = layer.weight.dtype
        bias = f.bias if f.bias is not None else layer.bias
        low = LowRankLinear(f.left.to(dtype), f.right.to(dtype), None if bias is None else bias.detach().to(dtype))
        parent, child = _parent(new, name)
        setattr(parent, child, low.to(layer.weight.device))
    return new


def parameter_bytes(model: nn.Module) -> int:
    """Bytes of all parameters and buffers as stored (numel x element size)."""
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
