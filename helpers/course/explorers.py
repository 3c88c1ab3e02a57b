"""Explorers: small ipywidgets apps for the cells where a person would rather explore than read.

Each function takes tensors (or callables that compute from the lesson's own code) and returns an
:class:`Explorer`, an ``ipywidgets.VBox``: controls, a status line (``.al-explorer-status``) and the figure.
With ``ACTIVATION_LAB_STATIC=1`` (set for nbval by ``conftest.py`` and for papermill by the runner) an
explorer displays a PNG of its default state instead, so headless runs and the HTML pages are
deterministic and show something. Computation stays in the topic packages; this module only draws.

Example:
    >>> ex = steering_slider(lambda a: {"yes": 1 / (1 + np.exp(-a)), "no": 1 - 1 / (1 + np.exp(-a))}, (-3, 3))
    >>> before = ex.status.value
    >>> ex.controls["strength"].value = 3.0
    >>> before != ex.status.value
    True
"""
from __future__ import annotations

import base64
import io
import os
from typing import Any, Callable, Mapping, Optional, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from helpers.ops.randmat import fit_mp, mp_density
from helpers.plot import heatmap_overlay, theme, to_numpy


def static() -> bool:
    """Whether explorers show a static figure (``ACTIVATION_LAB_STATIC=1``) instead of a live widget."""
    return os.environ.get("ACTIVATION_LAB_STATIC", "0") == "1"


