"""Engine defects of issue 10 (section 2) and the engine paths nothing tested (section 4).

Each test here failed on the code before the fix; the comment above it says how.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import helpers
from helpers import LayerNotFoundError, ablate, add_vector, capture, edit, extract, layers, setup
from tests.conftest import hook_count

from helpers.core import budget
from helpers.explain import cam


@pytest.fixture
def cnn():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))
    return net.eval()


# ------------------------------------------------------------------ overlapping edits
# before: the later spec silently replaced the earlier one for layer "0"
def test_overlapping_edit_specs_are_refused_naming_layer_and_both_specs(mlp):
    v = torch.ones(16)
    with pytest.raises(ValueError) as err:
        with edit(mlp, {"0": ablate(), "*": add_vector(v)}):
            pytest.fail("the block must not run")
    message = str(err.value)
    assert "'0'" in message and "'*'" in message and "layer" in message
    assert hook_count(mlp) == 0
    # two globs that share a layer are refused too; disjoint specs still work
    with pytest.raises(ValueError, match="'2'"):
        with edit(mlp, {"2": ablate(), "?": ablate()}):  # '?' matches every one-character name
            pass
    x = torch.randn(3, 6)
    with torch.no_grad(), edit(mlp, {"0": ablate(), "2": ablate()}), capture(mlp, "1") as acts:
        out = mlp(x)
    assert torch.equal(acts["1"], torch.zeros(3, 16))  # both edits applied
    torch.testing.assert_close(out, mlp[4].bias.expand(3, 3))
    assert hook_count(mlp) == 0


def test_nested_edits_compose_outer_first(mlp):
    """The documented way to apply two edits to one layer: nest them; the outer one runs first."""
    x = torch.randn(3, 6)
    with torch.no_grad():
        with capture(mlp, "0") as clean:
            mlp(x)
        with edit(mlp, {"0": ablate()}), edit(mlp, {"0": add_vector(torch.ones(16))}), capture(mlp, "1") as acts:
            mlp(x)
        torch.testing.assert_close(acts["1"], torch.ones(3, 16))  # zero, then + 1
        with edit(mlp, {"0": add_vector(torch.ones(16))}), edit(mlp, {"0": ablate()}), capture(mlp, "1") as acts:
            mlp(x)
        torch.testing.assert_close(acts["1"], torch.zeros(3, 16))  # + 1, then zero
    assert not torch.equal(clean["0"], torch.zeros(3, 16))


# ------------------------------------------------------------------ nested stop
# before: the inner plain capture caught the outer capture's StopForward, so the outer block went on
def test_plain_capture_inside_a_stopping_capture_does_not_swallow_its_stop(mlp):
    x = torch.randn(2, 6)
    after_inner = []
    with capture(mlp, "2", stop=True) as outer:
        with capture(mlp, "4") as inner:
            mlp(x)
            pytest.fail("the forward was stopped at layer 2")
        after_inner.append("ran")  # must not run: the outer block ends with its forward pass
    assert after_inner == []
    assert outer["2"].shape == (2, 16) and "4" not in inner.outputs
    assert hook_count(mlp) == 0


def test_stopping_capture_inside_a_stopping_capture_each_catches_its_own(mlp):
    x = torch.randn(2, 6)
    reached = []
    with capture(mlp, "0", stop=True) as outer:  # layer 0 runs first: the outer stop comes first
        with capture(mlp, "2", stop=True):
            mlp(x)
        reached.append("inner end")
    assert reached == [] and outer["0"].shape == (2, 16)
    with capture(mlp, "4", stop=True) as outer:  # here the inner one stops first and the outer block goes on
        with capture(mlp, "2", stop=True) as inner:
            mlp(x)
        reached.append("after inner")
        mlp(x)
    assert reached == ["after inner"] and inner["2"].shape == (2, 16) and outer["4"].shape == (2, 3)
    assert hook_count(mlp) == 0


def test_cam_stop_and_capture_stop_do_not_catch_each_other(cnn):
    x = torch.rand(2, 3, 8, 8)
    # Eigen-CAM stops at its own layer ("1"): a capture of a later layer never runs, its block goes on
    with torch.no_grad(), capture(cnn, "6") as acts:
        maps = cam.EigenCAM(cnn, "1")(x)
    assert maps.shape == (2, 8, 8) and "6" not in acts.outputs
    # a stopping capture of an earlier layer ends its block even from inside a CAM call
    after = []
    with capture(cnn, "0", stop=True) as early:
        cam.EigenCAM(cnn, "3")(x)
        after.append("ran")
    assert after == [] and early["0"].shape == (2, 4, 8, 8)
    assert hook_count(cnn) == 0


# ------------------------------------------------------------------ setup threads
@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# before: ACTIVATION_LAB_THREADS overrode the explicit argument; a bad value raised "invalid literal for int()"
def test_explicit_threads_win_over_the_environment(monkeypatch, restore_threads):
    monkeypatch.setenv("ACTIVATION_LAB_THREADS", "2")
    setup(device="cpu", threads=1, quiet=True)
    assert torch.get_num_threads() == 1
    setup(device="cpu", quiet=True)  # no argument: the environment decides
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", ["two", "-1", "1.5"])
def test_bad_thread_environment_names_the_variable_and_valid_values(monkeypatch, restore_threads, bad):
    monkeypatch.setenv("ACTIVATION_LAB_THREADS", bad)
    with pytest.raises(ValueError) as err:
        setup(device="cpu", quiet=True)
    message = str(err.value)
    assert "ACTIVATION_LAB_THREADS" in message and repr(bad) in message and "auto" in message
    assert "invalid literal" not in message


# ------------------------------------------------------------------ modules as layers
# before: TypeError: 'Linear' object is not iterable (or "names must be strings" for a Sequential)
def test_capture_accepts_modules_and_mixed_lists(resnet):
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad(), capture(resnet, resnet.layer4) as by_module:  # a Sequential: iterable, but one layer
        resnet(x)
    with torch.no_grad(), capture(resnet, "layer4") as by_name:
        resnet(x)
    assert list(by_module) == ["layer4"]
    torch.testing.assert_close(by_module["layer4"], by_name["layer4"], rtol=0, atol=0)
    with torch.no_grad(), capture(resnet, [resnet.fc, "layer1", resnet.layer2[0].conv1]) as mixed:
        resnet(x)
    assert list(mixed) == ["layer1", "layer2.0.conv1", "fc"]  # model order, as for names
    assert hook_count(resnet) == 0


def test_a_module_outside_the_model_is_a_clear_error(mlp):
    stranger = nn.Linear(6, 16)
    with pytest.raises(LayerNotFoundError, match="not a submodule"):
        with capture(mlp, stranger):
            pass
    with pytest.raises(LayerNotFoundError, match="not a submodule"):
        with edit(mlp, {stranger: ablate()}):
            pass
    with pytest.raises(ValueError, match="the model itself"):
        with capture(mlp, mlp):
            pass
    assert hook_count(mlp) == 0


def test_edit_extract_layers_and_cams_accept_modules(mlp, cnn, tmp_path):
    x = torch.randn(4, 6)
    with torch.no_grad(), edit(mlp, {mlp[0]: ablate()}), capture(mlp, mlp[2]) as acts:
        mlp(x)
    torch.testing.assert_close(acts["2"], mlp[2].bias.expand(4, 16))
    store = extract(mlp, [x], [mlp[1], "3"], out=str(tmp_path / "acts"), progress=False)
    assert store.layers == ["1", "3"]
    assert layers(mlp, pattern=mlp[2]).names() == ["2"]
    images = torch.rand(2, 3, 8, 8)
    for method in (cam.GradCAM, cam.GradCAMPlusPlus, cam.HiResCAM, cam.LayerCAM, cam.EigenCAM):
        by_module, by_name = method(cnn, cnn[3]), method(cnn, "3")
        assert by_module.target_layer == "3"
        torch.testing.assert_close(by_module(images, [0, 1]), by_name(images, [0, 1]))
    torch.testing.assert_close(cam.CAM(cnn, cnn[3], fc=cnn[6])(images, [0, 1]), cam.CAM(cnn, "3", fc="6")(images, [0, 1]))
    score = cam.ScoreCAM(cnn, cnn[3], batch_size=4)
    torch.testing.assert_close(score(images, [0, 1]), cam.ScoreCAM(cnn, "3", batch_size=4)(images, [0, 1]))
    with pytest.raises(LayerNotFoundError, match="not a submodule"):
        cam.GradCAM(cnn, nn.Conv2d(4, 6, 3))
    assert hook_count(mlp) == 0 and hook_count(cnn) == 0


# ------------------------------------------------------------------ positions on a CNN
# before: positions indexed dim 1 whatever the layout: on (B, C, H, W) it silently picked channels
def test_positions_on_a_feature_map_is_refused(resnet, mlp, tmp_path):
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\).*channels"):
        with torch.no_grad(), capture(resnet, "layer1", positions=0):
            resnet(x)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\).*channels"):
        with torch.no_grad(), edit(resnet, {"layer1": add_vector(torch.ones(64, 1, 1), positions=[0])}):
            resnet(x)
    with pytest.raises(ValueError, match=r"\(B, T, d\)"):  # (B, d): dim 1 holds features, not tokens
        with torch.no_grad(), capture(mlp, "0", positions=-1):
            mlp(torch.randn(2, 6))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\).*channels"):
        extract(resnet, [x], "layer1", out=str(tmp_path / "a"), positions=-1, progress=False)
    assert hook_count(resnet) == 0 and hook_count(mlp) == 0


def test_positions_along_a_named_dimension(resnet, gpt2):
    from helpers.core.positions import Along
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad(), capture(resnet, "layer1", positions=Along(3, [0, 2])) as picked:
        resnet(x)
    with torch.no_grad(), capture(resnet, "layer1") as whole:
        resnet(x)
    torch.testing.assert_close(picked["layer1"], whole["layer1"][:, :, :, [0, 2]], rtol=0, atol=0)
    with torch.no_grad(), edit(resnet, {"layer1": ablate(positions=Along(-1, 0))}), capture(resnet, "layer1") as cut:
        resnet(x)
    assert (cut["layer1"][..., 0] == 0).all() and torch.equal(cut["layer1"][..., 1:], whole["layer1"][..., 1:])
    # on a (B, T, d) stream a plain index and Along(1, ...) are the same tokens
    tokens = torch.randint(0, 101, (2, 6))
    with torch.no_grad(), capture(gpt2, "transformer.h.0", positions=[1, 4]) as plain, \
            capture(gpt2, "transformer.h.1", positions=Along(1, [1, 4])) as named:
        gpt2(tokens)
    assert plain["transformer.h.0"].shape == (2, 2, 64) and named["transformer.h.1"].shape == (2, 2, 64)
    with pytest.raises(ValueError, match="batch"):
        Along(0, 1)


# ------------------------------------------------------------------ inputs-only capture
# before: "Layer '2' was requested but has not run yet" although it had run
def test_inputs_only_capture_says_what_was_kept(mlp):
    x = torch.randn(3, 6)
    with torch.no_grad(), capture(mlp, "1") as full:
        mlp(x)
    with torch.no_grad(), capture(mlp, "2", outputs=False, inputs=True) as acts:
        mlp(x)
    torch.testing.assert_close(acts.inputs["2"], full["1"], rtol=0, atol=0)  # layer 2 reads layer 1's output
    with pytest.raises(KeyError) as err:
        acts["2"]
    message = str(err.value)
    assert "outputs=False" in message and "acts.inputs" in message and "not run" not in message
    with capture(mlp, "2", outputs=False, grads=True) as grads_only:
        mlp(x).sum().backward()
    with pytest.raises(KeyError, match="acts.grads"):
        grads_only["2"]
    assert grads_only.grads["2"].shape == (3, 16)
    mlp.zero_grad(set_to_none=True)


# ------------------------------------------------------------------ hooks: rollback
def test_attaching_hooks_rolls_back_when_the_third_registration_fails(mlp, monkeypatch):
    calls = []
    original = nn.Module.register_forward_hook

    def flaky(self, *args, **kwargs):
        calls.append(self)
        if len(calls) == 3:
            raise RuntimeError("hook registration failed")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "register_forward_hook", flaky)
    for context in (lambda: capture(mlp, "*"), lambda: edit(mlp, {"*": ablate()})):
        calls.clear()
        with pytest.raises(RuntimeError, match="registration failed"):
            with context():
                pytest.fail("the block must not run")
        assert len(calls) == 3  # two hooks were attached before the failure ...
        assert hook_count(mlp) == 0  # ... and removed again


# ------------------------------------------------------------------ default memory budget
def test_default_memory_budget_is_half_the_free_memory(mlp, monkeypatch):
    monkeypatch.setattr(budget, "available_bytes", lambda device="cpu": 2000)
    assert budget.default_budget("cpu") == 1000
    with torch.no_grad(), capture(mlp, "0") as acts:  # (3, 16) float32 = 192 bytes: fits in 1000
        mlp(torch.randn(3, 6))
    assert acts["0"].shape == (3, 16)
    with pytest.raises(helpers.CaptureTooLargeError, match="limit is 1000 B"):  # (20, 16) = 1280 bytes
        with torch.no_grad(), capture(mlp, "0"):
            mlp(torch.randn(20, 6))
    assert hook_count(mlp) == 0


# ------------------------------------------------------------------ helpers.__all__
def test_every_name_in_all_exists_and_no_function_shadows_a_module():
    import importlib
    import pkgutil
    for name in helpers.__all__:
        assert hasattr(helpers, name), f"helpers.__all__ names {name!r} but helpers has no such attribute"
    for info in pkgutil.iter_modules(helpers.__path__):
        value = getattr(helpers, info.name, None)
        if value is None:
            continue
        assert value is importlib.import_module(f"helpers.{info.name}"), (
            f"helpers.{info.name} is {type(value).__name__}, hiding the module helpers/{info.name}")
