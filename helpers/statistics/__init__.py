"""Activation statistics (notebook 03).

| module | what |
|---|---|
| ``distributions`` | per-layer summaries: nonzero fraction, quantiles, kurtosis |
| ``sparsity`` | neuron scores, CETT thresholds, PPL-p% sparsity |
| ``massive`` | massive activations: where they are, the emergence curve |
"""