def png(fig: plt.Figure, dpi: int = 80) -> str:
    """The figure as base64 PNG text (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


class Explorer(widgets.VBox):
    """Controls + status line + figure; ``draw(**values)`` returns ``(figure, status text)``."""

    def __init__(self, draw: Callable[..., tuple[plt.Figure, str]], controls: Mapping[str, widgets.ValueWidget],
                 kind: str, on_change: Optional[Callable[[str, "Explorer"], None]] = None):
        self.draw, self.controls, self.on_change = draw, dict(controls), on_change
        self.status = widgets.HTML()
        self.status.add_class("al-explorer-status")
        self.output = widgets.Output()
        self.defaults = self.values()
        super().__init__([widgets.HBox(list(self.controls.values())), self.status, self.output])
        self.add_class("al-explorer")
        self.add_class(f"al-{kind}")
        self.last_png = ""
        for name, control in self.controls.items():
            control.observe(lambda change, name=name: self._changed(name), names="value")
        self.refresh()

    def values(self) -> dict[str, Any]:
        return {name: c.value for name, c in self.controls.items()}

    def _changed(self, name: str) -> None:
        if self.on_change is not None:
            self.on_change(name, self)
        self.refresh()

    def render(self, **values: Any) -> tuple[str, str]:
        """(base64 PNG, status text) for ``values`` (missing ones: the current values)."""
        fig, text = self.draw(**{**self.values(), **values})
        return png(fig), text

    def refresh(self) -> None:
        self.last_png, text = self.render()
        self.status.value = f"<span>{text}</span>"
        self.output.outputs = ({"output_type": "display_data", "metadata": {},
                                "data": {"image/png": self.last_png, "text/plain": text}},)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        if static():
            image, text = self.render(**self.defaults)
            return {"image/png": image, "text/plain": f"{text} (static figure of the explorer's default state)"}
        return super()._repr_mimebundle_(**kwargs)


def _names(n: int, labels: Optional[Sequence[str]]) -> list[str]:
    if labels is not None and len(labels) != n:
        raise ValueError(f"got {len(labels)} labels for {n} items; give one label per item or none")
    return list(labels) if labels is not None else [str(i) for i in range(n)]


def unit_browser(acts: Mapping[str, torch.Tensor], inputs: Optional[torch.Tensor] = None,
                 labels: Optional[Sequence[str]] = None, k: int = 6) -> Explorer:
    """Pick a layer and a unit: the distribution of its activation over the inputs and its top-``k`` inputs.

    ``acts[layer]`` is (N, units, ...) (extra dims are averaged, e.g. a channel's map); ``inputs`` (N, 3, H, W)
    images to show, or ``labels`` (N strings, e.g. the text of each prompt).
    """
    if not acts:
        raise ValueError("acts is empty; give {layer name: (N, units, ...) tensor}")
    per_unit = {name: to_numpy(a.flatten(2).mean(-1) if a.dim() > 2 else a) for name, a in acts.items()}
    n = {v.shape[0] for v in per_unit.values()}
    if len(n) != 1 or any(v.ndim != 2 for v in per_unit.values()):
        raise ValueError(f"every layer must be (N, units, ...) with the same N; got shapes "
                         f"{ {k_: tuple(a.shape) for k_, a in acts.items()} }")
    names = _names(n.pop(), labels)
    layer = widgets.Dropdown(options=list(per_unit), description="layer")
    unit = widgets.IntSlider(0, 0, per_unit[layer.value].shape[1] - 1, description="unit", continuous_update=False)

    def sync(name: str, ex: Explorer) -> None:
        if name == "layer":
            unit.max = per_unit[layer.value].shape[1] - 1

    def draw(layer: str, unit: int) -> tuple[plt.Figure, str]:
        values = per_unit[layer][:, unit]
        top = np.argsort(-values, kind="stable")[:k]
        fig = plt.figure(figsize=(2.4 + 1.3 * k, 2.6))
        grid = fig.add_gridspec(1, 1 + k, width_ratios=[2.4] + [1.3] * k)
        ax = fig.add_subplot(grid[0])
        sns.histplot(values, bins=30, ax=ax, color="C0")
        ax.set(title=f"{layer}, unit {unit}", xlabel="activation (mean over positions)", ylabel="inputs")
        for j, i in enumerate(top):
            sub = fig.add_subplot(grid[1 + j])
            sub.axis("off")
            if inputs is not None:
                sub.imshow(np.clip(np.moveaxis(to_numpy(inputs[i]), 0, -1), 0, 1))
                sub.set_title(f"{values[i]:.2f}", fontsize=8)
            else:
                sub.text(0.5, 0.5, f"{names[i]}\n{values[i]:.2f}", ha="center", va="center", fontsize=8, wrap=True)
        text = (f"{layer} · unit {unit} · mean {values.mean():.3f} · off for {(values == 0).mean():.0%} of inputs · "
                f"top input {names[top[0]]}")
        return fig, text

    return Explorer(draw, {"layer": layer, "unit": unit}, "unit-browser", on_change=sync)


def map_explorer(images: torch.Tensor, compute: Callable[[str, str, int], torch.Tensor], methods: Sequence[str],
                 layers: Sequence[str], classes: Sequence[str]) -> Explorer:
    """Image x method x layer x class: ``compute(method, layer, class_index)`` returns (N, h, w) maps for ``images``.

    Results are cached per (method, layer, class), so moving the image slider costs nothing.
    """
    if not methods or not layers or not classes:
        raise ValueError("methods, layers and classes must each name at least one choice")
    cache: dict[tuple, np.ndarray] = {}
    controls = {"image": widgets.IntSlider(0, 0, len(images) - 1, description="image", continuous_update=False),
                "method": widgets.Dropdown(options=list(methods), description="method"),
                "layer": widgets.Dropdown(options=list(layers), description="layer"),
                "target": widgets.Dropdown(options=[(c, i) for i, c in enumerate(classes)], description="class")}

    def draw(image: int, method: str, layer: str, target: int) -> tuple[plt.Figure, str]:
        key = (method, layer, target)
        if key not in cache:
            cache[key] = to_numpy(compute(method, layer, target))
        maps = cache[key]
        fig, axes = plt.subplots(1, 2, figsize=(5.2, 2.7))
        axes[0].imshow(np.clip(np.moveaxis(to_numpy(images[image]), 0, -1), 0, 1))
        axes[0].set_title(f"image {image}")
        axes[0].axis("off")
        heatmap_overlay(images[image], maps[image], ax=axes[1], title=f"{method} · {layer}\nclass {classes[target]}")
        peak = np.unravel_index(np.argmax(maps[image]), maps[image].shape)
        return fig, f"image {image} · {method} · {layer} · class {classes[target]} · peak at {tuple(map(int, peak))}"

    return Explorer(draw, controls, "map-explorer")


def patching_explorer(effect: torch.Tensor, predict: Callable[[int, int], Mapping[str, float]],
                      row_labels: Sequence[str], col_labels: Sequence[str], title: str = "patching effect") -> Explorer:
    """Pick a cell (row = layer, column = position) of a patching heatmap: ``predict(row, col)`` gives the
    patched run's top predictions {token: probability}, drawn beside the annotated heatmap."""
    eff = to_numpy(effect)
    if eff.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"effect has shape {eff.shape} but there are {len(row_labels)} row and "
                         f"{len(col_labels)} column labels")
    controls = {"layer": widgets.IntSlider(0, 0, eff.shape[0] - 1, description="layer", continuous_update=False),
                "position": widgets.IntSlider(eff.shape[1] - 1, 0, eff.shape[1] - 1, description="position",
                                              continuous_update=False)}

    def draw(layer: int, position: int) -> tuple[plt.Figure, str]:
        probs = dict(predict(layer, position))
        fig, axes = plt.subplots(1, 2, figsize=(9, 0.45 * eff.shape[0] + 1.6), width_ratios=[3, 1.3])
        sns.heatmap(eff, annot=eff.size <= 120, fmt=".2f", cmap="vlag", center=0, ax=axes[0], cbar=False,
                    xticklabels=list(col_labels), yticklabels=list(row_labels))
        axes[0].add_patch(plt.Rectangle((position, layer), 1, 1, fill=False, lw=2.5, ec="black"))
        axes[0].set(title=title, xlabel="position", ylabel="layer")
        names = list(probs)
        axes[1].barh(names[::-1], [probs[t] for t in names][::-1], color="C1")
        axes[1].set(xlim=(0, 1), title="patched prediction", xlabel="probability")
        best = max(probs, key=probs.get)
        return fig, (f"patched {row_labels[layer]} at {col_labels[position]!s} · effect {eff[layer, position]:.3f} · "
                     f"top {best!r} {probs[best]:.2f}")

    return Explorer(draw, controls, "patching-explorer")


