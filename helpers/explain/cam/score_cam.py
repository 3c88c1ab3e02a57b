"""Score-CAM (Wang et al., 2020): weight each channel by the model's score on the input masked with
that channel's (upsampled, min-max scaled) activation map. Gradient-free; C extra forwards per image."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from helpers.explain.cam.base import BaseCAM, ReshapeTransform

MASK_EPS = 1e-8  # min-max scaling of a constant map gives 0 / eps = 0 (pytorch-grad-cam's value)


class ScoreCAM(BaseCAM):
    """``s_k = f_c(x * M_k)``, ``w = softmax_k(s)``, map = ReLU(sum_k w_k A_k).

    ``f_c`` is the target logit and the softmax runs over channels, as in pytorch-grad-cam (the paper
    subtracts a baseline score; the softmax makes that constant irrelevant).

    Args:
        batch_size: masked images per forward pass. All (image, channel) pairs of the batch are
            chunked together, so small feature maps do not waste forwards.
        channels: use only this many channels per image (those with the largest activation variance;
            the others get weight 0); None = all, the exact method.

    Channels whose map is constant give an all-zero mask, hence the same input (zeros) and the same
    score: they share one forward pass instead of one each. The result is exactly the same. Masks are
    made chunk by chunk, so memory stays at ``batch_size`` images (pytorch-grad-cam builds all C masked
    copies of an image at once: 300 MB for 512 channels at 224 px).

    Example:
        >>> maps = ScoreCAM(model, "blocks.2", batch_size=128)(images)   # doctest: +SKIP
    """

    uses_gradients = False
    needs_scores = True

    def __init__(self, model: nn.Module, target_layer: str, reshape_transform: Optional[ReshapeTransform] = None,
                 batch_size: int = 64, channels: Optional[int] = None):
        super().__init__(model, target_layer, reshape_transform)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if channels is not None and channels < 1:
            raise ValueError(f"channels must be None (all) or >= 1, got {channels}")
        self.batch_size = batch_size
        self.channels = channels

    def weights(self, images, activations, grads, targets) -> torch.Tensor:
        b, c = activations.shape[:2]
        flat = activations.flatten(2)                                   # (B, C, hw)
        lo, hi = flat.amin(dim=2), flat.amax(dim=2)                      # (B, C)
        chosen = torch.ones(b, c, dtype=torch.bool, device=flat.device)
        if self.channels is not None and self.channels < c:
            top = flat.var(dim=2).topk(self.channels, dim=1).indices
            chosen = torch.zeros_like(chosen).scatter_(1, top, True)
        varying = chosen & (hi > lo)
        scores = torch.full((b, c), float("nan"), dtype=torch.float32, device=flat.device)
        # one forward of the zero image per batch covers every constant channel (mask 0 -> input 0)
        constant = chosen & ~varying
        if constant.any():
            zero_logits = self.model(torch.zeros_like(images[:1]))[0]    # (K,)
            scores[constant] = zero_logits[targets][:, None].expand(b, c)[constant].float()
        pairs = varying.nonzero()                                        # (N, 2): (image, channel)
        for start in range(0, len(pairs), self.batch_size):
            img, ch = pairs[start:start + self.batch_size].unbind(1)
            maps = activations[img, ch][:, None]                         # (n, 1, h, w)
            # align_corners=True: the upsampling pytorch-grad-cam uses for Score-CAM masks
            masks = F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=True)
            m_lo = masks.flatten(1).amin(1)[:, None, None, None]
            m_hi = masks.flatten(1).amax(1)[:, None, None, None]
            masks = (masks - m_lo) / (m_hi - m_lo + MASK_EPS)            # (n, 1, H, W) in [0, 1]
            masked = images[img] * masks                                 # (n, C_in, H, W)
            if masked.ndim == 4:
                # channels-last inputs take the faster convolution kernels on CPU (about 1.3x here); same values
                masked = masked.contiguous(memory_format=torch.channels_last)
            logits = self.model(masked)                                  # (n, K)
            scores[img, ch] = logits.gather(1, targets[img][:, None])[:, 0].float()
        scores = scores.masked_fill(~chosen, float("-inf"))             # excluded channels: weight 0
        return torch.softmax(scores, dim=1).to(activations.dtype)       # (B, C)
