"""The image generator of notebook 07 (``wild-generator``): a conv autoencoder whose upsampler leaves artefacts.

It is trained on ``wild`` images: two strided convs encode a 64x64 image to a 16x16x16 code, two stride-2
transposed convs decode it. A 3x3 transposed conv with stride 2 covers the output pixels unevenly (odd and even
positions receive different numbers of kernel taps), which leaves the checkerboard pattern such decoders are
known for; the narrow code also blurs fine texture. It is an autoencoder, not a diffusion model.

Example:
    >>> gen = WildGenerator()
    >>> gen(torch.rand(3, 3, 64, 64)).shape
    torch.Size([3, 3, 64, 64])
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from helpers.models.io import load_weights, save_weights


@dataclass
class GeneratorConfig:
    """Width of the autoencoder: ``width`` channels at 32x32, ``2 * width`` at 16x16, a ``latent``-channel code."""

    width: int = 32
    latent: int = 16

    def __post_init__(self) -> None:
        if self.width < 1 or self.latent < 1:
            raise ValueError(f"width and latent must be positive, got {self.width}, {self.latent}")


class WildGenerator(nn.Module):
    """Conv autoencoder: ``encoder`` (B, 3, 64, 64) -> (B, latent, 16, 16), ``decoder`` back to (B, 3, 64, 64).

    The decoder's transposed convs have kernel 3 and stride 2: odd output positions get 2x2 = 4 kernel taps per
    input channel, even ones 1 or 2, hence the checkerboard. Output in [0, 1] through a sigmoid.
    """

    def __init__(self, config: GeneratorConfig | None = None):
        super().__init__()
        self.config = c = config or GeneratorConfig()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c.width, 4, stride=2, padding=1), nn.ReLU(),  # (B, w, 32, 32)
            nn.Conv2d(c.width, 2 * c.width, 4, stride=2, padding=1), nn.ReLU(),  # (B, 2w, 16, 16)
            nn.Conv2d(2 * c.width, c.latent, 1),  # (B, latent, 16, 16): the bottleneck
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(c.latent, 2 * c.width, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),  # 32x32
            nn.ConvTranspose2d(2 * c.width, 3, 3, stride=2, padding=1, output_padding=1),  # (B, 3, 64, 64)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(self.encoder(x)))


def save_generator(model: WildGenerator, path: str | Path, info: dict) -> dict:
    """Write ``model`` to ``path`` (``.safetensors``) with its sidecar; returns the sidecar as written."""
    return save_weights(model, path, asdict(model.config), info)


def load_generator(path: str | Path, device: str | torch.device = "cpu", check: bool = True
                   ) -> tuple[WildGenerator, dict]:
    """Rebuild a :class:`WildGenerator` from a weight file and its sidecar; returns ``(model in eval mode, sidecar)``.

    The zoo's copy: ``helpers.zoo.load("wild-generator")``.

    Example:
        >>> from helpers.core.paths import ZOO_DIR
        >>> gen, info = load_generator(ZOO_DIR / "wild-generator" / "model.safetensors")
        >>> gen(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 3, 64, 64])
    """
    state, info = load_weights(path, check, fix="Retrain with `python zoo/train_fake_generator.py`.")
    model = WildGenerator(GeneratorConfig(**info["config"]))
    model.load_state_dict(state)
    return model.to(device).eval(), info
