"""Plotting for the whole curriculum: functions take tensors or arrays and return the figure.

Each function converts its input once (:func:`to_numpy`), draws on ``ax`` when given
(so figures can be composed), and returns the ``matplotlib`` figure.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

_THEMED = False


def theme() -> None:
    """The curriculum's one figure theme (seaborn "ticks": no grid over images, muted palette), set once.

    Importing :mod:`helpers.plot` sets it; calling again changes nothing.

    Example:
        >>> theme(); plt.rcParams["axes.spines.top"]
        False
    """
    global _THEMED
    if not _THEMED:
        sns.set_theme(context="notebook", style="ticks", palette="deep", font_scale=0.85,
                      rc={"axes.spines.top": False, "axes.spines.right": False, "image.cmap": "viridis"})
        _THEMED = True


def to_numpy(x) -> np.ndarray:
    """A CPU float NumPy copy of a tensor or array-like."""
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def _axes(ax, figsize=(5, 3.5)):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def histograms(acts: Mapping[str, torch.Tensor], bins: int = 60, log: bool = True,
               ax: Optional[plt.Axes] = None, title: str = "activation distributions") -> plt.Figure:
    """Overlaid histograms of several layers' activations (flattened).

    Example:
        >>> fig = histograms({"a": torch.randn(100), "b": torch.randn(100) * 2})
    """
    fig, ax = _axes(ax)
    for name, values in acts.items():
        ax.hist(to_numpy(values).ravel(), bins=bins, histtype="step", label=name, log=log)
    ax.set(title=title, xlabel="activation", ylabel="count")
    ax.legend(fontsize="small")
    return fig


def image_grid(images: Sequence, titles: Optional[Sequence[str]] = None, cols: int = 8,
               cmap: str = "viridis", size: float = 1.6) -> plt.Figure:
    """A grid of images: (H, W) maps or (3, H, W) / (H, W, 3) RGB.

    Example:
        >>> fig = image_grid(torch.rand(4, 8, 8))
    """
    images = [to_numpy(im) for im in images]
    rows = max(1, int(np.ceil(len(images) / cols)))
    ncols = min(cols, len(images))
    fig, axes = plt.subplots(rows, ncols, figsize=(size * ncols, size * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        im = images[i]
        if im.ndim == 3 and im.shape[0] in (1, 3):
            im = np.moveaxis(im, 0, -1)
        ax.imshow(im.squeeze(), cmap=None if im.ndim == 3 and im.shape[-1] == 3 else cmap)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def heatmap_overlay(image, heatmap, ax: Optional[plt.Axes] = None, alpha: float = 0.5,
                    title: Optional[str] = None) -> plt.Figure:
    """An RGB image (3, H, W) or (H, W, 3) in [0, 1] with a heatmap (h, w) resized over it."""
    fig, ax = _axes(ax, (3, 3))
    im = to_numpy(image)
    if im.ndim == 3 and im.shape[0] in (1, 3):
        im = np.moveaxis(im, 0, -1)
    hm = torch.as_tensor(to_numpy(heatmap), dtype=torch.float32)[None, None]
    hm = torch.nn.functional.interpolate(hm, size=im.shape[:2], mode="bilinear", align_corners=False)[0, 0]
    ax.imshow(np.clip(im, 0, 1))
    ax.imshow(hm.numpy(), cmap="jet", alpha=alpha)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return fig


def curves(values: Mapping[str, Sequence[float]], x: Optional[Sequence[float]] = None,
           ax: Optional[plt.Axes] = None, xlabel: str = "", ylabel: str = "", title: str = "",
           logy: bool = False) -> plt.Figure:
    """Several named curves on one axis (e.g. variance per layer for three initialisations)."""
    fig, ax = _axes(ax)
    for name, ys in values.items():
        ys = to_numpy(ys)
        ax.plot(np.arange(len(ys)) if x is None else to_numpy(x), ys, marker=".", label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    return fig


def overlay_grid(images: Sequence, heatmaps: Sequence, titles: Optional[Sequence[str]] = None, cols: int = 6,
                 alpha: float = 0.45, size: float = 1.7) -> plt.Figure:
    """A grid of :func:`heatmap_overlay` panels: image i (3, H, W) with heatmap i (h, w) resized over it.

    Example:
        >>> fig = overlay_grid(torch.rand(4, 3, 16, 16), torch.rand(4, 4, 4), titles=list("abcd"), cols=2)
    """
    if len(images) != len(heatmaps):
        raise ValueError(f"got {len(images)} images but {len(heatmaps)} heatmaps; give one heatmap per image")
    rows = max(1, int(np.ceil(len(images) / cols)))
    ncols = max(1, min(cols, len(images)))
    fig, axes = plt.subplots(rows, ncols, figsize=(size * ncols, (size + 0.1) * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(images):
            ax.axis("off")
            continue
        heatmap_overlay(images[i], heatmaps[i], ax=ax, alpha=alpha, title=None)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return fig


theme()
