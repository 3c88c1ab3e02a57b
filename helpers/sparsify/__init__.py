"""Training-free activation sparsity for fast inference (lesson 15).

- :mod:`helpers.sparsify.thresholds`: TEAL and WINA scores, calibrated thresholds, top-k masks, masking a model's
  linear inputs in a ``with`` block, the relative output error.
- :mod:`helpers.sparsify.kernels`: a numba batch-1 matrix-vector product that reads only the kept rows.
- :mod:`helpers.sparsify.sparse_mlp`: SmolLM2's (Llama) MLPs run through that kernel at batch 1, restored on exit.
"""
