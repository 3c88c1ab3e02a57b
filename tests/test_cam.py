"""helpers.explain.cam: parity with pytorch-grad-cam (every method it has) and Captum, batching, ViT-style
token maps, target checks, hook cleanup and bad names."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import helpers
from helpers import LayerNotFoundError
from helpers.explain import cam

pgc = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

LIBRARY = {"gradcam": pgc.GradCAM, "gradcam++": pgc.GradCAMPlusPlus, "hirescam": pgc.HiResCAM,
           "layercam": pgc.LayerCAM, "scorecam": pgc.ScoreCAM, "eigencam": pgc.EigenCAM}


class TinyNet(nn.Module):
    """Conv -> BN -> ReLU(inplace) -> conv -> ReLU -> GAP -> linear; 'features' is the CAM layer."""

    def __init__(self, n_classes: int = 5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.features = nn.Sequential(nn.Conv2d(8, 12, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(12, n_classes)

    def forward(self, x):
        return self.head(self.features(self.stem(x)).mean(dim=(2, 3)))


class TinyViT(nn.Module):
    """Patch embedding + CLS token + one transformer block; 'block' outputs tokens (B, 1 + 4*4, 16)."""

    def __init__(self, n_classes: int = 4):
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, 16))
        self.block = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, n_classes)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)                  # (B, 16, 16)
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], 1)   # (B, 17, 16)
        return self.head(self.block(tokens)[:, 0])


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = TinyNet().eval()
    x = torch.randn(6, 3, 16, 16)
    targets = torch.tensor([0, 1, 2, 3, 4, 0])  # distinct targets: a random net predicts one class for all
    return model, x, targets


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


def library_raw_map(lib_cls, model, layer, x, targets, reshape_transform=None):
    """pytorch-grad-cam's map before its normalisation/resizing, and its final (display) output."""
    lib = lib_cls(model, [layer], reshape_transform=reshape_transform)
    lib_targets = [ClassifierOutputTarget(int(t)) for t in targets]
    shown = lib(x, lib_targets)
    store = lib.activations_and_grads
    grads = store.gradients[0].numpy() if store.gradients else None
    raw = lib.get_cam_image(x, layer, lib_targets, store.activations[0].numpy(), grads, False)
    store.release()
    return torch.from_numpy(np.asarray(raw)), torch.from_numpy(shown)


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_parity_with_pytorch_grad_cam(setup, name):
    model, x, targets = setup
    ours = cam.METHODS[name](model, "features")(x, targets, relu=False)
    raw, shown = library_raw_map(LIBRARY[name], model, model.features, x, targets)
    if name == "eigencam":  # the library leaves the eigenvector's sign arbitrary; ours is fixed
        sign = torch.sign((ours * raw).flatten(1).sum(1))[:, None, None]
        raw = raw * sign
    assert ours.shape == (6, 8, 8)
    torch.testing.assert_close(ours, raw.float(), atol=1e-5, rtol=1e-4)
    if name != "eigencam":
        torch.testing.assert_close(cam.display(ours, x.shape[-2:]), shown, atol=1e-5, rtol=0)
    assert hook_count(model) == 0


def test_parity_with_captum_layer_gradcam(setup):
    from captum.attr import LayerGradCam

    model, x, targets = setup
    ref = LayerGradCam(model, model.features).attribute(x, target=targets, relu_attributions=True)[:, 0]
    torch.testing.assert_close(cam.GradCAM(model, "features")(x, targets), ref.detach(), atol=1e-6, rtol=1e-5)


def test_cam_equals_scaled_gradcam_and_hirescam(setup):
    # GAP + linear head: dy/dA_kij = W[c, k] / (h w), so CAM = h w Grad-CAM = h w HiResCAM
    model, x, targets = setup
    hw = 8 * 8
    c = cam.CAM(model, "features")(x, targets)
    torch.testing.assert_close(c, hw * cam.GradCAM(model, "features")(x, targets), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(c, hw * cam.HiResCAM(model, "features")(x, targets), atol=1e-5, rtol=1e-4)


def test_batched_equals_one_by_one_and_default_targets(setup):
    model, x, targets = setup
    for cls in (cam.GradCAM, cam.GradCAMPlusPlus, cam.EigenCAM, cam.ScoreCAM):
        explainer = cls(model, "features")
        batched = explainer(x, targets)[:3]
        single = torch.cat([explainer(x[i:i + 1], targets[i:i + 1]) for i in range(3)])
        torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)
    predicted = model(x).argmax(1)
    torch.testing.assert_close(cam.GradCAM(model, "features")(x), cam.GradCAM(model, "features")(x, predicted))


def test_no_parameter_gradients_and_grad_mode_restored(setup):
    model, x, targets = setup
    model.zero_grad(set_to_none=True)
    cam.GradCAM(model, "features")(x, targets)
    assert all(p.grad is None for p in model.parameters())
    assert torch.is_grad_enabled()
    with torch.no_grad():  # works inside no_grad too, and leaves it as it was
        cam.GradCAM(model, "features")(x, targets)
        assert not torch.is_grad_enabled()


