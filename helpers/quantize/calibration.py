"""Calibration: choose the range [lo, hi] a quantizer covers, from sample data.

    qp = calibrate(acts, bits=8, method="mse", symmetric=False, axis=1)   # one range per channel (dim 1)
    x_hat = fake_quant(acts, qp)

Three rules (as TensorRT-style post-training calibration names them):

- ``"minmax"``: the smallest and largest value seen; nothing is clipped, but one outlier stretches every step;
- ``"percentile"``: the ``percentile``-th percentile of |x| (symmetric), or the (100 - p)-th and p-th percentiles
  (asymmetric): the rare largest values are clipped;
- ``"mse"``: the min-max range shrunk by the factor alpha in ``grid`` that gives the smallest mean squared error
  ``E (x - Q(x))^2`` (per channel when ``axis`` is given). ``alpha = 1`` is in the grid, so the MSE rule is never worse
  than min-max on the data it was calibrated on.
"""
from __future__ import annotations

import torch

from helpers.ops.quantization import QParams, channel_range, check_bits, fake_quant, qparams

METHODS = ("minmax", "percentile", "mse")
GRID = tuple(torch.linspace(0.3, 1.0, 36).tolist())  # shrink factors tried by the MSE rule (0.02 apart)


def _rows(x: torch.Tensor, axis: int | None) -> torch.Tensor:
    """(C, N) with one row per channel, or (1, N) for the whole tensor."""
    x = x.detach().float()
    return x.reshape(1, -1) if axis is None else x.movedim(axis, 0).reshape(x.shape[axis], -1)


def _kth(rows: torch.Tensor, q: float) -> torch.Tensor:
    """The q-quantile of each row (nearest rank; no size limit, unlike torch.quantile)."""
    k = min(rows.shape[1], max(1, int(round(q * rows.shape[1]))))
    return rows.kthvalue(k, dim=1).values


def percentile_range(x: torch.Tensor, percentile: float = 99.99, symmetric: bool = False,
                     axis: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The clipping range of the percentile rule.

    Example:
        >>> x = torch.cat([torch.linspace(-1, 1, 999), torch.tensor([50.0])])
        >>> lo, hi = percentile_range(x, 99.0, symmetric=True)
        >>> round(lo.item(), 2), round(hi.item(), 2)
        (-0.99, 0.99)
    """
    if not 50.0 < percentile <= 100.0:
        raise ValueError(f"percentile must be in (50, 100], got {percentile}")
    rows = _rows(x, axis)
    if symmetric:
        c = _kth(rows.abs(), percentile / 100)
        lo, hi = -c, c
    else:
        lo, hi = _kth(rows, 1 - percentile / 100), _kth(rows, percentile / 100)
    return (lo[0], hi[0]) if axis is None else (lo, hi)


def mse_range(x: torch.Tensor, bits: int, symmetric: bool = False, axis: int | None = None,
              grid: tuple[float, ...] = GRID) -> tuple[torch.Tensor, torch.Tensor]:
    """The min-max range times the alpha of ``grid`` with the smallest squared quantization error (per channel).

    Example:
        >>> x = torch.cat([torch.randn(10_000), torch.tensor([40.0])])
        >>> lo, hi = mse_range(x, bits=4, symmetric=True)
        >>> hi.item() < 40.0        # clipping the one outlier costs less than coarse steps everywhere else
        True
    """
    check_bits(bits)
    rows = _rows(x, axis)
    lo, hi = rows.min(1).values, rows.max(1).values
    best_err = torch.full_like(lo, float("inf"))
    best = torch.ones_like(lo)
    for alpha in grid:
        qp = qparams(alpha * lo, alpha * hi, bits, symmetric, axis=0)
        err = (fake_quant(rows, qp) - rows).pow(2).mean(1)
        better = err < best_err
        best_err, best = torch.where(better, err, best_err), torch.where(better, torch.tensor(alpha), best)
    lo, hi = best * lo, best * hi
    return (lo[0], hi[0]) if axis is None else (lo, hi)


def calibrate(x: torch.Tensor, bits: int = 8, method: str = "minmax", symmetric: bool = False,
              axis: int | None = None, percentile: float = 99.99) -> QParams:
    """Quantization parameters for tensors like ``x``: per tensor (``axis=None``) or per index of ``axis``.

    Example:
        >>> x = torch.randn(64, 8); x[:, 3] *= 50          # one outlier channel
        >>> from helpers.ops.quantization import sqnr_db
        >>> per_tensor = sqnr_db(x, fake_quant(x, calibrate(x, 8)))
        >>> per_channel = sqnr_db(x, fake_quant(x, calibrate(x, 8, axis=1)))
        >>> per_channel > per_tensor
        True
    """
    check_bits(bits)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if axis is not None and not -x.dim() <= axis < x.dim():
        raise ValueError(f"axis {axis} is out of range for a tensor of shape {tuple(x.shape)}")
    if axis is not None:
        axis %= x.dim()
    if method == "minmax":
        lo, hi = channel_range(x, axis)
    elif method == "percentile":
        lo, hi = percentile_range(x, percentile, symmetric, axis)
    else:
        lo, hi = mse_range(x, bits, symmetric, axis)
    return qparams(lo, hi, bits, symmetric, axis)
