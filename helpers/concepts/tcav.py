"""TCAV (Kim et al., 2018): directional derivatives along CAVs, TCAV scores, and the random-CAV significance test.

For a class k, a layer l and a CAV v, the sensitivity of an input x is ``S(x) = grad_{f_l} h_k(f_l(x)) . v``, the
derivative of the class logit along the concept direction. The TCAV score is the share of the class's inputs with
``S(x) > 0``. One CAV is one draw: each of R runs fits the concept against a different random counter-set, and a null
distribution comes from CAVs of random sets against the same counter-sets. A two-sided t-test of the R concept scores
against the R null scores, with a Bonferroni correction over every (concept, layer) tested, decides significance.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> grads = torch.randn(30, 4, generator=g) + torch.tensor([1.0, 0, 0, 0])   # class gradient leans on axis 0
    >>> tcav_score(grads, torch.tensor([1.0, 0, 0, 0])) > 0.7
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence, Union

import torch
from scipy import stats


def directional_derivatives(grads: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """``grads`` (N, ...) of a class logit w.r.t. a layer, ``vectors`` (d,) or (R, d) CAVs -> (N,) or (R, N).

    Example:
        >>> directional_derivatives(torch.ones(2, 3), torch.tensor([1.0, -2.0, 0.0])).tolist()
        [-1.0, -1.0]
    """
    g = grads.flatten(1)
    v = vectors if vectors.ndim == 2 else vectors[None]
    if v.ndim != 2 or v.shape[1] != g.shape[1]:
        raise ValueError(f"grads (N, ...) flatten to {tuple(g.shape)}; vectors must be (d,) or (R, d) with "
                         f"d = {g.shape[1]}, got {tuple(vectors.shape)}")
    s = v.to(g) @ g.T  # (R, N)
    return s if vectors.ndim == 2 else s[0]


def tcav_score(grads: torch.Tensor, vectors: torch.Tensor) -> Union[float, torch.Tensor]:
    """Share of inputs whose directional derivative is positive: a float for one CAV (d,), (R,) for (R, d)."""
    s = (directional_derivatives(grads, vectors) > 0).double().mean(-1)
    return s.item() if s.ndim == 0 else s


def t_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sided two-sample t-test with pooled variance (as ``scipy.stats.ttest_ind``): ``(t, p)``.

    Two identical constant samples give ``t = 0, p = 1``; two different constant samples ``t = +-inf, p = 0``.

    Example:
        >>> t, p = t_test([0.9, 1.0, 0.95], [0.4, 0.6, 0.5])
        >>> round(t, 2), round(p, 4)
        (6.97, 0.0022)
    """
    x, y = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if x.ndim != 1 or y.ndim != 1 or len(x) < 2 or len(y) < 2:
        raise ValueError(f"t_test needs two 1-D samples of at least 2 values each (one per random counter-set), "
                         f"got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    n1, n2 = len(x), len(y)
    diff = (x.mean() - y.mean()).item()
    pooled = ((n1 - 1) * x.var() + (n2 - 1) * y.var()).item() / (n1 + n2 - 2)
    se = math.sqrt(pooled * (1 / n1 + 1 / n2))
    if se == 0:
        return (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)
    t = diff / se
    return t, float(2 * stats.t.sf(abs(t), n1 + n2 - 2))


@dataclass
class TCAVResult:
    """Scores and tests of a TCAV run for one class.

    Fields:
        scores: ``scores[concept][layer]`` -> (R,) TCAV score of each run; ``null[layer]`` -> (R,) random-vs-random.
        p_values: ``p_values[concept][layer]`` (two-sided t-test against ``null[layer]``).
        alpha: family-wise level; ``threshold`` = alpha / (concepts x layers) (Bonferroni).
        accuracy: ``accuracy[concept][layer]`` -> (R,) held-out accuracy of each run's CAV (NaN without held-out).
        vectors: ``vectors[concept][layer]`` -> (R, d) unit CAVs (kept so that other tools can reuse them).
    """

    scores: dict[str, dict[str, torch.Tensor]]
    null: dict[str, torch.Tensor]
    p_values: dict[str, dict[str, float]]
    alpha: float
    threshold: float
    accuracy: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    vectors: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)

    def significant(self, concept: str, layer: str) -> bool:
        """p below the Bonferroni threshold."""
        return self.p_values[concept][layer] < self.threshold

    def table(self) -> str:
        """One line per (concept, layer): mean score +- std, null mean, p, significant or not."""
        lines = [f"{'concept':<16}{'layer':<16}{'TCAV':>12}{'null':>8}{'p':>11}  (threshold {self.threshold:.2g})"]
        for c, per_layer in self.scores.items():
            for layer, s in per_layer.items():
                p = self.p_values[c][layer]
                lines.append(f"{c:<16}{layer:<16}{s.mean():>6.2f} +-{s.std():4.2f}{self.null[layer].mean():>8.2f}"
                             f"{p:>11.2g}  {'significant' if p < self.threshold else ''}")
        return "\n".join(lines)


