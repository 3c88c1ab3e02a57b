"""A small GPT in the style of nanoGPT, with module names chosen so that hooks read well.

Module names (for capture / patching):

    embed, pos_embed          token and position embeddings
    resid_embed               identity: the residual stream before block 0, (B, T, d)
    blocks.{i}                output = residual stream after block i, (B, T, d)
    blocks.{i}.ln1            LayerNorm before attention
    blocks.{i}.attn           attention output added to the stream, (B, T, d)
    blocks.{i}.attn.q/k/v     linear maps, (B, T, d) each (heads are d // n_head wide slices)
    blocks.{i}.attn.pattern   identity on the attention probabilities, (B, n_head, T, T)
    blocks.{i}.attn.proj      output map; its *input* is the concatenated head outputs, (B, T, d)
    blocks.{i}.resid_mid      identity: the stream after attention, before the MLP, (B, T, d)
    blocks.{i}.ln2            LayerNorm before the MLP
    blocks.{i}.mlp            MLP output added to the stream, (B, T, d)
    blocks.{i}.mlp.fc         (B, T, d_mlp) pre-activations
    blocks.{i}.mlp.act        (B, T, d_mlp) activations (GELU or ReLU)
    blocks.{i}.mlp.proj       (B, T, d)
    ln_f, unembed             final LayerNorm and the map to logits, (B, T, V)

Example:
    >>> import torch
    >>> model = GPT(GPTConfig(vocab_size=50, n_ctx=16))
    >>> model(torch.zeros(2, 5, dtype=torch.long)).shape  # (B, T) -> (B, T, V)
    torch.Size([2, 5, 50])
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn

from helpers.models.io import load_weights, save_weights

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


@dataclass
class GPTConfig:
    vocab_size: int = 256
    n_ctx: int = 64  # longest sequence the position embedding covers
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    d_mlp: int = 512
    act: str = "gelu"  # "gelu" or "relu"


class Attention(nn.Module):
    """Causal multi-head self-attention, written out (no fused kernel) so the pattern can be hooked."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.d_model % cfg.n_head:
            raise ValueError(f"d_model={cfg.d_model} is not divisible by n_head={cfg.n_head}")
        self.n_head = cfg.n_head
        self.q = nn.Linear(cfg.d_model, cfg.d_model)
        self.k = nn.Linear(cfg.d_model, cfg.d_model)
        self.v = nn.Linear(cfg.d_model, cfg.d_model)
        self.pattern = nn.Identity()
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.register_buffer("mask", torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        hs = C // self.n_head
        # (B, T, C) -> (B, nh, T, hs)
        q, k, v = (m(x).view(B, T, self.n_head, hs).transpose(1, 2) for m in (self.q, self.k, self.v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)  # (B, nh, T, T)
        att = att.masked_fill(~self.mask[:T, :T], float("-inf"))
        att = self.pattern(att.softmax(-1))  # (B, nh, T, T), rows sum to 1
        z = (att @ v).transpose(1, 2).reshape(B, T, C)  # (B, T, nh * hs): head outputs side by side
        return self.proj(z)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.act not in ACTIVATIONS:
            raise ValueError(f"unknown activation {cfg.act!r}; valid: {sorted(ACTIVATIONS)}")
        self.fc = nn.Linear(cfg.d_model, cfg.d_mlp)
        self.act = ACTIVATIONS[cfg.act]()
        self.proj = nn.Linear(cfg.d_mlp, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.act(self.fc(x)))  # (B, T, d) -> (B, T, d_mlp) -> (B, T, d)


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln1(x)), then + mlp(ln2(.))."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.resid_mid = nn.Identity()
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resid_mid(x + self.attn(self.ln1(x)))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """tokens (B, T) long -> logits (B, T, V). See the module docstring for the layer names."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_embed = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.resid_embed = nn.Identity()
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        # nanoGPT init: N(0, 0.02), and the maps that write into the residual stream scaled down
        # by sqrt(2 * n_layer) so the stream's variance does not grow with depth at init.
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * cfg.n_layer) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.dtype != torch.long:
            raise ValueError(f"tokens must be a (B, T) long tensor, got {tuple(tokens.shape)} {tokens.dtype}")
        B, T = tokens.shape
        if T > self.cfg.n_ctx:
            raise ValueError(f"sequence length {T} exceeds the context n_ctx={self.cfg.n_ctx}")
        pos = torch.arange(T, device=tokens.device)
        x = self.resid_embed(self.embed(tokens) + self.pos_embed(pos))  # (B, T, d)
        for block in self.blocks:
            x = block(x)  # (B, T, d)
        return self.unembed(self.ln_f(x))  # (B, T, V)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def save_gpt(model: GPT, path: str | Path, dtype: torch.dtype = torch.float32, extra: dict | None = None) -> dict:
    """Write the weights (cast to ``dtype``) and the sidecar with the config and ``extra`` (:mod:`helpers.models.io`).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.safetensors"
        >>> record = save_gpt(GPT(GPTConfig(vocab_size=10, n_layer=1, d_model=8, n_head=2, n_ctx=4)), path, extra={"step": 0})
        >>> record["step"], load_gpt(path).cfg.d_model
        (0, 8)
    """
    return save_weights(model, path, asdict(model.cfg), extra, dtype=dtype)


def load_gpt(path: str | Path, device: str | torch.device = "cpu", check: bool = True) -> GPT:
    """Rebuild a GPT from a file written by :func:`save_gpt` (weights cast to float32, eval mode).

    With ``check`` the file's SHA-256 must equal the one in its sidecar.
    """
    state, record = load_weights(path, check, fix="Retrain with `make zoo`, or restore it with `git checkout data/zoo`.")
    model = GPT(GPTConfig(**record["config"]))
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.to(device).eval()
