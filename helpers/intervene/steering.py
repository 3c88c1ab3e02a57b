"""Steering vectors as objects: fit from contrastive prompts, apply through :func:`helpers.edit`, save and load.

    vec = fit(model, "blocks.1", positive_ids, negative_ids, method="mean_diff")
    with vec.apply(model, alpha=4.0):          # every forward in the block is steered, also generate()
        logits = model(tokens)
    vec.save("happy.pt"); vec = SteeringVector.load("happy.pt")

A vector records the layer it was fitted at, the layer's width and a fingerprint of the model (class, parameter
count and a hash of a few weights). :meth:`SteeringVector.apply` refuses another model, another layer or a
width that does not match, before any hook is attached. Two ways to fit (``method``):

- ``"mean_diff"``: difference in means, mean h(pos) - mean h(neg) (ActAdd / CAA style);
- ``"pca"``: RepE's control vector, the first principal component of the paired differences h(pos_i) - h(neg_i).
  Each pair's order is flipped at random first (as RepE does) so the component is the axis the differences
  share and not their offset; the sign is chosen so that positives project higher, and the unit direction is
  scaled to the mean projection of the differences (our choice, so that ``alpha`` means the same for both).

Activations are read at one token position (default the last) of each prompt.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence, Union

import torch
from torch import nn

from helpers.core.capturing import capture
from helpers.core.editing import EditFn, add_vector, edit
from helpers.core.names import resolve_layers

Batch = Union[torch.Tensor, Sequence[torch.Tensor]]
METHODS = ("mean_diff", "pca")


def fingerprint(model: nn.Module) -> str:
    """A short identity of a model: class name, parameter count and a hash of its first and last weights.

    Example:
        >>> a, b = nn.Linear(3, 3), nn.Linear(3, 3)
        >>> fingerprint(a) == fingerprint(a), fingerprint(a) == fingerprint(b)
        (True, False)
    """
    params = list(model.parameters())
    h = hashlib.sha256()
    for p in (params[0], params[-1]) if params else ():
        h.update(p.detach().flatten()[:256].float().cpu().numpy().tobytes())
    n = sum(p.numel() for p in params)
    return f"{type(model).__name__}:{n}:{h.hexdigest()[:16]}"


def _rows(model: nn.Module, layer: str, batch: Batch, position: int,
          forward: Callable[[nn.Module, torch.Tensor], object]) -> torch.Tensor:
    """The layer's activation at ``position`` of every prompt, (N, d); prompts of one length run together."""
    seqs = list(batch) if not isinstance(batch, torch.Tensor) else list(batch.unbind(0))
    if any(s.dim() != 1 for s in seqs):
        raise ValueError("prompts must be an (N, T) tensor of token ids or a list of 1-D tensors, "
                         f"got items of shape {sorted({tuple(s.shape) for s in seqs})}")
    device = next(model.parameters()).device
    out: list[torch.Tensor] = [torch.empty(0)] * len(seqs)
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(seqs):
        by_len.setdefault(len(s), []).append(i)
    with torch.no_grad():
        for idx in by_len.values():
            x = torch.stack([seqs[i] for i in idx]).to(device)
            with capture(model, layer, stop=True) as acts:  # the rest of the forward is skipped
                forward(model, x)
            h = acts[layer][:, position].float().cpu()  # (n, d)
            for j, i in enumerate(idx):
                out[i] = h[j]
    return torch.stack(out)


