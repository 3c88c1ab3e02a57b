"""Sparse autoencoders on activations: ReLU + L1 (Towards Monosemanticity) and top-k with AuxK (Gao et al. 2024).

    sae = SparseAutoencoder(d_in=128, d_sae=512, k=8)
    log = train(sae, acts, steps=500, batch_size=1024)     # acts: (N, d_in) tensor
    x_hat = sae(acts)

Layout as SAELens has it, so saving needs no conversion: ``W_enc`` (d_in, d_sae), ``W_dec`` (d_sae, d_in),
``b_enc`` (d_sae,), ``b_dec`` (d_in,); the encoder sees ``x - b_dec``.

The top-k trainer is fast because only the encoder's forward matmul is dense: the reconstruction is a
weighted sum of k decoder rows per token (``embedding_bag``), and every gradient is written out by hand
so the backward passes touch only the k selected latents (and the AuxK latents when some are dead).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helpers.core.distributed import all_reduce_sum, start
from helpers.core.store import ActivationStore


class SparseAutoencoder(nn.Module):
    """``z = act(W_encᵀ(x - b_dec) + b_enc)``, ``x̂ = W_decᵀ z + b_dec``; ``act`` is top-k (``k``) or ReLU (``k=None``).

    Example:
        >>> sae = SparseAutoencoder(d_in=4, d_sae=16, k=2, seed=0)
        >>> z = sae.encode(torch.randn(3, 4))
        >>> z.shape, int((z != 0).sum(1).max())
        (torch.Size([3, 16]), 2)
    """

    def __init__(self, d_in: int, d_sae: int, k: Optional[int] = None, seed: int = 0):
        super().__init__()
        if k is not None and not 1 <= k <= d_sae:
            raise ValueError(f"k must be between 1 and d_sae={d_sae}, got {k}")
        self.d_in, self.d_sae, self.k = d_in, d_sae, k
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(d_sae, d_in, generator=g)
        w = w / w.norm(dim=1, keepdim=True)  # unit-norm decoder rows; the encoder starts as their transpose
        self.W_dec = nn.Parameter(w.clone())
        self.W_enc = nn.Parameter(w.T.clone())
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    def __repr__(self) -> str:
        act = f"top-{self.k}" if self.k else "ReLU"
        return f"SparseAutoencoder(d_in={self.d_in}, d_sae={self.d_sae}, {act})"

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """(N, d_in) -> (N, d_sae) before the ReLU / top-k."""
        if x.shape[-1] != self.d_in:
            raise ValueError(f"expected activations (..., {self.d_in}), got {tuple(x.shape)}")
        return torch.addmm(self.b_enc, x - self.b_dec, self.W_enc) if x.ndim == 2 else (x - self.b_dec) @ self.W_enc + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d_in) -> (..., d_sae) latents, at most ``k`` nonzero per row for a top-k SAE."""
        pre = self.pre_activations(x)
        if self.k is None:
            return pre.relu()
        vals, idx = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, idx, vals.relu())

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(..., d_sae) -> (..., d_in)."""
        return z @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


@dataclass
class TrainLog:
    """What :func:`train` did: losses per step, tokens seen, how many steps each latent has been silent, the input scale."""
    mse: list[float] = field(default_factory=list)
    aux: list[float] = field(default_factory=list)
    tokens: int = 0
    silent_steps: Optional[torch.Tensor] = None
    scale: float = 1.0  # the constant the activations were divided by

    def dead_fraction(self, after_steps: int) -> float:
        """Share of latents that did not fire in the last ``after_steps`` steps."""
        return float((self.silent_steps >= after_steps).float().mean())


def _scatter_rows(idx: torch.Tensor, weights: torch.Tensor, rows: torch.Tensor, n: int) -> torch.Tensor:
    """out[idx[b, j]] += weights[b, j] * rows[b]: (B, k), (B, k), (B, d) -> (n, d), as one sparse matmul."""
    B, k = idx.shape
    batch = torch.arange(B, device=idx.device).repeat_interleave(k)
    sparse = torch.sparse_coo_tensor(torch.stack([idx.flatten(), batch]), weights.flatten(), (n, B),
                                     check_invariants=False)
    return torch.sparse.mm(sparse, rows)


def _rows_dot(idx: torch.Tensor, table: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """out[b, j] = vectors[b] · table[idx[b, j]] without gathering (B, k, d): the per-sample-weight gradient
    of ``embedding_bag``."""
    w = torch.zeros(idx.shape, dtype=table.dtype, device=table.device, requires_grad=True)
    with torch.enable_grad():
        out = F.embedding_bag(idx, table.detach(), per_sample_weights=w, mode="sum")
        return torch.autograd.grad(out, w, vectors)[0]


def topk_gradients(sae: SparseAutoencoder, x: torch.Tensor, dead: Optional[torch.Tensor] = None,
                   aux_coef: float = 1 / 32, batch_total: Optional[int] = None
                   ) -> tuple[dict[str, torch.Tensor], dict[str, float], torch.Tensor]:
    """Loss and gradients of one top-k step, by hand, touching only the active (and AuxK) latents.

    Loss = mean over tokens of ``||x̂ - x||²`` + ``aux_coef`` · AuxK, where AuxK reconstructs the residual
    ``x - x̂`` from the top ``min(d_in // 2, n_dead)`` dead latents (Gao et al. 2024, appendix A.2; scaled
    by ``min(n_dead / (d_in // 2), 1)`` as SAELens does). Returns ``(grads, losses, fired)`` with grads
    named like the parameters and ``fired`` (d_sae,) bool. Equal to autograd on the dense formula
    (``tests/test_decompose.py``). ``batch_total`` (default ``len(x)``) is the size of the whole minibatch
    when ``x`` is one rank's part of it: the means divide by it, so the ranks' gradients add up to the whole's.
    """
    B, n = (batch_total or x.shape[0]), sae.d_sae
    with torch.no_grad():
        W_enc, W_dec, b_dec = sae.W_enc, sae.W_dec, sae.b_dec
        xc = x - b_dec                                             # (B, d)
        pre = torch.addmm(sae.b_enc, xc, W_enc)                    # (B, n): the one dense matmul
        vals, idx = pre.topk(sae.k, dim=1)                         # (B, k)
        a = vals.relu()
        x_hat = F.embedding_bag(idx, W_dec, per_sample_weights=a, mode="sum") + b_dec
        r = x_hat - x                                              # (B, d)
        mse = r.pow(2).sum() / B
        g = 2 * r / B                                              # d mse / d x_hat
        sel_idx, sel_act, sel_val, out_grad = [idx], [a], [vals], [g]
        aux = torch.zeros(())
        n_dead = int(dead.sum()) if dead is not None else 0
        if n_dead and aux_coef > 0:
            k_aux = min(sae.d_in // 2, n_dead)
            scale = aux_coef * min(n_dead / (sae.d_in // 2), 1.0)
            avals, aidx = pre.masked_fill(~dead, -math.inf).topk(k_aux, dim=1)
            aa = avals.relu()
            e_hat = F.embedding_bag(aidx, W_dec, per_sample_weights=aa, mode="sum")
            ra = e_hat + r                                         # e_hat - (x - x_hat)
            aux = scale * ra.pow(2).sum() / B
            ga = 2 * scale * ra / B
            sel_idx.append(aidx); sel_act.append(aa); sel_val.append(avals); out_grad.append(ga)
        grad_W_dec = torch.zeros_like(W_dec)
        grad_pre = []
        for i, act, val, go in zip(sel_idx, sel_act, sel_val, out_grad):
            grad_W_dec += _scatter_rows(i, act, go, n)             # decoder rows of the selected latents
            grad_pre.append(_rows_dot(i, W_dec, go) * (val > 0))   # d loss / d pre at the selected latents
        idx_all, gp = torch.cat(sel_idx, 1), torch.cat(grad_pre, 1)
        grad_W_enc = _scatter_rows(idx_all, gp, xc, n).T           # (d, n), only selected columns nonzero
        grad_b_enc = torch.zeros(n).index_add_(0, idx_all.flatten(), gp.flatten())
        grad_xc = F.embedding_bag(idx_all, W_enc.T.contiguous(), per_sample_weights=gp, mode="sum")
        grad_b_dec = g.sum(0) - grad_xc.sum(0)                     # x_hat adds b_dec; the encoder subtracts it
        fired = torch.zeros(n, dtype=torch.bool).index_fill_(0, idx[a > 0], True)
    grads = {"W_enc": grad_W_enc, "W_dec": grad_W_dec, "b_enc": grad_b_enc, "b_dec": grad_b_dec}
    return grads, {"mse": float(mse), "aux": float(aux)}, fired


def l1_loss(sae: SparseAutoencoder, x: torch.Tensor, l1: float,
            batch_total: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ReLU SAE loss: mean ``||x̂ - x||²`` + ``l1`` · mean ``Σ_i z_i ||W_dec[i]||`` (decoder-norm-weighted L1).

    Returns ``(loss, mse, z)``; differentiable (plain autograd). ``batch_total`` as in :func:`topk_gradients`.
    """
    B = batch_total or x.shape[0]
    z = sae.encode(x)
    mse = (sae.decode(z) - x).pow(2).sum() / B
    return mse + l1 * (z * sae.W_dec.norm(dim=1)).sum() / B, mse, z


def fold_scale(sae: SparseAutoencoder, c: float) -> None:
    """Make an SAE trained on ``x / c`` act on ``x`` itself: ``W_enc / c``, ``W_dec · c``, ``b_dec · c`` (latents unchanged)."""
    with torch.no_grad():
        sae.W_enc /= c
        sae.W_dec *= c
        sae.b_dec *= c


def train(sae: SparseAutoencoder, acts: torch.Tensor, steps: int, batch_size: int = 1024, lr: float = 1e-3,
          l1: float = 0.0, aux_coef: float = 1 / 32, dead_after: int = 50, seed: int = 0, *,
          rows: Optional[tuple[int, int]] = None) -> TrainLog:
    """Train ``sae`` on rows of ``acts`` (N, d_in) with Adam for ``steps`` minibatches drawn with replacement.

    The activations are first divided by one constant ``c`` so that their mean squared norm is ``d_in``
    (as SAELens's ``expected_average_only_in``; a residual stream with norms in the hundreds would otherwise
    need another learning rate and L1 coefficient), and ``c`` is folded into the weights at the end
    (:func:`fold_scale`), so the returned SAE reads and writes raw activations. Top-k SAEs use
    :func:`topk_gradients` (AuxK on latents silent for ``dead_after`` steps); ReLU SAEs minimise
    :func:`l1_loss` with coefficient ``l1`` (in the scaled units). After every step the decoder rows are put
    back to unit norm (Gao et al.). ``b_dec`` starts at the data mean. The log's losses are in scaled units.

    Data-parallel under torchrun: ``rows=(offset, total)`` says that ``acts`` are rows ``offset ...`` of a
    ``total``-row dataset spread over the ranks. Every rank draws the same minibatch indices (same seed),
    computes the gradient of the rows it holds, and the gradients are summed over the ranks
    (``all_reduce``), so the run equals one process on the whole data up to the order of float sums.

    Example:
        >>> acts = torch.randn(512, 8) * 100
        >>> sae = SparseAutoencoder(8, 32, k=4)
        >>> log = train(sae, acts, steps=20, batch_size=128)
        >>> log.tokens, log.mse[-1] < log.mse[0], 90 < log.scale < 110
        (2560, True, True)
    """
    if acts.ndim != 2 or acts.shape[1] != sae.d_in:
        raise ValueError(f"expected activations (N, {sae.d_in}), got {tuple(acts.shape)}")
    if sae.k is None and l1 <= 0:
        raise ValueError("a ReLU SAE needs an L1 coefficient l1 > 0 (else nothing makes it sparse)")
    offset, total = rows if rows is not None else (0, len(acts))
    if not (0 <= offset and offset + len(acts) <= total):
        raise ValueError(f"rows=(offset {offset}, total {total}) does not hold the {len(acts)} rows given")
    acts = acts.float()

    def local(idx: torch.Tensor) -> torch.Tensor:
        """The rows among global indices ``idx`` that this rank holds (all of them in one process)."""
        mine = idx[(idx >= offset) & (idx < offset + len(acts))] - offset
        return acts[mine]

    gen = torch.Generator().manual_seed(seed)
    sample_idx = torch.randperm(total, generator=gen)[:8192]
    sample = local(sample_idx)
    sums = all_reduce_sum([sample.pow(2).sum(), sample.sum(0)])
    c = float(sums[0].div(len(sample_idx) * sae.d_in).sqrt().clamp_min(1e-8))
    log = TrainLog(silent_steps=torch.zeros(sae.d_sae, dtype=torch.long), scale=c)
    with torch.no_grad():
        sae.b_dec.copy_(sums[1] / len(sample_idx) / c)
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    for _ in range(steps):
        x = local(torch.randint(total, (batch_size,), generator=gen)) / c
        if sae.k is not None:
            grads, losses, fired = topk_gradients(sae, x, log.silent_steps >= dead_after, aux_coef, batch_total=batch_size)
            for name, p in sae.named_parameters():
                p.grad = grads[name]
        else:
            opt.zero_grad(set_to_none=True)
            loss, mse, z = l1_loss(sae, x, l1, batch_total=batch_size)
            loss.backward()
            losses, fired = {"mse": mse.item(), "aux": 0.0}, (z > 0).any(0).detach()
        names = [name for name, _ in sae.named_parameters()]
        summed = all_reduce_sum([p.grad for p in sae.parameters()] + [torch.tensor([losses["mse"], losses["aux"]]),
                                                                      fired.float()])
        for p, g in zip(sae.parameters(), summed):
            p.grad = g
        losses = {"mse": float(summed[len(names)][0]), "aux": float(summed[len(names)][1])}
        fired = summed[-1] > 0
        opt.step()
        with torch.no_grad():
            sae.W_dec /= sae.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)
        log.silent_steps = torch.where(fired, 0, log.silent_steps + 1)
        log.mse.append(losses["mse"]); log.aux.append(losses["aux"])
        log.tokens += batch_size
    fold_scale(sae, c)
    return log


def train_from_store(sae: SparseAutoencoder, store: ActivationStore, layer: str, steps: int,
                     distributed: Optional[bool] = None, **kwargs) -> TrainLog:
    """:func:`train` on every token of ``layer`` in a complete :class:`~helpers.ActivationStore`.

    Refuses (naming the store's layers) a store that is incomplete, lacks ``layer``, or whose ``layer`` has
    another width than the SAE's ``d_in``. Under ``torchrun`` (``distributed=None`` or ``True``) the ranks
    train data-parallel: each reads only its own block of samples (its own shard when the store was written
    by as many ranks) and the gradients are summed, equal to one process up to float rounding.
    """
    from helpers.decompose.quality import layer_activations
    ranks = start(distributed)
    if ranks.world_size == 1:
        acts = layer_activations(store, layer)
        rows = None
    else:
        shards, n = store.shards, store.manifest["n"]
        if len(shards) == ranks.world_size:
            first, last = shards[ranks.rank]["start"], shards[ranks.rank]["stop"]
        else:
            first, last = ranks.rank * n // ranks.world_size, (ranks.rank + 1) * n // ranks.world_size
        acts = layer_activations(store, layer, slice(first, last))
        per_sample = int(np.prod(store.manifest["layers"][layer]["shape"][1:-1]))  # tokens per sample
        rows = (first * per_sample, n * per_sample)
    if acts.shape[1] != sae.d_in:
        shapes = {name: tuple(meta["shape"]) for name, meta in store.manifest["layers"].items()}
        raise ValueError(f"the SAE reads {sae.d_in}-dim activations but {layer!r} in {store.folder!r} is "
                         f"{acts.shape[1]}-dim; the store's layers: {shapes}")
    return train(sae, acts, steps, rows=rows, **kwargs)
