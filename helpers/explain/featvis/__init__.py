"""Feature visualisation: activation maximisation with regularisers, dataset examples, multifaceted facets.

Activation maximisation (AM) searches for an input image ``x`` in [0, 1] that makes one unit fire:

    x* = argmax_x  a_u(jitter(x)) - tv * TV(x) - l2 * ||x - 0.5||^2,   with a Gaussian blur every few steps

Without the regularisers the optimum is a high-frequency pattern (an adversarial texture); with them it is
smoother and easier to read. *Multifaceted* visualisation (Nguyen, Yosinski & Clune 2016) clusters a class's
training images by their high-level codes (PCA, t-SNE, k-means), starts one AM run from the mean image of each
cluster, and adds a centre-bias regulariser, so each run shows one "facet" (one kind of input) that the unit
responds to. ``find_facets`` clusters whatever examples it is given with PCA and k-means (notebook 06 gives it
the top-activating test images); the centre bias is not implemented here.

| module | what |
|---|---|
| ``objectives`` | a unit's activation as an objective; the dataset's top examples |
| ``maximise`` | regularisers, image parameterisations, the optimisation loop (``optimise``) |
| ``facets`` | clustering the top examples into starting images |

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    >>> score = unit_objective(net, "0", unit=2)           # channel 2 of the conv, averaged over positions
    >>> result = optimise(score, random_init(1, 16, seed=0), AMConfig.plain(steps=20, lr=0.1))
    >>> result.images.shape, bool(result.activations[0] > score(random_init(1, 16, seed=0))[0])
    (torch.Size([1, 3, 16, 16]), True)
"""
from helpers.explain.featvis.facets import Facets, find_facets
from helpers.explain.featvis.maximise import (EPS, PARAMS, AMConfig, AMResult, image_of, jitter, l2_penalty, optimise,
                                              param_of, random_init, total_variation)
from helpers.explain.featvis.objectives import Objective, scores, top_examples, unit_objective

__all__ = ["AMConfig", "AMResult", "EPS", "Facets", "Objective", "PARAMS", "find_facets", "image_of", "jitter",
           "l2_penalty", "optimise", "param_of", "random_init", "scores", "top_examples", "total_variation",
           "unit_objective"]
