"""helpers.setup (devices, seeds, threads) and the plotting functions."""
from __future__ import annotations

import os
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from helpers import pick_device
from helpers import plot
from helpers import setup
from helpers.core.budget import CaptureTooLargeError, check_fits, format_bytes


def test_device_choices_and_errors():
    assert pick_device("cpu").type == "cpu"
    assert pick_device(torch.device("cpu")) == torch.device("cpu")  # what setup() returns is accepted
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="valid: 'auto', 'cpu'"):
        pick_device("tpu")
    with pytest.raises(TypeError):
        pick_device(0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda")


def test_setup_is_reproducible_and_prints_one_line(capsys):
    setup(device="cpu", seed=5)
    a = (torch.rand(3), np.random.rand(3))
    setup(device="cpu", seed=5)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) == 2 and "device cpu" in lines[0] and "seed 5" in lines[0]
    with pytest.raises(ValueError, match="seed"):
        setup(device="cpu", seed=-1)


def test_threads_explicit_and_env_override(monkeypatch):
    before = torch.get_num_threads()
    setup(device="cpu", threads=1, quiet=True)
    assert torch.get_num_threads() == 1
    monkeypatch.setenv("ACTIVATION_LAB_THREADS", "2")
    setup(device="cpu", quiet=True)  # no threads argument: the environment decides
    assert torch.get_num_threads() == 2
    setup(device="cpu", threads=1, quiet=True)  # an explicit argument wins over the environment
    assert torch.get_num_threads() == 1
    monkeypatch.setenv("ACTIVATION_LAB_THREADS", "auto")  # the env can hand the choice to the timing
    setup(device="cpu", quiet=True)
    assert 1 <= torch.get_num_threads() <= (os.cpu_count() or 1)
    monkeypatch.delenv("ACTIVATION_LAB_THREADS")
    setup(device="cpu", threads="auto", quiet=True)
    assert torch.get_num_threads() >= 1
    with pytest.raises(ValueError, match="threads"):
        setup(device="cpu", threads=0, quiet=True)
    torch.set_num_threads(before)


def test_memory_messages():
    assert format_bytes(3 * 2**30) == "3.00 GiB"
    with pytest.raises(CaptureTooLargeError, match="needs about 2.00 KiB but the limit is 1.00 KiB"):
        check_fits(2048, 1024, "x", "")


def test_plots_return_figures():
    figs = [
        plot.histograms({"a": torch.randn(50), "b": torch.randn(50)}),
        plot.image_grid(torch.rand(3, 3, 8, 8), titles=["a", "b", "c"], cols=2),
        plot.heatmap_overlay(torch.rand(3, 16, 16), torch.rand(4, 4), title="map"),
        plot.curves({"x": [1.0, 2.0, 4.0]}, logy=True),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    assert len(figs[1].axes) == 4 and figs[1].axes[0].get_title() == "a"


def test_curves_plot_each_series_against_x():
    fig = plot.curves({"a": [1.0, 2.0, 4.0], "b": [3.0, 0.5, 1.0]}, x=[10, 20, 40], xlabel="step")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["a", "b"]
    for line, ys in zip(ax.lines, ([1.0, 2.0, 4.0], [3.0, 0.5, 1.0])):
        np.testing.assert_array_equal(line.get_xdata(), [10, 20, 40])
        np.testing.assert_array_equal(line.get_ydata(), ys)
    assert ax.get_xlabel() == "step"
    default = plot.curves({"a": [5.0, 6.0]}).axes[0].lines[0]  # without x: 0, 1, 2, ...
    np.testing.assert_array_equal(default.get_xdata(), [0, 1])


def test_setup_gives_numpy_blas_the_same_thread_count():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numpy as np

    np.ones((2, 2)) @ np.ones((2, 2))  # load the BLAS
    before = torch.get_num_threads()
    try:
        setup(device="cpu", seed=0, threads=1, quiet=True)
        blas = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
        assert blas and all(p["num_threads"] == 1 for p in blas), blas
    finally:
        torch.set_num_threads(before)
