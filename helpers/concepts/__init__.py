"""Concept activation vectors (notebook 10).

| module | what |
|---|---|
| ``cav`` | a CAV: L2 logistic regression between concept and random activations (fitted in the span of the examples) |
| ``tcav`` | directional derivatives, TCAV scores, the random-CAV t-test with Bonferroni, ``fit_concepts`` / ``run_tcav`` |
| ``consistent`` | a cross-layer consistent CAV inspired by GCAV (one boundary over all layers, split per layer) |
| ``on_images`` | ``OnImages(net)``: an image-model adapter's model fed through its ``prepare`` (any input size), same layer names |
| ``wild_concepts`` | concept sets with ground truth from ``wild``: corner cue, tint, background, random |
"""
