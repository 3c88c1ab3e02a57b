"""Generic maths the lessons share (import the modules: ``from helpers.ops import metrics``).

| module | what |
|---|---|
| ``metrics`` | tie-aware ranks, Spearman, ROC AUC (also many columns at once), accuracy, cluster purity |
| ``linalg`` | PCA, k-means, mean pairwise distance |
| ``image`` | Gaussian blur, radial frequency, high-frequency energy, log spectrum |
| ``batching`` | batched forward without gradients (``predict``) |
| ``covariance`` | streaming covariance (float64, O(d^2) memory), correlation, partial correlations |
| ``randmat`` | Marchenko-Pastur law, noise level from the bulk, outliers, effective rank, column shuffle |
| ``similarity`` | linear CKA in feature space (no n x n matrix) |
| ``integrated`` | integrated gradients of any batched function (right Riemann sum), completeness gap |
| ``whitening`` | input Gram matrices of linear layers (``input_grams``), Cholesky root with damping, symmetric square root |
| ``quantization`` | uniform integer quantization: bit-width check, scale and zero point, quantize / dequantize / fake quant, SQNR |
| ``information`` | entropy, joint counts and mutual information of discrete variables (plug-in, nats) |
| ``curves`` | least-squares circle (Kasa), cyclic order, points on an arc, a path's value at a level |
| ``logistic`` | multinomial logistic regression with an L2 penalty, fitted by L-BFGS (``fit_logistic``) |
"""
