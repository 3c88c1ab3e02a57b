"""Interventions on activations (notebooks 12 and 13): activation patching and steering.

| module | what |
|---|---|
| ``patching`` | activation patching sweeps (batched): residual stream, MLPs, heads; denoising and noising; stored activations |
| ``attribution`` | attribution patching, relevance patching (RelP backward rules), integrated gradients on activations |
| ``prompt_pairs`` | clean/corrupted prompt pairs in any model's tokens (kept when they line up), attention output projections per head |
| ``transformerlens`` | a TransformerLens ``HookedTransformer`` with a helpers GPT's weights (for cross-checks) |
| ``steering`` | steering vectors as objects: fit from contrastive prompts, apply through ``helpers.edit``, save and load |
| ``austeer`` | atomic-unit steering: units ranked by momentum, a few scaled multiplicatively |
| ``gact`` | G-ACT-style adaptive steering: per-prompt differences clustered, a probe picks each prompt's direction |
| ``manifold`` | linear versus circle paths between the centroids of a cyclic concept (days of the week) |
| ``function_vectors`` | per-head mean outputs, head patching, causal indirect effects, function vectors (GPT) |
"""