def direction_from_pairs(pos: torch.Tensor, neg: torch.Tensor, method: str = "mean_diff",
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """A steering direction from paired activations ``pos``, ``neg`` (N, d) each; see the module docstring.

    Example:
        >>> pos = torch.tensor([[2., 0.], [4., 0.], [3., 0.]]); neg = torch.zeros(3, 2)
        >>> direction_from_pairs(pos, neg)
        tensor([3., 0.])
        >>> direction_from_pairs(pos, neg, "pca").abs().round(decimals=2)
        tensor([3., 0.])
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if pos.shape != neg.shape or pos.dim() != 2:
        raise ValueError(f"pos and neg must both be (N, d), got {tuple(pos.shape)} and {tuple(neg.shape)}")
    diff = (pos - neg).double()
    if method == "mean_diff":
        return diff.mean(0).float()
    if len(diff) < 2:
        raise ValueError("the pca method needs at least two pairs")
    flip = torch.randint(0, 2, (len(diff), 1), generator=generator, dtype=torch.float64) * 2 - 1
    signed = diff * flip
    _, _, vh = torch.linalg.svd(signed - signed.mean(0), full_matrices=False)
    u = vh[0]
    proj = diff @ u  # unflipped differences on the axis
    if proj.mean() < 0:
        u, proj = -u, -proj
    return (u * proj.mean()).float()


@dataclass
class SteeringVector:
    """A steering direction with the layer, width and model it belongs to (see the module docstring)."""

    vector: torch.Tensor  # (d,)
    layer: str
    model_id: str
    method: str = "mean_diff"
    meta: dict = field(default_factory=dict)

    @property
    def width(self) -> int:
        return int(self.vector.shape[-1])

    def check(self, model: nn.Module, layer: str | None = None) -> str:
        """Raise a ``ValueError`` unless the vector fits ``model`` at ``layer`` (default its own); return the layer."""
        layer = layer or self.layer
        got = fingerprint(model)
        if got != self.model_id:
            raise ValueError(f"This steering vector was fitted on model {self.model_id} (layer {self.layer!r}); "
                             f"the given model is {got}.")
        if layer != self.layer:
            raise ValueError(f"This steering vector was fitted at layer {self.layer!r}, not {layer!r}: "
                             f"fit a new one there.")
        resolve_layers(model, layer)  # raises LayerNotFoundError for an unknown name
        return layer

    def edit_fn(self, alpha: float = 1.0, positions=None) -> EditFn:
        """The edit function for :func:`helpers.edit` (adds ``alpha * vector``), refusing a wrong width."""
        inner = add_vector(self.vector, alpha, positions)
        width = self.width

        def fn(out: torch.Tensor) -> torch.Tensor:
            if out.shape[-1] != width:
                raise ValueError(f"The steering vector has width {width}, the layer's output {tuple(out.shape)}.")
            return inner(out)
        return fn

    @contextmanager
    def apply(self, model: nn.Module, alpha: float = 1.0, positions=None, layer: str | None = None) -> Iterator[None]:
        """Steer every forward pass of ``model`` inside the block (``model.generate`` too).

        ``layer`` (default the vector's own) is checked against the layer the vector was fitted at.

        Example:
            >>> net = nn.Sequential(nn.Linear(2, 2), nn.Identity())
            >>> v = SteeringVector(torch.ones(2), "0", fingerprint(net))
            >>> with v.apply(net, alpha=0.0):
            ...     y = net(torch.zeros(1, 2))
            >>> len(net[0]._forward_hooks)
            0
        """
        layer = self.check(model, layer)
        with edit(model, {layer: self.edit_fn(alpha, positions)}):
            yield

    def normalised(self) -> "SteeringVector":
        """The same vector scaled to unit norm."""
        return SteeringVector(self.vector / self.vector.norm(), self.layer, self.model_id, self.method, dict(self.meta))

    def random_like(self, seed: int = 0) -> "SteeringVector":
        """A random direction of the same norm, layer and model: the control every steering claim needs.

        Example:
            >>> v = SteeringVector(torch.tensor([3., 4.]), "0", "m")
            >>> round(v.random_like(1).vector.norm().item(), 4)
            5.0
        """
        g = torch.Generator().manual_seed(seed)
        r = torch.randn(self.width, generator=g)
        return SteeringVector(r / r.norm() * self.vector.norm(), self.layer, self.model_id, "random",
                              {"seed": seed})

    def save(self, path: Union[str, Path]) -> None:
        """Write the vector with its layer, model fingerprint, method and meta to ``path`` (torch format)."""
        torch.save({"vector": self.vector.cpu(), "layer": self.layer, "model_id": self.model_id,
                    "method": self.method, "meta": self.meta}, path)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "SteeringVector":
        """Read a vector written by :meth:`save`."""
        d = torch.load(path, map_location="cpu", weights_only=True)
        return cls(d["vector"], d["layer"], d["model_id"], d["method"], d["meta"])


def fit(model: nn.Module, layer: str, positive: Batch, negative: Batch, method: str = "mean_diff",
        position: int = -1, seed: int = 0,
        forward: Callable[[nn.Module, torch.Tensor], object] = lambda m, x: m(x)) -> SteeringVector:
    """Fit a steering vector at ``layer`` from token ids of paired positive and negative prompts.

    ``positive`` and ``negative`` are (N, T) long tensors or lists of 1-D tensors (lengths may differ; pairs
    are matched by index). ``seed`` draws RepE's pair flips. Example:
        >>> from helpers.models.gpt import GPT, GPTConfig
        >>> _ = torch.manual_seed(0); m = GPT(GPTConfig(vocab_size=10, n_ctx=8, d_model=16, n_layer=2, n_head=2))
        >>> v = fit(m, "blocks.0", torch.tensor([[1, 2, 3]]), torch.tensor([[1, 2, 4]]))
        >>> v.layer, v.width
        ('blocks.0', 16)
    """
    names = resolve_layers(model, layer)
    if len(names) != 1:
        raise ValueError(f"fit one layer at a time; {layer!r} matches {names}")
    pos = _rows(model, names[0], positive, position, forward)
    neg = _rows(model, names[0], negative, position, forward)
    g = torch.Generator().manual_seed(seed)
    v = direction_from_pairs(pos, neg, method, g)
    return SteeringVector(v, names[0], fingerprint(model), method, {"n_pairs": len(pos), "position": position})
