"""``wild-captioner``: ``wild-cnn``'s last block as visual tokens, and a small causal decoder that writes the caption.

The sequence the decoder reads is ``[v_0 .. v_63, <bos>, w_1, .., w_T]``: 64 visual tokens (the 16x16 last-block
maps of the CNN average-pooled to 8x8, raster order, each projected to ``d_model`` plus a learned position), then the
caption's word embeddings. Attention is causal over the whole sequence (visual tokens included), and one unembedding
maps *every* position's final state to word logits, as in a multimodal LLM -- which is what token activation maps
read. The loss only trains the word positions.

Module names (for capture):

    cnn.blocks            the CNN's conv blocks (frozen during training), (B, 128, 16, 16)
    visual_pool           2x2 average pooling, (B, 128, 8, 8)
    visual_proj           (B, 64, d) visual tokens
    embed                 word embeddings
    blocks.{i}            the decoder's residual stream after block i, (B, 64 + T, d) (GPT blocks of helpers.models.gpt)
    ln_f, unembed         (B, 64 + T, V) logits at every position

Example:
    >>> import torch
    >>> from helpers.data.captions import VOCAB, encode
    >>> model = Captioner(CaptionerConfig(vocab=VOCAB))
    >>> tokens = encode("a red shirt on a coffee photo")[None, :3]  # <bos> a red
    >>> model(torch.rand(1, 3, 64, 64), tokens).shape  # 64 visual positions + 3 words
    torch.Size([1, 67, 40])
    >>> model.word_logits(torch.rand(1, 3, 64, 64), tokens).shape  # the word positions only
    torch.Size([1, 3, 40])
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from helpers.models.cnn import WildCNN, WildCNNConfig
from helpers.models.gpt import Block, GPTConfig
from helpers.models.io import load_weights, save_weights


@dataclass
class CaptionerConfig:
    vocab: tuple[str, ...] = ("<pad>", "<bos>", "<eos>")  # the words, with these three first (helpers.data.captions)
    grid: int = 8  # visual tokens per side after pooling the CNN's 16x16 maps
    d_model: int = 96
    n_layer: int = 2
    n_head: int = 4
    d_mlp: int = 384
    max_len: int = 14
    cnn: dict = field(default_factory=lambda: asdict(WildCNNConfig()))

    def __post_init__(self) -> None:
        self.vocab = tuple(self.vocab)

    @property
    def n_visual(self) -> int:
        return self.grid * self.grid


class Captioner(nn.Module):
    """images (B, 3, 64, 64) and tokens (B, T) -> logits (B, 64 + T, V) at every position."""

    def __init__(self, cfg: CaptionerConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or CaptionerConfig()
        self.cnn = WildCNN(WildCNNConfig(**cfg.cnn))
        self.visual_pool = nn.AdaptiveAvgPool2d(cfg.grid)
        self.visual_proj = nn.Linear(self.cnn.config.channels[-1], cfg.d_model)
        self.visual_pos = nn.Parameter(torch.randn(cfg.n_visual, cfg.d_model) * 0.02)
        self.embed = nn.Embedding(len(cfg.vocab), cfg.d_model)
        self.pos_embed = nn.Embedding(cfg.max_len, cfg.d_model)
        gpt = GPTConfig(vocab_size=len(cfg.vocab), n_ctx=cfg.n_visual + cfg.max_len, n_layer=cfg.n_layer,
                        n_head=cfg.n_head, d_model=cfg.d_model, d_mlp=cfg.d_mlp)
        self.blocks = nn.ModuleList([Block(gpt) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, len(cfg.vocab), bias=False)

    def visual_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, 64, 64) -> (B, grid*grid, d) in raster order (row by row)."""
        return self.project(self.visual_pool(self.cnn.blocks(images)))

    def project(self, maps: torch.Tensor) -> torch.Tensor:
        """Pooled CNN maps (B, C, g, g) -> visual tokens (B, g*g, d)."""
        return self.visual_proj(maps.flatten(2).transpose(1, 2)) + self.visual_pos

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.decode(self.visual_tokens(images), tokens)

    def decode(self, visual: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Visual tokens (B, g*g, d) and words (B, T) -> logits (B, g*g + T, V)."""
        if tokens.dim() != 2 or tokens.dtype != torch.long:
            raise ValueError(f"tokens must be a (B, T) long tensor, got {tuple(tokens.shape)} {tokens.dtype}")
        T = tokens.shape[1]
        if T > self.cfg.max_len:
            raise ValueError(f"{T} tokens exceed max_len={self.cfg.max_len}")
        words = self.embed(tokens) + self.pos_embed(torch.arange(T, device=tokens.device))
        x = torch.cat([visual, words], 1)  # (B, 64 + T, d)
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_f(x))  # (B, 64 + T, V)

    def word_logits(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, V): the logits at the word positions; position t predicts token t + 1."""
        return self(images, tokens)[:, self.cfg.n_visual:]

    @torch.no_grad()
    def generate(self, images: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
        """Greedy captions: (B, L) long, ``<bos>`` first, padded with ``<eos>`` after the end."""
        max_len = max_len or self.cfg.max_len
        bos, eos = self.cfg.vocab.index("<bos>"), self.cfg.vocab.index("<eos>")
        tokens = torch.full((len(images), 1), bos, dtype=torch.long, device=images.device)
        done = torch.zeros(len(images), dtype=torch.bool, device=images.device)
        for _ in range(max_len - 1):
            nxt = self.word_logits(images, tokens)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
            tokens = torch.cat([tokens, nxt[:, None]], 1)
            done |= nxt == eos
            if done.all():
                break
        return tokens


def save_captioner(model: Captioner, path: str | Path, info: dict) -> dict:
    """Write ``model`` and its sidecar (:mod:`helpers.models.io`); returns the sidecar as written."""
    return save_weights(model, path, asdict(model.cfg), info)


def load_captioner(path: str | Path, *, check: bool = True) -> tuple[Captioner, dict]:
    """``(model in eval mode, sidecar)`` of a file written by :func:`save_captioner`; checks the SHA-256."""
    state, info = load_weights(path, check, fix="Retrain with `make zoo`, or restore it with `git checkout data/zoo`.")
    model = Captioner(CaptionerConfig(**info["config"]))
    model.load_state_dict(state)
    return model.eval(), info
