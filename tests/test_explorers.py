"""Explorers: controls change the figure and the status line, bad input is refused, static mode is a PNG."""
from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

from helpers.course import explorers as E


def _png_ok(b64: str) -> bool:
    return base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"


def test_unit_browser_follows_layer_and_unit_and_shows_the_top_inputs():
    acts = torch.zeros(10, 4, 2, 2)
    acts[7, 2] = 5.0  # input 7 is unit 2's strongest
    ex = E.unit_browser({"conv": acts, "fc": torch.arange(30.0).reshape(10, 3)}, labels=[f"x{i}" for i in range(10)])
    assert "unit 0" in ex.status.value and "off for 100% of inputs" in ex.status.value
    first = ex.last_png
    ex.controls["unit"].value = 2
    assert "top input x7" in ex.status.value and "off for 90% of inputs" in ex.status.value and ex.last_png != first
    ex.controls["layer"].value = "fc"
    assert ex.controls["unit"].max == 2 and "top input x9" in ex.status.value
    assert _png_ok(ex.output.outputs[0]["data"]["image/png"])
    with pytest.raises(ValueError, match="same N"):
        E.unit_browser({"a": torch.zeros(3, 2), "b": torch.zeros(4, 2)})
    with pytest.raises(ValueError, match="one label per item"):
        E.unit_browser({"a": torch.zeros(3, 2)}, labels=["only one"])


def test_map_explorer_caches_and_moves_the_peak():
    calls = []

    def compute(method, layer, target):
        calls.append((method, layer, target))
        maps = torch.zeros(3, 4, 4)
        for i in range(3):
            maps[i, i, target] = 1.0
        return maps

    ex = E.map_explorer(torch.rand(3, 3, 8, 8), compute, ["cam"], ["l"], ["a", "b"])
    assert "peak at (0, 0)" in ex.status.value
    ex.controls["image"].value = 2
    assert "peak at (2, 0)" in ex.status.value and len(calls) == 1  # same maps, no recomputation
    ex.controls["target"].value = 1
    assert "peak at (2, 1)" in ex.status.value and len(calls) == 2
    with pytest.raises(ValueError, match="at least one"):
        E.map_explorer(torch.rand(1, 3, 4, 4), compute, [], ["l"], ["a"])


def test_patching_and_steering_report_the_prediction_of_the_chosen_cell_or_strength():
    effect = torch.tensor([[0.0, 0.1], [0.2, 0.9]])
    ex = E.patching_explorer(effect, lambda r, c: {"paris": 1 - effect[r, c].item(), "rome": effect[r, c].item()},
                             ["L0", "L1"], ["a", "b"])
    assert "effect 0.100" in ex.status.value and "'paris' 0.90" in ex.status.value
    ex.controls["layer"].value = 1
    assert "effect 0.900" in ex.status.value and "'rome' 0.90" in ex.status.value
    with pytest.raises(ValueError, match="row and"):
        E.patching_explorer(effect, lambda r, c: {}, ["L0"], ["a", "b"])

    sig = lambda a: {"yes": float(1 / (1 + np.exp(-a))), "no": float(1 - 1 / (1 + np.exp(-a)))}
    st = E.steering_slider(sig, (-4.0, 4.0), step=1.0)
    assert "strength 0" in st.status.value
    st.controls["strength"].value = 4.0
    assert "'yes' 0.98" in st.status.value
    with pytest.raises(ValueError, match="low < high"):
        E.steering_slider(sig, (1.0, -1.0))


def test_spectrum_explorer_counts_the_planted_outlier(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(2000, 40, generator=gen, dtype=torch.float64)
    spiked = noise.clone()
    spiked[:, 0] *= 6.0  # one direction with far more variance than the noise
    ev = {name: torch.linalg.eigvalsh(torch.cov(x.T)) for name, x in [("noise", noise), ("spiked", spiked)]}
    ex = E.spectrum_explorer(ev, n=2000, label="checkpoint")
    assert "outliers 0" in ex.status.value
    ex.controls["checkpoint"].value = "spiked"
    assert "outliers 1" in ex.status.value
    monkeypatch.setenv("ACTIVATION_LAB_STATIC", "1")
    bundle = ex._repr_mimebundle_()
    assert set(bundle) == {"image/png", "text/plain"} and _png_ok(bundle["image/png"])
    assert "checkpoint noise" in bundle["text/plain"]  # the default state, not the current one
    monkeypatch.setenv("ACTIVATION_LAB_STATIC", "0")
    assert "application/vnd.jupyter.widget-view+json" in ex._repr_mimebundle_()
