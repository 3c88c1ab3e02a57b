"""Token Activation Maps (TAM; Li et al. 2025, "Token Activation Map to Visually Explain Multimodal LLMs").

A decoder that reads visual tokens and words maps *every* position's last hidden state through its unembedding. For
an explained word with id ``c`` the paper takes, at every earlier position j, ``s_j = ReLU(logit_c(h_j))``: over the
visual positions that is a map of the image, over the text positions a relevance of the earlier words. Then:

1. **Estimated causal inference (ECI).** Earlier words leave activation behind that is not about the current word.
   The interference is the mean of the earlier words' (raw) maps weighted by the current word's text scores at those
   words, ``I = sum_i w_i map_i`` with ``w_i = s_text,i / sum s_text`` over earlier words that differ from the
   current one; a scale ``lam = argmin ||map - lam I||^2`` is fitted (least squares) and the map becomes
   ``ReLU(map - lam I)``.
2. **Normalisation.** Image and text scores (without the position that predicts the word itself) are min-max
   normalised together.
3. **Rank Gaussian filter.** In each k x k window the values are sorted and averaged with Gaussian weights over their
   rank, centred on the median rank, with width ``sigma = std / mean`` of the window.

Choices of this module (not the paper's): the ``<bos>`` position has no map of its own, so the interference uses the
maps of earlier *words* only; a window whose values are all equal keeps its value (the paper's code divides by a zero
width there); a window with mean <= 0 gives 0, as in the paper's code.

Example:
    >>> import torch
    >>> logits = torch.randn(4 + 3, 10)  # a 2x2 image (4 positions), then 3 words
    >>> tm = token_activation_maps(logits, torch.tensor([1, 5, 6]), n_visual=4, grid=(2, 2))
    >>> tm.raw.shape, tm.maps.shape, tm.explained  # words 1 and 2 are explained (word 0 is <bos>)
    (torch.Size([2, 2, 2]), torch.Size([2, 2, 2]), [1, 2])
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

EPS = 1e-8


def rank_gaussian_filter(maps: torch.Tensor, k: int = 3) -> torch.Tensor:
    """The paper's rank Gaussian filter on (..., H, W) maps (reflect padding; window k x k, k odd).

    Example:
        >>> m = torch.zeros(5, 5); m[2, 2] = 9.0  # one isolated spike
        >>> rank_gaussian_filter(m)[2, 2].item() < 9.0, rank_gaussian_filter(torch.ones(3, 3)).tolist()[0]
        (True, [1.0, 1.0, 1.0])
    """
    if k < 1 or k % 2 == 0:
        raise ValueError(f"k must be odd and positive, got {k}")
    shape = maps.shape
    h, w = shape[-2:]
    x = maps.reshape(-1, 1, h, w).float()
    p = k // 2
    if p:
        x = F.pad(x, (p, p, p, p), mode="reflect")
    win = F.unfold(x, k).sort(dim=1).values  # (N, k*k, H*W), each window sorted
    mean = win.mean(1, keepdim=True)
    sigma = (win.std(1, unbiased=False, keepdim=True) / mean.clamp_min(EPS)).clamp_min(EPS)
    rank = (torch.arange(k * k, dtype=x.dtype) - (k * k) // 2)[None, :, None]
    kernel = torch.exp(-rank ** 2 / (2 * sigma ** 2))
    value = (win * kernel).sum(1) / kernel.sum(1)
    value = torch.where(mean[:, 0] > 0, value, torch.zeros_like(value))
    return value.reshape(shape)


def least_squares_scale(target: torch.Tensor, basis: torch.Tensor) -> float:
    """``argmin_lam ||target - lam * basis||^2`` = <target, basis> / <basis, basis> (0 for a zero basis).

    Example:
        >>> least_squares_scale(torch.tensor([2.0, 4.0]), torch.tensor([1.0, 2.0]))
        2.0
    """
    den = float((basis * basis).sum())
    return float((target * basis).sum()) / den if den > 0 else 0.0


@dataclass
class TokenMaps:
    """Maps of the explained words of one sequence (index ``k`` of each tensor is word ``explained[k]``).

    ``raw``: ReLU'd logits over the visual grid; ``corrected``: after ECI (equal to ``raw`` without it);
    ``maps``: the final maps (normalised with the text scores, then the rank Gaussian filter);
    ``text``: (K, T) the normalised text scores of each word over the words before it (NaN elsewhere);
    ``scales``: the ECI scale ``lam`` of each word (0 when there is no earlier different word).
    """

    explained: list[int]
    raw: torch.Tensor
    corrected: torch.Tensor
    maps: torch.Tensor
    text: torch.Tensor
    scales: list[float] = field(default_factory=list)


def eci_correct(current: torch.Tensor, earlier: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Estimated causal inference: ``current`` (P,) minus the ``weights``-averaged ``earlier`` maps (K, P) at their
    least-squares scale, then ReLU. Returns (the corrected map, the scale).

    Example:
        >>> m, lam = eci_correct(torch.tensor([2.0, 4.0, 1.0]), torch.tensor([[1.0, 2.0, 0.0]]), torch.tensor([3.0]))
        >>> m.tolist(), round(lam, 3)
        ([0.0, 0.0, 1.0], 2.0)
    """
    w = weights / (weights.sum() + EPS)
    interference = (earlier * w[:, None]).sum(0)
    lam = least_squares_scale(current, interference)
    return (current - lam * interference).clamp_min(0), lam


