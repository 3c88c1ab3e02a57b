"""edit() interventions and extract() streaming to disk."""
from __future__ import annotations

import json
import os
import shutil
from collections import namedtuple

import numpy as np
import pytest
import torch
from torch import nn

from helpers import (ActivationStore, CaptureTooLargeError, LayerNotFoundError, ablate, add_vector, capture,
                     edit, extract, patch_from, replace_with)
from helpers.core.hooks import replace_first_tensor
from tests.conftest import hook_count


def test_add_vector_on_a_tuple_output_block(gpt2):
    base = hook_count(gpt2)
    tokens = torch.randint(0, 101, (2, 7))
    v = torch.randn(64)
    with torch.no_grad():
        with capture(gpt2, "transformer.h.0") as clean:
            gpt2(tokens)
        with edit(gpt2, {"transformer.h.0": add_vector(v, alpha=3.0, positions=[2])}), \
                capture(gpt2, "transformer.h.1", inputs=True) as acts:
            gpt2(tokens)
    expected = clean["transformer.h.0"].clone()
    expected[:, 2] += 3.0 * v
    torch.testing.assert_close(acts.inputs["transformer.h.1"], expected)
    assert hook_count(gpt2) == base


def test_patch_ablate_replace(mlp):
    a, b = torch.randn(4, 6), torch.randn(4, 6)
    with torch.no_grad():
        with capture(mlp, ["2", "4"]) as clean:
            mlp(a)
        with edit(mlp, {"2": patch_from(clean["2"])}):
            patched = mlp(b)
        torch.testing.assert_close(patched, clean["4"])  # everything after layer 2 follows the clean run
        with edit(mlp, {"1": ablate()}), capture(mlp, "2") as acts:
            mlp(a)
        torch.testing.assert_close(acts["2"], mlp[2].bias.expand(4, 16))
        mean = torch.randn(16)
        with edit(mlp, {"2": ablate(mean=mean)}), capture(mlp, "3") as acts:
            mlp(a)
        torch.testing.assert_close(acts["3"], torch.tanh(mean).expand(4, 16))
        with edit(mlp, {"4": replace_with(torch.tensor([1.0, 2.0, 3.0]))}):
            out = mlp(a)
    torch.testing.assert_close(out, torch.tensor([1.0, 2.0, 3.0]).expand(4, 3))
    assert hook_count(mlp) == 0


def test_edit_cleanup_on_bad_name_bad_shape_and_exception(mlp):
    with pytest.raises(LayerNotFoundError):
        with edit(mlp, {"0": ablate(), "9": ablate()}):
            pass
    assert hook_count(mlp) == 0
    with pytest.raises(ValueError, match="must return a tensor of shape"):
        with edit(mlp, {"0": lambda out: out[:, :3]}):
            mlp(torch.randn(2, 6))
    assert hook_count(mlp) == 0
    with pytest.raises(TypeError, match="must be a function"):
        with edit(mlp, {"0": 3.0}):
            pass
    with pytest.raises(RuntimeError, match="boom"):
        with edit(mlp, {"*": lambda out: out}):
            raise RuntimeError("boom")
    assert hook_count(mlp) == 0


def test_replace_first_tensor_keeps_container_types():
    Out = namedtuple("Out", "hidden extra")
    new = torch.ones(2)
    assert replace_first_tensor(Out(torch.zeros(2), 5), new).hidden is new
    assert replace_first_tensor((torch.zeros(2), torch.zeros(3)), new)[0] is new
    assert replace_first_tensor([None, torch.zeros(2)], new)[1] is new


def _batches(n_batches=5, size=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 6, generator=gen), torch.zeros(size)) for _ in range(n_batches)]


def test_extract_matches_capture_and_writes_manifest(mlp, tmp_path):
    data = _batches()
    store = extract(mlp, data, ["1", "3"], out=str(tmp_path / "acts"), progress=False)
    assert store.complete and store.layers == ["1", "3"]
    x = torch.cat([b[0] for b in data])
    with torch.no_grad(), capture(mlp, ["1", "3"]) as acts:
        mlp(x)
    torch.testing.assert_close(store["1"], acts["1"])
    torch.testing.assert_close(store["3"], acts["3"])
    manifest = json.loads((tmp_path / "acts" / "manifest.json").read_text())
    assert manifest["n"] == 20 and manifest["layers"]["3"]["shape"] == [20, 16]
    assert manifest["model"] == "Sequential" and manifest["layers"]["1"]["dtype"] == "float32"
    assert "ActivationStore" in repr(store)
    assert hook_count(mlp) == 0


def test_extract_resumes_after_an_interruption(mlp, tmp_path):
    data = _batches()
    calls = {"n": 0}

    def counting_forward(model, batch, device):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # the user stops the run during batch 4
        model(batch[0])

    out = str(tmp_path / "acts")
    with pytest.raises(KeyboardInterrupt):
        extract(mlp, data, "3", out=out, forward=counting_forward, progress=False)
    assert ActivationStore(out).manifest["done"] == 12
    calls["n"] = 10
    store = extract(mlp, data, "3", out=out, forward=counting_forward, progress=False)
    # one forward to read the shapes, then only the two missing batches
    assert calls["n"] == 13
    with torch.no_grad(), capture(mlp, "3") as acts:
        mlp(torch.cat([b[0] for b in data]))
    torch.testing.assert_close(store["3"], acts["3"])
    assert hook_count(mlp) == 0


def test_extract_positions_dtype_and_loader(gpt2, tmp_path):
    tokens = torch.randint(0, 101, (10, 8))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(tokens), batch_size=4)
    store = extract(gpt2, loader, "transformer.h.*", out=str(tmp_path / "g"), positions=-1,
                    dtype=torch.float16, progress=False)
    assert store["transformer.h.2"].shape == (10, 64) and store["transformer.h.2"].dtype == torch.float16
    with torch.no_grad(), capture(gpt2, "transformer.h.2") as acts:
        gpt2(tokens)
    torch.testing.assert_close(store["transformer.h.2"], acts["transformer.h.2"][:, -1].half())


def test_extract_refuses_what_the_disk_cannot_hold(mlp, tmp_path, monkeypatch):
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**6, 10**6 - 100, 100))
    out = tmp_path / "acts"
    with pytest.raises(CaptureTooLargeError, match="needs about"):
        extract(mlp, _batches(), ["1", "3"], out=str(out), progress=False)
    assert not list(out.glob("*.npy"))  # refused before writing anything
    assert hook_count(mlp) == 0


def test_extract_bad_inputs(mlp, tmp_path):
    with pytest.raises(LayerNotFoundError):
        extract(mlp, _batches(), "7", out=str(tmp_path / "a"), progress=False)
    with pytest.raises(ValueError, match="pass n="):
        extract(mlp, iter(_batches()), "1", out=str(tmp_path / "b"), progress=False)
    with pytest.raises(ValueError, match="cannot be stored"):
        extract(mlp, _batches(), "1", out=str(tmp_path / "c"), dtype=torch.bfloat16, progress=False)
    with pytest.raises(FileNotFoundError, match="helpers.extract"):
        ActivationStore(str(tmp_path / "nothing"))
    assert np.all(np.isfinite(extract(mlp, _batches(1), "1", out=str(tmp_path / "d"), progress=False)["1"].numpy()))
    assert os.path.exists(tmp_path / "d" / "1.npy")
