"""helpers.faults: bit flips, weight faults that are always undone, clipped activations, the monitor, SpaNN, patches."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from helpers.faults import bitflip, clipping, monitor, patches, spann
from tests.conftest import hook_count


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).eval()


def exact_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_bits(model: nn.Module, saved: dict[str, torch.Tensor]) -> bool:
    # compare the raw bytes, so that a NaN or a -0.0 written back would count as a change
    return all(torch.equal(saved[k].view(torch.int32) if v.dtype == torch.float32 else saved[k],
                           v.view(torch.int32) if v.dtype == torch.float32 else v)
               for k, v in model.state_dict().items())


# ---- bits -------------------------------------------------------------------------------------------------

def test_flip_bits_float32_sign_exponent_mantissa():
    x = torch.tensor([1.0, 0.5, 1.0])
    out = bitflip.flip_bits(x, torch.tensor([31, 32 + 30, 64 + 0]))
    assert out[0] == -1.0
    assert out[1] == 0.5 * 2.0 ** 128 or torch.isclose(out[1], torch.tensor(2.0 ** 127))
    assert out[2] == 1.0 + 2.0 ** -23
    assert torch.equal(x, torch.tensor([1.0, 0.5, 1.0]))                      # the input is untouched


def test_flip_bits_int8_two_complement_and_twice_is_identity():
    q = torch.tensor([3, -1, 0], dtype=torch.int8)
    assert bitflip.flip_bits(q, torch.tensor([0, 15, 23])).tolist() == [2, 127, -128]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50, generator=g)
    pos = bitflip.random_bit_positions(50 * 32, 0.05, g)
    assert torch.equal(bitflip.flip_bits(bitflip.flip_bits(x, pos), pos).view(torch.int32), x.view(torch.int32))


def test_flip_bits_matches_python_struct_for_every_bit():
    import struct
    x = torch.tensor([0.3141])
    for bit in range(32):
        raw = struct.unpack("<I", struct.pack("<f", 0.3141))[0] ^ (1 << bit)
        expected = struct.unpack("<f", struct.pack("<I", raw))[0]
        got = bitflip.flip_bits(x, torch.tensor([bit])).item()
        assert (got == expected) or (np.isnan(got) and np.isnan(expected)), bit


def test_flip_bits_refuses_bad_positions_and_dtypes():
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        bitflip.flip_bits(torch.ones(2), torch.tensor([64]))
    with pytest.raises(ValueError, match="distinct"):
        bitflip.flip_bits(torch.ones(2), torch.tensor([3, 3]))
    with pytest.raises(TypeError, match="float32 or int8"):
        bitflip.flip_bits(torch.ones(2, dtype=torch.float64), torch.tensor([0]))


def test_random_bit_positions_distribution():
    g = torch.Generator().manual_seed(0)
    assert len(bitflip.random_bit_positions(1000, 0.0, g)) == 0
    assert bitflip.random_bit_positions(1000, 1.0, g).tolist() == list(range(1000))
    counts = [len(bitflip.random_bit_positions(100_000, 1e-3, g)) for _ in range(200)]
    assert abs(np.mean(counts) - 100) < 3 and 60 < np.var(counts) < 140          # Binomial(1e5, 1e-3): mean 100, variance ~100
    pos = bitflip.random_bit_positions(100_000, 1e-3, g)
    assert len(pos.unique()) == len(pos) and bool((pos[1:] > pos[:-1]).all())
    # positions spread uniformly: as many in the lower half as in the upper half
    many = torch.cat([bitflip.random_bit_positions(10_000, 1e-2, g) for _ in range(100)])
    assert abs((many < 5000).float().mean().item() - 0.5) < 0.03


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "often", None])
def test_fault_rate_outside_0_1_is_refused_with_the_range(bad):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bitflip.check_rate(bad)
    model = small_cnn()
    saved = exact_copy(model)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        with bitflip.weight_faults(model, bad):
            pass
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bitflip.activation_faults(bad)
    assert same_bits(model, saved)


def test_unknown_representation_and_names_are_refused():
    model = small_cnn()
    with pytest.raises(ValueError, match="float32"):
        with bitflip.weight_faults(model, 0.1, "int4"):
            pass
    with pytest.raises(KeyError, match="0.weight"):
        with bitflip.weight_faults(model, 0.1, names=["conv.weight"]):
            pass


# ---- weight faults never change the original model ------------------------------------------------------

def test_weight_faults_change_weights_inside_and_restore_them_exactly():
    model = small_cnn()
    saved = exact_copy(model)
    x = torch.rand(4, 3, 8, 8)
    before = model(x)
    with bitflip.weight_faults(model, 0.02, seed=3) as report:
        assert not same_bits(model, saved)
        assert report.n_flipped > 0 and set(report.bits) == set(bitflip.weight_names(model))
        assert "bias" not in " ".join(report.bits)
    assert same_bits(model, saved)
    assert torch.equal(model(x), before)


def test_weight_faults_restore_after_an_exception_inside_the_block():
    model = small_cnn()
    saved = exact_copy(model)
    with pytest.raises(RuntimeError, match="boom"):
        with bitflip.weight_faults(model, 0.5, seed=0):
            model(torch.rand(1, 3, 8, 8))
            raise RuntimeError("boom")
    assert same_bits(model, saved)


def test_weight_faults_restore_when_injection_itself_fails(monkeypatch):
    model = small_cnn()
    saved = exact_copy(model)
    calls = {"n": 0}
    real = bitflip.inject

    def fail_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise MemoryError("out of memory half way")
        return real(*args, **kwargs)

    monkeypatch.setattr(bitflip, "inject", fail_on_third)
    with pytest.raises(MemoryError):
        with bitflip.weight_faults(model, 0.5):
            pass
    assert same_bits(model, saved)


def test_weight_faults_same_seed_same_map_and_int8_is_quantized():
    model = small_cnn()
    with bitflip.weight_faults(model, 0.01, seed=5):
        first = exact_copy(model)
    with bitflip.weight_faults(model, 0.01, seed=5):
        assert same_bits(model, first)
    w = model[0].weight.detach().clone()
    with bitflip.weight_faults(model, 0.0, "int8"):
        q, scale = bitflip.quantize_int8(w)
        assert torch.allclose(model[0].weight, q.float() * scale)
        assert (model[0].weight - w).abs().max() <= scale / 2 + 1e-7


def test_int8_faults_stay_within_the_tensor_range_float32_faults_do_not():
    w = torch.randn(2000) * 0.1
    g = torch.Generator().manual_seed(0)
    faulty8, n8 = bitflip.inject(w, 0.05, "int8", generator=g)
    faulty32, n32 = bitflip.inject(w, 0.05, "float32", generator=g)
    assert n8 > 0 and n32 > 0
    assert faulty8.abs().max() <= w.abs().max() * (128 / 127) + 1e-6
    assert not torch.isfinite(faulty32).all() or faulty32.abs().max() > 1e30


def test_activation_faults_touch_only_the_chosen_rows():
    rows = torch.tensor([True, False, True])
    out = torch.rand(3, 50)
    edited = bitflip.activation_faults(0.2, rows=rows, generator=torch.Generator().manual_seed(0))(out)
    assert torch.equal(edited[1], out[1])
    assert not torch.equal(edited[0].view(torch.int32), out[0].view(torch.int32))
    with pytest.raises(ValueError, match="one bool per batch row"):
        bitflip.activation_faults(0.2, rows=torch.tensor([True]))(out)
    # int8 activations with a calibrated step: whatever flips, every value stays within [-128, 127] steps
    step = 1.0 / 127
    edited8 = bitflip.activation_faults(0.2, "int8", scale=step, generator=torch.Generator().manual_seed(1))(out)
    assert edited8.abs().max() <= 128 * step + 1e-6 and not torch.allclose(edited8, out, atol=step)


# ---- clipping ---------------------------------------------------------------------------------------------

def test_squash_and_saturate():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0, 3.0, float("nan"), float("inf")])
    assert clipping.squash(2.0)(x).tolist() == [0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0]
    assert clipping.saturate(2.0)(x).tolist() == [-1.0, 0.0, 1.0, 2.0, 2.0, 0.0, 2.0]
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="> 0"):
            clipping.squash(bad)


def test_profile_bounds_equal_the_manual_maximum_and_clipped_removes_hooks():
    model = small_cnn()
    x = torch.rand(30, 3, 8, 8)
    bounds = clipping.profile_bounds(model, ["1", "3"], x, batch=7)
    with torch.no_grad():
        first = model[1](model[0](x))
        second = model[3](model[2](first))
    assert bounds == pytest.approx({"1": first.max().item(), "3": second.max().item()})
    with clipping.clipped(model, bounds):
        assert torch.allclose(model(x), model.__class__.forward(model, x))   # clean inputs stay inside the bounds
    with pytest.raises(RuntimeError):
        with clipping.clipped(model, {"1": 1e-3}):
            raise RuntimeError("inside")
    assert hook_count(model) == 0
    with pytest.raises(ValueError, match="squash"):
        with clipping.clipped(model, bounds, mode="clamp"):
            pass


def test_squash_recovers_a_float32_exponent_fault_saturate_does_not():
    model = small_cnn()
    x = torch.rand(20, 3, 8, 8)
    bounds = clipping.profile_bounds(model, ["1", "3"], x)
    clean = model(x)
    with torch.no_grad():
        kernel = model[0].weight[0].flatten()
        i = int(kernel.argmax())                          # a positive weight: on positive pictures its channel explodes
        kernel[i] = bitflip.flip_bits(kernel[i].reshape(1), torch.tensor([30]))[0]
        model[0].weight[0].copy_(kernel.view_as(model[0].weight[0]))
        faulty = model(x)
        with clipping.clipped(model, bounds):
            squashed = model(x)
        with clipping.clipped(model, bounds, "saturate"):
            saturated = model(x)
    err = lambda y: (y - clean).abs().max().item()
    assert err(faulty) > 1e6 and err(squashed) < err(saturated) and err(squashed) < 10


# ---- monitor ----------------------------------------------------------------------------------------------

def test_activation_stats_and_monitor_bounds():
    acts = torch.randn(5, 4, 3, 3)
    stats = monitor.activation_stats(acts)
    flat = acts.flatten(1)
    assert torch.allclose(stats, torch.stack([flat.mean(1), flat.std(1), flat.amax(1)], 1))
    model = small_cnn()
    x = torch.rand(40, 3, 8, 8)
    mon = monitor.Monitor.fit(model, ["1", "3"], x)
    _, seen = mon.observe(model, x, batch=9)
    assert mon.score(seen).max() == 0                                # every calibration input is inside its own bounds
    assert mon.score(seen * 1000).min() > 0
    nan = seen.clone()
    nan[0, 0, 0] = float("nan")
    assert mon.score(nan)[0] == float("inf")
    with pytest.raises(ValueError, match="statistics must be"):
        mon.score(seen[:, :1])
    late = seen.clone()
    late[1, 1, 2] += 1e6                                             # only the second layer's maximum
    assert mon.first_alarm(late)[:2] == [None, "3"]
    wide = monitor.Monitor.fit(model, ["1", "3"], x, margin=0.5)
    assert torch.allclose(wide.high - wide.low, 2 * (mon.high - mon.low)) and bool((wide.low < mon.low).all())
    with pytest.raises(ValueError, match="margin"):
        monitor.Monitor.fit(model, ["1"], x, margin=-1)
    assert hook_count(model) == 0


# ---- SpaNN ------------------------------------------------------------------------------------------------

def test_grid_dbscan_equals_scikit_learn():
    from sklearn.cluster import DBSCAN
    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        on = torch.rand(1, 20, 20, generator=g) < 0.3 + 0.03 * trial
        mine = spann.grid_dbscan(on)[0]
        ys, xs = np.nonzero(on[0].numpy())
        fit = DBSCAN(eps=1.0, min_samples=4).fit(np.stack([ys, xs], 1))
        theirs, ours = fit.labels_, mine[ys, xs].numpy()
        assert ((theirs == -1) == (ours == -1)).all()                   # the same noise points
        core = fit.core_sample_indices_
        pairs = set(zip(theirs[core].tolist(), ours[core].tolist()))   # the same partition of the core points
        assert len(pairs) == len(set(theirs[core].tolist())) == len(set(ours[core].tolist()))
        assert len(set(theirs) - {-1}) == len(set(ours.tolist()) - {-1})


def test_threshold_features_count_clusters_distances_and_on_neurons():
    sal = torch.zeros(2, 16, 16)
    sal[0, 2:6, 2:6] = 1.0                # one 4x4 block
    sal[1, 2:6, 2:6] = 1.0
    sal[1, 10:13, 10:13] = 1.0            # and a 3x3 block
    sal += 0.01                           # everything is "on" at beta 0
    f = spann.threshold_features(sal, betas=(0.5,))
    assert f[:, 0, 0].tolist() == [1.0, 2.0] and f[:, 0, 3].tolist() == [16.0, 25.0]
    pts = torch.stack(torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij"), -1).reshape(-1, 2)
    d = torch.cdist(pts, pts)
    rms = (d.pow(2).sum() / (16 * 15)).sqrt()
    assert f[0, 0, 1].item() == pytest.approx(rms.item(), rel=1e-5) and f[0, 0, 2] == 0
    assert spann.threshold_features(sal).shape == (2, len(spann.BETAS), 4)


# ---- patches ----------------------------------------------------------------------------------------------

def test_paste_puts_the_patch_at_each_corner():
    images = torch.zeros(3, 3, 10, 10)
    patch = torch.arange(3 * 3 * 3, dtype=torch.float32).view(3, 3, 3) + 1
    where = torch.tensor([[0, 0], [7, 7], [2, 5]])
    out, masks = patches.paste(images, patch, where)
    for i, (r, c) in enumerate(where.tolist()):
        assert torch.equal(out[i, :, r:r + 3, c:c + 3], patch)
        assert masks[i].sum() == 9 and out[i].sum() == patch.sum()
    with pytest.raises(ValueError, match="inside"):
        patches.paste(images, patch, torch.tensor([[8, 0], [0, 0], [0, 0]]))


def test_train_patch_reaches_its_target_without_touching_the_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.AdaptiveMaxPool2d(1), nn.Flatten())   # logit k = max of channel k
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).view(2, 3, 1, 1))
        model[0].bias.zero_()
    saved = exact_copy(model)
    images = torch.rand(20, 3, 12, 12) * torch.tensor([1.0, 0.3, 0.3]).view(1, 3, 1, 1)   # reddish: class 0
    patch = patches.train_patch(model, images, target=1, size=3, steps=40, batch=8, lr=0.1)
    out, _ = patches.paste(images, patch, patches.random_positions(20, 12, 3))
    assert (model(out).argmax(1) == 1).float().mean() > 0.9
    assert (model(images).argmax(1) == 0).all()
    assert same_bits(model, saved) and all(p.grad is None for p in model.parameters())
