"""Making models smaller from their activations: low-rank factorisations and rank budgets (lesson 17).

| module | what |
|---|---|
| ``lowrank`` | weight SVD, ASVD, whitened SVD (SVD-LLM's Cholesky, CARE's square root), ``LowRankLinear``, ``replace_linears`` |
| ``ranks`` | a total rank spread over layers: uniform, CARE's adjusted-rank allocation |
| ``rmt`` | RMT-KD's projection onto the eigendirections above the Marchenko-Pastur edge |

The generic maths lives in ``helpers.ops``: ``whitening`` (input Gram matrices, Cholesky and square roots),
``randmat`` (Marchenko-Pastur), ``covariance``.
"""
