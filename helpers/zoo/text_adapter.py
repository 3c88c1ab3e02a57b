"""What a lesson needs from a decoder language model, found from its architecture: :class:`TextModel`.

Works for the zoo's GPTs (``tinyworld-gpt``) and for Hugging Face decoders (GPT-2, Llama/SmolLM2, GPT-NeoX,
Mistral-style) without a table of names: the blocks are the longest list of identical modules; inside a
block, attention and MLP are the children whose class or name says so; the final norm is the norm after
the blocks; the unembedding is the model's output embedding (or the last linear map onto the vocabulary).

Example:
    >>> from helpers.zoo import load
    >>> model, info = load("random:gpt2", device="cpu")
    >>> lm = TextModel.wrap(model, info, spec="random:gpt2", is_default=False)
    >>> lm.blocks[0], lm.attn[0], lm.mlp_down[0], lm.final_norm, lm.unembed
    ('transformer.h.0', 'transformer.h.0.attn', 'transformer.h.0.mlp.c_proj', 'transformer.ln_f', 'lm_head')
"""
from __future__ import annotations

import inspect
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from helpers.core.linear_maps import is_linear
from helpers.data import tinyworld
from helpers.zoo.info import ModelInfo


class UnsupportedModelError(ValueError):
    """The adapter cannot find in a model the parts a lesson needs; the message says what it found."""


def find_block_list(model: nn.Module) -> tuple[str, list[str]]:
    """The longest ModuleList/Sequential whose children share one class and have children: ``(name, child names)``.

    Example:
        >>> from helpers.models.gpt import GPT, GPTConfig
        >>> find_block_list(GPT(GPTConfig(n_layer=2)))
        ('blocks', ['blocks.0', 'blocks.1'])
    """
    best: tuple[str, list[str]] = ("", [])
    for name, module in model.named_modules():
        if isinstance(module, (nn.ModuleList, nn.Sequential)) and len(module) > len(best[1]):
            children = list(module.named_children())
            if len({type(c) for _, c in children}) == 1 and list(children[0][1].children()):
                best = (name, [f"{name}.{n}" if name else n for n, _ in children])
    return best


def _child(block: nn.Module, words: tuple[str, ...]) -> str | None:
    for name, child in block.named_children():
        label = f"{name} {type(child).__name__}".lower()
        # a real submodule (it has children), not a norm or dropout whose name mentions attention or the MLP
        if any(w in label for w in words) and list(child.children()) and not any(w in label for w in ("norm", "drop")):
            return name
    return None


def _name_of(model: nn.Module, target: nn.Module | None) -> str | None:
    if target is None:
        return None
    return next((name for name, module in model.named_modules() if module is target), None)


