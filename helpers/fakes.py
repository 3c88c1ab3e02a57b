"""Real or generated? A small image generator with known artefacts, real/generated sets with ground truth, a detector.

The generator (``wild-generator``) is a convolutional autoencoder trained on ``wild`` images: two strided convs
encode a 64x64 image to a 16x16x16 code, two stride-2 transposed convs decode it. A 3x3 transposed conv with
stride 2 covers the output pixels unevenly (odd and even positions receive different numbers of kernel taps),
which leaves the checkerboard pattern such decoders are known for; the narrow code also blurs fine texture. Both
are the "artefacts" a detector can learn.

A :class:`FakeSet` holds real images and generated ones of two kinds: *full* fakes (the generator's whole output,
as in CIFAKE) and *window* fakes (the generator rewrote one random square of a real image, as inpainting or
splicing does). Every image carries its object mask and the mask of the generated region, so "does the detector
look at the artefacts or at the object?" becomes a measurement.

Example:
    >>> from helpers import fakes
    >>> from helpers.data import wild
    >>> gen, info = fakes.load_generator()
    >>> ds = fakes.make_fakes(wild(200, "test", seed=0), gen, seed=0)
    >>> ds.images.shape, ds.is_fake.float().mean().item()
    (torch.Size([200, 3, 64, 64]), 0.5)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from helpers.models.cnn import WildCNN, WildCNNConfig
from helpers.paths import ZOO_DIR
from helpers.zoo.info import ModelInfo, sha256_of, verify_sha256

if TYPE_CHECKING:
    from helpers.data import WildSet

GENERATOR_DIR = ZOO_DIR / "wild-generator"
KINDS = ("real", "full", "window")  # FakeSet.kinds indexes this tuple


# --------------------------------------------------------------------------------------------------------------
# the generator


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


def save_generator(model: WildGenerator, folder: str | Path, info: dict) -> dict:
    """Write ``model.safetensors`` and ``info.json`` (``info`` + config + SHA-256) into ``folder``; return the info."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.safetensors"
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"config": json.dumps(asdict(model.config))})
    info = {**info, "config": asdict(model.config), "params": sum(p.numel() for p in model.parameters()),
            "weights": path.name, "sha256": sha256_of(path)}
    (folder / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def load_generator(folder: str | Path = GENERATOR_DIR, device: str | torch.device = "cpu"
                   ) -> tuple[WildGenerator, ModelInfo]:
    """Load the committed ``wild-generator`` (SHA-256 checked); returns ``(model in eval mode, ModelInfo)``.

    Example:
        >>> gen, info = load_generator()
        >>> gen(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 3, 64, 64])
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    path = folder / "model.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"The generator's weights are not at {path}. Train them with "
                                f"`python zoo/train_fake_generator.py`.")
    meta = json.loads((folder / "info.json").read_text())
    verify_sha256(path, meta["sha256"], "wild-generator", "Retrain with `python zoo/train_fake_generator.py`.")
    model = WildGenerator(GeneratorConfig(**meta["config"]))
    model.load_state_dict(load_file(str(path)))
    info = ModelInfo("wild-generator", ["encoder", "decoder"], None,
                     provenance={k: v for k, v in meta.items() if k != "config"})
    return model.to(device).eval(), info


@torch.no_grad()
def generate(generator: nn.Module, images: torch.Tensor, batch: int = 250) -> torch.Tensor:
    """The generator's output for ``images`` (N, 3, 64, 64), in batches without gradients, on ``images``' device.

    Each batch runs on the generator's device (a GPU if it is there) and comes back.
    """
    if len(images) == 0:
        return images.clone()
    dev = next(generator.parameters()).device
    return torch.cat([generator(images[i:i + batch].to(dev)).to(images.device) for i in range(0, len(images), batch)])


# --------------------------------------------------------------------------------------------------------------
# real and generated images with ground truth


@dataclass
class FakeSet:
    """Real and generated images with everything needed to check where a detector looks; tensors share dim N.

    Fields:
        images: (N, 3, 64, 64) float in [0, 1], what the detector sees.
        is_fake: (N,) int64, 1 for generated (full or window), 0 for real; the detector's target.
        kinds: (N,) int64 index into ``KINDS`` ("real", "full", "window").
        regions: (N, 64, 64) bool, the pixels the generator produced: all for "full", a square for "window",
            none for "real". The ground-truth location of the artefacts.
        masks: (N, 64, 64) bool, the object (the Fashion-MNIST item) in the image.
        sources: (N, 3, 64, 64) the real image each one was made from (equal to ``images`` for real ones).
        targets: (N,) int64 the object's class in the ``wild`` training classes (for the shape classifier).
    """

    images: torch.Tensor
    is_fake: torch.Tensor
    kinds: torch.Tensor
    regions: torch.Tensor
    masks: torch.Tensor
    sources: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.is_fake[i]

    def subset(self, index: torch.Tensor) -> "FakeSet":
        """The images at ``index`` (a LongTensor or bool mask), as a new FakeSet."""
        return FakeSet(**{k: v[index] for k, v in vars(self).items()})

    def kind(self, name: str) -> "FakeSet":
        """Only the images of one kind: "real", "full" or "window"."""
        if name not in KINDS:
            raise ValueError(f"unknown kind {name!r}; valid: {list(KINDS)}")
        return self.subset(self.kinds == KINDS.index(name))

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={int((self.kinds == i).sum())}" for i, k in enumerate(KINDS))
        return f"FakeSet(n={len(self)}: {counts}; images {tuple(self.images.shape)})"


def random_windows(n: int, size: int = 64, side: tuple[int, int] = (24, 40),
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, size, size) bool masks, each one square of a random side in ``side`` (inclusive) at a random place.

    Example:
        >>> w = random_windows(3, side=(10, 10))
        >>> w.sum((1, 2)).tolist()
        [100, 100, 100]
    """
    lo, hi = side
    if not 1 <= lo <= hi <= size:
        raise ValueError(f"side must satisfy 1 <= low <= high <= {size}, got {side}")
    sides = torch.randint(lo, hi + 1, (n,), generator=generator)
    x0 = (torch.rand(n, generator=generator) * (size - sides + 1)).long()  # top-left corner, inside the image
    y0 = (torch.rand(n, generator=generator) * (size - sides + 1)).long()
    pos = torch.arange(size)
    cols = (pos >= x0[:, None]) & (pos < (x0 + sides)[:, None])  # (n, size)
    rows = (pos >= y0[:, None]) & (pos < (y0 + sides)[:, None])
    return rows[:, :, None] & cols[:, None, :]


def make_fakes(real: "WildSet", generator: nn.Module, *, window_fraction: float = 0.5, real_fraction: float = 0.5,
               side: tuple[int, int] = (24, 40), seed: int = 0) -> FakeSet:
    """Turn a ``wild`` set into a real/generated set: the first ``real_fraction`` stays real, the rest is generated.

    Of the generated half, a fraction ``window_fraction`` are *window* fakes (the generator's output pasted into
    one random square of the source, a splice with a known location), the rest *full* fakes (the whole output).
    Fakes and real images come from different source pictures, so no real image has its own fake in the set.

    Example:
        >>> from helpers.data import wild
        >>> ds = make_fakes(wild(40, "test", seed=0), WildGenerator(), seed=0)
        >>> ds
        FakeSet(n=40: real=20, full=10, window=10; images (40, 3, 64, 64))
    """
    for name, value in (("window_fraction", window_fraction), ("real_fraction", real_fraction)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    n = len(real.images)
    n_real = round(real_fraction * n)
    n_fake = n - n_real
    n_window = round(window_fraction * n_fake)
    g = torch.Generator().manual_seed(int(seed))
    size = real.images.shape[-1]
    src = real.images[n_real:]  # (F, 3, S, S), the pictures the fakes are made from
    out = generate(generator, src)
    # regions: full fakes first, then window fakes
    regions = torch.ones(n_fake, size, size, dtype=torch.bool)
    regions[n_fake - n_window:] = random_windows(n_window, size, side, g)
    fake = torch.where(regions[:, None], out, src)  # generated pixels inside the region, the source outside
    kinds = torch.tensor([0] * n_real + [1] * (n_fake - n_window) + [2] * n_window)
    return FakeSet(
        images=torch.cat([real.images[:n_real], fake]),
        is_fake=(kinds > 0).long(),
        kinds=kinds,
        regions=torch.cat([torch.zeros(n_real, size, size, dtype=torch.bool), regions]),
        masks=real.masks.clone(),
        sources=real.images.clone(),
        targets=real.targets.clone(),
    )


def split(ds: FakeSet, train_fraction: float = 0.75, seed: int = 0) -> tuple[FakeSet, FakeSet]:
    """A random ``(train, held_out)`` split of ``ds`` (stratified by kind, so both halves have every kind)."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    g = torch.Generator().manual_seed(int(seed))
    train, held = [], []
    for k in range(len(KINDS)):
        idx = (ds.kinds == k).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        cut = round(train_fraction * len(idx))
        train.append(idx[:cut])
        held.append(idx[cut:])
    return ds.subset(torch.cat(train)), ds.subset(torch.cat(held))


# --------------------------------------------------------------------------------------------------------------
# where are the artefacts, and where does a map look


def artefact_map(images: torch.Tensor, sources: torch.Tensor, kernel: int = 3) -> torch.Tensor:
    """Per-pixel artefact energy (B, H, W): the high-pass part of ``images - sources``, squared, summed over RGB.

    The high-pass (residual minus its ``kernel`` x ``kernel`` local mean) keeps checkerboards and lost texture and
    drops slow colour shifts. Zero where the image equals its source.

    Example:
        >>> x = torch.rand(2, 3, 8, 8)
        >>> artefact_map(x, x).abs().max().item()
        0.0
    """
    if images.shape != sources.shape or images.dim() != 4:
        raise ValueError(f"images and sources must both be (B, C, H, W), got {tuple(images.shape)} and "
                         f"{tuple(sources.shape)}")
    r = images - sources  # (B, C, H, W)
    high = r - F.avg_pool2d(r, kernel, stride=1, padding=kernel // 2, count_include_pad=False)
    return high.pow(2).sum(1)


def log_spectrum(images: torch.Tensor) -> torch.Tensor:
    """log |FFT| of each image's grey level, mean removed: (B, H, W), zero frequency at [0, 0], Nyquist at [H//2].

    A stride-2 upsampler's checkerboard shows up at the Nyquist frequencies ``[H//2, W//2]``, ``[H//2, 0]`` and
    ``[0, W//2]``; a stride-4 one also at the quarter frequencies.
    """
    grey = images.mean(1)  # (B, H, W)
    grey = grey - grey.mean((1, 2), keepdim=True)
    return torch.fft.fft2(grey).abs().clamp_min(1e-8).log()


# --------------------------------------------------------------------------------------------------------------
# the detector


def detector_config() -> WildCNNConfig:
    """The detector: the zoo's ``wild-cnn`` design, narrower (16-32-32 channels, one conv per block), 2 classes.

    ``blocks.2`` is its 16x16 layer for class activation maps, as in ``wild-cnn``.
    """
    return WildCNNConfig(channels=(16, 32, 32), convs=(1, 1, 1), strides=(2, 2, 1), n_classes=2)


@dataclass
class DetectorTrainConfig:
    """How :func:`train_detector` trains: ``steps`` Adam steps on random batches of ``batch`` images, with a
    one-cycle schedule peaking at ``lr``."""

    steps: int = 200
    batch: int = 32
    lr: float = 3e-3
    seed: int = 0


def train_detector(images: torch.Tensor, labels: torch.Tensor, config: DetectorTrainConfig | None = None,
                   model: nn.Module | None = None) -> tuple[nn.Module, list[float]]:
    """Train a real-vs-generated classifier (label 1 = generated); returns ``(model in eval mode, losses)``.

    Example:
        >>> x, y = torch.rand(8, 3, 64, 64), torch.tensor([0, 1] * 4)
        >>> net, losses = train_detector(x, y, DetectorTrainConfig(steps=2, batch=4))
        >>> len(losses)
        2
    """
    cfg = config or DetectorTrainConfig()
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images (and some), got {len(images)} and {len(labels)}")
    if cfg.steps < 1 or cfg.batch < 1:
        raise ValueError(f"steps and batch must be positive, got {cfg.steps} and {cfg.batch}")
    g = torch.Generator().manual_seed(int(cfg.seed))
    if model is None:
        torch.manual_seed(cfg.seed)  # the initial weights
        model = WildCNN(detector_config())
    model = model.to(images.device).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    # warm up, then anneal to ~0: the last steps barely move the weights, so the BatchNorm running statistics
    # (what eval mode uses) describe the final network, and the result depends much less on the last batches
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.15)
    losses = []
    for _ in range(cfg.steps):
        idx = torch.randint(len(images), (cfg.batch,), generator=g).to(images.device)
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return model.eval(), losses


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 500) -> float:
    """Top-1 accuracy of ``model`` on ``images``."""
    preds = torch.cat([model(images[i:i + batch]).argmax(1) for i in range(0, len(images), batch)])
    return (preds == labels).float().mean().item()
