"""The same weights in TransformerLens: a ``HookedTransformer`` built from a helpers GPT, for cross-checks.

TransformerLens 3.x (4.x removed ``HookedTransformer``). Its ``gelu`` is the exact (erf) GELU, as
``nn.GELU()``; LayerNorm eps 1e-5 as ``nn.LayerNorm``; no weight processing (no LN folding, no centring).

Example:
    >>> import torch
    >>> from helpers.models.gpt import GPT, GPTConfig
    >>> gpt = GPT(GPTConfig(vocab_size=20, n_ctx=8, n_layer=2, d_model=16, n_head=2, d_mlp=32)).eval()
    >>> ht = hooked_transformer(gpt)
    >>> x = torch.tensor([[1, 2, 3]])
    >>> torch.allclose(ht(x), gpt(x), atol=1e-5)
    True
"""
from __future__ import annotations

import torch

from helpers.models.gpt import GPT


def hooked_transformer(gpt: GPT):
    """A TransformerLens ``HookedTransformer`` with ``gpt``'s config and weights (same logits)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    c = gpt.cfg
    hs = c.d_model // c.n_head
    cfg = HookedTransformerConfig(n_layers=c.n_layer, d_model=c.d_model, n_ctx=c.n_ctx, d_head=hs, n_heads=c.n_head,
                                  d_mlp=c.d_mlp, d_vocab=c.vocab_size, act_fn=c.act, normalization_type="LN",
                                  eps=1e-5, device=str(next(gpt.parameters()).device))
    ht = HookedTransformer(cfg)
    sd = {"embed.W_E": gpt.embed.weight, "pos_embed.W_pos": gpt.pos_embed.weight,
          "ln_final.w": gpt.ln_f.weight, "ln_final.b": gpt.ln_f.bias,
          "unembed.W_U": gpt.unembed.weight.T, "unembed.b_U": torch.zeros(c.vocab_size)}
    for i, b in enumerate(gpt.blocks):
        p = f"blocks.{i}."
        for ln, src in (("ln1", b.ln1), ("ln2", b.ln2)):
            sd[p + ln + ".w"], sd[p + ln + ".b"] = src.weight, src.bias
        for name, lin in (("Q", b.attn.q), ("K", b.attn.k), ("V", b.attn.v)):
            sd[p + f"attn.W_{name}"] = lin.weight.T.reshape(c.d_model, c.n_head, hs).permute(1, 0, 2)  # (nh, d, hs)
            sd[p + f"attn.b_{name}"] = lin.bias.reshape(c.n_head, hs)
        sd[p + "attn.W_O"] = b.attn.proj.weight.T.reshape(c.n_head, hs, c.d_model)  # (nh, hs, d)
        sd[p + "attn.b_O"] = b.attn.proj.bias
        sd[p + "mlp.W_in"], sd[p + "mlp.b_in"] = b.mlp.fc.weight.T, b.mlp.fc.bias
        sd[p + "mlp.W_out"], sd[p + "mlp.b_out"] = b.mlp.proj.weight.T, b.mlp.proj.bias
    missing, unexpected = ht.load_state_dict({k: v.detach().clone() for k, v in sd.items()}, strict=False)
    params = {n for n, _ in ht.named_parameters()}
    if unexpected or params & set(missing):
        raise RuntimeError(f"weight mapping incomplete: missing {sorted(params & set(missing))}, unexpected {unexpected}")
    return ht.eval()
