"""Geometry of activations: covariance spectra, similarity and information measures (lesson 08).

| module | what |
|---|---|
| ``diffusion`` | diffusion spectral entropy (DSE) and mutual information (DSMI) |
| ``eigentrack`` | spectral descriptors of windows of hidden states (EigenTrack-style detector) |
| ``spd`` | covariance matrices on the SPD manifold: log-Euclidean and Bures-Wasserstein distances, means |

The generic maths lives in ``helpers.ops``: ``covariance`` (streaming covariance, partial correlations),
``randmat`` (Marchenko-Pastur, effective rank), ``similarity`` (linear CKA).
"""
