"""Generic maths the lessons share (import the modules: ``from helpers.ops import metrics``).

| module | what |
|---|---|
| ``metrics`` | tie-aware ranks, Spearman, ROC AUC, accuracy |
| ``linalg`` | PCA, k-means, mean pairwise distance |
| ``image`` | Gaussian blur, radial frequency, high-frequency energy, log spectrum |
| ``batching`` | batched forward without gradients (``predict``) |
"""
