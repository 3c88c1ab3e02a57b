"""Class activation maps at any layer, batched, with gradients only down to that layer.

    from helpers import cam
    explainer = cam.GradCAM(model, target_layer="blocks.2")
    maps = explainer(images, targets=None)             # (B, h, w), ReLU'd, not normalised; None = predicted class
    maps_px = cam.upsample(maps, size=images.shape[-2:])   # (B, H, W)
    unit = cam.normalize(maps)                         # per-map min-max to [0, 1]

Methods (one small module each over :class:`BaseCAM`): CAM, GradCAM, GradCAMPlusPlus, HiResCAM,
ScoreCAM, EigenCAM, LayerCAM; ``METHODS`` maps lower-case names to classes. ViT-style token
layers: ``reshape_transform=cam.tokens_to_grid(h, w)``.
"""
from helpers.explain.cam.base import BaseCAM
from helpers.explain.cam.eigen_cam import EigenCAM, principal_projection
from helpers.explain.cam.grad_cam import GradCAM
from helpers.explain.cam.grad_cam_plusplus import GradCAMPlusPlus, plusplus_weights
from helpers.explain.cam.hirescam import HiResCAM
from helpers.explain.cam.layer_cam import LayerCAM
from helpers.explain.cam.maps import display, normalize, tokens_to_grid, upsample
from helpers.explain.cam.original_cam import CAM
from helpers.explain.cam.score_cam import ScoreCAM

METHODS: dict[str, type[BaseCAM]] = {
    "cam": CAM, "gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "hirescam": HiResCAM,
    "scorecam": ScoreCAM, "eigencam": EigenCAM, "layercam": LayerCAM,
}


def get(name: str) -> type[BaseCAM]:
    """The class for a method name (case and '-'/'_' ignored), e.g. ``get("Grad-CAM++")``."""
    key = name.lower().replace("-", "").replace("_", "").replace(" ", "")
    if key not in METHODS:
        raise ValueError(f"Unknown CAM method {name!r}. Valid: {', '.join(METHODS)}")
    return METHODS[key]


__all__ = ["BaseCAM", "CAM", "EigenCAM", "GradCAM", "GradCAMPlusPlus", "HiResCAM", "LayerCAM", "METHODS",
           "ScoreCAM", "display", "get", "normalize", "plusplus_weights", "principal_projection", "tokens_to_grid", "upsample"]