def steering_slider(distribution: Callable[[float], Mapping[str, float]], strengths: tuple[float, float],
                    step: Optional[float] = None, value: float = 0.0, title: str = "output distribution") -> Explorer:
    """Strength -> output distribution: ``distribution(alpha)`` returns {outcome: probability}."""
    lo, hi = strengths
    if not lo < hi or not lo <= value <= hi:
        raise ValueError(f"need strengths (low, high) with low < high and the start value {value} inside; got {strengths}")
    slider = widgets.FloatSlider(value, min=lo, max=hi, step=step or (hi - lo) / 20, description="strength",
                                 continuous_update=False)
    cache: dict[float, dict] = {}

    def draw(strength: float) -> tuple[plt.Figure, str]:
        if strength not in cache:
            cache[strength] = dict(distribution(strength))
        probs = cache[strength]
        fig, ax = plt.subplots(figsize=(5, 0.3 * len(probs) + 1.2))
        names = list(probs)
        ax.barh(names[::-1], [probs[t] for t in names][::-1], color="C2")
        ax.set(xlim=(0, 1), xlabel="probability", title=f"{title}, strength {strength:g}")
        best = max(probs, key=probs.get)
        return fig, f"strength {strength:g} · top {best!r} {probs[best]:.2f}"

    return Explorer(draw, {"strength": slider}, "steering-slider")


def spectrum_explorer(eigenvalues: Mapping[str, torch.Tensor], n: int, label: str = "layer") -> Explorer:
    """Pick a layer / checkpoint: its covariance eigenvalues (histogram) against the fitted Marchenko-Pastur law
    (``helpers.ops.randmat.fit_mp``; ``n`` samples), with the outliers above the edge counted."""
    if not eigenvalues:
        raise ValueError("eigenvalues is empty; give {layer or checkpoint: 1-D eigenvalues}")
    fits = {key: fit_mp(ev, n=n) for key, ev in eigenvalues.items()}
    choice = widgets.SelectionSlider(options=list(fits), description=label, continuous_update=False)

    def draw(**values: Any) -> tuple[plt.Figure, str]:
        key = values[label]
        fit = fits[key]
        bulk = fit.eigenvalues[fit.n_outliers:]
        fig, ax = plt.subplots(figsize=(5.5, 3))
        sns.histplot(bulk, bins=40, stat="density", ax=ax, color="C0", label="eigenvalues below the edge")
        grid = np.linspace(fit.lower * 0.9, fit.upper * 1.1, 300)
        ax.plot(grid, mp_density(grid, fit.gamma, fit.sigma2) * len(fit.eigenvalues) / max(len(bulk), 1),
                color="C3", label="Marchenko-Pastur fit")
        ax.axvline(fit.upper, color="C3", ls=":", lw=1)
        ax.set(title=f"{label} {key}: {fit.n_outliers} eigenvalue(s) above the MP edge", xlabel="eigenvalue")
        ax.legend(fontsize="small")
        return fig, f"{label} {key} · outliers {fit.n_outliers} · KS {fit.ks:.3f} · largest {fit.eigenvalues[0]:.3g}"

    return Explorer(draw, {label: choice}, "spectrum-explorer")


theme()