def significance(scores: Mapping[str, Mapping[str, torch.Tensor]], null: Mapping[str, torch.Tensor],
                 alpha: float = 0.05) -> tuple[dict[str, dict[str, float]], float]:
    """p-values of every ``scores[concept][layer]`` (R,) against ``null[layer]`` and the Bonferroni threshold.

    Refuses fewer than 2 runs: with one random counter-set there is no variance and no test.

    Example:
        >>> p, thr = significance({"c": {"l": torch.tensor([1.0, 1, 1])}}, {"l": torch.tensor([0.2, 0.7, 0.5])})
        >>> p["c"]["l"] < thr == 0.05
        True
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    tests = [(c, layer) for c, per_layer in scores.items() for layer in per_layer]
    if not tests:
        raise ValueError("no (concept, layer) scores to test")
    for c, layer in tests:
        if layer not in null:
            raise ValueError(f"no null scores for layer {layer!r}; null has {sorted(null)}")
        r = len(scores[c][layer])
        if r < 2 or len(null[layer]) < 2:
            raise ValueError(f"TCAV's significance test needs at least 2 random counter-sets (runs) for the concept "
                             f"and the null, got {r} and {len(null[layer])} for ({c!r}, {layer!r}); Kim et al. use "
                             f">= 10")
    p = {c: {layer: t_test(s, null[layer])[1] for layer, s in per_layer.items()} for c, per_layer in scores.items()}
    return p, alpha / len(tests)


def _layer_outputs(model: torch.nn.Module, layers: Sequence[str], x: torch.Tensor, batch: int = 256
                   ) -> dict[str, torch.Tensor]:
    """Flattened outputs (N, d) of ``layers`` for inputs ``x``, no gradients, in batches."""
    from helpers.core.capturing import capture

    device = next(model.parameters()).device
    parts: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    with torch.no_grad():
        for i in range(0, len(x), batch):
            with capture(model, list(layers)) as acts:
                model(x[i:i + batch].to(device))
            for layer in layers:
                parts[layer].append(acts[layer].flatten(1))
    return {layer: torch.cat(p) for layer, p in parts.items()}


def class_gradients(model: torch.nn.Module, layers: Sequence[str], inputs: torch.Tensor, target: int
                    ) -> dict[str, torch.Tensor]:
    """d logit[target] / d layer output for each input, flattened: ``{layer: (N, d)}`` (one backward pass).

    Inputs are independent in eval mode, so the gradient of the summed logit gives each input's own gradient.
    """
    from helpers.core.capturing import capture

    if inputs.ndim < 2 or len(inputs) == 0:
        raise ValueError(f"inputs must be a non-empty batch (N, ...), got shape {tuple(inputs.shape)}")
    device = next(model.parameters()).device
    with capture(model, list(layers), grads=True) as acts:
        logits = model(inputs.to(device))
        if logits.ndim != 2 or not 0 <= target < logits.shape[1]:
            raise ValueError(f"target must be a class index of the model's (N, K) output, got {target} for output "
                             f"shape {tuple(logits.shape)}")
        logits[:, target].sum().backward()
    return {layer: acts.grads[layer].flatten(1) for layer in layers}


Runs = Union[torch.Tensor, Sequence[torch.Tensor]]


def _runs(name: str, examples: Runs, r: int) -> list[torch.Tensor]:
    """A concept's examples for each of the R runs: one fixed set (Kim et al.) or R fresh sets."""
    runs = [examples] * r if isinstance(examples, torch.Tensor) else list(examples)
    if len(runs) != r:
        raise ValueError(f"concept {name!r} has {len(runs)} example sets; give one tensor (reused in every run) or "
                         f"one set per random counter-set ({r})")
    for i, x in enumerate(runs):
        if not isinstance(x, torch.Tensor) or x.ndim < 2 or len(x) < 2:
            raise ValueError(f"concept {name!r}, run {i}: expected a tensor of at least 2 examples (N, ...), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
    return runs


@dataclass
class ConceptVectors:
    """CAVs of every run: ``vectors[concept][layer]`` (R, d) unit vectors, ``null[layer]`` (R, d) random-vs-random,
    ``accuracy[concept][layer]`` (R,) accuracy of run r's CAV on run r + 1's examples (held out when the concept
    has fresh examples per run; with one fixed concept set only the counter-set side is held out)."""

    layers: list[str]
    vectors: dict[str, dict[str, torch.Tensor]]
    null: dict[str, torch.Tensor]
    accuracy: dict[str, dict[str, torch.Tensor]]


def fit_concepts(model: torch.nn.Module, layers: Sequence[str], concepts: Mapping[str, Runs],
                 randoms: Sequence[torch.Tensor], null: Sequence[torch.Tensor] | None = None,
                 C: float = 1.0) -> ConceptVectors:
    """Fit one CAV per concept, layer and run; CAVs do not depend on the class, so fit once and test many classes.

    Args:
        concepts: name -> the concept's examples: one tensor (the same set in every run, as Kim et al.) or R
            tensors (fresh examples per run, so that the runs are independent, as the t-test assumes).
        randoms: R random counter-sets (R >= 2; Kim et al. use >= 10). Run r fits each concept against randoms[r].
        null: R random "concept" sets for the null (run r: null[r] against randoms[r]); default randoms[r + 1].
        C: inverse L2 strength of the logistic regression (:func:`helpers.concepts.cav.fit_cav`).
    """
    from helpers.concepts.cav import fit_cav

    r = len(randoms)
    if r < 2:
        raise ValueError(f"TCAV needs at least 2 random counter-sets for its significance test (a t-test over the "
                         f"runs), got {r}; Kim et al. use >= 10")
    if not concepts:
        raise ValueError("no concepts given: concepts maps a name to its examples")
    layers = list(layers)
    null = list(null) if null is not None else [randoms[(i + 1) % r] for i in range(r)]
    sets = {**{name: _runs(name, x, r) for name, x in concepts.items()}, "__null__": _runs("null", null, r)}
    rand_acts = [_layer_outputs(model, layers, x) for x in _runs("randoms", list(randoms), r)]
    vectors: dict[str, dict[str, torch.Tensor]] = {}
    accuracy: dict[str, dict[str, torch.Tensor]] = {}
    for name, runs in sets.items():
        fixed = name != "__null__" and isinstance(concepts[name], torch.Tensor)
        acts = [_layer_outputs(model, layers, runs[0])] * r if fixed else [_layer_outputs(model, layers, x) for x in runs]
        vectors[name], accuracy[name] = {}, {}
        for layer in layers:
            cavs = [fit_cav(acts[i][layer], rand_acts[i][layer], C) for i in range(r)]
            vectors[name][layer] = torch.stack([c.vector for c in cavs])  # (R, d)
            accuracy[name][layer] = torch.tensor([cavs[i].accuracy(acts[(i + 1) % r][layer],
                                                                   rand_acts[(i + 1) % r][layer]) for i in range(r)])
    null_vectors = vectors.pop("__null__")
    accuracy.pop("__null__")
    return ConceptVectors(layers, vectors, null_vectors, accuracy)


def run_tcav(model: torch.nn.Module, cavs: ConceptVectors, inputs: torch.Tensor, target: int,
             concepts: Sequence[str] | None = None, alpha: float = 0.05) -> TCAVResult:
    """TCAV scores of ``concepts`` (default: all in ``cavs``) for class ``target`` on ``inputs`` (N, ...) of that
    class, with the two-sided t-test against the random-vs-random null and Bonferroni over concepts x layers.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> g = torch.Generator().manual_seed(0)
        >>> rnd = [torch.randn(8, 6, generator=g) for _ in range(3)]
        >>> cavs = fit_concepts(net, ["0"], {"c": torch.randn(8, 6, generator=g) + 1}, rnd)
        >>> res = run_tcav(net, cavs, torch.randn(5, 6, generator=g), target=1)
        >>> res.scores["c"]["0"].shape, res.threshold
        (torch.Size([3]), 0.05)
    """
    names = list(cavs.vectors) if concepts is None else list(concepts)
    unknown = [c for c in names if c not in cavs.vectors]
    if unknown:
        raise ValueError(f"concepts {unknown} have no CAVs; fitted: {list(cavs.vectors)}")
    grads = class_gradients(model, cavs.layers, inputs, target)
    scores = {c: {layer: tcav_score(grads[layer], cavs.vectors[c][layer]) for layer in cavs.layers} for c in names}
    null = {layer: tcav_score(grads[layer], cavs.null[layer]) for layer in cavs.layers}
    p, threshold = significance(scores, null, alpha)
    return TCAVResult(scores, null, p, alpha, threshold, {c: cavs.accuracy[c] for c in names},
                      {c: cavs.vectors[c] for c in names})