def token_activation_maps(logits: torch.Tensor, tokens: torch.Tensor, n_visual: int, grid: Sequence[int],
                          explain: Optional[Sequence[int]] = None, eci: bool = True, rgf: bool = True,
                          k: int = 3) -> TokenMaps:
    """TAM of the words of one sequence ``[visual (n_visual), tokens (T)]`` from its per-position logits (S, V).

    Word ``t`` (1 <= t < T) is predicted at the position of word ``t - 1``; its map uses the visual positions and
    the words ``0 .. t-1``. All words ``1 .. T-1`` are mapped in order (ECI needs the earlier ones); ``explain``
    picks which to return.
    """
    T = len(tokens)
    if logits.ndim != 2 or logits.shape[0] != n_visual + T:
        raise ValueError(f"logits must be (n_visual + T, V) = ({n_visual + T}, V), got {tuple(logits.shape)}")
    if int(grid[0]) * int(grid[1]) != n_visual:
        raise ValueError(f"grid {tuple(grid)} does not hold {n_visual} visual positions")
    explain = list(range(1, T)) if explain is None else [int(t) for t in explain]
    if any(not 1 <= t < T for t in explain):
        raise ValueError(f"explained word indices must be in 1..{T - 1}, got {explain}")
    logits = logits.detach().float()
    raw, text_all, maps, corrected, scales = {}, {}, {}, {}, {}
    for t in range(1, T):
        s = logits[:, int(tokens[t])].clamp_min(0)  # (S,)
        img, txt = s[:n_visual], s[n_visual:n_visual + t]  # txt[i]: at word i; txt[t-1] predicts word t
        raw[t] = img
        m, lam = img, 0.0
        earlier = [i for i in range(1, t) if int(tokens[i]) != int(tokens[t])]
        if eci and earlier:
            m, lam = eci_correct(img, torch.stack([raw[i] for i in earlier]), txt[earlier])
        corrected[t], scales[t] = m, lam
        both = torch.cat([m, txt[:-1]])  # without the position that predicts the word itself
        lo, hi = both.min(), both.max()
        both = (both - lo) / (hi - lo) if hi > lo else torch.zeros_like(both)
        unit = both[:n_visual].reshape(int(grid[0]), int(grid[1]))
        maps[t] = rank_gaussian_filter(unit, k) if rgf else unit
        row = torch.full((T,), float("nan"))
        row[:t - 1] = both[n_visual:]
        text_all[t] = row
    g = (int(grid[0]), int(grid[1]))
    return TokenMaps(explain, torch.stack([raw[t].reshape(g) for t in explain]),
                     torch.stack([corrected[t].reshape(g) for t in explain]), torch.stack([maps[t] for t in explain]),
                     torch.stack([text_all[t] for t in explain]), [scales[t] for t in explain])


def check_word(word: str, vocab: Sequence[str], never: Sequence[str] = ("<pad>", "<bos>")) -> int:
    """The id of ``word`` in ``vocab``; a word the model never emits is refused with the closest words it does emit.

    Example:
        >>> check_word("shirt", ["<pad>", "<bos>", "shirt", "skirt"])
        2
        >>> check_word("shrit", ["<pad>", "<bos>", "shirt", "skirt"])
        Traceback (most recent call last):
        ...
        ValueError: the model never emits 'shrit'; close matches: ['shirt', 'skirt']
    """
    emitted = [w for w in vocab if w not in never]
    if word in emitted:
        return list(vocab).index(word)
    close = difflib.get_close_matches(word, emitted, n=5, cutoff=0.5)
    raise ValueError(f"the model never emits {word!r}; close matches: {close}")


@torch.no_grad()
def caption_maps(model: torch.nn.Module, image: torch.Tensor, tokens: torch.Tensor, **kwargs) -> TokenMaps:
    """TAM of a caption on one image (3, H, W) with a ``helpers.models.captioner.Captioner``; ``tokens`` (T,)
    start with ``<bos>`` (``helpers.data.captions.encode``; padding after ``<eos>`` is dropped)."""
    vocab = model.cfg.vocab
    tokens = tokens.flatten()
    if "<pad>" in vocab:
        tokens = tokens[tokens != vocab.index("<pad>")]
    logits = model(image[None], tokens[None])[0]  # (n_visual + T, V)
    return token_activation_maps(logits, tokens, model.cfg.n_visual, (model.cfg.grid, model.cfg.grid), **kwargs)