def _prefixed(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


@dataclass
class TextModel:
    """A decoder LM and the names of its parts; ``lm.model`` is the ``nn.Module`` itself (unchanged)."""

    model: nn.Module
    info: ModelInfo
    spec: str
    is_default: bool
    tokenizer: Any
    blocks: list[str]  # output = residual stream after block i, (B, T, d)
    attn: list[str]  # attention output added to the stream, (B, T, d)
    mlp: list[str]  # MLP output added to the stream, (B, T, d)
    mlp_down: list[str]  # the MLP's output projection; its input is the hidden activations, (B, T, d_mlp)
    embed: str
    final_norm: str
    unembed: str
    d_model: int
    n_heads: int
    vocab_size: int
    kind: str = "text"

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def is_tinyworld(self) -> bool:
        return isinstance(self.tokenizer, tinyworld.Tokenizer)

    def __repr__(self) -> str:
        return (f"TextModel({self.spec!r}, {self.n_layers} blocks at {self.blocks[0].rsplit('.', 1)[0]}.*, "
                f"d={self.d_model}, heads={self.n_heads}, vocab={self.vocab_size}, default={self.is_default})")

    @classmethod
    def wrap(cls, model: nn.Module, info: ModelInfo, spec: str, is_default: bool) -> "TextModel":
        """Find the parts of ``model``; raises :class:`UnsupportedModelError` naming what is missing."""
        list_name, blocks = find_block_list(model)
        n = len(blocks)
        if n == 0:
            raise UnsupportedModelError(f"{spec}: found no list of repeated blocks (a ModuleList or Sequential of "
                                        f"identical modules). Look with helpers.layers(model).")
        first = model.get_submodule(blocks[0])
        attn, mlp = _child(first, ("attn", "attention")), _child(first, ("mlp", "feed_forward", "feedforward"))
        unembed_module = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        unembed = _name_of(model, unembed_module) or ("unembed" if hasattr(model, "unembed") else None)
        embed_module = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
        embed = _name_of(model, embed_module) or ("embed" if hasattr(model, "embed") else None)
        base = list_name.rsplit(".", 1)[0] if "." in list_name else ""
        parent = model.get_submodule(base) if base else model
        after = [name for name, _ in parent.named_children()]
        after = after[after.index(list_name.rsplit(".", 1)[-1]) + 1:]
        norm = next((n for n in after if "norm" in type(parent.get_submodule(n)).__name__.lower()), None)
        found = {"attention": attn, "MLP": mlp, "unembedding": unembed, "embedding": embed, "final norm": norm}
        missing = [k for k, v in found.items() if v is None]
        if missing:
            raise UnsupportedModelError(
                f"{spec}: blocks {blocks[0]} ... {blocks[-1]} ({type(first).__name__}), but no {', '.join(missing)} "
                f"was found (found: {', '.join(f'{k}={v}' for k, v in found.items() if v)}). A text lesson needs a "
                f"decoder LM with attention, MLP, final norm and unembedding. Look with helpers.layers(model).")
        mlp_module = first.get_submodule(mlp)
        down = [name for name, m in mlp_module.named_modules() if is_linear(m)]
        if not down:
            raise UnsupportedModelError(f"{spec}: the MLP {blocks[0]}.{mlp} has no linear layer.")
        weight = model.get_submodule(unembed).weight  # (V, d)
        config = getattr(model, "config", None)
        heads = (getattr(config, "num_attention_heads", None) or getattr(config, "n_head", None)
                 or getattr(getattr(first, attn), "n_head", 1))
        tokenizer = info.tokenizer if info.tokenizer is not None else tinyworld.tokenizer()
        return cls(model, info, spec, is_default, tokenizer, blocks,
                   [f"{b}.{attn}" for b in blocks], [f"{b}.{mlp}" for b in blocks],
                   [f"{b}.{mlp}.{down[-1]}" for b in blocks], embed, _prefixed(base, norm), unembed,
                   int(weight.shape[1]), int(heads), int(weight.shape[0]))

    # --- modules and forward -------------------------------------------------------------------------------
    def module(self, name: str) -> nn.Module:
        return self.model.get_submodule(name)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, V) logits (Hugging Face outputs are unwrapped)."""
        out = self.model(ids.to(self.device))
        return out.logits if hasattr(out, "logits") else out

    @torch.no_grad()
    def next_token_logits(self, prompts: "Sequence[str] | Sequence[torch.Tensor] | torch.Tensor") -> torch.Tensor:
        """Logits of the token after each prompt (texts or 1-D token ids): (N, V) float32 on the CPU.

        Prompts of one token length run as one batch (no padding, so nothing approximates the model); only the last
        position is unembedded when the model supports ``logits_to_keep`` (a 50k vocabulary at every position costs
        far more than the model).
        """
        if isinstance(prompts, torch.Tensor):
            seqs = list(prompts.unbind(0))
        else:
            seqs = [torch.tensor(self.encode(p), dtype=torch.long) if isinstance(p, str) else p for p in prompts]
        if not seqs:
            raise ValueError("next_token_logits(): no prompts given.")
        by_len: dict[int, list[int]] = {}
        for i, s in enumerate(seqs):
            if s.dim() != 1 or len(s) == 0:
                raise ValueError(f"prompt {i} is not a non-empty 1-D sequence of token ids (shape {tuple(s.shape)})")
            by_len.setdefault(len(s), []).append(i)
        out = torch.empty(len(seqs), self.vocab_size)
        for idx in by_len.values():
            out[idx] = self.last_logits(torch.stack([seqs[i] for i in idx])).float().cpu()
        return out

    def last_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, V) logits at the last position (only it is unembedded where the model allows)."""
        ids = ids.to(self.device)
        if "logits_to_keep" in inspect.signature(self.model.forward).parameters:
            return self.model(ids, logits_to_keep=1).logits[:, -1]
        return self.logits(ids)[:, -1]

    # --- tokens ----------------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Text -> token ids (with BOS first when the tokenizer uses one)."""
        if self.is_tinyworld:
            return self.tokenizer.encode(text)
        return list(self.tokenizer(text)["input_ids"])

    def decode(self, ids) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return self.tokenizer.decode(ids)

    def word_id(self, word: str) -> int:
        """The id of ``word`` as it follows a space (its first token when the tokenizer splits it)."""
        if self.is_tinyworld:
            return self.tokenizer.token_id(word)
        ids = self.tokenizer.encode(" " + word.strip(), add_special_tokens=False)
        if not ids:
            raise ValueError(f"{word!r} encodes to no token with the tokenizer of {self.spec}.")
        return ids[0]

    def batch(self, texts: list[str]) -> tuple[torch.Tensor, list[int]]:
        """Encode ``texts`` and keep those of the most common token length: ``(ids (B, T), kept indices)``.

        Prompts built from one template have one length with a word-level tokenizer, but a BPE tokenizer can
        split some names or words in two; the positions of a batch must line up, so those prompts are dropped.
        """
        if not texts:
            raise ValueError("batch() needs at least one text.")
        encoded = [self.encode(t) for t in texts]
        length = Counter(len(e) for e in encoded).most_common(1)[0][0]
        kept = [i for i, e in enumerate(encoded) if len(e) == length]
        return torch.tensor([encoded[i] for i in kept], dtype=torch.long), kept

    def sequences(self, n: int, length: int = 64, seed: int = 0, offset: int = 10_000) -> torch.Tensor:
        """``n`` token sequences of ``length`` from held-out tinyworld text (corpus seed ``offset + seed``).

        For tinyworld models this is exactly ``Corpus(CorpusConfig(n_ctx=length), offset + seed).batch(n)[:, :-1]``;
        other tokenizers get the same text re-tokenized and cut to ``length`` tokens (BOS first if they use one).
        """
        corpus = tinyworld.Corpus(tinyworld.CorpusConfig(n_ctx=length), seed=offset + seed)
        if self.is_tinyworld:
            return corpus.batch(n)[:, :-1]
        return self.sequences_from_text([" ".join(corpus.sequence()).replace("<bos> ", "") for _ in range(n)],
                                        n, length)

    def sequences_from_text(self, texts: list[str], n: int, length: int = 64) -> torch.Tensor:
        """``n`` sequences of ``length`` tokens cut from ``texts`` (joined with spaces, cycled if too short)."""
        ids = [i for t in texts for i in self.encode(" " + t.strip())[self._skip():]]
        if not ids:
            raise ValueError("The texts give no tokens.")
        prefix = self.encode("")[: 1]  # BOS, if the tokenizer adds one
        body = length - len(prefix)
        need = n * body
        ids = (ids * (need // len(ids) + 1))[:need]
        rows = torch.tensor(ids, dtype=torch.long).view(n, body)
        if prefix:
            rows = torch.cat([torch.full((n, 1), prefix[0], dtype=torch.long), rows], 1)
        return rows

    def _skip(self) -> int:
        return len(self.encode(""))  # tokens the tokenizer adds to every text (BOS)


def read_prompts(path: str, at_least: int = 1) -> list[str]:
    """The non-empty lines of a prompt file (the lessons' ``prompt_file`` parameter).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "p.txt"; _ = p.write_text("the cat sat\\n\\nthe dog ran\\n")
        >>> read_prompts(str(p))
        ['the cat sat', 'the dog ran']
    """
    from pathlib import Path

    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"prompt_file {path!r} is not a file; give a text file with one prompt per line.")
    lines = [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) < at_least:
        raise ValueError(f"prompt_file {path!r} has {len(lines)} non-empty lines; this lesson needs at least {at_least}.")
    return lines

