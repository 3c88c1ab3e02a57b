"""Routing and sparse modules (notebook 19): mixtures of experts, dynamic per-token k, gated modules, novel classes.

| module | what |
|---|---|
| ``routers`` | top-k and cumulative-threshold (dynamic k) mixing weights, random per-token k baseline, Switch load-balancing loss, range checks |
| ``moe`` | patch tokens of 28x28 images, ``MoELayer`` and the ``PatchMoE`` classifier (routing chosen per call), a small training loop |
| ``stats`` | expert load and its entropy, top expert per token type, per-layer routing of one forward |
| ``dynamic_k`` | loss, accuracy and experts per token under a routing rule; the threshold matching a mean number of experts |
| ``gated`` | Sparse Modular Activation's idea: per-token gates that skip a module, FLOPs ratio |
| ``hypersphere`` | plain vs normalised-softmax embedding heads, prototypes for novel classes |
"""