def test_score_cam_channel_subset_and_small_batches(setup):
    model, x, targets = setup
    full = cam.ScoreCAM(model, "features", batch_size=5)(x, targets)
    torch.testing.assert_close(full, cam.ScoreCAM(model, "features", batch_size=1000)(x, targets))
    sub = cam.ScoreCAM(model, "features", channels=3)
    w = sub.weights(x, model.features(model.stem(x)).detach(), None, targets)
    assert ((w > 0).sum(1) == 3).all() and torch.allclose(w.sum(1), torch.ones(6))


def test_vit_token_maps_match_library():
    torch.manual_seed(1)
    model = TinyViT().eval()
    x = torch.randn(3, 3, 16, 16)
    targets = torch.tensor([0, 2, 3])
    grid = cam.tokens_to_grid(4, 4, prefix_tokens=1)
    ours = cam.GradCAM(model, "block", reshape_transform=grid)(x, targets, relu=False)
    raw, _ = library_raw_map(pgc.GradCAM, model, model.block, x, targets, reshape_transform=grid)
    assert ours.shape == (3, 4, 4)
    torch.testing.assert_close(ours, raw.float(), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="reshape_transform"):
        cam.GradCAM(model, "block")(x, targets)
    assert hook_count(model) == 0


def test_bad_inputs_raise_and_leave_no_hooks(setup):
    model, x, targets = setup
    with pytest.raises(LayerNotFoundError, match="features"):
        cam.GradCAM(model, "featurs")
    with pytest.raises(ValueError, match="one exact module name"):
        cam.GradCAM(model, "stem.*")
    explainer = cam.GradCAM(model, "features")
    with pytest.raises(ValueError, match="one integer class id per image: got 1 ids for a batch of 6"):
        explainer(x, targets[:1])        # pytorch-grad-cam would return 5 all-zero maps here
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        explainer(x, torch.full((6,), 9))
    with pytest.raises(ValueError, match="integer"):
        explainer(x, 3)
    with pytest.raises(ValueError, match="Valid"):
        cam.get("gradcam+++")
    assert cam.get("Grad-CAM++") is cam.GradCAMPlusPlus
    with pytest.raises(ValueError, match="nn.Linear"):
        cam.CAM(model, "features", fc="stem.0")
    assert hook_count(model) == 0 and torch.is_grad_enabled()


def test_hooks_removed_when_the_model_raises(setup):
    model, x, targets = setup
    explainer = cam.GradCAM(model, "features")
    with pytest.raises(RuntimeError):
        explainer(torch.randn(2, 4, 16, 16), torch.tensor([0, 1]))  # wrong channel count
    assert hook_count(model) == 0 and torch.is_grad_enabled()


def test_eigen_cam_sign_follows_mean_activation():
    torch.manual_seed(2)
    a = torch.rand(4, 10, 6, 6)
    a[:, :, :3] += 3.0                         # the top half is strongly active in every channel
    proj = cam.principal_projection(a)
    torch.testing.assert_close(cam.principal_projection(-(-a)), proj)
    assert (proj[:, :3].mean((1, 2)) > proj[:, 3:].mean((1, 2))).all()


def test_maps_utilities():
    maps = torch.rand(2, 4, 4) * 5
    unit = cam.normalize(maps)
    assert torch.allclose(unit.flatten(1).amax(1), torch.ones(2), atol=1e-6) and unit.min() == 0
    assert cam.upsample(maps, (8, 8)).shape == (2, 8, 8)
    assert cam.normalize(torch.zeros(1, 3, 3)).abs().max() == 0
    with pytest.raises(ValueError):
        cam.upsample(maps[0], (8, 8))
    with pytest.raises(ValueError):
        cam.tokens_to_grid(2, 2)(torch.rand(1, 6, 3))


def test_eigen_cam_uncentred_is_the_papers_svd():
    """center=False: the first right singular vector of the raw (positions x channels) matrix, as in the paper."""
    torch.manual_seed(3)
    a = torch.relu(torch.randn(3, 7, 5, 4)) + torch.rand(3, 7, 1, 1)     # non-negative, channel offsets
    for img in range(3):
        r = a[img].reshape(7, -1).T.double().numpy()                      # (20 positions, 7 channels), uncentred
        proj = r @ np.linalg.svd(r, full_matrices=False)[2][0]
        proj = proj if proj.sum() > 0 else -proj
        ours = cam.principal_projection(a[img:img + 1], center=False)[0].flatten().double().numpy()
        np.testing.assert_allclose(ours, proj, rtol=1e-4, atol=1e-5)
        assert (ours >= -1e-6).all()                                        # one sign for non-negative input
    centred = cam.principal_projection(a)                                   # the library's variant: zero mean
    assert centred.flatten(1).sum(1).abs().max() < 1e-4
    assert not torch.allclose(centred, cam.principal_projection(a, center=False), atol=1e-3)


def test_eigen_cam_center_option(setup):
    model, x, _ = setup
    uncentred = cam.EigenCAM(model, "features", center=False)
    assert "center=False" in repr(uncentred)
    with helpers.capture(model, "features") as acts:
        model(x)
    torch.testing.assert_close(uncentred(x), cam.principal_projection(acts["features"], center=False).clamp_min(0))
    torch.testing.assert_close(cam.EigenCAM(model, "features")(x),
                               cam.principal_projection(acts["features"]).clamp_min(0))
